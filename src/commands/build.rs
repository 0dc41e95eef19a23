//! `kiln build PLAN`: a local build without Nix, in kiln's sandbox, from the start, a cached
//! state (`--from`) or a split derivation's state (`--state`), to the end or `--until`.

use std::ffi::OsString;
use std::time::{Duration, Instant};

use kiln_builder::local::{
    resume_command, stop_if_interrupted, Directories, Interrupts, LastBuild, LocalError,
    LocalReporter, Resuming, Session,
};
use kiln_builder::run::executor::Resume;
use kiln_builder::Reporter;
use kiln_schema::events::{Level, LogEvent};

use super::{load, session_request};
use crate::cli::BuildArgs;
use crate::error::CliError;
use crate::report::Sink;

/// `kiln build`.
pub fn build(args: &BuildArgs, sink: &mut Sink) -> Result<(), CliError> {
    let grace = Duration::from_secs_f64(args.kill_grace.clamp(0.0, 3600.0));
    let request = session_request(&args.layout, &args.local, grace, Directories::Default);
    let mut session = Session::new(load(&args.source)?, request)?;
    if let Some(cache) = &session.cache {
        LastBuild {
            out_dir: session.out_dir.clone(),
            build_dir: session.build_dir.clone(),
        }
        .write(cache);
    }
    if let Some(report) = &session.loaded.stdenv {
        for (level, text) in report.messages() {
            sink.report(&LogEvent::Message { level, text: &text });
        }
    }
    let from = args.from.as_deref().or(args.only.as_deref());
    let until = args.until.as_deref().or(args.only.as_deref());
    let range = session.phase_range(from, until)?;
    session.check_can_start(&range)?;
    session.check_isolation(sink)?;
    let name = session.prepared.plan.name.clone();
    let local_error = |error| CliError::Local {
        name: name.clone(),
        error,
        notes: Vec::new(),
    };
    let mut interrupts = Interrupts::install().map_err(local_error)?;
    let dirs = session.create_dirs()?;
    let local = session.build(&dirs);
    let phases = &session.prepared.plan.phases;
    sink.report(&LogEvent::BuildStarted {
        format_version: kiln_schema::events::LOG_FORMAT_VERSION,
        name: &name,
        phases: phases.iter().map(|p| p.name.as_str()).collect(),
    });
    let started = Instant::now();
    let result = (|| -> Result<Option<Resume>, LocalError> {
        if let (Some(state), true) = (&session.state, range.restore_state) {
            let (resume, phase) = local.restore_split_state(state)?;
            sink.report(&LogEvent::Message {
                level: Level::Info,
                text: &format!(
                    "restored the state after phase `{phase}` from `{}`",
                    state.display()
                ),
            });
            for phase in &phases[..range.start] {
                if phase.enabled {
                    sink.phase_restored(&phase.name, 0.0);
                }
            }
            return Ok(Some(resume));
        }
        local.restore_cached(range.start, sink)
    })();
    let result = result.and_then(|resume| {
        stop_if_interrupted(&mut interrupts, &phases[range.start].name)?;
        local.run(range.start, range.end, resume, sink, &mut interrupts)
    });
    let finished = match &result {
        Ok(_) if range.to_the_end => local
            .check_outputs()
            .map_err(CliError::from_run(&name))
            .and_then(|()| match interrupts.pending() {
                // Told to stop before the outputs are installed: they are not.
                Some(signal) => Err(CliError::Exit(kiln_schema::exit_codes::for_signal(
                    signal as i32,
                ))),
                None => dirs
                    .install_outputs(&session.final_outputs, sink)
                    .map_err(CliError::from),
            }),
        Ok(_) | Err(_) => Ok(()),
    };
    let success = result.is_ok() && finished.is_ok();
    let exit_code = match (&result, &finished) {
        (Err(error), _) => error.exit_code(),
        (Ok(_), Err(error)) => error.exit_code(),
        _ => 0,
    };
    sink.report(&LogEvent::BuildFinished {
        success,
        exit_code,
        seconds: started.elapsed().as_secs_f64(),
    });
    sink.finish()?;
    let keep_note = format!(
        "the build directory is kept at `{}`",
        dirs.host.build_top.display()
    );
    let resume_at = |phase: &str, resuming| {
        resume_command(
            &this_command_line(),
            phase,
            session.options.sandbox,
            resuming,
            session.build_dir.as_deref(),
        )
    };
    match (result, finished) {
        (Ok(_), Ok(())) if range.to_the_end => {
            if dirs.host.staging.is_some() {
                // Only mount points are left in it: the outputs moved out.
                dirs.remove_staging();
            }
            if dirs.temporary && !args.keep_build_dir {
                dirs.remove_build_dir();
            }
            Ok(())
        }
        (Ok(_), Ok(())) => {
            dirs.remove_staging();
            eprintln!(
                "kiln: stopped after phase `{}` as asked; outputs were not installed; {keep_note}",
                phases[range.end].name
            );
            if session.cache.is_some() {
                let next = &phases[range.end + 1].name;
                eprintln!(
                    "kiln: continue with: {}",
                    resume_at(next, Resuming::Continue)
                );
            }
            Ok(())
        }
        (Err(error), _) => {
            dirs.remove_staging();
            let mut notes = vec![format!("{keep_note}; partial outputs were removed")];
            if let Some(failure) = error.phase_failure() {
                if failure.signal.is_none() && session.cache.is_some() {
                    notes.push(format!(
                        "after fixing it, resume at the failed phase with: {}",
                        resume_at(&failure.phase, Resuming::Failed)
                    ));
                }
            }
            Err(CliError::Local { name, error, notes })
        }
        (Ok(_), Err(error)) => {
            dirs.remove_staging();
            if let CliError::Exit(code) = &error {
                eprintln!(
                    "kiln: stopped (exit {code}) before the outputs were installed; {keep_note}"
                );
            }
            Err(error)
        }
    }
}

/// This command line, for [`resume_command`], byte for byte.
fn this_command_line() -> Vec<OsString> {
    std::env::args_os().collect()
}
