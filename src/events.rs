//! The run's event stream: the one interface between the run and everything
//! that reports on it.
//!
//! The run (`crate::run`) emits [`Event`]s in order on one thread, the driver
//! thread; every output — console progress, the summary, batch logs, the
//! merged JUnit report, the timing history, `timeline.html`, `trace.json`,
//! the GitHub Actions annotations and job summary, the JSON event stream —
//! is a [`Reporter`] that consumes them. Reporters never import the runner
//! and need no locking; nothing else writes to stdout or stderr while a run
//! goes on. Adding an output is one file with a `Reporter` and one line in
//! `crate::report::for_run`.
//!
//! Times are offsets from the moment `offload run` started. Events borrow
//! what they mention (test IDs, output, records): a run of 100,000 tests must
//! not copy every ID once per reporter.

use std::sync::Arc;
use std::time::Duration;

use crate::model::{FinalStatus, Outcome, TestAttempt, TestRecord};
use crate::process::{CapturedOutput, Stream};

/// How a batch ended, as shown in logs (`batch-N.{success|failure|error|cancelled}`)
/// and on the timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BatchOutcome {
    /// Every test passed (or was skipped).
    Success,
    /// At least one test failed.
    Failure,
    /// Infrastructure error: the sandbox failed, no results came back, a timeout.
    Error,
    /// Stopped by Ctrl-C or `--fail-fast` before it finished.
    Cancelled,
}

impl BatchOutcome {
    /// The log file extension.
    pub fn as_str(self) -> &'static str {
        match self {
            BatchOutcome::Success => "success",
            BatchOutcome::Failure => "failure",
            BatchOutcome::Error => "error",
            BatchOutcome::Cancelled => "cancelled",
        }
    }
}

/// Why a batch runs: fresh work, or a re-run decided by the run. Ordered by
/// priority in the queue: re-runs go ahead of fresh work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BatchKind {
    /// Planned from discovery.
    Fresh,
    /// Unfinished tests of a batch that reached the timeout while still
    /// finishing tests (it was too long, not hung), in batches that fit.
    Split,
    /// Tests re-run because their batch gave no result for them (the runner
    /// crashed, the sandbox failed): split until a crasher is alone.
    Isolation,
    /// Failed tests getting another attempt (`retry_count`).
    Retry,
    /// Unfinished tests of a timed-out batch, split until the hang is alone.
    HangSplit,
}

impl BatchKind {
    /// How logs and the timeline name it (`retry`, `hang split`).
    pub fn as_str(self) -> &'static str {
        match self {
            BatchKind::Fresh => "fresh",
            BatchKind::Split => "split to fit",
            BatchKind::Isolation => "isolation",
            BatchKind::Retry => "retry",
            BatchKind::HangSplit => "hang split",
        }
    }
}

/// Why the run stopped before every test was decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// Ctrl-C (exit code 130).
    Interrupted,
    /// `--fail-fast`: a test failed for good.
    FailFast,
}

/// What one batch measured, for the timing history: its wall time against
/// the times its tests reported. Only batches that ended normally (not timed
/// out, cancelled or failed for infrastructure reasons) have one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchTiming {
    pub wall: Duration,
    /// The sum of its tests' JUnit times.
    pub reported: Duration,
    /// First test start to last test end, on the runner's clock, when every
    /// test reported when it started (see `run::timing::span_of`).
    pub span: Option<Duration>,
    pub tests: usize,
    /// The `[groups.NAME]` index of its tests, when they all belong to one.
    pub group: Option<usize>,
}

/// A batch that ended, with everything its reporters need.
#[derive(Clone, Debug)]
pub struct FinishedBatch {
    /// Batch number (1-based, as in `logs/batch-N.*`).
    pub batch: usize,
    pub kind: BatchKind,
    /// 0-based sandbox (worker) index.
    pub sandbox: usize,
    pub outcome: BatchOutcome,
    pub started: Duration,
    pub finished: Duration,
    /// The IDs of the batch's tests, in order (shared, not copied).
    pub tests: Arc<[String]>,
    /// Per test of `tests`: this attempt's outcome (`None`: no result).
    pub outcomes: Vec<Option<Outcome>>,
    /// Per test of `tests`: the time it reported (`None`: no result).
    pub durations: Vec<Option<Duration>>,
    /// Everything the batch printed.
    pub output: CapturedOutput,
    /// Offload's own notes about the batch (a timeout, an unreadable JUnit
    /// file), for its log.
    pub notes: Vec<String>,
    pub timing: Option<BatchTiming>,
}

/// What the run tells its reporters, in the order it happens.
#[derive(Clone, Debug)]
pub enum Event<'a> {
    /// Discovery of one `[groups.NAME]` begins (groups are discovered one
    /// after another) with `command`.
    DiscoveryStarted {
        group: &'a str,
        command: &'a str,
        at: Duration,
    },
    /// A line the discovery command printed, as it comes (only with `-v`:
    /// the cargo build that `cargo nextest list` runs, say).
    DiscoveryOutput {
        stream: Stream,
        line: &'a str,
    },
    /// Discovery of the group found `tests` tests.
    DiscoveryFinished {
        group: &'a str,
        tests: usize,
        at: Duration,
    },
    /// The tests are planned; execution starts.
    RunStarted {
        /// Every discovered test (IDs and groups).
        table: &'a crate::discover::TestTable,
        /// How many of them have a duration in the timing history.
        known_durations: usize,
        batches: usize,
        /// Sandboxes (worker threads).
        parallelism: usize,
        /// The provider's `type`, for the start line.
        provider: &'a str,
        /// Expected wall time of the execution from history, when known.
        expected_wall: Option<Duration>,
        at: Duration,
    },
    /// The provider's preparation (an image build) ran from `started` to
    /// `finished`.
    Prepared {
        started: Duration,
        finished: Duration,
    },
    /// Sandbox `sandbox` (0-based worker index) is being created (again,
    /// when it replaces one).
    SandboxCreating {
        sandbox: usize,
        at: Duration,
    },
    /// Sandbox `sandbox` (0-based worker index) exists and takes batches.
    SandboxReady {
        sandbox: usize,
        id: &'a str,
        at: Duration,
    },
    /// Sandbox `sandbox` could not be created (after retries) or was retired.
    SandboxFailed {
        sandbox: usize,
        error: &'a str,
        at: Duration,
    },
    /// Sandbox `sandbox` was destroyed.
    SandboxDestroyed {
        sandbox: usize,
        at: Duration,
    },
    BatchStarted {
        batch: usize,
        kind: BatchKind,
        sandbox: usize,
        /// The IDs of the batch's tests, in order.
        tests: &'a Arc<[String]>,
        at: Duration,
    },
    /// One line of a batch's output (only sent with `-v`).
    BatchOutput {
        batch: usize,
        stream: Stream,
        line: &'a str,
    },
    BatchFinished(&'a FinishedBatch),
    /// The runner's live output says a test of a running batch finished,
    /// before the batch's JUnit file decides (pytest and cargo print a line
    /// per test; other runners say nothing until the batch ends).
    /// `retried_if_failed`: a failure now would get another attempt.
    TestFinished {
        batch: usize,
        id: &'a str,
        outcome: Outcome,
        retried_if_failed: bool,
    },
    /// One attempt of a test has its result: read from its batch's JUnit
    /// file, or made up by the run (a timeout, a crash). `number` is 1 for
    /// the first attempt, 2 for the first retry. A verdict, or a retry,
    /// follows.
    AttemptFinished {
        id: &'a str,
        /// Its `[groups.NAME]`.
        group: &'a str,
        number: u32,
        attempt: &'a TestAttempt,
    },
    /// A failed test goes back on the queue for attempt `attempt`.
    TestRetrying {
        id: &'a str,
        attempt: u32,
    },
    /// A test got its final verdict (no more attempts coming); its full
    /// record comes with `RunFinished`.
    TestDecided {
        id: &'a str,
        /// Its `[groups.NAME]`.
        group: &'a str,
        status: FinalStatus,
    },
    /// The run stops dispatching; queued tests will not run.
    RunStopping {
        reason: StopReason,
    },
    /// A fresh discovery during the run changed how many tests it has
    /// (tests gone since a reused discovery left out, new ones added).
    TestCountChanged {
        total: usize,
    },
    /// A note for the user: a retried lifecycle command, a hang split, a
    /// sandbox replaced.
    Notice {
        message: &'a str,
    },
    /// Something the user should fix, though it does not stop the run (a
    /// discovery warning).
    Warning {
        message: &'a str,
    },
    /// Ctrl-C: the run stops gracefully (`again`: the second Ctrl-C, which
    /// kills everything at once).
    Interrupted {
        again: bool,
    },
    /// A report could not be written (sent by [`Reporters`] to the reporters
    /// after the one that failed, so the summary can name it). `fails_run`:
    /// a report the user asked for; otherwise a best-effort file (the timing
    /// history), which is only warned about.
    ReportFailed {
        message: &'a str,
        fails_run: bool,
    },
    /// Everything is over: every test's final record and the run's verdict.
    RunFinished {
        records: &'a [TestRecord],
        stats: &'a RunStats,
    },
}

/// Where code off the driver thread sends notes for the user (a retried
/// create, a sandbox replaced, a destroy that failed): in a run the driver
/// turns them into [`Event::Notice`]s and [`Event::Warning`]s, so that only
/// reporters write to the console; outside a run (`doctor`, `collect`) they
/// go to stderr.
#[derive(Clone)]
pub struct Notices(Arc<NoticeFn>);

/// `(warning, message)`.
type NoticeFn = dyn Fn(bool, &str) + Send + Sync;

impl Notices {
    /// `send(warning, message)` for each note.
    pub fn new(send: impl Fn(bool, &str) + Send + Sync + 'static) -> Notices {
        Notices(Arc::new(send))
    }

    /// `offload: <message>` (or `warning: <message>`) on stderr.
    pub fn stderr() -> Notices {
        Notices::new(|warning, message| {
            let prefix = if warning { "warning" } else { "offload" };
            crate::console::errln!("{prefix}: {message}")
        })
    }

    /// Something worth knowing (a retry, a replaced sandbox).
    pub fn send(&self, message: &str) {
        (self.0)(false, message)
    }

    /// Something the user should act on (a sandbox that may still exist).
    pub fn warn(&self, message: &str) {
        (self.0)(true, message)
    }
}

impl std::fmt::Debug for Notices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Notices")
    }
}

/// A consumer of run events. An error means an output could not be written
/// (a full disk): the other reporters still get every event, and the summary
/// names it.
pub trait Reporter {
    fn on_event(&mut self, event: &Event<'_>) -> Result<(), ReportError>;
}

/// An output that could not be written: what and why, already phrased
/// (`cannot write test-results/junit.xml: No space left on device`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportError {
    /// A report the user asked for is missing: the run fails.
    Failed(String),
    /// A best-effort file (the timing history) was not written: a warning.
    Warning(String),
}

impl ReportError {
    pub fn message(&self) -> &str {
        match self {
            ReportError::Failed(m) | ReportError::Warning(m) => m,
        }
    }
}

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// Every reporter of a run, called in order for each event. The order
/// matters at the end: progress first (its status line is cleared before
/// anything else is printed), the summary last (it names the reports that
/// failed).
pub struct Reporters<'r> {
    reporters: Vec<Box<dyn Reporter + 'r>>,
    failures: Vec<String>,
}

impl<'r> Reporters<'r> {
    pub fn new(reporters: Vec<Box<dyn Reporter + 'r>>) -> Self {
        Reporters {
            reporters,
            failures: Vec::new(),
        }
    }

    /// Give `event` to every reporter. When one fails, the reporters after
    /// it hear of it before they get the event themselves.
    pub fn emit(&mut self, event: &Event<'_>) {
        for i in 0..self.reporters.len() {
            let Err(error) = self.reporters[i].on_event(event) else {
                continue;
            };
            let fails_run = matches!(error, ReportError::Failed(_));
            let failed = Event::ReportFailed {
                message: error.message(),
                fails_run,
            };
            for later in &mut self.reporters[i + 1..] {
                let _ = later.on_event(&failed);
            }
            if fails_run {
                self.failures.push(error.message().to_string());
            }
        }
    }

    /// The reports that could not be written so far (warnings left out).
    pub fn failures(&self) -> &[String] {
        &self.failures
    }
}

/// The test counts by final status. The categories do not overlap: they add
/// up to `total` (an errored test counts as failed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub flaky: usize,
    pub not_run: usize,
    pub skipped: usize,
}

impl Counts {
    pub fn of(records: &[TestRecord]) -> Counts {
        let mut c = Counts {
            total: records.len(),
            ..Counts::default()
        };
        for r in records {
            c.add(r.status);
        }
        c
    }

    /// Count one more test with this final status (not touching `total`).
    pub fn add(&mut self, status: FinalStatus) {
        match status {
            FinalStatus::Passed => self.passed += 1,
            FinalStatus::Flaky => self.flaky += 1,
            FinalStatus::Skipped => self.skipped += 1,
            FinalStatus::Failed | FinalStatus::Error => self.failed += 1,
            FinalStatus::NotRun => self.not_run += 1,
        }
    }

    /// Tests with a final verdict.
    pub fn decided(&self) -> usize {
        self.passed + self.failed + self.flaky + self.not_run + self.skipped
    }
}

/// How a run ended: its counts, why it stopped early, and what went wrong
/// outside the tests. [`RunStats::verdict`] is the one place that turns this
/// into a [`crate::Verdict`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunStats {
    pub counts: Counts,
    /// The run's wall time, from `offload run` starting to the last test decided.
    pub wall: Duration,
    /// Set when the run stopped dispatching before every test was decided.
    pub stopped: Option<StopReason>,
    /// The run could not do its job (no sandbox could be created): the error.
    pub fatal: Option<String>,
    /// Reports that could not be written.
    pub report_failures: Vec<String>,
}

impl RunStats {
    /// The run's verdict, in this order: interrupted; a test failed; the
    /// run could not work (no sandbox could be created: its tests are not
    /// run through no fault of theirs); a test was not run; a report could
    /// not be written; flaky; success. A test failure wins over Offload's
    /// own failure, so that "tests failed" (exit 1) is never hidden behind
    /// "Offload failed" (exit 3).
    /// The run's exit code, decided here only; `flaky` says what a run whose
    /// only problems are flaky tests ends as.
    pub fn verdict(&self, flaky: crate::config::FlakyResult) -> crate::Verdict {
        use crate::config::FlakyResult;
        use crate::Verdict;
        let c = &self.counts;
        if self.stopped == Some(StopReason::Interrupted) {
            Verdict::Interrupted
        } else if c.failed > 0 {
            Verdict::Failure
        } else if self.fatal.is_some() {
            Verdict::OffloadError
        } else if c.not_run > 0 {
            Verdict::Failure
        } else if !self.report_failures.is_empty() {
            Verdict::OffloadError
        } else if c.flaky > 0 {
            match flaky {
                FlakyResult::Exit2 => Verdict::Flaky,
                FlakyResult::Pass => Verdict::Success,
                FlakyResult::Fail => Verdict::Failure,
            }
        } else {
            Verdict::Success
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FlakyResult;
    use crate::Verdict;

    struct Failing;
    impl Reporter for Failing {
        fn on_event(&mut self, _: &Event<'_>) -> Result<(), ReportError> {
            Err(ReportError::Failed("cannot write x: disk full".into()))
        }
    }

    #[derive(Default)]
    struct Recording(std::rc::Rc<std::cell::RefCell<Vec<String>>>);
    impl Reporter for Recording {
        fn on_event(&mut self, event: &Event<'_>) -> Result<(), ReportError> {
            let name = match event {
                Event::ReportFailed { message, .. } => format!("failed: {message}"),
                Event::Notice { message } => format!("notice: {message}"),
                _ => "other".into(),
            };
            self.0.borrow_mut().push(name);
            Ok(())
        }
    }

    #[test]
    fn a_failing_reporter_is_named_to_the_later_ones_and_the_rest_still_hear_everything() {
        let before = Recording::default();
        let after = Recording::default();
        let (b, a) = (before.0.clone(), after.0.clone());
        let mut reporters =
            Reporters::new(vec![Box::new(before), Box::new(Failing), Box::new(after)]);
        reporters.emit(&Event::Notice { message: "hi" });
        assert_eq!(*b.borrow(), ["notice: hi"]);
        assert_eq!(
            *a.borrow(),
            ["failed: cannot write x: disk full", "notice: hi"]
        );
        assert_eq!(reporters.failures(), ["cannot write x: disk full"]);
    }

    #[test]
    fn the_verdict_is_decided_in_one_place() {
        let stats = |counts: Counts| RunStats {
            counts,
            ..RunStats::default()
        };
        let passed = Counts {
            total: 2,
            passed: 2,
            ..Counts::default()
        };
        assert_eq!(stats(passed).verdict(FlakyResult::Exit2), Verdict::Success);
        let flaky = Counts {
            flaky: 1,
            passed: 1,
            ..passed
        };
        assert_eq!(stats(flaky).verdict(FlakyResult::Exit2), Verdict::Flaky);
        assert_eq!(stats(flaky).verdict(FlakyResult::Pass), Verdict::Success);
        assert_eq!(stats(flaky).verdict(FlakyResult::Fail), Verdict::Failure);
        let not_run = Counts {
            not_run: 1,
            passed: 1,
            ..passed
        };
        assert_eq!(stats(not_run).verdict(FlakyResult::Exit2), Verdict::Failure);
        let interrupted = RunStats {
            stopped: Some(StopReason::Interrupted),
            ..stats(not_run)
        };
        assert_eq!(
            interrupted.verdict(FlakyResult::Exit2),
            Verdict::Interrupted
        );
        let fail_fast = RunStats {
            stopped: Some(StopReason::FailFast),
            ..stats(not_run)
        };
        assert_eq!(fail_fast.verdict(FlakyResult::Exit2), Verdict::Failure);
        let unwritten = RunStats {
            report_failures: vec!["cannot write junit.xml".into()],
            ..stats(passed)
        };
        assert_eq!(unwritten.verdict(FlakyResult::Exit2), Verdict::OffloadError);
        let fatal = RunStats {
            fatal: Some("no sandbox could be created".into()),
            ..stats(Counts {
                total: 2,
                not_run: 2,
                ..Counts::default()
            })
        };
        assert_eq!(fatal.verdict(FlakyResult::Exit2), Verdict::OffloadError);
        // A test failure in the same run wins: the tests' verdict is never
        // hidden behind Offload's.
        let failed = Counts {
            failed: 1,
            passed: 1,
            ..passed
        };
        let failed_and_unwritten = RunStats {
            report_failures: vec!["cannot write junit.xml".into()],
            ..stats(failed)
        };
        assert_eq!(
            failed_and_unwritten.verdict(FlakyResult::Exit2),
            Verdict::Failure
        );
        let failed_and_fatal = RunStats {
            fatal: Some("no sandbox could be created".into()),
            ..stats(failed)
        };
        assert_eq!(
            failed_and_fatal.verdict(FlakyResult::Exit2),
            Verdict::Failure
        );
        let not_run_and_unwritten = RunStats {
            report_failures: vec!["cannot write junit.xml".into()],
            ..stats(not_run)
        };
        assert_eq!(
            not_run_and_unwritten.verdict(FlakyResult::Exit2),
            Verdict::Failure
        );
        let flaky_and_unwritten = RunStats {
            report_failures: vec!["cannot write junit.xml".into()],
            ..stats(flaky)
        };
        assert_eq!(
            flaky_and_unwritten.verdict(FlakyResult::Exit2),
            Verdict::OffloadError
        );
    }
}

/// Building events in unit tests.
#[cfg(test)]
pub mod testing {
    use super::*;
    use crate::discover::{TestEntry, TestTable};

    /// One group `all` holding `ids`.
    pub fn table(ids: &[&str]) -> TestTable {
        TestTable {
            tests: ids
                .iter()
                .map(|id| TestEntry {
                    id: id.to_string(),
                    group: 0,
                    expected: Duration::ZERO,
                    runner_id: None,
                })
                .collect(),
            groups: vec![crate::config::GroupConfig {
                name: "all".into(),
                retry_count: 0,
                filters: String::new(),
            }],
            ..TestTable::default()
        }
    }

    pub fn ids(ids: &[&str]) -> Arc<[String]> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    /// Test `id` of group `all`, its verdict decided from `attempts`.
    pub fn record(id: &str, attempts: Vec<crate::model::TestAttempt>) -> TestRecord {
        TestRecord {
            id: id.into(),
            group: "all".into(),
            status: TestRecord::status_from_attempts(&attempts),
            attempts,
            not_run_reason: None,
        }
    }

    /// A finished batch with no output and no timing.
    pub fn finished(
        batch: usize,
        sandbox: usize,
        outcome: BatchOutcome,
        span: (Duration, Duration),
        tests: &[&str],
        outcomes: Vec<Option<Outcome>>,
    ) -> FinishedBatch {
        FinishedBatch {
            batch,
            kind: BatchKind::Fresh,
            sandbox,
            outcome,
            started: span.0,
            finished: span.1,
            tests: ids(tests),
            durations: vec![None; outcomes.len()],
            outcomes,
            output: CapturedOutput::default(),
            notes: Vec::new(),
            timing: None,
        }
    }

    /// `RunStarted` for `table` on `parallelism` local sandboxes.
    pub fn run_started(table: &TestTable, parallelism: usize) -> Event<'_> {
        Event::RunStarted {
            table,
            known_durations: 0,
            batches: 1,
            parallelism,
            provider: "local",
            expected_wall: None,
            at: Duration::ZERO,
        }
    }

    pub fn stats(wall: Duration, cancelled: bool) -> RunStats {
        RunStats {
            wall,
            stopped: cancelled.then_some(StopReason::Interrupted),
            ..RunStats::default()
        }
    }
}
