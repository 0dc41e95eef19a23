//! The command line itself: help text, schema output, `plan`, running with no command, and how
//! errors are printed (`error:` once per line, whoever wrote the line).

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use crate::common::{describe, kiln_bin, Scratch, TOOLCHAIN};

#[test]
fn help_lists_commands_examples_and_exit_codes() {
    let output = Scratch::new().kiln().arg("--help").output().unwrap();
    assert!(output.status.success());
    insta::assert_snapshot!("help", String::from_utf8_lossy(&output.stdout));
}

#[test]
fn schema_command_prints_the_checked_in_schema() {
    let output = Scratch::new().kiln().arg("schema").output().unwrap();
    assert!(output.status.success());
    let checked_in = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schema/plan.schema.json"
    ))
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), checked_in);
}

#[test]
fn plan_command_prints_the_resolved_plan_on_stdout() {
    let scratch = Scratch::new();
    scratch.write(
        "plan.json",
        r#"{"version":1,"name":"p","env":{"J":"-j${build.cores}"},"phases":[{"name":"build","steps":[
            {"run":{"argv":["make","${env.J}","PREFIX=${outputs.out}"]}}]}]}"#,
    );
    let output = scratch
        .kiln()
        .args(["plan", "--cores", "7", "--out-dir", "/o", "plan.json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let shown: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let plan = &shown["plan"];
    assert_eq!(
        plan["phases"][0]["steps"][0]["run"]["argv"],
        serde_json::json!(["make", "-j7", "PREFIX=/o/out"])
    );
    assert_eq!(plan["phases"][0]["origin"], "plan");
    assert_eq!(plan["env"]["J"], "-j7");
    let environment = &shown["environment"];
    assert_eq!(environment["J"]["origin"], "plan env");
    assert_eq!(environment["NIX_BUILD_CORES"]["value"], "7");
    assert_eq!(environment["out"]["value"], "/o/out");
    assert_eq!(environment["HOME"]["origin"], "kiln");
}

#[test]
fn no_command_outside_nix_is_a_usage_error() {
    let output = Scratch::new().kiln().output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not running under Nix"), "{stderr}");
}

#[test]
fn builder_mode_reads_attrs_json_from_the_build_directory() {
    // What Nix 2.8 does: NIX_ATTRS_JSON_FILE names a host path that does not exist in the
    // sandbox, and the file is at $NIX_BUILD_TOP/.attrs.json.
    let scratch = Scratch::new();
    let out = scratch.path().join("store-out");
    let attrs = serde_json::json!({
        "name": "from-attrs",
        "outputs": { "out": out.display().to_string() },
        "kiln": { "version": 1, "phases": [{ "name": "install", "steps": [
            { "write": { "path": "${outputs.out}/cores", "content": "${build.cores} ${env.out}" } }
        ]}]}
    });
    scratch.write("top/.attrs.json", &attrs.to_string());
    let output = scratch
        .kiln()
        .env("NIX_BUILD_TOP", scratch.path().join("top"))
        .env("NIX_ATTRS_JSON_FILE", "/nonexistent/host/path/.attrs.json")
        .env("NIX_BUILD_CORES", "5")
        .env("NIX_LOG_FD", "2")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(r#"@nix {"action":"setPhase","phase":"install"}"#),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("cores")).unwrap(),
        format!("5 {}", out.display())
    );
}

/// Fails unless stderr has something and no line of it says `error:` twice (`kiln: error: error:`,
/// `error: … error: …`).
fn assert_error_said_once(output: &Output) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{}", describe(output));
    assert!(stderr.contains("error:"), "{}", describe(output));
    for line in stderr.lines() {
        assert!(
            line.matches("error:").count() <= 1,
            "`error:` twice in `{line}`\n{}",
            describe(output)
        );
    }
}

#[test]
fn errors_of_the_command_line_say_error_once() {
    let scratch = Scratch::new();
    std::fs::write(
        scratch.path().join("latin1.json"),
        b"{\"name\":\"caf\xe9\"}",
    )
    .unwrap();
    scratch.write(
        "plan.json",
        r#"{"version":1,"name":"p","phases":[{"name":"build","steps":[]}]}"#,
    );
    let cases: [&[&str]; 5] = [
        &["validate", "missing.json"],
        &["validate", "latin1.json"],
        &["build", "--attrs", "latin1.json"],
        &["build", "plan.json", "--no-sandbox", "--from", "nope"],
        &[],
    ];
    for args in cases {
        let output = scratch.kiln().args(args).output().unwrap();
        assert_error_said_once(&output);
    }
}

/// The sandbox's init and kiln's phase runner print their own `error: …` lines; a local build
/// relays them to the display, which adds `kiln: error: ` itself. Made to happen with a kiln that
/// only root may run: inside the sandbox the build user cannot execute it.
#[test]
fn errors_relayed_from_the_sandbox_say_error_once() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root, to make a kiln the build user cannot run");
        return;
    }
    let scratch = Scratch::new();
    let kiln = scratch.path().join("kiln");
    std::fs::copy(kiln_bin(), &kiln).unwrap();
    std::fs::set_permissions(&kiln, std::fs::Permissions::from_mode(0o700)).unwrap();
    scratch.write(
        "plan.json",
        r#"{"version":1,"name":"p","phases":[{"name":"build","steps":[
            {"write":{"path":"${outputs.out}","content":"x"}}]}]}"#,
    );
    for format in ["human", "json"] {
        let output = Command::new(&kiln)
            .current_dir(scratch.path())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("TMPDIR", scratch.path())
            .env("NO_COLOR", "1")
            .env("KILN_LEND", TOOLCHAIN)
            .args(["--log-format", format, "build", "plan.json", "--no-cache"])
            .args(["--out-dir", &format!("out-{format}")])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("cannot run") && stderr.contains("in the sandbox"),
            "the build user ran a kiln only root may run, or failed otherwise:\n{}",
            describe(&output)
        );
        assert_error_said_once(&output);
    }
}

/// A source without a configure script: the hint names what fixes it in the form the package
/// is written in (stdenv-style attributes, or a plan's preset).
#[test]
fn a_missing_configure_script_is_hinted_in_the_packages_own_terms() {
    let scratch = Scratch::new();
    let src = scratch.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("Makefile"), "all:\n\ttrue\n").unwrap();
    let out = scratch.path().join("out-x");
    let attrs = serde_json::json!({
        "name": "x", "src": src, "outputs": { "out": out }, "nativeBuildInputs": ["/usr"],
    });
    let plan = serde_json::json!({
        "version": 1, "name": "x", "inputs": { "src": src, "tools": "/usr" },
        "preset": { "system": "autotools", "srcs": ["${inputs.src}"] },
    });
    scratch.write("x.attrs.json", &attrs.to_string());
    scratch.write("x.json", &plan.to_string());
    for (args, hint) in [
        (
            &["build", "--attrs", "x.attrs.json"][..],
            "hint: set `dontConfigure = true;` if the package has no configure script, or \
             `configureScript` to the one it has",
        ),
        (
            &["build", "x.json"][..],
            "hint: set the preset's `configureScript`, or generate it in a phase before",
        ),
    ] {
        let output = scratch
            .kiln()
            .args(args)
            .args(["--no-sandbox", "--no-cache", "--out-dir", "kiln-out"])
            .output()
            .unwrap();
        assert!(!output.status.success(), "{}", describe(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("./configure` does not exist"), "{stderr}");
        assert!(stderr.contains(hint), "{args:?}: {stderr}");
    }
}

/// What each log format writes for the same small build (two phases, a skipped one, a step's
/// output and a message): the human lines, the `@nix` lines Nix reads, and the JSON events.
/// Durations and the scratch directory are normalised.
#[test]
fn each_log_format_renders_the_same_build() {
    let scratch = Scratch::new();
    scratch.write(
        "plan.json",
        r#"{"version":1,"name":"formats","phases":[
            {"name":"build","steps":[
                {"write":{"path":"${build.top}/note.txt","content":"x"}},
                {"run":{"argv":["/bin/echo","hello from the step"]}}]},
            {"name":"check","enabled":false,"steps":[]},
            {"name":"install","steps":[
                {"copy":{"from":"${build.top}/note.txt","to":"${outputs.out}"}}]}]}"#,
    );
    for format in ["human", "nix", "json"] {
        let output = scratch
            .kiln()
            .args(["--log-format", format, "build", "plan.json"])
            .args([
                "--no-sandbox",
                "--no-cache",
                "--out-dir",
                "out",
                "--cores",
                "2",
            ])
            .args(["--build-dir", "build"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{format}: {}", describe(&output));
        std::fs::remove_dir_all(scratch.path().join("out")).unwrap();
        let _ = std::fs::remove_dir_all(scratch.path().join("build"));
        let text = String::from_utf8_lossy(&output.stderr)
            .replace(scratch.path().to_str().unwrap(), "[SCRATCH]");
        let normalised: Vec<String> = text
            .lines()
            .map(|line| {
                let json = line.strip_prefix("@nix ").unwrap_or(line);
                match serde_json::from_str::<serde_json::Value>(json) {
                    Ok(mut value) if value.is_object() => {
                        zero_seconds(&mut value);
                        let prefix = if line.starts_with("@nix ") {
                            "@nix "
                        } else {
                            ""
                        };
                        format!("{prefix}{value}")
                    }
                    _ => seconds_normalised(line),
                }
            })
            .collect();
        insta::assert_snapshot!(format!("log_format_{format}"), normalised.join("\n"));
    }
}

/// Every `"seconds"` number (and text `N.NNN s`) in a JSON event set to 0.
fn zero_seconds(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                if key == "seconds" && item.is_number() {
                    *item = serde_json::json!(0);
                } else if let serde_json::Value::String(text) = item {
                    *text = seconds_normalised(text);
                } else {
                    zero_seconds(item);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(zero_seconds),
        _ => {}
    }
}

/// `in 0.004 s` → `in N s`: a decimal number followed by ` s`.
fn seconds_normalised(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let digits = i > start;
        if digits && i < bytes.len() && bytes[i] == b'.' {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j].is_ascii_digit() {
                j += 1;
            }
            if j > i + 1 && text[j..].starts_with(" s") {
                out.push('N');
                i = j;
                continue;
            }
        }
        if digits {
            out.push_str(&text[start..i]);
        } else {
            out.push(bytes[i] as char);
            i += 1;
        }
    }
    out
}
