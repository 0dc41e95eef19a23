//! `kiln plan PLAN`: the plan as kiln will run it.

use super::{prepare_for_display, print_stdout};
use crate::cli::PlanArgs;
use crate::error::CliError;

/// `kiln plan`: the expanded, resolved plan (each phase with its `origin`) and the environment
/// steps start from, each variable with its value and origin.
pub fn plan(args: &PlanArgs) -> Result<(), CliError> {
    let (prepared, stdenv) = prepare_for_display(args)?;
    let mut shown = serde_json::json!({
        "plan": prepared.plan,
        "environment": prepared.environment,
    });
    if let Some(report) = stdenv {
        shown["stdenv"] = report;
    }
    let mut text = serde_json::to_string_pretty(&shown).expect("a plan serializes");
    text.push('\n');
    print_stdout(&text);
    Ok(())
}
