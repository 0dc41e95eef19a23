//! Local mode: a plan's phases run without Nix, each in a fresh sandbox, with the state after
//! each phase cached so that later runs can start at any phase.
//!
//! The plan is resolved with the paths the build sees *inside* the sandbox (the build directory
//! at `/build`, each output at its path), and the sandbox binds the host directories behind
//! them: a fresh build directory, and a staging directory standing in for the outputs' parent.
//! Outputs move to their final place only when every phase succeeded. Each phase is one run of
//! `kiln __run-phases` ([`crate::local::inner`]) in its own sandbox; its events are relayed to the
//! caller's reporter ([`crate::local::relay`]), so a build reads as one stream.
//!
//! After each successful phase the build directory and the partial outputs are packed into the
//! [`StateCache`] (a `kiln-state` archive) under a key that hashes the plan up to that phase,
//! the paths it was resolved with and the sandbox's make-up. `--from PHASE` restores the state
//! of the phase before, so a fixed `check` re-runs without rebuilding; changing an earlier
//! phase changes the key and the cached state no longer matches.
//!
//! `--no-sandbox` runs the phases in kiln's own process instead, on host paths, with the same
//! caching.
//!
//! The module's parts: [`Session`] turns what a local command was asked into a prepared plan
//! and host directories (`session.rs`); [`PhaseRange`] picks the phases to run and says how to
//! resume (`range.rs`); [`LocalBuild`] runs them (`runner.rs`, in the sandbox through
//! [`inner`] and [`relay`]); [`StateCache`] keeps the state after each (`cache.rs`);
//! [`Interrupts`] queues kiln's signals for the whole command (`interrupts.rs`).

mod cache;
mod dirs;
mod error;
pub mod inner;
mod interrupts;
mod range;
pub mod relay;
mod runner;
mod session;

pub use cache::{LastBuild, StateCache};
pub use dirs::CreatedDirs;
pub use error::{LocalError, SessionError};
pub use interrupts::Interrupts;
pub use range::{reach_phase, resume_command, stop_if_interrupted, PhaseRange, Resuming};
pub use runner::{HostDirs, LocalBuild, LocalOptions, RunOutcome};
pub use session::{
    default_cache_root, Directories, EnvironmentSource, PhaseEnvironment, Session, SessionRequest,
    DEFAULT_OUT_DIR,
};

use crate::report::Reporter;
use inner::{REQUEST_FILE, RESPONSE_FILE};

/// Files kiln itself puts into the build directory; never part of a state.
pub const KILN_FILES: &[&str] = &[REQUEST_FILE, RESPONSE_FILE];

/// Where the build directory appears inside the sandbox.
pub const SANDBOX_BUILD_TOP: &str = kiln_sandbox::SANDBOX_BUILD_DIR;

/// Reporter of a local build: every event, and the phases restored from a cached state instead
/// of being run.
pub trait LocalReporter: Reporter {
    /// `phase` was not run: its result came from a cached state, restored in `seconds`.
    fn phase_restored(&mut self, phase: &str, seconds: f64);
}
