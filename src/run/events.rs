//! What the run tells its reporters (console progress, timeline, trace).
//! The collector thread emits these in order; reporters are called on that
//! thread, so they need no locking. Times are offsets from the run's start.
//! Events borrow or share what they mention (test IDs especially): a run of
//! 100,000 tests should not copy every ID once per reporter.

use std::sync::Arc;
use std::time::Duration;

use crate::model::{FinalStatus, Outcome, TestRecord};
use crate::process::Stream;

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

#[derive(Clone, Debug)]
pub enum RunEvent<'a> {
    /// Discovery is done; execution starts.
    RunStarted {
        total_tests: usize,
        parallelism: usize,
        /// Expected wall time from history, when known.
        expected_wall: Option<Duration>,
    },
    /// Sandbox `sandbox` (0-based worker index) exists and takes batches.
    SandboxReady {
        sandbox: usize,
        id: String,
        at: Duration,
    },
    /// Sandbox `sandbox` could not be created (after retries) or was retired.
    SandboxFailed {
        sandbox: usize,
        error: String,
        at: Duration,
    },
    /// Sandbox `sandbox` was destroyed.
    SandboxDestroyed { sandbox: usize, at: Duration },
    BatchStarted {
        batch: usize,
        sandbox: usize,
        /// The IDs of the batch's tests, in order.
        tests: Arc<[String]>,
        at: Duration,
    },
    /// One line of a batch's output (only sent with `-v`).
    BatchOutput {
        batch: usize,
        stream: Stream,
        line: String,
    },
    BatchFinished {
        batch: usize,
        sandbox: usize,
        outcome: BatchOutcome,
        started: Duration,
        finished: Duration,
        /// The IDs of the batch's tests, in order.
        tests: Arc<[String]>,
        /// Per test of `tests`: this attempt's outcome (`None` when the
        /// batch gave no result for it).
        outcomes: Vec<Option<Outcome>>,
    },
    /// A test got its final verdict (no more retries coming). Its full
    /// record comes with `RunFinished`.
    TestDecided { id: &'a str, status: FinalStatus },
    /// A failed test is going back on the queue.
    TestRetrying { id: &'a str, attempt: u32 },
    /// A note for the user (a retry of a lifecycle command, a hang split...).
    Notice { message: String },
    /// Everything is over; `records` is every test's final record.
    RunFinished {
        records: Vec<TestRecord>,
        wall: Duration,
        cancelled: bool,
    },
}

/// A consumer of run events.
pub trait Reporter {
    fn on_event(&mut self, event: &RunEvent<'_>);
}
