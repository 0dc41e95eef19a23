//! Structural checks that serde cannot express: unique names, non-empty argv, absolute input
//! paths, valid variable names, reference syntax. [`validate`] reports every problem at once.

use std::collections::BTreeMap;

use crate::error::{PlanError, PlanErrorKind, PlanErrors};
use crate::path::JsonPath;
use crate::plan::{Edit, FixupStep, Phase, Plan, Step, PLAN_VERSION};
use crate::reference::check_syntax;

/// The outputs a plan declares, or the default `["out"]`.
pub fn declared_outputs(plan: &Plan) -> Vec<String> {
    plan.outputs
        .clone()
        .unwrap_or_else(|| vec!["out".to_owned()])
}

/// `[A-Za-z0-9_.+-]+`, not starting with `.`: safe in file names, logs and Nix.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+'))
}

/// A name that `${outputs.NAME}` / `${inputs.NAME}` can reference: [`is_valid_name`] without `.`
/// (a dot separates the parts of a reference).
pub fn is_valid_reference_name(name: &str) -> bool {
    is_valid_name(name) && !name.contains('.')
}

/// A POSIX-portable environment variable name.
pub fn is_valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Every structural problem in `plan`, in document order.
pub fn validate(plan: &Plan) -> Result<(), PlanErrors> {
    let mut errors = Vec::new();
    let root = JsonPath::root();
    if plan.version != PLAN_VERSION {
        errors.push(PlanError::new(
            root.key("version"),
            PlanErrorKind::UnsupportedVersion {
                found: plan.version,
            },
        ));
    }
    if plan.name.is_empty() {
        errors.push(PlanError::new(
            root.key("name"),
            PlanErrorKind::Empty { what: "the name" },
        ));
    }
    check_outputs(plan, &mut errors);
    for (name, input) in &plan.inputs {
        let path = root.key("inputs").key(name);
        if !is_valid_reference_name(name) {
            errors.push(PlanError::new(
                path.clone(),
                PlanErrorKind::InvalidName {
                    what: "input name",
                    name: name.clone(),
                },
            ));
        }
        for (index, input_path) in input.paths().iter().enumerate() {
            if !input_path.starts_with('/') {
                let at = match input {
                    crate::plan::Input::Path(_) => path.clone(),
                    crate::plan::Input::List(_) => path.index(index),
                };
                errors.push(PlanError::new(
                    at,
                    PlanErrorKind::RelativeInputPath {
                        path: input_path.clone(),
                    },
                ));
            }
        }
    }
    check_env_names(&plan.env, &root.key("env"), &mut errors);
    let lists = [
        ("deps", "build", &plan.deps.build),
        ("deps", "host", &plan.deps.host),
        ("propagate", "build", &plan.propagate.build),
        ("propagate", "host", &plan.propagate.host),
    ];
    for (role, list, names) in lists {
        {
            for (index, name) in names.iter().enumerate() {
                if !plan.inputs.contains_key(name) {
                    errors.push(PlanError::new(
                        root.key(role).key(list).index(index),
                        PlanErrorKind::UnknownInput {
                            name: name.clone(),
                            known: plan.inputs.keys().cloned().collect(),
                        },
                    ));
                }
            }
        }
    }
    match &plan.preset {
        Some(preset) => {
            if !plan.phases.is_empty() {
                errors.push(PlanError::new(
                    root.key("phases"),
                    PlanErrorKind::PresetWithPhases,
                ));
            }
            if preset.srcs.is_empty() {
                errors.push(PlanError::new(
                    root.key("preset").key("srcs"),
                    PlanErrorKind::Empty {
                        what: "the source list",
                    },
                ));
            }
        }
        None if plan.phases.is_empty() => {
            errors.push(PlanError::new(root.key("phases"), PlanErrorKind::NoPhases));
        }
        None => {}
    }
    let mut first_index: BTreeMap<&str, usize> = BTreeMap::new();
    for (phase_index, phase) in plan.phases.iter().enumerate() {
        let path = root.key("phases").index(phase_index);
        if let Some(&first) = first_index.get(phase.name.as_str()) {
            errors.push(PlanError::new(
                path.key("name"),
                PlanErrorKind::DuplicatePhase {
                    name: phase.name.clone(),
                    first,
                },
            ));
        } else {
            first_index.insert(&phase.name, phase_index);
        }
        check_phase(phase, &path, &mut errors);
    }
    for (index, edit) in plan.edits.iter().enumerate() {
        let path = root.key("edits").index(index).key(edit.kind());
        match edit {
            crate::plan::Edit::Before(insert) | crate::plan::Edit::After(insert) => {
                check_phase(&insert.insert, &path.key("insert"), &mut errors)
            }
            crate::plan::Edit::Replace(replace) => {
                check_phase(&replace.with, &path.key("with"), &mut errors)
            }
            crate::plan::Edit::Delete(_) => {}
        }
    }
    check_output_names(plan, &mut errors);
    errors.extend(check_syntax(plan));
    errors.sort_by_key(|error| document_order(plan, &error.path));
    PlanErrors::check(errors)
}

fn check_phase(phase: &crate::plan::Phase, path: &JsonPath, errors: &mut Vec<PlanError>) {
    if phase.name.is_empty() {
        errors.push(PlanError::new(
            path.key("name"),
            PlanErrorKind::Empty {
                what: "the phase name",
            },
        ));
    } else if !is_valid_name(&phase.name) {
        errors.push(PlanError::new(
            path.key("name"),
            PlanErrorKind::InvalidName {
                what: "phase name",
                name: phase.name.clone(),
            },
        ));
    }
    if phase.timeout == Some(0) {
        errors.push(PlanError::new(
            path.key("timeout"),
            PlanErrorKind::ZeroTimeout,
        ));
    }
    for (step_index, step) in phase.steps.iter().enumerate() {
        let step_path = path.key("steps").index(step_index).key(step.kind());
        let context = format!("phase `{}`, step {}", phase.name, step_index + 1);
        let before = errors.len();
        check_step(step, &step_path, errors);
        for error in &mut errors[before..] {
            error.context = Some(context.clone());
        }
    }
}

/// A fixup step of the plan, where it is, and the phase and step it is in (for messages).
type FixupAt<'a> = (&'a FixupStep, JsonPath, Option<String>);

/// Every fixup step: in the phases, in the phases the edits insert, and the preset's.
fn fixup_steps(plan: &Plan) -> Vec<FixupAt<'_>> {
    fn in_phase<'a>(phase: &'a Phase, path: JsonPath, found: &mut Vec<FixupAt<'a>>) {
        for (step_index, step) in phase.steps.iter().enumerate() {
            if let Step::Fixup(fixup) = step {
                let context = format!("phase `{}`, step {}", phase.name, step_index + 1);
                let step_path = path.key("steps").index(step_index).key("fixup");
                found.push((fixup.as_ref(), step_path, Some(context)));
            }
        }
    }
    let root = JsonPath::root();
    let mut found = Vec::new();
    for (index, phase) in plan.phases.iter().enumerate() {
        in_phase(phase, root.key("phases").index(index), &mut found);
    }
    for (index, edit) in plan.edits.iter().enumerate() {
        let path = root.key("edits").index(index).key(edit.kind());
        match edit {
            Edit::Before(insert) | Edit::After(insert) => {
                in_phase(&insert.insert, path.key("insert"), &mut found)
            }
            Edit::Replace(replace) => in_phase(&replace.with, path.key("with"), &mut found),
            Edit::Delete(_) => {}
        }
    }
    if let Some(fixup) = plan
        .preset
        .as_ref()
        .and_then(|preset| preset.fixup.as_ref())
    {
        found.push((fixup, root.key("preset").key("fixup"), None));
    }
    found
}

/// Names that must be outputs of the plan: `propagate.output`, and the fixup steps' output roles
/// and `propagatedBuildOutputs`; and the fixup's `dev` role, when set, must be where `propagate`
/// records (setup.sh writes the propagated inputs and the dev output's siblings into one file of
/// `${!outputDev}`).
fn check_output_names(plan: &Plan, errors: &mut Vec<PlanError>) {
    let outputs = declared_outputs(plan);
    let has = |name: &str| outputs.iter().any(|output| output == name);
    let unknown = |name: &str, path: JsonPath, context: &Option<String>| {
        let mut error = PlanError::new(
            path,
            PlanErrorKind::UnknownOutput {
                name: name.to_owned(),
                known: outputs.clone(),
            },
        );
        error.context = context.clone();
        error
    };
    if let Some(name) = &plan.propagate.output {
        if !has(name) {
            errors.push(unknown(
                name,
                JsonPath::root().key("propagate").key("output"),
                &None,
            ));
        }
    }
    let propagates = !plan.propagate.build.is_empty() || !plan.propagate.host.is_empty();
    let propagated_to = plan.propagate.output_in(has);
    for (fixup, path, context) in fixup_steps(plan) {
        for (role, name) in fixup.output_roles.set() {
            let remove = role == "devdoc" && name == "REMOVE";
            if !remove && !has(name) {
                errors.push(unknown(name, path.key("outputRoles").key(role), &context));
            }
        }
        for (index, name) in fixup.propagated_build_outputs.iter().flatten().enumerate() {
            if !has(name) {
                let at = path.key("propagatedBuildOutputs").index(index);
                errors.push(unknown(name, at, &context));
            }
        }
        if let (Some(dev), true) = (&fixup.output_roles.dev, propagates) {
            if has(dev) && propagated_to != Some(dev.as_str()) {
                let mut error = PlanError::new(
                    path.key("outputRoles").key("dev"),
                    PlanErrorKind::PropagateElsewhere {
                        dev: dev.clone(),
                        output: propagated_to.unwrap_or_default().to_owned(),
                    },
                );
                error.context = context;
                errors.push(error);
            }
        }
    }
}

fn check_outputs(plan: &Plan, errors: &mut Vec<PlanError>) {
    let Some(outputs) = &plan.outputs else {
        return;
    };
    let path = JsonPath::root().key("outputs");
    if outputs.is_empty() {
        errors.push(PlanError::new(
            path.clone(),
            PlanErrorKind::Empty {
                what: "the output list",
            },
        ));
    }
    for (index, name) in outputs.iter().enumerate() {
        if !is_valid_reference_name(name) {
            errors.push(PlanError::new(
                path.index(index),
                PlanErrorKind::InvalidName {
                    what: "output name",
                    name: name.clone(),
                },
            ));
        } else if outputs[..index].contains(name) {
            errors.push(PlanError::new(
                path.index(index),
                PlanErrorKind::DuplicateOutput { name: name.clone() },
            ));
        }
    }
}

fn check_env_names(env: &BTreeMap<String, String>, path: &JsonPath, errors: &mut Vec<PlanError>) {
    for name in env.keys() {
        if !is_valid_env_name(name) {
            errors.push(PlanError::new(
                path.key(name),
                PlanErrorKind::InvalidEnvName { name: name.clone() },
            ));
        }
    }
}

fn check_step(step: &Step, path: &JsonPath, errors: &mut Vec<PlanError>) {
    let empty = |field: &str, what: &'static str| {
        PlanError::new(path.key(field), PlanErrorKind::Empty { what })
    };
    match step {
        Step::Run(run) => {
            match run.argv.first() {
                None => errors.push(empty("argv", "argv")),
                Some(program) if program.is_empty() => errors.push(PlanError::new(
                    path.key("argv").index(0),
                    PlanErrorKind::Empty {
                        what: "the program name",
                    },
                )),
                Some(_) => {}
            }
            check_env_names(&run.env, &path.key("env"), errors);
        }
        Step::Write(write) if write.path.is_empty() => errors.push(empty("path", "the path")),
        Step::Mkdir(mkdir) if mkdir.path.is_empty() => errors.push(empty("path", "the path")),
        Step::Copy(copy) => {
            if copy.from.is_empty() {
                errors.push(empty("from", "the source path"));
            }
            if copy.to.is_empty() {
                errors.push(empty("to", "the destination path"));
            }
        }
        Step::Symlink(symlink) => {
            if symlink.target.is_empty() {
                errors.push(empty("target", "the link target"));
            }
            if symlink.link.is_empty() {
                errors.push(empty("link", "the link path"));
            }
        }
        Step::Unpack(unpack) if unpack.srcs.is_empty() => {
            errors.push(empty("srcs", "the source list"))
        }
        Step::Patch(patch) if patch.patches.is_empty() && patch.series.is_none() => errors.push(
            empty("patches", "the patch list (and there is no `series`)"),
        ),
        Step::Configure(configure) if configure.script.is_empty() => {
            errors.push(empty("script", "the script path"))
        }
        Step::Remove(remove) if remove.path.is_empty() => errors.push(empty("path", "the path")),
        Step::Chmod(chmod) if chmod.path.is_empty() => errors.push(empty("path", "the path")),
        Step::Substitute(substitute) => {
            if substitute.file.is_empty() {
                errors.push(empty("file", "the file path"));
            }
            if substitute.replace.is_empty() && substitute.vars.is_empty() {
                errors.push(PlanError::new(path.clone(), PlanErrorKind::EmptySubstitute));
            }
            for (index, replacement) in substitute.replace.iter().enumerate() {
                if replacement.from.is_empty() {
                    errors.push(PlanError::new(
                        path.key("replace").index(index).key("from"),
                        PlanErrorKind::Empty {
                            what: "the pattern",
                        },
                    ));
                }
            }
            for name in substitute.vars.keys() {
                if name.is_empty() || name.contains('@') {
                    errors.push(PlanError::new(
                        path.key("vars").key(name),
                        PlanErrorKind::InvalidEnvName { name: name.clone() },
                    ));
                }
            }
        }
        _ => {}
    }
}

/// A sort key that keeps errors in the order their paths appear in the document.
fn document_order(plan: &Plan, path: &JsonPath) -> (usize, Vec<usize>) {
    use crate::path::Segment;
    const TOP: &[&str] = &[
        "version",
        "name",
        "outputs",
        "inputs",
        "env",
        "deps",
        "propagate",
        "preset",
        "edits",
        "phases",
    ];
    let segments = path.segments();
    let top = match segments.first() {
        Some(Segment::Key(key)) => TOP.iter().position(|k| k == key).unwrap_or(TOP.len()),
        _ => 0,
    };
    let indices = segments
        .iter()
        .filter_map(|segment| match segment {
            Segment::Index(index) => Some(*index),
            Segment::Key(_) => None,
        })
        .collect();
    let _ = plan;
    (top, indices)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::plan_from_str;

    fn errors(text: &str) -> Vec<String> {
        let plan = plan_from_str(text).unwrap();
        match validate(&plan) {
            Ok(()) => Vec::new(),
            Err(errors) => errors.0.iter().map(|e| e.to_string()).collect(),
        }
    }

    fn problems(text: &str) -> Vec<PlanError> {
        let plan = plan_from_str(text).unwrap();
        validate(&plan)
            .err()
            .map(|errors| errors.0)
            .unwrap_or_default()
    }

    #[test]
    fn output_roles_are_checked_wherever_a_fixup_step_is() {
        // In a phase, in an edit's inserted phase, and in the preset.
        let text = r#"{"version":1,"name":"x","outputs":["out","dev"],
            "preset":{"system":"make","srcs":["/s"],"fixup":{"outputRoles":{"lib":"lib"}}},
            "edits":[{"after":{"phase":"install","insert":{"name":"more","steps":[
                {"fixup":{"propagatedBuildOutputs":["out","bin"]}}]}}}]}"#;
        let found = problems(text);
        let paths: Vec<String> = found.iter().map(|e| e.path.to_string()).collect();
        assert_eq!(
            paths,
            [
                "preset.fixup.outputRoles.lib",
                "edits[0].after.insert.steps[0].fixup.propagatedBuildOutputs[1]"
            ],
            "{found:?}"
        );
        // REMOVE is a devdoc destination, not an output.
        let text = r#"{"version":1,"name":"x","phases":[{"name":"fixup","steps":[
            {"fixup":{"outputRoles":{"devdoc":"REMOVE"}}}]}]}"#;
        assert!(problems(text).is_empty());
    }

    #[test]
    fn the_dev_role_and_the_propagation_output_must_agree() {
        let plan = |propagate: &str| {
            format!(
                r#"{{"version":1,"name":"x","outputs":["out","dev","lib"],
                "inputs":{{"z":"/nix/store/z"}},"propagate":{{"host":["z"]{propagate}}},
                "phases":[{{"name":"fixup","steps":[{{"fixup":{{"outputRoles":{{"dev":"lib"}}}}}}]}}]}}"#
            )
        };
        let found = problems(&plan(""));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0].path.to_string(),
            "phases[0].steps[0].fixup.outputRoles.dev"
        );
        assert!(found[0]
            .to_string()
            .contains("set `propagate.output` to `lib`"));
        assert!(problems(&plan(r#","output":"lib""#)).is_empty());
    }

    #[test]
    fn a_good_plan_passes() {
        let text = r#"{"version":1,"name":"x","phases":[{"name":"build","steps":[{"run":{"argv":["true"]}}]}]}"#;
        assert!(errors(text).is_empty());
    }

    #[test]
    fn reports_every_problem_in_document_order() {
        let text = r#"{"version":2,"name":"","env":{"A B":"x"},"phases":[
            {"name":"build","steps":[{"run":{"argv":[]}}]},
            {"name":"build","timeout":0,"steps":[{"write":{"path":"${oops}","content":""}}]}]}"#;
        assert_eq!(
            errors(text),
            [
                "at `version`: unsupported plan version 2",
                "at `name`: the name is empty",
                "at `env[\"A B\"]`: invalid environment variable name `A B`",
                "at `phases[0].steps[0].run.argv` (phase `build`, step 1): argv is empty",
                "at `phases[1].name`: duplicate phase name `build` (also at phases[0])",
                "at `phases[1].timeout`: timeout must be at least 1 second",
                "at `phases[1].steps[0].write.path`: malformed reference in `${oops}`: unknown namespace `oops`; use one of outputs, inputs, env, build",
            ]
        );
    }
}
