//! The compressed payload as a byte stream: the zstd settings ([`encoder`]), hashing on the way
//! out ([`HashingWriter`]) and on the way in ([`reader`], which decompresses and hashes on a
//! helper thread, a [`ThreadedReader`]).
//!
//! # Determinism
//!
//! The encoder always runs zstd's multithreaded mode (`ZSTD_c_nbWorkers` ≥ 1), never the
//! single-threaded one. In multithreaded mode zstd cuts the input into jobs whose size depends
//! only on the compression parameters (`ZSTDMT_computeTargetJobLog`: `max(20, windowLog + 2)`),
//! and each job sees the same window of earlier data whichever worker runs it, so the output is
//! the same for 1, 2 or 64 workers and however the input is split into `write` calls; the worker
//! count only changes the speed. `nbWorkers = 0` (zstd's default) gives *different* bytes, which
//! is why a request for one thread still uses one worker. The bytes do depend on the level and
//! on the zstd library version, which is compiled into kiln (`zstd-sys`), so one kiln binary
//! always writes the same payload for the same tree. The unit tests check this.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use kiln_fsio::stream::CHUNK;
use kiln_fsio::ThreadedReader;
use sha2::{Digest as _, Sha256};

use crate::manifest::hex;

/// The zstd level used when the caller has no opinion (zstd's own default).
pub const DEFAULT_LEVEL: i32 = 3;

/// The largest zstd window a payload may use (2^27 = 128 MiB, zstd's default limit): a hostile
/// payload cannot make the decoder allocate more.
const WINDOW_LOG_MAX: u32 = 27;

/// A zstd encoder with kiln's fixed parameters, writing to `inner`.
///
/// `threads` is the number of compression workers (at least one is always used; see the module
/// documentation for why the output does not depend on it).
pub(crate) fn encoder<W: Write>(
    inner: W,
    level: i32,
    threads: u32,
) -> io::Result<zstd::stream::write::Encoder<'static, W>> {
    let mut encoder = zstd::stream::write::Encoder::new(inner, level)?;
    encoder.multithread(threads.max(1))?;
    // The frame checksum lets `zstd -d` alone check an extracted payload.
    encoder.include_checksum(true)?;
    Ok(encoder)
}

/// A writer that hashes and counts what passes through it.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> HashingWriter<W> {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// The inner writer, the SHA-256 (hex) and the number of bytes written.
    pub(crate) fn finish(self) -> (W, String, u64) {
        (self.inner, hex(&self.hasher.finalize()), self.written)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.written += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes and counts what passes through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.hasher.update(&buf[..read]);
        self.read += read as u64;
        Ok(read)
    }
}

/// The SHA-256 (hex) and size of a whole file, read from the start.
pub(crate) fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let mut reader = HashingReader {
        inner: File::open(path)?,
        hasher: Sha256::new(),
        read: 0,
    };
    let mut buffer = vec![0; CHUNK];
    while reader.read(&mut buffer)? != 0 {}
    Ok((hex(&reader.hasher.finalize()), reader.read))
}

/// The decompressed payload as a [`BufRead`](std::io::BufRead): a helper thread reads the
/// file, hashes the compressed bytes, decompresses them and hands the result over in chunks
/// through a bounded channel, so decompression overlaps with creating files and memory stays
/// bounded. Its [`ThreadedReader::finish`] reads the rest and returns the SHA-256 (hex) and size
/// of the compressed bytes.
///
/// Dropping it stops the thread (its next send fails) and waits for it.
pub(crate) type PayloadReader = ThreadedReader<(String, u64)>;

/// Starts decompressing `file` (a zstd stream, possibly of several frames) on a new thread.
pub(crate) fn reader(file: File) -> io::Result<PayloadReader> {
    ThreadedReader::spawn_with(
        "kiln-state-decompress",
        move || {
            let hashing = HashingReader {
                inner: file,
                hasher: Sha256::new(),
                read: 0,
            };
            let mut decoder = zstd::stream::read::Decoder::new(hashing)?;
            decoder.window_log_max(WINDOW_LOG_MAX)?;
            Ok(decoder)
        },
        |decoder| {
            // The decoder reads to the end of its input (it decodes every frame), but drain it
            // anyway so that the hash covers every byte.
            let mut rest = decoder.finish();
            io::copy(&mut rest, &mut io::sink())?;
            let hashing = rest.into_inner();
            Ok((hex(&hashing.hasher.finalize()), hashing.read))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compressible, non-trivial data: words picked by a xorshift generator.
    fn text(len: usize) -> Vec<u8> {
        let words: [&[u8]; 8] = [
            b"make ",
            b"cc ",
            b"-O2 ",
            b"int ",
            b"x;\n",
            b"#include ",
            b"a",
            b"\t",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut data = Vec::with_capacity(len + 16);
        while data.len() < len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            data.extend_from_slice(words[(state % 8) as usize]);
            if state % 5 == 0 {
                data.extend_from_slice(&state.to_le_bytes()[..3]);
            }
        }
        data
    }

    fn compress(data: &[u8], threads: u32, write_size: usize) -> Vec<u8> {
        let mut encoder = encoder(Vec::new(), DEFAULT_LEVEL, threads).unwrap();
        for piece in data.chunks(write_size) {
            encoder.write_all(piece).unwrap();
        }
        encoder.finish().unwrap()
    }

    #[test]
    fn output_does_not_depend_on_the_worker_count_or_write_sizes() {
        // Large enough for several zstd jobs (8 MiB each at level 3).
        let data = text(20 << 20);
        let one = compress(&data, 1, 8192);
        for (threads, write_size) in [(2, 1 << 20), (4, 8192), (8, 4093)] {
            assert!(
                compress(&data, threads, write_size) == one,
                "{threads} workers with {write_size}-byte writes gave other bytes"
            );
        }
        // `threads = 0` is treated as one worker, not as zstd's single-threaded mode.
        assert!(compress(&data, 0, 8192) == one);
    }

    #[test]
    fn single_threaded_mode_differs() {
        // Documents why the encoder never uses nbWorkers = 0: that mode writes other bytes.
        let data = text(20 << 20);
        let mut single = zstd::stream::write::Encoder::new(Vec::new(), DEFAULT_LEVEL).unwrap();
        single.include_checksum(true).unwrap();
        single.write_all(&data).unwrap();
        assert!(single.finish().unwrap() != compress(&data, 1, 1 << 20));
    }

    #[test]
    fn reader_decompresses_and_hashes() {
        let data = text(3 * CHUNK + 17);
        let compressed = compress(&data, 2, 65536);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.zst");
        std::fs::write(&path, &compressed).unwrap();
        let mut reader = reader(File::open(&path).unwrap()).unwrap();
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert!(out == data);
        let (digest, size) = reader.finish().unwrap();
        assert_eq!((digest, size), hash_file(&path).unwrap());
        assert_eq!(size, compressed.len() as u64);
        assert_eq!(
            hex(&Sha256::digest(&compressed)),
            hash_file(&path).unwrap().0
        );
    }

    #[test]
    fn reader_reports_a_truncated_stream() {
        let compressed = compress(&text(1 << 20), 1, 65536);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.zst");
        std::fs::write(&path, &compressed[..compressed.len() / 2]).unwrap();
        let mut reader = reader(File::open(&path).unwrap()).unwrap();
        assert!(reader.read_to_end(&mut Vec::new()).is_err());
    }

    #[test]
    fn dropping_early_stops_the_thread() {
        let compressed = compress(&text(8 << 20), 1, 1 << 20);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.zst");
        std::fs::write(&path, &compressed).unwrap();
        let mut reader = reader(File::open(&path).unwrap()).unwrap();
        let mut first = [0; 10];
        reader.read_exact(&mut first).unwrap();
        drop(reader); // must return: the thread stops at its next send
    }
}
