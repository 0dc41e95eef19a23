//! The plans in `schema/examples/` validate and build outside Nix, and their results are right.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{describe, Scratch};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schema/examples")
        .join(name)
}

fn build(scratch: &Scratch, name: &str) -> std::process::Output {
    let output = scratch
        .kiln()
        .args(["build", "--out-dir", "out"])
        .arg(example(name))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    output
}

#[test]
fn every_example_validates() {
    for entry in std::fs::read_dir(example("")).unwrap() {
        let path = entry.unwrap().path();
        let output = Scratch::new()
            .kiln()
            .arg("validate")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}: {}",
            path.display(),
            describe(&output)
        );
        assert!(String::from_utf8_lossy(&output.stderr).contains("is valid"));
    }
}

#[test]
fn trivial_example_writes_its_output() {
    let scratch = Scratch::new();
    build(&scratch, "trivial.json");
    let content = std::fs::read_to_string(scratch.path().join("out/out/greeting.txt")).unwrap();
    assert_eq!(content, "hello from kiln\n");
}

#[test]
fn c_program_example_compiles_and_runs() {
    let scratch = Scratch::new();
    let output = build(&scratch, "c-program.json");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The check phase ran the program; its output streams through kiln.
    assert!(stderr.contains("Hello, kiln!"), "{stderr}");
    for phase in ["unpack", "patch", "build", "install", "check"] {
        assert!(
            stderr.contains(&format!("==> phase {phase} finished in")),
            "{stderr}"
        );
    }
    let program = scratch.path().join("out/out/bin/hi");
    assert_eq!(
        std::fs::read_link(&program).unwrap(),
        PathBuf::from("hello")
    );
    let run = Command::new(&program).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stdout), "Hello, kiln!\n");
}

#[test]
fn file_steps_example_produces_both_outputs() {
    let scratch = Scratch::new();
    let output = build(&scratch, "file-steps.json");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning:") && stderr.contains("not present"),
        "{stderr}"
    );
    assert!(stderr.contains("phase check is disabled"), "{stderr}");
    let out = scratch.path().join("out/out");
    let tool = out.join("bin/tool");
    let expected = format!("#!/bin/sh\necho hello from {}\n", out.display());
    assert_eq!(std::fs::read_to_string(&tool).unwrap(), expected);
    let mode = std::fs::metadata(&tool).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o755);
    assert!(!out.join("scratch").exists());
    let doc = scratch.path().join("out/doc");
    assert_eq!(
        std::fs::read_to_string(doc.join("share/doc/README")).unwrap(),
        "docs\n"
    );
    assert!(doc.join("share/empty").is_dir());
}

#[test]
fn the_same_plan_twice_gives_identical_outputs() {
    // Like Nix, build twice at the same output path (the path is part of the result).
    let scratch = Scratch::new();
    build(&scratch, "c-program.json");
    let program = scratch.path().join("out/out/bin/hello");
    let first = std::fs::read(&program).unwrap();
    std::fs::remove_dir_all(scratch.path().join("out")).unwrap();
    build(&scratch, "c-program.json");
    let second = std::fs::read(&program).unwrap();
    assert!(first == second, "the two builds differ");
}
