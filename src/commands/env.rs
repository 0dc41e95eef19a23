//! `kiln env PLAN --at PHASE`: the environment and working directory a phase starts with, from
//! the cached state before it, as JSON or as `export` lines; nothing runs.

use std::time::Duration;

use kiln_builder::local::{Directories, EnvironmentSource, Session};

use super::{load, print_stdout, session_request};
use crate::cli::{EnvArgs, EnvFormat};
use crate::error::CliError;

/// `kiln env`.
pub fn env(args: &EnvArgs) -> Result<(), CliError> {
    let request = session_request(
        &args.layout,
        &args.local,
        Duration::from_secs(5),
        Directories::LastBuild,
    );
    let session = Session::new(load(&args.source)?, request)?;
    let at = session.at_index(&args.at)?;
    let start = session.environment_at(at)?;
    if let EnvironmentSource::NoState { before } = &start.source {
        eprintln!(
            "kiln: warning: phase `{before}` has no cached state: variables that earlier phases \
             set (SOURCE_DATE_EPOCH, …) and the working directory are as at the start of the \
             build; run `kiln build --until {before}` first for the exact environment"
        );
    }
    let from = start.source.describe();
    let text = match args.format {
        EnvFormat::Json => {
            let shown = serde_json::json!({
                "phase": args.at,
                "cwd": start.cwd,
                "env": start.env,
                "from": from,
            });
            let mut text = serde_json::to_string_pretty(&shown).expect("env serializes");
            text.push('\n');
            text
        }
        EnvFormat::Sh => {
            let mut text = format!(
                "# the environment of phase `{}` of `{}` (from {from}); its working \
                 directory is {}\n",
                args.at,
                session.prepared.plan.name,
                sh_quote(&start.cwd.display().to_string())
            );
            for (name, value) in &start.env {
                if kiln_schema::validate::is_valid_env_name(name) {
                    text.push_str(&format!("export {name}={}\n", sh_quote(value)));
                } else {
                    // A state's manifest could carry anything; `eval` must only set variables.
                    eprintln!("kiln: warning: `{name}` is not a shell variable name; left out");
                }
            }
            text
        }
    };
    print_stdout(&text);
    Ok(())
}

/// A POSIX shell single-quoted word.
fn sh_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sh_quoting_survives_quotes() {
        assert_eq!(sh_quote("a'b"), r"'a'\''b'");
        assert_eq!(sh_quote(""), "''");
    }
}
