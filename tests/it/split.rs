//! Split mode under real Nix: one plan (`tests/fixtures/split`) built monolithic and as stage
//! derivations chained by state archives. The build bakes its output path into an ELF binary,
//! so the split build's final derivation must rewrite its placeholder there.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::describe;
use crate::nix::Nix;
use crate::nix::{nix_build, nonce, out_path, require_nix, root, static_kiln, NIX_OPTIONS};

fn build(attr: &str, nonce: &str, extra: &[&str]) -> std::process::Output {
    build_on(crate::nix::Nix::V2_8, attr, nonce, extra)
}

/// [`build`] on `nix`.
fn build_on(nix: crate::nix::Nix, attr: &str, nonce: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["-A", attr];
    args.extend_from_slice(extra);
    crate::nix::nix_build_on(nix, "split", nonce, &args)
}

/// A copy of `output` with its own store path replaced by a fixed string of the same length,
/// and its NAR hash (`nix-hash`, which ignores mtimes like Nix does).
fn normalised_hash(output: &Path, scratch: &Path) -> String {
    let copy = scratch.join("tree");
    let status = Command::new("cp")
        .arg("-a")
        .arg(output)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    let status = Command::new("chmod")
        .args(["-R", "u+w"])
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    let from = output.display().to_string();
    let to = format!("/nix/store/{}{}", "x".repeat(32), &from[43..]);
    let rewriter = kiln_fixup::rewrite::Rewriter::new([(&from, &to)]).unwrap();
    kiln_fixup::rewrite::rewrite_tree(&copy, &rewriter).unwrap();
    let hash = Command::new("nix-hash")
        .args(["--type", "sha256"])
        .arg(&copy)
        .output()
        .unwrap();
    assert!(hash.status.success(), "{}", describe(&hash));
    String::from_utf8(hash.stdout).unwrap().trim().to_owned()
}

#[test]
fn split_and_monolithic_agree_once_the_output_path_is_normalised() {
    let nonce = nonce();
    let split = build("split", &nonce, &[]);
    assert!(split.status.success(), "{}", describe(&split));
    let monolithic = build("monolithic", &nonce, &[]);
    assert!(monolithic.status.success(), "{}", describe(&monolithic));
    let (split_out, mono_out) = (out_path(&split), out_path(&monolithic));
    assert_ne!(split_out, mono_out);

    // The rewritten binary runs and knows its real prefix.
    let run = Command::new(split_out.join("bin/demo")).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        format!("installed in {}\n", split_out.display())
    );
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    assert_eq!(
        normalised_hash(&split_out, a.path()),
        normalised_hash(&mono_out, b.path())
    );
    // No placeholder and no stage is referenced by the result.
    let references = Command::new("nix-store")
        .args(["--query", "--references"])
        .arg(&split_out)
        .output()
        .unwrap();
    let references = String::from_utf8_lossy(&references.stdout);
    assert!(!references.contains("-state-"), "{references}");

    // The plain build (real path from the start) runs the same and differs only in what the
    // path feeds into: the linker's build-id note.
    let plain = build("plain", &nonce, &[]);
    assert!(plain.status.success(), "{}", describe(&plain));
    let run = Command::new(out_path(&plain).join("bin/demo"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        format!("installed in {}\n", out_path(&plain).display())
    );

    for attr in ["split", "monolithic"] {
        let check = build(attr, &nonce, &["--check"]);
        assert!(check.status.success(), "{attr}: {}", describe(&check));
    }
}

/// The derivations `nix-build --dry-run` says it would build.
fn would_build(output: &std::process::Output) -> Vec<String> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut lines = stderr.lines();
    let mut found = Vec::new();
    while let Some(line) = lines.next() {
        if line.contains("will be built") {
            found.extend(
                lines
                    .by_ref()
                    .take_while(|l| l.starts_with("  "))
                    .map(|l| l.trim().to_owned()),
            );
            break;
        }
    }
    found
}

#[test]
fn changing_only_the_install_phase_rebuilds_exactly_one_derivation() {
    let nonce = nonce();
    let first = build("split", &nonce, &["--argstr", "installFlag", "first"]);
    assert!(first.status.success(), "{}", describe(&first));
    let changed = build(
        "split",
        &nonce,
        &["--argstr", "installFlag", "second", "--dry-run"],
    );
    assert!(changed.status.success(), "{}", describe(&changed));
    let rebuilt = would_build(&changed);
    assert_eq!(rebuilt.len(), 1, "{}", describe(&changed));
    assert!(rebuilt[0].ends_with("-kiln-split-demo.drv"), "{rebuilt:?}");
}

/// Split mode with a check derivation: a failing check fails only the check derivation,
/// and the installed output builds.
fn a_failing_check_fails_only_the_check_derivation(nix: Nix) {
    let nonce = nonce();
    let check = build_on(
        nix,
        "split.checkDrv",
        &nonce,
        &["--arg", "failCheck", "true"],
    );
    assert!(
        !check.status.success(),
        "{}: {}",
        nix.name(),
        describe(&check)
    );
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(
        stderr.contains("the demo check failed on purpose"),
        "{}: {stderr}",
        nix.name()
    );
    assert!(
        stderr.contains("phase `check`, step 2 (run)"),
        "{}: {stderr}",
        nix.name()
    );
    let installed = build_on(nix, "split", &nonce, &["--arg", "failCheck", "true"]);
    crate::nix::assert_success(nix, &installed);
    let program = nix.host_path(&out_path(&installed).join("bin/prefix-demo"));
    assert!(program.exists(), "{}: {}", nix.name(), program.display());
}
crate::nix::on_both_nix!(a_failing_check_fails_only_the_check_derivation);

#[test]
fn the_patched_source_is_its_own_derivation() {
    let output = build("split.sourceDrv", &nonce(), &[]);
    assert!(output.status.success(), "{}", describe(&output));
    let source = out_path(&output);
    assert!(source.join("prefix.c").is_file());
    // The configure phase ran in the stage the source comes from.
    let config = std::fs::read_to_string(source.join("config.mk")).unwrap();
    assert!(config.starts_with("prefix=/nix/store/"), "{config}");
}

/// The binary-cache round trip: the stages go into a file cache; a fresh store builds only
/// the final derivation and substitutes the stages.
fn early_phases_are_substituted_from_a_binary_cache_into_a_fresh_store(nix: Nix) {
    nix.require();
    let nonce = nonce();
    let stages = build_on(nix, "split.stages", &nonce, &[]);
    crate::nix::assert_success(nix, &stages);
    let stage_paths: Vec<PathBuf> = String::from_utf8_lossy(&stages.stdout)
        .lines()
        .map(PathBuf::from)
        .collect();
    assert_eq!(stage_paths.len(), 2);
    let scratch = tempfile::tempdir().unwrap();
    // Uncompressed: the stage-0 toolchain (300 MB) goes in too, since the states' references
    // (inside zstd) are invisible to Nix and the final derivation needs the compiler.
    let cache = format!(
        "file://{}?compression=none",
        scratch.path().join("cache").display()
    );
    let copy = nix
        .command("nix")
        .args([
            "--extra-experimental-features",
            "nix-command",
            "copy",
            "--to",
            &cache,
        ])
        .args(&stage_paths)
        .arg(crate::nix::stage0_toolchain_on(nix))
        .output()
        .unwrap();
    assert!(copy.status.success(), "{}", describe(&copy));

    let store = scratch.path().join("store");
    let fresh = nix
        .command("nix-build")
        .arg(root().join("tests/fixtures/split"))
        .args(["-A", "split", "--arg", "kiln"])
        .arg(static_kiln())
        .args(["--argstr", "nonce", &nonce])
        .args(NIX_OPTIONS)
        .args(["--no-out-link", "--store"])
        .arg(&store)
        .args([
            "--option",
            "substituters",
            &cache,
            "--option",
            "require-sigs",
            "false",
        ])
        .output()
        .unwrap();
    assert!(fresh.status.success(), "{}", describe(&fresh));
    let stderr = String::from_utf8_lossy(&fresh.stderr);
    let built = would_build(&fresh);
    assert_eq!(built.len(), 1, "{stderr}");
    assert!(built[0].ends_with("-kiln-split-demo.drv"), "{stderr}");
    for stage in &stage_paths {
        assert!(
            stderr.contains(&format!("copying path '{}' from", stage.display())),
            "{stderr}"
        );
    }
}
crate::nix::on_both_nix!(early_phases_are_substituted_from_a_binary_cache_into_a_fresh_store);

/// GNU hello 2.10 (Debian source, autotools preset) split one derivation per phase.
fn hello(attr: &str, nonce: &str, extra: &[&str]) -> std::process::Output {
    let sources = crate::nix::debian_source("hello");
    let mut args = vec!["-A", attr, "--arg", "debianSrc", sources.to_str().unwrap()];
    args.extend_from_slice(extra);
    nix_build("split/hello.nix", nonce, &args)
}

/// The `.drv` paths of hello's split parts (the stages, the check, the final) when the preset
/// plan has an `after install` edit writing `note`.
fn hello_part_derivations(note: &str) -> Vec<String> {
    crate::nix::stage0_debs();
    let sources = crate::nix::debian_source("hello");
    let expression = format!(
        "let s = (import {}/tests/fixtures/split/hello.nix {{ kiln = {}; debianSrc = {}; \
         installNote = \"{note}\"; }}).split; \
         in map (part: part.drvPath) s.stages ++ [ s.checkDrv.drvPath s.drvPath ]",
        root().display(),
        static_kiln().display(),
        sources.display()
    );
    let output = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "--expr", &expression])
        .args(NIX_OPTIONS)
        .output()
        .expect("nix-instantiate runs");
    assert!(output.status.success(), "{}", describe(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// An edit of a preset plan that inserts a phase after `install` concerns only the final part:
/// the stages before it and the check keep their derivations, so they are not rebuilt.
#[test]
fn a_preset_edit_after_install_changes_only_the_final_derivation() {
    require_nix();
    let first = hello_part_derivations("first");
    let second = hello_part_derivations("second");
    assert_eq!(first.len(), 7, "5 stages, the check, the final: {first:?}");
    let changed: Vec<(&String, &String)> =
        first.iter().zip(&second).filter(|(a, b)| a != b).collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(changed[0].0.ends_with("-hello-2.10.drv"), "{changed:?}");
}

#[test]
fn hello_split_per_phase_matches_the_monolithic_build() {
    let nonce = nonce();
    let split = hello("split", &nonce, &[]);
    assert!(split.status.success(), "{}", describe(&split));
    let stderr = String::from_utf8_lossy(&split.stderr);
    for stage in ["unpack", "patch", "configure", "build", "install"] {
        assert!(
            stderr.contains("-hello-2.10-state-") && stderr.contains(&format!("-{stage}.drv")),
            "no {stage} stage: {stderr}"
        );
    }
    let monolithic = hello("monolithic", &nonce, &[]);
    assert!(monolithic.status.success(), "{}", describe(&monolithic));
    let (split_out, mono_out) = (out_path(&split), out_path(&monolithic));
    let run = Command::new(split_out.join("bin/hello")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stdout), "Hello, world!\n");
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    assert_eq!(
        normalised_hash(&split_out, a.path()),
        normalised_hash(&mono_out, b.path())
    );
    // Stages are not checked: a state keeps the build's real mtimes (make needs them), so two
    // runs of a stage differ in them; what must reproduce is the result.
    for attr in ["split", "monolithic"] {
        let check = hello(attr, &nonce, &["--check"]);
        assert!(check.status.success(), "{attr}: {}", describe(&check));
    }
    // The check derivation runs hello's test suite from the post-build state.
    let check = hello("split.checkDrv", &nonce, &[]);
    assert!(check.status.success(), "{}", describe(&check));
    assert!(
        String::from_utf8_lossy(&check.stderr).contains("PASS"),
        "{}",
        describe(&check)
    );
}
