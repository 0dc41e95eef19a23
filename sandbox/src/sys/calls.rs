//! The [`Sys`] trait: every operating-system call the sandbox makes, and [`FileKind`], what a
//! host path is.

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

/// What a path is, for choosing its mount point and bind mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A directory.
    Dir,
    /// A regular file (or a fifo or socket: anything mounted on an empty file).
    File,
    /// A character or block device.
    Device,
    /// A symbolic link (never followed by [`Sys::kind`]).
    Symlink,
}

/// The calls the sandbox makes. Methods that change the system return [`io::Error`]s with the
/// raw errno intact, so that failures can be explained (see [`Hint`](crate::Hint)).
pub trait Sys {
    /// What `path` is, without following a final symlink (`lstat(2)`).
    fn kind(&self, path: &Path) -> io::Result<FileKind>;
    /// `path` with every symlink resolved (`realpath(3)`).
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf>;
    /// The target of the symlink `path`.
    fn read_link(&self, path: &Path) -> io::Result<PathBuf>;

    /// `unshare(2)`.
    fn unshare(&self, flags: CloneFlags) -> io::Result<()>;
    /// Writes `contents` to the existing or new file `path` in one `write(2)` (the id map files
    /// accept exactly one write).
    fn write_file(&self, path: &Path, contents: &[u8]) -> io::Result<()>;

    /// `mount(2)`.
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()>;
    /// `umount2(2)`.
    fn umount(&self, target: &Path, flags: MntFlags) -> io::Result<()>;
    /// `pivot_root(2)`.
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> io::Result<()>;
    /// The per-mount flags of the mount at `path` (`statvfs(3)`), as `mount(2)` flags.
    fn mount_flags(&self, path: &Path) -> io::Result<MsFlags>;
    /// The mount points strictly below `path`, parents first (`/proc/self/mountinfo`).
    fn submounts(&self, path: &Path) -> io::Result<Vec<PathBuf>>;

    /// Creates `path` and its missing parents as directories (mode 0755).
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Removes the empty directory `path`.
    fn remove_dir(&self, path: &Path) -> io::Result<()>;
    /// Creates an empty file at `path` unless something is there already.
    fn create_file(&self, path: &Path) -> io::Result<()>;
    /// Creates the symlink `link` pointing at `original`.
    fn symlink(&self, original: &Path, link: &Path) -> io::Result<()>;
    /// `chdir(2)`.
    fn chdir(&self, path: &Path) -> io::Result<()>;

    /// `sethostname(2)`.
    fn sethostname(&self, name: &str) -> io::Result<()>;
    /// Brings the loopback interface `lo` up (`ip link set lo up`).
    fn loopback_up(&self) -> io::Result<()>;
}
