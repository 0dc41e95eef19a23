//! Scratch directories for the targets that write files, and the check that nothing outside
//! the target directory changed.
//!
//! [`Scratch`] is a temporary directory laid out as
//!
//! ```text
//! <tmp>/sentinel/keep            a file that must keep its content, mode and link count
//! <tmp>/sentinel/dir/keep        the same, one level down
//! <tmp>/sentinel-file            a file next to the target
//! <tmp>/a/b/<target>             the directory the code under test may write to
//! ```
//!
//! so that an escape with `..` (up to three levels), through a symlink to `sentinel`, or a hard
//! link to a sentinel file shows up in a [`Snapshot`] of everything but the target. The target
//! sits two levels down so that `../..` still lands inside the scratch directory.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// Files larger than this are recorded by size and a cheap hash only.
const SMALL_FILE: u64 = 64 * 1024;

/// One path's facts, as a [`Snapshot`] records them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A directory with its permission bits.
    Dir {
        /// `st_mode & 0o7777`.
        mode: u32,
    },
    /// A regular file.
    File {
        /// `st_mode & 0o7777`.
        mode: u32,
        /// `st_nlink`: a new hard link to a sentinel file changes it.
        nlink: u64,
        /// The content (or its FNV-1a hash and size for large files).
        content: Vec<u8>,
    },
    /// A symlink and its target.
    Symlink {
        /// The link's content.
        target: PathBuf,
    },
    /// Anything else (none is ever created by the scratch layout).
    Other,
}

/// Every path under a root (relative to it), except excluded subtrees; symlinks not followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot(pub BTreeMap<PathBuf, Node>);

impl Snapshot {
    /// Records everything under `root` except the subtrees at the given absolute paths.
    pub fn take(root: &Path, exclude: &[&Path]) -> Snapshot {
        let mut nodes = BTreeMap::new();
        walk(root, root, exclude, &mut nodes);
        Snapshot(nodes)
    }

    /// Panics with the differences when `self` (before) and `after` differ.
    pub fn assert_unchanged(&self, after: &Snapshot, what: &str) {
        if self == after {
            return;
        }
        let mut differences = Vec::new();
        for (path, node) in &self.0 {
            match after.0.get(path) {
                None => differences.push(format!("removed: {}", path.display())),
                Some(other) if other != node => {
                    differences.push(format!("changed: {} {node:?} -> {other:?}", path.display()))
                }
                Some(_) => {}
            }
        }
        for path in after.0.keys() {
            if !self.0.contains_key(path) {
                differences.push(format!("appeared: {}", path.display()));
            }
        }
        panic!("{what} changed:\n{}", differences.join("\n"));
    }
}

fn walk(root: &Path, dir: &Path, exclude: &[&Path], nodes: &mut BTreeMap<PathBuf, Node>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if exclude.contains(&path.as_path()) {
            continue;
        }
        let relative = path.strip_prefix(root).unwrap_or(&path).to_owned();
        let Ok(metadata) = fs::symlink_metadata(&path) else {
            continue;
        };
        let mode = metadata.mode() & 0o7777;
        let node = if metadata.is_symlink() {
            Node::Symlink {
                target: fs::read_link(&path).unwrap_or_default(),
            }
        } else if metadata.is_dir() {
            walk(root, &path, exclude, nodes);
            Node::Dir { mode }
        } else if metadata.is_file() {
            let content = if metadata.len() <= SMALL_FILE {
                fs::read(&path).unwrap_or_default()
            } else {
                let bytes = fs::read(&path).unwrap_or_default();
                let mut summary = fnv1a(&bytes).to_le_bytes().to_vec();
                summary.extend_from_slice(&metadata.len().to_le_bytes());
                summary
            };
            Node::File {
                mode,
                nlink: metadata.nlink(),
                content,
            }
        } else {
            Node::Other
        };
        nodes.insert(relative, node);
    }
}

/// The 64-bit FNV-1a hash of `bytes`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A temporary directory with sentinels around a target directory; see the module docs.
pub struct Scratch {
    dir: tempfile::TempDir,
    /// `<tmp>/a/b`: the target's parent, where inputs (archives, patches, states) are written.
    pub work: PathBuf,
}

impl Scratch {
    /// Creates the layout; the target directory itself is left to the caller (some APIs want
    /// it to exist, some create it).
    pub fn new() -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix("kiln-fuzz")
            .tempdir()
            .expect("a temporary directory");
        let root = dir.path();
        fs::create_dir_all(root.join("sentinel/dir")).expect("sentinel directories");
        fs::write(root.join("sentinel/keep"), b"sentinel\n").expect("a sentinel file");
        fs::write(root.join("sentinel/dir/keep"), b"sentinel\n").expect("a sentinel file");
        fs::write(root.join("sentinel-file"), b"sentinel\n").expect("a sentinel file");
        let work = root.join("a/b");
        fs::create_dir_all(&work).expect("the work directory");
        Scratch { dir, work }
    }

    /// The scratch root.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A snapshot of the scratch directory without the given subtrees.
    pub fn snapshot(&self, exclude: &[&Path]) -> Snapshot {
        Snapshot::take(self.root(), exclude)
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::new()
    }
}

/// Makes every directory under `root` writable and searchable again, so that a tree with
/// read-only directories (as archives and states may hold) can be removed afterwards.
pub fn make_removable(root: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let Ok(metadata) = fs::symlink_metadata(root) else {
        return;
    };
    if !metadata.is_dir() {
        return;
    }
    let _ = fs::set_permissions(root, fs::Permissions::from_mode(0o700));
    if let Ok(entries) = fs::read_dir(root) {
        for entry in entries.flatten() {
            make_removable(&entry.path());
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        make_removable(self.dir.path());
    }
}
