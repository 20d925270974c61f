//! The run's decisions, tested without threads or processes: a fake pool of
//! sandboxes feeds the state machine batch results as a test script says.

use std::time::Duration;

use super::*;
use crate::framework::MatchedResults;
use crate::model::FinalStatus;

/// Everything the state machine told the world, events as short strings.
#[derive(Default)]
struct Recorder {
    events: Vec<String>,
    jobs: Vec<Job>,
    timings: Vec<Option<BatchTiming>>,
    rediscoveries: usize,
    /// Orders to retire an idle worker.
    retired: usize,
}

impl Effects for Recorder {
    fn emit(&mut self, event: &Event<'_>) {
        let e = match event {
            Event::SandboxReady { sandbox, .. } => format!("ready {sandbox}"),
            Event::SandboxFailed { sandbox, .. } => format!("failed sandbox {sandbox}"),
            Event::SandboxDestroyed { sandbox, .. } => format!("destroyed {sandbox}"),
            Event::BatchStarted { batch, kind, .. } => format!("started {batch} {kind:?}"),
            Event::BatchFinished(b) => {
                self.timings.push(b.timing);
                format!("finished {} {:?}", b.batch, b.outcome)
            }
            Event::TestRetrying { id, attempt } => format!("retry {id} {attempt}"),
            Event::AttemptFinished {
                id,
                group,
                number,
                attempt,
            } => format!("attempt {id} ({group}) {number} {:?}", attempt.outcome),
            Event::TestDecided { id, status, .. } => format!("decided {id} {status:?}"),
            Event::RunStopping { reason } => format!("stopping {reason:?}"),
            Event::Notice { message } => format!("notice {message}"),
            other => format!("{other:?}"),
        };
        self.events.push(e);
    }

    fn dispatch(&mut self, job: Job) {
        self.jobs.push(job);
    }

    fn retire(&mut self) {
        self.retired += 1;
    }

    fn rediscover(&mut self) {
        self.rediscoveries += 1;
    }
}

impl Recorder {
    fn has(&self, prefix: &str) -> bool {
        self.events.iter().any(|e| e.starts_with(prefix))
    }

    fn take_jobs(&mut self) -> Vec<Job> {
        std::mem::take(&mut self.jobs)
    }
}

/// Tests `ids` in group 0 (`retry_count` as given), 100 ms each.
fn table_with_retries(ids: &[&str], retry_count: u32) -> TestTable {
    let mut t = crate::events::testing::table(ids);
    for test in &mut t.tests {
        test.expected = Duration::from_millis(100);
    }
    t.groups[0].retry_count = retry_count;
    t
}

fn table(ids: &[&str]) -> TestTable {
    table_with_retries(ids, 0)
}

fn settings(workers: usize) -> Settings {
    Settings {
        workers,
        timeout: Duration::from_secs(5),
        fail_fast: false,
        batch_startup: Duration::from_millis(200),
        cold: false,
    }
}

fn planned(batches: &[&[usize]]) -> Vec<PlannedBatch> {
    batches
        .iter()
        .map(|tests| PlannedBatch {
            tests: tests.to_vec(),
            expected: Duration::from_secs(1),
        })
        .collect()
}

fn attempt(outcome: Outcome) -> TestAttempt {
    TestAttempt {
        duration: Duration::from_millis(10),
        ..TestAttempt::synthetic(outcome, "", 0)
    }
}

/// A JUnit result for the given positions of `job`.
fn junit(results: &[(usize, Outcome)]) -> BatchResults {
    BatchResults::Junit(MatchedResults {
        matched: results.iter().map(|&(p, o)| (p, attempt(o))).collect(),
        unmatched: Vec::new(),
    })
}

fn ran(code: i32, results: BatchResults) -> BatchEnd {
    BatchEnd::Ran {
        runner: RunnerEnd::Exited(code),
        results,
    }
}

fn done(sandbox: usize, job: Job, end: BatchEnd) -> BatchResult {
    BatchResult {
        sandbox,
        job,
        end,
        output: Default::default(),
        wall: Duration::from_millis(500),
        retiring: false,
        not_found: Vec::new(),
    }
}

/// A run of `t` with `plan` queued and the first `ready` sandboxes created.
fn start<'t>(
    t: &'t TestTable,
    settings: Settings,
    plan: &[&[usize]],
    ready: usize,
) -> (RunState<'t>, Recorder) {
    let mut fx = Recorder::default();
    let mut s = RunState::new(t, settings);
    s.enqueue(planned(plan));
    for w in 0..ready {
        s.sandbox_ready(w, &format!("local-{w}"), Duration::ZERO, &mut fx);
    }
    (s, fx)
}

/// What the fake runner does with each test ID, by its prefix: `pass`,
/// `fail`, `flaky` (fails on its first attempt), `crash` (the runner dies
/// with no results), `hang` (the batch times out with no results).
fn fake_run(sandbox: usize, job: Job, ids: &[String]) -> BatchResult {
    if ids.iter().any(|id| id.starts_with("hang")) {
        return done(sandbox, job, BatchEnd::TimedOut(None));
    }
    if ids.iter().any(|id| id.starts_with("crash")) {
        return done(
            sandbox,
            job,
            ran(
                1,
                BatchResults::Missing("wrote no JUnit result file".into()),
            ),
        );
    }
    let results: Vec<(usize, Outcome)> = ids
        .iter()
        .enumerate()
        .map(|(p, id)| {
            let passes = id.starts_with("pass") || (id.starts_with("flaky") && job.attempt > 1);
            (
                p,
                if passes {
                    Outcome::Passed
                } else {
                    Outcome::Failed
                },
            )
        })
        .collect();
    let code = i32::from(results.iter().any(|(_, o)| *o == Outcome::Failed));
    done(sandbox, job, ran(code, junit(&results)))
}

/// Run the whole thing on `workers` sandboxes until it is finished,
/// answering every job with [`fake_run`]. Returns the records, the
/// recorder and how many batches ran.
fn run_to_end(
    table: &TestTable,
    settings: Settings,
    plan: Vec<PlannedBatch>,
) -> (Finished, Recorder, usize) {
    let workers = settings.workers;
    let mut fx = Recorder::default();
    let mut state = RunState::new(table, settings);
    state.enqueue(plan);
    for w in 0..workers {
        state.sandbox_ready(w, &format!("local-{w}"), Duration::ZERO, &mut fx);
    }
    let mut ran = 0;
    let mut now = Duration::ZERO;
    loop {
        state.dispatch(&mut fx);
        if state.is_finished() {
            break;
        }
        let jobs = fx.take_jobs();
        assert!(
            !jobs.is_empty(),
            "nothing to do but not finished: {:?}",
            fx.events
        );
        for (w, job) in jobs.into_iter().enumerate() {
            ran += 1;
            now += Duration::from_millis(10);
            state.batch_started(w, job.batch, now, &mut fx);
            let ids = job.ids.to_vec();
            state.batch_done(fake_run(w, job, &ids), now, &mut fx);
        }
    }
    let finished = state.finish(&mut fx);
    (finished, fx, ran)
}

fn status(f: &Finished, id: &str) -> FinalStatus {
    f.records.iter().find(|r| r.id == id).unwrap().status
}

fn record<'a>(f: &'a Finished, id: &str) -> &'a TestRecord {
    f.records.iter().find(|r| r.id == id).unwrap()
}

fn ids(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:02}")).collect()
}

#[test]
fn nothing_is_dispatched_before_a_sandbox_is_ready() {
    let t = table(&["pass_a"]);
    let mut fx = Recorder::default();
    let mut s = RunState::new(&t, settings(1));
    s.enqueue(planned(&[&[0]]));
    s.dispatch(&mut fx);
    assert!(fx.jobs.is_empty());
    assert!(!s.is_finished());
    s.sandbox_ready(0, "local-0", Duration::ZERO, &mut fx);
    s.dispatch(&mut fx);
    assert_eq!(fx.jobs.len(), 1);
    assert_eq!(fx.jobs[0].attempt, 1);
    assert_eq!(fx.jobs[0].kind, BatchKind::Fresh);
}

#[test]
fn a_sandbox_gets_one_batch_at_a_time_in_plan_order() {
    let t = table(&["pass_a", "pass_b", "pass_c"]);
    let (mut s, mut fx) = start(&t, settings(1), &[&[2], &[0], &[1]], 1);
    let mut order = Vec::new();
    loop {
        s.dispatch(&mut fx);
        let jobs = fx.take_jobs();
        if jobs.is_empty() {
            break;
        }
        assert_eq!(jobs.len(), 1, "one sandbox, one batch at a time");
        let job = jobs.into_iter().next().unwrap();
        order.push(job.tests.clone());
        s.batch_done(fake_run(0, job.clone(), &job.ids), Duration::ZERO, &mut fx);
    }
    assert_eq!(order, vec![vec![2], vec![0], vec![1]]);
    assert!(s.is_finished());
}

#[test]
fn every_test_passing_is_every_record_passed() {
    let t = table(&["pass_a", "pass_b", "pass_c", "pass_d"]);
    let (f, fx, ran) = run_to_end(&t, settings(2), planned(&[&[0, 1], &[2, 3]]));
    assert_eq!(ran, 2);
    assert!(f.records.iter().all(|r| r.status == FinalStatus::Passed));
    assert!(f.stopped.is_none() && f.fatal.is_none());
    assert_eq!(
        fx.events
            .iter()
            .filter(|e| e.starts_with("decided"))
            .count(),
        4
    );
}

#[test]
fn a_failure_without_retries_is_final() {
    let t = table(&["pass_a", "fail_b"]);
    let (f, fx, ran) = run_to_end(&t, settings(1), planned(&[&[0, 1]]));
    assert_eq!(ran, 1);
    assert_eq!(status(&f, "fail_b"), FinalStatus::Failed);
    assert!(!fx.has("retry"));
}

#[test]
fn a_failure_is_retried_up_to_retry_count_then_final() {
    let t = table_with_retries(&["fail_a"], 2);
    let (f, fx, ran) = run_to_end(&t, settings(1), planned(&[&[0]]));
    assert_eq!(ran, 3, "one run and two retries");
    let r = record(&f, "fail_a");
    assert_eq!(r.status, FinalStatus::Failed);
    assert_eq!(r.attempts.len(), 3);
    assert!(fx.has("retry fail_a 2") && fx.has("retry fail_a 3"));
    // Each attempt's result comes before what follows from it: a retry,
    // and at the end the verdict.
    let about_fail_a: Vec<&str> = fx
        .events
        .iter()
        .map(String::as_str)
        .filter(|e| e.contains("fail_a"))
        .collect();
    assert_eq!(
        about_fail_a,
        [
            "attempt fail_a (all) 1 Failed",
            "retry fail_a 2",
            "attempt fail_a (all) 2 Failed",
            "retry fail_a 3",
            "attempt fail_a (all) 3 Failed",
            "decided fail_a Failed",
        ]
    );
}

#[test]
fn passing_on_a_retry_is_flaky() {
    let t = table_with_retries(&["pass_a", "flaky_b"], 1);
    let (f, _, _) = run_to_end(&t, settings(1), planned(&[&[0, 1]]));
    assert_eq!(status(&f, "flaky_b"), FinalStatus::Flaky);
    assert_eq!(record(&f, "flaky_b").attempts.len(), 2);
    assert_eq!(
        record(&f, "pass_a").attempts.len(),
        1,
        "passing tests are not re-run"
    );
}

#[test]
fn retries_go_ahead_of_fresh_work_with_the_next_attempt_number() {
    let t = table_with_retries(&["fail_a", "pass_b"], 1);
    let (mut s, mut fx) = start(&t, settings(1), &[&[0], &[1]], 1);
    s.dispatch(&mut fx);
    let job = fx.take_jobs().remove(0);
    s.batch_done(fake_run(0, job.clone(), &job.ids), Duration::ZERO, &mut fx);
    s.dispatch(&mut fx);
    let next = fx.take_jobs().remove(0);
    assert_eq!(next.kind, BatchKind::Retry);
    assert_eq!(next.tests, vec![0]);
    assert_eq!(next.attempt, 2);
}

#[test]
fn failed_tests_are_retried_apart_over_the_idle_sandboxes() {
    let t = table_with_retries(&["fail_a", "fail_b", "fail_c"], 1);
    let (mut s, mut fx) = start(&t, settings(3), &[&[0, 1, 2]], 3);
    s.dispatch(&mut fx);
    let job = fx.take_jobs().remove(0);
    s.batch_done(fake_run(0, job.clone(), &job.ids), Duration::ZERO, &mut fx);
    s.dispatch(&mut fx);
    let retries = fx.take_jobs();
    assert_eq!(
        retries.len(),
        3,
        "three idle sandboxes, three retry batches"
    );
    assert!(retries.iter().all(|j| j.tests.len() == 1));
}

#[test]
fn a_crash_keeps_the_results_that_were_written() {
    let t = table(&["pass_a", "fail_b", "crash_c", "pass_d"]);
    let (mut s, mut fx) = start(&t, settings(1), &[&[0, 1, 2, 3]], 1);
    s.dispatch(&mut fx);
    let job = fx.take_jobs().remove(0);
    // The runner wrote two results, then died of a signal.
    let end = BatchEnd::Ran {
        runner: RunnerEnd::Signalled(9),
        results: junit(&[(0, Outcome::Passed), (1, Outcome::Failed)]),
    };
    s.batch_done(done(0, job, end), Duration::ZERO, &mut fx);
    assert!(fx.has("decided pass_a Passed"));
    assert!(fx.has("decided fail_b Failed"));
    assert!(fx.has("finished 1 Error"), "{:?}", fx.events);
    // The two tests without a result go again, apart.
    s.dispatch(&mut fx);
    let again = fx.take_jobs();
    assert_eq!(again.len(), 1, "one sandbox");
    assert_eq!(again[0].kind, BatchKind::Isolation);
    assert_eq!(again[0].tests.len(), 1);
}

#[test]
fn a_test_that_crashes_its_runner_alone_is_named_as_the_crasher() {
    let t = table(&["crash_a"]);
    let (f, _, ran) = run_to_end(&t, settings(1), planned(&[&[0]]));
    assert_eq!(ran, 1);
    let r = record(&f, "crash_a");
    assert_eq!(r.status, FinalStatus::Error);
    let message = r.attempts[0].message.as_deref().unwrap();
    assert_eq!(message, "crashed the runner: exit code 1 without a result");
}

#[test]
fn a_crasher_is_isolated_and_no_innocent_test_is_lost() {
    // 61 tests on 2 sandboxes, one of them kills its runner: every other
    // test gets its real result.
    let mut names = ids(60, "pass");
    names.insert(37, "crash_x".into());
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let t = table(&refs);
    let first: Vec<usize> = (0..31).collect();
    let second: Vec<usize> = (31..61).collect();
    let (f, _, ran) = run_to_end(&t, settings(2), planned(&[&first, &second]));
    let not_passed: Vec<&str> = f
        .records
        .iter()
        .filter(|r| r.status != FinalStatus::Passed)
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(not_passed, ["crash_x"]);
    assert_eq!(status(&f, "crash_x"), FinalStatus::Error);
    // Bounded: a few splits, not a batch per test.
    assert!(ran <= 2 + 4 + 8, "{ran} batches");
}

#[test]
fn a_runner_that_crashes_whatever_it_runs_costs_a_bounded_number_of_batches() {
    let names = ids(200, "crash");
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let t = table(&refs);
    let plan: Vec<Vec<usize>> = (0..4).map(|b| (b * 50..(b + 1) * 50).collect()).collect();
    let plan_refs: Vec<&[usize]> = plan.iter().map(Vec::as_slice).collect();
    let (f, _, ran) = run_to_end(&t, settings(2), planned(&plan_refs));
    // 4 planned batches, then the isolation budget: 4 × (2 workers + 8 bits).
    assert!(ran <= 4 + 40, "{ran} batches");
    let not_isolated = f
        .records
        .iter()
        .filter(|r| {
            r.not_run_reason
                .as_deref()
                .is_some_and(|why| why.contains("not isolated further"))
        })
        .count();
    assert!(not_isolated > 100, "{not_isolated}");
    assert!(f.records.iter().all(|r| r.status.is_failure()));
}

#[test]
fn a_runner_that_exits_0_without_results_is_rerun_once_not_bisected() {
    let t = table(&["pass_a", "pass_b", "pass_c"]);
    let (mut s, mut fx) = start(&t, settings(1), &[&[0, 1, 2]], 1);
    let mut batches = 0;
    loop {
        s.dispatch(&mut fx);
        let jobs = fx.take_jobs();
        if jobs.is_empty() {
            break;
        }
        for job in jobs {
            batches += 1;
            let end = ran(
                0,
                BatchResults::Missing("wrote no JUnit result file".into()),
            );
            s.batch_done(done(0, job, end), Duration::ZERO, &mut fx);
        }
    }
    let f = s.finish(&mut fx);
    assert_eq!(batches, 4, "the batch, then each test once more");
    for r in &f.records {
        assert_eq!(r.status, FinalStatus::NotRun);
        assert_eq!(
            r.not_run_reason.as_deref(),
            Some("no result: the runner exited with code 0 and wrote no JUnit result file")
        );
    }
}

#[test]
fn junit_names_that_match_nothing_are_named_in_the_not_run_reason() {
    let t = table(&["a"]);
    let (mut s, mut fx) = start(&t, settings(1), &[&[0]], 1);
    for _ in 0..2 {
        s.dispatch(&mut fx);
        let job = fx.take_jobs().remove(0);
        let results = BatchResults::Junit(MatchedResults {
            matched: vec![],
            unmatched: vec![crate::junit::read::JunitCase {
                classname: Some("suite".into()),
                ..crate::junit::read::JunitCase::named("other")
            }],
        });
        s.batch_done(done(0, job, ran(1, results)), Duration::ZERO, &mut fx);
    }
    let f = s.finish(&mut fx);
    let why = f.records[0].not_run_reason.as_deref().unwrap();
    assert!(
        why.contains("1 testcase(s) matched no expected ID, e.g. `suite other`"),
        "{why}"
    );
}

#[test]
fn without_a_result_file_the_exit_code_decides_for_every_test() {
    let t = table(&["a", "b"]);
    let (mut s, mut fx) = start(&t, settings(1), &[&[0], &[1]], 1);
    for code in [0, 3] {
        s.dispatch(&mut fx);
        let job = fx.take_jobs().remove(0);
        s.batch_done(
            done(0, job, ran(code, BatchResults::ExitCodeOnly)),
            Duration::ZERO,
            &mut fx,
        );
    }
    let f = s.finish(&mut fx);
    assert_eq!(status(&f, "a"), FinalStatus::Passed);
    assert_eq!(status(&f, "b"), FinalStatus::Failed);
    let message = record(&f, "b").attempts[0].message.clone().unwrap();
    assert!(message.contains("batch 2 exited with code 3"), "{message}");
}

#[test]
fn a_timed_out_batch_with_one_unfinished_test_names_the_hang() {
    let t = table(&["pass_a", "hang_b"]);
    let (mut s, mut fx) = start(&t, settings(1), &[&[0, 1]], 1);
    s.dispatch(&mut fx);
    let job = fx.take_jobs().remove(0);
    let partial = MatchedResults {
        matched: vec![(0, attempt(Outcome::Passed))],
        unmatched: vec![],
    };
    s.batch_done(
        done(0, job, BatchEnd::TimedOut(Some(partial))),
        Duration::ZERO,
        &mut fx,
    );
    assert!(s.is_finished());
    let f = s.finish(&mut fx);
    assert_eq!(
        status(&f, "pass_a"),
        FinalStatus::Passed,
        "partial results are kept"
    );
    let hang = record(&f, "hang_b");
    assert_eq!(hang.status, FinalStatus::Failed);
    assert_eq!(
        hang.attempts[0].message.as_deref(),
        Some("timed out after 5 s")
    );
}

#[test]
fn a_timed_out_batch_is_split_until_the_hang_is_alone() {
    let mut names = ids(30, "pass");
    names.insert(11, "hang_x".into());
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let t = table(&refs);
    let all: Vec<usize> = (0..names.len()).collect();
    let (f, fx, ran) = run_to_end(&t, settings(2), planned(&[&all]));
    assert!(fx.has(
        "notice batch 1 timed out after 5 s with 31 tests unfinished; re-running them in 4 parts"
    ));
    assert_eq!(status(&f, "hang_x"), FinalStatus::Failed);
    assert!(f
        .records
        .iter()
        .filter(|r| r.id != "hang_x")
        .all(|r| r.status == FinalStatus::Passed));
    assert!(ran <= 1 + 4 + 8, "{ran}");
}

#[test]
fn hang_splits_go_first_in_the_queue() {
    let t = table(&["hang_a", "pass_b", "pass_c"]);
    let (mut s, mut fx) = start(&t, settings(1), &[&[0, 1], &[2]], 1);
    s.dispatch(&mut fx);
    let job = fx.take_jobs().remove(0);
    s.batch_done(
        done(0, job, BatchEnd::TimedOut(None)),
        Duration::ZERO,
        &mut fx,
    );
    s.dispatch(&mut fx);
    let next = fx.take_jobs().remove(0);
    assert_eq!(next.kind, BatchKind::HangSplit);
}

#[test]
fn a_sandbox_lost_mid_batch_gives_its_tests_to_the_others() {
    let t = table(&["pass_a", "pass_b"]);
    let (mut s, mut fx) = start(&t, settings(2), &[&[0], &[1]], 2);
    s.dispatch(&mut fx);
    let jobs = fx.take_jobs();
    s.batch_started(0, jobs[0].batch, Duration::ZERO, &mut fx);
    s.batch_started(1, jobs[1].batch, Duration::ZERO, &mut fx);
    // Worker 0 dies of a bug with its batch running.
    s.worker_exited(0, true, Duration::ZERO, &mut fx);
    assert!(fx.has("notice batch 1: no result: the worker thread crashed"));
    let j1 = jobs[1].clone();
    s.batch_done(fake_run(1, j1.clone(), &j1.ids), Duration::ZERO, &mut fx);
    s.dispatch(&mut fx);
    let again = fx.take_jobs();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].tests, vec![0]);
    s.batch_done(
        fake_run(1, again[0].clone(), &again[0].ids),
        Duration::ZERO,
        &mut fx,
    );
    assert!(s.is_finished());
    let f = s.finish(&mut fx);
    assert!(f.records.iter().all(|r| r.status == FinalStatus::Passed));
}

#[test]
fn a_batch_the_sandbox_could_not_run_is_tried_once_more_then_not_run() {
    let t = table(&["pass_a"]);
    let (mut s, mut fx) = start(&t, settings(1), &[&[0]], 1);
    for _ in 0..2 {
        s.dispatch(&mut fx);
        let job = fx.take_jobs().remove(0);
        let end = BatchEnd::NotRun("sandbox exec failed: connection reset".into());
        s.batch_done(done(0, job, end), Duration::ZERO, &mut fx);
    }
    s.dispatch(&mut fx);
    assert!(fx.jobs.is_empty());
    let f = s.finish(&mut fx);
    assert_eq!(
        f.records[0].not_run_reason.as_deref(),
        Some("no result: sandbox exec failed: connection reset")
    );
}

#[test]
fn fail_fast_stops_dispatching_and_names_the_rest() {
    let t = table(&["fail_a", "pass_b", "pass_c"]);
    let settings = Settings {
        fail_fast: true,
        ..settings(1)
    };
    let (f, fx, ran) = run_to_end(&t, settings, planned(&[&[0], &[1], &[2]]));
    assert_eq!(ran, 1);
    assert!(fx.has("stopping FailFast"));
    assert_eq!(f.stopped, Some(StopReason::FailFast));
    for id in ["pass_b", "pass_c"] {
        assert_eq!(
            record(&f, id).not_run_reason.as_deref(),
            Some("cancelled (--fail-fast)")
        );
    }
}

#[test]
fn fail_fast_waits_for_the_retries() {
    let t = table_with_retries(&["flaky_a", "pass_b"], 1);
    let settings = Settings {
        fail_fast: true,
        ..settings(1)
    };
    let (f, fx, _) = run_to_end(&t, settings, planned(&[&[0], &[1]]));
    assert!(
        !fx.has("stopping"),
        "a failure that will be retried is not final"
    );
    assert_eq!(status(&f, "flaky_a"), FinalStatus::Flaky);
    assert_eq!(status(&f, "pass_b"), FinalStatus::Passed);
}

#[test]
fn cancelling_with_work_queued_marks_it_not_run() {
    let t = table(&["pass_a", "pass_b", "pass_c"]);
    let (mut s, mut fx) = start(&t, settings(1), &[&[0], &[1], &[2]], 1);
    s.dispatch(&mut fx);
    let running = fx.take_jobs().remove(0);
    s.stop(StopReason::Interrupted, &mut fx);
    assert!(fx.has("stopping Interrupted"));
    assert!(!s.is_finished(), "the running batch still has to report");
    s.batch_done(
        done(0, running, BatchEnd::Cancelled),
        Duration::ZERO,
        &mut fx,
    );
    s.dispatch(&mut fx);
    assert!(fx.jobs.is_empty(), "nothing new starts");
    assert!(s.is_finished());
    let f = s.finish(&mut fx);
    assert_eq!(f.stopped, Some(StopReason::Interrupted));
    assert!(f
        .records
        .iter()
        .all(|r| r.not_run_reason.as_deref() == Some("cancelled (Ctrl-C)")));
}

#[test]
fn a_job_no_worker_picked_up_is_taken_back_as_not_run() {
    let t = table(&["pass_a"]);
    let (mut s, mut fx) = start(&t, settings(1), &[&[0]], 1);
    s.dispatch(&mut fx);
    let job = fx.take_jobs().remove(0);
    s.stop(StopReason::Interrupted, &mut fx);
    s.take_back(job, &mut fx);
    assert!(s.is_finished());
    assert!(fx.has("decided pass_a NotRun"));
}

#[test]
fn when_no_sandbox_can_be_created_the_run_is_fatal() {
    let t = table(&["pass_a", "pass_b"]);
    let mut fx = Recorder::default();
    let mut s = RunState::new(&t, settings(2));
    s.enqueue(planned(&[&[0], &[1]]));
    let error = ProviderError::new(crate::provider::ErrorStage::Create, "quota exceeded");
    s.sandbox_failed(0, &error, Duration::ZERO, &mut fx);
    assert!(!s.is_finished());
    s.sandbox_failed(1, &error, Duration::ZERO, &mut fx);
    assert!(s.is_finished());
    let f = s.finish(&mut fx);
    assert_eq!(
        f.fatal.as_deref(),
        Some("no sandbox could be created: quota exceeded")
    );
    assert!(f
        .records
        .iter()
        .all(|r| r.not_run_reason.as_deref() == Some("no sandbox available: quota exceeded")));
}

#[test]
fn one_failed_sandbox_among_working_ones_is_not_fatal() {
    let t = table(&["pass_a", "pass_b"]);
    let mut fx = Recorder::default();
    let mut s = RunState::new(&t, settings(2));
    s.enqueue(planned(&[&[0], &[1]]));
    let error = ProviderError::new(crate::provider::ErrorStage::Create, "no room");
    s.sandbox_failed(1, &error, Duration::ZERO, &mut fx);
    s.sandbox_ready(0, "x", Duration::ZERO, &mut fx);
    for _ in 0..2 {
        s.dispatch(&mut fx);
        let job = fx.take_jobs().remove(0);
        s.batch_done(fake_run(0, job.clone(), &job.ids), Duration::ZERO, &mut fx);
    }
    assert!(s.is_finished());
    let f = s.finish(&mut fx);
    assert!(f.fatal.is_none());
    assert!(f.records.iter().all(|r| r.status == FinalStatus::Passed));
}

#[test]
fn a_retiring_sandbox_takes_no_more_work() {
    let t = table(&["pass_a", "pass_b"]);
    let (mut s, mut fx) = start(&t, settings(1), &[&[0], &[1]], 1);
    s.dispatch(&mut fx);
    let job = fx.take_jobs().remove(0);
    let mut result = fake_run(0, job.clone(), &job.ids);
    result.retiring = true;
    s.batch_done(result, Duration::ZERO, &mut fx);
    s.dispatch(&mut fx);
    assert!(fx.jobs.is_empty(), "the retiring sandbox is not idle");
    let error = ProviderError::new(crate::provider::ErrorStage::Create, "gone");
    s.sandbox_failed(0, &error, Duration::ZERO, &mut fx);
    assert!(s.is_finished());
    let f = s.finish(&mut fx);
    assert_eq!(status(&f, "pass_a"), FinalStatus::Passed);
    assert_eq!(
        record(&f, "pass_b").not_run_reason.as_deref(),
        Some("no sandbox available: gone")
    );
    assert!(f.fatal.is_none(), "a sandbox did exist");
}

#[test]
fn only_batches_that_ran_to_their_end_teach_the_timing_history() {
    let t = table(&["pass_a", "pass_b", "hang_c"]);
    let (_, fx, _) = run_to_end(&t, settings(1), planned(&[&[0, 1], &[2]]));
    assert_eq!(fx.timings.len(), 2);
    let first = fx.timings[0].expect("a normal batch has a timing");
    assert_eq!(first.tests, 2);
    assert_eq!(first.group, Some(0));
    assert_eq!(first.reported, Duration::from_millis(20));
    assert_eq!(first.wall, Duration::from_millis(500));
    assert_eq!(fx.timings[1], None, "a timed-out batch teaches nothing");
}

#[test]
fn a_batch_without_every_result_is_an_error_batch() {
    let t = table(&["pass_a", "pass_b"]);
    let (mut s, mut fx) = start(&t, settings(1), &[&[0, 1]], 1);
    s.dispatch(&mut fx);
    let job = fx.take_jobs().remove(0);
    s.batch_done(
        done(0, job, ran(0, junit(&[(0, Outcome::Passed)]))),
        Duration::ZERO,
        &mut fx,
    );
    assert!(fx.has("finished 1 Error"));
    // The decision about the test comes before the batch's end.
    let decided = fx.events.iter().position(|e| e == "decided pass_a Passed");
    let finished = fx.events.iter().position(|e| e == "finished 1 Error");
    assert!(decided < finished);
}

#[test]
fn the_attempt_number_is_one_more_than_the_attempts_so_far() {
    let t = table_with_retries(&["fail_a"], 3);
    let (mut s, mut fx) = start(&t, settings(1), &[&[0]], 1);
    let mut attempts = Vec::new();
    loop {
        s.dispatch(&mut fx);
        let Some(job) = fx.take_jobs().pop() else {
            break;
        };
        attempts.push(job.attempt);
        s.batch_done(fake_run(0, job.clone(), &job.ids), Duration::ZERO, &mut fx);
    }
    assert_eq!(attempts, [1, 2, 3, 4]);
}

#[test]
fn runner_ids_travel_with_the_job_when_they_differ() {
    let mut t = table(&["tests/t.py::a", "tests/t.py::b"]);
    t.tests[1].runner_id = Some("t.py::b".into());
    let (mut s, mut fx) = start(&t, settings(1), &[&[0, 1], &[0]], 1);
    s.dispatch(&mut fx);
    let job = fx.take_jobs().remove(0);
    assert_eq!(job.expected_names(), ["tests/t.py::a", "t.py::b"]);
    assert_eq!(&*job.ids, ["tests/t.py::a", "tests/t.py::b"]);
}

#[test]
fn small_sets_split_into_single_tests_large_ones_over_every_sandbox() {
    assert_eq!(split_parts(13, 4), 13);
    assert_eq!(split_parts(2, 1), 2);
    assert_eq!(split_parts(500, 8), 16);
    assert_eq!(split_parts(9, 0), 2);
}

/// A fake pytest that knows only `known`: a batch naming another test runs
/// nothing, exits with 4 and names what it does not know; otherwise every
/// test passes.
fn pytest_knowing(sandbox: usize, job: Job, known: &[&str]) -> BatchResult {
    let missing: Vec<usize> = job
        .ids
        .iter()
        .enumerate()
        .filter(|(_, id)| !known.contains(&id.as_str()))
        .map(|(p, _)| p)
        .collect();
    if missing.is_empty() {
        let results: Vec<(usize, Outcome)> =
            (0..job.ids.len()).map(|p| (p, Outcome::Passed)).collect();
        return done(sandbox, job, ran(0, junit(&results)));
    }
    BatchResult {
        not_found: missing,
        ..done(sandbox, job, ran(4, junit(&[])))
    }
}

/// Answer every job with [`pytest_knowing`] until the run is over; a
/// fresh discovery, when asked for, finds `known` (in group 0).
fn run_knowing(state: &mut RunState<'_>, fx: &mut Recorder, known: &[&str]) -> usize {
    let mut batches = 0;
    loop {
        state.dispatch(fx);
        if fx.rediscoveries > 0 && state.rediscovery == Rediscovery::Asked {
            let mut fresh = table(known);
            fresh.reused = vec![false];
            state.rediscovered(Ok(fresh), fx);
            continue;
        }
        if state.is_finished() {
            return batches;
        }
        let jobs = fx.take_jobs();
        assert!(!jobs.is_empty(), "stuck: {:?}", fx.events);
        for job in jobs {
            batches += 1;
            state.batch_done(pytest_knowing(0, job, known), Duration::ZERO, fx);
        }
    }
}

fn reused_table(ids: &[&str]) -> TestTable {
    let mut t = table(ids);
    t.reused = vec![true];
    t
}

#[test]
fn a_test_gone_since_a_reused_discovery_is_left_out_and_its_neighbours_pass() {
    let t = reused_table(&["t_a", "t_gone", "t_b"]);
    let (mut s, mut fx) = start(&t, settings(1), &[&[0, 1, 2]], 1);
    let batches = run_knowing(&mut s, &mut fx, &["t_a", "t_b", "t_new"]);
    let f = s.finish(&mut fx);
    assert_eq!(fx.rediscoveries, 1);
    let ids: Vec<(&str, FinalStatus)> = f
        .records
        .iter()
        .map(|r| (r.id.as_str(), r.status))
        .collect();
    assert_eq!(
        ids,
        [
            ("t_a", FinalStatus::Passed),
            ("t_b", FinalStatus::Passed),
            ("t_new", FinalStatus::Passed)
        ]
    );
    // The batch, its neighbours again, the new test: no isolation.
    assert_eq!(batches, 3, "{:?}", fx.events);
    // The batch that ran nothing teaches the timing history nothing.
    assert!(fx.timings[0].is_none());
    assert!(fx.timings[1].is_some());
    assert!(fx.has("notice batch 1: the runner does not know 1 test(s) of the reused discovery (e.g. `t_gone`)"));
    assert!(fx.has("notice discovered afresh: 1 test(s) of the reused discovery no longer exist and are left out (e.g. `t_gone`); 1 new test(s) to run"));
    assert!(
        fx.events
            .iter()
            .any(|e| e == "TestCountChanged { total: 3 }"),
        "{:?}",
        fx.events
    );
}

#[test]
fn a_test_a_fresh_discovery_listed_but_the_runner_does_not_know_is_not_run() {
    let t = table(&["t_a", "t_odd", "t_b"]);
    let (mut s, mut fx) = start(&t, settings(1), &[&[0, 1, 2]], 1);
    run_knowing(&mut s, &mut fx, &["t_a", "t_b"]);
    let f = s.finish(&mut fx);
    assert_eq!(fx.rediscoveries, 0, "nothing reused: nothing to rediscover");
    assert_eq!(status(&f, "t_a"), FinalStatus::Passed);
    assert_eq!(status(&f, "t_b"), FinalStatus::Passed);
    assert_eq!(status(&f, "t_odd"), FinalStatus::NotRun);
    assert_eq!(
        record(&f, "t_odd").not_run_reason.as_deref(),
        Some("the runner did not find this test, although discovery listed it")
    );
}

#[test]
fn a_test_the_fresh_discovery_still_lists_runs_once_more_then_is_not_run() {
    let t = reused_table(&["t_a", "t_ghost"]);
    let (mut s, mut fx) = start(&t, settings(2), &[&[0, 1]], 2);
    // The fresh discovery lists `t_ghost`, the runner still does not know it.
    let mut batches = 0;
    loop {
        s.dispatch(&mut fx);
        if s.rediscovery == Rediscovery::Asked {
            s.rediscovered(Ok(table(&["t_a", "t_ghost"])), &mut fx);
            continue;
        }
        if s.is_finished() {
            break;
        }
        for job in fx.take_jobs() {
            batches += 1;
            s.batch_done(pytest_knowing(0, job, &["t_a"]), Duration::ZERO, &mut fx);
        }
    }
    let f = s.finish(&mut fx);
    assert_eq!(fx.rediscoveries, 1);
    assert_eq!(batches, 3);
    assert_eq!(status(&f, "t_a"), FinalStatus::Passed);
    assert_eq!(status(&f, "t_ghost"), FinalStatus::NotRun);
}

#[test]
fn the_run_waits_for_the_fresh_discovery_and_a_failed_one_names_the_missing_tests() {
    let t = reused_table(&["t_a", "t_gone"]);
    let (mut s, mut fx) = start(&t, settings(1), &[&[0, 1]], 1);
    s.dispatch(&mut fx);
    let job = fx.take_jobs().remove(0);
    s.batch_done(pytest_knowing(0, job, &["t_a"]), Duration::ZERO, &mut fx);
    s.dispatch(&mut fx);
    let job = fx.take_jobs().remove(0);
    s.batch_done(pytest_knowing(0, job, &["t_a"]), Duration::ZERO, &mut fx);
    assert!(!s.is_finished(), "the fresh discovery may bring tests");
    s.rediscovered(Err("pytest crashed".into()), &mut fx);
    assert!(s.is_finished());
    let f = s.finish(&mut fx);
    assert_eq!(status(&f, "t_a"), FinalStatus::Passed);
    assert_eq!(
        record(&f, "t_gone").not_run_reason.as_deref(),
        Some("the runner did not find this test, and discovering afresh failed: pytest crashed")
    );
}

#[test]
fn a_batch_still_finishing_tests_at_the_timeout_is_not_a_hang() {
    let names = ids(10, "pass");
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let t = table(&refs);
    let all: Vec<usize> = (0..10).collect();
    let (mut s, mut fx) = start(&t, settings(1), &[&all], 1);
    s.dispatch(&mut fx);
    let job = fx.take_jobs().remove(0);
    s.batch_started(0, job.batch, Duration::ZERO, &mut fx);
    // Six tests finish, one every 0.8 s; the timeout (5 s) comes 0.2 s
    // after the last: the batch was going, just too long.
    for (pos, at) in (0..6).map(|p| (p, Duration::from_millis(800 * (p as u64 + 1)))) {
        let outcome = if pos == 2 {
            Outcome::Failed
        } else {
            Outcome::Passed
        };
        s.test_finished(job.batch, pos, outcome, at, &mut fx);
    }
    let stopped = Duration::from_millis(5000);
    s.batch_done(done(0, job, BatchEnd::TimedOut(None)), stopped, &mut fx);
    assert!(
        fx.has("notice batch 1 was still finishing tests when it reached the timeout (5 s): not a hang; its 4 unfinished tests run again in"),
        "{:?}",
        fx.events
    );
    assert!(!fx.has("notice batch 1 timed out"), "no hang split");
    assert!(fx.has("decided pass02 Failed") && fx.has("decided pass05 Passed"));
    s.dispatch(&mut fx);
    let again = fx.take_jobs();
    assert_eq!(again.len(), 1, "one sandbox: one batch at a time");
    assert_eq!(again[0].kind, BatchKind::Split);
    // 0.8 s a test, 2.5 s a batch (half the timeout): up to three tests a
    // batch, so the four go in two equal halves.
    assert!(fx.has("notice batch 1 was still finishing tests when it reached the timeout (5 s): not a hang; its 4 unfinished tests run again in 2 smaller batches"));
    assert_eq!(again[0].tests, vec![6, 7]);
}

#[test]
fn a_batch_silent_for_long_before_the_timeout_is_a_hang() {
    let t = table(&["pass_a", "pass_b", "hang_c"]);
    let (mut s, mut fx) = start(&t, settings(1), &[&[0, 1, 2]], 1);
    s.dispatch(&mut fx);
    let job = fx.take_jobs().remove(0);
    s.batch_started(0, job.batch, Duration::ZERO, &mut fx);
    s.test_finished(
        job.batch,
        0,
        Outcome::Passed,
        Duration::from_millis(100),
        &mut fx,
    );
    // Nothing for 4.9 s, then the timeout.
    s.batch_done(
        done(0, job, BatchEnd::TimedOut(None)),
        Duration::from_secs(5),
        &mut fx,
    );
    assert!(
        fx.has("notice batch 1 timed out after 5 s with 3 tests unfinished"),
        "{:?}",
        fx.events
    );
}

#[test]
fn without_history_the_first_batches_rate_splits_queued_batches_that_would_not_fit() {
    let names = ids(12, "pass");
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let t = table(&refs);
    let first = [0, 1];
    let rest: Vec<usize> = (2..12).collect();
    let cold = Settings {
        cold: true,
        ..settings(1)
    };
    let (mut s, mut fx) = start(&t, cold, &[&first, &rest], 1);
    s.dispatch(&mut fx);
    let job = fx.take_jobs().remove(0);
    // Two tests of 0.8 s each in a batch of 2 s: 0.4 s to start.
    let slow = |outcome| TestAttempt {
        duration: Duration::from_millis(800),
        ..attempt(outcome)
    };
    let results = BatchResults::Junit(MatchedResults {
        matched: vec![(0, slow(Outcome::Passed)), (1, slow(Outcome::Passed))],
        unmatched: Vec::new(),
    });
    let mut result = done(0, job, ran(0, results));
    result.wall = Duration::from_secs(2);
    s.batch_done(result, Duration::from_secs(2), &mut fx);
    // The 10 queued tests would take 8.4 s, past half the timeout (2.5 s):
    // they now go in batches of 2 (0.4 s + 2 × 0.8 s).
    let mut sizes = Vec::new();
    loop {
        s.dispatch(&mut fx);
        let Some(job) = fx.take_jobs().pop() else {
            break;
        };
        sizes.push(job.tests.len());
        s.batch_done(
            fake_run(0, job.clone(), &job.ids),
            Duration::from_secs(3),
            &mut fx,
        );
    }
    assert_eq!(sizes, [2, 2, 2, 2, 2]);
}

#[test]
fn with_history_queued_batches_are_left_as_planned() {
    let names = ids(12, "pass");
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let t = table(&refs);
    let rest: Vec<usize> = (2..12).collect();
    let (mut s, mut fx) = start(&t, settings(1), &[&[0, 1], &rest], 1);
    s.dispatch(&mut fx);
    let job = fx.take_jobs().remove(0);
    let mut result = fake_run(0, job.clone(), &job.ids);
    result.wall = Duration::from_secs(4);
    s.batch_done(result, Duration::from_secs(4), &mut fx);
    s.dispatch(&mut fx);
    assert_eq!(fx.take_jobs()[0].tests.len(), 10);
}

#[test]
fn idle_sandboxes_are_retired_once_nothing_is_queued_keeping_a_spare() {
    let t = table(&["pass_a", "pass_b", "pass_c", "pass_d"]);
    let (mut s, mut fx) = start(&t, settings(4), &[&[0, 1], &[2, 3]], 4);
    s.dispatch(&mut fx);
    let mut jobs = fx.take_jobs();
    assert_eq!(jobs.len(), 2);
    // Two idle sandboxes, nothing queued: one stays as the spare.
    assert_eq!(fx.retired, 1);
    let first = jobs.remove(0);
    s.batch_done(
        fake_run(0, first.clone(), &first.ids),
        Duration::ZERO,
        &mut fx,
    );
    s.dispatch(&mut fx);
    assert_eq!(fx.retired, 2, "one batch runs: one spare is enough");
    assert!(!s.is_finished());
    let second = jobs.remove(0);
    s.batch_done(
        fake_run(1, second.clone(), &second.ids),
        Duration::ZERO,
        &mut fx,
    );
    s.dispatch(&mut fx);
    assert_eq!(fx.retired, 4, "nothing runs: every sandbox goes");
    assert!(s.is_finished());
    assert!(fx.take_jobs().is_empty());
}

#[test]
fn a_running_batch_that_may_be_retried_keeps_a_sandbox_for_its_retry() {
    let t = table_with_retries(&["fail_a", "pass_b"], 1);
    let (mut s, mut fx) = start(&t, settings(3), &[&[0], &[1]], 3);
    s.dispatch(&mut fx);
    let mut jobs = fx.take_jobs();
    // Two retriable batches and the spare: all three sandboxes stay.
    assert_eq!(fx.retired, 0);
    let passing = jobs.remove(1);
    s.batch_done(
        fake_run(1, passing.clone(), &passing.ids),
        Duration::ZERO,
        &mut fx,
    );
    s.dispatch(&mut fx);
    assert_eq!(
        fx.retired, 0,
        "fail_a may still be retried: its reserve and the spare"
    );
    let failing = jobs.remove(0);
    s.batch_done(
        fake_run(0, failing.clone(), &failing.ids),
        Duration::ZERO,
        &mut fx,
    );
    s.dispatch(&mut fx);
    let retry = fx.take_jobs();
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].kind, BatchKind::Retry);
    // The retry is its last chance: only the spare stays beside it.
    assert_eq!(fx.retired, 1);
}
