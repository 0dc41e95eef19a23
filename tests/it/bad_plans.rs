//! The bad-plan corpus (`tests/bad-plans/`): every file must be refused with exit code 2, a
//! message naming the JSON path, and no side effect: no process run, no directory created.
//! Each message is also kept as an insta snapshot, so wording changes are reviewed.
//!
//! Hostile plans too big for the corpus are made by the tests below it: 40 MiB names must be
//! refused with a message of a few hundred bytes (kiln_schema::excerpt), not one that quotes them.

use std::path::Path;
use std::process::Output;

use crate::common::{describe, Scratch};

/// File name → the JSON path the error must name, and text it must contain.
const EXPECTED: &[(&str, &str, &str)] = &[
    (
        "argv-not-a-list.json",
        "phases[0].steps[1].run.argv",
        "expected a sequence",
    ),
    (
        "attrs-typo-in-plan.attrs.json",
        "kiln.phases[0].steps[0].run.cwdd",
        "did you mean `cwd`?",
    ),
    (
        "attrs-without-plan.attrs.json",
        "src",
        "no `kiln` attribute",
    ),
    (
        "duplicate-output.json",
        "outputs[1]",
        "duplicate output name `out`",
    ),
    (
        "duplicate-phase-names.json",
        "phases[1].name",
        "duplicate phase name `build`",
    ),
    (
        "empty-argv.json",
        "phases[0].steps[1].run.argv",
        "argv is empty",
    ),
    (
        "empty-phase-name.json",
        "phases[1].name",
        "the phase name is empty",
    ),
    (
        "empty-program.json",
        "phases[0].steps[1].run.argv[0]",
        "the program name is empty",
    ),
    ("env-reference-cycle.json", "env.A", "cycle: A -> B -> A"),
    (
        "input-not-a-path.json",
        "inputs.src",
        "a path string or a list",
    ),
    (
        "invalid-env-name.json",
        "env[\"1X\"]",
        "invalid environment variable name",
    ),
    (
        "malformed-json.json",
        "phases[0]",
        "not valid JSON: EOF while parsing",
    ),
    (
        "merge-usr-without-into.json",
        "phases[0].steps[1].unpack.mergeUsr",
        "`mergeUsr` needs `into`",
    ),
    (
        "mode-not-octal.json",
        "phases[0].steps[1].write.mode",
        "octal mode",
    ),
    ("no-phases.json", "phases", "no phases"),
    ("not-an-object.json", "(the document root)", "invalid type"),
    (
        "not-utf8.attrs.json",
        "(the document root)",
        "(line 19, column 39): not valid UTF-8 at byte offset 410",
    ),
    (
        "not-utf8.json",
        "(the document root)",
        "(line 19, column 28): not valid UTF-8 at byte offset 349",
    ),
    (
        "phase-name-with-space.json",
        "phases[0].name",
        "invalid phase name `build phase`",
    ),
    (
        "phase-without-steps.json",
        "phases[0]",
        "missing field `steps`",
    ),
    ("relative-input-path.json", "inputs.src", "is not absolute"),
    (
        "step-env-invalid-name.json",
        "phases[0].steps[1].run.env[\"A=B\"]",
        "invalid environment variable name",
    ),
    (
        "substitute-without-replacements.json",
        "phases[0].steps[1].substitute",
        "nothing to do",
    ),
    (
        "trailing-garbage.json",
        "(the document root)",
        "trailing characters",
    ),
    (
        "two-kinds-in-one-step.json",
        "phases[0].steps[1]",
        "exactly one key, its kind",
    ),
    (
        "typo-phase-field.json",
        "phases[0].stesp",
        "did you mean `steps`?",
    ),
    (
        "typo-step-field.json",
        "phases[0].steps[0].run.argc",
        "did you mean `argv`?",
    ),
    (
        "typo-top-level-field.json",
        "phasse",
        "did you mean `phases`?",
    ),
    (
        "unknown-env-reference.json",
        "phases[0].steps[1].run.argv[1]",
        "`NOPE` is neither",
    ),
    (
        "unknown-if-missing-value.json",
        "phases[0].steps[1].substitute.replace[0].ifMissing",
        "unknown value `ignore`",
    ),
    (
        "unknown-input-reference.json",
        "phases[0].steps[1].copy.from",
        "did you mean `src`?",
    ),
    (
        "unknown-output-reference.json",
        "phases[0].steps[1].write.path",
        "the plan has no output `dev`",
    ),
    (
        "unknown-output-role.json",
        "phases[1].steps[0].fixup.outputRoles.man",
        "`mna` is not an output of the plan",
    ),
    (
        "unknown-reference-namespace.json",
        "phases[0].steps[1].write.path",
        "unknown namespace `output`",
    ),
    (
        "unknown-step-kind.json",
        "phases[0].steps[1]",
        "did you mean `run`?",
    ),
    (
        "unsupported-version.json",
        "version",
        "unsupported plan version 2",
    ),
    (
        "unterminated-reference.json",
        "phases[0].steps[1].write.path",
        "not closed",
    ),
    (
        "version-is-a-string.json",
        "version",
        "invalid type: string",
    ),
    (
        "zero-timeout.json",
        "phases[0].timeout",
        "at least 1 second",
    ),
];

fn corpus_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bad-plans"))
}

#[test]
fn every_corpus_file_has_an_expectation() {
    let mut files: Vec<String> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let expected: Vec<&str> = EXPECTED.iter().map(|(file, _, _)| *file).collect();
    assert_eq!(files, expected);
    assert!(files.len() >= 20);
}

#[test]
fn bad_plans_are_refused_with_their_path_and_no_side_effects() {
    let mut failures = Vec::new();
    for (file, path, text) in EXPECTED {
        let scratch = Scratch::new();
        // As bytes: some files are not UTF-8 on purpose.
        let content = std::fs::read(corpus_dir().join(file)).unwrap();
        std::fs::write(scratch.path().join(file), content).unwrap();
        let source = if file.ends_with(".attrs.json") {
            "--attrs"
        } else {
            "--"
        };
        for command in ["build", "validate", "plan"] {
            let output = scratch
                .kiln()
                .args([
                    command,
                    "--out-dir",
                    "out",
                    "--build-dir",
                    "build",
                    source,
                    file,
                ])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            let named = stderr.contains(&format!("at `{path}`"));
            let leftovers: Vec<String> = std::fs::read_dir(scratch.path())
                .unwrap()
                .map(|entry| entry.unwrap().file_name().into_string().unwrap())
                .filter(|name| name != file)
                .collect();
            if output.status.code() != Some(2)
                || !named
                || !stderr.contains(text)
                || stderr.contains("error: error:")
                || !leftovers.is_empty()
                || !output.stdout.is_empty()
            {
                failures.push(format!(
                    "{file} ({command}): want path `{path}` and `{text}`, leftovers {leftovers:?}\n{}",
                    describe(&output)
                ));
            }
            if command == "build" {
                let name = file.trim_end_matches(".json");
                insta::assert_snapshot!(
                    format!("bad_plan_{name}"),
                    format!("exit code: {:?}\n{stderr}", output.status.code())
                );
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A plan of about 40 MiB: `key` (40 MiB of `k`) is placed by `make`.
fn huge_plan(make: impl Fn(&str) -> String) -> String {
    make(&"k".repeat(40 << 20))
}

/// Runs `kiln validate` on `plan` and checks the refusal: exit code 2, the JSON path, `text`,
/// and a message under 4 KiB that shows the name cut short.
fn assert_refused_briefly(plan: &str, path: &str, text: &str) {
    let scratch = Scratch::new();
    scratch.write("plan.json", plan);
    let output: Output = scratch
        .kiln()
        .args(["validate", "plan.json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Bounded before anything is printed, so that a failure does not print 40 MiB either.
    assert!(
        output.stderr.len() < 4096,
        "a message of {} bytes, starting: {}",
        output.stderr.len(),
        stderr.chars().take(1000).collect::<String>()
    );
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(stderr.contains(&format!("at `{path}`")), "{stderr}");
    assert!(stderr.contains(text), "{stderr}");
    assert!(stderr.contains("kkk…"), "{stderr}");
}

#[test]
fn a_40_mib_unknown_key_is_refused_with_a_short_message() {
    let plan = huge_plan(|key| {
        format!(r#"{{"version":1,"name":"x","{key}":1,"phases":[{{"name":"b","steps":[]}}]}}"#)
    });
    let path = format!("{}…", "k".repeat(64));
    assert_refused_briefly(&plan, &path, "unknown field `kkkk");
}

#[test]
fn a_40_mib_unknown_step_kind_is_refused_with_a_short_message() {
    let plan = huge_plan(|kind| {
        format!(
            r#"{{"version":1,"name":"x","phases":[{{"name":"b","steps":[{{"{kind}":{{}}}}]}}]}}"#
        )
    });
    assert_refused_briefly(&plan, "phases[0].steps[0]", "unknown step kind `kkkk");
}

#[test]
fn a_40_mib_unknown_reference_is_refused_with_a_short_message() {
    let plan = huge_plan(|name| {
        format!(
            r#"{{"version":1,"name":"x","inputs":{{"src":"/s"}},"phases":[{{"name":"b","steps":[
                {{"run":{{"argv":["${{inputs.{name}}}"]}}}}]}}]}}"#
        )
    });
    assert_refused_briefly(
        &plan,
        "phases[0].steps[0].run.argv[0]",
        "unknown reference `${inputs.kkkk",
    );
}
