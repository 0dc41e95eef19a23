//! `substitute`: literal replacements and `@NAME@` placeholders in a file.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{empty, for_each_key, NameCheck, StepFields};
use crate::error::{PlanError, PlanErrorKind, Problems};
use crate::path::JsonPath;
use crate::reference::visit_option;

/// Replace strings in a file: stdenv's `substitute` / `substituteInPlace`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SubstituteStep {
    /// The file to read.
    pub file: String,
    /// Where to write the result. Defaults to `file` itself (in place); the mode of `file` is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out: Option<String>,
    /// Literal replacements, applied in order (`--replace-fail` / `--replace-warn`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace: Vec<Replacement>,
    /// `@NAME@` placeholders and their values (`--subst-var-by`). Each placeholder MUST occur.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
}

/// One literal replacement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Replacement {
    /// The exact text to find. MUST NOT be empty.
    pub from: String,
    /// The text that replaces every occurrence.
    pub to: String,
    /// What to do when `from` does not occur: `fail` (default, like `--replace-fail`) or `warn`
    /// (like `--replace-warn`).
    #[serde(default, skip_serializing_if = "IfMissing::is_fail")]
    pub if_missing: IfMissing,
}

/// What a substitution does when its pattern is not found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum IfMissing {
    /// Fail the step.
    #[default]
    Fail,
    /// Print a warning and go on.
    Warn,
}

impl IfMissing {
    fn is_fail(&self) -> bool {
        *self == IfMissing::Fail
    }
}

impl StepFields for SubstituteStep {
    fn for_each_name(&self, path: &dyn Fn() -> JsonPath, check: &mut NameCheck<'_>) {
        for_each_key(&self.vars, "variable name", "vars", path, check);
    }

    fn for_each_template(&mut self, path: &JsonPath, visit: &mut dyn FnMut(JsonPath, &mut String)) {
        visit(path.key("file"), &mut self.file);
        visit_option(&mut self.out, path.key("out"), visit);
        for (index, replacement) in self.replace.iter_mut().enumerate() {
            let item = path.key("replace").index(index);
            visit(item.key("from"), &mut replacement.from);
            visit(item.key("to"), &mut replacement.to);
        }
        for (name, value) in self.vars.iter_mut() {
            visit(path.key("vars").key(name), value);
        }
    }

    fn check(&self, path: &JsonPath, errors: &mut Problems) {
        if self.file.is_empty() {
            errors.push(empty(path, "file", "the file path"));
        }
        if self.replace.is_empty() && self.vars.is_empty() {
            errors.push(PlanError::new(path.clone(), PlanErrorKind::EmptySubstitute));
        }
        for (index, replacement) in self.replace.iter().enumerate() {
            if replacement.from.is_empty() {
                let item = path.key("replace").index(index);
                errors.push(empty(&item, "from", "the pattern"));
            }
        }
        for name in self.vars.keys() {
            if name.is_empty() || name.contains('@') {
                errors.push(PlanError::new(
                    path.key("vars").key(name),
                    PlanErrorKind::InvalidEnvName { name: name.clone() },
                ));
            }
        }
    }
}
