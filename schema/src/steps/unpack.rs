//! `unpack`: sources (archives or directories) into the build.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{empty, StepFields};
use crate::error::{PlanError, PlanErrorKind, Problems};
use crate::path::JsonPath;
use crate::reference::{visit_list, visit_option};

/// Unpack sources into the build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UnpackStep {
    /// Archives (tar, tar.gz/bz2/xz/zst, zip, a Debian package's files, a compressed file) or
    /// directories, in order.
    pub srcs: Vec<String>,
    /// The source root, relative to the unpack directory, when it is not the single new
    /// directory (stdenv's `sourceRoot`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_root: Option<String>,
    /// Extract here instead (relative to the working directory), with no source-root rule and no
    /// change of working directory: e.g. Debian's `debian/` tarball inside the source root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub into: Option<String>,
    /// Unpack the sources as root file systems (Debian packages) laid out as on a merged-/usr
    /// system: entries under the top-level `bin`, `sbin`, `lib`, `lib32`, `lib64` and `libx32`
    /// go under `usr/`, and absolute symlink targets become relative links inside `into`.
    /// Needs `into`. Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub merge_usr: bool,
}

impl StepFields for UnpackStep {
    fn for_each_template(&mut self, path: &JsonPath, visit: &mut dyn FnMut(JsonPath, &mut String)) {
        visit_list(&mut self.srcs, &path.key("srcs"), visit);
        visit_option(&mut self.source_root, path.key("sourceRoot"), visit);
        visit_option(&mut self.into, path.key("into"), visit);
    }

    fn check(&self, path: &JsonPath, errors: &mut Problems) {
        if self.srcs.is_empty() {
            errors.push(empty(path, "srcs", "the source list"));
        }
        if self.merge_usr && self.into.is_none() {
            errors.push(PlanError::new(
                path.key("mergeUsr"),
                PlanErrorKind::MergeUsrWithoutInto,
            ));
        }
    }
}
