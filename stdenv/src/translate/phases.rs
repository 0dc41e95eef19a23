//! stdenv's phases: the standard ones from kiln's presets adjusted as the generic builder
//! decides (switches, per-phase flags, parallelism), then arranged with `phases` and the
//! `pre…Phases` lists.
//!
//! This file holds the order: the attributes are read concern by concern (sources, patches,
//! configure, make), kiln's preset makes the nine phases from them, each phase is then adjusted
//! by its own file ([`unpack`], [`patch`], [`configure`], [`build`], [`check`] with installCheck,
//! [`install`], [`fixup`]; dist is always off), and the hooks go around them (`shell.rs`). What
//! one concern decided and a later phase needs is passed on in a small struct
//! ([`unpack::Sources`], [`patch::Patches`], [`configure::ConfigureSettings`],
//! [`build::MakeSettings`]) rather than worked out again. The helpers the phases share (switches,
//! parallelism, make steps) are here too.

use super::*;

mod build;
mod check;
mod configure;
mod fixup;
mod install;
mod patch;
mod unpack;

use self::build::MakeSettings;
use self::configure::ConfigureSettings;
use self::patch::Patches;
use self::unpack::{unpack_phase, Sources};

impl<'r, 'a> Translator<'r, 'a> {
    pub(super) fn draft(&self, name: &str, stdenv: &str, origin: String) -> Draft {
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

    /// The nine standard phases, in stdenv's order.
    pub(super) fn standard_phases(&mut self, env: &BTreeMap<String, String>) -> Vec<Draft> {
        let sources = self.sources();
        let patches = self.patches();
        let configured = self.configure_settings();
        let make = self.make_settings(&configured);
        let preset = self.preset(&sources, patches, &configured, &make);
        let mut drafts = self.preset_drafts(&preset, &configured, &make, env);
        let [unpack, patch, configure, build, check, install, fixup, install_check, dist] =
            &mut drafts[..]
        else {
            unreachable!("nine standard phases");
        };
        unpack_phase(unpack, &sources);
        self.patch_phase(patch);
        self.configure_phase(configure, &configured, make.do_check);
        self.build_phase(build, &make);
        self.check_phase(check, &make);
        self.install_phase(install, &configured, &make);
        self.fixup_phase(fixup, &configured.roles, preset.dont_fixup);
        self.install_check_phase(install_check, build.phase.cwd.clone(), &make);
        // dist: kiln refuses doDist, so the phase is always off.
        switched_on_by(
            dist,
            "doDist",
            false,
            "doDist off (kiln does not support doDist)",
        );
        self.standard_hooks(&mut drafts);
        drafts
    }

    /// kiln's preset for what the attributes say (stdenv's phase switches are left to the
    /// phases, which say where they came from).
    fn preset(
        &self,
        sources: &Sources,
        patches: Patches,
        configured: &ConfigureSettings,
        make: &MakeSettings,
    ) -> Preset {
        let r = self.r;
        let fixup = self.fixup_step();
        let dont_fixup = r.flag("dontFixup");
        let preset = Preset {
            system: self.system,
            srcs: sources.refs.clone(),
            source_root: sources.root.clone(),
            extra_sources: Vec::new(),
            patches: patches.files,
            patch_series: None,
            patch_strip: patches.strip,
            configure_script: r.string("configureScript").map(|s| literal(&s)),
            configure_flags: configured.flags.clone(),
            prefix_key: r.string("prefixKey").map(|k| literal(&k)),
            add_prefix: configured.add_prefix,
            disable_dependency_tracking: !r.flag("dontAddDisableDepTrack"),
            disable_static: !r.flag("dontDisableStatic"),
            cmake_flags: Vec::new(),
            meson_flags: Vec::new(),
            make_flags: make.make_flags.clone(),
            build_flags: make.build_flags.clone(),
            check_flags: make.check_flags.clone(),
            install_flags: make.install_flags.clone(),
            install_targets: make.install_targets.clone(),
            check_target: make.check_target.clone(),
            do_check: make.do_check,
            parallel: make.parallel_building,
            fixup: Some(fixup),
            dont_fixup,
            // stdenv's phase switches (dontConfigure, …) are applied by the phases, with
            // provenance.
            dont_configure: false,
            dont_build: false,
            dont_install: false,
        };
        r.flag("dontFixLibtool");
        r.raw("NIX_DEBUG");
        preset
    }

    /// The preset's phases as drafts in stdenv's order, one for each standard phase (empty when
    /// the preset has none); for CMake and Meson, nixpkgs' hooks step by step in place of the
    /// preset's own (the native presets are kiln's own).
    fn preset_drafts(
        &self,
        preset: &Preset,
        configured: &ConfigureSettings,
        make: &MakeSettings,
        env: &BTreeMap<String, String>,
    ) -> Vec<Draft> {
        let system = self.system;
        let mut phases = preset_phases(preset, true);
        let hook_steps = match system {
            BuildSystem::Cmake => Some(self.cmake_steps(
                &configured.roles,
                &configured.prefix_value,
                configured.add_prefix,
                make.do_check,
            )),
            BuildSystem::Meson => Some(self.meson_steps(
                &configured.roles,
                &configured.prefix_value,
                configured.add_prefix,
                make.parallel_building,
                make.parallel_checking,
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
        drafts
    }

    /// The phase list: `phases` if given, else stdenv's default order with the `pre…Phases`
    /// lists; `setup` first when `preHook`/`postHook` run.
    pub(super) fn arrange(
        &mut self,
        standard: Vec<Draft>,
        custom: &BTreeSet<String>,
    ) -> Vec<Draft> {
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
}

/// A phase stdenv runs unless `attribute` (`dontBuild`) is set: off and switched by
/// `attribute` when `set`, else on by stdenv's default `runs`.
pub(super) fn switched_off_by(draft: &mut Draft, attribute: &str, set: bool, runs: &str) {
    draft.phase.enabled = !set;
    draft.switch.push(if set {
        attribute.to_owned()
    } else {
        default(runs)
    });
}

/// Reads `attribute` (`dontBuild`) and switches `draft` as [`switched_off_by`] does.
pub(super) fn read_switch_off(r: &Reader, draft: &mut Draft, attribute: &'static str, runs: &str) {
    let set = r.flag(attribute);
    switched_off_by(draft, attribute, set, runs);
}

/// A phase stdenv runs only when `attribute` (`doCheck`) is set: on and switched by `attribute`
/// when `set`, else off by stdenv's default `off`.
pub(super) fn switched_on_by(draft: &mut Draft, attribute: &str, set: bool, off: &str) {
    draft.phase.enabled = set;
    draft.switch.push(if set {
        attribute.to_owned()
    } else {
        default(off)
    });
}

/// Where a phase's parallelism came from: `attribute` (`enableParallelChecking`) when set, else
/// `fallback` (what it follows) when on, else stdenv's default of off.
pub(super) fn parallel_from(
    r: &Reader,
    attribute: &'static str,
    on: bool,
    fallback: &str,
) -> String {
    if r.is_set(attribute) {
        attribute.to_owned()
    } else if on {
        fallback.to_owned()
    } else {
        default(&format!("{attribute} off"))
    }
}

/// Sets `makefile` and `parallel` on every make step (ninja runs are made with theirs).
pub(super) fn adjust_make(draft: &mut Draft, makefile: Option<&String>, parallel: bool) {
    for step in &mut draft.phase.steps {
        if let Step::Make(make) = step {
            make.makefile = makefile.cloned();
            make.parallel = parallel;
        }
    }
}
