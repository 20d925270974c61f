//! Timing history: what earlier runs say each test takes, and what a batch
//! costs to start.
//!
//! Two sources, read before a run:
//! * the previous run's merged JUnit report (`{output_dir}/{junit_file}`,
//!   canonical IDs in `name`), as the original README promises;
//! * the history file, [`path_for`] the config: `offload.toml` keeps its
//!   history in `offload.history.tsv` beside it. It survives a wiped
//!   `test-results/` (CI), and is meant to be committed.
//!
//! The history file is line-oriented and sorted, one line per test, so that
//! git can merge it: every line is `kind<TAB>key<TAB>milliseconds<TAB>missed`
//! with `kind` = `test` (key: the canonical ID), `startup` (key: a group
//! name, learned from batches of that group's tests only, or `*` for the run
//! as a whole; the per-batch fixed cost, see [`RunTimings::batch`]),
//! `pertest` (key `*`: what each test adds to a batch beyond its own JUnit
//! time — the runner's bookkeeping and reporting — where batches could tell
//! it), `concurrency` (key: a group, or `*`; how many tests a batch runs at
//! once, in per mille, for runners that run them side by side) or
//! `error` (key `*`: how far off the durations were in the last run, in per
//! mille; the scheduler sizes its tail of small batches by it) or `ready`
//! (key: a rank k = 1, 2, …; how long after the run started creating
//! sandboxes the k-th of them was ready: remote sandboxes come up one after
//! another, and the scheduler gives a late one less work); `missed`
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

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

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
/// config's directory (`offload.toml` → `offload.history.tsv` beside it), so
/// two configs in one project keep theirs apart. Not the working directory:
/// that may be shared by several projects' configs (test fixtures, examples).
pub fn path_for(config: &crate::config::Config) -> PathBuf {
    path_in(config.base_dir(), &config.path)
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
    pub durations: FxHashMap<String, Duration>,
    pub startup: BTreeMap<String, Duration>,
    /// What each test adds to its batch beyond its JUnit time, by group.
    pub per_test: BTreeMap<String, Duration>,
    /// How many tests a batch runs at once, by group (runners that run
    /// them side by side).
    pub concurrency: BTreeMap<String, f64>,
    /// How far off the durations were last time, as a fraction.
    pub estimate_error: Option<f64>,
    /// When the k-th sandbox was ready (index k − 1), from the moment the
    /// run started creating them.
    pub ready: Vec<Duration>,
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
    /// What each test adds to its batch beyond its own duration (weighted
    /// the same way); zero when never measured.
    pub per_test: Duration,
    /// How many tests a batch runs at once (weighted the same way); 1 for
    /// runners that run them one after another, or when never measured.
    pub concurrency: f64,
    /// How far off the history's durations were last time (a fraction), for
    /// [`crate::schedule::PlanParams::estimate_error`].
    pub estimate_error: Option<f64>,
    /// When each sandbox is expected to be ready, earliest first (empty
    /// when never measured, or when the durations are not known: nominal
    /// durations cannot be weighed against real delays).
    pub ready: Vec<Duration>,
}

impl Estimates {
    /// (tests with a duration from history, all tests), for the log line the
    /// run prints.
    pub fn coverage(&self) -> (usize, usize) {
        (self.known.iter().filter(|&&k| k).count(), self.known.len())
    }
}

impl History {
    /// The history file, then the last JUnit report (the tests' own
    /// reading, as a run does it).
    #[cfg(test)]
    pub fn load<'a>(
        junit_path: &Path,
        history_path: &Path,
        ids: impl Iterator<Item = &'a str>,
    ) -> History {
        History::from_file(history_path).with_last_report(junit_path, ids)
    }

    /// This history, filled in from the previous run's JUnit for the tests
    /// it does not know — read only when one of `ids` (the run's tests) is
    /// missing from the file: usually the file knows them all, and the
    /// report would be parsed for nothing. Missing or damaged files give
    /// what could be read (possibly nothing); this never fails.
    pub fn with_last_report<'a>(
        mut self,
        junit_path: &Path,
        mut ids: impl Iterator<Item = &'a str>,
    ) -> History {
        if ids.any(|id| !self.durations.contains_key(id)) {
            for (id, d) in junit_durations(junit_path) {
                self.durations.entry(id).or_insert(d);
            }
        }
        self
    }

    /// The history file alone, without the last JUnit report: what every
    /// job of a CI matrix sees alike (the committed file), where the last
    /// report differs from job to job (`--shard`).
    pub fn from_file(history_path: &Path) -> History {
        let [concurrency, errors, per_tests, ready, startups, tests] = read_file(history_path).maps;
        let values = |map: FxHashMap<String, Entry>| -> BTreeMap<String, Duration> {
            map.into_iter().map(|(k, e)| (k, e.value)).collect()
        };
        History {
            durations: tests.into_iter().map(|(k, e)| (k, e.value)).collect(),
            startup: values(startups),
            per_test: values(per_tests),
            concurrency: concurrency
                .into_iter()
                .map(|(k, e)| (k, per_mille(e.value)))
                .collect(),
            estimate_error: errors.get(ANY_GROUP).map(|e| per_mille(e.value)),
            ready: by_rank(&ready),
        }
    }

    pub fn expected(&self, id: &str) -> Option<Duration> {
        match self.durations.get(id) {
            Some(d) => Some(*d),
            // Durations from a JUnit report are keyed by the normal form of
            // the ID that the report could carry (see `junit::id`).
            None => match crate::junit::id::normalize(id) {
                std::borrow::Cow::Owned(normal) => self.durations.get(&normal).copied(),
                std::borrow::Cow::Borrowed(_) => None,
            },
        }
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

        let mut counts: BTreeMap<&str, u128> = BTreeMap::new();
        for (_, g) in &tests {
            *counts.entry(g).or_default() += 1;
        }
        // Each group's learned value (else the mixed-batch one), weighted by
        // the group's number of tests.
        let weighted = |map: &BTreeMap<String, Duration>| {
            let (mut sum, mut count) = (0u128, 0u128);
            for (g, &n) in &counts {
                if let Some(v) = map.get(*g).or(map.get(ANY_GROUP)) {
                    sum += v.as_nanos() * n;
                    count += n;
                }
            }
            (count > 0)
                .then(|| Duration::from_nanos(u64::try_from(sum / count).unwrap_or(u64::MAX)))
        };
        // With nothing known, durations are nominal: a real start-up cost
        // cannot be weighed against them.
        let startup = weighted(&self.startup).filter(|_| !all.is_empty());
        let per_test = weighted(&self.per_test)
            .filter(|_| !all.is_empty())
            .unwrap_or_default();
        let concurrency: BTreeMap<String, Duration> = self
            .concurrency
            .iter()
            .map(|(k, &c)| (k.clone(), Duration::from_secs_f64(c.clamp(1.0, 1e6))))
            .collect();
        let concurrency = weighted(&concurrency).map_or(1.0, |c| c.as_secs_f64().max(1.0));
        Estimates {
            durations,
            known: own.iter().map(Option::is_some).collect(),
            startup,
            per_test,
            concurrency,
            estimate_error: self.estimate_error,
            ready: if all.is_empty() {
                Vec::new()
            } else {
                self.ready.clone()
            },
        }
    }
}

/// The `ready` entries in rank order, as far as the ranks run 1, 2, 3, …
/// without a gap.
fn by_rank(map: &FxHashMap<String, Entry>) -> Vec<Duration> {
    (1..)
        .map_while(|k: usize| map.get(&k.to_string()).map(|e| e.value))
        .collect()
}

/// The `error` and `concurrency` lines store a number as per mille in the
/// milliseconds column: 1 ms of "duration" is 0.001.
fn per_mille(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The runner's cost per test beyond its JUnit time, from the batches of
/// one run, when they can tell it: the gaps between consecutive tests where
/// the runner wrote when each started (measured, no fit); otherwise the
/// slope of overhead against batch size between batches of one group whose
/// sizes differ at least twofold (the median of those pairwise slopes, which
/// a noisy batch or two cannot drag far), or failing that between batches
/// of any groups (one big batch per sandbox for one group, small ones for
/// another). `None` when no batch tells it — batches all of one size cannot
/// tell a start-up from a per-test cost.
fn per_test_from(samples: &BTreeMap<&str, Vec<Said>>) -> Option<Duration> {
    let mut gaps: Vec<Duration> = samples
        .values()
        .flatten()
        .filter_map(|s| match *s {
            Said::Measured { gap, .. } => gap,
            Said::Overhead { .. } => None,
        })
        .collect();
    if let Some(gap) = median(&mut gaps) {
        return Some(gap);
    }
    let overheads = |group: &[Said]| -> Vec<(f64, usize)> {
        group
            .iter()
            .filter_map(|s| match *s {
                Said::Overhead { overhead, tests } => Some((overhead.as_secs_f64(), tests)),
                Said::Measured { .. } => None,
            })
            .collect()
    };
    let within: Vec<Vec<(f64, usize)>> = samples.values().map(|g| overheads(g)).collect();
    let across: Vec<(f64, usize)> = within.iter().flatten().copied().collect();
    let slope = median_slope(&within).or_else(|| median_slope(std::slice::from_ref(&across)))?;
    // No batch can have spent less than nothing on starting.
    let ceiling = across
        .iter()
        .filter(|&&(_, n)| n > 0)
        .map(|&(o, n)| o / n as f64)
        .fold(f64::INFINITY, f64::min);
    Some(Duration::from_secs_f64(slope.clamp(0.0, ceiling.max(0.0))))
}

/// The median slope of overhead against size over the pairs of samples (of
/// one set each) whose sizes differ at least twofold, and by at least 4.
fn median_slope(sets: &[Vec<(f64, usize)>]) -> Option<f64> {
    let mut slopes = Vec::new();
    for set in sets {
        // Pairs grow with the square of the batches: 256 of them are plenty.
        let set: Vec<(f64, usize)> = set
            .iter()
            .step_by(set.len().div_ceil(256).max(1))
            .copied()
            .collect();
        for (i, &a) in set.iter().enumerate() {
            for &b in &set[i + 1..] {
                let (lo, hi) = if a.1 <= b.1 { (a, b) } else { (b, a) };
                if hi.1 >= 2 * lo.1.max(1) && hi.1 - lo.1 >= 4 {
                    slopes.push((hi.0 - lo.0) / (hi.1 - lo.1) as f64);
                }
            }
        }
    }
    slopes.sort_by(f64::total_cmp);
    slopes.get(slopes.len() / 2).copied()
}

/// A start-up cost from what a group's batches said: the median of each
/// batch's fixed cost (measured, or its overhead less `per_test` per test).
/// Overheads without a per-test cost tell nothing (see [`per_test_from`]).
fn startup_from<'s>(
    samples: impl Iterator<Item = &'s Said>,
    per_test: Option<Duration>,
) -> Option<Duration> {
    let mut fixed: Vec<Duration> = samples
        .filter_map(|s| match *s {
            Said::Measured { fixed, .. } => Some(fixed),
            Said::Overhead { overhead, tests } => per_test.map(|p| {
                overhead.saturating_sub(p.saturating_mul(u32::try_from(tests).unwrap_or(u32::MAX)))
            }),
        })
        .collect();
    median(&mut fixed)
}

fn median(v: &mut [Duration]) -> Option<Duration> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(v[v.len() / 2])
}

/// Durations from a merged JUnit report (the longest when an ID repeats),
/// by the [`crate::junit::id::normalize`]d name: a report cannot carry every
/// ID as it is, so [`History::expected`] looks an ID up in that form too.
fn junit_durations(path: &Path) -> FxHashMap<String, Duration> {
    let mut out: FxHashMap<String, Duration> = FxHashMap::default();
    let Ok(bytes) = std::fs::read(path) else {
        return out;
    };
    crate::junit::read::for_each_duration(&String::from_utf8_lossy(&bytes), |id, secs| {
        let d = Duration::from_secs_f64(secs.min(1e9));
        let id = match crate::junit::id::normalize(&id) {
            std::borrow::Cow::Owned(normal) => std::borrow::Cow::Owned(normal),
            std::borrow::Cow::Borrowed(_) => id,
        };
        match out.get_mut(id.as_ref()) {
            Some(e) => *e = (*e).max(d),
            None => {
                out.insert(id.into_owned(), d);
            }
        }
    });
    out
}

/// How a runner executes one batch's tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Execution {
    /// One after another (pytest, most runners): the batch's wall time is
    /// its fixed cost, its tests' times, and a little bookkeeping per test.
    #[default]
    Sequential,
    /// Side by side (cargo nextest, one process per test on every core):
    /// the tests' times add up to more than the batch took.
    SideBySide,
}

/// What one finished batch measured.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BatchSample {
    /// From start to finish, as the run saw it.
    pub wall: Duration,
    /// The sum of its tests' JUnit times.
    pub tests_total: Duration,
    /// From the first test's start to the last test's end, on the runner's
    /// clock (JUnit timestamps), when every test had a timestamp.
    pub span: Option<Duration>,
    /// Its number of tests.
    pub tests: usize,
}

/// What one batch says about the costs (see [`RunTimings::batch`]).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Said {
    /// Its fixed cost was measured: wall time less its tests' span; and,
    /// for tests run one after another, the mean gap between two of them.
    Measured {
        fixed: Duration,
        gap: Option<Duration>,
    },
    /// Only its overhead is known (wall time less its tests' times): a
    /// start-up plus a cost per test.
    Overhead { overhead: Duration, tests: usize },
}

/// What one run measured, to be folded into the history file by [`save`].
#[derive(Clone, Debug, Default)]
pub struct RunTimings<'a> {
    discovered: Vec<&'a str>,
    execution: Execution,
    /// One entry per test (see [`RunTimings::test`]).
    tests: Vec<(&'a str, Duration)>,
    /// Per group: what each batch said about the fixed and per-test costs.
    batches: BTreeMap<&'a str, Vec<Said>>,
    /// Per group: how many tests ran at once in each side-by-side batch.
    concurrency: BTreeMap<&'a str, Vec<f64>>,
    /// When each sandbox was first ready, earliest first.
    ready: Vec<Duration>,
}

impl<'a> RunTimings<'a> {
    /// Start recording a run whose discovery found `discovered` (canonical
    /// IDs): those tests count as seen even if they never got to run.
    pub fn new(discovered: impl IntoIterator<Item = &'a str>, execution: Execution) -> Self {
        let discovered: Vec<&str> = discovered.into_iter().collect();
        RunTimings {
            tests: Vec::with_capacity(discovered.len()),
            discovered,
            execution,
            ..RunTimings::default()
        }
    }

    /// Test `id` took `duration` in this run (its JUnit time; the longest
    /// when it ran several times). Once per test, and only for attempts with
    /// a real result (or a timeout, as the timeout).
    pub fn test(&mut self, id: &'a str, duration: Duration) {
        self.tests.push((id, duration));
    }

    /// A batch of `group`'s tests ([`ANY_GROUP`] when it mixes groups or
    /// the group is not known) finished normally (not timed out, cancelled
    /// or failed for infrastructure reasons) and measured `sample`.
    ///
    /// Its fixed cost — process start, imports, collection, the runner's
    /// listing — is measured directly where possible:
    /// * tests run one after another, with timestamps: wall time less the
    ///   span of the tests; the gaps between tests are the per-test cost;
    /// * tests run one after another, without timestamps (pytest): wall
    ///   time less the sum of the tests' times, which still holds the
    ///   runner's bookkeeping per test (see [`per_test_from`]);
    /// * tests run side by side (nextest): wall time less the span of the
    ///   tests (without timestamps the batch teaches nothing: its tests'
    ///   times overlap, so their sum says nothing about its start-up).
    pub fn batch(&mut self, group: &'a str, sample: BatchSample) {
        let BatchSample {
            wall,
            tests_total,
            span,
            tests,
        } = sample;
        let said = match (self.execution, span) {
            (Execution::SideBySide, None) => return,
            (Execution::SideBySide, Some(span)) => {
                if !span.is_zero() {
                    let at_once = tests_total.as_secs_f64() / span.as_secs_f64();
                    self.concurrency
                        .entry(group)
                        .or_default()
                        .push(at_once.max(1.0));
                }
                Said::Measured {
                    fixed: wall.saturating_sub(span),
                    gap: None,
                }
            }
            // Sequential tests cannot take longer than their batch: this
            // runner ran them side by side after all. Nothing to learn.
            (Execution::Sequential, _) if tests_total > wall => return,
            (Execution::Sequential, Some(span)) if span >= tests_total => Said::Measured {
                fixed: wall.saturating_sub(span),
                gap: (tests >= 2).then(|| (span - tests_total) / (tests as u32 - 1).max(1)),
            },
            (Execution::Sequential, _) => Said::Overhead {
                overhead: wall - tests_total,
                tests,
            },
        };
        self.batches.entry(group).or_default().push(said);
    }

    /// The run's sandboxes were first ready so long after it started
    /// creating them (in any order).
    pub fn sandboxes_ready(&mut self, mut after: Vec<Duration>) {
        after.sort_unstable();
        self.ready = after;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    /// How many tests a batch of a group runs at once (runners that run
    /// them side by side), in per mille: 1850 = 1.85 tests at a time.
    Concurrency = 0,
    /// The history's own error (key `*`): how far off the durations were
    /// in the last run that measured it, in per mille (mean absolute error
    /// over total duration).
    Error = 1,
    /// What each test adds to a batch (key `*`: the runner's).
    PerTest = 2,
    /// When the k-th sandbox was ready (key: k).
    Ready = 3,
    Startup = 4,
    Test = 5,
}

/// In file order (alphabetical, so that the file's lines are sorted).
const KINDS: [Kind; 6] = [
    Kind::Concurrency,
    Kind::Error,
    Kind::PerTest,
    Kind::Ready,
    Kind::Startup,
    Kind::Test,
];

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Concurrency => "concurrency",
            Kind::Error => "error",
            Kind::PerTest => "pertest",
            Kind::Ready => "ready",
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

/// The history file's contents, one map per kind (hash maps: a 20,000-test
/// history is read, merged and written in a few milliseconds; the order is
/// made when writing).
#[derive(Debug, Default, PartialEq)]
struct HistoryFile {
    maps: [FxHashMap<String, Entry>; 6],
    /// Lines that could not be read (reported by tests; otherwise ignored).
    skipped: usize,
}

impl HistoryFile {
    fn map(&self, kind: Kind) -> &FxHashMap<String, Entry> {
        &self.maps[kind as usize]
    }

    fn map_mut(&mut self, kind: Kind) -> &mut FxHashMap<String, Entry> {
        &mut self.maps[kind as usize]
    }

    fn get(&self, kind: Kind, key: &str) -> Option<&Entry> {
        self.map(kind).get(key)
    }

    fn len(&self) -> usize {
        self.maps.iter().map(FxHashMap::len).sum()
    }
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
    let mut file = HistoryFile::default();
    // Only for keys seen more than once: (sum of nanoseconds, count).
    let mut dups: FxHashMap<(Kind, String), (u128, u32)> = FxHashMap::default();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((kind, key, entry)) = parse_line(line) else {
            file.skipped += 1;
            continue;
        };
        match file.map_mut(kind).entry(key) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(entry);
            }
            std::collections::hash_map::Entry::Occupied(mut o) => {
                let first = o.get().value.as_nanos();
                let sum = dups.entry((kind, o.key().clone())).or_insert((first, 1));
                sum.0 += entry.value.as_nanos();
                sum.1 += 1;
                let e = o.get_mut();
                e.missed = e.missed.min(entry.missed);
            }
        }
    }
    for ((kind, key), (sum, n)) in dups {
        if let Some(e) = file.map_mut(kind).get_mut(&key) {
            e.value = Duration::from_nanos(u64::try_from(sum / n as u128).unwrap_or(u64::MAX));
        }
    }
    file
}

fn parse_line(line: &str) -> Option<(Kind, String, Entry)> {
    let mut fields = line.trim_end_matches('\r').split('\t');
    let kind = match fields.next()? {
        "test" => Kind::Test,
        "startup" => Kind::Startup,
        "concurrency" => Kind::Concurrency,
        "pertest" => Kind::PerTest,
        "ready" => Kind::Ready,
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
        kind,
        key,
        Entry {
            value: Duration::from_nanos((ms * 1e6).round() as u64),
            missed,
        },
    ))
}

/// The file's text: the header, then one line per entry sorted by kind and
/// key (so that git merges stay line-local).
#[cfg(test)]
fn render(file: &HistoryFile) -> String {
    let mut out = Vec::new();
    render_to(file, &mut out).expect("writing to memory");
    String::from_utf8(out).expect("history text is UTF-8")
}

/// [`render`] into `out`, line by line (a 20,000-test history is not built
/// as one string first).
fn render_to(file: &HistoryFile, out: &mut impl Write) -> std::io::Result<()> {
    out.write_all(HEADER.as_bytes())?;
    let mut line = Vec::with_capacity(256);
    let mut digits = itoa::Buffer::new();
    let mut push_decimal = |line: &mut Vec<u8>, n: u128| {
        line.extend_from_slice(digits.format(n).as_bytes());
    };
    for kind in KINDS {
        let mut keys: Vec<(&String, &Entry)> = file.map(kind).iter().collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (key, e) in keys {
            let tenths = (e.value.as_nanos() + 50_000) / 100_000;
            line.clear();
            line.extend_from_slice(kind.as_str().as_bytes());
            line.push(b'\t');
            line.extend_from_slice(escape(key).as_bytes());
            line.push(b'\t');
            push_decimal(&mut line, tenths / 10);
            line.push(b'.');
            push_decimal(&mut line, tenths % 10);
            line.push(b'\t');
            push_decimal(&mut line, u128::from(e.missed));
            line.push(b'\n');
            out.write_all(&line)?;
        }
    }
    Ok(())
}

fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['\\', '\t', '\n', '\r']) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

fn unescape(s: &str) -> Option<String> {
    if !s.contains('\\') {
        return Some(s.to_string());
    }
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

/// Record `value` for `key`: a new entry, or `settle` the old one.
fn update(
    map: &mut FxHashMap<String, Entry>,
    key: &str,
    value: Duration,
    rel: f64,
    floor: Duration,
) {
    match map.get_mut(key) {
        Some(e) => e.value = settle(e.value, value, rel, floor),
        None => {
            map.insert(key.to_string(), Entry { value, missed: 0 });
        }
    }
}

/// Fold one run into history text (pure: the I/O is in [`save`]).
fn merge_run(mut file: HistoryFile, run: &RunTimings<'_>) -> HistoryFile {
    // How far off the estimates were: Σ|measured − expected| / Σexpected over
    // the tests the file knew (at least 5 of them, to mean something).
    let (mut off, mut total, mut n) = (0f64, 0f64, 0);
    for (id, d) in &run.tests {
        if let Some(e) = file.get(Kind::Test, id) {
            off += abs_diff(e.value, *d).as_secs_f64();
            total += e.value.as_secs_f64();
            n += 1;
        }
    }
    let error_measured = n >= 5 && total > 0.0;
    if error_measured {
        let error = Duration::from_secs_f64((off / total).min(10.0));
        let errors = file.map_mut(Kind::Error);
        update(errors, ANY_GROUP, error, 0.25, Duration::from_millis(5));
    }
    // Tests: every entry ages by one run, except those this run saw (found
    // by discovery or measured), which start again from zero.
    let tests = file.map_mut(Kind::Test);
    for e in tests.values_mut() {
        e.missed = e.missed.saturating_add(1);
    }
    // Room for the new entries at once: growing step by step would briefly
    // hold the old and the new table (a cold run of 20,000 tests).
    let new = run.tests.iter().filter(|(id, _)| !tests.contains_key(*id));
    tests.reserve(new.count());
    for &(id, d) in &run.tests {
        update(tests, id, d, 0.10, Duration::from_millis(1));
    }
    let seen = run
        .discovered
        .iter()
        .chain(run.tests.iter().map(|(id, _)| id));
    for id in seen {
        if let Some(e) = tests.get_mut(*id) {
            e.missed = 0;
        }
    }
    tests.retain(|_, e| e.missed <= MAX_MISSED_RUNS);
    // The cost per test is the runner's (one framework per config): what
    // this run's batches tell of it, else what earlier runs told. Side by
    // side, it is inside the tests' span, so there is none to learn. Each
    // group's start-up is then what remains of its own batches' fixed
    // costs; `*` holds the run's as a whole (the fallback for groups
    // without their own).
    let per_test = match run.execution {
        Execution::SideBySide => Some(Duration::ZERO),
        Execution::Sequential => {
            let measured = per_test_from(&run.batches);
            if let Some(p) = measured {
                let per_tests = file.map_mut(Kind::PerTest);
                update(per_tests, ANY_GROUP, p, 0.20, Duration::from_micros(100));
            }
            measured.or(file.get(Kind::PerTest, ANY_GROUP).map(|e| e.value))
        }
    };
    let by_group = run.batches.iter().filter(|(g, _)| **g != ANY_GROUP);
    let all = run.batches.values().flatten();
    if let Some(startup) = startup_from(all, per_test) {
        let startups = file.map_mut(Kind::Startup);
        update(startups, ANY_GROUP, startup, 0.20, Duration::from_millis(2));
    }
    for (group, samples) in by_group {
        if let Some(startup) = startup_from(samples.iter(), per_test) {
            let startups = file.map_mut(Kind::Startup);
            update(startups, group, startup, 0.20, Duration::from_millis(2));
        }
    }
    let all_at_once: Vec<f64> = run.concurrency.values().flatten().copied().collect();
    let whole_run = std::iter::once((ANY_GROUP, &all_at_once));
    let by_group = run.concurrency.iter().filter(|(g, _)| **g != ANY_GROUP);
    for (group, at_once) in whole_run.chain(by_group.map(|(g, c)| (*g, c))) {
        let mut at_once = at_once.clone();
        at_once.sort_by(f64::total_cmp);
        if let Some(&c) = at_once.get(at_once.len() / 2) {
            let map = file.map_mut(Kind::Concurrency);
            update(
                map,
                group,
                Duration::from_secs_f64(c.min(1e6)),
                0.20,
                Duration::from_millis(20),
            );
        }
    }

    let age = |seen: bool, e: &mut Entry| {
        e.missed = if seen { 0 } else { e.missed.saturating_add(1) };
        e.missed <= MAX_MISSED_RUNS
    };
    let any_batch = !run.batches.is_empty();
    for kind in [Kind::Startup, Kind::PerTest, Kind::Concurrency] {
        file.map_mut(kind).retain(|key, e| {
            let seen = run.batches.contains_key(key.as_str()) || (key == ANY_GROUP && any_batch);
            age(seen, e)
        });
    }
    file.map_mut(Kind::Error)
        .retain(|_, e| age(error_measured, e));
    // The k-th sandbox's delay moves like a start-up; ranks this run did
    // not reach (fewer sandboxes) age out.
    let ready = file.map_mut(Kind::Ready);
    for (k, &d) in run.ready.iter().enumerate() {
        update(
            ready,
            &(k + 1).to_string(),
            d,
            0.20,
            Duration::from_millis(20),
        );
    }
    ready.retain(|key, e| {
        let seen = key
            .parse::<usize>()
            .is_ok_and(|k| k >= 1 && k <= run.ready.len());
        age(seen, e)
    });

    let excess = file.len().saturating_sub(MAX_ENTRIES);
    if excess > 0 {
        let mut by_age: Vec<(u32, Kind, String)> = KINDS
            .iter()
            .flat_map(|&k| {
                file.map(k)
                    .iter()
                    .map(move |(key, e)| (e.missed, k, key.clone()))
            })
            .collect();
        by_age.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        for (_, kind, key) in by_age.into_iter().take(excess) {
            file.map_mut(kind).remove(&key);
        }
    }
    file.skipped = 0;
    file
}

/// Fold `run` into the history file at `path`: lock the directory, re-read
/// the file (another run may have saved since this one loaded it), merge,
/// write a temporary file and rename it over the old one.
pub fn save(path: &Path, run: &RunTimings<'_>) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let _lock = DirLock::acquire(&dir);
    let merged = merge_run(read_file(path), run);
    // No fsync: after a crash the file may lose this run's update (or read
    // as damaged lines, which are skipped); it is only a hint.
    crate::files::write_atomically(path, crate::files::AtomicOptions::default(), |f| {
        render_to(&merged, f)
    })
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
