//! Wire types of the `--log-format json` stream: one JSON object per line.
//!
//! # Format
//!
//! Each line is `{"type": KIND, "data": {...}}` with `KIND` one of `build-started`,
//! `phase-started`, `phase-skipped`, `step-started`, `output`, `message`, `phase-finished`,
//! `build-finished`. Child output is `{"text": "..."}` when it is UTF-8 and
//! `{"bytes": [..]}` otherwise. [`LOG_FORMAT_VERSION`] is carried by `build-started`; new fields
//! may be added within a version, so readers must ignore unknown keys.

use serde::{Deserialize, Serialize};

/// Version of the JSON log format.
pub const LOG_FORMAT_VERSION: u32 = 1;

/// Severity of a diagnostic, matching Nix's verbosity levels 0–7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Nix level 0.
    Error = 0,
    /// Nix level 1.
    Warn = 1,
    /// Nix level 2.
    Notice = 2,
    /// Nix level 3, shown by default.
    Info = 3,
    /// Nix level 4 (`-v`).
    Talkative = 4,
    /// Nix level 5 (`-vv`).
    Chatty = 5,
    /// Nix level 6 (`-vvv`).
    Debug = 6,
    /// Nix level 7 (`-vvvv`).
    Vomit = 7,
}

/// One event of a build, as written by the JSON reporter.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", content = "data", rename_all = "kebab-case")]
// Not `non_exhaustive`: every reporter matches every event, so a new kind cannot be dropped
// silently by a `_ => {}` (all reporters are in this workspace).
pub enum LogEvent<'a> {
    /// The build is about to run its phases.
    BuildStarted {
        /// [`LOG_FORMAT_VERSION`].
        format_version: u32,
        /// The plan name.
        name: &'a str,
        /// The phases in order, disabled ones included.
        phases: Vec<&'a str>,
    },
    /// A phase began.
    PhaseStarted {
        /// Phase name.
        phase: &'a str,
        /// 1-based position among the plan's phases.
        index: usize,
        /// Number of phases in the plan.
        total: usize,
    },
    /// A phase is disabled and was not run.
    PhaseSkipped {
        /// Phase name.
        phase: &'a str,
    },
    /// A step began.
    StepStarted {
        /// Phase name.
        phase: &'a str,
        /// 1-based step index in the phase.
        step: usize,
        /// The step kind.
        kind: &'a str,
        /// A one-line description (e.g. the argv).
        description: &'a str,
    },
    /// A line (or the unterminated tail) of a child's combined stdout and stderr.
    Output(Output<'a>),
    /// A diagnostic from kiln.
    Message {
        /// Severity.
        level: Level,
        /// The text.
        text: &'a str,
    },
    /// A phase ended.
    PhaseFinished {
        /// Phase name.
        phase: &'a str,
        /// Whether every step succeeded.
        success: bool,
        /// Wall time in seconds.
        seconds: f64,
    },
    /// The build ended.
    BuildFinished {
        /// Whether every phase succeeded.
        success: bool,
        /// The exit code kiln is about to return.
        exit_code: i32,
        /// Wall time in seconds.
        seconds: f64,
    },
}

/// A child output line: text when valid UTF-8, raw bytes otherwise.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Output<'a> {
    /// Valid UTF-8, without the trailing newline.
    Text(&'a str),
    /// Anything else, without the trailing newline.
    Bytes(&'a [u8]),
}
