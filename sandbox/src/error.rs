//! Why a sandbox could not be set up: [`SandboxError`], one variant per failed operation, and
//! [`SetupError`], a failed step while the sandbox's root is assembled.
//!
//! Variants caused by the operating system carry the underlying error as their `#[source]`, so
//! a caller renders `error: ...` followed by `caused by: ...` lines; messages never repeat the
//! source. [`SandboxError::hint`] says what to do next where kiln can tell (see [`Hint`]).

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;

use crate::hint::Hint;

/// Setting up or entering a sandbox failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// A path in the [`SandboxConfig`](crate::SandboxConfig) cannot be used.
    #[error("`{path}` cannot be used in the sandbox: {problem}")]
    Config {
        /// The offending path, as configured.
        path: PathBuf,
        /// What is wrong with it.
        problem: ConfigProblem,
    },

    /// The configured hostname is empty or longer than the kernel allows.
    #[error("`{hostname}` cannot be the sandbox's hostname: it must be 1 to 64 bytes")]
    Hostname {
        /// The configured hostname.
        hostname: String,
    },

    /// A host path to mount in the sandbox cannot be inspected (usually: it does not exist).
    #[error("cannot use the host path `{path}` in the sandbox")]
    HostPath {
        /// The host path, as configured.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// `unshare(2)` refused to create the namespaces.
    #[error("cannot create the sandbox's user, mount, pid, network, uts and ipc namespaces")]
    Namespaces {
        /// Why it failed.
        #[source]
        source: io::Error,
        /// What to do about it.
        hint: Hint,
    },

    /// Writing the new user namespace's `setgroups`, `uid_map` or `gid_map` failed.
    #[error("cannot map the build user into the sandbox (writing `{file}`)")]
    IdMap {
        /// The `/proc/self/...` file being written.
        file: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
        /// What to do about it.
        hint: Hint,
    },

    /// A step of assembling the sandbox's root failed.
    #[error(transparent)]
    Setup(#[from] SetupError),

    /// `fork(2)` failed when creating the sandbox's PID 1.
    #[error("cannot create the sandbox's init process")]
    Fork {
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// The working directory is not a directory inside the sandbox.
    #[error("the working directory `{path}` is not a directory inside the sandbox")]
    Cwd {
        /// The inside path.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// The command could not be started inside the sandbox.
    #[error("cannot run `{program}` in the sandbox")]
    Exec {
        /// The program, as given.
        program: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// Waiting for a process of the sandbox failed.
    #[error("cannot wait for the sandbox's processes")]
    Wait {
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// The process that started the sandbox exited before the sandbox was set up.
    #[error("the process that started the sandbox has exited")]
    ParentExited,

    /// The hidden `__sandbox-init` subcommand got arguments it does not understand.
    #[error("invalid `__sandbox-init` arguments: {reason}")]
    InitArgs {
        /// What is wrong.
        reason: String,
    },

    /// [`probe`](crate::probe) could not start the sandbox helper.
    #[error("cannot run `{exe}` to probe the sandbox")]
    ProbeSpawn {
        /// The executable that was to be re-executed.
        exe: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// [`probe`](crate::probe) found that a sandbox cannot be set up here.
    #[error("the sandbox is unavailable: {message}")]
    Unavailable {
        /// The helper's description of the failed step.
        message: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
        /// What to do about it, when kiln can tell.
        hint: Option<Hint>,
    },

    /// [`probe`](crate::probe)'s helper failed without saying why in the expected form.
    #[error("the sandbox probe failed ({status}): {stderr}")]
    ProbeFailed {
        /// How the helper exited.
        status: ExitStatus,
        /// What it wrote on stderr.
        stderr: String,
    },
}

impl SandboxError {
    /// What the user can do about this error, when kiln can tell.
    pub fn hint(&self) -> Option<&Hint> {
        match self {
            SandboxError::Namespaces { hint, .. } | SandboxError::IdMap { hint, .. } => Some(hint),
            SandboxError::Setup(error) => error.hint.as_ref(),
            SandboxError::Unavailable { hint, .. } => hint.as_ref(),
            _ => None,
        }
    }

    /// The operating system's error number behind this error, if there is one.
    pub fn errno(&self) -> Option<i32> {
        let source: &io::Error = match self {
            SandboxError::HostPath { source, .. }
            | SandboxError::Namespaces { source, .. }
            | SandboxError::IdMap { source, .. }
            | SandboxError::Fork { source }
            | SandboxError::Cwd { source, .. }
            | SandboxError::Exec { source, .. }
            | SandboxError::Wait { source }
            | SandboxError::ProbeSpawn { source, .. }
            | SandboxError::Unavailable { source, .. } => source,
            SandboxError::Setup(error) => &error.source,
            _ => return None,
        };
        source.raw_os_error()
    }

    /// The error as kiln prints it: `error: ...`, `caused by: ...` lines, and a `hint: ...`
    /// after a blank line when there is one.
    pub fn render(&self) -> String {
        let mut text = format!("error: {self}\n");
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(&format!("caused by: {cause}\n"));
            source = cause.source();
        }
        if let Some(hint) = self.hint() {
            text.push_str(&format!("\nhint: {hint}\n"));
        }
        text
    }
}

/// What is wrong with a configured path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigProblem {
    /// It is relative.
    NotAbsolute,
    /// It contains `.` or `..` components.
    NotNormal,
    /// The sandbox provides this inside path itself (`/`, `/proc`, `/dev`, `/tmp`, ...).
    Reserved,
    /// Another entry already uses this inside path.
    Duplicate,
    /// The build directory is the host's root.
    HostRoot,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigProblem::NotAbsolute => "it is not an absolute path",
            ConfigProblem::NotNormal => "it contains `.` or `..` components",
            ConfigProblem::Reserved => "the sandbox provides this path itself",
            ConfigProblem::Duplicate => "another entry is already mounted there",
            ConfigProblem::HostRoot => "the build directory cannot be the host's root",
        })
    }
}

/// One step of assembling the sandbox's root failed, at `path`.
#[derive(Debug, thiserror::Error)]
#[error("cannot {step} `{path}`")]
pub struct SetupError {
    /// What was being done.
    pub step: SetupStep,
    /// Where (an inside path once the root is pivoted, a host path before).
    pub path: PathBuf,
    /// Why it failed.
    #[source]
    pub source: io::Error,
    /// What to do about it, when kiln can tell.
    pub hint: Option<Hint>,
}

/// The steps of assembling the sandbox's root, for [`SetupError`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SetupStep {
    /// Making every mount private to the new mount namespace.
    MakePrivate,
    /// Mounting a tmpfs.
    MountTmpfs,
    /// Mounting a fresh `/proc`.
    MountProc,
    /// Mounting a fresh `devpts` instance.
    MountDevpts,
    /// Bind-mounting a host path (the source).
    Bind {
        /// The host path being mounted.
        source: PathBuf,
    },
    /// Making a mount read-only.
    RemountReadOnly,
    /// Reading a mount's flags or its submounts.
    InspectMount,
    /// Creating a mount point.
    CreateMountPoint,
    /// Creating a symlink.
    Symlink,
    /// Writing a file.
    WriteFile,
    /// Switching to the new root.
    PivotRoot,
    /// Detaching the host's file system from the sandbox.
    DetachHost,
    /// Changing directory.
    Chdir,
    /// Setting the hostname.
    SetHostname,
    /// Bringing the loopback interface up.
    LoopbackUp,
    /// Setting a process attribute (`prctl(2)`, signal mask).
    ProcessAttribute,
}

impl fmt::Display for SetupStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupStep::MakePrivate => f.write_str("make the mounts private under"),
            SetupStep::MountTmpfs => f.write_str("mount a tmpfs at"),
            SetupStep::MountProc => f.write_str("mount a fresh proc at"),
            SetupStep::MountDevpts => f.write_str("mount a fresh devpts at"),
            SetupStep::Bind { source } => write!(f, "bind-mount `{}` at", source.display()),
            SetupStep::RemountReadOnly => f.write_str("make read-only the mount at"),
            SetupStep::InspectMount => f.write_str("inspect the mount at"),
            SetupStep::CreateMountPoint => f.write_str("create the mount point"),
            SetupStep::Symlink => f.write_str("create the symlink"),
            SetupStep::WriteFile => f.write_str("write"),
            SetupStep::PivotRoot => f.write_str("switch the root to"),
            SetupStep::DetachHost => f.write_str("detach the host's file system at"),
            SetupStep::Chdir => f.write_str("change directory to"),
            SetupStep::SetHostname => f.write_str("set the hostname to"),
            SetupStep::LoopbackUp => f.write_str("bring up the loopback interface"),
            SetupStep::ProcessAttribute => f.write_str("set a process attribute:"),
        }
    }
}
