//! `kiln env PLAN --at PHASE`: the environment and working directory a phase starts with, as
//! JSON or as `export` lines; nothing runs. Locally (the default) from the cached state before
//! the phase; with `--nix`, as a Nix build of the derivation would give it (`nix develop`,
//! `nix-shell`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kiln_builder::local::{Directories, EnvironmentSource, Session};
use kiln_builder::setup::env::nix_defined;
use kiln_builder::{load_attrs_file, prepare, BuildPaths, PreparedBuild};

use super::{load, nix_build_cores, print_stdout, session_request};
use crate::cli::{EnvArgs, EnvFormat};
use crate::error::CliError;

/// `kiln env`.
pub fn env(args: &EnvArgs) -> Result<(), CliError> {
    if args.nix {
        return nix_env(args);
    }
    let request = session_request(
        &args.layout,
        &args.local,
        Duration::from_secs(5),
        Directories::LastBuild,
    );
    let session = Session::new(load(&args.source)?, request)?;
    let at = match &args.at {
        Some(name) => session.at_index(name)?,
        None => session.phase_range(None, None)?.start,
    };
    let start = session.environment_at(at)?;
    if let EnvironmentSource::NoState { before } = &start.source {
        eprintln!(
            "kiln: warning: phase `{before}` has no cached state: variables that earlier phases \
             set (SOURCE_DATE_EPOCH, …) and the working directory are as at the start of the \
             build; run `kiln build --until {before}` first for the exact environment"
        );
    }
    let shown = Shown {
        prepared: &session.prepared,
        at,
        cwd: &start.cwd,
        env: &start.env,
        from: start.source.describe(),
    };
    print_stdout(&shown.render(args.format));
    Ok(())
}

/// `kiln env --nix`: the phase's environment under a Nix build of the derivation, computed as
/// kiln computes it when Nix runs it (`src/commands/nix_builder.rs`), without running anything.
fn nix_env(args: &EnvArgs) -> Result<(), CliError> {
    let attrs = args
        .source
        .attrs
        .as_deref()
        .expect("clap requires --attrs with --nix");
    let loaded = load_attrs_file(attrs).map_err(CliError::Load)?;
    let build_top = match std::env::var_os("NIX_BUILD_TOP") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::current_dir().map_err(|source| CliError::Io {
            what: "find the current directory",
            path: PathBuf::from("."),
            source,
        })?,
    };
    let cores = nix_build_cores();
    let paths = BuildPaths {
        build_top,
        outputs: BTreeMap::new(),
        cores,
    };
    let prepared =
        prepare(&loaded, paths, &nix_defined(std::env::vars())).map_err(CliError::Load)?;
    let phases = &prepared.plan.phases;
    let at = match &args.at {
        Some(name) => phases
            .iter()
            .position(|phase| phase.name == *name)
            .ok_or_else(|| CliError::UnknownPhase {
                option: "--at".to_owned(),
                name: name.clone(),
                existing: phases.iter().map(|p| p.name.clone()).collect(),
            })?,
        None => phases.iter().position(|phase| phase.enabled).unwrap_or(0),
    };
    let (cwd, env) = prepared.phase_start(at, None);
    let shown = Shown {
        prepared: &prepared,
        at,
        cwd: &cwd,
        env: &env,
        from: "a Nix build of the derivation",
    };
    print_stdout(&shown.render(args.format));
    Ok(())
}

/// A phase's starting environment, to print.
struct Shown<'a> {
    prepared: &'a PreparedBuild,
    at: usize,
    cwd: &'a Path,
    env: &'a BTreeMap<String, String>,
    from: &'a str,
}

impl Shown<'_> {
    fn render(&self, format: EnvFormat) -> String {
        let phase = self
            .prepared
            .plan
            .phases
            .get(self.at)
            .map_or("", |phase| phase.name.as_str());
        match format {
            EnvFormat::Json => {
                let shown = serde_json::json!({
                    "phase": phase,
                    "cwd": self.cwd,
                    "env": self.env,
                    "from": self.from,
                });
                let mut text = serde_json::to_string_pretty(&shown).expect("env serializes");
                text.push('\n');
                text
            }
            EnvFormat::Sh => {
                let mut text = format!(
                    "# the environment of phase `{phase}` of `{}` (from {}); its working \
                     directory is {}\n",
                    self.prepared.plan.name,
                    self.from,
                    sh_quote(&self.cwd.display().to_string())
                );
                for (name, value) in self.env {
                    if kiln_schema::validate::is_valid_env_name(name) {
                        text.push_str(&format!("export {name}={}\n", sh_quote(value)));
                    } else {
                        // A state's manifest could carry anything; `eval` must only set
                        // variables.
                        eprintln!("kiln: warning: `{name}` is not a shell variable name; left out");
                    }
                }
                text
            }
        }
    }
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
