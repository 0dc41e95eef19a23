//! Errors about a plan: what is wrong, where (a [`JsonPath`]) and what to do about it.
//!
//! [`PlanError`] is one problem; [`PlanErrors`] collects every problem validation or reference
//! resolution found, so a user fixes them all in one round.
//!
//! The plan may be hostile, so every message is bounded: values are quoted through
//! [`crate::excerpt`], lists of known names are cut to [`MAX_KNOWN`] when the error is made and
//! to [`excerpt::MAX_LISTED`] when it is shown, [`suggest`] compares names only when they are
//! short and of similar length, and [`Problems`] keeps the first [`MAX_ERRORS`] problems of a
//! plan and counts the rest.

use std::fmt;

use thiserror::Error;

use crate::excerpt::{self, excerpt, list, shorten};
use crate::path::JsonPath;

/// The most problems kept for one plan; the rest are counted in a last
/// [`PlanErrorKind::MoreProblems`].
pub const MAX_ERRORS: usize = 50;

/// The most known names an error keeps for its hint (see [`known_names`]).
pub const MAX_KNOWN: usize = 256;

/// The longest name, in bytes, that [`suggest`] looks for a close match of. A typo is a small
/// change to a name someone typed; a longer name gets the list of known names instead.
pub const MAX_SUGGESTED: usize = 64;

/// The longest name, in bytes, a plan may give a phase, an output, an input or a variable: a
/// file name's limit (`NAME_MAX`), as phase names name cached states and output names name
/// store paths.
pub const MAX_NAME: usize = 255;

/// How much text references may produce in all when a plan is resolved, in bytes. Expansion is
/// otherwise exponential: `A = "${env.B}${env.B}"`, `B = "${env.C}${env.C}"`, … (a "billion
/// laughs" plan).
pub const MAX_EXPANSION: usize = 64 << 20;

/// How many environment variables a `${env.NAME}` may go through (`A` refers to `B`, which
/// refers to `C`, …): resolution follows them recursively.
pub const MAX_ENV_DEPTH: usize = 100;

/// What is wrong with a plan value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PlanErrorKind {
    /// The document is not well-formed JSON.
    #[error("not valid JSON: {}", shorten(message))]
    Syntax {
        /// serde_json's description.
        message: String,
    },
    /// The text is not UTF-8, so it is not JSON. `location` has its line and column.
    #[error("not valid UTF-8 at byte offset {offset}")]
    NotUtf8 {
        /// Where the first invalid byte is, counted from 0.
        offset: usize,
    },
    /// A value has the wrong type or shape.
    #[error("{}", shorten(message))]
    Shape {
        /// serde's description, e.g. "invalid type: string \"x\", expected a sequence".
        message: String,
    },
    /// An object has a key the plan format does not define.
    #[error("unknown field `{}`", excerpt(field))]
    UnknownField {
        /// The key as written.
        field: String,
        /// The keys allowed there.
        expected: Vec<String>,
    },
    /// A step object names a kind that does not exist.
    #[error("unknown step kind `{}`", excerpt(kind))]
    UnknownStepKind {
        /// The kind as written.
        kind: String,
        /// The kinds that exist.
        expected: Vec<String>,
    },
    /// An enumerated string has a value outside its set.
    #[error("unknown value `{}`", excerpt(value))]
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
        "invalid {what} `{}`: use letters, digits, `_`, `-` and `+` (and `.` in phase names)",
        excerpt(name)
    )]
    InvalidName {
        /// "phase name", "output name", "input name".
        what: &'static str,
        /// The name as written.
        name: String,
    },
    /// A name longer than [`MAX_NAME`] bytes.
    #[error(
        "{what} `{}` is {length} bytes long; names are at most {MAX_NAME} bytes",
        excerpt(name)
    )]
    NameTooLong {
        /// "phase name", "input name", "environment variable name", ...
        what: &'static str,
        /// The start of the name (the whole name is not kept).
        name: String,
        /// Its length in bytes.
        length: usize,
    },
    /// Two phases share a name.
    #[error("duplicate phase name `{}` (also at phases[{first}])", excerpt(name))]
    DuplicatePhase {
        /// The repeated name.
        name: String,
        /// Index of the first phase with that name.
        first: usize,
    },
    /// An output name appears twice.
    #[error("duplicate output name `{}`", excerpt(name))]
    DuplicateOutput {
        /// The repeated name.
        name: String,
    },
    /// The plan's outputs differ from the derivation's.
    #[error(
        "the plan's outputs [{}] differ from the derivation's outputs [{}]",
        list(plan),
        list(derivation)
    )]
    OutputsMismatch {
        /// Outputs listed in the plan.
        plan: Vec<String>,
        /// Outputs Nix gave the builder.
        derivation: Vec<String>,
    },
    /// An input path is not absolute.
    #[error("input path `{}` is not absolute", excerpt(path))]
    RelativeInputPath {
        /// The path as written.
        path: String,
    },
    /// An environment variable name is not usable.
    #[error("invalid environment variable name `{}`", excerpt(name))]
    InvalidEnvName {
        /// The name as written.
        name: String,
    },
    /// An edit names a phase that does not exist.
    #[error(
        "no phase `{}`; phases are: {}",
        excerpt(name),
        excerpt::list_joined(existing, ", ", false)
    )]
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
    #[error("`{}` is not an input of the plan", excerpt(name))]
    UnknownInput {
        /// The name.
        name: String,
        /// The inputs that exist.
        known: Vec<String>,
    },
    /// A name that should be one of the plan's outputs but is not.
    #[error("`{}` is not an output of the plan", excerpt(name))]
    UnknownOutput {
        /// The name.
        name: String,
        /// The plan's outputs.
        known: Vec<String>,
    },
    /// The fixup's `dev` role names one output and `propagate` records into another.
    #[error(
        "the `dev` role is `{}`, but the propagated inputs are recorded in `{}`: \
         set `propagate.output` to `{}`",
        excerpt(dev),
        excerpt(output),
        excerpt(dev)
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
    /// An unpack step with `mergeUsr` but no `into`.
    #[error("`mergeUsr` needs `into`: a merged /usr lays out a root file system, which has no source root")]
    MergeUsrWithoutInto,
    /// A substitute step with nothing to replace.
    #[error("substitute step has nothing to do: give `replace` or `vars`")]
    EmptySubstitute,

    /// A `${...}` reference that cannot be parsed.
    #[error("malformed reference in `{}`: {}", excerpt(text), shorten(problem))]
    MalformedReference {
        /// The whole string.
        text: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A reference to something that does not exist.
    #[error(
        "unknown reference `${{{}}}`: {}",
        excerpt(reference),
        shorten(problem)
    )]
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
    #[error("{}", shorten(message))]
    Attribute {
        /// What is wrong.
        message: String,
        /// What to do about it.
        hint: Option<String>,
    },
    /// Environment variables that refer to each other in a loop.
    #[error(
        "environment variables refer to each other in a cycle: {}",
        excerpt::list_joined(cycle, " -> ", false)
    )]
    ReferenceCycle {
        /// The variables in the cycle, the first repeated at the end.
        cycle: Vec<String>,
    },
    /// `${env.NAME}` goes through more than [`MAX_ENV_DEPTH`] variables.
    #[error(
        "`${{env.{}}}` is reached through a chain of more than {MAX_ENV_DEPTH} variables",
        excerpt(name)
    )]
    ReferencesTooDeep {
        /// The variable where the chain got too deep.
        name: String,
    },
    /// The references of the plan expand to more than [`MAX_EXPANSION`] bytes.
    #[error("references expand to more than {} MiB in all", MAX_EXPANSION >> 20)]
    ExpansionTooLarge,
    /// A `graft` step's replacement that kiln refuses.
    #[error("{problem}")]
    Graft {
        /// What is wrong with it.
        problem: crate::steps::GraftProblem,
    },
    /// The plan has more problems than kiln lists ([`MAX_ERRORS`]); always the last one.
    #[error("and {more} more problems (kiln lists the first {MAX_ERRORS})")]
    MoreProblems {
        /// How many were not listed.
        more: usize,
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
            PlanErrorKind::NotUtf8 { .. } => Some(
                "JSON text is UTF-8: convert the file (e.g. `iconv -f LATIN1 -t UTF-8`), or write \
                 the character as a `\\uXXXX` escape"
                    .to_owned(),
            ),
            PlanErrorKind::NameTooLong { .. } => Some("choose a shorter name".to_owned()),
            PlanErrorKind::MergeUsrWithoutInto => Some(
                "unpack the packages into a directory, e.g. \"into\": \"${outputs.out}\""
                    .to_owned(),
            ),
            PlanErrorKind::ReferencesTooDeep { .. } => Some(
                "refer to the variable that holds the value rather than through a chain".to_owned(),
            ),
            PlanErrorKind::ExpansionTooLarge => Some(
                "a reference is copied wherever it is used: refer to large values less often, or \
                 put them in a file"
                    .to_owned(),
            ),
            PlanErrorKind::MoreProblems { .. } => {
                Some("fix the problems listed, then validate the plan again".to_owned())
            }
            PlanErrorKind::Graft { problem } => problem.hint(),
            _ => None,
        }
    }
}

/// The known names an error keeps: at most [`MAX_KNOWN`] of them, each longer than
/// [`excerpt::MAX_QUOTED`] bytes kept as its excerpt. A hostile plan can have a million names and
/// a million errors; each error must not copy them all.
pub fn known_names<'a>(names: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    names
        .into_iter()
        .take(MAX_KNOWN)
        .map(|name| {
            if name.len() <= excerpt::MAX_QUOTED {
                name.clone()
            } else {
                excerpt(name).to_string()
            }
        })
        .collect()
}

/// The known name closest to `unknown`, if one is close (see [`suggest`]).
fn closest<'a>(unknown: &str, known: &'a [String]) -> Option<&'a String> {
    if unknown.len() > MAX_SUGGESTED {
        return None;
    }
    let length = unknown.chars().count();
    let comparable = |candidate: &&String| {
        // Twice `unknown`'s characters at 4 bytes each: a longer candidate is not comparable.
        candidate.len() <= 8 * MAX_SUGGESTED && {
            let other = candidate.chars().count();
            // (`max(1)`: one edit is close whatever the lengths, so "" and "a" compare.)
            other <= 2 * length.max(1) && length <= 2 * other.max(1)
        }
    };
    let close = |candidate: &'a String| {
        let edits = strsim::osa_distance(unknown, candidate);
        let close = edits <= (length.max(candidate.chars().count()) / 3).max(1)
            || strsim::jaro_winkler(unknown, candidate) >= 0.9;
        close.then_some((edits, candidate))
    };
    known
        .iter()
        .take(MAX_KNOWN)
        .filter(comparable)
        .filter_map(close)
        .min_by_key(|(edits, _)| *edits)
        .map(|(_, candidate)| candidate)
}

/// "did you mean `x`?" when a known name is close, else the list of known names (bounded, see
/// [`list`]). Close means one edit or transposition per three characters, or a Jaro-Winkler
/// similarity of at least 0.9.
///
/// The work is bounded whatever the input. `unknown` is compared only when it is at most
/// [`MAX_SUGGESTED`] bytes long, with at most [`MAX_KNOWN`] candidates, and only with candidates
/// at most twice as long or half as long (in characters). That last filter is exact, not a
/// heuristic: with lengths `n < m`, the edit distance is at least `m - n`, more than `m / 3` once
/// `m > 1.5 n`; and Jaro is at most `(n/m + 2) / 3`, which Winkler's prefix bonus (at most
/// `0.4 (1 - jaro)`) lifts to 0.9 only when `m <= 2 n`.
pub fn suggest(unknown: &str, known: &[String], what: &str) -> String {
    match closest(unknown, known) {
        Some(candidate) => format!("did you mean `{}`?", excerpt(candidate)),
        None if known.is_empty() => format!("there are no {what}"),
        None => format!("{what}: {}", list(known)),
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let PlanErrorKind::MoreProblems { .. } = self.kind {
            // Not a place in the document: the count of what was not listed.
            return write!(f, "{}", self.kind);
        }
        write!(f, "at `{}`", self.path)?;
        if let Some(context) = &self.context {
            write!(f, " ({})", shorten(context))?;
        }
        if let Some((line, column)) = self.location {
            write!(f, " (line {line}, column {column})")?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for PlanError {}

/// Every problem found in one plan, in document order; at most [`MAX_ERRORS`] of them and a last
/// [`PlanErrorKind::MoreProblems`] when there were more (see [`Problems`]).
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

    /// How many problems there are, listed or not.
    pub fn total(&self) -> usize {
        self.0
            .iter()
            .map(|error| match error.kind {
                PlanErrorKind::MoreProblems { more } => more,
                _ => 1,
            })
            .sum()
    }

    /// The problems to show: at most [`MAX_ERRORS`], without the count of the others (the
    /// difference between [`PlanErrors::total`] and how many this yields).
    pub fn shown(&self) -> impl Iterator<Item = &PlanError> {
        self.0
            .iter()
            .filter(|error| !matches!(error.kind, PlanErrorKind::MoreProblems { .. }))
            .take(MAX_ERRORS)
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
            _ => {
                let total = self.total();
                write!(f, "{total} problems")?;
                let mut shown = 0;
                for error in self.shown() {
                    write!(f, "\n  {error}")?;
                    shown += 1;
                }
                if total > shown {
                    let more = PlanErrorKind::MoreProblems {
                        more: total - shown,
                    };
                    write!(f, "\n  {more}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for PlanErrors {}

/// Collects the problems of one plan: keeps the first [`MAX_ERRORS`] and counts the rest, so
/// that a plan with a million problems costs a million counts, not a million paths and lists of
/// known names.
#[derive(Debug, Default)]
pub struct Problems {
    kept: Vec<PlanError>,
    more: usize,
}

impl Problems {
    /// No problems yet.
    pub fn new() -> Problems {
        Problems::default()
    }

    /// Whether further problems are only counted.
    pub fn is_full(&self) -> bool {
        self.kept.len() >= MAX_ERRORS
    }

    /// Adds a problem (or counts it, when full).
    pub fn push(&mut self, error: PlanError) {
        self.push_with(|| error);
    }

    /// Adds the problem `make` builds, or only counts it when full: for problems that cost
    /// something to build, such as lists of known names.
    pub fn push_with(&mut self, make: impl FnOnce() -> PlanError) {
        if self.is_full() {
            self.more += 1;
        } else {
            self.kept.push(make());
        }
    }

    /// How many problems are kept.
    pub fn len(&self) -> usize {
        self.kept.len()
    }

    /// Whether there is no problem at all.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty() && self.more == 0
    }

    /// The kept problems from index `start` on (to attach context to what one check found).
    pub fn since(&mut self, start: usize) -> &mut [PlanError] {
        let start = start.min(self.kept.len());
        &mut self.kept[start..]
    }

    /// Every problem of `other` after these.
    pub fn append(&mut self, other: Problems) {
        for error in other.kept {
            self.push(error);
        }
        self.more += other.more;
    }

    /// Ok when there is no problem; else the kept problems ordered by `key` (a stable sort), and
    /// a last [`PlanErrorKind::MoreProblems`] when some were only counted.
    pub fn finish_by<K: Ord>(mut self, key: impl FnMut(&PlanError) -> K) -> Result<(), PlanErrors> {
        self.kept.sort_by_key(key);
        self.finish()
    }

    /// Ok when there is no problem; else the kept problems in the order they came, and a last
    /// [`PlanErrorKind::MoreProblems`] when some were only counted.
    pub fn finish(mut self) -> Result<(), PlanErrors> {
        if self.more > 0 {
            self.kept.push(PlanError::new(
                JsonPath::root(),
                PlanErrorKind::MoreProblems { more: self.more },
            ));
        }
        PlanErrors::check(self.kept)
    }
}

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

    #[test]
    fn suggestions_are_bounded_by_length_and_exact_about_it() {
        let known = names(&["phases", "version"]);
        // A long name is not compared: the list instead.
        let long = "p".repeat(MAX_SUGGESTED + 1);
        assert_eq!(
            suggest(&long, &known, "fields"),
            "fields: `phases`, `version`"
        );
        // Lengths more than double apart are never close, so skipping them changes nothing.
        for (unknown, candidate) in [("ab", "abcde"), ("abcdefgh", "abc"), ("phase", "p")] {
            let candidates = names(&[candidate]);
            let edits = strsim::osa_distance(unknown, candidate);
            let max = unknown.len().max(candidate.len());
            assert!(edits > (max / 3).max(1), "{unknown} {candidate}");
            assert!(strsim::jaro_winkler(unknown, candidate) < 0.9);
            assert!(closest(unknown, &candidates).is_none());
        }
        assert_eq!(
            suggest("phasse", &known, "fields"),
            "did you mean `phases`?"
        );
    }

    #[test]
    fn huge_values_make_short_messages() {
        let huge = "k".repeat(4 << 20);
        let known = names(&["run", "write"]);
        for kind in [
            PlanErrorKind::UnknownField {
                field: huge.clone(),
                expected: known.clone(),
            },
            PlanErrorKind::UnknownStepKind {
                kind: huge.clone(),
                expected: known.clone(),
            },
            PlanErrorKind::UnknownReference {
                reference: format!("inputs.{huge}"),
                problem: format!("the plan has no input `{huge}`"),
                known: known.clone(),
            },
            PlanErrorKind::UnknownPhase {
                name: huge.clone(),
                existing: [vec![huge.clone()], vec!["p".repeat(300); 10_000]].concat(),
            },
            PlanErrorKind::Shape {
                message: format!("invalid type: string \"{huge}\", expected u32"),
            },
        ] {
            let error = PlanError::new(JsonPath::root().key(huge.as_str()), kind)
                .with_context(huge.clone());
            let shown = error.to_string();
            let hint = error.hint().unwrap_or_default();
            // Every field at its limit at once: still a few kilobytes.
            assert!(
                shown.len() + hint.len() < 8192,
                "{} {}",
                shown.len(),
                hint.len()
            );
            assert!(shown.contains('…'), "{shown}");
        }
    }

    #[test]
    fn problems_keep_the_first_and_count_the_rest() {
        let mut problems = Problems::new();
        let mut built = 0;
        for index in 0..MAX_ERRORS + 7 {
            problems.push_with(|| {
                built += 1;
                PlanError::new(JsonPath::root().index(index), PlanErrorKind::NoPhases)
            });
        }
        assert_eq!(
            built, MAX_ERRORS,
            "the problems past the limit are not built"
        );
        let errors = problems.finish().unwrap_err();
        assert_eq!(errors.0.len(), MAX_ERRORS + 1);
        assert_eq!(errors.total(), MAX_ERRORS + 7);
        assert_eq!(errors.shown().count(), MAX_ERRORS);
        let shown = errors.to_string();
        assert!(shown.starts_with(&format!("{} problems", MAX_ERRORS + 7)));
        assert!(shown.ends_with(&format!(
            "and 7 more problems (kiln lists the first {MAX_ERRORS})"
        )));
        assert!(Problems::new().finish().is_ok());
    }

    #[test]
    fn known_names_are_bounded() {
        let many: Vec<String> = (0..10_000).map(|i| format!("n{i}")).collect();
        assert_eq!(known_names(&many).len(), MAX_KNOWN);
        let huge = vec!["x".repeat(1 << 20)];
        assert!(known_names(&huge)[0].len() <= excerpt::MAX_QUOTED + 3);
    }
}
