//! Debian's quilt series: [`read_quilt_series`] reads `debian/patches/series`.
//!
//! # Format
//!
//! One patch per line, a path relative to the patches directory, optionally followed by
//! `-pN` (the strip level; default `-p1`). `#` starts a comment, at the start of a line or after
//! whitespace; blank lines are skipped. This is what `dpkg-source` and quilt read.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::{PatchError, PatchOptions};

/// The patches listed in `patches_dir/series`, in order, each with its options.
///
/// A missing `series` file means no patches, as for `dpkg-source`; an unreadable one, or an
/// option other than `-pN`, is an error.
pub fn read_quilt_series(patches_dir: &Path) -> Result<Vec<(PathBuf, PatchOptions)>, PatchError> {
    let path = patches_dir.join("series");
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(PatchError::ReadSeries { path, source }),
    };
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
        patches.push((patches_dir.join(name), options));
    }
    Ok(patches)
}
