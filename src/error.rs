//! The CLI's one error type: every failure, its exit code, and how it is printed.

use std::fmt::Write as _;

use kiln_builder::local::{LocalError, SessionError};
use kiln_builder::run::build::{RunError, SetupError};
use kiln_builder::setup::load::LoadError;
use kiln_builder::split::SplitError;
use kiln_schema::excerpt::{excerpt, list_joined, shorten};
use kiln_schema::{exit_codes, PlanErrorKind};

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
    /// The command line is inconsistent (beyond what clap checks).
    Usage(String),
    /// A phase named on the command line does not exist.
    UnknownPhase {
        /// The option (`--from`, `--at`, …).
        option: String,
        /// The name given.
        name: String,
        /// The plan's phases.
        existing: Vec<String>,
    },
    /// kiln's sandbox cannot run on this machine.
    Sandbox(kiln_sandbox::SandboxError),
    /// A local build failed.
    Local {
        /// The plan's name.
        name: String,
        /// What failed.
        error: LocalError,
        /// Where things are, how to resume.
        notes: Vec<String>,
    },
    /// An interactive command (`kiln shell`) exited with this code; nothing to print.
    Exit(i32),
    /// A file operation of the command itself failed.
    Io {
        /// What kiln was doing (`start the shell`, `move the output to`).
        what: &'static str,
        /// The path.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl From<SessionError> for CliError {
    fn from(error: SessionError) -> CliError {
        match error {
            SessionError::Request(text) => CliError::Usage(text),
            SessionError::UnknownPhase {
                option,
                name,
                existing,
            } => CliError::UnknownPhase {
                option,
                name,
                existing,
            },
            SessionError::Load(error) => CliError::Load(error),
            SessionError::Setup(error) => CliError::Setup(error),
            SessionError::State(error) => CliError::State(error),
            SessionError::Sandbox(error) => CliError::Sandbox(error),
            SessionError::Io { what, path, source } => CliError::Io { what, path, source },
            SessionError::Local { name, error } => CliError::Local {
                name,
                error,
                notes: Vec::new(),
            },
        }
    }
}

impl CliError {
    /// `Run` errors of the build named `name`.
    pub fn from_run(name: &str) -> impl Fn(RunError) -> CliError + '_ {
        move |error| CliError::Run {
            name: name.to_owned(),
            error,
            note: None,
        }
    }

    /// The documented exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Load(error) => error.exit_code(),
            CliError::Setup(_) => exit_codes::SETUP_FAILED,
            CliError::Run { error, .. } => error.exit_code(),
            CliError::NotUnderNix => exit_codes::INVALID_INPUT,
            CliError::Split { error, .. } => error.exit_code(),
            CliError::State(_) => exit_codes::INVALID_INPUT,
            CliError::Usage(_) | CliError::UnknownPhase { .. } => exit_codes::INVALID_INPUT,
            CliError::Sandbox(_) => exit_codes::SETUP_FAILED,
            CliError::Local { error, .. } => error.exit_code(),
            CliError::Exit(code) => *code,
            CliError::Io { .. } => exit_codes::SETUP_FAILED,
        }
    }

    /// The full message: `error:` line, `caused by:` lines, hints.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut hints: Vec<String> = Vec::new();
        match self {
            CliError::Load(LoadError::Invalid { file, errors }) => {
                // At most MAX_ERRORS problems, each bounded (kiln_schema::excerpt): a hostile plan
                // gets a message of a few kilobytes whatever its size.
                let count = errors.total();
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
                let mut shown = 0;
                for error in errors.shown() {
                    let _ = writeln!(out, "  {error}");
                    if let Some(hint) = error.hint() {
                        let _ = writeln!(out, "    hint: {}", shorten(&hint));
                    }
                    shown += 1;
                }
                if count > shown {
                    let more = PlanErrorKind::MoreProblems {
                        more: count - shown,
                    };
                    let _ = writeln!(out, "  {more}");
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
            CliError::Usage(message) => {
                let _ = writeln!(out, "error: {message}");
            }
            CliError::UnknownPhase {
                option,
                name,
                existing,
            } => {
                let _ = writeln!(
                    out,
                    "error: `{option} {}`: the plan has no phase `{}`",
                    excerpt(name),
                    excerpt(name)
                );
                hints.push(format!(
                    "its phases are: {}",
                    list_joined(existing, ", ", false)
                ));
            }
            CliError::Sandbox(error) => {
                let _ = writeln!(out, "error: kiln's sandbox cannot run here: {error}");
                write_sources(&mut out, error);
                if let Some(hint) = error.hint() {
                    hints.push(hint.to_string());
                }
                hints.push(
                    "`--no-sandbox` runs the build without isolation (the result may then depend \
                     on this machine)"
                        .to_owned(),
                );
            }
            CliError::Local { name, error, notes } => {
                let _ = writeln!(out, "error: build of `{name}` failed");
                match error {
                    LocalError::Phase { failure } => {
                        for line in &failure.message {
                            let _ = writeln!(out, "  caused by: {line}");
                        }
                        hints.extend(failure.hint.clone());
                    }
                    LocalError::SandboxUnavailable(sandbox) => {
                        write_chain(&mut out, error);
                        hints.extend(sandbox.hint().map(|hint| hint.to_string()));
                    }
                    LocalError::NotCached { previous, .. } => {
                        write_chain(&mut out, error);
                        hints.push(format!(
                            "run the build without `--from` (or `--until {previous}`) once to \
                             cache it"
                        ));
                    }
                    LocalError::PlanMismatch { .. } => {
                        write_chain(&mut out, error);
                        hints.push(
                            "load the plan of the derivation that made the state (`--attrs`)"
                                .to_owned(),
                        );
                    }
                    _ => write_chain(&mut out, error),
                }
                hints.extend(notes.iter().cloned());
            }
            CliError::Exit(_) => {}
            CliError::Io { what, path, source } => {
                let _ = writeln!(out, "error: cannot {what} `{}`", path.display());
                let _ = writeln!(out, "  caused by: {source}");
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
    for cause in kiln_schema::chain::causes(error) {
        let _ = writeln!(out, "  caused by: {cause}");
    }
}

/// The sources of `error`, each on a `caused by:` line.
fn write_sources(out: &mut String, error: &(dyn std::error::Error + 'static)) {
    for cause in kiln_schema::chain::causes(error).iter().skip(1) {
        let _ = writeln!(out, "  caused by: {cause}");
    }
}
