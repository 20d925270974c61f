//! Timing before a run: history → expected durations → planned batches.
//! (What a run measured goes back into history through
//! `report::timing_history`.)

use std::time::{Duration, SystemTime};

use crate::discover::TestTable;
use crate::history::History;
use crate::model::TestAttempt;
use crate::schedule::{self, PlanParams, PlannedBatch, SchedTest};
use rustc_hash::FxHashMap;

/// Start-up cost assumed for a batch when history has never measured one.
const DEFAULT_BATCH_STARTUP: Duration = Duration::from_millis(200);

/// The batches to run and what the plan expects of them.
pub struct Plan {
    /// Heaviest first.
    pub batches: Vec<PlannedBatch>,
    /// Learned (or assumed) start-up cost of one batch.
    pub batch_startup: Duration,
    /// The planned makespan, when history made it meaningful.
    pub expected_wall: Option<Duration>,
    /// Tests with a duration in the timing history.
    pub known_durations: usize,
}

/// Give every test its expected duration (history, or its group's typical
/// duration) and pack the tests into batches for `parallelism` sandboxes,
/// within the framework's limits (command length, start-up cost) and, with
/// history, well inside the per-batch `timeout`.
pub fn plan(
    table: &mut TestTable,
    history: &History,
    parallelism: usize,
    timeout: Duration,
    framework: &dyn crate::framework::Framework,
) -> Plan {
    let estimates = history.estimate(
        table
            .tests
            .iter()
            .map(|t| (t.id.as_str(), table.groups[t.group].name.as_str())),
    );
    let (found, _) = estimates.coverage();
    // A test costs its batch its own duration plus the runner's per-test
    // bookkeeping (learned; zero until measured); a runner that runs tests
    // side by side spends a share of that in wall time.
    for (t, &d) in table.tests.iter_mut().zip(&estimates.durations) {
        t.expected = (d + estimates.per_test).div_f64(estimates.concurrency.max(1.0));
    }
    let mut localities: FxHashMap<&str, u32> = FxHashMap::default();
    let sched: Vec<SchedTest> = table
        .tests
        .iter()
        .enumerate()
        .map(|(i, t)| SchedTest {
            index: i,
            expected: t.expected,
            known: estimates.known[i],
            may_retry: table.groups[t.group].retry_count > 0,
            id_bytes: framework.batch_id_bytes(&t.id),
            locality: framework.locality_key(&t.id).map(|key| {
                let next = localities.len() as u32;
                *localities.entry(key).or_insert(next)
            }),
        })
        .collect();
    let batches = schedule::plan(
        &sched,
        &PlanParams {
            parallelism,
            batch_startup: estimates.startup,
            max_id_bytes: framework.max_batch_id_bytes(),
            estimate_error: estimates.estimate_error,
            unknown_startup_min_fraction: Some(framework.unknown_startup_min_fraction()),
            unknown_startup_min_tests: framework.unknown_startup_min_tests(),
            // Nominal durations say nothing about how long a batch takes.
            timeout: (found > 0).then_some(timeout),
            sandbox_ready: estimates.ready.clone(),
        },
    );
    let expected_wall = (found > 0).then(|| {
        let start: Vec<Duration> = schedule::ready_delays(&estimates.ready, parallelism.max(1))
            .into_iter()
            .map(Duration::from_nanos)
            .collect();
        schedule::loads::makespan_from(batches.iter().map(|b| b.expected), &start)
    });
    Plan {
        batches,
        batch_startup: estimates.startup.unwrap_or(DEFAULT_BATCH_STARTUP),
        expected_wall,
        known_durations: found,
    }
}
/// From the first test's start to the last one's end, on the clock of the
/// machine that ran them: `None` unless every attempt says when it started
/// (runners without JUnit timestamps, synthetic results).
pub fn span_of<'a>(attempts: impl IntoIterator<Item = &'a TestAttempt>) -> Option<Duration> {
    let mut bounds: Option<(SystemTime, SystemTime)> = None;
    for a in attempts {
        let start = a.started?;
        let end = start.checked_add(a.duration)?;
        bounds = Some(match bounds {
            None => (start, end),
            Some((first, last)) => (first.min(start), last.max(end)),
        });
    }
    let (first, last) = bounds?;
    last.duration_since(first).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Outcome;

    fn at(start_ms: Option<u64>, duration_ms: u64) -> TestAttempt {
        TestAttempt {
            duration: Duration::from_millis(duration_ms),
            started: start_ms.map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms)),
            ..TestAttempt::synthetic(Outcome::Passed, "", 1)
        }
    }

    #[test]
    fn the_span_runs_from_the_first_start_to_the_last_end() {
        // Side by side: 1000–1300, 1010–1100, 1200–1250.
        let attempts = [at(Some(1010), 90), at(Some(1000), 300), at(Some(1200), 50)];
        assert_eq!(span_of(&attempts), Some(Duration::from_millis(300)));
        assert_eq!(span_of(&attempts[2..]), Some(Duration::from_millis(50)));
        // One test without a timestamp: the layout is not known.
        let partly = [at(Some(1000), 300), at(None, 10)];
        assert_eq!(span_of(&partly), None);
        assert_eq!(span_of(&[]), None);
    }
}
