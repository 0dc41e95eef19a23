//! `kiln state inspect|extract`: look into a state archive.

use super::print_stdout;
use crate::cli::StateCommand;
use crate::error::CliError;

/// `kiln state inspect|extract`.
pub fn state(command: &StateCommand) -> Result<(), CliError> {
    match command {
        StateCommand::Inspect { state } => {
            let manifest = kiln_state::read_manifest(state).map_err(CliError::State)?;
            let entries = kiln_state::list(state).map_err(CliError::State)?;
            let shown = serde_json::json!({
                "manifest": manifest,
                "entries": entries.len(),
            });
            let mut text = serde_json::to_string_pretty(&shown).expect("a manifest serializes");
            text.push('\n');
            for entry in &entries {
                let link = entry
                    .link
                    .as_ref()
                    .map(|target| format!(" -> {}", target.display()))
                    .unwrap_or_default();
                text.push_str(&format!(
                    "{:?} {:04o} {:>10} {}{link}\n",
                    entry.kind,
                    entry.mode,
                    entry.size,
                    entry.path.display()
                ));
            }
            print_stdout(&text);
            Ok(())
        }
        StateCommand::Extract { state, to } => {
            kiln_state::extract(state, to).map_err(CliError::State)?;
            eprintln!("extracted `{}` into `{}`", state.display(), to.display());
            Ok(())
        }
    }
}
