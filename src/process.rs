//! Every child process Offload starts goes through here: `{shell} -c SCRIPT`
//! in its own process group, stdout and stderr captured line by line on two
//! reader threads (so a chatty child never deadlocks on a full pipe), a
//! timeout, and cancellation. Whatever happens, the whole process group —
//! grandchildren included — is killed before [`run`] returns.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wait_timeout::ChildExt;

use crate::cancel::{grace_period, Cancel, CancelLevel, POLL_INTERVAL};

pub mod supervisor;

/// Which pipe a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Both streams of a process, interleaved in arrival order, kept in one
/// buffer with line boundaries (one allocation per process, not per line:
/// a batch of 10,000 tests prints 10,000 lines).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CapturedOutput {
    text: String,
    /// Per line: its stream and the end offset of its text in `text`.
    lines: Vec<(Stream, usize)>,
}

impl CapturedOutput {
    pub fn push(&mut self, stream: Stream, line: &str) {
        self.text.push_str(line);
        self.lines.push((stream, self.text.len()));
    }

    /// Drop the lines `drop` says so (copies only when one is dropped).
    pub fn remove_lines(&mut self, drop: impl Fn(&str) -> bool) {
        if !self.iter().any(|(_, l)| drop(l)) {
            return;
        }
        let mut kept = CapturedOutput::default();
        for (stream, line) in self.iter().filter(|(_, l)| !drop(l)) {
            kept.push(stream, line);
        }
        *self = kept;
    }

    /// Every line in arrival order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (Stream, &str)> + ExactSizeIterator + '_ {
        self.lines
            .iter()
            .enumerate()
            .map(move |(i, &(stream, end))| {
                let start = if i == 0 { 0 } else { self.lines[i - 1].1 };
                (stream, &self.text[start..end])
            })
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Bytes of text held.
    pub fn bytes(&self) -> usize {
        self.text.len()
    }

    fn joined(&self, which: Stream) -> String {
        let mut s = String::new();
        for (_, line) in self.iter().filter(|(st, _)| *st == which) {
            s.push_str(line);
            s.push('\n');
        }
        s
    }

    /// The last `n` lines (both streams), joined by newlines.
    pub fn tail(&self, n: usize) -> String {
        let skip = self.len().saturating_sub(n);
        self.iter()
            .skip(skip)
            .map(|(_, l)| l)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Called for each line as it arrives (for `-v` streaming).
pub type LineSink = Arc<dyn Fn(Stream, &str) + Send + Sync>;

/// How the process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Exited(i32),
    /// Killed by a signal we did not send.
    Signalled(i32),
    /// We killed it because the timeout expired.
    TimedOut,
    /// We killed it because the run was cancelled.
    Cancelled,
}

#[derive(Clone, Debug)]
pub struct ProcessOutput {
    pub ending: Ending,
    /// Both streams, interleaved in arrival order.
    pub output: CapturedOutput,
    /// True when output beyond [`MAX_CAPTURE_BYTES`] was dropped.
    pub truncated: bool,
}

impl ProcessOutput {
    pub fn success(&self) -> bool {
        self.ending == Ending::Exited(0)
    }

    pub fn stdout(&self) -> String {
        self.output.joined(Stream::Stdout)
    }

    pub fn stderr(&self) -> String {
        self.output.joined(Stream::Stderr)
    }

    /// A short description of the ending for error messages
    /// ("exit code 3", "killed by signal 9", "timed out after 5 s").
    pub fn describe_ending(&self, timeout: Option<Duration>) -> String {
        match self.ending {
            Ending::Exited(c) => format!("exit code {c}"),
            Ending::Signalled(s) => format!("killed by signal {s}"),
            Ending::TimedOut => match timeout {
                Some(t) => format!("timed out after {} s", t.as_secs()),
                None => "timed out".into(),
            },
            Ending::Cancelled => "cancelled".into(),
        }
    }

    /// The last `n` lines of output (stderr and stdout), for error messages.
    pub fn tail(&self, n: usize) -> String {
        self.output.tail(n)
    }
}

/// Output kept per process; beyond it lines are counted but dropped, so a
/// runaway test cannot exhaust memory.
pub const MAX_CAPTURE_BYTES: usize = 32 * 1024 * 1024;

/// What to run.
#[derive(Clone, Debug)]
pub struct CommandSpec<'a> {
    /// e.g. `/bin/sh`
    pub shell: &'a str,
    /// Passed as `{shell} -c SCRIPT`.
    pub script: &'a str,
    pub cwd: Option<&'a Path>,
    pub env: &'a [(String, String)],
    /// How the command is stopped when it runs out of time.
    pub on_timeout: OnTimeout,
}

impl<'a> CommandSpec<'a> {
    pub fn sh(script: &'a str) -> Self {
        CommandSpec {
            shell: "/bin/sh",
            script,
            cwd: None,
            env: &[],
            on_timeout: OnTimeout::Kill,
        }
    }
}

/// How a command that exceeds its timeout is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnTimeout {
    /// SIGKILL to the group at once: a hung test already had its whole
    /// timeout, and nothing of it needs cleaning up.
    Kill,
    /// SIGTERM, the [`grace_period`], then SIGKILL, as a Ctrl-C does: a
    /// sandbox lifecycle command may be half-way through making something
    /// that only its own clean-up trap knows how to remove.
    Terminate,
}

/// Run `spec` to completion, a timeout, or cancellation. `Err` only when the
/// process could not be started at all (e.g. the shell does not exist).
pub fn run(
    spec: &CommandSpec<'_>,
    timeout: Option<Duration>,
    cancel: &Cancel,
    sink: Option<LineSink>,
) -> std::io::Result<ProcessOutput> {
    use std::os::unix::process::CommandExt;

    let mut cmd = Command::new(spec.shell);
    let (out_read, out_write) = pipe()?;
    let (err_read, err_write) = pipe()?;
    cmd.arg("-c")
        .arg(spec.script)
        .stdin(Stdio::null())
        .stdout(out_write)
        .stderr(err_write)
        // Own process group: one kill reaches every descendant that did not
        // deliberately leave it.
        .process_group(0);
    if let Some(dir) = spec.cwd {
        cmd.current_dir(dir);
    }
    for (k, v) in spec.env {
        cmd.env(k, v);
    }
    if spec.on_timeout == OnTimeout::Terminate {
        keep_output_writable(&mut cmd, [&out_read, &err_read]);
    }
    let spawned = cmd.spawn();
    // The write ends are the child's now: ours must close for EOF to come.
    drop(cmd);
    let mut child = spawned?;
    let pgid = child.id() as i32;
    // Should Offload be killed, the watchdog stops the group.
    supervisor::register(pgid, spec.on_timeout);

    let captured = Arc::new(Mutex::new(Captured::default()));
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<()>();
    let mut n_readers = 0;
    for (pipe, stream) in [out_read, err_read]
        .into_iter()
        .zip([Stream::Stdout, Stream::Stderr])
    {
        let pipe = Box::new(pipe) as Box<dyn Read + Send>;
        n_readers += 1;
        let captured = Arc::clone(&captured);
        let sink = sink.clone();
        let done_tx = done_tx.clone();
        std::thread::spawn(move || {
            read_lines(pipe, stream, &captured, sink.as_ref());
            let _ = done_tx.send(());
        });
    }
    drop(done_tx);

    let ending = wait(&mut child, pgid, timeout, spec.on_timeout, cancel);
    // Whatever the shell left behind in its group goes too.
    kill_group(pgid, libc::SIGKILL);
    supervisor::unregister(pgid);

    // The pipes close once every process holding them is gone. A descendant
    // that escaped the group (setsid) may keep them open: do not wait forever.
    let deadline = Instant::now() + Duration::from_secs(2);
    for _ in 0..n_readers {
        let left = deadline.saturating_duration_since(Instant::now());
        if done_rx.recv_timeout(left).is_err() {
            break;
        }
    }
    let captured = std::mem::take(&mut *captured.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(ProcessOutput {
        ending,
        output: captured.output,
        truncated: captured.truncated,
    })
}

/// Give the child a copy of the read ends of its own output pipes, so that
/// the pipes outlive Offload. Should Offload be killed, the watchdog sends a
/// lifecycle command SIGTERM so that its clean-up trap removes what it made
/// half-way; with the pipes' only reader gone, the first write of that
/// clean-up (`sh` reports "Terminated" for the child the signal killed)
/// would kill it with SIGPIPE before the trap runs. A copy kept in the child
/// keeps the pipe whole: the writes land in its buffer, and the grace period
/// bounds a command that fills it.
fn keep_output_writable(cmd: &mut Command, pipes: [&std::fs::File; 2]) {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let fds = pipes.map(|p| p.as_raw_fd());
    // SAFETY: `dup` is async-signal-safe, and the descriptors are open in
    // the forked child (ours, inherited; they close on exec, their copies
    // do not).
    unsafe {
        cmd.pre_exec(move || {
            for fd in fds {
                if libc::dup(fd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// A pipe: its read end, and its write end for a child's stdout or stderr.
/// Both close on exec (the child gets the write end as fd 1 or 2).
fn pipe() -> std::io::Result<(std::fs::File, std::os::fd::OwnedFd)> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills `fds` with two new descriptors, owned from here on.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok((
            std::fs::File::from(OwnedFd::from_raw_fd(fds[0])),
            OwnedFd::from_raw_fd(fds[1]),
        ))
    }
}

#[derive(Default)]
struct Captured {
    output: CapturedOutput,
    truncated: bool,
}

/// How long a pipe reader pauses after a short read in a burst of output.
const COALESCE: Duration = Duration::from_millis(2);

/// A pipe reader that pauses briefly while output comes fast. Most runners
/// write one line per test (pytest -v, nextest, a shell loop), and a reader
/// blocked on the pipe wakes for every write: at 20,000 fast tests those
/// wake-ups (a context switch each) were most of Offload's own CPU time.
/// When a read returns soon after the previous one (a burst) and did not
/// fill the buffer, the reader pauses [`COALESCE`] and then takes whatever
/// piled up: at most a few hundred wake-ups a second, and a line reaches the
/// log or the `-v` stream at most that much later. Slow output (a line now
/// and then) is read as it comes, with no pause: pausing there would only add
/// a wake-up. A full buffer is never paused after.
struct Coalescing<R> {
    inner: R,
    last_read: Option<Instant>,
}

impl<R: Read> Read for Coalescing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let now = Instant::now();
        let burst = self
            .last_read
            .is_some_and(|last| now.duration_since(last) < COALESCE);
        if burst && n > 0 && n < buf.len() / 2 {
            std::thread::sleep(COALESCE);
        }
        self.last_read = Some(Instant::now());
        Ok(n)
    }
}

fn read_lines(
    pipe: Box<dyn Read + Send>,
    stream: Stream,
    captured: &Mutex<Captured>,
    sink: Option<&LineSink>,
) {
    let mut reader = BufReader::with_capacity(
        64 * 1024,
        Coalescing {
            inner: pipe,
            last_read: None,
        },
    );
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        let text = String::from_utf8_lossy(&buf);
        if let Some(sink) = sink {
            sink(stream, &text);
        }
        let mut c = captured.lock().unwrap_or_else(|e| e.into_inner());
        if c.output.bytes() + text.len() > MAX_CAPTURE_BYTES {
            c.truncated = true;
            continue;
        }
        c.output.push(stream, &text);
    }
}

/// How often a waiting worker looks at the cancellation level.
const WAIT_SLICE: Duration = Duration::from_millis(100);

/// Wait for the child, enforcing the timeout and the cancellation level.
fn wait(
    child: &mut Child,
    pgid: i32,
    timeout: Option<Duration>,
    on_timeout: OnTimeout,
    cancel: &Cancel,
) -> Ending {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        // The child's exit wakes this at once (SIGCHLD); the slice only bounds
        // how late a cancellation or the deadline is noticed. Each slice costs
        // a few system calls, so it is not shorter than it needs to be.
        let slice = match deadline {
            Some(d) => WAIT_SLICE.min(d.saturating_duration_since(Instant::now())),
            None => WAIT_SLICE,
        };
        match child.wait_timeout(slice) {
            Ok(Some(status)) => return ending_of(status),
            Ok(None) => {}
            Err(_) => {
                kill_group(pgid, libc::SIGKILL);
                return child.wait().map(ending_of).unwrap_or(Ending::Signalled(9));
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            match on_timeout {
                OnTimeout::Kill => {
                    kill_group(pgid, libc::SIGKILL);
                    let _ = child.wait();
                }
                OnTimeout::Terminate => terminate_gracefully(child, pgid, cancel),
            }
            return Ending::TimedOut;
        }
        match cancel.level() {
            CancelLevel::Running => {}
            CancelLevel::Graceful => {
                terminate_gracefully(child, pgid, cancel);
                return Ending::Cancelled;
            }
            CancelLevel::Immediate => {
                kill_group(pgid, libc::SIGKILL);
                let _ = child.wait();
                return Ending::Cancelled;
            }
        }
    }
}

/// SIGTERM the group, give it the [`grace_period`] (cut short by an
/// immediate cancel), then SIGKILL. The grace period is for the whole group,
/// not only the direct child: `sh -c` dies of SIGTERM at once, while the
/// script it started may be running its cleanup trap (removing a sandbox it
/// was creating).
fn terminate_gracefully(child: &mut Child, pgid: i32, cancel: &Cancel) {
    kill_group(pgid, libc::SIGTERM);
    let deadline = Instant::now() + grace_period();
    let mut child_exited = false;
    while Instant::now() < deadline && cancel.level() != CancelLevel::Immediate {
        if !child_exited {
            child_exited = matches!(child.wait_timeout(POLL_INTERVAL), Ok(Some(_)));
            continue;
        }
        if !group_alive(pgid) {
            break;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    kill_group(pgid, libc::SIGKILL);
    let _ = child.wait();
}

/// Whether any process of group `pgid` is still running. Members that were
/// orphaned to us (the run is a child subreaper) are reaped on the way, so
/// that a zombie does not count as running.
fn group_alive(pgid: i32) -> bool {
    // SAFETY: plain syscalls; a negative pid addresses the process group, and
    // only our own children in that group can be reaped.
    unsafe {
        while libc::waitpid(-pgid, std::ptr::null_mut(), libc::WNOHANG) > 0 {}
        libc::kill(-pgid, 0) == 0
    }
}

fn ending_of(status: ExitStatus) -> Ending {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => Ending::Exited(c),
        (None, Some(s)) => Ending::Signalled(s),
        (None, None) => Ending::Exited(-1),
    }
}

/// Send `signal` to every process in group `pgid`. A group that is already
/// gone is not an error.
pub fn kill_group(pgid: i32, signal: i32) {
    if pgid > 1 {
        // SAFETY: plain syscall; a negative pid addresses the process group.
        unsafe {
            libc::kill(-pgid, signal);
        }
    }
}

/// Make this process the reaper of its orphaned descendants, so that a
/// grandchild that daemonizes itself out of its process group is still ours
/// to find and kill at the end of the run ([`kill_orphans`]).
pub fn become_subreaper() {
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// Kill every remaining child of this process, and reap it. Called at the very
/// end of a run, when no child of ours has any business being alive.
pub fn kill_orphans() -> usize {
    let me = std::process::id() as i32;
    let watchdog = supervisor::pid().map(|p| p as i32);
    let mut killed = 0;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command name: state ppid pgrp ...
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let _state = fields.next();
        if fields.next().and_then(|p| p.parse::<i32>().ok()) == Some(me) && Some(pid) != watchdog {
            // SAFETY: plain syscalls on a pid that is our child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
            killed += 1;
        }
    }
    killed
}

/// The longest single argument Linux passes to a program (`MAX_ARG_STRLEN`,
/// its terminating NUL included). A `sh -c SCRIPT` script is one argument.
pub const MAX_ARG_BYTES: usize = 128 * 1024;

/// Bytes `s` takes as one word of a script ([`shell_quote`]), after the
/// script is itself quoted `requotes` more times as one word (a remote
/// provider's `{command}`). Inside a quoted word each `'` becomes `'\''`: three
/// more bytes, and three quotes for the next layer. The enclosing quotes of
/// the outer words are not counted (they are paid once per script).
pub fn quoted_bytes(s: &str, requotes: u32) -> usize {
    let q = s.bytes().filter(|&b| b == b'\'').count();
    if is_shell_safe(s) {
        s.len()
    } else {
        requoted_bytes(s.len() + 2 + 3 * q, 2 + 3 * q, requotes)
    }
}

/// Bytes of text of `len` bytes holding `quotes` single quotes, once it is
/// part of a quoted word `layers` times (see [`quoted_bytes`]).
pub fn requoted_bytes(len: usize, quotes: usize, layers: u32) -> usize {
    let (mut len, mut quotes) = (len, quotes);
    for _ in 0..layers {
        len += 3 * quotes;
        quotes *= 3;
    }
    len
}

fn is_shell_safe(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'-' | b'_' | b'.' | b'/' | b',' | b':' | b'=' | b'+')
        })
}

/// Quote `s` for a POSIX shell: `'...'` with embedded quotes as `'\''`.
/// Strings made only of safe characters are left bare for readability.
pub fn shell_quote(s: &str) -> String {
    if is_shell_safe(s) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout: Option<Duration>) -> ProcessOutput {
        run(&CommandSpec::sh(script), timeout, &Cancel::new(), None).unwrap()
    }

    #[test]
    fn captures_both_streams_and_exit_code() {
        let out = sh("echo out; echo err >&2; exit 3", None);
        assert_eq!(out.ending, Ending::Exited(3));
        assert_eq!(out.stdout(), "out\n");
        assert_eq!(out.stderr(), "err\n");
    }

    #[test]
    fn large_output_does_not_deadlock() {
        let out = sh(
            "i=0; while [ $i -lt 20000 ]; do echo line $i; echo e $i >&2; i=$((i+1)); done",
            None,
        );
        assert!(out.success());
        assert_eq!(out.output.len(), 40000);
        let (stream, last) = out.output.iter().last().unwrap();
        assert!(
            last.starts_with("line 19999") || last.starts_with("e 19999"),
            "{stream:?} {last}"
        );
    }

    #[test]
    fn a_burst_of_lines_arrives_complete_and_in_order() {
        let out = sh("seq 1 50000", None);
        let lines: Vec<&str> = out.output.iter().map(|(_, l)| l).collect();
        let expected: Vec<String> = (1..=50000).map(|i| i.to_string()).collect();
        assert_eq!(lines, expected);
    }

    #[test]
    fn a_line_now_and_then_reaches_the_sink_as_it_is_written() {
        let seen: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
        let sink: LineSink = {
            let seen = Arc::clone(&seen);
            Arc::new(move |_, line: &str| {
                seen.lock()
                    .unwrap()
                    .push((line.to_string(), Instant::now()));
            })
        };
        let spec = CommandSpec::sh("echo first; sleep 0.5; echo second");
        run(&spec, None, &Cancel::new(), Some(sink)).unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        // Had the first line been held back, both would arrive together.
        let gap = seen[1].1.duration_since(seen[0].1);
        assert!(gap >= Duration::from_millis(300), "{gap:?}");
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let dir = std::env::temp_dir().join(format!("offload-proc-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("pid");
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let out = sh(&script, Some(Duration::from_millis(300)));
        assert_eq!(out.ending, Ending::TimedOut);
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The grandchild must be gone (or a zombie about to be reaped by init).
        std::thread::sleep(Duration::from_millis(100));
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z"))
            .unwrap_or(false);
        assert!(!alive, "grandchild {pid} survived the timeout");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cancel_terminates() {
        let cancel = Cancel::new();
        let c2 = cancel.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            c2.raise(CancelLevel::Immediate);
        });
        let started = Instant::now();
        let out = run(&CommandSpec::sh("sleep 30"), None, &cancel, None).unwrap();
        t.join().unwrap();
        assert_eq!(out.ending, Ending::Cancelled);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn graceful_cancel_lets_the_group_finish_its_cleanup() {
        struct Dir(std::path::PathBuf);
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let guard =
            Dir(std::env::temp_dir().join(format!("offload-proc-grace-{}", std::process::id())));
        let dir = guard.0.clone();
        std::fs::create_dir_all(&dir).unwrap();
        let mark = dir.join("cleaned-up");
        let ready = dir.join("ready");
        // The outer `sh -c` (a compound command, so it does not exec) dies of
        // SIGTERM at once; the inner shell's trap needs a moment to clean up.
        let script = format!(
            "sh -c 'trap \"sleep 0.3; touch {}; exit 0\" TERM; touch {}; sleep 30 & wait'; true",
            mark.display(),
            ready.display()
        );
        let cancel = Cancel::new();
        let c2 = cancel.clone();
        let t = std::thread::spawn(move || {
            while !ready.exists() {
                std::thread::sleep(Duration::from_millis(10));
            }
            c2.raise(CancelLevel::Graceful);
        });
        let started = Instant::now();
        let out = run(&CommandSpec::sh(&script), None, &cancel, None).unwrap();
        t.join().unwrap();
        assert_eq!(out.ending, Ending::Cancelled);
        assert!(
            mark.exists(),
            "the trap was killed before it could clean up"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_terminated_timeout_lets_the_group_clean_up_and_a_killed_one_does_not() {
        let dir = std::env::temp_dir().join(format!("offload-proc-term-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for on_timeout in [OnTimeout::Terminate, OnTimeout::Kill] {
            let mark = dir.join(format!("{on_timeout:?}"));
            // As in a create script: the trap removes what it made.
            let script = format!(
                "sh -c 'trap \"sleep 0.2; touch {}; exit 0\" TERM; sleep 30 & wait'; true",
                mark.display()
            );
            let spec = CommandSpec {
                on_timeout,
                ..CommandSpec::sh(&script)
            };
            let started = Instant::now();
            let out = run(
                &spec,
                Some(Duration::from_millis(300)),
                &Cancel::new(),
                None,
            )
            .unwrap();
            assert_eq!(out.ending, Ending::TimedOut);
            assert_eq!(
                mark.exists(),
                on_timeout == OnTimeout::Terminate,
                "{on_timeout:?}"
            );
            assert!(started.elapsed() < Duration::from_secs(10));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn quoted_bytes_are_the_bytes_quoting_makes() {
        for s in ["plain", "t 1", "t'2", "it's 'quoted'", "", "a\"b"] {
            let once = shell_quote(s);
            assert_eq!(quoted_bytes(s, 0), once.len(), "{s:?}");
            // Quoted again as part of a larger word: `'x WORD y'`.
            let twice = shell_quote(&format!("x {once} y"));
            assert_eq!(
                quoted_bytes(s, 1),
                twice.len() - shell_quote("x  y").len(),
                "{s:?}"
            );
            let q = once.matches('\'').count();
            assert_eq!(requoted_bytes(once.len(), q, 1), quoted_bytes(s, 1));
        }
    }

    #[test]
    fn shell_quote_round_trips() {
        for s in [
            "plain",
            "with space",
            "it's",
            "$HOME",
            "back\\slash",
            "@x.py",
            "",
            "a\"b",
        ] {
            let out = sh(&format!("printf %s {}", shell_quote(s)), None);
            assert_eq!(out.stdout().trim_end_matches('\n'), s, "quoting {s:?}");
        }
    }
}
