//! `--message-format json`: the run's events on stdout, one JSON object per
//! line, for tools that want more than the JUnit report. Every object has
//! `"v"` (the schema's version, [`VERSION`]) and `"type"` (what happened);
//! the README's "Event stream" section documents every type and field.
//! Times are seconds (fractional, to the microsecond) since `offload run`
//! started; durations are seconds too.
//!
//! The version changes when a field changes meaning or goes away; new types
//! and new fields may be added to version 1, so a reader should ignore what
//! it does not know.

use serde::Serialize;
use std::time::Duration;

use crate::config::FlakyResult;
use crate::events::{BatchKind, BatchOutcome, Event, ReportError, Reporter, RunStats, StopReason};
use crate::model::{FinalStatus, Outcome};

/// The schema's version: the `"v"` of every line.
pub const VERSION: u32 = 1;

/// Writes each event as a line on stdout.
pub struct JsonStreamReporter {
    flaky_result: FlakyResult,
    /// Reports that could not be written, heard before `RunFinished`: its
    /// exit code counts them, as the run's verdict does.
    report_failures: Vec<String>,
    /// Lines not written yet: a batch's per-test lines all come at its end,
    /// and go out together with its `batch_finished` (one write, not one
    /// per line: 40,000 lines for 20,000 tests).
    pending: String,
}

impl JsonStreamReporter {
    pub fn new(flaky_result: FlakyResult) -> Self {
        JsonStreamReporter {
            flaky_result,
            report_failures: Vec::new(),
            pending: String::new(),
        }
    }
}

impl Reporter for JsonStreamReporter {
    fn on_event(&mut self, event: &Event<'_>) -> Result<(), ReportError> {
        if let Event::ReportFailed {
            message,
            fails_run: true,
        } = event
        {
            self.report_failures.push(message.to_string());
        }
        let exit_code = match event {
            Event::RunFinished { stats, .. } => {
                let stats = RunStats {
                    report_failures: self.report_failures.clone(),
                    ..(*stats).clone()
                };
                stats.verdict(self.flaky_result).exit_code()
            }
            _ => 0,
        };
        if let Some(line) = line_of(event, exit_code) {
            self.pending.push_str(&line);
            self.pending.push('\n');
        }
        let per_test = matches!(
            event,
            Event::AttemptFinished { .. } | Event::TestRetrying { .. } | Event::TestDecided { .. }
        );
        if !per_test && !self.pending.is_empty() {
            crate::console::write_text(&self.pending, false);
            self.pending.clear();
        }
        Ok(())
    }
}

/// The line for `event`, or `None` for the events the stream leaves out
/// (the output lines of `-v`, the runner's live per-test lines: a test's
/// result is its `test_finished`). `exit_code` is the run's, for
/// `RunFinished`.
pub fn line_of(event: &Event<'_>, exit_code: u8) -> Option<String> {
    let record = record_of(event, exit_code)?;
    serde_json::to_string(&Line { v: VERSION, record }).ok()
}

#[derive(Serialize)]
struct Line<'a> {
    v: u32,
    #[serde(flatten)]
    record: Record<'a>,
}

/// One line of the stream, by `"type"`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Record<'a> {
    DiscoveryStarted {
        group: &'a str,
        command: &'a str,
        at: f64,
    },
    DiscoveryFinished {
        group: &'a str,
        tests: usize,
        at: f64,
    },
    RunStarted {
        tests: usize,
        groups: Vec<&'a str>,
        batches: usize,
        sandboxes: usize,
        provider: &'a str,
        known_durations: usize,
        expected_wall: Option<f64>,
        at: f64,
    },
    Prepared {
        started: f64,
        finished: f64,
    },
    SandboxCreating {
        sandbox: usize,
        at: f64,
    },
    SandboxReady {
        sandbox: usize,
        id: &'a str,
        at: f64,
    },
    SandboxFailed {
        sandbox: usize,
        error: &'a str,
        at: f64,
    },
    SandboxDestroyed {
        sandbox: usize,
        at: f64,
    },
    BatchStarted {
        batch: usize,
        kind: &'static str,
        sandbox: usize,
        tests: usize,
        at: f64,
    },
    TestFinished {
        id: &'a str,
        group: &'a str,
        attempt: u32,
        outcome: &'static str,
        duration: f64,
        batch: usize,
        message: Option<&'a str>,
        file: Option<&'a str>,
        line: Option<u32>,
    },
    TestRetrying {
        id: &'a str,
        attempt: u32,
    },
    TestDecided {
        id: &'a str,
        group: &'a str,
        status: &'static str,
    },
    BatchFinished {
        batch: usize,
        kind: &'static str,
        sandbox: usize,
        outcome: &'static str,
        started: f64,
        finished: f64,
        tests: usize,
        results: usize,
    },
    TestCountChanged {
        total: usize,
    },
    RunStopping {
        reason: &'static str,
    },
    Notice {
        message: &'a str,
    },
    Warning {
        message: &'a str,
    },
    Interrupted {
        again: bool,
    },
    ReportFailed {
        message: &'a str,
        fails_run: bool,
    },
    RunFinished {
        total: usize,
        passed: usize,
        failed: usize,
        flaky: usize,
        not_run: usize,
        skipped: usize,
        wall: f64,
        exit_code: u8,
        stopped: Option<&'static str>,
        error: Option<&'a str>,
    },
}

fn record_of<'a>(event: &Event<'a>, exit_code: u8) -> Option<Record<'a>> {
    Some(match *event {
        Event::DiscoveryStarted { group, command, at } => Record::DiscoveryStarted {
            group,
            command,
            at: secs(at),
        },
        Event::DiscoveryFinished { group, tests, at } => Record::DiscoveryFinished {
            group,
            tests,
            at: secs(at),
        },
        Event::RunStarted {
            table,
            known_durations,
            batches,
            parallelism,
            provider,
            expected_wall,
            at,
        } => Record::RunStarted {
            tests: table.tests.len(),
            groups: table.groups.iter().map(|g| g.name.as_str()).collect(),
            batches,
            sandboxes: parallelism,
            provider,
            known_durations,
            expected_wall: expected_wall.map(secs),
            at: secs(at),
        },
        Event::Prepared { started, finished } => Record::Prepared {
            started: secs(started),
            finished: secs(finished),
        },
        Event::SandboxCreating { sandbox, at } => Record::SandboxCreating {
            sandbox,
            at: secs(at),
        },
        Event::SandboxReady { sandbox, id, at } => Record::SandboxReady {
            sandbox,
            id,
            at: secs(at),
        },
        Event::SandboxFailed { sandbox, error, at } => Record::SandboxFailed {
            sandbox,
            error,
            at: secs(at),
        },
        Event::SandboxDestroyed { sandbox, at } => Record::SandboxDestroyed {
            sandbox,
            at: secs(at),
        },
        Event::BatchStarted {
            batch,
            kind,
            sandbox,
            tests,
            at,
        } => Record::BatchStarted {
            batch,
            kind: kind_name(kind),
            sandbox,
            tests: tests.len(),
            at: secs(at),
        },
        Event::AttemptFinished {
            id,
            group,
            number,
            attempt,
        } => Record::TestFinished {
            id,
            group,
            attempt: number,
            outcome: outcome_name(attempt.outcome),
            duration: secs(attempt.duration),
            batch: attempt.batch,
            message: attempt.message.as_deref().filter(|m| !m.is_empty()),
            file: attempt.location.as_deref().map(|l| l.file.as_str()),
            line: attempt.location.as_deref().and_then(|l| l.line),
        },
        Event::TestRetrying { id, attempt } => Record::TestRetrying { id, attempt },
        Event::TestDecided { id, group, status } => Record::TestDecided {
            id,
            group,
            status: status_name(status),
        },
        Event::BatchFinished(b) => Record::BatchFinished {
            batch: b.batch,
            kind: kind_name(b.kind),
            sandbox: b.sandbox,
            outcome: batch_outcome_name(b.outcome),
            started: secs(b.started),
            finished: secs(b.finished),
            tests: b.tests.len(),
            results: b.outcomes.iter().filter(|o| o.is_some()).count(),
        },
        Event::TestCountChanged { total } => Record::TestCountChanged { total },
        Event::RunStopping { reason } => Record::RunStopping {
            reason: stop_name(reason),
        },
        Event::Notice { message } => Record::Notice { message },
        Event::Warning { message } => Record::Warning { message },
        Event::Interrupted { again } => Record::Interrupted { again },
        Event::ReportFailed { message, fails_run } => Record::ReportFailed { message, fails_run },
        Event::RunFinished { stats, .. } => {
            let c = &stats.counts;
            Record::RunFinished {
                total: c.total,
                passed: c.passed,
                failed: c.failed,
                flaky: c.flaky,
                not_run: c.not_run,
                skipped: c.skipped,
                wall: secs(stats.wall),
                exit_code,
                stopped: stats.stopped.map(stop_name),
                error: stats.fatal.as_deref(),
            }
        }
        Event::DiscoveryOutput { .. } | Event::BatchOutput { .. } | Event::TestFinished { .. } => {
            return None
        }
    })
}

/// Seconds, to the microsecond.
fn secs(d: Duration) -> f64 {
    d.as_micros() as f64 / 1e6
}

fn kind_name(kind: BatchKind) -> &'static str {
    match kind {
        BatchKind::Fresh => "fresh",
        BatchKind::Split => "split",
        BatchKind::Isolation => "isolation",
        BatchKind::Retry => "retry",
        BatchKind::HangSplit => "hang_split",
    }
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Passed => "passed",
        Outcome::Skipped => "skipped",
        Outcome::Failed => "failed",
        Outcome::Error => "error",
    }
}

fn status_name(status: FinalStatus) -> &'static str {
    match status {
        FinalStatus::Passed => "passed",
        FinalStatus::Flaky => "flaky",
        FinalStatus::Skipped => "skipped",
        FinalStatus::Failed => "failed",
        FinalStatus::Error => "error",
        FinalStatus::NotRun => "not_run",
    }
}

fn batch_outcome_name(outcome: BatchOutcome) -> &'static str {
    outcome.as_str()
}

fn stop_name(reason: StopReason) -> &'static str {
    match reason {
        StopReason::Interrupted => "interrupted",
        StopReason::FailFast => "fail_fast",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::testing;
    use crate::model::{SourceLocation, TestAttempt};

    fn parse(line: &str) -> serde_json::Value {
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn every_line_is_versioned_and_typed() {
        let table = testing::table(&["a", "b"]);
        let line = line_of(&testing::run_started(&table, 2), 0).unwrap();
        assert_eq!(
            line,
            r#"{"v":1,"type":"run_started","tests":2,"groups":["all"],"batches":1,"sandboxes":2,"provider":"local","known_durations":0,"expected_wall":null,"at":0.0}"#
        );
    }

    #[test]
    fn an_attempt_is_a_test_finished_line_with_its_location() {
        let attempt = TestAttempt {
            duration: Duration::from_micros(1_250_000),
            location: Some(Box::new(SourceLocation {
                file: "src/lib.rs".into(),
                line: Some(16),
            })),
            ..TestAttempt::synthetic(Outcome::Failed, "boom \"quoted\"", 3)
        };
        let line = line_of(
            &Event::AttemptFinished {
                id: "t::x",
                group: "unit",
                number: 2,
                attempt: &attempt,
            },
            0,
        )
        .unwrap();
        assert_eq!(
            line,
            r#"{"v":1,"type":"test_finished","id":"t::x","group":"unit","attempt":2,"outcome":"failed","duration":1.25,"batch":3,"message":"boom \"quoted\"","file":"src/lib.rs","line":16}"#
        );
    }

    #[test]
    fn batches_decisions_and_the_end_have_their_lines() {
        let b = testing::finished(
            4,
            1,
            BatchOutcome::Failure,
            (Duration::from_millis(500), Duration::from_millis(1500)),
            &["a", "b"],
            vec![Some(Outcome::Failed), None],
        );
        let v = parse(&line_of(&Event::BatchFinished(&b), 0).unwrap());
        assert_eq!(v["type"], "batch_finished");
        assert_eq!(v["outcome"], "failure");
        assert_eq!(v["kind"], "fresh");
        assert_eq!(
            (v["started"].as_f64(), v["finished"].as_f64()),
            (Some(0.5), Some(1.5))
        );
        assert_eq!(
            (v["tests"].as_u64(), v["results"].as_u64()),
            (Some(2), Some(1))
        );
        let v = parse(
            &line_of(
                &Event::TestDecided {
                    id: "b",
                    group: "all",
                    status: FinalStatus::NotRun,
                },
                0,
            )
            .unwrap(),
        );
        assert_eq!(v["status"], "not_run");
        let stats = RunStats {
            counts: crate::events::Counts {
                total: 2,
                passed: 1,
                flaky: 1,
                ..Default::default()
            },
            wall: Duration::from_secs(3),
            ..RunStats::default()
        };
        let v = parse(
            &line_of(
                &Event::RunFinished {
                    records: &[],
                    stats: &stats,
                },
                2,
            )
            .unwrap(),
        );
        assert_eq!(v["type"], "run_finished");
        assert_eq!(v["exit_code"], 2);
        assert_eq!(v["flaky"], 1);
        assert_eq!(v["wall"], 3.0);
        assert!(v["stopped"].is_null() && v["error"].is_null());
        // Output lines are in the batch logs, not in the stream.
        assert_eq!(
            line_of(
                &Event::BatchOutput {
                    batch: 1,
                    stream: crate::process::Stream::Stdout,
                    line: "x"
                },
                0
            ),
            None
        );
    }
}
