//! Local mode: `kiln build`, `kiln shell` and `kiln env` without Nix, in kiln's own sandbox.
//!
//! - GNU hello: the plan Nix builds (`tests/fixtures/debian/hello.nix`, read back from its
//!   derivation) builds with `kiln build --attrs`, the result runs, and `--timings` charts it.
//! - Escapes: each way out of the sandbox is tried by a step, through the CLI, and must fail;
//!   where it is safe, the same plan with `--no-sandbox` shows the probe would notice.
//! - Resume: a failing `check`, fixed, re-runs with `--from check` from the cached states; an
//!   earlier phase's change invalidates them.
//! - `kiln shell` through a pseudo-terminal (`script(1)`); `kiln env`.
//! - A state archive made by a split derivation under Nix, loaded with `--state`.
//!
//! Nix is used only to evaluate plans and to make the split state; every local build runs
//! without it. The host's toolchain is lent to the sandbox (impure), as under Nix.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::{describe, kiln_bin, Scratch, TOOLCHAIN};
use crate::nix::{debian_source, require_nix, root, static_kiln};

/// `kiln` in `scratch` with the toolchain lent and a cache in the scratch directory.
fn kiln(scratch: &Scratch) -> Command {
    let mut command = scratch.kiln();
    command
        .env("KILN_LEND", TOOLCHAIN)
        .env("KILN_CACHE_DIR", scratch.path().join("cache"));
    command
}

/// A plan with one phase that runs `script` with bash; the tools come from the host's `/usr`.
fn probe_plan(scratch: &Scratch, script: &str) -> PathBuf {
    let plan = serde_json::json!({
        "version": 1,
        "name": "probe",
        "inputs": { "tools": "/usr" },
        "phases": [
            { "name": "probe", "steps": [ { "run": { "argv": ["bash", "-c", script] } } ] }
        ]
    });
    scratch.write("probe.json", &plan.to_string())
}

fn run_probe(scratch: &Scratch, script: &str, extra: &[&str]) -> Output {
    let plan = probe_plan(scratch, script);
    let output = kiln(scratch)
        .arg("build")
        .arg(&plan)
        .args(["--out-dir", "out", "--no-cache"])
        .args(extra)
        .output()
        .unwrap();
    output
}

// ---------------------------------------------------------------------------------------------
// Escapes (must-show 2): each fails inside the sandbox.

#[test]
fn a_step_cannot_connect_to_the_hosts_loopback() {
    let scratch = Scratch::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = format!(
        "if (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null; then echo CONNECTED; exit 1; fi; \
         echo refused > \"$out\""
    );
    let output = run_probe(&scratch, &script, &[]);
    assert!(output.status.success(), "{}", describe(&output));
    assert!(
        listener.accept().is_err(),
        "the host's listener got a connection"
    );
    assert_eq!(
        std::fs::read_to_string(scratch.path().join("out/out")).unwrap(),
        "refused\n"
    );

    // The probe can tell: without the sandbox it connects.
    std::fs::remove_file(scratch.path().join("out/out")).unwrap();
    let output = run_probe(&scratch, &script, &["--no-sandbox"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("CONNECTED"), "{stderr}");
    assert!(listener.accept().is_ok());
    // ... and says loudly that there is no sandbox.
    assert!(
        stderr.contains("kiln: warning: --no-sandbox: the steps run on this machine as you"),
        "{stderr}"
    );
}

#[test]
fn a_step_cannot_write_to_a_host_path() {
    let scratch = Scratch::new();
    let host_dir = scratch.path().join("host");
    std::fs::create_dir(&host_dir).unwrap();
    let target = host_dir.join("escaped");
    let tmp_name = format!("kiln-escape-{}", std::process::id());
    let script = format!(
        "touch {} 2>/dev/null; touch /tmp/{tmp_name}; touch /usr/{tmp_name} 2>/dev/null; \
         echo done > \"$out\"",
        target.display()
    );
    let output = run_probe(&scratch, &script, &[]);
    assert!(output.status.success(), "{}", describe(&output));
    assert!(!target.exists(), "the step wrote {}", target.display());
    assert!(!Path::new("/tmp").join(&tmp_name).exists());
    assert!(!Path::new("/usr").join(&tmp_name).exists());

    // The probe can tell: without the sandbox the host file appears.
    std::fs::remove_file(scratch.path().join("out/out")).unwrap();
    let script = format!("touch {}; echo done > \"$out\"", target.display());
    let output = run_probe(&scratch, &script, &["--no-sandbox"]);
    assert!(output.status.success(), "{}", describe(&output));
    assert!(target.exists());
}

#[test]
fn a_step_cannot_see_host_processes() {
    let scratch = Scratch::new();
    let marker = unique_marker();
    let mut sleeper = Command::new("sleep").arg(&marker).spawn().unwrap();
    let script = "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < \"$f\"; echo; done > \"$out\"";
    let output = run_probe(&scratch, script, &[]);
    let seen = std::fs::read_to_string(scratch.path().join("out/out")).unwrap_or_default();
    std::fs::remove_file(scratch.path().join("out/out")).ok();
    let unsandboxed = run_probe(&scratch, script, &["--no-sandbox"]);
    let seen_outside = std::fs::read_to_string(scratch.path().join("out/out")).unwrap_or_default();
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();

    assert!(output.status.success(), "{}", describe(&output));
    assert!(
        seen.contains("bash -c"),
        "the step saw none of its own processes: {seen}"
    );
    assert!(
        !seen.contains(&marker),
        "the step saw a host process: {seen}"
    );
    assert!(unsandboxed.status.success(), "{}", describe(&unsandboxed));
    assert!(
        seen_outside.contains(&marker),
        "the probe cannot tell: {seen_outside}"
    );
}

#[test]
fn a_step_cannot_read_the_callers_environment() {
    let scratch = Scratch::new();
    let plan = probe_plan(&scratch, "env > \"$out\"");
    let output = kiln(&scratch)
        .arg("build")
        .arg(&plan)
        .args(["--out-dir", "out", "--no-cache"])
        .env("KILN_TEST_SECRET", "hunter2")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let env = std::fs::read_to_string(scratch.path().join("out/out")).unwrap();
    assert!(!env.contains("hunter2"), "{env}");
    assert!(!env.contains("KILN_LEND"), "{env}");
    assert!(env.contains("HOME=/homeless-shelter"), "{env}");
    assert!(env.contains("NIX_BUILD_TOP=/build"), "{env}");
}

#[test]
fn a_step_cannot_write_to_the_store() {
    let scratch = Scratch::new();
    assert!(
        Path::new("/nix/store").is_dir(),
        "these tests need Nix's store"
    );
    let name = format!("kiln-escape-{}", std::process::id());
    let script = format!(
        "if touch /nix/store/{name} 2>/dev/null; then echo WROTE; exit 1; fi; \
         if mkdir /nix/store/{name} 2>/dev/null; then echo WROTE; exit 1; fi; \
         grep ' /nix/store ' /proc/self/mountinfo > \"$out\""
    );
    let output = run_probe(&scratch, &script, &[]);
    assert!(output.status.success(), "{}", describe(&output));
    assert!(!Path::new("/nix/store").join(&name).exists());
    // Not only root's permissions: the store is mounted read-only in the sandbox.
    let mounts = std::fs::read_to_string(scratch.path().join("out/out")).unwrap();
    assert!(
        mounts.lines().next().is_some_and(|line| line
            .split(' ')
            .nth(5)
            .unwrap_or("")
            .split(',')
            .any(|o| o == "ro")),
        "{mounts}"
    );
}

#[test]
fn an_unprivileged_user_builds_in_the_sandbox() {
    // As root, become `nobody` (setpriv, util-linux); otherwise the tests already are not root.
    let scratch = Scratch::new();
    let plan = probe_plan(&scratch, "echo \"$(id -u) $(pwd)\" > \"$out\"");
    let root = nix::unistd::geteuid().is_root();
    if root {
        let chown = Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(scratch.path())
            .status()
            .unwrap();
        assert!(chown.success());
    }
    let mut command = if root {
        let mut setpriv = Command::new("setpriv");
        setpriv.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
        setpriv.arg(kiln_bin());
        setpriv
    } else {
        Command::new(kiln_bin())
    };
    let output = command
        .current_dir(scratch.path())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", scratch.path())
        .env("KILN_LEND", TOOLCHAIN)
        .arg("build")
        .arg(&plan)
        .args(["--out-dir", "out"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    // The build user inside, whoever ran kiln outside.
    assert_eq!(
        std::fs::read_to_string(scratch.path().join("out/out")).unwrap(),
        "1000 /build\n"
    );
}

#[test]
fn a_step_runs_as_the_build_user_in_build() {
    let scratch = Scratch::new();
    let output = run_probe(
        &scratch,
        "echo \"$(id -u):$(id -g) $(pwd) $(hostname)\" > \"$out\"",
        &[],
    );
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(
        std::fs::read_to_string(scratch.path().join("out/out")).unwrap(),
        "1000:100 /build localhost\n"
    );
}

/// Starts `kiln build` of a plan whose step runs `script` (with `$1` a unique marker), and waits
/// until the script's `sleep "$1"` is visible on the host.
fn spawn_sandboxed_long_step(
    scratch: &Scratch,
    script: &str,
    grace: &str,
) -> (std::process::Child, String) {
    let marker = unique_marker();
    let plan = serde_json::json!({
        "version": 1,
        "name": "long",
        "inputs": { "tools": "/usr" },
        "phases": [ { "name": "build", "steps": [
            { "run": { "argv": ["bash", "-c", script, "bash", marker] } } ] } ]
    });
    let plan = scratch.write("long.json", &plan.to_string());
    let child = kiln(scratch)
        .arg("build")
        .arg(&plan)
        .args(["--no-cache", "--kill-grace", grace])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = child;
    // `sleep` is what the scripts start last (after any `trap`), so seeing it means they are set.
    if !wait_for_process(&mut child, &format!("^sleep {marker}")) {
        child.kill().unwrap();
        let output = child.wait_with_output().unwrap();
        panic!("the step never started: {}", describe(&output));
    }
    (child, marker)
}

/// Waits until a host process's command line matches `pattern` (true), or `child` has exited
/// or two minutes have passed (false). The bound is generous: on a loaded two-core machine the
/// sandbox and the first phases can take many seconds to come up.
fn wait_for_process(child: &mut std::process::Child, pattern: &str) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        if !running(pattern).is_empty() {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    false
}

/// A number for `sleep` that no other process of this machine has in its command line.
pub(crate) fn unique_marker() -> String {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}.{}{count}", 3000 + count, std::process::id())
}

/// Host pids whose command line contains `marker`.
pub(crate) fn running(marker: &str) -> String {
    let found = Command::new("pgrep").args(["-f", marker]).output().unwrap();
    String::from_utf8_lossy(&found.stdout).trim().to_owned()
}

/// Waits up to 10 s for every process with `marker` to be gone; returns those left.
pub(crate) fn gone(marker: &str) -> String {
    for _ in 0..400 {
        let left = running(marker);
        if left.is_empty() {
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    running(marker)
}

#[test]
fn sigterm_during_a_sandboxed_step_leaves_no_process_alive() {
    let scratch = Scratch::new();
    let (child, marker) =
        spawn_sandboxed_long_step(&scratch, "sleep \"$1\" & sleep \"$1\"; wait", "5");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(128 + 15),
        "{:?} {stderr}",
        output.status
    );
    assert!(
        stderr.contains("phase `build`, step 1 (run): stopped by SIGTERM"),
        "{stderr}"
    );
    assert_eq!(gone(&marker), "", "processes survived kiln");
}

#[test]
fn a_sandboxed_step_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let scratch = Scratch::new();
    let (child, marker) = spawn_sandboxed_long_step(
        &scratch,
        "trap '' TERM INT; sleep \"$1\" & wait; wait",
        "0.3",
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(128 + 2), "{}", describe(&output));
    assert_eq!(gone(&marker), "", "processes survived kiln");
}

// ---------------------------------------------------------------------------------------------
// GNU hello: the plan Nix builds, built locally (must-shows 1 and 6).

/// The attributes of a derivation (its `__json`), as Nix would write `.attrs.json`.
fn derivation_attrs(fixture: &str, attr: Option<&str>, nonce: &str) -> serde_json::Value {
    require_nix();
    // The fixtures build with the stage-0 toolchain: its .debs must be in the store for the
    // evaluation, and the toolchain itself for a local build, which lends no compiler.
    crate::nix::stage0_toolchain();
    let sources = debian_source("hello");
    let mut instantiate = Command::new("nix-instantiate");
    instantiate
        .arg(root().join("tests/fixtures").join(fixture))
        .arg("--arg")
        .arg("kiln")
        .arg(static_kiln())
        .arg("--arg")
        .arg("debianSrc")
        .arg(&sources)
        .arg("--argstr")
        .arg("nonce")
        .arg(nonce);
    if let Some(attr) = attr {
        instantiate.arg("-A").arg(attr);
    }
    let output = instantiate.output().unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let drv = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let shown = Command::new("nix")
        .args([
            "--extra-experimental-features",
            "nix-command",
            "show-derivation",
        ])
        .arg(&drv)
        .output()
        .unwrap();
    assert!(shown.status.success(), "{}", describe(&shown));
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let json = shown[&drv]["env"]["__json"]
        .as_str()
        .expect("structured attrs");
    // As the derivation has them: `outputs` lists the names (Nix's `.attrs.json` would map
    // them to store paths); `kiln build --attrs` takes either, and picks the paths itself.
    serde_json::from_str(json).unwrap()
}

fn hello_attrs() -> serde_json::Value {
    derivation_attrs("debian/hello.nix", None, "local")
}

/// Runs `program` with an empty environment.
fn run_clean(program: &Path) -> Output {
    Command::new(program).env_clear().output().unwrap()
}

#[test]
fn the_hello_plan_nix_builds_builds_locally_in_the_sandbox() {
    let scratch = Scratch::new();
    let attrs = scratch.write("attrs.json", &hello_attrs().to_string());
    let started = std::time::Instant::now();
    let output = kiln(&scratch)
        .arg("build")
        .arg("--attrs")
        .arg(&attrs)
        .args(["--out-dir", "out", "--timings", "timings.json"])
        .output()
        .unwrap();
    eprintln!(
        "local hello build: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(output.status.success(), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    // hello's own test suite ran inside the sandbox.
    assert!(stderr.contains("# PASS:"), "{stderr}");

    let hello = scratch.path().join("out/out/bin/hello");
    let run = run_clean(&hello);
    assert!(run.status.success(), "{}", describe(&run));
    assert_eq!(String::from_utf8_lossy(&run.stdout), "Hello, world!\n");
    // Built for where it is: the output path is baked in (the locale directory).
    let binary = std::fs::read(&hello).unwrap();
    let prefix = scratch.path().join("out/out");
    let prefix = prefix.to_str().unwrap().as_bytes();
    assert!(binary.windows(prefix.len()).any(|w| w == prefix));

    // Timings: JSON with every phase, and a chart that shows every phase.
    let phases: Vec<String> = [
        "unpack",
        "patch",
        "configure",
        "build",
        "check",
        "install",
        "fixup",
    ]
    .map(str::to_owned)
    .to_vec();
    let timings: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(scratch.path().join("timings.json")).unwrap(),
    )
    .unwrap();
    let listed: Vec<String> = timings["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, phases);
    for phase in timings["phases"].as_array().unwrap() {
        if phase["name"] != "patch" {
            assert_eq!(phase["status"], "succeeded", "{phase}");
        }
    }
    let build = &timings["phases"][3];
    assert!(build["seconds"].as_f64().unwrap() > 0.5, "{build}");
    assert!(!build["steps"].as_array().unwrap().is_empty(), "{build}");
    let html = std::fs::read_to_string(scratch.path().join("timings.html")).unwrap();
    assert!(html.contains("<svg"), "{html}");
    for phase in &phases {
        assert!(
            html.contains(&format!(">{phase}<")),
            "no {phase} in the chart"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Resume (must-show 3).

/// hello's plan with its `check` phase replaced by one step.
fn hello_with_check(argv: &[&str]) -> serde_json::Value {
    let mut attrs = hello_attrs();
    attrs["kiln"]["edits"] = serde_json::json!([
        { "replace": { "phase": "check", "with": {
            "name": "check",
            "steps": [ { "run": { "argv": argv } } ]
        } } }
    ]);
    attrs
}

fn phases_started(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["type"] == "phase-started")
        .map(|event| event["data"]["phase"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_fixed_check_resumes_from_the_cached_states() {
    let scratch = Scratch::new();
    let failing = scratch.write(
        "failing.json",
        &hello_with_check(&["sh", "-c", "./hello | grep -q 'Hello, kiln'"]).to_string(),
    );
    let started = std::time::Instant::now();
    let first = kiln(&scratch)
        .args(["--log-format", "json", "build", "--attrs"])
        .arg(&failing)
        .args(["--out-dir", "out"])
        .output()
        .unwrap();
    let full = started.elapsed();
    assert_eq!(first.status.code(), Some(1), "{}", describe(&first));
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(stderr.contains("phase `check`, step 1 (run)"), "{stderr}");
    let resume = stderr
        .lines()
        .find_map(|line| {
            line.strip_prefix("hint: after fixing it, resume at the failed phase with: ")
        })
        .unwrap_or_else(|| panic!("no resume command: {stderr}"));
    assert!(resume.ends_with(" --from check"), "{resume}");
    assert!(
        !scratch.path().join("out/out").exists(),
        "partial output left"
    );

    // Fix the check in the same file and run the printed command.
    std::fs::write(
        &failing,
        hello_with_check(&["sh", "-c", "./hello | grep -q 'Hello, world'"]).to_string(),
    )
    .unwrap();
    let words: Vec<&str> = resume.split(' ').collect();
    assert_eq!(words[0], kiln_bin().to_str().unwrap());
    let started = std::time::Instant::now();
    let second = kiln(&scratch).args(&words[1..]).output().unwrap();
    let resumed = started.elapsed();
    assert!(second.status.success(), "{}", describe(&second));
    assert_eq!(
        phases_started(&second.stderr),
        ["check", "install", "fixup"]
    );
    let run = run_clean(&scratch.path().join("out/out/bin/hello"));
    assert_eq!(String::from_utf8_lossy(&run.stdout), "Hello, world!\n");
    eprintln!(
        "hello: full build (check failing) {:.2} s; --from check {:.2} s ({:.1} %)",
        full.as_secs_f64(),
        resumed.as_secs_f64(),
        100.0 * resumed.as_secs_f64() / full.as_secs_f64()
    );

    // An earlier phase changes: the cached states no longer match.
    let mut changed = hello_with_check(&["sh", "-c", "./hello | grep -q 'Hello, world'"]);
    changed["kiln"]["preset"]["configureFlags"] = serde_json::json!(["--disable-nls"]);
    let changed_path = scratch.write("changed.json", &changed.to_string());
    std::fs::remove_dir_all(scratch.path().join("out")).unwrap();
    let third = kiln(&scratch)
        .args(["build", "--attrs"])
        .arg(&changed_path)
        .args(["--out-dir", "out", "--from", "check"])
        .output()
        .unwrap();
    assert_eq!(third.status.code(), Some(2), "{}", describe(&third));
    let stderr = String::from_utf8_lossy(&third.stderr);
    assert!(
        stderr.contains(
            "no cached state to start at phase `check`: phase `build` has no cached state made \
             with these settings; the newest one differs: the plan up to this phase changed"
        ),
        "{stderr}"
    );
    assert!(!scratch.path().join("out/out").exists());
}

#[test]
fn a_step_cannot_make_kiln_write_through_its_exchange_files() {
    let scratch = Scratch::new();
    let victim = scratch.write("victim.txt", "precious\n");
    let plan = serde_json::json!({
        "version": 1,
        "name": "exchange",
        "inputs": { "tools": "/usr" },
        "phases": [
            { "name": "one", "steps": [ { "run": { "argv": ["bash", "-c", format!(
                "ln -sf {} /build/.kiln-phase-request.json; mkfifo /build/.kiln-phase-response.json",
                victim.display())] } } ] },
            { "name": "two", "steps": [ { "run": { "argv": ["bash", "-c", "echo ok > \"$out\""] } } ] }
        ]
    });
    let plan = scratch.write("exchange.json", &plan.to_string());
    let output = kiln(&scratch)
        .arg("build")
        .arg(&plan)
        .args(["--out-dir", "out", "--no-cache"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(
        std::fs::read_to_string(scratch.path().join("out/out")).unwrap(),
        "ok\n"
    );
}

/// A plan whose `check` runs `check` (a shell command) after a `build` that records its runs.
fn counting_plan(scratch: &Scratch, check: &str) -> PathBuf {
    let plan = serde_json::json!({
        "version": 1,
        "name": "counting",
        "inputs": { "tools": "/usr" },
        "phases": [
            { "name": "build", "steps": [ { "run": { "argv": ["bash", "-c", "echo built >> runs"] } } ] },
            { "name": "check", "steps": [ { "run": { "argv": ["bash", "-c", check] } } ] },
            { "name": "install", "steps": [ { "run": { "argv": ["bash", "-c", "cp runs \"$out\""] } } ] }
        ]
    });
    scratch.write("counting.json", &plan.to_string())
}

#[test]
fn without_the_sandbox_a_build_dir_resumes_and_partial_outputs_go() {
    let scratch = Scratch::new();
    let plan = counting_plan(&scratch, "mkdir -p \"$out\"; false");
    let first = kiln(&scratch)
        .arg("build")
        .arg(&plan)
        .args(["--no-sandbox", "--out-dir", "out", "--build-dir"])
        .arg(scratch.path().join("b"))
        .output()
        .unwrap();
    assert_eq!(first.status.code(), Some(1), "{}", describe(&first));
    assert!(
        !scratch.path().join("out/out").exists(),
        "partial output left"
    );
    let stderr = String::from_utf8_lossy(&first.stderr);
    let resume = stderr
        .lines()
        .find_map(|line| {
            line.strip_prefix("hint: after fixing it, resume at the failed phase with: ")
        })
        .unwrap_or_else(|| panic!("no resume command: {stderr}"));
    assert!(resume.starts_with("rm -rf "), "{resume}");

    counting_plan(&scratch, "true");
    let second = Command::new("bash")
        .args(["-c", resume])
        .current_dir(scratch.path())
        .env("KILN_CACHE_DIR", scratch.path().join("cache"))
        .output()
        .unwrap();
    assert!(second.status.success(), "{}", describe(&second));
    // `build` ran once: the second run started at `check` from the cached state.
    assert_eq!(
        std::fs::read_to_string(scratch.path().join("out/out")).unwrap(),
        "built\n"
    );
}

// ---------------------------------------------------------------------------------------------
// Shell and env (must-show 4).

fn shell_plan(scratch: &Scratch) -> PathBuf {
    let plan = serde_json::json!({
        "version": 1,
        "name": "shell-test",
        "inputs": { "tools": "/usr" },
        "env": { "GREETING": "hello from the plan" },
        "phases": [
            { "name": "unpack", "steps": [ { "mkdir": { "path": "src" } },
                                            { "write": { "path": "src/marker", "content": "unpacked\n" } } ] },
            { "name": "build", "cwd": "src", "steps": [ { "run": { "argv": ["true"] } } ] },
            { "name": "install", "steps": [ { "mkdir": { "path": "${outputs.out}" } } ] }
        ]
    });
    scratch.write("shell.json", &plan.to_string())
}

/// `command` (a shell command line running kiln) on a pseudo-terminal made by script(1), whose
/// stdin is typed into it, in `scratch` with the toolchain lent and the cache there.
fn on_a_terminal(scratch: &Scratch, command: &str, term: &str) -> Command {
    let mut script = Command::new("script");
    script
        .args(["-qfec", command, "/dev/null"])
        .current_dir(scratch.path())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("TMPDIR", scratch.path())
        .env("TERM", term)
        .env("KILN_LEND", TOOLCHAIN)
        .env("KILN_CACHE_DIR", scratch.path().join("cache"));
    script
}

#[test]
fn kiln_shell_opens_where_the_phase_starts_and_leaves_nothing_behind() {
    let scratch = Scratch::new();
    let plan = shell_plan(&scratch);
    let marker = unique_marker();
    let command = format!(
        "{} shell {} --at build --out-dir out",
        kiln_bin().display(),
        plan.display()
    );
    // script(1) gives kiln a pseudo-terminal; its stdin is typed into it.
    let mut child = on_a_terminal(&scratch, &command, "dumb")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    write!(
        stdin,
        "echo \"PWD=$(pwd)\"; echo \"G=$GREETING\"; cat marker; echo \"UID=$(id -u)\"\n\
         sleep {marker} & n=0; until BG=$(pgrep -f {marker}) || [ $n -ge 1200 ]; do n=$((n+1)); sleep 0.05; done; echo \"BG=$BG\"\n\
         exit\n"
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    drop(stdin);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", describe(&output));
    assert!(text.contains("PWD=/build/src"), "{text}");
    assert!(text.contains("G=hello from the plan"), "{text}");
    assert!(text.contains("unpacked"), "{text}");
    assert!(text.contains("UID=1000"), "{text}");
    // The background process really ran (inside, it has a pid of the sandbox's own). The shell
    // polls because a job forked with `&` takes a moment to exec `sleep` and show its argv.
    assert!(
        text.lines()
            .any(|line| line.starts_with("BG=") && line.len() > 3),
        "{text}"
    );
    let left = Command::new("pgrep")
        .args(["-f", &marker])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "processes left behind: {}",
        String::from_utf8_lossy(&left.stdout)
    );
    // The shell's build directory and the outputs' staging directory are gone.
    let leftovers: Vec<_> = std::fs::read_dir(scratch.path())
        .unwrap()
        .chain(std::fs::read_dir(scratch.path().join("out")).unwrap())
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("kiln-build-") || name.starts_with(".kiln-staging-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// `kiln build` on a pseudo-terminal (script(1)), with `NO_COLOR` set to `no_color`.
fn build_on_a_terminal(scratch: &Scratch, plan: &Path, no_color: &str) -> String {
    let command = format!(
        "{} build {} --out-dir out-{} --no-cache",
        kiln_bin().display(),
        plan.display(),
        no_color.len()
    );
    let output = on_a_terminal(scratch, &command, "xterm")
        .env("NO_COLOR", no_color)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_terminal_gets_the_progress_display_and_no_color_is_honoured() {
    let scratch = Scratch::new();
    let plan = shell_plan(&scratch);
    let plain = build_on_a_terminal(&scratch, &plan, "1");
    for phase in ["unpack", "build", "install"] {
        assert!(
            plain
                .lines()
                .any(|line| line.contains(&format!("✓ {phase}"))),
            "no finished line for {phase}: {plain:?}"
        );
    }
    assert!(plain.contains("build shell-test succeeded"), "{plain:?}");
    assert!(
        !plain.contains("\x1b[32m"),
        "colour despite NO_COLOR: {plain:?}"
    );
    // Without NO_COLOR the same lines are coloured.
    let coloured = build_on_a_terminal(&scratch, &plan, "");
    assert!(coloured.contains("\x1b[32m✓"), "{coloured:?}");
}

#[test]
fn sigterm_to_kiln_shell_ends_the_shell_and_everything_in_it() {
    let scratch = Scratch::new();
    let plan = shell_plan(&scratch);
    let marker = unique_marker();
    let command = format!(
        "{} shell {} --at build --out-dir out",
        kiln_bin().display(),
        plan.display()
    );
    let mut child = on_a_terminal(&scratch, &command, "dumb")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "sleep {marker} & sleep {marker}").unwrap();
    let started = wait_for_process(&mut child, &format!("^sleep {marker}"));
    // kiln itself, not script(1), whose command line holds the same words.
    let shell = Command::new("pgrep")
        .args([
            "-f",
            &format!("^{} shell {}", kiln_bin().display(), plan.display()),
        ])
        .output()
        .unwrap();
    let pid: i32 = String::from_utf8_lossy(&shell.stdout)
        .lines()
        .next()
        .and_then(|line| line.trim().parse().ok())
        .unwrap_or(0);
    if pid > 0 {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
    }
    let left = gone(&marker);
    drop(stdin);
    if !left.is_empty() {
        // Do not wait for a shell that survived: end it, then fail.
        for pid in left.lines() {
            let _ = Command::new("kill").args(["-9", pid]).status();
        }
        let _ = child.kill();
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        started,
        "the shell never ran the command: {}",
        describe(&output)
    );
    assert!(pid > 0, "no kiln shell process");
    assert_eq!(left, "", "processes survived kiln shell");
    // script -e passes kiln's status on: stopped by SIGTERM.
    assert_eq!(
        output.status.code(),
        Some(128 + 15),
        "{}",
        describe(&output)
    );
    let leftovers: Vec<_> = std::fs::read_dir(scratch.path().join("out"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn kiln_env_prints_the_phase_environment_from_the_cached_state() {
    let scratch = Scratch::new();
    let plan = shell_plan(&scratch);
    let until = kiln(&scratch)
        .args(["build"])
        .arg(&plan)
        .args(["--out-dir", "out", "--until", "unpack"])
        .output()
        .unwrap();
    assert!(until.status.success(), "{}", describe(&until));
    let stderr = String::from_utf8_lossy(&until.stderr);
    assert!(stderr.contains("--from build"), "{stderr}");
    assert!(!scratch.path().join("out/out").exists());

    let env = kiln(&scratch)
        .args(["env"])
        .arg(&plan)
        .args(["--out-dir", "out", "--at", "build"])
        .output()
        .unwrap();
    assert!(env.status.success(), "{}", describe(&env));
    let shown: serde_json::Value = serde_json::from_slice(&env.stdout).unwrap();
    assert_eq!(shown["cwd"], "/build/src");
    assert_eq!(shown["env"]["GREETING"], "hello from the plan");
    assert_eq!(shown["env"]["HOME"], "/homeless-shelter");
    assert_eq!(
        shown["env"]["out"],
        scratch.path().join("out/out").to_str().unwrap()
    );
    assert_eq!(shown["from"], "the cached state");

    let sh = kiln(&scratch)
        .args(["env"])
        .arg(&plan)
        .args(["--out-dir", "out", "--at", "build", "--format", "sh"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&sh.stdout);
    assert!(
        text.contains("export GREETING='hello from the plan'\n"),
        "{text}"
    );

    // The rest of the build goes on from the cache.
    let rest = kiln(&scratch)
        .args(["--log-format", "json", "build"])
        .arg(&plan)
        .args(["--out-dir", "out", "--from", "build"])
        .output()
        .unwrap();
    assert!(rest.status.success(), "{}", describe(&rest));
    assert_eq!(phases_started(&rest.stderr), ["build", "install"]);
    assert!(scratch.path().join("out/out").is_dir());
}

// ---------------------------------------------------------------------------------------------
// A state from a split derivation (must-show 5).

#[test]
fn a_state_made_by_a_split_derivation_runs_its_next_phase_locally() {
    let scratch = Scratch::new();
    let nonce = "local-state";
    // The check part of the split hello chain: its plan, and the state after `build` it reads.
    let attrs = derivation_attrs("split/hello.nix", Some("split.checkDrv"), nonce);
    let state = attrs["kilnSplit"]["state"].as_str().unwrap().to_owned();
    let sources = debian_source("hello");
    let built = crate::nix::nix_build(
        "split/hello.nix",
        nonce,
        &[
            "-A",
            "split.checkDrv",
            "--arg",
            "debianSrc",
            sources.to_str().unwrap(),
        ],
    );
    assert!(built.status.success(), "{}", describe(&built));
    assert!(Path::new(&state).join("manifest.json").is_file());

    let attrs_path = scratch.write("check.json", &attrs.to_string());
    let output = kiln(&scratch)
        .args(["--log-format", "json", "build", "--attrs"])
        .arg(&attrs_path)
        .args(["--state", &state, "--only", "check", "--out-dir", "out"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(phases_started(&output.stderr), ["check"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("# PASS:"),
        "hello's tests did not run: {stderr}"
    );

    // The same state with a plan of something else is refused.
    let mut other = attrs.clone();
    other["kiln"]["preset"]["configureFlags"] = serde_json::json!(["--disable-nls"]);
    let other_path = scratch.write("other.json", &other.to_string());
    let refused = kiln(&scratch)
        .args(["build", "--attrs"])
        .arg(&other_path)
        .args(["--state", &state, "--only", "check", "--out-dir", "out2"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", describe(&refused));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("was made by a different plan"));
    assert!(
        !scratch.path().join("out2").exists(),
        "created before refusing"
    );

    // A phase the state already includes cannot be run again from it.
    let before = kiln(&scratch)
        .args(["build", "--attrs"])
        .arg(&attrs_path)
        .args([
            "--state",
            &state,
            "--from",
            "configure",
            "--out-dir",
            "out3",
        ])
        .output()
        .unwrap();
    assert_eq!(before.status.code(), Some(2), "{}", describe(&before));
    assert!(
        String::from_utf8_lossy(&before.stderr)
            .contains("the state already includes phase `build`"),
        "{}",
        describe(&before)
    );
}

/// The phase cache keeps several states per phase: a build into other directories (as a
/// `kiln shell` without `--out-dir` used to make) no longer replaces the states of the first
/// build, and a miss says which part of the key differs.
#[test]
fn the_phase_cache_keeps_states_of_several_directories_and_says_what_differs() {
    let scratch = Scratch::new();
    let plan = serde_json::json!({
        "version": 1,
        "name": "several",
        "phases": [
            { "name": "build", "steps": [
                { "write": { "path": "${build.top}/built.txt", "content": "built\n" } } ] },
            { "name": "install", "steps": [
                { "copy": { "from": "${build.top}/built.txt", "to": "${outputs.out}" } } ] }
        ]
    });
    let plan = scratch.write("several.json", &plan.to_string());
    let build = |out_dir: &str, extra: &[&str]| {
        kiln(&scratch)
            .arg("build")
            .arg(&plan)
            .args(["--out-dir", out_dir])
            .args(extra)
            .output()
            .unwrap()
    };
    let first = build("a", &[]);
    assert!(first.status.success(), "{}", describe(&first));
    let other = build("b", &["--until", "build"]);
    assert!(other.status.success(), "{}", describe(&other));
    let build_states = scratch.path().join("cache/several/build");
    assert_eq!(std::fs::read_dir(&build_states).unwrap().count(), 2);

    // The first build's state is still there.
    std::fs::remove_dir_all(scratch.path().join("a")).unwrap();
    let resumed = build("a", &["--from", "install"]);
    assert!(resumed.status.success(), "{}", describe(&resumed));
    assert_eq!(
        std::fs::read_to_string(scratch.path().join("a/out")).unwrap(),
        "built\n"
    );

    // A third directory has none; the newest state there is `b`'s.
    let missing = build("c", &["--from", "install"]);
    assert_eq!(missing.status.code(), Some(2), "{}", describe(&missing));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    let (here, there) = (scratch.path().join("c/out"), scratch.path().join("b/out"));
    assert!(
        stderr.contains(&format!(
            "phase `build` has no cached state made with these settings; the newest one differs: \
             the output directory of `out` differs: `{}` here, `{}` there",
            here.display(),
            there.display()
        )),
        "{stderr}"
    );

    // At most StateCache::KEEP (4) states per phase stay.
    for dir in ["d", "e", "f", "g"] {
        let output = build(dir, &["--until", "build"]);
        assert!(output.status.success(), "{}", describe(&output));
    }
    assert_eq!(std::fs::read_dir(&build_states).unwrap().count(), 4);
}

/// `kiln env` (and `kiln shell`) without `--out-dir` stand where the last `kiln build` of the
/// plan stood, so they find its cached states instead of rebuilding the early phases.
#[test]
fn kiln_env_without_out_dir_reuses_the_last_builds_states() {
    let scratch = Scratch::new();
    let plan = shell_plan(&scratch);
    let until = kiln(&scratch)
        .args(["build"])
        .arg(&plan)
        .args(["--out-dir", "elsewhere", "--until", "unpack"])
        .output()
        .unwrap();
    assert!(until.status.success(), "{}", describe(&until));
    let env = kiln(&scratch)
        .args(["env"])
        .arg(&plan)
        .args(["--at", "build"])
        .output()
        .unwrap();
    assert!(env.status.success(), "{}", describe(&env));
    let shown: serde_json::Value = serde_json::from_slice(&env.stdout).unwrap();
    assert_eq!(shown["from"], "the cached state");
    assert_eq!(
        shown["env"]["out"],
        scratch.path().join("elsewhere/out").to_str().unwrap()
    );
    // An explicit --out-dir still wins (and has no state there).
    let other = kiln(&scratch)
        .args(["env"])
        .arg(&plan)
        .args(["--out-dir", "kiln-out", "--at", "build"])
        .output()
        .unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&other.stdout).unwrap();
    assert_eq!(
        shown["from"],
        "the start of the build",
        "{}",
        describe(&other)
    );
}
