//! A worker thread: owns one sandbox for its whole life, takes batches from
//! the shared job queue, runs them, reads their JUnit, and reports to the
//! collector. It never decides anything about results.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::cancel::Cancel;
use crate::framework::{Framework, ResultLocation};
use crate::junit;
use crate::model::TestAttempt;
use crate::process::{CapturedOutput, Ending, LineSink, Stream};
use crate::provider::{ExecRequest, Provider, ProviderError, SandboxGuard};

/// A batch handed to a worker.
#[derive(Clone, Debug)]
pub struct Job {
    /// Batch number (1-based, as in `logs/batch-N.*`).
    pub batch: usize,
    /// Indexes into the run's test table, and the IDs in the same order
    /// (shared with the collector's events, not copied).
    pub tests: Vec<usize>,
    pub ids: Arc<[String]>,
    /// `OFFLOAD_ATTEMPT`: 1 for a first run, higher for retries.
    pub attempt: u32,
}

/// What a worker tells the collector.
#[derive(Debug)]
pub enum WorkerMsg {
    SandboxReady {
        worker: usize,
        id: String,
    },
    /// The sandbox could not be created; this worker is gone.
    SandboxFailed {
        worker: usize,
        error: ProviderError,
    },
    BatchStarted {
        worker: usize,
        batch: usize,
    },
    /// A line of batch output (only with `-v`).
    Output {
        batch: usize,
        stream: Stream,
        line: String,
    },
    BatchDone(Box<BatchReport>),
    /// A notice for the user (a sandbox replaced after a timeout, ...).
    Notice(String),
    /// The worker thread ended (its sandbox is destroyed). `panicked` when it
    /// died of a bug: its in-flight batch, if any, produced nothing.
    Exited {
        worker: usize,
        panicked: bool,
    },
}

/// Everything a batch produced.
#[derive(Debug)]
pub struct BatchReport {
    pub worker: usize,
    pub job: Job,
    /// `None` when the batch could not be executed at all (see `infra_error`).
    pub ending: Option<Ending>,
    pub output: CapturedOutput,
    /// Per-test results matched to `job.tests` positions.
    pub matched: Vec<(usize, TestAttempt)>,
    /// JUnit testcases that matched no expected ID.
    pub unmatched: Vec<String>,
    /// Why results are missing: the sandbox failed, the file was not written,
    /// the JUnit was unreadable.
    pub infra_error: Option<String>,
    /// The framework gives no per-test results: the exit code decides.
    pub exit_code_only: bool,
    pub started: Instant,
    pub finished: Instant,
    /// The worker will take no more batches after this one.
    pub retiring: bool,
}

/// What every worker shares.
pub struct WorkerContext {
    pub framework: Arc<dyn Framework>,
    pub provider: Arc<dyn Provider>,
    pub cancel: Cancel,
    /// `[provider] env` plus `OFFLOAD_ROOT`; per-batch variables are added.
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    /// Local directory where result files are brought back to.
    pub scratch_dir: PathBuf,
    /// Stream output lines to the collector (`-v`).
    pub stream_output: bool,
}

/// After this many batches in a row fail for infrastructure reasons, the
/// sandbox is retired and its work goes to the others.
const MAX_CONSECUTIVE_INFRA_ERRORS: u32 = 3;

/// The body of worker thread `worker`.
pub fn work(worker: usize, ctx: Arc<WorkerContext>, jobs: Receiver<Job>, out: Sender<WorkerMsg>) {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        work_inner(worker, &ctx, &jobs, &out);
    }));
    let _ = out.send(WorkerMsg::Exited {
        worker,
        panicked: result.is_err(),
    });
}

fn work_inner(worker: usize, ctx: &WorkerContext, jobs: &Receiver<Job>, out: &Sender<WorkerMsg>) {
    let mut guard = match create(worker, ctx, out) {
        Some(g) => g,
        None => return,
    };
    let mut infra_errors_in_a_row = 0;
    while let Ok(job) = jobs.recv() {
        let _ = out.send(WorkerMsg::BatchStarted {
            worker,
            batch: job.batch,
        });
        let mut report = run_batch(worker, ctx, guard.get(), job, out);
        let timed_out = report.ending == Some(Ending::TimedOut);
        if report.infra_error.is_some() && report.ending.is_none() {
            infra_errors_in_a_row += 1;
        } else {
            infra_errors_in_a_row = 0;
        }
        let mut replace = timed_out && !guard.get().timeout_kills_everything();
        if infra_errors_in_a_row >= MAX_CONSECUTIVE_INFRA_ERRORS {
            replace = true;
        }
        if replace && !ctx.cancel.is_cancelled() {
            // The timed-out command may live on inside a remote sandbox, and a
            // sandbox that keeps failing is probably broken: start afresh.
            let old_id = guard.get().id().to_string();
            if let Err(e) = guard.destroy() {
                let _ = out.send(WorkerMsg::Notice(format!(
                    "destroying sandbox {old_id}: {e}"
                )));
            }
            match ctx.provider.create(worker, &ctx.cancel) {
                Ok(s) => {
                    guard = SandboxGuard::new(s);
                    let _ = out.send(WorkerMsg::Notice(format!(
                        "sandbox {old_id} replaced by {} after {}",
                        guard.get().id(),
                        if timed_out {
                            "a timeout"
                        } else {
                            "repeated failures"
                        }
                    )));
                    infra_errors_in_a_row = 0;
                }
                Err(e) => {
                    report.retiring = true;
                    let _ = out.send(WorkerMsg::BatchDone(Box::new(report)));
                    let _ = out.send(WorkerMsg::SandboxFailed { worker, error: e });
                    return;
                }
            }
        }
        let _ = out.send(WorkerMsg::BatchDone(Box::new(report)));
    }
    // The job channel closed: the run is over. Dropping the guard destroys
    // the sandbox.
    drop(guard);
}

fn create(worker: usize, ctx: &WorkerContext, out: &Sender<WorkerMsg>) -> Option<SandboxGuard> {
    match ctx.provider.create(worker, &ctx.cancel) {
        Ok(sandbox) => {
            let mut guard = SandboxGuard::new(sandbox);
            let id = guard.get().id().to_string();
            let _ = out.send(WorkerMsg::SandboxReady { worker, id });
            Some(guard)
        }
        Err(error) => {
            let _ = out.send(WorkerMsg::SandboxFailed { worker, error });
            None
        }
    }
}

fn run_batch(
    worker: usize,
    ctx: &WorkerContext,
    sandbox: &mut dyn crate::provider::Sandbox,
    job: Job,
    out: &Sender<WorkerMsg>,
) -> BatchReport {
    let started = Instant::now();
    let remote_result = sandbox.result_path(job.batch, job.attempt);
    let command = ctx.framework.batch_command(&job.ids, &remote_result);
    let mut env = ctx.env.clone();
    env.push(("OFFLOAD_SANDBOX".into(), worker.to_string()));
    env.push(("OFFLOAD_BATCH".into(), job.batch.to_string()));
    env.push(("OFFLOAD_ATTEMPT".into(), job.attempt.to_string()));
    let sink: Option<LineSink> = ctx.stream_output.then(|| {
        let out = out.clone();
        let batch = job.batch;
        Arc::new(move |stream: Stream, line: &str| {
            let _ = out.send(WorkerMsg::Output {
                batch,
                stream,
                line: line.to_string(),
            });
        }) as LineSink
    });
    let request = ExecRequest {
        script: &command.script,
        env: &env,
        timeout: ctx.timeout,
        sink,
    };
    let mut report = BatchReport {
        worker,
        job,
        ending: None,
        output: CapturedOutput::default(),
        matched: Vec::new(),
        unmatched: Vec::new(),
        infra_error: None,
        exit_code_only: command.results == ResultLocation::ExitCode,
        started,
        finished: started,
        retiring: false,
    };
    let output = match sandbox.exec(&request, &ctx.cancel) {
        Ok(o) => o,
        Err(e) => {
            report.infra_error = Some(e.to_string());
            report.finished = Instant::now();
            return report;
        }
    };
    report.ending = Some(output.ending);
    report.output = output.output;
    if output.truncated {
        report.output.push(
            Stream::Stderr,
            "[offload] output truncated: the batch printed more than 32 MiB",
        );
    }
    let remote = match &command.results {
        ResultLocation::ExitCode => None,
        ResultLocation::ResultFile => Some(remote_result.clone()),
        ResultLocation::Fixed(path) => Some(path.clone()),
    };
    // A cancelled batch's results are not worth waiting for; a timed-out one
    // may have written partial results, which are worth keeping.
    if let (Some(remote), false) = (remote, output.ending == Ending::Cancelled) {
        // Named like the local provider's result path, so that fetching is a
        // no-op there.
        let local = ctx.scratch_dir.join(format!(
            "batch-{}-{}.xml",
            report.job.batch, report.job.attempt
        ));
        match sandbox.fetch(&remote, &local, &ctx.cancel) {
            Ok(()) => read_results(ctx, &local, &mut report),
            // A timed-out batch usually wrote nothing: not worth an error.
            Err(_) if output.ending == Ending::TimedOut => {}
            Err(e) => report.infra_error = Some(e.message),
        }
        let _ = std::fs::remove_file(&local);
    }
    report.finished = Instant::now();
    report
}

fn read_results(ctx: &WorkerContext, local: &std::path::Path, report: &mut BatchReport) {
    // Streamed, not read whole: what is kept of each testcase is capped, so
    // a batch that printed gigabytes costs no more memory than a small one.
    let file = match std::fs::File::open(local) {
        Ok(file) => file,
        Err(e) => {
            report.infra_error = Some(format!(
                "cannot read the batch's JUnit file: {}",
                crate::error::io_message(&e)
            ));
            return;
        }
    };
    match junit::read::parse_reader(file) {
        Ok(cases) => {
            let matched = ctx.framework.match_results(cases, &report.job.ids);
            report.matched = matched.matched;
            report.unmatched = matched.unmatched;
        }
        Err(e) => report.infra_error = Some(format!("the batch's JUnit file is unreadable: {e}")),
    }
}
