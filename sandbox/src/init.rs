//! The child side: [`init_main`], reached through the hidden `__sandbox-init` subcommand, which
//! creates the namespaces, becomes the sandbox's PID 1, assembles the root and runs the
//! command.
//!
//! Two processes, so that the one the caller waits for stays in the caller's pid namespace:
//!
//! - **the init** (the process the caller spawned) drops root's supplementary groups, unshares
//!   the user, mount, pid, network, uts and ipc namespaces, maps the build user, and forks.
//!   It then waits for PID 1 and exits with its status. It blocks SIGINT, SIGTERM, SIGHUP and
//!   SIGQUIT so that a signal sent to the whole process group (as kiln's executor sends it)
//!   reaches the command and the init survives to report how the command ended.
//! - **PID 1** (the fork, the first process of the new pid namespace) assembles the root
//!   ([`enter_root`](crate::mount::enter_root)), sets the hostname, brings `lo` up, and runs
//!   the command. It reaps every process of the sandbox and exits with the command's status,
//!   or 128 + the signal that killed it. When PID 1 exits the kernel kills everything left in
//!   its pid namespace (pid_namespaces(7)), so nothing survives the sandbox.
//!
//! Both set `PR_SET_PDEATHSIG` to SIGKILL, so they die with their parent: the caller, or the
//! init. Setup failures print `error: ...` on stderr and exit with
//! [`EXIT_SETUP_FAILED`](crate::EXIT_SETUP_FAILED).
//!
//! The capabilities the mounts need come from creating the user namespace and last until
//! `execve(2)` of a program whose uid in the namespace is not 0 (capabilities(7), "Effect of
//! user ID changes"); hence a `fork(2)`, not a re-exec, between the init and PID 1, and the
//! command starts with no capabilities at all.

use std::convert::Infallible;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::prctl;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Pid};

use crate::error::{SandboxError, SetupError, SetupStep};
use crate::hint::{diagnose, Failure, HostFacts};
use crate::layout::Layout;
use crate::mount;
use crate::sys::{LinuxSys, Sys};
use crate::wire::InitArgs;
use crate::{EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, EXIT_SETUP_FAILED};

/// The first word of the line a probing init prints on stdout when the sandbox fails.
pub(crate) const PROBE_FAILURE: &str = "kiln-sandbox-unavailable";

/// The namespaces every sandbox gets. Given together, the user namespace is created first and
/// owns the others (user_namespaces(7)), which is what lets an unprivileged caller create them.
pub(crate) const NAMESPACES: CloneFlags = CloneFlags::CLONE_NEWUSER
    .union(CloneFlags::CLONE_NEWNS)
    .union(CloneFlags::CLONE_NEWPID)
    .union(CloneFlags::CLONE_NEWNET)
    .union(CloneFlags::CLONE_NEWUTS)
    .union(CloneFlags::CLONE_NEWIPC);

/// Runs the hidden `__sandbox-init` subcommand: `args` are the arguments after it.
///
/// Call it first thing in `main`, before any thread starts (`unshare(CLONE_NEWUSER)` refuses a
/// multithreaded process) and before anything else reads the environment: the command
/// inherits this process's environment, standard streams, process group and resource limits.
/// Never returns: the process exits with the command's status, 128 + the signal that killed
/// it, or [`EXIT_SETUP_FAILED`](crate::EXIT_SETUP_FAILED),
/// [`EXIT_NOT_EXECUTABLE`](crate::EXIT_NOT_EXECUTABLE) or
/// [`EXIT_NOT_FOUND`](crate::EXIT_NOT_FOUND) when the sandbox or the command could not start.
pub fn init_main(args: &[std::ffi::OsString]) -> ! {
    let parsed = match InitArgs::parse(args) {
        Ok(parsed) => parsed,
        Err(error) => fail(&error, false),
    };
    // Read while /proc/sys and the root are still the host's.
    let facts = HostFacts::detect();
    match start(&LinuxSys, &parsed, &facts) {
        Ok(never) => match never {},
        Err(error) => fail(&error, parsed.probe),
    }
}

/// The init: namespaces, id maps, fork; then wait for PID 1.
fn start(sys: &dyn Sys, args: &InitArgs, facts: &HostFacts) -> Result<Infallible, SandboxError> {
    die_with_parent()?;
    if let Some(parent) = args.parent_pid {
        // The caller may have died before PR_SET_PDEATHSIG took effect; we were reparented.
        if nix::unistd::getppid().as_raw() as u32 != parent {
            return Err(SandboxError::ParentExited);
        }
    }
    // Kept for the command: a caller's blocked signals (`nohup` blocks SIGHUP) are its too.
    let caller_mask = SigSet::thread_get_mask().map_err(attribute("sigprocmask(SIG_SETMASK)"))?;
    let mut blocked = SigSet::empty();
    for signal in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        blocked.add(signal);
    }
    // Inherited by PID 1, which restores the caller's mask before it spawns the command
    // (std's spawn keeps the parent's mask: rust-lang/rust#101077).
    blocked
        .thread_block()
        .map_err(attribute("sigprocmask(SIG_BLOCK)"))?;

    let layout = Layout::new(&args.config, sys)?;
    let host_uid = nix::unistd::geteuid();
    let host_gid = nix::unistd::getegid();
    if host_uid.is_root() {
        // Root can drop its supplementary groups, which would show up as `nogroup` inside.
        // An unprivileged user cannot, and `setgroups` is denied below: they stay.
        let _ = nix::unistd::setgroups(&[]);
    }
    enter_namespaces(
        sys,
        (args.config.uid, host_uid.as_raw()),
        (args.config.gid, host_gid.as_raw()),
        facts,
    )?;

    // PID 1 reads from this pipe to learn whether we died before its PR_SET_PDEATHSIG.
    let (alive_read, alive_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
        .map_err(|errno| SandboxError::Fork {
            source: errno.into(),
        })?;

    // SAFETY: fork(2) in a multithreaded process leaves locks held by the other threads
    // locked in the child. This process has a single thread: unshare(CLONE_NEWUSER) just
    // succeeded, and it fails with EINVAL in a multithreaded process (unshare(2)).
    #[expect(
        unsafe_code,
        reason = "the one fork of the sandbox init; see SAFETY above"
    )]
    let forked = unsafe { nix::unistd::fork() };
    match forked.map_err(|errno| SandboxError::Fork {
        source: errno.into(),
    })? {
        ForkResult::Child => {
            drop(alive_write);
            pid1(sys, args, &layout, alive_read, caller_mask, facts)
        }
        ForkResult::Parent { child } => {
            drop(alive_read);
            let code = wait_for(child)?;
            drop(alive_write);
            std::process::exit(code)
        }
    }
}

/// Creates the namespaces and maps `inside` ids to `outside` ones: `(inside, outside)` pairs
/// for the uid and the gid.
///
/// The process maps itself, one id each: user_namespaces(7) lets a process write its own
/// namespace's maps when they map only its own effective ids (no `newuidmap`, no parent
/// writing for it), which works for root and unprivileged users alike and is what Nix maps
/// too. Each map file takes one write. `setgroups` must say `deny` before an unprivileged
/// process may write `gid_map` (since Linux 3.19, CVE-2014-8989).
pub(crate) fn enter_namespaces(
    sys: &dyn Sys,
    uid: (u32, u32),
    gid: (u32, u32),
    facts: &HostFacts,
) -> Result<(), SandboxError> {
    sys.unshare(NAMESPACES)
        .map_err(|source| SandboxError::Namespaces {
            hint: diagnose(Failure::Unshare, errno_of(&source), facts),
            source,
        })?;
    for (file, contents) in [
        ("/proc/self/setgroups", "deny".to_owned()),
        ("/proc/self/uid_map", format!("{} {} 1\n", uid.0, uid.1)),
        ("/proc/self/gid_map", format!("{} {} 1\n", gid.0, gid.1)),
    ] {
        sys.write_file(Path::new(file), contents.as_bytes())
            .map_err(|source| SandboxError::IdMap {
                file: PathBuf::from(file),
                hint: diagnose(Failure::IdMap, errno_of(&source), facts),
                source,
            })?;
    }
    Ok(())
}

/// PID 1: assemble the root, run the command, reap, exit.
fn pid1(
    sys: &dyn Sys,
    args: &InitArgs,
    layout: &Layout,
    alive: OwnedFd,
    caller_mask: SigSet,
    facts: &HostFacts,
) -> ! {
    let run = || -> Result<Infallible, SandboxError> {
        die_with_parent()?;
        // End of file: every write end is closed, the init is gone. (Otherwise the
        // non-blocking read fails with EAGAIN.)
        if let Ok(0) = File::from(alive).read(&mut [0u8; 1]) {
            return Err(SandboxError::ParentExited);
        }
        mount::enter_root(sys, layout).map_err(|error| with_hint(error, facts))?;
        sys.sethostname(&layout.hostname)
            .map_err(|source| setup(SetupStep::SetHostname, &layout.hostname, source))?;
        sys.loopback_up()
            .map_err(|source| setup(SetupStep::LoopbackUp, "lo", source))?;
        // No set-user-ID or file capabilities for the command and its children, as in Nix.
        prctl::set_no_new_privs().map_err(attribute("PR_SET_NO_NEW_PRIVS"))?;
        if args.probe {
            std::process::exit(0);
        }
        // PID 1 need not block anything: as a namespace's init it gets no signal it has no
        // handler for, except SIGKILL from an ancestor namespace (pid_namespaces(7)).
        caller_mask
            .thread_set_mask()
            .map_err(attribute("sigprocmask(SIG_SETMASK)"))?;
        run_command(args)
    };
    match run() {
        Ok(never) => match never {},
        Err(error) => fail(&error, args.probe),
    }
}

/// Starts the command and reaps every process until it exits; exits with its status.
fn run_command(args: &InitArgs) -> Result<Infallible, SandboxError> {
    match std::fs::metadata(&args.cwd) {
        Ok(metadata) if metadata.is_dir() => {}
        Ok(_) => {
            return Err(SandboxError::Cwd {
                path: args.cwd.clone(),
                source: Errno::ENOTDIR.into(),
            })
        }
        Err(source) => {
            return Err(SandboxError::Cwd {
                path: args.cwd.clone(),
                source,
            })
        }
    }
    let (argv0, rest) = args
        .argv
        .split_first()
        .expect("InitArgs::parse requires an argv");
    let child = Command::new(&args.program)
        .arg0(argv0)
        .args(rest)
        .current_dir(&args.cwd)
        .spawn()
        .map_err(|source| SandboxError::Exec {
            program: args.program.clone(),
            source,
        })?;
    let command = Pid::from_raw(child.id() as i32);
    loop {
        // As the namespace's init, PID 1 inherits every orphan of the sandbox: reap them all.
        match waitpid(Pid::from_raw(-1), None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == command => std::process::exit(code),
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == command => {
                std::process::exit(128 + signal as i32)
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(errno) => {
                return Err(SandboxError::Wait {
                    source: errno.into(),
                })
            }
        }
    }
}

/// Waits for PID 1; its exit code, or 128 + the signal that killed it.
fn wait_for(pid1: Pid) -> Result<i32, SandboxError> {
    loop {
        match waitpid(pid1, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(128 + signal as i32),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(errno) => {
                return Err(SandboxError::Wait {
                    source: errno.into(),
                })
            }
        }
    }
}

/// `PR_SET_PDEATHSIG`: SIGKILL when the parent dies. (The "parent" is the thread that forked
/// us: callers spawn the sandbox from a thread that outlives it.)
fn die_with_parent() -> Result<(), SandboxError> {
    prctl::set_pdeathsig(Signal::SIGKILL).map_err(attribute("PR_SET_PDEATHSIG"))
}

fn attribute(name: &'static str) -> impl FnOnce(Errno) -> SandboxError {
    move |errno| setup(SetupStep::ProcessAttribute, name, errno.into())
}

fn setup(step: SetupStep, path: impl Into<PathBuf>, source: io::Error) -> SandboxError {
    SandboxError::Setup(SetupError {
        step,
        path: path.into(),
        source,
        hint: None,
    })
}

/// Adds the hint for a failed mount step.
fn with_hint(mut error: SetupError, facts: &HostFacts) -> SandboxError {
    let failure = match error.step {
        SetupStep::MountProc => Failure::MountProc,
        _ => Failure::Mount,
    };
    if matches!(errno_of(&error.source), Some(Errno::EPERM | Errno::EACCES)) {
        error.hint = Some(diagnose(failure, errno_of(&error.source), facts));
    }
    SandboxError::Setup(error)
}

fn errno_of(error: &io::Error) -> Option<Errno> {
    error.raw_os_error().map(Errno::from_raw)
}

/// Reports `error` and exits: the rendered error on stderr and, when probing, one
/// machine-readable line on stdout for [`probe`](crate::probe).
fn fail(error: &SandboxError, probe: bool) -> ! {
    if probe {
        let hint = error.hint().map_or("-", |hint| hint.key());
        let errno = error.errno().unwrap_or(0);
        let message = error.to_string().replace(['\t', '\n'], " ");
        println!("{PROBE_FAILURE}\t{errno}\t{hint}\t{message}");
    }
    eprint!("{}", error.render());
    let code = match error {
        SandboxError::Exec { source, .. } if source.kind() == io::ErrorKind::NotFound => {
            EXIT_NOT_FOUND
        }
        SandboxError::Exec { .. } => EXIT_NOT_EXECUTABLE,
        _ => EXIT_SETUP_FAILED,
    };
    std::process::exit(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hint::Hint;
    use crate::sys::fake::{Call, FakeSys};

    #[test]
    fn maps_the_build_user_after_denying_setgroups() {
        let sys = FakeSys::new();
        enter_namespaces(&sys, (1000, 0), (100, 0), &HostFacts::default()).unwrap();
        assert_eq!(
            sys.calls(),
            [
                Call::Unshare(NAMESPACES),
                Call::WriteFile {
                    path: "/proc/self/setgroups".into(),
                    contents: "deny".into()
                },
                Call::WriteFile {
                    path: "/proc/self/uid_map".into(),
                    contents: "1000 0 1\n".into()
                },
                Call::WriteFile {
                    path: "/proc/self/gid_map".into(),
                    contents: "100 0 1\n".into()
                },
            ]
        );
        assert!(NAMESPACES.contains(
            CloneFlags::CLONE_NEWUSER
                | CloneFlags::CLONE_NEWNS
                | CloneFlags::CLONE_NEWPID
                | CloneFlags::CLONE_NEWNET
                | CloneFlags::CLONE_NEWUTS
                | CloneFlags::CLONE_NEWIPC
        ));
    }

    #[test]
    fn a_refused_unshare_explains_itself() {
        let sys = FakeSys::new().failing(|call| match call {
            Call::Unshare(_) => Some(Errno::EPERM),
            _ => None,
        });
        let facts = HostFacts {
            euid: 1000,
            unprivileged_userns_clone: Some(0),
            ..HostFacts::default()
        };
        let error = enter_namespaces(&sys, (1000, 1000), (100, 100), &facts).unwrap_err();
        assert_eq!(error.hint(), Some(&Hint::UnprivilegedUsernsDisabled));
        assert_eq!(error.errno(), Some(Errno::EPERM as i32));
        let rendered = error.render();
        assert!(
            rendered.starts_with("error: cannot create the sandbox's user, mount, pid"),
            "{rendered}"
        );
        assert!(rendered.contains("\ncaused by: Operation not permitted (os error 1)\n"));
        assert!(rendered.contains("\n\nhint: this host lets only root create user namespaces"));
        assert!(sys.calls().is_empty());
    }

    #[test]
    fn a_refused_id_map_names_the_file() {
        let sys = FakeSys::new().failing(|call| match call {
            Call::WriteFile { path, .. } if path.ends_with("gid_map") => Some(Errno::EPERM),
            _ => None,
        });
        match enter_namespaces(&sys, (1000, 1000), (100, 100), &HostFacts::default()) {
            Err(SandboxError::IdMap { file, .. }) => {
                assert_eq!(file, Path::new("/proc/self/gid_map"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_refused_proc_mount_gets_the_masked_proc_hint() {
        let error = SetupError {
            step: SetupStep::MountProc,
            path: "/proc".into(),
            source: Errno::EPERM.into(),
            hint: None,
        };
        let error = with_hint(error, &HostFacts::default());
        assert_eq!(error.hint(), Some(&Hint::ProcMasked));
    }
}
