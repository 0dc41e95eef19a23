//! Command-line arguments (clap derive). Only the binary knows about clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Under Nix, kiln is a derivation's builder: with `__structuredAttrs = true` and no arguments it
reads the plan from the derivation attribute `kiln` in `.attrs.json` and speaks Nix's `@nix` log
protocol.

Examples:
  kiln build plan.json                   run a plan outside Nix, in kiln's sandbox; outputs go
                                         to ./kiln-out/NAME
  kiln build plan.json --out-dir /tmp/o  choose where outputs go
  kiln build plan.json --lend /usr --lend /bin --lend /lib --lend /lib64
                                         let the sandbox see the host's toolchain (impure)
  kiln build plan.json --from check      start at `check` from the cached state after `build`
  kiln shell plan.json --at build        a shell where phase `build` starts, in the sandbox
  kiln env plan.json --at build          the environment phase `build` starts with
  kiln validate plan.json                check a plan; nothing runs
  kiln plan plan.json                    print the plan with every reference resolved
  kiln schema > plan.schema.json         the JSON Schema of plans

Exit status:
  0        success
  1        a phase failed (a step exited non-zero, was killed, or timed out), or an output
           was not created
  2        invalid plan or command line; nothing ran and no output was created
  2        also: an unknown phase in --from/--until/--only/--at, no cached state to start
           at, or a state archive that is damaged or belongs to another plan
  3        setup failed (unreadable .attrs.json, output exists, directory not creatable,
           the sandbox is unavailable)
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
    /// Open an interactive shell where a phase starts: in the sandbox, in the phase's working
    /// directory, with exactly the environment the phase gets.
    Shell(ShellArgs),
    /// Print the environment and working directory a phase starts with.
    Env(EnvArgs),
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
    /// Directory that receives one subdirectory per output (`kiln-out/out`, …). Default:
    /// `kiln-out`; for `shell` and `env`, the last `kiln build`'s of the plan, whose cached
    /// states they then reuse.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,

    /// Build directory (`${build.top}`). Default: a new temporary directory, removed after a
    /// successful build and kept after a failure; for `shell` and `env`, the last `kiln build`'s
    /// when it gave one.
    #[arg(long, value_name = "DIR")]
    pub build_dir: Option<PathBuf>,

    /// Cores for the build (`${build.cores}`, NIX_BUILD_CORES). Default: all available.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub cores: Option<u32>,
}

impl LayoutArgs {
    /// The output directory when none is remembered: `--out-dir`, else `kiln-out`.
    pub fn out_dir_or_default(&self) -> PathBuf {
        self.out_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("kiln-out"))
    }
}

/// How a local build is isolated and cached.
#[derive(Debug, Args)]
pub struct LocalArgs {
    /// Run on the host, without kiln's sandbox: steps see the whole machine, the caller's
    /// files and the network. For machines without user namespaces; kiln warns every time.
    #[arg(long)]
    pub no_sandbox: bool,

    /// Lend a host path to the sandbox, read-only at the same path (like Nix's
    /// `extra-sandbox-paths`; repeatable). A plan's input outside the store must lie under a
    /// lent path: a plan cannot lend the host to itself. `--lend /bin --lend /usr --lend /lib
    /// --lend /lib64 --lend /etc/alternatives` lends a Debian host's toolchain (impure).
    /// KILN_LEND holds a `:`-separated default, which `--lend` replaces.
    #[arg(long, value_name = "PATH", env = "KILN_LEND", value_delimiter = ':')]
    pub lend: Vec<PathBuf>,

    /// Where phase states are cached. Default: $KILN_CACHE_DIR, else
    /// $XDG_CACHE_HOME/kiln/states, else ~/.cache/kiln/states.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Do not cache the state after each phase (then `--from` has nothing to start from).
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,

    /// Start from a state archive made by a split derivation (a stage's store path): its
    /// phases are not run again, the next ones run locally. Outputs are built at the state's
    /// placeholder paths.
    #[arg(long, value_name = "STATE")]
    pub state: Option<PathBuf>,
}

/// Arguments of `build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub source: PlanSource,

    #[command(flatten)]
    pub layout: LayoutArgs,

    #[command(flatten)]
    pub local: LocalArgs,

    /// Start at this phase, from the cached state after the phase before it.
    #[arg(long, value_name = "PHASE", conflicts_with = "only")]
    pub from: Option<String>,

    /// Stop after this phase (its state is cached; outputs are not installed).
    #[arg(long, value_name = "PHASE", conflicts_with = "only")]
    pub until: Option<String>,

    /// Run only this phase: `--from PHASE --until PHASE`.
    #[arg(long, value_name = "PHASE")]
    pub only: Option<String>,

    /// Write per-phase and per-step durations to FILE (JSON) and a chart next to it
    /// (FILE with `.html`).
    #[arg(long, value_name = "FILE")]
    pub timings: Option<PathBuf>,

    /// Keep the build directory after a successful build.
    #[arg(long)]
    pub keep_build_dir: bool,

    /// Seconds between SIGTERM and SIGKILL when a step is stopped (timeout or signal).
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0, value_parser = parse_grace)]
    pub kill_grace: f64,
}

/// Arguments of `shell`.
#[derive(Debug, Args)]
pub struct ShellArgs {
    #[command(flatten)]
    pub source: PlanSource,

    #[command(flatten)]
    pub layout: LayoutArgs,

    #[command(flatten)]
    pub local: LocalArgs,

    /// The phase to stand at: the shell starts where it would start. Earlier phases come
    /// from the cache, or run first when they are not cached.
    #[arg(long, value_name = "PHASE")]
    pub at: String,

    /// The shell to run (an inside path). Default: `bash`, else `sh`, from the phase's PATH.
    #[arg(long, value_name = "PROGRAM")]
    pub shell: Option<PathBuf>,

    /// Keep the build directory after the shell exits.
    #[arg(long)]
    pub keep_build_dir: bool,
}

/// How `kiln env` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EnvFormat {
    /// `{"phase": .., "cwd": .., "env": {..}}`
    Json,
    /// `export NAME='value'` lines, for `eval`.
    Sh,
}

/// Arguments of `env`.
#[derive(Debug, Args)]
pub struct EnvArgs {
    #[command(flatten)]
    pub source: PlanSource,

    #[command(flatten)]
    pub layout: LayoutArgs,

    #[command(flatten)]
    pub local: LocalArgs,

    /// The phase whose starting environment to print. Default: the first phase that runs.
    #[arg(long, value_name = "PHASE")]
    pub at: Option<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = EnvFormat::Json)]
    pub format: EnvFormat,

    /// The environment as a Nix build gives the phase (what `nix develop` and `nix-shell`
    /// show of a kiln derivation): the plan from `--attrs` (the derivation's `.attrs.json`),
    /// outputs at the derivation's paths, the build directory `$NIX_BUILD_TOP` (else the
    /// current directory) and Nix's own variables; no cache, no state, nothing earlier phases
    /// would change.
    #[arg(long, requires = "attrs", conflicts_with_all = ["state", "out_dir", "build_dir"])]
    pub nix: bool,
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
