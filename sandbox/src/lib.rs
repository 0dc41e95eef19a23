//! kiln's local sandbox: runs one build step the way Nix's sandbox would, without Nix.
//!
//! The command runs in fresh user, mount, pid, network, uts and ipc namespaces, as the build
//! user (`nixbld`, uid 1000, gid 100 by default) with no capabilities; it sees a read-only
//! root holding only the store paths and host paths it was given (read-only), its build
//! directory at `/build` and its outputs (writable), a fresh `/proc`, a minimal `/dev`, an
//! empty `/tmp`, the loopback interface and nothing else of the network, the hostname
//! `localhost`, and exactly the environment the caller sets. See [`SandboxConfig`] and
//! [`Layout`] for what goes where.
//!
//! The API has two halves, joined by re-executing the caller's own binary:
//!
//! - the parent calls [`sandboxed_command`], which returns a [`std::process::Command`] that
//!   runs `SELF __sandbox-init ARGS...` (the arguments are described in the `wire` module);
//! - the binary's `main` hands those arguments to [`init_main`] before doing anything else;
//!   it sets the sandbox up, runs the command, and exits with its status.
//!
//! [`probe`] tells whether this host allows sandboxes at all and, when not, why and how to fix
//! it ([`Hint`]). The system calls sit behind the [`Sys`] trait, so that the mount sequence is
//! tested without root.
//!
//! # Example
//!
//! ```no_run
//! use std::path::Path;
//! use kiln_sandbox::{init_main, sandboxed_command, SandboxConfig, INIT_SUBCOMMAND};
//!
//! fn main() {
//!     let args: Vec<_> = std::env::args_os().collect();
//!     if args.get(1).is_some_and(|arg| arg == INIT_SUBCOMMAND) {
//!         init_main(&args[2..]);
//!     }
//!
//!     let mut config = SandboxConfig::new("/tmp/kiln-build-hello");
//!     config.lend = ["/bin", "/usr", "/lib", "/lib64"].map(Into::into).to_vec();
//!     let self_exe = std::env::current_exe().unwrap();
//!     let status = sandboxed_command(
//!         &self_exe,
//!         &config,
//!         Path::new("/usr/bin/id"),
//!         &["id".to_owned()],
//!         Path::new("/build"),
//!     )
//!     .unwrap()
//!     .env("PATH", "/usr/bin")
//!     .status()
//!     .unwrap();
//!     assert!(status.success()); // printed `uid=1000(nixbld) gid=100(nixbld) ...`
//! }
//! ```

#![warn(missing_docs)]

mod command;
mod config;
mod error;
mod hint;
mod init;
mod layout;
mod mount;
mod owner;
mod sys;
mod wire;

pub use command::{probe, sandboxed_command};
pub use config::{
    build_owner, SandboxConfig, HOST_BUILD_ID, SANDBOX_BUILD_DIR, SANDBOX_GID, SANDBOX_HOSTNAME,
    SANDBOX_UID,
};
pub use error::{ConfigProblem, SandboxError, SetupError, SetupStep};
pub use hint::Hint;
pub use init::init_main;
pub use layout::{BindMode, Entry, Layout};
pub use owner::{hand_over, take_back, OwnerError};
pub use sys::{FileKind, LinuxSys, Sys};

/// The hidden subcommand that reaches [`init_main`]: `SELF __sandbox-init ARGS...`.
pub const INIT_SUBCOMMAND: &str = "__sandbox-init";

/// Exit code of the sandbox's process when the sandbox could not be set up (as `env` and
/// container runtimes use it); `error: ...` is on its stderr.
pub const EXIT_SETUP_FAILED: i32 = 125;

/// Exit code when the command exists inside the sandbox but cannot be executed.
pub const EXIT_NOT_EXECUTABLE: i32 = 126;

/// Exit code when the command does not exist inside the sandbox.
pub const EXIT_NOT_FOUND: i32 = 127;
