//! Reading a `--log-format json` event stream back into events, so that kiln can run phases in
//! another process (its own sandbox) and still feed one reporter with typed events.
//!
//! [`relay_line`] takes one line of the other process's combined output: a JSON event is
//! re-reported as the same [`LogEvent`]; anything else (a sandbox set-up error, say) is reported
//! as an error message, so nothing is lost. `build-started` and `build-finished` are left to the
//! caller, which reports them once for the whole build.

use kiln_schema::events::{Level, LogEvent, Output};
use serde::Deserialize;

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

/// Re-reports one line of a JSON event stream (without its newline) to `reporter`.
///
/// Returns `false` for a line that is not an event (it was reported as output).
pub fn relay_line(line: &[u8], reporter: &mut dyn Reporter) -> bool {
    let Ok(event) = serde_json::from_slice::<WireEvent>(line) else {
        // Step output arrives as events; anything else is the sandbox's or kiln's own
        // diagnostic (`error: cannot mount …`), which must reach the user whatever the display.
        reporter.report(&LogEvent::Message {
            level: Level::Error,
            text: &String::from_utf8_lossy(line),
        });
        return false;
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
    true
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
                text: "kiln: debug",
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
            assert!(relay_line(line, &mut again));
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
        assert!(!relay_line(b"error: cannot mount /build", &mut json));
        assert!(!relay_line(b"{\"type\":\"nonsense\"}", &mut json));
        let text = String::from_utf8(relayed).unwrap();
        assert!(
            text.contains(r#""text":"error: cannot mount /build""#),
            "{text}"
        );
        assert!(text.contains(r#"nonsense"#), "{text}");
    }
}
