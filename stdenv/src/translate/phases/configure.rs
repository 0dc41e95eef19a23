//! The configure phase: the output roles and the prefix (which the install and fixup phases
//! use too), `configureFlags` with `setOutputFlags`' directory flags, `dontConfigure`, and where
//! each part of the configure step came from.

use super::*;

/// What the configure attributes decided, for the preset and the later phases.
pub(super) struct ConfigureSettings {
    /// The output roles (all `out` after a role error, which is reported).
    pub(super) roles: Roles,
    /// More than one output and `setOutputFlags` on: the directory flags are passed.
    pub(super) multi: bool,
    /// `prefix`, as a literal.
    pub(super) prefix: Option<String>,
    /// The prefix used: `prefix`, else `$out`.
    pub(super) prefix_value: String,
    /// `--prefix=` is passed (no `dontAddPrefix`).
    pub(super) add_prefix: bool,
    /// `dontConfigure`.
    pub(super) dont_configure: bool,
    /// Whether `configureFlags` gave any flags.
    pub(super) has_configure_flags: bool,
    /// The preset's configure flags: `setOutputFlags`' for autotools, then `configureFlags`.
    pub(super) flags: Vec<String>,
}

impl ConfigureSettings {
    /// Where the prefix came from: `prefix`, else stdenv's default `$out`.
    pub(super) fn prefix_from(&self) -> String {
        if self.prefix.is_some() {
            "prefix".to_owned()
        } else {
            default("prefix $out")
        }
    }
}

impl Translator<'_, '_> {
    /// Reads `setOutputFlags`, the output roles, `prefix`, `dontAddPrefix`, `shareDocName`,
    /// `dontConfigure` and `configureFlags`.
    pub(super) fn configure_settings(&self) -> ConfigureSettings {
        let r = self.r;
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
        let prefix_value = prefix
            .clone()
            .unwrap_or_else(|| "${outputs.out}".to_owned());
        let add_prefix = !r.flag("dontAddPrefix");
        let share_doc = r
            .string("shareDocName")
            .map(|name| literal(&name))
            .unwrap_or_else(|| doc_name(&r.string("name").unwrap_or_default()));
        let dont_configure = r.flag("dontConfigure");
        let configure_flags = r.list("configureFlags").unwrap_or_default();
        let mut flags = Vec::new();
        if multi && self.system == BuildSystem::Autotools {
            flags.extend(roles.autotools_flags(&share_doc));
        }
        flags.extend(configure_flags.iter().map(|f| literal(f)));
        ConfigureSettings {
            roles,
            multi,
            prefix,
            prefix_value,
            add_prefix,
            dont_configure,
            has_configure_flags: !configure_flags.is_empty(),
            flags,
        }
    }

    /// The configure phase: off with `dontConfigure`; the configure step (or the hook's
    /// command) gets the prefix and says what made it.
    pub(super) fn configure_phase(
        &self,
        configure: &mut Draft,
        settings: &ConfigureSettings,
        do_check: bool,
    ) {
        let r = self.r;
        let system = self.system;
        switched_off_by(
            configure,
            "dontConfigure",
            settings.dont_configure,
            "configurePhase runs",
        );
        let main = configure
            .phase
            .steps
            .iter()
            .position(|step| matches!(step, Step::Configure(_) | Step::Run(_)));
        let Some(index) = main else {
            return;
        };
        let mut from = match &mut configure.phase.steps[index] {
            Step::Configure(step) => {
                step.prefix = settings.add_prefix.then(|| settings.prefix_value.clone());
                self.configure_script_from()
            }
            Step::Run(_) => self.configure_hook_from(do_check),
            _ => Vec::new(),
        };
        from.push(if !settings.add_prefix {
            "dontAddPrefix".to_owned()
        } else {
            settings.prefix_from()
        });
        if system == BuildSystem::Autotools {
            if r.string("prefixKey").is_some() {
                from.push("prefixKey".to_owned());
            }
            if settings.has_configure_flags {
                from.push("configureFlags".to_owned());
            }
            if settings.multi {
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

    /// What made stdenv's own configure step: the script, the flags it adds when the script
    /// mentions them, and the build-system hooks' configurePhase left unused.
    fn configure_script_from(&self) -> Vec<String> {
        let r = self.r;
        let mut from = Vec::new();
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
        from
    }

    /// What made the cmake or meson hook's configure command: its flags, build type and
    /// directory flags.
    fn configure_hook_from(&self, do_check: bool) -> Vec<String> {
        let r = self.r;
        let mut from = vec![format!("nixpkgs {} setup hook", self.system.name())];
        if self.system == BuildSystem::Cmake {
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
        from
    }
}
