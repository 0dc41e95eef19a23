//! The `patch` step's quilt `series` in a hostile source tree: the directories between the
//! working directory and the series (`debian`, `debian/patches`) come with the source, so they
//! are walked without following a symlink. Before, the builder opened `cwd.join(series)` by
//! path, so a tree whose `debian` was a symlink had kiln read a series and patches from
//! wherever it pointed and apply them. The plan's own path (an absolute one, or the `..` that
//! leaves the working directory) is trusted like the plan.
//!
//! Each scratch holds the source tree `build/src` (with `hello.c`) and, outside it,
//! `outside/debian/patches/series` naming `evil.patch`, which would rewrite `hello.c`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use kiln_builder::report::NullReporter;
use kiln_builder::run::build::{execute, RunError};
use kiln_builder::run::executor::{BuildError, Execution, ExecutorOptions};
use kiln_patch::PatchError;
use kiln_schema::{PatchStep, Plan, Step};
use kiln_steps::{Action, StepContext, StepError};

const HELLO: &str = "hello\n";
const EVIL: &str = "--- a/hello.c\n+++ b/hello.c\n@@ -1 +1 @@\n-hello\n+pwned\n";
const GOOD: &str = "--- a/hello.c\n+++ b/hello.c\n@@ -1 +1 @@\n-hello\n+patched\n";

struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let scratch = Scratch { dir };
        fs::create_dir_all(scratch.src()).unwrap();
        fs::write(scratch.src().join("hello.c"), HELLO).unwrap();
        scratch.series_dir(&scratch.path("outside"), "evil.patch", EVIL);
        scratch
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// The source tree: the working directory of the patch step.
    fn src(&self) -> PathBuf {
        self.path("build/src")
    }

    /// Makes `<under>/debian/patches/` with a `series` naming `name`, holding `text`.
    fn series_dir(&self, under: &Path, name: &str, text: &str) {
        let patches = under.join("debian/patches");
        fs::create_dir_all(&patches).unwrap();
        fs::write(patches.join("series"), format!("{name}\n")).unwrap();
        fs::write(patches.join(name), text).unwrap();
    }

    fn hello(&self) -> String {
        fs::read_to_string(self.src().join("hello.c")).unwrap()
    }

    /// Runs a plan of one phase `patch` (in the source tree) with one `patch` step reading
    /// `series`; returns the build's error, if any.
    fn build(&self, series: &str) -> Result<(), RunError> {
        let plan: Plan = serde_json::from_value(serde_json::json!({
            "version": 1,
            "name": "hostile",
            "phases": [{
                "name": "patch",
                "cwd": self.src(),
                "steps": [{ "patch": { "series": series } }],
            }],
        }))
        .unwrap();
        let base_env = BTreeMap::new();
        let outputs = BTreeMap::new();
        let build_top = self.path("build");
        let execution = Execution {
            plan: &plan,
            base_env: &base_env,
            build_top: &build_top,
            outputs: &outputs,
            cores: 1,
            store_dir: Path::new("/nix/store"),
            options: ExecutorOptions::default(),
            only: None,
            resume: None,
        };
        execute(&execution, &mut NullReporter).1
    }
}

/// Runs a `patch` step in `cwd` as the executor does; returns its messages.
fn patch(step: &PatchStep, cwd: &Path) -> Result<Vec<String>, StepError> {
    let (env, outputs) = (BTreeMap::new(), BTreeMap::new());
    let context = StepContext {
        cwd,
        env: &env,
        cores: 1,
        store_dir: Path::new("/nix/store"),
        outputs: &outputs,
        build_top: cwd,
        inputs: &[],
    };
    match kiln_steps::run(&Step::Patch(step.clone()), &context)? {
        Action::Done(effects) => Ok(effects.messages.into_iter().map(|(_, text)| text).collect()),
        Action::Spawn(_) => unreachable!("patch runs in process"),
    }
}

/// The patch step's error in a build that must have failed at the patch phase's first step.
fn builtin_error(result: Result<(), RunError>) -> (BuildError, String) {
    let error = match result {
        Ok(()) => panic!("the build must fail"),
        Err(RunError::Build(error)) => error,
        Err(other) => panic!(
            "not a step error: {}",
            kiln_schema::chain::causes(&other).join("\n")
        ),
    };
    let message = kiln_schema::chain::causes(&error).join("\n");
    assert!(
        message.starts_with("phase `patch`, step 1 (patch): step failed\n"),
        "{message}"
    );
    assert!(matches!(error, BuildError::Step { .. }), "{message}");
    (error, message)
}

#[test]
fn a_symlinked_debian_directory_is_refused_and_nothing_changes() {
    let scratch = Scratch::new();
    symlink(scratch.path("outside/debian"), scratch.src().join("debian")).unwrap();
    let (error, message) = builtin_error(scratch.build("debian/patches/series"));
    let series = scratch.src().join("debian/patches/series");
    assert!(
        message.ends_with(&format!(
            "\nthe series `{}` is reached through the symlink `debian`",
            series.display()
        )),
        "{message}"
    );
    let BuildError::Step { source, .. } = &error else {
        unreachable!()
    };
    assert!(
        matches!(
            source,
            StepError::Patch(PatchError::SeriesThroughSymlink { link, .. })
                if link == Path::new("debian")
        ),
        "{message}"
    );
    let hint = error.hint().expect("a hint");
    assert!(hint.contains("without following a symlink"), "{hint}");
    assert_eq!(scratch.hello(), HELLO);
}

#[test]
fn a_symlinked_patches_directory_is_refused_too() {
    let scratch = Scratch::new();
    fs::create_dir(scratch.src().join("debian")).unwrap();
    symlink(
        scratch.path("outside/debian/patches"),
        scratch.src().join("debian/patches"),
    )
    .unwrap();
    let (_, message) = builtin_error(scratch.build("debian/patches/series"));
    assert!(
        message.ends_with("is reached through the symlink `debian/patches`"),
        "{message}"
    );
    assert_eq!(scratch.hello(), HELLO);

    // Even a symlink that stays inside the tree: the rule of the tree, wherever it points.
    let scratch = Scratch::new();
    scratch.series_dir(&scratch.src().join("real"), "good.patch", GOOD);
    symlink("real/debian", scratch.src().join("debian")).unwrap();
    let (_, message) = builtin_error(scratch.build("./debian/patches/series"));
    assert!(message.contains("the symlink `debian`"), "{message}");
    assert_eq!(scratch.hello(), HELLO);
}

#[test]
fn a_plain_tree_is_patched_as_before() {
    let scratch = Scratch::new();
    scratch.series_dir(&scratch.src(), "fix.patch", GOOD);
    let step: PatchStep =
        serde_json::from_value(serde_json::json!({ "series": "debian/patches/series" })).unwrap();
    let messages = patch(&step, &scratch.src()).unwrap();
    assert_eq!(
        messages,
        [format!(
            "applied `{}` (-p1): hello.c",
            scratch.src().join("debian/patches/fix.patch").display()
        )]
    );
    assert_eq!(scratch.hello(), "patched\n");

    // No series (Debian packages without patches): said in the log, nothing applied.
    fs::remove_file(scratch.src().join("debian/patches/series")).unwrap();
    assert_eq!(
        patch(&step, &scratch.src()).unwrap(),
        [format!(
            "no series file `{}`: no patches from it",
            scratch.src().join("debian/patches/series").display()
        )]
    );
    fs::remove_dir_all(scratch.src().join("debian")).unwrap();
    assert_eq!(patch(&step, &scratch.src()).unwrap().len(), 1);
    assert!(scratch.build("debian/patches/series").is_ok());

    // Still only `series` is read.
    let step: PatchStep =
        serde_json::from_value(serde_json::json!({ "series": "debian/patches/00list" })).unwrap();
    assert!(matches!(
        patch(&step, &scratch.src()),
        Err(StepError::SeriesName { .. })
    ));
}

#[test]
fn the_plans_own_path_is_trusted_and_what_lies_below_it_is_checked() {
    // `..` leaves the working directory: the plan's choice (a `debian/` unpacked next to the
    // source root). Below `build/`, `debian` is still walked without following a symlink.
    let scratch = Scratch::new();
    symlink(scratch.path("outside/debian"), scratch.path("build/debian")).unwrap();
    let (_, message) = builtin_error(scratch.build("../debian/patches/series"));
    assert!(
        message.contains("is reached through the symlink `debian`"),
        "{message}"
    );
    assert_eq!(scratch.hello(), HELLO);
    fs::remove_file(scratch.path("build/debian")).unwrap();
    scratch.series_dir(&scratch.path("build"), "good.patch", GOOD);
    scratch.build("../debian/patches/series").unwrap();
    assert_eq!(scratch.hello(), "patched\n");

    // `..` after a name is lexical: `debian/../debian` is `debian`, checked the same way.
    let scratch = Scratch::new();
    symlink(scratch.path("outside/debian"), scratch.src().join("debian")).unwrap();
    let (_, message) = builtin_error(scratch.build("debian/../debian/patches/series"));
    assert!(message.contains("the symlink `debian`"), "{message}");
    assert_eq!(scratch.hello(), HELLO);

    // An absolute path outside the working directory (an input's, say) is the plan's, taken
    // as given, symlinks (a `result` link) included.
    let scratch = Scratch::new();
    scratch.series_dir(&scratch.path("input"), "good.patch", GOOD);
    symlink(scratch.path("input"), scratch.path("result")).unwrap();
    let series = scratch.path("result/debian/patches/series");
    scratch.build(series.to_str().unwrap()).unwrap();
    assert_eq!(scratch.hello(), "patched\n");

    // An absolute path into the working directory is checked like a relative one.
    let scratch = Scratch::new();
    symlink(scratch.path("outside/debian"), scratch.src().join("debian")).unwrap();
    let series = scratch.src().join("debian/patches/series");
    let (_, message) = builtin_error(scratch.build(series.to_str().unwrap()));
    assert!(message.contains("the symlink `debian`"), "{message}");
    assert_eq!(scratch.hello(), HELLO);
}
