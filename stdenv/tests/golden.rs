//! Golden tests: for each package of the stdenv corpus (`tests/fixtures/stdenv/`), the phases
//! and commands kiln's translation runs equal what stdenv's `genericBuild` runs for the same
//! attributes.
//!
//! `tests/fixtures/stdenv/golden/NAME.attrs.json` is the package's attribute set (checked
//! against the Nix expression by `tests/it/stdenv.rs`); `NAME.expected` was written by hand from
//! stdenv's documented behaviour (`setup.sh`, `multiple-outputs.sh`, nixpkgs' cmake and meson
//! hooks), in the notation of `golden/README.md`. The expectation is never generated from the
//! translator, so these tests fail when the translation drifts from stdenv.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use kiln_schema::Step;
use kiln_stdenv::{translate, TranslateOptions};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/stdenv/golden")
}

/// stdenv's spelling of kiln's references.
fn shell_words(text: &str) -> String {
    let mut text = text.replace("${build.cores}", "$NIX_BUILD_CORES");
    for (from, to) in [("${outputs.", "$"), ("${inputs.", "$")] {
        while let Some(start) = text.find(from) {
            let end = start + text[start..].find('}').expect("a closed reference");
            let name = text[start + from.len()..end].to_owned();
            text.replace_range(start..=end, &format!("{to}{name}"));
        }
    }
    text.replace("$${", "${")
}

fn make_line(make: &kiln_schema::MakeStep) -> String {
    let mut words = vec!["make".to_owned()];
    if let Some(makefile) = &make.makefile {
        words.push(format!("-f {makefile}"));
    }
    if make.parallel {
        words.push("-j${build.cores}".to_owned());
    }
    words.extend(make.flags.iter().cloned());
    words.extend(make.targets.iter().cloned());
    if !make.first_existing_target.is_empty() {
        words.push(format!(
            "<first of: {}>",
            make.first_existing_target.join(" ")
        ));
    }
    words.join(" ")
}

fn step_line(step: &Step) -> String {
    let line = match step {
        Step::Unpack(unpack) => {
            let mut line = format!("unpack {}", unpack.srcs.join(" "));
            if let Some(root) = &unpack.source_root {
                line.push_str(&format!(" sourceRoot={root}"));
            }
            line
        }
        Step::Patch(patch) => format!("patch -p{} {}", patch.strip, patch.patches.join(" ")),
        Step::Configure(configure) => {
            let mut words = vec![configure.script.clone()];
            if configure.disable_static {
                words.push("{--disable-static}".to_owned());
            }
            if configure.disable_dependency_tracking {
                words.push("{--disable-dependency-tracking}".to_owned());
            }
            if let Some(prefix) = &configure.prefix {
                words.push(format!("{}{prefix}", configure.prefix_key));
            }
            words.extend(configure.flags.iter().cloned());
            words.join(" ")
        }
        Step::Make(make) => make_line(make),
        Step::Run(run) => {
            let mut words: Vec<String> = run.cwd.iter().map(|cwd| format!("cd {cwd};")).collect();
            words.extend(
                run.env
                    .iter()
                    .map(|(name, value)| format!("{name}={value}")),
            );
            words.extend(run.argv.iter().cloned());
            words.join(" ")
        }
        Step::Mkdir(mkdir) => format!("mkdir -p {}", mkdir.path),
        Step::PatchShebangs(shebangs) => format!("patchShebangs {}", shebangs.paths.join(" ")),
        Step::Fixup(fixup) => {
            // The hooks the attributes add on top of stdenv's defaults, in the notation's
            // words; anything else is printed whole so that a difference shows.
            let mut hooks = Vec::new();
            let mut rest = fixup.clone();
            if rest.separate_debug_info {
                hooks.push("+separate-debug-info($debug)".to_owned());
                rest.separate_debug_info = false;
            }
            for (role, output) in rest.output_roles.set() {
                let mut chars = role.chars();
                let first = chars.next().unwrap_or_default().to_ascii_uppercase();
                hooks.push(format!("output{first}{}={output}", chars.as_str()));
            }
            rest.output_roles = Default::default();
            if *rest == kiln_schema::FixupStep::default() {
                std::iter::once("fixup".to_owned())
                    .chain(hooks)
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                format!("fixup {fixup:?}")
            }
        }
        other => format!("{other:?}"),
    };
    shell_words(&line)
}

/// The translation in the golden notation.
fn render(attrs: &serde_json::Value) -> String {
    let never = |_: &str| false;
    let options = TranslateOptions {
        is_executable: &never,
    };
    let translation = translate(attrs, &options).unwrap_or_else(|errors| panic!("{errors}"));
    let plan = &translation.plan;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "outputs: {}",
        plan.outputs.as_deref().unwrap_or_default().join(" ")
    );
    for (phase, provenance) in plan.phases.iter().zip(&translation.report.provenance) {
        let mut header = provenance.stdenv.clone();
        if let Some(cwd) = &phase.cwd {
            header.push_str(&format!(" (in {cwd})"));
        }
        if !phase.enabled {
            let _ = writeln!(out, "{header} (skipped)");
            continue;
        }
        let _ = writeln!(out, "{header}");
        for step in &phase.steps {
            let _ = writeln!(out, "  {}", step_line(step));
        }
    }
    out
}

#[test]
fn corpus_translations_match_stdenv() {
    let mut names: Vec<String> = std::fs::read_dir(golden_dir())
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".attrs.json").map(str::to_owned)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 9, "{names:?}");
    let mut failures = Vec::new();
    for name in &names {
        let attrs: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(golden_dir().join(format!("{name}.attrs.json"))).unwrap(),
        )
        .unwrap();
        let expected =
            std::fs::read_to_string(golden_dir().join(format!("{name}.expected"))).unwrap();
        let expected: String = expected
            .lines()
            .filter(|line| !line.starts_with('#'))
            .map(|line| format!("{line}\n"))
            .collect();
        let rendered = render(&attrs);
        if rendered != expected {
            failures.push(format!(
                "--- {name}.expected\n{expected}+++ translated\n{rendered}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The notation renders what matters: a changed flag changes the text (the test can fail).
#[test]
fn a_changed_attribute_changes_the_rendering() {
    let attrs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(golden_dir().join("hello.attrs.json")).unwrap(),
    )
    .unwrap();
    let mut changed = attrs.clone();
    changed["configureFlags"] = serde_json::json!(["--enable-nls"]);
    assert_ne!(render(&attrs), render(&changed));
    changed = attrs.clone();
    changed["doCheck"] = serde_json::json!(false);
    assert!(render(&changed).contains("checkPhase (skipped)"));
}
