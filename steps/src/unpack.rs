//! `unpack`: sources (archives or directories) unpacked by `kiln-archive`. Without `into`, the
//! single new directory becomes the working directory of later phases (stdenv's source root)
//! and `SOURCE_DATE_EPOCH` rises to the newest file's time, as stdenv's unpack phase does.

use std::path::{Path, PathBuf};

use kiln_schema::events::Level;
use kiln_schema::UnpackStep;

use crate::{StepContext, StepEffects, StepError};

/// Unpacks; the effects are the new working directory and `SOURCE_DATE_EPOCH`.
pub fn run(step: &UnpackStep, ctx: &StepContext<'_>) -> Result<StepEffects, StepError> {
    let outcome = unpack(step, ctx.cwd)?;
    let mut effects = StepEffects::default();
    if let Some(root) = outcome.source_root {
        effects.message(Level::Info, format!("source root is `{}`", root.display()));
        effects.workdir = Some(root);
    }
    if let Some(newest) = outcome.newest_mtime {
        let current: i64 = ctx
            .env
            .get("SOURCE_DATE_EPOCH")
            .and_then(|value| value.parse().ok())
            .unwrap_or(0);
        if newest > current {
            effects
                .env
                .insert("SOURCE_DATE_EPOCH".to_owned(), newest.to_string());
        }
    }
    Ok(effects)
}

/// What an unpack changed.
#[derive(Debug, Default)]
struct UnpackOutcome {
    /// The new working directory (the source root), when the step set one.
    source_root: Option<PathBuf>,
    /// The newest mtime among the sources, to raise `SOURCE_DATE_EPOCH` to.
    newest_mtime: Option<i64>,
}

/// Unpacks the step's sources relative to `cwd`: into `cwd` with stdenv's source-root rule, or
/// into `into` as they are.
fn unpack(step: &UnpackStep, cwd: &Path) -> Result<UnpackOutcome, StepError> {
    let sources: Vec<PathBuf> = step.srcs.iter().map(|src| cwd.join(src)).collect();
    match &step.into {
        Some(into) => {
            let into = cwd.join(into);
            let options = kiln_archive::ExtractOptions::merge_usr(step.merge_usr);
            for source in &sources {
                kiln_archive::unpack_one_with(source, &into, &options)?;
            }
            Ok(UnpackOutcome::default())
        }
        None => {
            let options = kiln_archive::UnpackOptions {
                source_root: step.source_root.clone(),
            };
            let unpacked = kiln_archive::unpack_sources(&sources, cwd, &options)?;
            Ok(UnpackOutcome {
                source_root: Some(unpacked.source_root),
                newest_mtime: unpacked.newest_mtime,
            })
        }
    }
}
