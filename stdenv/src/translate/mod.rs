//! The translation itself: stdenv's attributes in, a kiln [`Plan`] out, with where each phase
//! and step came from.
//!
//! The phases come from kiln's build-system presets ([`kiln_schema::preset::preset_phases`]),
//! which already emulate stdenv's generic builder, fed with the attributes' values; the
//! translation then applies what stdenv decides per phase and the presets have no knob for
//! (phase switches, per-phase parallelism, `makefile`, `checkFlags`' default, `mkdir -p $prefix`
//! before installing, the installCheck and dist phases, phase lists, shell hooks). The result
//! is a plan of explicit phases made of existing step kinds, each phase tagged with its origin
//! (`stdenv configurePhase (autotools)`), and a [`Translation`] that says, step by step, which
//! attributes and defaults made it.
//!
//! One file per concern: [`outputs`] (names and roles), [`environment`] (dependencies, `env`),
//! [`systems`] (the build system; the cmake and meson hooks' commands), [`phases`] (the
//! standard phases and their arrangement), [`shell`] (shell code, hooks, typed hooks),
//! [`fixup`] (the fixup step, output checks) and [`edits`] (`kilnEdits`); this file holds the
//! entry points, the result types and the translator's `run`.

use std::collections::{BTreeMap, BTreeSet};

use kiln_schema::events::Level;
use kiln_schema::preset::{preset_phases, BuildSystem, Preset};
use kiln_schema::{
    CopyStep, Deps, FixupStep, Input, JsonPath, MakeStep, MkdirStep, OutputCheck, OutputRoles,
    PatchShebangsStep, Phase, Plan, Propagate, RunStep, Step, WriteStep, PLAN_VERSION,
};
use serde::Serialize;
use serde_json::Value;

use crate::error::{TranslateError, TranslateErrorKind, TranslateErrors};
use crate::reader::{is_empty, literal, scalar, Reader};
use crate::table::{self, Status};

mod edits;
mod environment;
mod fixup;
mod outputs;
mod phases;
mod shell;
mod systems;

use self::fixup::*;
use self::outputs::*;

/// What the translation may ask of the machine.
pub struct TranslateOptions<'a> {
    /// Whether `path` is an executable file: used to find a shell among the inputs when
    /// `kilnAllowShell` is set.
    pub is_executable: &'a dyn Fn(&str) -> bool,
}

/// A translated derivation: the plan, and what made it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Translation {
    /// The plan (explicit phases; no preset, no edits).
    #[serde(skip)]
    pub plan: Plan,
    /// The report: build system, provenance, shell hooks, warnings.
    #[serde(flatten)]
    pub report: Report,
}

/// Where the plan came from, for `kiln plan` and the build log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The build system chosen (`autotools`, `cmake`, `meson`; `shell` for `buildCommand`).
    pub build_system: String,
    /// Per phase, in plan order: what made it and each of its steps.
    pub provenance: Vec<PhaseProvenance>,
    /// Shell-code attributes that run (only with `kilnAllowShell`).
    pub shell_hooks: Vec<ShellHook>,
    /// The shell they run through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// Attributes ignored that look like stdenv vocabulary, and similar notes.
    pub warnings: Vec<String>,
}

/// What made one phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseProvenance {
    /// The kiln phase name.
    pub phase: String,
    /// stdenv's name for it (`configurePhase`, or the custom phase's attribute).
    pub stdenv: String,
    /// Whether it runs.
    pub enabled: bool,
    /// The attributes (or stdenv defaults) that decided whether it runs.
    pub switch: Vec<String>,
    /// Per step, in order: the attributes and defaults it came from.
    pub steps: Vec<Vec<String>>,
}

/// A shell-code attribute that runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShellHook {
    /// The attribute.
    pub attribute: String,
    /// The phase it runs in.
    pub phase: String,
    /// The typed step that would replace it.
    pub replacement: String,
}

impl Report {
    /// Messages for the build log: the warnings, and how many shell hooks run (info level).
    pub fn messages(&self) -> Vec<(Level, String)> {
        let mut messages: Vec<(Level, String)> = self
            .warnings
            .iter()
            .map(|warning| (Level::Warn, warning.clone()))
            .collect();
        if let (Some(shell), false) = (&self.shell, self.shell_hooks.is_empty()) {
            let names: Vec<&str> = self
                .shell_hooks
                .iter()
                .map(|hook| hook.attribute.as_str())
                .collect();
            messages.push((
                Level::Info,
                format!(
                    "{} shell {} run through `{shell}` (kilnAllowShell): {}",
                    self.shell_hooks.len(),
                    if self.shell_hooks.len() == 1 {
                        "hook"
                    } else {
                        "hooks"
                    },
                    names.join(", ")
                ),
            ));
        }
        messages
    }
}

/// stdenv's standard phases: kiln name, stdenv name, hook stem (`preConfigure`).
const STANDARD: &[(&str, &str, &str)] = &[
    ("unpack", "unpackPhase", "Unpack"),
    ("patch", "patchPhase", "Patch"),
    ("configure", "configurePhase", "Configure"),
    ("build", "buildPhase", "Build"),
    ("check", "checkPhase", "Check"),
    ("install", "installPhase", "Install"),
    ("fixup", "fixupPhase", "Fixup"),
    ("installCheck", "installCheckPhase", "InstallCheck"),
    ("dist", "distPhase", "Dist"),
];

/// The phase lists, and the standard phase each comes before (`None`: at the end).
const PHASE_LISTS: &[(&str, Option<&str>)] = &[
    ("prePhases", Some("unpack")),
    ("preConfigurePhases", Some("configure")),
    ("preBuildPhases", Some("build")),
    ("preInstallPhases", Some("install")),
    ("preFixupPhases", Some("fixup")),
    ("preDistPhases", Some("dist")),
    ("postPhases", None),
];

/// A phase being made, with the provenance of its steps.
struct Draft {
    phase: Phase,
    stdenv: String,
    switch: Vec<String>,
    steps: Vec<Vec<String>>,
}

impl Draft {
    fn push(&mut self, step: Step, from: Vec<String>) {
        self.phase.steps.push(step);
        self.steps.push(from);
    }

    fn insert(&mut self, index: usize, step: Step, from: Vec<String>) {
        self.phase.steps.insert(index, step);
        self.steps.insert(index, from);
    }

    fn clear(&mut self) {
        self.phase.steps.clear();
        self.steps.clear();
    }
}

fn default(text: &str) -> String {
    format!("stdenv default: {text}")
}

/// Translates stdenv's attributes (the content of `.attrs.json`) into a kiln plan.
///
/// Every problem is reported at once; see [`crate::table::ATTRIBUTES`] for what each attribute
/// becomes.
pub fn translate(
    attrs: &Value,
    options: &TranslateOptions,
) -> Result<Translation, TranslateErrors> {
    translate_reading(attrs, options).0
}

/// [`translate`], and the names of the attributes the translator read (tests hold the
/// translator to the attribute table with them).
pub(crate) fn translate_reading(
    attrs: &Value,
    options: &TranslateOptions,
) -> (Result<Translation, TranslateErrors>, BTreeSet<&'static str>) {
    let Value::Object(map) = attrs else {
        let error = TranslateError::new(JsonPath::root(), TranslateErrorKind::NotAnObject);
        return (Err(TranslateErrors(vec![error])), BTreeSet::new());
    };
    let reader = Reader::new(map);
    let translation = Translator::new(&reader, options).run();
    let mut errors = sorted(reader.take_errors());
    if errors.is_empty() {
        errors = validation_errors(&translation, map);
    }
    let read = reader.read();
    if errors.is_empty() {
        (Ok(translation), read)
    } else {
        (Err(TranslateErrors(errors)), read)
    }
}

/// kiln's validation of the translated plan, each error moved to the stdenv attribute that made
/// the failing step (the first attribute of the step's provenance), so the user is pointed at
/// what they wrote, not at a plan they never saw.
fn validation_errors(
    translation: &Translation,
    attrs: &serde_json::Map<String, Value>,
) -> Vec<TranslateError> {
    let Err(plan_errors) = kiln_schema::validate(&translation.plan) else {
        return Vec::new();
    };
    let attribute_of = |entry: &String| -> Option<String> {
        let name: String = entry
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        attrs.contains_key(&name).then_some(name)
    };
    plan_errors
        .0
        .into_iter()
        .map(|error| {
            use kiln_schema::path::Segment;
            let segments = error.path.segments();
            let attribute = match segments {
                [Segment::Key(phases), Segment::Index(phase), Segment::Key(steps), Segment::Index(step), ..]
                    if phases == "phases" && steps == "steps" =>
                {
                    translation
                        .report
                        .provenance
                        .get(*phase)
                        .and_then(|p| p.steps.get(*step))
                        .and_then(|from| from.iter().find_map(attribute_of))
                }
                [Segment::Key(env), ..] if env == "env" => Some("env".to_owned()),
                _ => None,
            };
            let path = attribute
                .map(|name| JsonPath::root().key(name))
                .unwrap_or_else(JsonPath::root);
            TranslateError::new(
                path,
                TranslateErrorKind::InvalidPlan {
                    message: error.kind.to_string(),
                    generated: error.path.to_string(),
                },
            )
        })
        .collect()
}

/// Errors in attribute order (`.attrs.json` lists attributes sorted by name).
fn sorted(mut errors: Vec<TranslateError>) -> Vec<TranslateError> {
    errors.sort_by_cached_key(|error| error.path.to_string());
    errors
}

struct Translator<'r, 'a> {
    r: &'r Reader<'a>,
    options: &'r TranslateOptions<'r>,
    system: BuildSystem,
    outputs: Vec<String>,
    /// The output roles the derivation sets itself (`outputDev`, …), checked against `outputs`.
    role_overrides: OutputRoles,
    inputs: BTreeMap<String, Input>,
    report: Report,
    shell_env: BTreeMap<String, String>,
}

impl<'r, 'a> Translator<'r, 'a> {
    fn new(r: &'r Reader<'a>, options: &'r TranslateOptions<'r>) -> Self {
        Translator {
            r,
            options,
            system: BuildSystem::Autotools,
            outputs: Vec::new(),
            role_overrides: OutputRoles::default(),
            inputs: BTreeMap::new(),
            report: Report::default(),
            shell_env: BTreeMap::new(),
        }
    }

    fn run(mut self) -> Translation {
        let r = self.r;
        let name = r.string("name").unwrap_or_else(|| "package".to_owned());
        r.string("pname");
        r.string("version");
        self.outputs = self.outputs();
        self.role_overrides = self.role_overrides();
        let custom = self.custom_phase_names();
        let shell_attributes = self.classify(&custom);
        let allow_shell = r.flag("kilnAllowShell");
        let deps = self.dependencies();
        if !shell_attributes.is_empty() {
            if allow_shell {
                self.report.shell = self.find_shell();
                if self.report.shell.is_none() {
                    r.error(
                        JsonPath::root().key("kilnAllowShell"),
                        TranslateErrorKind::NoShell,
                    );
                }
            } else {
                // At the first shell-code attribute; the message lists all of them.
                r.error(
                    JsonPath::root().key(shell_attributes[0].0.clone()),
                    TranslateErrorKind::ShellCode {
                        hooks: shell_attributes.clone(),
                    },
                );
            }
        } else {
            r.string("kilnShell");
        }
        self.system = self.build_system();
        self.report.build_system = self.system.name().to_owned();
        let env = self.env();
        self.shell_env = self.shell_env(&custom);

        let drafts = if let Some(command) = self.build_command() {
            self.report.build_system = "shell".to_owned();
            let mut drafts = self.setup_phase().into_iter().collect::<Vec<_>>();
            drafts.push(command);
            drafts
        } else {
            let standard = self.standard_phases(&env);
            self.arrange(standard, &custom)
        };

        let mut phases = Vec::new();
        for draft in drafts {
            self.report.provenance.push(PhaseProvenance {
                phase: draft.phase.name.clone(),
                stdenv: draft.stdenv,
                enabled: draft.phase.enabled,
                switch: draft.switch,
                steps: draft.steps,
            });
            phases.push(draft.phase);
        }
        let phases = self.apply_kiln_edits(phases);
        let plan = Plan {
            version: PLAN_VERSION,
            name,
            outputs: Some(self.outputs.clone()),
            inputs: std::mem::take(&mut self.inputs),
            env,
            deps: deps.0,
            propagate: Propagate {
                build: deps.1.build,
                host: deps.1.host,
                // setup.sh writes the propagation files into `${!outputDev}`.
                output: self.role_overrides.dev.clone(),
            },
            preset: None,
            edits: Vec::new(),
            phases,
        };
        Translation {
            plan,
            report: self.report,
        }
    }
}

type Knob = fn(&mut FixupStep);

fn present(r: &Reader, attributes: &[&'static str]) -> Vec<String> {
    attributes
        .iter()
        .filter(|attr| r.raw(attr).is_some_and(|v| !is_empty(v)))
        .map(|attr| attr.to_string())
        .collect()
}

fn literal_list(list: Option<Vec<String>>) -> Vec<String> {
    list.unwrap_or_default()
        .iter()
        .map(|item| literal(item))
        .collect()
}

/// The name of a store path without its hash.
fn store_name(path: &str) -> &str {
    let base = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path);
    match base.split_once('-') {
        Some((hash, rest)) if hash.len() == 32 => rest,
        _ => base,
    }
}

/// stdenv's fallback for `shareDocName`: the name up to the first `-` followed by a non-letter.
fn doc_name(name: &str) -> String {
    let bytes = name.as_bytes();
    let cut = (0..bytes.len())
        .find(|&i| bytes[i] == b'-' && bytes.get(i + 1).is_none_or(|b| !b.is_ascii_alphabetic()))
        .unwrap_or(name.len());
    literal(&name[..cut])
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
