//! The vocabulary shared by every stage: tests, attempts, outcomes and the
//! final record of each test. Frameworks produce [`TestAttempt`]s, the run's
//! state machine folds them into [`TestRecord`]s, and the reporters read
//! those.

use std::time::{Duration, SystemTime};

/// Whether one attempt of a test passed. Ordered from best to worst so that
/// "the worst outcome of a batch" is a `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    Passed,
    Skipped,
    Failed,
    /// The test could not run properly (a runner crash, a JUnit `<error>`).
    Error,
}

/// One attempt of one test, as read from a runner's JUnit (or synthesised when
/// the runner gave nothing: a timeout, a crash, a cancelled batch).
#[derive(Clone, Debug, PartialEq)]
pub struct TestAttempt {
    pub outcome: Outcome,
    pub duration: Duration,
    /// The short message (JUnit `message` attribute), e.g. `AssertionError: 1 != 2`.
    pub message: Option<String>,
    /// The long text (failure body: traceback, panic output).
    pub details: Option<String>,
    pub system_out: Option<String>,
    pub system_err: Option<String>,
    /// The batch that produced this attempt (1-based, as in `logs/batch-N.*`).
    pub batch: usize,
    /// When the test started, on the clock of the machine that ran it (the
    /// JUnit `timestamp`, which nextest writes): with `duration`, how the
    /// batch's tests were laid out in time, from which the timing history
    /// learns the batch's fixed cost. `None` when the runner wrote none.
    pub started: Option<SystemTime>,
    /// Where the test is or failed, when the runner says (pytest's JUnit
    /// `file`/`line`, the `panicked at src/lib.rs:16:9` of a Rust panic):
    /// for the CI annotations. Boxed: most attempts have none, and a run
    /// keeps every attempt.
    pub location: Option<Box<SourceLocation>>,
}

/// A place in the project's sources, as the runner names it: `file` is
/// relative to the runner's working directory (or absolute).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceLocation {
    pub file: String,
    pub line: Option<u32>,
}

impl TestAttempt {
    /// A synthetic attempt with no output of its own.
    pub fn synthetic(outcome: Outcome, message: impl Into<String>, batch: usize) -> Self {
        TestAttempt {
            outcome,
            duration: Duration::ZERO,
            message: Some(message.into()),
            details: None,
            system_out: None,
            system_err: None,
            batch,
            started: None,
            location: None,
        }
    }
}

/// The verdict on one test after all its attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FinalStatus {
    Passed,
    /// Failed at least once, then passed on a retry.
    Flaky,
    Skipped,
    Failed,
    /// Every attempt ended in an infrastructure error or a JUnit `<error>`.
    Error,
    /// No attempt ever produced a result (crashed runner, cancelled run).
    NotRun,
}

impl FinalStatus {
    /// Whether this status makes the run fail (exit code 1).
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            FinalStatus::Failed | FinalStatus::Error | FinalStatus::NotRun
        )
    }
}

/// Everything the run learned about one test: the input of every report.
#[derive(Clone, Debug)]
pub struct TestRecord {
    /// The canonical ID, as discovery printed it.
    pub id: String,
    /// The `[groups.NAME]` that discovered it.
    pub group: String,
    /// Every attempt in the order they finished. Empty for a test never run.
    pub attempts: Vec<TestAttempt>,
    pub status: FinalStatus,
    /// Why the test was not run, for `NotRun` (e.g. "cancelled", "runner crashed").
    pub not_run_reason: Option<String>,
}

impl TestRecord {
    /// The attempt that decided the verdict: the last passing one for a flaky
    /// or passed test, otherwise the last one.
    pub fn deciding_attempt(&self) -> Option<&TestAttempt> {
        match self.status {
            FinalStatus::Passed | FinalStatus::Flaky => self
                .attempts
                .iter()
                .rev()
                .find(|a| a.outcome == Outcome::Passed)
                .or(self.attempts.last()),
            _ => self.attempts.last(),
        }
    }

    /// Decide the verdict from the attempts (the one place that rule lives).
    pub fn status_from_attempts(attempts: &[TestAttempt]) -> FinalStatus {
        let Some(last) = attempts.last() else {
            return FinalStatus::NotRun;
        };
        let any_passed = attempts.iter().any(|a| a.outcome == Outcome::Passed);
        let any_bad = attempts
            .iter()
            .any(|a| matches!(a.outcome, Outcome::Failed | Outcome::Error));
        if any_passed && any_bad {
            FinalStatus::Flaky
        } else if any_passed {
            FinalStatus::Passed
        } else {
            match last.outcome {
                Outcome::Skipped => FinalStatus::Skipped,
                Outcome::Error => FinalStatus::Error,
                _ => FinalStatus::Failed,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(outcome: Outcome) -> TestAttempt {
        TestAttempt::synthetic(outcome, "", 1)
    }

    #[test]
    fn status_rules() {
        use Outcome::*;
        assert_eq!(TestRecord::status_from_attempts(&[]), FinalStatus::NotRun);
        assert_eq!(
            TestRecord::status_from_attempts(&[attempt(Passed)]),
            FinalStatus::Passed
        );
        assert_eq!(
            TestRecord::status_from_attempts(&[attempt(Failed), attempt(Passed)]),
            FinalStatus::Flaky
        );
        assert_eq!(
            TestRecord::status_from_attempts(&[attempt(Failed), attempt(Failed)]),
            FinalStatus::Failed
        );
        assert_eq!(
            TestRecord::status_from_attempts(&[attempt(Error)]),
            FinalStatus::Error
        );
        assert_eq!(
            TestRecord::status_from_attempts(&[attempt(Skipped)]),
            FinalStatus::Skipped
        );
    }
}
