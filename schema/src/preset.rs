//! Build-system presets: data that expands into named phases, like stdenv's generic builder.
//!
//! A [`Preset`] names a build system and its flags; [`expand`] turns a plan with a preset into
//! a plan with phases (`unpack`, `patch`, `configure`, `build`, `check`, `install`, `fixup`),
//! each tagged with its origin, then applies the plan's [`Edit`]s and any edits contributed by
//! dependency hooks. An edit that names a phase that does not exist is an error that lists the
//! phases that do (Guix silently ignores such edits; we do not).

use std::collections::{BTreeMap, HashMap};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{known_names, PlanError, PlanErrorKind, PlanErrors, Problems};
use crate::path::JsonPath;
use crate::plan::{Edit, Phase, Plan};
use crate::steps::{ConfigureStep, FixupStep, MakeStep, PatchStep, Step, UnpackStep};

/// The build systems kiln has presets for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum BuildSystem {
    /// `./configure --prefix=$out`, `make`, `make check`, `make install`.
    Autotools,
    /// A plain Makefile: `make PREFIX=$out`, `make install PREFIX=$out`.
    Make,
    /// `cmake -B build`, then make in `build`.
    Cmake,
    /// `meson setup build`, then ninja in `build`.
    Meson,
}

impl BuildSystem {
    /// The name as written in plans.
    pub fn name(self) -> &'static str {
        match self {
            BuildSystem::Autotools => "autotools",
            BuildSystem::Make => "make",
            BuildSystem::Cmake => "cmake",
            BuildSystem::Meson => "meson",
        }
    }
}

/// Another source unpacked inside the source root after the main one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExtraSource {
    /// The archive or directory.
    pub src: String,
    /// Where, relative to the source root. Default `.`.
    #[serde(default = "default_into")]
    pub into: String,
}

fn default_into() -> String {
    ".".to_owned()
}

fn enabled() -> bool {
    true
}

/// A build-system preset and its knobs (stdenv's attribute names, camelCase).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Preset {
    /// The build system.
    pub system: BuildSystem,
    /// The sources to unpack (stdenv's `src` / `srcs`). At least one.
    pub srcs: Vec<String>,
    /// The source root when it is not the single new directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_root: Option<String>,
    /// More sources unpacked inside the source root (e.g. Debian's `debian/` tarball).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_sources: Vec<ExtraSource>,
    /// Patch files, applied in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<String>,
    /// A quilt series file relative to the source root, e.g. `debian/patches/series`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_series: Option<String>,
    /// `patch -pN`. Default 1.
    #[serde(default = "default_strip")]
    pub patch_strip: usize,
    /// autotools: the configure script. Default `./configure`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configure_script: Option<String>,
    /// autotools: flags after the automatic ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configure_flags: Vec<String>,
    /// autotools: the prefix flag. Default `--prefix=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_key: Option<String>,
    /// autotools: add the prefix flag (stdenv's `dontAddPrefix` is `false` here).
    #[serde(default = "enabled")]
    pub add_prefix: bool,
    /// autotools: add `--disable-dependency-tracking` when known (`dontAddDisableDepTrack`).
    #[serde(default = "enabled")]
    pub disable_dependency_tracking: bool,
    /// autotools: add `--disable-static` when known (`dontDisableStatic`).
    #[serde(default = "enabled")]
    pub disable_static: bool,
    /// cmake: flags after the automatic ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cmake_flags: Vec<String>,
    /// meson: flags after the automatic ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub meson_flags: Vec<String>,
    /// Flags for every make (or ninja) call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub make_flags: Vec<String>,
    /// Flags for the build call only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build_flags: Vec<String>,
    /// Flags for the check call only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub check_flags: Vec<String>,
    /// Flags for the install call only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub install_flags: Vec<String>,
    /// Install targets. Default `["install"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_targets: Option<Vec<String>>,
    /// The check target; default: the first of `check`, `test` that exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_target: Option<String>,
    /// Run the check phase (stdenv's `doCheck`, off by default).
    #[serde(default)]
    pub do_check: bool,
    /// Build with `-jN` (stdenv's `enableParallelBuilding`).
    #[serde(default = "enabled")]
    pub parallel: bool,
    /// Fixup knobs; default stdenv's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixup: Option<FixupStep>,
    /// Skip the fixup phase entirely (stdenv's `dontFixup`).
    #[serde(default)]
    pub dont_fixup: bool,
    /// Skip the configure phase (stdenv's `dontConfigure`): a source without a configure script
    /// (autotools), or one configured by an edit.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dont_configure: bool,
    /// Skip the build phase (stdenv's `dontBuild`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dont_build: bool,
    /// Skip the install phase (stdenv's `dontInstall`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dont_install: bool,
}

fn default_strip() -> usize {
    1
}

/// The phases a preset yields, before edits. `plan_sets_ldflags`: the plan's `env` has
/// `LDFLAGS` (then the meson preset leaves it alone).
pub fn preset_phases(preset: &Preset, plan_sets_ldflags: bool) -> Vec<Phase> {
    let origin = format!("preset {}", preset.system.name());
    let phase = |name: &str, steps: Vec<Step>| Phase {
        name: name.to_owned(),
        enabled: true,
        timeout: None,
        cwd: None,
        steps,
        origin: Some(origin.clone()),
    };
    let mut phases = Vec::new();

    let mut unpack = vec![Step::Unpack(UnpackStep {
        srcs: preset.srcs.clone(),
        source_root: preset.source_root.clone(),
        into: None,
        merge_usr: false,
    })];
    for extra in &preset.extra_sources {
        unpack.push(Step::Unpack(UnpackStep {
            srcs: vec![extra.src.clone()],
            source_root: None,
            into: Some(extra.into.clone()),
            merge_usr: false,
        }));
    }
    phases.push(phase("unpack", unpack));

    let patch = PatchStep {
        patches: preset.patches.clone(),
        series: preset.patch_series.clone(),
        strip: preset.patch_strip,
    };
    let has_patches = !patch.patches.is_empty() || patch.series.is_some();
    let mut patch_phase = phase("patch", vec![Step::Patch(patch)]);
    patch_phase.enabled = has_patches;
    if !has_patches {
        patch_phase.steps.clear();
    }
    phases.push(patch_phase);

    let out = "${outputs.out}".to_owned();
    let cores = "${build.cores}".to_owned();
    let with = |base: &[String], extra: &[&[String]]| -> Vec<String> {
        let mut flags = base.to_vec();
        for more in extra {
            flags.extend(more.iter().cloned());
        }
        flags
    };
    let make = |flags: Vec<String>, targets: Vec<String>, parallel: bool| {
        Step::Make(MakeStep {
            flags,
            targets,
            first_existing_target: Vec::new(),
            parallel,
            makefile: None,
        })
    };
    let check_targets = || match &preset.check_target {
        Some(target) => (vec![target.clone()], Vec::new()),
        None => (Vec::new(), vec!["check".to_owned(), "test".to_owned()]),
    };
    let install_targets = preset
        .install_targets
        .clone()
        .unwrap_or_else(|| vec!["install".to_owned()]);

    match preset.system {
        BuildSystem::Autotools | BuildSystem::Make => {
            let prefix_flags: Vec<String> = if preset.system == BuildSystem::Make {
                vec![format!("PREFIX={out}")]
            } else {
                Vec::new()
            };
            if preset.system == BuildSystem::Autotools {
                phases.push(phase(
                    "configure",
                    vec![Step::Configure(ConfigureStep {
                        script: preset
                            .configure_script
                            .clone()
                            .unwrap_or_else(|| "./configure".to_owned()),
                        flags: preset.configure_flags.clone(),
                        prefix_key: preset
                            .prefix_key
                            .clone()
                            .unwrap_or_else(|| "--prefix=".to_owned()),
                        prefix: preset.add_prefix.then(|| out.clone()),
                        disable_dependency_tracking: preset.disable_dependency_tracking,
                        disable_static: preset.disable_static,
                        env: BTreeMap::new(),
                    })],
                ));
            }
            phases.push(phase(
                "build",
                vec![make(
                    with(&prefix_flags, &[&preset.make_flags, &preset.build_flags]),
                    Vec::new(),
                    preset.parallel,
                )],
            ));
            let (targets, candidates) = check_targets();
            let mut check = phase(
                "check",
                vec![Step::Make(MakeStep {
                    flags: with(&prefix_flags, &[&preset.make_flags, &preset.check_flags]),
                    targets,
                    first_existing_target: candidates,
                    parallel: preset.parallel,
                    makefile: None,
                })],
            );
            check.enabled = preset.do_check;
            phases.push(check);
            phases.push(phase(
                "install",
                vec![make(
                    with(&prefix_flags, &[&preset.make_flags, &preset.install_flags]),
                    install_targets,
                    preset.parallel,
                )],
            ));
        }
        BuildSystem::Cmake => {
            let mut argv: Vec<String> = [
                "cmake",
                "-S",
                ".",
                "-B",
                "build",
                "-DCMAKE_BUILD_TYPE=Release",
                "-DCMAKE_INSTALL_LIBDIR=lib",
                "-DCMAKE_INSTALL_INCLUDEDIR=include",
                "-DCMAKE_SKIP_BUILD_RPATH=ON",
                "-DCMAKE_EXPORT_NO_PACKAGE_REGISTRY=ON",
                "-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF",
            ]
            .map(str::to_owned)
            .to_vec();
            argv.push(format!("-DCMAKE_INSTALL_PREFIX={out}"));
            argv.push(format!(
                "-DBUILD_TESTING={}",
                if preset.do_check { "ON" } else { "OFF" }
            ));
            argv.extend(preset.cmake_flags.iter().cloned());
            phases.push(phase("configure", vec![Step::run(argv)]));
            let in_build = |mut p: Phase| {
                p.cwd = Some("build".to_owned());
                p
            };
            phases.push(in_build(phase(
                "build",
                vec![make(
                    with(&preset.make_flags, &[&preset.build_flags]),
                    Vec::new(),
                    preset.parallel,
                )],
            )));
            let (targets, candidates) = check_targets();
            let mut check = in_build(phase(
                "check",
                vec![Step::Make(MakeStep {
                    flags: with(&preset.make_flags, &[&preset.check_flags]),
                    targets,
                    first_existing_target: candidates,
                    parallel: preset.parallel,
                    makefile: None,
                })],
            ));
            check.enabled = preset.do_check;
            phases.push(check);
            phases.push(in_build(phase(
                "install",
                vec![make(
                    with(&preset.make_flags, &[&preset.install_flags]),
                    install_targets,
                    preset.parallel,
                )],
            )));
        }
        BuildSystem::Meson => {
            let mut argv: Vec<String> = [
                "meson",
                "setup",
                "build",
                "--buildtype=plain",
                "--libdir=lib",
                "--wrap-mode=nodownload",
            ]
            .map(str::to_owned)
            .to_vec();
            argv.push(format!("--prefix={out}"));
            argv.extend(preset.meson_flags.iter().cloned());
            // Meson links with an rpath of its own, so ld ignores LD_RUN_PATH, and strips it at
            // install: give it `$out/lib` the way nixpkgs' linker wrapper does, through LDFLAGS
            // (which Meson keeps), unless the plan sets LDFLAGS itself.
            let mut configure = Step::run(argv);
            if let (Step::Run(step), false) = (&mut configure, plan_sets_ldflags) {
                step.env
                    .insert("LDFLAGS".to_owned(), format!("-Wl,-rpath,{out}/lib"));
            }
            phases.push(phase("configure", vec![configure]));
            let ninja = |extra: &[String], targets: &[String]| {
                let mut argv = vec!["ninja".to_owned(), "-C".to_owned(), "build".to_owned()];
                if preset.parallel {
                    argv.push(format!("-j{cores}"));
                } else {
                    argv.push("-j1".to_owned());
                }
                argv.extend(preset.make_flags.iter().cloned());
                argv.extend(extra.iter().cloned());
                argv.extend(targets.iter().cloned());
                Step::run(argv)
            };
            phases.push(phase("build", vec![ninja(&preset.build_flags, &[])]));
            let check_target = preset
                .check_target
                .clone()
                .unwrap_or_else(|| "test".to_owned());
            let mut check = phase("check", vec![ninja(&preset.check_flags, &[check_target])]);
            check.enabled = preset.do_check;
            phases.push(check);
            phases.push(phase(
                "install",
                vec![ninja(&preset.install_flags, &install_targets)],
            ));
        }
    }

    let mut fixup = phase(
        "fixup",
        vec![Step::Fixup(Box::new(
            preset.fixup.clone().unwrap_or_default(),
        ))],
    );
    fixup.enabled = !preset.dont_fixup;
    phases.push(fixup);
    // Skipped phases stay in the list, disabled, so edits can still name them.
    for phase in &mut phases {
        let skipped = match phase.name.as_str() {
            "configure" => preset.dont_configure,
            "build" => preset.dont_build,
            "install" => preset.dont_install,
            _ => false,
        };
        if skipped {
            phase.enabled = false;
        }
    }
    phases
}

/// Edits from elsewhere than the plan (dependency hooks), with their origin.
#[derive(Debug, Clone)]
pub struct ExternalEdit {
    /// Where it comes from, e.g. `hook of /nix/store/…-zlib`.
    pub origin: String,
    /// The edit.
    pub edit: Edit,
}

/// The phases while edits apply.
///
/// An edit names its anchor, and the first phase of that name (in order) is meant. While the
/// names are unique (always, unless an edit brings a second phase of a name), the phases are a
/// doubly linked list indexed by name, so that each edit costs O(1) and a plan with a hundred
/// thousand edits takes a hundred thousand steps. Once two phases share a name, "the first" needs
/// the order, and the list becomes a plain vector searched from the start for the remaining
/// edits (such a plan ends in an error unless a later edit removes the duplicate).
struct PhaseList {
    /// The phases while their names are unique.
    linked: Option<Linked>,
    /// The phases once two share a name (empty while `linked` is set).
    plain: Vec<Phase>,
}

/// A doubly linked list of phases over a vector of slots, with an index of the unique names.
struct Linked {
    slots: Vec<Slot>,
    head: Option<usize>,
    by_name: HashMap<String, usize>,
}

struct Slot {
    /// `None` once deleted.
    phase: Option<Phase>,
    prev: Option<usize>,
    next: Option<usize>,
}

impl Linked {
    /// The list of `phases`, or the phases back when two share a name.
    fn new(phases: Vec<Phase>) -> Result<Linked, Vec<Phase>> {
        let count = phases.len();
        let mut linked = Linked {
            slots: Vec::with_capacity(count),
            head: (count > 0).then_some(0),
            by_name: HashMap::with_capacity(count),
        };
        let mut phases = phases.into_iter();
        while let Some(phase) = phases.next() {
            let index = linked.slots.len();
            if linked.by_name.contains_key(&phase.name) {
                let mut back = linked.into_vec();
                back.push(phase);
                back.extend(phases);
                return Err(back);
            }
            linked.by_name.insert(phase.name.clone(), index);
            linked.slots.push(Slot {
                phase: Some(phase),
                prev: index.checked_sub(1),
                next: (index + 1 < count).then_some(index + 1),
            });
        }
        Ok(linked)
    }

    /// The phases in order.
    fn into_vec(mut self) -> Vec<Phase> {
        let mut phases = Vec::with_capacity(self.by_name.len());
        let mut at = self.head;
        while let Some(index) = at {
            let slot = &mut self.slots[index];
            phases.extend(slot.phase.take());
            at = slot.next;
        }
        phases
    }

    /// The names in order, at most [`crate::error::MAX_KNOWN`] (for an error's list).
    fn names(&self) -> Vec<String> {
        let mut names = Vec::new();
        let mut at = self.head;
        while let (Some(index), true) = (at, names.len() < crate::error::MAX_KNOWN) {
            let slot = &self.slots[index];
            names.extend(slot.phase.as_ref().map(|phase| phase.name.clone()));
            at = slot.next;
        }
        known_names(&names)
    }

    /// Links a new slot for `phase` between `prev` and `next`.
    fn link(&mut self, phase: Phase, prev: Option<usize>, next: Option<usize>) {
        let index = self.slots.len();
        self.by_name.insert(phase.name.clone(), index);
        self.slots.push(Slot {
            phase: Some(phase),
            prev,
            next,
        });
        match prev {
            Some(prev) => self.slots[prev].next = Some(index),
            None => self.head = Some(index),
        }
        if let Some(next) = next {
            self.slots[next].prev = Some(index);
        }
    }

    /// Applies `edit` at the phase `at`, with `new` the phase it brings (if any). `Err(new)` when
    /// that phase's name is taken by another phase: the caller goes on with a plain list.
    fn apply(&mut self, edit: &Edit, at: usize, new: Option<Phase>) -> Result<(), Option<Phase>> {
        let anchor = edit.anchor();
        if let Some(phase) = &new {
            let taken = self.by_name.contains_key(&phase.name);
            let replaced_itself = matches!(edit, Edit::Replace(_)) && phase.name == anchor;
            if taken && !replaced_itself {
                return Err(new);
            }
        }
        let (prev, next) = (self.slots[at].prev, self.slots[at].next);
        match (edit, new) {
            (Edit::Before(_), Some(phase)) => self.link(phase, prev, Some(at)),
            (Edit::After(_), Some(phase)) => self.link(phase, Some(at), next),
            (Edit::Replace(_), Some(phase)) => {
                self.by_name.remove(anchor);
                self.by_name.insert(phase.name.clone(), at);
                self.slots[at].phase = Some(phase);
            }
            _ => {
                self.by_name.remove(anchor);
                self.slots[at].phase = None;
                match prev {
                    Some(prev) => self.slots[prev].next = next,
                    None => self.head = next,
                }
                if let Some(next) = next {
                    self.slots[next].prev = prev;
                }
            }
        }
        Ok(())
    }
}

impl PhaseList {
    fn new(phases: Vec<Phase>) -> PhaseList {
        match Linked::new(phases) {
            Ok(linked) => PhaseList {
                linked: Some(linked),
                plain: Vec::new(),
            },
            Err(plain) => PhaseList {
                linked: None,
                plain,
            },
        }
    }

    /// The names in order, at most [`crate::error::MAX_KNOWN`] (for an error's list).
    fn names(&self) -> Vec<String> {
        match &self.linked {
            Some(linked) => linked.names(),
            None => known_names(self.plain.iter().map(|phase| &phase.name)),
        }
    }

    /// Applies `edit`, with `new` the phase it brings (for `before`, `after` and `replace`).
    /// False when there is no phase of the anchor's name.
    fn apply(&mut self, edit: &Edit, new: Option<Phase>) -> bool {
        let anchor = edit.anchor();
        let new = match &mut self.linked {
            Some(linked) => {
                let Some(&at) = linked.by_name.get(anchor) else {
                    return false;
                };
                match linked.apply(edit, at, new) {
                    Ok(()) => return true,
                    Err(new) => new,
                }
            }
            None => new,
        };
        // A second phase of a name: from now on, in order.
        if let Some(linked) = self.linked.take() {
            self.plain = linked.into_vec();
        }
        let phases = &mut self.plain;
        let Some(position) = phases.iter().position(|phase| phase.name == anchor) else {
            return false;
        };
        match (edit, new) {
            (Edit::Before(_), Some(phase)) => phases.insert(position, phase),
            (Edit::After(_), Some(phase)) => phases.insert(position + 1, phase),
            (Edit::Replace(_), Some(phase)) => phases[position] = phase,
            _ => {
                phases.remove(position);
            }
        }
        true
    }

    fn into_vec(self) -> Vec<Phase> {
        match self.linked {
            Some(linked) => linked.into_vec(),
            None => self.plain,
        }
    }
}

/// Returns `plan` with its preset expanded and every edit applied; phases get an origin.
///
/// A plan without a preset keeps its phases (tagged `plan` when untagged) and may still be
/// edited. Errors name the edit's JSON path and list the phases that exist at that point.
pub fn expand(plan: &Plan, external: &[ExternalEdit]) -> Result<Plan, PlanErrors> {
    let mut expanded = plan.clone();
    let mut phases = match &plan.preset {
        Some(preset) => preset_phases(preset, plan.env.contains_key("LDFLAGS")),
        None => plan.phases.clone(),
    };
    for phase in &mut phases {
        phase.origin.get_or_insert_with(|| "plan".to_owned());
    }
    let mut errors = Problems::new();
    let plan_edits = plan.edits.iter().enumerate().map(|(index, edit)| {
        (
            JsonPath::root().key("edits").index(index),
            "edit in the plan".to_owned(),
            edit,
        )
    });
    let hook_edits = external
        .iter()
        .map(|e| (JsonPath::root().key("edits"), e.origin.clone(), &e.edit));
    let mut list = PhaseList::new(phases);
    for (path, origin, edit) in plan_edits.chain(hook_edits) {
        let new = match edit {
            Edit::Before(insert) | Edit::After(insert) => Some(&insert.insert),
            Edit::Replace(replace) => Some(&replace.with),
            Edit::Delete(_) => None,
        }
        .map(|phase| Phase {
            origin: Some(origin.clone()),
            ..phase.clone()
        });
        if !list.apply(edit, new) {
            errors.push_with(|| {
                PlanError::new(
                    path.key(edit.kind()).key("phase"),
                    PlanErrorKind::UnknownPhase {
                        name: edit.anchor().to_owned(),
                        existing: list.names(),
                    },
                )
                .with_context(origin)
            });
        }
    }
    let phases = list.into_vec();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (index, phase) in phases.iter().enumerate() {
        if let Some(&first) = seen.get(phase.name.as_str()) {
            errors.push_with(|| {
                PlanError::new(
                    JsonPath::root().key("edits"),
                    PlanErrorKind::DuplicatePhase {
                        name: phase.name.clone(),
                        first,
                    },
                )
                .with_context(format!(
                    "after the edits, phase {} ({}) repeats a name",
                    index + 1,
                    phase.origin.as_deref().unwrap_or("plan")
                ))
            });
        } else {
            seen.insert(&phase.name, index);
        }
    }
    errors.finish()?;
    expanded.phases = phases;
    expanded.preset = None;
    expanded.edits = Vec::new();
    Ok(expanded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::plan_from_str;

    fn plan(preset: &str, edits: &str) -> Plan {
        plan_from_str(&format!(
            r#"{{"version":1,"name":"x","preset":{preset},"edits":{edits}}}"#
        ))
        .unwrap()
    }

    fn names(plan: &Plan) -> Vec<(&str, bool)> {
        plan.phases
            .iter()
            .map(|p| (p.name.as_str(), p.enabled))
            .collect()
    }

    #[test]
    fn autotools_yields_stdenv_phases() {
        let p = plan(r#"{"system":"autotools","srcs":["/src.tar.gz"]}"#, "[]");
        let expanded = expand(&p, &[]).unwrap();
        assert_eq!(
            names(&expanded),
            [
                ("unpack", true),
                ("patch", false),
                ("configure", true),
                ("build", true),
                ("check", false),
                ("install", true),
                ("fixup", true)
            ]
        );
        let Step::Configure(configure) = &expanded.phases[2].steps[0] else {
            panic!("configure step");
        };
        assert_eq!(configure.prefix.as_deref(), Some("${outputs.out}"));
        assert_eq!(
            expanded.phases[0].origin.as_deref(),
            Some("preset autotools")
        );
    }

    #[test]
    fn dont_configure_build_and_install_disable_their_phases_for_every_system() {
        for system in ["autotools", "make", "cmake", "meson"] {
            let p = plan(
                &format!(
                    r#"{{"system":"{system}","srcs":["/s.tar"],"dontConfigure":true,
                        "dontBuild":true,"dontInstall":true}}"#
                ),
                "[]",
            );
            let expanded = expand(&p, &[]).unwrap();
            for (name, enabled) in names(&expanded) {
                let skipped = matches!(name, "configure" | "build" | "install");
                assert_eq!(
                    enabled,
                    !skipped && name != "patch" && name != "check",
                    "{system} {name}"
                );
            }
            assert!(names(&expanded).iter().any(|(name, _)| *name == "build"));
        }
    }

    #[test]
    fn edits_insert_replace_and_delete() {
        let p = plan(
            r#"{"system":"make","srcs":["/s"]}"#,
            r#"[{"before":{"phase":"build","insert":{"name":"gen","steps":[]}}},
                {"delete":{"phase":"fixup"}},
                {"replace":{"phase":"check","with":{"name":"test","steps":[]}}}]"#,
        );
        let expanded = expand(&p, &[]).unwrap();
        let order: Vec<&str> = expanded.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            order,
            ["unpack", "patch", "gen", "build", "test", "install"]
        );
        assert_eq!(
            expanded.phases[2].origin.as_deref(),
            Some("edit in the plan")
        );
    }

    #[test]
    fn an_edit_of_a_missing_phase_lists_the_existing_ones() {
        let p = plan(
            r#"{"system":"meson","srcs":["/s"]}"#,
            r#"[{"after":{"phase":"buidl","insert":{"name":"x","steps":[]}}}]"#,
        );
        let errors = expand(&p, &[]).unwrap_err().0;
        assert_eq!(errors[0].path.to_string(), "edits[0].after.phase");
        assert_eq!(
            errors[0].to_string(),
            "at `edits[0].after.phase` (edit in the plan): no phase `buidl`; phases are: \
             unpack, patch, configure, build, check, install, fixup"
        );
        assert_eq!(errors[0].hint().unwrap(), "did you mean `build`?");
    }

    #[test]
    fn many_edits_of_missing_phases_are_bounded() {
        let edits: Vec<String> = (0..5_000)
            .map(|i| {
                format!(
                    r#"{{"after":{{"phase":"nope{i}","insert":{{"name":"x{i}","steps":[]}}}}}}"#
                )
            })
            .collect();
        let p = plan(
            r#"{"system":"make","srcs":["/s"]}"#,
            &format!("[{}]", edits.join(",")),
        );
        let errors = expand(&p, &[]).unwrap_err();
        assert_eq!(errors.total(), 5_000);
        assert!(errors.to_string().len() < 64 * 1024);
    }

    /// The edits as the list did them before it was linked: search, then insert or remove.
    fn by_search(mut phases: Vec<String>, edits: &[Edit]) -> (Vec<String>, usize) {
        let mut missing = 0;
        for edit in edits {
            let Some(position) = phases.iter().position(|name| name == edit.anchor()) else {
                missing += 1;
                continue;
            };
            match edit {
                Edit::Before(insert) => phases.insert(position, insert.insert.name.clone()),
                Edit::After(insert) => phases.insert(position + 1, insert.insert.name.clone()),
                Edit::Replace(replace) => phases[position] = replace.with.name.clone(),
                Edit::Delete(_) => {
                    phases.remove(position);
                }
            }
        }
        (phases, missing)
    }

    #[test]
    fn the_linked_list_edits_as_a_search_would_even_with_duplicate_names() {
        let phase = |name: String| Phase {
            name,
            enabled: true,
            timeout: None,
            cwd: None,
            steps: Vec::new(),
            origin: None,
        };
        // A small linear congruential generator: the same edits every run.
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |below: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % below
        };
        for round in 0..200 {
            let names: Vec<String> = (0..8).map(|i| format!("p{i}")).collect();
            let mut edits = Vec::new();
            for _ in 0..40 {
                // Mostly names that exist or were inserted; sometimes a repeated one.
                let anchor = format!("p{}", next(12));
                let name = format!("p{}", next(if round % 2 == 0 { 60 } else { 14 }) + 8);
                edits.push(match next(4) {
                    0 => Edit::Before(crate::plan::InsertEdit {
                        phase: anchor,
                        insert: phase(name),
                    }),
                    1 => Edit::After(crate::plan::InsertEdit {
                        phase: anchor,
                        insert: phase(name),
                    }),
                    2 => Edit::Replace(crate::plan::ReplaceEdit {
                        phase: anchor,
                        with: phase(name),
                    }),
                    _ => Edit::Delete(crate::plan::DeleteEdit { phase: anchor }),
                });
            }
            let (expected, missing) = by_search(names.clone(), &edits);
            let mut list = PhaseList::new(names.into_iter().map(phase).collect());
            let mut failed = 0;
            for edit in &edits {
                let new = match edit {
                    Edit::Before(insert) | Edit::After(insert) => Some(insert.insert.clone()),
                    Edit::Replace(replace) => Some(replace.with.clone()),
                    Edit::Delete(_) => None,
                };
                failed += usize::from(!list.apply(edit, new));
            }
            let got: Vec<String> = list.into_vec().into_iter().map(|p| p.name).collect();
            assert_eq!(got, expected, "round {round}: {edits:?}");
            assert_eq!(failed, missing, "round {round}");
        }
    }

    #[test]
    fn twenty_thousand_edits_of_twenty_thousand_phases() {
        let phases: Vec<String> = (0..20_000)
            .map(|i| format!(r#"{{"name":"p{i}","steps":[]}}"#))
            .collect();
        let edits: Vec<String> = (0..20_000)
            .map(|i| {
                format!(r#"{{"after":{{"phase":"p{i}","insert":{{"name":"e{i}","steps":[]}}}}}}"#)
            })
            .collect();
        let p = plan_from_str(&format!(
            r#"{{"version":1,"name":"x","phases":[{}],"edits":[{}]}}"#,
            phases.join(","),
            edits.join(",")
        ))
        .unwrap();
        let expanded = expand(&p, &[]).unwrap();
        assert_eq!(expanded.phases.len(), 40_000);
        assert_eq!(expanded.phases[1].name, "e0");
        assert_eq!(expanded.phases[39_999].name, "e19999");
    }
}
