//! `{output_dir}/timeline.html`: the run at a glance. One self-contained page
//! (HTML and CSS, no script, nothing fetched) that fills the window:
//!
//! * a row for discovery (a bar per group) and one for the provider's
//!   preparation, when it ran;
//! * a row per sandbox: its start-ups (hatched), its life (a thin line) and a
//!   bar per batch coloured by outcome, labelled `#12 · 40` (batch number ·
//!   tests) when the bar is wide enough, retries, isolation re-runs and hang
//!   splits striped and named;
//! * the critical path — the sandbox the run waited for — highlighted;
//! * on hover, a bar's summary (a `title` tooltip); on click, the batch's
//!   per-test breakdown in a panel at the bottom of the window (each batch is
//!   a `<details>`; `timeline.html#batch-12` opens batch 12's).
//!
//! Positions are percentages of the time axis, so the page reflows with the
//! window. A label that does not fit its bar wraps onto a second line that
//! the bar clips (`.fit` below): hidden, not cut mid-word.
//!
//! The page stays bounded for large runs: a breakdown lists at most
//! [`BREAKDOWN_TESTS`] tests, and fewer when the run has many batches (at
//! most about [`PAGE_TESTS`] listed in all); a tooltip names at most
//! [`TOOLTIP_TESTS`] failed tests. Rendering is linear in the tests (one
//! selection per batch, no sort of the whole run).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::spans::{BatchSpan, RunSpans, SpansFileReporter, StartUp, TestLayout, TestOrder};
use super::summary::format_duration;
use crate::events::{BatchKind, BatchOutcome};
use crate::model::Outcome;

/// The file name inside the output directory.
pub const TIMELINE_FILE: &str = "timeline.html";

/// Failed tests named in one bar's tooltip; the rest are counted.
pub const TOOLTIP_TESTS: usize = 10;

/// Tests listed in one batch's breakdown; the rest are summed up.
pub const BREAKDOWN_TESTS: usize = 100;

/// Tests listed in all breakdowns together, about: a run of many batches
/// lists fewer per batch (never fewer than [`MIN_BREAKDOWN_TESTS`]).
pub const PAGE_TESTS: usize = 10_000;

/// The fewest tests a breakdown lists, however many batches the run has.
const MIN_BREAKDOWN_TESTS: usize = 5;

/// Records the run and writes `{output_dir}/timeline.html` when it finishes.
pub fn reporter(output_dir: &Path, test_order: TestOrder) -> SpansFileReporter {
    SpansFileReporter::new(output_dir.join(TIMELINE_FILE), test_order, render_timeline)
}

/// Fill colour of a batch bar.
fn outcome_colour(outcome: BatchOutcome) -> &'static str {
    match outcome {
        BatchOutcome::Success => "#2e9d4e",
        BatchOutcome::Failure => "#d13b3b",
        BatchOutcome::Error => "#e8871e",
        BatchOutcome::Cancelled => "#9a9a9a",
    }
}

/// The CSS class of a batch's kind (striped differently; fresh work is plain).
fn kind_class(kind: BatchKind) -> &'static str {
    match kind {
        BatchKind::Fresh => "fresh",
        BatchKind::Split => "split",
        BatchKind::Retry => "retry",
        BatchKind::Isolation => "isolation",
        BatchKind::HangSplit => "hang-split",
    }
}

/// `left:12.500%;width:25.000%`: where `[start, end]` sits on the axis.
struct Axis {
    horizon: f64,
}

impl Axis {
    fn percent(&self, t: Duration) -> f64 {
        (t.as_secs_f64() / self.horizon * 100.0).clamp(0.0, 100.0)
    }

    fn place(&self, start: Duration, end: Duration) -> String {
        let left = self.percent(start);
        let width = (self.percent(end) - left).max(0.0);
        format!("left:{left:.3}%;width:{width:.3}%")
    }
}

/// The whole page.
pub fn render_timeline(spans: &RunSpans) -> String {
    let horizon = spans.horizon().max(Duration::from_millis(1));
    let axis = Axis {
        horizon: horizon.as_secs_f64(),
    };
    let critical = spans.critical_sandbox();
    let listed = breakdown_limit(spans.batches.len());

    let mut chart = String::new();
    // Time axis: a handful of round ticks with grid lines.
    let step = tick_step(horizon);
    let (mut ticks, mut grid) = (String::new(), String::new());
    let mut t = Duration::ZERO;
    while t <= horizon {
        let left = axis.percent(t);
        let _ = write!(
            ticks,
            r#"<span class="tick" style="left:{left:.3}%">{}</span>"#,
            tick_label(t, step)
        );
        let _ = write!(grid, r#"<i style="left:{left:.3}%"></i>"#);
        t += step;
    }
    let _ = writeln!(chart, r#"<div class="axis">{ticks}</div>"#);
    let _ = writeln!(chart, r#"<div class="grid">{grid}</div>"#);

    phase_rows(&mut chart, spans, &axis);

    // Each batch's row in one pass (not a scan of every batch per sandbox).
    let mut batches_of: std::collections::BTreeMap<usize, Vec<&BatchSpan>> =
        spans.sandboxes.keys().map(|&i| (i, Vec::new())).collect();
    for b in &spans.batches {
        batches_of.entry(b.sandbox).or_default().push(b);
    }
    for (index, batches) in &batches_of {
        let Some(sandbox) = spans.sandboxes.get(index) else {
            continue;
        };
        let is_critical = critical == Some(*index);
        let mut label = format!("sandbox {index}");
        if let Some(id) = &sandbox.id {
            if id != &format!("local-{index}") {
                let short: String = id.chars().take(16).collect();
                let _ = write!(label, " ({short})");
            }
        }
        if is_critical {
            label.push_str(" ★ critical path");
        }
        let _ = writeln!(
            chart,
            r#"<div class="lane sandbox{extra}" data-sandbox="{index}" data-critical="{is_critical}"><div class="name" title="{title}">{label}</div><div class="track">"#,
            extra = if is_critical { " critical" } else { "" },
            title = escape(&sandbox_title(spans, *index, batches)),
            label = escape(&label),
        );
        // The sandbox's life (first ready → destroyed) as a thin line under its batches.
        if let Some(ready) = sandbox.ready {
            let end = sandbox.end.unwrap_or(horizon);
            let _ = writeln!(
                chart,
                r#"<div class="life" style="{}"></div>"#,
                axis.place(ready, end)
            );
        }
        for (n, startup) in sandbox.startups.iter().enumerate() {
            startup_bar(&mut chart, &axis, *index, n, startup, horizon);
        }
        if let Some(failure) = &sandbox.failure {
            // Say why in the row itself: a failed sandbox often has no bars.
            let first_line = failure.lines().next().unwrap_or("");
            let short: String = first_line.chars().take(120).collect();
            let _ = writeln!(
                chart,
                r#"<div class="why" style="left:{:.3}%" title="{}">sandbox failed: {}</div>"#,
                axis.percent(sandbox.end.unwrap_or_default()),
                escape(failure),
                escape(&short),
            );
        }
        for batch in batches {
            batch_bar(&mut chart, &axis, spans, batch, listed);
        }
        chart.push_str("</div></div>\n");
    }

    let counts = spans.counts;
    let mut heading = format!(
        "{} tests · {} passed · {} failed · {} flaky · {} not run · {} skipped · {} sandboxes · wall time {}",
        counts.total,
        counts.passed,
        counts.failed,
        counts.flaky,
        counts.not_run,
        counts.skipped,
        spans.sandboxes.len(),
        format_duration(spans.wall)
    );
    if spans.cancelled {
        heading.push_str(" · cancelled");
    }
    let mut legend: String = [
        BatchOutcome::Success,
        BatchOutcome::Failure,
        BatchOutcome::Error,
        BatchOutcome::Cancelled,
    ]
    .iter()
    .map(|o| {
        format!(
            r#"<span class="key"><span class="swatch" style="background:{}"></span>{}</span>"#,
            outcome_colour(*o),
            o.as_str()
        )
    })
    .collect();
    for kind in [
        BatchKind::Split,
        BatchKind::Retry,
        BatchKind::Isolation,
        BatchKind::HangSplit,
    ] {
        let _ = write!(
            legend,
            r#"<span class="key"><span class="swatch {}"></span>{}</span>"#,
            kind_class(kind),
            kind.as_str()
        );
    }
    legend.push_str(
        r#"<span class="key"><span class="swatch startup"></span>sandbox start-up</span>"#,
    );

    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Offload run timeline</title>
<style>{STYLE}</style>
</head>
<body>
<header>
<h1>Offload run timeline</h1>
<div>{heading}</div>
<div class="hint">{discovery}</div>
<div>{legend}</div>
<div class="hint">Hover a bar for its summary, click it for each test's time (click again to close); the highlighted row is the critical path (the sandbox that finished last).</div>
{about}
</header>
<main class="chart">
{chart}</main>
</body>
</html>
"#,
        heading = escape(&heading),
        discovery = escape(&discovery_line(spans)),
        about = about(),
    )
}

/// How a batch's breakdown places its tests ([`BatchSpan::test_layout`]).
fn about() -> String {
    format!(
        r#"<details class="about"><summary>How a batch's tests are drawn</summary><p>A batch's breakdown draws each test on the batch's own time, from the batch's start to its end. JUnit gives each test's time, not when it started. Tests that ran one after another (pytest, the default framework) are drawn back to back in the batch's order. Tests that ran side by side (nextest, or any batch whose tests report more time than it lasted) are dealt in the batch's order onto the fewest lanes on which they fit in the batch's time, each to the lane free first: at least that many ran at once. The runner's start-up, collection and teardown are not measured: the tests of a batch that ended normally are drawn ending where it ended, that time before them; those of a batch that timed out, crashed or was cancelled, from its start. A breakdown lists at most {BREAKDOWN_TESTS} tests (fewer in a run of many batches): those that did not pass, then the slowest.</p></details>"#
    )
}

/// The page's style. `.fit` is what hides a label that does not fit: an
/// empty full-height item first, then the label, which wraps onto the
/// clipped second line when the bar is narrower than it.
const STYLE: &str = r#"
* { box-sizing: border-box; }
body { margin: 0; font: 13px system-ui, sans-serif; color: #222; background: #fff; }
header { padding: 10px 24px 4px 24px; }
h1 { font-size: 16px; margin: 0 0 4px 0; }
.key { margin-right: 14px; white-space: nowrap; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px; vertical-align: -1px; background-color: #9a9a9a; }
.hint { color: #666; }
.chart { position: relative; margin: 0 24px 0 0; padding-bottom: 12px; --label: 14rem; }
.axis { position: relative; height: 28px; margin-left: var(--label); }
.tick { position: absolute; bottom: 8px; transform: translateX(-50%); font-size: 11px; color: #666; }
.grid { position: absolute; top: 28px; bottom: 0; left: var(--label); right: 0; pointer-events: none; }
.grid i { position: absolute; top: 0; bottom: 0; border-left: 1px dashed #d8dbe2; }
.lane { display: flex; height: 26px; margin-top: 8px; background: #eef0f4; }
.lane.phase { background: #ece6f5; }
.lane.critical { background: #fff1bf; box-shadow: inset 0 0 0 1.5px #d99a00; }
.name { flex: 0 0 var(--label); padding: 0 8px 0 12px; line-height: 26px; font-size: 12px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.track { position: relative; flex: 1 1 auto; }
.bar { position: absolute; top: 3px; height: 17px; min-width: 2px; border-radius: 2px; color: #fff; font-size: 11px; }
.fit { display: flex; flex-wrap: wrap; align-items: center; height: 100%; overflow: hidden; border-radius: 2px; }
.fit::before { content: ""; height: 100%; }
.fit > span { white-space: nowrap; padding: 0 4px; line-height: 17px; text-shadow: 0 0 2px rgba(0,0,0,.45); }
.discovery { background: #7b61a8; }
.discovery.unfinished { background: #9a9a9a; }
.prepare { background: #4f7fb8; }
.startup { background-color: #aab4c8; background-image: repeating-linear-gradient(135deg, rgba(255,255,255,.55) 0 2px, transparent 2px 5px); color: #223; }
.startup.failed { background-color: #d9a0a0; }
.startup > span { text-shadow: none; }
.life { position: absolute; bottom: 2px; height: 2px; background: #9aa3b5; }
.why { position: absolute; top: 0; right: 0; padding-left: 4px; line-height: 26px; font-size: 12px; color: #b3261e; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.batch > summary { list-style: none; cursor: pointer; background-color: var(--c); box-shadow: inset 0 0 0 0.5px #fff; }
.batch > summary::-webkit-details-marker { display: none; }
.batch > summary:hover { box-shadow: 0 0 0 1.5px #000; }
.batch[open] > summary { box-shadow: 0 0 0 2px #000; }
.critical .batch > summary { box-shadow: inset 0 0 0 1.2px #5a4100; }
.success { --c: #2e9d4e; } .failure { --c: #d13b3b; } .error { --c: #e8871e; } .cancelled { --c: #9a9a9a; }
.retry > summary, .swatch.retry { background-image: repeating-linear-gradient(135deg, rgba(255,255,255,.4) 0 3px, transparent 3px 7px); }
.isolation > summary, .swatch.isolation { background-image: repeating-linear-gradient(90deg, rgba(255,255,255,.4) 0 2px, transparent 2px 6px); }
.split > summary, .swatch.split { background-image: repeating-linear-gradient(45deg, rgba(0,0,0,.2) 0 2px, transparent 2px 6px); }
.hang-split > summary, .swatch.hang-split { background-image: repeating-linear-gradient(0deg, rgba(0,0,0,.28) 0 2px, transparent 2px 5px); }
.drawer { position: fixed; left: 0; right: 0; bottom: 0; max-height: 50vh; overflow: auto; z-index: 10; padding: 8px 24px 12px 24px; background: #fff; color: #222; font-size: 12px; border-top: 2px solid #222; box-shadow: 0 -4px 12px rgba(0,0,0,.15); cursor: auto; }
.drawer h2 { font-size: 14px; margin: 0 0 2px 0; }
.drawer .hint { margin-bottom: 6px; }
.t { display: flex; align-items: center; gap: 8px; height: 18px; }
.t code { flex: 0 0 40%; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.t b { flex: 0 0 4.5rem; text-align: right; font-weight: normal; }
.t em { flex: 0 0 4.5rem; font-style: normal; color: #666; }
.t i { position: relative; flex: 1 1 auto; height: 12px; background: #eef0f4; }
.t i::after { content: ""; position: absolute; top: 0; bottom: 0; left: var(--s); width: var(--w); min-width: 1px; background: var(--c); }
.t.passed { --c: #2e9d4e; } .t.failed { --c: #d13b3b; } .t.error { --c: #e8871e; } .t.skipped { --c: #9a9a9a; } .t.none { --c: transparent; }
.t.failed em, .t.error em { color: #b3261e; }
.more { color: #666; margin-top: 4px; }
body:has(.batch[open]) { padding-bottom: 50vh; }
.about { color: #666; margin-top: 2px; }
.about > summary { cursor: pointer; }
.about > p { max-width: 60rem; margin: 4px 0; }
"#;

/// The rows before the sandboxes: discovery (a bar per group, one after
/// another) and the provider's preparation, which runs alongside it.
fn phase_rows(chart: &mut String, spans: &RunSpans, axis: &Axis) {
    if !spans.discovery.is_empty() {
        chart.push_str(r#"<div class="lane phase" data-phase="discovery"><div class="name" title="finding the tests of each group, on this machine">discovery</div><div class="track">"#);
        for d in &spans.discovery {
            let (end, label, title, class) = match d.finished {
                Some((end, tests)) => (
                    end,
                    format!("{} · {tests}", d.group),
                    format!(
                        "discovery of group `{}`: {tests} tests in {}\n{}",
                        d.group,
                        format_duration(end.saturating_sub(d.started)),
                        d.command
                    ),
                    "discovery",
                ),
                None => (
                    spans.horizon(),
                    format!("{} · unfinished", d.group),
                    format!(
                        "discovery of group `{}` did not finish\n{}",
                        d.group, d.command
                    ),
                    "discovery unfinished",
                ),
            };
            let _ = write!(
                chart,
                r#"<div class="bar fit {class}" style="{}" title="{}"><span>{}</span></div>"#,
                axis.place(d.started, end),
                escape(&title),
                escape(&label)
            );
        }
        chart.push_str("</div></div>\n");
    }
    if let Some((started, finished)) = spans.prepare {
        let took = format_duration(finished.saturating_sub(started));
        let _ = writeln!(
            chart,
            r#"<div class="lane phase" data-phase="prepare"><div class="name" title="the provider's preparation (an image build), alongside discovery">prepare</div><div class="track"><div class="bar fit prepare" style="{}" title="the provider's preparation: {took}"><span>prepare {took}</span></div></div></div>"#,
            axis.place(started, finished),
        );
    }
}

/// A sandbox's `n`th creation (0: the first; later ones replace it).
fn startup_bar(
    chart: &mut String,
    axis: &Axis,
    sandbox: usize,
    n: usize,
    startup: &StartUp,
    horizon: Duration,
) {
    let end = startup.ended.unwrap_or(horizon);
    let took = format_duration(end.saturating_sub(startup.began));
    let what = if n == 0 { "start-up" } else { "replacement" };
    let (class, label, title) = if startup.failed {
        (
            "startup failed",
            format!("{what} failed"),
            format!("sandbox {sandbox}: {what} failed after {took}"),
        )
    } else {
        (
            "startup",
            format!("{what} {took}"),
            format!("sandbox {sandbox}: {what} (creating the sandbox) took {took}"),
        )
    };
    let _ = writeln!(
        chart,
        r#"<div class="bar fit {class}" style="{}" title="{title}"><span>{label}</span></div>"#,
        axis.place(startup.began, end),
    );
}

/// One batch: its bar (a `<summary>`, labelled, with a tooltip) and its
/// breakdown (the rest of the `<details>`, shown when the bar is clicked).
fn batch_bar(chart: &mut String, axis: &Axis, spans: &RunSpans, b: &BatchSpan, listed: usize) {
    let outcome = b.outcome_or_cancelled();
    let mut label = format!("#{} · {}", b.batch, b.tests.len());
    if b.kind != BatchKind::Fresh {
        let _ = write!(label, " · {}", b.kind.as_str());
    }
    let layout = b.test_layout(spans.test_order, spans.wall);
    let _ = writeln!(
        chart,
        r#"<details class="bar batch {outcome} {kind}" name="batch" data-batch="{n}" style="{place}"><summary class="fit" title="{title}"><span>{label}</span></summary><div class="drawer" id="batch-{n}">{breakdown}</div></details>"#,
        outcome = outcome.as_str(),
        kind = kind_class(b.kind),
        n = b.batch,
        place = axis.place(b.started, b.end(spans.wall)),
        title = escape(&batch_title(b, spans.wall, &layout)),
        label = escape(&label),
        breakdown = breakdown(b, spans.wall, &layout, listed),
    );
}

/// How many tests each breakdown lists when the run has `batches` batches.
fn breakdown_limit(batches: usize) -> usize {
    (PAGE_TESTS / batches.max(1)).clamp(MIN_BREAKDOWN_TESTS, BREAKDOWN_TESTS)
}

/// `batch 4 (retry) · sandbox 0 · success · 2.00s → 3.00s (1.0s)`.
fn batch_heading(b: &BatchSpan, wall: Duration) -> String {
    let end = b.end(wall);
    let kind = match b.kind {
        BatchKind::Fresh => String::new(),
        kind => format!(" ({})", kind.as_str()),
    };
    format!(
        "batch {}{kind} · sandbox {} · {} · {:.2}s → {:.2}s ({})",
        b.batch,
        b.sandbox,
        b.outcome_or_cancelled().as_str(),
        b.started.as_secs_f64(),
        end.as_secs_f64(),
        format_duration(end - b.started)
    )
}

/// `4 tests, 1.2s reported`.
fn tests_line(b: &BatchSpan, layout: &TestLayout) -> String {
    let n = b.tests.len();
    format!(
        "{n} test{}, {} reported",
        if n == 1 { "" } else { "s" },
        format_duration(layout.reported)
    )
}

/// The hover text: what the batch was, and the tests that did not pass.
fn batch_title(b: &BatchSpan, wall: Duration, layout: &TestLayout) -> String {
    let mut t = batch_heading(b, wall);
    let _ = write!(
        t,
        "\n{} · click for each test's time",
        tests_line(b, layout)
    );
    let mut bad = b
        .results()
        .filter(|(_, o)| !matches!(o, Some(Outcome::Passed | Outcome::Skipped)));
    for (id, outcome) in bad.by_ref().take(TOOLTIP_TESTS) {
        let _ = write!(t, "\n{}  {id}", outcome_name(outcome));
    }
    let more = bad.count();
    if more > 0 {
        let _ = write!(t, "\n… and {more} more that did not pass");
    }
    t
}

fn outcome_name(outcome: Option<Outcome>) -> &'static str {
    match outcome {
        Some(Outcome::Passed) => "passed",
        Some(Outcome::Failed) => "FAILED",
        Some(Outcome::Error) => "ERROR",
        Some(Outcome::Skipped) => "skipped",
        None => "no result",
    }
}

fn outcome_class(outcome: Option<Outcome>) -> &'static str {
    match outcome {
        Some(Outcome::Passed) => "passed",
        Some(Outcome::Failed) => "failed",
        Some(Outcome::Error) => "error",
        Some(Outcome::Skipped) => "skipped",
        None => "none",
    }
}

/// The breakdown of a batch: a line per test (at most `listed`: those that
/// did not pass, then the slowest, shown in the batch's order) with its
/// outcome, its time and its slice of the batch, drawn on the batch's own
/// time (its start to its end) as [`BatchSpan::test_layout`] places it.
fn breakdown(b: &BatchSpan, wall: Duration, layout: &TestLayout, listed: usize) -> String {
    let span = (b.end(wall) - b.started).as_secs_f64();
    // How they are placed is explained once, in the page's header ([`about`]).
    let how = match layout.order {
        TestOrder::OneAfterAnother => "one after another".to_string(),
        TestOrder::SideBySide => format!(
            "side by side, on at least {} lane{}",
            layout.lanes,
            if layout.lanes == 1 { "" } else { "s" }
        ),
    };
    let aligned = match b.outcome {
        Some(BatchOutcome::Success | BatchOutcome::Failure) => "ending where the batch ended",
        _ => "from the batch's start (it stopped early)",
    };
    let mut out = format!(
        r#"<h2>{}</h2><div class="hint">{} · {how}, {aligned}</div>"#,
        escape(&batch_heading(b, wall)),
        escape(&tests_line(b, layout)),
    );
    let mut slice_of: Vec<Option<(Duration, Duration)>> = vec![None; b.tests.len()];
    for s in &layout.slices {
        slice_of[s.test] = Some((s.start, s.end));
    }
    let shown = tests_to_list(b, listed);
    let mut shown_time = Duration::ZERO;
    for &i in &shown {
        let outcome = b.outcomes[i];
        let time = match b.durations[i] {
            Some(d) => {
                shown_time += d;
                format_duration(d)
            }
            None => "—".to_string(),
        };
        let (start, width) = match slice_of[i] {
            Some((s, e)) if span > 0.0 => (
                s.as_secs_f64() / span * 100.0,
                (e - s).as_secs_f64() / span * 100.0,
            ),
            _ => (0.0, 0.0),
        };
        let _ = write!(
            out,
            r#"<div class="t {class}" style="--s:{start:.2}%;--w:{width:.2}%"><code>{id}</code><b>{time}</b><em>{outcome}</em><i></i></div>"#,
            class = outcome_class(outcome),
            id = escape(&b.tests[i]),
            outcome = outcome_name(outcome),
        );
    }
    let rest = b.tests.len() - shown.len();
    if rest > 0 {
        let _ = write!(
            out,
            r#"<div class="more">… and {rest} more, {} reported together</div>"#,
            format_duration(layout.reported.saturating_sub(shown_time)),
        );
    }
    out
}

/// The indices of the tests a breakdown lists, in the batch's order: all of
/// them when they are at most `listed`; else those that did not pass first,
/// then the slowest. A linear-time selection, not a sort.
fn tests_to_list(b: &BatchSpan, listed: usize) -> Vec<usize> {
    let n = b.tests.len();
    if n <= listed {
        return (0..n).collect();
    }
    // Lower ranks first: not passed (0), then by time, longest first.
    let rank = |i: usize| {
        let passed = matches!(b.outcomes[i], Some(Outcome::Passed | Outcome::Skipped));
        (
            passed,
            std::cmp::Reverse(b.durations[i].unwrap_or_default()),
        )
    };
    let mut order: Vec<usize> = (0..n).collect();
    order.select_nth_unstable_by_key(listed - 1, |&i| rank(i));
    order.truncate(listed);
    order.sort_unstable();
    order
}

/// `Discovery: `unit` 120 tests in 0.4s, `slow` 3 tests in 0.2s; tests
/// started at 0.7s`.
fn discovery_line(spans: &RunSpans) -> String {
    let groups: Vec<String> = spans
        .discovery
        .iter()
        .map(|d| match d.finished {
            Some((end, tests)) => format!(
                "`{}` {tests} tests in {}",
                d.group,
                format_duration(end.saturating_sub(d.started))
            ),
            None => format!("`{}` unfinished", d.group),
        })
        .collect();
    let mut line = String::new();
    if !groups.is_empty() {
        line = format!("Discovery: {}", groups.join(", "));
    }
    if let Some((started, finished)) = spans.prepare {
        if !line.is_empty() {
            line.push_str("; ");
        }
        line.push_str(&format!(
            "the provider's preparation took {}",
            format_duration(finished.saturating_sub(started))
        ));
    }
    if let Some(at) = spans.execution_started {
        if !line.is_empty() {
            line.push_str("; ");
        }
        line.push_str(&format!("tests started at {}", format_duration(at)));
    }
    line
}

fn sandbox_title(spans: &RunSpans, index: usize, batches: &[&BatchSpan]) -> String {
    let s = &spans.sandboxes[&index];
    let mut t = format!("sandbox {index}");
    if let Some(id) = &s.id {
        t.push_str(&format!(" ({id})"));
    }
    let busy: Duration = batches.iter().map(|b| b.end(spans.wall) - b.started).sum();
    t.push_str(&format!(
        "\n{} batches, busy {}",
        batches.len(),
        format_duration(busy)
    ));
    let starting: Duration = s
        .startups
        .iter()
        .map(|u| u.ended.unwrap_or(spans.wall).saturating_sub(u.began))
        .sum();
    if !s.startups.is_empty() {
        t.push_str(&format!(
            ", starting up {} ({} creation{})",
            format_duration(starting),
            s.startups.len(),
            if s.startups.len() == 1 { "" } else { "s" }
        ));
    }
    if let Some(f) = &s.failure {
        t.push_str(&format!("\nfailed: {f}"));
    }
    t
}

/// A round tick interval giving at most about ten ticks.
fn tick_step(horizon: Duration) -> Duration {
    const STEPS_MS: [u64; 16] = [
        10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000,
        300_000, 600_000,
    ];
    let ms = horizon.as_millis() as u64;
    let step = STEPS_MS
        .iter()
        .copied()
        .find(|s| ms / s <= 10)
        .unwrap_or_else(|| (ms / 10).max(1));
    Duration::from_millis(step)
}

fn tick_label(t: Duration, step: Duration) -> String {
    if step < Duration::from_millis(100) {
        format!("{:.2}s", t.as_secs_f64())
    } else if step < Duration::from_secs(1) {
        format!("{:.1}s", t.as_secs_f64())
    } else if step < Duration::from_secs(60) {
        format!("{}s", t.as_secs())
    } else {
        format!("{}m", t.as_secs() / 60)
    }
}

/// Escape text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::testing::{finished, ids, run_started, stats, table};
    use crate::events::{Event, Reporter};

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// Start and finish batch `batch` on `sandbox`.
    fn run_batch(
        spans: &mut RunSpans,
        (batch, kind, sandbox): (usize, BatchKind, usize),
        (start, end): (f64, f64),
        outcome: BatchOutcome,
        tests: &[(&str, Outcome, f64)],
    ) {
        let names: Vec<&str> = tests.iter().map(|t| t.0).collect();
        spans.record(&Event::BatchStarted {
            batch,
            kind,
            sandbox,
            tests: &ids(&names),
            at: secs(start),
        });
        let mut done = finished(
            batch,
            sandbox,
            outcome,
            (secs(start), secs(end)),
            &names,
            tests.iter().map(|t| Some(t.1)).collect(),
        );
        done.kind = kind;
        done.durations = tests.iter().map(|t| Some(secs(t.2))).collect();
        spans.record(&Event::BatchFinished(&done));
    }

    /// Three sandboxes; sandbox 1 finishes last.
    fn sample_spans() -> RunSpans {
        let mut spans = RunSpans::default();
        let table = table(&["a", "b", "c", "d"]);
        spans.record(&Event::DiscoveryStarted {
            group: "all",
            command: "./discover.sh",
            at: secs(0.0),
        });
        spans.record(&Event::DiscoveryFinished {
            group: "all",
            tests: 4,
            at: secs(0.4),
        });
        spans.record(&run_started(&table, 3));
        for s in 0..3 {
            spans.record(&Event::SandboxCreating {
                sandbox: s,
                at: secs(0.4),
            });
            spans.record(&Event::SandboxReady {
                sandbox: s,
                id: &format!("local-{s}"),
                at: secs(0.5),
            });
        }
        let fresh = BatchKind::Fresh;
        run_batch(
            &mut spans,
            (1, fresh, 0),
            (0.5, 2.0),
            BatchOutcome::Success,
            &[("tests/a.py::test_<ok>", Outcome::Passed, 1.0)],
        );
        run_batch(
            &mut spans,
            (2, fresh, 1),
            (0.5, 4.0),
            BatchOutcome::Failure,
            &[("tests/b.py::test_bad", Outcome::Failed, 3.0)],
        );
        run_batch(
            &mut spans,
            (3, fresh, 2),
            (0.5, 1.0),
            BatchOutcome::Error,
            &[("tests/c.py::test_lost", Outcome::Error, 0.1)],
        );
        run_batch(
            &mut spans,
            (4, BatchKind::Retry, 0),
            (2.0, 3.0),
            BatchOutcome::Success,
            &[("tests/a.py::test_two", Outcome::Passed, 0.5)],
        );
        spans.record(&Event::RunFinished {
            records: &[],
            stats: &stats(secs(4.0), false),
        });
        spans
    }

    #[test]
    fn one_lane_per_sandbox_one_labelled_bar_per_batch() {
        let page = render_timeline(&sample_spans());
        assert_eq!(page.matches(r#"<div class="lane sandbox"#).count(), 3);
        assert_eq!(page.matches(r#"<details class="bar batch "#).count(), 4);
        assert_eq!(page.matches(r#"data-critical="true""#).count(), 1);
        assert!(page.contains(
            r#"<div class="lane sandbox critical" data-sandbox="1" data-critical="true">"#
        ));
        assert!(page.contains("sandbox 1 ★ critical path"));
        for label in ["#1 · 1", "#2 · 1", "#3 · 1", "#4 · 1 · retry"] {
            assert!(
                page.contains(&format!("<span>{label}</span></summary>")),
                "{label}"
            );
        }
        // Self-contained: no script, no link, no URL of any kind.
        for banned in ["<script", "<link", "http:", "https:", "src=", "url("] {
            assert!(!page.contains(banned), "page contains {banned}");
        }
        // Fluid: nothing is as wide as a fixed number of pixels.
        assert!(!page.contains("width=\""), "a fixed width");
    }

    #[test]
    fn bars_are_placed_in_percent_of_the_axis_with_their_kind_marked() {
        let page = render_timeline(&sample_spans());
        // Batch 4 runs from 2 s to 3 s of a 4 s run: half-way, a quarter wide.
        assert!(page.contains(
            r#"<details class="bar batch success retry" name="batch" data-batch="4" style="left:50.000%;width:25.000%"><summary class="fit" title="batch 4 (retry) · sandbox 0 · success · 2.00s → 3.00s (1.0s)
1 test, 500ms reported · click for each test&#39;s time"><span>#4 · 1 · retry</span></summary>"#
        ), "{page}");
        // The failing test is named on hover.
        assert!(page.contains("click for each test&#39;s time\nFAILED  tests/b.py::test_bad\""));
        // Test names are escaped.
        assert!(page.contains("tests/a.py::test_&lt;ok&gt;"));
        assert!(!page.contains("test_<ok>"));
        // The legend explains the stripes.
        assert!(page.contains(r#"<span class="swatch hang-split"></span>hang split"#));
    }

    #[test]
    fn discovery_and_start_ups_are_phases_of_their_own() {
        let mut spans = sample_spans();
        spans.prepare = Some((secs(0.0), secs(1.0)));
        let page = render_timeline(&spans);
        assert!(page.contains(
            r#"<div class="bar fit discovery" style="left:0.000%;width:10.000%" title="discovery of group `all`: 4 tests in 400ms
./discover.sh"><span>all · 4</span></div>"#
        ), "{page}");
        assert!(page.contains(
            r#"<div class="bar fit prepare" style="left:0.000%;width:25.000%" title="the provider's preparation: 1.0s"><span>prepare 1.0s</span></div>"#
        ));
        assert_eq!(page.matches(r#"<div class="lane phase""#).count(), 2);
        assert_eq!(
            page.matches(
                r#"<div class="bar fit startup" style="left:10.000%;width:2.500%" title="sandbox "#
            )
            .count(),
            3
        );
        assert!(page.contains("<span>start-up 100ms</span>"));
    }

    #[test]
    fn a_click_on_a_bar_shows_each_test_on_the_batch_s_own_time() {
        let mut spans = RunSpans::default();
        run_batch(
            &mut spans,
            (7, BatchKind::Fresh, 0),
            (0.0, 2.0),
            BatchOutcome::Failure,
            &[
                ("t::a", Outcome::Passed, 0.5),
                ("t::b", Outcome::Failed, 1.0),
            ],
        );
        spans.record(&Event::RunFinished {
            records: &[],
            stats: &stats(secs(2.0), false),
        });
        let page = render_timeline(&spans);
        // One after another, ending where the batch ended: 0.5 s of start-up.
        assert!(page.contains(r#"<div class="drawer" id="batch-7"><h2>batch 7 · sandbox 0 · failure · 0.00s → 2.00s (2.0s)</h2><div class="hint">2 tests, 1.5s reported · one after another, ending where the batch ended</div>"#), "{page}");
        assert!(page.contains(r#"<div class="t passed" style="--s:25.00%;--w:25.00%"><code>t::a</code><b>500ms</b><em>passed</em><i></i></div><div class="t failed" style="--s:50.00%;--w:50.00%"><code>t::b</code><b>1.0s</b><em>FAILED</em><i></i></div>"#), "{page}");

        // Side by side (nextest), the same tests overlap on two lanes.
        spans.test_order = TestOrder::SideBySide;
        spans.batches[0].durations = vec![Some(secs(1.5)), Some(secs(1.0))];
        let page = render_timeline(&spans);
        assert!(
            page.contains("side by side, on at least 2 lanes, ending where"),
            "{page}"
        );
        assert!(page.contains(r#"<div class="t passed" style="--s:25.00%;--w:75.00%">"#));
        assert!(page.contains(r#"<div class="t failed" style="--s:25.00%;--w:50.00%">"#));
    }

    #[test]
    fn a_big_batch_lists_its_failures_and_slowest_tests_and_counts_the_rest() {
        let mut spans = RunSpans::default();
        let names: Vec<String> = (0..250).map(|i| format!("t{i:03}")).collect();
        let tests: Vec<(&str, Outcome, f64)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let outcome = if i == 3 {
                    Outcome::Failed
                } else {
                    Outcome::Passed
                };
                (n.as_str(), outcome, 0.001 * (i as f64 + 1.0))
            })
            .collect();
        run_batch(
            &mut spans,
            (1, BatchKind::Fresh, 0),
            (0.0, 40.0),
            BatchOutcome::Failure,
            &tests,
        );
        spans.record(&Event::RunFinished {
            records: &[],
            stats: &stats(secs(40.0), false),
        });
        let page = render_timeline(&spans);
        assert_eq!(page.matches(r#"<div class="t "#).count(), BREAKDOWN_TESTS);
        // The fast failure is listed, then the 99 slowest, in the batch's order.
        let listed: Vec<&str> = page.split("<code>").skip(1).map(|s| &s[..4]).collect();
        assert_eq!(listed[0], "t003");
        assert_eq!(listed[1], "t151");
        assert_eq!(listed[99], "t249");
        assert!(page.contains("… and 150 more, "), "{page}");
    }

    #[test]
    fn a_large_run_gives_a_bounded_page() {
        // 100,000 tests in 5,000 batches: 5 listed per breakdown.
        let mut spans = RunSpans::default();
        let names: Vec<String> = (0..20)
            .map(|i| format!("tests/test_module_{i}.py::TestSomething::test_case_{i}"))
            .collect();
        let tests: Vec<(&str, Outcome, f64)> = names
            .iter()
            .map(|n| (n.as_str(), Outcome::Passed, 0.01))
            .collect();
        for b in 0..5_000 {
            let start = b as f64 * 0.1;
            run_batch(
                &mut spans,
                (b + 1, BatchKind::Fresh, b % 16),
                (start, start + 0.5),
                BatchOutcome::Success,
                &tests,
            );
        }
        spans.record(&Event::RunFinished {
            records: &[],
            stats: &stats(secs(600.0), false),
        });
        let page = render_timeline(&spans);
        assert_eq!(breakdown_limit(5_000), MIN_BREAKDOWN_TESTS);
        assert_eq!(page.matches(r#"<div class="t "#).count(), 5_000 * 5);
        // About 1.5 kB a batch.
        assert!(page.len() < 10 << 20, "{} bytes", page.len());
        // 20,000 tests in 200 batches: 50 listed per breakdown.
        assert_eq!(breakdown_limit(200), 50);
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(
            tick_step(Duration::from_secs(4)),
            Duration::from_millis(500)
        );
        assert_eq!(tick_step(Duration::from_secs(95)), Duration::from_secs(10));
        assert_eq!(
            tick_step(Duration::from_millis(3)),
            Duration::from_millis(10)
        );
        assert_eq!(
            tick_label(Duration::from_secs(120), Duration::from_secs(60)),
            "2m"
        );
        assert_eq!(
            tick_label(Duration::from_millis(1500), Duration::from_millis(500)),
            "1.5s"
        );
        assert_eq!(
            tick_label(Duration::from_millis(20), Duration::from_millis(10)),
            "0.02s"
        );
    }

    #[test]
    fn a_failed_sandbox_says_why_in_its_row() {
        let mut spans = sample_spans();
        spans.record(&Event::SandboxCreating {
            sandbox: 3,
            at: secs(0.1),
        });
        spans.record(&Event::SandboxFailed {
            sandbox: 3,
            error: "create_command failed (exit code 1): <quota>\nmore",
            at: secs(0.5),
        });
        let page = render_timeline(&spans);
        assert_eq!(page.matches(r#"<div class="lane sandbox"#).count(), 4);
        assert!(
            page.contains(
                "sandbox failed: create_command failed (exit code 1): &lt;quota&gt;</div>"
            ),
            "{page}"
        );
        assert!(page.contains("<span>start-up failed</span>"));
    }

    #[test]
    fn reporter_writes_the_page_at_the_end() {
        let dir = std::env::temp_dir().join(format!("offload-timeline-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut r = reporter(&dir.join("out"), TestOrder::OneAfterAnother);
        let table = table(&[]);
        r.on_event(&run_started(&table, 1)).unwrap();
        assert!(!dir.join("out").join(TIMELINE_FILE).exists());
        r.on_event(&Event::RunFinished {
            records: &[],
            stats: &stats(Duration::from_secs(1), false),
        })
        .unwrap();
        let page = std::fs::read_to_string(dir.join("out").join(TIMELINE_FILE)).unwrap();
        assert!(page.starts_with("<!DOCTYPE html>"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
