//! Timing history: what earlier runs say each test takes, and what a batch
//! costs to start.
//!
//! Two sources, read before a run:
//! * the previous run's merged JUnit report (`{output_dir}/{junit_file}`,
//!   canonical IDs in `name`), as the original README promises;
//! * the history file, [`path_for`] the config: `offload.toml` keeps its
//!   history in `offload.history.tsv` in the project's working directory
//!   (by default the config's). It survives a wiped `test-results/` (CI),
//!   and is meant to be committed.
//!
//! The history file is line-oriented and sorted, one line per test, so that
//! git can merge it: every line is `kind<TAB>key<TAB>milliseconds<TAB>missed`
//! with `kind` = `test` (key: the canonical ID), `startup` (key: a group
//! name, or `*` for batches of mixed groups; the per-batch start-up cost) or
//! `error` (key `*`: how far off the durations were in the last run, in per
//! mille; the scheduler sizes its tail of small batches by it); `missed`
//! counts the runs since the key was last seen. Reading tolerates anything:
//! a damaged line, a conflict marker, and duplicate keys (their durations are
//! averaged) — so a merge conflict is resolved by keeping both sides, and
//! `offload.history.tsv merge=union` in `.gitattributes` makes git do that
//! by itself.
//!
//! After a run, [`save`] folds the run's [`RunTimings`] into the file: a
//! value moves only when a new measurement is off by more than 10%
//! (then halfway towards it), so a stable suite leaves the file unchanged and
//! merge conflicts stay rare. Tests not discovered for [`MAX_MISSED_RUNS`]
//! runs are dropped, and the file holds at most [`MAX_ENTRIES`] lines.
//! Concurrent runs are safe: the file is replaced atomically (a temporary
//! file renamed over it) after re-reading it under an advisory lock on its
//! directory, so neither a torn file nor a lost update can happen (without
//! `flock`, e.g. on some network file systems, a lost update is possible;
//! never a torn file).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A key not seen for more than this many runs is dropped.
pub const MAX_MISSED_RUNS: u32 = 10;
/// At most this many lines; beyond, the keys missed the longest go first.
pub const MAX_ENTRIES: usize = 200_000;
/// The start-up key for batches recorded without a group (batches may mix
/// groups); used for every group without a start-up cost of its own.
pub const ANY_GROUP: &str = "*";
/// Duration assumed for every test when nothing at all is known (only the
/// ratios between tests matter to the scheduler then, and they are all 1).
const NOMINAL: Duration = Duration::from_secs(1);

/// The history file of a config: `<config stem>.history.tsv` in the
/// project's local working directory (by default the config's directory), so
/// `offload.toml` keeps its history in `offload.history.tsv` beside it and
/// two configs in one project keep theirs apart.
pub fn path_for(config: &crate::config::Config) -> PathBuf {
    path_in(&config.local_working_dir(), &config.path)
}

fn path_in(dir: &Path, config_path: &Path) -> PathBuf {
    let stem = config_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "offload".into());
    dir.join(format!("{stem}.history.tsv"))
}

/// Expected durations by canonical test ID, and learned start-up costs by
/// group.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub durations: HashMap<String, Duration>,
    pub startup: BTreeMap<String, Duration>,
    /// How far off the durations were last time, as a fraction.
    pub estimate_error: Option<f64>,
}

/// The scheduler's view of a run's tests, from [`History::estimate`].
#[derive(Clone, Debug, Default)]
pub struct Estimates {
    /// Per test, in the order given: its history, else its group's typical
    /// duration (median of the group's known tests; of all known tests when
    /// the group has none; a nominal 1 s when nothing is known).
    pub durations: Vec<Duration>,
    /// Per test: whether the duration is the test's own history.
    pub known: Vec<bool>,
    /// Expected start-up cost of a batch: the learned costs of the run's
    /// groups, weighted by their number of tests. `None` when never measured.
    pub startup: Option<Duration>,
    /// How far off the history's durations were last time (a fraction), for
    /// [`crate::schedule::PlanParams::estimate_error`].
    pub estimate_error: Option<f64>,
}

impl Estimates {
    /// (tests with a duration from history, all tests), for the log line the
    /// run prints.
    pub fn coverage(&self) -> (usize, usize) {
        (self.known.iter().filter(|&&k| k).count(), self.known.len())
    }
}

impl History {
    /// Read the history file, then fill in from the previous run's JUnit the
    /// tests the file does not know. Missing or damaged files give what could
    /// be read (possibly nothing); this never fails.
    pub fn load(junit_path: &Path, history_path: &Path) -> History {
        let file = read_file(history_path);
        let mut h = History::default();
        for ((kind, key), e) in file.entries {
            match kind {
                Kind::Error => h.estimate_error = Some(per_mille(e.value)),
                Kind::Startup => {
                    h.startup.insert(key, e.value);
                }
                Kind::Test => {
                    h.durations.insert(key, e.value);
                }
            }
        }
        for (id, d) in junit_durations(junit_path) {
            h.durations.entry(id).or_insert(d);
        }
        h
    }

    pub fn expected(&self, id: &str) -> Option<Duration> {
        self.durations.get(id).copied()
    }

    /// Expected durations for a run's tests, given as (ID, group) pairs.
    pub fn estimate<'a>(&self, tests: impl IntoIterator<Item = (&'a str, &'a str)>) -> Estimates {
        let tests: Vec<(&str, &str)> = tests.into_iter().collect();
        let own: Vec<Option<Duration>> = tests.iter().map(|(id, _)| self.expected(id)).collect();
        let mut by_group: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
        let mut all = Vec::new();
        for ((_, group), d) in tests.iter().zip(&own) {
            let entry = by_group.entry(group).or_default();
            if let Some(d) = d {
                entry.push(*d);
                all.push(*d);
            }
        }
        let overall = median(&mut all).unwrap_or(NOMINAL);
        let typical: BTreeMap<&str, Duration> = by_group
            .into_iter()
            .map(|(g, mut ds)| (g, median(&mut ds).unwrap_or(overall)))
            .collect();
        let durations = tests
            .iter()
            .zip(&own)
            .map(|((_, g), d)| d.unwrap_or(typical[g]))
            .collect();

        let (mut weighted, mut count) = (0u128, 0u128);
        let mut counts: BTreeMap<&str, u128> = BTreeMap::new();
        for (_, g) in &tests {
            *counts.entry(g).or_default() += 1;
        }
        for (g, n) in counts {
            if let Some(s) = self.startup.get(g).or(self.startup.get(ANY_GROUP)) {
                weighted += s.as_nanos() * n;
                count += n;
            }
        }
        // With nothing known, durations are nominal: a real start-up cost
        // cannot be weighed against them.
        let startup = (count > 0 && !all.is_empty())
            .then(|| Duration::from_nanos(u64::try_from(weighted / count).unwrap_or(u64::MAX)));
        Estimates {
            durations,
            known: own.iter().map(Option::is_some).collect(),
            startup,
            estimate_error: self.estimate_error,
        }
    }
}

/// The `error` line stores a fraction as per mille in the milliseconds
/// column: 1 ms of "duration" is 0.001.
fn per_mille(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn median(v: &mut [Duration]) -> Option<Duration> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(v[v.len() / 2])
}

/// Durations from a merged JUnit report (the longest when an ID repeats).
fn junit_durations(path: &Path) -> HashMap<String, Duration> {
    let mut out: HashMap<String, Duration> = HashMap::new();
    let Ok(bytes) = std::fs::read(path) else {
        return out;
    };
    let Ok(cases) = crate::junit::read::parse(&String::from_utf8_lossy(&bytes)) else {
        return out;
    };
    for c in cases {
        if !c.time.is_finite() || c.time < 0.0 {
            continue;
        }
        let d = Duration::from_secs_f64(c.time.min(1e9));
        let e = out.entry(c.name).or_default();
        *e = (*e).max(d);
    }
    out
}

/// What one run measured, to be folded into the history file by [`save`].
#[derive(Clone, Debug, Default)]
pub struct RunTimings {
    discovered: Vec<String>,
    tests: HashMap<String, Duration>,
    startup_samples: BTreeMap<String, Vec<Duration>>,
}

impl RunTimings {
    /// Start recording a run whose discovery found `discovered` (canonical
    /// IDs): those tests count as seen even if they never got to run.
    pub fn new(discovered: impl IntoIterator<Item = String>) -> RunTimings {
        RunTimings {
            discovered: discovered.into_iter().collect(),
            ..RunTimings::default()
        }
    }

    /// One attempt of test `id` took `duration` (its JUnit time). Several
    /// attempts keep the longest. Record only attempts with a real result
    /// (or a timeout, as the timeout).
    pub fn test(&mut self, id: &str, duration: Duration) {
        let e = self.tests.entry(id.to_string()).or_default();
        *e = (*e).max(duration);
    }

    /// A batch of `group`'s tests ([`ANY_GROUP`] when it mixes groups or the
    /// group is not known) took `wall` from start to finish, and its
    /// tests reported `tests_total` between them: the difference is its
    /// start-up cost. Record only batches that ended normally (not timed out,
    /// cancelled or failed for infrastructure reasons).
    pub fn batch(&mut self, group: &str, wall: Duration, tests_total: Duration) {
        self.startup_samples
            .entry(group.to_string())
            .or_default()
            .push(wall.saturating_sub(tests_total));
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    /// The history's own error (key `*`): how far off the durations were
    /// in the last run that measured it, in per mille (mean absolute error
    /// over total duration).
    Error,
    Startup,
    Test,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Error => "error",
            Kind::Startup => "startup",
            Kind::Test => "test",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Entry {
    value: Duration,
    missed: u32,
}

/// The history file's contents.
#[derive(Debug, Default, PartialEq)]
struct HistoryFile {
    entries: BTreeMap<(Kind, String), Entry>,
    /// Lines that could not be read (reported by tests; otherwise ignored).
    skipped: usize,
}

const HEADER: &str = "# offload timing history, format 1 (see README, \"Scheduling\"): kind<TAB>key<TAB>milliseconds<TAB>runs-missed\n";

fn read_file(path: &Path) -> HistoryFile {
    match std::fs::read(path) {
        Ok(bytes) => parse(&String::from_utf8_lossy(&bytes)),
        Err(_) => HistoryFile::default(),
    }
}

/// Parse history text. Duplicate keys (both sides of a merge) are combined:
/// mean duration, fewest runs missed.
fn parse(text: &str) -> HistoryFile {
    let mut dups: BTreeMap<(Kind, String), (u128, u32, u32)> = BTreeMap::new();
    let mut skipped = 0;
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, entry)) = parse_line(line) else {
            skipped += 1;
            continue;
        };
        let e = dups.entry(key).or_insert((0, 0, u32::MAX));
        e.0 += entry.value.as_nanos();
        e.1 += 1;
        e.2 = e.2.min(entry.missed);
    }
    let entries = dups
        .into_iter()
        .map(|(k, (sum, n, missed))| {
            let nanos = u64::try_from(sum / n as u128).unwrap_or(u64::MAX);
            (
                k,
                Entry {
                    value: Duration::from_nanos(nanos),
                    missed,
                },
            )
        })
        .collect();
    HistoryFile { entries, skipped }
}

fn parse_line(line: &str) -> Option<((Kind, String), Entry)> {
    let mut fields = line.trim_end_matches('\r').split('\t');
    let kind = match fields.next()? {
        "test" => Kind::Test,
        "startup" => Kind::Startup,
        "error" => Kind::Error,
        _ => return None,
    };
    let key = unescape(fields.next()?)?;
    let ms: f64 = fields.next()?.parse().ok()?;
    let missed: u32 = fields.next()?.parse().ok()?;
    if fields.next().is_some() || !ms.is_finite() || !(0.0..1e12).contains(&ms) || key.is_empty() {
        return None;
    }
    Some((
        (kind, key),
        Entry {
            value: Duration::from_secs_f64(ms / 1000.0),
            missed,
        },
    ))
}

fn render(file: &HistoryFile) -> String {
    let mut out = String::with_capacity(HEADER.len() + file.entries.len() * 64);
    out.push_str(HEADER);
    for ((kind, key), e) in &file.entries {
        let ms = e.value.as_secs_f64() * 1000.0;
        out.push_str(&format!(
            "{}\t{}\t{:.1}\t{}\n",
            kind.as_str(),
            escape(key),
            ms,
            e.missed
        ));
    }
    out
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            '\\' => '\\',
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            _ => return None,
        });
    }
    Some(out)
}

fn abs_diff(a: Duration, b: Duration) -> Duration {
    a.max(b) - a.min(b)
}

/// Move `old` towards `new` only when they differ by more than `rel` of
/// `old` (and at least `floor`): then halfway.
fn settle(old: Duration, new: Duration, rel: f64, floor: Duration) -> Duration {
    let tolerance = old.mul_f64(rel).max(floor);
    if abs_diff(old, new) <= tolerance {
        old
    } else {
        (old + new) / 2
    }
}

/// Fold one run into history text (pure: the I/O is in [`save`]).
fn merge_run(mut file: HistoryFile, run: &RunTimings) -> HistoryFile {
    let mut seen: std::collections::HashSet<(Kind, &str)> = Default::default();
    // How far off the estimates were: Σ|measured − expected| / Σexpected over
    // the tests the file knew (at least 5 of them, to mean something).
    let (mut off, mut total, mut n) = (0f64, 0f64, 0);
    for (id, d) in &run.tests {
        if let Some(e) = file.entries.get(&(Kind::Test, id.clone())) {
            off += abs_diff(e.value, *d).as_secs_f64();
            total += e.value.as_secs_f64();
            n += 1;
        }
    }
    if n >= 5 && total > 0.0 {
        let error = Duration::from_secs_f64((off / total).min(10.0));
        seen.insert((Kind::Error, ANY_GROUP));
        let e = file
            .entries
            .entry((Kind::Error, ANY_GROUP.to_string()))
            .or_insert(Entry {
                value: error,
                missed: 0,
            });
        e.value = settle(e.value, error, 0.25, Duration::from_millis(5));
    }
    for id in &run.discovered {
        seen.insert((Kind::Test, id));
    }
    for (id, &d) in &run.tests {
        seen.insert((Kind::Test, id));
        let e = file
            .entries
            .entry((Kind::Test, id.clone()))
            .or_insert(Entry {
                value: d,
                missed: 0,
            });
        e.value = settle(e.value, d, 0.10, Duration::from_millis(1));
    }
    for (group, samples) in &run.startup_samples {
        let mut samples = samples.clone();
        let Some(m) = median(&mut samples) else {
            continue;
        };
        seen.insert((Kind::Startup, group));
        let e = file
            .entries
            .entry((Kind::Startup, group.clone()))
            .or_insert(Entry {
                value: m,
                missed: 0,
            });
        e.value = settle(e.value, m, 0.20, Duration::from_millis(2));
    }
    file.entries.retain(|(kind, key), e| {
        if seen.contains(&(*kind, key.as_str())) {
            e.missed = 0;
        } else {
            e.missed += 1;
        }
        e.missed <= MAX_MISSED_RUNS
    });
    if file.entries.len() > MAX_ENTRIES {
        let mut by_age: Vec<(u32, (Kind, String))> = file
            .entries
            .iter()
            .map(|(k, e)| (e.missed, k.clone()))
            .collect();
        by_age.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let excess = file.entries.len() - MAX_ENTRIES;
        for (_, k) in by_age.into_iter().take(excess) {
            file.entries.remove(&k);
        }
    }
    file.skipped = 0;
    file
}

/// Fold `run` into the history file at `path`: lock the directory, re-read
/// the file (another run may have saved since this one loaded it), merge,
/// write a temporary file and rename it over the old one.
pub fn save(path: &Path, run: &RunTimings) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let _lock = DirLock::acquire(&dir);
    let merged = merge_run(read_file(path), run);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "history".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(render(&merged).as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// An advisory exclusive lock on a directory (`flock`), released on drop.
/// Best effort: if the lock cannot be had within a few seconds, or the file
/// system does not support it, the save goes ahead without it.
struct DirLock(Option<std::fs::File>);

impl DirLock {
    fn acquire(dir: &Path) -> DirLock {
        use std::os::unix::io::AsRawFd;
        let Ok(f) = std::fs::File::open(dir) else {
            return DirLock(None);
        };
        for _ in 0..300 {
            // SAFETY: flock on a file descriptor we own.
            let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                return DirLock(Some(f));
            }
            if std::io::Error::last_os_error().raw_os_error() != Some(libc::EWOULDBLOCK) {
                return DirLock(None);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        DirLock(None)
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        use std::os::unix::io::AsRawFd;
        if let Some(f) = &self.0 {
            // SAFETY: unlocking a descriptor we own (closing it would too).
            unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_UN) };
        }
    }
}

#[cfg(test)]
mod tests;
