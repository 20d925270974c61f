//! `{output_dir}/timeline.html`: the run at a glance. One self-contained page
//! (inline SVG and CSS, no script, nothing fetched): a row per sandbox, a bar
//! per batch coloured by outcome, the batch's tests in the bar's tooltip (an
//! SVG `<title>`, which browsers show without JavaScript), and the critical
//! path — the sandbox the run waited for — highlighted.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::spans::{BatchSpan, RunSpans, SpansFileReporter};
use super::summary::format_duration;
use crate::events::{BatchKind, BatchOutcome};
use crate::model::Outcome;

/// The file name inside the output directory.
pub const TIMELINE_FILE: &str = "timeline.html";

/// Page geometry, in CSS pixels.
const LABEL_WIDTH: f64 = 200.0;
const CHART_WIDTH: f64 = 940.0;
const RIGHT_MARGIN: f64 = 20.0;
const AXIS_HEIGHT: f64 = 28.0;
const ROW_HEIGHT: f64 = 26.0;
const ROW_GAP: f64 = 8.0;

/// Tests listed in one bar's tooltip; the rest are counted.
const TOOLTIP_TESTS: usize = 100;

/// Records the run and writes `{output_dir}/timeline.html` when it finishes.
pub fn reporter(output_dir: &Path) -> SpansFileReporter {
    SpansFileReporter::new(output_dir.join(TIMELINE_FILE), render_timeline)
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

/// The whole page.
pub fn render_timeline(spans: &RunSpans) -> String {
    let horizon = spans.horizon().max(Duration::from_millis(1));
    let critical = spans.critical_sandbox();
    let rows: Vec<usize> = spans.sandboxes.keys().copied().collect();
    let height = AXIS_HEIGHT + rows.len() as f64 * (ROW_HEIGHT + ROW_GAP) + ROW_GAP;
    let width = LABEL_WIDTH + CHART_WIDTH + RIGHT_MARGIN;
    let x_of = |t: Duration| LABEL_WIDTH + t.as_secs_f64() / horizon.as_secs_f64() * CHART_WIDTH;
    let y_of = |row: usize| AXIS_HEIGHT + ROW_GAP + row as f64 * (ROW_HEIGHT + ROW_GAP);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg class="timeline" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="batches per sandbox over time">"#
    );

    // Time axis: a handful of round ticks with grid lines.
    let step = tick_step(horizon);
    let mut t = Duration::ZERO;
    while t <= horizon {
        let x = x_of(t);
        let _ = writeln!(
            svg,
            r#"<line class="grid" x1="{x:.1}" y1="{AXIS_HEIGHT}" x2="{x:.1}" y2="{height}"/><text class="tick" x="{x:.1}" y="{y:.1}">{label}</text>"#,
            y = AXIS_HEIGHT - 10.0,
            label = tick_label(t, step)
        );
        t += step;
    }

    for (row, index) in rows.iter().enumerate() {
        let sandbox = &spans.sandboxes[index];
        let is_critical = critical == Some(*index);
        let y = y_of(row);
        let _ = writeln!(
            svg,
            r#"<g class="sandbox" data-sandbox="{index}" data-critical="{is_critical}">"#
        );
        let _ = writeln!(
            svg,
            r#"<rect class="row{extra}" x="0" y="{y:.1}" width="{width}" height="{ROW_HEIGHT}"/>"#,
            extra = if is_critical { " critical" } else { "" }
        );
        let mut label = format!("sandbox {index}");
        if let Some(id) = &sandbox.id {
            if id != &format!("local-{index}") {
                let short: String = id.chars().take(16).collect();
                label.push_str(&format!(" ({short})"));
            }
        }
        if is_critical {
            label.push_str(" ★ critical path");
        }
        let _ = writeln!(
            svg,
            r#"<text class="label" x="12" y="{ty:.1}">{label}<title>{title}</title></text>"#,
            ty = y + ROW_HEIGHT / 2.0 + 4.0,
            label = escape(&label),
            title = escape(&sandbox_title(spans, *index))
        );
        // The sandbox's life (created → destroyed) as a thin line under its batches.
        if let Some(ready) = sandbox.ready {
            let end = sandbox.end.unwrap_or(horizon);
            let _ = writeln!(
                svg,
                r#"<line class="life" x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}"/>"#,
                x_of(ready),
                x_of(end),
                ly = y + ROW_HEIGHT - 3.0
            );
        }
        if let Some(failure) = &sandbox.failure {
            // Say why in the row itself: a failed sandbox often has no bars.
            let first_line = failure.lines().next().unwrap_or("");
            let short: String = first_line.chars().take(120).collect();
            let _ = writeln!(
                svg,
                r#"<text class="failed" x="{:.1}" y="{ty:.1}">sandbox failed: {}</text>"#,
                x_of(sandbox.end.unwrap_or_default()) + 4.0,
                escape(&short),
                ty = y + ROW_HEIGHT / 2.0 + 4.0,
            );
        }
        for batch in spans.batches.iter().filter(|b| b.sandbox == *index) {
            let x = x_of(batch.started);
            let w = (x_of(batch.end(spans.wall)) - x).max(1.5);
            let outcome = batch.outcome_or_cancelled();
            let _ = writeln!(
                svg,
                r#"<rect class="batch {name}" data-batch="{n}" x="{x:.1}" y="{by:.1}" width="{w:.1}" height="{bh:.1}" rx="2" fill="{fill}"><title>{title}</title></rect>"#,
                name = outcome.as_str(),
                n = batch.batch,
                by = y + 3.0,
                bh = ROW_HEIGHT - 9.0,
                fill = outcome_colour(outcome),
                title = escape(&batch_title(batch, spans.wall))
            );
        }
        svg.push_str("</g>\n");
    }
    svg.push_str("</svg>\n");

    let counts = spans.counts;
    let mut heading = format!(
        "{} tests · {} passed · {} failed · {} flaky · {} not run · {} skipped · {} sandboxes · wall time {}",
        counts.total,
        counts.passed,
        counts.failed,
        counts.flaky,
        counts.not_run,
        counts.skipped,
        rows.len(),
        format_duration(spans.wall)
    );
    if spans.cancelled {
        heading.push_str(" · cancelled");
    }
    let legend: String = [
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

    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Offload run timeline</title>
<style>
body {{ margin: 0; font: 13px system-ui, sans-serif; color: #222; background: #fff; }}
header {{ padding: 10px 24px 4px 24px; }}
h1 {{ font-size: 16px; margin: 0 0 4px 0; }}
.key {{ margin-right: 14px; }}
.swatch {{ display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px; }}
.hint {{ color: #666; }}
svg.timeline {{ display: block; }}
.row {{ fill: #eef0f4; }}
.row.critical {{ fill: #fff1bf; stroke: #d99a00; stroke-width: 1.5; }}
.grid {{ stroke: #d8dbe2; stroke-dasharray: 2 3; }}
.tick {{ font-size: 11px; fill: #666; text-anchor: middle; }}
.label {{ font-size: 12px; fill: #222; }}
.life {{ stroke: #9aa3b5; stroke-width: 2; }}
.failed {{ font-size: 12px; fill: #b3261e; }}
.batch {{ stroke: #fff; stroke-width: 0.5; }}
.batch:hover {{ stroke: #000; stroke-width: 1.5; }}
[data-critical="true"] .batch {{ stroke: #5a4100; stroke-width: 1.2; }}
</style>
</head>
<body>
<header>
<h1>Offload run timeline</h1>
<div>{heading}</div>
<div class="hint">{discovery}</div>
<div>{legend} <span class="hint">Hover a bar for its tests; the highlighted row is the critical path (the sandbox that finished last).</span></div>
</header>
{svg}</body>
</html>
"#,
        heading = escape(&heading),
        discovery = escape(&discovery_line(spans)),
    )
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
    if let Some(at) = spans.execution_started {
        if !line.is_empty() {
            line.push_str("; ");
        }
        line.push_str(&format!("tests started at {}", format_duration(at)));
    }
    line
}

fn sandbox_title(spans: &RunSpans, index: usize) -> String {
    let s = &spans.sandboxes[&index];
    let mut t = format!("sandbox {index}");
    if let Some(id) = &s.id {
        t.push_str(&format!(" ({id})"));
    }
    let batches: Vec<&BatchSpan> = spans
        .batches
        .iter()
        .filter(|b| b.sandbox == index)
        .collect();
    let busy: Duration = batches.iter().map(|b| b.end(spans.wall) - b.started).sum();
    t.push_str(&format!(
        "\n{} batches, busy {}",
        batches.len(),
        format_duration(busy)
    ));
    if let Some(f) = &s.failure {
        t.push_str(&format!("\nfailed: {f}"));
    }
    t
}

fn batch_title(b: &BatchSpan, wall: Duration) -> String {
    let end = b.end(wall);
    let kind = match b.kind {
        BatchKind::Fresh => String::new(),
        kind => format!(" ({})", kind.as_str()),
    };
    let mut t = format!(
        "batch {}{kind} · sandbox {} · {} · {:.2}s → {:.2}s ({})\n",
        b.batch,
        b.sandbox,
        b.outcome_or_cancelled().as_str(),
        b.started.as_secs_f64(),
        end.as_secs_f64(),
        format_duration(end - b.started)
    );
    for (id, outcome) in b.results().take(TOOLTIP_TESTS) {
        let mark = match outcome {
            Some(Outcome::Passed) => "passed ",
            Some(Outcome::Failed) => "FAILED ",
            Some(Outcome::Error) => "ERROR  ",
            Some(Outcome::Skipped) => "skipped",
            None => "no result",
        };
        let _ = writeln!(t, "{mark}  {id}");
    }
    if b.tests.len() > TOOLTIP_TESTS {
        let _ = writeln!(t, "… and {} more", b.tests.len() - TOOLTIP_TESTS);
    }
    t.trim_end().to_string()
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

/// Escape text for HTML/SVG content and attribute values.
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
    use crate::events::{Event, Reporter};

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// Three sandboxes; sandbox 1 finishes last.
    pub(crate) fn sample_spans() -> RunSpans {
        use crate::events::testing::{finished, ids, run_started, stats, table};
        let mut spans = RunSpans::default();
        let table = table(&["a", "b", "c", "d"]);
        spans.record(&run_started(&table, 3));
        for s in 0..3 {
            spans.record(&Event::SandboxReady {
                sandbox: s,
                id: &format!("local-{s}"),
                at: secs(0.0),
            });
        }
        let batches = [
            (
                1,
                0,
                0.0,
                2.0,
                BatchOutcome::Success,
                "tests/a.py::test_<ok>",
                Outcome::Passed,
            ),
            (
                2,
                1,
                0.0,
                4.0,
                BatchOutcome::Failure,
                "tests/b.py::test_bad",
                Outcome::Failed,
            ),
            (
                3,
                2,
                0.0,
                1.0,
                BatchOutcome::Error,
                "tests/c.py::test_lost",
                Outcome::Error,
            ),
            (
                4,
                0,
                2.0,
                3.0,
                BatchOutcome::Success,
                "tests/a.py::test_two",
                Outcome::Passed,
            ),
        ];
        for (batch, sandbox, start, end, outcome, test, result) in batches {
            spans.record(&Event::BatchStarted {
                batch,
                kind: BatchKind::Fresh,
                sandbox,
                tests: &ids(&[test]),
                at: secs(start),
            });
            let done = finished(
                batch,
                sandbox,
                outcome,
                (secs(start), secs(end)),
                &[test],
                vec![Some(result)],
            );
            spans.record(&Event::BatchFinished(&done));
        }
        spans.record(&Event::RunFinished {
            records: &[],
            stats: &stats(secs(4.0), false),
        });
        spans
    }

    #[test]
    fn one_row_per_sandbox_one_bar_per_batch() {
        let page = render_timeline(&sample_spans());
        assert_eq!(page.matches(r#"<rect class="row"#).count(), 3);
        assert_eq!(page.matches(r#"<rect class="batch "#).count(), 4);
        assert_eq!(page.matches(r#"data-critical="true">"#).count(), 1);
        assert!(page.contains(r#"<g class="sandbox" data-sandbox="1" data-critical="true">"#));
        assert!(page.contains("sandbox 1 ★ critical path"));
        // Self-contained: no script, no link, no URL of any kind.
        for banned in ["<script", "<link", "http:", "https:", "src="] {
            assert!(!page.contains(banned), "page contains {banned}");
        }
    }

    #[test]
    fn bars_are_placed_on_the_time_axis_with_tests_in_the_tooltip() {
        let page = render_timeline(&sample_spans());
        // Batch 4 runs from 2 s to 3 s of a 4 s run: half-way, a quarter wide.
        let x = LABEL_WIDTH + CHART_WIDTH / 2.0;
        let w = CHART_WIDTH / 4.0;
        let expected = format!(
            r##"<rect class="batch success" data-batch="4" x="{x:.1}" y="{y:.1}" width="{w:.1}" height="17.0" rx="2" fill="#2e9d4e"><title>batch 4 · sandbox 0 · success · 2.00s → 3.00s (1.0s)
passed   tests/a.py::test_two</title></rect>"##,
            y = AXIS_HEIGHT + ROW_GAP + 3.0
        );
        assert!(page.contains(&expected), "{page}");
        // Test names are escaped.
        assert!(page.contains("tests/a.py::test_&lt;ok&gt;"));
        assert!(!page.contains("test_<ok>"));
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
        spans.record(&Event::SandboxFailed {
            sandbox: 3,
            error: "create_command failed (exit code 1): <quota>\nmore",
            at: secs(0.5),
        });
        let page = render_timeline(&spans);
        assert_eq!(page.matches(r#"<rect class="row"#).count(), 4);
        assert!(
            page.contains(
                "sandbox failed: create_command failed (exit code 1): &lt;quota&gt;</text>"
            ),
            "{page}"
        );
    }

    #[test]
    fn reporter_writes_the_page_at_the_end() {
        let dir = std::env::temp_dir().join(format!("offload-timeline-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut r = reporter(&dir.join("out"));
        let table = crate::events::testing::table(&[]);
        r.on_event(&crate::events::testing::run_started(&table, 1))
            .unwrap();
        assert!(!dir.join("out").join(TIMELINE_FILE).exists());
        r.on_event(&Event::RunFinished {
            records: &[],
            stats: &crate::events::testing::stats(Duration::from_secs(1), false),
        })
        .unwrap();
        let page = std::fs::read_to_string(dir.join("out").join(TIMELINE_FILE)).unwrap();
        assert!(page.starts_with("<!DOCTYPE html>"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
