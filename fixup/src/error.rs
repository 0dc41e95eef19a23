//! Why a fixup step failed: [`StepError`] (one variant per failed operation) and [`FixupError`]
//! (which step, for which output).
//!
//! Variants caused by the operating system carry the [`io::Error`] as their `#[source]`, so a
//! caller renders `error: ...` followed by `caused by: ...` lines; messages never repeat the
//! source. Paths in messages are the ones that were touched. Checks that look at a whole tree
//! (broken symlinks, references to the build directory, output checks) report every offender at
//! once rather than the first.

use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;

use crate::FixupHook;

/// A fixup step that could not be completed.
///
/// Steps that edit files one at a time (patching shebangs, shrinking RPATHs, compressing man
/// pages) may have changed other files before failing; every single-file edit is complete or not
/// done at all, except an in-place rewrite interrupted by the OS (which stdenv shares).
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A directory could not be listed.
    #[error("cannot list directory `{path}`")]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// The metadata of a path (type, mode, times, inode) could not be read.
    #[error("cannot read the metadata of `{path}`")]
    Metadata {
        /// The path that was inspected.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// A file could not be read.
    #[error("cannot read `{path}`")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// A file could not be written (created, filled or truncated).
    #[error("cannot write `{path}`")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// A symlink's target could not be read.
    #[error("cannot read the symlink `{path}`")]
    ReadLink {
        /// The symlink.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// A symlink could not be created or replaced.
    #[error("cannot create the symlink `{path}` pointing to `{target}`")]
    Symlink {
        /// The symlink.
        path: PathBuf,
        /// What it was to point to.
        target: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// A file, symlink or directory could not be removed.
    #[error("cannot remove `{path}`")]
    Remove {
        /// The path.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// A directory (or one of its parents) could not be created.
    #[error("cannot create directory `{path}`")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// A path could not be moved.
    #[error("cannot move `{from}` to `{to}`")]
    Rename {
        /// The source.
        from: PathBuf,
        /// The destination.
        to: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// A move would overwrite something that already exists. Nothing was moved for this path.
    #[error("cannot move `{from}` to `{to}`: the destination already exists")]
    MoveConflict {
        /// The source.
        from: PathBuf,
        /// The existing destination.
        to: PathBuf,
    },

    /// The permissions of a path could not be changed.
    #[error("cannot change the permissions of `{path}`")]
    SetPermissions {
        /// The path.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// The access and modification times of a file could not be restored.
    #[error("cannot restore the timestamps of `{path}`")]
    SetTimes {
        /// The file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// A file starts with the ELF magic but its headers or dynamic section are malformed.
    #[error("cannot parse the ELF file `{path}`")]
    ParseElf {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: goblin::error::Error,
    },

    /// An ELF file could not be rewritten (interpreter, RUNPATH).
    #[error("cannot patch the ELF file `{path}`: {message}")]
    PatchElf {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },

    /// Libraries that ELF files need are in no directory of the search path.
    #[error(
        "{} need libraries found in no directory of the search path ({}): {}; add the directory \
         that holds them to `searchPath`, or list them in `ignoreMissing`",
        if .missing.len() == 1 { "1 file".to_owned() } else { format!("{} files", .missing.len()) },
        if .search_path.is_empty() {
            "empty".to_owned()
        } else {
            .search_path.iter().map(|dir| format!("`{}`", dir.display())).collect::<Vec<_>>().join(", ")
        },
        missing_list(.missing)
    )]
    MissingLibraries {
        /// Each file with the needed libraries it lacks.
        missing: Vec<(PathBuf, Vec<String>)>,
        /// The directories searched.
        search_path: Vec<PathBuf>,
    },

    /// An external program (`strip`, `ranlib`) could not be started.
    #[error("cannot run `{program}`")]
    Spawn {
        /// The program, as found in the search path.
        program: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// A script's `#!` line uses `env` features that cannot be patched (an option other than
    /// `-S`, or a `NAME=value` assignment); stdenv fails the same way.
    #[error(
        "`{path}` has the unsupported interpreter directive `{line}`; disable `patch_shebangs` \
         for this output and patch it yourself"
    )]
    UnsupportedShebang {
        /// The script.
        path: PathBuf,
        /// Its first line, lossily decoded.
        line: String,
    },

    /// Symlinks point to missing targets or to themselves.
    #[error("{} broken symlink(s) in `{dir}`:{}", .links.len(), list(.links))]
    BrokenSymlinks {
        /// The output directory that was checked.
        dir: PathBuf,
        /// Every broken symlink, in walk order.
        links: Vec<BrokenSymlink>,
    },

    /// Files refer to the build directory (the security check of stdenv's `audit-tmpdir.sh`).
    #[error("{} file(s) in `{dir}` refer to the build directory `{build_top}`:{}", .found.len(), list(.found))]
    TmpdirReferences {
        /// The output directory that was checked.
        dir: PathBuf,
        /// The build directory.
        build_top: PathBuf,
        /// Every offending file.
        found: Vec<TmpdirReference>,
    },

    /// An output refers to store paths listed in its `disallowedReferences`.
    #[error("output `{output}` refers to disallowed path(s):{}", list(.found))]
    DisallowedReferences {
        /// The output.
        output: String,
        /// Each disallowed path found, with the first file that mentions it.
        found: Vec<FoundReference>,
    },

    /// Outputs refer to each other in a loop, which Nix cannot register.
    #[error("{}", cycle_message(.edges))]
    OutputCycle {
        /// The loop's references in order, each with the file (and offset) that makes it.
        edges: Vec<crate::cycles::CycleEdge>,
    },

    /// An output refers to store paths not listed in its `allowedReferences`.
    #[error("output `{output}` refers to path(s) not in `allowedReferences`:{}", list(.found))]
    ReferencesNotAllowed {
        /// The output.
        output: String,
        /// Each path found that is not allowed, with the first file that mentions it.
        found: Vec<FoundReference>,
    },

    /// An output's NAR serialisation is larger than its `maxSize`.
    #[error("output `{output}` is {size} bytes as a NAR, more than its `maxSize` of {max} bytes")]
    MaxSize {
        /// The output.
        output: String,
        /// Its NAR size.
        size: u64,
        /// The limit.
        max: u64,
    },

    /// A path given as a reference is neither an output name nor `<store>/<32-char hash>-<name>`.
    #[error("`{path}` is not a store path under `{store_dir}` nor the name of an output")]
    NotAStorePath {
        /// The path.
        path: String,
        /// The store directory.
        store_dir: PathBuf,
    },

    /// An output name was used that the derivation does not have.
    #[error("unknown output `{name}`; the outputs are {}", quoted(.known))]
    UnknownOutput {
        /// The name.
        name: String,
        /// The outputs that exist.
        known: Vec<String>,
    },

    /// The output roles could not be resolved: a role names an output the derivation does not
    /// have, or none of the outputs a role may go to exists.
    #[error(transparent)]
    Role(#[from] kiln_schema::roles::RoleError),
}

/// A symlink found by [`crate::symlinks::check_broken`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenSymlink {
    /// The symlink.
    pub path: PathBuf,
    /// Its target, as stored in the link.
    pub target: PathBuf,
    /// `true` if it points to itself, `false` if its target is missing.
    pub reflexive: bool,
}

impl std::fmt::Display for BrokenSymlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.reflexive {
            "points to itself"
        } else {
            "points to a missing target"
        };
        write!(
            f,
            "`{}` -> `{}` {what}",
            self.path.display(),
            self.target.display()
        )
    }
}

/// A file found by [`crate::audit::audit_tmpdir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmpdirReference {
    /// The file.
    pub path: PathBuf,
    /// Where the reference is: `RPATH` or `RUNPATH` of an ELF file, or `script` contents.
    pub place: &'static str,
}

impl std::fmt::Display for TmpdirReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` ({})", self.path.display(), self.place)
    }
}

/// A reference found by [`crate::checks::check_outputs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundReference {
    /// The store path referred to.
    pub reference: PathBuf,
    /// The first file (in walk order) whose name, contents or symlink target holds its hash.
    pub file: PathBuf,
}

impl std::fmt::Display for FoundReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` (in `{}`)",
            self.reference.display(),
            self.file.display()
        )
    }
}

fn cycle_message(edges: &[crate::cycles::CycleEdge]) -> String {
    let names: Vec<String> = edges
        .iter()
        .map(|edge| format!("`{}`", edge.from))
        .collect();
    let who = match names.as_slice() {
        [one, two] => format!("outputs {one} and {two} refer to each other"),
        _ => format!("outputs {} refer to each other in a loop", names.join(", ")),
    };
    format!(
        "{who}, which Nix cannot register (it would fail with \"cycle detected\"):{}",
        list(edges)
    )
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    let mut out = String::new();
    for item in items {
        let _ = write!(out, "\n  {item}");
    }
    out
}

fn quoted(items: &[String]) -> String {
    items
        .iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The fixup of an output failed.
#[derive(Debug, thiserror::Error)]
pub enum FixupError {
    /// One step failed; the source says how.
    #[error("fixup step `{step}` failed for output `{output}`")]
    Hook {
        /// The output being fixed up (or the first output, for steps over all outputs).
        output: String,
        /// The step.
        step: FixupHook,
        /// What went wrong.
        #[source]
        source: StepError,
    },

    /// The worker threads could not be started.
    #[error("cannot start {jobs} fixup worker thread(s)")]
    ThreadPool {
        /// How many were asked for.
        jobs: usize,
        /// Why it failed.
        #[source]
        source: rayon::ThreadPoolBuildError,
    },
}

/// `file` needs `a`, `b`; … for at most 5 files.
fn missing_list(missing: &[(PathBuf, Vec<String>)]) -> String {
    let mut parts: Vec<String> = missing
        .iter()
        .take(5)
        .map(|(file, names)| {
            let names: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
            format!("`{}` needs {}", file.display(), names.join(", "))
        })
        .collect();
    if missing.len() > 5 {
        parts.push(format!("and {} more files", missing.len() - 5));
    }
    parts.join("; ")
}
