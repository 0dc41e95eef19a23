//! `patch`: patches (unified diffs, possibly compressed, or a quilt `series`), in order.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{empty, StepFields};
use crate::error::Problems;
use crate::path::JsonPath;
use crate::reference::{visit_list, visit_option};

/// Apply patches in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PatchStep {
    /// Patch files (`.patch`, `.diff`, or compressed with gzip, bzip2 or xz).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<String>,
    /// A quilt `series` file (Debian's `debian/patches/series`), applied after `patches`; its
    /// patches are relative to its directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<String>,
    /// Leading path components to strip (`patch -pN`). Default 1.
    #[serde(default = "default_strip")]
    pub strip: usize,
}

fn default_strip() -> usize {
    1
}

impl StepFields for PatchStep {
    fn for_each_template(&mut self, path: &JsonPath, visit: &mut dyn FnMut(JsonPath, &mut String)) {
        visit_list(&mut self.patches, &path.key("patches"), visit);
        visit_option(&mut self.series, path.key("series"), visit);
    }

    fn check(&self, path: &JsonPath, errors: &mut Problems) {
        if self.patches.is_empty() && self.series.is_none() {
            errors.push(empty(
                path,
                "patches",
                "the patch list (and there is no `series`)",
            ));
        }
    }
}
