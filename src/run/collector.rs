//! The collector: the one owner of results. It dispatches batches from the
//! priority queue to idle workers, folds each batch's results into per-test
//! state, decides retries (failed tests), infrastructure retries (tests that
//! got no result), hang isolation (splitting a timed-out batch), writes the
//! batch logs, tells the reporters, and knows when the run is over.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::events::{BatchOutcome, Reporter, RunEvent};
use super::queue::{BatchQueue, Class};
use super::worker::{BatchReport, Job, WorkerMsg};
use super::TestTable;
use crate::cancel::Cancel;
use crate::model::{Outcome, TestAttempt, TestRecord};
use crate::process::Ending;
use crate::report::batch_logs::BatchLogs;

/// Settings the collector needs from the config and the command line.
pub struct CollectorSettings {
    pub parallelism: usize,
    /// The planned makespan, when timing history made it meaningful.
    pub expected_wall: Option<Duration>,
    pub timeout: Duration,
    pub fail_fast: bool,
    /// Expected start-up cost of a batch, for the expected durations of
    /// re-queued batches.
    pub batch_startup: Duration,
}

/// How the execution ended.
pub struct Collected {
    pub records: Vec<TestRecord>,
    pub wall: Duration,
    /// Stopped early (Ctrl-C or `--fail-fast`).
    pub cancelled: bool,
    /// Set when no sandbox could be created: the provider's error.
    pub fatal: Option<String>,
    /// Each batch that ended normally — what history learns the start-up
    /// and per-test costs from.
    pub batch_timings: Vec<BatchTiming>,
}

/// How long a batch took against what its tests reported.
#[derive(Clone, Copy, Debug)]
pub struct BatchTiming {
    pub wall: Duration,
    /// The sum of its tests' JUnit times.
    pub reported: Duration,
    /// First test start to last test end, on the runner's clock, when every
    /// test reported when it started (see [`super::timing::span_of`]).
    pub span: Option<Duration>,
    pub tests: usize,
    /// The group of its tests, when they all belong to one.
    pub group: Option<usize>,
}

/// The per-test state while the run goes on.
#[derive(Default, Clone)]
struct TestState {
    attempts: Vec<TestAttempt>,
    failure_retries: u32,
    infra_retries: u32,
    decided: bool,
    not_run_reason: Option<String>,
}

/// Infrastructure retries per test: one more run when its batch gave no result.
const MAX_INFRA_RETRIES: u32 = 1;

pub struct Collector<'a> {
    table: &'a TestTable,
    settings: CollectorSettings,
    cancel: Cancel,
    reporters: Vec<Box<dyn Reporter + 'a>>,
    logs: BatchLogs,
    states: Vec<TestState>,
    queue: BatchQueue,
    jobs: Sender<Job>,
    /// The collector's own end of the job queue, to take back undispatched
    /// jobs when the run stops.
    jobs_back: Receiver<Job>,
    /// Dispatched and not yet reported: batch → its job.
    in_flight: HashMap<usize, Job>,
    /// batch → worker, once a worker picked it up.
    running_on: HashMap<usize, usize>,
    idle_workers: usize,
    live_workers: usize,
    next_batch: usize,
    start: Instant,
    batch_started: HashMap<usize, Duration>,
    last_create_error: Option<String>,
    any_sandbox_ready: bool,
    batch_timings: Vec<BatchTiming>,
}

/// Call every reporter with `event`. A free function so that an event can
/// borrow from the collector's other fields (the test table) while the
/// reporters are borrowed mutably.
fn emit_to(reporters: &mut [Box<dyn Reporter + '_>], event: &RunEvent<'_>) {
    for r in reporters {
        r.on_event(event);
    }
}

impl<'a> Collector<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        table: &'a TestTable,
        settings: CollectorSettings,
        cancel: Cancel,
        reporters: Vec<Box<dyn Reporter + 'a>>,
        logs: BatchLogs,
        jobs: Sender<Job>,
        jobs_back: Receiver<Job>,
        workers: usize,
        start: Instant,
    ) -> Self {
        Collector {
            states: vec![TestState::default(); table.tests.len()],
            table,
            settings,
            cancel,
            reporters,
            logs,
            queue: BatchQueue::default(),
            jobs,
            jobs_back,
            in_flight: HashMap::new(),
            running_on: HashMap::new(),
            idle_workers: 0,
            live_workers: workers,
            next_batch: 1,
            start,
            batch_started: HashMap::new(),
            last_create_error: None,
            any_sandbox_ready: false,
            batch_timings: Vec::new(),
        }
    }

    /// Queue the planned batches of fresh work.
    pub fn enqueue(&mut self, expected: Duration, tests: Vec<usize>) {
        self.queue.push(Class::Fresh, expected, tests);
    }

    fn emit(&mut self, event: RunEvent<'_>) {
        emit_to(&mut self.reporters, &event);
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Run until every test is decided, the run is cancelled, or no sandbox
    /// is left. Returns the records of every test.
    pub fn run(mut self, messages: Receiver<WorkerMsg>) -> Collected {
        let event = RunEvent::RunStarted {
            total_tests: self.table.tests.len(),
            parallelism: self.settings.parallelism,
            expected_wall: self.settings.expected_wall,
        };
        self.emit(event);
        let mut cancel_handled = false;
        loop {
            if self.cancel.is_cancelled() && !cancel_handled {
                cancel_handled = true;
                let reason = self.stop_reason();
                self.stop_dispatching(&reason);
            }
            self.dispatch();
            if self.finished() {
                break;
            }
            match messages.recv_timeout(Duration::from_millis(50)) {
                Ok(msg) => self.handle(msg),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        // No more work: take back jobs no worker picked up, then close the
        // queue so the workers leave and destroy their sandboxes.
        let reason = self.stop_reason();
        self.stop_dispatching(&reason);
        // Only non-empty when every worker is gone.
        for (_, job) in std::mem::take(&mut self.in_flight) {
            self.mark_not_run(&job.tests, &reason);
        }
        let Collector {
            jobs,
            mut reporters,
            states,
            table,
            cancel,
            start,
            last_create_error,
            any_sandbox_ready,
            batch_timings,
            ..
        } = self;
        drop(jobs);
        let records = build_records(table, states, &reason);
        // Creation cut short by Ctrl-C is an interrupted run, not a broken provider.
        let fatal = if !any_sandbox_ready && !cancel.is_cancelled() {
            last_create_error.map(|e| format!("no sandbox could be created: {e}"))
        } else {
            None
        };
        let wall = start.elapsed();
        let cancelled = cancel.is_cancelled();
        // Drain the remaining worker messages (sandbox destruction) before the
        // final event, so reporters see a complete picture.
        loop {
            match messages.recv_timeout(Duration::from_millis(100)) {
                Ok(WorkerMsg::Exited { worker, .. }) => {
                    let at = start.elapsed();
                    for r in &mut reporters {
                        r.on_event(&RunEvent::SandboxDestroyed {
                            sandbox: worker,
                            at,
                        });
                    }
                }
                Ok(WorkerMsg::Notice(message)) => {
                    for r in &mut reporters {
                        r.on_event(&RunEvent::Notice {
                            message: message.clone(),
                        });
                    }
                }
                Ok(_) => {}
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        let event = RunEvent::RunFinished {
            records,
            wall,
            cancelled,
        };
        for r in &mut reporters {
            r.on_event(&event);
        }
        // Take the records back out of the event: no copy of 100,000 records.
        let RunEvent::RunFinished { records, .. } = event else {
            unreachable!("the event was built above as RunFinished")
        };
        Collected {
            records,
            wall,
            cancelled,
            fatal,
            batch_timings,
        }
    }

    fn finished(&self) -> bool {
        if self.live_workers == 0 {
            return true;
        }
        self.in_flight.is_empty() && (self.queue.is_empty() || self.cancel.is_cancelled())
    }

    /// Hand queued batches to idle workers, highest priority first.
    fn dispatch(&mut self) {
        while self.idle_workers > 0 && !self.cancel.is_cancelled() {
            let Some(pending) = self.queue.pop() else {
                break;
            };
            let tests: Vec<usize> = pending
                .tests
                .into_iter()
                .filter(|&t| !self.states[t].decided)
                .collect();
            if tests.is_empty() {
                continue;
            }
            let batch = self.next_batch;
            self.next_batch += 1;
            let attempt = tests
                .iter()
                .map(|&t| self.states[t].attempts.len() as u32 + 1)
                .max()
                .unwrap_or(1);
            let job = Job {
                batch,
                ids: tests
                    .iter()
                    .map(|&t| self.table.tests[t].id.clone())
                    .collect::<Vec<_>>()
                    .into(),
                tests,
                attempt,
            };
            self.in_flight.insert(batch, job.clone());
            self.idle_workers -= 1;
            if self.jobs.send(job).is_err() {
                break;
            }
        }
    }

    /// Cancellation: nothing new starts; queued work is not run.
    fn stop_dispatching(&mut self, reason: &str) {
        let waiting = self.queue.drain_tests();
        self.mark_not_run(&waiting, reason);
        while let Ok(job) = self.jobs_back.try_recv() {
            self.in_flight.remove(&job.batch);
            self.idle_workers += 1;
            self.mark_not_run(&job.tests, reason);
        }
    }

    /// Why tests that never ran did not: the user, `--fail-fast`, or no
    /// sandbox left to run them.
    fn stop_reason(&self) -> String {
        if self.cancel.was_interrupted() {
            "cancelled (Ctrl-C)".to_string()
        } else if self.cancel.is_cancelled() {
            "cancelled (--fail-fast)".to_string()
        } else {
            match &self.last_create_error {
                Some(e) => format!("no sandbox available: {e}"),
                None => "no sandbox available".to_string(),
            }
        }
    }

    fn mark_not_run(&mut self, tests: &[usize], reason: &str) {
        for &t in tests {
            if !self.states[t].decided {
                if self.states[t].attempts.is_empty() {
                    self.states[t].not_run_reason = Some(reason.to_string());
                }
                self.decide(t);
            }
        }
    }

    fn handle(&mut self, msg: WorkerMsg) {
        match msg {
            WorkerMsg::SandboxReady { worker, id } => {
                self.any_sandbox_ready = true;
                self.idle_workers += 1;
                let at = self.now();
                self.emit(RunEvent::SandboxReady {
                    sandbox: worker,
                    id,
                    at,
                });
            }
            WorkerMsg::SandboxFailed { worker, error } => {
                self.live_workers = self.live_workers.saturating_sub(1);
                self.last_create_error = Some(error.message.clone());
                let at = self.now();
                self.emit(RunEvent::SandboxFailed {
                    sandbox: worker,
                    error: error.to_string(),
                    at,
                });
            }
            WorkerMsg::BatchStarted { worker, batch } => {
                self.running_on.insert(batch, worker);
                let at = self.now();
                self.batch_started.insert(batch, at);
                let tests = self
                    .in_flight
                    .get(&batch)
                    .map_or_else(|| Arc::from([]), |j| Arc::clone(&j.ids));
                self.emit(RunEvent::BatchStarted {
                    batch,
                    sandbox: worker,
                    tests,
                    at,
                });
            }
            WorkerMsg::Output {
                batch,
                stream,
                line,
            } => {
                self.emit(RunEvent::BatchOutput {
                    batch,
                    stream,
                    line,
                });
            }
            WorkerMsg::Notice(message) => self.emit(RunEvent::Notice { message }),
            WorkerMsg::BatchDone(report) => {
                if !report.retiring {
                    self.idle_workers += 1;
                }
                self.batch_done(*report);
            }
            WorkerMsg::Exited { worker, panicked } => {
                // A worker that exits on its own (not at the end of the run)
                // has failed: its running batch, if any, gave nothing.
                let lost: Vec<usize> = self
                    .running_on
                    .iter()
                    .filter(|(b, w)| **w == worker && self.in_flight.contains_key(b))
                    .map(|(b, _)| *b)
                    .collect();
                for batch in lost {
                    if let Some(job) = self.in_flight.get(&batch).cloned() {
                        let now = Instant::now();
                        self.batch_done(BatchReport {
                            worker,
                            job,
                            ending: None,
                            output: Default::default(),
                            matched: Vec::new(),
                            unmatched: Vec::new(),
                            infra_error: Some(if panicked {
                                "the worker thread crashed (a bug in Offload; please report it)"
                                    .into()
                            } else {
                                "the worker thread ended unexpectedly".into()
                            }),
                            exit_code_only: false,
                            started: now,
                            finished: now,
                            retiring: true,
                        });
                    }
                }
                if panicked {
                    self.live_workers = self.live_workers.saturating_sub(1);
                }
                let at = self.now();
                self.emit(RunEvent::SandboxDestroyed {
                    sandbox: worker,
                    at,
                });
            }
        }
    }

    fn batch_done(&mut self, report: BatchReport) {
        let batch = report.job.batch;
        self.in_flight.remove(&batch);
        self.running_on.remove(&batch);
        let started = self
            .batch_started
            .remove(&batch)
            .unwrap_or_else(|| self.now());
        let finished = self.now();
        let timeout_secs = self.settings.timeout.as_secs();
        let ending = report.ending;
        let cancelled = ending == Some(Ending::Cancelled);
        let timed_out = ending == Some(Ending::TimedOut);

        // Per position in the batch: this attempt's result, if any.
        let mut results: Vec<Option<TestAttempt>> = vec![None; report.job.tests.len()];
        for (pos, mut attempt) in report.matched.into_iter() {
            if pos < results.len() {
                attempt.batch = batch;
                results[pos] = Some(attempt);
            }
        }
        if report.exit_code_only && !timed_out && !cancelled {
            if let Some(Ending::Exited(code)) = ending {
                for r in results.iter_mut() {
                    *r = Some(if code == 0 {
                        TestAttempt::synthetic(Outcome::Passed, "", batch)
                    } else {
                        TestAttempt::synthetic(
                            Outcome::Failed,
                            format!(
                                "batch {batch} exited with code {code}; without a result file the whole batch shares its exit code"
                            ),
                            batch,
                        )
                    });
                }
            }
        }
        let reported_secs: Duration = results.iter().flatten().map(|a| a.duration).sum();
        if !cancelled && !timed_out && report.infra_error.is_none() {
            let group_of = |pos: usize| self.table.tests[report.job.tests[pos]].group;
            let group = (0..results.len())
                .all(|pos| group_of(pos) == group_of(0))
                .then(|| group_of(0));
            self.batch_timings.push(BatchTiming {
                wall: report.finished.saturating_duration_since(report.started),
                reported: reported_secs,
                span: super::timing::span_of(results.iter().flatten()),
                tests: results.len(),
                group: group.filter(|_| !results.is_empty()),
            });
        }

        let missing_reason = missing_reason(&report.infra_error, ending, &report.unmatched);
        let mut retry = Vec::new();
        let mut infra_retry = Vec::new();
        let mut unfinished = Vec::new();
        let mut any_failed = false;
        let mut newly_failed_for_good = false;
        let outcomes: Vec<Option<Outcome>> = results
            .iter()
            .map(|r| r.as_ref().map(|a| a.outcome))
            .collect();
        for (pos, result) in results.into_iter().enumerate() {
            let t = report.job.tests[pos];
            if self.states[t].decided {
                continue;
            }
            match result {
                Some(attempt) => {
                    let failed = matches!(attempt.outcome, Outcome::Failed | Outcome::Error);
                    any_failed |= failed;
                    newly_failed_for_good |= self.record_attempt(t, attempt, &mut retry);
                }
                None if cancelled => {}
                None if timed_out => unfinished.push(t),
                None => {
                    if self.states[t].infra_retries < MAX_INFRA_RETRIES {
                        self.states[t].infra_retries += 1;
                        infra_retry.push(t);
                    } else {
                        if self.states[t].attempts.is_empty() {
                            self.states[t].not_run_reason = Some(missing_reason.clone());
                        }
                        newly_failed_for_good |= self.decide(t);
                    }
                }
            }
        }

        // A timed-out batch: isolate the hanging test by splitting the tests
        // that did not finish; alone, it is reported as timed out.
        if timed_out {
            if unfinished.len() == 1 {
                let timed_out_attempt = TestAttempt {
                    details: Some(report.output.tail(30)),
                    ..TestAttempt::synthetic(
                        Outcome::Failed,
                        format!("timed out after {timeout_secs} s"),
                        batch,
                    )
                };
                any_failed = true;
                newly_failed_for_good |=
                    self.record_attempt(unfinished[0], timed_out_attempt, &mut retry);
            } else if !unfinished.is_empty() {
                let parts = hang_split_parts(unfinished.len(), self.live_workers);
                let message = format!(
                    "batch {batch} timed out after {timeout_secs} s with {} tests unfinished; re-running them in {parts} parts to find the hanging test",
                    unfinished.len()
                );
                self.emit(RunEvent::Notice { message });
                self.requeue(Class::HangSplit, unfinished, parts);
            }
        }
        let idle = self.idle_workers.max(1);
        for &t in &retry {
            let attempt = self.states[t].attempts.len() as u32 + 1;
            emit_to(
                &mut self.reporters,
                &RunEvent::TestRetrying {
                    id: &self.table.tests[t].id,
                    attempt,
                },
            );
        }
        let n = retry.len();
        self.requeue(Class::Retry, retry, n.min(idle));
        let n = infra_retry.len();
        if n > 0 {
            self.emit(RunEvent::Notice {
                message: format!("batch {batch}: {missing_reason}; re-running {n} test(s) without a result once more"),
            });
        }
        // Apart from each other, so one test that crashes its runner cannot
        // take the others' results down with it a second time.
        let parts = hang_split_parts(n, self.live_workers);
        self.requeue(Class::InfraRetry, infra_retry, parts);

        let outcome = if cancelled {
            BatchOutcome::Cancelled
        } else if report.infra_error.is_some() || timed_out || outcomes.iter().any(Option::is_none)
        {
            BatchOutcome::Error
        } else if any_failed {
            BatchOutcome::Failure
        } else {
            BatchOutcome::Success
        };
        let mut trailer = Vec::new();
        if timed_out {
            trailer.push(format!(
                "batch timed out after {timeout_secs} s and was killed"
            ));
        }
        if let Some(e) = &report.infra_error {
            trailer.push(e.clone());
        }
        if !report.unmatched.is_empty() {
            trailer.push(format!(
                "{} JUnit testcase(s) matched no test of this batch, e.g. `{}`",
                report.unmatched.len(),
                report.unmatched[0]
            ));
        }
        if let Err(e) = self.logs.write(batch, outcome, &report.output, &trailer) {
            self.emit(RunEvent::Notice {
                message: format!("cannot write the log of batch {batch}: {e}"),
            });
        }
        self.emit(RunEvent::BatchFinished {
            batch,
            sandbox: report.worker,
            outcome,
            started,
            finished,
            tests: Arc::clone(&report.job.ids),
            outcomes,
        });
        if newly_failed_for_good && self.settings.fail_fast && !self.cancel.is_cancelled() {
            self.emit(RunEvent::Notice {
                message: "--fail-fast: a test failed; stopping the run".into(),
            });
            self.cancel.raise(crate::cancel::CancelLevel::Graceful);
        }
    }

    /// Add an attempt of test `t`: a failure goes to `retry` while the
    /// group's `retry_count` allows, otherwise the test gets its verdict.
    /// Returns whether it failed for good.
    fn record_attempt(&mut self, t: usize, attempt: TestAttempt, retry: &mut Vec<usize>) -> bool {
        let failed = matches!(attempt.outcome, Outcome::Failed | Outcome::Error);
        push_attempt(&mut self.states[t].attempts, attempt);
        if failed && self.states[t].failure_retries < self.retry_count(t) {
            self.states[t].failure_retries += 1;
            retry.push(t);
            false
        } else {
            self.decide(t)
        }
    }

    fn retry_count(&self, t: usize) -> u32 {
        self.table.groups[self.table.tests[t].group].retry_count
    }

    /// Give test `t` its verdict; returns whether it failed for good.
    fn decide(&mut self, t: usize) -> bool {
        let s = &mut self.states[t];
        s.decided = true;
        let status = TestRecord::status_from_attempts(&s.attempts);
        emit_to(
            &mut self.reporters,
            &RunEvent::TestDecided {
                id: &self.table.tests[t].id,
                status,
            },
        );
        status.is_failure()
    }

    /// Put `tests` back on the queue in `parts` batches of similar expected
    /// duration.
    fn requeue(&mut self, class: Class, tests: Vec<usize>, parts: usize) {
        if tests.is_empty() {
            return;
        }
        let parts = parts.clamp(1, tests.len());
        let mut buckets: Vec<Vec<usize>> = vec![Vec::new(); parts];
        let mut sorted = tests;
        sorted.sort_by(|a, b| {
            self.table.tests[*b]
                .expected
                .cmp(&self.table.tests[*a].expected)
        });
        let mut loads = vec![Duration::ZERO; parts];
        for t in sorted {
            let i = (0..parts)
                .min_by_key(|&i| (loads[i], buckets[i].len()))
                .unwrap_or(0);
            loads[i] += self.table.tests[t].expected;
            buckets[i].push(t);
        }
        for (bucket, load) in buckets.into_iter().zip(loads) {
            self.queue
                .push(class, load + self.settings.batch_startup, bucket);
        }
    }
}

/// Most tests run once: grow attempt lists one at a time, not by four
/// (512 bytes a test, tens of megabytes at 100,000 tests).
fn push_attempt(attempts: &mut Vec<TestAttempt>, attempt: TestAttempt) {
    attempts.reserve_exact(1);
    attempts.push(attempt);
}

/// How many parts to split `n` unfinished tests of a timed-out batch into.
/// Small sets go straight to single tests (one more timeout finds the hang);
/// large ones are split wide enough to use every sandbox.
pub fn hang_split_parts(n: usize, workers: usize) -> usize {
    let workers = workers.max(1);
    if n <= 4 * workers {
        n
    } else {
        (2 * workers).max(2)
    }
}

fn missing_reason(
    infra_error: &Option<String>,
    ending: Option<Ending>,
    unmatched: &[String],
) -> String {
    let how = match ending {
        Some(Ending::Exited(c)) => format!("the runner exited with code {c}"),
        Some(Ending::Signalled(s)) => format!("the runner was killed by signal {s}"),
        Some(Ending::TimedOut) => "the batch timed out".to_string(),
        Some(Ending::Cancelled) => "the batch was cancelled".to_string(),
        None => String::new(),
    };
    match (ending, infra_error) {
        (None, Some(e)) => format!("no result: {e}"),
        (Some(_), Some(e)) => format!("no result: {how} and {e}"),
        _ if unmatched.is_empty() => format!("no result for this test in the batch's JUnit ({how})"),
        _ => format!(
            "no result for this test in the batch's JUnit ({how}); {} testcase(s) matched no expected ID, e.g. `{}`: check that JUnit names match the discovered IDs",
            unmatched.len(),
            unmatched[0]
        ),
    }
}

fn build_records(
    table: &TestTable,
    states: Vec<TestState>,
    default_reason: &str,
) -> Vec<TestRecord> {
    states
        .into_iter()
        .enumerate()
        .map(|(t, s)| {
            let status = TestRecord::status_from_attempts(&s.attempts);
            let not_run_reason = if s.attempts.is_empty() {
                Some(
                    s.not_run_reason
                        .unwrap_or_else(|| default_reason.to_string()),
                )
            } else {
                None
            };
            TestRecord {
                id: table.tests[t].id.clone(),
                group: table.groups[table.tests[t].group].name.clone(),
                attempts: s.attempts,
                status,
                not_run_reason,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hang_split_goes_to_singletons_for_small_sets() {
        assert_eq!(hang_split_parts(13, 4), 13);
        assert_eq!(hang_split_parts(2, 1), 2);
        assert_eq!(hang_split_parts(500, 8), 16);
    }
}
