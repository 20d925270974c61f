//! When each sandbox lived and when each batch ran, recorded from the run's
//! events: the input of the timeline page and the trace file.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::events::{BatchKind, BatchOutcome, Counts, Event, ReportError, Reporter};
use crate::model::Outcome;

/// One sandbox's life. Times are offsets from the run's start.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SandboxSpan {
    /// 0-based worker index.
    pub index: usize,
    /// When its creation started (the last one, for a replaced sandbox).
    pub creating: Option<Duration>,
    /// The provider's name for it (`local-0`, `sb-xyz`), once created.
    pub id: Option<String>,
    pub ready: Option<Duration>,
    /// When it was destroyed, failed or retired.
    pub end: Option<Duration>,
    /// Why it failed or was retired.
    pub failure: Option<String>,
}

/// One batch: where and when it ran, and what became of its tests.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchSpan {
    pub batch: usize,
    /// Fresh work, or a retry, isolation or hang-split re-run.
    pub kind: BatchKind,
    pub sandbox: usize,
    pub started: Duration,
    /// `None` while running (or when the run ended first).
    pub finished: Option<Duration>,
    pub outcome: Option<BatchOutcome>,
    /// The IDs of the batch's tests (shared with the run, not copied).
    pub tests: Arc<[String]>,
    /// Per test of `tests`: this attempt's outcome (`None`: no result).
    pub outcomes: Vec<Option<Outcome>>,
    /// Per test of `tests`: the time it reported (`None`: no result).
    pub durations: Vec<Option<Duration>>,
}

impl BatchSpan {
    /// Each test of the batch with this attempt's outcome.
    pub fn results(&self) -> impl Iterator<Item = (&str, Option<Outcome>)> {
        self.tests
            .iter()
            .map(String::as_str)
            .zip(self.outcomes.iter().copied())
    }

    /// The end of the bar: its finish, else the end of the run.
    pub fn end(&self, wall: Duration) -> Duration {
        self.finished.unwrap_or(wall).max(self.started)
    }

    /// Its outcome; a batch the run never saw finish counts as cancelled.
    pub fn outcome_or_cancelled(&self) -> BatchOutcome {
        self.outcome.unwrap_or(BatchOutcome::Cancelled)
    }
}

/// Discovery of one group.
#[derive(Clone, Debug, PartialEq)]
pub struct DiscoverySpan {
    pub group: String,
    pub started: Duration,
    /// `None` while it runs; then when it finished and what it found.
    pub finished: Option<(Duration, usize)>,
}

/// Everything a timeline needs, filled in event by event.
#[derive(Clone, Debug, Default)]
pub struct RunSpans {
    pub total_tests: usize,
    pub parallelism: usize,
    /// Each group's discovery, in order.
    pub discovery: Vec<DiscoverySpan>,
    /// When execution started (after discovery and planning).
    pub execution_started: Option<Duration>,
    /// The provider's preparation (an image build), when it ran.
    pub prepare: Option<(Duration, Duration)>,
    pub sandboxes: BTreeMap<usize, SandboxSpan>,
    /// In the order they started.
    pub batches: Vec<BatchSpan>,
    /// Set by `RunFinished`.
    pub wall: Duration,
    /// The final counts, once the run is over.
    pub counts: Counts,
    pub cancelled: bool,
    /// Index in `batches` of each batch number still running.
    running: HashMap<usize, usize>,
}

impl RunSpans {
    /// Take one event into account. Returns true for `RunFinished`.
    pub fn record(&mut self, event: &Event<'_>) -> bool {
        match event {
            Event::DiscoveryStarted { group, at, .. } => self.discovery.push(DiscoverySpan {
                group: group.to_string(),
                started: *at,
                finished: None,
            }),
            Event::DiscoveryFinished { group, tests, at } => {
                if let Some(d) = self.discovery.iter_mut().rev().find(|d| d.group == *group) {
                    d.finished = Some((*at, *tests));
                }
            }
            Event::RunStarted {
                table,
                parallelism,
                at,
                ..
            } => {
                self.total_tests = table.tests.len();
                self.parallelism = *parallelism;
                self.execution_started = Some(*at);
            }
            Event::Prepared { started, finished } => self.prepare = Some((*started, *finished)),
            Event::SandboxCreating { sandbox, at } => {
                self.sandbox(*sandbox).creating.get_or_insert(*at);
            }
            Event::SandboxReady { sandbox, id, at } => {
                let s = self.sandbox(*sandbox);
                s.id = Some(id.to_string());
                s.ready = Some(*at);
            }
            Event::SandboxFailed { sandbox, error, at } => {
                let s = self.sandbox(*sandbox);
                s.failure = Some(error.to_string());
                s.end = Some(*at);
            }
            Event::SandboxDestroyed { sandbox, at } => {
                let s = self.sandbox(*sandbox);
                s.end = Some(s.end.map_or(*at, |e| e.min(*at)));
            }
            Event::BatchStarted {
                batch,
                kind,
                sandbox,
                tests,
                at,
            } => {
                self.sandbox(*sandbox);
                self.running.insert(*batch, self.batches.len());
                self.batches.push(BatchSpan {
                    batch: *batch,
                    kind: *kind,
                    sandbox: *sandbox,
                    started: *at,
                    finished: None,
                    outcome: None,
                    tests: Arc::clone(tests),
                    outcomes: vec![None; tests.len()],
                    durations: vec![None; tests.len()],
                });
            }
            Event::BatchFinished(b) => {
                let span = BatchSpan {
                    batch: b.batch,
                    kind: b.kind,
                    sandbox: b.sandbox,
                    started: b.started,
                    finished: Some(b.finished),
                    outcome: Some(b.outcome),
                    tests: Arc::clone(&b.tests),
                    outcomes: b.outcomes.clone(),
                    durations: b.durations.clone(),
                };
                self.sandbox(b.sandbox);
                match self.running.remove(&b.batch) {
                    Some(i) => self.batches[i] = span,
                    None => self.batches.push(span),
                }
            }
            Event::RunFinished { records, stats } => {
                self.counts = Counts::of(records);
                self.wall = stats.wall;
                self.cancelled = stats.stopped.is_some();
                return true;
            }
            Event::TestCountChanged { total } => self.total_tests = *total,
            _ => {}
        }
        false
    }

    fn sandbox(&mut self, index: usize) -> &mut SandboxSpan {
        self.sandboxes.entry(index).or_insert_with(|| SandboxSpan {
            index,
            ..SandboxSpan::default()
        })
    }

    /// The time axis runs to here: the wall time, or later if a span does.
    pub fn horizon(&self) -> Duration {
        let last_batch = self.batches.iter().map(|b| b.end(self.wall)).max();
        let last_sandbox = self.sandboxes.values().filter_map(|s| s.end).max();
        self.wall
            .max(last_batch.unwrap_or_default())
            .max(last_sandbox.unwrap_or_default())
    }

    /// The critical path: the sandbox whose last batch finished last (the one
    /// the run waited for). Ties go to the lower index.
    pub fn critical_sandbox(&self) -> Option<usize> {
        let mut best: Option<(Duration, usize)> = None;
        for b in &self.batches {
            let end = b.end(self.wall);
            let better = match best {
                None => true,
                Some((e, s)) => end > e || (end == e && b.sandbox < s),
            };
            if better {
                best = Some((end, b.sandbox));
            }
        }
        best.map(|(_, s)| s)
    }
}

/// Records the run's spans and, when it finishes, writes one file rendered
/// from them (the timeline page, the trace file). A file that cannot be
/// written is a warning: the test results are not affected.
pub struct SpansFileReporter {
    path: PathBuf,
    spans: RunSpans,
    render: fn(&RunSpans) -> String,
}

impl SpansFileReporter {
    pub fn new(path: PathBuf, render: fn(&RunSpans) -> String) -> SpansFileReporter {
        SpansFileReporter {
            path,
            spans: RunSpans::default(),
            render,
        }
    }
}

impl Reporter for SpansFileReporter {
    fn on_event(&mut self, event: &Event<'_>) -> Result<(), ReportError> {
        if self.spans.record(event) {
            crate::files::write_text_atomically(&self.path, &(self.render)(&self.spans)).map_err(
                |e| {
                    ReportError::Failed(format!(
                        "cannot write {}: {}",
                        self.path.display(),
                        crate::error::io_message(&e)
                    ))
                },
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn records_batches_and_finds_the_critical_sandbox() {
        use crate::events::testing::{finished, ids, stats};
        let mut spans = RunSpans::default();
        let (t1, t2) = (ids(&["t1"]), ids(&["t2"]));
        let done = finished(
            2,
            1,
            BatchOutcome::Failure,
            (secs(1), secs(9)),
            &["t2"],
            vec![Some(Outcome::Failed)],
        );
        let stats = stats(secs(10), true);
        let events = [
            Event::SandboxReady {
                sandbox: 0,
                id: "a",
                at: secs(0),
            },
            Event::SandboxReady {
                sandbox: 1,
                id: "b",
                at: secs(1),
            },
            Event::BatchStarted {
                batch: 1,
                kind: BatchKind::Fresh,
                sandbox: 0,
                tests: &t1,
                at: secs(0),
            },
            Event::BatchStarted {
                batch: 2,
                kind: BatchKind::Fresh,
                sandbox: 1,
                tests: &t2,
                at: secs(1),
            },
            Event::BatchFinished(&done),
            Event::RunFinished {
                records: &[],
                stats: &stats,
            },
        ];
        let finished: Vec<bool> = events.iter().map(|e| spans.record(e)).collect();
        assert_eq!(finished, vec![false, false, false, false, false, true]);
        assert_eq!(spans.batches.len(), 2);
        // Batch 1 never finished: it runs to the end of the run, cancelled.
        assert_eq!(spans.batches[0].end(spans.wall), secs(10));
        assert_eq!(
            spans.batches[0].outcome_or_cancelled(),
            BatchOutcome::Cancelled
        );
        assert_eq!(spans.batches[1].outcome, Some(BatchOutcome::Failure));
        assert_eq!(spans.critical_sandbox(), Some(0));
        assert_eq!(spans.sandboxes[&1].id.as_deref(), Some("b"));
    }
}
