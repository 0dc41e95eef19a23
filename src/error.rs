//! The CLI's one error type: every failure, its exit code, and how it is printed.

use std::fmt::Write as _;

use kiln_builder::build::{RunError, SetupError};
use kiln_builder::deps::DepsError;
use kiln_builder::executor::BuildError;
use kiln_builder::load::LoadError;
use kiln_builder::split::SplitError;
use kiln_schema::exit_codes;

/// Everything that can end a kiln command unsuccessfully.
#[derive(Debug)]
pub enum CliError {
    /// The plan could not be read or is invalid.
    Load(LoadError),
    /// The build could not start.
    Setup(SetupError),
    /// The build ran and failed.
    Run {
        /// The plan's name.
        name: String,
        /// What failed.
        error: RunError,
        /// Extra advice (where the build directory was kept).
        note: Option<String>,
    },
    /// kiln needs Nix's environment but does not have it.
    NotUnderNix,
    /// A part of a split build failed.
    Split {
        /// The plan's name.
        name: String,
        /// What failed.
        error: SplitError,
    },
    /// A state archive could not be read.
    State(kiln_state::StateError),
}

impl CliError {
    /// The documented exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Load(LoadError::Invalid { .. }) => exit_codes::INVALID_INPUT,
            CliError::Load(LoadError::Read { .. }) => exit_codes::SETUP_FAILED,
            CliError::Load(LoadError::Dependency(DepsError::InvalidHook { .. })) => {
                exit_codes::INVALID_INPUT
            }
            CliError::Load(LoadError::Dependency(DepsError::Read { .. })) => {
                exit_codes::SETUP_FAILED
            }
            CliError::Setup(_) => exit_codes::SETUP_FAILED,
            CliError::Run { error, .. } => match error {
                RunError::Build(BuildError::Interrupted { signal, .. }) => {
                    exit_codes::SIGNAL_BASE + *signal as i32
                }
                RunError::Setup(_) => exit_codes::SETUP_FAILED,
                _ => exit_codes::BUILD_FAILED,
            },
            CliError::NotUnderNix => exit_codes::INVALID_INPUT,
            CliError::Split { error, .. } => match error {
                SplitError::Restore { .. } | SplitError::PlanMismatch { .. } => {
                    exit_codes::INVALID_INPUT
                }
                SplitError::Run(RunError::Build(BuildError::Interrupted { signal, .. })) => {
                    exit_codes::SIGNAL_BASE + *signal as i32
                }
                SplitError::Run(RunError::Setup(_)) => exit_codes::SETUP_FAILED,
                _ => exit_codes::BUILD_FAILED,
            },
            CliError::State(_) => exit_codes::INVALID_INPUT,
        }
    }

    /// The full message: `error:` line, `caused by:` lines, hints.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut hints: Vec<String> = Vec::new();
        match self {
            CliError::Load(LoadError::Invalid { file, errors }) => {
                let count = errors.0.len();
                let problems = if count == 1 {
                    "1 problem".to_owned()
                } else {
                    format!("{count} problems")
                };
                let _ = writeln!(
                    out,
                    "error: invalid plan in `{}`: {problems}",
                    file.display()
                );
                for error in &errors.0 {
                    let _ = writeln!(out, "  {error}");
                    if let Some(hint) = error.hint() {
                        let _ = writeln!(out, "    hint: {hint}");
                    }
                }
                hints.push("nothing was run and no output was created".to_owned());
            }
            CliError::Run { name, error, note } => {
                let _ = writeln!(out, "error: build of `{name}` failed");
                write_chain(&mut out, error);
                if let RunError::Build(build) = error {
                    hints.extend(build.hint());
                }
                if let RunError::OutputMissing { name, .. } = error {
                    hints.push(format!(
                        "a step must create it, e.g. write to `${{outputs.{name}}}`"
                    ));
                }
                hints.extend(note.clone());
            }
            CliError::Load(error) => {
                let _ = writeln!(out, "error: {error}");
                write_sources(&mut out, error);
            }
            CliError::Setup(error) => {
                let _ = writeln!(out, "error: {error}");
                write_sources(&mut out, error);
                if let SetupError::OutputExists { .. } = error {
                    hints.push("remove it, or choose another `--out-dir`".to_owned());
                }
            }
            CliError::Split { name, error } => {
                let _ = writeln!(out, "error: build of `{name}` failed");
                write_chain(&mut out, error);
                if let SplitError::Run(RunError::Build(build)) = error {
                    hints.extend(build.hint());
                }
                if let SplitError::PlanMismatch { .. } = error {
                    hints.push(
                        "the stage before this one was built from another plan; rebuild the chain \
                         from the same expression"
                            .to_owned(),
                    );
                }
                if let SplitError::Restore { .. } = error {
                    hints.push(
                        "the state is damaged or not a kiln state; rebuild the stage that made it"
                            .to_owned(),
                    );
                }
            }
            CliError::State(error) => {
                let _ = writeln!(out, "error: {error}");
                write_sources(&mut out, error);
            }
            CliError::NotUnderNix => {
                let _ = writeln!(out, "error: no command given and not running under Nix");
                hints.push("run `kiln build PLAN.json`, or see `kiln --help`".to_owned());
            }
        }
        for hint in hints {
            let _ = write!(out, "\nhint: {hint}\n");
        }
        out
    }
}

/// The error itself on a `caused by:` line, then its sources.
fn write_chain(out: &mut String, error: &(dyn std::error::Error + 'static)) {
    let _ = writeln!(out, "  caused by: {error}");
    write_sources(out, error);
}

fn write_sources(out: &mut String, error: &(dyn std::error::Error + 'static)) {
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = writeln!(out, "  caused by: {cause}");
        source = cause.source();
    }
}
