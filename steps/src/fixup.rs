//! `fixup`: stdenv's fixup of every output (move docs, patch shebangs, strip, shrink RPATHs,
//! compress man pages, prune libtool files, split outputs by role), then the output checks and
//! the check for reference cycles between outputs, by `kiln-fixup`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kiln_schema::events::Level;
use kiln_schema::FixupStep;

use crate::{StepContext, StepEffects, StepError};

/// Runs stdenv's fixup on every output, then the output checks; the effects are its
/// warnings.
pub fn run(step: &FixupStep, ctx: &StepContext<'_>) -> Result<StepEffects, StepError> {
    let inputs = ctx;
    let path_dirs = ctx.search_path();
    let jobs = ctx.cores as usize;
    let store_dir = ctx.store_dir.to_owned();
    // Splitting moves files into outputs the install did not create (`dev`, `man`, …), so with
    // several outputs each missing one starts empty; one still empty afterwards is removed again
    // and reported missing later, as Nix would. With one output, a missing one is not fixed up.
    let splitting = step.split_outputs && inputs.outputs.len() > 1;
    // The roles first: a plan whose roles name no output fails before any output is made.
    let multiple = if splitting {
        let names = inputs.outputs.keys().map(String::as_str);
        let mut multiple = kiln_fixup::MultipleOutputs::stdenv_with(names, &step.output_roles)
            .map_err(|source| {
                StepError::Fixup(kiln_fixup::FixupError::Hook {
                    output: String::new(),
                    step: kiln_fixup::FixupHook::SplitOutputs,
                    source,
                })
            })?;
        multiple.move_to_dev = step.move_to_dev;
        multiple
            .propagated_build_outputs
            .clone_from(&step.propagated_build_outputs);
        Some(multiple)
    } else {
        None
    };
    let mut created = Vec::new();
    if splitting {
        for path in inputs.outputs.values() {
            if std::fs::symlink_metadata(path).is_err() {
                std::fs::create_dir_all(path).map_err(|source| StepError::CreateOutput {
                    path: path.clone(),
                    source,
                })?;
                created.push(path.clone());
            }
        }
    }
    // separate-debug-info.sh makes its destination even when there is nothing to separate
    // ("in case there is nothing to strip, don't fail the build"): it stays, empty or not.
    if step.separate_debug_info {
        if let Some(path) = inputs.outputs.get("debug") {
            std::fs::create_dir_all(path).map_err(|source| StepError::CreateOutput {
                path: path.clone(),
                source,
            })?;
            created.retain(|made| made != path);
        }
    }
    let outputs: BTreeMap<String, PathBuf> = inputs
        .outputs
        .iter()
        .filter(|(_, path)| std::fs::symlink_metadata(path).is_ok())
        .map(|(name, path)| (name.clone(), path.clone()))
        .collect();
    let context = kiln_fixup::FixupContext {
        outputs,
        build_top: inputs.build_top.to_owned(),
        path_dirs,
        store_dir,
        jobs,
    };
    let defaults = kiln_fixup::FixupOptions::default();
    let options = kiln_fixup::FixupOptions {
        move_docs: step.move_docs,
        force_share: step.force_share.clone().unwrap_or(defaults.force_share),
        shrink_rpath: step.shrink_rpath,
        audit_tmpdir: step.audit_tmpdir,
        compress_man: step.compress_man,
        move_lib64: step.move_lib64,
        move_sbin: step.move_sbin,
        patch_shebangs: step.patch_shebangs,
        prune_libtool_files: step.prune_libtool_files,
        separate_debug_info: step.separate_debug_info,
        strip: step.strip,
        strip_options: strip_options(step),
        check_broken_symlinks: step.check_broken_symlinks,
        make_symlinks_relative: step.make_symlinks_relative,
        ..defaults
    };
    let reports = kiln_fixup::fixup(&context, &options, multiple.as_ref());
    for path in &created {
        // `remove_dir` only removes an empty directory: one that received files stays.
        let _ = std::fs::remove_dir(path);
    }
    let reports = reports?;
    let mut effects = StepEffects::default();
    for report in &reports {
        for (step, warning) in report.warnings() {
            effects.message(
                Level::Warn,
                format!(
                    "fixup of `{}`: {step}: {}: {}",
                    report.output,
                    warning.path.display(),
                    warning.message
                ),
            );
        }
    }
    if !step.output_checks.is_empty() {
        let checks: BTreeMap<String, kiln_fixup::checks::OutputChecks> = step
            .output_checks
            .iter()
            .map(|(name, check)| {
                let converted = kiln_fixup::checks::OutputChecks {
                    allowed_references: check.allowed_references.clone(),
                    disallowed_references: check.disallowed_references.clone(),
                    max_size: check.max_size,
                };
                (name.clone(), converted)
            })
            .collect();
        kiln_fixup::checks::check_outputs(&context, &checks, inputs.inputs)
            .map_err(StepError::OutputChecks)?;
    }
    kiln_fixup::cycles::check_output_cycles(&context.outputs, &context.store_dir)
        .map_err(StepError::OutputCycle)?;
    Ok(effects)
}

/// What the fixup strips and how: stdenv's defaults, with the step's lists and flags on top.
fn strip_options(step: &kiln_schema::FixupStep) -> kiln_fixup::StripOptions {
    let defaults = kiln_fixup::StripOptions::default();
    kiln_fixup::StripOptions {
        debug_list: step.strip_debug_list.clone().unwrap_or(defaults.debug_list),
        debug_flags: step
            .strip_debug_flags
            .clone()
            .unwrap_or(defaults.debug_flags),
        all_list: step.strip_all_list.clone().unwrap_or(defaults.all_list),
        all_flags: step.strip_all_flags.clone().unwrap_or(defaults.all_flags),
        exclude: step.strip_exclude.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_lists_default_to_stdenvs_and_take_the_steps() {
        let defaults = strip_options(&kiln_schema::FixupStep::default());
        assert_eq!(defaults, kiln_fixup::StripOptions::default());
        let step = kiln_schema::FixupStep {
            strip_debug_list: Some(vec!["bin".to_owned()]),
            strip_all_list: Some(vec!["libexec".to_owned()]),
            ..kiln_schema::FixupStep::default()
        };
        let options = strip_options(&step);
        assert_eq!(options.debug_list, ["bin"]);
        assert_eq!(options.all_list, ["libexec"]);
        assert_eq!(options.debug_flags, defaults.debug_flags);
    }
}
