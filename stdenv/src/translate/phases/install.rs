//! The install phase: `dontInstall`, its flags, targets and parallelism, and stdenv's
//! `mkdir -p $prefix` before make installs.

use super::*;

impl Translator<'_, '_> {
    /// The install phase: off with `dontInstall`; its make steps get `makefile` and
    /// parallelism, and for make a `mkdir` of the prefix comes first.
    pub(super) fn install_phase(
        &self,
        install: &mut Draft,
        configured: &ConfigureSettings,
        make: &MakeSettings,
    ) {
        let r = self.r;
        read_switch_off(r, install, "dontInstall", "installPhase runs");
        adjust_make(install, make.makefile.as_ref(), make.parallel_installing);
        if let Some(from) = install.steps.first_mut() {
            from.extend(present(r, &["makefile", "makeFlags", "installFlags"]));
            if configured.multi && self.system == BuildSystem::Autotools {
                from.push(format!("setOutputFlags ({} outputs)", self.outputs.len()));
            }
            from.push(if r.is_set("installTargets") {
                "installTargets".to_owned()
            } else {
                default("installTargets install")
            });
            from.push(parallel_from(
                r,
                "enableParallelInstalling",
                make.parallel_installing,
                "enableParallelBuilding",
            ));
        }
        if make.make_based && !install.phase.steps.is_empty() {
            install.insert(
                0,
                Step::Mkdir(MkdirStep {
                    path: configured.prefix_value.clone(),
                }),
                vec![default("mkdir -p $prefix"), configured.prefix_from()],
            );
        }
    }
}
