//! `kiln validate PLAN`: load, check and resolve a plan without running anything.

use super::prepare_for_display;
use crate::cli::PlanArgs;
use crate::error::CliError;

/// `kiln validate`.
pub fn validate(args: &PlanArgs) -> Result<(), CliError> {
    let (prepared, _) = prepare_for_display(args)?;
    let steps: usize = prepared.plan.phases.iter().map(|p| p.steps.len()).sum();
    eprintln!(
        "plan `{}` is valid: {} phases, {steps} steps",
        prepared.plan.name,
        prepared.plan.phases.len()
    );
    Ok(())
}
