//! Timing before a run: history → expected durations → planned batches.
//! (What a run measured goes back into history through
//! `report::timing_history`.)

use std::time::Duration;

use crate::discover::TestTable;
use crate::history::History;
use crate::schedule::{self, PlanParams, PlannedBatch, SchedTest};

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
/// within the framework's limits (command length, start-up cost).
pub fn plan(
    table: &mut TestTable,
    history: &History,
    parallelism: usize,
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
    // bookkeeping (learned; zero until measured).
    for (t, &d) in table.tests.iter_mut().zip(&estimates.durations) {
        t.expected = d + estimates.per_test;
    }
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
        },
    );
    let expected_wall = (found > 0).then(|| super::expected_makespan(&batches, parallelism));
    Plan {
        batches,
        batch_startup: estimates.startup.unwrap_or(DEFAULT_BATCH_STARTUP),
        expected_wall,
        known_durations: found,
    }
}
