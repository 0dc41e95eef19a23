//! kiln's file-system primitives, shared by the unpacker (`kiln-archive`), the state archives
//! (`kiln-state`), the file steps (`kiln-phases`) and the fixup (`kiln-fixup`), so that each of
//! these rules has one implementation:
//!
//! - [`dir`]: directory listings in bytewise order, so every walk is deterministic.
//! - [`meta`]: exact permission bits and times, set without following symlinks, and the
//!   process umask.
//! - [`replace`]: atomic replacement of a file or a symlink, and a rename that never replaces.
//! - [`tree`]: [`TreeWriter`], which creates files, directories and links under one root and
//!   never writes outside it, symlinks included.
//! - [`stream`]: [`ThreadedReader`], a decoder running on its own thread behind a bounded
//!   channel, and [`read_full`].
//! - [`sparse`]: where a sparse file's data is ([`data_segments`]), so copies keep its holes.
//!
//! Functions that do one system call on one path return [`std::io::Error`] and leave naming the
//! path to the caller's own error type; [`TreeWriter`] returns [`TreeError`], which says which
//! rule refused an entry.

#![warn(missing_docs)]

pub mod dir;
pub mod meta;
pub mod replace;
pub mod sparse;
pub mod stream;
pub mod tree;

pub use dir::{parent_or_dot, read_dir_sorted};
pub use meta::{
    copy_times_nofollow, permission_bits, process_umask, set_mode, set_mtime_nofollow, system_time,
};
pub use replace::{rename_noreplace, replace_file, replace_symlink};
pub use sparse::data_segments;
pub use stream::{read_full, ThreadedReader};
pub use tree::{DirMetadataError, Existing, PendingDirs, TreeError, TreeWriter};
