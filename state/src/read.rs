//! Reading a payload against its manifest: [`each_entry`] opens `state.tar.zst`, checks its size,
//! hands every tar entry to a callback while the compressed bytes are hashed on the
//! decompression thread, and checks the SHA-256 at the end. Callers only make their work final
//! after it returns `Ok`.
//!
//! When anything fails on the way (a decode error, a malformed header, a refused entry), the
//! payload is hashed once more from the start: if the hash is wrong, the damage is the real
//! cause and [`StateError::PayloadHash`] is returned instead of the symptom.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::payload::{self, hash_file, PayloadReader};
use crate::{Manifest, StateError};

/// One entry of the payload, as handed to the [`each_entry`] callback.
pub(crate) type Entry<'a> = tar::Entry<'a, PayloadReader>;

/// Runs `visit` on every entry of the payload at `payload` and verifies the payload against
/// `manifest`; see the module documentation.
pub(crate) fn each_entry(
    payload: &Path,
    manifest: &Manifest,
    mut visit: impl FnMut(&mut Entry<'_>) -> Result<(), StateError>,
) -> Result<(), StateError> {
    let result = (|| {
        let reader = open(payload, manifest)?;
        let read_error = |source| StateError::ReadPayload {
            path: payload.to_owned(),
            source,
        };
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries().map_err(read_error)? {
            let mut entry = entry.map_err(read_error)?;
            visit(&mut entry)?;
            // Whatever the callback left unread is skipped by the tar reader.
        }
        let (sha256, size) = archive.into_inner().finish().map_err(read_error)?;
        check(payload, manifest, &sha256, size)
    })();
    result.map_err(|error| explain(payload, manifest, error))
}

/// Opens the payload, checks its size against the manifest and starts decompressing it.
fn open(payload: &Path, manifest: &Manifest) -> Result<PayloadReader, StateError> {
    let open_error = |source| StateError::OpenPayload {
        path: payload.to_owned(),
        source,
    };
    let file = File::open(payload).map_err(open_error)?;
    let found = file.metadata().map_err(open_error)?.len();
    if found != manifest.payload_size {
        return Err(StateError::PayloadSize {
            path: payload.to_owned(),
            expected: manifest.payload_size,
            found,
        });
    }
    payload::reader(file).map_err(|source| StateError::SpawnThread { source })
}

fn check(payload: &Path, manifest: &Manifest, sha256: &str, size: u64) -> Result<(), StateError> {
    if size != manifest.payload_size {
        return Err(StateError::PayloadSize {
            path: payload.to_owned(),
            expected: manifest.payload_size,
            found: size,
        });
    }
    if sha256 != manifest.payload_sha256 {
        return Err(StateError::PayloadHash {
            path: payload.to_owned(),
            expected: manifest.payload_sha256.clone(),
            found: sha256.to_owned(),
        });
    }
    Ok(())
}

/// Replaces the error of a failed read with [`StateError::PayloadHash`] when the payload turns
/// out to be damaged.
fn explain(payload: &Path, manifest: &Manifest, error: StateError) -> StateError {
    if matches!(
        error,
        StateError::PayloadHash { .. }
            | StateError::PayloadSize { .. }
            | StateError::OpenPayload { .. }
    ) {
        return error;
    }
    match hash_file(payload) {
        Ok((sha256, _)) if sha256 != manifest.payload_sha256 => StateError::PayloadHash {
            path: payload.to_owned(),
            expected: manifest.payload_sha256.clone(),
            found: sha256,
        },
        _ => error,
    }
}

/// Why [`copy_entry`] stopped.
pub(crate) enum CopyError {
    /// Reading the entry (the payload) failed.
    Read(std::io::Error),
    /// Writing the destination failed.
    Write(std::io::Error),
}

/// Copies the rest of `entry` into `out` through `buffer`.
pub(crate) fn copy_entry(
    entry: &mut impl Read,
    out: &mut impl std::io::Write,
    buffer: &mut [u8],
) -> Result<(), CopyError> {
    loop {
        let read = match entry.read(buffer) {
            Ok(0) => return Ok(()),
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(CopyError::Read(error)),
        };
        out.write_all(&buffer[..read]).map_err(CopyError::Write)?;
    }
}
