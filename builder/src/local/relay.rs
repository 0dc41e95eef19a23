//! Reading a `--log-format json` event stream back into events, so that kiln can run phases in
//! another process (its own sandbox) and still feed one reporter with typed events.
//!
//! [`relay_line`] takes one line of the other process's combined output: a JSON event is
//! re-reported as the same [`LogEvent`]; the phase runner's own [`RunnerReport`]s (its failure,
//! a response it could not write) are handed back to the caller, who reports them in its
//! final error; anything else (a sandbox set-up error, say) is reported as an error message, so
//! nothing is lost. `build-started` and `build-finished` are left to the caller, which reports
//! them once for the whole build.

use kiln_schema::events::{Level, LogEvent, Output};
use serde::Deserialize;

use crate::local::inner::RunnerReport;
use crate::report::Reporter;

/// An owned [`LogEvent`], as read from JSON.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "kebab-case")]
enum WireEvent {
    BuildStarted {},
    PhaseStarted {
        phase: String,
        index: usize,
        total: usize,
    },
    PhaseSkipped {
        phase: String,
    },
    StepStarted {
        phase: String,
        step: usize,
        kind: String,
        description: String,
    },
    Output(WireOutput),
    Message {
        level: Level,
        text: String,
    },
    PhaseFinished {
        phase: String,
        success: bool,
        seconds: f64,
    },
    BuildFinished {},
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "lowercase")]
enum WireOutput {
    Text(String),
    Bytes(Vec<u8>),
}

/// What a relayed line was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relayed {
    /// An event, re-reported.
    Event,
    /// The runner's report, for the caller (not re-reported).
    Runner(RunnerReport),
    /// Anything else: reported as an error message.
    Other,
}

/// Re-reports one line of a JSON event stream (without its newline) to `reporter`.
pub fn relay_line(line: &[u8], reporter: &mut dyn Reporter) -> Relayed {
    let Ok(event) = serde_json::from_slice::<WireEvent>(line) else {
        if let Ok(report) = serde_json::from_slice::<RunnerReport>(line) {
            return Relayed::Runner(report);
        }
        // Step output arrives as events; anything else is the sandbox's or kiln's own
        // diagnostic (`error: cannot mount …`), which must reach the user whatever the display.
        reporter.report(&LogEvent::Message {
            level: Level::Error,
            text: &String::from_utf8_lossy(line),
        });
        return Relayed::Other;
    };
    match &event {
        WireEvent::BuildStarted {} | WireEvent::BuildFinished {} => {}
        WireEvent::PhaseStarted {
            phase,
            index,
            total,
        } => reporter.report(&LogEvent::PhaseStarted {
            phase,
            index: *index,
            total: *total,
        }),
        WireEvent::PhaseSkipped { phase } => reporter.report(&LogEvent::PhaseSkipped { phase }),
        WireEvent::StepStarted {
            phase,
            step,
            kind,
            description,
        } => reporter.report(&LogEvent::StepStarted {
            phase,
            step: *step,
            kind,
            description,
        }),
        WireEvent::Output(WireOutput::Text(text)) => {
            reporter.report(&LogEvent::Output(Output::Text(text)))
        }
        WireEvent::Output(WireOutput::Bytes(bytes)) => {
            reporter.report(&LogEvent::Output(Output::Bytes(bytes)))
        }
        WireEvent::Message { level, text } => reporter.report(&LogEvent::Message {
            level: *level,
            text,
        }),
        WireEvent::PhaseFinished {
            phase,
            success,
            seconds,
        } => reporter.report(&LogEvent::PhaseFinished {
            phase,
            success: *success,
            seconds: *seconds,
        }),
    }
    Relayed::Event
}

/// A reporter that passes every event on except `build-started` and `build-finished`, for
/// running a build one phase at a time under one reporter.
pub struct PhaseEvents<'a>(pub &'a mut dyn Reporter);

impl Reporter for PhaseEvents<'_> {
    fn report(&mut self, event: &LogEvent<'_>) {
        if !matches!(
            event,
            LogEvent::BuildStarted { .. } | LogEvent::BuildFinished { .. }
        ) {
            self.0.report(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{LogFormat, WriterReporter};

    /// Every event kind survives a JSON round trip, except the build's start and end.
    #[test]
    fn json_events_round_trip() {
        let events = [
            LogEvent::BuildStarted {
                format_version: 1,
                name: "x",
                phases: vec!["a"],
            },
            LogEvent::PhaseStarted {
                phase: "a",
                index: 1,
                total: 2,
            },
            LogEvent::PhaseSkipped { phase: "b" },
            LogEvent::StepStarted {
                phase: "a",
                step: 1,
                kind: "run",
                description: "make \"x\"",
            },
            LogEvent::Output(Output::Text("hello\tworld")),
            LogEvent::Output(Output::Bytes(&[0xff, 0x00])),
            LogEvent::Message {
                level: Level::Debug,
                text: "debug",
            },
            LogEvent::PhaseFinished {
                phase: "a",
                success: true,
                seconds: 1.5,
            },
            LogEvent::BuildFinished {
                success: true,
                exit_code: 0,
                seconds: 2.0,
            },
        ];
        let mut written = Vec::new();
        let mut json = WriterReporter::new(LogFormat::Json, Level::Vomit, &mut written);
        for event in &events {
            json.report(event);
        }
        let mut relayed = Vec::new();
        let mut again = WriterReporter::new(LogFormat::Json, Level::Vomit, &mut relayed);
        for line in written.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            assert_eq!(relay_line(line, &mut again), Relayed::Event);
        }
        let expected: Vec<&[u8]> = written
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .filter(|l| !l.starts_with(b"{\"type\":\"build-"))
            .collect();
        let got: Vec<&[u8]> = relayed
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn other_lines_become_error_messages() {
        let mut relayed = Vec::new();
        let mut json = WriterReporter::new(LogFormat::Json, Level::Vomit, &mut relayed);
        assert_eq!(
            relay_line(b"error: cannot mount /build", &mut json),
            Relayed::Other
        );
        assert_eq!(
            relay_line(b"{\"type\":\"nonsense\"}", &mut json),
            Relayed::Other
        );
        let text = String::from_utf8(relayed).unwrap();
        assert!(
            text.contains(r#""text":"error: cannot mount /build""#),
            "{text}"
        );
        assert!(text.contains(r#"nonsense"#), "{text}");
    }

    #[test]
    fn runner_reports_go_to_the_caller_not_the_reporter() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;

        use crate::local::inner::{PhaseFailure, ResponseUnwritten};

        let reports = [
            RunnerReport::PhaseFailed(PhaseFailure {
                phase: "unpack".to_owned(),
                message: vec!["phase `unpack`, step 1 (unpack): step failed".to_owned()],
                hint: None,
                signal: None,
            }),
            RunnerReport::ResponseUnwritten(ResponseUnwritten {
                path: OsStr::from_bytes(b"/build/\xff/.kiln-phase-response.json").into(),
                errno: Some(28),
                message: "No space left on device (os error 28)".to_owned(),
            }),
        ];
        let mut relayed = Vec::new();
        let mut json = WriterReporter::new(LogFormat::Json, Level::Vomit, &mut relayed);
        for report in reports {
            let line = serde_json::to_vec(&report).unwrap();
            assert_eq!(relay_line(&line, &mut json), Relayed::Runner(report));
        }
        assert!(relayed.is_empty(), "{}", String::from_utf8_lossy(&relayed));
    }
}
