//! How a sandbox ends: exit codes and signals propagate, nothing is left behind, and setup
//! failures are reported.

use std::path::{Path, PathBuf};

use kiln_sandbox::{probe, sandboxed_command, SandboxConfig, SandboxError};
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

use crate::util::{namespace_init, processes_in, wait_bounded, Sandbox, INIT};

#[test]
fn exit_codes_propagate() {
    let sandbox = Sandbox::new();
    assert_eq!(sandbox.probe(&["exit", "7"]).code(), 7);
    assert_eq!(sandbox.probe(&["exit", "0"]).code(), 0);
}

#[test]
fn death_by_a_signal_is_128_plus_the_signal() {
    let sandbox = Sandbox::new();
    assert_eq!(sandbox.probe(&["kill-self", "9"]).code(), 128 + 9);
    assert_eq!(sandbox.probe(&["kill-self", "15"]).code(), 128 + 15);
}

#[test]
fn no_process_survives_the_sandbox() {
    let sandbox = Sandbox::new();
    // The probe leaves a process behind in its own process group and exits; the outcome
    // arrives only when stderr, which the leftover holds, reaches end of file.
    let outcome = sandbox.probe(&["orphan"]);
    let namespace = outcome.ok().trim().to_owned();
    assert!(namespace.starts_with("pid:["), "{outcome:?}");
    assert_eq!(processes_in(&namespace), Vec::<u32>::new());
}

#[test]
fn killing_the_sandbox_process_tears_the_sandbox_down() {
    // Orphans of this test process come back to it, PID 1 of the sandbox included once its
    // parent is killed; then waiting for PID 1 is waiting for its whole namespace, since PID 1
    // exits only after the kernel reaped every other process in it. (Process-wide, and
    // harmless to the other tests: their sandboxes leave no orphans.)
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    let sandbox = Sandbox::new();
    let mut running = sandbox.spawn_probe(&["pause"]);
    let ready = running.next_line().expect("the probe starts");
    let namespace = ready
        .strip_prefix("ready ")
        .expect("a ready line")
        .to_owned();
    assert_eq!(processes_in(&namespace).len(), 2, "PID 1 and the probe");
    let pid1 = namespace_init(&namespace);

    kill(Pid::from_raw(running.child.id() as i32), Signal::SIGKILL).unwrap();
    running.wait();
    // PID 1 dies with its parent (PR_SET_PDEATHSIG), after the kernel killed the rest of its
    // pid namespace.
    let status = wait_bounded(pid1);
    assert_eq!(status, WaitStatus::Signaled(pid1, Signal::SIGKILL, false));
    running.wait_for_eof();
    assert_eq!(processes_in(&namespace), Vec::<u32>::new());
}

#[test]
fn a_signal_to_the_process_group_reaches_the_command() {
    // kiln's executor stops a step with SIGTERM to its process group: the command dies of it,
    // and the sandbox survives to report that.
    let sandbox = Sandbox::new();
    let mut running = sandbox.spawn_probe(&["pause"]);
    running.next_line().expect("the probe starts");
    killpg(Pid::from_raw(running.child.id() as i32), Signal::SIGTERM).unwrap();
    running.wait_for_eof();
    assert_eq!(running.wait().code(), Some(128 + 15));
}

#[test]
fn a_missing_program_exits_127_and_a_missing_directory_125() {
    let mut sandbox = Sandbox::new();
    let missing = sandbox.run(Path::new("/usr/bin/kiln-no-such-program"), &["x"]);
    assert_eq!(missing.code(), kiln_sandbox::EXIT_NOT_FOUND, "{missing:?}");
    assert!(
        missing
            .stderr
            .starts_with("error: cannot run `/usr/bin/kiln-no-such-program` in the sandbox\n"),
        "{missing:?}"
    );

    sandbox.cwd = PathBuf::from("/nonexistent");
    let no_cwd = sandbox.probe(&["cwd"]);
    assert_eq!(no_cwd.code(), kiln_sandbox::EXIT_SETUP_FAILED, "{no_cwd:?}");
    assert!(
        no_cwd.stderr.starts_with(
            "error: the working directory `/nonexistent` is not a directory inside the sandbox\n"
        ),
        "{no_cwd:?}"
    );
}

#[test]
fn a_bad_config_is_refused_before_anything_runs() {
    let sandbox = Sandbox::new();
    let mut config = sandbox.config.clone();
    config.lend.push(sandbox.dir.path().join("missing"));
    let result = sandboxed_command(
        Path::new(INIT),
        &config,
        Path::new("/usr/bin/true"),
        &[],
        Path::new("/build"),
    );
    match result {
        Err(SandboxError::HostPath { path, .. }) => {
            assert_eq!(path, sandbox.dir.path().join("missing"))
        }
        other => panic!("{other:?}"),
    }

    let mut config = SandboxConfig::new(sandbox.build_dir());
    config
        .writable
        .push((sandbox.dir.path().to_owned(), "/proc/escape".into()));
    let error = sandboxed_command(
        Path::new(INIT),
        &config,
        Path::new("/usr/bin/true"),
        &[],
        Path::new("/build"),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "`/proc/escape` cannot be used in the sandbox: the sandbox provides this path itself"
    );
}

#[test]
fn the_probe_finds_namespaces_available() {
    // This machine (and CI) must support the sandbox: a failure here says why, with a hint.
    if let Err(error) = probe(Path::new(INIT)) {
        panic!("{}", error.render());
    }
}
