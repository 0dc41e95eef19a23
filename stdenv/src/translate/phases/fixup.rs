//! The fixup phase: `dontFixup`, which attributes shaped the fixup step (made in
//! [`super::super::fixup`]), and the files setup.sh writes to `nix-support/` (`setupHook`,
//! `propagatedUserEnvPkgs`).

use super::*;

/// Attributes the fixup step reads besides the [`FIXUP_KNOBS`] switches.
const FIXUP_ATTRIBUTES: &[&str] = &[
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
];

impl Translator<'_, '_> {
    /// The fixup phase: off with `dontFixup`; the fixup step's provenance, then the
    /// `nix-support/` files.
    pub(super) fn fixup_phase(&mut self, fixup: &mut Draft, roles: &Roles, dont_fixup: bool) {
        let r = self.r;
        switched_off_by(fixup, "dontFixup", dont_fixup, "fixupPhase runs");
        if let Some(from) = fixup.steps.first_mut() {
            let knobs: Vec<&str> = FIXUP_KNOBS
                .iter()
                .map(|(attr, _)| *attr)
                .chain(FIXUP_ATTRIBUTES.iter().copied())
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
        self.setup_hook(fixup, roles);
        user_env_packages(r, fixup, roles);
    }

    /// setup.sh: `substituteAll "$setupHook" "${!outputDev}/nix-support/setup-hook"` (only
    /// with a shell: `setupHook` is shell code).
    fn setup_hook(&mut self, fixup: &mut Draft, roles: &Roles) {
        if self.report.shell.is_none() {
            return;
        }
        let Some(Value::String(hook)) = self.r.all().get("setupHook") else {
            return;
        };
        let dev = &roles.dev;
        self.report.shell_hooks.push(ShellHook {
            attribute: "setupHook".to_owned(),
            phase: "fixup".to_owned(),
            replacement: table::lookup("setupHook")
                .map(|row| row.status.text())
                .unwrap_or_default()
                .to_owned(),
        });
        fixup.push(
            Step::Mkdir(MkdirStep {
                path: format!("${{outputs.{dev}}}/nix-support"),
            }),
            vec!["setupHook".to_owned()],
        );
        fixup.push(
            Step::Copy(CopyStep {
                from: literal(hook),
                to: format!("${{outputs.{dev}}}/nix-support/setup-hook"),
            }),
            vec!["setupHook (copied, no @var@ substitution)".to_owned()],
        );
    }
}

/// setup.sh's fixupPhase, after the hooks: `printWords $propagatedUserEnvPkgs >
/// "${!outputBin}/nix-support/propagated-user-env-packages"` (each path and a space).
fn user_env_packages(r: &Reader, fixup: &mut Draft, roles: &Roles) {
    let user_env = r.paths("propagatedUserEnvPkgs");
    if user_env.is_empty() {
        return;
    }
    let content: String = user_env.iter().map(|path| format!("{path} ")).collect();
    fixup.push(
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
