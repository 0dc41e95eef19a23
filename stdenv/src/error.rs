//! Why a stdenv-style attribute set cannot be translated: each problem names the attribute (its
//! JSON path in `.attrs.json`) and what to write instead.
//!
//! [`TranslateErrors`] collects every problem of one derivation, so a user fixes them in one
//! round; [`TranslateErrors::into_plan_errors`] turns them into the [`PlanErrors`] that kiln's
//! loader reports (exit code 2, nothing runs).

use std::fmt;

use kiln_schema::{JsonPath, PlanError, PlanErrorKind, PlanErrors};
use thiserror::Error;

/// What is wrong with an attribute.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TranslateErrorKind {
    /// The attribute set is not a JSON object.
    #[error("`.attrs.json` is not an object of attributes")]
    NotAnObject,
    /// A value of the wrong type.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What stdenv expects there.
        expected: &'static str,
        /// What the value is.
        found: String,
    },
    /// An attribute kiln refuses (see the attribute table).
    #[error("`{attribute}` is not supported by kiln: {why}")]
    Unsupported {
        /// The attribute.
        attribute: String,
        /// Why, and what to write instead.
        why: &'static str,
    },
    /// Shell code without the opt-in: one error for all of them.
    #[error("{}", shell_message(hooks))]
    ShellCode {
        /// Each shell-code attribute and the typed step that replaces it.
        hooks: Vec<(String, &'static str)>,
    },
    /// `kilnAllowShell` is set but no shell was found.
    #[error("`kilnAllowShell` is set but no input has `bin/bash` or `bin/sh`")]
    NoShell,
    /// A phase name that is neither stdenv's nor an attribute.
    #[error("phase `{name}` is not a stdenv phase and not an attribute of the derivation")]
    UnknownPhase {
        /// The name as written.
        name: String,
        /// stdenv's phase names.
        known: Vec<String>,
    },
    /// The unpack phase runs but there is nothing to unpack.
    #[error(
        "no `src` or `srcs` to unpack (there is no `kiln` attribute, so the attributes are read as stdenv's)"
    )]
    NoSource,
    /// A patch flag other than `-pN`.
    #[error("patch flag `{flag}` is not understood: kiln's patch step takes `-pN` only")]
    PatchFlag {
        /// The flag.
        flag: String,
    },
    /// An output role (`outputDev`, …) that names no output, or no output for a role's default.
    #[error("{message}")]
    OutputRole {
        /// What is wrong, naming the role and the outputs.
        message: String,
    },
    /// A path that is not absolute.
    #[error("`{path}` is not an absolute path")]
    RelativePath {
        /// The path.
        path: String,
    },
    /// The translated plan fails kiln's validation; reported at the attribute that made the
    /// failing step.
    #[error("the plan translated from this attribute is invalid: {message} (generated plan: `{generated}`)")]
    InvalidPlan {
        /// The validation message.
        message: String,
        /// Where in the generated plan.
        generated: String,
    },
}

fn shell_message(hooks: &[(String, &'static str)]) -> String {
    let mut message = format!(
        "{} {} shell code, which kiln does not run by default:",
        hooks.len(),
        if hooks.len() == 1 {
            "attribute is"
        } else {
            "attributes are"
        }
    );
    for (attribute, replacement) in hooks {
        message.push_str(&format!("\n      `{attribute}`: use {replacement}"));
    }
    message
}

impl TranslateErrorKind {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            TranslateErrorKind::ShellCode { .. } => Some(
                "replace each with the typed steps shown, in a phase added with `kilnEdits` (a \
                 plan's `edits`: `kilnEdits = [ { after = { phase = \"install\"; insert = { name = \
                 \"extra\"; steps = [ ... ]; }; }; } ];`), or set `kilnAllowShell = true;` to run \
                 them through a shell from the inputs"
                    .to_owned(),
            ),
            TranslateErrorKind::NoShell => Some(
                "add a package with `bin/bash` to `nativeBuildInputs`, or set `kilnShell` to an \
                 absolute path"
                    .to_owned(),
            ),
            TranslateErrorKind::UnknownPhase { name, known } => Some(format!(
                "stdenv phases are {}; a custom phase is an attribute holding shell code \
                 (setup hooks, which define phases like `autoreconfPhase` in nixpkgs, are not run by \
                 kiln){}",
                known.join(", "),
                if name.ends_with("Phase") {
                    String::new()
                } else {
                    format!(" (did you mean `{name}Phase`?)")
                }
            )),
            TranslateErrorKind::OutputRole { .. } => Some(
                "set the role to one of the outputs, or add the output to `outputs`".to_owned(),
            ),
            TranslateErrorKind::NoSource => Some(
                "set `src` (or `srcs`), or `dontUnpack = true;` when there is nothing to unpack; \
                 or give the derivation a kiln plan in its `kiln` attribute"
                    .to_owned(),
            ),
            TranslateErrorKind::PatchFlag { .. } => Some(
                "apply such patches in a phase of `run` steps, or rewrite them for `-pN`".to_owned(),
            ),
            TranslateErrorKind::NotAnObject => Some(
                "build the derivation with `__structuredAttrs = true;` so Nix writes the \
                 attributes as a JSON object"
                    .to_owned(),
            ),
            TranslateErrorKind::WrongType { expected, .. } => Some(format!(
                "give the attribute {expected} in the Nix expression (docs/stdenv-attributes.md \
                 lists each attribute's kind)"
            )),
            TranslateErrorKind::Unsupported { .. } => Some(
                "remove the attribute (or set it to `false`, `null`, `\"\"` or `[]`) and write \
                 what the message names instead; or give the derivation a kiln plan in its `kiln` \
                 attribute"
                    .to_owned(),
            ),
            TranslateErrorKind::RelativePath { .. } => Some(
                "use a path literal (`./fix.patch`, which Nix copies into the store) or a store \
                 path (`\"${drv}\"`); a relative string means nothing inside the build sandbox"
                    .to_owned(),
            ),
            TranslateErrorKind::InvalidPlan { .. } => Some(
                "fix the attribute's value; `kiln plan` on the derivation shows the generated \
                 step and the attributes it came from"
                    .to_owned(),
            ),
        }
    }
}

/// One problem, at an attribute.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("at `{path}`: {kind}")]
pub struct TranslateError {
    /// The attribute (and index) in `.attrs.json`.
    pub path: JsonPath,
    /// What is wrong.
    pub kind: TranslateErrorKind,
}

impl TranslateError {
    /// A problem at `path`.
    pub fn new(path: JsonPath, kind: TranslateErrorKind) -> TranslateError {
        TranslateError { path, kind }
    }
}

/// Every problem of one attribute set, in attribute order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateErrors(pub Vec<TranslateError>);

impl TranslateErrors {
    /// The same problems as plan errors, for kiln's loader and CLI (which print the path, the
    /// message and the hint, and exit with code 2).
    pub fn into_plan_errors(self) -> PlanErrors {
        PlanErrors(
            self.0
                .into_iter()
                .map(|error| {
                    let hint = error.kind.hint();
                    PlanError::new(
                        error.path,
                        PlanErrorKind::Attribute {
                            message: error.kind.to_string(),
                            hint,
                        },
                    )
                    .with_context("stdenv attributes")
                })
                .collect(),
        )
    }
}

impl fmt::Display for TranslateErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for TranslateErrors {}
