//! A whole build: check the plan, fix paths, resolve references, set up directories, run, and
//! check the outputs.
//!
//! [`prepare`] has no side effects: it validates, checks outputs against Nix's, and resolves every
//! reference, so an invalid plan creates nothing and runs nothing. [`run_build`] then runs the
//! prepared plan. Outside Nix, the local session (`kiln_builder::local` and the CLI's
//! `local.rs`) creates the build directory and removes partial outputs after a failure, as Nix
//! does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kiln_schema::{JsonPath, Plan, PlanError, PlanErrorKind, PlanErrors, ResolveContext};
use thiserror::Error;

use crate::report::Reporter;
use crate::run::executor::{BuildError, BuildSummary, Execution, ExecutorOptions, Resume};
use crate::run::signal::SignalEvents;
use crate::setup::deps::{dependency_env, write_propagated, Origin};
use crate::setup::env::{base_env, values, BuildPaths};
use crate::setup::load::{LoadError, LoadedPlan};

/// The store directory when Nix names none.
pub const DEFAULT_STORE_DIR: &str = "/nix/store";

/// A plan ready to run: valid, preset expanded, edits applied, every reference resolved.
#[derive(Debug, Clone)]
pub struct PreparedBuild {
    /// The resolved, expanded plan; each phase carries its origin.
    pub plan: Plan,
    /// The same plan expanded but not resolved: what does not depend on the machine (cores,
    /// build directory), for hashing plan prefixes in split mode.
    pub expanded: Plan,
    /// The environment before the plan's `env`.
    pub base_env: BTreeMap<String, String>,
    /// The whole environment steps start from (the plan's `env` included), with origins.
    pub environment: BTreeMap<String, Origin>,
    /// Build directory, outputs and cores.
    pub paths: BuildPaths,
    /// The store directory: Nix's `NIX_STORE`, else `/nix/store`.
    pub store_dir: PathBuf,
}

impl PreparedBuild {
    /// The working directory and environment phase `index` starts with, as the executor gives
    /// them: the base environment, the plan's `env`, then what earlier phases left (`resume`:
    /// the source root, `SOURCE_DATE_EPOCH`, …), and the phase's own `cwd`.
    pub fn phase_start(
        &self,
        index: usize,
        resume: Option<&Resume>,
    ) -> (PathBuf, BTreeMap<String, String>) {
        let mut env = self.base_env.clone();
        env.extend(self.plan.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut workdir = self.paths.build_top.clone();
        if let Some(resume) = resume {
            env.extend(resume.env.clone());
            workdir = resume.workdir.clone();
        }
        if let Some(cwd) = self
            .plan
            .phases
            .get(index)
            .and_then(|phase| phase.cwd.as_ref())
        {
            workdir = workdir.join(cwd);
        }
        (workdir, env)
    }
}

/// Checks and resolves `loaded` for a build in `paths`. `paths.outputs` is ignored when the
/// loaded source fixes the outputs (`.attrs.json`). No file is written.
pub fn prepare(
    loaded: &LoadedPlan,
    mut paths: BuildPaths,
    nix_env: &BTreeMap<String, String>,
) -> Result<PreparedBuild, LoadError> {
    let invalid = |errors: PlanErrors| LoadError::Invalid {
        file: loaded.file.clone(),
        errors: PlanErrors(
            errors
                .0
                .into_iter()
                .map(|mut error| {
                    error.path = error.path.prefixed(&loaded.prefix);
                    error
                })
                .collect(),
        ),
    };
    let plan = &loaded.plan;
    kiln_schema::validate(plan).map_err(invalid)?;
    let declared = kiln_schema::declared_outputs(plan);
    if let Some(nix_outputs) = &loaded.outputs {
        let derivation: Vec<String> = nix_outputs.keys().cloned().collect();
        let mut sorted = declared.clone();
        sorted.sort();
        if plan.outputs.is_some() && sorted != derivation {
            return Err(invalid(
                PlanError::new(
                    JsonPath::root().key("outputs"),
                    PlanErrorKind::OutputsMismatch {
                        plan: declared,
                        derivation,
                    },
                )
                .into(),
            ));
        }
        paths.outputs = nix_outputs.clone();
    } else {
        if let Some(missing) = declared
            .iter()
            .find(|name| !paths.outputs.contains_key(*name))
        {
            return Err(invalid(
                PlanError::new(
                    JsonPath::root().key("outputs"),
                    PlanErrorKind::OutputsMismatch {
                        plan: declared.clone(),
                        derivation: vec![format!("(no path for `{missing}`)")],
                    },
                )
                .into(),
            ));
        }
        // A set: a plan may declare many outputs, and `retain` asks once per path.
        let declared: std::collections::BTreeSet<&String> = declared.iter().collect();
        paths.outputs.retain(|name, _| declared.contains(name));
    }
    let out_lib = paths.outputs.get("out").map(|out| out.join("lib"));
    let deps = dependency_env(plan, out_lib.as_deref())?;
    let mut environment = base_env(plan, &paths, nix_env, &deps);
    let base_env = values(&environment);
    let context = ResolveContext {
        outputs: paths
            .outputs
            .iter()
            .map(|(name, path)| (name.clone(), path.display().to_string()))
            .collect(),
        build_top: paths.build_top.display().to_string(),
        build_cores: paths.cores,
        base_env: base_env.clone(),
    };
    // Resolve the plan as written first, so errors point into the document; then expand the
    // preset and edits (the plan's and the hooks') and resolve what they produced.
    kiln_schema::resolve(plan, &context).map_err(invalid)?;
    let expanded = kiln_schema::preset::expand(plan, &deps.edits).map_err(invalid)?;
    // Hook edits bring phases the plan's own validation never saw.
    if !deps.edits.is_empty() {
        kiln_schema::validate(&expanded).map_err(invalid)?;
    }
    let resolved = kiln_schema::resolve(&expanded, &context).map_err(invalid)?;
    for (name, value) in &resolved.env {
        environment.insert(
            name.clone(),
            Origin {
                value: value.clone(),
                origin: "plan env".to_owned(),
            },
        );
    }
    let store_dir = PathBuf::from(
        base_env
            .get("NIX_STORE")
            .map_or(DEFAULT_STORE_DIR, String::as_str),
    );
    Ok(PreparedBuild {
        plan: resolved,
        expanded,
        base_env,
        environment,
        paths,
        store_dir,
    })
}

/// Why a build did not complete.
#[derive(Debug, Error)]
pub enum RunError {
    /// A phase failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// Every phase succeeded but an output was not created.
    #[error("output `{name}` was not created at `{}`", path.display())]
    OutputMissing {
        /// Output name.
        name: String,
        /// Where it should be.
        path: PathBuf,
    },
    /// The build could not be set up.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// `nix-support/propagated-build-inputs` could not be written.
    #[error("cannot record propagated dependencies in `{}`", path.display())]
    Propagate {
        /// The output.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl RunError {
    /// The documented exit code (`kiln_schema::exit_codes`): `128 + n` when kiln was stopped
    /// by signal `n`, set-up failures 3, everything else a failed build (1).
    pub fn exit_code(&self) -> i32 {
        use kiln_schema::exit_codes;
        match self {
            RunError::Build(BuildError::Interrupted { signal, .. }) => {
                exit_codes::for_signal(*signal as i32)
            }
            RunError::Setup(_) => exit_codes::SETUP_FAILED,
            _ => exit_codes::BUILD_FAILED,
        }
    }
}

/// Where propagated dependencies are recorded: the plan's `propagate.output`, else `dev` when it
/// exists, else `out` (stdenv's `outputDev`).
pub(crate) fn propagation_output<'a>(
    plan: &Plan,
    outputs: &'a BTreeMap<String, PathBuf>,
) -> Option<&'a Path> {
    let name = plan
        .propagate
        .output_in(|name| outputs.contains_key(name))?;
    outputs.get(name).map(PathBuf::as_path)
}

/// The end of every build after its last phase, in one place: writes the plan's propagated
/// dependencies into their output (`nix-support/propagated-*`). `only_existing`: leave an
/// output the build did not create alone (the local runners, whose missing outputs are
/// reported next); otherwise the files create it, as stdenv's fixup does.
pub(crate) fn write_propagation(
    plan: &Plan,
    outputs: &BTreeMap<String, PathBuf>,
    only_existing: bool,
) -> Result<(), RunError> {
    let Some(target) = propagation_output(plan, outputs) else {
        return Ok(());
    };
    if only_existing && std::fs::symlink_metadata(target).is_err() {
        return Ok(());
    }
    write_propagated(plan, target).map_err(|source| RunError::Propagate {
        path: target.to_owned(),
        source,
    })
}

/// Fails on the first output the build did not create; `shown` gives the path the error names.
pub(crate) fn check_outputs_exist(
    outputs: &BTreeMap<String, PathBuf>,
    shown: impl Fn(&str, &Path) -> PathBuf,
) -> Result<(), RunError> {
    for (name, path) in outputs {
        if std::fs::symlink_metadata(path).is_err() {
            return Err(RunError::OutputMissing {
                name: name.clone(),
                path: shown(name, path),
            });
        }
    }
    Ok(())
}

/// A problem before any phase ran.
#[derive(Debug, Error)]
pub enum SetupError {
    /// The output exists already (outside Nix kiln never overwrites).
    #[error("output `{name}` exists already at `{}`", path.display())]
    OutputExists {
        /// Output name.
        name: String,
        /// Its path.
        path: PathBuf,
    },
    /// A directory could not be created.
    #[error("cannot create directory `{}`", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The async runtime or signal handlers could not start.
    #[error("cannot start the runtime")]
    Runtime(#[source] std::io::Error),
}

/// Runs a prepared build to the end; then checks that every output exists.
pub fn run_build(
    prepared: &PreparedBuild,
    options: ExecutorOptions,
    reporter: &mut dyn Reporter,
) -> (BuildSummary, Result<(), RunError>) {
    let execution = Execution {
        plan: &prepared.plan,
        base_env: &prepared.base_env,
        build_top: &prepared.paths.build_top,
        outputs: &prepared.paths.outputs,
        cores: prepared.paths.cores,
        store_dir: &prepared.store_dir,
        options,
        only: None,
        resume: None,
    };
    let (summary, result) = execute(&execution, reporter);
    if let Err(error) = result {
        return (summary, Err(error));
    }
    let finished = write_propagation(&prepared.plan, &prepared.paths.outputs, false)
        .and_then(|()| check_outputs_exist(&prepared.paths.outputs, |_, path| path.to_owned()));
    (summary, finished)
}

/// Runs `execution` on a single-threaded runtime with kiln's signal handlers installed.
pub fn execute(
    execution: &Execution<'_>,
    reporter: &mut dyn Reporter,
) -> (BuildSummary, Result<(), RunError>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            return (
                BuildSummary::default(),
                Err(SetupError::Runtime(error).into()),
            )
        }
    };
    runtime.block_on(async {
        let mut signals = match SignalEvents::install() {
            Ok(signals) => signals,
            Err(error) => {
                return (
                    BuildSummary::default(),
                    Err(SetupError::Runtime(error).into()),
                )
            }
        };
        let (summary, result) = execution.run(reporter, &mut signals).await;
        (summary, result.map_err(RunError::from))
    })
}
