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
use std::io::{self, Read, Write};
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
use crate::sys::{CreatingAs, LinuxSys, Sys};
use crate::wire::InitArgs;
use crate::{EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, EXIT_SETUP_FAILED, HOST_BUILD_ID};

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
    close_inherited_fds();
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

/// Closes every file descriptor above standard error that the caller let this process inherit
/// (a shell's copy of its terminal, a socket, a pipe of the caller's caller), as Nix does
/// before it starts a builder: only the three standard streams reach the sandbox.
fn close_inherited_fds() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let inherited: Vec<i32> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    // The listing's own descriptor was listed too and is closed now: skip what is not open.
    for fd in inherited {
        if std::fs::read_link(format!("/proc/self/fd/{fd}")).is_err() {
            continue;
        }
        // SAFETY: the descriptor is open, and nothing in this process owns it: `init_main`
        // runs first thing in `main`, and the listing's descriptor is closed (skipped above).
        #[expect(
            unsafe_code,
            reason = "taking ownership of inherited descriptors to close them"
        )]
        let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        drop(owned);
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
    for signal in FORWARDED {
        blocked.add(signal);
    }
    // Waited for with sigwait(2) along with the forwarded ones (`wait_forwarding`).
    blocked.add(Signal::SIGCHLD);
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
        nix::unistd::setgroups(&[]).map_err(attribute("setgroups"))?;
        // Never map the build user to host root: a setuid file it left in an output or a kept
        // build directory would give root to whoever runs it. Like Nix's build users, it is
        // an unprivileged host id (HOST_BUILD_ID) that a helper outside the namespace maps.
        map_from_outside(
            sys,
            (args.config.uid, HOST_BUILD_ID),
            (args.config.gid, HOST_BUILD_ID),
            facts,
        )?;
    } else {
        enter_namespaces(
            sys,
            (args.config.uid, host_uid.as_raw()),
            (args.config.gid, host_gid.as_raw()),
            facts,
        )?;
    }

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
            let switch_user = host_uid.is_root();
            pid1(
                sys,
                args,
                &layout,
                alive_read,
                caller_mask,
                facts,
                switch_user,
            )
        }
        ForkResult::Parent { child } => {
            drop(alive_read);
            let code = wait_forwarding(child, &blocked)?;
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
    for (file, contents) in id_maps(uid, gid) {
        let file = format!("/proc/self/{file}");
        sys.write_file(Path::new(&file), contents.as_bytes())
            .map_err(|source| SandboxError::IdMap {
                file: PathBuf::from(file),
                hint: diagnose(Failure::IdMap, errno_of(&source), facts),
                source,
            })?;
    }
    Ok(())
}

/// Creates the namespaces like [`enter_namespaces`], but has a helper process that stays in the
/// host's namespaces write the id maps: `(inside, outside)` for the uid and the gid.
///
/// Only a process with CAP_SETUID/CAP_SETGID in the *parent* user namespace may map ids other
/// than its own (user_namespaces(7)), and once this process has unshared, its capabilities
/// are the new namespace's. So, as Nix's parent does for its builder, a child forked before
/// the `unshare` waits for it, writes `/proc/INIT/{setgroups,uid_map,gid_map}`, and reports.
/// This process keeps its host uid (root), which maps to nothing inside: PID 1 keeps the
/// namespace's capabilities for the mounts, and the command becomes the build user with
/// setuid/setgid before it starts ([`run_command`]).
fn map_from_outside(
    sys: &dyn Sys,
    uid: (u32, u32),
    gid: (u32, u32),
    facts: &HostFacts,
) -> Result<(), SandboxError> {
    let fork_error = |errno: Errno| SandboxError::Fork {
        source: errno.into(),
    };
    let (go_read, go_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(fork_error)?;
    let (done_read, done_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(fork_error)?;
    let init = nix::unistd::getpid();
    // SAFETY: as in `start`: this process is single-threaded (nothing has started a thread
    // before `init_main`), so the child inherits no lock held by another thread.
    #[expect(unsafe_code, reason = "the id-map helper's fork; see SAFETY above")]
    let forked = unsafe { nix::unistd::fork() };
    match forked.map_err(fork_error)? {
        ForkResult::Child => {
            drop(go_write);
            drop(done_read);
            let _ = prctl::set_pdeathsig(Signal::SIGKILL);
            // One byte: the init has unshared. End of file: it failed, nothing to map.
            if !matches!(File::from(go_read).read(&mut [0u8; 1]), Ok(1)) {
                std::process::exit(0);
            }
            let mut report = File::from(done_write);
            for (index, (file, contents)) in id_maps(uid, gid).iter().enumerate() {
                let path = format!("/proc/{init}/{file}");
                if let Err(error) = std::fs::write(&path, contents) {
                    let errno = error.raw_os_error().unwrap_or(0);
                    let mut message = vec![index as u8];
                    message.extend_from_slice(&errno.to_le_bytes());
                    let _ = report.write_all(&message);
                    std::process::exit(1);
                }
            }
            let _ = report.write_all(&[u8::MAX]);
            std::process::exit(0);
        }
        ForkResult::Parent { child } => {
            drop(go_read);
            drop(done_write);
            let unshared = sys
                .unshare(NAMESPACES)
                .map_err(|source| SandboxError::Namespaces {
                    hint: diagnose(Failure::Unshare, errno_of(&source), facts),
                    source,
                });
            if unshared.is_ok() {
                let _ = File::from(go_write).write_all(&[1]);
            } else {
                drop(go_write);
            }
            let mut report = Vec::new();
            let _ = File::from(done_read).read_to_end(&mut report);
            let _ = wait_for(child);
            unshared?;
            match report.as_slice() {
                [u8::MAX] => Ok(()),
                [index, errno @ ..] if errno.len() == 4 => {
                    let (file, _) = &id_maps(uid, gid)[usize::from(*index).min(2)];
                    let errno = i32::from_le_bytes([errno[0], errno[1], errno[2], errno[3]]);
                    let source = io::Error::from_raw_os_error(errno);
                    Err(SandboxError::IdMap {
                        file: PathBuf::from(format!("/proc/{init}/{file}")),
                        hint: diagnose(Failure::IdMap, errno_of(&source), facts),
                        source,
                    })
                }
                _ => Err(SandboxError::IdMap {
                    file: PathBuf::from(format!("/proc/{init}/uid_map")),
                    hint: diagnose(Failure::IdMap, None, facts),
                    source: io::Error::other("the id-map helper ended without a report"),
                }),
            }
        }
    }
}

/// The files that map a namespace's ids, in the order they must be written, and their
/// contents: `(inside, outside)` for the uid and the gid, one id each.
fn id_maps(uid: (u32, u32), gid: (u32, u32)) -> [(&'static str, String); 3] {
    [
        ("setgroups", "deny".to_owned()),
        ("uid_map", format!("{} {} 1\n", uid.0, uid.1)),
        ("gid_map", format!("{} {} 1\n", gid.0, gid.1)),
    ]
}

/// PID 1: assemble the root, run the command, reap, exit.
fn pid1(
    sys: &dyn Sys,
    args: &InitArgs,
    layout: &Layout,
    alive: OwnedFd,
    caller_mask: SigSet,
    facts: &HostFacts,
    switch_user: bool,
) -> ! {
    let run = || -> Result<Infallible, SandboxError> {
        die_with_parent()?;
        // A session of its own: the command has no controlling terminal, so it cannot open
        // the caller's `/dev/tty` and push input into it with TIOCSTI (bubblewrap's
        // `--new-session`). PID 1 is the init's child, never a group leader, so this works.
        nix::unistd::setsid().map_err(attribute("setsid"))?;
        // End of file: every write end is closed, the init is gone. (Otherwise the
        // non-blocking read fails with EAGAIN.)
        if let Ok(0) = File::from(alive).read(&mut [0u8; 1]) {
            return Err(SandboxError::ParentExited);
        }
        // Without an id of its own inside, PID 1 creates the root's entries as the build user.
        let creating_as = CreatingAs {
            uid: args.config.uid,
            gid: args.config.gid,
        };
        let sys: &dyn Sys = if switch_user { &creating_as } else { sys };
        mount::enter_root(sys, layout).map_err(|error| with_hint(error, facts))?;
        sys.sethostname(&layout.hostname)
            .map_err(|source| setup(SetupStep::SetHostname, &layout.hostname, source))?;
        sys.loopback_up()
            .map_err(|source| setup(SetupStep::LoopbackUp, "lo", source))?;
        // No set-user-ID or file capabilities for the command and its children, as in Nix.
        prctl::set_no_new_privs().map_err(attribute("PR_SET_NO_NEW_PRIVS"))?;
        if args.config.controlling_terminal {
            // A session leader without a controlling terminal gets the first terminal it opens
            // without O_NOCTTY (credentials(7)): reopen standard input, the caller's own
            // pseudo-terminal for this sandbox, through /proc (its path is not inside).
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/proc/self/fd/0")
                .map_err(|source| setup(SetupStep::ProcessAttribute, "/proc/self/fd/0", source))?;
        }
        if args.probe {
            std::process::exit(0);
        }
        // PID 1 need not block anything: as a namespace's init it gets no signal it has no
        // handler for, except SIGKILL from an ancestor namespace (pid_namespaces(7)).
        caller_mask
            .thread_set_mask()
            .map_err(attribute("sigprocmask(SIG_SETMASK)"))?;
        run_command(args, switch_user)
    };
    match run() {
        Ok(never) => match never {},
        Err(error) => fail(&error, args.probe),
    }
}

/// Starts the command and reaps every process until it exits; exits with its status.
///
/// With `switch_user` (the ids were mapped from outside, [`map_from_outside`]), this process
/// has no id inside, and the command takes the build user's uid and gid before it starts.
fn run_command(args: &InitArgs, switch_user: bool) -> Result<Infallible, SandboxError> {
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
    let mut command = Command::new(&args.program);
    command.arg0(argv0).args(rest).current_dir(&args.cwd);
    if switch_user {
        command.uid(args.config.uid).gid(args.config.gid);
    }
    let child = command.spawn().map_err(|source| SandboxError::Exec {
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

/// The signals the init passes on to the sandbox's session: what a caller sends to stop the
/// command (kiln's executor signals the init's whole process group).
const FORWARDED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// Waits for PID 1 like [`wait_for`], passing each [`FORWARDED`] signal the init receives on to
/// PID 1's process group, where the command is: PID 1 leads a session of its own (so that
/// nothing inside has the caller's terminal), out of reach of a signal to the init's group.
/// `blocked` holds those signals and SIGCHLD, blocked in this thread.
fn wait_forwarding(pid1: Pid, blocked: &SigSet) -> Result<i32, SandboxError> {
    loop {
        if let Some(code) = look(pid1, Some(nix::sys::wait::WaitPidFlag::WNOHANG))? {
            return Ok(code);
        }
        // A SIGCHLD that came since the look above is pending, so this returns at once.
        match blocked.wait() {
            Ok(Signal::SIGCHLD) | Err(_) => {}
            // Before PID 1 has its session the group does not exist yet (ESRCH): the command
            // has not started, and the caller's SIGKILL, which ends the init, ends it too.
            Ok(signal) => {
                let _ = nix::sys::signal::killpg(pid1, signal);
            }
        }
    }
}

/// Waits for a child; its exit code, or 128 + the signal that killed it.
fn wait_for(child: Pid) -> Result<i32, SandboxError> {
    loop {
        if let Some(code) = look(child, None)? {
            return Ok(code);
        }
    }
}

/// One `waitpid(2)` for `child`: its exit code (or 128 + the signal that killed it) once it has
/// ended, `None` while it runs (with WNOHANG) or when interrupted.
fn look(
    child: Pid,
    flags: Option<nix::sys::wait::WaitPidFlag>,
) -> Result<Option<i32>, SandboxError> {
    match waitpid(child, flags) {
        Ok(WaitStatus::Exited(_, code)) => Ok(Some(code)),
        Ok(WaitStatus::Signaled(_, signal, _)) => Ok(Some(128 + signal as i32)),
        Ok(_) | Err(Errno::EINTR) => Ok(None),
        Err(errno) => Err(SandboxError::Wait {
            source: errno.into(),
        }),
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
