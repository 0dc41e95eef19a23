//! Sparse files: where a file's data is, so that a copy leaves its holes as holes.
//!
//! [`data_segments`] asks the file system with `lseek(2)`'s `SEEK_DATA` and `SEEK_HOLE`
//! (<https://man7.org/linux/man-pages/man2/lseek.2.html>). A file system that does not support
//! them reports the whole file as data, which is also what a file without holes is; runs of
//! zero bytes that are written data stay data (a copy keeps them as they are, it does not make
//! a file sparser than it was).

use std::fs::File;
use std::io;
use std::ops::Range;

use nix::errno::Errno;
use nix::unistd::{lseek, Whence};

/// The byte ranges of `file` (of `len` bytes) that hold data, in order; everything between them
/// and after the last one up to `len` is a hole (reads as zeros, takes no space).
pub fn data_segments(file: &File, len: u64) -> io::Result<Vec<Range<u64>>> {
    let whole = || {
        let mut all = Vec::new();
        if len > 0 {
            all.push(0..len);
        }
        Ok(all)
    };
    let mut segments = Vec::new();
    let mut at: u64 = 0;
    while at < len {
        let start = match lseek(file, offset(at)?, Whence::SeekData) {
            Ok(start) => start as u64,
            // No data from `at` to the end: the rest is a hole.
            Err(Errno::ENXIO) => break,
            // The file system cannot tell: treat the file as all data.
            Err(Errno::EINVAL) if segments.is_empty() => return whole(),
            Err(errno) => return Err(errno.into()),
        };
        let end = match lseek(file, offset(start)?, Whence::SeekHole) {
            Ok(end) => (end as u64).min(len),
            Err(Errno::ENXIO) => len,
            Err(errno) => return Err(errno.into()),
        };
        if start >= len || end <= start {
            break;
        }
        segments.push(start..end);
        at = end;
    }
    Ok(segments)
}

fn offset(at: u64) -> io::Result<i64> {
    i64::try_from(at).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt as _;

    use super::*;

    #[test]
    fn finds_the_data_between_holes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparse");
        let file = File::create(&path).unwrap();
        let mib = 1 << 20;
        file.write_all_at(b"start", 0).unwrap();
        file.write_all_at(b"middle", 4 * mib).unwrap();
        file.set_len(16 * mib).unwrap();
        let file = File::open(&path).unwrap();
        let segments = data_segments(&file, 16 * mib).unwrap();
        // Block granularity: each segment holds its bytes, and the holes are not data.
        assert_eq!(segments.len(), 2, "{segments:?}");
        assert!(segments[0].start == 0 && segments[0].end < mib);
        assert!(segments[1].contains(&(4 * mib)) && segments[1].end < 5 * mib);
        let empty = File::create(dir.path().join("empty")).unwrap();
        assert!(data_segments(&empty, 0).unwrap().is_empty());
    }
}
