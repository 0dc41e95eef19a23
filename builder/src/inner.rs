//! The phase runner on the far side of kiln's local sandbox: the hidden `__run-phases`
//! subcommand.
//!
//! Local mode runs each phase in a fresh sandbox, the way Nix runs a builder: kiln re-executes
//! itself inside it, so built-in steps (unpack, patch, file steps, fixup) are confined exactly
//! like `run` steps. The caller writes a [`PhaseRequest`] into the build directory; the runner
//! reads it, runs the requested phases with every event on stderr as JSON Lines (the caller
//! relays them, see [`crate::relay`]), and writes a [`PhaseResponse`] next to it: where the
//! build left off, or how it failed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kiln_schema::events::Level;
use kiln_schema::Plan;
use serde::{Deserialize, Serialize};

use crate::build::{execute, RunError};
use crate::executor::{BuildError, Execution, ExecutorOptions, Resume};
use crate::report::{LogFormat, WriterReporter};

/// The hidden subcommand: `kiln __run-phases BUILD_TOP`.
pub const INNER_SUBCOMMAND: &str = "__run-phases";

/// The request's file name in the build directory (never part of a state).
pub const REQUEST_FILE: &str = ".kiln-phase-request.json";

/// The response's file name in the build directory (never part of a state).
pub const RESPONSE_FILE: &str = ".kiln-phase-response.json";

/// What to run: a resolved plan (paths as seen inside the sandbox), the phases to run, and
/// where earlier phases left off.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseRequest {
    /// The resolved plan.
    pub plan: Plan,
    /// The environment before the plan's `env`.
    pub base_env: BTreeMap<String, String>,
    /// The build directory.
    pub build_top: PathBuf,
    /// Output name → path.
    pub outputs: BTreeMap<String, PathBuf>,
    /// The phases to run (in plan order).
    pub phases: Vec<String>,
    /// Where earlier phases left off.
    pub resume: Option<Resume>,
    /// Seconds between SIGTERM and SIGKILL when a step is stopped.
    pub grace_seconds: f64,
    /// The phases end the build: record propagated dependencies in the outputs afterwards
    /// (`nix-support/propagated-build-inputs`), here inside the sandbox.
    pub finish: bool,
}

/// How the phases went.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseResponse {
    /// Where the phases left off (also after a failure).
    pub resume: Resume,
    /// The failure, if any.
    pub failure: Option<PhaseFailure>,
}

/// A failed phase, as text: the error crossed a process boundary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseFailure {
    /// The phase.
    pub phase: String,
    /// The error and its causes, one per line (`caused by:` chain).
    pub message: Vec<String>,
    /// What to do next.
    pub hint: Option<String>,
    /// The signal that stopped the build, when kiln was asked to stop.
    pub signal: Option<i32>,
}

impl PhaseFailure {
    /// The failure of a build error.
    pub fn from_build_error(error: &BuildError) -> PhaseFailure {
        PhaseFailure {
            phase: error.location().phase.clone(),
            message: causes(error),
            hint: error.hint(),
            signal: match error {
                BuildError::Interrupted { signal, .. } => Some(*signal as i32),
                _ => None,
            },
        }
    }

    /// The failure of a whole run.
    pub fn from_run_error(phase: &str, error: &RunError) -> PhaseFailure {
        if let RunError::Build(build) = error {
            return PhaseFailure::from_build_error(build);
        }
        PhaseFailure {
            phase: phase.to_owned(),
            message: causes(error),
            hint: None,
            signal: None,
        }
    }
}

/// An error and each of its causes, outermost first.
pub(crate) fn causes(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut message = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        message.push(cause.to_string());
        source = cause.source();
    }
    message
}

/// Runs `kiln __run-phases BUILD_TOP`; returns the process's exit code.
pub fn inner_main(build_top: &Path) -> i32 {
    let request_path = build_top.join(REQUEST_FILE);
    let request: PhaseRequest = match std::fs::read(&request_path)
        .map_err(|error| error.to_string())
        .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|error| error.to_string()))
    {
        Ok(request) => request,
        Err(error) => {
            eprintln!(
                "error: cannot read the phase request `{}`: {error}",
                request_path.display()
            );
            return kiln_schema::exit_codes::SETUP_FAILED;
        }
    };
    let _ = std::fs::remove_file(&request_path);
    let only: BTreeSet<String> = request.phases.iter().cloned().collect();
    let execution = Execution {
        plan: &request.plan,
        base_env: &request.base_env,
        build_top: &request.build_top,
        outputs: &request.outputs,
        options: ExecutorOptions {
            grace: Duration::from_secs_f64(request.grace_seconds.clamp(0.0, 3600.0)),
        },
        only: Some(&only),
        resume: request.resume.as_ref(),
    };
    let mut reporter = WriterReporter::new(LogFormat::Json, Level::Vomit, std::io::stderr());
    let (summary, result) = execute(&execution, &mut reporter);
    let last = request.phases.last().cloned().unwrap_or_default();
    let mut failure = result
        .as_ref()
        .err()
        .map(|error| PhaseFailure::from_run_error(&last, error));
    if failure.is_none() && request.finish {
        if let Some(target) = crate::build::propagation_output(&request.plan, &request.outputs) {
            if std::fs::symlink_metadata(target).is_ok() {
                if let Err(source) = crate::deps::write_propagated(&request.plan, target) {
                    let error = RunError::Propagate {
                        path: target.to_owned(),
                        source,
                    };
                    failure = Some(PhaseFailure::from_run_error(&last, &error));
                }
            }
        }
    }
    let exit_code = match &failure {
        None => kiln_schema::exit_codes::SUCCESS,
        Some(PhaseFailure {
            signal: Some(signal),
            ..
        }) => kiln_schema::exit_codes::SIGNAL_BASE + signal,
        Some(_) => kiln_schema::exit_codes::BUILD_FAILED,
    };
    let response = PhaseResponse {
        resume: summary.resume,
        failure,
    };
    let response_path = build_top.join(RESPONSE_FILE);
    // A step may have left anything at this name (a FIFO would block the open): start afresh.
    let written = match std::fs::remove_file(&response_path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
        _ => std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&response_path),
    }
    .and_then(|mut file| {
        file.write_all(&serde_json::to_vec(&response).expect("a response serializes"))
    });
    if let Err(error) = written {
        eprintln!(
            "error: cannot write the phase response `{}`: {error}",
            response_path.display()
        );
        return kiln_schema::exit_codes::SETUP_FAILED;
    }
    exit_code
}
