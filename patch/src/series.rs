//! Debian's quilt series: [`read_quilt_series`] reads `debian/patches/series`, and
//! [`read_quilt_series_under`] reads it from a directory named below the source tree.
//!
//! # Format
//!
//! One patch per line, a path relative to the patches directory, optionally followed by
//! `-pN` (the strip level; default `-p1`). `#` starts a comment, at the start of a line or after
//! whitespace; blank lines are skipped. This is what `dpkg-source` and quilt read.
//!
//! # Hostile input
//!
//! The series and the patches directory come with the source, which kiln does not trust. For
//! [`read_quilt_series`] the directory itself is the caller's (it may be reached through
//! symlinks); [`read_quilt_series_under`] takes the caller's root (the source tree, reached as
//! the caller names it) and the patches directory relative to it, and walks from the root to
//! the directory one component at a time without following any symlink, wherever it points
//! (a source tree whose `debian` is a symlink would otherwise hand kiln a series and patches
//! from anywhere). Below the patches directory, the rule of the source tree applies (the
//! `tree` module): `series` is opened without following a symlink and must be a regular file,
//! and each patch it names must be relative and free of `..`, and is resolved one component at
//! a time without following any symlink, wherever it points, to a regular file. So a series
//! cannot hand out `../../../etc/shadow`, a symlink to it, or a FIFO that would block the
//! build. The errors name the series file and, for an entry, the line.
//!
//! The patches are checked when the series is read and returned as paths, which
//! [`apply_patch_file`](crate::apply_patch_file) opens again later. In between, only the
//! earlier patches of the series run, and a patch never creates a symlink (see
//! [`PatchError::UnsupportedMode`]), so what was checked is what is read: neither a directory
//! on the way from the root nor a patch can have become a symlink.

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
/// error. `patches_dir` itself is the caller's: symlinks to it are followed. When the patches
/// directory comes with the source tree, name it with [`read_quilt_series_under`] instead.
pub fn read_quilt_series(patches_dir: &Path) -> Result<Vec<(PathBuf, PatchOptions)>, PatchError> {
    let dir = match Tree::open(patches_dir) {
        Ok(dir) => dir,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(PatchError::ReadSeries {
                path: patches_dir.join("series"),
                source,
            })
        }
    };
    Ok(read_series(&dir, patches_dir)?.unwrap_or_default())
}

/// The patches listed in the series `root/patches_dir/series`, where `patches_dir` (e.g.
/// `debian/patches`) comes with the source tree at `root`; `None` when there is no series
/// there. See the module documentation.
///
/// `root` is the caller's (symlinks to it are followed). `patches_dir` must be relative and
/// free of `..` ([`PatchError::SeriesOutside`] otherwise; it may be empty, for the root
/// itself); it is walked from `root` one component at a time without following any symlink,
/// wherever it points, even inside the tree: a symlink on the way, the patches directory
/// itself included, is refused with [`PatchError::SeriesThroughSymlink`] naming it, and
/// something that is not a directory with [`PatchError::SeriesNotADirectory`]. The series is
/// then read as [`read_quilt_series`] reads it, and the patches are returned as
/// `root/patches_dir/NAME`.
///
/// `None` means that the root, a directory on the way or the `series` file does not exist (no
/// patches, as for `dpkg-source`), so that the caller can say so.
pub fn read_quilt_series_under(
    root: &Path,
    patches_dir: &Path,
) -> Result<Option<Vec<(PathBuf, PatchOptions)>>, PatchError> {
    let Some(relative) = tree::relative(patches_dir) else {
        return Err(PatchError::SeriesOutside {
            root: root.to_owned(),
            dir: patches_dir.to_owned(),
        });
    };
    let full = if relative.as_os_str().is_empty() {
        root.to_owned()
    } else {
        root.join(&relative)
    };
    let path = full.join("series");
    let read_error = |source| PatchError::ReadSeries {
        path: path.clone(),
        source,
    };
    let top = match Tree::open(root) {
        Ok(top) => top,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(read_error(source)),
    };
    let dir = match top.subtree(&relative) {
        Ok(Some(dir)) => dir,
        Ok(None) => return Ok(None),
        Err(Refusal::ThroughSymlink(link)) => {
            return Err(PatchError::SeriesThroughSymlink { path, link })
        }
        Err(Refusal::NotADirectory(parent)) => {
            return Err(PatchError::SeriesNotADirectory { path, parent })
        }
        Err(Refusal::Io { source, .. }) => return Err(read_error(source)),
        // Only directories are walked.
        Err(Refusal::NotRegular(_)) => return Err(read_error(io::ErrorKind::InvalidInput.into())),
    };
    read_series(&dir, &full)
}

/// The patches listed in `series` in the patches directory `dir` (at `patches_dir`), or `None`
/// when there is no `series`.
fn read_series(
    dir: &Tree,
    patches_dir: &Path,
) -> Result<Option<Vec<(PathBuf, PatchOptions)>>, PatchError> {
    let path = patches_dir.join("series");
    let read_error = |source| PatchError::ReadSeries {
        path: path.clone(),
        source,
    };
    let mut file = match dir.open_file(Path::new("series")) {
        Ok(Some((file, _))) => file,
        Ok(None) => return Ok(None),
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
        let relative = check_entry(dir, name).map_err(|refused| match refused {
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
    Ok(Some(patches))
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
