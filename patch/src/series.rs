//! Debian's quilt series: [`read_quilt_series`] reads `debian/patches/series`.
//!
//! # Format
//!
//! One patch per line, a path relative to the patches directory, optionally followed by
//! `-pN` (the strip level; default `-p1`). `#` starts a comment, at the start of a line or after
//! whitespace; blank lines are skipped. This is what `dpkg-source` and quilt read.
//!
//! # Hostile input
//!
//! The series and the patches directory come with the source, which kiln does not trust. The
//! directory itself is the caller's (it may be reached through symlinks); below it, the rule of
//! the source tree applies (the `tree` module): `series` is opened without following a symlink
//! and must be a regular file, and each patch it names must be relative and free of `..`, and
//! is resolved one component at a time without following any symlink, wherever it points, to a
//! regular file. So a series cannot hand out `../../../etc/shadow`, a symlink to it, or a FIFO
//! that would block the build. The errors name the series file and the line.
//!
//! The patches are checked when the series is read and returned as paths, which
//! [`apply_patch_file`](crate::apply_patch_file) opens again later. In between, only the
//! earlier patches of the series run, and a patch never creates a symlink (see
//! [`PatchError::UnsupportedMode`]), so what was checked is what is read.

use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use crate::tree::{self, Refusal, Tree};
use crate::{FileKind, PatchError, PatchOptions, SeriesRefusal};

/// The patches listed in `patches_dir/series`, in order, each with its options; see the
/// module documentation.
///
/// A missing `series` file (or patches directory) means no patches, as for `dpkg-source`. An
/// unreadable one, one that is not a regular file, an option other than `-pN`, or a patch that
/// is missing or not a regular file inside `patches_dir` (reached without a symlink) is an
/// error.
pub fn read_quilt_series(patches_dir: &Path) -> Result<Vec<(PathBuf, PatchOptions)>, PatchError> {
    let path = patches_dir.join("series");
    let read_error = |source| PatchError::ReadSeries {
        path: path.clone(),
        source,
    };
    let dir = match Tree::open(patches_dir) {
        Ok(dir) => dir,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(read_error(source)),
    };
    let mut file = match dir.open_file(Path::new("series")) {
        Ok(Some((file, _))) => file,
        Ok(None) => return Ok(Vec::new()),
        Err(Refusal::NotRegular(kind)) => return Err(PatchError::SeriesNotRegular { path, kind }),
        Err(Refusal::Io { source, .. }) => return Err(read_error(source)),
        // A single component has no directory on the way.
        Err(Refusal::ThroughSymlink(_) | Refusal::NotADirectory(_)) => {
            return Err(read_error(io::ErrorKind::InvalidInput.into()))
        }
    };
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(read_error)?;

    let mut patches = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = match line.find('#') {
            Some(0) => "",
            Some(hash) if line[..hash].ends_with(char::is_whitespace) => &line[..hash],
            _ => line,
        };
        let mut words = line.split_whitespace();
        let Some(name) = words.next() else {
            continue;
        };
        let mut options = PatchOptions::default();
        for word in words {
            match word.strip_prefix("-p").and_then(|level| level.parse().ok()) {
                Some(strip) => options.strip = strip,
                None => {
                    return Err(PatchError::SeriesOption {
                        path,
                        line: index + 1,
                        option: word.to_owned(),
                    })
                }
            }
        }
        let relative = check_entry(&dir, name).map_err(|refused| match refused {
            Entry::Refused(refusal) => PatchError::SeriesEntry {
                path: path.clone(),
                line: index + 1,
                name: name.to_owned(),
                refusal,
            },
            Entry::Io(source) => PatchError::ReadSeriesEntry {
                path: path.clone(),
                line: index + 1,
                patch: patches_dir.join(name),
                source,
            },
        })?;
        patches.push((patches_dir.join(relative), options));
    }
    Ok(patches)
}

/// Why an entry of the series cannot be used.
enum Entry {
    Refused(SeriesRefusal),
    Io(io::Error),
}

/// The patch `name` of the series, relative to the patches directory `dir`, once checked to be
/// a regular file there, reached without a symlink.
fn check_entry(dir: &Tree, name: &str) -> Result<PathBuf, Entry> {
    let relative = tree::relative(Path::new(name)).ok_or(Entry::Refused(SeriesRefusal::Outside))?;
    if relative.as_os_str().is_empty() {
        // `.`: the directory itself.
        return Err(Entry::Refused(SeriesRefusal::NotRegular(
            FileKind::Directory,
        )));
    }
    match dir.open_file(&relative) {
        Ok(Some(_)) => Ok(relative),
        Ok(None) => Err(Entry::Refused(SeriesRefusal::Missing)),
        Err(Refusal::ThroughSymlink(link)) => {
            Err(Entry::Refused(SeriesRefusal::ThroughSymlink(link)))
        }
        Err(Refusal::NotADirectory(parent)) => {
            Err(Entry::Refused(SeriesRefusal::NotADirectory(parent)))
        }
        Err(Refusal::NotRegular(kind)) => Err(Entry::Refused(SeriesRefusal::NotRegular(kind))),
        Err(Refusal::Io { source, .. }) => Err(Entry::Io(source)),
    }
}
