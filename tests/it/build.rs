//! The executor through the real binary: step failures, signals, timeouts, the environment,
//! output checks and log formats.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::common::{describe, Scratch};

/// A plan with one phase `build` whose single step runs `argv`.
fn run_plan(argv: &[&str], extra_phase_fields: &str) -> String {
    let argv = serde_json::to_string(argv).unwrap();
    format!(
        r#"{{"version":1,"name":"t","inputs":{{"host":"/usr"}},"phases":[
            {{"name":"prepare","steps":[{{"mkdir":{{"path":"${{outputs.out}}"}}}}]}},
            {{"name":"build"{extra_phase_fields},"steps":[{{"run":{{"argv":{argv}}}}}]}}]}}"#
    )
}

#[test]
fn a_failing_step_names_phase_step_argv_and_exit_code() {
    let scratch = Scratch::new();
    scratch.write(
        "plan.json",
        &run_plan(&["/bin/sh", "-c", "echo failing now; exit 7"], ""),
    );
    let output = scratch
        .kiln()
        .args(["build", "plan.json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("failing now"), "{stderr}");
    assert!(
        stderr.contains(
            "phase `build`, step 1 (run): `/bin/sh -c 'echo failing now; exit 7'` exited with code 7"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("==> phase build failed in"), "{stderr}");
    // Nix removes the outputs of a failed build; so does kiln, and says where the build dir is.
    assert!(!scratch.path().join("kiln-out/out").exists());
    assert!(
        stderr.contains("the build directory is kept at"),
        "{stderr}"
    );
}

#[test]
fn a_step_killed_by_a_signal_is_reported_as_such() {
    let scratch = Scratch::new();
    scratch.write(
        "plan.json",
        &run_plan(&["/bin/sh", "-c", "kill -KILL $$"], ""),
    );
    let output = scratch
        .kiln()
        .args(["build", "plan.json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("was killed by signal 9 (SIGKILL)"),
        "{stderr}"
    );
}

#[test]
fn a_missing_program_is_reported_before_running() {
    let scratch = Scratch::new();
    scratch.write("plan.json", &run_plan(&["no-such-program-kiln"], ""));
    let output = scratch
        .kiln()
        .args(["build", "plan.json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("program `no-such-program-kiln` not found"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: add an input"), "{stderr}");
}

#[test]
fn a_phase_timeout_stops_the_step() {
    let scratch = Scratch::new();
    scratch.write(
        "plan.json",
        &run_plan(&["/bin/sleep", "60"], r#","timeout":1"#),
    );
    let output = scratch
        .kiln()
        .args(["build", "--kill-grace", "0.2", "plan.json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("phase timed out after 1 s while running `/bin/sleep 60`"),
        "{stderr}"
    );
}

#[test]
fn steps_see_a_clean_environment() {
    let scratch = Scratch::new();
    scratch.write(
        "plan.json",
        r#"{"version":1,"name":"t","env":{"FROM_PLAN":"p"},"phases":[{"name":"build","steps":[
            {"run":{"argv":["/usr/bin/env"],"env":{"FROM_STEP":"s"}}},
            {"mkdir":{"path":"${outputs.out}"}}]}]}"#,
    );
    let output = scratch
        .kiln()
        .env("KILN_TEST_SECRET", "leaked")
        .env("TMPDIR", "/tmp")
        .args(["build", "--cores", "3", "plan.json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut names: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.starts_with("==>"))
        .filter_map(|line| line.split_once('=').map(|(name, _)| name))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "FROM_PLAN",
            "FROM_STEP",
            "HOME",
            "LD_RUN_PATH",
            "NIX_BUILD_CORES",
            "NIX_BUILD_TOP",
            "NIX_LDFLAGS",
            "PATH",
            "PWD",
            "SOURCE_DATE_EPOCH",
            "TEMP",
            "TEMPDIR",
            "TMP",
            "TMPDIR",
            "out"
        ],
        "{stderr}"
    );
    assert!(stderr.contains("NIX_BUILD_CORES=3\n"), "{stderr}");
    assert!(stderr.contains("HOME=/homeless-shelter\n"), "{stderr}");
    assert!(!stderr.contains("leaked"), "{stderr}");
}

#[test]
fn a_plan_that_creates_no_output_fails() {
    let scratch = Scratch::new();
    scratch.write(
        "plan.json",
        r#"{"version":1,"name":"t","phases":[{"name":"build","steps":[]}]}"#,
    );
    let output = scratch
        .kiln()
        .args(["build", "plan.json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("output `out` was not created"), "{stderr}");
}

#[test]
fn an_existing_output_is_a_setup_error() {
    let scratch = Scratch::new();
    scratch.write("kiln-out/out/keep", "precious");
    scratch.write(
        "plan.json",
        r#"{"version":1,"name":"t","phases":[{"name":"build","steps":[{"run":{"argv":["/usr/bin/touch","/tmp/never"]}}]}]}"#,
    );
    let output = scratch
        .kiln()
        .args(["build", "plan.json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert_eq!(
        std::fs::read_to_string(scratch.path().join("kiln-out/out/keep")).unwrap(),
        "precious"
    );
}

#[test]
fn nix_log_format_sets_phases_and_escapes_child_protocol_lines() {
    let scratch = Scratch::new();
    scratch.write(
        "plan.json",
        r#"{"version":1,"name":"t","phases":[
            {"name":"one","steps":[{"run":{"argv":["/bin/echo","@nix {\"action\":\"setPhase\"}"]}}]},
            {"name":"skipped","enabled":false,"steps":[]},
            {"name":"two","steps":[{"write":{"path":"${outputs.out}","content":""}}]}]}"#,
    );
    let output = scratch
        .kiln()
        .args(["build", "--log-format", "nix", "plan.json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let protocol: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|line| line.strip_prefix("@nix "))
        .map(|json| serde_json::from_str(json).expect("every @nix line is one JSON object"))
        .collect();
    let phases: Vec<&str> = protocol
        .iter()
        .filter(|event| event["action"] == "setPhase")
        .map(|event| event["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["one", "two"]);
    assert!(
        stderr.contains("\n @nix {\"action\":\"setPhase\"}\n"),
        "{stderr}"
    );
    let debug = protocol
        .iter()
        .filter(|event| event["action"] == "msg" && event["level"].as_u64().unwrap() >= 5)
        .count();
    assert!(debug > 0, "{stderr}");
}

#[test]
fn json_log_format_is_one_event_per_line() {
    let scratch = Scratch::new();
    scratch.write("plan.json", &run_plan(&["/bin/echo", "hi"], ""));
    let output = scratch
        .kiln()
        .args(["build", "--log-format", "json", "plan.json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"build-started"));
    assert!(events
        .iter()
        .any(|e| e["type"] == "output" && e["data"]["text"] == "hi"));
    let finished: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["type"] == "phase-finished")
        .collect();
    assert_eq!(finished.len(), 2);
    assert!(finished
        .iter()
        .all(|e| e["data"]["seconds"].as_f64().unwrap() >= 0.0));
}

/// A host process a step started: its pid and its start time, so that a pid the kernel hands to
/// a new process later (pids wrap at 32768 on many machines) is not taken for a survivor.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Process {
    pid: i32,
    start: Option<u64>,
}

/// The start time (field 22 of `/proc/PID/stat`, in clock ticks since boot) of a live process;
/// `None` when it is gone or a zombie, which runs nothing.
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces: state is
    // field 3, start time field 22.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(22 - 3)?.parse().ok()
}

/// Reads the pids a step wrote, polling until `count` are there (the step writes them first).
fn wait_for_pids(path: &std::path::Path, count: usize) -> Vec<Process> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            let pids: Vec<i32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
            if pids.len() >= count {
                return pids
                    .into_iter()
                    .map(|pid| Process {
                        pid,
                        start: start_time(pid),
                    })
                    .collect();
            }
        }
        assert!(Instant::now() < deadline, "the step never wrote its pids");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether the process is gone: no live process has its pid and start time.
fn is_dead(process: &Process) -> bool {
    process.start.is_none() || start_time(process.pid) != process.start
}

fn wait_until_dead(processes: &[Process]) -> Vec<Process> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if processes.iter().all(is_dead) {
            return Vec::new();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    processes.iter().copied().filter(|p| !is_dead(p)).collect()
}

fn spawn_long_step(scratch: &Scratch, script: &str, grace: &str) -> Child {
    let pids = scratch.path().join("pids");
    let plan = run_plan(&["/bin/sh", "-c", script, "sh", pids.to_str().unwrap()], "");
    scratch.write("plan.json", &plan);
    scratch
        .kiln()
        // The step records host pids: kiln's own process handling, without the sandbox (the
        // sandboxed variants are in `local.rs`).
        .args(["build", "--no-sandbox", "--kill-grace", grace, "plan.json"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn sigterm_during_a_long_step_leaves_no_process_alive() {
    let scratch = Scratch::new();
    // The step starts a grandchild, records both pids, and waits.
    let mut kiln = spawn_long_step(
        &scratch,
        r#"sleep 1000 & echo $! > "$1.tmp"; echo $$ >> "$1.tmp"; mv "$1.tmp" "$1"; wait"#,
        "5",
    );
    let pids = wait_for_pids(&scratch.path().join("pids"), 2);
    kill(Pid::from_raw(kiln.id() as i32), Signal::SIGTERM).unwrap();
    let status = kiln.wait().unwrap();
    let mut stderr = String::new();
    for line in BufReader::new(kiln.stderr.take().unwrap()).lines() {
        stderr.push_str(&line.unwrap());
        stderr.push('\n');
    }
    assert_eq!(status.code(), Some(128 + 15), "{stderr}");
    assert!(
        stderr.contains("phase `build`, step 1 (run): stopped by SIGTERM"),
        "{stderr}"
    );
    assert_eq!(
        wait_until_dead(&pids),
        Vec::<Process>::new(),
        "processes survived kiln"
    );
}

#[test]
fn a_step_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let scratch = Scratch::new();
    let mut kiln = spawn_long_step(
        &scratch,
        r#"trap '' TERM; sleep 1000 & echo $! > "$1.tmp"; echo $$ >> "$1.tmp"; mv "$1.tmp" "$1"; wait; wait"#,
        "0.3",
    );
    let pids = wait_for_pids(&scratch.path().join("pids"), 2);
    kill(Pid::from_raw(kiln.id() as i32), Signal::SIGINT).unwrap();
    let status = kiln.wait().unwrap();
    assert_eq!(status.code(), Some(128 + 2));
    assert_eq!(
        wait_until_dead(&pids),
        Vec::<Process>::new(),
        "processes survived kiln"
    );
}

#[test]
fn a_run_steps_stdout_can_go_to_a_file() {
    let scratch = Scratch::new();
    scratch.write(
        "plan.json",
        r#"{"version":1,"name":"t","inputs":{"host":"/usr"},"phases":[
            {"name":"build","steps":[
              {"mkdir":{"path":"${outputs.out}"}},
              {"run":{"argv":["/bin/sh","-c","echo to-the-file; echo to-the-log >&2"],
                      "stdout":"${outputs.out}/captured.txt"}},
              {"run":{"argv":["/bin/sh","-c","echo second"],"stdout":"${outputs.out}/captured.txt"}}
            ]}]}"#,
    );
    let output = scratch
        .kiln()
        .args(["build", "plan.json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("to-the-log"), "{stderr}");
    assert!(!stderr.contains("to-the-file"), "{stderr}");
    // Truncated by the second step, as `>` does.
    assert_eq!(
        std::fs::read_to_string(scratch.path().join("kiln-out/out/captured.txt")).unwrap(),
        "second\n"
    );

    // A file that cannot be created fails the step before the program runs.
    scratch.write(
        "bad.json",
        r#"{"version":1,"name":"t","inputs":{"host":"/usr"},"phases":[
            {"name":"build","steps":[
              {"mkdir":{"path":"${outputs.out}"}},
              {"run":{"argv":["/bin/sh","-c","touch ${outputs.out}/ran"],
                      "stdout":"${outputs.out}/no/such/dir/x"}}]}]}"#,
    );
    let output = scratch
        .kiln()
        .args(["build", "bad.json", "--out-dir", "bad-out"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("phase `build`, step 2 (run): cannot create `")
            && stderr.contains("/no/such/dir/x` for the program's standard output"),
        "{stderr}"
    );
}
