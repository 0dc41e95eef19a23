//! Reporters: how build events reach the user or Nix.
//!
//! The executor emits [`LogEvent`]s; a [`Reporter`] renders them. [`LogFormat::Nix`] speaks
//! Nix's `@nix` protocol (`setPhase` per phase, `msg` with verbosity levels for kiln's own
//! diagnostics, child output as plain lines); [`LogFormat::Human`] prints phase headers and
//! durations; [`LogFormat::Json`] writes one [`LogEvent`] per line.
//!
//! Under Nix every `@nix` line MUST be one complete, well-typed JSON object: Nix ≤ 2.25 aborts on
//! a malformed one. Child lines that happen to start with `@nix` are therefore escaped with a
//! leading space, so only kiln speaks the protocol.

pub mod progress;
pub mod timings;

use std::io::Write;

use kiln_schema::events::{Level, LogEvent, Output};

/// How events are rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Phase headers and durations for people.
    Human,
    /// Nix's `@nix` protocol.
    Nix,
    /// JSON Lines of [`LogEvent`].
    Json,
}

/// Receives every event of a build.
pub trait Reporter {
    /// Renders one event.
    fn report(&mut self, event: &LogEvent<'_>);
}

/// Writes events in a [`LogFormat`] to a byte sink (stderr in the binary).
pub struct WriterReporter<W: Write> {
    format: LogFormat,
    /// Human format: the most detailed level shown.
    max_level: Level,
    out: W,
}

impl<W: Write> WriterReporter<W> {
    /// A reporter writing `format` to `out`; `max_level` filters human-format messages (Nix
    /// filters `msg` itself by its own verbosity; JSON gets everything).
    pub fn new(format: LogFormat, max_level: Level, out: W) -> Self {
        WriterReporter {
            format,
            max_level,
            out,
        }
    }

    /// A `msg` line: `kiln: ` and the text, so kiln's lines stand out among the children's in
    /// Nix's log. Event texts never carry the prefix themselves; each text format adds it.
    fn nix_message(&mut self, level: Level, text: &str) {
        let msg = format!("kiln: {text}");
        let line = serde_json::json!({ "action": "msg", "level": level as u8, "msg": msg });
        let _ = writeln!(self.out, "@nix {line}");
    }

    fn human_message(&mut self, level: Level, text: &str) {
        if level <= self.max_level {
            let prefix = match level {
                Level::Error => "error: ",
                Level::Warn => "warning: ",
                _ => "",
            };
            let _ = writeln!(self.out, "kiln: {prefix}{text}");
        }
    }

    fn output_line(&mut self, output: &Output<'_>) {
        let bytes = match output {
            Output::Text(text) => text.as_bytes(),
            Output::Bytes(bytes) => bytes,
        };
        if self.format == LogFormat::Nix {
            // Nix starts a new line at `\r` too, so `x\r@nix …` would reach it as a protocol
            // line: a space after every `\r` (and before a leading `@nix`) keeps children out.
            if bytes.starts_with(b"@nix") {
                let _ = self.out.write_all(b" ");
            }
            for (index, part) in bytes.split(|&b| b == b'\r').enumerate() {
                if index > 0 {
                    let _ = self.out.write_all(b"\r ");
                }
                let _ = self.out.write_all(part);
            }
        } else {
            let _ = self.out.write_all(bytes);
        }
        let _ = self.out.write_all(b"\n");
    }
}

impl<W: Write> Reporter for WriterReporter<W> {
    fn report(&mut self, event: &LogEvent<'_>) {
        match self.format {
            LogFormat::Json => {
                if let Ok(line) = serde_json::to_string(event) {
                    let _ = writeln!(self.out, "{line}");
                }
            }
            LogFormat::Nix => match event {
                LogEvent::BuildStarted { name, phases, .. } => self.nix_message(
                    Level::Chatty,
                    &format!(
                        "version {}, building `{name}`: phases {}",
                        env!("CARGO_PKG_VERSION"),
                        phases.join(", ")
                    ),
                ),
                LogEvent::PhaseStarted { phase, .. } => {
                    let line = serde_json::json!({ "action": "setPhase", "phase": phase });
                    let _ = writeln!(self.out, "@nix {line}");
                }
                LogEvent::PhaseSkipped { phase } => {
                    self.nix_message(Level::Talkative, &format!("phase `{phase}` is disabled"))
                }
                LogEvent::StepStarted {
                    phase,
                    step,
                    kind,
                    description,
                } => self.nix_message(
                    Level::Chatty,
                    &format!("phase `{phase}` step {step}: {kind} {description}"),
                ),
                LogEvent::Output(output) => self.output_line(output),
                LogEvent::Message { level, text } => self.nix_message(*level, text),
                LogEvent::PhaseFinished {
                    phase,
                    success: true,
                    seconds,
                } => self.nix_message(
                    Level::Talkative,
                    &format!("phase `{phase}` finished in {seconds:.3} s"),
                ),
                LogEvent::PhaseFinished { .. } | LogEvent::BuildFinished { .. } => {}
            },
            LogFormat::Human => match event {
                LogEvent::BuildStarted { name, .. } => {
                    self.human_message(Level::Info, &format!("building `{name}`"))
                }
                LogEvent::PhaseStarted {
                    phase,
                    index,
                    total,
                } => {
                    let _ = writeln!(self.out, "==> phase {phase} ({index}/{total})");
                }
                LogEvent::PhaseSkipped { phase } => {
                    self.human_message(Level::Info, &format!("phase {phase} is disabled, skipped"))
                }
                LogEvent::StepStarted {
                    step,
                    kind,
                    description,
                    ..
                } => self.human_message(
                    Level::Talkative,
                    &format!("step {step}: {kind} {description}"),
                ),
                LogEvent::Output(output) => self.output_line(output),
                LogEvent::Message { level, text } => self.human_message(*level, text),
                LogEvent::PhaseFinished {
                    phase,
                    success,
                    seconds,
                } => {
                    let verb = if *success { "finished" } else { "failed" };
                    let _ = writeln!(self.out, "==> phase {phase} {verb} in {seconds:.3} s");
                }
                LogEvent::BuildFinished {
                    success: true,
                    seconds,
                    ..
                } => self.human_message(Level::Info, &format!("build finished in {seconds:.3} s")),
                // The failure itself is reported by the caller, with its causes and hint.
                LogEvent::BuildFinished { success: false, .. } => {}
            },
        }
        let _ = self.out.flush();
    }
}

/// Discards every event (for callers that only want the result).
pub struct NullReporter;

impl Reporter for NullReporter {
    fn report(&mut self, _: &LogEvent<'_>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(format: LogFormat, events: &[LogEvent<'_>]) -> String {
        let mut out = Vec::new();
        let mut reporter = WriterReporter::new(format, Level::Info, &mut out);
        for event in events {
            reporter.report(event);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn nix_format_speaks_the_protocol_and_escapes_children() {
        let text = render(
            LogFormat::Nix,
            &[
                LogEvent::PhaseStarted {
                    phase: "build \"x\"",
                    index: 1,
                    total: 1,
                },
                LogEvent::Output(Output::Text("@nix {\"action\":\"msg\"}")),
                LogEvent::Output(Output::Text("progress\r@nix {}")),
                LogEvent::Message {
                    level: Level::Debug,
                    text: "a \"quoted\"\nline",
                },
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            r#"@nix {"action":"setPhase","phase":"build \"x\""}"#
        );
        assert_eq!(lines[1], r#" @nix {"action":"msg"}"#);
        assert_eq!(lines[2], "progress\r @nix {}");
        assert_eq!(
            lines[3],
            r#"@nix {"action":"msg","level":6,"msg":"kiln: a \"quoted\"\nline"}"#
        );
    }

    #[test]
    fn human_format_filters_levels() {
        let text = render(
            LogFormat::Human,
            &[
                LogEvent::Message {
                    level: Level::Debug,
                    text: "hidden",
                },
                LogEvent::Message {
                    level: Level::Warn,
                    text: "shown",
                },
            ],
        );
        assert_eq!(text, "kiln: warning: shown\n");
    }

    #[test]
    fn json_format_is_one_event_per_line() {
        let text = render(
            LogFormat::Json,
            &[LogEvent::Output(Output::Bytes(&[0xff, b'a']))],
        );
        assert_eq!(
            text,
            "{\"type\":\"output\",\"data\":{\"bytes\":[255,97]}}\n"
        );
    }
}
