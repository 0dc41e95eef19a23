//! Packing a state: [`pack`] walks the build directory and the partial outputs and streams them
//! as one deterministic tar stream through a multithreaded zstd encoder into
//! `state.tar.zst`, hashing the compressed bytes on the way, then writes `manifest.json`.
//!
//! The walk holds one sorted directory listing per level of the current path, never the whole
//! tree; file contents pass through a fixed 256 KiB buffer. See the crate documentation
//! (`# Format`) for what the entries look like and why the bytes are deterministic.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, Metadata};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use crate::manifest::{to_json, KILN_VERSION, MANIFEST_FILE, PAYLOAD_FILE};
use crate::payload::{self, HashingWriter, DEFAULT_LEVEL};
use crate::{Manifest, ManifestBase, StateError, FORMAT};

/// What [`pack`] packs.
#[derive(Debug, Clone, Copy)]
pub struct PackInput<'a> {
    /// The build directory; stored as `build/`. MUST be a directory, and MUST NOT contain the
    /// destination directory unless that is excluded.
    pub build_dir: &'a Path,
    /// Top-level names in the build directory to leave out, e.g. `.attrs.json` and `env-vars`,
    /// which Nix writes anew for every derivation.
    pub exclude: &'a [&'a str],
    /// Output name → the path the partial output lives at; each is stored as `outputs/NAME`
    /// when it exists (a directory, a file or a symlink) and left out when it does not yet.
    /// These paths are recorded in [`Manifest::outputs`], so they MUST be UTF-8.
    pub outputs: &'a BTreeMap<String, PathBuf>,
    /// Compression workers; `0` is taken as `1`. Only speed depends on it, never the bytes.
    pub threads: u32,
    /// The zstd level (1–19; [`DEFAULT_LEVEL`] is 3). The bytes depend on it.
    pub level: i32,
}

impl<'a> PackInput<'a> {
    /// Packs `build_dir` and `outputs` with no exclusions, one worker per available CPU and
    /// the default level.
    pub fn new(build_dir: &'a Path, outputs: &'a BTreeMap<String, PathBuf>) -> PackInput<'a> {
        PackInput {
            build_dir,
            exclude: &[],
            outputs,
            threads: std::thread::available_parallelism()
                .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX)),
            level: DEFAULT_LEVEL,
        }
    }
}

/// Bytes read from a file per `read(2)`.
const READ_BUFFER: usize = 256 * 1024;
/// Bytes gathered before they are handed to the zstd encoder.
const WRITE_BUFFER: usize = 1024 * 1024;

/// Packs the build directory and the outputs of `input` into `dest_dir/state.tar.zst` and
/// writes `dest_dir/manifest.json`; returns the manifest.
///
/// The payload is written to a temporary file in `dest_dir` and renamed into place when it is
/// complete, so a failed pack leaves no payload behind; existing `state.tar.zst` and
/// `manifest.json` files are replaced.
pub fn pack(
    input: &PackInput<'_>,
    base: ManifestBase,
    dest_dir: &Path,
) -> Result<Manifest, StateError> {
    let manifest_path = dest_dir.join(MANIFEST_FILE);
    let payload_path = dest_dir.join(PAYLOAD_FILE);
    let mut outputs = BTreeMap::new();
    for (name, path) in input.outputs {
        let text = path.to_str().ok_or_else(|| StateError::NonUtf8Output {
            name: name.clone(),
            path: path.clone(),
        })?;
        outputs.insert(name.clone(), text.to_owned());
    }
    let mut manifest = Manifest {
        format: FORMAT,
        kiln_version: KILN_VERSION.to_owned(),
        plan_hash: base.plan_hash,
        phase: base.phase,
        // Filled in below; a well-formed value so that the caller's fields can be checked now.
        payload_sha256: "0".repeat(64),
        payload_size: 0,
        workdir: base.workdir,
        env: base.env,
        outputs,
    };
    manifest.validate(&manifest_path)?;

    let temp = tempfile::Builder::new()
        .prefix(".state.tar.zst.")
        .tempfile_in(dest_dir)
        .map_err(|source| StateError::CreatePayload {
            path: dest_dir.to_owned(),
            source,
        })?;
    let write_error = |source| StateError::WritePayload {
        path: payload_path.clone(),
        source,
    };
    let file = temp.as_file().try_clone().map_err(write_error)?;
    let encoder = payload::encoder(HashingWriter::new(file), input.level, input.threads)
        .map_err(write_error)?;
    let mut packer = Packer {
        builder: tar::Builder::new(BufWriter::with_capacity(WRITE_BUFFER, encoder)),
        buffer: vec![0; READ_BUFFER],
        links: HashMap::new(),
        payload: payload_path.clone(),
    };
    packer.root(input.build_dir, Path::new("build"), input.exclude, true)?;
    for (name, path) in input.outputs {
        match std::fs::symlink_metadata(path) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            _ => packer.root(path, &Path::new("outputs").join(name), &[], false)?,
        }
    }
    let hashing = packer
        .builder
        .into_inner()
        .and_then(|buffered| {
            buffered
                .into_inner()
                .map_err(io::IntoInnerError::into_error)
        })
        .and_then(|encoder| encoder.finish())
        .map_err(write_error)?;
    let (_, sha256, size) = hashing.finish();
    temp.persist(&payload_path)
        .map_err(|error| write_error(error.error))?;
    manifest.payload_sha256 = sha256;
    manifest.payload_size = size;

    if let Err(error) = write_manifest(&manifest, dest_dir, &manifest_path) {
        // A payload without its manifest is useless; do not leave it half-done.
        let _ = std::fs::remove_file(&payload_path);
        return Err(error);
    }
    Ok(manifest)
}

/// Writes the manifest through a temporary file renamed into place.
fn write_manifest(manifest: &Manifest, dest_dir: &Path, path: &Path) -> Result<(), StateError> {
    let write_error = |source| StateError::WriteManifest {
        path: path.to_owned(),
        source,
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".manifest.json.")
        .tempfile_in(dest_dir)
        .map_err(write_error)?;
    temp.write_all(&to_json(manifest)).map_err(write_error)?;
    temp.persist(path)
        .map_err(|error| write_error(error.error))?;
    Ok(())
}

/// The header every entry starts from: GNU format, owner `0:0` without names, no atime or
/// ctime; only the type, mode, mtime and size vary.
fn header(kind: EntryType, metadata: &Metadata, size: u64) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(metadata.mode() & 0o7777);
    // Times before 1970 cannot be stored in a GNU header's octal field; they become 0.
    header.set_mtime(u64::try_from(metadata.mtime()).unwrap_or(0));
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header
}

/// Walks trees into one tar stream.
struct Packer {
    builder: tar::Builder<BufWriter<zstd::stream::write::Encoder<'static, HashingWriter<File>>>>,
    buffer: Vec<u8>,
    /// `(dev, ino)` of regular files with more than one link → the entry path they were first
    /// stored under, within the current root. Links across roots are stored as copies: the
    /// roots are restored in different places, possibly on different file systems.
    links: HashMap<(u64, u64), PathBuf>,
    payload: PathBuf,
}

impl Packer {
    fn write_error(&self, source: io::Error) -> StateError {
        StateError::WritePayload {
            path: self.payload.clone(),
            source,
        }
    }

    /// Stores `path` as `entry` and, if it is a directory, everything under it; top-level names
    /// in `exclude` are left out.
    fn root(
        &mut self,
        path: &Path,
        entry: &Path,
        exclude: &[&str],
        must_be_dir: bool,
    ) -> Result<(), StateError> {
        self.links.clear();
        let metadata = std::fs::symlink_metadata(path).map_err(|source| StateError::ReadTree {
            path: path.to_owned(),
            source,
        })?;
        if must_be_dir && !metadata.is_dir() {
            return Err(StateError::ReadTree {
                path: path.to_owned(),
                source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
            });
        }
        if self.entry(path, entry, &metadata)? {
            self.dir(path, entry, exclude)?;
        }
        Ok(())
    }

    /// Stores the children of the directory `path` (entry path `entry`), sorted bytewise by
    /// name, each directory followed by its contents.
    fn dir(&mut self, path: &Path, entry: &Path, exclude: &[&str]) -> Result<(), StateError> {
        let read_error = |source| StateError::ReadTree {
            path: path.to_owned(),
            source,
        };
        let names = kiln_fsio::read_dir_sorted(path).map_err(read_error)?;
        for name in names {
            if exclude.iter().any(|excluded| name == **excluded) {
                continue;
            }
            let child = path.join(&name);
            let child_entry = entry.join(&name);
            let metadata =
                std::fs::symlink_metadata(&child).map_err(|source| StateError::ReadTree {
                    path: child.clone(),
                    source,
                })?;
            if self.entry(&child, &child_entry, &metadata)? {
                self.dir(&child, &child_entry, &[])?;
            }
        }
        Ok(())
    }

    /// Stores one file system object (not what is below it); returns whether it is a
    /// directory to descend into.
    fn entry(
        &mut self,
        path: &Path,
        entry: &Path,
        metadata: &Metadata,
    ) -> Result<bool, StateError> {
        let file_type = metadata.file_type();
        if file_type.is_dir() {
            let mut header = header(EntryType::Directory, metadata, 0);
            self.builder
                .append_data(&mut header, entry, io::empty())
                .map_err(|source| self.write_error(source))?;
            return Ok(true);
        }
        if file_type.is_symlink() {
            let target = std::fs::read_link(path).map_err(|source| StateError::ReadTree {
                path: path.to_owned(),
                source,
            })?;
            let mut header = header(EntryType::Symlink, metadata, 0);
            self.builder
                .append_link(&mut header, entry, target)
                .map_err(|source| self.write_error(source))?;
            return Ok(false);
        }
        if file_type.is_file() {
            self.file(path, entry, metadata)?;
            return Ok(false);
        }
        let kind = if file_type.is_socket() {
            // Like GNU tar: a socket belongs to a process that is gone; it cannot be restored.
            return Ok(false);
        } else if file_type.is_fifo() {
            "FIFO"
        } else if file_type.is_char_device() {
            "character device"
        } else if file_type.is_block_device() {
            "block device"
        } else {
            "special file"
        };
        Err(StateError::SpecialFile {
            path: path.to_owned(),
            kind,
        })
    }

    /// Stores a regular file, or a hard link to where it was first stored.
    fn file(&mut self, path: &Path, entry: &Path, metadata: &Metadata) -> Result<(), StateError> {
        if metadata.nlink() > 1 {
            let key = (metadata.dev(), metadata.ino());
            if let Some(first) = self.links.get(&key) {
                let first = first.clone();
                let mut header = header(EntryType::Link, metadata, 0);
                return self
                    .builder
                    .append_link(&mut header, entry, first)
                    .map_err(|source| self.write_error(source));
            }
            self.links.insert(key, entry.to_owned());
        }
        let file = File::open(path).map_err(|source| StateError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        let size = metadata.len();
        let mut header = header(EntryType::Regular, metadata, size);
        let mut reader = ExactReader {
            file,
            size,
            remaining: size,
            buffer: &mut self.buffer,
            start: 0,
            end: 0,
            problem: None,
        };
        let appended = self.builder.append_data(&mut header, entry, &mut reader);
        let problem = reader.problem.take();
        match (appended, problem) {
            (Ok(()), _) => Ok(()),
            (Err(_), Some(Problem::Read(source))) => Err(StateError::ReadFile {
                path: path.to_owned(),
                source,
            }),
            (Err(_), Some(Problem::Shrank { found })) => Err(StateError::FileChanged {
                path: path.to_owned(),
                expected: size,
                found,
            }),
            (Err(source), None) => Err(self.write_error(source)),
        }
    }
}

/// Why reading a file for the archive failed.
enum Problem {
    Read(io::Error),
    Shrank { found: u64 },
}

/// Reads exactly `size` bytes of a file in large reads and hands them out in whatever pieces
/// the tar writer asks for. A file that ends early is an error (the header already promised
/// `size` bytes); bytes past `size` (a file that grew) are not read.
struct ExactReader<'b> {
    file: File,
    size: u64,
    remaining: u64,
    buffer: &'b mut [u8],
    start: usize,
    end: usize,
    /// The failure behind an error returned to the tar writer, kept to report it precisely.
    problem: Option<Problem>,
}

impl Read for ExactReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.start == self.end {
            if self.remaining == 0 {
                return Ok(0);
            }
            let want = usize::try_from(self.remaining)
                .unwrap_or(usize::MAX)
                .min(self.buffer.len());
            let read = loop {
                match self.file.read(&mut self.buffer[..want]) {
                    Ok(read) => break read,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(error) => {
                        let message = error.to_string();
                        self.problem = Some(Problem::Read(error));
                        return Err(io::Error::other(message));
                    }
                }
            };
            if read == 0 {
                self.problem = Some(Problem::Shrank {
                    found: self.size - self.remaining,
                });
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
            self.remaining -= read as u64;
            self.start = 0;
            self.end = read;
        }
        let count = out.len().min(self.end - self.start);
        out[..count].copy_from_slice(&self.buffer[self.start..self.start + count]);
        self.start += count;
        Ok(count)
    }
}
