//! The timing history learns from every run: each test's duration and each
//! batch's overhead, folded into `<config>.history.tsv` when the run
//! finishes (see `crate::history`). Best effort: a history that cannot be
//! saved is a warning, not a failed run.

use std::path::{Path, PathBuf};

use crate::events::{BatchTiming, Event, ReportError, Reporter};
use crate::history::{self, RunTimings};

pub struct TimingHistoryReporter {
    path: PathBuf,
    /// How the runner runs a batch's tests (what its batch times mean).
    execution: history::Execution,
    /// The run's group names, by index.
    groups: Vec<String>,
    /// Discovered tests this run leaves to others (`--shard`, `--failed`):
    /// seen, so that their entries do not age out.
    left_out: std::sync::Arc<[String]>,
    batches: Vec<BatchTiming>,
    /// When the run started creating sandboxes, and when each was first
    /// ready (a replacement is not a sandbox coming up at the start).
    run_started: std::time::Duration,
    ready: rustc_hash::FxHashMap<usize, std::time::Duration>,
}

impl TimingHistoryReporter {
    pub fn new(path: &Path, execution: history::Execution) -> Self {
        TimingHistoryReporter {
            path: path.to_path_buf(),
            execution,
            groups: Vec::new(),
            left_out: std::sync::Arc::from(Vec::new()),
            batches: Vec::new(),
            run_started: std::time::Duration::ZERO,
            ready: rustc_hash::FxHashMap::default(),
        }
    }
}

impl Reporter for TimingHistoryReporter {
    fn on_event(&mut self, event: &Event<'_>) -> Result<(), ReportError> {
        match event {
            Event::RunStarted { table, at, .. } => {
                self.groups = table.groups.iter().map(|g| g.name.clone()).collect();
                self.left_out = std::sync::Arc::clone(&table.left_out);
                self.run_started = *at;
            }
            Event::SandboxReady { sandbox, at, .. } => {
                let after = at.saturating_sub(self.run_started);
                self.ready.entry(*sandbox).or_insert(after);
            }
            Event::BatchFinished(b) => self.batches.extend(b.timing),
            Event::RunFinished { records, .. } => {
                // Every test of the run has a record: all count as seen,
                // and so do those left to other shards.
                let seen = records
                    .iter()
                    .map(|r| r.id.as_str())
                    .chain(self.left_out.iter().map(String::as_str));
                let mut timings = RunTimings::new(seen, self.execution);
                for r in records.iter() {
                    // Synthetic attempts (a timeout, a crash) carry a message
                    // and no time of their own.
                    let longest = r
                        .attempts
                        .iter()
                        .filter(|a| !(a.duration.is_zero() && a.message.is_some()))
                        .map(|a| a.duration)
                        .max();
                    if let Some(d) = longest {
                        timings.test(&r.id, d);
                    }
                }
                // A batch of one group's tests teaches that group's start-up
                // cost; a batch that mixes groups, the run's as a whole.
                for b in &self.batches {
                    let group = b
                        .group
                        .and_then(|g| self.groups.get(g))
                        .map_or(history::ANY_GROUP, String::as_str);
                    let sample = history::BatchSample {
                        wall: b.wall,
                        tests_total: b.reported,
                        span: b.span,
                        tests: b.tests,
                    };
                    timings.batch(group, sample);
                }
                timings.sandboxes_ready(self.ready.values().copied().collect());
                history::save(&self.path, &timings).map_err(|e| {
                    ReportError::Warning(format!(
                        "cannot save the timing history {}: {}",
                        self.path.display(),
                        crate::error::io_message(&e)
                    ))
                })?;
            }
            _ => {}
        }
        Ok(())
    }
}
