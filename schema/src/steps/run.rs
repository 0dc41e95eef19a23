//! `run`: a program and its arguments, exec'd with no shell.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{empty, for_each_key, NameCheck, StepFields};
use crate::error::{PlanError, PlanErrorKind, Problems};
use crate::path::JsonPath;
use crate::reference::visit_option;
use crate::validate::check_env_names;

/// Run a program directly (no shell).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RunStep {
    /// Program and arguments. MUST NOT be empty. A program name without `/` is looked up in the
    /// step's `PATH`.
    pub argv: Vec<String>,
    /// Extra environment variables for this step only; they override the plan's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Working directory, relative to the phase's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Write the program's standard output to this file (created or truncated; relative to
    /// the step's working directory) instead of the log, like a shell's `> file`. Standard
    /// error still goes to the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
}

impl StepFields for RunStep {
    fn for_each_name(&self, path: &dyn Fn() -> JsonPath, check: &mut NameCheck<'_>) {
        for_each_key(&self.env, "environment variable name", "env", path, check);
    }

    fn for_each_template(&mut self, path: &JsonPath, visit: &mut dyn FnMut(JsonPath, &mut String)) {
        for (index, arg) in self.argv.iter_mut().enumerate() {
            visit(path.key("argv").index(index), arg);
        }
        for (name, value) in self.env.iter_mut() {
            visit(path.key("env").key(name), value);
        }
        visit_option(&mut self.cwd, path.key("cwd"), visit);
        visit_option(&mut self.stdout, path.key("stdout"), visit);
    }

    fn check(&self, path: &JsonPath, errors: &mut Problems) {
        match self.argv.first() {
            None => errors.push(empty(path, "argv", "argv")),
            Some(program) if program.is_empty() => errors.push(PlanError::new(
                path.key("argv").index(0),
                PlanErrorKind::Empty {
                    what: "the program name",
                },
            )),
            Some(_) => {}
        }
        check_env_names(&self.env, &path.key("env"), errors);
    }
}
