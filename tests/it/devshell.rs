//! `nix-shell` and `nix develop` on kiln derivations (issue 13): the shell gets the environment
//! kiln gives the derivation's first phase — the inputs' `bin` on PATH, the host dependencies'
//! `include` on CPATH and `lib/pkgconfig` on PKG_CONFIG_PATH, the plan's `env` — computed by kiln
//! itself (`kiln env --nix`, through the `stdenv = devSetup` every kiln derivation carries),
//! with no nixpkgs. Under Nix 2.8 (the host's) and Nix 2.26 (the trixie root of
//! `scripts/setup-nix-current.sh`, entered through `scripts/nix-current`).
//!
//! Version differences checked here: `nix develop` refuses a kiln derivation itself ("only works
//! on derivations that use 'bash' as their builder"), so it runs on the companion `devShell`;
//! `nix-shell` takes the derivation directly. Nix 2.8 points `NIX_ATTRS_JSON_FILE` at the host's
//! path inside `nix develop`'s build, so `setup` falls back to `$NIX_BUILD_TOP/.attrs.json`.

use std::collections::BTreeMap;
use std::process::{Command, Output};

use crate::common::describe;
use crate::nix::{nonce, require_nix, root, static_kiln, NIX_OPTIONS};

/// The fixture: `devshell-demo`, which depends on `libfoo` (bin, include, lib/pkgconfig) and
/// sets `GREETING` in its plan's `env`.
fn fixture() -> String {
    root().join("tests/fixtures/devshell").display().to_string()
}

/// `scripts/nix-current ARGS...`: a command in the Nix 2.26 root. Fails (never skips) when the
/// root is missing.
fn current_nix(args: &[&str]) -> Command {
    let script = root().join("scripts/nix-current");
    let version = Command::new(&script)
        .args(["nix-build", "--version"])
        .output()
        .expect("scripts/nix-current runs");
    let text = String::from_utf8_lossy(&version.stdout);
    assert!(
        version.status.success() && text.contains("2.26"),
        "Nix 2.26 is not set up: run `bash scripts/setup-nix-current.sh`\n{}",
        describe(&version)
    );
    let mut command = Command::new(script);
    command.args(args);
    command
}

/// The `NAME=VALUE` lines of `env`'s output between the markers the tests print.
fn environment(output: &Output) -> BTreeMap<String, String> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Some((_, rest)) = stdout.split_once("--- env ---\n") else {
        panic!("no environment printed\n{}", describe(output));
    };
    rest.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// What kiln's environment of `devshell-demo`'s first phase must hold, whatever Nix showed it.
fn assert_kilns_environment(env: &BTreeMap<String, String>, output: &Output, nix: &str) {
    let get = |name: &str| env.get(name).map(String::as_str).unwrap_or_default();
    let libfoo = get("CPATH")
        .split(':')
        .find(|dir| dir.ends_with("-libfoo/include"))
        .and_then(|dir| dir.strip_suffix("/include"))
        .unwrap_or_else(|| panic!("{nix}: CPATH lacks libfoo's include\n{}", describe(output)))
        .to_owned();
    assert!(libfoo.starts_with("/nix/store/"), "{nix}: {libfoo}");
    assert!(
        get("PATH")
            .split(':')
            .any(|dir| dir == format!("{libfoo}/bin")),
        "{nix}: PATH lacks libfoo's bin: {}\n{}",
        get("PATH"),
        describe(output)
    );
    assert!(
        get("PKG_CONFIG_PATH")
            .split(':')
            .any(|dir| dir == format!("{libfoo}/lib/pkgconfig")),
        "{nix}: PKG_CONFIG_PATH: {}",
        get("PKG_CONFIG_PATH")
    );
    assert_eq!(
        get("GREETING"),
        "hello from the plan",
        "{nix}: the plan's env"
    );
    assert_eq!(
        get("FOO_TOOL"),
        "foo",
        "{nix}: libfoo's tool runs from PATH"
    );
    eprintln!("{nix}: PATH={} CPATH={}", get("PATH"), get("CPATH"));
}

/// The shell command the tests run inside the shell: the environment after a marker, and
/// libfoo's tool run from PATH.
const PRINT_ENV: &str = "echo '--- env ---'; env; echo \"FOO_TOOL=$(foo-tool)\"";

#[test]
fn nix_shell_2_8_gives_kilns_environment_of_the_first_phase() {
    require_nix();
    let output = Command::new("nix-shell")
        .arg(fixture())
        .arg("--arg")
        .arg("kiln")
        .arg(static_kiln())
        .args(["--argstr", "nonce", &nonce()])
        .args(NIX_OPTIONS)
        .args(["--run", PRINT_ENV])
        .env("NIX_BUILD_SHELL", "bash")
        .env_remove("KILN_PHASE")
        .output()
        .expect("nix-shell runs");
    assert!(output.status.success(), "{}", describe(&output));
    assert_kilns_environment(&environment(&output), &output, "nix-shell (Nix 2.8)");
}

#[test]
fn nix_shell_names_a_phase_with_kiln_phase_and_refuses_an_unknown_one() {
    require_nix();
    let shell = |phase: &str| {
        Command::new("nix-shell")
            .arg(fixture())
            .arg("--arg")
            .arg("kiln")
            .arg(static_kiln())
            .args(NIX_OPTIONS)
            .args(["--run", "echo \"greeting: $GREETING\""])
            .env("NIX_BUILD_SHELL", "bash")
            .env("KILN_PHASE", phase)
            .output()
            .expect("nix-shell runs")
    };
    let install = shell("install");
    assert!(
        String::from_utf8_lossy(&install.stdout).contains("greeting: hello from the plan"),
        "{}",
        describe(&install)
    );
    let unknown = shell("nope");
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("`--at nope`") && stderr.contains("build, install"),
        "an unknown KILN_PHASE must be named with the phases there are\n{}",
        describe(&unknown)
    );
}

#[test]
fn nix_develop_2_8_on_the_companion_gives_kilns_environment() {
    require_nix();
    let output = Command::new("nix")
        .args(["--extra-experimental-features", "nix-command"])
        .args(["develop", "-f", &fixture(), "devShell"])
        .arg("--arg")
        .arg("kiln")
        .arg(static_kiln())
        .args(["--argstr", "nonce", &nonce()])
        .args(NIX_OPTIONS)
        .args(["--command", "bash", "-c", PRINT_ENV])
        .output()
        .expect("nix develop runs");
    assert!(output.status.success(), "{}", describe(&output));
    assert_kilns_environment(&environment(&output), &output, "nix develop (Nix 2.8)");
}

#[test]
fn nix_develop_2_26_on_the_companion_gives_kilns_environment() {
    let kiln = static_kiln().display().to_string();
    let nonce = nonce();
    let output = current_nix(&["nix", "develop", "-f", &fixture(), "devShell"])
        .args(["--arg", "kiln", &kiln, "--argstr", "nonce", &nonce])
        .args(NIX_OPTIONS)
        .args(["--command", "bash", "-c", PRINT_ENV])
        .output()
        .expect("nix develop runs");
    assert!(output.status.success(), "{}", describe(&output));
    assert_kilns_environment(&environment(&output), &output, "nix develop (Nix 2.26)");
}

#[test]
fn nix_develop_2_26_takes_the_phase_from_dev_shell_at() {
    let expression = format!(
        "(import {} {{ kiln = {}; }}).devShellAt \"install\"",
        fixture(),
        static_kiln().display()
    );
    let output = current_nix(&["nix", "develop", "--impure", "--expr", &expression])
        .args(NIX_OPTIONS)
        .args([
            "--command",
            "bash",
            "-c",
            "echo \"phase: $kilnPhase\"; echo \"$GREETING\"",
        ])
        .output()
        .expect("nix develop runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("hello from the plan"),
        "{}",
        describe(&output)
    );
}

#[test]
fn nix_develop_2_26_refuses_the_kiln_derivation_itself_and_nix_shell_takes_it() {
    let kiln = static_kiln().display().to_string();
    let refused = current_nix(&["nix", "develop", "-f", &fixture()])
        .args(["--arg", "kiln", &kiln])
        .args(NIX_OPTIONS)
        .args(["--command", "true"])
        .output()
        .expect("nix develop runs");
    assert!(
        !refused.status.success()
            && String::from_utf8_lossy(&refused.stderr)
                .contains("only works on derivations that use 'bash' as their builder"),
        "Nix 2.26 is expected to refuse a non-bash builder (use `devShell`)\n{}",
        describe(&refused)
    );
    let shell = current_nix(&["env", "NIX_BUILD_SHELL=bash", "nix-shell", &fixture()])
        .args(["--arg", "kiln", &kiln, "--argstr", "nonce", &nonce()])
        .args(NIX_OPTIONS)
        .args(["--run", PRINT_ENV])
        .output()
        .expect("nix-shell runs");
    assert!(shell.status.success(), "{}", describe(&shell));
    assert_kilns_environment(&environment(&shell), &shell, "nix-shell (Nix 2.26)");
}
