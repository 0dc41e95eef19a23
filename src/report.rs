//! The reporter the CLI builds for a local build: the chosen log format, or the live progress
//! display when a person watches stderr, plus the timings recorder when `--timings` is given.

use std::io::IsTerminal;
use std::path::PathBuf;

use kiln_builder::local::LocalReporter;
use kiln_builder::progress::{color_from_env, ProgressOptions, ProgressReporter};
use kiln_builder::report::{LogFormat, Reporter, WriterReporter};
use kiln_builder::timings::{write_timings, TimingsRecorder};
use kiln_schema::events::{Level, LogEvent};

use crate::error::CliError;

/// How events are shown.
enum Display {
    /// Lines in a log format.
    Lines(WriterReporter<std::io::Stderr>),
    /// The live progress display (human format on a terminal).
    Progress(ProgressReporter),
}

/// Every event of a local build goes here.
pub struct Sink {
    display: Display,
    timings: Option<(PathBuf, TimingsRecorder)>,
}

impl Sink {
    /// A sink writing `format` to stderr; the human format on a terminal is the progress
    /// display. `timings` is where `--timings` writes.
    pub fn new(format: LogFormat, max_level: Level, timings: Option<PathBuf>) -> Sink {
        let display = if format == LogFormat::Human && std::io::stderr().is_terminal() {
            Display::Progress(ProgressReporter::new(ProgressOptions {
                max_level,
                color: color_from_env(),
                draw_target: None,
            }))
        } else {
            Display::Lines(WriterReporter::new(format, max_level, std::io::stderr()))
        };
        Sink {
            display,
            timings: timings.map(|path| (path, TimingsRecorder::new())),
        }
    }

    /// Writes the timings, if asked for.
    pub fn finish(&mut self) -> Result<(), CliError> {
        if let Some((path, recorder)) = self.timings.take() {
            let written = write_timings(&path, &recorder.timings()).map_err(|source| {
                CliError::Setup(kiln_builder::build::SetupError::CreateDir {
                    path: path.clone(),
                    source,
                })
            })?;
            let shown: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
            self.report(&LogEvent::Message {
                level: Level::Info,
                text: &format!("kiln: timings written to {}", shown.join(" and ")),
            });
        }
        Ok(())
    }
}

impl Reporter for Sink {
    fn report(&mut self, event: &LogEvent<'_>) {
        match &mut self.display {
            Display::Lines(lines) => lines.report(event),
            Display::Progress(progress) => progress.report(event),
        }
        if let Some((_, recorder)) = &mut self.timings {
            recorder.report(event);
        }
    }
}

impl LocalReporter for Sink {
    fn phase_restored(&mut self, phase: &str, seconds: f64) {
        match &mut self.display {
            Display::Lines(lines) => lines.report(&LogEvent::Message {
                level: Level::Talkative,
                text: &format!("kiln: phase `{phase}` restored from the cache ({seconds:.2} s)"),
            }),
            Display::Progress(progress) => progress.record_cached(phase),
        }
        if let Some((_, recorder)) = &mut self.timings {
            recorder.record_cached(phase, seconds);
        }
    }
}
