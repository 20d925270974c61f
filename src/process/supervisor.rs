//! A watchdog that outlives Offload, so that the process groups it started
//! die with it even when it is killed with no chance to clean up (SIGKILL, a
//! CI job's time limit, the OOM killer).
//!
//! `offload run` starts it once ([`start`]): its own binary again, as
//! `offload __supervise`, in a process group of its own (so that a Ctrl-C at
//! the terminal or a kill of Offload's group does not reach it), with a pipe
//! from Offload as its stdin. [`super::run`] writes one line per process
//! group it starts — `+PGID kill` for a batch, `+PGID term` for a lifecycle
//! command — and `-PGID` once the group is gone. When the pipe closes,
//! Offload has exited, however it exited: the watchdog then SIGKILLs every
//! batch group still registered, SIGTERMs every lifecycle group (its clean-up
//! trap may be removing a half-made sandbox), SIGKILLs those after the grace
//! period, and exits. After a normal run nothing is registered and it exits
//! at once.
//!
//! Why not `PR_SET_PDEATHSIG`: it reaches only the direct child (the `sh -c`
//! of a batch), and fires when the *thread* that forked it ends; the batch's
//! runner and everything it started (pytest-xdist workers, a server a test
//! started) would live on, orphaned. A group-wide kill from a process that
//! learns of the death through a pipe's end-of-file covers every member of
//! the group, whatever way Offload died.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{kill_group, OnTimeout};

/// The first argument that makes the binary the watchdog.
pub const ARG: &str = "__supervise";

struct Watchdog {
    pipe: ChildStdin,
    child: Child,
}

static WATCHDOG: Mutex<Option<Watchdog>> = Mutex::new(None);

/// Ends the watchdog when dropped: closes its pipe and waits for it, so that
/// it does not outlive a run that ended normally (it exits at once then:
/// nothing is registered). A run that ends without dropping it (killed, or
/// `exit` on a third Ctrl-C) leaves it to do its job.
pub struct WatchdogGuard(());

impl Drop for WatchdogGuard {
    fn drop(&mut self) {
        let watchdog = WATCHDOG.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(Watchdog { pipe, mut child }) = watchdog {
            drop(pipe);
            let _ = child.wait();
        }
    }
}

/// Start the watchdog for this process, once. Without one (it could not be
/// started: a warning says so), children die with Offload only when Offload
/// gets to stop them itself.
#[must_use = "the watchdog ends when the guard is dropped"]
pub fn start() -> WatchdogGuard {
    let mut slot = WATCHDOG.lock().unwrap_or_else(|e| e.into_inner());
    if slot.is_some() {
        return WatchdogGuard(());
    }
    use std::os::unix::process::CommandExt;
    let spawned = Command::new("/proc/self/exe")
        .arg(ARG)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        // Inherited: its last words reach the user, and whoever reads
        // Offload's stderr to the end also waits for the watchdog.
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn();
    match spawned {
        Ok(mut child) => {
            let pipe = child.stdin.take().expect("stdin is piped");
            *slot = Some(Watchdog { pipe, child });
        }
        Err(e) => crate::console::errln!(
            "warning: cannot start the process watchdog ({}): if Offload is killed, its batches may outlive it",
            crate::error::io_message(&e)
        ),
    }
    WatchdogGuard(())
}

/// The watchdog's PID, when there is one (it is no orphan to be killed).
pub fn pid() -> Option<u32> {
    WATCHDOG
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(|w| w.child.id())
}

/// Tell the watchdog that process group `pgid` started.
pub fn register(pgid: i32, on_timeout: OnTimeout) {
    let how = match on_timeout {
        OnTimeout::Kill => "kill",
        OnTimeout::Terminate => "term",
    };
    send(&format!("+{pgid} {how}\n"));
}

/// Tell the watchdog that process group `pgid` is gone.
pub fn unregister(pgid: i32) {
    send(&format!("-{pgid}\n"));
}

fn send(line: &str) {
    let mut slot = WATCHDOG.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(w) = slot.as_mut() {
        // A short line into a pipe: one write, never a partial one.
        if w.pipe.write_all(line.as_bytes()).is_err() {
            crate::console::errln!("warning: the process watchdog is gone: if Offload is killed, its batches may outlive it");
            *slot = None;
        }
    }
}

/// The registered groups after reading `input` to its end.
fn registered(input: impl BufRead) -> HashMap<i32, OnTimeout> {
    let mut groups = HashMap::new();
    for line in input.lines() {
        let Ok(line) = line else { break };
        if let Some(rest) = line.strip_prefix('+') {
            let mut words = rest.split(' ');
            let pgid = words.next().and_then(|p| p.parse::<i32>().ok());
            let how = match words.next() {
                Some("term") => OnTimeout::Terminate,
                _ => OnTimeout::Kill,
            };
            if let Some(pgid) = pgid {
                groups.insert(pgid, how);
            }
        } else if let Some(pgid) = line.strip_prefix('-').and_then(|p| p.parse::<i32>().ok()) {
            groups.remove(&pgid);
        }
    }
    groups
}

/// The body of `offload __supervise`.
pub fn main() -> ExitCode {
    // SAFETY: setting signal dispositions to SIG_IGN, before any thread.
    unsafe {
        // Whatever reaches Offload's terminal is Offload's to handle; the
        // watchdog must live until the pipe says Offload is gone.
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGQUIT, libc::SIG_IGN);
    }
    let groups = registered(std::io::stdin().lock());
    if groups.is_empty() {
        return ExitCode::SUCCESS;
    }
    crate::console::errln!(
        "offload: the run ended without stopping {} process group(s); stopping them now",
        groups.len()
    );
    stop(&groups, crate::cancel::grace_period());
    ExitCode::SUCCESS
}

/// SIGKILL the `Kill` groups, SIGTERM the `Terminate` ones and give them
/// `grace` to finish (SIGKILL after it).
fn stop(groups: &HashMap<i32, OnTimeout>, grace: Duration) {
    let mut terminated = Vec::new();
    for (&pgid, &how) in groups {
        match how {
            OnTimeout::Kill => kill_group(pgid, libc::SIGKILL),
            OnTimeout::Terminate => {
                kill_group(pgid, libc::SIGTERM);
                terminated.push(pgid);
            }
        }
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && terminated.iter().any(|&g| group_exists(g)) {
        std::thread::sleep(crate::cancel::POLL_INTERVAL);
    }
    for pgid in terminated {
        kill_group(pgid, libc::SIGKILL);
    }
}

/// Whether group `pgid` still has a member that is not a zombie. A
/// zombie counts for `kill(-pgid, 0)` until someone reaps it, and the
/// process that would (init, once Offload is gone) may be slow to, or, in a
/// container whose PID 1 is not an init, never do it: a clean-up that has
/// finished must not be waited for the whole grace period.
fn group_exists(pgid: i32) -> bool {
    // SAFETY: signal 0 only checks that the group exists.
    if pgid <= 1 || unsafe { libc::kill(-pgid, 0) } != 0 {
        return false;
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return true;
    };
    dir.flatten().any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // After the parenthesised command name: state, ppid, pgrp.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            return false;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1).and_then(|p| p.parse::<i32>().ok());
        pgrp == Some(pgid) && !matches!(state, Some("Z" | "X"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_counts_from_its_start_to_its_end() {
        let input = "+100 kill\n+200 term\n-100\n+300 kill\n+bad\n-x\n";
        let groups = registered(input.as_bytes());
        assert_eq!(groups.len(), 2, "{groups:?}");
        assert_eq!(groups[&200], OnTimeout::Terminate);
        assert_eq!(groups[&300], OnTimeout::Kill);
    }

    #[test]
    fn stop_kills_batches_and_lets_lifecycle_groups_clean_up() {
        use std::os::unix::process::CommandExt;
        let dir = std::env::temp_dir().join(format!("offload-watchdog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mark = dir.join("cleaned");
        let ready = dir.join("ready");
        let spawn = |script: String| {
            Command::new("/bin/sh")
                .arg("-c")
                .arg(script)
                .process_group(0)
                .spawn()
                .unwrap()
        };
        let batch = spawn("sleep 30 & wait".into());
        let create = spawn(format!(
            "trap 'sleep 0.2; touch {}; exit 0' TERM; touch {}; sleep 30 & wait",
            mark.display(),
            ready.display()
        ));
        while !ready.exists() {
            std::thread::sleep(Duration::from_millis(10));
        }
        let groups = HashMap::from([
            (batch.id() as i32, OnTimeout::Kill),
            (create.id() as i32, OnTimeout::Terminate),
        ]);
        // Reaped as they end, as init reaps them once Offload is gone (a
        // zombie leader would keep its group in existence).
        let reapers = [batch, create].map(|mut c| std::thread::spawn(move || c.wait()));
        // A grace period far longer than the trap needs, even on a loaded
        // machine: stop must end when the group is gone, not at the grace.
        let started = Instant::now();
        stop(&groups, Duration::from_secs(30));
        for r in reapers {
            let _ = r.join();
        }
        assert!(mark.exists(), "the trap did not run");
        assert!(started.elapsed() < Duration::from_secs(30));
        // Orphaned members are gone (perhaps not yet reaped).
        let deadline = Instant::now() + Duration::from_secs(5);
        while groups.keys().any(|&g| group_exists(g)) {
            assert!(Instant::now() < deadline, "a group survived: {groups:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
