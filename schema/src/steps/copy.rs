//! `copy`: a file, a symlink or a directory tree to a new path.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{empty, StepFields};
use crate::error::Problems;
use crate::path::JsonPath;

/// Copy a file, a symlink or a directory tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CopyStep {
    /// What to copy.
    pub from: String,
    /// Where to put it: the new path itself (not a directory to copy into). Missing parents are
    /// created; an existing destination is an error.
    pub to: String,
}

impl StepFields for CopyStep {
    fn for_each_template(&mut self, path: &JsonPath, visit: &mut dyn FnMut(JsonPath, &mut String)) {
        visit(path.key("from"), &mut self.from);
        visit(path.key("to"), &mut self.to);
    }

    fn check(&self, path: &JsonPath, errors: &mut Problems) {
        if self.from.is_empty() {
            errors.push(empty(path, "from", "the source path"));
        }
        if self.to.is_empty() {
            errors.push(empty(path, "to", "the destination path"));
        }
    }
}
