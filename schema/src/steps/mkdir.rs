//! `mkdir`: a directory and its missing parents.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{empty, StepFields};
use crate::error::Problems;
use crate::path::JsonPath;

/// Create a directory and any missing parents (like `mkdir -p`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MkdirStep {
    /// The directory to create. Existing directories are fine.
    pub path: String,
}

impl StepFields for MkdirStep {
    fn for_each_template(&mut self, path: &JsonPath, visit: &mut dyn FnMut(JsonPath, &mut String)) {
        visit(path.key("path"), &mut self.path);
    }

    fn check(&self, path: &JsonPath, errors: &mut Problems) {
        if self.path.is_empty() {
            errors.push(empty(path, "path", "the path"));
        }
    }
}
