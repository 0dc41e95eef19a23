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
use crate::nix::{nonce, on_both_nix, require_nix, root, static_kiln, Nix, NIX_OPTIONS};

/// The fixture: `devshell-demo`, which depends on `libfoo` (bin, include, lib/pkgconfig) and
/// sets `GREETING` in its plan's `env`.
fn fixture() -> String {
    root().join("tests/fixtures/devshell").display().to_string()
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

/// `nix-shell FIXTURE --arg kiln … --run PRINT_ENV` on `nix`, with `KILN_PHASE` unset.
fn nix_shell_gives_kilns_environment_of_the_first_phase(nix: Nix) {
    nix.require();
    let output = nix
        .command("env")
        .args(["-u", "KILN_PHASE", "NIX_BUILD_SHELL=bash", "nix-shell"])
        .arg(fixture())
        .arg("--arg")
        .arg("kiln")
        .arg(static_kiln())
        .args(["--argstr", "nonce", &nonce()])
        .args(NIX_OPTIONS)
        .args(["--run", PRINT_ENV])
        .output()
        .expect("nix-shell runs");
    assert!(output.status.success(), "{}", describe(&output));
    let shown = format!("nix-shell ({})", nix.name());
    assert_kilns_environment(&environment(&output), &output, &shown);
}
on_both_nix!(nix_shell_gives_kilns_environment_of_the_first_phase);

/// `nix develop -f FIXTURE devShell -c bash -c PRINT_ENV` on `nix`.
fn nix_develop_on_the_companion_gives_kilns_environment(nix: Nix) {
    nix.require();
    let output = nix
        .command("nix")
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
    let shown = format!("nix develop ({})", nix.name());
    assert_kilns_environment(&environment(&output), &output, &shown);
}
on_both_nix!(nix_develop_on_the_companion_gives_kilns_environment);

/// `nix develop` on the kiln derivation itself is refused (its builder is not bash).
fn nix_develop_refuses_the_kiln_derivation_itself(nix: Nix) {
    nix.require();
    let refused = nix
        .command("nix")
        .args(["--extra-experimental-features", "nix-command"])
        .args(["develop", "-f", &fixture()])
        .arg("--arg")
        .arg("kiln")
        .arg(static_kiln())
        .args(NIX_OPTIONS)
        .args(["--command", "true"])
        .output()
        .expect("nix develop runs");
    assert!(
        !refused.status.success()
            && String::from_utf8_lossy(&refused.stderr)
                .contains("only works on derivations that use 'bash' as their builder"),
        "{} is expected to refuse a non-bash builder (use `devShell`)\n{}",
        nix.name(),
        describe(&refused)
    );
}
on_both_nix!(nix_develop_refuses_the_kiln_derivation_itself);

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
fn nix_develop_takes_the_phase_from_dev_shell_at() {
    let nix = Nix::V2_26;
    nix.require();
    let expression = format!(
        "(import {} {{ kiln = {}; }}).devShellAt \"install\"",
        fixture(),
        static_kiln().display()
    );
    let output = nix
        .command("nix")
        .args(["develop", "--impure", "--expr", &expression])
        .args(NIX_OPTIONS)
        .args([
            "--command",
            "bash",
            "-c",
            "echo \"phase: $KILN_PHASE\"; echo \"$GREETING\"",
        ])
        .output()
        .expect("nix develop runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success()
            && stdout.contains("phase: install")
            && stdout.contains("hello from the plan"),
        "{}",
        describe(&output)
    );
}
