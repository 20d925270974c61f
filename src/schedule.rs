//! From expected durations to batches: LPT when timing history exists,
//! balanced round-robin otherwise.

use std::time::Duration;

/// One test as the scheduler sees it.
#[derive(Clone, Debug)]
pub struct SchedTest {
    /// Index into the run's test table.
    pub index: usize,
    /// Expected duration (history, or the group's typical duration).
    pub expected: Duration,
    /// Bytes the ID adds to a batch command line.
    pub id_bytes: usize,
}

/// A planned batch: which tests, and how long it is expected to take
/// (start-up cost included).
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedBatch {
    pub tests: Vec<usize>,
    pub expected: Duration,
}

/// Inputs that shape the plan.
#[derive(Clone, Debug)]
pub struct PlanParams {
    pub parallelism: usize,
    /// Expected start-up cost of one batch (process start, imports, ...).
    pub batch_startup: Duration,
    /// Cap on the summed `id_bytes` of a batch.
    pub max_id_bytes: usize,
    /// Whether the durations come from history (LPT) or are all guesses
    /// (round-robin).
    pub has_history: bool,
}

/// Pack tests into batches, heaviest batch first. Deterministic for the same
/// inputs.
pub fn plan(tests: &[SchedTest], params: &PlanParams) -> Vec<PlannedBatch> {
    // Round-robin into `parallelism` batches, respecting the byte cap.
    let p = params.parallelism.max(1).min(tests.len().max(1));
    let mut batches: Vec<PlannedBatch> = (0..p)
        .map(|_| PlannedBatch {
            tests: Vec::new(),
            expected: params.batch_startup,
        })
        .collect();
    let mut bytes = vec![0usize; p];
    for (i, t) in tests.iter().enumerate() {
        let mut b = i % p;
        if bytes[b] + t.id_bytes > params.max_id_bytes && !batches[b].tests.is_empty() {
            batches.push(PlannedBatch {
                tests: Vec::new(),
                expected: params.batch_startup,
            });
            bytes.push(0);
            b = batches.len() - 1;
        }
        bytes[b] += t.id_bytes;
        batches[b].tests.push(t.index);
        batches[b].expected += t.expected;
    }
    batches.retain(|b| !b.tests.is_empty());
    batches.sort_by(|a, b| b.expected.cmp(&a.expected));
    batches
}
