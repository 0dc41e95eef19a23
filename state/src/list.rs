//! Listing a state for `kiln state inspect`: [`list`] reads every entry header of a verified
//! payload into an [`EntrySummary`], without writing anything.

use std::path::{Path, PathBuf};

use tar::EntryType;

use crate::manifest::{read_manifest, PAYLOAD_FILE};
use crate::read::each_entry;
use crate::StateError;

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link to [`EntrySummary::link`].
    Symlink,
    /// A hard link to the earlier entry [`EntrySummary::link`].
    HardLink,
    /// Any other tar entry type (kiln never writes one; [`restore`](crate::restore) refuses it).
    Other(String),
}

/// One entry of a payload, as [`list`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntrySummary {
    /// The entry path: `build/…` or `outputs/NAME/…`.
    pub path: PathBuf,
    /// What it is.
    pub kind: EntryKind,
    /// The permission bits as stored.
    pub mode: u32,
    /// The mtime in seconds since the epoch.
    pub mtime: u64,
    /// The content size in bytes (0 for everything but files).
    pub size: u64,
    /// The target of a symlink or hard link.
    pub link: Option<PathBuf>,
}

/// Lists the entries of the state in `dir`, in payload order, after checking the payload
/// against the manifest (a damaged payload is an error, not a partial list).
pub fn list(dir: &Path) -> Result<Vec<EntrySummary>, StateError> {
    let manifest = read_manifest(dir)?;
    let payload = dir.join(PAYLOAD_FILE);
    let mut entries = Vec::new();
    each_entry(&payload, &manifest, |entry| {
        let bad = |error: std::io::Error| StateError::ReadPayload {
            path: payload.clone(),
            source: error,
        };
        let header = entry.header();
        let kind = match header.entry_type() {
            EntryType::Regular => EntryKind::File,
            EntryType::Directory => EntryKind::Directory,
            EntryType::Symlink => EntryKind::Symlink,
            EntryType::Link => EntryKind::HardLink,
            other => EntryKind::Other(format!("{other:?}")),
        };
        let mode = header.mode().map_err(bad)?;
        let mtime = header.mtime().map_err(bad)?;
        let size = header.size().map_err(bad)?;
        let link = entry
            .link_name()
            .map_err(bad)?
            .map(|link| link.into_owned());
        let path = entry.path().map_err(bad)?.into_owned();
        entries.push(EntrySummary {
            path,
            kind,
            mode,
            mtime,
            size,
            link,
        });
        Ok(())
    })?;
    Ok(entries)
}
