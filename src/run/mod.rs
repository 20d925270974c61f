//! The run: discovery, then a pool of worker threads (one sandbox each) fed
//! from a priority queue by the driver thread, which owns the run's state
//! machine and its reporters.
//!
//! ```text
//! discovery thread ─┐                          ┌─▶ worker 0 (sandbox 0) ─┐
//! prepare thread ───┼─▶ driver ──── jobs ──────┼─▶ worker 1 (sandbox 1) ─┤
//!     ▲             │   RunState (decisions)   └─▶ …                     │
//!     │             │   Reporters (outputs)                              │
//!     └─ Msg ───────┴──────────────────────────────────────────────────── ┘
//! ```
//!
//! * [`Session`] is the driver: one channel of [`Msg`]s in, [`crate::events`]
//!   out. Everything that happens on other threads (discovery, the image
//!   build, the workers, Ctrl-C) reaches the reporters through it.
//! * [`state::RunState`] makes every decision about results; it has no
//!   threads in it and is unit-tested on its own.
//! * [`batch::run_batch`] runs one batch; [`worker`] is a thread that owns a
//!   sandbox and calls it.

pub mod batch;
pub mod queue;
pub mod state;
pub mod timing;
pub mod worker;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::cancel::{Cancel, CancelLevel};
use crate::config::GroupConfig;
use crate::discover::{Progress, TestTable};
use crate::error::Result;
use crate::events::{Event, Notices, Reporters, RunStats, StopReason};
use crate::framework::Framework;
use crate::model::TestRecord;
use crate::process::{LineSink, Stream};
use crate::provider::{Provider, ProviderError};
use crate::schedule::PlannedBatch;
use batch::{BatchContext, Job};
use state::{Effects, RunState, Settings};
use worker::{Order, WorkerMsg};

/// What reaches the driver thread, from whichever thread.
pub enum Msg {
    Worker(WorkerMsg),
    /// A note for the user from another thread (`true`: a warning).
    Notice(bool, String),
    /// The discovery thread is at this point.
    Discovery(OwnedProgress),
    /// Discovery is over.
    Discovered(Result<TestTable>),
    /// A fresh discovery asked for during the run is over.
    Rediscovered(Result<TestTable>),
    /// The prepare thread is done (the provider, ready to create sandboxes).
    Prepared(std::result::Result<Box<dyn Provider>, ProviderError>),
}

/// [`Progress`] that can cross a thread.
pub enum OwnedProgress {
    Started {
        group: usize,
        command: String,
    },
    Warning(String),
    Note(String),
    Finished {
        group: usize,
        tests: usize,
    },
    /// A line of the discovery command's output (`-v`).
    Output(Stream, String),
}

/// How to execute the planned batches.
pub struct ExecuteOptions {
    pub parallelism: usize,
    pub timeout: Duration,
    pub fail_fast: bool,
    /// Stream batch output lines to the reporters (`-v`).
    pub stream_output: bool,
    pub scratch_dir: std::path::PathBuf,
    /// Environment for every batch (provider `env`, `--env`, `OFFLOAD_ROOT`).
    pub env: Vec<(String, String)>,
    pub batch_startup: Duration,
    /// The planned makespan (shown as an ETA), when history made it meaningful.
    pub expected_wall: Option<Duration>,
    /// Tests with a duration in the timing history.
    pub known_durations: usize,
    /// The provider's `type`.
    pub provider: &'static str,
    /// Where a fresh discovery during the run is stored (`None`: reuse is
    /// off, and a fresh discovery is not kept).
    pub discovery_cache: Option<crate::discover::cache::CacheLocation>,
}

/// The driver of one `offload run`: the event loop that turns what happens
/// on every thread into events for the reporters, and owns the decisions.
pub struct Session<'r> {
    start: Instant,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    cancel: Cancel,
    /// The cancellation level last told to the user.
    level_told: CancelLevel,
    reporters: Reporters<'r>,
    /// The prepared provider, when it arrived before anyone waited for it.
    prepared: Option<std::result::Result<Box<dyn Provider>, ProviderError>>,
    /// When preparing started, while it runs.
    preparing_since: Option<Duration>,
}

impl<'r> Session<'r> {
    /// A session starting now; `cancel` is the run's (Ctrl-C raises it).
    pub fn new(cancel: &Cancel, reporters: Reporters<'r>) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        Session {
            start: Instant::now(),
            tx,
            rx,
            cancel: cancel.clone(),
            level_told: CancelLevel::Running,
            reporters,
            prepared: None,
            preparing_since: None,
        }
    }

    /// Where other threads send notes for the user during this run.
    pub fn notices(&self) -> Notices {
        let tx = self.tx.clone();
        Notices::new(move |warning, message| {
            let _ = tx.send(Msg::Notice(warning, message.to_string()));
        })
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Give an event to the reporters.
    pub fn emit(&mut self, event: &Event<'_>) {
        self.reporters.emit(event);
    }

    /// A note from another thread, as a notice or a warning.
    fn tell(&mut self, warning: bool, message: &str) {
        if warning {
            self.emit(&Event::Warning { message });
        } else {
            self.emit(&Event::Notice { message });
        }
    }

    /// Tell the user about a Ctrl-C once per level.
    fn check_interrupt(&mut self) {
        let level = self.cancel.level();
        if level <= self.level_told || !self.cancel.was_interrupted() {
            return;
        }
        self.level_told = level;
        self.emit(&Event::Interrupted {
            again: level == CancelLevel::Immediate,
        });
    }

    /// Wait for the next message (at most `wait`), handling notices on the
    /// way; `None` when nothing came.
    fn next(&mut self, wait: Duration) -> Option<Msg> {
        self.check_interrupt();
        match self.rx.recv_timeout(wait) {
            Ok(Msg::Notice(warning, message)) => {
                self.tell(warning, &message);
                None
            }
            Ok(msg) => Some(msg),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Discover every group, one after another, on a thread of its own so
    /// that the reporters keep showing what goes on (the clock, an image
    /// build's progress) while a discovery command runs.
    ///
    /// With a `cache`, groups whose inputs did not change reuse their last
    /// discovery, and fresh ones are stored.
    pub fn discover(
        &mut self,
        framework: &Arc<dyn Framework>,
        groups: &[GroupConfig],
        cache: Option<crate::discover::cache::DiscoveryCache>,
        stream_output: bool,
    ) -> Result<TestTable> {
        let thread = spawn_discovery(
            Arc::clone(framework),
            groups.to_vec(),
            cache,
            stream_output,
            &self.cancel,
            self.tx.clone(),
            Msg::Discovered,
        )?;
        let result = loop {
            match self.next(Duration::from_millis(100)) {
                Some(Msg::Discovery(p)) => {
                    let at = self.now();
                    match p {
                        OwnedProgress::Started { group, command } => {
                            self.emit(&Event::DiscoveryStarted {
                                group: &groups[group].name,
                                command: &command,
                                at,
                            })
                        }
                        OwnedProgress::Warning(w) => self.emit(&Event::Warning { message: &w }),
                        OwnedProgress::Note(n) => self.emit(&Event::Notice { message: &n }),
                        OwnedProgress::Output(stream, line) => self.emit(&Event::DiscoveryOutput {
                            stream,
                            line: &line,
                        }),
                        OwnedProgress::Finished { group, tests } => {
                            self.emit(&Event::DiscoveryFinished {
                                group: &groups[group].name,
                                tests,
                                at,
                            })
                        }
                    }
                }
                Some(Msg::Discovered(result)) => break result,
                // Preparing may finish first (nothing to build): keep it.
                Some(Msg::Prepared(result)) => {
                    self.prepared_at_last();
                    self.prepared = Some(result)
                }
                Some(Msg::Worker(_) | Msg::Notice(..) | Msg::Rediscovered(_)) | None => {}
            }
        };
        let _ = thread.join();
        result
    }

    /// The preparation just ended: tell the reporters how long it took.
    fn prepared_at_last(&mut self) {
        if let Some(started) = self.preparing_since.take() {
            let finished = self.now();
            self.emit(&Event::Prepared { started, finished });
        }
    }

    /// Prepare `provider` (build an image) on a thread of its own, while
    /// discovery runs; [`Session::wait_prepared`] takes it back.
    pub fn start_preparing(&mut self, provider: Box<dyn Provider>, prepare: bool) -> Preparing {
        if prepare {
            self.preparing_since = Some(self.now());
        }
        let (cancel, tx) = (self.cancel.clone(), self.tx.clone());
        let handle = std::thread::spawn(move || {
            let mut provider = provider;
            let result = match prepare {
                true => provider.prepare(&cancel).map(|()| provider),
                false => Ok(provider),
            };
            let _ = tx.send(Msg::Prepared(result));
        });
        Preparing {
            handle: Some(handle),
            cancel: self.cancel.clone(),
        }
    }

    /// Wait for the provider to be prepared.
    pub fn wait_prepared(
        &mut self,
        mut preparing: Preparing,
    ) -> std::result::Result<Box<dyn Provider>, ProviderError> {
        let result = loop {
            if let Some(result) = self.prepared.take() {
                break result;
            }
            if let Some(Msg::Prepared(result)) = self.next(Duration::from_millis(100)) {
                self.prepared_at_last();
                break result;
            }
        };
        if let Some(handle) = preparing.handle.take() {
            let _ = handle.join();
        }
        result
    }

    /// Run the planned batches on a pool of workers, one sandbox each, until
    /// every test is decided (or the run stops), and tell the reporters how
    /// it ended. Every sandbox is destroyed before this returns.
    pub fn execute(
        &mut self,
        table: &TestTable,
        batches: Vec<PlannedBatch>,
        framework: Arc<dyn Framework>,
        provider: Arc<dyn Provider>,
        options: ExecuteOptions,
    ) -> Result<RunStats> {
        // No more sandboxes than tests, or than planned batches: a sandbox
        // can cost real money.
        let workers = options
            .parallelism
            .max(1)
            .min(table.tests.len().max(1))
            .min(batches.len().max(1));
        let (job_tx, job_rx) = crossbeam_channel::unbounded::<Order>();
        let context_framework = Arc::clone(&framework);
        let context = Arc::new(worker::WorkerContext {
            provider,
            notices: self.notices(),
            batch: BatchContext {
                framework,
                env: options.env,
                timeout: options.timeout,
                scratch_dir: options.scratch_dir,
                cancel: self.cancel.clone(),
            },
            stream_output: options.stream_output,
        });
        let discovery_cache = options.discovery_cache;
        let mut rediscovery: Option<std::thread::JoinHandle<()>> = None;
        let mut state = RunState::new(
            table,
            Settings {
                workers,
                timeout: options.timeout,
                fail_fast: options.fail_fast,
                batch_startup: options.batch_startup,
                cold: options.known_durations == 0,
            },
        );
        let planned = batches.len();
        state.enqueue(batches);
        let at = self.now();
        self.emit(&Event::RunStarted {
            table,
            known_durations: options.known_durations,
            batches: planned,
            parallelism: workers,
            provider: options.provider,
            expected_wall: options.expected_wall,
            at,
        });
        let mut handles = Vec::with_capacity(workers);
        for w in 0..workers {
            let (ctx, jobs, out) = (Arc::clone(&context), job_rx.clone(), self.tx.clone());
            let handle = std::thread::Builder::new()
                .name(format!("offload-worker-{w}"))
                .spawn(move || worker::work(w, ctx, jobs, out))
                .map_err(|e| crate::error::io_error("cannot start a worker thread", &e))?;
            handles.push(handle);
        }
        drop(context);

        let mut stopped = false;
        let mut exited = 0;
        let mut fx_flags = FxFlags::default();
        loop {
            if self.cancel.is_cancelled() && !stopped {
                stopped = true;
                let reason = if self.cancel.was_interrupted() {
                    StopReason::Interrupted
                } else {
                    StopReason::FailFast
                };
                let mut fx = Fx::new(&mut self.reporters, &job_tx, &self.cancel, &mut fx_flags);
                state.stop(reason, &mut fx);
                // Jobs no worker picked up yet will not run.
                take_back_orders(&job_rx, &mut state, &mut fx);
            }
            state.dispatch(&mut Fx::new(
                &mut self.reporters,
                &job_tx,
                &self.cancel,
                &mut fx_flags,
            ));
            if state.is_finished() {
                break;
            }
            if std::mem::take(&mut fx_flags.rediscover) {
                // Discovered afresh on a thread of its own while the
                // batches go on; stored for the next run.
                let cache = discovery_cache.as_ref().map(|c| c.open(true));
                match spawn_discovery(
                    Arc::clone(&context_framework),
                    table.groups.clone(),
                    cache,
                    // The batches' output streams meanwhile.
                    false,
                    &self.cancel,
                    self.tx.clone(),
                    Msg::Rediscovered,
                ) {
                    Ok(handle) => rediscovery = Some(handle),
                    Err(e) => {
                        let mut fx =
                            Fx::new(&mut self.reporters, &job_tx, &self.cancel, &mut fx_flags);
                        state.rediscovered(Err(e.to_string()), &mut fx);
                    }
                }
            }
            let msg = match self.next(Duration::from_millis(50)) {
                Some(Msg::Worker(msg)) => msg,
                Some(Msg::Rediscovered(fresh)) => {
                    if let Some(handle) = rediscovery.take() {
                        let _ = handle.join();
                    }
                    let mut fx = Fx::new(&mut self.reporters, &job_tx, &self.cancel, &mut fx_flags);
                    state.rediscovered(fresh.map_err(|e| e.to_string()), &mut fx);
                    continue;
                }
                Some(Msg::Discovery(p)) => {
                    if let OwnedProgress::Note(n) | OwnedProgress::Warning(n) = p {
                        self.emit(&Event::Notice { message: &n });
                    }
                    continue;
                }
                _ => continue,
            };
            let now = self.now();
            let mut fx = Fx::new(&mut self.reporters, &job_tx, &self.cancel, &mut fx_flags);
            match msg {
                WorkerMsg::Creating { worker } => fx.emit(&Event::SandboxCreating {
                    sandbox: worker,
                    at: now,
                }),
                WorkerMsg::SandboxReady { worker, id } => {
                    state.sandbox_ready(worker, &id, now, &mut fx)
                }
                // Ready again, but busy reporting its batch: no idle worker more.
                WorkerMsg::Replaced { worker, id } => fx.emit(&Event::SandboxReady {
                    sandbox: worker,
                    id: &id,
                    at: now,
                }),
                WorkerMsg::SandboxFailed { worker, error } => {
                    state.sandbox_failed(worker, &error, now, &mut fx)
                }
                WorkerMsg::BatchStarted { worker, batch } => {
                    state.batch_started(worker, batch, now, &mut fx)
                }
                WorkerMsg::Output {
                    batch,
                    stream,
                    line,
                } => fx.emit(&Event::BatchOutput {
                    batch,
                    stream,
                    line: &line,
                }),
                WorkerMsg::TestFinished {
                    batch,
                    position,
                    outcome,
                } => state.test_finished(batch, position, outcome, now, &mut fx),
                WorkerMsg::BatchDone(result) => state.batch_done(*result, now, &mut fx),
                WorkerMsg::Exited { worker, panicked } => {
                    exited += 1;
                    state.worker_exited(worker, panicked, now, &mut fx)
                }
            }
        }
        // No more work: take back jobs no worker picked up, then close the
        // queue so that the workers leave and destroy their sandboxes.
        let finished = {
            let mut fx = Fx::new(&mut self.reporters, &job_tx, &self.cancel, &mut fx_flags);
            take_back_orders(&job_rx, &mut state, &mut fx);
            state.finish(&mut fx)
        };
        let wall = self.now();
        drop((job_tx, job_rx));
        // Nothing is left to run: a sandbox still being created is not needed
        // (and may cost money). Its create is stopped as Ctrl-C stops one,
        // so that its clean-up runs; destroys are not interrupted by this.
        self.cancel.raise(CancelLevel::Graceful);
        // Sandboxes are destroyed as the workers leave: tell the reporters,
        // so the timeline shows each sandbox's whole life.
        while exited < workers {
            match self.rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Msg::Worker(WorkerMsg::Exited { worker, .. })) => {
                    exited += 1;
                    let at = self.now();
                    self.emit(&Event::SandboxDestroyed {
                        sandbox: worker,
                        at,
                    });
                }
                Ok(Msg::Notice(warning, message)) => self.tell(warning, &message),
                // A create that gave up while the others finished the work.
                Ok(Msg::Worker(WorkerMsg::SandboxFailed { worker, error }))
                    if !self.cancel.was_interrupted() && !error.message.contains("cancelled") =>
                {
                    let at = self.now();
                    self.emit(&Event::SandboxFailed {
                        sandbox: worker,
                        error: &error.to_string(),
                        at,
                    });
                }
                Ok(_) => {}
                // A worker thread that died without a word (it cannot, but
                // waiting for it must not hang the run).
                Err(_) if handles.iter().all(|h| h.is_finished()) => break,
                Err(_) => {}
            }
        }
        for h in handles {
            let _ = h.join();
        }
        // A fresh discovery still under way is of no use now.
        if let Some(handle) = rediscovery.take() {
            self.cancel.raise(CancelLevel::Graceful);
            let _ = handle.join();
        }
        Ok(self.finish(&finished.records, wall, finished.stopped, finished.fatal))
    }

    /// Tell the reporters the run is over; returns its stats, reports that
    /// could not be written included.
    pub fn finish(
        &mut self,
        records: &[TestRecord],
        wall: Duration,
        stopped: Option<StopReason>,
        fatal: Option<String>,
    ) -> RunStats {
        let mut stats = RunStats {
            counts: crate::events::Counts::of(records),
            wall,
            stopped,
            fatal,
            report_failures: Vec::new(),
        };
        // A Ctrl-C not told yet, and notes still on their way (a destroy
        // that failed).
        self.check_interrupt();
        while let Ok(msg) = self.rx.try_recv() {
            if let Msg::Notice(warning, message) = msg {
                self.tell(warning, &message);
            }
        }
        let event_stats = stats.clone();
        self.emit(&Event::RunFinished {
            records,
            stats: &event_stats,
        });
        stats.report_failures = self.reporters.failures().to_vec();
        stats
    }
}

/// The state machine's effects in a real run: events to the reporters, jobs
/// to the workers, and `--fail-fast` stopping the running batches.
struct Fx<'a, 'r> {
    reporters: &'a mut Reporters<'r>,
    jobs: &'a Sender<Order>,
    cancel: &'a Cancel,
    flags: &'a mut FxFlags,
}

/// What the state machine asked for that the driver does after the call.
#[derive(Default)]
struct FxFlags {
    rediscover: bool,
}

impl<'a, 'r> Fx<'a, 'r> {
    fn new(
        reporters: &'a mut Reporters<'r>,
        jobs: &'a Sender<Order>,
        cancel: &'a Cancel,
        flags: &'a mut FxFlags,
    ) -> Self {
        Fx {
            reporters,
            jobs,
            cancel,
            flags,
        }
    }
}

impl Effects for Fx<'_, '_> {
    fn emit(&mut self, event: &Event<'_>) {
        if let Event::RunStopping {
            reason: StopReason::FailFast,
        } = event
        {
            // Running batches stop too, gracefully.
            self.cancel.raise(CancelLevel::Graceful);
        }
        self.reporters.emit(event);
    }

    fn dispatch(&mut self, job: Job) {
        let _ = self.jobs.send(Order::Run(job));
    }

    fn retire(&mut self) {
        let _ = self.jobs.send(Order::Retire);
    }

    fn rediscover(&mut self) {
        self.flags.rediscover = true;
    }
}

/// Take back the orders no worker picked up (the run stopped or is over).
fn take_back_orders(orders: &Receiver<Order>, state: &mut RunState<'_>, fx: &mut Fx<'_, '_>) {
    while let Ok(order) = orders.try_recv() {
        match order {
            Order::Run(job) => state.take_back(job, fx),
            Order::Retire => state.retire_taken_back(),
        }
    }
}

/// A discovery output line as `-v` shows it: `cargo nextest list` prints
/// the whole list as one JSON line, which is cut to its start.
fn shown_discovery_line(line: &str) -> String {
    const MAX: usize = 300;
    if line.len() <= MAX {
        return line.to_string();
    }
    let mut end = MAX;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &line[..end], line.len())
}

/// Discover `groups` on a thread of its own, progress and the result sent
/// to the driver (`done` wraps the result); the cache, if any, is saved
/// there too.
fn spawn_discovery(
    framework: Arc<dyn Framework>,
    groups: Vec<GroupConfig>,
    mut cache: Option<crate::discover::cache::DiscoveryCache>,
    stream_output: bool,
    cancel: &Cancel,
    tx: Sender<Msg>,
    done: fn(Result<TestTable>) -> Msg,
) -> Result<std::thread::JoinHandle<()>> {
    let cancel = cancel.clone();
    std::thread::Builder::new()
        .name("offload-discovery".into())
        .spawn(move || {
            let progress_tx = tx.clone();
            let mut progress = move |p: Progress<'_>| {
                let owned = match p {
                    Progress::Started { group, command } => OwnedProgress::Started {
                        group,
                        command: command.to_string(),
                    },
                    Progress::Warning(w) => OwnedProgress::Warning(w.to_string()),
                    Progress::Note(n) => OwnedProgress::Note(n.to_string()),
                    Progress::Finished { group, tests } => OwnedProgress::Finished { group, tests },
                };
                let _ = progress_tx.send(Msg::Discovery(owned));
            };
            let output: Option<LineSink> = stream_output.then(|| {
                let tx = tx.clone();
                Arc::new(move |stream, line: &str| {
                    let line = shown_discovery_line(line.trim_end_matches(['\n', '\r']));
                    let _ = tx.send(Msg::Discovery(OwnedProgress::Output(stream, line)));
                }) as LineSink
            });
            let result = crate::discover::discover_all(
                framework.as_ref(),
                &groups,
                &cancel,
                &mut progress,
                cache.as_mut(),
                output.as_ref(),
            );
            if let Some(cache) = cache.as_mut().filter(|_| result.is_ok()) {
                if let Err(e) = cache.save() {
                    let _ = tx.send(Msg::Notice(
                        true,
                        crate::error::io_error(
                            format!(
                                "cannot save the discovery cache {} (the next run discovers afresh)",
                                cache.path().display()
                            ),
                            &e,
                        )
                        .to_string(),
                    ));
                }
            }
            let _ = tx.send(done(result));
        })
        .map_err(|e| crate::error::io_error("cannot start the discovery thread", &e))
}

/// A provider being prepared on its own thread. Dropping it without
/// [`Session::wait_prepared`] (an early return) cancels the preparation and
/// waits for it, so no build process outlives the run.
pub struct Preparing {
    handle: Option<std::thread::JoinHandle<()>>,
    cancel: Cancel,
}

impl Drop for Preparing {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.cancel.raise(CancelLevel::Immediate);
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_long_discovery_line_is_cut_at_a_char_boundary() {
        assert_eq!(
            super::shown_discovery_line("collected 3 items"),
            "collected 3 items"
        );
        let long = "é".repeat(400);
        let shown = super::shown_discovery_line(&long);
        assert!(shown.starts_with(&"é".repeat(150)), "{shown}");
        assert!(shown.ends_with("… (800 bytes)"), "{shown}");
        assert!(shown.len() < 320, "{}", shown.len());
    }
}
