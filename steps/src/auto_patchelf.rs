//! `autoPatchelf`: prebuilt ELF files pointed at the store (nixpkgs' autoPatchelfHook), by
//! `kiln-fixup`'s patcher.

use std::path::PathBuf;

use kiln_schema::events::Level;
use kiln_schema::AutoPatchelfStep;

use crate::{StepContext, StepEffects, StepError};

/// Runs an `autoPatchelf` step (paths relative to `cwd`); the effects are a line saying how
/// many files it rewrote.
pub fn run(step: &AutoPatchelfStep, ctx: &StepContext<'_>) -> Result<StepEffects, StepError> {
    let cwd = ctx.cwd;
    let paths: Vec<PathBuf> = step.paths.iter().map(|path| cwd.join(path)).collect();
    let options = kiln_fixup::patchelf::AutoPatchelfOptions {
        interpreter: step.interpreter.as_ref().map(|path| cwd.join(path)),
        search_path: step.search_path.iter().map(|dir| cwd.join(dir)).collect(),
        ignore_missing: step.ignore_missing.clone(),
        exclude: step.exclude.iter().map(|path| cwd.join(path)).collect(),
    };
    let outcome =
        kiln_fixup::patchelf::auto_patchelf(&paths, &options).map_err(StepError::AutoPatchelf)?;
    let mut effects = StepEffects::default();
    effects.message(
        Level::Info,
        format!(
            "patched the interpreter or RUNPATH of {} ELF file{}",
            outcome.changed.len(),
            if outcome.changed.len() == 1 { "" } else { "s" }
        ),
    );
    Ok(effects)
}
