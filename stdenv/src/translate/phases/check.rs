//! The check and installCheck phases: `doCheck` and `doInstallCheck`, their flags, targets and
//! parallelism. installCheck is make's (stdenv runs it only when the build found a Makefile).

use super::*;

impl Translator<'_, '_> {
    /// The check phase: on with `doCheck`; its make steps get `makefile` and parallelism.
    pub(super) fn check_phase(&self, check: &mut Draft, make: &MakeSettings) {
        let r = self.r;
        switched_on_by(check, "doCheck", make.do_check, "doCheck off");
        adjust_make(check, make.makefile.as_ref(), make.parallel_checking);
        if let Some(from) = check.steps.first_mut() {
            from.extend(present(r, &["makefile", "makeFlags"]));
            from.push(if !make.check_flags_attr.is_empty() {
                "checkFlags".to_owned()
            } else if make.make_based {
                default("checkFlags VERBOSE=y")
            } else {
                default("no checkFlags")
            });
            from.push(if make.check_target.is_some() {
                "checkTarget".to_owned()
            } else if make.make_based {
                default("first of check, test that `make -n` accepts, else nothing")
            } else {
                "preset meson: test".to_owned()
            });
            from.push(check_parallel_from(r, make));
        }
    }

    /// The installCheck phase: on with `doInstallCheck`, in the build phase's directory `cwd`;
    /// one make step (`installCheckTarget`, else `installcheck` when make knows it), none for a
    /// ninja build.
    pub(super) fn install_check_phase(
        &mut self,
        install_check: &mut Draft,
        cwd: Option<String>,
        make: &MakeSettings,
    ) {
        let r = self.r;
        let do_install_check = r.flag("doInstallCheck");
        switched_on_by(
            install_check,
            "doInstallCheck",
            do_install_check,
            "doInstallCheck off",
        );
        let target = r
            .string("installCheckTarget")
            .filter(|t| !t.is_empty())
            .map(|t| literal(&t));
        let mut flags = make.make_flags.clone();
        flags.extend(literal_list(r.list("installCheckFlags")));
        install_check.phase.cwd = cwd;
        if make.make_based {
            let mut from = present(r, &["makefile", "makeFlags", "installCheckFlags"]);
            from.push(if target.is_some() {
                "installCheckTarget".to_owned()
            } else {
                default("installcheck when `make -n` accepts it, else nothing")
            });
            from.push(check_parallel_from(r, make));
            let (targets, first_existing_target) = match target {
                Some(target) => (vec![target], Vec::new()),
                None => (Vec::new(), vec!["installcheck".to_owned()]),
            };
            let step = Step::Make(MakeStep {
                flags,
                targets,
                first_existing_target,
                parallel: make.parallel_checking,
                makefile: make.makefile.clone(),
            });
            install_check.push(step, from);
        } else {
            // stdenv's installCheckPhase is make's, and does nothing when the build phase found
            // no Makefile: with ninja building, it never runs a command.
            install_check.switch.push(default(
                "installCheckPhase does nothing without a Makefile (ninja built)",
            ));
            if do_install_check && target.is_some() {
                self.report.warnings.push(
                    "`installCheckTarget` has no effect on a Meson build: stdenv's installCheckPhase \
                     runs make only when the build phase found a Makefile (add a phase of `run` \
                     steps instead)"
                        .to_owned(),
                );
            }
        }
    }
}

/// Where the check phases' parallelism came from.
fn check_parallel_from(r: &Reader, make: &MakeSettings) -> String {
    parallel_from(
        r,
        "enableParallelChecking",
        make.parallel_checking,
        "enableParallelBuilding",
    )
}
