//! The source tree as the patcher sees it: [`Tree`] reads, replaces and removes files under
//! one root, never following a symlink, so a hostile tree cannot make a patch read or change a
//! file outside it.
//!
//! The rules are kiln-archive's (`archive/src/dest.rs`), enforced with descriptors rather than
//! paths (its `Dest` is private to that crate, so the rules are restated here):
//!
//! - Paths arrive relative and checked: no `..`, not absolute (`PatchPlan::name` in the crate root).
//! - Every directory on the way is opened one component at a time with `openat(2)` and
//!   `O_NOFOLLOW | O_DIRECTORY`, relative to the descriptor of the one before, starting from the
//!   root's. A symlink there is refused ([`Refusal::ThroughSymlink`]), wherever it points, even
//!   inside the tree; something else that is not a directory is refused too
//!   ([`Refusal::NotADirectory`]). Missing directories are created with `mkdirat(2)` when
//!   writing, and mean "no such file" when reading.
//! - The last component is never followed: it is inspected with `fstatat(2)` and
//!   `AT_SYMLINK_NOFOLLOW`, and only a regular file is read ([`Refusal::NotRegular`] otherwise),
//!   opened with `O_NOFOLLOW` ("if the trailing component of pathname is a symbolic link, then
//!   the open fails", <https://man7.org/linux/man-pages/man2/open.2.html>) and `O_NONBLOCK`, so a
//!   FIFO swapped in cannot block the build; the opened file is checked again with `fstat(2)`.
//! - A result is written to a new temporary file in the same directory, created with
//!   `O_CREAT | O_EXCL | O_NOFOLLOW`, and renamed over the name with `renameat(2)`, which
//!   replaces a name and never writes through it. Removing is `unlinkat(2)`, which removes a
//!   symlink itself, never its target.
//!
//! Since every step is relative to a descriptor already checked, a directory swapped for a
//! symlink after it was checked is not followed either (unlike a path-based check).
//!
//! A quilt patches directory is opened as a [`Tree`] too, so that a series cannot name a patch
//! outside it (the `series` module); when it is named below a root (the source tree), it is
//! reached from the root with the same walk ([`Tree::subtree`]). The patch file a caller names is not under any tree:
//! [`open_regular`] follows symlinks to it but opens only a regular file, never blocking on a
//! FIFO.

use std::ffi::OsStr;
use std::fs::{File, Metadata, Permissions};
use std::io::{self, Read as _, Write as _};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{open, openat, renameat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

use crate::FileKind;

/// Why a path in the tree cannot be used as asked.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// A directory on the way is a symlink; the link, relative to the root.
    ThroughSymlink(PathBuf),
    /// Something on the way is not a directory; it, relative to the root.
    NotADirectory(PathBuf),
    /// The file itself is not a regular file.
    NotRegular(FileKind),
    /// The operating system failed on `path` (absolute).
    Io { path: PathBuf, source: io::Error },
}

/// A regular file read from the tree.
#[derive(Debug)]
pub(crate) struct Existing {
    pub(crate) content: Vec<u8>,
    /// Permission bits, with setuid, setgid and sticky (`& 0o7777`).
    pub(crate) mode: u32,
}

/// Directories are opened only to be walked through: `O_PATH` needs only search permission.
fn dir_flags() -> OFlag {
    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// A source tree, open; see the module documentation.
#[derive(Debug)]
pub(crate) struct Tree {
    root: OwnedFd,
    path: PathBuf,
}

impl Tree {
    /// Opens the tree at `root`. The root itself is the caller's and may be reached through
    /// symlinks; nothing below it is.
    pub(crate) fn open(root: &Path) -> io::Result<Tree> {
        let fd = open(
            root,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Tree {
            root: fd,
            path: root.to_owned(),
        })
    }

    fn io(&self, relative: &Path, source: impl Into<io::Error>) -> Refusal {
        Refusal::Io {
            path: self.path.join(relative),
            source: source.into(),
        }
    }

    /// The directory `relative` (relative to the root; empty for the root), walked without
    /// following symlinks. Missing directories are created when `create` is set; otherwise a
    /// missing one gives `None`.
    fn dir(&self, relative: &Path, create: bool) -> Result<Option<OwnedFd>, Refusal> {
        let mut dir = self
            .root
            .try_clone()
            .map_err(|source| self.io(Path::new(""), source))?;
        let mut prefix = PathBuf::new();
        for component in relative.components() {
            let Component::Normal(name) = component else {
                // The crate root only hands over normal components.
                return Err(self.io(relative, io::ErrorKind::InvalidInput));
            };
            prefix.push(name);
            let mut created = false;
            dir = loop {
                match openat(&dir, name, dir_flags(), Mode::empty()) {
                    Ok(next) => break next,
                    Err(Errno::ENOENT) if !create => return Ok(None),
                    Err(Errno::ENOENT) if !created => {
                        match mkdirat(&dir, name, Mode::from_bits_truncate(0o777)) {
                            // Created (with the umask applied), or someone else did: open it.
                            Ok(()) | Err(Errno::EEXIST) => created = true,
                            Err(errno) => return Err(self.io(&prefix, errno)),
                        }
                    }
                    // ELOOP: a symlink (O_NOFOLLOW); ENOTDIR: not a directory, or a symlink
                    // opened as itself (O_PATH | O_NOFOLLOW) and refused by O_DIRECTORY.
                    Err(Errno::ELOOP | Errno::ENOTDIR) => {
                        let stat = fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                            .map_err(|errno| self.io(&prefix, errno))?;
                        return Err(match kind(&stat) {
                            Some(FileKind::Symlink) => Refusal::ThroughSymlink(prefix),
                            _ => Refusal::NotADirectory(prefix),
                        });
                    }
                    Err(errno) => return Err(self.io(&prefix, errno)),
                }
            };
        }
        Ok(Some(dir))
    }

    /// The directory `relative` below the root (empty: the root itself), walked one component
    /// at a time without following a symlink, its last component included, and open as a tree
    /// of its own whose path is the root's joined with `relative`; `None` if it, or a directory
    /// on the way, does not exist.
    pub(crate) fn subtree(&self, relative: &Path) -> Result<Option<Tree>, Refusal> {
        Ok(self.dir(relative, false)?.map(|root| Tree {
            root,
            path: self.path.join(relative),
        }))
    }

    /// The directory holding `relative` and its last component.
    fn split<'p>(&self, relative: &'p Path) -> Result<(&'p Path, &'p OsStr), Refusal> {
        match (relative.parent(), relative.file_name()) {
            (Some(parent), Some(name)) => Ok((parent, name)),
            _ => Err(self.io(relative, io::ErrorKind::InvalidInput)),
        }
    }

    /// The regular file at `relative`, or `None` if it (or a directory on the way) does not
    /// exist.
    pub(crate) fn read(&self, relative: &Path) -> Result<Option<Existing>, Refusal> {
        let Some((mut file, metadata)) = self.open_file(relative)? else {
            return Ok(None);
        };
        let mut content = Vec::new();
        file.read_to_end(&mut content)
            .map_err(|source| self.io(relative, source))?;
        Ok(Some(Existing {
            content,
            mode: metadata.permissions().mode() & 0o7777,
        }))
    }

    /// The regular file at `relative`, open for reading, with its metadata; `None` if it (or a
    /// directory on the way) does not exist. Nothing but a regular file is opened: the last
    /// component is inspected first, then opened with `O_NOFOLLOW | O_NONBLOCK` and checked
    /// again (see the module documentation).
    pub(crate) fn open_file(&self, relative: &Path) -> Result<Option<(File, Metadata)>, Refusal> {
        let (parent, name) = self.split(relative)?;
        let Some(dir) = self.dir(parent, false)? else {
            return Ok(None);
        };
        match fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => {
                if let Some(kind) = kind(&stat) {
                    return Err(Refusal::NotRegular(kind));
                }
            }
            Err(Errno::ENOENT) => return Ok(None),
            Err(errno) => return Err(self.io(relative, errno)),
        }
        let fd = match openat(&dir, name, read_flags() | OFlag::O_NOFOLLOW, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ELOOP) => return Err(Refusal::NotRegular(FileKind::Symlink)),
            Err(Errno::ENOENT) => return Ok(None),
            Err(errno) => return Err(self.io(relative, errno)),
        };
        let file = File::from(fd);
        let metadata = file
            .metadata()
            .map_err(|source| self.io(relative, source))?;
        // Swapped since the fstatat above?
        if let Some(kind) = metadata_kind(&metadata) {
            return Err(Refusal::NotRegular(kind));
        }
        Ok(Some((file, metadata)))
    }

    /// Replaces (or creates) the file at `relative` with `content` and `mode`, atomically,
    /// creating missing directories on the way.
    pub(crate) fn write(&self, relative: &Path, content: &[u8], mode: u32) -> Result<(), Refusal> {
        let (parent, name) = self.split(relative)?;
        let Some(dir) = self.dir(parent, true)? else {
            return Err(self.io(parent, io::ErrorKind::NotFound));
        };
        let (temporary, fd) = self.create_temporary(&dir, parent)?;
        let written = (|| {
            let mut file = File::from(fd);
            file.write_all(content)?;
            // fchmod(2): not subject to the umask, unlike the mode given to openat.
            file.set_permissions(Permissions::from_mode(mode))?;
            renameat(&dir, temporary.as_str(), &dir, name)?;
            Ok::<_, io::Error>(())
        })();
        written.map_err(|source| {
            // Best effort: the temporary file may already be gone (renamed).
            let _ = unlinkat(&dir, temporary.as_str(), UnlinkatFlags::NoRemoveDir);
            self.io(relative, source)
        })
    }

    /// A new, empty temporary file in `dir` (which is `parent` under the root).
    fn create_temporary(&self, dir: &OwnedFd, parent: &Path) -> Result<(String, OwnedFd), Refusal> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mut attempts = 0;
        loop {
            let name = format!(
                ".kiln-patch.{}.{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            match openat(dir, name.as_str(), flags, Mode::from_bits_truncate(0o600)) {
                Ok(fd) => return Ok((name, fd)),
                // A leftover of an earlier process with the same id: try the next name.
                Err(Errno::EEXIST) if attempts < 100 => attempts += 1,
                Err(errno) => return Err(self.io(&parent.join(name), errno)),
            }
        }
    }

    /// Removes the file at `relative` (a symlink there would be removed itself, not its
    /// target); nothing to do if it does not exist.
    pub(crate) fn remove(&self, relative: &Path) -> Result<(), Refusal> {
        let (parent, name) = self.split(relative)?;
        let Some(dir) = self.dir(parent, false)? else {
            return Ok(());
        };
        match unlinkat(&dir, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(errno) => Err(self.io(relative, errno)),
        }
    }
}

/// Flags to open a file for reading: `O_NONBLOCK`, so that opening a FIFO swapped in after
/// the check returns at once instead of waiting for a writer (it has no effect on a regular
/// file), and `O_NOCTTY`, so that a terminal never becomes the controlling one.
fn read_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC
}

/// Opens the file the caller names at `path` (absolute, or relative to the working directory)
/// for reading, following symlinks — the caller is trusted with the path — but only if it is,
/// in the end, a regular file: it is `stat`ed before it is opened (so that a device is not
/// even opened), opened with `O_NONBLOCK` (so that a FIFO swapped in meanwhile does not block)
/// and checked again with `fstat`. [`Refusal::NotRegular`] or [`Refusal::Io`] (with `path`)
/// otherwise.
pub(crate) fn open_regular(path: &Path) -> Result<File, Refusal> {
    let io = |source: io::Error| Refusal::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(kind) = metadata_kind(&std::fs::metadata(path).map_err(io)?) {
        return Err(Refusal::NotRegular(kind));
    }
    let file =
        File::from(open(path, read_flags(), Mode::empty()).map_err(|errno| io(errno.into()))?);
    if let Some(kind) = metadata_kind(&file.metadata().map_err(io)?) {
        return Err(Refusal::NotRegular(kind));
    }
    Ok(file)
}

/// `path` as a relative path of normal components only (`.` dropped); `None` if it is
/// absolute or has a `..` component. It may come out empty (`.`).
pub(crate) fn relative(path: &Path) -> Option<PathBuf> {
    let mut relative = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(relative)
}

/// What a file of type `format` (`S_IFMT` bits) is, or `None` for a regular file.
fn format_kind(format: SFlag) -> Option<FileKind> {
    let format = format & SFlag::S_IFMT;
    if format == SFlag::S_IFREG {
        None
    } else if format == SFlag::S_IFLNK {
        Some(FileKind::Symlink)
    } else if format == SFlag::S_IFDIR {
        Some(FileKind::Directory)
    } else if format == SFlag::S_IFIFO {
        Some(FileKind::Fifo)
    } else if format == SFlag::S_IFSOCK {
        Some(FileKind::Socket)
    } else {
        // Character and block devices, and anything unknown.
        Some(FileKind::Device)
    }
}

/// What `stat` describes, or `None` for a regular file.
fn kind(stat: &FileStat) -> Option<FileKind> {
    format_kind(SFlag::from_bits_truncate(stat.st_mode))
}

/// What `metadata` describes, or `None` for a regular file.
fn metadata_kind(metadata: &Metadata) -> Option<FileKind> {
    format_kind(SFlag::from_bits_truncate(metadata.mode()))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn walks_real_directories_and_refuses_symlinks() {
        let scratch = tempfile::tempdir().unwrap();
        let root = scratch.path().join("root");
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("a/b/file"), "content").unwrap();
        fs::write(root.join("plain"), "x").unwrap();
        symlink(scratch.path(), root.join("a/up")).unwrap();
        symlink("b", root.join("a/inside")).unwrap();
        symlink("b/file", root.join("a/file-link")).unwrap();
        let tree = Tree::open(&root).unwrap();

        let read = tree.read(Path::new("a/b/file")).unwrap().unwrap();
        assert_eq!(read.content, b"content");
        assert!(tree.read(Path::new("a/b/missing")).unwrap().is_none());
        assert!(tree.read(Path::new("missing/dir/file")).unwrap().is_none());
        assert!(matches!(
            tree.read(Path::new("a/up/root/plain")),
            Err(Refusal::ThroughSymlink(link)) if link == Path::new("a/up")
        ));
        assert!(matches!(
            tree.read(Path::new("a/inside/file")),
            Err(Refusal::ThroughSymlink(link)) if link == Path::new("a/inside")
        ));
        assert!(matches!(
            tree.read(Path::new("a/file-link")),
            Err(Refusal::NotRegular(FileKind::Symlink))
        ));
        assert!(matches!(
            tree.read(Path::new("a/b")),
            Err(Refusal::NotRegular(FileKind::Directory))
        ));
        assert!(matches!(
            tree.read(Path::new("plain/x")),
            Err(Refusal::NotADirectory(path)) if path == Path::new("plain")
        ));
        assert!(matches!(
            tree.write(Path::new("a/up/escaped"), b"x", 0o644),
            Err(Refusal::ThroughSymlink(_))
        ));
        assert!(!scratch.path().join("escaped").exists());
    }

    #[test]
    fn writes_replace_and_remove_without_following() {
        let scratch = tempfile::tempdir().unwrap();
        let root = scratch.path().join("root");
        fs::create_dir(&root).unwrap();
        fs::write(scratch.path().join("victim"), "original").unwrap();
        symlink(scratch.path().join("victim"), root.join("link")).unwrap();
        let tree = Tree::open(&root).unwrap();

        tree.write(Path::new("new/dir/file"), b"hello", 0o755)
            .unwrap();
        assert_eq!(fs::read(root.join("new/dir/file")).unwrap(), b"hello");
        let mode = fs::metadata(root.join("new/dir/file"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);

        // Writing over a symlink replaces the name; the target is untouched.
        tree.write(Path::new("link"), b"replaced", 0o644).unwrap();
        assert_eq!(fs::read(root.join("link")).unwrap(), b"replaced");
        assert_eq!(
            fs::read(scratch.path().join("victim")).unwrap(),
            b"original"
        );

        symlink(scratch.path().join("victim"), root.join("link2")).unwrap();
        tree.remove(Path::new("link2")).unwrap();
        tree.remove(Path::new("never/there")).unwrap();
        assert!(scratch.path().join("victim").exists());
        let names: Vec<_> = fs::read_dir(&root)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
    }
}
