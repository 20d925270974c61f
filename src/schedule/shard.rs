//! CI sharding (`offload run --shard K/N`): which of N jobs runs each
//! discovered test.
//!
//! Every job of a CI matrix runs the same command with its own K and
//! computes the same split on its own, so the split is a pure function of
//! what every job sees alike — the discovered tests and the committed
//! timing history — and never of what another job did:
//!
//! * **With history** (some test has its own duration): LPT over tests.
//!   Longest expected test first (equal ones by ID), each to the shard that
//!   would then end soonest (equal ones: the lowest shard). A shard that
//!   gets its first test of a group pays that group's batch start-up once,
//!   so a group's start-up cost is counted where it is really paid.
//! * **Without history**: a split by count. The IDs are sorted and cut into
//!   N contiguous runs whose sizes differ by at most one. Contiguous, not
//!   dealt round-robin: neighbouring IDs share a file (pytest) or a test
//!   binary (cargo), whose import or listing each shard then pays for few
//!   of them; and sorting makes the split independent of the order in which
//!   a machine happened to list them.
//!
//! All arithmetic is in integer nanoseconds with explicit tie-breaks: the
//! same inputs give the same shards on every machine.

use std::fmt;
use std::time::Duration;

/// `K/N`: this job is shard `index` (1-based) of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// 1-based, `1 <= index <= count`.
    pub index: usize,
    pub count: usize,
}

/// How `--shard` says what it wants; completes argh's "Error parsing
/// option '--shard' with value 'x': …".
pub const EXPECTS_SHARD: &str = "expects K/N with whole numbers 1 <= K <= N (e.g. 2/4)";

impl Shard {
    /// `"2/4"`; anything else is an error saying what is expected.
    pub fn parse(value: &str) -> Result<Shard, String> {
        let (k, n) = value.split_once('/').ok_or(EXPECTS_SHARD)?;
        let k: usize = k.trim().parse().map_err(|_| EXPECTS_SHARD)?;
        let n: usize = n.trim().parse().map_err(|_| EXPECTS_SHARD)?;
        if k == 0 || n == 0 || k > n {
            return Err(EXPECTS_SHARD.to_string());
        }
        Ok(Shard { index: k, count: n })
    }

    /// `shard-2-of-4`, for file names (the shard's JUnit report and history).
    pub fn file_tag(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }

    /// `name.ext` → `name-shard-2-of-4.ext` (no extension: appended).
    pub fn tag_file_name(&self, name: &str) -> String {
        let tag = self.file_tag();
        match name.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() => format!("{stem}-{tag}.{ext}"),
            _ => format!("{name}-{tag}"),
        }
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// One discovered test as the split sees it.
#[derive(Clone, Debug)]
pub struct ShardTest<'a> {
    pub id: &'a str,
    /// Its group (index into `startup` of [`split`]).
    pub group: usize,
    /// Its expected duration (its own history, or its group's typical one).
    pub expected: Duration,
}

/// The shard (0-based) of every test of `tests`, in order, for `count`
/// shards. `with_history`: the durations mean something (else the split is
/// by count); `startup[g]`: what a batch of group `g` costs to start.
pub fn split(
    tests: &[ShardTest<'_>],
    startup: &[Duration],
    count: usize,
    with_history: bool,
) -> Vec<usize> {
    let count = count.max(1);
    if with_history {
        by_time(tests, startup, count)
    } else {
        by_count(tests, count)
    }
}

/// Sorted IDs, cut into `count` contiguous runs (the first `len % count`
/// one longer).
fn by_count(tests: &[ShardTest<'_>], count: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..tests.len()).collect();
    order.sort_by(|&a, &b| tests[a].id.cmp(tests[b].id).then(a.cmp(&b)));
    let (base, extra) = (tests.len() / count, tests.len() % count);
    let mut shard_of = vec![0; tests.len()];
    let mut at = 0;
    for shard in 0..count {
        let size = base + usize::from(shard < extra);
        for &t in &order[at..at + size] {
            shard_of[t] = shard;
        }
        at += size;
    }
    shard_of
}

/// LPT over tests, a group's start-up paid once per shard that has it.
fn by_time(tests: &[ShardTest<'_>], startup: &[Duration], count: usize) -> Vec<usize> {
    let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let mut order: Vec<usize> = (0..tests.len()).collect();
    order.sort_by(|&a, &b| {
        let (ta, tb) = (&tests[a], &tests[b]);
        tb.expected
            .cmp(&ta.expected)
            .then(ta.id.cmp(tb.id))
            .then(a.cmp(&b))
    });
    let groups = tests.iter().map(|t| t.group + 1).max().unwrap_or(0);
    let mut load = vec![0u64; count];
    // has_group[shard * groups + g]
    let mut has_group = vec![false; count * groups];
    let mut shard_of = vec![0; tests.len()];
    for t in order {
        let test = &tests[t];
        let cost = nanos(test.expected);
        let start = startup.get(test.group).map_or(0, |&d| nanos(d));
        let best = (0..count)
            .min_by_key(|&s| {
                let pays = if has_group[s * groups + test.group] {
                    0
                } else {
                    start
                };
                (load[s].saturating_add(cost).saturating_add(pays), s)
            })
            .unwrap_or(0);
        if !has_group[best * groups + test.group] {
            has_group[best * groups + test.group] = true;
            load[best] = load[best].saturating_add(start);
        }
        load[best] = load[best].saturating_add(cost);
        shard_of[t] = best;
    }
    shard_of
}

/// What each of `count` shards is expected to take by the split's own
/// measure: its tests' durations and one start-up per group it has.
#[cfg_attr(not(test), allow(dead_code))]
pub fn expected_loads(
    tests: &[ShardTest<'_>],
    startup: &[Duration],
    shard_of: &[usize],
    count: usize,
) -> Vec<Duration> {
    let mut loads = vec![Duration::ZERO; count];
    let mut paid = std::collections::HashSet::new();
    for (t, &s) in tests.iter().zip(shard_of) {
        loads[s] += t.expected;
        if paid.insert((s, t.group)) {
            loads[s] += startup.get(t.group).copied().unwrap_or_default();
        }
    }
    loads
}

/// Which of `table`'s tests shard `shard` runs, by index: the split of
/// every discovered test by the committed history alone (never the last
/// JUnit report, which differs from job to job).
pub fn select(
    table: &crate::discover::TestTable,
    history: &crate::history::History,
    shard: Shard,
) -> Vec<bool> {
    let names: Vec<&str> = table
        .tests
        .iter()
        .map(|t| table.groups[t.group].name.as_str())
        .collect();
    let estimates = history.estimate(table.tests.iter().map(|t| t.id.as_str()).zip(names));
    let with_history = estimates.known.iter().any(|&k| k);
    let startup: Vec<Duration> = table
        .groups
        .iter()
        .map(|g| {
            history
                .startup
                .get(&g.name)
                .or(history.startup.get(crate::history::ANY_GROUP))
                .copied()
                .unwrap_or_default()
        })
        .collect();
    let tests: Vec<ShardTest<'_>> = table
        .tests
        .iter()
        .zip(&estimates.durations)
        .map(|(t, &expected)| ShardTest {
            id: &t.id,
            group: t.group,
            expected,
        })
        .collect();
    split(&tests, &startup, shard.count, with_history)
        .into_iter()
        .map(|s| s + 1 == shard.index)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn tests_of<'a>(
        ids: &'a [String],
        durations: &[u64],
        group: impl Fn(usize) -> usize,
    ) -> Vec<ShardTest<'a>> {
        ids.iter()
            .zip(durations)
            .enumerate()
            .map(|(i, (id, &d))| ShardTest {
                id,
                group: group(i),
                expected: ms(d),
            })
            .collect()
    }

    /// A spread of durations from a small deterministic generator.
    fn durations(n: usize, seed: u64) -> Vec<u64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                10 + (x >> 33) % 990
            })
            .collect()
    }

    #[test]
    fn parses_k_of_n_and_rejects_anything_else() {
        assert_eq!(Shard::parse("2/4"), Ok(Shard { index: 2, count: 4 }));
        assert_eq!(Shard::parse("1/1"), Ok(Shard { index: 1, count: 1 }));
        for bad in ["0/4", "5/4", "4", "a/b", "1/0", "", "/", "2/4/6", "-1/4"] {
            assert_eq!(Shard::parse(bad), Err(EXPECTS_SHARD.to_string()), "{bad}");
        }
        let s = Shard::parse("2/4").unwrap();
        assert_eq!(s.to_string(), "2/4");
        assert_eq!(s.tag_file_name("junit.xml"), "junit-shard-2-of-4.xml");
        assert_eq!(s.tag_file_name("report"), "report-shard-2-of-4");
        assert_eq!(s.tag_file_name("a.b.xml"), "a.b-shard-2-of-4.xml");
    }

    #[test]
    fn every_test_lands_in_exactly_one_shard_for_any_count() {
        let ids: Vec<String> = (0..50).map(|i| format!("t{i:02}")).collect();
        let ds = durations(50, 7);
        let tests = tests_of(&ids, &ds, |i| i % 3);
        for with_history in [false, true] {
            for count in [1, 3, 7, 50, 60] {
                let shard_of = split(&tests, &[ms(5), ms(50), ms(0)], count, with_history);
                assert_eq!(shard_of.len(), tests.len());
                assert!(shard_of.iter().all(|&s| s < count));
                if count <= tests.len() {
                    // No shard is left empty while another has two tests.
                    let mut sizes = vec![0; count];
                    for &s in &shard_of {
                        sizes[s] += 1;
                    }
                    assert!(sizes.iter().all(|&n| n > 0), "{count} {sizes:?}");
                }
            }
        }
    }

    #[test]
    fn without_history_sorted_ids_are_cut_into_contiguous_runs_of_equal_size() {
        let ids: Vec<String> = ["c", "a", "e", "b", "d", "g", "f"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let tests = tests_of(&ids, &[1; 7], |_| 0);
        // a b c | d e | f g
        assert_eq!(split(&tests, &[], 3, false), vec![0, 0, 1, 0, 1, 2, 2]);
        // The order the tests were listed in does not matter.
        let mut reversed = tests.clone();
        reversed.reverse();
        let back: Vec<usize> = split(&reversed, &[], 3, false).into_iter().rev().collect();
        assert_eq!(back, split(&tests, &[], 3, false));
    }

    #[test]
    fn with_history_the_shards_expected_times_are_balanced() {
        let ids: Vec<String> = (0..300).map(|i| format!("mod{}/t{i:03}", i / 40)).collect();
        let ds = durations(300, 11);
        let tests = tests_of(&ids, &ds, |i| usize::from(i >= 200));
        let startup = [ms(300), ms(800)];
        for count in [2, 3, 4, 7] {
            let shard_of = split(&tests, &startup, count, true);
            let loads = expected_loads(&tests, &startup, &shard_of, count);
            let mean = loads.iter().sum::<Duration>() / count as u32;
            let max = *loads.iter().max().unwrap();
            let min = *loads.iter().min().unwrap();
            assert!(
                max.as_secs_f64() <= mean.as_secs_f64() * 1.02
                    && min.as_secs_f64() >= mean.as_secs_f64() * 0.98,
                "{count} shards: {loads:?}"
            );
        }
    }

    #[test]
    fn a_groups_start_up_is_counted_once_per_shard_that_has_it() {
        // One short group with a large start-up beside a long one: each
        // shard that gets a test of the short group pays its start-up once.
        let ids: Vec<String> = (0..12).map(|i| format!("t{i:02}")).collect();
        let ds = [100, 100, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500];
        let tests = tests_of(&ids, &ds, |i| usize::from(i >= 2));
        let startup = [ms(1000), ms(0)];
        let shard_of = split(&tests, &startup, 2, true);
        let loads = expected_loads(&tests, &startup, &shard_of, 2);
        let paying = 1 + u64::from(shard_of[0] != shard_of[1]);
        assert_eq!(loads.iter().sum::<Duration>(), ms(5200 + 1000 * paying));
        // Splitting the short group (3,600 each) beats keeping it whole
        // (3,700 against 2,500): the split weighs start-ups against time.
        assert!(loads.iter().max().unwrap() <= &ms(3600), "{loads:?}");
        // Without start-up cost the tests alternate by LPT order.
        let free = split(
            &tests_of(&ids[..4], &[100; 4], |i| i / 2),
            &[ms(0), ms(0)],
            2,
            true,
        );
        assert_eq!(free, vec![0, 1, 0, 1]);
    }

    #[test]
    fn equal_durations_are_ordered_by_id_so_the_split_does_not_depend_on_discovery_order() {
        let ids: Vec<String> = (0..20).map(|i| format!("t{i:02}")).collect();
        let ds: Vec<u64> = (0..20).map(|i| 100 + (i % 3) * 10).collect();
        let tests = tests_of(&ids, &ds, |_| 0);
        let forward = split(&tests, &[ms(20)], 3, true);
        let mut reversed = tests.clone();
        reversed.reverse();
        let back: Vec<usize> = split(&reversed, &[ms(20)], 3, true)
            .into_iter()
            .rev()
            .collect();
        assert_eq!(forward, back);
    }
}
