//! A worker thread: owns one sandbox for its whole life, takes jobs from the
//! shared job queue, runs each with [`run_batch`], and reports to the driver.
//! It decides nothing about results.

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use super::batch::{run_batch, BatchContext, BatchEnd, BatchResult, Job};
use super::Msg;
use crate::events::Notices;
use crate::model::Outcome;
use crate::process::{LineSink, Stream};
use crate::provider::{Provider, ProviderError, SandboxGuard};

/// What a worker tells the driver.
#[derive(Debug)]
pub enum WorkerMsg {
    /// The worker starts creating its sandbox (or a replacement).
    Creating {
        worker: usize,
    },
    SandboxReady {
        worker: usize,
        id: String,
    },
    /// The sandbox was replaced (after a timeout or repeated failures) by
    /// this one; the worker goes on with the batch it is reporting.
    Replaced {
        worker: usize,
        id: String,
    },
    /// The sandbox could not be created (or its replacement could not):
    /// this worker is gone.
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
    /// The runner's live output says the test at `position` of the batch
    /// finished so (the JUnit file decides later).
    TestFinished {
        batch: usize,
        position: usize,
        outcome: Outcome,
    },
    BatchDone(Box<BatchResult>),
    /// The worker thread ended (its sandbox is destroyed). `panicked` when it
    /// died of a bug: its running batch, if any, produced nothing.
    Exited {
        worker: usize,
        panicked: bool,
    },
}

/// What the driver tells a worker through the shared job queue (whichever
/// worker is free takes it).
#[derive(Debug)]
pub enum Order {
    Run(Job),
    /// Destroy your sandbox and leave: the run has no more work for you.
    Retire,
}

/// What every worker shares.
pub struct WorkerContext {
    pub provider: Arc<dyn Provider>,
    pub notices: Notices,
    pub batch: BatchContext,
    /// Stream output lines to the driver (`-v`).
    pub stream_output: bool,
}

/// After this many batches in a row fail for infrastructure reasons, the
/// sandbox is replaced (and retired if that fails).
const MAX_CONSECUTIVE_INFRA_ERRORS: u32 = 3;

/// The body of worker thread `worker`.
pub fn work(worker: usize, ctx: Arc<WorkerContext>, jobs: Receiver<Order>, out: Sender<Msg>) {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        work_inner(worker, &ctx, &jobs, &out);
    }));
    let _ = out.send(Msg::Worker(WorkerMsg::Exited {
        worker,
        panicked: result.is_err(),
    }));
}

fn work_inner(worker: usize, ctx: &WorkerContext, jobs: &Receiver<Order>, out: &Sender<Msg>) {
    let send = |msg: WorkerMsg| {
        let _ = out.send(Msg::Worker(msg));
    };
    let cancel = &ctx.batch.cancel;
    send(WorkerMsg::Creating { worker });
    let mut guard = match ctx.provider.create(worker, cancel) {
        Ok(sandbox) => {
            let guard = SandboxGuard::new(sandbox, ctx.notices.clone());
            send(WorkerMsg::SandboxReady {
                worker,
                id: guard.id().to_string(),
            });
            guard
        }
        Err(error) => return send(WorkerMsg::SandboxFailed { worker, error }),
    };
    let mut infra_errors_in_a_row = 0;
    while let Ok(Order::Run(job)) = jobs.recv() {
        send(WorkerMsg::BatchStarted {
            worker,
            batch: job.batch,
        });
        let sink = Some(output_sink(&job, ctx, out));
        let mut result = run_batch(&ctx.batch, worker, guard.get(), job, sink);
        let timed_out = matches!(result.end, BatchEnd::TimedOut(_));
        if matches!(result.end, BatchEnd::NotRun(_)) {
            infra_errors_in_a_row += 1;
        } else {
            infra_errors_in_a_row = 0;
        }
        let replace = (timed_out && !guard.get().timeout_kills_everything())
            || infra_errors_in_a_row >= MAX_CONSECUTIVE_INFRA_ERRORS;
        if replace && !cancel.is_cancelled() {
            // The timed-out command may live on inside a remote sandbox, and a
            // sandbox that keeps failing is probably broken: start afresh.
            let old_id = guard.id().to_string();
            if let Err(e) = guard.destroy() {
                ctx.notices
                    .send(&format!("destroying sandbox {old_id}: {e}"));
            }
            send(WorkerMsg::Creating { worker });
            match ctx.provider.create(worker, cancel) {
                Ok(s) => {
                    guard = SandboxGuard::new(s, ctx.notices.clone());
                    send(WorkerMsg::Replaced {
                        worker,
                        id: guard.id().to_string(),
                    });
                    ctx.notices.send(&format!(
                        "sandbox {old_id} replaced by {} after {}",
                        guard.id(),
                        if timed_out {
                            "a timeout"
                        } else {
                            "repeated failures"
                        }
                    ));
                    infra_errors_in_a_row = 0;
                }
                Err(error) => {
                    result.retiring = true;
                    send(WorkerMsg::BatchDone(Box::new(result)));
                    return send(WorkerMsg::SandboxFailed { worker, error });
                }
            }
        }
        send(WorkerMsg::BatchDone(Box::new(result)));
    }
    // Retired, or the job channel closed (the run is over). Dropping the
    // guard destroys the sandbox.
    drop(guard);
}

/// What watches the output of `job` as it comes: the tests the runner says
/// have finished (for live progress), and with `-v` every line.
fn output_sink(job: &Job, ctx: &WorkerContext, out: &Sender<Msg>) -> LineSink {
    let framework = Arc::clone(&ctx.batch.framework);
    let names: Arc<[String]> = job
        .runner_ids
        .clone()
        .unwrap_or_else(|| Arc::clone(&job.ids));
    // Made at the first result line: most runners print none.
    let positions: std::sync::OnceLock<rustc_hash::FxHashMap<String, usize>> =
        std::sync::OnceLock::new();
    let (out, batch, stream_output) = (out.clone(), job.batch, ctx.stream_output);
    Arc::new(move |stream: Stream, line: &str| {
        if let Some((name, outcome)) = framework.live_result(line) {
            let positions = positions.get_or_init(|| {
                names
                    .iter()
                    .enumerate()
                    .map(|(i, name)| (name.clone(), i))
                    .collect()
            });
            if let Some(&position) = positions.get(name) {
                let _ = out.send(Msg::Worker(WorkerMsg::TestFinished {
                    batch,
                    position,
                    outcome,
                }));
            }
        }
        if stream_output {
            let _ = out.send(Msg::Worker(WorkerMsg::Output {
                batch,
                stream,
                line: line.to_string(),
            }));
        }
    })
}
