//! The phase runner on the far side of kiln's local sandbox: the hidden `__run-phases`
//! subcommand.
//!
//! Local mode runs each phase in a fresh sandbox, the way Nix runs a builder: kiln re-executes
//! itself inside it, so built-in steps (unpack, patch, file steps, fixup) are confined exactly
//! like `run` steps. The caller writes a [`PhaseRequest`] into the build directory; the runner
//! reads it, runs the requested phases with every event on stderr as JSON Lines (the caller
//! relays them, see [`crate::local::relay`]), and writes a [`PhaseResponse`] next to it: where the
//! build left off, or how it failed.
//!
//! Paths cross as bytes ([`kiln_state::bytes_path`]): the source root `unpack` finds may have
//! any name. A failure is also reported on stderr as a [`RunnerReport`] before the response is
//! written, so that it reaches the caller when the response cannot be written (a full disk):
//! the caller prefers the response and falls back on the report.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kiln_schema::events::Level;
use kiln_schema::Plan;
use serde::{Deserialize, Serialize};

use crate::report::{LogFormat, WriterReporter};
use crate::run::build::{execute, RunError};
use crate::run::executor::{BuildError, Execution, ExecutorOptions, Resume};

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
    #[serde(with = "kiln_state::bytes_path")]
    pub build_top: PathBuf,
    /// Output name → path.
    #[serde(with = "kiln_state::bytes_path::map")]
    pub outputs: BTreeMap<String, PathBuf>,
    /// The cores the build may use.
    pub cores: u32,
    /// The store directory.
    pub store_dir: PathBuf,
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
            message: kiln_schema::chain::causes(error),
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
            message: kiln_schema::chain::causes(error),
            hint: None,
            signal: None,
        }
    }
}

/// What the runner says on stderr besides the event stream, one JSON line each, in the
/// events' `{"type": .., "data": ..}` envelope (see [`crate::local::relay::relay_line`]).
///
/// # Format
///
/// ```json
/// {"type":"phase-failed","data":{"phase":"unpack","message":["…"],"hint":null,"signal":null}}
/// {"type":"response-unwritten","data":{"path":"/build/.kiln-phase-response.json","errno":28,"message":"No space left on device (os error 28)"}}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "kebab-case")]
pub enum RunnerReport {
    /// The phases failed; written before the response.
    PhaseFailed(PhaseFailure),
    /// The response could not be written.
    ResponseUnwritten(ResponseUnwritten),
}

/// Why the runner could not write its [`PhaseResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseUnwritten {
    /// The response file, as the runner sees it.
    #[serde(with = "kiln_state::bytes_path")]
    pub path: PathBuf,
    /// The OS error number, when the error was the OS's (28 is `ENOSPC`).
    pub errno: Option<i32>,
    /// The error.
    pub message: String,
}

impl ResponseUnwritten {
    /// The error as an [`std::io::Error`] again: the OS error when there was one.
    pub fn io_error(&self) -> std::io::Error {
        match self.errno {
            Some(errno) => std::io::Error::from_raw_os_error(errno),
            None => std::io::Error::other(self.message.clone()),
        }
    }
}

impl std::fmt::Display for ResponseUnwritten {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the phase runner could not write its response `{}` either: {}",
            self.path.display(),
            self.message
        )
    }
}

/// Writes `report` as one line on stderr; best effort (stderr is the only channel left).
fn report_to_caller(report: &RunnerReport) {
    if let Ok(mut line) = serde_json::to_vec(report) {
        line.push(b'\n');
        let _ = std::io::stderr().lock().write_all(&line);
    }
}

/// Runs `kiln __run-phases BUILD_TOP`; returns the process's exit code.
pub fn inner_main(build_top: &Path) -> i32 {
    // The steps run as the same user as this process: without this, any of them could attach
    // to it (`ptrace`, `/proc/PID/mem`) and change what the built-in steps (unpack, patch,
    // fixup) do with kiln's authority. A non-dumpable process can only be traced with
    // CAP_SYS_PTRACE, which no step has (ptrace(2), "Ptrace access mode checking").
    // Children start dumpable again at execve(2), so the steps' own debugging still works.
    if let Err(errno) = nix::sys::prctl::set_dumpable(false) {
        eprintln!("error: cannot make kiln's phase runner untraceable (PR_SET_DUMPABLE): {errno}");
        return kiln_schema::exit_codes::SETUP_FAILED;
    }
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
        cores: request.cores,
        store_dir: &request.store_dir,
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
        if let Err(error) =
            crate::run::build::write_propagation(&request.plan, &request.outputs, true)
        {
            failure = Some(PhaseFailure::from_run_error(&last, &error));
        }
    }
    let exit_code = match &failure {
        None => kiln_schema::exit_codes::SUCCESS,
        Some(PhaseFailure {
            signal: Some(signal),
            ..
        }) => kiln_schema::exit_codes::for_signal(*signal),
        Some(_) => kiln_schema::exit_codes::BUILD_FAILED,
    };
    if let Some(failure) = &failure {
        report_to_caller(&RunnerReport::PhaseFailed(failure.clone()));
    }
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
        let bytes = serde_json::to_vec(&response).map_err(std::io::Error::other)?;
        file.write_all(&bytes)
    });
    if let Err(error) = written {
        report_to_caller(&RunnerReport::ResponseUnwritten(ResponseUnwritten {
            path: response_path,
            errno: error.raw_os_error(),
            message: error.to_string(),
        }));
        return kiln_schema::exit_codes::SETUP_FAILED;
    }
    exit_code
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    use super::*;

    #[test]
    fn a_non_utf8_working_directory_crosses_exactly() {
        let workdir = PathBuf::from(OsStr::from_bytes(b"/build/src-\xff"));
        let response = PhaseResponse {
            resume: Resume {
                workdir: workdir.clone(),
                env: BTreeMap::from([("SOURCE_DATE_EPOCH".to_owned(), "1".to_owned())]),
            },
            failure: None,
        };
        let json = serde_json::to_vec(&response).unwrap();
        let back: PhaseResponse = serde_json::from_slice(&json).unwrap();
        assert_eq!(back.resume, response.resume);
        // A UTF-8 one is the plain string it always was.
        let plain = serde_json::to_value(Resume {
            workdir: "/build/hello-2.10".into(),
            env: BTreeMap::new(),
        })
        .unwrap();
        assert_eq!(plain["workdir"], "/build/hello-2.10");
    }

    #[test]
    fn the_response_problem_reads_as_the_os_error() {
        let why = ResponseUnwritten {
            path: PathBuf::from("/build/.kiln-phase-response.json"),
            errno: Some(28),
            message: std::io::Error::from_raw_os_error(28).to_string(),
        };
        assert_eq!(why.io_error().raw_os_error(), Some(28));
        assert_eq!(
            why.to_string(),
            "the phase runner could not write its response `/build/.kiln-phase-response.json` \
             either: No space left on device (os error 28)"
        );
    }
}
