//! Structural checks that serde cannot express: unique names, non-empty argv, absolute input
//! paths, valid variable names, reference syntax. [`validate`] reports every problem at once (up
//! to [`MAX_ERRORS`](crate::error::MAX_ERRORS), see [`Problems`]).
//!
//! Every check is linear in the size of the plan. Names longer than [`MAX_NAME`] bytes are
//! refused first, alone ([`check_name_lengths`]): the other checks copy a map's key into the path
//! of every value under it, so a 40 MiB input name over a list of a million paths would cost
//! 40 TiB of copies.

use std::collections::{BTreeMap, HashSet};

use crate::error::{known_names, PlanError, PlanErrorKind, PlanErrors, Problems, MAX_NAME};
use crate::excerpt::excerpt;
use crate::path::JsonPath;
use crate::plan::{Edit, Phase, Plan, PLAN_VERSION};
use crate::reference::check_syntax_into;
use crate::steps::StepFields;

/// The outputs a plan declares, or the default `["out"]`.
pub fn declared_outputs(plan: &Plan) -> Vec<String> {
    plan.outputs
        .clone()
        .unwrap_or_else(|| vec!["out".to_owned()])
}

/// `[A-Za-z0-9_.+-]+`, not starting with `.`, at most [`MAX_NAME`] bytes: safe in file names,
/// logs and Nix.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
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

/// A POSIX-portable environment variable name, at most [`MAX_NAME`] bytes.
pub fn is_valid_env_name(name: &str) -> bool {
    if name.len() > MAX_NAME {
        return false;
    }
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Names longer than [`MAX_NAME`] bytes: output, input, phase and variable names, and the keys
/// of `outputChecks`. Each is reported at its own path; the name is not copied elsewhere.
pub fn check_name_lengths(plan: &Plan) -> Problems {
    let mut problems = Problems::new();
    let mut check = |what: &'static str, name: &str, path: &dyn Fn() -> JsonPath| {
        if name.len() > MAX_NAME {
            problems.push_with(|| {
                PlanError::new(
                    path(),
                    PlanErrorKind::NameTooLong {
                        what,
                        name: excerpt(name).to_string(),
                        length: name.len(),
                    },
                )
            });
        }
    };
    let root = JsonPath::root();
    for (index, name) in plan.outputs.iter().flatten().enumerate() {
        check("output name", name, &|| root.key("outputs").index(index));
    }
    for name in plan.inputs.keys() {
        check("input name", name, &|| root.key("inputs").key(name));
    }
    for name in plan.env.keys() {
        check("environment variable name", name, &|| {
            root.key("env").key(name)
        });
    }
    let mut phase = |phase: &Phase, path: &JsonPath| {
        check("phase name", &phase.name, &|| path.key("name"));
        for (index, step) in phase.steps.iter().enumerate() {
            let step_path = || path.key("steps").index(index).key(step.kind());
            step.fields().for_each_name(&step_path, &mut check);
        }
    };
    for (index, edit) in plan.edits.iter().enumerate() {
        let path = root.key("edits").index(index).key(edit.kind());
        match edit {
            Edit::Before(insert) | Edit::After(insert) => {
                phase(&insert.insert, &path.key("insert"))
            }
            Edit::Replace(replace) => phase(&replace.with, &path.key("with")),
            Edit::Delete(_) => {}
        }
    }
    for (index, each) in plan.phases.iter().enumerate() {
        phase(each, &root.key("phases").index(index));
    }
    if let Some(fixup) = plan
        .preset
        .as_ref()
        .and_then(|preset| preset.fixup.as_ref())
    {
        fixup.for_each_name(&|| root.key("preset").key("fixup"), &mut check);
    }
    problems
}

/// Every structural problem in `plan`, in document order. Names longer than [`MAX_NAME`] bytes
/// are reported alone (see the [module docs](self)).
pub fn validate(plan: &Plan) -> Result<(), PlanErrors> {
    let too_long = check_name_lengths(plan);
    if !too_long.is_empty() {
        return too_long.finish_by(|error| document_order(&error.path));
    }
    let mut errors = Problems::new();
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
                errors.push_with(|| {
                    let at = match input {
                        crate::plan::Input::Path(_) => path.clone(),
                        crate::plan::Input::List(_) => path.index(index),
                    };
                    PlanError::new(
                        at,
                        PlanErrorKind::RelativeInputPath {
                            path: input_path.clone(),
                        },
                    )
                });
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
    let inputs = known_names(plan.inputs.keys());
    for (role, list, names) in lists {
        for (index, name) in names.iter().enumerate() {
            if !plan.inputs.contains_key(name) {
                errors.push_with(|| {
                    PlanError::new(
                        root.key(role).key(list).index(index),
                        PlanErrorKind::UnknownInput {
                            name: name.clone(),
                            known: inputs.clone(),
                        },
                    )
                });
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
    check_syntax_into(plan, &mut errors);
    errors.finish_by(|error| document_order(&error.path))
}

/// "phase `NAME`, step N" for messages, with the name bounded.
pub(crate) fn step_context(phase: &str, step_index: usize) -> String {
    format!("phase `{}`, step {}", excerpt(phase), step_index + 1)
}

fn check_phase(phase: &crate::plan::Phase, path: &JsonPath, errors: &mut Problems) {
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
    check_steps(phase, path, errors, &|step, path, errors| {
        step.check(path, errors)
    });
}

/// Calls `check` on every step of `phase`, with the step's path, and gives the problems it finds
/// the step's context ("phase `NAME`, step N").
fn check_steps(
    phase: &Phase,
    path: &JsonPath,
    errors: &mut Problems,
    check: &dyn Fn(&dyn StepFields, &JsonPath, &mut Problems),
) {
    for (step_index, step) in phase.steps.iter().enumerate() {
        let step_path = path.key("steps").index(step_index).key(step.kind());
        let before = errors.len();
        check(step.fields(), &step_path, errors);
        let found = errors.since(before);
        if !found.is_empty() {
            let context = step_context(&phase.name, step_index);
            for error in found {
                error.context = Some(context.clone());
            }
        }
    }
}

/// The plan's outputs, as the steps' [`StepFields::check_outputs`] see them.
pub(crate) struct PlanOutputs<'a> {
    names: HashSet<&'a str>,
    known: Vec<String>,
    /// Whether the plan propagates any input.
    pub(crate) propagates: bool,
    /// The output that records the propagated inputs (see [`crate::Propagate::output_in`]).
    pub(crate) propagated_to: Option<&'a str>,
}

impl<'a> PlanOutputs<'a> {
    fn new(plan: &'a Plan, outputs: &'a [String]) -> PlanOutputs<'a> {
        let names: HashSet<&str> = outputs.iter().map(String::as_str).collect();
        let propagated_to = plan.propagate.output_in(|name| names.contains(name));
        PlanOutputs {
            known: known_names(outputs),
            propagates: !plan.propagate.build.is_empty() || !plan.propagate.host.is_empty(),
            propagated_to,
            names,
        }
    }

    /// Whether the plan has the output `name`.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// `name`, at `path`, is not an output of the plan.
    pub(crate) fn unknown(&self, name: &str, path: JsonPath) -> PlanError {
        PlanError::new(
            path,
            PlanErrorKind::UnknownOutput {
                name: name.to_owned(),
                known: self.known.clone(),
            },
        )
    }
}

/// Names that must be outputs of the plan: `propagate.output`, and those of every step (in the
/// phases, in the phases the edits insert) and of the preset's fixup (see
/// [`StepFields::check_outputs`]).
fn check_output_names(plan: &Plan, errors: &mut Problems) {
    let declared = declared_outputs(plan);
    let outputs = PlanOutputs::new(plan, &declared);
    let root = JsonPath::root();
    if let Some(name) = &plan.propagate.output {
        if !outputs.has(name) {
            errors.push_with(|| outputs.unknown(name, root.key("propagate").key("output")));
        }
    }
    let check = |step: &dyn StepFields, path: &JsonPath, errors: &mut Problems| {
        step.check_outputs(path, &outputs, errors)
    };
    for (index, phase) in plan.phases.iter().enumerate() {
        check_steps(phase, &root.key("phases").index(index), errors, &check);
    }
    for (index, edit) in plan.edits.iter().enumerate() {
        let path = root.key("edits").index(index).key(edit.kind());
        match edit {
            Edit::Before(insert) | Edit::After(insert) => {
                check_steps(&insert.insert, &path.key("insert"), errors, &check)
            }
            Edit::Replace(replace) => check_steps(&replace.with, &path.key("with"), errors, &check),
            Edit::Delete(_) => {}
        }
    }
    if let Some(fixup) = plan
        .preset
        .as_ref()
        .and_then(|preset| preset.fixup.as_ref())
    {
        fixup.check_outputs(&root.key("preset").key("fixup"), &outputs, errors);
    }
}

fn check_outputs(plan: &Plan, errors: &mut Problems) {
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
    let mut seen = HashSet::new();
    for (index, name) in outputs.iter().enumerate() {
        let first = seen.insert(name.as_str());
        if !is_valid_reference_name(name) {
            errors.push(PlanError::new(
                path.index(index),
                PlanErrorKind::InvalidName {
                    what: "output name",
                    name: name.clone(),
                },
            ));
        } else if !first {
            errors.push(PlanError::new(
                path.index(index),
                PlanErrorKind::DuplicateOutput { name: name.clone() },
            ));
        }
    }
}

/// Every name of `env` that is not a valid environment variable name, at `path.NAME`.
pub(crate) fn check_env_names(
    env: &BTreeMap<String, String>,
    path: &JsonPath,
    errors: &mut Problems,
) {
    for name in env.keys() {
        if !is_valid_env_name(name) {
            errors.push(PlanError::new(
                path.key(name),
                PlanErrorKind::InvalidEnvName { name: name.clone() },
            ));
        }
    }
}

/// A sort key that keeps errors in the order their paths appear in the document.
fn document_order(path: &JsonPath) -> (usize, Vec<usize>) {
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

    #[test]
    fn long_names_are_reported_alone() {
        let long = "n".repeat(MAX_NAME + 1);
        let text = format!(
            r#"{{"version":2,"name":"x","inputs":{{"{long}":["a","b","c"]}},
                "phases":[{{"name":"{long}","steps":[{{"run":{{"argv":[]}}}}]}}]}}"#
        );
        let found = problems(&text);
        let shown: Vec<String> = found.iter().map(|e| e.to_string()).collect();
        assert_eq!(found.len(), 2, "{shown:?}");
        assert!(shown[0].contains("input name `nnn"), "{}", shown[0]);
        assert!(shown[0].contains("is 256 bytes long; names are at most 255 bytes"));
        assert!(shown[1].starts_with("at `phases[0].name`"), "{}", shown[1]);
        assert!(shown.iter().all(|line| line.len() < 600));
        // At the limit, a name is fine.
        assert!(is_valid_name(&"n".repeat(MAX_NAME)));
        assert!(!is_valid_name(&long));
        assert!(!is_valid_env_name(&long));
    }

    #[test]
    fn many_problems_are_counted_not_all_kept() {
        let deps: Vec<String> = (0..20_000).map(|i| format!("\"d{i}\"")).collect();
        let inputs: Vec<String> = (0..20_000).map(|i| format!("\"i{i}\":\"/s\"")).collect();
        let text = format!(
            r#"{{"version":1,"name":"x","inputs":{{{}}},"deps":{{"build":[{}]}},
                "phases":[{{"name":"b","steps":[]}}]}}"#,
            inputs.join(","),
            deps.join(",")
        );
        let plan = plan_from_str(&text).unwrap();
        let errors = validate(&plan).unwrap_err();
        assert_eq!(errors.total(), 20_000);
        assert_eq!(errors.0.len(), crate::error::MAX_ERRORS + 1);
        let PlanErrorKind::UnknownInput { known, .. } = &errors.0[0].kind else {
            panic!("{:?}", errors.0[0]);
        };
        assert_eq!(known.len(), crate::error::MAX_KNOWN);
        assert!(errors.0[0].hint().unwrap().len() < 1024);
    }

    #[test]
    fn duplicate_outputs_are_found_among_many() {
        let mut outputs: Vec<String> = (0..50_000).map(|i| format!("\"o{i}\"")).collect();
        outputs.push("\"o7\"".to_owned());
        let text = format!(
            r#"{{"version":1,"name":"x","outputs":[{}],"phases":[{{"name":"b","steps":[]}}]}}"#,
            outputs.join(",")
        );
        assert_eq!(
            errors(&text),
            ["at `outputs[50000]`: duplicate output name `o7`"]
        );
    }
}
