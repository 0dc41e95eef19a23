//! Dependency hooks as data: `nix-support/kiln-hook.json` in an input replaces a bash setup hook.
//!
//! # Format
//!
//! ```json
//! { "version": 1,
//!   "env": { "GETTEXTDATADIRS": "@self@/share/gettext" },
//!   "edits": [ { "after": { "phase": "install", "insert": { "name": "x", "steps": [] } } } ] }
//! ```
//!
//! `@self@` in an `env` value stands for the input's own path. A hook's variables are set unless
//! the plan's `env` sets the same name; its edits apply after the plan's own, in dependency order.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::plan::Edit;

/// The file name of a hook inside an input, relative to the input's root.
pub const HOOK_FILE: &str = "nix-support/kiln-hook.json";

/// A dependency's declared contribution to builds that use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Hook {
    /// MUST be 1.
    pub version: u32,
    /// Variables to set; `@self@` is replaced by the input's path.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Phase edits, applied after the plan's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edits: Vec<Edit>,
}
