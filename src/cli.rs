//! Command-line arguments (clap derive). Only the binary knows about clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Under Nix, kiln is a derivation's builder: with `__structuredAttrs = true` and no arguments it
reads the plan from the derivation attribute `kiln` in `.attrs.json` and speaks Nix's `@nix` log
protocol.

Examples:
  kiln build plan.json                   run a plan outside Nix; outputs go to ./kiln-out/NAME
  kiln build plan.json --out-dir /tmp/o  choose where outputs go
  kiln validate plan.json                check a plan; nothing runs
  kiln plan plan.json                    print the plan with every reference resolved
  kiln schema > plan.schema.json         the JSON Schema of plans

Exit status:
  0        success
  1        a phase failed (a step exited non-zero, was killed, or timed out), or an output
           was not created
  2        invalid plan or command line; nothing ran and no output was created
  3        setup failed (unreadable .attrs.json, output exists, directory not creatable)
  128+n    kiln was stopped by signal n (130 for SIGINT, 143 for SIGTERM) after killing
           the running step's process group";

/// kiln: a bash-free derivation builder. Runs a build's phases from a typed JSON plan.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, after_long_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// How to log: `human` (headers and durations), `nix` (the `@nix` protocol), `json` (one event
    /// per line). `auto` picks `nix` when Nix runs kiln (NIX_LOG_FD is set), else `human`.
    #[arg(long, value_enum, default_value_t = LogFormatArg::Auto, global = true)]
    pub log_format: LogFormatArg,

    /// Show more of kiln's own messages (repeat for more detail).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Show only warnings and errors from kiln.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    Auto,
    Human,
    Nix,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a plan's phases.
    Build(BuildArgs),
    /// Check a plan (structure and references) without running anything.
    Validate(PlanArgs),
    /// Print the plan with every reference resolved, as JSON on stdout.
    Plan(PlanArgs),
    /// Print the JSON Schema of plans on stdout.
    Schema,
    /// Look into a state archive made by a split build (a directory with `manifest.json` and
    /// `state.tar.zst`, e.g. a stage's store path).
    #[command(subcommand)]
    State(StateCommand),
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Print the manifest and the file list (verified against the manifest).
    Inspect {
        /// The state directory.
        #[arg(value_name = "STATE")]
        state: PathBuf,
    },
    /// Extract the state (verified) into DIR/build and DIR/outputs/NAME.
    Extract {
        /// The state directory.
        #[arg(value_name = "STATE")]
        state: PathBuf,
        /// Where to extract.
        #[arg(value_name = "DIR")]
        to: PathBuf,
    },
}

/// Where the plan comes from.
#[derive(Debug, Args)]
pub struct PlanSource {
    /// A plan file (JSON).
    #[arg(value_name = "PLAN", required_unless_present = "attrs")]
    pub plan: Option<PathBuf>,

    /// Read the plan from a Nix `.attrs.json` file (attribute `kiln`) instead.
    #[arg(long, value_name = "FILE", conflicts_with = "plan")]
    pub attrs: Option<PathBuf>,
}

/// Arguments of `validate` and `plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub source: PlanSource,

    #[command(flatten)]
    pub layout: LayoutArgs,
}

/// Where a local build puts things (also used to resolve references in `validate` and `plan`).
#[derive(Debug, Args)]
pub struct LayoutArgs {
    /// Directory that receives one subdirectory per output (`kiln-out/out`, …).
    #[arg(long, value_name = "DIR", default_value = "kiln-out")]
    pub out_dir: PathBuf,

    /// Build directory (`${build.top}`). Default: a new temporary directory, removed after a
    /// successful build and kept after a failure.
    #[arg(long, value_name = "DIR")]
    pub build_dir: Option<PathBuf>,

    /// Cores for the build (`${build.cores}`, NIX_BUILD_CORES). Default: all available.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub cores: Option<u32>,
}

/// Arguments of `build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub source: PlanSource,

    #[command(flatten)]
    pub layout: LayoutArgs,

    /// Keep the build directory after a successful build.
    #[arg(long)]
    pub keep_build_dir: bool,

    /// Seconds between SIGTERM and SIGKILL when a step is stopped (timeout or signal).
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0, value_parser = parse_grace)]
    pub kill_grace: f64,
}

/// A grace period: finite, 0 to 3600 seconds.
fn parse_grace(text: &str) -> Result<f64, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if seconds.is_finite() && (0.0..=3600.0).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(format!("`{text}` is not between 0 and 3600 seconds"))
    }
}
