//! Escapes a hostile plan tried against `kiln build` and `kiln shell` (issue "Hardening"), each
//! closed, run as root and, where the answer depends on it, as an unprivileged user:
//!
//! - the caller's terminal (TIOCSTI into its input queue), for a step and for `kiln shell`;
//! - the build user mapped to host root (setuid files in outputs and kept build directories);
//! - plan inputs as a way to lend host paths to the sandbox;
//! - ptrace of kiln's own runner inside the sandbox;
//! - daemons that leave their step's process group without the sandbox.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use crate::common::{describe, kiln_bin, Scratch, TOOLCHAIN};
use crate::local::{gone, running, unique_marker};

/// `nobody`: the unprivileged user the tests become when they run as root.
const NOBODY: u32 = 65534;

/// Who runs kiln.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// Whoever runs the tests (root in CI).
    Me,
    /// `nobody` when the tests run as root (setpriv, util-linux); the tests' own user otherwise.
    Unprivileged,
}

const CALLERS: [Caller; 2] = [Caller::Me, Caller::Unprivileged];

/// The prefix that runs a command as `caller`, for a shell command line or an argv, after
/// handing `scratch` to that user.
fn become_(caller: Caller, scratch: &Scratch) -> Vec<String> {
    if caller == Caller::Me || !nix::unistd::geteuid().is_root() {
        return Vec::new();
    }
    let chown = Command::new("chown")
        .args(["-R", &format!("{NOBODY}:{NOBODY}")])
        .arg(scratch.path())
        .status()
        .unwrap();
    assert!(chown.success());
    [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// `PROGRAM ARGS...` (`argv`) as `caller` in `scratch`, with a clean environment, the toolchain
/// lent (set KILN_LEND again to lend more) and the cache in the scratch directory.
fn as_caller(caller: Caller, scratch: &Scratch, argv: &[String]) -> Command {
    let mut argv_as = become_(caller, scratch);
    argv_as.extend(argv.iter().cloned());
    let mut command = Command::new(&argv_as[0]);
    command
        .args(&argv_as[1..])
        .current_dir(scratch.path())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", scratch.path())
        .env("TMPDIR", scratch.path())
        .env("NO_COLOR", "1")
        .env("KILN_LEND", TOOLCHAIN)
        .env("KILN_CACHE_DIR", scratch.path().join("cache"));
    command
}

/// `kiln ARGS...` as `caller` in `scratch` ([`as_caller`]), with no standard input.
fn kiln_as(caller: Caller, scratch: &Scratch, args: &[&str]) -> Command {
    let mut argv = vec![kiln_bin().display().to_string()];
    argv.extend(args.iter().map(|arg| arg.to_string()));
    let mut command = as_caller(caller, scratch, &argv);
    command.stdin(Stdio::null());
    command
}

/// A plan whose one step runs `script` with bash, and, when given, `check` in a second phase.
fn plan(scratch: &Scratch, name: &str, script: &str) -> PathBuf {
    let plan = serde_json::json!({
        "version": 1,
        "name": name,
        "inputs": { "tools": "/usr" },
        "phases": [
            { "name": "build", "steps": [ { "run": { "argv": ["bash", "-c", script] } } ] }
        ]
    });
    scratch.write(&format!("{name}.json"), &plan.to_string())
}

/// What the caller's shell does after kiln: takes the terminal back (as an interactive shell
/// does when a job ends) and reads what is left in its input queue for up to two seconds.
const READ_WHAT_IS_LEFT: &str = "import os, select, signal\n\
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)\n\
    os.tcsetpgrp(0, os.getpgrp())\n\
    ready, _, _ = select.select([0], [], [], 2)\n\
    print('LEFT=' + os.read(0, 200).decode().strip() if ready else 'LEFT-NOTHING')\n";

/// `command_line` (a shell command line) on a pseudo-terminal made by script(1), as `caller`,
/// with `input` typed into it; after it, the terminal's shell prints what is left in its input
/// queue as `LEFT=...` ([`READ_WHAT_IS_LEFT`]). Returns everything printed.
fn on_a_terminal(
    caller: Caller,
    scratch: &Scratch,
    command_line: &str,
    input: &str,
    lend: &str,
) -> String {
    let reader = scratch.write("read-what-is-left.py", READ_WHAT_IS_LEFT);
    let line = format!(
        "{command_line}; echo KILN-EXIT=$?; python3 {}",
        reader.display()
    );
    let argv = ["script", "-qfec", &line, "/dev/null"].map(str::to_owned);
    let mut child = as_caller(caller, scratch, &argv)
        .env("TERM", "dumb")
        .env("SHELL", "/bin/bash")
        .env("KILN_LEND", format!("{TOOLCHAIN}{lend}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    drop(stdin);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{}", describe(&output));
    text
}

/// Python that pushes `echo INJECTED-<tag>` and a newline into the input queue of the
/// terminal behind `/dev/tty` and every standard stream, printing what each attempt gave.
fn inject(tag: &str) -> String {
    format!(
        "import fcntl, os, termios\n\
         def push(fd, name):\n\
         \x20   try:\n\
         \x20       for c in b'echo INJECTED-{tag}\\n':\n\
         \x20           fcntl.ioctl(fd, termios.TIOCSTI, bytes([c]))\n\
         \x20       print(name + '=PUSHED')\n\
         \x20   except OSError as e:\n\
         \x20       print(name + '=' + (os.strerror(e.errno)))\n\
         for fd in (0, 1, 2):\n\
         \x20   push(fd, 'FD%d' % fd)\n\
         try:\n\
         \x20   push(os.open('/dev/tty', os.O_RDWR), 'TTY')\n\
         except OSError as e:\n\
         \x20   print('TTY=' + os.strerror(e.errno))\n"
    )
}

#[test]
fn a_step_has_no_controlling_terminal_and_cannot_push_input_to_the_callers() {
    for caller in CALLERS {
        let scratch = Scratch::new();
        let script = "python3 -c \"$1\" > \"$out\" 2>&1; python3 -c 'import os; \
                      print(\"ISATTY=%s\" % [os.isatty(fd) for fd in (0, 1, 2)])' >> \"$out\"";
        let plan = serde_json::json!({
            "version": 1,
            "name": "tty",
            "inputs": { "tools": "/usr" },
            "phases": [ { "name": "build", "steps": [ { "run": {
                "argv": ["bash", "-c", script, "bash", inject("STEP")] } } ] } ]
        });
        let plan = scratch.write("tty.json", &plan.to_string());
        let text = on_a_terminal(
            caller,
            &scratch,
            &format!(
                "{} build {} --out-dir out --no-cache",
                kiln_bin().display(),
                plan.display()
            ),
            "",
            "",
        );
        assert!(text.contains("KILN-EXIT=0"), "{caller:?}: {text}");
        // Nothing reached the caller's terminal: its shell finds nothing to read.
        assert!(text.contains("LEFT-NOTHING"), "{caller:?}: {text}");
        assert!(!text.contains("INJECTED-STEP"), "{caller:?}: {text}");
        let seen = std::fs::read_to_string(scratch.path().join("out/out")).unwrap();
        // No controlling terminal (ENXIO), and no standard stream is a terminal.
        assert!(
            seen.contains("TTY=No such device or address"),
            "{caller:?}: {seen}"
        );
        assert!(!seen.contains("PUSHED"), "{caller:?}: {seen}");
        assert!(
            seen.contains("ISATTY=[False, False, False]"),
            "{caller:?}: {seen}"
        );
    }
}

#[test]
fn kiln_shell_gets_a_terminal_of_its_own() {
    for caller in CALLERS {
        let scratch = Scratch::new();
        let plan = plan(&scratch, "shell", "true");
        scratch.write("inject.py", &inject("SHELL"));
        let text = on_a_terminal(
            caller,
            &scratch,
            &format!(
                "{} shell {} --at build --out-dir out",
                kiln_bin().display(),
                plan.display()
            ),
            // The shell is interactive on its own terminal. What the script pushes there just
            // before the shell exits is left unread: in the caller's input queue (where the
            // caller's shell would run it on the host) unless the terminal is the shell's own.
            &format!(
                "test -t 0 && echo STDIN-IS-A-TERMINAL\n\
                 python3 {}/inject.py; exit\n",
                scratch.path().display()
            ),
            &format!(":{}", scratch.path().join("inject.py").display()),
        );
        assert!(text.contains("STDIN-IS-A-TERMINAL"), "{caller:?}: {text}");
        assert!(text.contains("TTY=PUSHED"), "{caller:?}: {text}");
        assert!(text.contains("KILN-EXIT=0"), "{caller:?}: {text}");
        assert!(text.contains("LEFT-NOTHING"), "{caller:?}: {text}");
    }
}

#[test]
fn as_root_the_build_user_is_not_host_root_and_no_output_keeps_setuid_bits() {
    for caller in CALLERS {
        let scratch = Scratch::new();
        // A setuid, setgid copy of `id` in the output and in the build directory; the second
        // plan fails after it.
        let script = "mkdir -p \"$out/bin\" && cp /usr/bin/id \"$out/bin/id\" && \
                      cp /usr/bin/id /build/id && chmod 6755 \"$out/bin/id\" /build/id";
        plan(&scratch, "setuid", script);
        plan(&scratch, "setuid-fails", &format!("{script} && exit 1"));
        let output = kiln_as(
            caller,
            &scratch,
            &["build", "setuid.json", "--out-dir", "out"],
        )
        .arg("--no-cache")
        .output()
        .unwrap();
        assert!(output.status.success(), "{caller:?}: {}", describe(&output));
        let id = scratch.path().join("out/out/bin/id");
        let metadata = std::fs::symlink_metadata(&id).unwrap();
        assert_eq!(
            metadata.mode() & 0o7777,
            0o755,
            "{caller:?}: the setuid/setgid bits stay"
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("cleared the set-user-ID/set-group-ID bits of")
                && stderr.contains("out/out/bin/id"),
            "{caller:?}: {stderr}"
        );
        // The outputs are the caller's.
        let expected_owner = match caller {
            Caller::Unprivileged if nix::unistd::geteuid().is_root() => NOBODY,
            _ => nix::unistd::geteuid().as_raw(),
        };
        assert_eq!(metadata.uid(), expected_owner, "{caller:?}");

        // A failed build keeps its directory: unreadable to others, and what the build
        // made there is not root's.
        let build_dir = scratch.path().join("kept");
        let output = kiln_as(
            caller,
            &scratch,
            &[
                "build",
                "setuid-fails.json",
                "--out-dir",
                "out2",
                "--build-dir",
            ],
        )
        .arg(&build_dir)
        .arg("--no-cache")
        .output()
        .unwrap();
        assert_eq!(
            output.status.code(),
            Some(1),
            "{caller:?}: {}",
            describe(&output)
        );
        let kept = std::fs::symlink_metadata(&build_dir).unwrap();
        assert_eq!(kept.mode() & 0o077, 0, "{caller:?}: {:o}", kept.mode());
        let made = std::fs::symlink_metadata(build_dir.join("id")).unwrap();
        if nix::unistd::geteuid().is_root() && caller == Caller::Me {
            assert_eq!(made.uid(), kiln_sandbox::HOST_BUILD_ID, "{caller:?}");
            assert_ne!(made.uid(), 0);
        } else {
            assert_eq!(made.uid(), expected_owner, "{caller:?}");
        }
        assert!(!scratch.path().join("out2").join("out").exists());
    }
}

/// `NAME.json`: a plan that copies its input `loot` (the host path `loot`) into its output.
fn copy_plan(scratch: &Scratch, name: &str, loot: &std::path::Path) {
    let plan = serde_json::json!({
        "version": 1,
        "name": name,
        "inputs": { "tools": "/usr", "loot": loot },
        "phases": [ { "name": "build", "steps": [ { "run": {
            "argv": ["cp", "-r", "${inputs.loot}", "${outputs.out}"] } } ] } ]
    });
    scratch.write(&format!("{name}.json"), &plan.to_string());
}

#[test]
fn a_plan_cannot_lend_itself_host_paths() {
    for caller in CALLERS {
        let scratch = Scratch::new();
        let secret_dir = scratch.path().join("secret");
        std::fs::create_dir(&secret_dir).unwrap();
        std::fs::write(secret_dir.join("key"), "do not copy\n").unwrap();
        // Also reached through a symlink inside a directory that is lent.
        let lent = scratch.path().join("lent");
        std::fs::create_dir(&lent).unwrap();
        std::os::unix::fs::symlink(&secret_dir, lent.join("link")).unwrap();
        for (input, lend) in [
            (secret_dir.clone(), None),
            (lent.join("link"), Some(&lent)),
            (PathBuf::from("/etc"), None),
        ] {
            copy_plan(&scratch, "steal", &input);
            let mut command = kiln_as(
                caller,
                &scratch,
                &["build", "steal.json", "--out-dir", "out", "--no-cache"],
            );
            if let Some(lend) = lend {
                command.env("KILN_LEND", format!("{TOOLCHAIN}:{}", lend.display()));
            }
            let output = command.output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{caller:?} {input:?}: {stderr}"
            );
            assert!(
                stderr.contains("inputs.loot")
                    && stderr.contains("not lent")
                    && stderr.contains("--lend"),
                "{caller:?} {input:?}: {stderr}"
            );
            // Nothing was created.
            assert!(!scratch.path().join("out").exists(), "{caller:?} {input:?}");
        }
        // Lent by the caller, it is the caller's choice.
        copy_plan(&scratch, "lent", &secret_dir);
        let output = kiln_as(
            caller,
            &scratch,
            &["build", "lent.json", "--out-dir", "out", "--no-cache"],
        )
        .env("KILN_LEND", format!("{TOOLCHAIN}:{}", secret_dir.display()))
        .output()
        .unwrap();
        assert!(output.status.success(), "{caller:?}: {}", describe(&output));
        assert_eq!(
            std::fs::read_to_string(scratch.path().join("out/out/key")).unwrap(),
            "do not copy\n"
        );
    }
}

#[test]
fn a_step_cannot_trace_kilns_runner() {
    for caller in CALLERS {
        let scratch = Scratch::new();
        // PTRACE_SEIZE (0x4206) of kiln's runner (`kiln __run-phases`) and of the sandbox's
        // PID 1, then of the step's own child, which must work: only kiln is out of reach.
        scratch.write(
            "trace.py",
            "import ctypes, os, subprocess\n\
             libc = ctypes.CDLL(None, use_errno=True)\n\
             def seize(pid):\n\
             \x20   if libc.ptrace(0x4206, pid, 0, 0) == 0:\n\
             \x20       return 'OK'\n\
             \x20   return os.strerror(ctypes.get_errno())\n\
             runner = [int(p) for p in os.listdir('/proc') if p.isdigit() and \
             open('/proc/%s/cmdline' % p, 'rb').read().split(b'\\0')[1:2] == [b'__run-phases']]\n\
             print('RUNNERS=%d' % len(runner))\n\
             print('RUNNER=' + seize(runner[0]))\n\
             print('INIT=' + seize(1))\n\
             child = subprocess.Popen(['sleep', '30'])\n\
             print('CHILD=' + seize(child.pid))\n\
             child.kill()\n",
        );
        plan(
            &scratch,
            "trace",
            &format!("python3 {}/trace.py > \"$out\"", scratch.path().display()),
        );
        let output = kiln_as(
            caller,
            &scratch,
            &["build", "trace.json", "--out-dir", "out"],
        )
        .arg("--no-cache")
        .env(
            "KILN_LEND",
            format!("{TOOLCHAIN}:{}", scratch.path().join("trace.py").display()),
        )
        .output()
        .unwrap();
        assert!(output.status.success(), "{caller:?}: {}", describe(&output));
        let seen = std::fs::read_to_string(scratch.path().join("out/out")).unwrap();
        assert!(seen.contains("RUNNERS=1"), "{caller:?}: {seen}");
        assert!(
            seen.contains("RUNNER=Operation not permitted"),
            "{caller:?}: {seen}"
        );
        assert!(
            seen.contains("INIT=Operation not permitted"),
            "{caller:?}: {seen}"
        );
        assert!(seen.contains("CHILD=OK"), "{caller:?}: {seen}");
    }
}

/// Daemons a step starts: one with setsid(1), one double-forked and setsid'd.
fn daemons(marker: &str) -> String {
    format!("mkdir -p \"$out\"; setsid sleep {marker} & ( setsid sleep {marker} & ) ; sleep 0.2")
}

/// Runs `kiln build --no-sandbox` of a plan whose step is `script` (`timeout`: the phase's);
/// `signal`: sent to kiln once `wait_for` runs.
fn no_sandbox_build(
    scratch: &Scratch,
    script: &str,
    timeout: Option<u64>,
    signal: Option<(nix::sys::signal::Signal, &str)>,
) -> Output {
    let mut phase = serde_json::json!({
        "name": "build", "steps": [ { "run": { "argv": ["bash", "-c", script] } } ] });
    if let Some(timeout) = timeout {
        phase["timeout"] = timeout.into();
    }
    let plan = serde_json::json!({
        "version": 1, "name": "daemons", "inputs": { "tools": "/usr" }, "phases": [phase] });
    scratch.write("daemons.json", &plan.to_string());
    let child = kiln_as(
        Caller::Me,
        scratch,
        &[
            "build",
            "daemons.json",
            "--out-dir",
            "out",
            "--no-cache",
            "--no-sandbox",
            "--kill-grace",
            "0.5",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    if let Some((signal, wait_for)) = signal {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while running(wait_for).is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the step never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    }
    child.wait_with_output().unwrap()
}

#[test]
fn without_the_sandbox_daemons_that_leave_the_group_do_not_survive() {
    // The step ends normally.
    let scratch = Scratch::new();
    let marker = unique_marker();
    let output = no_sandbox_build(&scratch, &daemons(&marker), None, None);
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(gone(&marker), "", "daemons survived the build");

    // SIGTERM and SIGINT to kiln during the step.
    for signal in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGINT,
    ] {
        let scratch = Scratch::new();
        let marker = unique_marker();
        let waiting = unique_marker();
        let script = format!("{}; sleep {waiting}", daemons(&marker));
        let output = no_sandbox_build(&scratch, &script, None, Some((signal, &waiting)));
        assert_eq!(
            output.status.code(),
            Some(128 + signal as i32),
            "{}",
            describe(&output)
        );
        assert_eq!(gone(&marker), "", "daemons survived {signal}");
    }

    // The phase's timeout.
    let scratch = Scratch::new();
    let marker = unique_marker();
    let script = format!("{}; sleep 600", daemons(&marker));
    let output = no_sandbox_build(&scratch, &script, Some(2), None);
    assert!(!output.status.success(), "{}", describe(&output));
    assert_eq!(gone(&marker), "", "daemons survived the timeout");
}
