//! The run's decisions, as a state machine with no threads, channels or
//! processes in it: what a batch's result means for each of its tests,
//! retries of failed tests, re-runs of tests that got no result (isolating a
//! test that crashes its runner), splitting a timed-out batch until the hang
//! is alone, `--fail-fast`, what to dispatch next, and when the run is over.
//!
//! Inputs are method calls (a sandbox is ready, a batch started, a batch's
//! [`BatchResult`], a worker died, the user stopped the run, a fresh
//! discovery arrived); outputs go to [`Effects`]: events for the reporters,
//! jobs for the workers, and a request to discover afresh. The
//! driver (`run::execute`) owns the threads and channels and feeds this; the
//! unit tests feed it directly.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::batch::{BatchEnd, BatchResult, BatchResults, Job, RunnerEnd};
use super::queue::BatchQueue;
use crate::discover::{TestEntry, TestTable};
use crate::events::{BatchKind, BatchOutcome, BatchTiming, Event, FinishedBatch, StopReason};
use crate::model::{Outcome, TestAttempt, TestRecord};
use crate::provider::ProviderError;
use crate::schedule::PlannedBatch;

/// What the run's decisions depend on.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Worker threads (sandboxes) of the run.
    pub workers: usize,
    /// `test_timeout_secs`, for messages.
    pub timeout: Duration,
    pub fail_fast: bool,
    /// Expected start-up cost of a batch, for the expected durations of
    /// re-queued batches.
    pub batch_startup: Duration,
    /// No test had a duration in the history: the plan could not keep
    /// batches inside the timeout, so the first batches' measured rate does
    /// (queued batches that would take too long are split).
    pub cold: bool,
}

/// Where the state machine's decisions go.
pub trait Effects {
    /// Tell the reporters.
    fn emit(&mut self, event: &Event<'_>);
    /// Hand `job` to the next free worker.
    fn dispatch(&mut self, job: Job);
    /// Tell the next free worker to destroy its sandbox and leave: the run
    /// has no more work for it.
    fn retire(&mut self);
    /// Discover every group afresh (not from the cache) and give the result
    /// to [`RunState::rediscovered`]; asked at most once per run.
    fn rediscover(&mut self);
}

/// Re-runs per test when its batch gave no result for a reason that is not
/// the test's (the sandbox failed, the JUnit named no such test).
const MAX_INFRA_RETRIES: u32 = 1;

/// Lines of a batch's output kept as the details of a test that timed out
/// or crashed its runner.
const TAIL_LINES: usize = 30;

/// Tests found by a fresh discovery during the run are planned in batches
/// of about this many (a batch's start-up is paid for each).
const NEW_TESTS_PER_BATCH: usize = 50;

#[derive(Default, Clone)]
struct TestState {
    attempts: Vec<TestAttempt>,
    failure_retries: u32,
    infra_retries: u32,
    decided: bool,
    not_run_reason: Option<String>,
    /// Gone since discovery: no record at all.
    removed: bool,
}

/// A dispatched batch that has not reported back.
struct InFlight {
    job: Job,
    /// The worker running it, once one picked it up.
    sandbox: Option<usize>,
    started: Option<Duration>,
    /// What the runner's live output said so far: (position, outcome, when).
    live: Vec<(usize, Outcome, Duration)>,
}

/// What one position of a batch came to.
enum Fate {
    /// A real result: from the JUnit, or the exit code for the whole batch.
    Result(TestAttempt),
    /// The batch timed out before this test finished.
    Unfinished,
    /// The runner ended without a result for this test: it may have crashed
    /// on it, or on another test before it.
    Lost,
    /// The batch never ran, or named no such test: not the test's doing.
    Missed,
    /// The runner said it does not know this test.
    NotFound,
    /// No result because the runner stopped at another test it did not
    /// find (pytest runs nothing then): run again, at no cost.
    Again,
    Cancelled,
}

/// Whether the run has discovered afresh since a test went missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rediscovery {
    NotAsked,
    Asked,
    /// Done (or failed): a test the runner does not know now is not run.
    Over,
}

/// How the run came out, once it is over.
pub struct Finished {
    pub records: Vec<TestRecord>,
    pub stopped: Option<StopReason>,
    /// Set when no sandbox could ever be created: the provider's error.
    pub fatal: Option<String>,
}

pub struct RunState<'t> {
    /// Borrowed until a fresh discovery adds tests to it.
    table: Cow<'t, TestTable>,
    settings: Settings,
    tests: Vec<TestState>,
    queue: BatchQueue,
    in_flight: HashMap<usize, InFlight>,
    /// Workers waiting for a job.
    idle: usize,
    /// Workers that still have (or may still get) a sandbox.
    live: usize,
    any_sandbox_ready: bool,
    last_create_error: Option<String>,
    next_batch: usize,
    stopped: Option<StopReason>,
    /// Isolation batches still allowed: isolating crashers costs batches,
    /// and a runner that crashes whatever it runs must not cost one per test.
    isolation_budget: usize,
    rediscovery: Rediscovery,
    /// Tests the runner did not find, waiting for the fresh discovery.
    parked: Vec<usize>,
    /// Without history: the most a test and a batch's start have been seen
    /// to cost, from the batches that ran to their end.
    measured_rate: Option<(Duration, Duration)>,
}

impl<'t> RunState<'t> {
    pub fn new(table: &'t TestTable, settings: Settings) -> Self {
        let n = table.tests.len();
        // Enough to isolate a few crashers by splitting: each split level of
        // each sandbox's work costs a few batches.
        let levels = (usize::BITS - n.leading_zeros()) as usize;
        let isolation_budget = 4 * (settings.workers.max(1) + levels);
        RunState {
            tests: vec![TestState::default(); n],
            table: Cow::Borrowed(table),
            live: settings.workers,
            settings,
            queue: BatchQueue::default(),
            in_flight: HashMap::new(),
            idle: 0,
            any_sandbox_ready: false,
            last_create_error: None,
            next_batch: 1,
            stopped: None,
            isolation_budget,
            rediscovery: Rediscovery::NotAsked,
            parked: Vec::new(),
            measured_rate: None,
        }
    }

    /// Queue the planned batches of fresh work, in the plan's order.
    pub fn enqueue(&mut self, batches: Vec<PlannedBatch>) {
        for b in batches {
            self.queue.push(BatchKind::Fresh, b.expected, b.tests);
        }
    }

    /// The run is over: every test decided, or stopped with nothing running,
    /// or no sandbox left. A fresh discovery under way may still bring work.
    pub fn is_finished(&self) -> bool {
        self.live == 0
            || (self.in_flight.is_empty()
                && (self.stopped.is_some()
                    || (self.queue.is_empty() && self.rediscovery != Rediscovery::Asked)))
    }

    /// Hand queued batches to idle workers, highest priority first.
    pub fn dispatch(&mut self, fx: &mut dyn Effects) {
        while self.idle > 0 && self.stopped.is_none() {
            let Some(pending) = self.queue.pop() else {
                break;
            };
            let tests: Vec<usize> = pending
                .tests
                .into_iter()
                .filter(|&t| !self.tests[t].decided)
                .collect();
            if tests.is_empty() {
                continue;
            }
            let batch = self.next_batch;
            self.next_batch += 1;
            let attempt = tests
                .iter()
                .map(|&t| self.tests[t].attempts.len() as u32 + 1)
                .max()
                .unwrap_or(1);
            let entries = || tests.iter().map(|&t| &self.table.tests[t]);
            let runner_ids = entries()
                .any(|e| e.runner_id.is_some())
                .then(|| entries().map(|e| e.runner_id().to_string()).collect());
            // Every group of one framework leaves its batches the same
            // (cargo: one build), so the first test's group speaks for all.
            let from_discovery = self.table.for_batches(self.table.tests[tests[0]].group);
            let job = Job {
                batch,
                kind: pending.kind,
                ids: entries().map(|e| e.id.clone()).collect(),
                runner_ids,
                from_discovery: from_discovery.cloned(),
                tests,
                attempt,
            };
            self.in_flight.insert(
                batch,
                InFlight {
                    job: job.clone(),
                    sandbox: None,
                    started: None,
                    live: Vec::new(),
                },
            );
            self.idle -= 1;
            fx.dispatch(job);
        }
        self.retire_idle(fx);
    }

    /// With nothing queued and nothing more to come, an idle sandbox only
    /// costs: a remote one money, and every sandbox its destroy at the end
    /// of the run, where eight `docker rm` at once take longer than one.
    /// So it is destroyed now — except one per running batch that may still
    /// be retried for a failure (its retry then starts at once, beside the
    /// batch's own sandbox), and one spare while any batch runs (for a batch
    /// whose sandbox broke).
    fn retire_idle(&mut self, fx: &mut dyn Effects) {
        let more_to_come = self.stopped.is_some()
            || !self.queue.is_empty()
            || !self.parked.is_empty()
            || self.rediscovery == Rediscovery::Asked;
        if more_to_come || self.idle == 0 {
            return;
        }
        let retriable = self
            .in_flight
            .values()
            .filter(|f| self.may_be_retried(&f.job))
            .count();
        let spare = usize::from(!self.in_flight.is_empty());
        let reserve = retriable + spare;
        while self.idle > reserve {
            self.idle -= 1;
            self.live -= 1;
            fx.retire();
        }
    }

    /// Whether a failure in `job` would be retried.
    fn may_be_retried(&self, job: &Job) -> bool {
        job.tests.iter().any(|&t| {
            let retry_count = self.table.groups[self.table.tests[t].group].retry_count;
            !self.tests[t].decided && self.tests[t].failure_retries < retry_count
        })
    }

    /// An order to retire that no worker took before the run stopped: its
    /// worker is still there, idle.
    pub fn retire_taken_back(&mut self) {
        self.idle += 1;
        self.live += 1;
    }

    pub fn sandbox_ready(&mut self, sandbox: usize, id: &str, now: Duration, fx: &mut dyn Effects) {
        self.any_sandbox_ready = true;
        self.idle += 1;
        fx.emit(&Event::SandboxReady {
            sandbox,
            id,
            at: now,
        });
    }

    /// The sandbox could not be created, or was retired: its worker is gone.
    pub fn sandbox_failed(
        &mut self,
        sandbox: usize,
        error: &ProviderError,
        now: Duration,
        fx: &mut dyn Effects,
    ) {
        self.live = self.live.saturating_sub(1);
        self.last_create_error = Some(error.message.clone());
        fx.emit(&Event::SandboxFailed {
            sandbox,
            error: &error.to_string(),
            at: now,
        });
    }

    pub fn batch_started(
        &mut self,
        sandbox: usize,
        batch: usize,
        now: Duration,
        fx: &mut dyn Effects,
    ) {
        let Some(flight) = self.in_flight.get_mut(&batch) else {
            return;
        };
        flight.sandbox = Some(sandbox);
        flight.started = Some(now);
        fx.emit(&Event::BatchStarted {
            batch,
            kind: flight.job.kind,
            sandbox,
            tests: &flight.job.ids,
            at: now,
        });
    }

    /// The runner's live output says the test at `position` of `batch`
    /// finished so: tell the reporters (the JUnit file decides later).
    pub fn test_finished(
        &mut self,
        batch: usize,
        position: usize,
        outcome: Outcome,
        now: Duration,
        fx: &mut dyn Effects,
    ) {
        let Some(flight) = self.in_flight.get_mut(&batch) else {
            return;
        };
        let Some(&t) = flight.job.tests.get(position) else {
            return;
        };
        flight.live.push((position, outcome, now));
        let state = &self.tests[t];
        if state.decided {
            return;
        }
        let retry_count = self.table.groups[self.table.tests[t].group].retry_count;
        fx.emit(&Event::TestFinished {
            batch,
            id: &self.table.tests[t].id,
            outcome,
            retried_if_failed: state.failure_retries < retry_count,
        });
    }

    /// A worker thread ended: retired (it had no batch), or failed, and then
    /// the batch it was running gave nothing.
    pub fn worker_exited(
        &mut self,
        sandbox: usize,
        panicked: bool,
        now: Duration,
        fx: &mut dyn Effects,
    ) {
        let mut lost: Vec<usize> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.sandbox == Some(sandbox))
            .map(|(&b, _)| b)
            .collect();
        lost.sort_unstable();
        for batch in lost {
            if let Some(flight) = self.in_flight.get(&batch) {
                let error = if panicked {
                    "the worker thread crashed (a bug in Offload; please report it)"
                } else {
                    "the worker thread ended unexpectedly"
                };
                let result = BatchResult {
                    sandbox,
                    job: flight.job.clone(),
                    end: BatchEnd::NotRun(error.into()),
                    output: Default::default(),
                    wall: Duration::ZERO,
                    retiring: true,
                    not_found: Vec::new(),
                };
                self.batch_done(result, now, fx);
            }
        }
        if panicked {
            self.live = self.live.saturating_sub(1);
        }
        fx.emit(&Event::SandboxDestroyed { sandbox, at: now });
    }

    /// Stop dispatching: queued tests will not run (Ctrl-C, `--fail-fast`).
    pub fn stop(&mut self, reason: StopReason, fx: &mut dyn Effects) {
        if self.stopped.is_some() {
            return;
        }
        self.stopped = Some(reason);
        fx.emit(&Event::RunStopping { reason });
        let waiting = self.queue.drain_tests();
        let why = self.stop_reason();
        self.mark_not_run(&waiting, &why, fx);
    }

    /// A job no worker picked up before the run stopped.
    pub fn take_back(&mut self, job: Job, fx: &mut dyn Effects) {
        self.in_flight.remove(&job.batch);
        self.idle += 1;
        let why = self.stop_reason();
        self.mark_not_run(&job.tests, &why, fx);
    }

    /// Everything is over: every test still undecided is not run, and each
    /// test's record is built.
    pub fn finish(mut self, fx: &mut dyn Effects) -> Finished {
        let why = self.stop_reason();
        let mut waiting = self.queue.drain_tests();
        waiting.append(&mut self.parked);
        self.mark_not_run(&waiting, &why, fx);
        // Only non-empty when every worker is gone.
        let mut lost: Vec<InFlight> = std::mem::take(&mut self.in_flight).into_values().collect();
        lost.sort_by_key(|f| f.job.batch);
        for flight in lost {
            self.mark_not_run(&flight.job.tests, &why, fx);
        }
        // Creation cut short by Ctrl-C is an interrupted run, not a broken provider.
        let fatal = if !self.any_sandbox_ready && self.stopped.is_none() {
            self.last_create_error
                .as_ref()
                .map(|e| format!("no sandbox could be created: {e}"))
        } else {
            None
        };
        let table = &self.table;
        let records = self
            .tests
            .into_iter()
            .enumerate()
            .filter(|(_, s)| !s.removed)
            .map(|(t, s)| {
                let status = TestRecord::status_from_attempts(&s.attempts);
                let not_run_reason = s
                    .attempts
                    .is_empty()
                    .then(|| s.not_run_reason.unwrap_or_else(|| why.clone()));
                TestRecord {
                    id: table.tests[t].id.clone(),
                    group: table.groups[table.tests[t].group].name.clone(),
                    attempts: s.attempts,
                    status,
                    not_run_reason,
                }
            })
            .collect();
        Finished {
            records,
            stopped: self.stopped,
            fatal,
        }
    }

    /// Why tests that never ran did not: the user, `--fail-fast`, or no
    /// sandbox left to run them.
    fn stop_reason(&self) -> String {
        match self.stopped {
            Some(StopReason::Interrupted) => "cancelled (Ctrl-C)".to_string(),
            Some(StopReason::FailFast) => "cancelled (--fail-fast)".to_string(),
            None => match &self.last_create_error {
                Some(e) => format!("no sandbox available: {e}"),
                None => "no sandbox available".to_string(),
            },
        }
    }

    fn mark_not_run(&mut self, tests: &[usize], reason: &str, fx: &mut dyn Effects) {
        for &t in tests {
            if !self.tests[t].decided {
                if self.tests[t].attempts.is_empty() {
                    self.tests[t].not_run_reason = Some(reason.to_string());
                }
                self.decide(t, fx);
            }
        }
    }

    /// A batch reported back: fold its results into each test's state and
    /// decide what runs next.
    pub fn batch_done(&mut self, result: BatchResult, now: Duration, fx: &mut dyn Effects) {
        let BatchResult {
            sandbox,
            job,
            end,
            output,
            wall,
            retiring,
            not_found: result_not_found,
        } = result;
        let (started, live) = match self.in_flight.remove(&job.batch) {
            Some(f) => (f.started.unwrap_or(now), f.live),
            None => (now, Vec::new()),
        };
        if !retiring {
            self.idle += 1;
        }
        let batch = job.batch;
        let timeout_secs = self.settings.timeout.as_secs();
        let fates = fates(&end, &job);
        // A batch that stopped at a test its runner does not know ran
        // nothing: it teaches the timing history nothing.
        let timing = if result_not_found.is_empty() {
            self.timing(&job, &end, &fates, wall)
        } else {
            None
        };
        if let (true, Some(t)) = (self.settings.cold, &timing) {
            self.fit_queued_batches(t);
        }
        let outcomes: Vec<Option<Outcome>> = fates
            .iter()
            .map(|f| match f {
                Fate::Result(a) => Some(a.outcome),
                _ => None,
            })
            .collect();
        let durations: Vec<Option<Duration>> = fates
            .iter()
            .map(|f| match f {
                Fate::Result(a) => Some(a.duration),
                _ => None,
            })
            .collect();
        let missing_reason = missing_reason(&end);

        let mut retry = Vec::new();
        let mut unfinished = Vec::new();
        let mut lost = Vec::new();
        let mut missed = Vec::new();
        let mut not_found = Vec::new();
        let mut again = Vec::new();
        let mut failed_for_good = false;
        let fates = with_not_found(fates, &result_not_found);
        for (pos, fate) in fates.into_iter().enumerate() {
            let t = job.tests[pos];
            if self.tests[t].decided {
                continue;
            }
            match fate {
                Fate::Result(mut attempt) => {
                    attempt.batch = batch;
                    failed_for_good |= self.record_attempt(t, attempt, &mut retry, fx);
                }
                Fate::Unfinished => unfinished.push(t),
                Fate::Lost => lost.push(t),
                Fate::Missed => missed.push(t),
                Fate::NotFound => not_found.push(t),
                Fate::Again => again.push(t),
                Fate::Cancelled => {}
            }
        }
        failed_for_good |= self.not_found(batch, not_found, again, fx);

        // A timed-out batch that was making steady progress is not hung: it
        // was too long. What the runner said of its finished tests is their
        // result; the rest run again in batches that fit.
        if unfinished.len() > 1 {
            if let Some(per_test) = steady_rate(&live, started, now) {
                let said: HashMap<usize, Outcome> = live.iter().map(|&(p, o, _)| (p, o)).collect();
                let mut rest = Vec::new();
                for (pos, &t) in job.tests.iter().enumerate() {
                    if !unfinished.contains(&t) {
                        continue;
                    }
                    match said.get(&pos) {
                        Some(&outcome) => {
                            let attempt = TestAttempt::synthetic(
                                outcome,
                                "as the runner's output said: the batch stopped at the timeout before writing its results",
                                batch,
                            );
                            failed_for_good |= self.record_attempt(t, attempt, &mut retry, fx);
                        }
                        None => rest.push(t),
                    }
                }
                let limit = crate::schedule::batch_time_limit(self.settings.timeout);
                let parts = crate::schedule::split_to_fit(&rest, per_test, Duration::ZERO, limit);
                let message = format!(
                    "batch {batch} was still finishing tests when it reached the timeout ({timeout_secs} s): \
                     not a hang; its {} unfinished tests run again in {} smaller batches",
                    rest.len(),
                    parts.len()
                );
                fx.emit(&Event::Notice { message: &message });
                for part in parts {
                    let expected = per_test.saturating_mul(part.len() as u32);
                    self.queue.push(BatchKind::Split, expected, part);
                }
                unfinished.clear();
            }
        }

        // A timed-out batch: the hang is among the tests that did not
        // finish. Alone, it is the hang; otherwise split and run again.
        if unfinished.len() == 1 {
            let attempt = TestAttempt {
                details: Some(output.tail(TAIL_LINES)),
                ..TestAttempt::synthetic(
                    Outcome::Failed,
                    format!("timed out after {timeout_secs} s"),
                    batch,
                )
            };
            failed_for_good |= self.record_attempt(unfinished[0], attempt, &mut retry, fx);
        } else if !unfinished.is_empty() {
            let parts = split_parts(unfinished.len(), self.live);
            let message = format!(
                "batch {batch} timed out after {timeout_secs} s with {} tests unfinished; re-running them in {parts} parts to find the hanging test",
                unfinished.len()
            );
            fx.emit(&Event::Notice { message: &message });
            self.requeue(BatchKind::HangSplit, unfinished, parts);
        }

        // The runner ended without results for some tests: it crashed, on
        // one of them or before them. Alone in its batch, a test without a
        // result is the one that crashed it; otherwise the tests are split
        // and run again until every other test has its real result.
        if let [t] = lost[..] {
            if job.tests.len() == 1 {
                let attempt = TestAttempt {
                    details: Some(output.tail(TAIL_LINES)),
                    ..TestAttempt::synthetic(
                        Outcome::Error,
                        format!("crashed the runner: {}", crash_description(&end)),
                        batch,
                    )
                };
                failed_for_good |= self.record_attempt(t, attempt, &mut retry, fx);
                lost.clear();
            }
        }
        if !lost.is_empty() {
            let parts = split_parts(lost.len(), self.live);
            if parts <= self.isolation_budget {
                self.isolation_budget -= parts;
                let message = format!(
                    "batch {batch}: {missing_reason}; re-running the {} test(s) without a result in {parts} part(s) to find the one that crashes the runner",
                    lost.len()
                );
                fx.emit(&Event::Notice { message: &message });
                self.requeue(BatchKind::Isolation, lost, parts);
            } else {
                let reason = format!(
                    "{missing_reason} (not isolated further: the runner crashed in every batch re-run to find the crashing test)"
                );
                for t in lost {
                    self.tests[t]
                        .not_run_reason
                        .get_or_insert_with(|| reason.clone());
                    failed_for_good |= self.decide(t, fx);
                }
            }
        }

        // Tests that got no result through no fault of their own run once more.
        let mut again = Vec::new();
        for t in missed {
            if self.tests[t].infra_retries < MAX_INFRA_RETRIES {
                self.tests[t].infra_retries += 1;
                again.push(t);
            } else {
                if self.tests[t].attempts.is_empty() {
                    self.tests[t].not_run_reason = Some(missing_reason.clone());
                }
                failed_for_good |= self.decide(t, fx);
            }
        }
        if !again.is_empty() {
            let message = format!(
                "batch {batch}: {missing_reason}; re-running {} test(s) without a result once more",
                again.len()
            );
            fx.emit(&Event::Notice { message: &message });
            let parts = split_parts(again.len(), self.live);
            self.requeue(BatchKind::Isolation, again, parts);
        }

        let table = &self.table;
        for &t in &retry {
            fx.emit(&Event::TestRetrying {
                id: &table.tests[t].id,
                attempt: self.tests[t].attempts.len() as u32 + 1,
            });
        }
        let parts = retry.len().min(self.idle.max(1));
        self.requeue(BatchKind::Retry, retry, parts);

        let outcome = batch_outcome(&end, &outcomes);
        let finished = FinishedBatch {
            batch,
            kind: job.kind,
            sandbox,
            outcome,
            started,
            finished: now,
            notes: notes(&end, self.settings.timeout),
            tests: Arc::clone(&job.ids),
            outcomes,
            durations,
            output,
            timing,
        };
        fx.emit(&Event::BatchFinished(&finished));
        if failed_for_good && self.settings.fail_fast && self.stopped.is_none() {
            fx.emit(&Event::Notice {
                message: "--fail-fast: a test failed; stopping the run",
            });
            self.stop(StopReason::FailFast, fx);
        }
    }

    /// Tests the runner did not find (`missing`), and their neighbours that
    /// got no result because of them (`again`, run again as they were). A
    /// reused discovery may simply be out of date: the tests wait for a
    /// fresh one. Otherwise they are not run, named as not found. Returns
    /// whether a test failed for good.
    fn not_found(
        &mut self,
        batch: usize,
        missing: Vec<usize>,
        again: Vec<usize>,
        fx: &mut dyn Effects,
    ) -> bool {
        let mut failed_for_good = false;
        let mut waiting = Vec::new();
        for t in missing {
            let group = self.table.tests[t].group;
            if self.rediscovery != Rediscovery::Over && self.table.is_reused(group) {
                waiting.push(t);
            } else {
                self.tests[t].not_run_reason.get_or_insert_with(|| {
                    "the runner did not find this test, although discovery listed it".into()
                });
                failed_for_good |= self.decide(t, fx);
            }
        }
        if !waiting.is_empty() && self.rediscovery == Rediscovery::NotAsked {
            self.rediscovery = Rediscovery::Asked;
            let message = format!(
                "batch {batch}: the runner does not know {} test(s) of the reused discovery (e.g. `{}`): discovering afresh",
                waiting.len(),
                self.table.tests[waiting[0]].id
            );
            fx.emit(&Event::Notice { message: &message });
            fx.rediscover();
        }
        self.parked.extend(waiting);
        let parts = usize::from(!again.is_empty());
        self.requeue(BatchKind::Fresh, again, parts);
        failed_for_good
    }

    /// The fresh discovery asked for by [`Effects::rediscover`] (or why it
    /// failed). Tests it no longer finds are left out of the run (no record:
    /// they do not exist) unless they already ran; tests it finds anew run;
    /// the tests waiting for it run again, and one the runner still does not
    /// know is then not run.
    pub fn rediscovered(&mut self, fresh: Result<TestTable, String>, fx: &mut dyn Effects) {
        self.rediscovery = Rediscovery::Over;
        let parked = std::mem::take(&mut self.parked);
        let fresh = match fresh {
            Ok(fresh) => fresh,
            Err(e) => {
                let reason = format!(
                    "the runner did not find this test, and discovering afresh failed: {e}"
                );
                for t in parked {
                    self.tests[t]
                        .not_run_reason
                        .get_or_insert_with(|| reason.clone());
                    self.decide(t, fx);
                }
                return;
            }
        };
        let found: rustc_hash::FxHashSet<&str> =
            fresh.tests.iter().map(|e| e.id.as_str()).collect();
        let mut removed = Vec::new();
        for (t, entry) in self.table.tests.iter().enumerate() {
            let state = &mut self.tests[t];
            if !found.contains(entry.id.as_str()) && state.attempts.is_empty() && !state.removed {
                state.removed = true;
                state.decided = true;
                removed.push(entry.id.clone());
            }
        }
        let known: rustc_hash::FxHashSet<&str> =
            self.table.tests.iter().map(|e| e.id.as_str()).collect();
        let added: Vec<TestEntry> = fresh
            .tests
            .iter()
            .filter(|e| !known.contains(e.id.as_str()))
            .cloned()
            .collect();
        let back: Vec<usize> = parked
            .into_iter()
            .filter(|&t| !self.tests[t].removed)
            .collect();
        let table = self.table.to_mut();
        table.reused = fresh.reused;
        table.for_batches = fresh.for_batches;
        let first_new = table.tests.len();
        let added_count = added.len();
        table.tests.extend(added);
        self.tests
            .resize(first_new + added_count, TestState::default());

        let mut message = String::from("discovered afresh:");
        if !removed.is_empty() {
            message.push_str(&format!(
                " {} test(s) of the reused discovery no longer exist and are left out (e.g. `{}`);",
                removed.len(),
                removed[0]
            ));
        }
        message.push_str(&format!(" {added_count} new test(s) to run"));
        fx.emit(&Event::Notice { message: &message });
        fx.emit(&Event::TestCountChanged {
            total: self.tests.iter().filter(|s| !s.removed).count(),
        });
        let parts = usize::from(!back.is_empty());
        self.requeue(BatchKind::Fresh, back, parts);
        let new: Vec<usize> = (first_new..first_new + added_count).collect();
        let parts = new
            .len()
            .div_ceil(NEW_TESTS_PER_BATCH)
            .min(self.settings.workers.max(1));
        self.requeue(BatchKind::Fresh, new, parts);
    }

    /// Without history, the first batches that ran to their end say what a
    /// test and a batch's start cost here: split each queued batch of fresh
    /// work that would not fit in the planned share of the timeout. (With
    /// history the plan already did.)
    fn fit_queued_batches(&mut self, t: &BatchTiming) {
        if t.tests == 0 {
            return;
        }
        // A runner that runs tests side by side reports more time than the
        // batch took: the wall time is then the measure.
        let in_tests = t.reported.min(t.wall);
        let per_test = t.span.unwrap_or(in_tests).min(t.wall) / t.tests as u32;
        let startup = t
            .wall
            .saturating_sub(per_test.saturating_mul(t.tests as u32));
        let rate = (per_test, startup);
        let (per_test, startup) = match self.measured_rate {
            Some((p, s)) => (p.max(rate.0), s.max(rate.1)),
            None => rate,
        };
        self.measured_rate = Some((per_test, startup));
        let limit = crate::schedule::batch_time_limit(self.settings.timeout);
        self.queue.split_fresh(|tests| {
            let expected = startup + per_test.saturating_mul(tests.len() as u32);
            (tests.len() > 1 && expected > limit)
                .then(|| crate::schedule::split_to_fit(tests, per_test, startup, limit))
        });
    }

    /// What the batch teaches the timing history: only a batch whose runner
    /// ended on its own and left results for its tests.
    fn timing(
        &self,
        job: &Job,
        end: &BatchEnd,
        fates: &[Fate],
        wall: Duration,
    ) -> Option<BatchTiming> {
        let ran = matches!(
            end,
            BatchEnd::Ran {
                results: BatchResults::Junit(_) | BatchResults::ExitCodeOnly,
                ..
            }
        );
        if !ran || job.tests.is_empty() {
            return None;
        }
        let attempts = || {
            fates.iter().filter_map(|f| match f {
                Fate::Result(a) => Some(a),
                _ => None,
            })
        };
        let reported = attempts().map(|a| a.duration).sum();
        let span = super::timing::span_of(attempts());
        let group_of = |t: usize| self.table.tests[t].group;
        let first = group_of(job.tests[0]);
        Some(BatchTiming {
            wall,
            reported,
            span,
            tests: job.tests.len(),
            group: job
                .tests
                .iter()
                .all(|&t| group_of(t) == first)
                .then_some(first),
        })
    }

    /// Add an attempt of test `t`: a failure goes to `retry` while the
    /// group's `retry_count` allows, otherwise the test gets its verdict.
    /// Returns whether it failed for good.
    fn record_attempt(
        &mut self,
        t: usize,
        attempt: TestAttempt,
        retry: &mut Vec<usize>,
        fx: &mut dyn Effects,
    ) -> bool {
        let failed = matches!(attempt.outcome, Outcome::Failed | Outcome::Error);
        let retry_count = self.table.groups[self.table.tests[t].group].retry_count;
        let state = &mut self.tests[t];
        // Most tests run once: grow the list one at a time, not by four
        // (512 bytes a test, tens of megabytes at 100,000 tests).
        state.attempts.reserve_exact(1);
        state.attempts.push(attempt);
        let test = &self.table.tests[t];
        if let Some(attempt) = state.attempts.last() {
            fx.emit(&Event::AttemptFinished {
                id: &test.id,
                group: &self.table.groups[test.group].name,
                number: state.attempts.len() as u32,
                attempt,
            });
        }
        if failed && state.failure_retries < retry_count {
            state.failure_retries += 1;
            retry.push(t);
            false
        } else {
            self.decide(t, fx)
        }
    }

    /// Give test `t` its verdict; returns whether it failed for good.
    fn decide(&mut self, t: usize, fx: &mut dyn Effects) -> bool {
        let s = &mut self.tests[t];
        s.decided = true;
        let status = TestRecord::status_from_attempts(&s.attempts);
        let test = &self.table.tests[t];
        fx.emit(&Event::TestDecided {
            id: &test.id,
            group: &self.table.groups[test.group].name,
            status,
        });
        status.is_failure()
    }

    /// Put `tests` back on the queue in `parts` batches of similar expected
    /// duration.
    fn requeue(&mut self, kind: BatchKind, tests: Vec<usize>, parts: usize) {
        if tests.is_empty() {
            return;
        }
        let items: Vec<(usize, Duration)> = tests
            .into_iter()
            .map(|t| (t, self.table.tests[t].expected))
            .collect();
        for (part, load) in crate::schedule::loads::split_balanced(&items, parts) {
            self.queue
                .push(kind, load + self.settings.batch_startup, part);
        }
    }
}

/// How many parts to split `n` tests into to find a hanging or crashing one
/// among them. Small sets go straight to single tests (one more run finds
/// it); large ones are split wide enough to use every sandbox.
pub fn split_parts(n: usize, workers: usize) -> usize {
    let workers = workers.max(1);
    if n <= 4 * workers {
        n
    } else {
        (2 * workers).max(2)
    }
}

/// Whether a batch that timed out was making steady progress: its runner
/// said tests finished, the last of them recently enough (within a tenth of
/// the batch's time, or three of its tests' average) that the batch was
/// still going. Then the average time per finished test, for re-splitting
/// the rest; `None` for a batch that looks hung.
fn steady_rate(
    live: &[(usize, Outcome, Duration)],
    started: Duration,
    ended: Duration,
) -> Option<Duration> {
    let last = live.iter().map(|&(_, _, at)| at).max()?;
    let ran = ended.saturating_sub(started);
    let per_test = last.saturating_sub(started) / live.len() as u32;
    let quiet = ended.saturating_sub(last);
    (quiet <= (ran / 10).max(per_test.saturating_mul(3)))
        .then_some(per_test.max(Duration::from_millis(1)))
}

/// What each test of the batch came to.
fn fates(end: &BatchEnd, job: &Job) -> Vec<Fate> {
    let n = job.tests.len();
    let from_junit = |matched: &crate::framework::MatchedResults, rest: fn() -> Fate| {
        let mut fates: Vec<Fate> = (0..n).map(|_| rest()).collect();
        for (pos, attempt) in &matched.matched {
            if let Some(f) = fates.get_mut(*pos) {
                *f = Fate::Result(attempt.clone());
            }
        }
        fates
    };
    match end {
        BatchEnd::NotRun(_) => (0..n).map(|_| Fate::Missed).collect(),
        BatchEnd::Cancelled => (0..n).map(|_| Fate::Cancelled).collect(),
        BatchEnd::TimedOut(partial) => match partial {
            Some(m) => from_junit(m, || Fate::Unfinished),
            None => (0..n).map(|_| Fate::Unfinished).collect(),
        },
        BatchEnd::Ran { runner, results } => match results {
            BatchResults::ExitCodeOnly => match runner {
                RunnerEnd::Exited(code) => (0..n)
                    .map(|_| {
                        Fate::Result(if *code == 0 {
                            TestAttempt::synthetic(Outcome::Passed, "", job.batch)
                        } else {
                            TestAttempt::synthetic(
                                Outcome::Failed,
                                format!(
                                    "batch {} exited with code {code}; without a result file the whole batch shares its exit code",
                                    job.batch
                                ),
                                job.batch,
                            )
                        })
                    })
                    .collect(),
                RunnerEnd::Signalled(_) => (0..n).map(|_| Fate::Lost).collect(),
            },
            // A runner that exited with 0 and wrote no results did not crash:
            // it writes them elsewhere (a config problem).
            BatchResults::Missing(_) if *runner == RunnerEnd::Exited(0) => {
                (0..n).map(|_| Fate::Missed).collect()
            }
            BatchResults::Missing(_) => (0..n).map(|_| Fate::Lost).collect(),
            BatchResults::Junit(m) => {
                // Testcases named after no test of the batch mean the names
                // do not map (a config problem), and a runner that exited
                // with 0 did not crash: re-running apart finds nothing then.
                let crashed = *runner != RunnerEnd::Exited(0);
                if m.unmatched.is_empty() && crashed {
                    from_junit(m, || Fate::Lost)
                } else {
                    from_junit(m, || Fate::Missed)
                }
            }
        },
    }
}

/// The fates with the runner's word on tests it did not find: those are
/// [`Fate::NotFound`], and the others without a result got none because of
/// them ([`Fate::Again`]): pytest runs nothing when an argument names no
/// test.
fn with_not_found(mut fates: Vec<Fate>, not_found: &[usize]) -> Vec<Fate> {
    if not_found.is_empty() {
        return fates;
    }
    for &pos in not_found {
        if let Some(f) = fates.get_mut(pos) {
            if !matches!(f, Fate::Result(_)) {
                *f = Fate::NotFound;
            }
        }
    }
    for f in &mut fates {
        if matches!(f, Fate::Lost | Fate::Missed) {
            *f = Fate::Again;
        }
    }
    fates
}

/// Why the batch's tests without a result have none, for messages and the
/// not-run reason.
fn missing_reason(end: &BatchEnd) -> String {
    match end {
        BatchEnd::NotRun(e) => format!("no result: {e}"),
        BatchEnd::Ran {
            runner,
            results: BatchResults::Missing(why),
        } => format!("no result: {} and {why}", runner.describe()),
        BatchEnd::Ran {
            runner,
            results: BatchResults::Junit(m),
        } if !m.unmatched.is_empty() => format!(
            "no result for this test in the batch's JUnit ({}); {} testcase(s) matched no expected ID, e.g. `{}`: check that JUnit names match the discovered IDs",
            runner.describe(),
            m.unmatched.len(),
            crate::framework::case_label(&m.unmatched[0])
        ),
        BatchEnd::Ran { runner, .. } => format!(
            "no result for this test in the batch's JUnit ({})",
            runner.describe()
        ),
        BatchEnd::TimedOut(_) => "no result: the batch timed out".into(),
        BatchEnd::Cancelled => "no result: the batch was cancelled".into(),
    }
}

/// `exit code 1`, `killed by signal 9`, for a crasher's message.
fn crash_description(end: &BatchEnd) -> String {
    match end {
        // A shell reports a child killed by signal N as exit code 128 + N.
        BatchEnd::Ran {
            runner: RunnerEnd::Exited(c),
            ..
        } if (129..=192).contains(c) => {
            format!("exit code {c} (killed by signal {})", c - 128)
        }
        BatchEnd::Ran {
            runner: RunnerEnd::Exited(c),
            ..
        } => format!("exit code {c} without a result"),
        BatchEnd::Ran {
            runner: RunnerEnd::Signalled(s),
            ..
        } => format!("killed by signal {s}"),
        _ => "no result".into(),
    }
}

fn batch_outcome(end: &BatchEnd, outcomes: &[Option<Outcome>]) -> BatchOutcome {
    match end {
        BatchEnd::Cancelled => BatchOutcome::Cancelled,
        BatchEnd::NotRun(_) | BatchEnd::TimedOut(_) => BatchOutcome::Error,
        BatchEnd::Ran { .. } if outcomes.iter().any(Option::is_none) => BatchOutcome::Error,
        BatchEnd::Ran { .. }
            if outcomes
                .iter()
                .any(|o| matches!(o, Some(Outcome::Failed | Outcome::Error))) =>
        {
            BatchOutcome::Failure
        }
        BatchEnd::Ran { .. } => BatchOutcome::Success,
    }
}

/// Offload's notes at the end of a batch's log.
fn notes(end: &BatchEnd, timeout: Duration) -> Vec<String> {
    match end {
        BatchEnd::TimedOut(_) => vec![format!(
            "batch timed out after {} s and was killed",
            timeout.as_secs()
        )],
        BatchEnd::NotRun(e) => vec![e.clone()],
        BatchEnd::Ran {
            results: BatchResults::Missing(why),
            ..
        } => vec![why.clone()],
        BatchEnd::Ran {
            results: BatchResults::Junit(m),
            ..
        } if !m.unmatched.is_empty() => vec![format!(
            "{} JUnit testcase(s) matched no test of this batch, e.g. `{}`",
            m.unmatched.len(),
            crate::framework::case_label(&m.unmatched[0])
        )],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
