//! The `kiln` binary: a thin CLI over `kiln-builder`. `main` dispatches to one file per
//! command in `commands/`; see `kiln --help`.

mod cli;
mod commands;
mod error;
mod report;
mod terminal;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use kiln_builder::LogFormat;
use kiln_schema::events::Level;

use crate::cli::{Cli, Command, GlobalArgs, LogFormatArg};
use crate::error::CliError;

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
        let causes = kiln_schema::chain::causes(&error);
        eprintln!("kiln-cc: error: {}", causes.join("\n  caused by: "));
        return ExitCode::from(1);
    }
    match args.get(1).and_then(|arg| arg.to_str()) {
        Some(kiln_sandbox::INIT_SUBCOMMAND) => kiln_sandbox::init_main(&args[2..]),
        Some(kiln_builder::local::inner::INNER_SUBCOMMAND) => {
            let build_top = args.get(2).map(PathBuf::from).unwrap_or_default();
            let code = kiln_builder::local::inner::inner_main(&build_top);
            return ExitCode::from(code.clamp(0, 255) as u8);
        }
        _ => {}
    }
    let cli = Cli::parse();
    let result = match &cli.command {
        None => commands::nix_builder(&cli.global),
        Some(Command::Build(args)) => {
            let mut sink = report::Sink::new(
                log_format(&cli.global),
                max_level(&cli.global),
                args.timings.clone(),
            );
            commands::build(args, &mut sink)
        }
        Some(Command::Shell(args)) => {
            let mut sink = report::Sink::new(log_format(&cli.global), max_level(&cli.global), None);
            commands::shell(args, &mut sink)
        }
        Some(Command::Env(args)) => commands::env(args),
        Some(Command::Validate(args)) => commands::validate(args),
        Some(Command::Plan(args)) => commands::plan(args),
        Some(Command::Schema) => {
            commands::print_stdout(&kiln_schema::plan_json_schema());
            Ok(())
        }
        Some(Command::State(command)) => commands::state(command),
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

/// The log format asked for; `auto` is Nix's under Nix, else text.
fn log_format(global: &GlobalArgs) -> LogFormat {
    match global.log_format {
        LogFormatArg::Human => LogFormat::Human,
        LogFormatArg::Nix => LogFormat::Nix,
        LogFormatArg::Json => LogFormat::Json,
        LogFormatArg::Auto if std::env::var_os("NIX_LOG_FD").is_some() => LogFormat::Nix,
        LogFormatArg::Auto => LogFormat::Human,
    }
}

/// The most verbose level shown: `-q` warnings, `-v`… more.
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
