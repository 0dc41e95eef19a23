//! Snapshots of what the terminal reporters draw for one fixed build: the progress lines
//! ([`ProgressReporter`]) and the `--timings` chart ([`render_svg`], with the JSON it is drawn
//! from). The build is a made-up event sequence with fixed times, so the snapshots change only
//! when the rendering does: a cached phase, a skipped one, phases of several steps, messages at
//! each level, output with terminal escapes, a step description too long for a line, a phase
//! name longer than the names are padded to, a failing phase whose output is shown, and a phase
//! never run after it. One more test reads the terminal's redraws themselves.
//!
//! `INSTA_UPDATE=always cargo test -p kiln-builder --test render_snapshots` rewrites them
//! (under `tests/snapshots/`); read the diff before committing it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressDrawTarget, TermLike};
use kiln_builder::report::progress::{ProgressOptions, ProgressReporter};
use kiln_builder::report::timings::{render_svg, Timings, TimingsRecorder};
use kiln_builder::report::Reporter;
use kiln_schema::events::{Level, LogEvent, Output};

/// The check phase's name: longer than the 24 characters phase names are padded to.
const LONG_PHASE: &str = "check-with-the-integration-suite";

/// One moment of the build: an event, or a phase restored from the cache (which the reporters
/// hear of through `record_cached`, not through an event).
enum Moment<'a> {
    Event(LogEvent<'a>),
    Cached {
        phase: &'a str,
        restore_seconds: f64,
    },
}

fn step<'a>(phase: &'a str, step: usize, kind: &'a str, description: &'a str) -> LogEvent<'a> {
    LogEvent::StepStarted {
        phase,
        step,
        kind,
        description,
    }
}

fn started<'a>(phase: &'a str, index: usize) -> LogEvent<'a> {
    LogEvent::PhaseStarted {
        phase,
        index,
        total: 7,
    }
}

fn finished(phase: &str, success: bool, seconds: f64) -> LogEvent<'_> {
    LogEvent::PhaseFinished {
        phase,
        success,
        seconds,
    }
}

fn text(line: &str) -> LogEvent<'_> {
    LogEvent::Output(Output::Text(line))
}

fn message(level: Level, text: &str) -> LogEvent<'_> {
    LogEvent::Message { level, text }
}

/// The build, each moment at its time in seconds from the start: `hello` with seven phases;
/// unpack comes from the cache, patch is disabled, the check phase fails, install never runs.
fn build(long_description: &str) -> Vec<(f64, Moment<'_>)> {
    use Moment::{Cached, Event};
    vec![
        (
            0.0,
            Event(LogEvent::BuildStarted {
                format_version: 1,
                name: "hello-2.12",
                phases: vec![
                    "unpack",
                    "patch",
                    "configure",
                    "build",
                    LONG_PHASE,
                    "install",
                    "fixup",
                ],
            }),
        ),
        (
            0.5,
            Cached {
                phase: "unpack",
                restore_seconds: 0.5,
            },
        ),
        (0.5, Event(LogEvent::PhaseSkipped { phase: "patch" })),
        (0.5, Event(started("configure", 3))),
        (
            0.5,
            Event(step(
                "configure",
                1,
                "configure",
                "./configure --prefix=/nix/store/…-hello-2.12\n--disable-static",
            )),
        ),
        (1.0, Event(text("checking for gcc... gcc"))),
        (
            1.25,
            Event(message(
                Level::Chatty,
                "phase `configure` comes from stdenv configurePhase",
            )),
        ),
        (
            1.5,
            Event(message(Level::Info, "source root is `hello-2.12`")),
        ),
        (2.0, Event(text("config.status: creating Makefile"))),
        (2.5, Event(step("configure", 2, "substitute", "Makefile"))),
        (3.0, Event(finished("configure", true, 2.5))),
        (3.0, Event(started("build", 4))),
        (3.0, Event(step("build", 1, "make", long_description))),
        (3.25, Event(text(""))),
        (3.5, Event(text("gcc -c hello.c\tgcc -c main.c"))),
        // A progress meter: the terminal would show only what overwrote the line last.
        (4.0, Event(text("\x1b[1;32m 10%\r 55%\r100%\x1b[0m"))),
        (8.0, Event(finished("build", true, 5.0))),
        // Local mode: the step arrives without its phase's `PhaseStarted`.
        (8.0, Event(step(LONG_PHASE, 1, "make", "make check"))),
        (8.5, Event(text("PASS: greeting"))),
        (9.0, Event(message(Level::Warn, "disk almost full"))),
        (9.5, Event(text("FAIL: traditional"))),
        (
            9.5,
            Event(LogEvent::Output(Output::Bytes(b"bad byte \xff"))),
        ),
        (
            10.0,
            Event(message(Level::Error, "step 1 (make) exited with code 2")),
        ),
        (10.0, Event(finished(LONG_PHASE, false, 2.0))),
        (
            10.25,
            Event(LogEvent::BuildFinished {
                success: false,
                exit_code: 1,
                seconds: 10.25,
            }),
        ),
    ]
}

/// A step description longer than the status line keeps (300 characters).
fn long_description() -> String {
    let objects: Vec<String> = (1..=60).map(|n| format!("obj{n:02}.o")).collect();
    format!("make -j4 {}", objects.join(" "))
}

/// A terminal that records each non-blank line `indicatif` writes to it (the permanent lines
/// and every redraw of the bars alike), without the spaces it pads them with.
#[derive(Debug, Clone, Default)]
struct Screen(Arc<Mutex<Vec<String>>>);

impl TermLike for Screen {
    fn width(&self) -> u16 {
        100
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.write_str(s)
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        if !s.trim().is_empty() {
            self.0.lock().unwrap().push(s.to_owned());
        }
        Ok(())
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Screen {
    /// The permanent lines written since line `from` of the screen. The bars are redrawn on a
    /// timer, so they are left out (they start with the spinner or are indented, which is why
    /// no output line of [`build`] starts with a space); the test reads their text from
    /// [`ProgressReporter::live_lines`] instead.
    fn permanent_since(&self, from: &mut usize) -> Vec<String> {
        let written = self.0.lock().unwrap();
        let new = written[*from..]
            .iter()
            .filter(|line| {
                let first = visible(line).next().unwrap_or(' ');
                !first.is_whitespace() && !('\u{2800}'..='\u{28ff}').contains(&first)
            })
            .map(|line| line.trim_end().to_owned())
            .collect();
        *from = written.len();
        new
    }
}

/// The characters of `line` a terminal shows: without the `ESC [ … m` colour sequences.
fn visible(line: &str) -> impl Iterator<Item = char> + '_ {
    let mut in_escape = false;
    line.chars().filter(move |&c| {
        let shown = !in_escape && c != '\x1b';
        in_escape = (in_escape || c == '\x1b') && c != 'm';
        shown
    })
}

/// What the progress reporter shows for [`build`]: after each moment, the permanent lines it
/// printed (`|`) and the two live lines (`~`).
fn progress_transcript(color: bool) -> String {
    let long = long_description();
    let screen = Screen::default();
    let mut reporter = ProgressReporter::new(ProgressOptions {
        max_level: Level::Info,
        color,
        draw_target: Some(ProgressDrawTarget::term_like(Box::new(screen.clone()))),
    });
    let mut transcript = String::new();
    let mut seen = 0;
    for (_, moment) in build(&long) {
        match &moment {
            Moment::Event(event) => {
                let json = serde_json::to_string(event).expect("events serialize");
                transcript.push_str(&format!("> {json}\n"));
                reporter.report(event);
            }
            Moment::Cached { phase, .. } => {
                transcript.push_str(&format!("> (restored from the cache) {phase}\n"));
                reporter.record_cached(phase);
            }
        }
        for line in screen.permanent_since(&mut seen) {
            transcript.push_str(&format!("| {line}\n"));
        }
        for line in reporter.live_lines().into_iter().flatten() {
            transcript.push_str(format!("~ {line}").trim_end());
            transcript.push('\n');
        }
    }
    drop(reporter);
    for line in screen.permanent_since(&mut seen) {
        transcript.push_str(&format!("| {line}\n"));
    }
    if color {
        transcript = transcript.replace('\x1b', "␛");
    }
    transcript
}

#[test]
fn progress_lines() {
    insta::assert_snapshot!("progress_lines", progress_transcript(false));
}

#[test]
fn progress_lines_in_color() {
    // Only the permanent lines: the live ones are the same text, drawn by indicatif's styles.
    let transcript = progress_transcript(true);
    let permanent: Vec<&str> = transcript
        .lines()
        .filter(|line| line.starts_with('|'))
        .collect();
    insta::assert_snapshot!("progress_lines_in_color", permanent.join("\n"));
}

/// What a terminal receives, bars included: the permanent lines in order among the redraws, and
/// the bars showing the running step and its last output line while it runs.
#[test]
fn a_failed_phase_prints_its_output_and_filters_messages() {
    let screen = Screen::default();
    let mut reporter = ProgressReporter::new(ProgressOptions {
        max_level: Level::Info,
        color: false,
        draw_target: Some(ProgressDrawTarget::term_like(Box::new(screen.clone()))),
    });
    let events = [
        LogEvent::BuildStarted {
            format_version: 1,
            name: "hello",
            phases: vec!["configure", "check", "fixup"],
        },
        LogEvent::PhaseStarted {
            phase: "configure",
            index: 1,
            total: 3,
        },
        LogEvent::Output(Output::Text("configure chatter")),
        LogEvent::PhaseFinished {
            phase: "configure",
            success: true,
            seconds: 3.24,
        },
        LogEvent::PhaseStarted {
            phase: "check",
            index: 2,
            total: 3,
        },
        LogEvent::StepStarted {
            phase: "check",
            step: 1,
            kind: "run",
            description: "make check",
        },
        LogEvent::Message {
            level: Level::Debug,
            text: "hidden detail",
        },
        LogEvent::Message {
            level: Level::Warn,
            text: "slow disk",
        },
        LogEvent::Output(Output::Text("test 1 ok")),
        LogEvent::Output(Output::Text("test 2 FAILED")),
        LogEvent::PhaseFinished {
            phase: "check",
            success: false,
            seconds: 0.4,
        },
        LogEvent::PhaseSkipped { phase: "fixup" },
        LogEvent::BuildFinished {
            success: false,
            exit_code: 1,
            seconds: 3.7,
        },
    ];
    for event in &events {
        reporter.report(event);
    }
    drop(reporter);
    let lines = screen.0.lock().unwrap().clone();
    let position = |line: &str| {
        lines
            .iter()
            .position(|written| written == line)
            .unwrap_or_else(|| panic!("{line:?} not in {lines:#?}"))
    };
    let permanent = [
        "building hello (3 phases)",
        "✓ configure  3.2 s",
        "kiln: warning: slow disk",
        "✗ check      0.4 s",
        "output of phase check (last 2 lines):",
        "test 1 ok",
        "test 2 FAILED",
        "- fixup      skipped",
        "build hello failed after 3.7 s",
    ];
    let order: Vec<usize> = permanent.iter().map(|line| position(line)).collect();
    assert!(order.is_sorted(), "{order:?} in {lines:#?}");
    // While it ran, the bar showed the phase, its step and the last output line.
    assert!(lines
        .iter()
        .any(|line| line.contains("[2/3] check  step 1: run make check")));
    assert!(lines.iter().any(|line| line == "    test 2 FAILED"));
    assert!(!lines.iter().any(|line| line.contains("hidden detail")));
    // Output of a phase that succeeded only ever showed in the bar.
    assert!(!lines.iter().any(|line| line == "configure chatter"));
}

/// The timings of [`build`] taken at `now` seconds, each moment up to then recorded at its fixed
/// time.
fn timings_at(now: f64) -> Timings {
    let long = long_description();
    let start = Instant::now();
    let at = |seconds: f64| start + Duration::from_secs_f64(seconds);
    let mut recorder = TimingsRecorder::new();
    for (seconds, moment) in build(&long) {
        if seconds > now {
            break;
        }
        match &moment {
            Moment::Event(event) => recorder.report_at(event, at(seconds)),
            Moment::Cached {
                phase,
                restore_seconds,
            } => recorder.record_cached_at(phase, *restore_seconds, at(seconds)),
        }
    }
    recorder.timings_at(at(now))
}

#[test]
fn timings_svg() {
    // Long after the end: a finished build's timings do not depend on when they are taken.
    insta::assert_snapshot!("timings_svg", render_svg(&timings_at(3600.0)));
}

#[test]
fn timings_svg_while_building() {
    // Halfway through the build phase, which shows as running.
    insta::assert_snapshot!("timings_svg_while_building", render_svg(&timings_at(5.5)));
}

#[test]
fn timings_json() {
    let json = serde_json::to_string_pretty(&timings_at(3600.0)).expect("timings serialize");
    insta::assert_snapshot!("timings_json", json);
}
