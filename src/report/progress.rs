//! Live progress on stderr while the run goes on.
//!
//! On a terminal (stderr is a tty and `CI` is not set to true): one status
//! line — tests done/total, passed, failed, flaky, busy sandboxes, elapsed,
//! ETA — redrawn in place at most 10 times a second and cleared at the end,
//! so the final screen holds only what was printed above it and the summary.
//! Elsewhere (CI logs, pipes): a plain status line every few seconds and one
//! at the end, never a control character.
//!
//! [`ProgressReporter`] runs on the driver thread and only keeps counts;
//! it hands snapshots and lines to a drawing thread over a channel, because
//! the elapsed time and the ETA must move even when no event arrives. The
//! drawing thread owns stderr; what it writes is decided by [`Painter`], a
//! pure state machine that is tested with fake clocks.

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::events::{Counts, Event, ReportError, Reporter};
use crate::model::{FinalStatus, Outcome};
use crate::process::Stream;

/// Shortest time between two redraws of the live line (10 per second).
const LIVE_REDRAW_INTERVAL: Duration = Duration::from_millis(100);
/// The live line is redrawn this often even without events, so the clock moves.
const LIVE_CLOCK_INTERVAL: Duration = Duration::from_secs(1);
/// Time between two plain status lines.
const PLAIN_INTERVAL: Duration = Duration::from_secs(5);

/// Erase the current terminal line and go back to its start.
const CLEAR_LINE: &str = "\r\x1b[2K";

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    /// One status line redrawn in place (a terminal).
    Live,
    /// Plain lines every few seconds (CI, pipes, files).
    Plain,
}

impl ProgressMode {
    /// Live when stderr is a terminal that can erase a line (`TERM` is not
    /// `dumb`) and `CI` is not `true`.
    pub fn detect() -> ProgressMode {
        let ci = std::env::var("CI")
            .map(|v| v.eq_ignore_ascii_case("true") || v == "1")
            .unwrap_or(false);
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        if std::io::stderr().is_terminal() && !ci && !dumb {
            ProgressMode::Live
        } else {
            ProgressMode::Plain
        }
    }
}

/// What the status line shows: a snapshot of the run's counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProgressState {
    /// Whether `RunStarted` has arrived (nothing is drawn before).
    pub started: bool,
    pub total: usize,
    pub parallelism: usize,
    pub counts: Counts,
    /// Sandboxes that exist and take batches.
    pub sandboxes: usize,
    /// Sandboxes running a batch right now.
    pub busy: usize,
    /// Expected wall time of the run from history, when known.
    pub expected_wall: Option<Duration>,
}

impl ProgressState {
    fn done(&self) -> usize {
        self.counts.decided()
    }

    /// Time left: from history's expected wall time when known (and not yet
    /// overrun), else extrapolated from the tests decided so far.
    pub fn eta(&self, elapsed: Duration) -> Option<Duration> {
        let done = self.done();
        if self.total == 0 || done >= self.total {
            return Some(Duration::ZERO);
        }
        if let Some(expected) = self.expected_wall {
            if expected > elapsed {
                return Some(expected - elapsed);
            }
        }
        if done == 0 {
            return None;
        }
        let per_test = elapsed.as_secs_f64() / done as f64;
        Some(Duration::from_secs_f64(
            per_test * (self.total - done) as f64,
        ))
    }
}

/// `0:07`, `12:34`, `1:02:03`.
pub fn format_clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// The live status line, at most `width - 1` characters (a line that fills
/// the last column makes some terminals wrap, and then it cannot be erased).
/// On narrow terminals the bar goes first, then the sandboxes.
pub fn render_live(state: &ProgressState, elapsed: Duration, width: usize) -> String {
    let c = &state.counts;
    let mut counts = vec![
        format!("{}/{} tests", state.done(), state.total),
        format!("{} passed", c.passed),
        format!("{} failed", c.failed),
        format!("{} flaky", c.flaky),
    ];
    if c.not_run > 0 {
        counts.push(format!("{} not run", c.not_run));
    }
    if c.skipped > 0 {
        counts.push(format!("{} skipped", c.skipped));
    }
    let counts = counts.join(" · ");
    let sandboxes = format!("{}/{} sandboxes busy", state.busy, state.sandboxes);
    let clock = format!(
        "{} ETA {}",
        format_clock(elapsed),
        state
            .eta(elapsed)
            .map_or_else(|| "--".to_string(), format_clock)
    );
    let max = width.saturating_sub(1).max(10);
    // Narrow terminals: the bar goes first, then the sandboxes, then the
    // counts beyond done/total and failed; the clock and ETA always stay.
    let short = format!(
        "{}/{} tests · {} failed",
        state.done(),
        state.total,
        c.failed
    );
    let shortest = format!("{}/{}", state.done(), state.total);
    let candidates = [
        format!(
            "{} {counts} · {sandboxes} · {clock}",
            bar(state.done(), state.total, 20)
        ),
        format!(
            "{} {counts} · {sandboxes} · {clock}",
            bar(state.done(), state.total, 10)
        ),
        format!("{counts} · {sandboxes} · {clock}"),
        format!("{counts} · {clock}"),
        format!("{short} · {clock}"),
        format!("{shortest} · {clock}"),
        format!("{shortest} {}", format_clock(elapsed)),
    ];
    for line in &candidates {
        if line.chars().count() <= max {
            return line.clone();
        }
    }
    candidates[candidates.len() - 1].clone()
}

/// `discovering group `all`: pytest --collect-only … · 0:03`, cut (with `…`)
/// so that the clock always shows.
pub fn render_phase(text: &str, elapsed: Duration, width: usize) -> String {
    let clock = format!(" · {}", format_clock(elapsed));
    let max = width.saturating_sub(1).max(10);
    let room = max.saturating_sub(clock.chars().count());
    let text: String = if text.chars().count() > room {
        let cut: String = text.chars().take(room.saturating_sub(1)).collect();
        format!("{}…", cut.trim_end())
    } else {
        text.to_string()
    };
    format!("{text}{clock}")
}

/// `[#######.............]`
fn bar(done: usize, total: usize, width: usize) -> String {
    let filled = (done * width)
        .checked_div(total)
        .unwrap_or(width)
        .min(width);
    format!("[{}{}]", "#".repeat(filled), ".".repeat(width - filled))
}

/// A plain status line for logs (no control characters).
pub fn render_plain(state: &ProgressState, elapsed: Duration) -> String {
    let eta = match state.eta(elapsed) {
        Some(eta) => format!("about {} left", format_clock(eta)),
        None => "time left unknown".into(),
    };
    format!(
        "[offload] {} {}; {}/{} sandboxes busy; {eta}",
        format_clock(elapsed),
        plain_counts(state),
        state.busy,
        state.sandboxes,
    )
}

/// The plain line at the end of the run.
pub fn render_plain_final(state: &ProgressState, elapsed: Duration) -> String {
    format!(
        "[offload] finished in {}: {}",
        format_clock(elapsed),
        plain_counts(state)
    )
}

/// `N/M tests done: P passed, F failed, ...` for the plain lines.
fn plain_counts(state: &ProgressState) -> String {
    let c = &state.counts;
    format!(
        "{}/{} tests done: {} passed, {} failed, {} flaky, {} not run, {} skipped",
        state.done(),
        state.total,
        c.passed,
        c.failed,
        c.flaky,
        c.not_run,
        c.skipped,
    )
}

/// Make a line of test output safe to print next to the status line (see
/// [`crate::text::strip_terminal_escapes`]).
pub fn sanitize(line: &str) -> String {
    crate::text::strip_terminal_escapes(line)
}

/// Decides what to write, given messages and the time (`now` is measured
/// from the reporter's creation). Pure: the drawing thread does the I/O.
#[derive(Debug)]
pub struct Painter {
    mode: ProgressMode,
    state: ProgressState,
    /// When the run started (the `RunStarted` snapshot arrived).
    started_at: Option<Duration>,
    /// Live: when the status line was last drawn. Plain: the last status line.
    last_draw: Option<Duration>,
    /// Live: the shown line is out of date.
    pending: bool,
    /// Live: the status line is on the screen right now.
    shown: bool,
    width: usize,
    /// Live: the status line as last drawn.
    last_line: String,
    /// Before the tests start: what the run is doing (discovering a group)
    /// and since when.
    phase: Option<(String, Duration)>,
}

impl Painter {
    pub fn new(mode: ProgressMode) -> Painter {
        Painter {
            mode,
            state: ProgressState::default(),
            started_at: None,
            last_draw: None,
            pending: false,
            shown: false,
            width: 80,
            last_line: String::new(),
            phase: None,
        }
    }

    /// The run does `text` before any test starts (discovery of a group):
    /// plain, one line; live, a status line with a clock until the next
    /// phase or the tests start.
    pub fn phase(&mut self, text: &str, now: Duration) -> String {
        self.phase = Some((sanitize(text), now));
        match self.mode {
            ProgressMode::Plain => format!("[offload] {}\n", sanitize(text)),
            ProgressMode::Live => self.draw_phase(now),
        }
    }

    /// A phase finished (`text`: what it found): plain, one line; live,
    /// nothing (the next status line says more).
    pub fn phase_done(&mut self, text: &str) -> String {
        match self.mode {
            ProgressMode::Plain => format!("[offload] {}\n", sanitize(text)),
            ProgressMode::Live => String::new(),
        }
    }

    fn draw_phase(&mut self, now: Duration) -> String {
        let Some((text, since)) = &self.phase else {
            return String::new();
        };
        let line = render_phase(text, now.saturating_sub(*since), self.width);
        self.shown = true;
        self.last_draw = Some(now);
        self.last_line = line;
        format!("{CLEAR_LINE}{}", self.last_line)
    }

    pub fn set_width(&mut self, width: usize) {
        self.width = width;
    }

    fn elapsed(&self, now: Duration) -> Duration {
        now.saturating_sub(self.started_at.unwrap_or(now))
    }

    /// A new snapshot of the counters.
    pub fn update(&mut self, state: ProgressState, now: Duration) -> String {
        let mut out = String::new();
        if state.started && self.started_at.is_none() {
            self.started_at = Some(now);
            self.phase = None;
            if self.mode == ProgressMode::Plain {
                out.push_str(&format!(
                    "[offload] running {} tests on up to {} sandboxes\n",
                    state.total, state.parallelism
                ));
                self.last_draw = Some(now);
            }
        }
        if self.state != state {
            self.state = state;
            self.pending = true;
        }
        if self.mode == ProgressMode::Live {
            out.push_str(&self.draw_if_due(now));
        }
        out
    }

    /// A line to print above the status line (test output with `-v`, a
    /// failure, a notice).
    pub fn line(&mut self, text: &str, now: Duration) -> String {
        let mut out = String::new();
        if self.shown {
            out.push_str(CLEAR_LINE);
            self.shown = false;
            self.pending = true;
        }
        out.push_str(&sanitize(text));
        out.push('\n');
        if self.mode == ProgressMode::Live {
            if self.started_at.is_some() {
                out.push_str(&self.draw_if_due(now));
            } else {
                out.push_str(&self.draw_phase(now));
            }
        }
        out
    }

    /// Nothing arrived until [`Painter::wake_at`]: refresh what is due.
    pub fn tick(&mut self, now: Duration) -> String {
        if self.started_at.is_none() {
            return match self.mode {
                ProgressMode::Live => self.draw_phase(now),
                ProgressMode::Plain => String::new(),
            };
        }
        match self.mode {
            ProgressMode::Live => {
                let since = self.last_draw.map(|t| now.saturating_sub(t));
                if since.map_or(true, |s| s >= LIVE_CLOCK_INTERVAL) {
                    self.pending = true;
                }
                self.draw_if_due(now)
            }
            ProgressMode::Plain => {
                let due = self
                    .last_draw
                    .map_or(true, |t| now.saturating_sub(t) >= PLAIN_INTERVAL);
                if due {
                    self.last_draw = Some(now);
                    format!("{}\n", render_plain(&self.state, self.elapsed(now)))
                } else {
                    String::new()
                }
            }
        }
    }

    /// The run is over: live, show the last state once more and erase the
    /// line; plain, one last status line.
    pub fn finish(&mut self, now: Duration) -> String {
        if self.started_at.is_none() {
            if self.shown {
                self.shown = false;
                return CLEAR_LINE.to_string();
            }
            return String::new();
        }
        match self.mode {
            ProgressMode::Live => {
                let mut out = String::new();
                if self.pending {
                    out.push_str(&self.draw(now));
                }
                if self.shown {
                    out.push_str(CLEAR_LINE);
                    self.shown = false;
                }
                out
            }
            ProgressMode::Plain => {
                format!("{}\n", render_plain_final(&self.state, self.elapsed(now)))
            }
        }
    }

    /// When [`Painter::tick`] should be called if nothing arrives first.
    pub fn wake_at(&self) -> Option<Duration> {
        let last = self.last_draw.unwrap_or_default();
        if self.started_at.is_none() {
            // The phase's clock moves once a second.
            return (self.mode == ProgressMode::Live && self.phase.is_some())
                .then_some(last + LIVE_CLOCK_INTERVAL);
        }
        Some(match self.mode {
            ProgressMode::Live if self.pending => last + LIVE_REDRAW_INTERVAL,
            ProgressMode::Live => last + LIVE_CLOCK_INTERVAL,
            ProgressMode::Plain => last + PLAIN_INTERVAL,
        })
    }

    fn draw_if_due(&mut self, now: Duration) -> String {
        let due = self
            .last_draw
            .map_or(true, |t| now.saturating_sub(t) >= LIVE_REDRAW_INTERVAL);
        if self.pending && due && self.started_at.is_some() {
            self.draw(now)
        } else {
            String::new()
        }
    }

    fn draw(&mut self, now: Duration) -> String {
        let line = render_live(&self.state, self.elapsed(now), self.width);
        let unchanged = self.shown && line == self.last_line;
        self.pending = false;
        self.shown = true;
        self.last_draw = Some(now);
        if unchanged {
            // Already on the screen: writing it again would only flicker.
            return String::new();
        }
        self.last_line = line;
        format!("{CLEAR_LINE}{}", self.last_line)
    }
}

/// The counts the status line shows: the decided tests, plus the tests of
/// running batches whose runner already said how they ended (a line per
/// test from pytest or nextest). The decision, from the batch's JUnit,
/// replaces the provisional count; a batch that ends without deciding a test
/// (it will be re-run) takes its provisional counts back.
#[derive(Debug, Default)]
struct LiveCounts {
    decided: Counts,
    /// Test ID → (its batch, what the runner said).
    provisional: HashMap<String, (usize, Outcome)>,
    /// The same, summed.
    tally: Counts,
    /// Tests whose `FAILED` line was printed from the live output.
    printed: HashSet<String>,
}

impl LiveCounts {
    fn add(tally: &mut Counts, outcome: Outcome, up: bool) {
        let field = match outcome {
            Outcome::Passed => &mut tally.passed,
            Outcome::Skipped => &mut tally.skipped,
            Outcome::Failed | Outcome::Error => &mut tally.failed,
        };
        *field = if up {
            *field + 1
        } else {
            field.saturating_sub(1)
        };
    }

    fn forget(&mut self, id: &str) {
        if let Some((_, outcome)) = self.provisional.remove(id) {
            Self::add(&mut self.tally, outcome, false);
        }
    }

    /// The runner says `id` finished: the line to print, if any (a failure
    /// that will not be retried is shown at once).
    fn finished(
        &mut self,
        batch: usize,
        id: &str,
        outcome: Outcome,
        retried: bool,
    ) -> Option<String> {
        let failed = matches!(outcome, Outcome::Failed | Outcome::Error);
        if failed && retried {
            return None;
        }
        if !self.provisional.contains_key(id) {
            self.provisional.insert(id.to_string(), (batch, outcome));
            Self::add(&mut self.tally, outcome, true);
        }
        (failed && self.printed.insert(id.to_string())).then(|| failure_line(outcome, id))
    }

    /// `id` got its verdict: the line to print, if any.
    fn decided(&mut self, id: &str, status: FinalStatus) -> Option<String> {
        self.forget(id);
        self.decided.add(status);
        let already = self.printed.remove(id);
        match status {
            FinalStatus::Failed if !already => Some(format!("FAILED {id}")),
            FinalStatus::Error if !already => Some(format!("ERROR  {id}")),
            _ => None,
        }
    }

    /// `batch` ended: what it did not decide will run again.
    fn batch_finished(&mut self, batch: usize) {
        let left: Vec<String> = self
            .provisional
            .iter()
            .filter(|(_, (b, _))| *b == batch)
            .map(|(id, _)| id.clone())
            .collect();
        for id in left {
            self.forget(&id);
        }
    }

    /// What to show, out of `total` tests.
    fn shown(&self, total: usize) -> Counts {
        let (d, t) = (&self.decided, &self.tally);
        Counts {
            total,
            passed: d.passed + t.passed,
            failed: d.failed + t.failed,
            flaky: d.flaky,
            not_run: d.not_run,
            skipped: d.skipped + t.skipped,
        }
    }
}

fn failure_line(outcome: Outcome, id: &str) -> String {
    match outcome {
        Outcome::Error => format!("ERROR  {id}"),
        _ => format!("FAILED {id}"),
    }
}

enum DrawMsg {
    Update(ProgressState),
    Line(String),
    Phase(String),
    PhaseDone(String),
    Finish,
}

/// The console progress reporter. Create it before the run starts; it
/// clears its line when `RunFinished` arrives (or when dropped).
pub struct ProgressReporter {
    verbose: bool,
    state: ProgressState,
    alive: HashSet<usize>,
    in_flight: HashSet<usize>,
    counts: LiveCounts,
    /// When the group being discovered started.
    discovery_started: Duration,
    tx: Option<Sender<DrawMsg>>,
    drawer: Option<JoinHandle<()>>,
}

impl ProgressReporter {
    /// Progress on stderr, live or plain as [`ProgressMode::detect`] decides.
    /// With `verbose`, each batch's output lines are printed as they arrive.
    pub fn new(verbose: bool) -> ProgressReporter {
        ProgressReporter::with_output(ProgressMode::detect(), verbose, Box::new(std::io::stderr()))
    }

    /// Progress in the given mode, written to `out`.
    pub fn with_output(
        mode: ProgressMode,
        verbose: bool,
        out: Box<dyn Write + Send>,
    ) -> ProgressReporter {
        let (tx, rx) = mpsc::channel();
        let drawer = std::thread::Builder::new()
            .name("offload-progress".into())
            .spawn(move || draw_loop(rx, Painter::new(mode), out))
            .ok();
        ProgressReporter {
            verbose,
            state: ProgressState::default(),
            alive: HashSet::new(),
            in_flight: HashSet::new(),
            counts: LiveCounts::default(),
            discovery_started: Duration::ZERO,
            tx: Some(tx),
            drawer,
        }
    }

    fn send(&self, msg: DrawMsg) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(msg);
        }
    }

    fn send_state(&mut self) {
        self.state.counts = self.counts.shown(self.state.total);
        self.state.sandboxes = self.alive.len();
        self.state.busy = self.in_flight.len();
        self.send(DrawMsg::Update(self.state.clone()));
    }

    fn send_lines(&self, prefix: &str, text: &str) {
        for line in text.lines() {
            self.send(DrawMsg::Line(format!("{prefix}{line}")));
        }
    }

    /// Stop the drawing thread after it has written everything.
    fn finish(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(DrawMsg::Finish);
        }
        if let Some(handle) = self.drawer.take() {
            let _ = handle.join();
        }
    }
}

impl Reporter for ProgressReporter {
    fn on_event(&mut self, event: &Event<'_>) -> Result<(), ReportError> {
        match event {
            Event::RunStarted {
                table,
                known_durations,
                batches,
                parallelism,
                provider,
                expected_wall,
                ..
            } => {
                let total = table.tests.len();
                self.send(DrawMsg::Line(format!(
                    "Timing history: durations for {known_durations} of {total} tests"
                )));
                self.send(DrawMsg::Line(format!(
                    "Running {total} tests in {batches} batches on {parallelism} sandboxes ({provider} provider)"
                )));
                self.state.started = true;
                self.state.total = total;
                self.state.parallelism = *parallelism;
                self.state.expected_wall = *expected_wall;
                self.send_state();
            }
            Event::SandboxReady { sandbox, .. } => {
                self.alive.insert(*sandbox);
                self.send_state();
            }
            Event::SandboxFailed { sandbox, error, .. } => {
                self.alive.remove(sandbox);
                self.send_lines(&format!("sandbox {sandbox}: "), error);
                self.send_state();
            }
            Event::SandboxDestroyed { sandbox, .. } => {
                self.alive.remove(sandbox);
                self.send_state();
            }
            Event::BatchStarted { batch, .. } => {
                self.in_flight.insert(*batch);
                self.send_state();
            }
            Event::BatchOutput {
                batch,
                stream,
                line,
            } => {
                if self.verbose {
                    let tag = match stream {
                        Stream::Stdout => "",
                        Stream::Stderr => "[stderr] ",
                    };
                    self.send(DrawMsg::Line(format!("[batch {batch}] {tag}{line}")));
                }
            }
            Event::BatchFinished(b) => {
                self.in_flight.remove(&b.batch);
                self.counts.batch_finished(b.batch);
                self.send_state();
            }
            Event::TestFinished {
                batch,
                id,
                outcome,
                retried_if_failed,
            } => {
                if let Some(line) = self.counts.finished(*batch, id, *outcome, *retried_if_failed) {
                    self.send(DrawMsg::Line(line));
                }
                self.send_state();
            }
            Event::TestDecided { id, status, .. } => {
                if let Some(line) = self.counts.decided(id, *status) {
                    self.send(DrawMsg::Line(line));
                }
                self.send_state();
            }
            Event::TestRetrying { id, attempt } => {
                self.counts.forget(id);
                self.send(DrawMsg::Line(format!("RETRY  {id} (attempt {attempt})")));
            }
            Event::Notice { message } => self.send_lines("note: ", message),
            Event::Warning { message } => self.send_lines("warning: ", message),
            Event::Interrupted { again: false } => self.send(DrawMsg::Line(
                "Interrupted: stopping batches and destroying sandboxes (press Ctrl-C again to kill at once)".into(),
            )),
            Event::Interrupted { again: true } => {
                self.send(DrawMsg::Line("Interrupted again: killing everything now".into()))
            }
            Event::RunFinished { .. } => self.finish(),
            Event::TestCountChanged { total } => {
                self.state.total = *total;
                self.state.counts.total = *total;
                self.send_state();
            }
            Event::DiscoveryStarted { group, command, at } => {
                self.discovery_started = *at;
                self.send(DrawMsg::Phase(format!("discovering group `{group}`: {command}")));
            }
            Event::DiscoveryOutput { stream, line } => {
                if self.verbose {
                    let tag = match stream {
                        Stream::Stdout => "",
                        Stream::Stderr => "[stderr] ",
                    };
                    self.send(DrawMsg::Line(format!("[discovery] {tag}{line}")));
                }
            }
            Event::DiscoveryFinished { group, tests, at } => {
                let took = super::summary::format_duration(at.saturating_sub(self.discovery_started));
                let tests = if *tests == 1 { "1 test".into() } else { format!("{tests} tests") };
                self.send(DrawMsg::PhaseDone(format!("group `{group}`: {tests} ({took})")));
            }
            Event::RunStopping { .. }
            | Event::Prepared { .. }
            | Event::AttemptFinished { .. }
            | Event::SandboxCreating { .. }
            | Event::ReportFailed { .. } => {}
        }
        Ok(())
    }
}

impl Drop for ProgressReporter {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The drawing thread: wait for a message or the painter's next wake-up,
/// write what the painter says. Write errors (a closed stderr) are ignored:
/// progress is never worth failing a run for.
fn draw_loop(rx: Receiver<DrawMsg>, mut painter: Painter, mut out: Box<dyn Write + Send>) {
    let start = Instant::now();
    let live = painter.mode == ProgressMode::Live;
    loop {
        let msg = match painter.wake_at() {
            Some(at) => match rx.recv_timeout(at.saturating_sub(start.elapsed())) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => Some(DrawMsg::Finish),
            },
            None => Some(rx.recv().unwrap_or(DrawMsg::Finish)),
        };
        if live {
            painter.set_width(terminal_width());
        }
        let now = start.elapsed();
        let (text, last) = match msg {
            Some(DrawMsg::Update(s)) => (painter.update(s, now), false),
            Some(DrawMsg::Line(l)) => (painter.line(&l, now), false),
            Some(DrawMsg::Phase(p)) => (painter.phase(&p, now), false),
            Some(DrawMsg::PhaseDone(p)) => (painter.phase_done(&p), false),
            Some(DrawMsg::Finish) => (painter.finish(now), true),
            None => (painter.tick(now), false),
        };
        if !text.is_empty() {
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
        if last {
            return;
        }
    }
}

/// Columns of the terminal on stderr (`COLUMNS`, else 80, when unknown).
fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ only writes a `winsize` into the struct we pass.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(2, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 {
        return ws.ws_col as usize;
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(80)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn state(done_passed: usize, failed: usize, flaky: usize) -> ProgressState {
        ProgressState {
            started: true,
            total: 10,
            parallelism: 4,
            counts: Counts {
                total: 10,
                passed: done_passed,
                failed,
                flaky,
                ..Counts::default()
            },
            sandboxes: 4,
            busy: 3,
            expected_wall: None,
        }
    }

    #[test]
    fn live_line_snapshot() {
        let s = state(3, 1, 1);
        assert_eq!(
            render_live(&s, Duration::from_secs(10), 120),
            "[##########..........] 5/10 tests · 3 passed · 1 failed · 1 flaky · 3/4 sandboxes busy · 0:10 ETA 0:10"
        );
        assert_eq!(
            render_live(&s, Duration::from_secs(10), 80),
            "5/10 tests · 3 passed · 1 failed · 1 flaky · 3/4 sandboxes busy · 0:10 ETA 0:10"
        );
        assert_eq!(
            render_live(&s, Duration::from_secs(10), 60),
            "5/10 tests · 3 passed · 1 failed · 1 flaky · 0:10 ETA 0:10"
        );
        // Narrower, the counts give way before done/total and the ETA,
        // which are never cut.
        let narrow = render_live(&s, Duration::from_secs(10), 40);
        assert_eq!(narrow, "5/10 tests · 1 failed · 0:10 ETA 0:10");
        assert_eq!(
            render_live(&s, Duration::from_secs(10), 25),
            "5/10 · 0:10 ETA 0:10"
        );
        assert_eq!(render_live(&s, Duration::from_secs(10), 12), "5/10 0:10");
    }

    #[test]
    fn the_discovery_phase_shows_what_runs_with_a_clock_that_always_fits() {
        let text = "discovering group `all`: cargo nextest list --message-format json";
        assert_eq!(
            render_phase(text, Duration::from_secs(75), 120),
            format!("{text} · 1:15")
        );
        let narrow = render_phase(text, Duration::from_secs(75), 40);
        assert_eq!(narrow, "discovering group `all`: cargo… · 1:15");
        assert!(narrow.chars().count() <= 39);
        // Plain: a line per phase, none of them a status line.
        let mut p = Painter::new(ProgressMode::Plain);
        assert_eq!(p.phase(text, ms(0)), format!("[offload] {text}\n"));
        assert_eq!(p.wake_at(), None);
        assert_eq!(
            p.phase_done("group `all`: 3 tests (1.2s)"),
            "[offload] group `all`: 3 tests (1.2s)\n"
        );
        // Live: redrawn every second until the tests start, then erased.
        let mut p = Painter::new(ProgressMode::Live);
        p.set_width(120);
        assert_eq!(p.phase(text, ms(0)), format!("{CLEAR_LINE}{text} · 0:00"));
        assert_eq!(p.wake_at(), Some(ms(1000)));
        assert_eq!(p.tick(ms(1000)), format!("{CLEAR_LINE}{text} · 0:01"));
        assert_eq!(p.finish(ms(1500)), CLEAR_LINE);
    }

    #[test]
    fn eta_prefers_history_then_extrapolates() {
        let mut s = state(2, 0, 0);
        assert_eq!(s.eta(Duration::from_secs(4)), Some(Duration::from_secs(16)));
        s.expected_wall = Some(Duration::from_secs(30));
        assert_eq!(s.eta(Duration::from_secs(4)), Some(Duration::from_secs(26)));
        // History overrun: fall back to the extrapolation.
        assert_eq!(
            s.eta(Duration::from_secs(40)),
            Some(Duration::from_secs(160))
        );
        let fresh = state(0, 0, 0);
        assert_eq!(fresh.eta(Duration::from_secs(1)), None);
        assert!(render_live(&fresh, Duration::from_secs(1), 200).ends_with("ETA --"));
    }

    #[test]
    fn plain_line_snapshot() {
        let mut s = state(3, 1, 1);
        s.counts.not_run = 1;
        assert_eq!(
            render_plain(&s, Duration::from_secs(65)),
            "[offload] 1:05 6/10 tests done: 3 passed, 1 failed, 1 flaky, 1 not run, 0 skipped; 3/4 sandboxes busy; about 0:43 left"
        );
    }

    #[test]
    fn sanitize_drops_escapes_and_control_characters() {
        assert_eq!(sanitize("\x1b[31mred\x1b[0m ok\r\x07\tend"), "red ok\tend");
        assert_eq!(sanitize("plain"), "plain");
    }

    #[test]
    fn live_redraws_at_most_ten_times_a_second_and_clears_at_the_end() {
        let mut p = Painter::new(ProgressMode::Live);
        p.set_width(200);
        assert_eq!(
            p.update(ProgressState::default(), ms(0)),
            "",
            "nothing before the run starts"
        );
        let first = p.update(state(0, 0, 0), ms(0));
        assert!(
            first.starts_with(CLEAR_LINE) && first.contains("0/10 tests"),
            "{first:?}"
        );
        // 50 ms later: too soon, remembered for later.
        assert_eq!(p.update(state(1, 0, 0), ms(50)), "");
        assert_eq!(p.wake_at(), Some(ms(100)));
        let tick = p.tick(ms(100));
        assert!(tick.contains("1/10 tests"), "{tick:?}");
        // A line of output: erase the status line, print, and redraw it when due.
        let line = p.line("[batch 2] hello\x1b[1m", ms(150));
        assert_eq!(line, format!("{CLEAR_LINE}[batch 2] hello\n"));
        assert!(p.tick(ms(200)).contains("1/10 tests"));
        // Without events the clock still moves once a second.
        assert_eq!(p.wake_at(), Some(ms(1200)));
        assert!(p.tick(ms(1200)).contains(" 0:01 "));
        // The last state is shown, then erased: a clean final screen.
        p.update(state(10, 0, 0), ms(1250));
        let end = p.finish(ms(1260));
        assert!(end.contains("10/10 tests"), "{end:?}");
        assert!(end.ends_with(CLEAR_LINE), "{end:?}");
    }

    #[test]
    fn an_unchanged_line_is_not_rewritten() {
        let mut p = Painter::new(ProgressMode::Live);
        p.set_width(200);
        assert!(p.update(state(0, 0, 0), ms(0)).contains("0/10 tests"));
        // A change that does not show on the line: nothing is written.
        let mut hidden_change = state(0, 0, 0);
        hidden_change.parallelism = 9;
        assert_eq!(p.update(hidden_change, ms(300)), "");
        // After a printed line the status line is gone, so it is drawn again.
        let out = p.line("note: hello", ms(400));
        assert!(out.ends_with("ETA --"), "{out:?}");
    }

    #[test]
    fn plain_mode_prints_every_five_seconds_without_control_characters() {
        let mut p = Painter::new(ProgressMode::Plain);
        let mut all = String::new();
        all += &p.update(state(0, 0, 0), ms(0));
        all += &p.update(state(2, 0, 0), ms(1000));
        all += &p.tick(ms(2000));
        assert_eq!(p.wake_at(), Some(ms(5000)));
        all += &p.tick(ms(5000));
        all += &p.line("FAILED tests/test_a.py::test_x", ms(5500));
        all += &p.update(state(9, 1, 0), ms(6000));
        all += &p.tick(ms(9000));
        all += &p.finish(ms(9500));
        assert_eq!(
            all,
            "[offload] running 10 tests on up to 4 sandboxes\n\
             [offload] 0:05 2/10 tests done: 2 passed, 0 failed, 0 flaky, 0 not run, 0 skipped; 3/4 sandboxes busy; about 0:20 left\n\
             FAILED tests/test_a.py::test_x\n\
             [offload] finished in 0:09: 10/10 tests done: 9 passed, 1 failed, 0 flaky, 0 not run, 0 skipped\n"
        );
        assert!(!all.chars().any(|c| c.is_control() && c != '\n'));
    }

    #[test]
    fn live_results_count_until_the_junit_decides_and_a_failure_shows_once() {
        let mut c = LiveCounts::default();
        assert_eq!(c.finished(1, "a", Outcome::Passed, false), None);
        assert_eq!(
            c.finished(1, "b", Outcome::Failed, false),
            Some("FAILED b".to_string())
        );
        // A failure that will be retried is not counted (nor shown) yet.
        assert_eq!(c.finished(1, "c", Outcome::Failed, true), None);
        assert_eq!(c.finished(2, "d", Outcome::Passed, false), None);
        let shown = c.shown(5);
        assert_eq!((shown.passed, shown.failed, shown.decided()), (2, 1, 3));
        // The decisions replace the provisional counts; no second FAILED line.
        assert_eq!(c.decided("a", FinalStatus::Passed), None);
        assert_eq!(c.decided("b", FinalStatus::Failed), None);
        assert_eq!(
            c.decided("c", FinalStatus::Error),
            Some("ERROR  c".to_string())
        );
        assert_eq!(c.shown(5).decided(), 4);
        // Batch 2 ends without deciding `d` (it runs again): its count goes.
        c.batch_finished(2);
        let shown = c.shown(5);
        assert_eq!((shown.passed, shown.failed, shown.decided()), (1, 2, 3));
    }

    /// A writer the test can read back after the reporter is done.
    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn reporter_prefixes_batch_output_and_reports_failures() {
        let out = Shared::default();
        let mut r = ProgressReporter::with_output(ProgressMode::Plain, true, Box::new(out.clone()));
        let table = crate::events::testing::table(&["a", "b"]);
        let tests = crate::events::testing::ids(&["a", "b"]);
        let stats = crate::events::testing::stats(ms(3), false);
        let events = [
            crate::events::testing::run_started(&table, 1),
            Event::SandboxReady {
                sandbox: 0,
                id: "local-0",
                at: ms(1),
            },
            Event::BatchStarted {
                batch: 3,
                kind: crate::events::BatchKind::Fresh,
                sandbox: 0,
                tests: &tests,
                at: ms(2),
            },
            Event::BatchOutput {
                batch: 3,
                stream: Stream::Stdout,
                line: "collected 2 items",
            },
            Event::BatchOutput {
                batch: 3,
                stream: Stream::Stderr,
                line: "\x1b[33mwarning\x1b[0m",
            },
            Event::TestDecided {
                id: "a",
                group: "all",
                status: FinalStatus::Failed,
            },
            Event::RunFinished {
                records: &[],
                stats: &stats,
            },
        ];
        for e in &events {
            r.on_event(e).unwrap();
        }
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        // A periodic line appears only if the test took over 5 s: not checked.
        let periodic = |l: &&str| {
            l.starts_with("[offload] ") && l.as_bytes().get(10).is_some_and(|b| b.is_ascii_digit())
        };
        let lines: Vec<&str> = text.lines().filter(|l| !periodic(l)).collect();
        // The start of the run: what history knew, and the plan.
        assert_eq!(lines[0], "Timing history: durations for 0 of 2 tests");
        assert_eq!(
            lines[1],
            "Running 2 tests in 1 batches on 1 sandboxes (local provider)"
        );
        let lines = &lines[2..];
        assert_eq!(lines[0], "[offload] running 2 tests on up to 1 sandboxes");
        assert_eq!(lines[1], "[batch 3] collected 2 items");
        assert_eq!(lines[2], "[batch 3] [stderr] warning");
        assert_eq!(lines[3], "FAILED a");
        assert!(
            lines[4].starts_with("[offload] finished in 0:00: 1/2 tests done: 0 passed, 1 failed"),
            "{text}"
        );
        assert_eq!(lines.len(), 5, "{text}");
    }
}
