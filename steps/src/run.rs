//! `run`: a program exec'd directly with its argv (no shell), in the working directory or its
//! `cwd`, with its own `env` on top of the phase's and, optionally, its standard output sent to
//! a file. kiln's runtime runs the process.

use kiln_schema::RunStep;

use crate::{Invocation, ProcessPlan, StepContext};

/// The process of a `run` step.
pub fn plan(step: &RunStep, ctx: &StepContext<'_>) -> ProcessPlan {
    let cwd = match &step.cwd {
        Some(cwd) => ctx.cwd.join(cwd),
        None => ctx.cwd.to_owned(),
    };
    let stdout = step.stdout.as_ref().map(|file| cwd.join(file));
    ProcessPlan::one(Invocation {
        argv: step.argv.clone(),
        cwd,
        env: step.env.clone(),
        stdout,
    })
}
