//! Why a local build did not complete, and its exit code.

use std::path::PathBuf;

use kiln_state::StateError;
use thiserror::Error;

use crate::local::inner::PhaseFailure;

/// Why a local build did not complete.
#[derive(Debug, Error)]
pub enum LocalError {
    /// A phase failed (inside the sandbox or in process).
    #[error("{}", failure.message.first().map(String::as_str).unwrap_or("a phase failed"))]
    Phase {
        /// What failed.
        failure: PhaseFailure,
    },
    /// The sandbox could not run the phase.
    #[error("the sandbox for phase `{phase}` ended without a result ({outcome})")]
    Sandbox {
        /// The phase.
        phase: String,
        /// Whether the sandbox could not be set up (else the runner inside died).
        setup: bool,
        /// How the sandbox ended.
        outcome: String,
    },
    /// The sandbox cannot be set up at all.
    #[error(transparent)]
    SandboxUnavailable(#[from] kiln_sandbox::SandboxError),
    /// Writing the request or reading the response failed.
    #[error("cannot exchange the phase request with the sandbox through `{}`", path.display())]
    Exchange {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A state could not be restored.
    #[error("cannot restore the state `{}`", path.display())]
    Restore {
        /// The state directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: StateError,
    },
    /// A state archive belongs to another plan.
    #[error("the state `{}` was made by a different plan (up to phase `{phase}`)", path.display())]
    PlanMismatch {
        /// The state directory.
        path: PathBuf,
        /// Its last phase.
        phase: String,
    },
    /// The cache holds no usable state to start at a phase.
    #[error("no cached state to start at phase `{phase}`: phase `{previous}` has {why}")]
    NotCached {
        /// Where the build was asked to start.
        phase: String,
        /// The phase whose state is needed.
        previous: String,
        /// `no cached state` or `a cached state of another plan`.
        why: String,
    },
    /// A state could not be cached.
    #[error("cannot cache the state after phase `{phase}` in `{}`", path.display())]
    Cache {
        /// The phase.
        phase: String,
        /// The cache entry.
        path: PathBuf,
        /// Why.
        #[source]
        source: StateError,
    },
    /// A directory could not be set up or an output could not be moved into place.
    #[error("cannot {what} `{}`", path.display())]
    Io {
        /// What kiln was doing.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The async runtime could not start.
    #[error("cannot start the runtime")]
    Runtime(#[source] std::io::Error),
    /// A tree could not be handed to the build user (kiln runs as root).
    #[error(transparent)]
    Owner(kiln_sandbox::OwnerError),
}

impl LocalError {
    /// The documented exit code of a failed local build: a failed phase 1 (or `128 + n` when
    /// kiln was stopped by signal `n`), a missing or mismatched state 2, the runner dying during
    /// a phase 1, any other set-up problem 3.
    pub fn exit_code(&self) -> i32 {
        use kiln_schema::exit_codes;
        match self {
            LocalError::Phase { failure } => match failure.signal {
                Some(signal) => exit_codes::for_signal(signal),
                None => exit_codes::BUILD_FAILED,
            },
            LocalError::Restore { .. }
            | LocalError::PlanMismatch { .. }
            | LocalError::NotCached { .. } => exit_codes::INVALID_INPUT,
            // The runner inside died during the phase (killed by a step, out of memory).
            LocalError::Sandbox { setup: false, .. } => exit_codes::BUILD_FAILED,
            _ => exit_codes::SETUP_FAILED,
        }
    }

    /// The failure of a phase, when that is what happened.
    pub fn phase_failure(&self) -> Option<&PhaseFailure> {
        match self {
            LocalError::Phase { failure } => Some(failure),
            _ => None,
        }
    }
}

/// Why a local command could not start, or stopped before its phases ran.
#[derive(Debug, Error)]
pub enum SessionError {
    /// What the command asked for does not fit the plan or this machine (an option, a path, a
    /// phase range); the text says what and what to do.
    #[error("{0}")]
    Request(String),
    /// A phase named on the command line does not exist.
    #[error("{option} {name}: the plan has no such phase")]
    UnknownPhase {
        /// The option (`--from`, `--at`, …).
        option: String,
        /// The name given.
        name: String,
        /// The plan's phases.
        existing: Vec<String>,
    },
    /// The plan could not be resolved with the local paths.
    #[error(transparent)]
    Load(#[from] crate::setup::load::LoadError),
    /// A directory could not be created, or an output exists already.
    #[error(transparent)]
    Setup(#[from] crate::run::build::SetupError),
    /// A state archive could not be read.
    #[error(transparent)]
    State(#[from] StateError),
    /// kiln's sandbox cannot run on this machine.
    #[error(transparent)]
    Sandbox(#[from] kiln_sandbox::SandboxError),
    /// A file operation of the session itself failed.
    #[error("cannot {what} `{}`", path.display())]
    Io {
        /// What kiln was doing (`move the finished output to`).
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The local build of plan `name` failed.
    #[error("{error}")]
    Local {
        /// The plan's name.
        name: String,
        /// What failed.
        error: LocalError,
    },
}
