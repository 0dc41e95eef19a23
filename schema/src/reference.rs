//! References inside plan strings, and their resolution.
//!
//! A string may contain `${outputs.NAME}`, `${inputs.NAME}` (or `${inputs.NAME.INDEX}` for a list
//! input), `${env.NAME}`, `${build.top}` and `${build.cores}`. `$${` writes a literal `${`; any
//! other `$` is literal. [`resolve`] replaces every reference using a [`ResolveContext`] and fails
//! on the first unknown name of each string, with its JSON path. Nothing is left for run time.
//!
//! Resolution is linear in the plan and bounded in its output: references may produce at most
//! [`MAX_EXPANSION`] bytes in all (each `${env.X}` copies X's value, so a chain of variables that
//! each use the previous one twice doubles at every step), and `${env.X}` follows at most
//! [`MAX_ENV_DEPTH`] variables deep (resolution recurses through them).

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};

use crate::error::{
    known_names, PlanError, PlanErrorKind, PlanErrors, Problems, MAX_ENV_DEPTH, MAX_EXPANSION,
    MAX_KNOWN,
};
use crate::excerpt::excerpt;
use crate::path::JsonPath;
use crate::plan::{Input, Plan};
use crate::steps::StepFields;

/// A parsed `${...}` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `${outputs.NAME}`: the output's path.
    Output(String),
    /// `${inputs.NAME}` or `${inputs.NAME.INDEX}`.
    Input {
        /// The input's name.
        name: String,
        /// The element of a list input.
        index: Option<usize>,
    },
    /// `${env.NAME}`: an environment variable's value.
    Env(String),
    /// `${build.top}`: the build directory (`NIX_BUILD_TOP`).
    BuildTop,
    /// `${build.cores}`: the number of cores (`NIX_BUILD_CORES`).
    BuildCores,
}

/// A piece of a template string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal text.
    Text(String),
    /// A reference, with its text as written (without `${` `}`).
    Ref(Reference, String),
}

const NAMESPACES: &[&str] = &["outputs", "inputs", "env", "build"];

/// Splits a string into literal text and references.
pub fn parse_template(text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        literal.push_str(&rest[..dollar]);
        let after = &rest[dollar..];
        if let Some(tail) = after.strip_prefix("$${") {
            literal.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail
                .find('}')
                .ok_or_else(|| "`${` is not closed by `}`".to_owned())?;
            let body = &tail[..end];
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Ref(parse_reference(body)?, body.to_owned()));
            rest = &tail[end + 1..];
        } else {
            literal.push('$');
            rest = &after[1..];
        }
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(pieces)
}

fn parse_reference(body: &str) -> Result<Reference, String> {
    let parts: Vec<&str> = body.split('.').collect();
    let valid_part = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
    };
    if parts.iter().any(|part| !valid_part(part)) {
        return Err(format!("`${{{}}}` is not a reference", excerpt(body)));
    }
    match parts.as_slice() {
        ["outputs", name] => Ok(Reference::Output((*name).to_owned())),
        ["inputs", name] => Ok(Reference::Input {
            name: (*name).to_owned(),
            index: None,
        }),
        ["inputs", name, index] => {
            let index = index.parse().map_err(|_| {
                format!(
                    "`{}` in `${{{}}}` is not a list index",
                    excerpt(index),
                    excerpt(body)
                )
            })?;
            Ok(Reference::Input {
                name: (*name).to_owned(),
                index: Some(index),
            })
        }
        ["env", name] => Ok(Reference::Env((*name).to_owned())),
        ["build", "top"] => Ok(Reference::BuildTop),
        ["build", "cores"] => Ok(Reference::BuildCores),
        ["build", other] => Err(format!(
            "`build.{}` does not exist; use `build.top` or `build.cores`",
            excerpt(other)
        )),
        [namespace, ..] if NAMESPACES.contains(namespace) => Err(format!(
            "`${{{}}}` has the wrong number of parts",
            excerpt(body)
        )),
        [namespace, ..] => Err(format!(
            "unknown namespace `{}`; use one of {}",
            excerpt(namespace),
            NAMESPACES.join(", ")
        )),
        [] => Err("empty reference".to_owned()),
    }
}

/// What references resolve to. Built by the runtime, which knows paths and the machine.
#[derive(Debug, Clone, Default)]
pub struct ResolveContext {
    /// Output name → path.
    pub outputs: BTreeMap<String, String>,
    /// The build directory.
    pub build_top: String,
    /// Cores for the build.
    pub build_cores: u32,
    /// Variables defined before the plan's own `env` (HOME, PATH, output names, ...).
    pub base_env: BTreeMap<String, String>,
}

/// Calls `visit` on every string of `plan` that may hold references, with its path: `env`
/// values, phases (and their steps), the preset's strings and the phases inside `edits`.
///
/// Names (phase names, env keys, output names) and input paths are not templates.
pub fn for_each_template(plan: &mut Plan, visit: &mut dyn FnMut(JsonPath, &mut String)) {
    let root = JsonPath::root();
    for (name, value) in plan.env.iter_mut() {
        visit(root.key("env").key(name), value);
    }
    if let Some(preset) = &mut plan.preset {
        for_each_preset_template(preset, &root.key("preset"), visit);
    }
    for (index, edit) in plan.edits.iter_mut().enumerate() {
        let path = root.key("edits").index(index).key(edit.kind());
        match edit {
            crate::plan::Edit::Before(insert) | crate::plan::Edit::After(insert) => {
                for_each_phase_template(&mut insert.insert, &path.key("insert"), visit)
            }
            crate::plan::Edit::Replace(replace) => {
                for_each_phase_template(&mut replace.with, &path.key("with"), visit)
            }
            crate::plan::Edit::Delete(_) => {}
        }
    }
    for (phase_index, phase) in plan.phases.iter_mut().enumerate() {
        for_each_phase_template(phase, &root.key("phases").index(phase_index), visit);
    }
}

/// Visits every string of `list`, at `path[INDEX]`.
pub(crate) fn visit_list(
    list: &mut [String],
    path: &JsonPath,
    visit: &mut dyn FnMut(JsonPath, &mut String),
) {
    for (index, item) in list.iter_mut().enumerate() {
        visit(path.index(index), item);
    }
}

/// Visits `value` at `path`, when it is set.
pub(crate) fn visit_option(
    value: &mut Option<String>,
    path: JsonPath,
    visit: &mut dyn FnMut(JsonPath, &mut String),
) {
    if let Some(value) = value {
        visit(path, value);
    }
}

fn for_each_phase_template(
    phase: &mut crate::plan::Phase,
    path: &JsonPath,
    visit: &mut dyn FnMut(JsonPath, &mut String),
) {
    visit_option(&mut phase.cwd, path.key("cwd"), visit);
    for (step_index, step) in phase.steps.iter_mut().enumerate() {
        let step_path = path.key("steps").index(step_index).key(step.kind());
        step.fields_mut().for_each_template(&step_path, visit);
    }
}

fn for_each_preset_template(
    preset: &mut crate::preset::Preset,
    path: &JsonPath,
    visit: &mut dyn FnMut(JsonPath, &mut String),
) {
    visit_list(&mut preset.srcs, &path.key("srcs"), visit);
    visit_option(&mut preset.source_root, path.key("sourceRoot"), visit);
    for (index, extra) in preset.extra_sources.iter_mut().enumerate() {
        let item = path.key("extraSources").index(index);
        visit(item.key("src"), &mut extra.src);
        visit(item.key("into"), &mut extra.into);
    }
    visit_list(&mut preset.patches, &path.key("patches"), visit);
    visit_option(&mut preset.patch_series, path.key("patchSeries"), visit);
    visit_option(
        &mut preset.configure_script,
        path.key("configureScript"),
        visit,
    );
    visit_list(
        &mut preset.configure_flags,
        &path.key("configureFlags"),
        visit,
    );
    visit_option(&mut preset.prefix_key, path.key("prefixKey"), visit);
    visit_list(&mut preset.cmake_flags, &path.key("cmakeFlags"), visit);
    visit_list(&mut preset.meson_flags, &path.key("mesonFlags"), visit);
    visit_list(&mut preset.make_flags, &path.key("makeFlags"), visit);
    visit_list(&mut preset.build_flags, &path.key("buildFlags"), visit);
    visit_list(&mut preset.check_flags, &path.key("checkFlags"), visit);
    visit_list(&mut preset.install_flags, &path.key("installFlags"), visit);
    if let Some(targets) = &mut preset.install_targets {
        visit_list(targets, &path.key("installTargets"), visit);
    }
    visit_option(&mut preset.check_target, path.key("checkTarget"), visit);
    if let Some(fixup) = &mut preset.fixup {
        fixup.for_each_template(&path.key("fixup"), visit);
    }
}

/// Checks the syntax of every reference, without resolving names.
pub fn check_syntax(plan: &Plan) -> Vec<PlanError> {
    let mut problems = Problems::new();
    check_syntax_into(plan, &mut problems);
    problems
        .finish()
        .err()
        .map(|errors| errors.0)
        .unwrap_or_default()
}

/// [`check_syntax`] into `problems`.
pub(crate) fn check_syntax_into(plan: &Plan, problems: &mut Problems) {
    let mut copy = plan.clone();
    for_each_template(&mut copy, &mut |path, text| {
        if let Err(problem) = parse_template(text) {
            problems.push_with(|| {
                PlanError::new(
                    path,
                    PlanErrorKind::MalformedReference {
                        text: text.clone(),
                        problem,
                    },
                )
            });
        }
    });
}

/// What references may still produce (see [`MAX_EXPANSION`]); the first string that would
/// exceed it is an error, the strings after it are left alone.
struct Budget {
    left: Cell<usize>,
    exceeded: Cell<bool>,
}

impl Budget {
    fn new() -> Budget {
        Budget {
            left: Cell::new(MAX_EXPANSION),
            exceeded: Cell::new(false),
        }
    }

    /// Takes `bytes` from the budget; false when there are not that many left.
    fn take(&self, bytes: usize) -> bool {
        match self.left.get().checked_sub(bytes) {
            Some(left) if !self.exceeded.get() => {
                self.left.set(left);
                true
            }
            _ => false,
        }
    }
}

/// Returns `plan` with every reference replaced, or every string that failed.
///
/// `${env.NAME}` looks in the plan's `env` first, then in `context.base_env`; inside the plan's
/// own `env.NAME`, `${env.NAME}` means the base value (so `PATH = "${env.PATH}:/x"` extends).
/// A step's `env` sees the plan's resolved `env`.
///
/// Names longer than [`crate::error::MAX_NAME`] are reported alone, as [`crate::validate()`]
/// does, before anything is resolved.
pub fn resolve(plan: &Plan, context: &ResolveContext) -> Result<Plan, PlanErrors> {
    let too_long = crate::validate::check_name_lengths(plan);
    if !too_long.is_empty() {
        too_long.finish()?;
    }
    let mut errors = Problems::new();
    let budget = Budget::new();
    let env = resolve_env(plan, context, &budget, &mut errors);
    let mut resolved = plan.clone();
    let scope = Scope {
        plan,
        context,
        env: &env,
    };
    for_each_template(&mut resolved, &mut |path, text| {
        let is_env =
            matches!(path.segments().first(), Some(crate::path::Segment::Key(k)) if k == "env");
        if !is_env {
            scope.substitute(path, text, &budget, &mut errors);
        }
    });
    resolved.env = env.clone();
    errors.finish()?;
    Ok(resolved)
}

struct Scope<'a> {
    plan: &'a Plan,
    context: &'a ResolveContext,
    env: &'a BTreeMap<String, String>,
}

impl Scope<'_> {
    fn substitute(
        &self,
        path: JsonPath,
        text: &mut String,
        budget: &Budget,
        errors: &mut Problems,
    ) {
        match render(text, &path, budget, &mut |reference, body| {
            self.lookup(reference, body, &mut |name| {
                self.env
                    .get(name)
                    .or_else(|| self.context.base_env.get(name))
                    .cloned()
            })
        }) {
            Ok(value) => *text = value,
            Err(Some(error)) => errors.push(error),
            Err(None) => {}
        }
    }

    fn lookup(
        &self,
        reference: &Reference,
        body: &str,
        env: &mut dyn FnMut(&str) -> Option<String>,
    ) -> Result<String, (String, Vec<String>)> {
        let _ = body;
        match reference {
            Reference::Output(name) => self.context.outputs.get(name).cloned().ok_or_else(|| {
                (
                    format!("the plan has no output `{}`", excerpt(name)),
                    known_names(self.context.outputs.keys()),
                )
            }),
            Reference::Input { name, index } => {
                let known = || known_names(self.plan.inputs.keys());
                let shown = excerpt(name);
                match (self.plan.inputs.get(name), index) {
                    (None, _) => Err((format!("the plan has no input `{shown}`"), known())),
                    (Some(Input::Path(path)), None) => Ok(path.clone()),
                    (Some(Input::Path(_)), Some(_)) => Err((
                        format!("input `{shown}` is a single path: write `${{inputs.{shown}}}`"),
                        Vec::new(),
                    )),
                    (Some(Input::List(paths)), None) => Err((
                        format!(
                            "input `{shown}` is a list of {} paths: write `${{inputs.{shown}.0}}`",
                            paths.len()
                        ),
                        Vec::new(),
                    )),
                    (Some(Input::List(paths)), Some(i)) => {
                        paths.get(*i).cloned().ok_or_else(|| {
                            (
                                format!("input `{shown}` has {} paths, no index {i}", paths.len()),
                                Vec::new(),
                            )
                        })
                    }
                }
            }
            Reference::Env(name) => env(name).ok_or_else(|| {
                // The first names of both maps, in order: enough for a hint, bounded.
                let mut known: BTreeSet<&String> = self.env.keys().take(MAX_KNOWN).collect();
                known.extend(self.context.base_env.keys().take(MAX_KNOWN));
                (
                    format!(
                        "`{}` is neither in the plan's `env` nor set by kiln",
                        excerpt(name)
                    ),
                    known_names(known),
                )
            }),
            Reference::BuildTop => Ok(self.context.build_top.clone()),
            Reference::BuildCores => Ok(self.context.build_cores.to_string()),
        }
    }
}

type Lookup<'a> = dyn FnMut(&Reference, &str) -> Result<String, (String, Vec<String>)> + 'a;

/// `text` with its references replaced. `Err(None)`: the budget was spent by an earlier string,
/// whose error was reported.
fn render(
    text: &str,
    path: &JsonPath,
    budget: &Budget,
    lookup: &mut Lookup<'_>,
) -> Result<String, Option<PlanError>> {
    let pieces = parse_template(text).map_err(|problem| {
        Some(PlanError::new(
            path.clone(),
            PlanErrorKind::MalformedReference {
                text: text.to_owned(),
                problem,
            },
        ))
    })?;
    let mut out = String::with_capacity(text.len());
    for piece in pieces {
        match piece {
            Piece::Text(literal) => out.push_str(&literal),
            Piece::Ref(reference, body) => match lookup(&reference, &body) {
                Ok(value) => {
                    if !budget.take(value.len()) {
                        if budget.exceeded.replace(true) {
                            return Err(None);
                        }
                        return Err(Some(PlanError::new(
                            path.clone(),
                            PlanErrorKind::ExpansionTooLarge,
                        )));
                    }
                    out.push_str(&value)
                }
                Err((problem, known)) => {
                    return Err(Some(PlanError::new(
                        path.clone(),
                        PlanErrorKind::UnknownReference {
                            reference: body,
                            problem,
                            known,
                        },
                    )))
                }
            },
        }
    }
    Ok(out)
}

/// Resolves the plan's `env` values, following `${env.X}` between them and detecting cycles.
fn resolve_env(
    plan: &Plan,
    context: &ResolveContext,
    budget: &Budget,
    errors: &mut Problems,
) -> BTreeMap<String, String> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Visiting,
        Done,
    }
    struct Resolver<'a> {
        plan: &'a Plan,
        context: &'a ResolveContext,
        scope: Scope<'a>,
        state: BTreeMap<String, State>,
        values: BTreeMap<String, String>,
        stack: Vec<String>,
        budget: &'a Budget,
        errors: Problems,
    }
    impl Resolver<'_> {
        fn value(&mut self, name: &str) -> Option<String> {
            match self.state.get(name) {
                Some(State::Done) => return self.values.get(name).cloned(),
                Some(State::Visiting) => {
                    let start = self.stack.iter().position(|n| n == name).unwrap_or(0);
                    let mut cycle = self.stack[start..].to_vec();
                    cycle.push(name.to_owned());
                    self.errors.push(PlanError::new(
                        JsonPath::root().key("env").key(name),
                        PlanErrorKind::ReferenceCycle { cycle },
                    ));
                    return Some(String::new());
                }
                None => {}
            }
            let template = self.plan.env.get(name)?.clone();
            if self.stack.len() >= MAX_ENV_DEPTH {
                // Resolution recurses once per variable in the chain: stop before the stack
                // does. The variables on the way resolve with this one empty.
                self.errors.push(PlanError::new(
                    JsonPath::root().key("env").key(name),
                    PlanErrorKind::ReferencesTooDeep {
                        name: excerpt(name).to_string(),
                    },
                ));
                self.state.insert(name.to_owned(), State::Done);
                self.values.insert(name.to_owned(), String::new());
                return Some(String::new());
            }
            self.state.insert(name.to_owned(), State::Visiting);
            self.stack.push(name.to_owned());
            let path = JsonPath::root().key("env").key(name);
            let own_name = name.to_owned();
            let scope = Scope {
                plan: self.scope.plan,
                context: self.scope.context,
                env: self.scope.env,
            };
            let budget = self.budget;
            let result = render(&template, &path, budget, &mut |reference, body| {
                scope.lookup(reference, body, &mut |var| {
                    if var == own_name {
                        self.context.base_env.get(var).cloned()
                    } else {
                        self.value(var)
                            .or_else(|| self.context.base_env.get(var).cloned())
                    }
                })
            });
            self.stack.pop();
            self.state.insert(name.to_owned(), State::Done);
            let value = match result {
                Ok(value) => value,
                Err(error) => {
                    if let Some(error) = error {
                        self.errors.push(error);
                    }
                    String::new()
                }
            };
            self.values.insert(name.to_owned(), value.clone());
            Some(value)
        }
    }
    let empty = BTreeMap::new();
    let mut resolver = Resolver {
        plan,
        context,
        scope: Scope {
            plan,
            context,
            env: &empty,
        },
        state: BTreeMap::new(),
        values: BTreeMap::new(),
        stack: Vec::new(),
        budget,
        errors: Problems::new(),
    };
    for name in plan.env.keys() {
        resolver.value(name);
    }
    errors.append(resolver.errors);
    resolver.values
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::plan_from_str;
    use crate::steps::Step;

    fn context() -> ResolveContext {
        ResolveContext {
            outputs: BTreeMap::from([("out".into(), "/nix/store/aaa-x".into())]),
            build_top: "/build".into(),
            build_cores: 4,
            base_env: BTreeMap::from([("PATH".into(), "/in/bin".into())]),
        }
    }

    fn plan(env: &str, argv: &str) -> Plan {
        plan_from_str(&format!(
            r#"{{"version":1,"name":"x","inputs":{{"src":"/s","libs":["/l1","/l2"]}},
                "env":{env},"phases":[{{"name":"b","steps":[{{"run":{{"argv":{argv}}}}}]}}]}}"#
        ))
        .unwrap()
    }

    fn argv(plan: &Plan) -> Vec<String> {
        match &plan.phases[0].steps[0] {
            Step::Run(run) => run.argv.clone(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn parses_templates() {
        assert_eq!(
            parse_template("a${outputs.out}/b$${x}$y").unwrap(),
            vec![
                Piece::Text("a".into()),
                Piece::Ref(Reference::Output("out".into()), "outputs.out".into()),
                Piece::Text("/b${x}$y".into()),
            ]
        );
        assert!(parse_template("${outputs.out").is_err());
        assert!(parse_template("${foo.bar}")
            .unwrap_err()
            .contains("unknown namespace"));
        assert!(parse_template("${build.nope}").is_err());
        assert!(parse_template("${inputs.a.b}").is_err());
        assert!(parse_template("${}").is_err());
    }

    #[test]
    fn resolves_every_namespace() {
        let p = plan(
            r#"{"PREFIX":"${outputs.out}","FLAGS":"-j${build.cores}"}"#,
            r#"["${env.PREFIX}/bin","${inputs.src}","${inputs.libs.1}","${build.top}","${env.FLAGS}","${env.PATH}"]"#,
        );
        let resolved = resolve(&p, &context()).unwrap();
        assert_eq!(
            argv(&resolved),
            [
                "/nix/store/aaa-x/bin",
                "/s",
                "/l2",
                "/build",
                "-j4",
                "/in/bin"
            ]
        );
        assert_eq!(resolved.env["PREFIX"], "/nix/store/aaa-x");
    }

    #[test]
    fn env_can_extend_the_base_value() {
        let p = plan(r#"{"PATH":"${env.PATH}:/extra"}"#, r#"["${env.PATH}"]"#);
        assert_eq!(argv(&resolve(&p, &context()).unwrap()), ["/in/bin:/extra"]);
    }

    #[test]
    fn unknown_names_are_errors_with_paths_and_suggestions() {
        let p = plan(
            "{}",
            r#"["${outputs.dev}","${inputs.scr}","${env.NOPE}","${inputs.libs}"]"#,
        );
        let errors = resolve(&p, &context()).unwrap_err().0;
        let paths: Vec<String> = errors.iter().map(|e| e.path.to_string()).collect();
        assert_eq!(
            paths,
            [
                "phases[0].steps[0].run.argv[0]",
                "phases[0].steps[0].run.argv[1]",
                "phases[0].steps[0].run.argv[2]",
                "phases[0].steps[0].run.argv[3]"
            ]
        );
        assert_eq!(errors[1].hint().unwrap(), "did you mean `src`?");
        assert!(
            errors[3].to_string().contains("inputs.libs.0"),
            "{}",
            errors[3]
        );
    }

    #[test]
    fn cycles_are_reported() {
        let p = plan(r#"{"A":"${env.B}","B":"${env.A}"}"#, r#"["x"]"#);
        let errors = resolve(&p, &context()).unwrap_err().0;
        assert!(
            matches!(&errors[0].kind, PlanErrorKind::ReferenceCycle { cycle } if cycle == &["A", "B", "A"]),
            "{errors:?}"
        );
    }

    #[test]
    fn a_long_chain_of_variables_is_an_error_not_a_stack_overflow() {
        let env: Vec<String> = (0..10_000)
            .map(|i| format!("\"V{i:06}\":\"${{env.V{:06}}}\"", i + 1))
            .collect();
        let p = plan(&format!("{{{}}}", env.join(",")), r#"["${env.V000000}"]"#);
        let errors = resolve(&p, &context()).unwrap_err();
        assert!(
            matches!(&errors.0[0].kind, PlanErrorKind::ReferencesTooDeep { .. }),
            "{errors}"
        );
        assert_eq!(errors.0[0].path.to_string(), "env.V000100");
        // A chain of MAX_ENV_DEPTH variables is fine.
        let mut env: Vec<String> = (0..MAX_ENV_DEPTH - 1)
            .map(|i| format!("\"V{i:06}\":\"${{env.V{:06}}}\"", i + 1))
            .collect();
        env.push(format!("\"V{:06}\":\"end\"", MAX_ENV_DEPTH - 1));
        let p = plan(&format!("{{{}}}", env.join(",")), r#"["${env.V000000}"]"#);
        assert!(resolve(&p, &context()).is_ok());
    }

    #[test]
    fn exponential_expansion_stops_at_the_limit() {
        // Each variable is the next one twice: 2^40 bytes if nothing stopped it.
        let mut env: Vec<String> = (0..40)
            .map(|i| {
                format!(
                    "\"V{i:02}\":\"${{env.V{:02}}}${{env.V{:02}}}\"",
                    i + 1,
                    i + 1
                )
            })
            .collect();
        env.push(r#""V40":"ab""#.to_owned());
        let p = plan(&format!("{{{}}}", env.join(",")), r#"["${env.V00}"]"#);
        let errors = resolve(&p, &context()).unwrap_err();
        let too_large = errors
            .0
            .iter()
            .filter(|e| e.kind == PlanErrorKind::ExpansionTooLarge)
            .count();
        assert_eq!(too_large, 1, "{errors}");
        assert!(errors.to_string().contains("more than 64 MiB"));
    }

    #[test]
    fn huge_references_make_short_messages() {
        let huge = "k".repeat(4 << 20);
        for argv in [
            format!(r#"["${{inputs.{huge}}}"]"#),
            format!(r#"["${{{huge}.x}}"]"#),
            format!(r#"["${{env.{huge}}}"]"#),
        ] {
            let p = plan("{}", &argv);
            let errors = match check_syntax(&p).into_iter().next() {
                Some(error) => PlanErrors(vec![error]),
                None => resolve(&p, &context()).unwrap_err(),
            };
            let shown = errors.to_string();
            let hint = errors.0[0].hint().unwrap_or_default();
            assert!(shown.len() + hint.len() < 2048, "{}", shown.len());
        }
    }
}
