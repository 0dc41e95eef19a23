//! The `kilnSplit` derivation attribute: which part of a split build a derivation is.
//!
//! # Format
//!
//! ```json
//! { "version": 1, "role": "stage", "phases": ["configure", "build"],
//!   "state": "/nix/store/…-hello-2.10-state-patch",
//!   "placeholders": { "out": "/nix/store/00000000000000000000000000000000-hello-2.10" } }
//! ```
//!
//! Every part runs the plan with each output at its placeholder (same length as the real path,
//! which no part but the last can know). A `stage` restores `state` (if any), runs `phases` and
//! packs the next state into its output; a `check` does the same but keeps only a record; the
//! `final` part runs its phases, then moves each placeholder to the real output and rewrites the
//! placeholder everywhere; a `source` part restores `state` and outputs the working directory
//! (the patched source tree).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The attribute of `.attrs.json` that marks a derivation as a part of a split build.
pub const SPLIT_ATTRIBUTE: &str = "kilnSplit";

/// What a part of a split build does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// Run phases and output the next state.
    Stage,
    /// Run phases (usually `check`) and output a record of the run; nothing depends on it.
    Check,
    /// Run the last phases and produce the real outputs.
    Final,
    /// Output the working directory of the restored state (the source as built).
    Source,
}

/// One part of a split build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SplitPart {
    /// MUST be 1.
    pub version: u32,
    /// What this part does.
    pub role: Role,
    /// The phases this part runs, by name; each MUST be a phase of the plan.
    #[serde(default)]
    pub phases: Vec<String>,
    /// The state to start from (a previous stage's output); none for the first part.
    #[serde(default)]
    pub state: Option<String>,
    /// Output name → placeholder path. Every output of the plan MUST have one, as long as the
    /// real path it stands for.
    pub placeholders: BTreeMap<String, String>,
}
