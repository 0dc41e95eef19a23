//! The make settings (for make and ninja: `makefile`, the flag lists, targets, per-phase
//! parallelism, `doCheck`), which the build, check, install and installCheck phases share, and
//! the build phase.

use super::*;

/// What the make attributes decided, for the preset and the phases that run make.
pub(super) struct MakeSettings {
    /// The build system runs make (everything but Meson, which runs ninja).
    pub(super) make_based: bool,
    /// `makefile`, as a literal.
    pub(super) makefile: Option<String>,
    /// `makeFlags`.
    pub(super) make_flags: Vec<String>,
    /// `buildFlags`.
    pub(super) build_flags: Vec<String>,
    /// `checkFlags` as given.
    pub(super) check_flags_attr: Vec<String>,
    /// The check flags used: `checkFlags`, else `VERBOSE=y` for make.
    pub(super) check_flags: Vec<String>,
    /// `setOutputFlags`' install flags for autotools, then `installFlags`.
    pub(super) install_flags: Vec<String>,
    /// `installTargets` when not empty.
    pub(super) install_targets: Option<Vec<String>>,
    /// `checkTarget`.
    pub(super) check_target: Option<String>,
    /// `doCheck`.
    pub(super) do_check: bool,
    /// The build phase runs in parallel.
    pub(super) parallel_building: bool,
    /// The check and installCheck phases run in parallel.
    pub(super) parallel_checking: bool,
    /// The install phase runs in parallel.
    pub(super) parallel_installing: bool,
}

impl Translator<'_, '_> {
    /// Reads `makefile`, the flag lists and targets, the `enableParallel…` switches and
    /// `doCheck`.
    pub(super) fn make_settings(&self, configured: &ConfigureSettings) -> MakeSettings {
        let r = self.r;
        let system = self.system;
        let make_based = system != BuildSystem::Meson;
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
        if configured.multi && system == BuildSystem::Autotools && !configured.dont_configure {
            install_flags.extend(configured.roles.autotools_install_flags());
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
        MakeSettings {
            make_based,
            makefile,
            make_flags,
            build_flags,
            check_flags_attr,
            check_flags,
            install_flags,
            install_targets,
            check_target,
            do_check,
            parallel_building,
            parallel_checking,
            parallel_installing,
        }
    }

    /// The build phase: off with `dontBuild`; its make steps get `makefile` and parallelism.
    pub(super) fn build_phase(&self, build: &mut Draft, make: &MakeSettings) {
        let r = self.r;
        read_switch_off(r, build, "dontBuild", "buildPhase runs");
        adjust_make(build, make.makefile.as_ref(), make.parallel_building);
        if let Some(from) = build.steps.first_mut() {
            from.extend(present(r, &["makefile", "makeFlags", "buildFlags"]));
            from.push(parallel_from(
                r,
                "enableParallelBuilding",
                make.parallel_building,
                &format!(
                    "nixpkgs {} hook: enableParallelBuilding",
                    self.system.name()
                ),
            ));
        }
    }
}
