//! The executor: runs a resolved plan's phases in order and reports every event.
//!
//! Each phase runs its steps in order; the first failing step ends the build. `run` steps are
//! child processes ([`crate::run::process`]); every other step is a built-in file operation from
//! `kiln-phases`. A phase's `timeout` bounds the whole phase. Signals received by kiln stop the
//! running step's process group and end the build with [`BuildError::Interrupted`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use kiln_schema::events::{Level, LogEvent, Output};
use kiln_schema::{Plan, Step};
pub use kiln_steps::{describe as describe_step, display_argv};
use kiln_steps::{Action, Invocation, StepContext};
use thiserror::Error;
use tokio::time::Instant;

use crate::report::Reporter;
use crate::run::process::{run_child, ChildOutcome, ChildSpec, RunLimits};
use crate::run::signal::SignalEvents;
use crate::setup::env::find_program;

/// Executor settings.
#[derive(Debug, Clone, Copy)]
pub struct ExecutorOptions {
    /// Time between SIGTERM and SIGKILL when a step is stopped.
    pub grace: Duration,
}

impl Default for ExecutorOptions {
    fn default() -> Self {
        ExecutorOptions {
            grace: Duration::from_secs(5),
        }
    }
}

/// How a phase went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseStatus {
    /// Every step succeeded.
    Succeeded,
    /// A step failed.
    Failed,
    /// The phase is disabled.
    Skipped,
    /// An earlier phase failed, so this one did not run.
    NotRun,
    /// Another derivation runs it (split mode).
    Elsewhere,
}

/// One phase's result and wall time.
#[derive(Debug, Clone)]
pub struct PhaseTiming {
    /// Phase name.
    pub name: String,
    /// Result.
    pub status: PhaseStatus,
    /// Wall time.
    pub duration: Duration,
}

/// The per-phase results of a build.
#[derive(Debug, Clone, Default)]
pub struct BuildSummary {
    /// Phases in plan order.
    pub phases: Vec<PhaseTiming>,
    /// Wall time of all phases.
    pub duration: Duration,
    /// Where the build left off, for a later derivation (split mode).
    pub resume: Resume,
}

/// Where a failing step is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepLocation {
    /// Phase name.
    pub phase: String,
    /// 1-based step number in the phase.
    pub step: usize,
    /// Step kind.
    pub kind: &'static str,
    /// Whether the phase comes from stdenv-style attributes (its origin says `stdenv …`), so
    /// hints can name attributes (`dontConfigure`) instead of plan fields.
    pub from_stdenv: bool,
}

impl std::fmt::Display for StepLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "phase `{}`, step {} ({})",
            self.phase, self.step, self.kind
        )
    }
}

/// Why a build failed.
#[derive(Debug, Error)]
pub enum BuildError {
    /// A `run` step exited non-zero or was killed by a signal.
    #[error("{at}: `{}` {}", display_argv(argv), describe_outcome(*outcome))]
    StepFailed {
        /// The step.
        at: StepLocation,
        /// The argv as resolved.
        argv: Vec<String>,
        /// How it ended.
        outcome: ChildOutcome,
    },
    /// The phase's timeout ran out during this step.
    #[error(
        "{at}: phase timed out after {seconds} s while running `{}`",
        display_argv(argv)
    )]
    TimedOut {
        /// The step.
        at: StepLocation,
        /// The phase's timeout.
        seconds: u64,
        /// The argv, or the step description.
        argv: Vec<String>,
    },
    /// kiln was asked to stop.
    #[error("{at}: stopped by {}", signal_name(*signal))]
    Interrupted {
        /// The step that was running or next.
        at: StepLocation,
        /// The signal kiln received.
        signal: nix::sys::signal::Signal,
    },
    /// The program is not on the step's `PATH`.
    #[error("{at}: program `{program}` not found (PATH is `{path}`)")]
    ProgramNotFound {
        /// The step.
        at: StepLocation,
        /// `argv[0]`.
        program: String,
        /// The step's `PATH`.
        path: String,
    },
    /// The file a run step's `stdout` names could not be created.
    #[error("{at}: cannot create `{}` for the program's standard output", path.display())]
    StdoutFile {
        /// Where.
        at: StepLocation,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The program could not be started.
    #[error("{at}: cannot start `{}`", program.display())]
    Spawn {
        /// The step.
        at: StepLocation,
        /// The resolved program.
        program: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A step failed in kiln's process (a file step, unpack, patch, fixup, …), or the
    /// process of a `configure` step could not be worked out.
    #[error("{at}: step failed")]
    Step {
        /// The step.
        at: StepLocation,
        /// What went wrong.
        #[source]
        source: kiln_steps::StepError,
    },
    /// The working directory does not exist.
    #[error("{at}: working directory `{}` does not exist", path.display())]
    MissingCwd {
        /// The step.
        at: StepLocation,
        /// The directory.
        path: PathBuf,
    },
}

impl BuildError {
    /// Where it happened.
    pub fn location(&self) -> &StepLocation {
        match self {
            BuildError::StepFailed { at, .. }
            | BuildError::TimedOut { at, .. }
            | BuildError::Interrupted { at, .. }
            | BuildError::ProgramNotFound { at, .. }
            | BuildError::Spawn { at, .. }
            | BuildError::StdoutFile { at, .. }
            | BuildError::Step { at, .. }
            | BuildError::MissingCwd { at, .. } => at,
        }
    }

    /// What the user can do next.
    pub fn hint(&self) -> Option<String> {
        match self {
            BuildError::ProgramNotFound { .. } => Some(
                "add an input that provides it (its `bin` goes on PATH), or give an absolute path"
                    .to_owned(),
            ),
            BuildError::TimedOut { .. } => {
                Some("raise the phase's `timeout` (seconds) if the step needs longer".to_owned())
            }
            BuildError::MissingCwd { .. } => {
                Some("create it in an earlier step (`mkdir`) or fix the `cwd`".to_owned())
            }
            BuildError::Step {
                source: kiln_steps::StepError::MissingConfigureScript { .. },
                at,
            } if at.from_stdenv => Some(
                "set `dontConfigure = true;` if the package has no configure script, or \
                 `configureScript` to the one it has"
                    .to_owned(),
            ),
            BuildError::Step { source, .. } => source.hint(),
            _ => None,
        }
    }
}

fn signal_name(signal: nix::sys::signal::Signal) -> &'static str {
    signal.as_str()
}

fn describe_outcome(outcome: ChildOutcome) -> String {
    match outcome {
        ChildOutcome::Exited(code) => format!("exited with code {code}"),
        ChildOutcome::Signaled(number) => match nix::sys::signal::Signal::try_from(number) {
            Ok(signal) => format!("was killed by signal {number} ({})", signal.as_str()),
            Err(_) => format!("was killed by signal {number}"),
        },
        ChildOutcome::TimedOut => "timed out".to_owned(),
        ChildOutcome::Interrupted(signal) => format!("was stopped ({})", signal.as_str()),
    }
}

/// Everything a resolved plan needs to run.
pub struct Execution<'a> {
    /// The plan, every reference resolved.
    pub plan: &'a Plan,
    /// The environment before the plan's `env` (see [`crate::setup::env::base_env`]).
    pub base_env: &'a BTreeMap<String, String>,
    /// The build directory: default working directory.
    pub build_top: &'a Path,
    /// Output name → path (for `fixup`).
    pub outputs: &'a BTreeMap<String, PathBuf>,
    /// The cores the build may use (`make -jN`, the fixup's jobs).
    pub cores: u32,
    /// The store directory.
    pub store_dir: &'a Path,
    /// Settings.
    pub options: ExecutorOptions,
    /// Run only these phases; the others run in other derivations (split mode).
    pub only: Option<&'a BTreeSet<String>>,
    /// Where earlier phases left off (split mode): the working directory and the variables
    /// steps changed.
    pub resume: Option<&'a Resume>,
}

/// The part of the executor's state that a later derivation needs to go on.
///
/// It crosses processes as JSON (kiln's phase response); the working directory is whatever
/// `unpack` found, any bytes, so it is written with [`kiln_state::bytes_path`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Resume {
    /// The working directory (the source root once unpacked).
    #[serde(with = "kiln_state::bytes_path")]
    pub workdir: PathBuf,
    /// Variables that steps changed (e.g. `SOURCE_DATE_EPOCH` raised by `unpack`).
    pub env: BTreeMap<String, String>,
}

/// What steps change for the steps after them.
struct State {
    /// The working directory of phases without an absolute `cwd`: the build directory, then
    /// the source root once `unpack` found it (stdenv's `cd "$sourceRoot"`).
    workdir: PathBuf,
    /// The environment before each step's own `env`.
    env: BTreeMap<String, String>,
}

impl Execution<'_> {
    /// Runs every enabled phase in order. Returns the per-phase summary and the first error.
    pub async fn run(
        &self,
        reporter: &mut dyn Reporter,
        signals: &mut SignalEvents,
    ) -> (BuildSummary, Result<(), BuildError>) {
        let started = Instant::now();
        let plan = self.plan;
        let mut env = self.base_env.clone();
        env.extend(plan.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let initial_env = env.clone();
        let mut state = State {
            workdir: self.build_top.to_owned(),
            env,
        };
        if let Some(resume) = self.resume {
            state.workdir = resume.workdir.clone();
            state.env.extend(resume.env.clone());
        }
        reporter.report(&LogEvent::BuildStarted {
            format_version: kiln_schema::events::LOG_FORMAT_VERSION,
            name: &plan.name,
            phases: plan
                .phases
                .iter()
                .map(|phase| phase.name.as_str())
                .collect(),
        });
        let listing: Vec<String> = state.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        reporter.report(&LogEvent::Message {
            level: Level::Debug,
            text: &format!("environment: {}", listing.join(" ")),
        });

        let mut summary = BuildSummary::default();
        let mut result = Ok(());
        let total = plan.phases.len();
        for (index, phase) in plan.phases.iter().enumerate() {
            if result.is_err() {
                summary.phases.push(PhaseTiming {
                    name: phase.name.clone(),
                    status: PhaseStatus::NotRun,
                    duration: Duration::ZERO,
                });
                continue;
            }
            if self.only.is_some_and(|only| !only.contains(&phase.name)) {
                summary.phases.push(PhaseTiming {
                    name: phase.name.clone(),
                    status: PhaseStatus::Elsewhere,
                    duration: Duration::ZERO,
                });
                continue;
            }
            if !phase.enabled {
                reporter.report(&LogEvent::PhaseSkipped { phase: &phase.name });
                summary.phases.push(PhaseTiming {
                    name: phase.name.clone(),
                    status: PhaseStatus::Skipped,
                    duration: Duration::ZERO,
                });
                continue;
            }
            reporter.report(&LogEvent::PhaseStarted {
                phase: &phase.name,
                index: index + 1,
                total,
            });
            let phase_started = Instant::now();
            let deadline = phase
                .timeout
                .map(|seconds| phase_started + Duration::from_secs(seconds));
            let phase_origin = phase.origin.as_deref().unwrap_or("plan");
            reporter.report(&LogEvent::Message {
                level: Level::Chatty,
                text: &format!("phase `{}` comes from {phase_origin}", phase.name),
            });
            for (step_index, step) in phase.steps.iter().enumerate() {
                let at = StepLocation {
                    phase: phase.name.clone(),
                    step: step_index + 1,
                    kind: step.kind(),
                    from_stdenv: phase_origin.starts_with("stdenv "),
                };
                // Built-in steps never wait, so let the signal-forwarding task run before looking.
                tokio::task::yield_now().await;
                if let Some(signal) = signals.pending() {
                    result = Err(BuildError::Interrupted { at, signal });
                    break;
                }
                if let (Some(deadline), Some(seconds)) = (deadline, phase.timeout) {
                    if Instant::now() >= deadline {
                        result = Err(BuildError::TimedOut {
                            at,
                            seconds,
                            argv: vec![describe_step(step)],
                        });
                        break;
                    }
                }
                reporter.report(&LogEvent::StepStarted {
                    phase: &phase.name,
                    step: step_index + 1,
                    kind: step.kind(),
                    description: &describe_step(step),
                });
                // Evaluated per step: an `unpack` earlier in the phase moves the working directory.
                let phase_cwd = match &phase.cwd {
                    Some(cwd) => state.workdir.join(cwd),
                    None => state.workdir.clone(),
                };
                let limits = StepLimits {
                    deadline,
                    timeout: phase.timeout,
                };
                let step_result = self
                    .run_step(step, at, &phase_cwd, &mut state, limits, reporter, signals)
                    .await;
                if let Err(error) = step_result {
                    result = Err(error);
                    break;
                }
            }
            let duration = phase_started.elapsed();
            let success = result.is_ok();
            reporter.report(&LogEvent::PhaseFinished {
                phase: &phase.name,
                success,
                seconds: duration.as_secs_f64(),
            });
            summary.phases.push(PhaseTiming {
                name: phase.name.clone(),
                status: if success {
                    PhaseStatus::Succeeded
                } else {
                    PhaseStatus::Failed
                },
                duration,
            });
        }
        // A signal during the last (built-in) step still stops the build.
        tokio::task::yield_now().await;
        if result.is_ok() {
            if let Some(signal) = signals.pending() {
                let last = plan
                    .phases
                    .last()
                    .map(|p| p.name.clone())
                    .unwrap_or_default();
                result = Err(BuildError::Interrupted {
                    at: StepLocation {
                        phase: last,
                        step: 0,
                        kind: "end",
                        from_stdenv: false,
                    },
                    signal,
                });
            }
        }
        summary.duration = started.elapsed();
        let exit_code = match &result {
            Ok(()) => kiln_schema::exit_codes::SUCCESS,
            Err(BuildError::Interrupted { signal, .. }) => {
                kiln_schema::exit_codes::for_signal(*signal as i32)
            }
            Err(_) => kiln_schema::exit_codes::BUILD_FAILED,
        };
        reporter.report(&LogEvent::BuildFinished {
            success: result.is_ok(),
            exit_code,
            seconds: summary.duration.as_secs_f64(),
        });
        summary.resume = Resume {
            workdir: state.workdir,
            env: state
                .env
                .into_iter()
                .filter(|(name, value)| initial_env.get(name) != Some(value))
                .collect(),
        };
        (summary, result)
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_step(
        &self,
        step: &Step,
        at: StepLocation,
        phase_cwd: &Path,
        state: &mut State,
        limits: StepLimits,
        reporter: &mut dyn Reporter,
        signals: &mut SignalEvents,
    ) -> Result<(), BuildError> {
        if !phase_cwd.is_dir() {
            return Err(BuildError::MissingCwd {
                at,
                path: phase_cwd.to_owned(),
            });
        }
        let input_paths: Vec<PathBuf> = match step {
            Step::Fixup(_) => self
                .plan
                .inputs
                .values()
                .flat_map(|input| input.paths().iter().map(PathBuf::from))
                .collect(),
            _ => Vec::new(),
        };
        let context = StepContext {
            cwd: phase_cwd,
            env: &state.env,
            cores: self.cores,
            store_dir: self.store_dir,
            outputs: self.outputs,
            build_top: self.build_top,
            inputs: &input_paths,
        };
        let action = kiln_steps::run(step, &context).map_err(|source| BuildError::Step {
            at: at.clone(),
            source,
        })?;
        let plan = match action {
            Action::Done(effects) => {
                for (level, text) in &effects.messages {
                    reporter.report(&LogEvent::Message {
                        level: *level,
                        text,
                    });
                }
                if let Some(workdir) = effects.workdir {
                    state.workdir = workdir;
                }
                state.env.extend(effects.env);
                return Ok(());
            }
            Action::Spawn(plan) => plan,
        };
        let chosen = if plan.probes.is_empty() {
            plan.choices.into_iter().next()
        } else {
            let mut chosen = None;
            for (probe, choice) in plan.probes.into_iter().zip(plan.choices) {
                if self.probe(&at, probe, &state.env, limits, signals).await? {
                    chosen = Some(choice);
                    break;
                }
            }
            chosen
        };
        let Some(invocation) = chosen else {
            if let Some(text) = &plan.none_found {
                reporter.report(&LogEvent::Message {
                    level: Level::Info,
                    text,
                });
            }
            return Ok(());
        };
        self.spawn(&at, invocation, &state.env, limits, reporter, signals)
            .await
    }

    /// Runs a process to the end, streaming its output; a non-zero exit is an error.
    async fn spawn(
        &self,
        at: &StepLocation,
        process: Invocation,
        env: &BTreeMap<String, String>,
        limits: StepLimits,
        reporter: &mut dyn Reporter,
        signals: &mut SignalEvents,
    ) -> Result<(), BuildError> {
        let outcome = self
            .run_process(at, &process, env, limits, signals, &mut |line| {
                let output = match std::str::from_utf8(line) {
                    Ok(text) => Output::Text(text),
                    Err(_) => Output::Bytes(line),
                };
                reporter.report(&LogEvent::Output(output));
            })
            .await?;
        self.check_outcome(at, outcome, process.argv, limits)
    }

    /// Runs a process with its output discarded; returns whether it exited 0.
    async fn probe(
        &self,
        at: &StepLocation,
        process: Invocation,
        env: &BTreeMap<String, String>,
        limits: StepLimits,
        signals: &mut SignalEvents,
    ) -> Result<bool, BuildError> {
        let outcome = self
            .run_process(at, &process, env, limits, signals, &mut |_| {})
            .await?;
        match outcome {
            ChildOutcome::Exited(code) => Ok(code == 0),
            ChildOutcome::Signaled(_) => Ok(false),
            other => self
                .check_outcome(at, other, process.argv, limits)
                .map(|()| false),
        }
    }

    /// Starts `process` in its own group and waits for it, each line of its output to
    /// `on_line`; a process that cannot start is a [`BuildError::Spawn`].
    async fn run_process(
        &self,
        at: &StepLocation,
        process: &Invocation,
        env: &BTreeMap<String, String>,
        limits: StepLimits,
        signals: &mut SignalEvents,
        on_line: &mut dyn FnMut(&[u8]),
    ) -> Result<ChildOutcome, BuildError> {
        let spec = self.child_spec(at, process, env)?;
        run_child(&spec, self.run_limits(limits), signals, on_line)
            .await
            .map_err(|source| BuildError::Spawn {
                at: at.clone(),
                program: spec.program.clone(),
                source,
            })
    }

    fn run_limits(&self, limits: StepLimits) -> RunLimits {
        RunLimits {
            deadline: limits.deadline,
            grace: self.options.grace,
            max_line: crate::run::process::MAX_LINE,
        }
    }

    fn child_spec(
        &self,
        at: &StepLocation,
        process: &Invocation,
        env: &BTreeMap<String, String>,
    ) -> Result<ChildSpec, BuildError> {
        if !process.cwd.is_dir() {
            return Err(BuildError::MissingCwd {
                at: at.clone(),
                path: process.cwd.clone(),
            });
        }
        let mut step_env = env.clone();
        step_env.extend(process.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        // `PWD` is a string here; a working directory that is not UTF-8 cannot be said exactly,
        // and a lossy one would send whoever trusts `PWD` to another directory. Without it,
        // shells and tools ask the kernel (getcwd(3)), which is exact.
        match process.cwd.to_str() {
            Some(cwd) => step_env.insert("PWD".into(), cwd.to_owned()),
            None => step_env.remove("PWD"),
        };
        let Some(program_name) = process.argv.first() else {
            return Err(BuildError::ProgramNotFound {
                at: at.clone(),
                program: String::new(),
                path: String::new(),
            });
        };
        let path_var = step_env.get("PATH").map(String::as_str);
        let Some(program) = find_program(program_name, path_var, &process.cwd) else {
            return Err(BuildError::ProgramNotFound {
                at: at.clone(),
                program: program_name.clone(),
                path: path_var.unwrap_or_default().to_owned(),
            });
        };
        let stdout = match &process.stdout {
            Some(path) => {
                let opened =
                    std::fs::File::create(path).map_err(|source| BuildError::StdoutFile {
                        at: at.clone(),
                        path: path.clone(),
                        source,
                    })?;
                Some(std::sync::Arc::new(opened))
            }
            None => None,
        };
        Ok(ChildSpec {
            program,
            argv: process.argv.clone(),
            env: step_env,
            cwd: process.cwd.clone(),
            stdout,
        })
    }

    fn check_outcome(
        &self,
        at: &StepLocation,
        outcome: ChildOutcome,
        argv: Vec<String>,
        limits: StepLimits,
    ) -> Result<(), BuildError> {
        let at = at.clone();
        match outcome {
            ChildOutcome::Exited(0) => Ok(()),
            ChildOutcome::TimedOut => Err(BuildError::TimedOut {
                at,
                seconds: limits.timeout.unwrap_or_default(),
                argv,
            }),
            ChildOutcome::Interrupted(signal) => Err(BuildError::Interrupted { at, signal }),
            outcome => Err(BuildError::StepFailed { at, argv, outcome }),
        }
    }
}

/// The phase's deadline and timeout, for the step's processes.
#[derive(Debug, Clone, Copy)]
struct StepLimits {
    deadline: Option<Instant>,
    timeout: Option<u64>,
}
