//! Errors about a plan: what is wrong, where (a [`JsonPath`]) and what to do about it.
//!
//! [`PlanError`] is one problem; [`PlanErrors`] collects every problem validation or reference
//! resolution found, so a user fixes them all in one round.

use std::fmt;

use thiserror::Error;

use crate::path::JsonPath;

/// What is wrong with a plan value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PlanErrorKind {
    /// The document is not well-formed JSON.
    #[error("not valid JSON: {message}")]
    Syntax {
        /// serde_json's description.
        message: String,
    },
    /// A value has the wrong type or shape.
    #[error("{message}")]
    Shape {
        /// serde's description, e.g. "invalid type: string \"x\", expected a sequence".
        message: String,
    },
    /// An object has a key the plan format does not define.
    #[error("unknown field `{field}`")]
    UnknownField {
        /// The key as written.
        field: String,
        /// The keys allowed there.
        expected: Vec<String>,
    },
    /// A step object names a kind that does not exist.
    #[error("unknown step kind `{kind}`")]
    UnknownStepKind {
        /// The kind as written.
        kind: String,
        /// The kinds that exist.
        expected: Vec<String>,
    },
    /// An enumerated string has a value outside its set.
    #[error("unknown value `{value}`")]
    UnknownValue {
        /// The value as written.
        value: String,
        /// The allowed values.
        expected: Vec<String>,
    },
    /// The plan's `version` is not one this kiln reads.
    #[error("unsupported plan version {found}")]
    UnsupportedVersion {
        /// The version in the plan.
        found: u32,
    },
    /// The plan has no phases.
    #[error("the plan has no phases")]
    NoPhases,
    /// A name is empty.
    #[error("{what} is empty")]
    Empty {
        /// What is empty ("the phase name", "argv", ...).
        what: &'static str,
    },
    /// A phase, input or output name has characters kiln does not allow there.
    #[error(
        "invalid {what} `{name}`: use letters, digits, `_`, `-` and `+` (and `.` in phase names)"
    )]
    InvalidName {
        /// "phase name", "output name", "input name".
        what: &'static str,
        /// The name as written.
        name: String,
    },
    /// Two phases share a name.
    #[error("duplicate phase name `{name}` (also at phases[{first}])")]
    DuplicatePhase {
        /// The repeated name.
        name: String,
        /// Index of the first phase with that name.
        first: usize,
    },
    /// An output name appears twice.
    #[error("duplicate output name `{name}`")]
    DuplicateOutput {
        /// The repeated name.
        name: String,
    },
    /// The plan's outputs differ from the derivation's.
    #[error("the plan's outputs {plan:?} differ from the derivation's outputs {derivation:?}")]
    OutputsMismatch {
        /// Outputs listed in the plan.
        plan: Vec<String>,
        /// Outputs Nix gave the builder.
        derivation: Vec<String>,
    },
    /// An input path is not absolute.
    #[error("input path `{path}` is not absolute")]
    RelativeInputPath {
        /// The path as written.
        path: String,
    },
    /// An environment variable name is not usable.
    #[error("invalid environment variable name `{name}`")]
    InvalidEnvName {
        /// The name as written.
        name: String,
    },
    /// An edit names a phase that does not exist.
    #[error("no phase `{name}`; phases are: {}", existing.join(", "))]
    UnknownPhase {
        /// The name in the edit.
        name: String,
        /// The phases at that point.
        existing: Vec<String>,
    },
    /// A preset and explicit phases together.
    #[error("a plan with a `preset` takes no `phases`: change the preset's phases with `edits`")]
    PresetWithPhases,
    /// A dependency that names no input.
    #[error("`{name}` is not an input of the plan")]
    UnknownInput {
        /// The name.
        name: String,
        /// The inputs that exist.
        known: Vec<String>,
    },
    /// A name that should be one of the plan's outputs but is not.
    #[error("`{name}` is not an output of the plan")]
    UnknownOutput {
        /// The name.
        name: String,
        /// The plan's outputs.
        known: Vec<String>,
    },
    /// The fixup's `dev` role names one output and `propagate` records into another.
    #[error(
        "the `dev` role is `{dev}`, but the propagated inputs are recorded in `{output}`: \
         set `propagate.output` to `{dev}`"
    )]
    PropagateElsewhere {
        /// The fixup's `dev` role.
        dev: String,
        /// Where `propagate` records (its `output`, else `dev`, else `out`).
        output: String,
    },
    /// A timeout of zero seconds.
    #[error("timeout must be at least 1 second")]
    ZeroTimeout,
    /// A substitute step with nothing to replace.
    #[error("substitute step has nothing to do: give `replace` or `vars`")]
    EmptySubstitute,

    /// A `${...}` reference that cannot be parsed.
    #[error("malformed reference in `{text}`: {problem}")]
    MalformedReference {
        /// The whole string.
        text: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A reference to something that does not exist.
    #[error("unknown reference `${{{reference}}}`: {problem}")]
    UnknownReference {
        /// The reference without `${` `}`.
        reference: String,
        /// Why it does not resolve.
        problem: String,
        /// Names that do exist there.
        known: Vec<String>,
    },
    /// A derivation attribute kiln cannot use as written (stdenv-style derivations without a
    /// `kiln` plan; see the `kiln-stdenv` crate). The message names the attribute's problem; the
    /// hint says what to write instead.
    #[error("{message}")]
    Attribute {
        /// What is wrong.
        message: String,
        /// What to do about it.
        hint: Option<String>,
    },
    /// Environment variables that refer to each other in a loop.
    #[error("environment variables refer to each other in a cycle: {}", cycle.join(" -> "))]
    ReferenceCycle {
        /// The variables in the cycle, the first repeated at the end.
        cycle: Vec<String>,
    },
}

/// One problem in a plan, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    /// Where in the document.
    pub path: JsonPath,
    /// What is wrong.
    pub kind: PlanErrorKind,
    /// Human context such as "phase `build`, step 2".
    pub context: Option<String>,
    /// Line and column in the source text, when known.
    pub location: Option<(usize, usize)>,
}

impl PlanError {
    /// A problem at `path`.
    pub fn new(path: JsonPath, kind: PlanErrorKind) -> PlanError {
        PlanError {
            path,
            kind,
            context: None,
            location: None,
        }
    }

    /// The same problem with human context attached.
    pub fn with_context(mut self, context: impl Into<String>) -> PlanError {
        self.context = Some(context.into());
        self
    }

    /// What the user can do about it, if kiln can tell.
    pub fn hint(&self) -> Option<String> {
        match &self.kind {
            PlanErrorKind::UnknownField { field, expected } => {
                Some(suggest(field, expected, "fields allowed here"))
            }
            PlanErrorKind::UnknownStepKind { kind, expected } => {
                Some(suggest(kind, expected, "step kinds"))
            }
            PlanErrorKind::UnknownValue { value, expected } => {
                Some(suggest(value, expected, "allowed values"))
            }
            PlanErrorKind::UnknownReference {
                reference, known, ..
            } => {
                let last = reference.rsplit('.').next().unwrap_or(reference);
                (!known.is_empty()).then(|| suggest(last, known, "known names"))
            }
            PlanErrorKind::UnknownPhase { name, existing } => {
                Some(suggest(name, existing, "phases"))
            }
            PlanErrorKind::UnknownInput { name, known } => Some(suggest(name, known, "inputs")),
            PlanErrorKind::UnknownOutput { name, known } => Some(suggest(name, known, "outputs")),
            PlanErrorKind::UnsupportedVersion { .. } => Some(format!(
                "this kiln reads plan version {}",
                crate::PLAN_VERSION
            )),
            PlanErrorKind::MalformedReference { .. } => Some(
                "references look like `${outputs.out}`, `${inputs.NAME}`, `${env.NAME}`, \
                 `${build.top}` or `${build.cores}`; write `$${` for a literal `${`"
                    .to_owned(),
            ),
            PlanErrorKind::Empty { what: "argv" } => {
                Some("give the program and its arguments, e.g. [\"make\", \"install\"]".to_owned())
            }
            PlanErrorKind::DuplicatePhase { .. } => Some(
                "phase names are shown by Nix and used by --only/--from: rename one".to_owned(),
            ),
            PlanErrorKind::Attribute { hint, .. } => hint.clone(),
            PlanErrorKind::RelativeInputPath { .. } => {
                Some("inputs are store paths; in Nix, interpolate a derivation or path".to_owned())
            }
            _ => None,
        }
    }
}

/// "did you mean `x`?" when a known name is close, else the list of known names.
pub fn suggest(unknown: &str, known: &[String], what: &str) -> String {
    // Close means one edit or transposition per three characters, or a strong common prefix.
    let close = |candidate: &str| {
        let edits = strsim::osa_distance(unknown, candidate);
        edits <= (unknown.len().max(candidate.len()) / 3).max(1)
            || strsim::jaro_winkler(unknown, candidate) >= 0.9
    };
    let best = known
        .iter()
        .filter(|candidate| close(candidate))
        .min_by_key(|candidate| strsim::osa_distance(unknown, candidate));
    match best {
        Some(candidate) => format!("did you mean `{candidate}`?"),
        None if known.is_empty() => format!("there are no {what}"),
        None => {
            let list: Vec<String> = known.iter().map(|name| format!("`{name}`")).collect();
            format!("{what}: {}", list.join(", "))
        }
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at `{}`", self.path)?;
        if let Some(context) = &self.context {
            write!(f, " ({context})")?;
        }
        if let Some((line, column)) = self.location {
            write!(f, " (line {line}, column {column})")?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for PlanError {}

/// Every problem found in one plan, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanErrors(pub Vec<PlanError>);

impl PlanErrors {
    /// Ok when `errors` is empty.
    pub fn check(errors: Vec<PlanError>) -> Result<(), PlanErrors> {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(PlanErrors(errors))
        }
    }
}

impl From<PlanError> for PlanErrors {
    fn from(error: PlanError) -> PlanErrors {
        PlanErrors(vec![error])
    }
}

impl fmt::Display for PlanErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            many => {
                write!(f, "{} problems", many.len())?;
                for error in many {
                    write!(f, "\n  {error}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for PlanErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn suggests_close_names_and_lists_far_ones() {
        let known = names(&["argv", "env", "cwd"]);
        assert_eq!(suggest("argc", &known, "fields"), "did you mean `argv`?");
        assert_eq!(
            suggest("zzzz", &known, "fields"),
            "fields: `argv`, `env`, `cwd`"
        );
    }

    #[test]
    fn display_names_path_context_and_kind() {
        let error = PlanError::new(
            JsonPath::root()
                .key("phases")
                .index(1)
                .key("steps")
                .index(0),
            PlanErrorKind::Empty { what: "argv" },
        )
        .with_context("phase `build`, step 1");
        assert_eq!(
            error.to_string(),
            "at `phases[1].steps[0]` (phase `build`, step 1): argv is empty"
        );
    }
}
