//! The `kiln` binary: a thin CLI over `kiln-builder`. See `kiln --help`.

mod cli;
mod error;
mod local;
mod report;
mod terminal;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use kiln_builder::build::{prepare, run_build, PreparedBuild};
use kiln_builder::env::{nix_defined, BuildPaths};
use kiln_builder::executor::ExecutorOptions;
use kiln_builder::load::{attrs_json_path, load_attrs_file, load_plan_file, LoadedPlan};
use kiln_builder::report::{LogFormat, Reporter, WriterReporter};
use kiln_schema::events::Level;

use crate::cli::{
    Cli, Command, GlobalArgs, LayoutArgs, LogFormatArg, PlanArgs, PlanSource, StateCommand,
};
use crate::error::CliError;
use kiln_builder::split::{prepare_part, run_part};

/// Where Nix's sandbox puts the build directory; shown by `validate`/`plan` when no
/// `--build-dir` is given.
const DISPLAY_BUILD_TOP: &str = "/build";

fn main() -> ExitCode {
    // The hidden re-exec targets come first: the sandbox's init must start single-threaded.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Called as `cc`, `gcc`, `c++`, `g++` or `cpp` (a symlink in the stage-0 toolchain): the
    // compiler wrapper, which replaces this process with the real compiler.
    if let Some(tool) = args
        .first()
        .and_then(|name| kiln_cc::Tool::from_program_name(name))
    {
        let error = kiln_cc::exec(tool, &args[1..]);
        let mut message = format!("kiln-cc: error: {error}");
        let mut cause = std::error::Error::source(&error);
        while let Some(inner) = cause {
            message.push_str(&format!("\n  caused by: {inner}"));
            cause = inner.source();
        }
        eprintln!("{message}");
        return ExitCode::from(1);
    }
    match args.get(1).and_then(|arg| arg.to_str()) {
        Some(kiln_sandbox::INIT_SUBCOMMAND) => kiln_sandbox::init_main(&args[2..]),
        Some(kiln_builder::inner::INNER_SUBCOMMAND) => {
            let build_top = args.get(2).map(PathBuf::from).unwrap_or_default();
            let code = kiln_builder::inner::inner_main(&build_top);
            return ExitCode::from(code.clamp(0, 255) as u8);
        }
        _ => {}
    }
    let cli = Cli::parse();
    let result = match &cli.command {
        None => nix_builder(&cli.global),
        Some(Command::Build(args)) => {
            let mut sink = report::Sink::new(
                log_format(&cli.global),
                max_level(&cli.global),
                args.timings.clone(),
            );
            local::build(args, &mut sink)
        }
        Some(Command::Shell(args)) => {
            let mut sink = report::Sink::new(log_format(&cli.global), max_level(&cli.global), None);
            local::shell(args, &mut sink)
        }
        Some(Command::Env(args)) => local::env(args),
        Some(Command::Validate(args)) => validate(args),
        Some(Command::Plan(args)) => print_plan(args),
        Some(Command::Schema) => {
            print_stdout(&kiln_schema::plan_json_schema());
            Ok(())
        }
        Some(Command::State(command)) => state(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if !matches!(error, CliError::Exit(_)) {
                let _ = std::io::stderr().write_all(error.render().as_bytes());
            }
            ExitCode::from(error.exit_code().clamp(0, 255) as u8)
        }
    }
}

/// Writes data to stdout; a closed pipe (`kiln schema | head`) is not an error.
fn print_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

fn available_cores() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

fn log_format(global: &GlobalArgs) -> LogFormat {
    match global.log_format {
        LogFormatArg::Human => LogFormat::Human,
        LogFormatArg::Nix => LogFormat::Nix,
        LogFormatArg::Json => LogFormat::Json,
        LogFormatArg::Auto if std::env::var_os("NIX_LOG_FD").is_some() => LogFormat::Nix,
        LogFormatArg::Auto => LogFormat::Human,
    }
}

fn max_level(global: &GlobalArgs) -> Level {
    if global.quiet {
        return Level::Warn;
    }
    match global.verbose {
        0 => Level::Info,
        1 => Level::Talkative,
        2 => Level::Chatty,
        3 => Level::Debug,
        _ => Level::Vomit,
    }
}

fn load(source: &PlanSource) -> Result<LoadedPlan, CliError> {
    match (&source.plan, &source.attrs) {
        (_, Some(attrs)) => load_attrs_file(attrs),
        (Some(plan), None) => load_plan_file(plan),
        (None, None) => unreachable!("clap requires PLAN or --attrs"),
    }
    .map_err(CliError::Load)
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Paths for showing or validating a plan outside Nix: outputs under `--out-dir` (a plan read
/// from `.attrs.json` keeps the derivation's output names, but its outputs go there too) and
/// the given build directory.
fn local_paths(loaded: &mut LoadedPlan, layout: &LayoutArgs, build_top: PathBuf) -> BuildPaths {
    let names: Vec<String> = match &loaded.outputs {
        Some(outputs) => outputs.keys().cloned().collect(),
        None => kiln_schema::declared_outputs(&loaded.plan),
    };
    let out_dir = absolute(&layout.out_dir_or_default());
    let outputs: BTreeMap<String, PathBuf> = names
        .iter()
        .map(|name| (name.clone(), out_dir.join(name)))
        .collect();
    if loaded.outputs.is_some() {
        loaded.outputs = Some(outputs.clone());
    }
    BuildPaths {
        build_top,
        outputs,
        cores: layout.cores.unwrap_or_else(available_cores),
    }
}

/// The prepared plan and, for a translated stdenv-style derivation, the translation report.
fn prepare_for_display(
    args: &PlanArgs,
) -> Result<(PreparedBuild, Option<serde_json::Value>), CliError> {
    let mut loaded = load(&args.source)?;
    let stdenv = loaded
        .stdenv
        .as_ref()
        .map(|report| serde_json::to_value(report).expect("a report serializes"));
    let build_top = args
        .layout
        .build_dir
        .as_deref()
        .map(absolute)
        .unwrap_or_else(|| PathBuf::from(DISPLAY_BUILD_TOP));
    let paths = local_paths(&mut loaded, &args.layout, build_top);
    let prepared = prepare(&loaded, paths, &BTreeMap::new()).map_err(CliError::Load)?;
    Ok((prepared, stdenv))
}

fn validate(args: &PlanArgs) -> Result<(), CliError> {
    let (prepared, _) = prepare_for_display(args)?;
    let steps: usize = prepared.plan.phases.iter().map(|p| p.steps.len()).sum();
    eprintln!(
        "plan `{}` is valid: {} phases, {steps} steps",
        prepared.plan.name,
        prepared.plan.phases.len()
    );
    Ok(())
}

/// `kiln plan`: the expanded, resolved plan (each phase with its `origin`) and the environment
/// steps start from, each variable with its value and origin.
fn print_plan(args: &PlanArgs) -> Result<(), CliError> {
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

/// `kiln state inspect|extract`.
fn state(command: &StateCommand) -> Result<(), CliError> {
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

/// For a derivation translated from stdenv's attributes: its warnings and the shell hooks it
/// runs.
fn report_translation(loaded: &LoadedPlan, reporter: &mut dyn Reporter) {
    if let Some(report) = &loaded.stdenv {
        for (level, text) in report.messages() {
            reporter.report(&kiln_schema::events::LogEvent::Message { level, text: &text });
        }
    }
}

/// No command: kiln is a Nix derivation's builder.
fn nix_builder(global: &GlobalArgs) -> Result<(), CliError> {
    let Some(build_top) = std::env::var_os("NIX_BUILD_TOP").map(PathBuf::from) else {
        return Err(CliError::NotUnderNix);
    };
    let attrs_var = std::env::var("NIX_ATTRS_JSON_FILE").ok();
    let attrs = attrs_json_path(attrs_var.as_deref(), &build_top);
    let loaded = load_attrs_file(&attrs).map_err(CliError::Load)?;
    if let Some(outputs) = &loaded.outputs {
        if outputs.values().any(|path| path.as_os_str().is_empty()) {
            return Err(CliError::Usage(format!(
                "`{}` lists output names without their paths; under Nix, `.attrs.json` maps each \
                 output to its store path",
                attrs.display()
            )));
        }
    }
    let cores = std::env::var("NIX_BUILD_CORES")
        .ok()
        .and_then(|value| value.parse::<u32>().ok())
        .filter(|&cores| cores > 0)
        .unwrap_or_else(available_cores);
    let paths = BuildPaths {
        build_top,
        outputs: BTreeMap::new(),
        cores,
    };
    let nix_env = nix_defined(std::env::vars());
    let format = match global.log_format {
        LogFormatArg::Auto => LogFormat::Nix,
        _ => log_format(global),
    };
    let mut reporter = WriterReporter::new(format, max_level(global), std::io::stderr());
    report_translation(&loaded, &mut reporter);
    if let Some(part) = &loaded.split {
        let derivation_outputs = loaded.outputs.clone().unwrap_or_default();
        let prepared = prepare_part(&loaded, part, paths.build_top, paths.cores, &nix_env)
            .map_err(CliError::Load)?;
        let (_, result) = run_part(
            &prepared,
            part,
            &derivation_outputs,
            ExecutorOptions::default(),
            &mut reporter,
        );
        return result.map_err(|error| CliError::Split {
            name: prepared.plan.name.clone(),
            error,
        });
    }
    let prepared = prepare(&loaded, paths, &nix_env).map_err(CliError::Load)?;
    let (_, result) = run_build(&prepared, ExecutorOptions::default(), &mut reporter);
    result.map_err(|error| CliError::Run {
        name: prepared.plan.name.clone(),
        error,
        note: None,
    })
}
