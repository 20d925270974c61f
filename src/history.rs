//! Timing history: what the previous runs say each test takes.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// Expected durations by canonical test ID, and the learned per-batch
/// start-up cost.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub durations: HashMap<String, Duration>,
    pub batch_startup: Option<Duration>,
}

impl History {
    /// Read the previous run's merged JUnit report (canonical IDs in `name`).
    /// A missing or unreadable file is an empty history.
    pub fn load(junit_path: &Path) -> History {
        let mut h = History::default();
        if let Ok(text) = std::fs::read_to_string(junit_path) {
            if let Ok(cases) = crate::junit::read::parse(&text) {
                for c in cases {
                    let d = Duration::from_secs_f64(c.time.max(0.0));
                    let e = h.durations.entry(c.name).or_default();
                    *e = (*e).max(d);
                }
            }
        }
        h
    }

    pub fn expected(&self, id: &str) -> Option<Duration> {
        self.durations.get(id).copied()
    }
}
