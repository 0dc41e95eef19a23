//! `symlink`: a symbolic link.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{empty, StepFields};
use crate::error::Problems;
use crate::path::JsonPath;

/// Create a symbolic link at `link` pointing to `target`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SymlinkStep {
    /// The link's content, stored as given (relative targets stay relative).
    pub target: String,
    /// The path of the new link; missing parents are created.
    pub link: String,
}

impl StepFields for SymlinkStep {
    fn for_each_template(&mut self, path: &JsonPath, visit: &mut dyn FnMut(JsonPath, &mut String)) {
        visit(path.key("target"), &mut self.target);
        visit(path.key("link"), &mut self.link);
    }

    fn check(&self, path: &JsonPath, errors: &mut Problems) {
        if self.target.is_empty() {
            errors.push(empty(path, "target", "the link target"));
        }
        if self.link.is_empty() {
            errors.push(empty(path, "link", "the link path"));
        }
    }
}
