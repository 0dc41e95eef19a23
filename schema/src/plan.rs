//! The plan data model: what a build is, as typed data.
//!
//! A [`Plan`] names its outputs and inputs, sets environment variables and lists [`Phase`]s, each
//! an ordered list of [`Step`]s. Every type here rejects unknown fields, so a typo is an error
//! with its JSON path rather than a silently ignored key.
//!
//! # Format
//!
//! Steps are externally tagged: the single key of a step object names its kind.
//!
//! ```json
//! {
//!   "version": 1,
//!   "name": "hello",
//!   "inputs": { "cc": "/usr" },
//!   "env": { "CFLAGS": "-O2" },
//!   "phases": [
//!     { "name": "build", "steps": [
//!       { "run": { "argv": ["cc", "-o", "${outputs.out}/bin/hello", "hello.c"] } }
//!     ] }
//!   ]
//! }
//! ```
//!
//! String values may hold references (`${outputs.out}`, `${inputs.src}`, `${env.NAME}`,
//! `${build.top}`, `${build.cores}`); see [`crate::reference`].

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The plan format version this kiln understands.
pub const PLAN_VERSION: u32 = 1;

/// A whole build: outputs, inputs, environment and phases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(
    title = "kiln plan",
    description = "A kiln build plan (format version 1)."
)]
pub struct Plan {
    /// Plan format version. MUST be 1.
    pub version: u32,
    /// The package name, used in logs. Under Nix it defaults to the derivation's `name`.
    pub name: String,
    /// Output names. Defaults to `["out"]`; under Nix, to the derivation's outputs (and if given
    /// it MUST equal them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Vec<String>>,
    /// Named inputs: an absolute path (usually a store path) or a list of them. Each input's `bin`
    /// directory is put on `PATH` unless `env.PATH` is set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, Input>,
    /// Environment variables for every step. Values may hold references.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Dependencies by role: names of `inputs` whose directories make up the build environment
    /// (see [`Deps`]).
    #[serde(default, skip_serializing_if = "Deps::is_empty")]
    pub deps: Deps,
    /// Inputs to record in this package's `nix-support/propagated-build-inputs` (host) and
    /// `propagated-native-build-inputs` (build), so that packages depending on it get them too.
    #[serde(default, skip_serializing_if = "Propagate::is_empty")]
    pub propagate: Propagate,
    /// A build-system preset that yields named phases (see [`crate::preset`]). With a preset,
    /// `phases` MUST be empty; change the preset's phases with `edits`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<crate::preset::Preset>,
    /// Changes to the preset's phases, applied in order: insert `before`/`after` a phase,
    /// `replace` one, `delete` one. Each names a phase that MUST exist at that point.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edits: Vec<Edit>,
    /// The phases, run in this order. Names MUST be unique. Empty when a preset gives them.
    #[serde(default)]
    pub phases: Vec<Phase>,
}

/// Dependencies by role, as names of the plan's `inputs`.
///
/// Build dependencies (tools run during the build) put their `bin` on `PATH`; host dependencies
/// (libraries linked into the result) give compiler and linker search paths, an rpath,
/// `PKG_CONFIG_PATH`, `CMAKE_PREFIX_PATH` and the like. Both follow
/// `nix-support/propagated-*build-inputs` like nixpkgs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Deps {
    /// Tools for the build machine (nixpkgs' `nativeBuildInputs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build: Vec<String>,
    /// Libraries for the machine the result runs on (nixpkgs' `buildInputs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host: Vec<String>,
    /// Only build dependencies put their `bin` on `PATH` (nixpkgs' `strictDeps`); by default
    /// host dependencies' `bin` follow, as in stdenv's non-strict mode.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strict: bool,
}

impl Deps {
    /// Whether both lists are empty.
    pub fn is_empty(&self) -> bool {
        self.build.is_empty() && self.host.is_empty()
    }
}

/// Dependencies a package passes on to the packages that depend on it, as names of the plan's
/// `inputs`, and the output that records them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Propagate {
    /// Recorded in `nix-support/propagated-native-build-inputs`
    /// (`propagatedNativeBuildInputs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build: Vec<String>,
    /// Recorded in `nix-support/propagated-build-inputs` (`propagatedBuildInputs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host: Vec<String>,
    /// The output whose `nix-support/` holds the files (stdenv's `outputDev`). MUST be one of
    /// the plan's outputs. Default: `dev` when the plan has it, else `out`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

impl Propagate {
    /// Whether nothing is propagated and no output is named.
    pub fn is_empty(&self) -> bool {
        self.build.is_empty() && self.host.is_empty() && self.output.is_none()
    }

    /// The output that records the propagated inputs, among `outputs` (names).
    pub fn output_in(&self, mut outputs: impl FnMut(&str) -> bool) -> Option<&str> {
        match &self.output {
            Some(name) => outputs(name).then_some(name.as_str()),
            None => ["dev", "out"].into_iter().find(|name| outputs(name)),
        }
    }
}

/// One change to a phase list. The object's single key names the kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum Edit {
    /// Insert a phase before the named one.
    Before(InsertEdit),
    /// Insert a phase after the named one.
    After(InsertEdit),
    /// Replace the named phase.
    Replace(ReplaceEdit),
    /// Remove the named phase.
    Delete(DeleteEdit),
}

impl Edit {
    /// The phase the edit refers to.
    pub fn anchor(&self) -> &str {
        match self {
            Edit::Before(edit) | Edit::After(edit) => &edit.phase,
            Edit::Replace(edit) => &edit.phase,
            Edit::Delete(edit) => &edit.phase,
        }
    }

    /// The edit kind as written (`before`, `after`, `replace`, `delete`).
    pub fn kind(&self) -> &'static str {
        match self {
            Edit::Before(_) => "before",
            Edit::After(_) => "after",
            Edit::Replace(_) => "replace",
            Edit::Delete(_) => "delete",
        }
    }
}

/// `before` / `after`: a new phase next to an existing one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InsertEdit {
    /// The existing phase.
    pub phase: String,
    /// The new phase.
    pub insert: Phase,
}

/// `replace`: a new definition for an existing phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReplaceEdit {
    /// The existing phase.
    pub phase: String,
    /// Its replacement (it may have another name).
    pub with: Phase,
}

/// `delete`: remove an existing phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeleteEdit {
    /// The existing phase.
    pub phase: String,
}

/// An input: one path or a list of paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A single path, referenced as `${inputs.NAME}`.
    Path(String),
    /// Several paths, referenced one at a time as `${inputs.NAME.INDEX}`.
    List(Vec<String>),
}

impl Input {
    /// All paths of this input, in order.
    pub fn paths(&self) -> &[String] {
        match self {
            Input::Path(path) => std::slice::from_ref(path),
            Input::List(paths) => paths,
        }
    }

    /// All paths of this input, mutably (for reference resolution).
    pub fn paths_mut(&mut self) -> &mut [String] {
        match self {
            Input::Path(path) => std::slice::from_mut(path),
            Input::List(paths) => paths,
        }
    }
}

impl Serialize for Input {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Input::Path(path) => serializer.serialize_str(path),
            Input::List(paths) => paths.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Input {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct InputVisitor;
        impl<'de> serde::de::Visitor<'de> for InputVisitor {
            type Value = Input;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a path string or a list of path strings")
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Input, E> {
                Ok(Input::Path(value.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, value: String) -> Result<Input, E> {
                Ok(Input::Path(value))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Input, A::Error> {
                let mut paths = Vec::new();
                while let Some(path) = seq.next_element::<String>()? {
                    paths.push(path);
                }
                Ok(Input::List(paths))
            }
        }
        deserializer.deserialize_any(InputVisitor)
    }
}

impl JsonSchema for Input {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Input".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An absolute path, or a list of absolute paths.",
            "oneOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" } }
            ]
        })
    }
}

/// A named phase: an ordered list of steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Phase {
    /// The phase name, shown by `nix build` (`building hello (build)`). MUST be unique in the plan
    /// and a valid name: `[A-Za-z0-9_.+-]+`, not starting with `.`, at most 255 bytes (what
    /// `kiln validate` checks).
    #[schemars(regex(pattern = r"^[A-Za-z0-9_+-][A-Za-z0-9_.+-]{0,254}$"))]
    pub name: String,
    /// Whether the phase runs. A disabled phase is reported as skipped.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Wall-clock limit for the whole phase, in seconds. When it runs out, the running step's
    /// process group is terminated and the build fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// The working directory of the phase's steps; relative paths resolve against it.
    /// Defaults to the build directory (`${build.top}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// The steps, run in order; the first failure stops the build.
    pub steps: Vec<Step>,
    /// Where the phase comes from (`preset autotools`, `plan`, `hook of zlib`, …). Set by kiln
    /// when it expands presets and edits; shown by `kiln plan`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

fn enabled_by_default() -> bool {
    true
}

/// One typed step. The object's single key names the kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum Step {
    /// Run a program: `argv` is exec'd directly, with no shell.
    Run(RunStep),
    /// Write a file (parent directories are created).
    Write(WriteStep),
    /// Create a directory and its parents.
    Mkdir(MkdirStep),
    /// Copy a file or a directory tree (modes, mtimes and symlinks kept).
    Copy(CopyStep),
    /// Create a symbolic link.
    Symlink(SymlinkStep),
    /// Remove a file, a symlink, or (with `recursive`) a directory tree.
    Remove(RemoveStep),
    /// Change permission bits.
    Chmod(ChmodStep),
    /// Replace literal strings and `@NAME@` placeholders in a file.
    Substitute(SubstituteStep),
    /// Unpack sources (archives or directories); without `into`, the single new directory
    /// becomes the working directory of later phases (stdenv's source root).
    Unpack(UnpackStep),
    /// Apply patches (unified diffs, possibly compressed, or a quilt `series`).
    Patch(PatchStep),
    /// Run a `configure` script with stdenv's automatic flags.
    Configure(ConfigureStep),
    /// Run `make` with parallelism from `NIX_BUILD_CORES`.
    Make(MakeStep),
    /// stdenv's fixup of every output: move docs, patch shebangs, strip, shrink RPATHs, compress
    /// man pages, prune libtool files, check symlinks and references.
    Fixup(Box<FixupStep>),
    /// Point prebuilt ELF files at the store (nixpkgs' autoPatchelfHook): set their interpreter,
    /// and a RUNPATH of the search-path directories that hold their libraries.
    AutoPatchelf(AutoPatchelfStep),
    /// Rewrite the `#!` lines of scripts in the build to interpreters on `PATH` (stdenv's
    /// `patchShebangs`), e.g. a test runner written `#!/usr/bin/env python3`.
    PatchShebangs(PatchShebangsStep),
}

impl Step {
    /// A `run` step of `argv` with no `env`, `cwd` or `stdout` of its own.
    pub fn run(argv: Vec<String>) -> Step {
        Step::Run(RunStep {
            argv,
            env: BTreeMap::new(),
            cwd: None,
            stdout: None,
        })
    }

    /// The step kind as written in the plan (`run`, `write`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Run(_) => "run",
            Step::Write(_) => "write",
            Step::Mkdir(_) => "mkdir",
            Step::Copy(_) => "copy",
            Step::Symlink(_) => "symlink",
            Step::Remove(_) => "remove",
            Step::Chmod(_) => "chmod",
            Step::Substitute(_) => "substitute",
            Step::Unpack(_) => "unpack",
            Step::Patch(_) => "patch",
            Step::Configure(_) => "configure",
            Step::Make(_) => "make",
            Step::Fixup(_) => "fixup",
            Step::AutoPatchelf(_) => "autoPatchelf",
            Step::PatchShebangs(_) => "patchShebangs",
        }
    }

    /// Every step kind, in schema order.
    pub const KINDS: &'static [&'static str] = &[
        "run",
        "write",
        "mkdir",
        "copy",
        "symlink",
        "remove",
        "chmod",
        "substitute",
        "unpack",
        "patch",
        "configure",
        "make",
        "fixup",
        "autoPatchelf",
        "patchShebangs",
    ];
}

/// Run a program directly (no shell).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RunStep {
    /// Program and arguments. MUST NOT be empty. A program name without `/` is looked up in the
    /// step's `PATH`.
    pub argv: Vec<String>,
    /// Extra environment variables for this step only; they override the plan's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Working directory, relative to the phase's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Write the program's standard output to this file (created or truncated; relative to
    /// the step's working directory) instead of the log, like a shell's `> file`. Standard
    /// error still goes to the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
}

/// Write `content` to `path`, replacing the file if it exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WriteStep {
    /// The file to write; missing parent directories are created.
    pub path: String,
    /// The exact file content (UTF-8).
    pub content: String,
    /// Permission bits as an octal string such as `"0755"`. Defaults to `0644`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
}

/// Create a directory and any missing parents (like `mkdir -p`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MkdirStep {
    /// The directory to create. Existing directories are fine.
    pub path: String,
}

/// Copy a file, a symlink or a directory tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CopyStep {
    /// What to copy.
    pub from: String,
    /// Where to put it: the new path itself (not a directory to copy into). Missing parents are
    /// created; an existing destination is an error.
    pub to: String,
}

/// Create a symbolic link at `link` pointing to `target`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SymlinkStep {
    /// The link's content, stored as given (relative targets stay relative).
    pub target: String,
    /// The path of the new link; missing parents are created.
    pub link: String,
}

/// Remove a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RemoveStep {
    /// The path to remove. A symlink is removed itself, never followed.
    pub path: String,
    /// Remove a directory with everything in it. Without it, removing a non-empty directory fails.
    #[serde(default)]
    pub recursive: bool,
    /// Succeed when the path does not exist (like `rm -f`).
    #[serde(default)]
    pub ignore_missing: bool,
}

/// Set permission bits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChmodStep {
    /// The path whose mode is set (symlinks are followed, as `chmod` does).
    pub path: String,
    /// Permission bits as an octal string such as `"0755"`.
    pub mode: Mode,
    /// Apply to every file and directory below `path` too (symlinks inside are not followed).
    #[serde(default)]
    pub recursive: bool,
}

/// Replace strings in a file: stdenv's `substitute` / `substituteInPlace`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SubstituteStep {
    /// The file to read.
    pub file: String,
    /// Where to write the result. Defaults to `file` itself (in place); the mode of `file` is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out: Option<String>,
    /// Literal replacements, applied in order (`--replace-fail` / `--replace-warn`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace: Vec<Replacement>,
    /// `@NAME@` placeholders and their values (`--subst-var-by`). Each placeholder MUST occur.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
}

/// Unpack sources into the build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UnpackStep {
    /// Archives (tar, tar.gz/bz2/xz/zst, zip, a Debian package's files, a compressed file) or
    /// directories, in order.
    pub srcs: Vec<String>,
    /// The source root, relative to the unpack directory, when it is not the single new
    /// directory (stdenv's `sourceRoot`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_root: Option<String>,
    /// Extract here instead (relative to the working directory), with no source-root rule and no
    /// change of working directory: e.g. Debian's `debian/` tarball inside the source root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub into: Option<String>,
    /// Unpack the sources as root file systems (Debian packages) laid out as on a merged-/usr
    /// system: entries under the top-level `bin`, `sbin`, `lib`, `lib32`, `lib64` and `libx32`
    /// go under `usr/`, and absolute symlink targets become relative links inside `into`.
    /// Needs `into`. Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub merge_usr: bool,
}

/// Point prebuilt ELF files at the store, as nixpkgs' autoPatchelfHook does: every
/// dynamically linked ELF file under `paths` gets `interpreter` (when it has one) and a
/// `DT_RUNPATH` of the `searchPath` directories that hold its `DT_NEEDED` libraries, in order
/// (`$ORIGIN` entries kept, other old entries dropped). A library found nowhere fails the step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AutoPatchelfStep {
    /// Files or directories (walked without following symlinks) whose ELF files are patched.
    pub paths: Vec<String>,
    /// The dynamic loader to set as the interpreter of every ELF file that has one, e.g.
    /// `${inputs.runtime}/lib/ld-linux-x86-64.so.2`. Without it, interpreters are left alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpreter: Option<String>,
    /// Directories to look for needed libraries in, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search_path: Vec<String>,
    /// Needed libraries (file names such as `libfoo.so.1`) that may be found nowhere; `*`
    /// allows any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_missing: Vec<String>,
    /// Files or directories under `paths` to leave alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

/// Rewrite `#!` lines as stdenv's `patchShebangs PATH...` does, for scripts the build runs (the
/// sandbox has no `/usr/bin/env`, `/usr/bin/perl` or `/bin/bash`; `/bin/sh` only where the Nix
/// configuration maps one): each executable file gets the interpreter of the same name found on
/// the step's `PATH` (`/usr/bin/env NAME` too), arguments kept. An interpreter found nowhere is a
/// warning. The fixup step does the same for the outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PatchShebangsStep {
    /// Scripts, or directories walked for executable files (symlinks not followed), relative to
    /// the working directory or absolute. Each MUST exist.
    pub paths: Vec<String>,
}

/// Apply patches in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PatchStep {
    /// Patch files (`.patch`, `.diff`, or compressed with gzip, bzip2 or xz).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<String>,
    /// A quilt `series` file (Debian's `debian/patches/series`), applied after `patches`; its
    /// patches are relative to its directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<String>,
    /// Leading path components to strip (`patch -pN`). Default 1.
    #[serde(default = "default_strip")]
    pub strip: usize,
}

fn default_strip() -> usize {
    1
}

/// Run a configure script the way stdenv's `configurePhase` does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConfigureStep {
    /// The script, relative to the working directory. Default `./configure`.
    #[serde(default = "default_configure_script")]
    pub script: String,
    /// Flags after the automatic ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// The prefix flag, `--prefix=` by default; `prefix` is appended.
    #[serde(default = "default_prefix_key")]
    pub prefix_key: String,
    /// The prefix (stdenv: `$prefix`, the `out` output). Omit to add no prefix flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Add `--disable-dependency-tracking` when the script knows it (stdenv's default).
    #[serde(default = "enabled_by_default")]
    pub disable_dependency_tracking: bool,
    /// Add `--disable-static` when the script knows `--enable-static` (stdenv's default).
    #[serde(default = "enabled_by_default")]
    pub disable_static: bool,
    /// Extra environment for the script.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

fn default_configure_script() -> String {
    "./configure".to_owned()
}

fn default_prefix_key() -> String {
    "--prefix=".to_owned()
}

/// Run `make` (found on `PATH`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MakeStep {
    /// Flags such as `PREFIX=…` or `-C dir`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// Targets to build; none means make's default target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// Build the first of these targets that the makefile has (checked with `make -n`), or skip
    /// the step with a message when it has none: stdenv's `check` / `test` detection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub first_existing_target: Vec<String>,
    /// Pass `-jN -lN` with N = `NIX_BUILD_CORES` (stdenv's `enableParallelBuilding`).
    #[serde(default = "enabled_by_default")]
    pub parallel: bool,
    /// A makefile other than make's default (`-f FILE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub makefile: Option<String>,
}

/// stdenv's fixupPhase, for every output. Every knob defaults to stdenv's behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FixupStep {
    /// Move `man`, `doc`, `info` (or the `forceShare` list) of `out` under `share` (stdenv's
    /// move-docs.sh).
    #[serde(default = "enabled_by_default")]
    pub move_docs: bool,
    /// Move `lib64` into `lib` (`dontMoveLib64` turns it off).
    #[serde(default = "enabled_by_default")]
    pub move_lib64: bool,
    /// Move `sbin` into `bin` (`dontMoveSbin` turns it off).
    #[serde(default = "enabled_by_default")]
    pub move_sbin: bool,
    /// With several outputs, move files to `dev`, `man`, `doc`, … like stdenv's
    /// multiple-outputs.sh.
    #[serde(default = "enabled_by_default")]
    pub split_outputs: bool,
    /// Rewrite `#!` lines to interpreters found on `PATH` (`dontPatchShebangs` turns it off).
    #[serde(default = "enabled_by_default")]
    pub patch_shebangs: bool,
    /// Strip debug symbols from ELF files with the `strip` found on `PATH` (`dontStrip`).
    #[serde(default = "enabled_by_default")]
    pub strip: bool,
    /// Remove RPATH entries that provide no needed library (`patchelf --shrink-rpath`).
    #[serde(default = "enabled_by_default")]
    pub shrink_rpath: bool,
    /// gzip man pages deterministically (`dontGzipMan`).
    #[serde(default = "enabled_by_default")]
    pub compress_man: bool,
    /// Empty `dependency_libs` in libtool `.la` files (`dontPruneLibtoolFiles`).
    #[serde(default = "enabled_by_default")]
    pub prune_libtool_files: bool,
    /// Turn absolute symlinks within an output into relative ones.
    #[serde(default = "enabled_by_default")]
    pub make_symlinks_relative: bool,
    /// Fail on dangling symlinks.
    #[serde(default = "enabled_by_default")]
    pub check_broken_symlinks: bool,
    /// Fail when a file refers to the build directory (stdenv's audit-tmpdir.sh).
    #[serde(default = "enabled_by_default")]
    pub audit_tmpdir: bool,
    /// Per output: allowed / disallowed references and a maximum size (Nix's `outputChecks`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub output_checks: BTreeMap<String, OutputCheck>,
    /// Directories, relative to each output, whose ELF files lose their debug symbols
    /// (stdenv's `stripDebugList`). Default: `lib lib32 lib64 libexec bin sbin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_debug_list: Option<Vec<String>>,
    /// `strip` flags for them (`stripDebugFlags`). Default: `-S -p`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_debug_flags: Option<Vec<String>>,
    /// Directories whose ELF files lose all symbols (`stripAllList`). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_all_list: Option<Vec<String>>,
    /// `strip` flags for them (`stripAllFlags`). Default: `-s -p`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_all_flags: Option<Vec<String>>,
    /// Shell patterns (`*`, `?`, `[...]`) of files never stripped, matched against a file's base
    /// name or, after the output's path, its whole path (`stripExclude`). Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub strip_exclude: Vec<String>,
    /// Before stripping, copy the debug info of every ELF file with a build ID to
    /// `lib/debug/.build-id/XX/YYYY.debug` of the `debug` output (`out` when there is none),
    /// as nixpkgs' `separateDebugInfo`. Default: off.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub separate_debug_info: bool,
    /// The directories of `out` moved under `share` (`forceShare`). Default: `man doc info`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_share: Option<Vec<String>>,
    /// With several outputs, the output each kind of file goes to, where the plan sets it
    /// (stdenv's `outputDev`, `outputBin`, …). Unset roles follow stdenv's defaults, which build
    /// on the roles set here (`man` falls back to `bin`).
    #[serde(default, skip_serializing_if = "OutputRoles::is_empty")]
    pub output_roles: OutputRoles,
    /// With several outputs, move `include`, pkg-config, CMake and aclocal files to the `dev`
    /// role's output (stdenv's `moveToDev`). Default: on.
    #[serde(default = "enabled_by_default")]
    pub move_to_dev: bool,
    /// With several outputs, the outputs the `dev` role's output propagates through
    /// `nix-support/propagated-build-inputs` (`propagatedBuildOutputs`). Default: the `bin`,
    /// `include` and `lib` roles' outputs other than `dev`'s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagated_build_outputs: Option<Vec<String>>,
}

/// Output roles a plan sets (see [`FixupStep::output_roles`]). Each value MUST name one of the
/// plan's outputs; `devdoc` may also be `REMOVE` (delete what it would receive).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OutputRoles {
    /// pkg-config, CMake and aclocal files, and the propagation files (`outputDev`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    /// Programs (`outputBin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin: Option<String>,
    /// Headers (`outputInclude`; default: the `dev` role's output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<String>,
    /// Libraries (`outputLib`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lib: Option<String>,
    /// `share/doc` (`outputDoc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
    /// `share/gtk-doc`, `share/devhelp/books` (`outputDevdoc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devdoc: Option<String>,
    /// `share/man` (`outputMan`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub man: Option<String>,
    /// `share/man/man3` (`outputDevman`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devman: Option<String>,
    /// `share/info` (`outputInfo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<String>,
}

impl OutputRoles {
    /// Whether no role is set.
    pub fn is_empty(&self) -> bool {
        *self == OutputRoles::default()
    }

    /// The roles that are set: (field name, output name), in declaration order.
    pub fn set(&self) -> Vec<(&'static str, &str)> {
        [
            ("dev", &self.dev),
            ("bin", &self.bin),
            ("include", &self.include),
            ("lib", &self.lib),
            ("doc", &self.doc),
            ("devdoc", &self.devdoc),
            ("man", &self.man),
            ("devman", &self.devman),
            ("info", &self.info),
        ]
        .into_iter()
        .filter_map(|(role, name)| name.as_deref().map(|name| (role, name)))
        .collect()
    }
}

impl Default for FixupStep {
    fn default() -> Self {
        FixupStep {
            move_docs: true,
            move_lib64: true,
            move_sbin: true,
            split_outputs: true,
            patch_shebangs: true,
            strip: true,
            shrink_rpath: true,
            compress_man: true,
            prune_libtool_files: true,
            make_symlinks_relative: true,
            check_broken_symlinks: true,
            audit_tmpdir: true,
            output_checks: BTreeMap::new(),
            strip_debug_list: None,
            strip_debug_flags: None,
            strip_all_list: None,
            strip_all_flags: None,
            strip_exclude: Vec::new(),
            separate_debug_info: false,
            force_share: None,
            output_roles: OutputRoles::default(),
            move_to_dev: true,
            propagated_build_outputs: None,
        }
    }
}

/// Checks on one output, after fixup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OutputCheck {
    /// Store paths the output may refer to (all others fail); absent means no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_references: Option<Vec<String>>,
    /// Store paths the output must not refer to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disallowed_references: Vec<String>,
    /// Largest allowed total size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
}

/// One literal replacement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Replacement {
    /// The exact text to find. MUST NOT be empty.
    pub from: String,
    /// The text that replaces every occurrence.
    pub to: String,
    /// What to do when `from` does not occur: `fail` (default, like `--replace-fail`) or `warn`
    /// (like `--replace-warn`).
    #[serde(default, skip_serializing_if = "IfMissing::is_fail")]
    pub if_missing: IfMissing,
}

/// What a substitution does when its pattern is not found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum IfMissing {
    /// Fail the step.
    #[default]
    Fail,
    /// Print a warning and go on.
    Warn,
}

impl IfMissing {
    fn is_fail(&self) -> bool {
        *self == IfMissing::Fail
    }
}

/// Unix permission bits, written in plans as an octal string (`"0755"`, `"644"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode(pub u32);

impl Mode {
    /// Parses `"755"`, `"0755"` or `"4755"`; at most `07777`.
    pub fn parse(text: &str) -> Option<Mode> {
        let valid_length = (3..=5).contains(&text.len());
        if !valid_length || !text.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return None;
        }
        let bits = u32::from_str_radix(text, 8).ok()?;
        (bits <= 0o7777).then_some(Mode(bits))
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl Serialize for Mode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ModeVisitor;
        impl serde::de::Visitor<'_> for ModeVisitor {
            type Value = Mode;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an octal mode string such as \"0755\"")
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Mode, E> {
                Mode::parse(value)
                    .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(value), &self))
            }
        }
        deserializer.deserialize_str(ModeVisitor)
    }
}

impl JsonSchema for Mode {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Mode".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Unix permission bits as an octal string, e.g. \"0755\".",
            "type": "string",
            "pattern": "^[0-7]{3,5}$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn propagation_goes_to_the_named_output_else_dev_else_out() {
        let has = |names: &'static [&'static str]| move |name: &str| names.contains(&name);
        let default = Propagate::default();
        assert_eq!(default.output_in(has(&["out", "dev"])), Some("dev"));
        assert_eq!(default.output_in(has(&["out", "lib"])), Some("out"));
        assert_eq!(default.output_in(has(&["bin"])), None);
        let named = Propagate {
            output: Some("lib".to_owned()),
            ..Propagate::default()
        };
        assert_eq!(named.output_in(has(&["out", "dev", "lib"])), Some("lib"));
        assert_eq!(named.output_in(has(&["out", "dev"])), None);
        assert!(!named.is_empty());
    }

    #[test]
    fn mode_parses_octal_strings_only() {
        assert_eq!(Mode::parse("755"), Some(Mode(0o755)));
        assert_eq!(Mode::parse("0644"), Some(Mode(0o644)));
        assert_eq!(Mode::parse("4755"), Some(Mode(0o4755)));
        assert_eq!(Mode::parse("75"), None);
        assert_eq!(Mode::parse("0789"), None);
        assert_eq!(Mode::parse("17777"), None);
        assert_eq!(Mode(0o755).to_string(), "0755");
    }

    #[test]
    fn input_accepts_a_path_or_a_list() {
        let one: Input = serde_json::from_str(r#""/nix/store/a""#).unwrap();
        assert_eq!(one.paths(), ["/nix/store/a"]);
        let many: Input = serde_json::from_str(r#"["/a", "/b"]"#).unwrap();
        assert_eq!(many.paths(), ["/a", "/b"]);
        let err = serde_json::from_str::<Input>("3").unwrap_err();
        assert!(err.to_string().contains("a path string or a list"), "{err}");
    }

    #[test]
    fn steps_are_externally_tagged_and_round_trip() {
        let json = r#"{"run":{"argv":["make","-j4"],"env":{"A":"b"}}}"#;
        let step: Step = serde_json::from_str(json).unwrap();
        assert_eq!(step.kind(), "run");
        assert_eq!(serde_json::to_string(&step).unwrap(), json);
    }

    #[test]
    fn phase_defaults() {
        let phase: Phase = serde_json::from_str(r#"{"name":"build","steps":[]}"#).unwrap();
        assert!(phase.enabled);
        assert_eq!(phase.timeout, None);
    }
}
