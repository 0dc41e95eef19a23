//! `make`: run `make` with stdenv's parallelism and flags. With `firstExistingTarget`, the
//! targets are probed in order with `make -n` and the first one the makefile has is built
//! (stdenv's `check` and `installCheck` look for `check` or `test`); with none, nothing runs.

use std::collections::BTreeMap;

use kiln_schema::MakeStep;

use crate::{Invocation, ProcessPlan, StepContext};

/// The processes of a `make` step: the probes of `firstExistingTarget`, one build per probe.
pub fn plan(step: &MakeStep, ctx: &StepContext<'_>) -> ProcessPlan {
    let cores = ctx.cores.to_string();
    let invocation = |extra: &[String], targets: &[String]| Invocation {
        argv: make_argv(step, &cores, extra, targets),
        cwd: ctx.cwd.to_owned(),
        env: BTreeMap::new(),
        stdout: None,
    };
    if step.first_existing_target.is_empty() {
        return ProcessPlan::one(invocation(&[], &step.targets));
    }
    let probe = ["-n".to_owned()];
    let mut probes = Vec::new();
    let mut choices = Vec::new();
    for candidate in &step.first_existing_target {
        probes.push(invocation(&probe, std::slice::from_ref(candidate)));
        let mut targets = step.targets.clone();
        targets.push(candidate.clone());
        choices.push(invocation(&[], &targets));
    }
    ProcessPlan {
        probes,
        choices,
        none_found: Some(format!(
            "no {} target in the makefile, doing nothing",
            step.first_existing_target.join("/")
        )),
    }
}

/// `make [-f FILE] [-jN -lN] EXTRA... FLAGS... TARGETS...`, as stdenv's build, check and install
/// phases call it.
pub fn make_argv(
    step: &MakeStep,
    cores: &str,
    extra: &[String],
    targets: &[String],
) -> Vec<String> {
    let mut argv = vec!["make".to_owned()];
    if let Some(makefile) = &step.makefile {
        argv.push("-f".to_owned());
        argv.push(makefile.clone());
    }
    if step.parallel {
        argv.push(format!("-j{cores}"));
        argv.push(format!("-l{cores}"));
    }
    argv.extend(extra.iter().cloned());
    argv.extend(step.flags.iter().cloned());
    argv.extend(targets.iter().cloned());
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn make_argv_has_parallelism_and_targets() {
        let step: MakeStep = serde_json::from_str(r#"{"flags":["V=1"]}"#).unwrap();
        assert_eq!(
            make_argv(&step, "4", &[], &["install".to_owned()]),
            ["make", "-j4", "-l4", "V=1", "install"]
        );
    }
}
