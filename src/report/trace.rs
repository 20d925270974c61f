//! `{output_dir}/trace.json` (`run --trace`): the run in Chrome's trace-event
//! format, which Perfetto (ui.perfetto.dev) and chrome://tracing open. Process
//! 0 is Offload itself (the whole run); process `i + 1` is sandbox `i`, with
//! its life on thread 0 and one complete event (`ph: "X"`) per batch on
//! thread 1, carrying the batch's tests and outcome in `args`.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

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

/// The trace document: `{"traceEvents": [...], "displayTimeUnit": "ms"}`.
pub fn render_trace(spans: &RunSpans) -> Value {
    let mut events = Vec::new();
    let metadata = |pid: usize, tid: usize, name: &str, value: Value| json!({"name": name, "ph": "M", "pid": pid, "tid": tid, "args": value});

    events.push(metadata(0, 0, "process_name", json!({"name": "Offload"})));
    events.push(metadata(
        0,
        0,
        "process_sort_index",
        json!({"sort_index": 0}),
    ));
    let counts = spans.counts;
    events.push(json!({
        "name": "run", "cat": "run", "ph": "X", "pid": 0, "tid": 0,
        "ts": 0, "dur": micros(spans.wall),
        "args": {
            "tests": counts.total, "passed": counts.passed, "failed": counts.failed,
            "flaky": counts.flaky, "not_run": counts.not_run, "skipped": counts.skipped,
            "parallelism": spans.parallelism, "cancelled": spans.cancelled,
        }
    }));

    for (index, sandbox) in &spans.sandboxes {
        let pid = index + 1;
        let name = match &sandbox.id {
            Some(id) => format!("Sandbox {index} ({id})"),
            None => format!("Sandbox {index}"),
        };
        events.push(metadata(pid, 0, "process_name", json!({ "name": name })));
        events.push(metadata(
            pid,
            0,
            "process_sort_index",
            json!({ "sort_index": pid }),
        ));
        events.push(metadata(pid, 0, "thread_name", json!({"name": "sandbox"})));
        events.push(metadata(pid, 1, "thread_name", json!({"name": "batches"})));
        if let Some(ready) = sandbox.ready {
            let end = sandbox.end.unwrap_or(spans.horizon()).max(ready);
            events.push(json!({
                "name": "sandbox", "cat": "sandbox", "ph": "X", "pid": pid, "tid": 0,
                "ts": micros(ready), "dur": micros(end - ready),
                "args": {"sandbox": index, "id": sandbox.id},
            }));
        }
        if let Some(failure) = &sandbox.failure {
            events.push(json!({
                "name": "sandbox failed", "cat": "sandbox", "ph": "i", "s": "p",
                "pid": pid, "tid": 0, "ts": micros(sandbox.end.unwrap_or_default()),
                "args": {"error": failure},
            }));
        }
    }

    for b in &spans.batches {
        let end = b.end(spans.wall);
        let tests: Vec<Value> = b
            .results()
            .map(|(id, outcome)| {
                json!({
                    "id": id,
                    "outcome": outcome.map(outcome_name),
                })
            })
            .collect();
        events.push(json!({
            "name": format!("batch {}", b.batch), "cat": "batch", "ph": "X",
            "pid": b.sandbox + 1, "tid": 1,
            "ts": micros(b.started), "dur": micros(end - b.started),
            "args": {
                "batch": b.batch, "sandbox": b.sandbox,
                "outcome": b.outcome_or_cancelled().as_str(),
                "test_count": b.tests.len(), "tests": tests,
            },
        }));
    }

    json!({"traceEvents": events, "displayTimeUnit": "ms"})
}

#[cfg(test)]
mod tests {
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
        let trace = render_trace(&spans);
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
