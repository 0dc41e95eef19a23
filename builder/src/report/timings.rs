//! Build timings: when each phase and step ran, as JSON and as a self-contained HTML chart.
//!
//! [`TimingsRecorder`] is a [`Reporter`] that notes the moment each event arrives; phases restored
//! from the cache are announced with [`TimingsRecorder::record_cached`]. [`TimingsRecorder::timings`]
//! gives a [`Timings`], which [`write_timings`] saves as JSON plus an HTML page with a Gantt chart
//! ([`render_html`], [`render_svg`]) in the spirit of `cargo build --timings`.
//!
//! # Format
//!
//! The JSON file is one object:
//!
//! ```json
//! {
//!   "format_version": 1,
//!   "name": "hello",
//!   "total_seconds": 12.5,
//!   "phases": [
//!     {
//!       "name": "build",
//!       "status": "succeeded",
//!       "start_seconds": 0.25,
//!       "seconds": 11.0,
//!       "steps": [
//!         { "index": 1, "kind": "make", "description": "make -j N", "start_seconds": 0.25, "seconds": 11.0 }
//!       ]
//!     }
//!   ]
//! }
//! ```
//!
//! - `format_version` is [`TIMINGS_FORMAT_VERSION`]. Fields may be added within a version, so
//!   readers MUST ignore unknown keys.
//! - Times are wall-clock seconds measured by kiln when it received each event. `start_seconds`
//!   is an offset from the build start (the earliest recorded moment, so never negative);
//!   `total_seconds` runs from the build start to the end of the build.
//! - `phases` are in plan order; phases that are not in the plan's list come last, in the order
//!   they ran.
//! - `status` is `succeeded`, `failed`, `skipped` (disabled in the plan), `cached` (its state was
//!   restored from the cache instead of run; `seconds` is the restore time), `not-run` (in the
//!   plan but never started, e.g. after a failure) or `running` (only in a snapshot taken before
//!   the phase finished). `skipped` and `not-run` phases have no steps and `seconds` 0.
//! - A step ends when the next step of its phase starts or when its phase ends; `index` is its
//!   1-based position in the phase and `description` is one line (e.g. the argv).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kiln_schema::events::LogEvent;
use serde::Serialize;

use crate::report::Reporter;

/// Version of the timings JSON format.
pub const TIMINGS_FORMAT_VERSION: u32 = 1;

/// Everything [`TimingsRecorder`] measured about one build; see the module docs for the format.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timings {
    /// [`TIMINGS_FORMAT_VERSION`].
    pub format_version: u32,
    /// The plan name.
    pub name: String,
    /// Wall time from the build start to its end, in seconds.
    pub total_seconds: f64,
    /// The phases in plan order.
    pub phases: Vec<PhaseTimings>,
}

/// One phase of [`Timings`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseTimings {
    /// Phase name.
    pub name: String,
    /// What happened to the phase.
    pub status: TimingStatus,
    /// When the phase started, in seconds after the build start.
    pub start_seconds: f64,
    /// How long it ran (or, when cached, how long restoring took).
    pub seconds: f64,
    /// Its steps, in the order they started.
    pub steps: Vec<StepTimings>,
}

/// One step of a [`PhaseTimings`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepTimings {
    /// 1-based position of the step in its phase.
    pub index: usize,
    /// The step kind (`run`, `make`, …).
    pub kind: String,
    /// A one-line description, e.g. the argv.
    pub description: String,
    /// When the step started, in seconds after the build start.
    pub start_seconds: f64,
    /// How long it ran.
    pub seconds: f64,
}

/// What happened to a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum TimingStatus {
    /// Every step succeeded.
    Succeeded,
    /// A step failed, or the build stopped during the phase.
    Failed,
    /// Disabled in the plan.
    Skipped,
    /// Its state was restored from the cache instead of running it.
    Cached,
    /// In the plan but never started.
    NotRun,
    /// Started but not finished when the timings were taken.
    Running,
}

impl TimingStatus {
    /// The name used in JSON and in the chart.
    pub fn as_str(self) -> &'static str {
        match self {
            TimingStatus::Succeeded => "succeeded",
            TimingStatus::Failed => "failed",
            TimingStatus::Skipped => "skipped",
            TimingStatus::Cached => "cached",
            TimingStatus::NotRun => "not-run",
            TimingStatus::Running => "running",
        }
    }

    /// Fill colour of the phase bar.
    fn color(self) -> &'static str {
        match self {
            TimingStatus::Succeeded => "#3f9b4f",
            TimingStatus::Failed => "#d93f3f",
            TimingStatus::Skipped => "#b8b8b8",
            TimingStatus::Cached => "#4a8fd8",
            TimingStatus::NotRun => "#e4e4e4",
            TimingStatus::Running => "#e0a526",
        }
    }

    /// Text colour that reads on [`color`](Self::color).
    fn text_color(self) -> &'static str {
        match self {
            TimingStatus::Skipped | TimingStatus::NotRun => "#333333",
            _ => "#ffffff",
        }
    }
}

/// A phase as recorded, with raw instants.
#[derive(Debug)]
struct PhaseRecord {
    name: String,
    /// `None` while running; `Running` is never stored.
    status: Option<TimingStatus>,
    start: Instant,
    end: Option<Instant>,
    steps: Vec<StepRecord>,
}

#[derive(Debug)]
struct StepRecord {
    index: usize,
    kind: String,
    description: String,
    start: Instant,
    end: Option<Instant>,
}

/// Records when each phase and step started and ended; a [`Reporter`].
///
/// Feed it every event of one build (one `BuildStarted` first and one `BuildFinished` last),
/// call [`record_cached`](Self::record_cached) for phases restored from the cache, then take
/// [`timings`](Self::timings).
#[derive(Debug, Default)]
pub struct TimingsRecorder {
    name: String,
    /// Phase names from `BuildStarted`, in plan order.
    planned: Vec<String>,
    build_start: Option<Instant>,
    build_end: Option<Instant>,
    phases: Vec<PhaseRecord>,
}

impl TimingsRecorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `phase`'s state was restored from the cache instead of run. Call it right
    /// after the restore: the phase is drawn ending now and starting `restore_seconds` earlier.
    pub fn record_cached(&mut self, phase: &str, restore_seconds: f64) {
        self.record_cached_at(phase, restore_seconds, Instant::now());
    }

    /// [`record_cached`](Self::record_cached) with the moment given instead of read from the
    /// clock (tests use fixed moments).
    pub fn record_cached_at(&mut self, phase: &str, restore_seconds: f64, now: Instant) {
        let restore = Duration::try_from_secs_f64(restore_seconds).unwrap_or(Duration::ZERO);
        let start = now.checked_sub(restore).unwrap_or(now);
        self.phases.push(PhaseRecord {
            name: phase.to_owned(),
            status: Some(TimingStatus::Cached),
            start,
            end: Some(now),
            steps: Vec::new(),
        });
    }

    /// The phase record named `phase` that is still running, if any.
    fn running(&mut self, phase: &str) -> Option<&mut PhaseRecord> {
        self.phases
            .iter_mut()
            .rev()
            .find(|record| record.name == phase && record.end.is_none())
    }

    fn start_phase(&mut self, phase: &str, now: Instant) {
        self.build_start.get_or_insert(now);
        self.phases.push(PhaseRecord {
            name: phase.to_owned(),
            status: None,
            start: now,
            end: None,
            steps: Vec::new(),
        });
    }

    /// [`Reporter::report`] with the moment `event` arrived given instead of read from the
    /// clock (tests use fixed moments).
    pub fn report_at(&mut self, event: &LogEvent<'_>, now: Instant) {
        match event {
            LogEvent::BuildStarted { name, phases, .. } => {
                self.build_start.get_or_insert(now);
                if self.name.is_empty() {
                    self.name = (*name).to_owned();
                }
                for phase in phases {
                    if !self.planned.iter().any(|known| known == phase) {
                        self.planned.push((*phase).to_owned());
                    }
                }
            }
            LogEvent::PhaseStarted { phase, .. } => self.start_phase(phase, now),
            LogEvent::PhaseSkipped { phase } => {
                self.build_start.get_or_insert(now);
                self.phases.push(PhaseRecord {
                    name: (*phase).to_owned(),
                    status: Some(TimingStatus::Skipped),
                    start: now,
                    end: Some(now),
                    steps: Vec::new(),
                });
            }
            LogEvent::StepStarted {
                phase,
                step,
                kind,
                description,
                ..
            } => {
                if self.running(phase).is_none() {
                    self.start_phase(phase, now);
                }
                if let Some(record) = self.running(phase) {
                    if let Some(previous) = record.steps.last_mut() {
                        previous.end.get_or_insert(now);
                    }
                    record.steps.push(StepRecord {
                        index: *step,
                        kind: (*kind).to_owned(),
                        description: one_line(description),
                        start: now,
                        end: None,
                    });
                }
            }
            LogEvent::PhaseFinished { phase, success, .. } => {
                if let Some(record) = self.running(phase) {
                    finish(record, *success, now);
                }
            }
            // The chart shows phases and steps, not their output or messages.
            LogEvent::Output(_) | LogEvent::Message { .. } => {}
            LogEvent::BuildFinished { .. } => {
                self.build_end = Some(now);
                // A phase that never reported its end did not succeed.
                for record in self.phases.iter_mut().filter(|r| r.end.is_none()) {
                    finish(record, false, now);
                }
            }
        }
    }

    /// The timings so far. Before `BuildFinished` the build and any running phase end now.
    pub fn timings(&self) -> Timings {
        self.timings_at(Instant::now())
    }

    /// [`timings`](Self::timings) with "now" given instead of read from the clock.
    pub fn timings_at(&self, now: Instant) -> Timings {
        let end = self.build_end.unwrap_or(now);
        let origin = self
            .phases
            .iter()
            .map(|record| record.start)
            .chain(self.build_start)
            .min()
            .unwrap_or(end);
        let offset = |instant: Instant| instant.saturating_duration_since(origin).as_secs_f64();
        let span =
            |start: Instant, stop: Instant| stop.saturating_duration_since(start).as_secs_f64();

        let convert = |record: &PhaseRecord| {
            let phase_end = record.end.unwrap_or(end);
            PhaseTimings {
                name: record.name.clone(),
                status: record.status.unwrap_or(TimingStatus::Running),
                start_seconds: offset(record.start),
                seconds: span(record.start, phase_end),
                steps: record
                    .steps
                    .iter()
                    .map(|step| {
                        let step_end = step.end.unwrap_or(phase_end);
                        StepTimings {
                            index: step.index,
                            kind: step.kind.clone(),
                            description: step.description.clone(),
                            start_seconds: offset(step.start),
                            seconds: span(step.start, step_end),
                        }
                    })
                    .collect(),
            }
        };

        let mut phases = Vec::with_capacity(self.planned.len().max(self.phases.len()));
        for name in &self.planned {
            let mut seen = false;
            for record in self.phases.iter().filter(|record| &record.name == name) {
                seen = true;
                phases.push(convert(record));
            }
            if !seen {
                phases.push(PhaseTimings {
                    name: name.clone(),
                    status: TimingStatus::NotRun,
                    start_seconds: offset(end),
                    seconds: 0.0,
                    steps: Vec::new(),
                });
            }
        }
        for record in &self.phases {
            if !self.planned.contains(&record.name) {
                phases.push(convert(record));
            }
        }
        let mut total_seconds = span(origin, end);
        for phase in &phases {
            total_seconds = total_seconds.max(phase.start_seconds + phase.seconds);
        }
        Timings {
            format_version: TIMINGS_FORMAT_VERSION,
            name: self.name.clone(),
            total_seconds,
            phases,
        }
    }
}

fn finish(record: &mut PhaseRecord, success: bool, now: Instant) {
    record.end = Some(now);
    record.status = Some(if success {
        TimingStatus::Succeeded
    } else {
        TimingStatus::Failed
    });
    if let Some(step) = record.steps.last_mut() {
        step.end.get_or_insert(now);
    }
}

impl Reporter for TimingsRecorder {
    fn report(&mut self, event: &LogEvent<'_>) {
        self.report_at(event, Instant::now());
    }
}

/// `text` with line breaks and other control characters turned into spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `text` escaped for XML and HTML text and attribute values. Characters XML 1.0 forbids
/// (most C0 controls) become U+FFFD so the standalone SVG stays well-formed.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// `text` cut to `max` characters, with `…` when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// Seconds for labels: `0.041 s` below a second, else as the progress lines write them
/// (`3.2 s`, `2 min 05 s`).
fn format_seconds(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{seconds:.3} s")
    } else {
        crate::report::progress::format_seconds(seconds)
    }
}

/// A round tick interval (1, 2 or 5 × 10ⁿ seconds) giving about eight ticks over `total`.
fn tick_step(total: f64) -> f64 {
    let raw = total / 8.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|factor| factor * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * magnitude)
}

/// A tick label with as many decimals as the interval needs.
fn tick_label(value: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{value:.decimals$} s")
}

const CHART_WIDTH: f64 = 1000.0;
const LABEL_WIDTH: f64 = 170.0;
const RIGHT_MARGIN: f64 = 110.0;
const AXIS_HEIGHT: f64 = 28.0;
const ROW_HEIGHT: f64 = 30.0;
const BAR_HEIGHT: f64 = 16.0;
const STEP_HEIGHT: f64 = 6.0;
const LEGEND_HEIGHT: f64 = 30.0;
const STEP_COLORS: [&str; 2] = ["#555555", "#999999"];

/// The Gantt chart alone: one row per phase on a time axis, steps as thin segments.
pub fn render_svg(timings: &Timings) -> String {
    let plot = CHART_WIDTH - LABEL_WIDTH - RIGHT_MARGIN;
    let total = if timings.total_seconds > 0.0 {
        timings.total_seconds
    } else {
        1.0
    };
    let x_of = |seconds: f64| LABEL_WIDTH + (seconds / total).clamp(0.0, 1.0) * plot;
    let rows_height = ROW_HEIGHT * timings.phases.len().max(1) as f64;
    let height = AXIS_HEIGHT + rows_height + LEGEND_HEIGHT;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{CHART_WIDTH}" height="{height}" viewBox="0 0 {CHART_WIDTH} {height}" font-family="sans-serif" font-size="12" role="img" aria-label="phase timings of {}">"#,
        escape(&timings.name)
    );
    let _ = writeln!(
        svg,
        r#"<title>{} — {}</title>"#,
        escape(&timings.name),
        format_seconds(timings.total_seconds)
    );
    let _ = writeln!(
        svg,
        r##"<rect x="0" y="0" width="{CHART_WIDTH}" height="{height}" fill="#ffffff"/>"##
    );

    // Time axis: grid lines through every row, labels on top.
    let step = tick_step(total);
    let _ = writeln!(svg, r##"<g class="axis" fill="#555555" stroke="none">"##);
    let mut tick = 0.0;
    let mut count = 0;
    while tick <= total * (1.0 + 1e-9) && count <= 100 {
        let x = x_of(tick);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="#e2e2e2"/><text x="{x:.1}" y="{label_y:.1}" text-anchor="middle">{label}</text>"##,
            top = AXIS_HEIGHT - 6.0,
            bottom = AXIS_HEIGHT + rows_height,
            label_y = AXIS_HEIGHT - 10.0,
            label = tick_label(tick, step),
        );
        count += 1;
        tick = step * count as f64;
    }
    let _ = writeln!(svg, "</g>");

    for (row, phase) in timings.phases.iter().enumerate() {
        let top = AXIS_HEIGHT + ROW_HEIGHT * row as f64;
        let bar_y = top + 3.0;
        let middle = bar_y + BAR_HEIGHT / 2.0;
        let name = escape(&phase.name);
        let status = phase.status.as_str();
        let _ = writeln!(svg, r#"<g class="phase {status}">"#);
        if row % 2 == 1 {
            let _ = writeln!(
                svg,
                r##"<rect x="0" y="{top:.1}" width="{CHART_WIDTH}" height="{ROW_HEIGHT}" fill="#000000" fill-opacity="0.03"/>"##
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{x:.1}" y="{middle:.1}" dy="0.35em" text-anchor="end">{label}<title>{name}</title></text>"#,
            x = LABEL_WIDTH - 8.0,
            label = escape(&shorten(&phase.name, 24)),
        );
        let (bar_label, tooltip) = match phase.status {
            TimingStatus::NotRun => ("not run".to_owned(), format!("{name}: not run")),
            TimingStatus::Skipped => ("skipped".to_owned(), format!("{name}: skipped")),
            TimingStatus::Cached => (
                format!("cached, {}", format_seconds(phase.seconds)),
                format!(
                    "{name}: restored from the cache in {}",
                    format_seconds(phase.seconds)
                ),
            ),
            _ => (
                format_seconds(phase.seconds),
                format!("{name}: {status}, {}", format_seconds(phase.seconds)),
            ),
        };
        let x = x_of(phase.start_seconds);
        let width = if phase.status == TimingStatus::NotRun {
            0.0
        } else {
            (x_of(phase.start_seconds + phase.seconds) - x).max(2.0)
        };
        if width > 0.0 {
            let _ = writeln!(
                svg,
                r#"<rect x="{x:.1}" y="{bar_y:.1}" width="{width:.1}" height="{BAR_HEIGHT}" rx="2" fill="{color}"><title>{tooltip}</title></rect>"#,
                color = phase.status.color(),
            );
        }
        for (position, step) in phase.steps.iter().enumerate() {
            let step_x = x_of(step.start_seconds);
            let step_width = (x_of(step.start_seconds + step.seconds) - step_x).max(1.0);
            let _ = writeln!(
                svg,
                r#"<rect x="{step_x:.1}" y="{y:.1}" width="{step_width:.1}" height="{STEP_HEIGHT}" fill="{color}"><title>{name} step {index}: {kind} {description} — {seconds}</title></rect>"#,
                y = bar_y + BAR_HEIGHT + 2.0,
                color = STEP_COLORS[position % 2],
                index = step.index,
                kind = escape(&step.kind),
                description = escape(&shorten(&step.description, 300)),
                seconds = format_seconds(step.seconds),
            );
        }
        let _ = writeln!(
            svg,
            r##"<text x="{x:.1}" y="{middle:.1}" dy="0.35em" fill="#333333">{bar_label}<title>{tooltip}</title></text>"##,
            x = x + width + 4.0,
        );
        let _ = writeln!(svg, "</g>");
    }

    // Legend.
    let legend_y = AXIS_HEIGHT + rows_height + LEGEND_HEIGHT / 2.0;
    let mut x = LABEL_WIDTH;
    for status in [
        TimingStatus::Succeeded,
        TimingStatus::Failed,
        TimingStatus::Cached,
        TimingStatus::Skipped,
        TimingStatus::NotRun,
        TimingStatus::Running,
    ] {
        if !timings.phases.iter().any(|phase| phase.status == status) {
            continue;
        }
        let _ = writeln!(
            svg,
            r##"<rect x="{x:.1}" y="{y:.1}" width="12" height="12" rx="2" fill="{color}" stroke="#999999" stroke-width="0.5"/><text x="{text_x:.1}" y="{legend_y:.1}" dy="0.35em">{label}</text>"##,
            y = legend_y - 6.0,
            color = status.color(),
            text_x = x + 16.0,
            label = status.as_str(),
        );
        x += 16.0 + 8.0 * status.as_str().len() as f64 + 16.0;
    }
    svg.push_str("</svg>\n");
    svg
}

/// One HTML page with a title, the [`render_svg`] chart and a table of phases and steps. It
/// needs no script, font or stylesheet from elsewhere.
pub fn render_html(timings: &Timings) -> String {
    let name = escape(&timings.name);
    let total = timings.total_seconds;
    let percent = |seconds: f64| {
        if total > 0.0 {
            seconds / total * 100.0
        } else {
            0.0
        }
    };
    let mut counts: Vec<(TimingStatus, usize)> = Vec::new();
    for phase in &timings.phases {
        match counts
            .iter_mut()
            .find(|(status, _)| *status == phase.status)
        {
            Some((_, count)) => *count += 1,
            None => counts.push((phase.status, 1)),
        }
    }
    let summary = counts
        .iter()
        .map(|(status, count)| format!("{count} {}", status.as_str()))
        .collect::<Vec<_>>()
        .join(", ");

    let mut html = String::new();
    let _ = write!(
        html,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kiln timings: {name}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
h1 {{ font-size: 1.4em; }}
svg {{ max-width: 100%; height: auto; border: 1px solid #ddd; }}
table {{ border-collapse: collapse; margin-top: 1.5em; }}
th, td {{ padding: 0.25em 0.75em; text-align: left; border-bottom: 1px solid #eee; vertical-align: top; }}
th {{ background: #f4f4f4; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }}
tr.step td {{ color: #555; font-size: 0.9em; }}
tr.step td.what {{ padding-left: 2em; }}
code {{ word-break: break-all; }}
.status {{ display: inline-block; padding: 0 0.4em; border-radius: 3px; }}
.bar {{ display: inline-block; height: 0.7em; background: #9bb; margin-right: 0.4em; }}
</style>
</head>
<body>
<h1>kiln timings: {name} — {total_label}</h1>
<p>{count} phases: {summary}. Generated by kiln {version}.</p>
"#,
        total_label = format_seconds(total),
        count = timings.phases.len(),
        version = env!("CARGO_PKG_VERSION"),
    );
    html.push_str(&render_svg(timings));
    html.push_str(
        "<table>\n<thead><tr><th>phase / step</th><th>status</th><th>start</th>\
         <th>duration</th><th>% of build</th></tr></thead>\n<tbody>\n",
    );
    for phase in &timings.phases {
        let share = percent(phase.seconds);
        let _ = writeln!(
            html,
            r#"<tr class="phase"><td class="what"><strong>{name}</strong></td><td><span class="status" style="background: {color}; color: {text_color}">{status}</span></td><td class="num">{start:.3} s</td><td class="num">{seconds:.3} s</td><td class="num"><span class="bar" style="width: {width:.1}px"></span>{share:.1} %</td></tr>"#,
            name = escape(&phase.name),
            color = phase.status.color(),
            text_color = phase.status.text_color(),
            status = phase.status.as_str(),
            start = phase.start_seconds,
            seconds = phase.seconds,
            width = share,
        );
        for step in &phase.steps {
            let share = percent(step.seconds);
            let _ = writeln!(
                html,
                r#"<tr class="step"><td class="what">step {index}: {kind} <code>{description}</code></td><td></td><td class="num">{start:.3} s</td><td class="num">{seconds:.3} s</td><td class="num">{share:.1} %</td></tr>"#,
                index = step.index,
                kind = escape(&step.kind),
                description = escape(&step.description),
                start = step.start_seconds,
                seconds = step.seconds,
            );
        }
    }
    html.push_str("</tbody>\n</table>\n</body>\n</html>\n");
    html
}

/// Writes the timings as JSON to `path` and as HTML next to it (the extension replaced by
/// `.html`); when `path` ends in `.html`, the HTML goes there and the JSON to `.json`. Each file
/// is written to a temporary file in the same directory and renamed into place. Returns the
/// paths written, JSON first.
pub fn write_timings(path: &Path, timings: &Timings) -> std::io::Result<Vec<PathBuf>> {
    let is_html = path
        .extension()
        .is_some_and(|extension| extension.eq_ignore_ascii_case("html"));
    let (json_path, html_path) = if is_html {
        (path.with_extension("json"), path.to_owned())
    } else {
        (path.to_owned(), path.with_extension("html"))
    };
    let mut json = serde_json::to_string_pretty(timings).map_err(std::io::Error::other)?;
    json.push('\n');
    write_atomically(&json_path, json.as_bytes())?;
    write_atomically(&html_path, render_html(timings).as_bytes())?;
    Ok(vec![json_path, html_path])
}

/// Writes `contents` to a temporary file beside `path`, then renames it over `path`.
fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;

    let context = |action: &str, error: std::io::Error| {
        std::io::Error::new(
            error.kind(),
            format!("failed to {action} `{}`: {error}", path.display()),
        )
    };
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .map_err(|error| context("create a temporary file for", error))?;
    file.write_all(contents)
        .and_then(|()| file.flush())
        // Temporary files are 0600; the result is an ordinary readable report.
        .and_then(|()| {
            file.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
        })
        .map_err(|error| context("write", error))?;
    file.persist(path)
        .map_err(|error| context("rename into", error.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_schema::events::{Level, Output};

    const DESCRIPTION: &str = r#"sh -c "echo <b>&amp;</b> 'x'""#;

    fn at(base: Instant, seconds: f64) -> Instant {
        base + Duration::from_secs_f64(seconds)
    }

    fn step<'a>(phase: &'a str, step: usize, description: &'a str) -> LogEvent<'a> {
        LogEvent::StepStarted {
            phase,
            step,
            kind: "run",
            description,
        }
    }

    /// unpack (cached), configure (succeeded, 2 steps), build (succeeded, 1 step),
    /// docs (skipped), check (failed), install (not run).
    fn sample() -> Timings {
        let base = Instant::now();
        let mut recorder = TimingsRecorder::new();
        let phases = vec!["unpack", "configure", "build", "docs", "check", "install"];
        let events: Vec<(f64, LogEvent<'_>)> = vec![
            (
                0.0,
                LogEvent::BuildStarted {
                    format_version: 1,
                    name: "hello <&\">",
                    phases,
                },
            ),
            (
                1.0,
                LogEvent::PhaseStarted {
                    phase: "configure",
                    index: 2,
                    total: 6,
                },
            ),
            (1.0, step("configure", 1, "./configure --prefix=/out")),
            (
                1.5,
                LogEvent::Message {
                    level: Level::Info,
                    text: "hi",
                },
            ),
            (2.0, step("configure", 2, DESCRIPTION)),
            (2.5, LogEvent::Output(Output::Text("checking for cc... cc"))),
            (
                4.0,
                LogEvent::PhaseFinished {
                    phase: "configure",
                    success: true,
                    seconds: 3.0,
                },
            ),
            (
                4.0,
                LogEvent::PhaseStarted {
                    phase: "build",
                    index: 3,
                    total: 6,
                },
            ),
            (4.5, step("build", 1, "make -j N")),
            (
                9.0,
                LogEvent::PhaseFinished {
                    phase: "build",
                    success: true,
                    seconds: 5.0,
                },
            ),
            (9.0, LogEvent::PhaseSkipped { phase: "docs" }),
            (
                9.0,
                LogEvent::PhaseStarted {
                    phase: "check",
                    index: 5,
                    total: 6,
                },
            ),
            (9.0, step("check", 1, "make check")),
            (
                9.5,
                LogEvent::PhaseFinished {
                    phase: "check",
                    success: false,
                    seconds: 0.5,
                },
            ),
            (
                10.0,
                LogEvent::BuildFinished {
                    success: false,
                    exit_code: 1,
                    seconds: 10.0,
                },
            ),
        ];
        for (seconds, event) in &events {
            recorder.report_at(event, at(base, *seconds));
            if *seconds == 0.0 {
                // The cache restore happens right after the build starts.
                recorder.record_cached_at("unpack", 0.75, at(base, 0.75));
            }
        }
        recorder.timings_at(at(base, 99.0))
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn recorder_orders_phases_and_nests_steps() {
        let timings = sample();
        assert_eq!(timings.format_version, TIMINGS_FORMAT_VERSION);
        assert_eq!(timings.name, "hello <&\">");
        assert!(close(timings.total_seconds, 10.0), "{timings:?}");
        let summary: Vec<(&str, TimingStatus, usize)> = timings
            .phases
            .iter()
            .map(|p| (p.name.as_str(), p.status, p.steps.len()))
            .collect();
        assert_eq!(
            summary,
            [
                ("unpack", TimingStatus::Cached, 0),
                ("configure", TimingStatus::Succeeded, 2),
                ("build", TimingStatus::Succeeded, 1),
                ("docs", TimingStatus::Skipped, 0),
                ("check", TimingStatus::Failed, 1),
                ("install", TimingStatus::NotRun, 0),
            ]
        );
        let unpack = &timings.phases[0];
        assert!(close(unpack.start_seconds, 0.0) && close(unpack.seconds, 0.75));
        let configure = &timings.phases[1];
        assert!(close(configure.start_seconds, 1.0) && close(configure.seconds, 3.0));
        // A step ends where the next one starts, the last one where its phase ends.
        let steps: Vec<(usize, f64, f64)> = configure
            .steps
            .iter()
            .map(|s| (s.index, s.start_seconds, s.seconds))
            .collect();
        assert_eq!(steps, [(1, 1.0, 1.0), (2, 2.0, 2.0)]);
        assert_eq!(configure.steps[1].description, DESCRIPTION);
        assert_eq!(timings.phases[2].steps[0].description, "make -j N");
        assert!(close(timings.phases[4].seconds, 0.5));
        for phase in &timings.phases {
            assert!(
                phase.start_seconds >= 0.0 && phase.seconds >= 0.0,
                "{phase:?}"
            );
            for step in &phase.steps {
                assert!(step.start_seconds >= phase.start_seconds - 1e-9, "{step:?}");
                assert!(
                    step.start_seconds + step.seconds <= phase.start_seconds + phase.seconds + 1e-9,
                    "{step:?} outside {phase:?}"
                );
            }
        }
        let json = serde_json::to_value(&timings).unwrap();
        assert_eq!(json["phases"][5]["status"], "not-run");
        assert_eq!(json["phases"][1]["steps"][1]["kind"], "run");
    }

    #[test]
    fn snapshot_before_the_end_marks_running_phases() {
        let base = Instant::now();
        let mut recorder = TimingsRecorder::new();
        recorder.report_at(
            &LogEvent::BuildStarted {
                format_version: 1,
                name: "x",
                phases: vec!["build"],
            },
            base,
        );
        recorder.report_at(
            &LogEvent::PhaseStarted {
                phase: "build",
                index: 1,
                total: 1,
            },
            at(base, 1.0),
        );
        recorder.report_at(&step("build", 1, "make"), at(base, 1.0));
        let timings = recorder.timings_at(at(base, 3.0));
        assert_eq!(timings.phases[0].status, TimingStatus::Running);
        assert!(close(timings.phases[0].seconds, 2.0));
        assert!(close(timings.phases[0].steps[0].seconds, 2.0));
        assert!(close(timings.total_seconds, 3.0));

        // The build ending without `PhaseFinished` means the phase did not succeed.
        recorder.report_at(
            &LogEvent::BuildFinished {
                success: false,
                exit_code: 130,
                seconds: 4.0,
            },
            at(base, 4.0),
        );
        let timings = recorder.timings_at(at(base, 50.0));
        assert_eq!(timings.phases[0].status, TimingStatus::Failed);
        assert!(close(timings.total_seconds, 4.0));
    }

    #[test]
    fn html_escapes_user_text_and_embeds_the_chart() {
        let timings = sample();
        let html = render_html(&timings);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<svg"));
        assert!(html.contains(&render_svg(&timings)));
        for phase in &timings.phases {
            assert!(html.contains(&escape(&phase.name)), "{}", phase.name);
        }
        assert!(html.contains("hello &lt;&amp;&quot;&gt;"));
        assert!(html.contains("&lt;b&gt;&amp;amp;&lt;/b&gt;"));
        for raw in ["<b>", "&amp;</b>", "\"echo", "hello <", "<&\""] {
            assert!(!html.contains(raw), "unescaped {raw:?}");
        }
        assert!(!html.contains("<script"));
        // Self-contained: the SVG namespace is the only address in the page.
        assert!(!html
            .replace(r#"xmlns="http://www.w3.org/2000/svg""#, "")
            .contains("http"));
        // One bar per phase that did something, with a tooltip.
        assert!(html.contains("check: failed, 0.500 s"));
        assert!(html.contains("unpack: restored from the cache in 0.750 s"));
        assert!(html.contains("install: not run"));
    }

    #[test]
    fn svg_is_well_formed_enough() {
        let svg = render_svg(&sample());
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<g").count(), svg.matches("</g>").count());
        assert_eq!(
            svg.matches("<title>").count(),
            svg.matches("</title>").count()
        );
        assert!(
            svg.contains(">0 s</text>") && svg.contains(">10 s</text>"),
            "{svg}"
        );
        // Empty timings still render.
        let empty = TimingsRecorder::new().timings();
        assert!(render_svg(&empty).contains("</svg>"));
    }

    #[test]
    fn escape_and_ticks() {
        assert_eq!(
            escape("a<b>&\"c'\u{1}"),
            "a&lt;b&gt;&amp;&quot;c&#39;\u{fffd}"
        );
        assert_eq!(tick_step(10.0), 2.0);
        assert_eq!(tick_step(0.3), 0.05);
        assert_eq!(tick_step(600.0), 100.0);
        assert_eq!(tick_label(0.15, 0.05), "0.15 s");
        assert_eq!(tick_label(20.0, 10.0), "20 s");
        assert_eq!(format_seconds(125.0), "2 min 05 s");
        assert_eq!(format_seconds(3.24), "3.2 s");
    }

    #[test]
    fn write_timings_writes_json_and_html_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let timings = sample();

        let written = write_timings(&dir.path().join("t.json"), &timings).unwrap();
        assert_eq!(
            written,
            [dir.path().join("t.json"), dir.path().join("t.html")]
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&written[0]).unwrap()).unwrap();
        assert_eq!(json["format_version"], 1);
        assert_eq!(json["phases"].as_array().unwrap().len(), 6);
        assert!(std::fs::read_to_string(&written[1])
            .unwrap()
            .contains("<svg"));

        let written = write_timings(&dir.path().join("chart.html"), &timings).unwrap();
        assert_eq!(
            written,
            [dir.path().join("chart.json"), dir.path().join("chart.html")]
        );
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        // No temporary file is left behind.
        assert_eq!(names, ["chart.html", "chart.json", "t.html", "t.json"]);

        let error = write_timings(&dir.path().join("missing/t.json"), &timings).unwrap_err();
        assert!(error.to_string().contains("missing"), "{error}");
    }
}
