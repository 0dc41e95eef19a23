//! Unit tests of the translation: every row of the attribute table against the translator, then
//! each attribute's effect on the plan.

use kiln_schema::{Input, Step};
use serde_json::{json, Value};

use crate::table::{Kind, Status, ATTRIBUTES};
use crate::translate::translate_reading;
use crate::{translate, TranslateErrorKind, TranslateOptions, Translation};

const SRC: &str = "/nix/store/00000000000000000000000000000000-hello-2.10.tar.gz";
const BASH: &str = "/nix/store/11111111111111111111111111111111-bash";

fn bash_exists(path: &str) -> bool {
    path == format!("{BASH}/bin/bash")
}

fn options() -> TranslateOptions<'static> {
    TranslateOptions {
        is_executable: &bash_exists,
    }
}

/// A minimal derivation plus `extra`.
fn attrs(extra: Value) -> Value {
    let mut base = json!({
        "name": "hello-2.10",
        "outputs": { "out": "/nix/store/22222222222222222222222222222222-hello-2.10" },
        "src": SRC,
        "nativeBuildInputs": [BASH],
    });
    for (key, value) in extra.as_object().unwrap() {
        base[key] = value.clone();
    }
    base
}

fn ok(extra: Value) -> Translation {
    translate(&attrs(extra.clone()), &options())
        .unwrap_or_else(|errors| panic!("{extra}: {errors}"))
}

fn errors(extra: Value) -> Vec<crate::TranslateError> {
    match translate(&attrs(extra.clone()), &options()) {
        Ok(_) => panic!("{extra} translated"),
        Err(errors) => errors.0,
    }
}

fn phase<'t>(t: &'t Translation, name: &str) -> &'t kiln_schema::Phase {
    t.plan
        .phases
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no phase {name}"))
}

fn make(t: &Translation, name: &str) -> kiln_schema::MakeStep {
    phase(t, name)
        .steps
        .iter()
        .find_map(|step| match step {
            Step::Make(make) => Some(make.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no make step in {name}"))
}

fn configure(t: &Translation) -> kiln_schema::ConfigureStep {
    match &phase(t, "configure").steps[0] {
        Step::Configure(step) => step.clone(),
        other => panic!("{other:?}"),
    }
}

fn run_argv(t: &Translation, name: &str, index: usize) -> Vec<String> {
    match &phase(t, name).steps[index] {
        Step::Run(run) => run.argv.clone(),
        other => panic!("{other:?}"),
    }
}

/// A value of the attribute's kind that the translator accepts.
fn sample(name: &str, kind: Kind) -> Value {
    match name {
        "phases" => json!(["unpackPhase", "installPhase"]),
        "patchFlags" => json!(["-p0"]),
        "outputs" => {
            json!({ "out": "/nix/store/22222222222222222222222222222222-hello-2.10", "dev": "/nix/store/33333333333333333333333333333333-hello-2.10-dev" })
        }
        "kilnShell" => json!(BASH.to_owned() + "/bin/bash"),
        "env" => json!({ "A": "b" }),
        "outputChecks" => json!({ "out": { "maxSize": 100 } }),
        "kilnEdits" => json!([{ "after": { "phase": "install", "insert": {
            "name": "extra", "steps": [{ "mkdir": { "path": "${outputs.out}/share" } }] } } }]),
        "prePhases" | "preConfigurePhases" | "preBuildPhases" | "preInstallPhases"
        | "preFixupPhases" | "preDistPhases" | "postPhases" => json!([]),
        _ => match kind {
            Kind::Bool => json!(true),
            Kind::String | Kind::Any => json!("x"),
            Kind::List => json!(["A=b"]),
            Kind::Path => json!("/nix/store/44444444444444444444444444444444-x"),
            Kind::Paths => json!(["/nix/store/44444444444444444444444444444444-x"]),
            Kind::Object => json!({}),
        },
    }
}

/// The attributes an attribute needs to have an effect, and a value that has one.
fn context_and_value(name: &str, kind: Kind) -> (Value, Value) {
    let cmake = json!({ "cmakeFlags": [] });
    let meson = json!({ "mesonFlags": [] });
    let shell = json!({ "kilnAllowShell": true, "postInstall": "true" });
    let multi = json!({ "outputs": { "out": "/o", "dev": "/d", "doc": "/e" } });
    match name {
        "cmakeBuildType" | "dontUseCmakeConfigure" => (cmake, sample(name, kind)),
        "mesonAutoFeatures"
        | "mesonBuildType"
        | "ninjaFlags"
        | "mesonCheckFlags"
        | "mesonInstallFlags"
        | "dontUseMesonConfigure" => (meson, sample(name, kind)),
        "pname" => (cmake, json!("x")),
        "version" | "kilnShell" => (shell, sample(name, kind)),
        "kilnAllowShell" => (json!({ "postInstall": "true" }), json!(true)),
        "setOutputFlags" => (multi, json!(false)),
        "moveToDev" => (multi, json!(false)),
        "propagatedBuildOutputs" => (multi, json!(["out"])),
        "outputDev" | "outputBin" | "outputInclude" | "outputLib" | "outputDoc"
        | "outputDevdoc" | "outputMan" | "outputDevman" | "outputInfo" => (multi, json!("doc")),
        "shareDocName" => (multi, json!("x")),
        "patchFlags" => (
            json!({ "patches": ["/nix/store/66666666666666666666666666666666-a.patch"] }),
            sample(name, kind),
        ),
        "prePhases" | "preConfigurePhases" | "preBuildPhases" | "preInstallPhases"
        | "preFixupPhases" | "preDistPhases" | "postPhases" => (
            json!({ "kilnAllowShell": true, "myPhase": "true" }),
            json!(["myPhase"]),
        ),
        _ => (json!({}), sample(name, kind)),
    }
}

#[test]
fn every_translated_attribute_is_read_and_every_read_attribute_is_in_the_table() {
    for row in ATTRIBUTES.iter().filter(|row| row.status.is_translated()) {
        let (context, value) = context_and_value(row.name, row.kind);
        let mut input = attrs(context);
        input[row.name] = value.clone();
        let (result, read) = translate_reading(&input, &options());
        if let Err(errors) = result {
            panic!("`{}` = {value}: {errors}", row.name);
        }
        assert!(
            read.contains(row.name),
            "the table says `{}` is translated, but the translator never reads it",
            row.name
        );
    }
}

#[test]
fn ignored_attributes_are_accepted() {
    for row in ATTRIBUTES
        .iter()
        .filter(|row| matches!(row.status, Status::Ignored(_)))
    {
        ok(json!({ row.name: sample(row.name, row.kind) }));
    }
}

#[test]
fn unsupported_attributes_are_refused_when_set_and_accepted_when_empty() {
    for row in ATTRIBUTES
        .iter()
        .filter(|row| matches!(row.status, Status::Unsupported(_)))
    {
        let found = errors(json!({ row.name: sample(row.name, row.kind) }));
        assert_eq!(found.len(), 1, "{}: {found:?}", row.name);
        assert_eq!(found[0].path.to_string(), row.name);
        assert!(
            matches!(&found[0].kind, TranslateErrorKind::Unsupported { attribute, .. } if attribute == row.name),
            "{found:?}"
        );
        for empty in [json!(null), json!(false), json!(""), json!([])] {
            ok(json!({ row.name: empty }));
        }
    }
}

#[test]
fn every_shell_attribute_is_refused_in_one_error_and_runs_with_the_opt_in() {
    let shell_rows: Vec<_> = ATTRIBUTES
        .iter()
        .filter(|row| matches!(row.status, Status::Shell(_)))
        .collect();
    for row in &shell_rows {
        let value = json!({ row.name: "echo hi" });
        let found = errors(value.clone());
        assert_eq!(found.len(), 1, "{}: {found:?}", row.name);
        let TranslateErrorKind::ShellCode { hooks } = &found[0].kind else {
            panic!("{found:?}");
        };
        assert_eq!(hooks[0].0, row.name);
        let mut allowed = value;
        allowed["kilnAllowShell"] = json!(true);
        let t = ok(allowed);
        assert!(
            t.report.shell_hooks.iter().any(|h| h.attribute == row.name),
            "`{}` with kilnAllowShell does not run: {:?}",
            row.name,
            t.report
        );
    }
}

#[test]
fn the_shell_refusal_lists_every_attribute_with_its_replacement() {
    let found = errors(json!({
        "preConfigure": "autoreconf -i",
        "postInstall": "rm -r $out/share/info",
        "buildPhase": "make foo",
    }));
    assert_eq!(found.len(), 1);
    let message = found[0].to_string();
    assert!(
        message.starts_with("at `buildPhase`: 3 attributes are shell code"),
        "{message}"
    );
    for expected in [
        "`buildPhase`: use a `replace` edit of phase `build`",
        "`postInstall`: use `copy`, `symlink`",
        "`preConfigure`: use a phase of typed steps",
    ] {
        assert!(message.contains(expected), "{message}");
    }
    assert!(found[0]
        .kind
        .hint()
        .unwrap()
        .contains("kilnAllowShell = true"));
}

#[test]
fn shell_hooks_run_where_stdenv_runs_them() {
    let t = ok(json!({
        "kilnAllowShell": true,
        "preConfigure": "echo pre",
        "postInstall": "echo post",
        "postUnpack": "echo unpacked",
        "buildPhase": "runHook preBuild; make foo",
    }));
    assert_eq!(
        t.report.shell.as_deref(),
        Some(&*format!("{BASH}/bin/bash"))
    );
    assert_eq!(t.report.shell_hooks.len(), 4);
    let configure = phase(&t, "configure");
    assert_eq!(
        run_argv(&t, "configure", 0),
        [&format!("{BASH}/bin/bash"), "-e", "-c", "echo pre"]
    );
    assert!(matches!(configure.steps[1], Step::Configure(_)));
    let install = phase(&t, "install");
    assert_eq!(
        run_argv(&t, "install", install.steps.len() - 1)[3],
        "echo post"
    );
    let Step::Run(unpacked) = &phase(&t, "unpack").steps[1] else {
        panic!("postUnpack after unpack");
    };
    assert_eq!(unpacked.cwd.as_deref(), Some("${build.top}"));
    let build = run_argv(&t, "build", 0);
    assert_eq!(build[3], "runHook() { :; }\nrunHook preBuild; make foo");
    assert_eq!(phase(&t, "build").steps.len(), 1);
    let messages = t.report.messages();
    assert!(
        messages
            .iter()
            .any(|(_, text)| text
                .starts_with(&format!("4 shell hooks run through `{BASH}/bin/bash`"))),
        "{messages:?}"
    );
    // Shell code is taken literally: `${` is not a kiln reference.
    let t = ok(json!({ "kilnAllowShell": true, "preBuild": "echo ${out}" }));
    assert_eq!(run_argv(&t, "build", 0)[3], "echo $${out}");
}

#[test]
fn hooks_that_only_patch_shebangs_are_typed_steps_not_shell_code() {
    let t = ok(json!({
        "postPatch": "# the test runner is `#!/usr/bin/env python3`\npatchShebangs test\n\n  patchShebangs --build build-aux/git-version-gen tools\n",
        "nativeBuildInputs": [],
    }));
    assert!(t.report.shell_hooks.is_empty());
    assert_eq!(t.report.shell, None);
    let patch = phase(&t, "patch");
    assert!(patch.enabled, "postPatch runs even without patches");
    let Some(Step::PatchShebangs(step)) = patch.steps.last() else {
        panic!("postPatch is not a patchShebangs step: {:?}", patch.steps);
    };
    assert_eq!(step.paths, ["test", "build-aux/git-version-gen", "tools"]);

    // Anything else is shell code: refused without the opt-in.
    for script in [
        "patchShebangs $out/bin",
        "patchShebangs 'tests'",
        "patchShebangs tests/*.py",
        "patchShebangs --host bin",
        "patchShebangs",
        "patchShebangs tests; rm -rf x",
        "patchShebangs tests\necho done",
    ] {
        let found = errors(json!({ "postPatch": script }));
        assert!(
            matches!(found[0].kind, TranslateErrorKind::ShellCode { .. }),
            "{script:?}: {found:?}"
        );
    }
}

#[test]
fn kiln_edits_add_typed_phases_with_provenance_and_errors_point_into_them() {
    let t = ok(json!({
        "kilnEdits": [
            { "after": { "phase": "install", "insert": { "name": "share",
                "steps": [{ "write": { "path": "${outputs.out}/share/x", "content": "x" } }] } } },
            { "before": { "phase": "configure", "insert": { "name": "bootstrap",
                "steps": [{ "run": { "argv": ["autoreconf", "-fi"] } }] } } },
            { "delete": { "phase": "dist" } },
        ],
    }));
    let names: Vec<&str> = t.plan.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "unpack",
            "patch",
            "bootstrap",
            "configure",
            "build",
            "check",
            "install",
            "share",
            "fixup",
            "installCheck"
        ]
    );
    assert_eq!(t.plan.phases.len(), t.report.provenance.len());
    let share = t
        .report
        .provenance
        .iter()
        .find(|p| p.phase == "share")
        .unwrap();
    assert_eq!(share.stdenv, "kilnEdits[0]");
    assert_eq!(share.steps, [["kilnEdits[0]"]]);
    assert_eq!(
        phase(&t, "bootstrap").origin.as_deref(),
        Some("kilnEdits[1]")
    );
    let configure = t
        .report
        .provenance
        .iter()
        .find(|p| p.phase == "configure")
        .unwrap();
    assert_eq!(configure.stdenv, "configurePhase");
    assert!(t.plan.edits.is_empty(), "applied, not left for the loader");

    let found = errors(json!({
        "kilnEdits": [{ "after": { "phase": "instal", "insert": { "name": "x", "steps": [] } } }],
    }));
    assert_eq!(found[0].path.to_string(), "kilnEdits[0].after.phase");
    assert!(found[0].to_string().contains("instal"), "{}", found[0]);
    let found = errors(json!({ "kilnEdits": [{ "afterr": {} }] }));
    assert!(
        found[0].path.to_string().starts_with("kilnEdits[0]"),
        "{}",
        found[0].path
    );
}

#[test]
fn hooks_given_as_lists_of_steps_are_typed_steps_where_stdenv_runs_the_hook() {
    let t = ok(json!({
        "postInstall": [
            { "mkdir": { "path": "${outputs.out}/share" } },
            { "write": { "path": "${outputs.out}/share/x", "content": "x" } },
        ],
        "preBuild": [{ "run": { "argv": ["touch", "stamp"] } }],
        "nativeBuildInputs": [],
    }));
    assert!(t.report.shell_hooks.is_empty());
    let install = phase(&t, "install");
    let n = install.steps.len();
    assert!(matches!(install.steps[n - 2], Step::Mkdir(_)));
    assert!(matches!(install.steps[n - 1], Step::Write(_)));
    assert_eq!(run_argv(&t, "build", 0), ["touch", "stamp"]);
    let build = t
        .report
        .provenance
        .iter()
        .find(|p| p.phase == "build")
        .unwrap();
    assert_eq!(build.steps[0], ["preBuild (typed steps)"]);

    let found = errors(json!({ "postInstall": [{ "mkdirr": { "path": "x" } }] }));
    assert!(
        found[0].path.to_string().starts_with("postInstall[0]"),
        "{}",
        found[0].path
    );
    let found = errors(json!({ "postInstall": 3 }));
    assert!(
        found[0]
            .to_string()
            .contains("a string of shell code or a list of typed steps"),
        "{}",
        found[0]
    );
}

#[test]
fn a_shell_needs_bash_or_sh_among_the_inputs() {
    let found = errors(json!({
        "kilnAllowShell": true, "preBuild": "true", "nativeBuildInputs": []
    }));
    assert_eq!(found[0].path.to_string(), "kilnAllowShell");
    assert_eq!(found[0].kind, TranslateErrorKind::NoShell);
}

#[test]
fn build_command_is_the_whole_build() {
    let t = ok(json!({ "kilnAllowShell": true, "buildCommand": "mkdir $out" }));
    let names: Vec<&str> = t.plan.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["build"]);
    assert_eq!(t.report.build_system, "shell");
}

#[test]
fn default_phases_switches_and_sources() {
    let t = ok(json!({}));
    let phases: Vec<(&str, bool)> = t
        .plan
        .phases
        .iter()
        .map(|p| (p.name.as_str(), p.enabled))
        .collect();
    assert_eq!(
        phases,
        [
            ("unpack", true),
            ("patch", true),
            ("configure", true),
            ("build", true),
            ("check", false),
            ("install", true),
            ("fixup", true),
            ("installCheck", false),
            ("dist", false)
        ]
    );
    assert_eq!(t.plan.inputs["src"], Input::Path(SRC.to_owned()));
    assert_eq!(t.plan.env["TZ"], "UTC");
    assert_eq!(t.plan.env["GZIP_NO_TIMESTAMPS"], "1");
    assert_eq!(
        phase(&t, "configure").origin.as_deref(),
        Some("stdenv configurePhase (autotools build)")
    );
    for (switch, name, enabled) in [
        ("dontUnpack", "unpack", false),
        ("dontPatch", "patch", false),
        ("dontConfigure", "configure", false),
        ("dontBuild", "build", false),
        ("doCheck", "check", true),
        ("dontInstall", "install", false),
        ("dontFixup", "fixup", false),
        ("doInstallCheck", "installCheck", true),
    ] {
        let t = ok(json!({ switch: true }));
        assert_eq!(phase(&t, name).enabled, enabled, "{switch}");
        // Nix writes `false` for a switch set to false: stdenv's default.
        let t = ok(json!({ switch: false }));
        assert_eq!(phase(&t, name).enabled, !enabled, "{switch} = false");
    }
    let t = ok(
        json!({ "srcs": [SRC, "/nix/store/55555555555555555555555555555555-b"], "sourceRoot": "hello-2.10" }),
    );
    let Step::Unpack(unpack) = &phase(&t, "unpack").steps[0] else {
        panic!()
    };
    assert_eq!(unpack.srcs, ["${inputs.srcs.0}", "${inputs.srcs.1}"]);
    assert_eq!(unpack.source_root.as_deref(), Some("hello-2.10"));
    let found = errors(json!({ "src": null }));
    assert_eq!(found[0].kind, TranslateErrorKind::NoSource);
    ok(json!({ "src": null, "dontUnpack": true }));
}

#[test]
fn patches_and_patch_flags() {
    let t = ok(
        json!({ "patches": ["/nix/store/66666666666666666666666666666666-a.patch"], "patchFlags": ["-p0"] }),
    );
    let Step::Patch(patch) = &phase(&t, "patch").steps[0] else {
        panic!()
    };
    assert_eq!(patch.strip, 0);
    assert_eq!(patch.patches.len(), 1);
    let found = errors(json!({ "patchFlags": ["-p1", "--binary"] }));
    assert_eq!(found[0].path.to_string(), "patchFlags[1]");
}

#[test]
fn configure_knobs() {
    let t = ok(json!({
        "configureFlags": ["--disable-nls", "--with-x=${y}"],
        "configureScript": "../configure",
        "prefixKey": "PREFIX=",
        "dontAddDisableDepTrack": true,
        "dontDisableStatic": true,
    }));
    let step = configure(&t);
    assert_eq!(step.script, "../configure");
    assert_eq!(step.flags, ["--disable-nls", "--with-x=$${y}"]);
    assert_eq!(step.prefix_key, "PREFIX=");
    assert_eq!(step.prefix.as_deref(), Some("${outputs.out}"));
    assert!(!step.disable_dependency_tracking && !step.disable_static);
    assert_eq!(
        configure(&ok(json!({ "dontAddPrefix": true }))).prefix,
        None
    );
    let t = ok(json!({ "prefix": "/tmp/p" }));
    assert_eq!(configure(&t).prefix.as_deref(), Some("/tmp/p"));
    assert_eq!(
        phase(&t, "install").steps[0],
        Step::Mkdir(kiln_schema::MkdirStep {
            path: "/tmp/p".to_owned()
        })
    );
    // A flags string is split on whitespace.
    assert_eq!(
        configure(&ok(json!({ "configureFlags": "--a  --b" }))).flags,
        ["--a", "--b"]
    );
}

#[test]
fn multiple_outputs_get_stdenvs_directory_flags() {
    let t = ok(json!({
        "outputs": { "out": "/o", "dev": "/d", "bin": "/b", "man": "/m" },
        "configureFlags": ["--enable-x"],
    }));
    assert_eq!(
        t.plan.outputs.as_deref().unwrap(),
        ["bin", "dev", "man", "out"]
    );
    assert_eq!(
        configure(&t).flags,
        [
            "--bindir=${outputs.bin}/bin",
            "--sbindir=${outputs.bin}/sbin",
            "--includedir=${outputs.dev}/include",
            "--oldincludedir=${outputs.dev}/include",
            "--mandir=${outputs.man}/share/man",
            // multiple-outputs.sh: outputInfo = info, else outputBin (never man or doc).
            "--infodir=${outputs.bin}/share/info",
            "--docdir=${outputs.out}/share/doc/hello",
            "--libdir=${outputs.out}/lib",
            "--libexecdir=${outputs.out}/libexec",
            "--localedir=${outputs.out}/share/locale",
            "--enable-x",
        ]
    );
    assert_eq!(
        make(&t, "install").flags,
        [
            "pkgconfigdir=${outputs.dev}/lib/pkgconfig",
            "m4datadir=${outputs.dev}/share/aclocal",
            "aclocaldir=${outputs.dev}/share/aclocal",
        ]
    );
    let t = ok(json!({ "outputs": { "out": "/o", "dev": "/d" }, "setOutputFlags": false }));
    assert!(configure(&t).flags.is_empty());
    let t = ok(json!({ "outputs": { "out": "/o", "doc": "/d" }, "shareDocName": "hi" }));
    assert!(configure(&t)
        .flags
        .contains(&"--docdir=${outputs.doc}/share/doc/hi".to_owned()));
}

#[test]
fn make_knobs_and_stdenv_check_defaults() {
    let t = ok(json!({ "doCheck": true, "doInstallCheck": true }));
    let check = make(&t, "check");
    assert_eq!(check.flags, ["VERBOSE=y"]);
    assert_eq!(check.first_existing_target, ["check", "test"]);
    assert!(!check.parallel);
    assert!(!make(&t, "build").parallel);
    let install_check = make(&t, "installCheck");
    assert_eq!(install_check.first_existing_target, ["installcheck"]);

    let t = ok(json!({
        "makefile": "GNUmakefile.x",
        "makeFlags": ["PREFIX=$(out)"],
        "buildFlags": ["all"],
        "checkFlags": ["-k"],
        "checkTarget": "tests",
        "installFlags": ["DESTDIR="],
        "installTargets": ["install-lib", "install-bin"],
        "installCheckTarget": "ic",
        "installCheckFlags": ["Q=1"],
        "enableParallelBuilding": true,
    }));
    let build = make(&t, "build");
    assert_eq!(build.makefile.as_deref(), Some("GNUmakefile.x"));
    assert_eq!(build.flags, ["PREFIX=$(out)", "all"]);
    assert!(build.parallel);
    let check = make(&t, "check");
    assert_eq!(check.flags, ["PREFIX=$(out)", "-k"]);
    assert_eq!(check.targets, ["tests"]);
    assert!(
        check.parallel,
        "enableParallelChecking follows enableParallelBuilding"
    );
    let install = make(&t, "install");
    assert_eq!(install.flags, ["PREFIX=$(out)", "DESTDIR="]);
    assert_eq!(install.targets, ["install-lib", "install-bin"]);
    assert!(install.parallel);
    let install_check = make(&t, "installCheck");
    assert_eq!(install_check.targets, ["ic"]);
    assert_eq!(install_check.flags, ["PREFIX=$(out)", "Q=1"]);

    let t = ok(json!({
        "enableParallelBuilding": true,
        "enableParallelChecking": false,
        "enableParallelInstalling": false,
    }));
    assert!(make(&t, "build").parallel);
    assert!(!make(&t, "check").parallel);
    assert!(!make(&t, "install").parallel);
}

#[test]
fn cmake_and_meson_are_chosen_by_their_flags_or_inputs() {
    let t = ok(json!({ "cmakeFlags": ["-DX=1"], "doCheck": true }));
    assert_eq!(t.report.build_system, "cmake");
    let Step::Mkdir(mkdir) = &phase(&t, "configure").steps[0] else {
        panic!("{:?}", phase(&t, "configure"))
    };
    assert_eq!(mkdir.path, "build");
    let Step::Run(cmake) = &phase(&t, "configure").steps[1] else {
        panic!()
    };
    assert_eq!(cmake.cwd.as_deref(), Some("build"));
    assert_eq!(cmake.argv[..2], ["cmake", ".."]);
    let argv = &cmake.argv;
    assert!(
        !argv.iter().any(|a| a.starts_with("-DBUILD_TESTING")),
        "{argv:?}"
    );
    for flag in [
        "-DCMAKE_INSTALL_BINDIR=${outputs.out}/bin",
        "-DCMAKE_INSTALL_LIBDIR=${outputs.out}/lib",
        "-DCMAKE_INSTALL_DOCDIR=${outputs.out}/share/doc/hello",
        "-DCMAKE_INSTALL_PREFIX=${outputs.out}",
        "-DCMAKE_BUILD_TYPE=Release",
    ] {
        assert!(argv.contains(&flag.to_owned()), "{flag} in {argv:?}");
    }
    assert_eq!(argv.last().unwrap(), "-DX=1");
    assert_eq!(phase(&t, "build").cwd.as_deref(), Some("build"));
    assert!(make(&t, "build").parallel, "nixpkgs' cmake hook");
    assert!(!make(&t, "check").parallel);
    assert!(make(&t, "install").parallel);
    assert_eq!(t.plan.env["CTEST_PARALLEL_LEVEL"], "${build.cores}");
    let t = ok(json!({ "cmakeFlags": [], "cmakeBuildType": "Debug" }));
    let argv = run_argv(&t, "configure", 1);
    assert!(argv.contains(&"-DBUILD_TESTING=OFF".to_owned()), "{argv:?}");
    assert!(
        argv.contains(&"-DCMAKE_BUILD_TYPE=Debug".to_owned()),
        "{argv:?}"
    );

    let t = ok(json!({
        "nativeBuildInputs": ["/nix/store/77777777777777777777777777777777-cmake-3.25.1"]
    }));
    assert_eq!(t.report.build_system, "cmake");

    let t = ok(json!({
        "mesonFlags": ["-Ddocs=false"],
        "outputs": { "out": "/o", "dev": "/d", "bin": "/b" },
        "dontAddPrefix": true,
    }));
    assert_eq!(t.report.build_system, "meson");
    let argv = run_argv(&t, "configure", 0);
    assert!(!argv.iter().any(|a| a.starts_with("--prefix=")), "{argv:?}");
    assert!(argv.contains(&"--bindir=${outputs.bin}/bin".to_owned()));
    let tail: Vec<&str> = argv[argv.len() - 4..].iter().map(String::as_str).collect();
    assert_eq!(
        tail,
        [
            "-Dauto_features=enabled",
            "-Dwrap_mode=nodownload",
            "--buildtype=plain",
            "-Ddocs=false"
        ]
    );
    assert_eq!(phase(&t, "build").cwd.as_deref(), Some("build"));
    assert_eq!(run_argv(&t, "build", 0), ["ninja", "-j${build.cores}"]);
}

#[test]
fn ninja_and_meson_get_their_own_flags_not_makes() {
    let t = ok(json!({
        "mesonFlags": [],
        "doCheck": true,
        "makeFlags": ["M=1"],
        "buildFlags": ["B=1"],
        "checkFlags": ["C=1"],
        "installFlags": ["I=1"],
        "ninjaFlags": ["-v"],
        "mesonCheckFlags": ["--suite", "fast"],
        "mesonInstallFlags": ["--quiet"],
        "enableParallelBuilding": false,
    }));
    assert_eq!(run_argv(&t, "build", 0), ["ninja", "-j1", "-v"]);
    assert_eq!(
        run_argv(&t, "check", 0),
        ["ninja", "-j${build.cores}", "-v", "meson-test-prereq"]
    );
    assert_eq!(
        run_argv(&t, "check", 1),
        [
            "meson",
            "test",
            "--no-rebuild",
            "--print-errorlogs",
            "--suite",
            "fast",
            "--timeout-multiplier=0"
        ]
    );
    assert_eq!(
        run_argv(&t, "install", 0),
        ["meson", "install", "--no-rebuild", "--quiet"]
    );
    let all: Vec<String> = t
        .plan
        .phases
        .iter()
        .flat_map(|p| &p.steps)
        .filter_map(|s| match s {
            Step::Run(run) => Some(run.argv.join(" ")),
            _ => None,
        })
        .collect();
    assert!(!all.iter().any(|a| a.contains("=1")), "{all:?}");
}

#[test]
fn meson_install_check_runs_nothing_as_in_stdenv() {
    let t = ok(json!({ "mesonFlags": [], "doInstallCheck": true }));
    assert!(phase(&t, "installCheck").steps.is_empty());
    assert!(t.report.warnings.is_empty(), "{:?}", t.report.warnings);
    let t = ok(json!({ "mesonFlags": [], "doInstallCheck": true, "installCheckTarget": "x" }));
    assert!(phase(&t, "installCheck").steps.is_empty());
    assert!(t.report.warnings[0].contains("installCheckTarget"));
}

#[test]
fn dont_use_cmake_or_meson_configure_falls_back_to_the_generic_build() {
    for extra in [
        json!({ "cmakeFlags": ["-DX=1"], "dontUseCmakeConfigure": true }),
        json!({
            "nativeBuildInputs": [BASH, "/nix/store/77777777777777777777777777777777-cmake-3.25.1"],
            "dontUseCmakeConfigure": true,
        }),
        json!({ "mesonFlags": [], "dontUseMesonConfigure": true }),
        json!({
            "nativeBuildInputs": [BASH, "/nix/store/77777777777777777777777777777777-meson-1.0.1"],
            "dontUseMesonConfigure": true,
        }),
    ] {
        let t = ok(extra.clone());
        assert_eq!(t.report.build_system, "autotools", "{extra}");
        let configure_phase = phase(&t, "configure");
        assert!(configure_phase.enabled, "{extra}");
        assert_eq!(configure(&t).script, "./configure", "{extra}");
        for name in ["build", "check", "install"] {
            assert_eq!(
                phase(&t, name).cwd,
                None,
                "{extra}: {name} in the source root"
            );
        }
        assert!(!make(&t, "build").parallel, "{extra}: stdenv's default");
        kiln_schema::validate(&t.plan).unwrap_or_else(|e| panic!("{extra}: {e}"));
    }
}

#[test]
fn empty_strings_are_unset_as_in_stdenv() {
    let t = ok(json!({
        "sourceRoot": "",
        "prefix": "",
        "makefile": "",
        "configureScript": "",
        "prefixKey": "",
        "shareDocName": "",
        "outputs": { "out": "/o", "doc": "/d" },
    }));
    let Step::Unpack(unpack) = &phase(&t, "unpack").steps[0] else {
        panic!()
    };
    assert_eq!(unpack.source_root, None);
    let step = configure(&t);
    assert_eq!(step.script, "./configure");
    assert_eq!(step.prefix_key, "--prefix=");
    assert_eq!(step.prefix.as_deref(), Some("${outputs.out}"));
    assert!(step
        .flags
        .contains(&"--docdir=${outputs.doc}/share/doc/hello".to_owned()));
    assert_eq!(make(&t, "build").makefile, None);
    let t = ok(json!({ "mesonFlags": [], "mesonAutoFeatures": "" }));
    assert!(run_argv(&t, "configure", 0).contains(&"-Dauto_features=enabled".to_owned()));
}

#[test]
fn install_dir_flags_need_the_configure_phase() {
    let outputs = json!({ "out": "/o", "dev": "/d" });
    let t = ok(json!({ "outputs": outputs }));
    assert_eq!(make(&t, "install").flags.len(), 3);
    let t = ok(json!({ "outputs": outputs, "dontConfigure": true, "installFlags": ["X=1"] }));
    assert_eq!(make(&t, "install").flags, ["X=1"]);
}

#[test]
fn output_roles_set_by_the_derivation_reach_the_flags_the_fixup_and_propagation() {
    let t = ok(json!({
        "outputs": { "out": "/o", "dev": "/d", "bin": "/b", "man": "/m" },
        "outputBin": "dev",
        "outputMan": "out",
        "outputDevdoc": "REMOVE",
        "moveToDev": false,
        "propagatedBuildOutputs": [],
        "propagatedBuildInputs": ["/nix/store/55555555555555555555555555555555-z"],
    }));
    let flags = configure(&t).flags;
    for expected in [
        "--bindir=${outputs.dev}/bin",
        "--mandir=${outputs.out}/share/man",
        // outputInfo defaults to outputBin, which the derivation set.
        "--infodir=${outputs.dev}/share/info",
    ] {
        assert!(
            flags.contains(&expected.to_owned()),
            "{expected}: {flags:?}"
        );
    }
    let Step::Fixup(fixup) = &phase(&t, "fixup").steps[0] else {
        panic!()
    };
    assert_eq!(fixup.output_roles.bin.as_deref(), Some("dev"));
    assert_eq!(fixup.output_roles.man.as_deref(), Some("out"));
    assert_eq!(fixup.output_roles.devdoc.as_deref(), Some("REMOVE"));
    assert_eq!(fixup.output_roles.dev, None);
    assert!(!fixup.move_to_dev);
    assert_eq!(fixup.propagated_build_outputs, Some(Vec::new()));
    assert_eq!(t.plan.propagate.output, None);
    // outputDev decides where the propagation files go.
    let t = ok(json!({
        "outputs": { "out": "/o", "lib": "/l" },
        "outputDev": "lib",
        "propagatedBuildInputs": ["/nix/store/55555555555555555555555555555555-z"],
    }));
    assert_eq!(t.plan.propagate.output.as_deref(), Some("lib"));
    // Defaults stay out of the plan.
    let t = ok(json!({ "outputs": { "out": "/o", "dev": "/d" } }));
    let Step::Fixup(fixup) = &phase(&t, "fixup").steps[0] else {
        panic!()
    };
    assert!(fixup.output_roles.is_empty() && fixup.move_to_dev);
    assert_eq!(fixup.propagated_build_outputs, None);
}

#[test]
fn propagated_user_env_packages_are_written_into_the_bin_output_as_stdenv_prints_them() {
    let t = ok(json!({
        "outputs": { "out": "/o", "bin": "/b" },
        "propagatedUserEnvPkgs": [
            "/nix/store/55555555555555555555555555555555-a",
            "/nix/store/66666666666666666666666666666666-b",
        ],
    }));
    let fixup = phase(&t, "fixup");
    let Some(Step::Write(write)) = fixup.steps.last() else {
        panic!("{:?}", fixup.steps)
    };
    assert_eq!(
        write.path,
        "${outputs.bin}/nix-support/propagated-user-env-packages"
    );
    assert_eq!(
        write.content,
        "/nix/store/55555555555555555555555555555555-a \
         /nix/store/66666666666666666666666666666666-b "
    );
    // Nothing to write without the attribute.
    let t = ok(json!({}));
    assert!(!phase(&t, "fixup")
        .steps
        .iter()
        .any(|step| matches!(step, Step::Write(_))));
}

#[test]
fn an_output_role_naming_no_output_is_refused_at_its_attribute() {
    let found = errors(json!({
        "outputs": { "out": "/o", "dev": "/d" },
        "outputLib": "lib",
        "outputDevdoc": "REMOVE",
    }));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].path.to_string(), "outputLib");
    assert_eq!(
        found[0].kind.to_string(),
        "`outputLib` is `lib`, which is not an output (outputs: dev, out)"
    );
    // Without `out`, a role with no candidate is refused too (stdenv's _assignFirst fails).
    let found = errors(json!({ "outputs": { "bin": "/b", "dev": "/d" } }));
    assert_eq!(found[0].path.to_string(), "outputs", "{found:?}");
    assert!(found[0].kind.to_string().contains("outputLib"), "{found:?}");
}

#[test]
fn mandir_and_infodir_follow_outputbin_not_doc() {
    let t = ok(json!({ "outputs": { "out": "/o", "doc": "/d" } }));
    let flags = configure(&t).flags;
    assert!(
        flags.contains(&"--mandir=${outputs.out}/share/man".to_owned()),
        "{flags:?}"
    );
    assert!(
        flags.contains(&"--infodir=${outputs.out}/share/info".to_owned()),
        "{flags:?}"
    );
}

#[test]
fn every_supported_attribute_changes_the_translation() {
    let outcome = |value: &Value| match translate(value, &options()) {
        Ok(t) => format!(
            "{}\n{}",
            serde_json::to_string(&t.plan).unwrap(),
            serde_json::to_string(&t.report).unwrap()
        ),
        Err(errors) => errors.to_string(),
    };
    let mut checked = 0;
    for row in ATTRIBUTES.iter().filter(|row| row.status.is_translated()) {
        let text = row.status.text();
        if text.starts_with("accepted") || text.starts_with("ignored") {
            // Stated no-ops (dontMakeSourcesWritable, dontFixLibtool, NIX_DEBUG).
            continue;
        }
        let (context, value) = context_and_value(row.name, row.kind);
        let base = attrs(context);
        let mut changed = base.clone();
        changed[row.name] = value.clone();
        assert!(
            outcome(&base) != outcome(&changed),
            "`{}` = {value} is marked translated but changes neither the plan nor the report",
            row.name
        );
        checked += 1;
    }
    assert!(checked > 60, "{checked}");
}

#[test]
fn fixup_knobs_and_output_checks() {
    let t = ok(json!({
        "dontStrip": true, "dontPatchShebangs": true, "dontGzipMan": true,
        "dontMoveLib64": true, "dontMoveSbin": true, "dontPruneLibtoolFiles": true,
        "dontPatchELF": true, "dontRewriteSymlinks": true, "dontCheckForBrokenSymlinks": true,
        "noAuditTmpdir": true,
        "outputChecks": { "out": { "allowedReferences": [], "maxSize": 1000, "maxClosureSize": 5 } },
    }));
    let Step::Fixup(fixup) = &phase(&t, "fixup").steps[0] else {
        panic!()
    };
    assert!(!fixup.strip && !fixup.patch_shebangs && !fixup.compress_man);
    assert!(!fixup.move_lib64 && !fixup.move_sbin && !fixup.prune_libtool_files);
    assert!(!fixup.shrink_rpath && !fixup.make_symlinks_relative);
    assert!(!fixup.check_broken_symlinks && !fixup.audit_tmpdir);
    assert!(fixup.move_docs && fixup.split_outputs);
    let check = &fixup.output_checks["out"];
    assert_eq!(check.allowed_references.as_deref(), Some(&[][..]));
    assert_eq!(check.max_size, Some(1000));
}

#[test]
fn dependencies_become_inputs_roles_and_propagation() {
    let a = "/nix/store/88888888888888888888888888888888-a";
    let b = "/nix/store/99999999999999999999999999999999-b";
    let t = ok(json!({
        "nativeBuildInputs": [a, null],
        "buildInputs": [b],
        "propagatedBuildInputs": [b],
        "propagatedNativeBuildInputs": [a],
        "strictDeps": true,
    }));
    assert_eq!(
        t.plan.inputs["nativeBuildInputs"],
        Input::List(vec![a.to_owned()])
    );
    assert_eq!(
        t.plan.deps.build,
        ["nativeBuildInputs", "propagatedNativeBuildInputs"]
    );
    assert_eq!(t.plan.deps.host, ["buildInputs", "propagatedBuildInputs"]);
    assert_eq!(t.plan.propagate.host, ["propagatedBuildInputs"]);
    assert_eq!(t.plan.propagate.build, ["propagatedNativeBuildInputs"]);
    assert!(t.plan.deps.strict);
    assert!(!ok(json!({ "buildInputs": [b] })).plan.deps.strict);
    let found = errors(json!({ "buildInputs": ["relative/path"] }));
    assert_eq!(found[0].path.to_string(), "buildInputs[0]");
}

#[test]
fn env_is_literal_and_wins_over_stdenv_defaults() {
    let t = ok(json!({ "env": { "TZ": "Europe/Paris", "CFLAGS": "-O2 ${x}", "N": 3 } }));
    assert_eq!(t.plan.env["TZ"], "Europe/Paris");
    assert_eq!(t.plan.env["CFLAGS"], "-O2 $${x}");
    assert_eq!(t.plan.env["N"], "3");
    let found = errors(json!({ "env": { "A": ["x"] } }));
    assert_eq!(found[0].path.to_string(), "env.A");
}

#[test]
fn phase_lists_and_custom_phases() {
    let t = ok(json!({
        "kilnAllowShell": true,
        "preConfigurePhases": ["autogenPhase"],
        "autogenPhase": "sh autogen.sh",
        "postPhases": ["reportPhase"],
        "reportPhase": "echo done",
    }));
    let names: Vec<&str> = t.plan.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "unpack",
            "patch",
            "autogen",
            "configure",
            "build",
            "check",
            "install",
            "fixup",
            "installCheck",
            "dist",
            "report"
        ]
    );
    let t = ok(json!({ "phases": ["unpackPhase", "installPhase"] }));
    let names: Vec<&str> = t.plan.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["unpack", "install"]);
    let found = errors(json!({ "preConfigurePhases": ["autoreconfPhase"] }));
    assert_eq!(found[0].path.to_string(), "preConfigurePhases[0]");
    assert!(matches!(
        found[0].kind,
        TranslateErrorKind::UnknownPhase { .. }
    ));
    // Without the opt-in a custom phase is shell code like any other.
    let found = errors(json!({ "postPhases": ["reportPhase"], "reportPhase": "echo" }));
    assert!(
        matches!(&found[0].kind, TranslateErrorKind::ShellCode { hooks } if hooks[0].0 == "reportPhase")
    );
}

#[test]
fn strip_lists_and_flags_reach_the_fixup_step() {
    let t = ok(json!({
        "stripDebugList": ["bin", "libexec"], "stripDebugFlags": "-S",
        "stripAllList": "share/bin", "stripAllFlags": ["-s"],
    }));
    let Step::Fixup(fixup) = &phase(&t, "fixup").steps[0] else {
        panic!()
    };
    let words = |list: &[&str]| Some(list.iter().map(|w| w.to_string()).collect::<Vec<_>>());
    assert_eq!(fixup.strip_debug_list, words(&["bin", "libexec"]));
    assert_eq!(fixup.strip_debug_flags, words(&["-S"]));
    assert_eq!(fixup.strip_all_list, words(&["share/bin"]));
    assert_eq!(fixup.strip_all_flags, words(&["-s"]));
    // Unset: the fixup's (stdenv's) defaults.
    let t = ok(json!({}));
    let Step::Fixup(fixup) = &phase(&t, "fixup").steps[0] else {
        panic!()
    };
    assert_eq!(fixup.strip_debug_list, None);
    assert!(fixup.strip_exclude.is_empty());
    assert!(!fixup.separate_debug_info);
    assert_eq!(fixup.force_share, None);
}

#[test]
fn strip_exclude_separate_debug_info_and_force_share_reach_the_fixup_step() {
    let t = ok(json!({
        "stripExclude": ["*.rlib", "lib/firmware/*"],
        "separateDebugInfo": true,
        "forceShare": "man doc info locale",
        "outputs": { "out": "/o", "debug": "/d" },
    }));
    let Step::Fixup(fixup) = &phase(&t, "fixup").steps[0] else {
        panic!()
    };
    assert_eq!(fixup.strip_exclude, ["*.rlib", "lib/firmware/*"]);
    assert!(fixup.separate_debug_info);
    assert_eq!(
        fixup.force_share.as_deref(),
        Some(&["man", "doc", "info", "locale"].map(str::to_owned)[..])
    );
    // An empty forceShare is move-docs.sh's default, as `${forceShare:=man doc info}` makes it.
    let t = ok(json!({ "forceShare": [] }));
    let Step::Fixup(fixup) = &phase(&t, "fixup").steps[0] else {
        panic!()
    };
    assert_eq!(fixup.force_share, None);
}

#[test]
fn unknown_attributes_are_ignored_and_stdenv_looking_ones_warned_about() {
    let t = ok(json!({ "nonce": "1", "dontStripp": true, "myFlags": ["x"] }));
    assert_eq!(t.report.warnings.len(), 2, "{:?}", t.report.warnings);
    assert!(
        t.report.warnings[0].contains("`dontStripp`")
            && t.report.warnings[0].contains("did you mean `dontStrip`?"),
        "{:?}",
        t.report.warnings
    );
}

#[test]
fn wrong_types_name_the_attribute() {
    let found = errors(json!({ "doCheck": ["yes"], "configureFlags": [1, {}], "name": 1 }));
    let paths: Vec<String> = found.iter().map(|e| e.path.to_string()).collect();
    assert_eq!(paths, ["configureFlags[1]", "doCheck"]);
    let plan_errors = crate::TranslateErrors(found).into_plan_errors();
    assert_eq!(
        plan_errors.0[1].to_string(),
        "at `doCheck` (stdenv attributes): expected a boolean, found a list"
    );
}

#[test]
fn the_translated_plan_is_valid() {
    for extra in [
        json!({}),
        json!({ "cmakeFlags": [] }),
        json!({ "mesonFlags": [], "outputs": { "out": "/o", "dev": "/d" } }),
        json!({ "kilnAllowShell": true, "postInstall": "true", "preHook": "true" }),
    ] {
        let t = ok(extra.clone());
        kiln_schema::validate(&t.plan).unwrap_or_else(|e| panic!("{extra}: {e}"));
    }
}

#[test]
fn wrong_type_relative_path_and_unsupported_errors_say_what_to_do() {
    for extra in [
        json!({ "doCheck": ["yes"] }),
        json!({ "patches": ["fix.patch"] }),
        json!({ "doDist": true }),
    ] {
        let found = errors(extra.clone());
        let hint = found[0].kind.hint();
        assert!(hint.is_some_and(|h| !h.is_empty()), "{extra}: {found:?}");
    }
}

#[test]
fn hardening_disable_and_enable_become_nix_hardening_enable() {
    let t = ok(json!({}));
    assert!(!t.plan.env.contains_key("NIX_HARDENING_ENABLE"));
    let t = ok(json!({ "hardeningDisable": ["format", "fortify"] }));
    assert_eq!(
        t.plan.env["NIX_HARDENING_ENABLE"],
        "stackprotector pic strictoverflow relro bindnow"
    );
    let t = ok(json!({ "hardeningDisable": "all", "hardeningEnable": ["pie"] }));
    assert_eq!(t.plan.env["NIX_HARDENING_ENABLE"], "");
    let t = ok(json!({ "hardeningEnable": ["pie", "pic"] }));
    assert_eq!(
        t.plan.env["NIX_HARDENING_ENABLE"],
        "fortify stackprotector pic strictoverflow format relro bindnow pie"
    );
    // The derivation's own env wins, as for every default.
    let t = ok(json!({ "hardeningDisable": ["pic"], "env": { "NIX_HARDENING_ENABLE": "relro" } }));
    assert_eq!(t.plan.env["NIX_HARDENING_ENABLE"], "relro");
}
