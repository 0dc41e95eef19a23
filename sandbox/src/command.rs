//! The parent side: [`sandboxed_command`], a [`Command`] that runs a program in a fresh
//! sandbox by re-executing kiln's own binary as `__sandbox-init`, and [`probe`], which tries
//! one empty sandbox to tell whether this host allows them.
//!
//! The re-exec keeps the parent free of `pre_exec` code (nextest's double-spawn does the same
//! for its own setup): everything that needs a single-threaded, freshly started process
//! happens in [`init_main`](crate::init_main).

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{ConfigProblem, SandboxError};
use crate::hint::Hint;
use crate::init::PROBE_FAILURE;
use crate::layout::Layout;
use crate::sys::LinuxSys;
use crate::wire::InitArgs;
use crate::{SandboxConfig, INIT_SUBCOMMAND};

/// A [`Command`] that runs `program` with `argv` (`argv[0]` included) inside a fresh sandbox
/// described by `config`, in the inside directory `cwd_inside`.
///
/// `self_exe` is the binary whose `main` hands `__sandbox-init` to
/// [`init_main`](crate::init_main) (kiln itself). `program` is exec'd as is inside the
/// sandbox, so it names an inside path (or a name searched in the command's `PATH`).
///
/// The command's environment is cleared: set the step's environment with
/// [`Command::env`]/[`Command::envs`] and nothing else reaches the sandbox. Standard streams,
/// the process group ([`CommandExt::process_group`](std::os::unix::process::CommandExt)) and
/// `kill_on_drop` behave as for any command. Signal the whole process group to stop the step:
/// the command receives the signal and the sandbox reports how it ended, while SIGKILL to the
/// returned command's process alone tears the whole sandbox down. Spawn it from a thread
/// that outlives the child, since the sandbox dies with the thread that spawned it
/// (`PR_SET_PDEATHSIG`).
///
/// The child exits with the command's exit code, 128 + the signal that killed it, or
/// [`EXIT_SETUP_FAILED`](crate::EXIT_SETUP_FAILED) (125),
/// [`EXIT_NOT_EXECUTABLE`](crate::EXIT_NOT_EXECUTABLE) (126) or
/// [`EXIT_NOT_FOUND`](crate::EXIT_NOT_FOUND) (127) with `error: ...` on its stderr when the
/// sandbox or the command could not start.
///
/// # Errors
///
/// Checks `config` first ([`SandboxError::Config`], [`SandboxError::Hostname`],
/// [`SandboxError::HostPath`] for missing host paths), so that most mistakes are reported
/// here rather than by the child.
pub fn sandboxed_command(
    self_exe: &Path,
    config: &SandboxConfig,
    program: &Path,
    argv: &[String],
    cwd_inside: &Path,
) -> Result<Command, SandboxError> {
    Layout::new(config, &LinuxSys)?;
    if !cwd_inside.is_absolute() {
        return Err(SandboxError::Config {
            path: cwd_inside.to_owned(),
            problem: ConfigProblem::NotAbsolute,
        });
    }
    let argv: Vec<OsString> = if argv.is_empty() {
        vec![program.as_os_str().to_owned()]
    } else {
        argv.iter().map(OsString::from).collect()
    };
    let args = InitArgs {
        config: config.clone(),
        program: program.to_owned(),
        argv,
        cwd: cwd_inside.to_owned(),
        parent_pid: Some(std::process::id()),
        probe: false,
    };
    let mut command = Command::new(self_exe);
    command
        .arg(INIT_SUBCOMMAND)
        .args(args.to_args())
        .env_clear()
        // The init's own directory; the command's is `cwd_inside`.
        .current_dir("/");
    Ok(command)
}

/// Whether sandboxes work on this host: sets one up (namespaces, id maps, mounts, hostname,
/// loopback) around nothing, through `self_exe` as [`sandboxed_command`] does.
///
/// # Errors
///
/// [`SandboxError::Unavailable`] with the failed step, the operating system's error and a
/// [`Hint`] that says how to fix it (a sysctl to set, a container option) when kiln can tell.
pub fn probe(self_exe: &Path) -> Result<(), SandboxError> {
    let scratch = std::env::temp_dir();
    let args = InitArgs {
        config: SandboxConfig::new(&scratch),
        program: PathBuf::new(),
        argv: Vec::new(),
        cwd: PathBuf::from("/"),
        parent_pid: Some(std::process::id()),
        probe: true,
    };
    let output = Command::new(self_exe)
        .arg(INIT_SUBCOMMAND)
        .args(args.to_args())
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|source| SandboxError::ProbeSpawn {
            exe: self_exe.to_owned(),
            source,
        })?;
    if output.status.success() {
        return Ok(());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    match stdout.lines().find_map(parse_failure) {
        Some(error) => Err(error),
        None => Err(SandboxError::ProbeFailed {
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        }),
    }
}

/// Reads the line a probing init prints on failure:
/// `kiln-sandbox-unavailable <TAB> errno <TAB> hint-key or - <TAB> message`.
fn parse_failure(line: &str) -> Option<SandboxError> {
    let mut fields = line.splitn(4, '\t');
    if fields.next()? != PROBE_FAILURE {
        return None;
    }
    let errno: i32 = fields.next()?.parse().ok()?;
    let hint = Hint::from_key(fields.next()?);
    let message = fields.next()?.to_owned();
    let source = if errno == 0 {
        io::Error::other("no operating-system error")
    } else {
        io::Error::from_raw_os_error(errno)
    };
    Some(SandboxError::Unavailable {
        message,
        source,
        hint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_failure_lines() {
        let line = "kiln-sandbox-unavailable\t1\tcontainer\tcannot create the sandbox's namespaces";
        match parse_failure(line) {
            Some(SandboxError::Unavailable {
                message,
                source,
                hint,
            }) => {
                assert_eq!(message, "cannot create the sandbox's namespaces");
                assert_eq!(source.raw_os_error(), Some(1));
                assert_eq!(hint, Some(Hint::Container));
            }
            other => panic!("{other:?}"),
        }
        assert!(parse_failure("something else\t1\t-\tx").is_none());
        assert!(matches!(
            parse_failure("kiln-sandbox-unavailable\t0\t-\tx"),
            Some(SandboxError::Unavailable { hint: None, .. })
        ));
    }

    #[test]
    fn checks_the_config_before_spawning() {
        let build = std::env::temp_dir();
        let mut config = SandboxConfig::new(&build);
        config.lend = vec!["/nonexistent/kiln-sandbox".into()];
        let result = sandboxed_command(
            Path::new("/bin/true"),
            &config,
            Path::new("/bin/true"),
            &[],
            Path::new("/build"),
        );
        assert!(matches!(result, Err(SandboxError::HostPath { .. })));

        let config = SandboxConfig::new(&build);
        let result = sandboxed_command(
            Path::new("/bin/true"),
            &config,
            Path::new("/bin/true"),
            &[],
            Path::new("build"),
        );
        assert!(matches!(
            result,
            Err(SandboxError::Config {
                problem: ConfigProblem::NotAbsolute,
                ..
            })
        ));
    }
}
