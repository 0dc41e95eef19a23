//! One file per command: each turns its arguments into calls of `kiln-builder` and prints the
//! result. What they share is here: loading the plan a command names, the local session's
//! request, the paths `validate` and `plan` resolve with, and writing to stdout.

mod build;
mod env;
mod nix_builder;
mod plan;
mod shell;
mod state;
mod validate;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kiln_builder::local::{Directories, SessionRequest};
use kiln_builder::{
    load_attrs_file, load_plan_file, prepare, BuildPaths, LoadedPlan, PreparedBuild,
};

pub use build::build;
pub use env::env;
pub use nix_builder::nix_builder;
pub use plan::plan;
pub use shell::shell;
pub use state::state;
pub use validate::validate;

use crate::cli::{LayoutArgs, LocalArgs, PlanArgs, PlanSource};
use crate::error::CliError;

/// Where Nix's sandbox puts the build directory; shown by `validate`/`plan` when no
/// `--build-dir` is given.
const DISPLAY_BUILD_TOP: &str = "/build";

/// Writes data to stdout; a closed pipe (`kiln schema | head`) is not an error.
pub fn print_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

/// The cores of this machine, for `${build.cores}` when none are given.
fn available_cores() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

/// Cores for a build under Nix: `NIX_BUILD_CORES`, else all of this machine's.
fn nix_build_cores() -> u32 {
    std::env::var("NIX_BUILD_CORES")
        .ok()
        .and_then(|value| value.parse::<u32>().ok())
        .filter(|&cores| cores > 0)
        .unwrap_or_else(available_cores)
}

/// The plan a command names: a plan file or `--attrs FILE`.
fn load(source: &PlanSource) -> Result<LoadedPlan, CliError> {
    match (&source.plan, &source.attrs) {
        (_, Some(attrs)) => load_attrs_file(attrs),
        (Some(plan), None) => load_plan_file(plan),
        (None, None) => unreachable!("clap requires PLAN or --attrs"),
    }
    .map_err(CliError::Load)
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// What a local command's options ask of its session.
fn session_request(
    layout: &LayoutArgs,
    local: &LocalArgs,
    grace: Duration,
    directories: Directories,
) -> SessionRequest {
    SessionRequest {
        out_dir: layout.out_dir.clone(),
        build_dir: layout.build_dir.clone(),
        cores: layout.cores.unwrap_or_else(available_cores),
        sandbox: !local.no_sandbox,
        lend: local.lend.clone(),
        cache_dir: local.cache_dir.clone(),
        no_cache: local.no_cache,
        state: local.state.clone(),
        grace,
        directories,
    }
}

/// Paths for showing or validating a plan outside Nix: outputs under `--out-dir` (a plan read
/// from `.attrs.json` keeps the derivation's output names, but its outputs go there too) and
/// the given build directory.
fn local_paths(loaded: &mut LoadedPlan, layout: &LayoutArgs, build_top: PathBuf) -> BuildPaths {
    let names: Vec<String> = match &loaded.outputs {
        Some(outputs) => outputs.keys().cloned().collect(),
        None => kiln_schema::declared_outputs(&loaded.plan),
    };
    let out_dir = absolute(&layout.out_dir_or_default());
    let outputs: BTreeMap<String, PathBuf> = names
        .iter()
        .map(|name| (name.clone(), out_dir.join(name)))
        .collect();
    if loaded.outputs.is_some() {
        loaded.outputs = Some(outputs.clone());
    }
    BuildPaths {
        build_top,
        outputs,
        cores: layout.cores.unwrap_or_else(available_cores),
    }
}

/// The prepared plan and, for a translated stdenv-style derivation, the translation report.
fn prepare_for_display(
    args: &PlanArgs,
) -> Result<(PreparedBuild, Option<serde_json::Value>), CliError> {
    let mut loaded = load(&args.source)?;
    let stdenv = loaded
        .stdenv
        .as_ref()
        .map(|report| serde_json::to_value(report).expect("a report serializes"));
    let build_top = args
        .layout
        .build_dir
        .as_deref()
        .map(absolute)
        .unwrap_or_else(|| PathBuf::from(DISPLAY_BUILD_TOP));
    let paths = local_paths(&mut loaded, &args.layout, build_top);
    let prepared = prepare(&loaded, paths, &BTreeMap::new()).map_err(CliError::Load)?;
    Ok((prepared, stdenv))
}
