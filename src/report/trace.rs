//! `{output_dir}/trace.json` (`run --trace`): the run in Chrome's trace-event
//! format, which Perfetto (ui.perfetto.dev) and chrome://tracing open.
//!
//! * Process 0 is Offload itself: the whole run on thread 0, discovery (a
//!   slice per group) on thread 1, the provider's preparation on thread 2.
//! * Process `i + 1` is sandbox `i`: its start-ups and its life on thread 0;
//!   on thread 1 a complete event (`ph: "X"`) per batch, carrying the batch's
//!   tests and outcome in `args`, with a slice per test that reported a time
//!   nested inside it. Tests that ran side by side (nextest) take more lanes:
//!   lane `k` is thread `k + 1`. Where each test sits inside its batch is
//!   reconstructed from the JUnit times (`BatchSpan::test_layout` says how).

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::spans::{RunSpans, SpansFileReporter, TestOrder};
use crate::model::Outcome;

/// The file name inside the output directory.
pub const TRACE_FILE: &str = "trace.json";

/// Records the run and writes `{output_dir}/trace.json` when it finishes.
pub fn reporter(output_dir: &Path, test_order: TestOrder) -> SpansFileReporter {
    SpansFileReporter::new(output_dir.join(TRACE_FILE), test_order, |spans| {
        trace_json(&render_trace(spans))
    })
}

/// The trace as JSON, one event per line (compact, yet easy to grep and
/// diff: a run of 20,000 tests has as many slices).
pub fn trace_json(trace: &Trace<'_>) -> String {
    let mut out = String::from("{\"traceEvents\": [\n");
    for (i, event) in trace.trace_events.iter().enumerate() {
        if i > 0 {
            out.push_str(",\n");
        }
        out.push_str(&serde_json::to_string(event).unwrap_or_else(|_| "{}".into()));
    }
    out.push_str(&format!(
        "\n],\n\"displayTimeUnit\": \"{}\"}}\n",
        trace.display_time_unit
    ));
    out
}

/// The trace document: `{"traceEvents": [...], "displayTimeUnit": "ms"}`.
#[derive(Debug, Serialize)]
pub struct Trace<'a> {
    #[serde(rename = "traceEvents")]
    pub trace_events: Vec<TraceEvent<'a>>,
    #[serde(rename = "displayTimeUnit")]
    pub display_time_unit: &'static str,
}

/// One trace event: metadata (`ph: "M"`), a complete event (`"X"`, with
/// `ts` and `dur`) or an instant (`"i"`, with `ts` and scope `s`). Times
/// are in microseconds.
#[derive(Debug, Serialize)]
pub struct TraceEvent<'a> {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cat: Option<&'static str>,
    pub ph: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s: Option<&'static str>,
    pub pid: usize,
    pub tid: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dur: Option<u64>,
    pub args: Args<'a>,
}

/// What an event carries in `args`, by kind of event.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Args<'a> {
    /// `process_name`, `thread_name`.
    Name { name: String },
    /// `process_sort_index`, `thread_sort_index`.
    SortIndex { sort_index: usize },
    /// The whole run.
    Run {
        tests: usize,
        passed: usize,
        failed: usize,
        flaky: usize,
        not_run: usize,
        skipped: usize,
        parallelism: usize,
        cancelled: bool,
    },
    /// Discovery of one group (`tests`: `null` when it did not finish).
    Discovery {
        group: &'a str,
        command: &'a str,
        tests: Option<usize>,
    },
    /// The provider's preparation.
    Prepare {},
    /// A sandbox's creation (`replacement`: not its first).
    StartUp {
        sandbox: usize,
        replacement: bool,
        failed: bool,
    },
    /// A sandbox's life.
    Sandbox { sandbox: usize, id: Option<&'a str> },
    /// A sandbox that failed.
    SandboxFailed { error: &'a str },
    /// A batch, with each of its tests' outcome (`null`: no result), and
    /// how its test slices are laid out (`one after another`, `side by
    /// side`) on how many lanes.
    Batch {
        batch: usize,
        kind: &'static str,
        sandbox: usize,
        outcome: &'static str,
        test_count: usize,
        reported_ms: u64,
        tests_laid_out: &'static str,
        lanes: usize,
        tests: Vec<TestOutcome<'a>>,
    },
    /// One test inside its batch.
    Test {
        batch: usize,
        outcome: Option<&'static str>,
    },
}

#[derive(Debug, Serialize)]
pub struct TestOutcome<'a> {
    pub id: &'a str,
    pub outcome: Option<&'static str>,
}

/// Microseconds, the unit of `ts` and `dur`.
fn micros(d: Duration) -> u64 {
    d.as_micros() as u64
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Passed => "passed",
        Outcome::Skipped => "skipped",
        Outcome::Failed => "failed",
        Outcome::Error => "error",
    }
}

/// A metadata event.
fn metadata<'a>(pid: usize, tid: usize, name: &str, args: Args<'a>) -> TraceEvent<'a> {
    TraceEvent {
        name: name.to_string(),
        cat: None,
        ph: "M",
        s: None,
        pid,
        tid,
        ts: None,
        dur: None,
        args,
    }
}

/// A complete event from `start` lasting `length` (both in microseconds).
fn complete<'a>(
    name: String,
    cat: &'static str,
    (pid, tid): (usize, usize),
    (start, length): (u64, u64),
    args: Args<'a>,
) -> TraceEvent<'a> {
    TraceEvent {
        name,
        cat: Some(cat),
        ph: "X",
        s: None,
        pid,
        tid,
        ts: Some(start),
        dur: Some(length),
        args,
    }
}

/// `(ts, dur)` of `[start, end]`.
fn span(start: Duration, end: Duration) -> (u64, u64) {
    (micros(start), micros(end.saturating_sub(start)))
}

fn named(name: impl Into<String>) -> Args<'static> {
    Args::Name { name: name.into() }
}

/// Thread `tid` of process `pid` is called `name`, listed in that order.
fn thread<'a>(events: &mut Vec<TraceEvent<'a>>, pid: usize, tid: usize, name: String) {
    events.push(metadata(pid, tid, "thread_name", named(name)));
    events.push(metadata(
        pid,
        tid,
        "thread_sort_index",
        Args::SortIndex { sort_index: tid },
    ));
}

/// The trace of the run `spans` recorded.
pub fn render_trace(spans: &RunSpans) -> Trace<'_> {
    let mut events = vec![
        metadata(0, 0, "process_name", named("Offload")),
        metadata(
            0,
            0,
            "process_sort_index",
            Args::SortIndex { sort_index: 0 },
        ),
    ];
    thread(&mut events, 0, 0, "run".into());
    let counts = spans.counts;
    events.push(complete(
        "run".into(),
        "run",
        (0, 0),
        span(Duration::ZERO, spans.wall),
        Args::Run {
            tests: counts.total,
            passed: counts.passed,
            failed: counts.failed,
            flaky: counts.flaky,
            not_run: counts.not_run,
            skipped: counts.skipped,
            parallelism: spans.parallelism,
            cancelled: spans.cancelled,
        },
    ));
    let horizon = spans.horizon();
    if !spans.discovery.is_empty() {
        thread(&mut events, 0, 1, "discovery".into());
    }
    for d in &spans.discovery {
        let end = d.finished.map_or(horizon, |(end, _)| end);
        events.push(complete(
            format!("discover {}", d.group),
            "discovery",
            (0, 1),
            span(d.started, end),
            Args::Discovery {
                group: &d.group,
                command: &d.command,
                tests: d.finished.map(|(_, tests)| tests),
            },
        ));
    }
    if let Some((started, finished)) = spans.prepare {
        thread(&mut events, 0, 2, "prepare".into());
        events.push(complete(
            "prepare".into(),
            "prepare",
            (0, 2),
            span(started, finished),
            Args::Prepare {},
        ));
    }

    // The lanes each sandbox's tests need: its threads 1, 2, ….
    let layouts: Vec<_> = spans
        .batches
        .iter()
        .map(|b| b.test_layout(spans.test_order, spans.wall))
        .collect();
    let mut lanes = std::collections::BTreeMap::new();
    for (b, layout) in spans.batches.iter().zip(&layouts) {
        let l = lanes.entry(b.sandbox).or_insert(1);
        *l = layout.lanes.max(*l);
    }

    for (index, sandbox) in &spans.sandboxes {
        let pid = index + 1;
        let name = match &sandbox.id {
            Some(id) => format!("Sandbox {index} ({id})"),
            None => format!("Sandbox {index}"),
        };
        events.push(metadata(pid, 0, "process_name", named(name)));
        events.push(metadata(
            pid,
            0,
            "process_sort_index",
            Args::SortIndex { sort_index: pid },
        ));
        thread(&mut events, pid, 0, "sandbox".into());
        thread(&mut events, pid, 1, "batches".into());
        for lane in 1..lanes.get(index).copied().unwrap_or(1) {
            thread(
                &mut events,
                pid,
                lane + 1,
                format!("tests side by side, lane {}", lane + 1),
            );
        }
        for (n, startup) in sandbox.startups.iter().enumerate() {
            events.push(complete(
                if n == 0 { "start-up" } else { "replacement" }.into(),
                "sandbox",
                (pid, 0),
                span(startup.began, startup.ended.unwrap_or(horizon)),
                Args::StartUp {
                    sandbox: *index,
                    replacement: n > 0,
                    failed: startup.failed,
                },
            ));
        }
        if let Some(ready) = sandbox.ready {
            events.push(complete(
                "sandbox".into(),
                "sandbox",
                (pid, 0),
                span(ready, sandbox.end.unwrap_or(horizon).max(ready)),
                Args::Sandbox {
                    sandbox: *index,
                    id: sandbox.id.as_deref(),
                },
            ));
        }
        if let Some(failure) = &sandbox.failure {
            events.push(TraceEvent {
                name: "sandbox failed".into(),
                cat: Some("sandbox"),
                ph: "i",
                s: Some("p"),
                pid,
                tid: 0,
                ts: Some(micros(sandbox.end.unwrap_or_default())),
                dur: None,
                args: Args::SandboxFailed { error: failure },
            });
        }
    }

    for (b, layout) in spans.batches.iter().zip(layouts) {
        let pid = b.sandbox + 1;
        let end = b.end(spans.wall);
        let tests = b
            .results()
            .map(|(id, outcome)| TestOutcome {
                id,
                outcome: outcome.map(outcome_name),
            })
            .collect();
        let kind = match b.kind {
            crate::events::BatchKind::Fresh => String::new(),
            kind => format!(" ({})", kind.as_str()),
        };
        let start = micros(b.started);
        events.push(complete(
            format!("batch {}{kind}", b.batch),
            "batch",
            (pid, 1),
            (start, micros(end - b.started)),
            Args::Batch {
                batch: b.batch,
                kind: b.kind.as_str(),
                sandbox: b.sandbox,
                outcome: b.outcome_or_cancelled().as_str(),
                test_count: b.tests.len(),
                reported_ms: layout.reported.as_millis() as u64,
                tests_laid_out: match layout.order {
                    TestOrder::OneAfterAnother => "one after another",
                    TestOrder::SideBySide => "side by side",
                },
                lanes: layout.lanes,
                tests,
            },
        ));
        // Offsets from the batch's start, in microseconds, so that a slice
        // never ends after its batch through rounding.
        for slice in &layout.slices {
            let (from, to) = (micros(slice.start), micros(slice.end));
            events.push(complete(
                b.tests[slice.test].clone(),
                "test",
                (pid, slice.lane + 1),
                (start + from, to - from),
                Args::Test {
                    batch: b.batch,
                    outcome: b.outcomes[slice.test].map(outcome_name),
                },
            ));
        }
    }

    Trace {
        trace_events: events,
        display_time_unit: "ms",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::events::testing::{finished, stats};
    use crate::events::{BatchOutcome, Event};

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// The run as a trace, parsed back from the file's text.
    fn trace_of(spans: &RunSpans) -> Vec<Value> {
        let text = trace_json(&render_trace(spans));
        let trace: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(trace["displayTimeUnit"], "ms");
        let all = trace["traceEvents"].as_array().unwrap().clone();
        // Every event has the fields trace viewers require.
        for e in &all {
            assert!(
                e["ph"].is_string() && e["pid"].is_u64() && e["name"].is_string(),
                "{e}"
            );
        }
        all
    }

    #[test]
    fn one_process_per_sandbox_and_one_complete_event_per_batch() {
        let mut spans = RunSpans::default();
        let mut done = finished(
            7,
            1,
            BatchOutcome::Failure,
            (ms(10), ms(1510)),
            &["t::a", "t::b", "t::c"],
            vec![Some(Outcome::Failed), None, Some(Outcome::Passed)],
        );
        done.durations = vec![Some(ms(400)), None, Some(ms(600))];
        let stats = stats(Duration::from_secs(2), false);
        let events = [
            Event::DiscoveryStarted {
                group: "unit",
                command: "./discover.sh",
                at: ms(0),
            },
            Event::DiscoveryFinished {
                group: "unit",
                tests: 3,
                at: ms(4),
            },
            Event::Prepared {
                started: ms(0),
                finished: ms(3),
            },
            Event::SandboxCreating {
                sandbox: 0,
                at: ms(4),
            },
            Event::SandboxReady {
                sandbox: 0,
                id: "local-0",
                at: ms(5),
            },
            Event::SandboxCreating {
                sandbox: 1,
                at: ms(4),
            },
            Event::SandboxReady {
                sandbox: 1,
                id: "local-1",
                at: ms(6),
            },
            Event::BatchFinished(&done),
            Event::SandboxDestroyed {
                sandbox: 1,
                at: ms(1600),
            },
            Event::RunFinished {
                records: &[],
                stats: &stats,
            },
        ];
        for e in &events {
            spans.record(e);
        }
        let all = trace_of(&spans);
        let names: Vec<&str> = all
            .iter()
            .filter(|e| e["name"] == "process_name")
            .map(|e| e["args"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["Offload", "Sandbox 0 (local-0)", "Sandbox 1 (local-1)"]
        );
        let of = |cat: &str| -> Vec<&Value> { all.iter().filter(|e| e["cat"] == cat).collect() };
        let batch = of("batch");
        assert_eq!(batch.len(), 1);
        assert_eq!(
            *batch[0],
            json!({
                "name": "batch 7", "cat": "batch", "ph": "X", "pid": 2, "tid": 1,
                "ts": 10_000, "dur": 1_500_000,
                "args": {
                    "batch": 7, "kind": "fresh", "sandbox": 1, "outcome": "failure",
                    "test_count": 3, "reported_ms": 1000,
                    "tests_laid_out": "one after another", "lanes": 1,
                    "tests": [
                        {"id": "t::a", "outcome": "failed"},
                        {"id": "t::b", "outcome": null},
                        {"id": "t::c", "outcome": "passed"},
                    ],
                },
            })
        );
        // A slice per test that reported a time, inside its batch on the
        // same thread: one after another, ending where the batch ended.
        let tests: Vec<(&str, u64, u64, u64)> = of("test")
            .iter()
            .map(|e| {
                (
                    e["name"].as_str().unwrap(),
                    e["tid"].as_u64().unwrap(),
                    e["ts"].as_u64().unwrap(),
                    e["dur"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            tests,
            [("t::a", 1, 510_000, 400_000), ("t::c", 1, 910_000, 600_000)]
        );
        assert_eq!(
            of("test")[0]["args"],
            json!({"batch": 7, "outcome": "failed"})
        );
        let life = all
            .iter()
            .find(|e| e["name"] == "sandbox" && e["pid"] == 2)
            .unwrap();
        assert_eq!(
            (life["ts"].as_u64(), life["dur"].as_u64()),
            (Some(6_000), Some(1_594_000))
        );
        let startup = all
            .iter()
            .find(|e| e["name"] == "start-up" && e["pid"] == 2)
            .unwrap();
        assert_eq!(
            (startup["ts"].as_u64(), startup["dur"].as_u64()),
            (Some(4_000), Some(2_000))
        );
        let discovery = of("discovery");
        assert_eq!(
            *discovery[0],
            json!({
                "name": "discover unit", "cat": "discovery", "ph": "X", "pid": 0, "tid": 1,
                "ts": 0, "dur": 4_000,
                "args": {"group": "unit", "command": "./discover.sh", "tests": 3},
            })
        );
        assert_eq!(of("prepare")[0]["dur"], 3_000);
    }

    #[test]
    fn tests_run_side_by_side_take_a_thread_per_lane() {
        let mut spans = RunSpans::new(TestOrder::SideBySide);
        let mut done = finished(
            1,
            0,
            BatchOutcome::Success,
            (ms(0), ms(1000)),
            &["a", "b", "c"],
            vec![Some(Outcome::Passed); 3],
        );
        done.durations = vec![Some(ms(900)), Some(ms(800)), Some(ms(100))];
        let stats = stats(Duration::from_secs(1), false);
        spans.record(&Event::BatchFinished(&done));
        spans.record(&Event::RunFinished {
            records: &[],
            stats: &stats,
        });
        let all = trace_of(&spans);
        let tests: Vec<(&str, u64, u64, u64)> = all
            .iter()
            .filter(|e| e["cat"] == "test")
            .map(|e| {
                (
                    e["name"].as_str().unwrap(),
                    e["tid"].as_u64().unwrap(),
                    e["ts"].as_u64().unwrap(),
                    e["dur"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            tests,
            [
                ("a", 1, 100_000, 900_000),
                ("b", 2, 100_000, 800_000),
                ("c", 2, 900_000, 100_000),
            ]
        );
        let lane_names: Vec<&str> = all
            .iter()
            .filter(|e| e["name"] == "thread_name" && e["pid"] == 1)
            .map(|e| e["args"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            lane_names,
            ["sandbox", "batches", "tests side by side, lane 2"]
        );
    }
}
