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
    /// The phases, run in this order. Names MUST be unique.
    pub phases: Vec<Phase>,
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
    /// and match `[A-Za-z0-9_.-]+`.
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
}

impl Step {
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
