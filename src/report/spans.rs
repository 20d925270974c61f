//! When each phase of the run happened — discovery, the provider's
//! preparation, each sandbox's start-up and life, each batch and, as far as
//! the runner's JUnit tells, each test inside it — recorded from the run's
//! events: the input of the timeline page and the trace file.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::config::FrameworkConfig;
use crate::events::{BatchKind, BatchOutcome, Counts, Event, ReportError, Reporter};
use crate::model::Outcome;

/// How the framework's runner runs the tests of one batch. JUnit files give
/// each test's duration but not when it started, so this decides how the
/// timeline and the trace place a batch's tests inside it
/// ([`BatchSpan::test_layout`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TestOrder {
    /// pytest and the default framework: one test after another, in the
    /// batch's order.
    #[default]
    OneAfterAnother,
    /// nextest: side by side, on as many test threads as the sandbox has
    /// CPUs, each thread taking the next test when it is free.
    SideBySide,
}

impl TestOrder {
    /// How the runner of `framework` runs a batch's tests.
    pub fn of(framework: &FrameworkConfig) -> TestOrder {
        match framework {
            FrameworkConfig::Cargo(_) => TestOrder::SideBySide,
            FrameworkConfig::Pytest(_) | FrameworkConfig::Default(_) => TestOrder::OneAfterAnother,
        }
    }
}

/// One creation of a sandbox: from `began` to when it could take batches
/// (or failed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartUp {
    pub began: Duration,
    /// `None` while it goes on (or when the run ended first).
    pub ended: Option<Duration>,
    /// The creation failed: the sandbox never took a batch after it.
    pub failed: bool,
}

/// One sandbox's life. Times are offsets from the run's start.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SandboxSpan {
    /// 0-based worker index.
    pub index: usize,
    /// Each creation, in order: the first, then each replacement (after a
    /// timeout or repeated failures), each ended by its `SandboxReady`.
    pub startups: Vec<StartUp>,
    /// The provider's name for it (`local-0`, `sb-xyz`), once created.
    pub id: Option<String>,
    /// When it was first ready for batches.
    pub ready: Option<Duration>,
    /// When it was destroyed, failed or retired.
    pub end: Option<Duration>,
    /// Why it failed or was retired.
    pub failure: Option<String>,
}

impl SandboxSpan {
    /// End a start-up that is still going on.
    fn end_startup(&mut self, at: Duration, failed: bool) {
        if let Some(s) = self.startups.last_mut().filter(|s| s.ended.is_none()) {
            s.ended = Some(at.max(s.began));
            s.failed = failed;
        }
    }
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

/// Where one test of a batch is drawn: offsets from the batch's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TestSlice {
    /// Its index in [`BatchSpan::tests`].
    pub test: usize,
    /// 0 for tests run one after another; side by side, one lane per test
    /// running at the same time.
    pub lane: usize,
    pub start: Duration,
    pub end: Duration,
}

/// How a batch's tests are placed inside it ([`BatchSpan::test_layout`]).
#[derive(Clone, Debug, PartialEq)]
pub struct TestLayout {
    /// How they are drawn: the runner's way, unless the reported times say
    /// otherwise.
    pub order: TestOrder,
    /// Lanes used: 1 one after another.
    pub lanes: usize,
    /// One per test that reported a time, in the batch's order.
    pub slices: Vec<TestSlice>,
    /// The sum of the reported times.
    pub reported: Duration,
}

impl BatchSpan {
    /// The span of a batch that finished.
    pub fn of(b: &crate::events::FinishedBatch) -> BatchSpan {
        BatchSpan {
            batch: b.batch,
            kind: b.kind,
            sandbox: b.sandbox,
            started: b.started,
            finished: Some(b.finished),
            outcome: Some(b.outcome),
            tests: Arc::clone(&b.tests),
            outcomes: b.outcomes.clone(),
            durations: b.durations.clone(),
        }
    }

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

    /// Where each test that reported a time is drawn inside the batch.
    ///
    /// A JUnit file says how long each test took, not when it started, so
    /// the placement is reconstructed from how the runner works (`order`):
    ///
    /// * One after another (pytest, the default framework): in the batch's
    ///   order, each test starting where the one before ended.
    /// * Side by side (nextest): in the batch's order, each test going to the
    ///   lane that is free first, as nextest's threads take tests, on the
    ///   fewest lanes with which they fit in the batch's wall time — at least
    ///   that many ran at once; the sandbox may have run more.
    ///
    /// Tests that report more time in all than the batch lasted cannot have
    /// run one after another (pytest-xdist, a runner with its own workers):
    /// they are laid side by side whatever `order` says.
    ///
    /// The runner's start-up, collection and teardown are not measured: a
    /// batch that ended normally has its tests drawn ending where it ended,
    /// the unmeasured time before them (start-up is most of it); one that
    /// timed out, crashed or was cancelled, starting where it started. A
    /// test without a time (no result) has no slice.
    pub fn test_layout(&self, order: TestOrder, wall: Duration) -> TestLayout {
        let span = self.end(wall) - self.started;
        let timed: Vec<(usize, Duration)> = self
            .durations
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.map(|d| (i, d)))
            .collect();
        let reported: Duration = timed.iter().map(|&(_, d)| d).sum();
        let order = if reported > span {
            TestOrder::SideBySide
        } else {
            order
        };
        let lanes = match order {
            TestOrder::OneAfterAnother => 1,
            TestOrder::SideBySide => fewest_lanes(&timed, reported, span),
        };
        let (mut slices, makespan) = deal(&timed, lanes);
        let ended_normally = matches!(
            self.outcome,
            Some(BatchOutcome::Success | BatchOutcome::Failure)
        );
        let offset = if ended_normally {
            span.saturating_sub(makespan)
        } else {
            Duration::ZERO
        };
        for s in &mut slices {
            s.start = (s.start + offset).min(span);
            s.end = (s.end + offset).min(span);
        }
        TestLayout {
            order,
            lanes,
            slices,
            reported,
        }
    }
}

/// Deal `timed` tests (index, duration), in order, onto `lanes` lanes: each
/// to the lane that is free first (the lower one on a tie). Returns the
/// slices, from 0, and when the last one ends.
fn deal(timed: &[(usize, Duration)], lanes: usize) -> (Vec<TestSlice>, Duration) {
    let mut free: BinaryHeap<Reverse<(Duration, usize)>> = (0..lanes.max(1))
        .map(|l| Reverse((Duration::ZERO, l)))
        .collect();
    let mut makespan = Duration::ZERO;
    let mut slices = Vec::with_capacity(timed.len());
    for &(test, length) in timed {
        let Some(Reverse((start, lane))) = free.pop() else {
            break;
        };
        let end = start + length;
        makespan = makespan.max(end);
        slices.push(TestSlice {
            test,
            lane,
            start,
            end,
        });
        free.push(Reverse((end, lane)));
    }
    (slices, makespan)
}

/// The fewest lanes on which [`deal`] fits `timed` (reporting `reported` in
/// all) into `span`, or into the longest test when that is longer (a
/// reported time may exceed the measured wall time by its rounding). A
/// binary search: more lanes never make the dealt tests end later.
fn fewest_lanes(timed: &[(usize, Duration)], reported: Duration, span: Duration) -> usize {
    let longest = timed.iter().map(|&(_, d)| d).max().unwrap_or_default();
    let target = span.max(longest);
    if timed.is_empty() || target.is_zero() {
        return timed.len().max(1);
    }
    let at_least = reported.as_nanos().div_ceil(target.as_nanos()) as usize;
    let (mut low, mut high) = (at_least.clamp(1, timed.len()), timed.len());
    while low < high {
        let mid = low + (high - low) / 2;
        if deal(timed, mid).1 <= target {
            high = mid;
        } else {
            low = mid + 1;
        }
    }
    low
}

/// Discovery of one group.
#[derive(Clone, Debug, PartialEq)]
pub struct DiscoverySpan {
    pub group: String,
    /// The command it ran, as shown while it ran.
    pub command: String,
    pub started: Duration,
    /// `None` while it runs; then when it finished and what it found.
    pub finished: Option<(Duration, usize)>,
}

/// Everything a timeline needs, filled in event by event.
#[derive(Clone, Debug, Default)]
pub struct RunSpans {
    /// How the framework's runner runs a batch's tests (set by whoever
    /// makes the spans: events do not say).
    pub test_order: TestOrder,
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
    /// Spans of a run whose runner runs a batch's tests in `test_order`.
    pub fn new(test_order: TestOrder) -> RunSpans {
        RunSpans {
            test_order,
            ..RunSpans::default()
        }
    }

    /// Take one event into account. Returns true for `RunFinished`.
    pub fn record(&mut self, event: &Event<'_>) -> bool {
        match event {
            Event::DiscoveryStarted { group, command, at } => self.discovery.push(DiscoverySpan {
                group: group.to_string(),
                command: command.to_string(),
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
                let s = self.sandbox(*sandbox);
                s.end_startup(*at, false);
                s.startups.push(StartUp {
                    began: *at,
                    ended: None,
                    failed: false,
                });
            }
            Event::SandboxReady { sandbox, id, at } => {
                let s = self.sandbox(*sandbox);
                s.end_startup(*at, false);
                s.id = Some(id.to_string());
                s.ready.get_or_insert(*at);
            }
            Event::SandboxFailed { sandbox, error, at } => {
                let s = self.sandbox(*sandbox);
                s.end_startup(*at, true);
                s.failure = Some(error.to_string());
                s.end = Some(*at);
            }
            Event::SandboxDestroyed { sandbox, at } => {
                let s = self.sandbox(*sandbox);
                s.end_startup(*at, false);
                s.end = Some(s.end.map_or(*at, |e| e.min(*at)));
            }
            Event::BatchStarted {
                batch,
                kind,
                sandbox,
                tests,
                at,
            } => {
                self.sandbox(*sandbox).end_startup(*at, false);
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
                let span = BatchSpan::of(b);
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
        let batches = self.batches.iter().map(|b| b.end(self.wall));
        let sandboxes = self.sandboxes.values().flat_map(|s| {
            let startups = s.startups.iter().map(|u| u.ended.unwrap_or(u.began));
            s.end.into_iter().chain(startups)
        });
        let discovery = self
            .discovery
            .iter()
            .map(|d| d.finished.map_or(d.started, |(end, _)| end));
        let prepare = self.prepare.map(|(_, end)| end);
        batches
            .chain(sandboxes)
            .chain(discovery)
            .chain(prepare)
            .fold(self.wall, Duration::max)
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
/// written is an error of this reporter, named in the summary.
pub struct SpansFileReporter {
    path: PathBuf,
    spans: RunSpans,
    render: fn(&RunSpans) -> String,
}

impl SpansFileReporter {
    pub fn new(
        path: PathBuf,
        test_order: TestOrder,
        render: fn(&RunSpans) -> String,
    ) -> SpansFileReporter {
        SpansFileReporter {
            path,
            spans: RunSpans::new(test_order),
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
    use crate::events::testing::{finished, ids, stats};

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn records_batches_and_finds_the_critical_sandbox() {
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

    #[test]
    fn records_discovery_preparation_and_every_start_up_of_a_sandbox() {
        let mut spans = RunSpans::default();
        let t = ids(&["t"]);
        let events = [
            Event::DiscoveryStarted {
                group: "unit",
                command: "pytest --collect-only",
                at: ms(10),
            },
            Event::SandboxCreating {
                sandbox: 0,
                at: ms(20),
            },
            Event::DiscoveryFinished {
                group: "unit",
                tests: 12,
                at: ms(400),
            },
            Event::SandboxReady {
                sandbox: 0,
                id: "sb-1",
                at: ms(900),
            },
            Event::Prepared {
                started: ms(5),
                finished: ms(800),
            },
            // A replacement: created again, ready when it takes a batch.
            Event::SandboxCreating {
                sandbox: 0,
                at: secs(3),
            },
            Event::BatchStarted {
                batch: 2,
                kind: BatchKind::Retry,
                sandbox: 0,
                tests: &t,
                at: secs(5),
            },
            Event::SandboxCreating {
                sandbox: 1,
                at: ms(30),
            },
            Event::SandboxFailed {
                sandbox: 1,
                error: "quota",
                at: secs(2),
            },
        ];
        for e in &events {
            spans.record(e);
        }
        assert_eq!(
            spans.discovery,
            [DiscoverySpan {
                group: "unit".into(),
                command: "pytest --collect-only".into(),
                started: ms(10),
                finished: Some((ms(400), 12)),
            }]
        );
        assert_eq!(spans.prepare, Some((ms(5), ms(800))));
        let zero = &spans.sandboxes[&0];
        assert_eq!(
            zero.startups,
            [
                StartUp {
                    began: ms(20),
                    ended: Some(ms(900)),
                    failed: false
                },
                StartUp {
                    began: secs(3),
                    ended: Some(secs(5)),
                    failed: false
                },
            ]
        );
        assert_eq!(zero.ready, Some(ms(900)));
        assert_eq!(
            spans.sandboxes[&1].startups,
            [StartUp {
                began: ms(30),
                ended: Some(secs(2)),
                failed: true
            }]
        );
        // The batch never finished and the run has no wall time yet: the
        // axis still reaches the last thing that happened.
        assert_eq!(spans.horizon(), secs(5));
    }

    /// A finished batch of `times` (milliseconds; `None`: no result) from
    /// `span` (milliseconds).
    fn timed_batch(outcome: BatchOutcome, span: (u64, u64), times: &[Option<u64>]) -> BatchSpan {
        let names: Vec<String> = (0..times.len()).map(|i| format!("t{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut b = finished(
            1,
            0,
            outcome,
            (ms(span.0), ms(span.1)),
            &names,
            vec![Some(Outcome::Passed); times.len()],
        );
        b.durations = times.iter().map(|t| t.map(ms)).collect();
        BatchSpan::of(&b)
    }

    /// `(test, lane, start ms, end ms)` of each slice.
    fn slices(layout: &TestLayout) -> Vec<(usize, usize, u64, u64)> {
        layout
            .slices
            .iter()
            .map(|s| {
                (
                    s.test,
                    s.lane,
                    s.start.as_millis() as u64,
                    s.end.as_millis() as u64,
                )
            })
            .collect()
    }

    #[test]
    fn tests_run_one_after_another_end_where_their_batch_ended() {
        // 1 s of tests in a 1.5 s batch: the 0.5 s before them is start-up.
        let b = timed_batch(
            BatchOutcome::Success,
            (2_000, 3_500),
            &[Some(200), None, Some(300), Some(500)],
        );
        let layout = b.test_layout(TestOrder::OneAfterAnother, secs(10));
        assert_eq!(layout.order, TestOrder::OneAfterAnother);
        assert_eq!((layout.lanes, layout.reported), (1, secs(1)));
        assert_eq!(
            slices(&layout),
            [(0, 0, 500, 700), (2, 0, 700, 1_000), (3, 0, 1_000, 1_500)]
        );
        // A batch that timed out stopped while its tests ran: from its start.
        let b = timed_batch(BatchOutcome::Error, (0, 5_000), &[Some(200), None]);
        let layout = b.test_layout(TestOrder::OneAfterAnother, secs(10));
        assert_eq!(slices(&layout), [(0, 0, 0, 200)]);
    }

    #[test]
    fn tests_run_side_by_side_share_the_fewest_lanes_that_fit() {
        // 2.4 s of tests in a 1 s batch: at least three lanes; dealt in
        // order, each to the lane free first, three fit in 0.9 s.
        let b = timed_batch(
            BatchOutcome::Failure,
            (0, 1_000),
            &[
                Some(600),
                Some(500),
                Some(400),
                Some(300),
                Some(300),
                Some(300),
            ],
        );
        let layout = b.test_layout(TestOrder::SideBySide, secs(10));
        assert_eq!((layout.order, layout.lanes), (TestOrder::SideBySide, 3));
        assert_eq!(
            slices(&layout),
            [
                (0, 0, 100, 700),
                (1, 1, 100, 600),
                (2, 2, 100, 500),
                (3, 2, 500, 800),
                (4, 1, 600, 900),
                (5, 0, 700, 1_000),
            ]
        );
        // Tiny tests in a long batch fit on one lane.
        let b = timed_batch(BatchOutcome::Success, (0, 1_000), &[Some(10), Some(20)]);
        assert_eq!(b.test_layout(TestOrder::SideBySide, secs(10)).lanes, 1);
    }

    #[test]
    fn more_reported_time_than_the_batch_lasted_means_side_by_side() {
        // A pytest batch whose tests report 3 s in 1 s ran in parallel
        // (xdist): not drawn one after another past the batch's end.
        let b = timed_batch(
            BatchOutcome::Success,
            (0, 1_000),
            &[Some(1_000), Some(1_000), Some(1_001)],
        );
        let layout = b.test_layout(TestOrder::OneAfterAnother, secs(10));
        assert_eq!((layout.order, layout.lanes), (TestOrder::SideBySide, 3));
        // The longest test outlasts the batch by its rounding: it is cut at
        // the batch's end.
        assert!(layout.slices.iter().all(|s| s.end <= secs(1)));
        // Nothing reported: no slices, one lane.
        let b = timed_batch(BatchOutcome::Cancelled, (0, 1_000), &[None, None]);
        let layout = b.test_layout(TestOrder::SideBySide, secs(10));
        assert_eq!((layout.slices.len(), layout.lanes), (0, 1));
    }

    #[test]
    fn the_test_order_comes_from_the_framework() {
        let cargo = FrameworkConfig::Cargo(Default::default());
        assert_eq!(TestOrder::of(&cargo), TestOrder::SideBySide);
    }
}
