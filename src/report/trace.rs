//! `{output_dir}/trace.json` (`run --trace`): the run in Chrome's trace-event
//! format, which Perfetto (ui.perfetto.dev) and chrome://tracing open. Process
//! 0 is Offload itself (the whole run); process `i + 1` is sandbox `i`, with
//! its life on thread 0 and one complete event (`ph: "X"`) per batch on
//! thread 1, carrying the batch's tests and outcome in `args`.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::spans::{RunSpans, SpansFileReporter};
use crate::model::Outcome;

/// The file name inside the output directory.
pub const TRACE_FILE: &str = "trace.json";

/// Records the run and writes `{output_dir}/trace.json` when it finishes.
pub fn reporter(output_dir: &Path) -> SpansFileReporter {
    SpansFileReporter::new(output_dir.join(TRACE_FILE), |spans| {
        serde_json::to_string_pretty(&render_trace(spans)).unwrap_or_else(|_| "{}".into())
    })
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
    /// `process_sort_index`.
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
    /// A sandbox's life.
    Sandbox { sandbox: usize, id: Option<&'a str> },
    /// A sandbox that failed.
    SandboxFailed { error: &'a str },
    /// A batch, with each of its tests' outcome (`null`: no result).
    Batch {
        batch: usize,
        sandbox: usize,
        outcome: &'static str,
        test_count: usize,
        tests: Vec<TestOutcome<'a>>,
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

/// A complete event from `start` lasting `length`.
fn complete<'a>(
    name: String,
    cat: &'static str,
    (pid, tid): (usize, usize),
    start: Duration,
    length: Duration,
    args: Args<'a>,
) -> TraceEvent<'a> {
    TraceEvent {
        name,
        cat: Some(cat),
        ph: "X",
        s: None,
        pid,
        tid,
        ts: Some(micros(start)),
        dur: Some(micros(length)),
        args,
    }
}

fn named(name: impl Into<String>) -> Args<'static> {
    Args::Name { name: name.into() }
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
    let counts = spans.counts;
    events.push(complete(
        "run".into(),
        "run",
        (0, 0),
        Duration::ZERO,
        spans.wall,
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
        events.push(metadata(pid, 0, "thread_name", named("sandbox")));
        events.push(metadata(pid, 1, "thread_name", named("batches")));
        if let Some(ready) = sandbox.ready {
            let end = sandbox.end.unwrap_or(spans.horizon()).max(ready);
            events.push(complete(
                "sandbox".into(),
                "sandbox",
                (pid, 0),
                ready,
                end - ready,
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

    for b in &spans.batches {
        let end = b.end(spans.wall);
        let tests = b
            .results()
            .map(|(id, outcome)| TestOutcome {
                id,
                outcome: outcome.map(outcome_name),
            })
            .collect();
        events.push(complete(
            format!("batch {}", b.batch),
            "batch",
            (b.sandbox + 1, 1),
            b.started,
            end - b.started,
            Args::Batch {
                batch: b.batch,
                sandbox: b.sandbox,
                outcome: b.outcome_or_cancelled().as_str(),
                test_count: b.tests.len(),
                tests,
            },
        ));
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

    #[test]
    fn one_process_per_sandbox_and_one_complete_event_per_batch() {
        let mut spans = RunSpans::default();
        let done = finished(
            7,
            1,
            BatchOutcome::Failure,
            (Duration::from_millis(10), Duration::from_millis(1510)),
            &["t::a", "t::b"],
            vec![Some(Outcome::Failed), None],
        );
        let stats = stats(Duration::from_secs(2), false);
        let events = [
            Event::SandboxReady {
                sandbox: 0,
                id: "local-0",
                at: Duration::from_millis(5),
            },
            Event::SandboxReady {
                sandbox: 1,
                id: "local-1",
                at: Duration::from_millis(6),
            },
            Event::BatchFinished(&done),
            Event::SandboxDestroyed {
                sandbox: 1,
                at: Duration::from_millis(1600),
            },
            Event::RunFinished {
                records: &[],
                stats: &stats,
            },
        ];
        for e in &events {
            spans.record(e);
        }
        let trace = serde_json::to_value(render_trace(&spans)).unwrap();
        assert_eq!(trace["displayTimeUnit"], "ms");
        let all = trace["traceEvents"].as_array().unwrap();
        let names: Vec<&str> = all
            .iter()
            .filter(|e| e["name"] == "process_name")
            .map(|e| e["args"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["Offload", "Sandbox 0 (local-0)", "Sandbox 1 (local-1)"]
        );
        let batch: Vec<&Value> = all.iter().filter(|e| e["cat"] == "batch").collect();
        assert_eq!(batch.len(), 1);
        assert_eq!(
            *batch[0],
            json!({
                "name": "batch 7", "cat": "batch", "ph": "X", "pid": 2, "tid": 1,
                "ts": 10_000, "dur": 1_500_000,
                "args": {
                    "batch": 7, "sandbox": 1, "outcome": "failure", "test_count": 2,
                    "tests": [{"id": "t::a", "outcome": "failed"}, {"id": "t::b", "outcome": null}],
                },
            })
        );
        let life = all
            .iter()
            .find(|e| e["cat"] == "sandbox" && e["pid"] == 2)
            .unwrap();
        assert_eq!(
            (life["ts"].as_u64(), life["dur"].as_u64()),
            (Some(6_000), Some(1_594_000))
        );
        // Every event has the fields trace viewers require.
        for e in all {
            assert!(
                e["ph"].is_string() && e["pid"].is_u64() && e["name"].is_string(),
                "{e}"
            );
        }
    }
}
