//! `configure`: a configure script with stdenv's automatic flags.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{empty, for_each_key, NameCheck, StepFields};
use crate::error::Problems;
use crate::path::JsonPath;
use crate::plan::enabled_by_default;
use crate::reference::{visit_list, visit_option};

/// Run a configure script the way stdenv's `configurePhase` does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConfigureStep {
    /// The script, relative to the working directory. Default `./configure`.
    #[serde(default = "default_configure_script")]
    pub script: String,
    /// Flags after the automatic ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// The prefix flag, `--prefix=` by default; `prefix` is appended.
    #[serde(default = "default_prefix_key")]
    pub prefix_key: String,
    /// The prefix (stdenv: `$prefix`, the `out` output). Omit to add no prefix flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Add `--disable-dependency-tracking` when the script knows it (stdenv's default).
    #[serde(default = "enabled_by_default")]
    pub disable_dependency_tracking: bool,
    /// Add `--disable-static` when the script knows `--enable-static` (stdenv's default).
    #[serde(default = "enabled_by_default")]
    pub disable_static: bool,
    /// Extra environment for the script.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

fn default_configure_script() -> String {
    "./configure".to_owned()
}

fn default_prefix_key() -> String {
    "--prefix=".to_owned()
}

impl StepFields for ConfigureStep {
    fn for_each_name(&self, path: &dyn Fn() -> JsonPath, check: &mut NameCheck<'_>) {
        for_each_key(&self.env, "environment variable name", "env", path, check);
    }

    fn for_each_template(&mut self, path: &JsonPath, visit: &mut dyn FnMut(JsonPath, &mut String)) {
        visit(path.key("script"), &mut self.script);
        visit_list(&mut self.flags, &path.key("flags"), visit);
        visit(path.key("prefixKey"), &mut self.prefix_key);
        visit_option(&mut self.prefix, path.key("prefix"), visit);
        for (name, value) in self.env.iter_mut() {
            visit(path.key("env").key(name), value);
        }
    }

    fn check(&self, path: &JsonPath, errors: &mut Problems) {
        if self.script.is_empty() {
            errors.push(empty(path, "script", "the script path"));
        }
    }
}
