//! One cancellation path for Ctrl-C, `--fail-fast` and fatal errors.
//!
//! A [`Cancel`] is a cheap, cloneable handle on a shared level:
//! `Running` → `Graceful` (stop dispatching; running batches get SIGTERM, a
//! short grace period, then SIGKILL) → `Immediate` (kill now). Blocking waits
//! poll it, so every thread notices within one poll interval.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CancelLevel {
    Running = 0,
    /// Stop dispatching; terminate running batches with a grace period.
    Graceful = 1,
    /// Kill everything at once (a second Ctrl-C).
    Immediate = 2,
}

/// How long a terminated process group gets between SIGTERM and SIGKILL:
/// 2 s, or `OFFLOAD_GRACE_PERIOD_SECS`.
pub fn grace_period() -> Duration {
    static GRACE: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *GRACE.get_or_init(|| {
        std::env::var("OFFLOAD_GRACE_PERIOD_SECS")
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or(Duration::from_secs(2))
    })
}

/// How often blocking waits look at the cancellation level.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

#[derive(Clone, Debug, Default)]
pub struct Cancel {
    level: Arc<AtomicU8>,
    /// Set by [`Cancel::interrupt`]: the user asked to stop (exit code 130),
    /// as opposed to `--fail-fast` or a fatal error.
    interrupted: Arc<std::sync::atomic::AtomicBool>,
}

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn level(&self) -> CancelLevel {
        match self.level.load(Ordering::SeqCst) {
            0 => CancelLevel::Running,
            1 => CancelLevel::Graceful,
            _ => CancelLevel::Immediate,
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.level() != CancelLevel::Running
    }

    /// Raise the level (never lowers it).
    pub fn raise(&self, to: CancelLevel) {
        self.level.fetch_max(to as u8, Ordering::SeqCst);
    }

    /// One more step: Running → Graceful → Immediate. Returns the new level.
    /// This is what a Ctrl-C does.
    pub fn escalate(&self) -> CancelLevel {
        let prev = self
            .level
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| Some((l + 1).min(2)))
            .unwrap_or(2);
        match prev {
            0 => CancelLevel::Graceful,
            _ => CancelLevel::Immediate,
        }
    }

    /// A Ctrl-C: escalate, and remember that the user interrupted the run.
    pub fn interrupt(&self) -> CancelLevel {
        self.interrupted.store(true, Ordering::SeqCst);
        self.escalate()
    }

    pub fn was_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// Sleep up to `d`, returning early (true) if cancelled meanwhile.
    pub fn sleep(&self, d: Duration) -> bool {
        let deadline = std::time::Instant::now() + d;
        loop {
            if self.is_cancelled() {
                return true;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return false;
            }
            std::thread::sleep(POLL_INTERVAL.min(deadline - now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escalates_and_never_lowers() {
        let c = Cancel::new();
        assert_eq!(c.level(), CancelLevel::Running);
        assert_eq!(c.escalate(), CancelLevel::Graceful);
        c.raise(CancelLevel::Running);
        assert_eq!(c.level(), CancelLevel::Graceful);
        assert_eq!(c.escalate(), CancelLevel::Immediate);
        assert_eq!(c.escalate(), CancelLevel::Immediate);
    }
}
