//! Builds under real Nix (2.8, sandboxed) with the static kiln as the derivation's builder.
//!
//! These tests need `nix-build` and fail when it is missing (run `scripts/setup.sh`). They use
//! the static binary named by `KILN_STATIC_BIN` (set by `scripts/test.sh`) or build it once into
//! `target/static`. Fixtures live in `tests/fixtures/`; each build gets a fresh `nonce` so Nix
//! really runs it instead of reusing a store path. Nothing of the host is lent to the sandbox:
//! the fixtures build with kiln's stage-0 store toolchain (`bootstrap/stage0`), and `/bin/sh` is
//! that toolchain's dash, mapped with `sandbox-paths` as NixOS maps its own.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use crate::common::describe;

/// The options of `KILN_NIX_PURE_OPTS` in `scripts/lib.sh` without `/bin/sh`: a real sandbox
/// that may not silently fall back to none, no binary cache, and nothing of the host.
pub(crate) const NIX_OPTIONS: &[&str] = &[
    "--option",
    "sandbox",
    "true",
    "--option",
    "sandbox-fallback",
    "false",
    "--option",
    "substituters",
    "",
];

/// `KILN_NIX_PURE_OPTS` of `scripts/lib.sh`: [`NIX_OPTIONS`] and `/bin/sh` mapped to the
/// stage-0 toolchain's dash (a store path, with its closure), as NixOS and upstream Nix map
/// theirs with `sandbox-paths`. Builds the stage-0 toolchain once per test run.
pub(crate) fn pure_options() -> &'static [String] {
    static OPTIONS: OnceLock<Vec<String>> = OnceLock::new();
    OPTIONS.get_or_init(|| {
        let mut options: Vec<String> = NIX_OPTIONS.iter().map(|o| (*o).to_owned()).collect();
        options.extend([
            "--option".to_owned(),
            "extra-sandbox-paths".to_owned(),
            format!("/bin/sh={}/usr/bin/dash", stage0_toolchain().display()),
        ]);
        options
    })
}

/// The stage-0 toolchain's store path, built once per test run.
pub(crate) fn stage0_toolchain() -> &'static Path {
    static TOOLCHAIN: OnceLock<PathBuf> = OnceLock::new();
    TOOLCHAIN.get_or_init(|| {
        stage0_debs();
        let expression = format!(
            "(import {}/bootstrap/stage0 {{ kiln = {}; }}).toolchain",
            root().display(),
            static_kiln().display()
        );
        let output = Command::new("nix-build")
            .args(["--no-out-link", "-E", &expression])
            .args(NIX_OPTIONS)
            .output()
            .expect("nix-build runs");
        assert!(
            output.status.success(),
            "building the stage-0 toolchain failed:\n{}",
            describe(&output)
        );
        out_path(&output)
    })
}

/// Adds the stage-0 toolchain's pinned `.deb`s to the store, once per test run
/// (`scripts/fetch-stage0-debs.sh`: cached outside the repository, a second run only hashes).
pub(crate) fn stage0_debs() {
    static FETCHED: OnceLock<()> = OnceLock::new();
    FETCHED.get_or_init(|| {
        let output = Command::new("bash")
            .arg(root().join("scripts/fetch-stage0-debs.sh"))
            .output()
            .expect("bash runs");
        assert!(
            output.status.success(),
            "scripts/fetch-stage0-debs.sh failed:\n{}",
            describe(&output)
        );
    });
}

pub(crate) fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The static kiln binary: `KILN_STATIC_BIN`, or built once here like `scripts/build-static.sh`.
pub(crate) fn static_kiln() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(path) = std::env::var_os("KILN_STATIC_BIN") {
            return PathBuf::from(path);
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(root())
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .args([
                "build",
                "--release",
                "--quiet",
                "--target",
                "x86_64-unknown-linux-gnu",
                "--target-dir",
                "target/static",
                "-p",
                "kiln",
            ])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the static kiln failed");
        root().join("target/static/x86_64-unknown-linux-gnu/release/kiln")
    })
}

/// A value no earlier build used, so Nix builds instead of reusing.
pub(crate) fn nonce() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub(crate) fn require_nix() {
    let found = Command::new("nix-build").arg("--version").output();
    assert!(
        found.map(|o| o.status.success()).unwrap_or(false),
        "nix-build is not installed: these tests need real Nix; run `bash scripts/setup.sh`"
    );
}

/// `nix-build FIXTURE --arg kiln BIN --argstr nonce NONCE ... --no-out-link EXTRA...`, with
/// [`pure_options`].
pub(crate) fn nix_build(fixture: &str, nonce: &str, extra: &[&str]) -> Output {
    let expression = root().join("tests/fixtures").join(fixture);
    nix_build_file(&expression, nonce, extra)
}

/// [`nix_build`] of any expression file.
pub(crate) fn nix_build_file(expression: &Path, nonce: &str, extra: &[&str]) -> Output {
    let options: Vec<&str> = pure_options().iter().map(String::as_str).collect();
    nix_build_with(expression, nonce, &options, extra)
}

/// [`nix_build`] of any expression file with the given Nix options.
pub(crate) fn nix_build_with(
    expression: &Path,
    nonce: &str,
    options: &[&str],
    extra: &[&str],
) -> Output {
    require_nix();
    Command::new("nix-build")
        .arg(expression)
        .arg("--arg")
        .arg("kiln")
        .arg(static_kiln())
        .args(["--argstr", "nonce", nonce])
        .args(options)
        .arg("--no-out-link")
        .args(extra)
        .output()
        .expect("nix-build runs")
}

pub(crate) fn out_path(output: &Output) -> PathBuf {
    let stdout = String::from_utf8_lossy(&output.stdout);
    PathBuf::from(
        stdout
            .lines()
            .last()
            .expect("nix-build prints the output path"),
    )
}

/// The `@nix` events of an `--log-format internal-json` run.
pub(crate) fn internal_json(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter_map(|line| line.strip_prefix("@nix "))
        .map(|json| serde_json::from_str(json).expect("Nix writes JSON"))
        .collect()
}

/// Phases Nix reported (`result` events of type 104, resSetPhase), in order.
fn reported_phases(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["action"] == "result" && e["type"] == 104)
        .map(|e| e["fields"][0].as_str().unwrap().to_owned())
        .collect()
}

/// The phase names of a fixture's plan, read from the derivation itself.
fn plan_phases(fixture: &str) -> Vec<String> {
    stage0_debs();
    let expression = format!(
        "map (phase: phase.name) (import {} {{ kiln = {}; }}).kiln.phases",
        root().join("tests/fixtures").join(fixture).display(),
        static_kiln().display()
    );
    let output = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "--expr", &expression])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The only path the tests lend to Nix's sandbox is `/bin/sh`, mapped to a store path; no test
/// or script the tests run passes `extra-sandbox-paths` any other way.
#[test]
fn the_sandbox_is_lent_no_host_path() {
    let lent: Vec<&String> = pure_options()
        .windows(2)
        .filter(|pair| pair[0] == "extra-sandbox-paths")
        .map(|pair| &pair[1])
        .collect();
    assert_eq!(lent.len(), 1, "{lent:?}");
    let (target, source) = lent[0].split_once('=').expect("a mapping");
    assert_eq!(target, "/bin/sh");
    assert!(
        source.starts_with("/nix/store/")
            && source.ends_with("-kiln-stage0-toolchain/usr/bin/dash"),
        "{source}"
    );
    assert!(!NIX_OPTIONS.contains(&"extra-sandbox-paths"));
    for dir in ["tests/it", "tests/fixtures"] {
        for entry in walkdir(&root().join(dir)) {
            let text = std::fs::read_to_string(&entry).unwrap_or_default();
            let lends = text.lines().any(|line| {
                line.contains("extra-sandbox-paths")
                    && !line.trim_start().starts_with("//")
                    && !line.trim_start().starts_with('#')
            });
            assert!(
                !lends || entry.ends_with("tests/it/nix.rs"),
                "{} lends paths to the sandbox",
                entry.display()
            );
        }
    }
}

/// Every file below `dir`.
fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walkdir(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn hello_c_builds_in_the_sandbox_and_runs() {
    let output = nix_build("hello-c", &nonce(), &[]);
    assert!(output.status.success(), "{}", describe(&output));
    let program = out_path(&output).join("bin/hello-kiln");
    let run = Command::new(&program).output().unwrap();
    assert!(run.status.success(), "{}", describe(&run));
    assert!(
        String::from_utf8_lossy(&run.stdout).contains("Hello from kiln!"),
        "{}",
        describe(&run)
    );
    // The check phase ran the program inside the build; its output reached Nix's log.
    assert!(String::from_utf8_lossy(&output.stderr).contains("Hello from kiln!"));
}

#[test]
fn nix_check_reproduces_the_build_bit_for_bit() {
    let nonce = nonce();
    let first = nix_build("hello-c", &nonce, &[]);
    assert!(first.status.success(), "{}", describe(&first));
    let check = nix_build("hello-c", &nonce, &["--check"]);
    assert!(check.status.success(), "{}", describe(&check));
}

#[test]
fn nix_reports_exactly_the_plan_phases_in_order() {
    let expected = plan_phases("hello-c");
    assert_eq!(expected, ["configure", "build", "install", "check"]);
    let output = nix_build("hello-c", &nonce(), &["--log-format", "internal-json"]);
    assert!(output.status.success(), "{}", describe(&output));
    let events = internal_json(&output);
    assert_eq!(reported_phases(&events), expected);
    // kiln's step messages reach Nix as `msg` events at a debug level (5 = chatty); Nix's
    // internal-json passes every level on and leaves filtering to the reader.
    let step_message = events.iter().find(|event| {
        event["action"] == "msg"
            && event["msg"]
                .as_str()
                .is_some_and(|msg| msg.starts_with(DEBUG_MESSAGE))
    });
    let step_message = step_message.expect("kiln reports its steps as msg events");
    assert!(
        step_message["level"].as_u64().unwrap() >= 5,
        "{step_message}"
    );
}

/// How kiln announces the first step of `build` in hello-c, at Nix's chatty level.
const DEBUG_MESSAGE: &str = "kiln: phase `build` step 1: run gcc";

#[test]
fn kiln_debug_messages_show_with_vvvvv_and_not_by_default() {
    let verbose = nix_build("hello-c", &nonce(), &["-vvvvv"]);
    assert!(verbose.status.success(), "{}", describe(&verbose));
    let stderr = String::from_utf8_lossy(&verbose.stderr);
    assert!(stderr.contains(DEBUG_MESSAGE), "{stderr}");

    let default = nix_build("hello-c", &nonce(), &[]);
    assert!(default.status.success(), "{}", describe(&default));
    let stderr = String::from_utf8_lossy(&default.stderr);
    assert!(
        stderr.contains("Hello from kiln!"),
        "the build log is shown: {stderr}"
    );
    assert!(!stderr.contains(DEBUG_MESSAGE), "{stderr}");
}

#[test]
fn a_failing_step_is_visible_in_nix_output() {
    let output = nix_build("failing", &nonce(), &[]);
    assert!(!output.status.success(), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("error: build of `kiln-failing` failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("phase `build`, step 1 (run): `false` exited with code 1"),
        "{stderr}"
    );
    assert!(stderr.contains("failed with exit code 1"), "{stderr}");
    // The install phase never ran, so the output does not exist.
    assert!(
        !stderr.contains("install ran after a failed build"),
        "{stderr}"
    );
}

/// Two outputs that embed each other's path: kiln names both files (with the offset of the
/// other output's hash in each) and says what to do, instead of Nix's "cycle detected" at
/// registration.
#[test]
fn outputs_that_refer_to_each_other_fail_naming_the_files() {
    require_nix();
    let expression = format!(
        r#"let lib = import {}/bootstrap {{ kiln = {}; }}; in lib.mkDerivation {{
             name = "kiln-cycle"; nonce = "{}"; outputs = [ "out" "dev" ];
             phases = [ {{ name = "install"; steps = [
               {{ write = {{ path = "${{lib.refs.out}}/lib/libx.so"; content = "x${{lib.refs.output "dev"}}/include"; }}; }}
               {{ write = {{ path = "${{lib.refs.output "dev"}}/lib/pkgconfig/x.pc"; content = "libdir=${{lib.refs.out}}/lib
"; }}; }}
               {{ fixup = {{ }}; }}
             ]; }} ];
           }}"#,
        root().display(),
        static_kiln().display(),
        nonce()
    );
    let output = nix_build_expr(&expression);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "outputs `dev` and `out` refer to each other, which Nix cannot register",
        "`dev` → `out`: `/nix/store/",
        "-kiln-cycle-dev/lib/pkgconfig/x.pc` at byte 18 (the hash)",
        "`out` → `dev`: `/nix/store/",
        "-kiln-cycle/lib/libx.so` at byte 12 (the hash)",
        "or merge the two outputs",
    ] {
        assert!(stderr.contains(expected), "no `{expected}` in:\n{stderr}");
    }
    assert!(!stderr.contains("cycle detected in build"), "{stderr}");
}

/// `nix-build --expr EXPRESSION --no-out-link` in the sandbox, for a build that needs no
/// `/bin/sh`.
fn nix_build_expr(expression: &str) -> Output {
    Command::new("nix-build")
        .args(["--expr", expression, "--no-out-link"])
        .args(NIX_OPTIONS)
        .output()
        .expect("nix-build runs")
}

#[test]
fn an_invalid_plan_fails_the_derivation_with_its_json_path() {
    require_nix();
    let expression = format!(
        r#"(import {}/bootstrap {{ kiln = {}; }}).mkDerivation {{
             name = "kiln-invalid"; nonce = "{}";
             phases = [ {{ name = "build"; stesp = [ ]; }} ];
           }}"#,
        root().display(),
        static_kiln().display(),
        nonce()
    );
    let output = nix_build_expr(&expression);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("at `kiln.phases[0].stesp`"), "{stderr}");
    assert!(stderr.contains("did you mean `steps`?"), "{stderr}");
    assert!(stderr.contains("failed with exit code 2"), "{stderr}");
}

/// The directory holding a Debian source package's files (`scripts/fetch-debian-source.sh`,
/// a cache outside the repository), downloaded on first use, one download at a time (the first
/// one adds the deb-src entry and runs `apt-get update`, which concurrent runs would fight over).
pub(crate) fn debian_source(package: &str) -> PathBuf {
    static DOWNLOADS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = DOWNLOADS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let output = Command::new("bash")
        .arg(root().join("scripts/fetch-debian-source.sh"))
        .arg(package)
        .output()
        .expect("bash runs");
    assert!(
        output.status.success(),
        "fetching the Debian source package {package} failed:\n{}",
        describe(&output)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let dir = PathBuf::from(
        stdout
            .lines()
            .last()
            .expect("the script prints the directory"),
    );
    assert!(dir.is_dir(), "{}", describe(&output));
    dir
}
