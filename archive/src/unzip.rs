//! Extracting a zip archive: [`unzip`] reads the central directory, then decompresses entry by
//! entry (never the whole archive in memory) through a [`Dest`].
//!
//! A zip archive is read from its end (the central directory), so it needs a seekable file
//! rather than a stream. Unix modes and symlinks come from the entries' external attributes (as
//! Info-ZIP's `unzip` does); the mtime is the extended-timestamp extra field (`UT`, Unix seconds)
//! when present, else the DOS date and time read as UTC, the time zone of a Nix build.

use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use zip::extra_fields::ExtraField;

use crate::dest::Dest;
use crate::UnpackError;

/// The file type bits of a Unix mode, and the value for a symlink.
const S_IFMT: u32 = 0o170_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;

/// The longest symlink target accepted (Linux's `PATH_MAX`).
const MAX_LINK: u64 = 4096;

/// Extracts every entry of the zip archive in `file` into `dest`; returns the number of
/// entries created.
pub(crate) fn unzip(file: File, archive: &Path, mut dest: Dest) -> Result<u64, UnpackError> {
    let zip_error = |source| UnpackError::Zip {
        archive: archive.to_owned(),
        source,
    };
    let mut zip =
        zip::ZipArchive::new(BufReader::with_capacity(128 * 1024, file)).map_err(zip_error)?;
    for index in 0..zip.len() {
        let mut entry = zip.by_index(index).map_err(zip_error)?;
        let path = PathBuf::from(entry.name());
        let relative = dest.relative(&path)?;
        let unix_mode = entry.unix_mode();
        let mtime = zip_mtime(&entry);
        let file_type = unix_mode
            .map(|mode| mode & S_IFMT)
            .filter(|kind| *kind != 0);
        match file_type {
            _ if entry.is_dir() => dest.dir(&path, &relative, unix_mode.unwrap_or(0o755), mtime)?,
            Some(S_IFDIR) => dest.dir(&path, &relative, unix_mode.unwrap_or(0o755), mtime)?,
            Some(S_IFLNK) => {
                let mut target = Vec::new();
                (&mut entry)
                    .take(MAX_LINK)
                    .read_to_end(&mut target)
                    .map_err(|source| UnpackError::ReadEntry {
                        archive: archive.to_owned(),
                        entry: path.clone(),
                        source,
                    })?;
                let target = PathBuf::from(<std::ffi::OsString as OsStringExt>::from_vec(target));
                dest.symlink(&path, &relative, &target, mtime.map(|time| (time, 0)))?;
            }
            None | Some(S_IFREG) => {
                let mode = unix_mode.unwrap_or(0o644);
                dest.file(
                    &path,
                    &relative,
                    mode,
                    mtime.map(|time| (time, 0)),
                    &mut entry,
                )?;
            }
            Some(other) => {
                return Err(UnpackError::UnsupportedEntry {
                    archive: archive.to_owned(),
                    entry: path,
                    kind: format!("file of type `{other:o}`"),
                })
            }
        }
    }
    dest.finish()
}

/// The entry's mtime in seconds since the epoch.
fn zip_mtime<R: Read>(entry: &zip::read::ZipFile<'_, R>) -> Option<i64> {
    let extended = entry.extra_data_fields().find_map(|field| match field {
        ExtraField::ExtendedTimestamp(timestamp) => timestamp.mod_time(),
        _ => None,
    });
    if let Some(seconds) = extended {
        return Some(i64::from(seconds));
    }
    let time = entry.last_modified()?;
    let days = days_from_civil(
        i64::from(time.year()),
        i64::from(time.month()),
        i64::from(time.day()),
    );
    Some(
        days * 86_400
            + i64::from(time.hour()) * 3600
            + i64::from(time.minute()) * 60
            + i64::from(time.second()),
    )
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's algorithm,
/// <https://howardhinnant.github.io/date_algorithms.html#days_from_civil>).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
    }
}
