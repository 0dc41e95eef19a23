//! Why a patch could not be applied: [`PatchError`], one variant per failed operation.
//!
//! Every variant names the patch file, or the quilt `series` file; those about one target file
//! name it too (relative to the tree, after stripping) and the 1-based line of the patch header
//! that named it, as "`fix.patch` line 4: ..."; those about one entry of a series name the
//! series file and its line the same way. Variants caused by the operating system carry the [`io::Error`]
//! as their `#[source]`; the message never repeats it. [`PatchError::hint`] says what to do next
//! where kiln can tell.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::MAX_PATCH_SIZE;

/// A patch that could not be applied, or a series that could not be read.
///
/// A patch is checked whole before anything is written: when any hunk of any file fails, no
/// file of that patch is changed. Only an I/O error while writing the results can leave a patch
/// half applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PatchError {
    /// The patch file could not be read or decompressed.
    #[error("cannot read the patch `{patch}`")]
    Read {
        /// The patch file.
        patch: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// The patch file is a directory, a FIFO, a device or a socket. It is checked before it is
    /// read: a FIFO would block the build until something writes to it, and a device could
    /// never end (`/dev/zero`). A symlink naming the patch directly is followed (the caller
    /// named it; see [`apply_patch_file`](crate::apply_patch_file)); what it leads to is checked.
    #[error("the patch `{patch}` is {kind}, not a regular file")]
    PatchNotRegular {
        /// The patch file.
        patch: PathBuf,
        /// What it is instead.
        kind: FileKind,
    },

    /// The patch is larger than [`MAX_PATCH_SIZE`] once decompressed.
    #[error(
        "`{patch}` is larger than the limit of {} MiB once decompressed",
        limit / (1024 * 1024)
    )]
    TooLarge {
        /// The patch file.
        patch: PathBuf,
        /// The limit, in bytes ([`MAX_PATCH_SIZE`]).
        limit: u64,
    },

    /// The patch is malformed at a line.
    #[error("`{patch}` line {line}: {message}")]
    Parse {
        /// The patch file.
        patch: PathBuf,
        /// The 1-based line number in the (decompressed) patch.
        line: usize,
        /// What is wrong there.
        message: String,
    },

    /// The patch holds no diff at all (GNU patch: "only garbage was found").
    #[error("`{patch}` holds no unified diff")]
    Empty {
        /// The patch file.
        patch: PathBuf,
    },

    /// A path in the patch is absolute or has a `..` component after stripping.
    #[error("`{patch}` line {line}: `{path}` is outside the tree (absolute or with `..`)")]
    UnsafePath {
        /// The patch file.
        patch: PathBuf,
        /// The 1-based line of the header that names the path.
        line: usize,
        /// The path after stripping.
        path: PathBuf,
    },

    /// A path in the patch has fewer components than the strip level.
    #[error("`{patch}` line {line}: `{name}` has fewer than {strip} leading components to strip")]
    StripTooFar {
        /// The patch file.
        patch: PathBuf,
        /// The 1-based line of the header that names the path.
        line: usize,
        /// The name as written in the patch.
        name: String,
        /// The strip level (`-pN`).
        strip: usize,
    },

    /// The file to patch does not exist.
    #[error("`{patch}` line {line}: `{file}` does not exist")]
    MissingFile {
        /// The patch file.
        patch: PathBuf,
        /// The 1-based line of the header that names the file.
        line: usize,
        /// The target, relative to the tree.
        file: PathBuf,
    },

    /// A file to create already exists (with content).
    #[error("`{patch}` line {line}: `{file}` is to be created, but already exists")]
    FileExists {
        /// The patch file.
        patch: PathBuf,
        /// The 1-based line of the header that names the file.
        line: usize,
        /// The target, relative to the tree.
        file: PathBuf,
    },

    /// A file the patch names is a symlink, a directory or a special file. A symlink is never
    /// followed, wherever it points: patching, creating, replacing or deleting through it could
    /// change a file outside the tree.
    #[error("`{patch}` line {line}: `{file}` is {kind}, not a regular file")]
    NotRegularFile {
        /// The patch file.
        patch: PathBuf,
        /// The 1-based line of the header that names the file.
        line: usize,
        /// The target, relative to the tree.
        file: PathBuf,
        /// What it is instead.
        kind: FileKind,
    },

    /// A directory on the way to a file the patch names is a symlink. kiln-archive's rule:
    /// no symlink is followed on the way to a path, wherever it points.
    #[error("`{patch}` line {line}: `{file}` is reached through the symlink `{link}`")]
    ThroughSymlink {
        /// The patch file.
        patch: PathBuf,
        /// The 1-based line of the header that names the file.
        line: usize,
        /// The target, relative to the tree.
        file: PathBuf,
        /// The symlink, relative to the tree.
        link: PathBuf,
    },

    /// Something on the way to a file the patch names is not a directory.
    #[error("`{patch}` line {line}: `{file}` is under `{parent}`, which is not a directory")]
    NotADirectory {
        /// The patch file.
        patch: PathBuf,
        /// The 1-based line of the header that names the file.
        line: usize,
        /// The target, relative to the tree.
        file: PathBuf,
        /// The component that is not a directory, relative to the tree.
        parent: PathBuf,
    },

    /// A hunk matched nowhere (with offsets and fuzz) in its file.
    #[error("hunk #{number} `{header}` of `{patch}` does not apply to `{file}`")]
    HunkFailed {
        /// The patch file.
        patch: PathBuf,
        /// The target, relative to the tree.
        file: PathBuf,
        /// The hunk's 1-based number within its file.
        number: usize,
        /// The hunk's header line, e.g. `@@ -12,7 +12,8 @@`.
        header: String,
    },

    /// A git header (`new file mode`, `new mode`) makes a file something other than a regular
    /// file: a symlink (`120000`), a submodule (`160000`) or another type. kiln creates only
    /// regular files from patches: a symlink made by a patch could point anywhere, and the
    /// patcher follows none in the tree.
    #[error(
        "`{patch}` line {line}: `{file}` is to be {} (git mode {mode:06o}); kiln creates only \
         regular files from patches",
        mode_type(*mode)
    )]
    UnsupportedMode {
        /// The patch file.
        patch: PathBuf,
        /// The 1-based line of the mode header.
        line: usize,
        /// The target, relative to the tree.
        file: PathBuf,
        /// The mode, as in the patch (file type and permission bits).
        mode: u32,
    },

    /// The patch has a git binary diff, which kiln does not apply.
    #[error("`{patch}` line {line}: a binary diff for `{file}`, which kiln cannot apply")]
    Binary {
        /// The patch file.
        patch: PathBuf,
        /// The 1-based line where the file's diff starts.
        line: usize,
        /// The target, relative to the tree.
        file: PathBuf,
    },

    /// A file of the tree could not be read.
    #[error("cannot read `{path}`")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// The source tree could not be opened.
    #[error("cannot open the source tree `{root}`")]
    OpenTree {
        /// The root of the tree.
        root: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// A result could not be written (or a deleted file removed).
    #[error("cannot write `{path}`")]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// A quilt `series` file could not be read.
    #[error("cannot read the series `{path}`")]
    ReadSeries {
        /// The series file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// The quilt `series` file is a symlink, a directory or a special file. It comes with the
    /// (hostile) source, so it is opened without following a symlink, and a FIFO would block.
    #[error("the series `{path}` is {kind}, not a regular file")]
    SeriesNotRegular {
        /// The series file.
        path: PathBuf,
        /// What it is instead.
        kind: FileKind,
    },

    /// The patches directory of a quilt series, named below the source tree
    /// ([`read_quilt_series_under`](crate::read_quilt_series_under)), is reached through a
    /// symlink. The directories on the way come with the (hostile) source, so no symlink among
    /// them is followed, wherever it points: a `debian` symlinked elsewhere would hand out a
    /// series and patches from outside the tree.
    #[error("the series `{path}` is reached through the symlink `{link}`")]
    SeriesThroughSymlink {
        /// The series file (the root joined with the patches directory and `series`).
        path: PathBuf,
        /// The symlink, relative to the root.
        link: PathBuf,
    },

    /// Something on the way from the source tree to the patches directory of a quilt series
    /// ([`read_quilt_series_under`](crate::read_quilt_series_under)), or the patches directory
    /// itself, is not a directory.
    #[error("the series `{path}` is under `{parent}`, which is not a directory")]
    SeriesNotADirectory {
        /// The series file (the root joined with the patches directory and `series`).
        path: PathBuf,
        /// What is not a directory, relative to the root.
        parent: PathBuf,
    },

    /// The patches directory given to
    /// [`read_quilt_series_under`](crate::read_quilt_series_under) is absolute or has a `..`
    /// component, so it is not below the root.
    #[error("the patches directory `{dir}` is not below `{root}` (absolute or with `..`)")]
    SeriesOutside {
        /// The root.
        root: PathBuf,
        /// The patches directory as given.
        dir: PathBuf,
    },

    /// A patch a quilt `series` names is not a regular file inside the patches directory.
    #[error("`{path}` line {line}: the patch `{name}` {refusal}")]
    SeriesEntry {
        /// The series file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// The patch's name as written in the series.
        name: String,
        /// What is wrong with it.
        refusal: SeriesRefusal,
    },

    /// A patch a quilt `series` names could not be opened.
    #[error("`{path}` line {line}: cannot open the patch `{patch}`")]
    ReadSeriesEntry {
        /// The series file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// The patch.
        patch: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// A quilt `series` line has an option kiln does not know.
    #[error("`{path}` line {line}: unsupported option `{option}`")]
    SeriesOption {
        /// The series file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// The option.
        option: String,
    },
}

impl PatchError {
    /// What the user can do about it, if kiln can tell.
    pub fn hint(&self) -> Option<String> {
        match self {
            PatchError::MissingFile { .. }
            | PatchError::StripTooFar { .. }
            | PatchError::NotADirectory { .. } => {
                Some("check the strip level (`-p1` strips `a/`, `-p0` strips nothing)".to_owned())
            }
            PatchError::TooLarge { .. } => Some(format!(
                "kiln reads at most {} MiB of a patch (`kiln_patch::MAX_PATCH_SIZE`), so that a \
                 small compressed file cannot take all memory; patches are text and rarely this \
                 large: check that this is the patch you meant, split it (e.g. with `splitdiff` \
                 from patchutils), or apply it with GNU patch in a `run` step",
                MAX_PATCH_SIZE / (1024 * 1024)
            )),
            PatchError::NotRegularFile { .. } | PatchError::ThroughSymlink { .. } => Some(
                "kiln patches only regular files and follows no symlink in the tree, wherever it \
                 points (it could lead outside the tree): name the file by its real path, or \
                 replace the symlink in an earlier step"
                    .to_owned(),
            ),
            PatchError::PatchNotRegular { .. } => Some(
                "a patch must be a regular file (plain or compressed): kiln does not read a FIFO, \
                 which could block the build, a device or a directory; check the path"
                    .to_owned(),
            ),
            PatchError::UnsupportedMode { mode, .. } if mode & S_IFMT == S_IFLNK => Some(
                "kiln does not create symlinks from patches (a link could point anywhere, and \
                 the patcher follows no symlink in the tree): remove this file's diff from the \
                 patch and create the link with a `symlink` step after the patch step"
                    .to_owned(),
            ),
            PatchError::UnsupportedMode { .. } => Some(
                "kiln creates only regular files from patches: remove this file's diff from the \
                 patch (a submodule's content is a source of its own, to unpack)"
                    .to_owned(),
            ),
            PatchError::SeriesNotRegular { .. } => Some(
                "the series file comes with the source, so kiln opens it without following a \
                 symlink: replace the symlink with the file in an earlier step, or name the \
                 patches in the step's `patches` instead"
                    .to_owned(),
            ),
            PatchError::SeriesThroughSymlink { .. } => Some(
                "the directories between the source tree and a quilt series come with the \
                 source, so kiln walks them without following a symlink, wherever it points (it \
                 could lead outside the tree): replace the symlink with the directory in an \
                 earlier step, or name the patches in the step's `patches`, which the plan \
                 controls"
                    .to_owned(),
            ),
            PatchError::SeriesNotADirectory { .. } => Some(
                "check the `series` path of the patch step: every component before `series` \
                 must be a directory"
                    .to_owned(),
            ),
            PatchError::SeriesOutside { .. } => {
                Some("name the patches directory relative to the root, without `..`".to_owned())
            }
            PatchError::SeriesEntry {
                refusal: SeriesRefusal::Missing,
                ..
            } => Some(
                "the series names a patch that is not in its directory: check the name, or \
                 the `series` path of the patch step"
                    .to_owned(),
            ),
            PatchError::SeriesEntry { .. } => Some(
                "a patch named by a quilt series must be a regular file inside the series' \
                 directory, reached without a symlink (the series comes with the source, which \
                 kiln does not trust); a patch outside it can be named in the step's `patches`, \
                 which the plan controls"
                    .to_owned(),
            ),
            PatchError::HunkFailed { .. } => Some(
                "the file differs from what the patch expects; the patch may be for another \
                 version, or already applied"
                    .to_owned(),
            ),
            _ => None,
        }
    }
}

/// The file-type bits of a mode (`S_IFMT`), and those of a regular file, a symlink and a git
/// submodule ("gitlink") as git writes them.
const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const GITLINK: u32 = 0o160000;

/// Whether a git mode makes a regular file: its type is `100000`, or absent (`0755`).
pub(crate) fn is_regular_mode(mode: u32) -> bool {
    matches!(mode & S_IFMT, 0 | S_IFREG)
}

/// What a git mode that is not a regular file's makes, for [`PatchError::UnsupportedMode`].
fn mode_type(mode: u32) -> &'static str {
    match mode & S_IFMT {
        S_IFLNK => "a symlink",
        GITLINK => "a git submodule",
        0o040000 => "a directory",
        _ => "a special file",
    }
}

/// What a patch refers to, when it is not a regular file: the patch itself, a file it names, a
/// quilt series or a patch the series names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileKind {
    /// A symbolic link (never followed).
    Symlink,
    /// A directory.
    Directory,
    /// A FIFO (named pipe).
    Fifo,
    /// A character or block device.
    Device,
    /// A socket.
    Socket,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Symlink => "a symlink",
            FileKind::Directory => "a directory",
            FileKind::Fifo => "a FIFO",
            FileKind::Device => "a device",
            FileKind::Socket => "a socket",
        })
    }
}

/// Why a patch a quilt series names is refused ([`PatchError::SeriesEntry`]). The series and
/// its directory come with the source: a name is resolved inside the directory one component at
/// a time, following no symlink (the rule for the tree; see [`read_quilt_series`]).
///
/// [`read_quilt_series`]: crate::read_quilt_series
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SeriesRefusal {
    /// The name is absolute or has a `..` component.
    Outside,
    /// A directory on the way is a symlink (relative to the patches directory).
    ThroughSymlink(PathBuf),
    /// Something on the way is not a directory (relative to the patches directory).
    NotADirectory(PathBuf),
    /// The patch is a symlink, a directory or a special file.
    NotRegular(FileKind),
    /// There is no such file.
    Missing,
}

impl fmt::Display for SeriesRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeriesRefusal::Outside => {
                f.write_str("is outside the patches directory (absolute or with `..`)")
            }
            SeriesRefusal::ThroughSymlink(link) => {
                write!(f, "is reached through the symlink `{}`", link.display())
            }
            SeriesRefusal::NotADirectory(parent) => {
                write!(
                    f,
                    "is under `{}`, which is not a directory",
                    parent.display()
                )
            }
            SeriesRefusal::NotRegular(kind) => write!(f, "is {kind}, not a regular file"),
            SeriesRefusal::Missing => f.write_str("does not exist"),
        }
    }
}
