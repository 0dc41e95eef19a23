//! The plan data model: what a build is, as typed data.
//!
//! A [`Plan`] names its outputs and inputs, sets environment variables and lists [`Phase`]s, each
//! an ordered list of [`Step`]s. Every type here rejects unknown fields, so a typo is an error
//! with its JSON path rather than a silently ignored key. The step types, with their references
//! and checks, are in [`crate::steps`], one file per kind.
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

use crate::steps::Step;

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

/// `true`: the serde default of flags that are on unless a plan turns them off.
pub(crate) fn enabled_by_default() -> bool {
    true
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
    fn phase_defaults() {
        let phase: Phase = serde_json::from_str(r#"{"name":"build","steps":[]}"#).unwrap();
        assert!(phase.enabled);
        assert_eq!(phase.timeout, None);
    }
}
