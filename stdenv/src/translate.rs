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

use std::collections::{BTreeMap, BTreeSet};

use kiln_fixup::outputs::{MultipleOutputs, RoleOverrides};
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
    let Value::Object(map) = attrs else {
        return Err(TranslateErrors(vec![TranslateError::new(
            JsonPath::root(),
            TranslateErrorKind::NotAnObject,
        )]));
    };
    let reader = Reader::new(map);
    let translation = Translator::new(&reader, options).run();
    let mut errors = sorted(reader.take_errors());
    if errors.is_empty() {
        errors = validation_errors(&translation, map);
    }
    if errors.is_empty() {
        Ok(translation)
    } else {
        Err(TranslateErrors(errors))
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

/// [`translate`], and the names of the attributes the translator read (for tests that hold the
/// translator to the attribute table).
#[cfg(test)]
pub(crate) fn translate_reading(
    attrs: &Value,
    options: &TranslateOptions,
) -> (Result<Translation, TranslateErrors>, BTreeSet<&'static str>) {
    let map = attrs.as_object().expect("an object");
    let reader = Reader::new(map);
    let translation = Translator::new(&reader, options).run();
    let errors = sorted(reader.take_errors());
    let read = reader.read();
    let errors = if errors.is_empty() {
        validation_errors(&translation, map)
    } else {
        errors
    };
    if errors.is_empty() {
        (Ok(translation), read)
    } else {
        (Err(TranslateErrors(errors)), read)
    }
}

struct Translator<'r, 'a> {
    r: &'r Reader<'a>,
    options: &'r TranslateOptions<'r>,
    system: BuildSystem,
    outputs: Vec<String>,
    /// The output roles the derivation sets itself (`outputDev`, …), checked against `outputs`.
    role_overrides: RoleOverrides,
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
            role_overrides: RoleOverrides::default(),
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

    /// `kilnEdits`: the plan's `edits` (insert a phase of typed steps before or after a phase,
    /// replace or delete one), applied to the translated phases. An inserted or replacing phase
    /// gets the provenance `kilnEdits[i]`; errors point into `kilnEdits`.
    fn apply_kiln_edits(&mut self, phases: Vec<Phase>) -> Vec<Phase> {
        let Some(value) = self.r.raw("kilnEdits") else {
            return phases;
        };
        let at = JsonPath::root().key("kilnEdits");
        let edits: Vec<kiln_schema::Edit> = match kiln_schema::parse::from_value(value.clone(), &at)
        {
            Ok(edits) => edits,
            Err(error) => {
                self.r.error(
                    error.path.clone(),
                    TranslateErrorKind::InvalidPlan {
                        message: error.kind.to_string(),
                        generated: error.path.to_string(),
                    },
                );
                return phases;
            }
        };
        if edits.is_empty() {
            return phases;
        }
        let scratch = Plan {
            version: PLAN_VERSION,
            name: "kiln-edits".to_owned(),
            outputs: None,
            inputs: BTreeMap::new(),
            env: BTreeMap::new(),
            deps: Deps::default(),
            propagate: Propagate::default(),
            preset: None,
            edits: edits.clone(),
            phases: phases.clone(),
        };
        let expanded = match kiln_schema::preset::expand(&scratch, &[]) {
            Ok(expanded) => expanded,
            Err(errors) => {
                for error in errors.0 {
                    // `edits[i]…` of the scratch plan is `kilnEdits[i]…` of the attributes.
                    use kiln_schema::path::Segment;
                    let generated = error.path.to_string();
                    let path = match error.path.segments() {
                        [Segment::Key(edits), rest @ ..] if edits == "edits" => {
                            rest.iter().fold(at.clone(), |path, segment| match segment {
                                Segment::Key(key) => path.key(key.clone()),
                                Segment::Index(index) => path.index(*index),
                            })
                        }
                        _ => at.clone(),
                    };
                    self.r.error(
                        path,
                        TranslateErrorKind::InvalidPlan {
                            message: error.kind.to_string(),
                            generated,
                        },
                    );
                }
                return phases;
            }
        };
        // Which edit made each new phase: the last edit inserting (or replacing with) its name.
        let made_by = |name: &str| -> Option<usize> {
            edits.iter().rposition(|edit| match edit {
                kiln_schema::Edit::Before(insert) | kiln_schema::Edit::After(insert) => {
                    insert.insert.name == name
                }
                kiln_schema::Edit::Replace(replace) => replace.with.name == name,
                kiln_schema::Edit::Delete(_) => false,
            })
        };
        let old: Vec<PhaseProvenance> = std::mem::take(&mut self.report.provenance);
        let mut out = Vec::new();
        for mut phase in expanded.phases {
            let provenance = match made_by(&phase.name) {
                Some(index) => {
                    let origin = format!("kilnEdits[{index}]");
                    phase.origin = Some(origin.clone());
                    PhaseProvenance {
                        phase: phase.name.clone(),
                        stdenv: origin.clone(),
                        enabled: phase.enabled,
                        switch: vec![origin.clone()],
                        steps: phase.steps.iter().map(|_| vec![origin.clone()]).collect(),
                    }
                }
                None => old
                    .iter()
                    .find(|provenance| provenance.phase == phase.name)
                    .cloned()
                    .expect("a phase the edits did not make was translated"),
            };
            self.report.provenance.push(provenance);
            out.push(phase);
        }
        out
    }

    /// Output names, sorted (Nix writes them as an object; a list is accepted too).
    fn outputs(&self) -> Vec<String> {
        let mut names: Vec<String> = match self.r.raw("outputs") {
            Some(Value::Object(outputs)) => outputs.keys().cloned().collect(),
            Some(value @ Value::Array(_)) => self
                .r
                .list_value(JsonPath::root().key("outputs"), value)
                .unwrap_or_default(),
            Some(other) => {
                self.r.wrong_type(
                    JsonPath::root().key("outputs"),
                    "an object of outputs",
                    other,
                );
                Vec::new()
            }
            None => Vec::new(),
        };
        if names.is_empty() {
            names.push("out".to_owned());
        }
        names.sort();
        names.dedup();
        names
    }

    /// The roles multiple-outputs.sh lets a derivation set (`outputDev = "lib"`, …); each must
    /// name an output (`outputDevdoc` may be `REMOVE`).
    fn role_overrides(&self) -> RoleOverrides {
        let mut overrides = RoleOverrides::default();
        let roles: [(&'static str, &mut Option<String>); 9] = [
            ("outputDev", &mut overrides.dev),
            ("outputBin", &mut overrides.bin),
            ("outputInclude", &mut overrides.include),
            ("outputLib", &mut overrides.lib),
            ("outputDoc", &mut overrides.doc),
            ("outputDevdoc", &mut overrides.devdoc),
            ("outputMan", &mut overrides.man),
            ("outputDevman", &mut overrides.devman),
            ("outputInfo", &mut overrides.info),
        ];
        for (attribute, slot) in roles {
            let Some(name) = self.r.string(attribute).filter(|name| !name.is_empty()) else {
                continue;
            };
            let remove = attribute == "outputDevdoc" && name == kiln_fixup::outputs::REMOVE;
            if !remove && !self.outputs.contains(&name) {
                self.r.error(
                    JsonPath::root().key(attribute),
                    TranslateErrorKind::OutputRole {
                        message: format!(
                            "`{attribute}` is `{name}`, which is not an output (outputs: {})",
                            self.outputs.join(", ")
                        ),
                    },
                );
                continue;
            }
            *slot = Some(name);
        }
        overrides
    }

    /// Names in `phases` and the `pre…Phases` lists that are not stdenv's own: attributes of
    /// shell code.
    fn custom_phase_names(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        let lists = std::iter::once("phases").chain(PHASE_LISTS.iter().map(|(list, _)| *list));
        for list in lists {
            for entry in self.r.list(list).unwrap_or_default() {
                if !STANDARD.iter().any(|(_, stdenv, _)| *stdenv == entry) {
                    names.insert(entry);
                }
            }
        }
        names
    }

    /// Refuses unsupported attributes, collects shell code, warns about unknown stdenv-looking
    /// attributes. Returns each shell-code attribute with its replacement.
    fn classify(&mut self, custom: &BTreeSet<String>) -> Vec<(String, &'static str)> {
        let mut shell = Vec::new();
        for (name, value) in self.r.all() {
            match table::lookup(name).map(|row| row.status) {
                Some(Status::Unsupported(why)) if !is_empty(value) => self.r.error(
                    JsonPath::root().key(name.clone()),
                    TranslateErrorKind::Unsupported {
                        attribute: name.clone(),
                        why,
                    },
                ),
                Some(Status::Shell(replacement)) if !is_empty(value) => {
                    if value.as_str().and_then(typed_hook).is_some() {
                        // Only `patchShebangs` lines: typed steps, not shell code.
                    } else if value.is_array() {
                        self.check_typed_steps(name, value);
                    } else if value.is_string() {
                        shell.push((name.clone(), replacement));
                    } else {
                        self.r.wrong_type(
                            JsonPath::root().key(name.clone()),
                            "a string of shell code or a list of typed steps",
                            value,
                        );
                    }
                }
                Some(_) => {}
                None if custom.contains(name) && value.as_str().and_then(typed_hook).is_some() => {}
                None if custom.contains(name) && value.is_array() => {
                    self.check_typed_steps(name, value)
                }
                None if custom.contains(name) => shell.push((
                    name.clone(),
                    "a phase of typed steps, placed with `edits` (`before`/`after`)",
                )),
                None => {
                    if let Some(warning) = unknown_attribute_warning(name) {
                        self.report.warnings.push(warning);
                    }
                }
            }
        }
        shell
    }

    /// Inputs and dependency roles; returns `(deps, propagate)`.
    fn dependencies(&mut self) -> (Deps, Deps) {
        let mut deps = Deps::default();
        let mut propagate = Deps::default();
        let lists: [(&'static str, bool, bool); 4] = [
            ("nativeBuildInputs", true, false),
            ("propagatedNativeBuildInputs", true, true),
            ("buildInputs", false, false),
            ("propagatedBuildInputs", false, true),
        ];
        for (name, build, propagated) in lists {
            let paths = self.r.paths(name);
            if paths.is_empty() {
                continue;
            }
            self.inputs.insert(name.to_owned(), Input::List(paths));
            let role = |deps: &mut Deps| {
                if build {
                    deps.build.push(name.to_owned());
                } else {
                    deps.host.push(name.to_owned());
                }
            };
            role(&mut deps);
            if propagated {
                role(&mut propagate);
            }
        }
        deps.strict = self.r.flag("strictDeps");
        (deps, propagate)
    }

    /// nixpkgs' cmake setup hook's configurePhase: `mkdir -p build`, then `cmake ..` there with
    /// the hook's default flags (kiln's stated differences: no compiler flags, which point at
    /// nixpkgs' cc-wrapper; `-DCMAKE_SKIP_BUILD_RPATH=ON` before `cmakeFlags`, see
    /// `docs/stdenv-attributes.md`; `shareDocName` not read from `project()`).
    fn cmake_steps(
        &self,
        roles: &Roles,
        prefix: &str,
        add_prefix: bool,
        do_check: bool,
    ) -> Vec<(&'static str, Option<String>, Vec<Step>)> {
        let r = self.r;
        let mut argv: Vec<String> = vec![
            "cmake".to_owned(),
            "..".to_owned(),
            "-DCMAKE_FIND_FRAMEWORK=LAST".to_owned(),
            "-DCMAKE_POLICY_DEFAULT_CMP0025=NEW".to_owned(),
        ];
        argv.extend(roles.cmake_flags());
        let build_type = r
            .string("cmakeBuildType")
            .unwrap_or_else(|| "Release".to_owned());
        argv.push(format!("-DCMAKE_BUILD_TYPE={}", literal(&build_type)));
        argv.extend(
            [
                "-DCMAKE_EXPORT_NO_PACKAGE_REGISTRY=ON",
                "-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF",
                "-DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF",
            ]
            .map(str::to_owned),
        );
        if add_prefix {
            argv.push(format!("-DCMAKE_INSTALL_PREFIX={prefix}"));
        }
        if !do_check {
            argv.push("-DBUILD_TESTING=OFF".to_owned());
        }
        let share_doc = r
            .string("shareDocName")
            .or_else(|| r.string("pname"))
            .map(|name| literal(&name))
            .unwrap_or_else(|| doc_name(&r.string("name").unwrap_or_default()));
        argv.push(format!(
            "-DCMAKE_INSTALL_DOCDIR={}/share/doc/{share_doc}",
            Roles::out(&roles.doc)
        ));
        // kiln: no linker wrapper adds `-rpath $out/lib`, so the build-tree rpath is skipped
        // and ld takes LD_RUN_PATH (outputs' lib first) instead.
        argv.push("-DCMAKE_SKIP_BUILD_RPATH=ON".to_owned());
        argv.extend(literal_list(r.list("cmakeFlags")));
        let configure = vec![
            Step::Mkdir(MkdirStep {
                path: "build".to_owned(),
            }),
            Step::Run(RunStep {
                argv,
                env: BTreeMap::new(),
                cwd: Some("build".to_owned()),
                stdout: None,
            }),
        ];
        vec![("configure", None, configure)]
    }

    /// nixpkgs' meson setup hook (configure, check, install) and ninja setup hook (build), with
    /// `LDFLAGS=-Wl,-rpath,$lib/lib` on `meson setup` (kiln's stand-in for the linker wrapper,
    /// unless `env` sets `LDFLAGS`).
    fn meson_steps(
        &self,
        roles: &Roles,
        prefix: &str,
        add_prefix: bool,
        parallel_building: bool,
        parallel_checking: bool,
        env_ldflags: bool,
    ) -> Vec<(&'static str, Option<String>, Vec<Step>)> {
        let r = self.r;
        let mut argv: Vec<String> = ["meson", "setup", "build"].map(str::to_owned).to_vec();
        if add_prefix {
            argv.push(format!("--prefix={prefix}"));
        }
        argv.extend(roles.meson_flags());
        let auto = r
            .string("mesonAutoFeatures")
            .unwrap_or_else(|| "enabled".to_owned());
        argv.push(format!("-Dauto_features={}", literal(&auto)));
        argv.push("-Dwrap_mode=nodownload".to_owned());
        let build_type = r
            .string("mesonBuildType")
            .unwrap_or_else(|| "plain".to_owned());
        argv.push(format!("--buildtype={}", literal(&build_type)));
        argv.extend(literal_list(r.list("mesonFlags")));
        let mut env = BTreeMap::new();
        if !env_ldflags {
            env.insert(
                "LDFLAGS".to_owned(),
                format!("-Wl,-rpath,{}/lib", Roles::out(&roles.lib)),
            );
        }
        let configure = vec![Step::Run(RunStep {
            argv,
            env,
            cwd: None,
            stdout: None,
        })];
        let ninja_flags = literal_list(r.list("ninjaFlags"));
        let ninja = |parallel: bool, targets: &[&str]| {
            let mut argv = vec![
                "ninja".to_owned(),
                if parallel {
                    "-j${build.cores}".to_owned()
                } else {
                    "-j1".to_owned()
                },
            ];
            argv.extend(ninja_flags.iter().cloned());
            argv.extend(targets.iter().map(|t| t.to_string()));
            Step::Run(RunStep {
                argv,
                env: [("TERM".to_owned(), "dumb".to_owned())].into(),
                cwd: None,
                stdout: None,
            })
        };
        let mut test = ["meson", "test", "--no-rebuild", "--print-errorlogs"]
            .map(str::to_owned)
            .to_vec();
        test.extend(literal_list(r.list("mesonCheckFlags")));
        test.push("--timeout-multiplier=0".to_owned());
        let mut install = ["meson", "install", "--no-rebuild"]
            .map(str::to_owned)
            .to_vec();
        install.extend(literal_list(r.list("mesonInstallFlags")));
        let in_build = Some("build".to_owned());
        vec![
            ("configure", None, configure),
            (
                "build",
                in_build.clone(),
                vec![ninja(parallel_building, &[])],
            ),
            (
                "check",
                in_build.clone(),
                vec![ninja(parallel_checking, &["meson-test-prereq"]), run(test)],
            ),
            ("install", in_build, vec![run(install)]),
        ]
    }

    /// `kilnShell`, else the first `bin/bash`, else the first `bin/sh`, of the dependencies.
    fn find_shell(&self) -> Option<String> {
        if let Some(shell) = self.r.string("kilnShell") {
            return Some(shell);
        }
        let order = [
            "nativeBuildInputs",
            "propagatedNativeBuildInputs",
            "buildInputs",
            "propagatedBuildInputs",
        ];
        let roots: Vec<&String> = order
            .iter()
            .filter_map(|name| self.inputs.get(*name))
            .flat_map(|input| input.paths())
            .collect();
        ["bin/bash", "bin/sh"].iter().find_map(|program| {
            roots
                .iter()
                .map(|root| format!("{}/{program}", root.trim_end_matches('/')))
                .find(|candidate| (self.options.is_executable)(candidate))
        })
    }

    /// stdenv's exported defaults, then the derivation's `env`.
    fn env(&self) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = [
            ("TZ", "UTC"),
            ("GZIP_NO_TIMESTAMPS", "1"),
            ("SSL_CERT_FILE", "/no-cert-file.crt"),
            ("NIX_SSL_CERT_FILE", "/no-cert-file.crt"),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
        if self.system == BuildSystem::Cmake {
            // nixpkgs' cmake hook exports them.
            env.insert("CTEST_OUTPUT_ON_FAILURE".to_owned(), "1".to_owned());
            if self.r.flag_or("enableParallelChecking", true) {
                env.insert(
                    "CTEST_PARALLEL_LEVEL".to_owned(),
                    "${build.cores}".to_owned(),
                );
            }
        }
        // cc-wrapper's NIX_HARDENING_ENABLE: nixpkgs' defaults, plus hardeningEnable, minus
        // hardeningDisable (`all` disables every flag). Set only when either is given, so the
        // wrapper's own defaults apply otherwise.
        let disable = self.r.list("hardeningDisable").unwrap_or_default();
        let enable = self.r.list("hardeningEnable").unwrap_or_default();
        if !disable.is_empty() || !enable.is_empty() {
            let mut flags: Vec<String> = kiln_cc::DEFAULT_HARDENING
                .iter()
                .map(|flag| (*flag).to_owned())
                .chain(enable)
                .collect();
            flags.dedup();
            if disable.iter().any(|flag| flag == "all") {
                flags.clear();
            }
            flags.retain(|flag| !disable.contains(flag));
            let mut seen = BTreeSet::new();
            flags.retain(|flag| seen.insert(flag.clone()));
            env.insert("NIX_HARDENING_ENABLE".to_owned(), flags.join(" "));
        }
        match self.r.raw("env") {
            Some(Value::Object(vars)) => {
                for (name, value) in vars {
                    match scalar(value) {
                        Some(text) => {
                            env.insert(name.clone(), literal(&text));
                        }
                        None => self.r.wrong_type(
                            JsonPath::root().key("env").key(name.clone()),
                            "a string",
                            value,
                        ),
                    }
                }
            }
            Some(other) => self
                .r
                .wrong_type(JsonPath::root().key("env"), "an object", other),
            None => {}
        }
        env
    }

    /// What shell hooks see: string, number and boolean attributes (lists of them joined with
    /// spaces) that are not shell code, plus `prefix`.
    fn shell_env(&self, custom: &BTreeSet<String>) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for (name, value) in self.r.all() {
            let shell_code = table::lookup(name)
                .is_some_and(|row| matches!(row.status, Status::Shell(_)))
                || custom.contains(name);
            if shell_code || !is_env_name(name) || name == "env" || name == "outputs" {
                continue;
            }
            let text = match value {
                Value::Array(items) => {
                    let words: Option<Vec<String>> = items.iter().map(scalar).collect();
                    match words {
                        Some(words) => words.join(" "),
                        None => continue,
                    }
                }
                other => match scalar(other) {
                    Some(text) => text,
                    None => continue,
                },
            };
            env.insert(name.clone(), literal(&text));
        }
        env.entry("prefix".to_owned())
            .or_insert_with(|| "${outputs.out}".to_owned());
        env
    }

    fn build_system(&self) -> BuildSystem {
        let named = |tool: &str| {
            ["nativeBuildInputs", "propagatedNativeBuildInputs"]
                .iter()
                .filter_map(|name| self.inputs.get(*name))
                .flat_map(|input| input.paths())
                .any(|path| store_name(path).starts_with(&format!("{tool}-")))
        };
        // `dontUseCmakeConfigure`/`dontUseMesonConfigure`: the hook leaves configurePhase alone,
        // so stdenv's generic configure and make phases run, in the source root.
        if (self.r.is_set("cmakeFlags") || named("cmake")) && !self.r.flag("dontUseCmakeConfigure")
        {
            BuildSystem::Cmake
        } else if (self.r.is_set("mesonFlags") || named("meson"))
            && !self.r.flag("dontUseMesonConfigure")
        {
            BuildSystem::Meson
        } else {
            BuildSystem::Autotools
        }
    }

    /// A run step of shell code.
    fn shell_step(&self, script: &str, phase_script: bool) -> Step {
        let shell = self.report.shell.clone().unwrap_or_else(|| "sh".to_owned());
        let script = if phase_script {
            // kiln runs preX/postX around the phase itself.
            format!("runHook() {{ :; }}\n{script}")
        } else {
            script.to_owned()
        };
        Step::Run(RunStep {
            argv: vec![
                literal(&shell),
                "-e".to_owned(),
                "-c".to_owned(),
                literal(&script),
            ],
            env: self.shell_env.clone(),
            cwd: None,
            stdout: None,
        })
    }

    /// Reports a list-valued hook that is not a list of valid steps.
    fn check_typed_steps(&self, attribute: &str, value: &Value) {
        let at = JsonPath::root().key(attribute);
        if let Err(error) = kiln_schema::parse::from_value::<Vec<Step>>(value.clone(), &at) {
            self.r.error(
                error.path.clone(),
                TranslateErrorKind::InvalidPlan {
                    message: error.kind.to_string(),
                    generated: error.path.to_string(),
                },
            );
        }
    }

    /// A hook or phase attribute as steps: a list of typed steps (kiln's typed form of
    /// `postInstall` and the like), else [`Translator::shell_hook`]'s one step.
    fn hook_steps(&mut self, attribute: &str, phase: &str) -> Option<(Vec<Step>, Vec<String>)> {
        let value = self.r.all().get(attribute)?;
        if value.is_array() {
            if is_empty(value) {
                return None;
            }
            let at = JsonPath::root().key(attribute);
            let steps: Vec<Step> = kiln_schema::parse::from_value(value.clone(), &at).ok()?;
            return Some((steps, vec![format!("{attribute} (typed steps)")]));
        }
        self.shell_hook(attribute, phase)
            .map(|(step, from)| (vec![step], from))
    }

    fn shell_hook(&mut self, attribute: &str, phase: &str) -> Option<(Step, Vec<String>)> {
        let value = self.r.all().get(attribute)?.as_str()?;
        if value.is_empty() {
            return None;
        }
        if let Some(step) = typed_hook(value) {
            return Some((step, vec![format!("{attribute} (patchShebangs, typed)")]));
        }
        self.report.shell.as_ref()?;
        let replacement = table::lookup(attribute)
            .map(|row| row.status.text())
            .unwrap_or("a phase of typed steps, placed with `edits` (`before`/`after`)");
        self.report.shell_hooks.push(ShellHook {
            attribute: attribute.to_owned(),
            phase: phase.to_owned(),
            replacement: replacement.to_owned(),
        });
        let phase_script = attribute.ends_with("Phase");
        Some((
            self.shell_step(value, phase_script),
            vec![format!("{attribute} (shell code, kilnAllowShell)")],
        ))
    }

    fn draft(&self, name: &str, stdenv: &str, origin: String) -> Draft {
        Draft {
            phase: Phase {
                name: name.to_owned(),
                enabled: true,
                timeout: None,
                cwd: None,
                steps: Vec::new(),
                origin: Some(origin),
            },
            stdenv: stdenv.to_owned(),
            switch: Vec::new(),
            steps: Vec::new(),
        }
    }

    /// `preHook` and `postHook`, in a phase `setup` (stdenv runs them while setting up).
    fn setup_phase(&mut self) -> Option<Draft> {
        let mut draft = self.draft("setup", "setup.sh", "stdenv preHook/postHook".to_owned());
        for hook in ["preHook", "postHook"] {
            if let Some((steps, from)) = self.hook_steps(hook, "setup") {
                for step in steps {
                    draft.push(step, from.clone());
                }
            }
        }
        (!draft.phase.steps.is_empty()).then_some(draft)
    }

    /// `buildCommand` / `buildCommandPath`: the whole build.
    fn build_command(&mut self) -> Option<Draft> {
        let attribute = ["buildCommand", "buildCommandPath"]
            .into_iter()
            .find(|name| self.r.all().get(*name).is_some_and(|v| !is_empty(v)))?;
        let mut draft = self.draft("build", attribute, format!("stdenv {attribute}"));
        draft
            .switch
            .push(format!("{attribute} (genericBuild runs only it)"));
        if attribute == "buildCommand" {
            let (steps, from) = self.hook_steps(attribute, "build")?;
            for step in steps {
                draft.push(step, from.clone());
            }
        } else {
            let path = self.r.all()[attribute]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            self.report.shell_hooks.push(ShellHook {
                attribute: attribute.to_owned(),
                phase: "build".to_owned(),
                replacement: table::lookup(attribute)
                    .map(|row| row.status.text())
                    .unwrap_or_default()
                    .to_owned(),
            });
            let shell = self.report.shell.clone().unwrap_or_else(|| "sh".to_owned());
            draft.push(
                Step::Run(RunStep {
                    argv: vec![literal(&shell), "-e".to_owned(), literal(&path)],
                    env: self.shell_env.clone(),
                    cwd: None,
                    stdout: None,
                }),
                vec![format!("{attribute} (shell code, kilnAllowShell)")],
            );
        }
        Some(draft)
    }

    /// The nine standard phases, in stdenv's order.
    fn standard_phases(&mut self, env: &BTreeMap<String, String>) -> Vec<Draft> {
        let r = self.r;
        let system = self.system;
        let make_based = system != BuildSystem::Meson;
        let out = "${outputs.out}".to_owned();

        // Sources.
        let srcs_attr = r.paths("srcs");
        let src_attr = r.paths("src");
        let (srcs, src_from): (Vec<String>, &str) = if !srcs_attr.is_empty() {
            let refs = (0..srcs_attr.len())
                .map(|index| format!("${{inputs.srcs.{index}}}"))
                .collect();
            self.inputs
                .insert("srcs".to_owned(), Input::List(srcs_attr));
            (refs, "srcs")
        } else if let Some(src) = src_attr.into_iter().next() {
            self.inputs.insert("src".to_owned(), Input::Path(src));
            (vec!["${inputs.src}".to_owned()], "src")
        } else {
            (Vec::new(), "")
        };
        let dont_unpack = r.flag("dontUnpack");
        if srcs.is_empty() && !dont_unpack {
            r.error(JsonPath::root().key("src"), TranslateErrorKind::NoSource);
        }
        let source_root = r.string("sourceRoot").map(|root| literal(&root));
        r.flag("dontMakeSourcesWritable");

        // Patches.
        let patches: Vec<String> = r.paths("patches").iter().map(|p| literal(p)).collect();
        let strip = self.patch_strip();

        // Configure.
        let set_output_flags = r.flag_or("setOutputFlags", true);
        let multi = self.outputs.len() > 1 && set_output_flags;
        let roles = match Roles::new(&self.outputs, &self.role_overrides) {
            Ok(roles) => roles,
            Err(error) => {
                r.error(
                    JsonPath::root().key("outputs"),
                    TranslateErrorKind::OutputRole {
                        message: error.to_string(),
                    },
                );
                Roles::all_out()
            }
        };
        let prefix = r.string("prefix").map(|p| literal(&p));
        let prefix_value = prefix.clone().unwrap_or_else(|| out.clone());
        let add_prefix = !r.flag("dontAddPrefix");
        let share_doc = r
            .string("shareDocName")
            .map(|name| literal(&name))
            .unwrap_or_else(|| doc_name(&r.string("name").unwrap_or_default()));
        let dont_configure = r.flag("dontConfigure");
        let configure_flags = r.list("configureFlags").unwrap_or_default();
        let mut all_configure_flags = Vec::new();
        if multi && system == BuildSystem::Autotools {
            all_configure_flags.extend(roles.autotools_flags(&share_doc));
        }
        all_configure_flags.extend(configure_flags.iter().map(|f| literal(f)));

        // Make (and ninja).
        let makefile = r.string("makefile").map(|m| literal(&m));
        let make_flags = literal_list(r.list("makeFlags"));
        let build_flags = literal_list(r.list("buildFlags"));
        let check_flags_attr = literal_list(r.list("checkFlags"));
        let check_flags = if check_flags_attr.is_empty() && make_based {
            vec!["VERBOSE=y".to_owned()]
        } else {
            check_flags_attr.clone()
        };
        let mut install_flags = Vec::new();
        // _multioutConfig is a preConfigure hook: no configure, no install flags.
        if multi && system == BuildSystem::Autotools && !dont_configure {
            install_flags.extend(roles.autotools_install_flags());
        }
        install_flags.extend(literal_list(r.list("installFlags")));
        let install_targets = r
            .list("installTargets")
            .filter(|t| !t.is_empty())
            .map(|t| literal_list(Some(t)));
        let check_target = r.string("checkTarget").map(|t| literal(&t));
        let hook_parallel = system != BuildSystem::Autotools;
        let parallel_building = r.flag_or("enableParallelBuilding", hook_parallel);
        let parallel_attr = r.is_set("enableParallelBuilding") && r.flag("enableParallelBuilding");
        // The ninja and meson hooks read `${enableParallelChecking-1}`: on unless set off.
        let parallel_checking = r.flag_or(
            "enableParallelChecking",
            parallel_attr || system == BuildSystem::Meson,
        );
        let parallel_installing =
            r.flag_or("enableParallelInstalling", parallel_attr || hook_parallel);
        let do_check = r.flag("doCheck");

        let fixup = self.fixup_step();
        let dont_fixup = r.flag("dontFixup");
        let preset = Preset {
            system,
            srcs,
            source_root,
            extra_sources: Vec::new(),
            patches,
            patch_series: None,
            patch_strip: strip,
            configure_script: r.string("configureScript").map(|s| literal(&s)),
            configure_flags: all_configure_flags,
            prefix_key: r.string("prefixKey").map(|k| literal(&k)),
            add_prefix,
            disable_dependency_tracking: !r.flag("dontAddDisableDepTrack"),
            disable_static: !r.flag("dontDisableStatic"),
            cmake_flags: Vec::new(),
            meson_flags: Vec::new(),
            make_flags: make_flags.clone(),
            build_flags,
            check_flags,
            install_flags,
            install_targets,
            check_target: check_target.clone(),
            do_check,
            parallel: parallel_building,
            fixup: Some(fixup),
            dont_fixup,
            // stdenv's phase switches (dontConfigure, …) are applied below, with provenance.
            dont_configure: false,
            dont_build: false,
            dont_install: false,
        };
        r.flag("dontFixLibtool");
        r.raw("NIX_DEBUG");
        let mut phases = preset_phases(&preset, true);
        // CMake and Meson: nixpkgs' hooks, step by step (the native presets are kiln's own).
        let hook_steps = match system {
            BuildSystem::Cmake => {
                Some(self.cmake_steps(&roles, &prefix_value, add_prefix, do_check))
            }
            BuildSystem::Meson => Some(self.meson_steps(
                &roles,
                &prefix_value,
                add_prefix,
                parallel_building,
                parallel_checking,
                env.contains_key("LDFLAGS"),
            )),
            _ => None,
        };
        if let Some(hook_steps) = hook_steps {
            for (name, cwd, steps) in hook_steps {
                if let Some(phase) = phases.iter_mut().find(|phase| phase.name == name) {
                    phase.cwd = cwd;
                    phase.steps = steps;
                }
            }
        }
        let origin = |stdenv: &str| format!("stdenv {stdenv} ({} build)", system.name());

        let mut drafts: Vec<Draft> = Vec::new();
        for (name, stdenv, _) in STANDARD {
            let mut draft = self.draft(name, stdenv, origin(stdenv));
            if let Some(position) = phases.iter().position(|phase| phase.name == *name) {
                let phase = phases.remove(position);
                draft.phase.cwd = phase.cwd;
                for step in phase.steps {
                    draft.push(step, Vec::new());
                }
            }
            drafts.push(draft);
        }
        let [unpack, patch, configure, build, check, install, fixup_phase, install_check, dist] =
            &mut drafts[..]
        else {
            unreachable!("nine standard phases");
        };

        // unpack
        unpack.phase.enabled = !dont_unpack;
        unpack.switch.push(if dont_unpack {
            "dontUnpack".to_owned()
        } else {
            default("unpackPhase runs")
        });
        if dont_unpack {
            unpack.clear();
        } else if let Some(from) = unpack.steps.first_mut() {
            from.push(src_from.to_owned());
            if preset.source_root.is_some() {
                from.push("sourceRoot".to_owned());
            }
            from.push(default("make the source writable, raise SOURCE_DATE_EPOCH"));
        }

        // patch
        let dont_patch = r.flag("dontPatch");
        patch.phase.enabled = !dont_patch;
        patch.switch.push(if dont_patch {
            "dontPatch".to_owned()
        } else {
            default("patchPhase runs (applies nothing without patches)")
        });
        if let Some(from) = patch.steps.first_mut() {
            from.push("patches".to_owned());
            from.push(if r.is_set("patchFlags") {
                "patchFlags".to_owned()
            } else {
                default("patchFlags -p1")
            });
        }

        // configure
        configure.phase.enabled = !dont_configure;
        configure.switch.push(if dont_configure {
            "dontConfigure".to_owned()
        } else {
            default("configurePhase runs")
        });
        let main = configure
            .phase
            .steps
            .iter()
            .position(|step| matches!(step, Step::Configure(_) | Step::Run(_)));
        if let Some(index) = main {
            let mut from = Vec::new();
            match &mut configure.phase.steps[index] {
                Step::Configure(step) => {
                    step.prefix = add_prefix.then(|| prefix_value.clone());
                    from.push(if r.string("configureScript").is_some() {
                        "configureScript".to_owned()
                    } else {
                        default("./configure")
                    });
                    if !r.flag("dontDisableStatic") {
                        from.push(default(
                            "--disable-static when the script mentions enable-static",
                        ));
                    } else {
                        from.push("dontDisableStatic".to_owned());
                    }
                    if !r.flag("dontAddDisableDepTrack") {
                        from.push(default(
                            "--disable-dependency-tracking when the script mentions dependency-tracking",
                        ));
                    } else {
                        from.push("dontAddDisableDepTrack".to_owned());
                    }
                    for (attribute, hook) in [
                        ("dontUseCmakeConfigure", "cmake"),
                        ("dontUseMesonConfigure", "meson"),
                    ] {
                        if r.flag(attribute) {
                            from.push(format!(
                                "{attribute} (the {hook} hook's configurePhase is not used: stdenv's generic one)"
                            ));
                        }
                    }
                }
                Step::Run(_) => {
                    from.push(format!("nixpkgs {} setup hook", system.name()));
                    if system == BuildSystem::Cmake {
                        from.push(if r.is_set("cmakeFlags") {
                            "cmakeFlags".to_owned()
                        } else {
                            "nativeBuildInputs (cmake)".to_owned()
                        });
                        if r.string("cmakeBuildType").is_some() {
                            from.push("cmakeBuildType".to_owned());
                        }
                        from.push(if do_check {
                            "doCheck (no -DBUILD_TESTING=OFF)".to_owned()
                        } else {
                            default("doCheck off: -DBUILD_TESTING=OFF")
                        });
                        if r.string("shareDocName").is_some() {
                            from.push("shareDocName".to_owned());
                        }
                    } else {
                        from.push(if r.is_set("mesonFlags") {
                            "mesonFlags".to_owned()
                        } else {
                            "nativeBuildInputs (meson)".to_owned()
                        });
                        from.push(if r.string("mesonAutoFeatures").is_some() {
                            "mesonAutoFeatures".to_owned()
                        } else {
                            "nixpkgs meson hook default: -Dauto_features=enabled".to_owned()
                        });
                        if r.string("mesonBuildType").is_some() {
                            from.push("mesonBuildType".to_owned());
                        }
                    }
                    from.push(format!(
                        "outputs ({}): the hook's directory flags",
                        self.outputs.join(", ")
                    ));
                }
                _ => {}
            }
            from.push(if !add_prefix {
                "dontAddPrefix".to_owned()
            } else if prefix.is_some() {
                "prefix".to_owned()
            } else {
                default("prefix $out")
            });
            if system == BuildSystem::Autotools {
                if r.string("prefixKey").is_some() {
                    from.push("prefixKey".to_owned());
                }
                if !configure_flags.is_empty() {
                    from.push("configureFlags".to_owned());
                }
                if multi {
                    from.push(format!(
                        "setOutputFlags ({} outputs: {})",
                        self.outputs.len(),
                        self.outputs.join(", ")
                    ));
                }
            }
            configure.steps[index] = from;
            if index > 0 {
                configure.steps[0] = vec![format!("nixpkgs {} setup hook", system.name())];
            }
        }

        // build, check, install: per-phase parallelism, makefile.
        let dont_build = r.flag("dontBuild");
        build.phase.enabled = !dont_build;
        build.switch.push(if dont_build {
            "dontBuild".to_owned()
        } else {
            default("buildPhase runs")
        });
        adjust_make(build, makefile.as_ref(), parallel_building);
        let parallel_from = |attr: &'static str, value: bool, fallback: &str| {
            if r.is_set(attr) {
                attr.to_owned()
            } else if value {
                fallback.to_owned()
            } else {
                default(&format!("{attr} off"))
            }
        };
        if let Some(from) = build.steps.first_mut() {
            from.extend(present(r, &["makefile", "makeFlags", "buildFlags"]));
            from.push(parallel_from(
                "enableParallelBuilding",
                parallel_building,
                &format!("nixpkgs {} hook: enableParallelBuilding", system.name()),
            ));
        }

        check.phase.enabled = do_check;
        check.switch.push(if do_check {
            "doCheck".to_owned()
        } else {
            default("doCheck off")
        });
        adjust_make(check, makefile.as_ref(), parallel_checking);
        if let Some(from) = check.steps.first_mut() {
            from.extend(present(r, &["makefile", "makeFlags"]));
            from.push(if !check_flags_attr.is_empty() {
                "checkFlags".to_owned()
            } else if make_based {
                default("checkFlags VERBOSE=y")
            } else {
                default("no checkFlags")
            });
            from.push(if check_target.is_some() {
                "checkTarget".to_owned()
            } else if make_based {
                default("first of check, test that `make -n` accepts, else nothing")
            } else {
                "preset meson: test".to_owned()
            });
            from.push(parallel_from(
                "enableParallelChecking",
                parallel_checking,
                "enableParallelBuilding",
            ));
        }

        let dont_install = r.flag("dontInstall");
        install.phase.enabled = !dont_install;
        install.switch.push(if dont_install {
            "dontInstall".to_owned()
        } else {
            default("installPhase runs")
        });
        adjust_make(install, makefile.as_ref(), parallel_installing);
        if let Some(from) = install.steps.first_mut() {
            from.extend(present(r, &["makefile", "makeFlags", "installFlags"]));
            if multi && system == BuildSystem::Autotools {
                from.push(format!("setOutputFlags ({} outputs)", self.outputs.len()));
            }
            from.push(if r.is_set("installTargets") {
                "installTargets".to_owned()
            } else {
                default("installTargets install")
            });
            from.push(parallel_from(
                "enableParallelInstalling",
                parallel_installing,
                "enableParallelBuilding",
            ));
        }
        if make_based && !install.phase.steps.is_empty() {
            install.insert(
                0,
                Step::Mkdir(MkdirStep {
                    path: prefix_value.clone(),
                }),
                vec![
                    default("mkdir -p $prefix"),
                    if prefix.is_some() {
                        "prefix".to_owned()
                    } else {
                        default("prefix $out")
                    },
                ],
            );
        }

        // fixup
        fixup_phase.phase.enabled = !dont_fixup;
        fixup_phase.switch.push(if dont_fixup {
            "dontFixup".to_owned()
        } else {
            default("fixupPhase runs")
        });
        if let Some(from) = fixup_phase.steps.first_mut() {
            let knobs: Vec<&str> = FIXUP_KNOBS
                .iter()
                .map(|(attr, _)| *attr)
                .chain([
                    "outputChecks",
                    "stripDebugList",
                    "stripDebugFlags",
                    "stripAllList",
                    "stripAllFlags",
                    "stripExclude",
                    "separateDebugInfo",
                    "forceShare",
                    "outputDev",
                    "outputBin",
                    "outputInclude",
                    "outputLib",
                    "outputDoc",
                    "outputDevdoc",
                    "outputMan",
                    "outputDevman",
                    "outputInfo",
                    "moveToDev",
                    "propagatedBuildOutputs",
                ])
                .filter(|attr| r.all().get(*attr).is_some_and(|v| !is_empty(v)))
                .collect();
            if knobs.is_empty() {
                from.push(default("every fixup hook"));
            } else {
                from.extend(knobs.iter().map(|k| k.to_string()));
            }
            if self.outputs.len() > 1 {
                from.push(format!(
                    "outputs ({}): multiple-outputs.sh",
                    self.outputs.join(", ")
                ));
            }
            if r.is_set("propagatedBuildInputs") || r.is_set("propagatedNativeBuildInputs") {
                from.push(format!(
                    "propagated*BuildInputs: written to nix-support/ of {} (outputDev)",
                    roles.dev
                ));
            }
        }
        if self.report.shell.is_some() {
            if let Some(Value::String(hook)) = r.all().get("setupHook") {
                // setup.sh: `substituteAll "$setupHook" "${!outputDev}/nix-support/setup-hook"`.
                let dev = &roles.dev;
                self.report.shell_hooks.push(ShellHook {
                    attribute: "setupHook".to_owned(),
                    phase: "fixup".to_owned(),
                    replacement: table::lookup("setupHook")
                        .map(|row| row.status.text())
                        .unwrap_or_default()
                        .to_owned(),
                });
                fixup_phase.push(
                    Step::Mkdir(MkdirStep {
                        path: format!("${{outputs.{dev}}}/nix-support"),
                    }),
                    vec!["setupHook".to_owned()],
                );
                fixup_phase.push(
                    Step::Copy(CopyStep {
                        from: literal(hook),
                        to: format!("${{outputs.{dev}}}/nix-support/setup-hook"),
                    }),
                    vec!["setupHook (copied, no @var@ substitution)".to_owned()],
                );
            }
        }

        // setup.sh's fixupPhase, after the hooks: `printWords $propagatedUserEnvPkgs >
        // "${!outputBin}/nix-support/propagated-user-env-packages"` (each path and a space).
        let user_env = r.paths("propagatedUserEnvPkgs");
        if !user_env.is_empty() {
            let content: String = user_env.iter().map(|path| format!("{path} ")).collect();
            fixup_phase.push(
                Step::Write(WriteStep {
                    path: format!(
                        "${{outputs.{}}}/nix-support/propagated-user-env-packages",
                        roles.bin
                    ),
                    content: literal(&content),
                    mode: None,
                }),
                vec![
                    "propagatedUserEnvPkgs".to_owned(),
                    default("written to nix-support/ of outputBin"),
                ],
            );
        }

        // installCheck
        let do_install_check = r.flag("doInstallCheck");
        install_check.phase.enabled = do_install_check;
        install_check.switch.push(if do_install_check {
            "doInstallCheck".to_owned()
        } else {
            default("doInstallCheck off")
        });
        let install_check_target = r
            .string("installCheckTarget")
            .filter(|t| !t.is_empty())
            .map(|t| literal(&t));
        let mut install_check_flags = make_flags.clone();
        install_check_flags.extend(literal_list(r.list("installCheckFlags")));
        install_check.phase.cwd = build.phase.cwd.clone();
        if make_based {
            let (targets, first_existing_target) = match &install_check_target {
                Some(target) => (vec![target.clone()], Vec::new()),
                None => (Vec::new(), vec!["installcheck".to_owned()]),
            };
            let step = Step::Make(MakeStep {
                flags: install_check_flags,
                targets,
                first_existing_target,
                parallel: parallel_checking,
                makefile: makefile.clone(),
            });
            let mut from = present(r, &["makefile", "makeFlags", "installCheckFlags"]);
            from.push(if install_check_target.is_some() {
                "installCheckTarget".to_owned()
            } else {
                default("installcheck when `make -n` accepts it, else nothing")
            });
            from.push(parallel_from(
                "enableParallelChecking",
                parallel_checking,
                "enableParallelBuilding",
            ));
            install_check.push(step, from);
        } else {
            // stdenv's installCheckPhase is make's, and does nothing when the build phase found
            // no Makefile: with ninja building, it never runs a command.
            install_check.switch.push(default(
                "installCheckPhase does nothing without a Makefile (ninja built)",
            ));
            if do_install_check && install_check_target.is_some() {
                self.report.warnings.push(
                    "`installCheckTarget` has no effect on a Meson build: stdenv's installCheckPhase \
                     runs make only when the build phase found a Makefile (add a phase of `run` \
                     steps instead)"
                        .to_owned(),
                );
            }
        }

        // dist: kiln refuses doDist, so the phase is always off.
        dist.phase.enabled = false;
        dist.switch
            .push(default("doDist off (kiln does not support doDist)"));

        // Shell hooks and phase strings (without a shell, only the typed `patchShebangs` ones:
        // shell code without the opt-in was refused already).
        for draft in drafts.iter_mut() {
            let Some((_, stdenv, stem)) = STANDARD
                .iter()
                .find(|(name, _, _)| *name == draft.phase.name)
            else {
                continue;
            };
            let phase_name = draft.phase.name.clone();
            if let Some((steps, from)) = self.hook_steps(stdenv, &phase_name) {
                draft.clear();
                for step in steps {
                    draft.push(step, from.clone());
                }
            }
            let top = |step: Step| match step {
                Step::Run(mut run) if phase_name == "unpack" => {
                    run.cwd = Some("${build.top}".to_owned());
                    Step::Run(run)
                }
                other => other,
            };
            if let Some((steps, from)) = self.hook_steps(&format!("pre{stem}"), &phase_name) {
                for step in steps.into_iter().rev() {
                    draft.insert(0, top(step), from.clone());
                }
            }
            if let Some((steps, from)) = self.hook_steps(&format!("post{stem}"), &phase_name) {
                for step in steps {
                    draft.push(top(step), from.clone());
                }
            }
        }
        drafts
    }

    /// The phase list: `phases` if given, else stdenv's default order with the `pre…Phases`
    /// lists; `setup` first when `preHook`/`postHook` run.
    fn arrange(&mut self, standard: Vec<Draft>, custom: &BTreeSet<String>) -> Vec<Draft> {
        let r = self.r;
        let mut standard: BTreeMap<String, Draft> = standard
            .into_iter()
            .map(|draft| (draft.stdenv.clone(), draft))
            .collect();
        let mut order: Vec<(String, JsonPath)> = Vec::new();
        if let Some(list) = r.list("phases").filter(|list| !list.is_empty()) {
            for (index, name) in list.into_iter().enumerate() {
                order.push((name, JsonPath::root().key("phases").index(index)));
            }
        } else {
            let lists: BTreeMap<&str, Vec<String>> = PHASE_LISTS
                .iter()
                .map(|(list, _)| (*list, r.list(list).unwrap_or_default()))
                .collect();
            let push_list = |list: &'static str, order: &mut Vec<(String, JsonPath)>| {
                for (index, name) in lists[list].iter().enumerate() {
                    order.push((name.clone(), JsonPath::root().key(list).index(index)));
                }
            };
            for (name, stdenv, _) in STANDARD {
                if let Some((list, _)) = PHASE_LISTS
                    .iter()
                    .find(|(_, before)| *before == Some(*name))
                {
                    push_list(list, &mut order);
                }
                order.push((stdenv.to_string(), JsonPath::root()));
            }
            push_list("postPhases", &mut order);
        }
        let mut drafts: Vec<Draft> = self.setup_phase().into_iter().collect();
        let known: Vec<String> = STANDARD
            .iter()
            .map(|(_, stdenv, _)| stdenv.to_string())
            .collect();
        for (name, path) in order {
            if let Some(draft) = standard.remove(&name) {
                drafts.push(draft);
                continue;
            }
            if !custom.contains(&name) || !r.all().contains_key(&name) {
                r.error(
                    path,
                    TranslateErrorKind::UnknownPhase {
                        name,
                        known: known.clone(),
                    },
                );
                continue;
            }
            let kiln_name = match name.strip_suffix("Phase") {
                Some(stem) if !stem.is_empty() && !drafts.iter().any(|d| d.phase.name == stem) => {
                    stem.to_owned()
                }
                _ => name.clone(),
            };
            let mut draft = self.draft(&kiln_name, &name, format!("stdenv custom phase {name}"));
            draft
                .switch
                .push(format!("{name} (listed in a phase list)"));
            if let Some((steps, from)) = self.hook_steps(&name, &kiln_name) {
                for step in steps {
                    draft.push(step, from.clone());
                }
            }
            drafts.push(draft);
        }
        drafts
    }

    fn patch_strip(&self) -> usize {
        let Some(flags) = self.r.list("patchFlags") else {
            return 1;
        };
        let mut strip = 1;
        for (index, flag) in flags.iter().enumerate() {
            let level = flag
                .strip_prefix("-p")
                .or_else(|| flag.strip_prefix("--strip="))
                .and_then(|n| n.parse::<usize>().ok());
            match level {
                Some(level) => strip = level,
                None => self.r.error(
                    JsonPath::root().key("patchFlags").index(index),
                    TranslateErrorKind::PatchFlag { flag: flag.clone() },
                ),
            }
        }
        strip
    }

    fn fixup_step(&self) -> FixupStep {
        let mut fixup = FixupStep::default();
        for (attribute, knob) in FIXUP_KNOBS {
            if self.r.flag(attribute) {
                knob(&mut fixup);
            }
        }
        // stdenv's strip hook reads these as words; an empty list strips nothing there.
        fixup.strip_debug_list = self.r.list("stripDebugList");
        fixup.strip_debug_flags = self.r.list("stripDebugFlags");
        fixup.strip_all_list = self.r.list("stripAllList");
        fixup.strip_all_flags = self.r.list("stripAllFlags");
        fixup.strip_exclude = self.r.list("stripExclude").unwrap_or_default();
        fixup.separate_debug_info = self.r.flag("separateDebugInfo");
        // move-docs.sh: `forceShare=${forceShare:=man doc info}`, so empty means the default.
        fixup.force_share = self.r.list("forceShare").filter(|dirs| !dirs.is_empty());
        let o = &self.role_overrides;
        fixup.output_roles = OutputRoles {
            dev: o.dev.clone(),
            bin: o.bin.clone(),
            include: o.include.clone(),
            lib: o.lib.clone(),
            doc: o.doc.clone(),
            devdoc: o.devdoc.clone(),
            man: o.man.clone(),
            devman: o.devman.clone(),
            info: o.info.clone(),
        };
        fixup.move_to_dev = self.r.flag_or("moveToDev", true);
        // Set (even to `[]`, which propagates nothing) it replaces stdenv's default list.
        fixup.propagated_build_outputs = self.r.list("propagatedBuildOutputs");
        if let Some(checks) = self.r.raw("outputChecks") {
            match checks {
                Value::Object(outputs) => {
                    for (output, check) in outputs {
                        if let Some(check) = self.output_check(output, check) {
                            fixup.output_checks.insert(output.clone(), check);
                        }
                    }
                }
                other => {
                    self.r
                        .wrong_type(JsonPath::root().key("outputChecks"), "an object", other)
                }
            }
        }
        fixup
    }

    /// The part of Nix's `outputChecks` kiln's fixup checks too; Nix checks the rest.
    fn output_check(&self, output: &str, value: &Value) -> Option<OutputCheck> {
        let path = JsonPath::root().key("outputChecks").key(output.to_owned());
        let Value::Object(fields) = value else {
            self.r.wrong_type(path, "an object", value);
            return None;
        };
        let refs = |name: &str| -> Option<Vec<String>> {
            fields
                .get(name)
                .filter(|v| !v.is_null())
                .and_then(|v| self.r.list_value(path.key(name), v))
        };
        let max_size = match fields.get("maxSize") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::Null) | None => None,
            Some(other) => {
                self.r
                    .wrong_type(path.key("maxSize"), "a number of bytes", other);
                None
            }
        };
        Some(OutputCheck {
            allowed_references: refs("allowedReferences"),
            disallowed_references: refs("disallowedReferences").unwrap_or_default(),
            max_size,
        })
    }
}

type Knob = fn(&mut FixupStep);

/// stdenv's fixup switches and the fixup step's knob each turns off.
const FIXUP_KNOBS: &[(&str, Knob)] = &[
    ("dontStrip", |f| f.strip = false),
    ("dontPatchShebangs", |f| f.patch_shebangs = false),
    ("dontGzipMan", |f| f.compress_man = false),
    ("dontMoveLib64", |f| f.move_lib64 = false),
    ("dontMoveSbin", |f| f.move_sbin = false),
    ("dontPruneLibtoolFiles", |f| f.prune_libtool_files = false),
    ("dontPatchELF", |f| f.shrink_rpath = false),
    ("dontRewriteSymlinks", |f| f.make_symlinks_relative = false),
    ("dontCheckForBrokenSymlinks", |f| {
        f.check_broken_symlinks = false
    }),
    ("noAuditTmpdir", |f| f.audit_tmpdir = false),
];

/// Sets `makefile` and `parallel` on every make step (ninja runs are made with theirs).
fn adjust_make(draft: &mut Draft, makefile: Option<&String>, parallel: bool) {
    for step in &mut draft.phase.steps {
        if let Step::Make(make) = step {
            make.makefile = makefile.cloned();
            make.parallel = parallel;
        }
    }
}

fn run(argv: Vec<String>) -> Step {
    Step::Run(RunStep {
        argv,
        env: BTreeMap::new(),
        cwd: None,
        stdout: None,
    })
}

fn present(r: &Reader, attributes: &[&'static str]) -> Vec<String> {
    attributes
        .iter()
        .filter(|attr| r.raw(attr).is_some_and(|v| !is_empty(v)))
        .map(|attr| attr.to_string())
        .collect()
}

/// A hook that only calls stdenv's `patchShebangs` (the commonest `postPatch` in nixpkgs:
/// `patchShebangs tests`), as one typed `patchShebangs` step: lines of `patchShebangs
/// [--build] PATH...` with plain paths (letters, digits, `._/+-@=,`; no `$`, quotes, globs or
/// options other than `--build`), blank lines and `#` comments. Anything else is shell code.
fn typed_hook(script: &str) -> Option<Step> {
    let plain = |word: &str| {
        !word.starts_with('-')
            && word
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._/+-@=,".contains(&b))
    };
    let mut paths = Vec::new();
    for line in script.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        if words.next() != Some("patchShebangs") {
            return None;
        }
        let mut named = 0;
        for word in words {
            match word {
                "--build" if named == 0 => {}
                word if plain(word) => {
                    paths.push(word.to_owned());
                    named += 1;
                }
                _ => return None,
            }
        }
        if named == 0 {
            return None;
        }
    }
    (!paths.is_empty()).then_some(Step::PatchShebangs(PatchShebangsStep { paths }))
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

/// A warning for an attribute kiln does not know, when it looks like stdenv vocabulary.
fn unknown_attribute_warning(name: &str) -> Option<String> {
    let upper_after = |prefix: &str| {
        name.strip_prefix(prefix)
            .and_then(|rest| rest.chars().next())
            .is_some_and(|c| c.is_ascii_uppercase())
    };
    let looks = ["dont", "do", "pre", "post"].iter().any(|p| upper_after(p))
        || [
            "Flags", "Phase", "Phases", "Inputs", "Hook", "Hooks", "Array",
        ]
        .iter()
        .any(|suffix| name.ends_with(suffix) && name.len() > suffix.len());
    if !looks {
        return None;
    }
    let known: Vec<String> = table::ATTRIBUTES
        .iter()
        .map(|a| a.name.to_owned())
        .collect();
    let suggestion = kiln_schema::error::suggest(name, &known, "attributes");
    let suggestion = if suggestion.starts_with("did you mean") {
        format!(" ({suggestion})")
    } else {
        String::new()
    };
    Some(format!(
        "attribute `{}` looks like stdenv vocabulary but kiln does not know it: ignored, as stdenv with __structuredAttrs ignores unknown attributes{suggestion}",
        kiln_schema::excerpt::excerpt(name)
    ))
}

/// stdenv's output roles (`_overrideFirst` chains of multiple-outputs.sh, after the roles the
/// derivation sets), taken from `kiln_fixup::outputs::MultipleOutputs::stdenv_with` so that the
/// configure flags and the fixup's moves agree: `outputMan` and `outputInfo` fall back to
/// `outputBin`, never to `doc`.
pub(crate) struct Roles {
    pub(crate) bin: String,
    pub(crate) include: String,
    pub(crate) lib: String,
    pub(crate) doc: String,
    pub(crate) man: String,
    pub(crate) info: String,
    pub(crate) dev: String,
}

impl Roles {
    pub(crate) fn new(
        outputs: &[String],
        overrides: &RoleOverrides,
    ) -> Result<Roles, kiln_fixup::StepError> {
        let roles = MultipleOutputs::stdenv_with(outputs.iter().map(String::as_str), overrides)?;
        Ok(Roles {
            bin: roles.bin,
            include: roles.include,
            lib: roles.lib,
            doc: roles.doc,
            man: roles.man,
            info: roles.info,
            dev: roles.dev,
        })
    }

    /// Every role in `out`: what the translation goes on with after reporting a role error.
    fn all_out() -> Roles {
        let out = || "out".to_owned();
        Roles {
            bin: out(),
            include: out(),
            lib: out(),
            doc: out(),
            man: out(),
            info: out(),
            dev: out(),
        }
    }

    fn out(name: &str) -> String {
        format!("${{outputs.{name}}}")
    }

    /// `_multioutConfig`'s configure flags.
    fn autotools_flags(&self, share_doc: &str) -> Vec<String> {
        let o = Roles::out;
        vec![
            format!("--bindir={}/bin", o(&self.bin)),
            format!("--sbindir={}/sbin", o(&self.bin)),
            format!("--includedir={}/include", o(&self.include)),
            format!("--oldincludedir={}/include", o(&self.include)),
            format!("--mandir={}/share/man", o(&self.man)),
            format!("--infodir={}/share/info", o(&self.info)),
            format!("--docdir={}/share/doc/{share_doc}", o(&self.doc)),
            format!("--libdir={}/lib", o(&self.lib)),
            format!("--libexecdir={}/libexec", o(&self.lib)),
            format!("--localedir={}/share/locale", o(&self.lib)),
        ]
    }

    /// `_multioutConfig`'s install flags.
    fn autotools_install_flags(&self) -> Vec<String> {
        let o = Roles::out;
        vec![
            format!("pkgconfigdir={}/lib/pkgconfig", o(&self.dev)),
            format!("m4datadir={}/share/aclocal", o(&self.dev)),
            format!("aclocaldir={}/share/aclocal", o(&self.dev)),
        ]
    }

    /// nixpkgs' cmake hook's directory flags (always passed: the hook ignores
    /// `setOutputFlags`), in the hook's order; `CMAKE_INSTALL_DOCDIR` comes later.
    fn cmake_flags(&self) -> Vec<String> {
        let o = Roles::out;
        vec![
            format!("-DCMAKE_INSTALL_NAME_DIR={}/lib", o(&self.lib)),
            format!("-DCMAKE_INSTALL_BINDIR={}/bin", o(&self.bin)),
            format!("-DCMAKE_INSTALL_SBINDIR={}/sbin", o(&self.bin)),
            format!("-DCMAKE_INSTALL_INCLUDEDIR={}/include", o(&self.include)),
            format!("-DCMAKE_INSTALL_MANDIR={}/share/man", o(&self.man)),
            format!("-DCMAKE_INSTALL_INFODIR={}/share/info", o(&self.info)),
            format!("-DCMAKE_INSTALL_LIBDIR={}/lib", o(&self.lib)),
            format!("-DCMAKE_INSTALL_LIBEXECDIR={}/libexec", o(&self.lib)),
            format!("-DCMAKE_INSTALL_LOCALEDIR={}/share/locale", o(&self.lib)),
        ]
    }

    /// nixpkgs' meson hook's directory flags (always passed: the hook ignores `setOutputFlags`).
    fn meson_flags(&self) -> Vec<String> {
        let o = Roles::out;
        vec![
            format!("--libdir={}/lib", o(&self.lib)),
            format!("--libexecdir={}/libexec", o(&self.lib)),
            format!("--bindir={}/bin", o(&self.bin)),
            format!("--sbindir={}/sbin", o(&self.bin)),
            format!("--includedir={}/include", o(&self.include)),
            format!("--mandir={}/share/man", o(&self.man)),
            format!("--infodir={}/share/info", o(&self.info)),
            format!("--localedir={}/share/locale", o(&self.lib)),
        ]
    }
}
