//! kiln's state archives: the state of a build after a phase — its build directory, partial
//! outputs, exported environment and working directory — packed so that the next phase can run
//! in another derivation (split mode) or later on another machine (local mode).
//!
//! A state is a directory with two files: the payload `state.tar.zst` and its [`Manifest`],
//! `manifest.json`. [`pack`] writes one; [`restore`] puts one back, verifying the payload
//! before anything lands in its final place and leaving nothing behind when it fails;
//! [`read_manifest`], [`list`] and [`extract`] serve `kiln state inspect` and
//! `kiln state extract`. A tar archive, not a plain store directory, because the Nix store
//! resets mtimes and `make` relies on them. [`bytes_path`] writes paths into JSON byte for
//! byte: the working directory here, kiln's phase request and response elsewhere.
//!
//! # Format
//!
//! The payload is one zstd stream (frame checksums on) of one tar stream (GNU format: long
//! names and long link targets use GNU `L`/`K` entries). Its entries:
//!
//! - `build` (a directory), then `build/REL` for everything in the build directory except the
//!   excluded top-level names;
//! - for each output that exists, in name order, `outputs/NAME` (a directory, a file or a
//!   symlink), then `outputs/NAME/REL` when it is a directory.
//!
//! Entries are regular files, directories, symlinks and hard links (a file with several links
//! inside one root is stored once, later paths as tar `Link` entries pointing at the first).
//! Sockets are skipped, like GNU tar does; FIFOs and devices make [`pack`] fail.
//!
//! The bytes are deterministic: the same tree packed with the same level by the same kiln gives
//! the same payload, whatever the number of threads. Within a directory entries are sorted
//! bytewise by name and each directory comes right before its contents; owners are `0:0`
//! without names; the mode (permission bits) and the mtime (seconds) are kept; there are no
//! atimes, ctimes or PAX time records. The zstd parameters are fixed (see the `payload` module
//! on why the worker count does not change the bytes).
//!
//! # Example
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::path::PathBuf;
//!
//! use kiln_state::{pack, restore, ManifestBase, PackInput};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let scratch = tempfile::tempdir()?;
//! let build = scratch.path().join("build");
//! std::fs::create_dir_all(build.join("hello-2.10"))?;
//! std::fs::write(build.join("hello-2.10/hello.o"), "object code")?;
//! std::fs::write(build.join(".attrs.json"), "{}")?; // Nix writes it anew each time
//! let outputs = BTreeMap::from([("out".to_owned(), scratch.path().join("out"))]);
//!
//! let state = scratch.path().join("state");
//! std::fs::create_dir(&state)?;
//! let input = PackInput {
//!     exclude: &[".attrs.json"],
//!     ..PackInput::new(&build, &outputs)
//! };
//! let base = ManifestBase {
//!     plan_hash: "0".repeat(64),
//!     phase: "build".to_owned(),
//!     workdir: "hello-2.10".into(),
//!     env: BTreeMap::from([("CFLAGS".to_owned(), "-O2".to_owned())]),
//! };
//! let packed = pack(&input, base, &state)?;
//!
//! // The next derivation: a fresh build directory where Nix put its own `.attrs.json`.
//! let next = scratch.path().join("next");
//! std::fs::create_dir(&next)?;
//! std::fs::write(next.join(".attrs.json"), "{}")?;
//! let restored = restore(&state, &next, &outputs)?;
//! assert_eq!(restored, packed);
//! assert_eq!(std::fs::read(next.join(restored.workdir).join("hello.o"))?, b"object code");
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod bytes_path;
mod error;
mod list;
mod manifest;
mod pack;
mod payload;
mod read;
mod restore;

pub use error::{StateError, UnsafeEntry};
pub use list::{list, EntryKind, EntrySummary};
pub use manifest::{
    read_manifest, Manifest, ManifestBase, FORMAT, KILN_VERSION, MANIFEST_FILE, PAYLOAD_FILE,
};
pub use pack::{pack, PackInput};
pub use payload::DEFAULT_LEVEL;
pub use restore::{extract, restore};
