//! One batch, run once: the framework's command in a sandbox, the result
//! file brought back and read, its testcases matched to the batch's tests.
//! [`run_batch`] is the only way a batch runs — the run's workers and
//! `offload doctor`'s trial batch both go through it — and [`BatchResult`]
//! is what it tells about the batch, decided by nobody yet.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cancel::Cancel;
use crate::events::BatchKind;
use crate::framework::{Framework, MatchedResults, ResultLocation};
use crate::process::{CapturedOutput, Ending, LineSink, Stream};
use crate::provider::{ExecRequest, FetchMode, Sandbox};

/// A batch handed to a worker.
#[derive(Clone, Debug)]
pub struct Job {
    /// Batch number (1-based, as in `logs/batch-N.*`).
    pub batch: usize,
    pub kind: BatchKind,
    /// Indexes into the run's test table, and the IDs in the same order
    /// (shared with the run's events, not copied).
    pub tests: Vec<usize>,
    pub ids: Arc<[String]>,
    /// The runner's names of the tests, in the same order, when some differ
    /// from the IDs (see `discover::TestEntry::runner_id`).
    pub runner_ids: Option<Arc<[String]>>,
    /// `OFFLOAD_ATTEMPT`: 1 for a first run, higher for retries.
    pub attempt: u32,
    /// What the tests' discovery left for their batches
    /// (`discover::TestTable::for_batches`).
    pub from_discovery: Option<Arc<str>>,
}

impl Job {
    /// What result matching looks for in the batch's JUnit.
    pub fn expected_names(&self) -> &[String] {
        self.runner_ids.as_deref().unwrap_or(&self.ids)
    }
}

/// How a runner process ended on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunnerEnd {
    Exited(i32),
    /// Killed by a signal Offload did not send (a crash, the OOM killer).
    Signalled(i32),
}

impl RunnerEnd {
    /// `the runner exited with code 1`, `the runner was killed by signal 9`.
    pub fn describe(self) -> String {
        match self {
            RunnerEnd::Exited(c) => format!("the runner exited with code {c}"),
            RunnerEnd::Signalled(s) => format!("the runner was killed by signal {s}"),
        }
    }
}

/// What a batch left to read its tests' results from.
#[derive(Clone, Debug)]
pub enum BatchResults {
    /// The JUnit file, matched to the batch's tests.
    Junit(MatchedResults),
    /// The runner should have written a result file but there is none (or
    /// it cannot be read): why.
    Missing(String),
    /// The framework has no per-test results: the exit code decides for the
    /// whole batch.
    ExitCodeOnly,
}

/// How a batch ended.
#[derive(Clone, Debug)]
pub enum BatchEnd {
    /// The batch could not be run at all (the sandbox could not start it,
    /// the worker died): why. Its tests are not to blame.
    NotRun(String),
    /// The runner ran to its end.
    Ran {
        runner: RunnerEnd,
        results: BatchResults,
    },
    /// Killed at `test_timeout_secs`; what it had written by then, if anything.
    TimedOut(Option<MatchedResults>),
    /// Stopped by Ctrl-C or `--fail-fast`.
    Cancelled,
}

/// Everything a batch produced.
#[derive(Debug)]
pub struct BatchResult {
    /// The worker (sandbox index) that ran it.
    pub sandbox: usize,
    pub job: Job,
    pub end: BatchEnd,
    pub output: CapturedOutput,
    /// From just before the command started to when its results were read
    /// (exec and download included: what a batch costs).
    pub wall: Duration,
    /// The worker takes no more batches after this one.
    pub retiring: bool,
    /// Positions of the tests the runner said it does not know
    /// ([`Framework::not_found`]): gone since discovery.
    pub not_found: Vec<usize>,
}

/// What every batch of a run shares.
pub struct BatchContext {
    pub framework: Arc<dyn Framework>,
    /// `[provider] env` plus `OFFLOAD_ROOT`; the per-batch variables are added.
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    /// Local directory where result files are brought back to.
    pub scratch_dir: PathBuf,
    pub cancel: Cancel,
}

/// Run `job` in `sandbox` (worker `sandbox_index`) and read its results.
/// `sink` receives each output line as it arrives (`-v`).
pub fn run_batch(
    ctx: &BatchContext,
    sandbox_index: usize,
    sandbox: &mut dyn Sandbox,
    job: Job,
    sink: Option<LineSink>,
) -> BatchResult {
    let started = Instant::now();
    let remote_result = sandbox.result_path(job.batch, job.attempt);
    let command =
        ctx.framework
            .batch_command(&job.ids, &remote_result, job.from_discovery.as_deref());
    let mut env = ctx.env.clone();
    env.push(("OFFLOAD_SANDBOX".into(), sandbox_index.to_string()));
    env.push(("OFFLOAD_BATCH".into(), job.batch.to_string()));
    env.push(("OFFLOAD_ATTEMPT".into(), job.attempt.to_string()));
    let request = ExecRequest {
        script: &command.script,
        env: &env,
        timeout: ctx.timeout,
        sink,
    };
    let finish = |job: Job, end: BatchEnd, output: CapturedOutput| {
        let not_found = match &end {
            BatchEnd::Ran { runner, results } => {
                ctx.framework.not_found(&crate::framework::RanBatch {
                    exit_code: match runner {
                        RunnerEnd::Exited(c) => Some(*c),
                        RunnerEnd::Signalled(_) => None,
                    },
                    ids: &job.ids,
                    expected: job.expected_names(),
                    output: &output,
                    results: match results {
                        BatchResults::Junit(m) => Some(m),
                        _ => None,
                    },
                })
            }
            _ => Vec::new(),
        };
        BatchResult {
            sandbox: sandbox_index,
            job,
            end,
            output,
            wall: started.elapsed(),
            retiring: false,
            not_found,
        }
    };
    let ran = match sandbox.exec(&request, &ctx.cancel) {
        Ok(o) => o,
        Err(e) => {
            return finish(
                job,
                BatchEnd::NotRun(e.to_string()),
                CapturedOutput::default(),
            )
        }
    };
    let mut output = ran.output;
    // The runner saying where it wrote its results (pytest's `generated xml
    // file: …`): that file is read into the merged report and removed, so
    // the batch's log must not point at it.
    output.remove_lines(|line| line.contains(remote_result.as_str()));
    if ran.truncated {
        output.push(
            Stream::Stderr,
            &format!(
                "[offload] output truncated: the batch printed more than {} MiB",
                crate::process::MAX_CAPTURE_BYTES >> 20
            ),
        );
    }
    let runner = match ran.ending {
        Ending::Cancelled => return finish(job, BatchEnd::Cancelled, output),
        Ending::TimedOut => None,
        Ending::Exited(c) => Some(RunnerEnd::Exited(c)),
        Ending::Signalled(s) => Some(RunnerEnd::Signalled(s)),
    };
    let remote = match &command.results {
        ResultLocation::ExitCode => None,
        ResultLocation::ResultFile => Some(remote_result),
        ResultLocation::Fixed(path) => Some(path.clone()),
    };
    let results = match remote {
        None => BatchResults::ExitCodeOnly,
        Some(remote) => {
            // Named like the local provider's result path, so that fetching
            // is a no-op there.
            let local = ctx
                .scratch_dir
                .join(crate::provider::result_file_name(job.batch, job.attempt));
            // A timed-out batch most likely wrote nothing: one quiet try.
            let mode = match runner {
                Some(_) => FetchMode::Expected,
                None => FetchMode::IfWritten,
            };
            let results = match sandbox.fetch(&remote, &local, mode, &ctx.cancel) {
                Ok(()) => read_results(ctx.framework.as_ref(), &local, job.expected_names()),
                // Not the runner's doing, nor the download command's: say so.
                Err(_) if crate::files::free_bytes(&ctx.scratch_dir) == Some(0) => {
                    let _ = std::fs::remove_file(&local);
                    let why = format!(
                        "the batch's result file cannot be stored in {}: No space left on device",
                        ctx.scratch_dir.display()
                    );
                    return finish(job, BatchEnd::NotRun(why), output);
                }
                Err(e) => BatchResults::Missing(e.message),
            };
            let _ = std::fs::remove_file(&local);
            results
        }
    };
    let end = match runner {
        Some(runner) => BatchEnd::Ran { runner, results },
        // A timed-out batch may have written partial results, worth keeping;
        // usually it wrote nothing, which is no news.
        None => BatchEnd::TimedOut(match results {
            BatchResults::Junit(m) => Some(m),
            _ => None,
        }),
    };
    finish(job, end, output)
}

/// Read and match the result file at `local`. Streamed, not read whole:
/// what is kept of each testcase is capped, so a batch that printed
/// gigabytes costs no more memory than a small one.
fn read_results(
    framework: &dyn Framework,
    local: &std::path::Path,
    expected: &[String],
) -> BatchResults {
    let file = match std::fs::File::open(local) {
        Ok(file) => file,
        Err(e) => {
            return BatchResults::Missing(format!(
                "cannot read the batch's JUnit file: {}",
                crate::error::io_message(&e)
            ))
        }
    };
    match crate::junit::read::parse_reader(file) {
        Ok(cases) => BatchResults::Junit(framework.match_results(cases, expected)),
        Err(e) => BatchResults::Missing(format!("the batch's JUnit file is unreadable: {e}")),
    }
}
