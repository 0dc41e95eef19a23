//! Builds under real Nix (sandboxed) with the static kiln as the derivation's builder: the host's
//! Nix 2.8, and for the tests marked [`on_both_nix`] also Nix 2.26 in the trixie root of
//! `scripts/setup-nix-current.sh` (each such test is two: `NAME::nix_2_8`, `NAME::nix_2_26`).
//!
//! These tests need `nix-build` and fail when it is missing (run `scripts/setup.sh`, and
//! `scripts/setup-nix-current.sh` for 2.26). They use
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

/// A Nix to test against: Debian bookworm's 2.8 on the host, or Debian trixie's 2.26 in the root
/// `scripts/setup-nix-current.sh` makes, entered through `scripts/nix-current` (a store of its
/// own under the root; the repository, `/tmp` and `~/.cache/kiln` at the same paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nix {
    /// `nix-bin` 2.8 of the host.
    V2_8,
    /// `nix-bin` 2.26 of the trixie root.
    V2_26,
}

impl Nix {
    /// `Nix 2.8`, `Nix 2.26`: what a test says it ran on.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Nix::V2_8 => "Nix 2.8",
            Nix::V2_26 => "Nix 2.26",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// A command of this Nix (`nix-build`, `nix-store`, …) or any program run where its store
    /// is (a program built into the store, `bash`).
    pub(crate) fn command(self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        match self {
            Nix::V2_8 => Command::new(program),
            Nix::V2_26 => {
                let mut command = Command::new(root().join("scripts/nix-current"));
                command.arg(program);
                command
            }
        }
    }

    /// Fails (never skips) when this Nix is missing, saying how to set it up.
    pub(crate) fn require(self) {
        static CHECKED: [OnceLock<()>; 2] = [OnceLock::new(), OnceLock::new()];
        CHECKED[self.index()].get_or_init(|| {
            let found = self.command("nix-build").arg("--version").output();
            let (setup, version) = match self {
                Nix::V2_8 => ("bash scripts/setup.sh", "2.8"),
                Nix::V2_26 => ("bash scripts/setup-nix-current.sh", "2.26"),
            };
            let ok = found.as_ref().is_ok_and(|output| {
                output.status.success()
                    && String::from_utf8_lossy(&output.stdout).contains(&format!("(Nix) {version}"))
            });
            assert!(
                ok,
                "{} is not installed: these tests need real Nix; run `{setup}`",
                self.name()
            );
        });
    }

    /// Where the host sees a path of this Nix's store (2.26's store lies under its root).
    pub(crate) fn host_path(self, path: &Path) -> PathBuf {
        match self {
            Nix::V2_8 => path.to_owned(),
            Nix::V2_26 => {
                let cache = std::env::var_os("KILN_CACHE")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| {
                        PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                            .join(".cache/kiln")
                    });
                let nix_root = std::env::var_os("KILN_NIX_CURRENT_ROOT")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| cache.join("nix-current/root"));
                nix_root.join(path.strip_prefix("/").unwrap_or(path))
            }
        }
    }
}

/// The two tests of a test body `fn NAME(nix: Nix)`, one per Nix version: `NAME::nix_2_8`
/// and `NAME::nix_2_26`, so that a test's name says which Nix it ran on.
macro_rules! on_both_nix {
    ($name:ident) => {
        mod $name {
            #[test]
            fn nix_2_8() {
                super::$name($crate::nix::Nix::V2_8)
            }

            #[test]
            fn nix_2_26() {
                super::$name($crate::nix::Nix::V2_26)
            }
        }
    };
}
pub(crate) use on_both_nix;

/// `KILN_NIX_PURE_OPTS` of `scripts/lib.sh` on Nix 2.8: see [`pure_options_on`].
pub(crate) fn pure_options() -> &'static [String] {
    pure_options_on(Nix::V2_8)
}

/// `KILN_NIX_PURE_OPTS` of `scripts/lib.sh`: [`NIX_OPTIONS`] and `/bin/sh` mapped to the
/// stage-0 toolchain's dash (a store path, with its closure), as NixOS and upstream Nix map
/// theirs with `sandbox-paths`. Builds the stage-0 toolchain once per test run and Nix.
pub(crate) fn pure_options_on(nix: Nix) -> &'static [String] {
    static OPTIONS: [OnceLock<Vec<String>>; 2] = [OnceLock::new(), OnceLock::new()];
    OPTIONS[nix.index()].get_or_init(|| {
        let mut options: Vec<String> = NIX_OPTIONS.iter().map(|o| (*o).to_owned()).collect();
        options.extend([
            "--option".to_owned(),
            "extra-sandbox-paths".to_owned(),
            format!(
                "/bin/sh={}/usr/bin/dash",
                stage0_toolchain_on(nix).display()
            ),
        ]);
        options
    })
}

/// The stage-0 toolchain's store path on Nix 2.8.
pub(crate) fn stage0_toolchain() -> &'static Path {
    stage0_toolchain_on(Nix::V2_8)
}

/// The stage-0 toolchain's store path in `nix`'s store, built once per test run.
pub(crate) fn stage0_toolchain_on(nix: Nix) -> &'static Path {
    static TOOLCHAIN: [OnceLock<PathBuf>; 2] = [OnceLock::new(), OnceLock::new()];
    TOOLCHAIN[nix.index()].get_or_init(|| {
        stage0_debs_on(nix);
        let expression = format!(
            "(import {}/bootstrap/stage0 {{ kiln = {}; }}).toolchain",
            root().display(),
            static_kiln().display()
        );
        let output = nix
            .command("nix-build")
            .args(["--no-out-link", "-E", &expression])
            .args(NIX_OPTIONS)
            .output()
            .expect("nix-build runs");
        assert!(
            output.status.success(),
            "building the stage-0 toolchain on {} failed:\n{}",
            nix.name(),
            describe(&output)
        );
        out_path(&output)
    })
}

/// Adds the stage-0 toolchain's pinned `.deb`s to the store, once per test run
/// (`scripts/fetch-stage0-debs.sh`: cached outside the repository, a second run only hashes).
pub(crate) fn stage0_debs() {
    stage0_debs_on(Nix::V2_8)
}

/// [`stage0_debs`] into `nix`'s store. The host's run fills the cache first, so 2.26's root
/// (which shares the cache) only adds them.
pub(crate) fn stage0_debs_on(nix: Nix) {
    static FETCHED: [OnceLock<()>; 2] = [OnceLock::new(), OnceLock::new()];
    if nix != Nix::V2_8 {
        stage0_debs_on(Nix::V2_8);
    }
    FETCHED[nix.index()].get_or_init(|| {
        nix.require();
        let output = nix
            .command("bash")
            .arg(root().join("scripts/fetch-stage0-debs.sh"))
            .output()
            .expect("bash runs");
        assert!(
            output.status.success(),
            "scripts/fetch-stage0-debs.sh failed on {}:\n{}",
            nix.name(),
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
    Nix::V2_8.require();
}

/// Fails naming `nix` and showing `output` unless the command succeeded.
pub(crate) fn assert_success(nix: Nix, output: &Output) {
    assert!(
        output.status.success(),
        "{}: {}",
        nix.name(),
        describe(output)
    );
}

/// The runtime closure of a store path of `nix`'s store (`nix-store -qR`).
pub(crate) fn closure_of(nix: Nix, path: &str) -> Vec<String> {
    let output = nix
        .command("nix-store")
        .args(["-qR", path])
        .output()
        .unwrap();
    assert_success(nix, &output);
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Fails naming `nix` unless `text` (a build's stderr) holds every one of `expected`.
pub(crate) fn assert_mentions(nix: Nix, text: &str, expected: &[&str]) {
    for expected in expected {
        assert!(
            text.contains(expected),
            "{}: no `{expected}` in:\n{text}",
            nix.name()
        );
    }
}

/// `nix-build FIXTURE --arg kiln BIN --argstr nonce NONCE ... --no-out-link EXTRA...`, with
/// [`pure_options`].
pub(crate) fn nix_build(fixture: &str, nonce: &str, extra: &[&str]) -> Output {
    nix_build_on(Nix::V2_8, fixture, nonce, extra)
}

/// [`nix_build`] on `nix`.
pub(crate) fn nix_build_on(nix: Nix, fixture: &str, nonce: &str, extra: &[&str]) -> Output {
    let expression = root().join("tests/fixtures").join(fixture);
    let options: Vec<&str> = pure_options_on(nix).iter().map(String::as_str).collect();
    nix_build_with_on(nix, &expression, nonce, &options, extra)
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
    nix_build_with_on(Nix::V2_8, expression, nonce, options, extra)
}

/// [`nix_build_with`] on `nix`.
pub(crate) fn nix_build_with_on(
    nix: Nix,
    expression: &Path,
    nonce: &str,
    options: &[&str],
    extra: &[&str],
) -> Output {
    nix.require();
    nix.command("nix-build")
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
fn plan_phases(nix: Nix, fixture: &str) -> Vec<String> {
    stage0_debs_on(nix);
    let expression = format!(
        "map (phase: phase.name) (import {} {{ kiln = {}; }}).kiln.phases",
        root().join("tests/fixtures").join(fixture).display(),
        static_kiln().display()
    );
    let output = nix
        .command("nix-instantiate")
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

/// The C example builds in the sandbox, and its program runs where its store is.
fn hello_c_builds_in_the_sandbox_and_runs(nix: Nix) {
    let output = nix_build_on(nix, "hello-c", &nonce(), &[]);
    assert_success(nix, &output);
    let program = out_path(&output).join("bin/hello-kiln");
    let run = nix.command(&program).output().unwrap();
    assert_success(nix, &run);
    assert!(
        String::from_utf8_lossy(&run.stdout).contains("Hello from kiln!"),
        "{}: {}",
        nix.name(),
        describe(&run)
    );
    // The check phase ran the program inside the build; its output reached Nix's log.
    assert!(String::from_utf8_lossy(&output.stderr).contains("Hello from kiln!"));
    eprintln!("{}: hello-c built and ran", nix.name());
}
on_both_nix!(hello_c_builds_in_the_sandbox_and_runs);

#[test]
fn nix_check_reproduces_the_build_bit_for_bit() {
    let nonce = nonce();
    let first = nix_build("hello-c", &nonce, &[]);
    assert!(first.status.success(), "{}", describe(&first));
    let check = nix_build("hello-c", &nonce, &["--check"]);
    assert!(check.status.success(), "{}", describe(&check));
}

/// Nix shows exactly the plan's phases, in order (`result` type 104), and kiln's step
/// messages as `msg` events at a debug level.
fn nix_reports_exactly_the_plan_phases_in_order(nix: Nix) {
    let expected = plan_phases(nix, "hello-c");
    assert_eq!(expected, ["configure", "build", "install", "check"]);
    let output = nix_build_on(nix, "hello-c", &nonce(), &["--log-format", "internal-json"]);
    assert_success(nix, &output);
    let events = internal_json(&output);
    assert_eq!(reported_phases(&events), expected, "{}", nix.name());
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
        "{}: {step_message}",
        nix.name()
    );
    eprintln!("{}: phases {expected:?}", nix.name());
}
on_both_nix!(nix_reports_exactly_the_plan_phases_in_order);

/// How kiln announces the first step of `build` in hello-c, at Nix's chatty level.
const DEBUG_MESSAGE: &str = "kiln: phase `build` step 1: run gcc";

/// `-vvvvv` shows kiln's debug messages, the default does not; the build's output shows
/// either way.
fn kiln_debug_messages_show_with_vvvvv_and_not_by_default(nix: Nix) {
    let verbose = nix_build_on(nix, "hello-c", &nonce(), &["-vvvvv"]);
    assert_success(nix, &verbose);
    let stderr = String::from_utf8_lossy(&verbose.stderr);
    assert!(stderr.contains(DEBUG_MESSAGE), "{}: {stderr}", nix.name());

    let default = nix_build_on(nix, "hello-c", &nonce(), &[]);
    assert_success(nix, &default);
    let stderr = String::from_utf8_lossy(&default.stderr);
    assert!(
        stderr.contains("Hello from kiln!"),
        "{}: the build log is shown: {stderr}",
        nix.name()
    );
    assert!(!stderr.contains(DEBUG_MESSAGE), "{}: {stderr}", nix.name());
}
on_both_nix!(kiln_debug_messages_show_with_vvvvv_and_not_by_default);

/// A failing step's message reaches Nix's output with the phase, step, argv and exit code.
fn a_failing_step_is_visible_in_nix_output(nix: Nix) {
    let output = nix_build_on(nix, "failing", &nonce(), &[]);
    assert!(
        !output.status.success(),
        "{}: {}",
        nix.name(),
        describe(&output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Nix's own line: 2.8 "builder for '…' failed with exit code 1", 2.26 the same words
    // after "error:".
    assert_mentions(
        nix,
        &stderr,
        &[
            "error: build of `kiln-failing` failed",
            "phase `build`, step 1 (run): `false` exited with code 1",
            "failed with exit code 1",
        ],
    );
    // The install phase never ran, so the output does not exist.
    assert!(
        !stderr.contains("install ran after a failed build"),
        "{}: {stderr}",
        nix.name()
    );
}
on_both_nix!(a_failing_step_is_visible_in_nix_output);

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
    nix_build_expr_on(Nix::V2_8, expression)
}

/// [`nix_build_expr`] on `nix`.
fn nix_build_expr_on(nix: Nix, expression: &str) -> Output {
    nix.command("nix-build")
        .args(["--expr", expression, "--no-out-link"])
        .args(NIX_OPTIONS)
        .output()
        .expect("nix-build runs")
}

/// A bad plan fails the derivation with its JSON path, a did-you-mean and exit code 2.
fn an_invalid_plan_fails_the_derivation_with_its_json_path(nix: Nix) {
    nix.require();
    let expression = format!(
        r#"(import {}/bootstrap {{ kiln = {}; }}).mkDerivation {{
             name = "kiln-invalid"; nonce = "{}";
             phases = [ {{ name = "build"; stesp = [ ]; }} ];
           }}"#,
        root().display(),
        static_kiln().display(),
        nonce()
    );
    let output = nix_build_expr_on(nix, &expression);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_mentions(
        nix,
        &stderr,
        &[
            "at `kiln.phases[0].stesp`",
            "did you mean `steps`?",
            "failed with exit code 2",
        ],
    );
}
on_both_nix!(an_invalid_plan_fails_the_derivation_with_its_json_path);

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

/// `nix build` follows kiln's phases: the build activity (type 105) names the derivation and
/// its `setPhase` results (type 104) name each phase, which Nix's progress line shows as
/// `building hello-kiln (PHASE)`. `nix log` then replays the build log: kiln's phase markers
/// and the children's output.
fn nix_build_shows_the_phases_and_nix_log_replays_them(nix: Nix) {
    stage0_debs_on(nix);
    let fixture = root().join("tests/fixtures/hello-c");
    let nonce = nonce();
    let kiln = static_kiln().display().to_string();
    let arguments = ["--arg", "kiln", &kiln, "--argstr", "nonce", &nonce];
    let output = nix
        .command("nix")
        .args([
            "--extra-experimental-features",
            "nix-command",
            "build",
            "-f",
        ])
        .arg(&fixture)
        .args(arguments)
        .args(["--no-link", "--log-format", "internal-json", "-v"])
        .args(pure_options_on(nix))
        .output()
        .expect("nix build runs");
    assert_success(nix, &output);
    let events = internal_json(&output);
    let build = events
        .iter()
        .find(|event| event["action"] == "start" && event["type"] == 105)
        .unwrap_or_else(|| panic!("{}: no build activity\n{}", nix.name(), describe(&output)));
    assert!(
        build["text"]
            .as_str()
            .is_some_and(|text| text.contains("-hello-kiln.drv")),
        "{}: {build}",
        nix.name()
    );
    let phases: Vec<&str> = events
        .iter()
        .filter(|event| {
            event["action"] == "result" && event["type"] == 104 && event["id"] == build["id"]
        })
        .filter_map(|event| event["fields"][0].as_str())
        .collect();
    assert_eq!(
        phases,
        ["configure", "build", "install", "check"],
        "{}",
        nix.name()
    );

    let instantiated = nix
        .command("nix-instantiate")
        .arg(&fixture)
        .args(arguments)
        .output()
        .expect("nix-instantiate runs");
    assert!(instantiated.status.success(), "{}", describe(&instantiated));
    let drv = String::from_utf8_lossy(&instantiated.stdout)
        .trim()
        .to_owned();
    let log = nix
        .command("nix")
        .args(["--extra-experimental-features", "nix-command", "log", &drv])
        .output()
        .expect("nix log runs");
    assert_success(nix, &log);
    let text = String::from_utf8_lossy(&log.stdout);
    for expected in [
        r#"@nix {"action":"setPhase","phase":"configure"}"#,
        r#"@nix {"action":"setPhase","phase":"check"}"#,
        "Hello from kiln!",
    ] {
        assert!(
            text.contains(expected),
            "{}: no `{expected}` in nix log:\n{text}",
            nix.name()
        );
    }
    eprintln!(
        "{}: nix build phases {phases:?}; nix log replays them",
        nix.name()
    );
}
on_both_nix!(nix_build_shows_the_phases_and_nix_log_replays_them);

/// The text a terminal shows of `command`: run on a pseudo-terminal by script(1) (bsdutils),
/// with carriage returns as line ends and escape sequences removed.
fn on_a_terminal(command: &[String]) -> (bool, String) {
    let line = command
        .iter()
        .map(|arg| format!("'{}'", arg.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ");
    let output = Command::new("script")
        .args(["-qfec", &line, "/dev/null"])
        .env("TERM", "xterm-256color")
        .output()
        .expect("script(1) runs");
    let raw = String::from_utf8_lossy(&output.stdout).replace('\r', "\n");
    let mut text = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte.
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() || c == '~' {
                        break;
                    }
                }
            }
            continue;
        }
        text.push(c);
    }
    (output.status.success(), text)
}

/// `nix build` on a terminal draws kiln's phase on its progress line: `building NAME (PHASE)`.
/// The plan's `compile` phase sleeps long enough for the line to be drawn while it runs.
fn nix_build_shows_the_phase_on_its_progress_line(nix: Nix) {
    stage0_toolchain_on(nix);
    let expression = format!(
        r#"let lib = import {}/bootstrap {{ kiln = {}; }}; in lib.mkDerivation {{
             name = "kiln-progress"; nonce = "{}";
             inputs.cc = lib.toolchain;
             phases = [
               {{ name = "compile"; steps = [ {{ run.argv = [ "sleep" "3" ]; }} ]; }}
               {{ name = "install"; steps = [ {{ write = {{ path = "${{lib.refs.out}}/done"; content = ""; }}; }} ]; }}
             ];
           }}"#,
        root().display(),
        static_kiln().display(),
        nonce()
    );
    let mut command: Vec<String> = match nix {
        Nix::V2_8 => Vec::new(),
        Nix::V2_26 => vec![root().join("scripts/nix-current").display().to_string()],
    };
    command.extend(
        [
            "nix",
            "--extra-experimental-features",
            "nix-command",
            "build",
            "--impure",
            "--no-link",
        ]
        .map(String::from),
    );
    command.extend(["--expr".to_owned(), expression]);
    command.extend(NIX_OPTIONS.iter().map(|option| (*option).to_owned()));
    let (success, screen) = on_a_terminal(&command);
    assert!(success, "{}: nix build failed:\n{screen}", nix.name());
    assert!(
        screen.contains("building kiln-progress (compile)"),
        "{}: the progress line never showed the phase:\n{screen}",
        nix.name()
    );
    eprintln!(
        "{}: the progress line showed `building kiln-progress (compile)`",
        nix.name()
    );
}
on_both_nix!(nix_build_shows_the_phase_on_its_progress_line);

/// What differs between the versions, checked on each side: Nix 2.8 points
/// `NIX_ATTRS_JSON_FILE` at the host's path of `.attrs.json` (kiln falls back to
/// `$NIX_BUILD_TOP/.attrs.json`), 2.26 at `/build/.attrs.json`. What must not differ: a child's
/// line that looks like the `@nix` protocol (here a forged `msg` and a malformed object, which
/// crashes Nix 2.25 and earlier) reaches Nix as output, never as protocol.
fn nix_sees_its_attrs_file_and_never_a_childs_protocol_line(nix: Nix) {
    stage0_toolchain_on(nix);
    let expression = format!(
        r#"let lib = import {}/bootstrap {{ kiln = {}; }}; in lib.mkDerivation {{
             name = "kiln-protocol"; nonce = "{}";
             inputs.cc = lib.toolchain;
             phases = [
               {{ name = "build"; steps = [ {{ run.argv = [ "printf"
                 "@nix {{\"action\":\"msg\",\"level\":0,\"msg\":\"forged\"}}\n@nix {{broken\n" ]; }} ]; }}
               {{ name = "install"; steps = [ {{ write = {{ path = "${{lib.refs.out}}/done"; content = ""; }}; }} ]; }}
             ];
           }}"#,
        root().display(),
        static_kiln().display(),
        nonce()
    );
    let output = nix
        .command("nix-build")
        .args([
            "--expr",
            &expression,
            "--no-out-link",
            "--log-format",
            "internal-json",
        ])
        .args(NIX_OPTIONS)
        .output()
        .expect("nix-build runs");
    assert_success(nix, &output);
    let events = internal_json(&output);
    let environment = events
        .iter()
        .filter_map(|event| event["msg"].as_str())
        .find(|msg| msg.starts_with("kiln: environment: "))
        .unwrap_or_else(|| {
            panic!(
                "{}: no environment message\n{}",
                nix.name(),
                describe(&output)
            )
        });
    let attrs_file = environment
        .split(' ')
        .find_map(|word| word.strip_prefix("NIX_ATTRS_JSON_FILE="))
        .unwrap_or_else(|| panic!("{}: {environment}", nix.name()));
    match nix {
        Nix::V2_8 => assert!(
            attrs_file.starts_with("/tmp/nix-build-kiln-protocol.drv-")
                && attrs_file.ends_with("/.attrs.json"),
            "Nix 2.8 names the host's path: {attrs_file}"
        ),
        Nix::V2_26 => assert_eq!(attrs_file, "/build/.attrs.json", "Nix 2.26"),
    }
    assert!(
        !events.iter().any(|event| event["msg"] == "forged"),
        "{}: a child's line became a Nix message",
        nix.name()
    );
    let lines: Vec<&str> = events
        .iter()
        .filter(|event| event["action"] == "result" && event["type"] == 101)
        .filter_map(|event| event["fields"][0].as_str())
        .collect();
    assert!(
        lines.contains(&" @nix {broken"),
        "{}: the child's malformed line is output, escaped: {lines:?}",
        nix.name()
    );
    eprintln!(
        "{}: NIX_ATTRS_JSON_FILE={attrs_file}; child protocol lines escaped",
        nix.name()
    );
}
on_both_nix!(nix_sees_its_attrs_file_and_never_a_childs_protocol_line);
