//! Extracting a tar stream: [`untar`] reads entries one by one from any [`Read`] and creates
//! them through a [`Dest`], which enforces the safety rules.
//!
//! The `tar` crate parses headers, including GNU long names and links, PAX extended headers and
//! GNU sparse files; everything written goes through [`Dest`]. A sparse file keeps its holes
//! (as with GNU tar) and may be at most [`MAX_SPARSE_SIZE`] bytes: its declared size costs the
//! archive nothing, so without both a tiny archive could fill the disk with zeros. Directory, regular file, symlink
//! and hard link entries are created; PAX global headers and GNU volume labels are skipped;
//! device nodes and FIFOs are refused with [`UnpackError::UnsupportedEntry`].

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use tar::EntryType;

use crate::dest::Dest;
use crate::UnpackError;

/// The largest GNU sparse file (tar entry type `S`) that unpacking creates; a larger one is
/// [`UnpackError::UnsupportedEntry`]. Holes are not written (they stay holes, as with GNU tar),
/// but the tar reader still hands them over as zeros, so without this bound a few hundred bytes
/// of archive could keep the unpacker busy for hours. Real source archives have no sparse files
/// this large.
pub const MAX_SPARSE_SIZE: u64 = 16 << 30;

/// Extracts every entry of the tar stream `reader` into `dest`; returns the number of entries
/// created. `archive` names the source in errors.
///
/// After the end-of-archive marker the rest of the stream is read (and discarded) so a
/// decompressor sees its end and checks its trailer (gzip's CRC, xz's check).
pub(crate) fn untar(reader: impl Read, archive: &Path, mut dest: Dest) -> Result<u64, UnpackError> {
    let read_error = |source| UnpackError::Read {
        archive: archive.to_owned(),
        source,
    };
    let mut tar = tar::Archive::new(reader);
    for entry in tar.entries().map_err(read_error)? {
        let mut entry = entry.map_err(read_error)?;
        let entry_error = |entry: &Path, source| UnpackError::ReadEntry {
            archive: archive.to_owned(),
            entry: entry.to_owned(),
            source,
        };
        let path: PathBuf = match entry.path() {
            Ok(path) => path.into_owned(),
            Err(source) => {
                let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                return Err(entry_error(Path::new(&raw), source));
            }
        };
        let kind = entry.header().entry_type();
        // PAX global headers, and GNU volume labels (`V`), describe the archive, not a file.
        if kind == EntryType::XGlobalHeader || kind.as_byte() == b'V' {
            continue;
        }
        let relative = dest.relative(&path)?;
        let mode = entry
            .header()
            .mode()
            .map_err(|source| entry_error(&path, source))?;
        let mtime = entry_mtime(&mut entry).map_err(|source| entry_error(&path, source))?;
        match kind {
            EntryType::Regular | EntryType::Continuous => {
                dest.file(&path, &relative, mode, Some((mtime, 0)), &mut entry)?;
            }
            EntryType::GNUSparse => {
                // `size()` is the file's real size, holes included.
                let size = entry.size();
                if size > MAX_SPARSE_SIZE {
                    return Err(UnpackError::UnsupportedEntry {
                        archive: archive.to_owned(),
                        entry: path,
                        kind: format!(
                            "sparse file of {size} bytes (larger than {} GiB)",
                            MAX_SPARSE_SIZE >> 30
                        ),
                    });
                }
                dest.sparse_file(&path, &relative, mode, Some((mtime, 0)), &mut entry)?;
            }
            EntryType::Directory => dest.dir(&path, &relative, mode, Some(mtime))?,
            EntryType::Symlink => {
                let target = link_name(&entry).map_err(|source| entry_error(&path, source))?;
                dest.symlink(&path, &relative, &target, Some((mtime, 0)))?;
            }
            EntryType::Link => {
                let target = link_name(&entry).map_err(|source| entry_error(&path, source))?;
                dest.hard_link(&path, &relative, &target)?;
            }
            other => {
                let kind = match other {
                    EntryType::Char => "character device".to_owned(),
                    EntryType::Block => "block device".to_owned(),
                    EntryType::Fifo => "fifo".to_owned(),
                    other => format!("entry of type `{}`", char::from(other.as_byte())),
                };
                return Err(UnpackError::UnsupportedEntry {
                    archive: archive.to_owned(),
                    entry: path,
                    kind,
                });
            }
        }
    }
    io::copy(&mut tar.into_inner(), &mut io::sink()).map_err(read_error)?;
    dest.finish()
}

/// The entry's mtime in seconds: the PAX `mtime` record if there is one (it may be negative or
/// beyond the 8-digit octal field), else the header's.
fn entry_mtime<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<i64> {
    if let Some(extensions) = entry.pax_extensions()? {
        for extension in extensions {
            let extension = extension?;
            if extension.key_bytes() == b"mtime" {
                let value = String::from_utf8_lossy(extension.value_bytes());
                let seconds = value.split('.').next().unwrap_or_default();
                if let Ok(seconds) = seconds.parse::<i64>() {
                    return Ok(seconds);
                }
            }
        }
    }
    let seconds = entry.header().mtime()?;
    Ok(i64::try_from(seconds).unwrap_or(i64::MAX))
}

/// The entry's link target (a symlink's content or a hard link's target path).
fn link_name<R: Read>(entry: &tar::Entry<'_, R>) -> io::Result<PathBuf> {
    match entry.link_name()? {
        Some(target) if !target.as_os_str().is_empty() => Ok(target.into_owned()),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the link entry has no target",
        )),
    }
}
