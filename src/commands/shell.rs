//! `kiln shell PLAN --at PHASE`: an interactive shell where a phase starts, in the sandbox,
//! after restoring (or running) the phases before it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kiln_builder::local::{reach_phase, Directories, Interrupts, Session};
use kiln_builder::setup::env::find_program;

use super::{load, session_request};
use crate::cli::ShellArgs;
use crate::error::CliError;
use crate::report::Sink;

/// `kiln shell --at PHASE`.
pub fn shell(args: &ShellArgs, sink: &mut Sink) -> Result<(), CliError> {
    let request = session_request(
        &args.layout,
        &args.local,
        Duration::from_secs(5),
        Directories::LastBuild,
    );
    let mut session = Session::new(load(&args.source)?, request)?;
    let at = session.at_index(&args.at)?;
    session.check_empty_build_dir()?;
    session.check_isolation(sink)?;
    let name = session.prepared.plan.name.clone();
    let mut interrupts = Interrupts::install().map_err(|error| CliError::Local {
        name: name.clone(),
        error,
        notes: Vec::new(),
    })?;
    let dirs = session.create_dirs()?;
    let local = session.build(&dirs);
    let resume = match reach_phase(&local, &session, at, sink, &mut interrupts) {
        Ok(resume) => resume,
        Err(error) => {
            dirs.remove_staging();
            sink.finish()?;
            return Err(CliError::Local {
                name,
                error,
                notes: vec![format!(
                    "the build directory is kept at `{}`",
                    dirs.host.build_top.display()
                )],
            });
        }
    };
    sink.finish()?;
    if session.options.sandbox {
        if let Err(error) = local.hand_over_to_build_user() {
            dirs.remove_staging();
            return Err(CliError::Local {
                name,
                error,
                notes: Vec::new(),
            });
        }
    }
    let (cwd, env) = local.phase_start(at, resume.as_ref());
    let shell = match &args.shell {
        Some(shell) => shell.clone(),
        None => {
            let path = env.get("PATH").map(String::as_str);
            find_program("bash", path, Path::new("/"))
                .or_else(|| find_program("sh", path, Path::new("/")))
                .ok_or_else(|| {
                    CliError::Usage(format!(
                        "no `bash` or `sh` on the PATH of phase `{}` ({}); name one with `--shell`",
                        args.at,
                        path.unwrap_or("")
                    ))
                })?
        }
    };
    eprintln!(
        "kiln: shell at the start of phase `{}` of `{name}` in `{}`{}; `exit` leaves it",
        args.at,
        cwd.display(),
        if session.options.sandbox {
            " (sandboxed)"
        } else {
            " (NOT sandboxed)"
        }
    );
    let argv = vec![shell.display().to_string()];
    let mut sandboxed = || -> Result<_, CliError> {
        let mut config = local.sandbox_config().clone();
        config.controlling_terminal = true;
        let mut command = kiln_sandbox::sandboxed_command(
            &session.options.self_exe,
            &config,
            &shell,
            &argv,
            &cwd,
        )
        .map_err(CliError::Sandbox)?;
        // Its own terminal, never the caller's (see `crate::terminal`).
        let pty_error = |source| CliError::Io {
            what: "open a pseudo-terminal for the shell",
            path: PathBuf::from("/dev/ptmx"),
            source,
        };
        let pty = crate::terminal::Pty::open().map_err(pty_error)?;
        let stream = || pty.secondary.try_clone().map(std::process::Stdio::from);
        command
            .envs(&env)
            .stdin(stream().map_err(pty_error)?)
            .stdout(stream().map_err(pty_error)?)
            .stderr(stream().map_err(pty_error)?);
        let relay = pty.relay().map_err(pty_error)?;
        let status = interrupts.wait_interactive(command);
        relay.finish();
        Ok(status)
    };
    let status = if session.options.sandbox {
        match sandboxed() {
            Ok(status) => status,
            Err(error) => {
                dirs.remove_staging();
                return Err(error);
            }
        }
    } else {
        let mut command = std::process::Command::new(&shell);
        command.env_clear().envs(&env).current_dir(&cwd);
        interrupts.wait_interactive(command)
    };
    dirs.remove_staging();
    if dirs.temporary && !args.keep_build_dir {
        dirs.remove_build_dir();
    } else {
        eprintln!(
            "kiln: the build directory is kept at `{}`",
            dirs.host.build_top.display()
        );
    }
    let status = status.map_err(|source| CliError::Io {
        what: "start the shell",
        path: shell.clone(),
        source,
    })?;
    let (status, stopped_by) = status;
    if let Some(signal) = stopped_by {
        // kiln was told to stop and stopped the shell.
        return Err(CliError::Exit(kiln_schema::exit_codes::for_signal(
            signal as i32,
        )));
    }
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(0), _) | (None, None) => Ok(()),
        (Some(code), _) => Err(CliError::Exit(code)),
        (None, Some(signal)) => Err(CliError::Exit(kiln_schema::exit_codes::for_signal(signal))),
    }
}
