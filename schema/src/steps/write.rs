//! `write`: a file with the given content.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{empty, StepFields};
use crate::error::Problems;
use crate::path::JsonPath;
use crate::plan::Mode;

/// Write `content` to `path`, replacing the file if it exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WriteStep {
    /// The file to write; missing parent directories are created.
    pub path: String,
    /// The exact file content (UTF-8).
    pub content: String,
    /// Permission bits as an octal string such as `"0755"`. Defaults to `0644`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
}

impl StepFields for WriteStep {
    fn for_each_template(&mut self, path: &JsonPath, visit: &mut dyn FnMut(JsonPath, &mut String)) {
        visit(path.key("path"), &mut self.path);
        visit(path.key("content"), &mut self.content);
    }

    fn check(&self, path: &JsonPath, errors: &mut Problems) {
        if self.path.is_empty() {
            errors.push(empty(path, "path", "the path"));
        }
    }
}
