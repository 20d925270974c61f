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
//! as a whole; the per-batch start-up cost), `pertest` (key `*`: what each
//! test adds to a batch beyond its own JUnit time — the runner's bookkeeping
//! and reporting — fitted over all batches) or
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
    /// What each test adds to its batch beyond its own duration (weighted
    /// the same way); zero when never measured.
    pub per_test: Duration,
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
    /// tests the file does not know — read only when one of `ids` (the run's
    /// tests) is missing from the file: usually the file knows them all, and
    /// the report would be parsed for nothing. Missing or damaged files give
    /// what could be read (possibly nothing); this never fails.
    pub fn load<'a>(
        junit_path: &Path,
        history_path: &Path,
        mut ids: impl Iterator<Item = &'a str>,
    ) -> History {
        let [errors, per_tests, startups, tests] = read_file(history_path).maps;
        let values = |map: FxHashMap<String, Entry>| -> BTreeMap<String, Duration> {
            map.into_iter().map(|(k, e)| (k, e.value)).collect()
        };
        let mut h = History {
            durations: tests.into_iter().map(|(k, e)| (k, e.value)).collect(),
            startup: values(startups),
            per_test: values(per_tests),
            estimate_error: errors.get(ANY_GROUP).map(|e| per_mille(e.value)),
        };
        if ids.any(|id| !h.durations.contains_key(id)) {
            for (id, d) in junit_durations(junit_path) {
                h.durations.entry(id).or_insert(d);
            }
        }
        h
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
        Estimates {
            durations,
            known: own.iter().map(Option::is_some).collect(),
            startup,
            per_test,
            estimate_error: self.estimate_error,
        }
    }
}

/// The `error` line stores a fraction as per mille in the milliseconds
/// column: 1 ms of "duration" is 0.001.
fn per_mille(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The cost each test adds to its batch, from batch overheads grouped by
/// group: `overhead = startup(group) + tests × per_test`, fitted by least
/// squares within each group (each group keeps its own start-up, so groups
/// that start differently do not bias the slope). `None` when no group's
/// batch sizes vary enough to tell start-up from per-test cost.
fn fit_per_test<'s>(groups: impl Iterator<Item = &'s [(Duration, usize)]>) -> Option<Duration> {
    let (mut cov, mut var, mut informative) = (0.0, 0.0, false);
    for samples in groups {
        let (Some(min_n), Some(max_n)) = (
            samples.iter().map(|&(_, n)| n).min(),
            samples.iter().map(|&(_, n)| n).max(),
        ) else {
            continue;
        };
        informative |= samples.len() >= 3 && max_n >= 2 * min_n.max(1) && max_n - min_n >= 4;
        let count = samples.len() as f64;
        let mean_n = samples.iter().map(|&(_, n)| n as f64).sum::<f64>() / count;
        let mean_o = samples.iter().map(|(o, _)| o.as_secs_f64()).sum::<f64>() / count;
        for &(o, n) in samples {
            let dn = n as f64 - mean_n;
            cov += dn * (o.as_secs_f64() - mean_o);
            var += dn * dn;
        }
    }
    (informative && var > 0.0).then(|| Duration::from_secs_f64((cov / var).max(0.0)))
}

/// A start-up cost from batch overheads, once `per_test` per test is taken
/// off each: the median.
fn startup_from(samples: &[(Duration, usize)], per_test: Duration) -> Option<Duration> {
    let mut rest: Vec<Duration> = samples
        .iter()
        .map(|&(o, n)| {
            o.saturating_sub(per_test.saturating_mul(u32::try_from(n).unwrap_or(u32::MAX)))
        })
        .collect();
    median(&mut rest)
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

/// What one run measured, to be folded into the history file by [`save`].
#[derive(Clone, Debug, Default)]
pub struct RunTimings<'a> {
    discovered: Vec<&'a str>,
    /// One entry per test (see [`RunTimings::test`]).
    tests: Vec<(&'a str, Duration)>,
    /// Per group: each batch's overhead (wall time beyond its tests' JUnit
    /// times) and its number of tests.
    startup_samples: BTreeMap<&'a str, Vec<(Duration, usize)>>,
}

impl<'a> RunTimings<'a> {
    /// Start recording a run whose discovery found `discovered` (canonical
    /// IDs): those tests count as seen even if they never got to run.
    pub fn new(discovered: impl IntoIterator<Item = &'a str>) -> RunTimings<'a> {
        let discovered: Vec<&str> = discovered.into_iter().collect();
        RunTimings {
            tests: Vec::with_capacity(discovered.len()),
            discovered,
            ..RunTimings::default()
        }
    }

    /// Test `id` took `duration` in this run (its JUnit time; the longest
    /// when it ran several times). Once per test, and only for attempts with
    /// a real result (or a timeout, as the timeout).
    pub fn test(&mut self, id: &'a str, duration: Duration) {
        self.tests.push((id, duration));
    }

    /// A batch of `tests` of `group`'s tests ([`ANY_GROUP`] when it mixes
    /// groups or the group is not known) took `wall` from start to finish,
    /// and they reported `tests_total` between them: the difference is the
    /// batch's overhead, a start-up cost plus a little per test. Record only
    /// batches that ended normally (not timed out, cancelled or failed for
    /// infrastructure reasons).
    ///
    /// A batch whose tests reported more time than the batch took ran them
    /// side by side (cargo nextest runs a batch's tests on every core): its
    /// overhead cannot be told from its tests' times, and it is ignored —
    /// counting it as zero start-up would plan many small batches that each
    /// pay the runner's real start-up.
    pub fn batch(&mut self, group: &'a str, wall: Duration, tests_total: Duration, tests: usize) {
        if tests_total > wall {
            return;
        }
        self.startup_samples
            .entry(group)
            .or_default()
            .push((wall.saturating_sub(tests_total), tests));
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    /// The history's own error (key `*`): how far off the durations were
    /// in the last run that measured it, in per mille (mean absolute error
    /// over total duration).
    Error = 0,
    /// What each test adds to a batch (key: a group, as for `Startup`).
    PerTest = 1,
    Startup = 2,
    Test = 3,
}

/// In file order (alphabetical, so that the file's lines are sorted).
const KINDS: [Kind; 4] = [Kind::Error, Kind::PerTest, Kind::Startup, Kind::Test];

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Error => "error",
            Kind::PerTest => "pertest",
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
    maps: [FxHashMap<String, Entry>; 4],
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
        "pertest" => Kind::PerTest,
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
    // The cost per test is the runner's (one framework per config): fitted
    // within groups when their batch sizes vary, else across all batches
    // (e.g. one big batch per sandbox for one group, small ones for another).
    // Each group's start-up is then what remains of its own batches'
    // overheads; `*` holds the run's as a whole (the fallback for groups
    // without their own).
    let all: Vec<(Duration, usize)> = run.startup_samples.values().flatten().copied().collect();
    let fitted = fit_per_test(run.startup_samples.values().map(Vec::as_slice))
        .or_else(|| fit_per_test(std::iter::once(all.as_slice())));
    if let Some(per_test) = fitted {
        let per_tests = file.map_mut(Kind::PerTest);
        update(
            per_tests,
            ANY_GROUP,
            per_test,
            0.20,
            Duration::from_micros(100),
        );
    }
    let per_test = fitted
        .or(file.get(Kind::PerTest, ANY_GROUP).map(|e| e.value))
        .unwrap_or_default();
    let by_group = run.startup_samples.iter().filter(|(g, _)| **g != ANY_GROUP);
    let whole_run = std::iter::once((ANY_GROUP, &all));
    for (group, samples) in whole_run.chain(by_group.map(|(g, s)| (*g, s))) {
        if let Some(startup) = startup_from(samples, per_test) {
            let startups = file.map_mut(Kind::Startup);
            update(startups, group, startup, 0.20, Duration::from_millis(2));
        }
    }

    let age = |seen: bool, e: &mut Entry| {
        e.missed = if seen { 0 } else { e.missed.saturating_add(1) };
        e.missed <= MAX_MISSED_RUNS
    };
    let any_batch = !run.startup_samples.is_empty();
    for kind in [Kind::Startup, Kind::PerTest] {
        file.map_mut(kind).retain(|key, e| {
            let seen =
                run.startup_samples.contains_key(key.as_str()) || (key == ANY_GROUP && any_batch);
            age(seen, e)
        });
    }
    file.map_mut(Kind::Error)
        .retain(|_, e| age(error_measured, e));

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
