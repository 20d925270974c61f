//! The run: discovery, then a pool of worker threads (one sandbox each) fed
//! from a priority queue by the collector, which owns every result.
//!
//! ```text
//! discover (groups one after another) → plan batches → queue
//!   collector ──jobs──▶ worker 0 (sandbox 0) ─┐
//!       ▲      └──────▶ worker 1 (sandbox 1) ─┤ BatchDone, SandboxReady, ...
//!       └─────────────────────────────────────┘
//! ```

pub mod collector;
pub mod events;
pub mod queue;
pub mod timing;
pub mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cancel::Cancel;
use crate::config::GroupConfig;
use crate::error::{Error, Result};
use crate::framework::Framework;
use crate::model::TestRecord;
use crate::provider::Provider;
use crate::report::batch_logs::BatchLogs;
use crate::schedule::PlannedBatch;
use crate::Verdict;

pub use collector::Collected;
use events::Reporter;

/// One discovered test.
#[derive(Clone, Debug)]
pub struct TestEntry {
    /// The canonical ID.
    pub id: String,
    /// Index into [`TestTable::groups`].
    pub group: usize,
    /// Expected duration, from history or the group's typical duration.
    pub expected: Duration,
}

/// Every test of the run, in discovery order. Tests are referred to by their
/// index in `tests` everywhere else.
#[derive(Clone, Debug, Default)]
pub struct TestTable {
    pub tests: Vec<TestEntry>,
    pub groups: Vec<GroupConfig>,
}

/// Discover every group, one after another. An ID found by several groups
/// runs once, in the first group that found it.
pub fn discover_all(
    framework: &dyn Framework,
    groups: &[GroupConfig],
    cancel: &Cancel,
    mut warn: impl FnMut(&str),
) -> Result<TestTable> {
    // Every group's IDs are kept until all are discovered, so duplicates are
    // found by borrowing them (no copy of each ID).
    let mut found: Vec<Vec<String>> = Vec::with_capacity(groups.len());
    for group in groups {
        let discovery = framework.discover(group, cancel)?;
        if cancel.is_cancelled() {
            return Err(Error::new("discovery cancelled"));
        }
        for w in &discovery.warnings {
            warn(w);
        }
        found.push(discovery.ids);
    }
    let keep: Vec<Vec<bool>> = {
        let total = found.iter().map(Vec::len).sum();
        let mut seen: rustc_hash::FxHashSet<&str> =
            rustc_hash::FxHashSet::with_capacity_and_hasher(total, Default::default());
        found
            .iter()
            .map(|ids| ids.iter().map(|id| seen.insert(id.as_str())).collect())
            .collect()
    };
    let mut table = TestTable {
        tests: Vec::with_capacity(keep.iter().flatten().filter(|&&k| k).count()),
        groups: groups.to_vec(),
    };
    for (g, (ids, keep)) in found.into_iter().zip(keep).enumerate() {
        let duplicates = keep.iter().filter(|&&k| !k).count();
        if duplicates > 0 {
            warn(&format!(
                "group `{}`: {duplicates} test(s) also found by an earlier group run once, in that group",
                groups[g].name
            ));
        }
        let kept = ids
            .into_iter()
            .zip(keep)
            .filter_map(|(id, k)| k.then_some(id));
        table.tests.extend(kept.map(|id| TestEntry {
            id,
            group: g,
            expected: Duration::ZERO,
        }));
    }
    Ok(table)
}

/// How to execute.
pub struct ExecuteOptions {
    pub parallelism: usize,
    pub timeout: Duration,
    pub fail_fast: bool,
    /// Stream batch output lines to the reporters (`-v`).
    pub stream_output: bool,
    pub logs_dir: PathBuf,
    pub scratch_dir: PathBuf,
    /// Environment for every batch (provider `env`, `--env`, `OFFLOAD_ROOT`).
    pub env: Vec<(String, String)>,
    pub batch_startup: Duration,
    /// The planned makespan (shown as an ETA), when history made it meaningful.
    pub expected_wall: Option<Duration>,
}

/// Run the planned batches on a pool of `parallelism` workers and collect
/// every test's record. Every sandbox is destroyed before this returns.
pub fn execute<'a>(
    table: &'a TestTable,
    batches: Vec<PlannedBatch>,
    framework: Arc<dyn Framework>,
    provider: Arc<dyn Provider>,
    options: ExecuteOptions,
    cancel: &Cancel,
    reporters: Vec<Box<dyn Reporter + 'a>>,
) -> Result<Collected> {
    let start = Instant::now();
    let logs = BatchLogs::prepare(&options.logs_dir).map_err(|e| {
        crate::error::io_error(format!("cannot create {}", options.logs_dir.display()), &e)
    })?;
    // No more sandboxes than tests: a sandbox can cost real money.
    let workers = options.parallelism.max(1).min(table.tests.len().max(1));
    let (job_tx, job_rx) = crossbeam_channel::unbounded();
    let (msg_tx, msg_rx) = crossbeam_channel::unbounded();
    let context = Arc::new(worker::WorkerContext {
        framework,
        provider,
        cancel: cancel.clone(),
        env: options.env,
        timeout: options.timeout,
        scratch_dir: options.scratch_dir,
        stream_output: options.stream_output,
    });
    let mut collector = collector::Collector::new(
        table,
        collector::CollectorSettings {
            parallelism: workers,
            expected_wall: options.expected_wall,
            timeout: options.timeout,
            fail_fast: options.fail_fast,
            batch_startup: options.batch_startup,
        },
        cancel.clone(),
        reporters,
        logs,
        job_tx,
        job_rx.clone(),
        workers,
        start,
    );
    for b in batches {
        collector.enqueue(b.expected, b.tests);
    }
    let mut handles = Vec::with_capacity(workers);
    for w in 0..workers {
        let (ctx, jobs, out) = (Arc::clone(&context), job_rx.clone(), msg_tx.clone());
        let handle = std::thread::Builder::new()
            .name(format!("offload-worker-{w}"))
            .spawn(move || worker::work(w, ctx, jobs, out))
            .map_err(|e| crate::error::io_error("cannot start a worker thread", &e))?;
        handles.push(handle);
    }
    drop((msg_tx, job_rx));
    let collected = collector.run(msg_rx);
    for h in handles {
        let _ = h.join();
    }
    Ok(collected)
}

/// The makespan the plan promises: LPT of the batches over `workers`.
pub fn expected_makespan(batches: &[PlannedBatch], workers: usize) -> Duration {
    let mut loads = vec![Duration::ZERO; workers.max(1)];
    for b in batches {
        if let Some(min) = loads.iter_mut().min() {
            *min += b.expected;
        }
    }
    loads.into_iter().max().unwrap_or_default()
}

/// The verdict of a run: the one place where results become an exit code.
pub fn verdict(records: &[TestRecord], interrupted: bool) -> Verdict {
    use crate::model::FinalStatus;
    if interrupted {
        Verdict::Interrupted
    } else if records.iter().any(|r| r.status.is_failure()) {
        Verdict::Failure
    } else if records.iter().any(|r| r.status == FinalStatus::Flaky) {
        Verdict::Flaky
    } else {
        Verdict::Success
    }
}
