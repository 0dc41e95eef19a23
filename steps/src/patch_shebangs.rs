//! `patchShebangs`: `#!` lines of scripts rewritten to interpreters on `PATH` (stdenv's
//! `patchShebangs`), by `kiln-fixup`.

use std::path::PathBuf;

use kiln_schema::events::Level;
use kiln_schema::PatchShebangsStep;

use crate::{StepContext, StepEffects, StepError};

/// Runs a `patchShebangs` step (paths relative to `cwd`, interpreters from the step
/// environment's `PATH`); the effects are the warnings (interpreters found nowhere) and a
/// line saying how many scripts it rewrote.
pub fn run(step: &PatchShebangsStep, ctx: &StepContext<'_>) -> Result<StepEffects, StepError> {
    let paths: Vec<PathBuf> = step.paths.iter().map(|path| ctx.cwd.join(path)).collect();
    let path_dirs = ctx.search_path();
    let outcome = kiln_fixup::shebangs::patch_shebangs_paths(&paths, &path_dirs, ctx.store_dir)
        .map_err(StepError::PatchShebangs)?;
    let mut effects = StepEffects::default();
    for warning in &outcome.warnings {
        effects.message(
            Level::Warn,
            format!("{}: {}", warning.path.display(), warning.message),
        );
    }
    effects.message(
        Level::Info,
        format!(
            "patched the interpreter of {} script{}",
            outcome.changed.len(),
            if outcome.changed.len() == 1 { "" } else { "s" }
        ),
    );
    Ok(effects)
}
