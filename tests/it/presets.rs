//! Presets through the real binary, outside Nix: a small autotools-style project (a configure
//! script and a Makefile of our own) built with the `autotools` preset, edits, and `kiln plan`
//! origins. Host tools (`/bin/sh`, make) come from the `/usr` input.

use std::path::Path;

use crate::common::{describe, Scratch};

/// A project whose configure script records its arguments and writes a Makefile with `all`,
/// `check` and `install` targets. It mentions `dependency-tracking`, so stdenv's rule adds
/// `--disable-dependency-tracking`; it does not mention static libraries.
fn write_project(scratch: &Scratch) {
    scratch.write(
        "src/demo-1.0/configure",
        "#!/bin/sh\n\
         # accepts --disable-dependency-tracking like autoconf scripts do\n\
         echo \"$@\" > configure.args\n\
         for arg; do case $arg in --prefix=*) prefix=${arg#--prefix=};; esac; done\n\
         printf 'PREFIX = %s\\n' \"$prefix\" > Makefile\n\
         cat Makefile.in >> Makefile\n",
    );
    scratch.write(
        "src/demo-1.0/Makefile.in",
        "all:\n\tprintf 'built\\n' > demo.txt\n\
         check:\n\tgrep -q built demo.txt && echo checked > check.log\n\
         install:\n\tmkdir -p $(PREFIX)/share\n\tcp demo.txt configure.args $(PREFIX)/share/\n",
    );
    let configure = scratch.path().join("src/demo-1.0/configure");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&configure, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `kiln` in `scratch`, lending the toolchain, the project's sources (`src/`) and the patch
/// (`fix.patch`): plan inputs outside the store must be lent.
fn kiln(scratch: &Scratch) -> std::process::Command {
    let mut lend = vec![crate::common::TOOLCHAIN.to_owned()];
    for name in ["src", "fix.patch"] {
        let path = scratch.path().join(name);
        if path.exists() {
            lend.push(path.display().to_string());
        }
    }
    let mut command = scratch.kiln();
    command.env("KILN_LEND", lend.join(":"));
    command
}

fn plan(src: &Path, extra: &str) -> String {
    format!(
        r#"{{"version":1,"name":"demo",
            "inputs":{{"src":"{}","host":"/usr"}},
            "deps":{{"build":["host"]}},
            "preset":{{"system":"autotools","srcs":["${{inputs.src}}"],"doCheck":true,
                       "configureFlags":["--with-demo"],"dontFixup":true}}{extra}}}"#,
        src.display()
    )
}

#[test]
fn autotools_preset_configures_builds_checks_and_installs() {
    let scratch = Scratch::new();
    write_project(&scratch);
    scratch.write("plan.json", &plan(&scratch.path().join("src/demo-1.0"), ""));
    let output = kiln(&scratch)
        .args([
            "build",
            "--keep-build-dir",
            "--build-dir",
            "build",
            "plan.json",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let out = scratch.path().join("kiln-out/out");
    assert_eq!(
        std::fs::read_to_string(out.join("share/configure.args")).unwrap(),
        format!(
            "--disable-dependency-tracking --prefix={} --with-demo\n",
            out.display()
        )
    );
    assert_eq!(
        std::fs::read_to_string(out.join("share/demo.txt")).unwrap(),
        "built\n"
    );
    // The check phase found the `check` target and ran it in the source root.
    let log = scratch.path().join("build/demo-1.0/check.log");
    assert_eq!(std::fs::read_to_string(log).unwrap(), "checked\n");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for phase in ["unpack", "configure", "build", "check", "install"] {
        assert!(
            stderr.contains(&format!("==> phase {phase} finished")),
            "{stderr}"
        );
    }
    assert!(stderr.contains("phase patch is disabled"), "{stderr}");
}

#[test]
fn edits_change_the_preset_phases_and_plan_shows_origins() {
    let scratch = Scratch::new();
    write_project(&scratch);
    let edits = r#","edits":[
        {"after":{"phase":"install","insert":{"name":"stamp","steps":[
            {"write":{"path":"${outputs.out}/stamp","content":"x"}}]}}},
        {"delete":{"phase":"check"}}]"#;
    scratch.write(
        "plan.json",
        &plan(&scratch.path().join("src/demo-1.0"), edits),
    );
    let output = kiln(&scratch).args(["plan", "plan.json"]).output().unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let shown: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let phases: Vec<(String, String)> = shown["plan"]["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["origin"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("unpack", "preset autotools"),
        ("patch", "preset autotools"),
        ("configure", "preset autotools"),
        ("build", "preset autotools"),
        ("install", "preset autotools"),
        ("stamp", "edit in the plan"),
        ("fixup", "preset autotools"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(phases, expected);
    assert!(shown["environment"]["PATH"]["origin"]
        .as_str()
        .unwrap()
        .starts_with("dependencies:"));

    let output = kiln(&scratch)
        .args(["build", "plan.json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    assert!(scratch.path().join("kiln-out/out/stamp").exists());
}

#[test]
fn an_edit_of_an_unknown_phase_lists_the_phases() {
    let scratch = Scratch::new();
    let edits = r#","edits":[{"before":{"phase":"compile","insert":{"name":"x","steps":[]}}}]"#;
    scratch.write("plan.json", &plan(Path::new("/nonexistent"), edits));
    let output = kiln(&scratch)
        .args(["validate", "plan.json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "at `edits[0].before.phase` (edit in the plan): no phase `compile`; phases are: \
             unpack, patch, configure, build, check, install, fixup"
        ),
        "{stderr}"
    );
}

#[test]
fn preset_patches_apply_in_the_source_root_and_a_bad_hunk_names_patch_file_and_hunk() {
    let scratch = Scratch::new();
    write_project(&scratch);
    let good = scratch.write(
        "fix.patch",
        "--- a/Makefile.in\n+++ b/Makefile.in\n@@ -1,2 +1,2 @@\n all:\n-\tprintf 'built\\n' > demo.txt\n+\tprintf 'built and patched\\n' > demo.txt\n",
    );
    // The patch is an input: in kiln's sandbox a step sees only the plan's inputs.
    let text = plan(&scratch.path().join("src/demo-1.0"), r#","edits":[]"#)
        .replace(
            r#""host":"/usr"}"#,
            &format!(r#""host":"/usr","fix":"{}"}}"#, good.display()),
        )
        .replace(
            r#""dontFixup":true"#,
            r#""dontFixup":true,"patches":["${inputs.fix}"]"#,
        );
    scratch.write("plan.json", &text);
    let output = kiln(&scratch)
        .args(["build", "plan.json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let out = scratch.path().join("kiln-out/out");
    assert_eq!(
        std::fs::read_to_string(out.join("share/demo.txt")).unwrap(),
        "built and patched\n"
    );

    // The same patch again cannot apply: the hunk's context is gone.
    std::fs::remove_dir_all(scratch.path().join("kiln-out")).unwrap();
    let twice = text.replace(
        r#""patches":["${inputs.fix}"]"#,
        r#""patches":["${inputs.fix}","${inputs.fix}"]"#,
    );
    scratch.write("plan.json", &twice);
    let output = kiln(&scratch)
        .args(["build", "plan.json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("phase `patch`, step 1 (patch)"), "{stderr}");
    assert!(stderr.contains("fix.patch"), "{stderr}");
    assert!(stderr.contains("Makefile.in"), "{stderr}");
    assert!(stderr.contains("hunk #1 `@@ -1,2 +1,2 @@`"), "{stderr}");
}

/// A project whose install puts the things fixup works on into `$out`: an unstripped program, a
/// `#!/usr/bin/env sh` script, a man page with a symlink to it, a libtool `.la` file and an
/// absolute symlink.
fn write_fixup_project(scratch: &Scratch) {
    scratch.write("src/fix-1.0/configure", "#!/bin/sh\nfor arg; do case $arg in --prefix=*) prefix=${arg#--prefix=};; esac; done\nprintf 'PREFIX = %s\\n' \"$prefix\" > Makefile\ncat Makefile.in >> Makefile\n");
    scratch.write("src/fix-1.0/prog.c", "int main(void) { return 0; }\n");
    scratch.write("src/fix-1.0/tool", "#!/usr/bin/env sh\necho tool\n");
    scratch.write("src/fix-1.0/fix.1", ".TH FIX 1\nfix \\- a test page\n");
    scratch.write("src/fix-1.0/libfix.la", "# libfix.la - a libtool library file\n# Generated by libtool (GNU libtool) 2.4.7\ndlname='libfix.so.1'\nlibrary_names='libfix.so.1 libfix.so'\nold_library=''\ndependency_libs=' -L/somewhere -lm'\n");
    scratch.write(
        "src/fix-1.0/Makefile.in",
        "all:\n\tcc -g -O0 -o prog prog.c\n\
         install:\n\tmkdir -p $(PREFIX)/bin $(PREFIX)/man/man1 $(PREFIX)/lib\n\
         \tcp prog tool $(PREFIX)/bin/\n\tchmod 755 $(PREFIX)/bin/tool\n\
         \tcp fix.1 $(PREFIX)/man/man1/\n\tln -s fix.1 $(PREFIX)/man/man1/fixalias.1\n\
         \tcp libfix.la $(PREFIX)/lib/\n\tln -s $(PREFIX)/bin/prog $(PREFIX)/bin/prog-link\n",
    );
    use std::os::unix::fs::PermissionsExt;
    let configure = scratch.path().join("src/fix-1.0/configure");
    std::fs::set_permissions(&configure, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn the_fixup_phase_does_what_stdenv_does() {
    let scratch = Scratch::new();
    write_fixup_project(&scratch);
    let text = plan(&scratch.path().join("src/fix-1.0"), "")
        .replace(r#","dontFixup":true"#, "")
        .replace(r#""doCheck":true,"#, "");
    scratch.write("plan.json", &text);
    let output = kiln(&scratch)
        .args(["build", "plan.json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let out = scratch.path().join("kiln-out/out");
    // move-docs: man/ went under share/; compress-man: gzipped, the symlink follows.
    assert!(!out.join("man").exists());
    let page = out.join("share/man/man1/fix.1.gz");
    assert!(page.is_file(), "{}", describe(&output));
    assert_eq!(
        std::fs::read_link(out.join("share/man/man1/fixalias.1.gz")).unwrap(),
        Path::new("fix.1.gz")
    );
    // patch-shebangs: `env sh` became the absolute interpreter on PATH.
    let tool = std::fs::read_to_string(out.join("bin/tool")).unwrap();
    assert_eq!(tool.lines().next().unwrap(), "#!/usr/bin/sh");
    // strip: no debug sections left.
    let sections = std::process::Command::new("readelf")
        .args(["-S", "-W"])
        .arg(out.join("bin/prog"))
        .output()
        .unwrap();
    let sections = String::from_utf8_lossy(&sections.stdout);
    assert!(
        sections.contains(".text") && !sections.contains(".debug_info"),
        "{sections}"
    );
    // prune-libtool-files and make-symlinks-relative.
    let la = std::fs::read_to_string(out.join("lib/libfix.la")).unwrap();
    assert!(la.contains("dependency_libs='' #pruned"), "{la}");
    assert_eq!(
        std::fs::read_link(out.join("bin/prog-link")).unwrap(),
        Path::new("prog")
    );
}

#[test]
fn fixup_fails_on_a_dangling_symlink() {
    let scratch = Scratch::new();
    write_fixup_project(&scratch);
    let makefile = scratch.path().join("src/fix-1.0/Makefile.in");
    let mut text = std::fs::read_to_string(&makefile).unwrap();
    text.push_str("\tln -s nowhere $(PREFIX)/bin/dangling\n");
    std::fs::write(&makefile, text).unwrap();
    let text = plan(&scratch.path().join("src/fix-1.0"), "")
        .replace(r#","dontFixup":true"#, "")
        .replace(r#""doCheck":true,"#, "");
    scratch.write("plan.json", &text);
    let output = kiln(&scratch)
        .args(["build", "plan.json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("phase `fixup`, step 1 (fixup)"), "{stderr}");
    assert!(stderr.contains("dangling"), "{stderr}");
}

#[test]
fn fixup_splits_headers_into_the_dev_output() {
    let scratch = Scratch::new();
    write_fixup_project(&scratch);
    scratch.write("src/fix-1.0/fix.h", "int fix(void);\n");
    let makefile = scratch.path().join("src/fix-1.0/Makefile.in");
    let mut text = std::fs::read_to_string(&makefile).unwrap();
    text.push_str("\tmkdir -p $(PREFIX)/include\n\tcp fix.h $(PREFIX)/include/\n");
    std::fs::write(&makefile, text).unwrap();
    let text = plan(
        &scratch.path().join("src/fix-1.0"),
        r#","outputs":["out","dev"],"propagate":{"host":["host"]}"#,
    )
    .replace(r#","dontFixup":true"#, "")
    .replace(r#""doCheck":true,"#, "");
    scratch.write("plan.json", &text);
    let output = kiln(&scratch)
        .args(["build", "plan.json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let (out, dev) = (
        scratch.path().join("kiln-out/out"),
        scratch.path().join("kiln-out/dev"),
    );
    assert!(dev.join("include/fix.h").is_file(), "{}", describe(&output));
    assert!(!out.join("include").exists());
    assert!(out.join("bin/prog").is_file());
    // dev propagates the plan's own list and, from the fixup's _multioutPropagateDev, `out`.
    assert_eq!(
        std::fs::read_to_string(dev.join("nix-support/propagated-build-inputs")).unwrap(),
        format!("/usr {}\n", out.display())
    );
}
