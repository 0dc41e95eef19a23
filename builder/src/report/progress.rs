//! Live progress for people at a terminal: a spinner for the running phase instead of a scroll
//! of child output.
//!
//! [`ProgressReporter`] is a [`Reporter`] drawn with `indicatif`. While a phase runs, two lines
//! show `[index/total] phase  step N: …` with the phase's elapsed time and the last line its
//! step printed. Each finished phase leaves one permanent line (`✓ configure  3.2 s`); a failed
//! phase also prints the last [`TAIL_LINES`] lines of its output so the reason stays on screen.
//! The text of every line comes from plain functions, tested without a terminal.
//!
//! Use it only when stderr is a terminal (`std::io::IsTerminal`): `indicatif` hides its output
//! otherwise, and the line-oriented [`crate::report::WriterReporter`] is the right choice there.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::time::Duration;

use indicatif::{
    MultiProgress, ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressState, ProgressStyle,
};
use kiln_schema::events::{Level, LogEvent, Output};

use crate::report::Reporter;

/// How many output lines of the running phase are kept, to show when it fails.
pub const TAIL_LINES: usize = 200;

/// Longest output line kept, in characters; the rest is cut with `…`.
const MAX_LINE_CHARS: usize = 4096;

/// Longest step description put in the status line (the terminal width cuts it further).
const MAX_DESCRIPTION_CHARS: usize = 300;

/// Phase names are padded to this many characters at most, so durations line up.
const MAX_NAME_WIDTH: usize = 24;

/// How a [`ProgressReporter`] draws.
#[derive(Debug)]
pub struct ProgressOptions {
    /// The most detailed kiln message printed; warnings and errors are printed whatever it is.
    pub max_level: Level,
    /// Whether to use ANSI colours; see [`color_from_env`].
    pub color: bool,
    /// Where to draw; `None` is stderr. Tests pass [`ProgressDrawTarget::hidden`] or a
    /// [`ProgressDrawTarget::term_like`].
    pub draw_target: Option<ProgressDrawTarget>,
}

/// Whether colour is allowed by the environment: per <https://no-color.org>, a `NO_COLOR`
/// variable that is present and not empty turns it off.
pub fn color_from_env() -> bool {
    color_allowed(std::env::var_os("NO_COLOR").as_deref())
}

/// [`color_from_env`] for a given `NO_COLOR` value.
fn color_allowed(no_color: Option<&OsStr>) -> bool {
    no_color.is_none_or(OsStr::is_empty)
}

/// The two lines drawn while a phase runs.
struct PhaseBars {
    /// `⠋ [2/5] build  step 1: make …  3.2 s`.
    status: ProgressBar,
    /// The last output line of the running step.
    output: ProgressBar,
}

/// Shows the running phase as a spinner and each finished phase as one line; a [`Reporter`].
pub struct ProgressReporter {
    multi: MultiProgress,
    bars: Option<PhaseBars>,
    max_level: Level,
    color: bool,
    name: String,
    /// Phase names from `BuildStarted`, in plan order.
    planned: Vec<String>,
    /// Width phase names are padded to.
    name_width: usize,
    /// Phase whose output `tail` holds.
    tail_phase: String,
    /// The last [`TAIL_LINES`] output lines of `tail_phase`, cleaned of control characters.
    tail: VecDeque<String>,
}

impl ProgressReporter {
    /// A reporter drawing as `options` say.
    pub fn new(options: ProgressOptions) -> Self {
        let target = options
            .draw_target
            .unwrap_or_else(ProgressDrawTarget::stderr);
        ProgressReporter {
            multi: MultiProgress::with_draw_target(target),
            bars: None,
            max_level: options.max_level,
            color: options.color,
            name: String::new(),
            planned: Vec::new(),
            name_width: 0,
            tail_phase: String::new(),
            tail: VecDeque::with_capacity(TAIL_LINES),
        }
    }

    /// Prints `↺ phase (cached)` for a phase whose state was restored from the cache instead of
    /// run.
    pub fn record_cached(&mut self, phase: &str) {
        self.name_width = self.name_width.max(name_width(phase));
        self.print(&cached_line(phase, self.name_width, self.color));
    }

    /// The output lines kept for the running (or last) phase, oldest first: at most
    /// [`TAIL_LINES`], without control characters. They are printed when the phase fails.
    pub fn output_tail(&self) -> impl ExactSizeIterator<Item = &str> {
        self.tail.iter().map(String::as_str)
    }

    /// What the two live lines say while a phase runs, without what `indicatif` adds as it
    /// draws them (the spinner, the elapsed time, the cut to the terminal's width): the status
    /// line (`[2/5] build  step 1: run make`) and the last output line; `None` between phases.
    /// The terminal redraws them on a timer, so tests read them here.
    pub fn live_lines(&self) -> Option<[String; 2]> {
        self.bars.as_ref().map(|bars| {
            [
                format!("{}  {}", bars.status.prefix(), bars.status.message()),
                bars.output.message(),
            ]
        })
    }

    /// Prints a permanent line above the bars.
    fn print(&self, line: &str) {
        // The bars are decoration; a terminal that stopped accepting writes is not worth a panic.
        let _ = self.multi.println(line);
    }

    /// `[index/total]` for `phase`, counted in the plan's list when it is there (in local mode
    /// each phase runs as its own one-phase build, so the event's numbers would say `1/1`).
    fn position(&self, phase: &str, index: usize, total: usize) -> (usize, usize) {
        match self.planned.iter().position(|name| name == phase) {
            Some(found) => (found + 1, self.planned.len()),
            None => (index, total),
        }
    }

    fn start_phase(&mut self, phase: &str, index: usize, total: usize) {
        self.clear_bars();
        let (index, total) = self.position(phase, index, total);
        let status = self.multi.add(
            ProgressBar::new_spinner()
                .with_style(status_style(self.color))
                .with_prefix(phase_prefix(index, total, phase))
                .with_finish(ProgressFinish::AndClear),
        );
        let output = self.multi.add(
            ProgressBar::new_spinner()
                .with_style(output_style(self.color))
                .with_finish(ProgressFinish::AndClear),
        );
        if !status.is_hidden() {
            status.enable_steady_tick(Duration::from_millis(100));
        }
        self.bars = Some(PhaseBars { status, output });
        self.tail_phase = phase.to_owned();
        self.tail.clear();
    }

    fn clear_bars(&mut self) {
        if let Some(bars) = self.bars.take() {
            for bar in [bars.status, bars.output] {
                bar.finish_and_clear();
                self.multi.remove(&bar);
            }
        }
    }

    fn output(&mut self, output: &Output<'_>) {
        let bytes = match output {
            Output::Text(text) => text.as_bytes(),
            Output::Bytes(bytes) => bytes,
        };
        let line = clean_line(bytes);
        if let Some(bars) = &self.bars {
            if !line.trim().is_empty() {
                bars.output.set_message(line.clone());
            }
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }
}

impl Reporter for ProgressReporter {
    fn report(&mut self, event: &LogEvent<'_>) {
        match event {
            LogEvent::BuildStarted { name, phases, .. } => {
                self.name = (*name).to_owned();
                for phase in phases {
                    if !self.planned.iter().any(|known| known == phase) {
                        self.planned.push((*phase).to_owned());
                    }
                    self.name_width = self.name_width.max(name_width(phase));
                }
                if Level::Info <= self.max_level {
                    self.print(&started_line(name, phases.len(), self.color));
                }
            }
            LogEvent::PhaseStarted {
                phase,
                index,
                total,
            } => self.start_phase(phase, *index, *total),
            LogEvent::PhaseSkipped { phase } => {
                self.print(&skipped_line(phase, self.name_width, self.color))
            }
            LogEvent::StepStarted {
                phase,
                step,
                kind,
                description,
            } => {
                if self.bars.is_none() || self.tail_phase != *phase {
                    self.start_phase(phase, 0, 0);
                }
                if let Some(bars) = &self.bars {
                    bars.status
                        .set_message(step_message(*step, kind, description));
                    bars.output.set_message("");
                }
            }
            LogEvent::Output(output) => self.output(output),
            LogEvent::Message { level, text } if *level <= self.max_level.max(Level::Warn) => {
                self.print(&message_line(*level, text, self.color));
            }
            // Below the verbosity: not shown.
            LogEvent::Message { .. } => {}
            LogEvent::PhaseFinished {
                phase,
                success,
                seconds,
            } => {
                self.clear_bars();
                self.name_width = self.name_width.max(name_width(phase));
                self.print(&finished_line(
                    phase,
                    self.name_width,
                    *success,
                    *seconds,
                    self.color,
                ));
                if !success && self.tail_phase == *phase && !self.tail.is_empty() {
                    self.print(&tail_header(phase, self.tail.len(), self.color));
                    for line in &self.tail {
                        self.print(line);
                    }
                }
            }
            LogEvent::BuildFinished {
                success, seconds, ..
            } => {
                self.clear_bars();
                let _ = self.multi.clear();
                self.print(&build_line(&self.name, *success, *seconds, self.color));
            }
        }
    }
}

impl Drop for ProgressReporter {
    fn drop(&mut self) {
        self.clear_bars();
    }
}

/// The status line: spinner, `[i/n] phase`, the step (cut to the terminal width), elapsed time.
fn status_style(color: bool) -> ProgressStyle {
    let template = if color {
        "\x1b[36m{spinner}\x1b[0m \x1b[1m{prefix}\x1b[0m  {wide_msg}  \x1b[2m{seconds}\x1b[0m"
    } else {
        "{spinner} {prefix}  {wide_msg}  {seconds}"
    };
    ProgressStyle::with_template(template)
        .expect("the status template is valid")
        .with_key(
            "seconds",
            |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                let _ = out.write_str(&format_seconds(state.elapsed().as_secs_f64()));
            },
        )
}

/// The output line, indented under the status line and cut to the terminal width.
fn output_style(color: bool) -> ProgressStyle {
    let template = if color {
        "    \x1b[2m{wide_msg}\x1b[0m"
    } else {
        "    {wide_msg}"
    };
    ProgressStyle::with_template(template).expect("the output template is valid")
}

/// `text` in the ANSI style `code` when `color`, as is otherwise.
fn paint(text: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// Characters a phase name takes, capped at [`MAX_NAME_WIDTH`].
fn name_width(phase: &str) -> usize {
    phase.chars().count().min(MAX_NAME_WIDTH)
}

/// `[2/5] build`.
fn phase_prefix(index: usize, total: usize, phase: &str) -> String {
    if total == 0 {
        phase.to_owned()
    } else {
        format!("[{index}/{total}] {phase}")
    }
}

/// `step 2: run make -j4`, on one line (control characters become spaces) and cut to [`MAX_DESCRIPTION_CHARS`].
fn step_message(step: usize, kind: &str, description: &str) -> String {
    let one_line: String = description
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let description = truncate(one_line.trim(), MAX_DESCRIPTION_CHARS);
    if description.is_empty() {
        format!("step {step}: {kind}")
    } else {
        format!("step {step}: {kind} {description}")
    }
}

/// `3.2 s`, or `2 min 05 s` from a minute on.
pub(crate) fn format_seconds(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else {
        let whole = seconds.round() as u64;
        format!("{} min {:02} s", whole / 60, whole % 60)
    }
}

/// `✓ configure  3.2 s` or `✗ check      0.4 s`.
fn finished_line(phase: &str, width: usize, success: bool, seconds: f64, color: bool) -> String {
    let duration = paint(&format_seconds(seconds), "2", color);
    if success {
        format!("{} {phase:<width$}  {duration}", paint("✓", "32", color))
    } else {
        let label = paint(&format!("✗ {phase:<width$}"), "1;31", color);
        format!("{label}  {duration}")
    }
}

/// `- fixup      skipped`.
fn skipped_line(phase: &str, width: usize, color: bool) -> String {
    paint(&format!("- {phase:<width$}  skipped"), "2", color)
}

/// `↺ build      (cached)`.
fn cached_line(phase: &str, width: usize, color: bool) -> String {
    format!(
        "{} {phase:<width$}  {}",
        paint("↺", "36", color),
        paint("(cached)", "2", color)
    )
}

/// `output of phase check (last 12 lines):`.
fn tail_header(phase: &str, lines: usize, color: bool) -> String {
    let noun = if lines == 1 { "line" } else { "lines" };
    paint(
        &format!("output of phase {phase} (last {lines} {noun}):"),
        "1",
        color,
    )
}

/// `kiln: warning: text`, like the human format.
fn message_line(level: Level, text: &str, color: bool) -> String {
    match level {
        Level::Error => format!("kiln: {}{text}", paint("error: ", "1;31", color)),
        Level::Warn => format!("kiln: {}{text}", paint("warning: ", "1;33", color)),
        _ => format!("kiln: {text}"),
    }
}

/// `building hello (6 phases)`.
fn started_line(name: &str, phases: usize, color: bool) -> String {
    let noun = if phases == 1 { "phase" } else { "phases" };
    format!("building {} ({phases} {noun})", paint(name, "1", color))
}

/// `build hello succeeded in 12.3 s` or `build hello failed after 0.4 s`.
fn build_line(name: &str, success: bool, seconds: f64, color: bool) -> String {
    let seconds = format_seconds(seconds);
    if success {
        paint(
            &format!("build {name} succeeded in {seconds}"),
            "1;32",
            color,
        )
    } else {
        paint(
            &format!("build {name} failed after {seconds}"),
            "1;31",
            color,
        )
    }
}

/// What a terminal would show of one output line, as plain text: after a `\r` only the text
/// that overwrote the line is kept, ANSI escape sequences are dropped, tabs become spaces and
/// other control characters vanish. Cut to [`MAX_LINE_CHARS`].
fn clean_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let shown = text
        .split('\r')
        .rev()
        .find(|part| !part.trim().is_empty())
        .unwrap_or("");
    let mut out = String::with_capacity(shown.len());
    let mut chars = shown.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                // CSI: parameters and intermediates, then one final byte in `@`..=`~`.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC (titles, hyperlinks): up to BEL or ST (`ESC \`).
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\x07' {
                            break;
                        }
                        if c == '\x1b' && chars.peek() == Some(&'\\') {
                            chars.next();
                            break;
                        }
                    }
                }
                // Two-character escapes (`ESC 7`, `ESC (B`'s first half, …).
                _ => {}
            },
            '\t' => out.push_str("    "),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    let end = out.trim_end().len();
    out.truncate(end);
    truncate(&out, MAX_LINE_CHARS).into_owned()
}

/// `text` cut to `max` characters, ending in `…` when cut.
fn truncate(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((at, _)) if text[at..].chars().nth(1).is_some() => {
            let mut short = text[..at].to_owned();
            let _ = write!(short, "…");
            Cow::Owned(short)
        }
        _ => Cow::Borrowed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_follows_no_color_org() {
        assert!(color_allowed(None));
        assert!(color_allowed(Some(OsStr::new(""))));
        assert!(!color_allowed(Some(OsStr::new("1"))));
        assert!(!color_allowed(Some(OsStr::new("false"))));
    }

    #[test]
    fn lines_read_well_without_color() {
        assert_eq!(phase_prefix(2, 5, "build"), "[2/5] build");
        assert_eq!(
            step_message(3, "run", "make\n-j4"),
            "step 3: run make -j4",
            "one line"
        );
        assert_eq!(step_message(1, "fixup", ""), "step 1: fixup");
        assert_eq!(
            finished_line("configure", 9, true, 3.24, false),
            "✓ configure  3.2 s"
        );
        assert_eq!(
            finished_line("check", 9, false, 0.4, false),
            "✗ check      0.4 s"
        );
        assert_eq!(skipped_line("fixup", 5, false), "- fixup  skipped");
        assert_eq!(cached_line("build", 5, false), "↺ build  (cached)");
        assert_eq!(
            tail_header("check", 12, false),
            "output of phase check (last 12 lines):"
        );
        assert_eq!(
            message_line(Level::Warn, "disk almost full", false),
            "kiln: warning: disk almost full"
        );
        assert_eq!(
            message_line(Level::Error, "boom", false),
            "kiln: error: boom"
        );
        assert_eq!(message_line(Level::Info, "note", false), "kiln: note");
        assert_eq!(
            build_line("hello", true, 12.34, false),
            "build hello succeeded in 12.3 s"
        );
        assert_eq!(
            build_line("hello", false, 0.4, false),
            "build hello failed after 0.4 s"
        );
        assert_eq!(format_seconds(125.2), "2 min 05 s");
    }

    #[test]
    fn color_only_when_asked() {
        let plain = finished_line("check", 5, false, 1.0, false);
        let colored = finished_line("check", 5, false, 1.0, true);
        assert!(!plain.contains('\x1b'));
        assert!(colored.contains("\x1b[1;31m"), "{colored:?}");
        assert!(finished_line("ok", 2, true, 1.0, true).contains("\x1b[32m✓"));
        assert!(skipped_line("x", 1, true).starts_with("\x1b[2m"));
    }

    #[test]
    fn clean_line_keeps_what_a_terminal_shows() {
        assert_eq!(clean_line(b"\x1b[1;31merror:\x1b[0m boom"), "error: boom");
        assert_eq!(clean_line(b" 10%\r 50%\r100%"), "100%");
        assert_eq!(clean_line(b"done\r"), "done", "CRLF line endings");
        assert_eq!(clean_line(b"a\tb\x07c\x00"), "a    bc");
        assert_eq!(
            clean_line(b"\x1b]8;;http://x\x1b\\link\x1b]8;;\x07!"),
            "link!"
        );
        assert_eq!(clean_line(&[b'a', 0xff, b'b']), "a\u{fffd}b");
        let long = "x".repeat(MAX_LINE_CHARS + 10);
        let cut = clean_line(long.as_bytes());
        assert_eq!(cut.chars().count(), MAX_LINE_CHARS);
        assert!(cut.ends_with('…'));
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "ab…");
        assert_eq!(truncate("ééé", 2), "é…");
    }

    fn hidden(max_level: Level) -> ProgressReporter {
        ProgressReporter::new(ProgressOptions {
            max_level,
            color: false,
            draw_target: Some(ProgressDrawTarget::hidden()),
        })
    }

    #[test]
    fn keeps_the_last_lines_of_the_running_phase() {
        let mut reporter = hidden(Level::Info);
        reporter.report(&LogEvent::BuildStarted {
            format_version: 1,
            name: "hello",
            phases: vec!["build", "check"],
        });
        reporter.report(&LogEvent::PhaseStarted {
            phase: "build",
            index: 1,
            total: 1,
        });
        reporter.report(&LogEvent::Output(Output::Text("from build")));
        reporter.report(&LogEvent::PhaseFinished {
            phase: "build",
            success: true,
            seconds: 1.0,
        });
        reporter.report(&LogEvent::PhaseStarted {
            phase: "check",
            index: 1,
            total: 1,
        });
        reporter.report(&LogEvent::StepStarted {
            phase: "check",
            step: 1,
            kind: "run",
            description: "make check",
        });
        for line in 0..TAIL_LINES + 50 {
            reporter.report(&LogEvent::Output(Output::Text(&format!("line {line}"))));
        }
        reporter.report(&LogEvent::Output(Output::Bytes(
            b"\x1b[31mFAIL\x1b[0m \xff",
        )));
        let tail: Vec<&str> = reporter.output_tail().collect();
        assert_eq!(tail.len(), TAIL_LINES);
        assert_eq!(tail[0], "line 51");
        assert_eq!(tail[TAIL_LINES - 1], "FAIL \u{fffd}");
        assert_eq!(reporter.position("check", 1, 1), (2, 2));
        reporter.report(&LogEvent::PhaseFinished {
            phase: "check",
            success: false,
            seconds: 0.4,
        });
        reporter.record_cached("install");
        reporter.report(&LogEvent::BuildFinished {
            success: false,
            exit_code: 1,
            seconds: 1.4,
        });
        assert_eq!(reporter.output_tail().len(), TAIL_LINES);
    }
}
