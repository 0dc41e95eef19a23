//! Split mode: one part of a build whose phases run in separate derivations, chained by state
//! archives (`kiln-state`).
//!
//! Every part resolves the plan with each output at its placeholder, restores the previous
//! state (checking it was made by the same plan up to its last phase), and runs its phases.
//! Then, by [`Role`]: a stage packs the next state into its output; a check writes a record; the
//! final part moves each placeholder to the real output and rewrites every placeholder
//! (`kiln_fixup::rewrite`), proving none is left; a source part copies the working directory
//! out.
//!
//! The working directory is whatever `unpack` found (any bytes): it goes into the state's
//! manifest and out to a source part exactly, never through a lossy string.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use kiln_schema::split::{Role, SplitPart};
use kiln_schema::{JsonPath, Plan, PlanError, PlanErrorKind};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::report::Reporter;
use crate::run::build::{execute, prepare, PreparedBuild, RunError};
use crate::run::executor::{BuildSummary, Execution, ExecutorOptions, Resume};
use crate::setup::env::BuildPaths;
use crate::setup::load::{LoadError, LoadedPlan};
use kiln_fixup::rewrite::{rewrite_tree, RewriteError, Rewriter};

/// Files Nix writes into every build directory; never part of a state.
pub const NIX_FILES: &[&str] = &[".attrs.json", ".attrs.sh", "env-vars"];

/// Why a part of a split build failed after its plan was accepted.
#[derive(Debug, Error)]
pub enum SplitError {
    /// The previous state could not be restored.
    #[error("cannot restore the state `{}`", path.display())]
    Restore {
        /// The state directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: kiln_state::StateError,
    },
    /// The previous state belongs to another plan.
    #[error("the state `{}` was made by a different plan (up to phase `{phase}`)", path.display())]
    PlanMismatch {
        /// The state directory.
        path: PathBuf,
        /// Its last phase.
        phase: String,
    },
    /// The next state could not be packed.
    #[error("cannot pack the state into `{}`", path.display())]
    Pack {
        /// The output.
        path: PathBuf,
        /// Why.
        #[source]
        source: kiln_state::StateError,
    },
    /// A placeholder could not become the real output.
    #[error("cannot move output `{name}` from `{}` to `{}`", from.display(), to.display())]
    Move {
        /// The output.
        name: String,
        /// The placeholder path.
        from: PathBuf,
        /// The real path.
        to: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Rewriting placeholders failed or left some behind.
    #[error("cannot rewrite placeholders in output `{name}`")]
    Rewrite {
        /// The output.
        name: String,
        /// Why.
        #[source]
        source: RewriteError,
    },
    /// Copying the source tree or writing the check record failed.
    #[error("cannot write `{}`", path.display())]
    Write {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The phases failed.
    #[error(transparent)]
    Run(#[from] RunError),
}

impl SplitError {
    /// The documented exit code: a state that does not fit the plan is invalid input (2); a
    /// failed run is [`RunError::exit_code`]'s; anything else a failed build (1).
    pub fn exit_code(&self) -> i32 {
        use kiln_schema::exit_codes;
        match self {
            SplitError::Restore { .. } | SplitError::PlanMismatch { .. } => {
                exit_codes::INVALID_INPUT
            }
            SplitError::Run(error) => error.exit_code(),
            _ => exit_codes::BUILD_FAILED,
        }
    }
}

/// Checks the split attribute against the plan and prepares the plan with placeholders.
pub fn prepare_part(
    loaded: &LoadedPlan,
    part: &SplitPart,
    build_top: PathBuf,
    cores: u32,
    nix_env: &BTreeMap<String, String>,
) -> Result<PreparedBuild, LoadError> {
    let invalid = |path: JsonPath, kind| LoadError::Invalid {
        file: loaded.file.clone(),
        errors: PlanError::new(path, kind).into(),
    };
    let at = JsonPath::root().key(kiln_schema::split::SPLIT_ATTRIBUTE);
    if part.version != 1 {
        return Err(invalid(
            at.key("version"),
            PlanErrorKind::UnsupportedVersion {
                found: part.version,
            },
        ));
    }
    if part.role == Role::Final {
        let derivation = loaded.outputs.clone().unwrap_or_default();
        let names: Vec<&String> = derivation.keys().collect();
        let placeholder_names: Vec<&String> = part.placeholders.keys().collect();
        if names != placeholder_names {
            return Err(invalid(
                at.key("placeholders"),
                PlanErrorKind::OutputsMismatch {
                    plan: part.placeholders.keys().cloned().collect(),
                    derivation: derivation.keys().cloned().collect(),
                },
            ));
        }
        for (name, real) in &derivation {
            let placeholder = &part.placeholders[name];
            if placeholder.len() != real.as_os_str().len() {
                return Err(invalid(
                    at.key("placeholders").key(name.clone()),
                    PlanErrorKind::Shape {
                        message: format!(
                            "placeholder `{placeholder}` is not as long as the output path `{}`",
                            real.display()
                        ),
                    },
                ));
            }
        }
    }
    let mut loaded = loaded.clone();
    loaded.outputs = Some(
        part.placeholders
            .iter()
            .map(|(name, path)| (name.clone(), PathBuf::from(path)))
            .collect(),
    );
    let paths = BuildPaths {
        build_top,
        outputs: BTreeMap::new(),
        cores,
    };
    let prepared = prepare(&loaded, paths, nix_env)?;
    let names: Vec<String> = prepared
        .plan
        .phases
        .iter()
        .map(|p| p.name.clone())
        .collect();
    for (index, phase) in part.phases.iter().enumerate() {
        if !names.contains(phase) {
            return Err(invalid(
                at.key("phases").index(index),
                PlanErrorKind::UnknownPhase {
                    name: phase.clone(),
                    existing: names.clone(),
                },
            ));
        }
    }
    Ok(prepared)
}

/// A hash of the plan up to and including `phase`: what a state depends on. Later phases may
/// change without invalidating it.
pub fn prefix_hash(plan: &Plan, phase: &str) -> String {
    let end = plan
        .phases
        .iter()
        .position(|p| p.name == phase)
        .map_or(plan.phases.len(), |i| i + 1);
    let prefix = serde_json::json!({
        "name": plan.name,
        "inputs": plan.inputs,
        "env": plan.env,
        "phases": plan.phases[..end],
    });
    // The same bytes as `serde_json::to_vec`, without a failure case to handle.
    let digest = Sha256::digest(prefix.to_string());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Runs one part of a split build. `derivation_outputs` are the real outputs Nix gave.
pub fn run_part(
    prepared: &PreparedBuild,
    part: &SplitPart,
    derivation_outputs: &BTreeMap<String, PathBuf>,
    options: ExecutorOptions,
    reporter: &mut dyn Reporter,
) -> (BuildSummary, Result<(), SplitError>) {
    let build_top = &prepared.paths.build_top;
    let placeholders = &prepared.paths.outputs;
    let mut resume = None;
    if let Some(state) = &part.state {
        let state = PathBuf::from(state);
        let manifest = match kiln_state::restore(&state, build_top, placeholders) {
            Ok(manifest) => manifest,
            Err(source) => {
                let error = SplitError::Restore {
                    path: state,
                    source,
                };
                return (BuildSummary::default(), Err(error));
            }
        };
        if manifest.plan_hash != prefix_hash(&prepared.expanded, &manifest.phase) {
            let error = SplitError::PlanMismatch {
                path: state,
                phase: manifest.phase,
            };
            return (BuildSummary::default(), Err(error));
        }
        resume = Some(Resume {
            workdir: build_top.join(&manifest.workdir),
            env: manifest.env,
        });
    }

    let only: BTreeSet<String> = part.phases.iter().cloned().collect();
    let execution = Execution {
        plan: &prepared.plan,
        base_env: &prepared.base_env,
        build_top,
        outputs: placeholders,
        cores: prepared.paths.cores,
        store_dir: &prepared.store_dir,
        options,
        only: Some(&only),
        resume: resume.as_ref(),
    };
    let (summary, result) = execute(&execution, reporter);
    if let Err(error) = result {
        return (summary, Err(error.into()));
    }
    let finish = finish(prepared, part, derivation_outputs, &summary);
    (summary, finish)
}

fn finish(
    prepared: &PreparedBuild,
    part: &SplitPart,
    derivation_outputs: &BTreeMap<String, PathBuf>,
    summary: &BuildSummary,
) -> Result<(), SplitError> {
    let build_top = &prepared.paths.build_top;
    let placeholders = &prepared.paths.outputs;
    let own_output = derivation_outputs
        .get("out")
        .cloned()
        .unwrap_or_else(|| build_top.join("out"));
    let write_error = |path: &Path| {
        let path = path.to_owned();
        move |source| SplitError::Write { path, source }
    };
    match part.role {
        Role::Stage => {
            std::fs::create_dir_all(&own_output).map_err(write_error(&own_output))?;
            let last = part.phases.last().cloned().unwrap_or_default();
            let workdir = summary
                .resume
                .workdir
                .strip_prefix(build_top)
                .unwrap_or(Path::new(""))
                .to_owned();
            let existing: BTreeMap<String, PathBuf> = placeholders
                .iter()
                .filter(|(_, path)| std::fs::symlink_metadata(path).is_ok())
                .map(|(name, path)| (name.clone(), path.clone()))
                .collect();
            let base = kiln_state::ManifestBase {
                plan_hash: prefix_hash(&prepared.expanded, &last),
                phase: last,
                workdir,
                env: summary.resume.env.clone(),
            };
            let mut input = kiln_state::PackInput::new(build_top, &existing);
            input.exclude = NIX_FILES;
            input.threads = prepared.paths.cores;
            kiln_state::pack(&input, base, &own_output).map_err(|source| SplitError::Pack {
                path: own_output.clone(),
                source,
            })?;
        }
        Role::Check => {
            std::fs::create_dir_all(&own_output).map_err(write_error(&own_output))?;
            let record = own_output.join("passed");
            let text = format!("{}\n", part.phases.join("\n"));
            std::fs::write(&record, text).map_err(write_error(&record))?;
        }
        Role::Source => {
            // The step's paths are strings: the working directory, any bytes, is its `cwd`
            // and `.` the source, so it is copied whatever its name.
            let copy = kiln_schema::Step::Copy(kiln_schema::CopyStep {
                from: ".".to_owned(),
                to: utf8(&own_output)?.to_owned(),
            });
            kiln_steps::run_file_step(&copy, &summary.resume.workdir).map_err(|source| {
                SplitError::Write {
                    path: own_output.clone(),
                    source: std::io::Error::other(source),
                }
            })?;
        }
        Role::Final => {
            crate::run::build::write_propagation(&prepared.plan, placeholders, false)?;
            crate::run::build::check_outputs_exist(placeholders, |_, path| path.to_owned())?;
            for (name, placeholder) in placeholders {
                let real = derivation_outputs.get(name).cloned().unwrap_or_default();
                std::fs::rename(placeholder, &real).map_err(|source| SplitError::Move {
                    name: name.clone(),
                    from: placeholder.clone(),
                    to: real.clone(),
                    source,
                })?;
            }
            // Every placeholder at once; where one is a prefix of another the longest matches.
            let mut pairs = Vec::new();
            for (name, placeholder) in placeholders {
                pairs.push((utf8(placeholder)?, utf8(&derivation_outputs[name])?));
            }
            let rewriter = Rewriter::new(pairs).map_err(|source| SplitError::Rewrite {
                name: placeholders.keys().cloned().collect::<Vec<_>>().join(", "),
                source,
            })?;
            for name in placeholders.keys() {
                let root = &derivation_outputs[name];
                rewrite_tree(root, &rewriter).map_err(|source| SplitError::Rewrite {
                    name: name.clone(),
                    source,
                })?;
            }
        }
    }
    Ok(())
}

/// An output path as the text a copy step or a rewrite needs. Output paths come from JSON
/// (`.attrs.json`, the plan), so they are UTF-8; should one not be, it is an error, not a
/// conversion that would name another path.
fn utf8(path: &Path) -> Result<&str, SplitError> {
    path.to_str().ok_or_else(|| SplitError::Write {
        path: path.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the output path is not valid UTF-8",
        ),
    })
}
