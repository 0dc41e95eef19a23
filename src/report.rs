//! The reporter the CLI builds for a local build: the chosen log format, or the live progress
//! display when a person watches stderr, plus the timings recorder when `--timings` is given.
//!
//! A local build runs its phases in kiln's own processes inside the sandbox, whose plain lines
//! reach the [`Sink`] as error messages (`kiln_builder::local::relay::relay_line`). Those lines already
//! say what they are: the sandbox's init and the phase runner print `error: …`, `caused by: …`
//! and `hint: …` ([`kiln_sandbox::SandboxError::render`]). The displays add `kiln: error: `
//! themselves, so [`own_severity`] takes a line's own `error: ` (or `warning: `) off first:
//! `kiln: error: cannot write …`, never `kiln: error: error: cannot write …`.

use std::io::IsTerminal;
use std::path::PathBuf;

use kiln_builder::local::LocalReporter;
use kiln_builder::report::progress::{color_from_env, ProgressOptions, ProgressReporter};
use kiln_builder::report::timings::{write_timings, TimingsRecorder};
use kiln_builder::report::{LogFormat, Reporter, WriterReporter};
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
                CliError::Setup(kiln_builder::run::build::SetupError::CreateDir {
                    path: path.clone(),
                    source,
                })
            })?;
            let shown: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
            self.report(&LogEvent::Message {
                level: Level::Info,
                text: &format!("timings written to {}", shown.join(" and ")),
            });
        }
        Ok(())
    }
}

/// The level and text a message is shown with: a relayed error line that starts with its own
/// `error: ` or `warning: ` (after an optional `kiln: `) loses it, and takes the warning's level;
/// a blank one (the line before a `hint:`) is not shown. `None`: show nothing.
fn own_severity(level: Level, text: &str) -> Option<(Level, &str)> {
    if level != Level::Error {
        return Some((level, text));
    }
    let text = text.strip_prefix("kiln: ").unwrap_or(text);
    if text.trim().is_empty() {
        return None;
    }
    if let Some(rest) = text.strip_prefix("error: ") {
        return Some((Level::Error, rest));
    }
    if let Some(rest) = text.strip_prefix("warning: ") {
        return Some((Level::Warn, rest));
    }
    Some((Level::Error, text))
}

impl Reporter for Sink {
    fn report(&mut self, event: &LogEvent<'_>) {
        let message;
        let event = match event {
            LogEvent::Message { level, text } => match own_severity(*level, text) {
                None => return,
                Some((level, text)) => {
                    message = LogEvent::Message { level, text };
                    &message
                }
            },
            other => other,
        };
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
                text: &format!("phase `{phase}` restored from the cache ({seconds:.2} s)"),
            }),
            Display::Progress(progress) => progress.record_cached(phase),
        }
        if let Some((_, recorder)) = &mut self.timings {
            recorder.record_cached(phase, seconds);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relayed_lines_keep_one_severity() {
        assert_eq!(
            own_severity(Level::Error, "error: cannot mount `/build`"),
            Some((Level::Error, "cannot mount `/build`"))
        );
        assert_eq!(
            own_severity(Level::Error, "kiln: error: boom"),
            Some((Level::Error, "boom"))
        );
        assert_eq!(
            own_severity(Level::Error, "warning: odd"),
            Some((Level::Warn, "odd"))
        );
        assert_eq!(
            own_severity(Level::Error, "caused by: Permission denied"),
            Some((Level::Error, "caused by: Permission denied"))
        );
        assert_eq!(own_severity(Level::Error, ""), None);
        // Only relayed lines (errors) are touched: a step's message is its own business.
        assert_eq!(
            own_severity(Level::Info, "error: in a step's words"),
            Some((Level::Info, "error: in a step's words"))
        );
    }
}
