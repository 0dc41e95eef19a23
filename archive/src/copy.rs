//! Sources that are not archives: [`copy_dir`] copies a directory (stdenv:
//! `cp -r --preserve=timestamps --reflink=auto`), and [`strip_hash`] gives a store path's name
//! without its hash, as stdenv's `stripHash` does.
//!
//! The copy keeps permission bits (without setuid, setgid and sticky, the umask applied, `u+w`
//! added), mtimes to the nanosecond, and symlinks as symlinks (never followed below the top).
//! File contents go through `copy_file_range(2)` (std's `io::copy` between files), which
//! reflinks where the file system can. Hard links are not kept: they may come from store
//! optimisation, and stdenv does not keep them either.

use std::ffi::OsStr;
use std::fs::{self, DirBuilder, FileTimes, OpenOptions, Permissions};
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use kiln_fsio::{read_dir_sorted, set_mtime_nofollow, system_time};

use crate::dest::process_umask;
use crate::UnpackError;

/// `name` without a leading Nix store hash (`<32 base-32 characters>-`), if it has one.
pub fn strip_hash(name: &OsStr) -> &OsStr {
    let bytes = name.as_bytes();
    let hashed = bytes.len() > 33
        && bytes[32] == b'-'
        && bytes[..32]
            .iter()
            .all(|byte| byte.is_ascii_digit() || byte.is_ascii_lowercase());
    if hashed {
        OsStr::from_bytes(&bytes[33..])
    } else {
        name
    }
}

/// Copies the directory `source` to `into/<name>`, `name` being its file name without a store
/// hash; returns the number of entries copied (the directory itself included).
pub(crate) fn copy_dir(source: &Path, into: &Path) -> Result<u64, UnpackError> {
    let name = source
        .file_name()
        .map(strip_hash)
        .unwrap_or(OsStr::new("source"));
    let destination = into.join(name);
    if fs::symlink_metadata(&destination).is_ok() {
        return Err(UnpackError::DestinationExists {
            source_path: source.to_owned(),
            destination,
        });
    }
    let mut copier = Copier {
        source: source.to_owned(),
        umask: process_umask(),
        entries: 0,
    };
    let metadata = fs::metadata(source).map_err(|error| copier.inspect(source, error))?;
    copier.dir(source, &destination, &metadata)?;
    Ok(copier.entries)
}

struct Copier {
    /// The top of the copy, for error messages.
    source: PathBuf,
    umask: u32,
    entries: u64,
}

impl Copier {
    fn inspect(&self, path: &Path, source: io::Error) -> UnpackError {
        UnpackError::Inspect {
            path: path.to_owned(),
            source,
        }
    }

    fn write(&self, path: &Path, source: io::Error) -> UnpackError {
        UnpackError::Write {
            archive: self.source.clone(),
            path: path.to_owned(),
            source,
        }
    }

    fn dir(&mut self, from: &Path, to: &Path, metadata: &fs::Metadata) -> Result<(), UnpackError> {
        let mode = (metadata.mode() & 0o777 & !self.umask) | 0o700;
        DirBuilder::new()
            .mode(0o700)
            .create(to)
            .map_err(|error| self.write(to, error))?;
        self.entries += 1;
        let names = read_dir_sorted(from).map_err(|error| self.inspect(from, error))?;
        for name in names {
            let from = from.join(&name);
            let to = to.join(&name);
            let metadata =
                fs::symlink_metadata(&from).map_err(|error| self.inspect(&from, error))?;
            let file_type = metadata.file_type();
            if file_type.is_dir() {
                self.dir(&from, &to, &metadata)?;
            } else if file_type.is_file() {
                self.file(&from, &to, &metadata)?;
            } else if file_type.is_symlink() {
                let target = fs::read_link(&from).map_err(|error| self.inspect(&from, error))?;
                std::os::unix::fs::symlink(&target, &to).map_err(|error| self.write(&to, error))?;
                set_mtime_nofollow(&to, metadata.mtime(), nanos(&metadata))
                    .map_err(|error| self.write(&to, error))?;
                self.entries += 1;
            } else {
                let kind = if file_type.is_fifo() {
                    "fifo"
                } else if file_type.is_socket() {
                    "socket"
                } else {
                    "device node"
                };
                return Err(UnpackError::UnsupportedFile {
                    path: from,
                    kind: kind.to_owned(),
                });
            }
        }
        fs::set_permissions(to, Permissions::from_mode(mode))
            .map_err(|error| self.write(to, error))?;
        set_mtime_nofollow(to, metadata.mtime(), nanos(metadata))
            .map_err(|error| self.write(to, error))
    }

    fn file(&mut self, from: &Path, to: &Path, metadata: &fs::Metadata) -> Result<(), UnpackError> {
        let mode = (metadata.mode() & 0o777 & !self.umask) | 0o200;
        let mut input = fs::File::open(from).map_err(|error| self.inspect(from, error))?;
        let mut output = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(to)
            .map_err(|error| self.write(to, error))?;
        io::copy(&mut input, &mut output).map_err(|error| self.write(to, error))?;
        output
            .set_times(
                FileTimes::new().set_modified(system_time(metadata.mtime(), nanos(metadata))),
            )
            .map_err(|error| self.write(to, error))?;
        self.entries += 1;
        Ok(())
    }
}

fn nanos(metadata: &fs::Metadata) -> u32 {
    u32::try_from(metadata.mtime_nsec()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_store_hashes() {
        let hashed = OsStr::new("0c0bvqyzm2qcw7lfx4khw5ckxdsbj7p4-hello-2.12.tar.gz");
        assert_eq!(strip_hash(hashed), OsStr::new("hello-2.12.tar.gz"));
        assert_eq!(
            strip_hash(OsStr::new("hello-2.12")),
            OsStr::new("hello-2.12")
        );
        assert_eq!(
            strip_hash(OsStr::new("0c0bvqyzm2qcw7lfx4khw5ckxdsbj7p4")),
            OsStr::new("0c0bvqyzm2qcw7lfx4khw5ckxdsbj7p4")
        );
    }
}
