//! Paths that are not UTF-8, and a disk that fills up: kiln never panics and never writes
//! somewhere else.
//!
//! - A non-UTF-8 `--out-dir` or `--build-dir` is refused with exit 2 before anything is created
//!   (output paths are substituted into the plan as strings); kiln started from a non-UTF-8
//!   working directory works with absolute paths and refuses relative ones the same way.
//! - A source whose single top directory is named `src-\xff` builds the same in kiln's sandbox,
//!   with `--no-sandbox`, and under sandboxed Nix with `mkDerivation` and `mkSplit`: the working
//!   directory crosses the phase request/response, the cached states and the split states
//!   byte for byte.
//! - When the unpack fills the build directory's file system, the error says so, even though the
//!   runner then cannot write its phase response either.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{describe, Scratch, TOOLCHAIN};
use crate::nix::{nonce, out_path, root};

/// The name of the source's top directory: `src-` and a byte that is never UTF-8.
const TOP: &[u8] = b"src-\xff";

/// What the plan's `build` phase makes of the source's `hello.txt`, and `install` installs.
const HELLO: &str = "hello from a non-UTF-8 directory\n";

/// `base` joined with raw bytes.
fn bytes_path(base: &Path, name: &[u8]) -> PathBuf {
    base.join(OsStr::from_bytes(name))
}

/// Where tests put the source archives: lent to the sandbox (inputs outside the store must be).
fn sources(scratch: &Scratch) -> PathBuf {
    let dir = scratch.path().join("sources");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `kiln` in `scratch`, with the toolchain and the sources lent and a cache in the scratch
/// directory.
fn kiln(scratch: &Scratch) -> Command {
    let mut command = scratch.kiln();
    let lend = format!("{TOOLCHAIN}:{}", sources(scratch).display());
    command
        .env("KILN_LEND", lend)
        .env("KILN_CACHE_DIR", scratch.path().join("cache"));
    command
}

/// A plan with one phase that writes its output; nothing else.
fn simple_plan(scratch: &Scratch) -> PathBuf {
    let plan = serde_json::json!({
        "version": 1,
        "name": "simple",
        "phases": [
            { "name": "install", "steps": [ { "write": { "path": "${outputs.out}", "content": "ok\n" } } ] }
        ]
    });
    scratch.write("simple.json", &plan.to_string())
}

/// Every path under `dir` (not following symlinks), relative, as bytes.
fn tree(dir: &Path) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let relative = path
                .strip_prefix(dir)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec();
            found.push(relative);
            if std::fs::symlink_metadata(&path).unwrap().is_dir() {
                pending.push(path);
            }
        }
    }
    found.sort();
    found
}

fn shown(paths: &[Vec<u8>]) -> Vec<String> {
    paths
        .iter()
        .map(|path| String::from_utf8_lossy(path).into_owned())
        .collect()
}

/// Names in `dir` (recursively) that hold U+FFFD, encoded: the trace of a lossy conversion.
fn replacement_characters(dir: &Path) -> Vec<String> {
    let replacement = "\u{FFFD}".as_bytes();
    let found: Vec<Vec<u8>> = tree(dir)
        .into_iter()
        .filter(|path| path.windows(replacement.len()).any(|w| w == replacement))
        .collect();
    shown(&found)
}

#[test]
fn a_non_utf8_out_dir_or_build_dir_is_refused_before_anything_is_created() {
    let scratch = Scratch::new();
    let plan = simple_plan(&scratch);
    sources(&scratch);
    let before = tree(scratch.path());
    let bad = bytes_path(scratch.path(), b"dir-\xff");
    let cases: [(&str, Vec<OsString>); 4] = [
        ("--out-dir", vec!["--out-dir".into(), bad.clone().into()]),
        (
            "--out-dir",
            vec![
                "--out-dir".into(),
                bad.clone().into(),
                "--no-sandbox".into(),
            ],
        ),
        (
            "--build-dir",
            vec![
                "--out-dir".into(),
                "out".into(),
                "--build-dir".into(),
                bad.clone().into(),
            ],
        ),
        (
            "--build-dir",
            vec![
                "--out-dir".into(),
                "out".into(),
                "--no-sandbox".into(),
                "--build-dir".into(),
                bad.clone().into(),
            ],
        ),
    ];
    for (option, args) in cases {
        let output = kiln(&scratch)
            .arg("build")
            .arg(&plan)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            describe(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("`{option}`")) && stderr.contains("not valid UTF-8"),
            "{args:?}: {stderr}"
        );
        assert_eq!(
            shown(&tree(scratch.path())),
            shown(&before),
            "{args:?}: something was created"
        );
    }
}

#[test]
fn kiln_started_in_a_non_utf8_working_directory_does_not_panic() {
    let scratch = Scratch::new();
    let plan = simple_plan(&scratch);
    let cwd = bytes_path(scratch.path(), b"cwd-\xff");
    std::fs::create_dir(&cwd).unwrap();
    // Absolute paths work, in the sandbox and without it.
    for (out, extra) in [("out-sandbox", None), ("out-host", Some("--no-sandbox"))] {
        let output = kiln(&scratch)
            .current_dir(&cwd)
            .arg("build")
            .arg(&plan)
            .arg("--out-dir")
            .arg(scratch.path().join(out))
            .args(extra)
            .output()
            .unwrap();
        assert!(output.status.success(), "{out}: {}", describe(&output));
        assert_eq!(
            std::fs::read_to_string(scratch.path().join(out).join("out")).unwrap(),
            "ok\n"
        );
    }
    // A relative path under it would have to be substituted into the plan as a string: refused
    // with exit 2 before anything is created (and the plan is found relative to it fine).
    std::fs::copy(&plan, cwd.join("simple.json")).unwrap();
    for extra in [None, Some("--no-sandbox")] {
        let output = kiln(&scratch)
            .current_dir(&cwd)
            .args(["build", "simple.json", "--out-dir", "out"])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("`--out-dir`") && stderr.contains("not valid UTF-8"),
            "{stderr}"
        );
        assert_eq!(shown(&tree(&cwd)), ["simple.json"]);
    }
}

/// `scratch/sources/src.tar`: one top directory named [`TOP`] holding `hello.txt`, made by GNU tar.
fn source_tar(scratch: &Scratch) -> PathBuf {
    let staging = scratch.path().join("source");
    let top = bytes_path(&staging, TOP);
    std::fs::create_dir_all(&top).unwrap();
    std::fs::write(top.join("hello.txt"), HELLO).unwrap();
    let tar = sources(scratch).join("src.tar");
    let status = Command::new("tar")
        .arg("--format=gnu")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(&staging)
        .arg(OsStr::from_bytes(TOP))
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::remove_dir_all(&staging).unwrap();
    tar
}

/// Unpacks the source, copies `hello.txt` to `built.txt` in its root (and runs `env`, so a
/// lossy `PWD` would show), installs `built.txt`: every phase after `unpack` works relative to
/// the source root.
fn source_plan(scratch: &Scratch) -> PathBuf {
    let tar = source_tar(scratch);
    let plan = serde_json::json!({
        "version": 1,
        "name": "nonutf8",
        "inputs": { "src": tar, "tools": "/usr" },
        "phases": [
            { "name": "unpack", "steps": [ { "unpack": { "srcs": ["${inputs.src}"] } } ] },
            { "name": "build", "steps": [
                { "copy": { "from": "hello.txt", "to": "built.txt" } },
                { "run": { "argv": ["env"] } }
            ] },
            { "name": "install", "steps": [
                { "mkdir": { "path": "${outputs.out}" } },
                { "copy": { "from": "built.txt", "to": "${outputs.out}/built.txt" } }
            ] }
        ]
    });
    scratch.write("nonutf8.json", &plan.to_string())
}

/// Builds the source plan fully into `OUT`; then into `OUT-resumed` `--until build` and, off
/// the cached state after `build`, `--from install`. Both outputs hold `built.txt`. Without the
/// sandbox the build directory `build_dir` is part of the states: it is emptied before each
/// run, as the printed resume command does.
fn build_and_resume(scratch: &Scratch, out: &str, extra: &[&str], build_dir: Option<&Path>) {
    let plan = source_plan(scratch);
    let run = |out: &str, range: &[&str]| {
        if let Some(dir) = build_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        let output = kiln(scratch)
            .arg("build")
            .arg(&plan)
            .args(["--out-dir", out])
            .args(range)
            .args(extra)
            .output()
            .unwrap();
        assert!(output.status.success(), "{range:?}: {}", describe(&output));
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            !stderr
                .lines()
                .any(|line| line.starts_with("PWD=") && line.contains('\u{FFFD}')),
            "a step was told a lossy working directory: {stderr}"
        );
        stderr
    };
    run(out, &[]);
    assert_eq!(
        std::fs::read_to_string(scratch.path().join(out).join("out/built.txt")).unwrap(),
        HELLO
    );
    let resumed_out = format!("{out}-resumed");
    run(&resumed_out, &["--until", "build"]);
    assert!(!scratch.path().join(&resumed_out).join("out").exists());
    let resumed = run(&resumed_out, &["--from", "install"]);
    assert!(
        resumed.contains("restored the state after phase `build`"),
        "{resumed}"
    );
    assert_eq!(
        std::fs::read_to_string(scratch.path().join(&resumed_out).join("out/built.txt")).unwrap(),
        HELLO
    );
    assert_eq!(
        replacement_characters(scratch.path()),
        Vec::<String>::new(),
        "something was written under a lossy name"
    );
}

#[test]
fn a_non_utf8_source_root_builds_and_resumes_in_the_sandbox() {
    let scratch = Scratch::new();
    build_and_resume(&scratch, "out", &[], None);
}

#[test]
fn a_non_utf8_source_root_builds_and_resumes_without_the_sandbox() {
    let scratch = Scratch::new();
    let build_dir = scratch.path().join("build");
    let build_dir_arg = build_dir.to_str().unwrap().to_owned();
    build_and_resume(
        &scratch,
        "out",
        &["--no-sandbox", "--build-dir", &build_dir_arg],
        Some(&build_dir),
    );
    // The source root is where it was unpacked, under its exact name.
    assert!(bytes_path(&build_dir, TOP).join("built.txt").is_file());
}

/// A Nix expression for the same build with kiln's bootstrap library: `plain` (mkDerivation)
/// and `split` (mkSplit, one derivation per phase, chained by states, with the source after
/// `unpack` as `split.sourceDrv`).
fn nix_expression(scratch: &Scratch) -> PathBuf {
    source_tar(scratch);
    let expression = format!(
        r#"{{ kiln, nonce }}:
let
  lib = import {bootstrap} {{ inherit kiln; }};
  inherit (lib) refs;
  common = {{
    name = "kiln-nonutf8";
    inherit nonce;
    inputs.src = builtins.path {{ path = ./sources/src.tar; name = "nonutf8-src.tar"; }};
    phases = [
      {{ name = "unpack"; steps = [ {{ unpack.srcs = [ (refs.input "src") ]; }} ]; }}
      {{ name = "build"; steps = [ {{ copy = {{ from = "hello.txt"; to = "built.txt"; }}; }} ]; }}
      {{ name = "install"; steps = [
        {{ mkdir.path = refs.out; }}
        {{ copy = {{ from = "built.txt"; to = "${{refs.out}}/built.txt"; }}; }}
      ]; }}
    ];
  }};
in
{{
  plain = lib.mkDerivation common;
  split = lib.mkSplit (
    common
    // {{
      split = [ [ "unpack" ] [ "build" ] [ "install" ] ];
      source.after = "unpack";
    }}
  );
}}
"#,
        bootstrap = root().join("bootstrap").display()
    );
    scratch.write("default.nix", &expression)
}

fn nix_build_attr(expression: &Path, attr: &str, nonce: &str) -> Output {
    crate::nix::nix_build_file(expression, nonce, &["-A", attr])
}

#[test]
fn a_non_utf8_source_root_builds_under_nix_with_mk_derivation_and_mk_split() {
    let scratch = Scratch::new();
    let expression = nix_expression(&scratch);
    let nonce = nonce();
    for attr in ["plain", "split"] {
        let output = nix_build_attr(&expression, attr, &nonce);
        assert!(output.status.success(), "{attr}: {}", describe(&output));
        let out = out_path(&output);
        assert_eq!(
            std::fs::read_to_string(out.join("built.txt")).unwrap(),
            HELLO,
            "{attr}"
        );
        assert_eq!(
            shown(&tree(&out)),
            ["built.txt"],
            "{attr}: the output holds exactly what the plan installs"
        );
    }
    // The source derivation is the source root after `unpack`, copied out whatever its name.
    let source = nix_build_attr(&expression, "split.sourceDrv", &nonce);
    assert!(source.status.success(), "{}", describe(&source));
    let source = out_path(&source);
    assert_eq!(
        std::fs::read_to_string(source.join("hello.txt")).unwrap(),
        HELLO
    );
}

#[test]
fn when_the_unpack_fills_the_disk_its_own_error_reaches_the_user() {
    let scratch = Scratch::new();
    // 2 MiB that do not compress, on a 1 MiB file system.
    let top = scratch.path().join("source/big");
    std::fs::create_dir_all(&top).unwrap();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..2 * 1024 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(top.join("noise.bin"), noise).unwrap();
    let tar = sources(&scratch).join("big.tar");
    let status = Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(scratch.path().join("source"))
        .arg("big")
        .status()
        .unwrap();
    assert!(status.success());
    let plan = serde_json::json!({
        "version": 1,
        "name": "big",
        "inputs": { "src": tar },
        "phases": [
            { "name": "unpack", "steps": [ { "unpack": { "srcs": ["${inputs.src}"] } } ] },
            { "name": "install", "steps": [ { "write": { "path": "${outputs.out}", "content": "x" } } ] }
        ]
    });
    let plan = scratch.write("big.json", &plan.to_string());
    let small = scratch.path().join("small");
    std::fs::create_dir(&small).unwrap();
    // A tiny tmpfs in a mount namespace of its own (as root; otherwise in a user namespace).
    let unshare_flags = if nix::unistd::geteuid().is_root() {
        "-m"
    } else {
        "-rm"
    };
    let mut through = Command::new("unshare");
    through
        .arg(unshare_flags)
        .arg("sh")
        .arg("-c")
        .arg(
            "mount -t tmpfs -o size=1m tmpfs \"$SMALL\" && \
             exec \"$KILN_BIN\" build \"$PLAN\" --out-dir out --no-cache --build-dir \"$SMALL/b\"",
        )
        .current_dir(scratch.path())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("TMPDIR", scratch.path())
        .env("NO_COLOR", "1")
        .env(
            "KILN_LEND",
            format!("{TOOLCHAIN}:{}", sources(&scratch).display()),
        )
        .env("KILN_BIN", crate::common::kiln_bin())
        .env("SMALL", &small)
        .env("PLAN", &plan);
    let output = through.output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let error = stderr
        .split_once("error: build of `big` failed")
        .map(|(_, error)| error)
        .unwrap_or_else(|| panic!("no final error: {stderr}"));
    assert!(
        error.contains("caused by: phase `unpack`, step 1 (unpack)"),
        "the unpack's own error is missing: {stderr}"
    );
    assert!(
        error.contains("No space left on device"),
        "ENOSPC is not named: {stderr}"
    );
    assert!(
        !error.contains("ended without a result"),
        "the phase's own error is masked: {stderr}"
    );
    // The response could not be written either; that is said too.
    assert!(error.contains("could not write its response"), "{stderr}");
}
