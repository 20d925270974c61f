//! From expected durations to batches.
//!
//! The engine hands out batches in the order [`plan`] returns them (the
//! early retry batches, then heaviest first), each to whichever worker is
//! free. The plan is built in these steps:
//!
//! 0. **Retries first**: tests whose failure would be retried (their group has
//!    `retry_count > 0`), when they are a small part of the work, get batches
//!    of their own that are dispatched first; the worker that runs them gets
//!    that much less regular work, plus room for one retry. A failure is then
//!    retried while the others are still busy, not after everything.
//! 1. **Order** the other tests longest first. Equal guesses (no history) are
//!    dealt round-robin in a stratified order, so that every batch samples the
//!    whole suite — a slow module is spread over the batches instead of
//!    landing in one.
//! 2. **LPT** onto `parallelism` virtual workers: each test goes to the
//!    least-loaded worker that holds no copy of it. The workers' loads end
//!    within about one small test of each other. With equal guesses this is
//!    exactly round-robin dealing.
//!    **With locality** (tests that share a per-batch cost: a pytest file,
//!    a cargo test binary), steps 1–2 place the tests of one locality
//!    together instead: LPT over localities, a locality larger than a
//!    worker's share cut first, one split where a worker reaches its share
//!    (see [`locality_assign`]). The loads end as close as plain LPT's, and
//!    each batch imports, collects or lists few files or binaries.
//! 3. **Cut** each worker's list into batches: one batch with most of its load,
//!    then a tail of batches halving in size. The queue gives the tail batches
//!    to whichever worker finishes first, so they absorb the error of the
//!    estimates. The tail is as large as that error calls for (about
//!    `tail_sigmas` standard deviations of a worker's load, estimated from
//!    how reliable each test's duration is), and no tail batch carries less
//!    than `min_work_per_startup` times the per-batch start-up cost: cheap
//!    start-up gives more, smaller batches; expensive start-up fewer, bigger
//!    ones — down to one batch per worker. Cuts fall between localities
//!    where that keeps the batch within a quarter of its size, and no batch
//!    is planned past [`batch_time_limit`] of the per-batch timeout.
//!
//! Every step is deterministic (integer nanoseconds, explicit tie-breaks).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::time::Duration;

pub mod loads;
pub mod shard;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

/// One test (or one copy of a test) as the scheduler sees it.
#[derive(Clone, Debug)]
pub struct SchedTest {
    /// Index into the run's test table. The same index may appear more than
    /// once (copies of one test): copies never share a batch.
    pub index: usize,
    /// Expected duration: history, or the group's typical duration.
    pub expected: Duration,
    /// Whether `expected` is this test's own history (`true`) or a guess
    /// (`false`). Guesses are treated as far less reliable, which makes the
    /// tail of small batches larger.
    pub known: bool,
    /// Whether a failure of this test would be retried (its group has
    /// `retry_count > 0`). Such tests are placed in the first batches so that
    /// their retries fit in before the end of the run.
    pub may_retry: bool,
    /// Bytes the ID adds to a batch command line.
    pub id_bytes: usize,
    /// Tests with the same locality (a pytest file, a cargo test binary)
    /// share a cost their batch pays once, so they are kept together where
    /// balance allows. `None`: nothing shared (opaque IDs).
    pub locality: Option<u32>,
}

/// A planned batch: which tests, and how long it is expected to take
/// (start-up cost included).
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedBatch {
    /// Indices into the run's test table, in the order they should run.
    pub tests: Vec<usize>,
    pub expected: Duration,
}

/// Inputs that shape the plan.
#[derive(Clone, Debug)]
pub struct PlanParams {
    /// Number of workers (sandboxes).
    pub parallelism: usize,
    /// Expected start-up cost of one batch (process start, imports, ...), as
    /// learned by [`crate::history`]; `None` when it was never measured.
    pub batch_startup: Option<Duration>,
    /// Cap on the summed `id_bytes` of a batch (a single test larger than the
    /// cap still gets a batch of its own).
    pub max_id_bytes: usize,
    /// How far off the history's durations turned out to be last time, as a
    /// fraction (mean absolute error over total duration), as learned by
    /// [`crate::history`]; `None` when unknown (10% is assumed).
    pub estimate_error: Option<f64>,
    /// While the start-up cost is unknown, no batch is planned smaller than
    /// 1/this of a worker's share (`None`: the tuning's default, 16). Runners
    /// that are expensive to start (pytest imports, nextest) want fewer,
    /// larger batches until history has measured them.
    pub unknown_startup_min_fraction: Option<u64>,
    /// While the start-up cost is unknown, no batch is planned with fewer
    /// tests than this (0: no such floor).
    pub unknown_startup_min_tests: usize,
    /// The per-batch timeout (`test_timeout_secs`), when the durations are
    /// real enough to plan against it (history): no batch is planned to
    /// take longer than [`batch_time_limit`] of it, start-up included.
    pub timeout: Option<Duration>,
    /// When the sandboxes are expected to be ready, earliest first, as
    /// history measured them (empty: all at once). Remote sandboxes come up
    /// one after another; a late one is given that much less work.
    pub sandbox_ready: Vec<Duration>,
}

/// The longest a batch may be planned to take under a per-batch `timeout`:
/// half of it. The history's durations are means measured under one load;
/// a batch on a busier machine (more sandboxes than cores, other jobs) runs
/// up to twice as long as planned, and a batch killed at the timeout costs
/// the whole timeout plus a re-run of its tests in pieces.
pub fn batch_time_limit(timeout: Duration) -> Duration {
    timeout / 2
}

/// Split one batch (`tests`, in order) into consecutive parts that are each
/// expected to fit in `limit`, when its tests take `per_test` each on
/// average and a batch `startup` on top: for re-splitting queued batches
/// once the first batches have measured the rate (without history). Parts
/// are as equal as possible and keep the batch's order, so tests that were
/// kept together (one file, one binary) stay together; every part has at
/// least one test. When the start-up alone leaves less than a quarter of
/// `limit`, a quarter of it is used for tests anyway (the start-up is then
/// mismeasured or the limit hopeless; splitting into single tests would
/// only multiply start-ups).
// Not called by the run yet: the run loop re-splits queued batches with it.
#[cfg_attr(not(test), allow(dead_code))]
pub fn split_to_fit(
    tests: &[usize],
    per_test: Duration,
    startup: Duration,
    limit: Duration,
) -> Vec<Vec<usize>> {
    if tests.is_empty() {
        return Vec::new();
    }
    let room = limit.saturating_sub(startup).max(limit / 4);
    let fits = if per_test.is_zero() {
        tests.len()
    } else {
        (room.as_nanos() / per_test.as_nanos()).clamp(1, tests.len() as u128) as usize
    };
    let parts = tests.len().div_ceil(fits);
    let (base, extra) = (tests.len() / parts, tests.len() % parts);
    let mut out = Vec::with_capacity(parts);
    let mut at = 0;
    for k in 0..parts {
        let len = base + usize::from(k < extra);
        out.push(tests[at..at + len].to_vec());
        at += len;
    }
    out
}

/// The knobs of [`plan`], in one place (the unit tests study variations).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tuning {
    /// Relative standard deviation of a test's duration around its history
    /// value (run-to-run noise).
    pub rel_error_known: f64,
    /// Relative standard deviation of a guessed duration (a test without
    /// history gets its group's typical duration; real durations spread about
    /// that much).
    pub rel_error_guess: f64,
    /// How many standard deviations of a worker's load the tail of small
    /// batches covers.
    pub tail_sigmas: f64,
    /// A tail batch carries at least this many times the start-up cost of work.
    pub min_work_per_startup: u64,
    /// When the start-up cost is unknown, the smallest tail batch is
    /// 1/this of a worker's load.
    pub unknown_startup_min_fraction: u64,
    /// Tail batches never get smaller than 1/2^this of the tail.
    pub max_tail_halvings: u32,
}

/// A learned estimate error below this is treated as this (timing noise
/// the history cannot see, e.g. process start-up jitter). Low: a suite whose
/// durations repeat to within a fraction of a percent should not be given a
/// tail of small batches that only adds start-ups (the study above: equal or
/// better than a 2% floor in every regime; 500 sleeping tests: 9 batches
/// instead of 9 or 25 depending on how history had settled).
const MIN_ESTIMATE_ERROR: f64 = 0.005;

pub(crate) const TUNING: Tuning = Tuning {
    rel_error_known: 0.10,
    rel_error_guess: 1.0,
    tail_sigmas: 3.0,
    min_work_per_startup: 4,
    unknown_startup_min_fraction: 16,
    max_tail_halvings: 5,
};

/// Pack tests into batches, heaviest first (see the module documentation).
/// Deterministic for the same inputs.
pub fn plan(tests: &[SchedTest], params: &PlanParams) -> Vec<PlannedBatch> {
    plan_tuned(tests, params, &TUNING)
}

pub(crate) fn plan_tuned(
    tests: &[SchedTest],
    params: &PlanParams,
    tuning: &Tuning,
) -> Vec<PlannedBatch> {
    if tests.is_empty() {
        return Vec::new();
    }
    let workers = params.parallelism.max(1).min(tests.len());
    let copies = Copies::new(tests);
    let startup = params.batch_startup.map_or(0, nanos);

    // Tests whose failure would be retried, when they are a small part of the
    // work, run first in batches of their own, and the worker that runs them
    // gets that much less regular work plus room for one retry: a failure is
    // then retried while the other workers are still busy, instead of after
    // everything (where its retry alone would set the end of the run).
    let total: u64 = tests.iter().map(|t| nanos(t.expected)).sum();
    let retry_total: u64 = tests
        .iter()
        .filter(|t| t.may_retry)
        .map(|t| nanos(t.expected))
        .sum();
    let separate_retries = retry_total > 0 && retry_total <= total / 10;
    let (retriable, regular): (Vec<usize>, Vec<usize>) =
        (0..tests.len()).partition(|&p| separate_retries && tests[p].may_retry);
    // No batch planned beyond the timeout's safe limit, whatever the
    // start-up says; a test longer than that gets a batch of its own.
    let work_cap = params.timeout.map_or(u64::MAX, |t| {
        let limit = nanos(batch_time_limit(t));
        limit.saturating_sub(startup).max(limit / 4).max(1)
    });
    let limits = Limits {
        max_id_bytes: params.max_id_bytes,
        work_cap,
    };
    let mut early = Vec::new();
    if !retriable.is_empty() {
        let everything = [u64::MAX];
        let mut retriable = retriable;
        retriable.sort_by_key(|&p| (tests[p].locality.map_or(u32::MAX, |l| l), p));
        let pieces = Pieces::of_locality(tests);
        cut(
            tests,
            &retriable,
            &everything,
            &limits,
            &pieces,
            &copies,
            &mut early,
        );
    }
    // Each virtual worker starts when its sandbox is expected to be ready,
    // behind the first one. The heaviest batch goes to the first sandbox
    // up, the lightest main batch to the last: they all end together.
    let mut initial = ready_delays(&params.sandbox_ready, workers);
    if separate_retries {
        // The early batches, and as much again for their possible retry.
        initial[0] += 2 * (early.len() as u64 * startup + retry_total);
    }

    let local = regular.iter().any(|&p| tests[p].locality.is_some());
    let (lists, pieces) = if local {
        locality_assign(tests, &regular, &initial, &copies, work_cap)
    } else {
        let order = dispatch_order(tests, &regular, workers);
        (lpt_assign(tests, &order, &initial, &copies), Pieces::none())
    };

    let regular_total: u64 = regular.iter().map(|&p| nanos(tests[p].expected)).sum();
    let per_worker = regular_total / workers as u64;
    let known_error = params
        .estimate_error
        .map_or(tuning.rel_error_known, |e| e.clamp(MIN_ESTIMATE_ERROR, 1.0));
    let base_min = match params.batch_startup {
        Some(s) => nanos(s).saturating_mul(tuning.min_work_per_startup),
        None => {
            let fraction = params
                .unknown_startup_min_fraction
                .unwrap_or(tuning.unknown_startup_min_fraction)
                .max(1);
            let mean = regular_total / regular.len().max(1) as u64;
            (per_worker / fraction)
                .max(mean.saturating_mul(params.unknown_startup_min_tests as u64))
        }
    };
    let tail = tail_size(tests, &regular, workers, known_error, tuning).min(per_worker / 2);
    let min_batch = base_min.max(tail >> tuning.max_tail_halvings).max(1);

    let mut batches = Vec::new();
    for list in &lists {
        let load: u64 = list.iter().map(|&p| nanos(tests[p].expected)).sum();
        let caps = capacities(load, tail.min(load / 2), min_batch, work_cap);
        cut(tests, list, &caps, &limits, &pieces, &copies, &mut batches);
    }
    finish(tests, early, batches, params.batch_startup)
}

/// How long after the first sandbox each of `workers` sandboxes is expected
/// to be ready, in nanoseconds (from `ready`, earliest first; sandboxes
/// beyond it as the last one known).
pub fn ready_delays(ready: &[Duration], workers: usize) -> Vec<u64> {
    let (Some(&first), Some(&last)) = (ready.first(), ready.last()) else {
        return vec![0; workers];
    };
    (0..workers)
        .map(|w| nanos(ready.get(w).copied().unwrap_or(last).saturating_sub(first)))
        .collect()
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Positions into `tests` in the order they should be dealt out to
/// `workers` workers. Equal durations are dealt round-robin (worker `w` gets
/// positions `w`, `w + workers`, ...), taking the rounds in bit-reversed
/// order: each worker's list is then a stratified sample of the suite, so
/// its first batch and its tail batches each sample the whole of it.
fn dispatch_order(tests: &[SchedTest], positions: &[usize], workers: usize) -> Vec<usize> {
    let rounds = positions.len().div_ceil(workers.max(1));
    let bits = usize::BITS - rounds.saturating_sub(1).leading_zeros();
    let stratified = |k: usize| {
        let round = (k / workers) as u64;
        let round = if bits == 0 {
            0
        } else {
            round.reverse_bits() >> (64 - bits)
        };
        (round, k % workers)
    };
    // Keys computed once (not per comparison): 100,000 tests sort in a few
    // milliseconds. They are unique (the stratified slot), so an unstable
    // sort is deterministic.
    let mut keyed: Vec<_> = positions
        .iter()
        .enumerate()
        .map(|(k, &p)| {
            let t = &tests[p];
            (
                (Reverse(t.may_retry), Reverse(t.expected), stratified(k)),
                p,
            )
        })
        .collect();
    keyed.sort_unstable_by_key(|&(key, _)| key);
    keyed.into_iter().map(|(_, p)| p).collect()
}

/// Which test indices appear more than once (copies).
struct Copies(HashSet<usize>);

impl Copies {
    fn new(tests: &[SchedTest]) -> Copies {
        let mut indices: Vec<usize> = tests.iter().map(|t| t.index).collect();
        indices.sort_unstable();
        Copies(
            indices
                .windows(2)
                .filter(|w| w[0] == w[1])
                .map(|w| w[0])
                .collect(),
        )
    }

    fn has_copies(&self, index: usize) -> bool {
        !self.0.is_empty() && self.0.contains(&index)
    }
}

/// LPT: each test (in `order`) to the least-loaded worker that does not hold
/// a copy of it yet (the least-loaded one at all when every worker does).
/// Returns each worker's positions, in assignment order.
fn lpt_assign(
    tests: &[SchedTest],
    order: &[usize],
    initial: &[u64],
    copies: &Copies,
) -> Vec<Vec<usize>> {
    // (load, tests so far, worker): equal loads (zero durations) still spread.
    let mut heap: BinaryHeap<Reverse<(u64, usize, usize)>> = initial
        .iter()
        .enumerate()
        .map(|(w, &load)| Reverse((load, 0, w)))
        .collect();
    let mut lists: Vec<Vec<usize>> = vec![Vec::new(); initial.len()];
    // Which workers hold which copied index (only copied indices are tracked).
    let mut holders: HashMap<usize, Vec<usize>> = HashMap::new();
    for &p in order {
        let t = &tests[p];
        let copied = copies.has_copies(t.index);
        let holds = |w: usize| copied && holders.get(&t.index).is_some_and(|h| h.contains(&w));
        // Pop until a worker without a copy turns up; when every worker holds
        // one, take the least loaded (`cut` still keeps copies apart).
        let mut popped = Vec::new();
        let chosen = loop {
            match heap.pop() {
                Some(Reverse(entry)) if !holds(entry.2) => break entry,
                Some(Reverse(entry)) => popped.push(entry),
                None => break popped.remove(0),
            }
        };
        heap.extend(popped.into_iter().map(Reverse));
        let (load, count, w) = chosen;
        if copied {
            holders.entry(t.index).or_default().push(w);
        }
        lists[w].push(p);
        heap.push(Reverse((load + nanos(t.expected), count + 1, w)));
    }
    lists
}

/// The tail of small batches per worker, in nanoseconds: `tail_sigmas`
/// standard deviations of one worker's load, assuming independent errors of
/// `known_error` (history) or `rel_error_guess` (guesses) per test.
fn tail_size(
    tests: &[SchedTest],
    positions: &[usize],
    workers: usize,
    known_error: f64,
    tuning: &Tuning,
) -> u64 {
    let variance: f64 = positions
        .iter()
        .map(|&p| {
            let t = &tests[p];
            let rel = if t.known {
                known_error
            } else {
                tuning.rel_error_guess
            };
            let sd = nanos(t.expected) as f64 * rel;
            sd * sd
        })
        .sum::<f64>()
        / workers as f64;
    (tuning.tail_sigmas * variance.sqrt()) as u64
}

/// Batch sizes for one worker with `load` of work: the head, then the tail
/// halving while each piece stays at least `min_batch` (the last two tail
/// pieces are equal, so the sizes sum to `load`). No tail when even one half
/// of it is below `min_batch`.
///
/// A size above `work_cap` (the timeout's limit) becomes as many equal
/// sizes as it takes to stay under it.
fn capacities(load: u64, tail: u64, min_batch: u64, work_cap: u64) -> Vec<u64> {
    let mut caps = vec![load - tail];
    if tail / 2 < min_batch {
        caps[0] = load;
    } else {
        let mut piece = tail / 2;
        let mut rest = tail;
        while piece >= min_batch && rest > piece {
            caps.push(piece);
            rest -= piece;
            piece /= 2;
        }
        caps.push(rest);
    }
    caps.into_iter()
        .flat_map(|cap| {
            let parts = cap.div_ceil(work_cap.max(1)).max(1);
            std::iter::repeat(cap / parts).take(parts as usize)
        })
        .collect()
}

/// Hard limits on every batch.
struct Limits {
    /// Summed `id_bytes` (the command line).
    max_id_bytes: usize,
    /// Summed expected durations (the timeout), in nanoseconds.
    work_cap: u64,
}

/// Which locality piece each position belongs to: tests of one piece are
/// kept in one batch where the batch sizes allow.
struct Pieces(Vec<u32>);

impl Pieces {
    /// No locality: every test stands alone.
    fn none() -> Pieces {
        Pieces(Vec::new())
    }

    /// One piece per locality key (for the early batches, whose tests are
    /// not split by [`locality_assign`]).
    fn of_locality(tests: &[SchedTest]) -> Pieces {
        Pieces(
            tests
                .iter()
                .map(|t| t.locality.unwrap_or(NO_PIECE))
                .collect(),
        )
    }

    fn of(&self, position: usize) -> u32 {
        self.0.get(position).copied().unwrap_or(NO_PIECE)
    }

    /// Whether `a` and `b` (positions) belong together.
    fn together(&self, a: usize, b: usize) -> bool {
        let piece = self.of(a);
        piece != NO_PIECE && piece == self.of(b)
    }
}

const NO_PIECE: u32 = u32::MAX;

/// Without history, a locality is cut into pieces of at most 1/this of a
/// worker's share (see [`locality_assign`]).
const COLD_PIECES: u64 = 8;

/// Cut one worker's list into batches of about `caps` nanoseconds each (the
/// last cap repeats if the list is longer), within the `limits`, keeping
/// copies apart and locality pieces together: a batch that reaches its cap
/// in the middle of a piece takes the rest of the piece when that overshoots
/// the cap by at most a quarter (of the smaller of this batch and the next),
/// and a batch that close to full ends before a piece that would overshoot
/// it by more.
fn cut(
    tests: &[SchedTest],
    list: &[usize],
    caps: &[u64],
    limits: &Limits,
    pieces: &Pieces,
    copies: &Copies,
    out: &mut Vec<Vec<usize>>,
) {
    // What remains of each position's piece from it on (inclusive).
    let mut rest = vec![0u64; list.len()];
    for i in (0..list.len()).rev() {
        let d = nanos(tests[list[i]].expected);
        let same = i + 1 < list.len() && pieces.together(list[i], list[i + 1]);
        rest[i] = d.saturating_add(if same { rest[i + 1] } else { 0 });
    }
    let mut k = 0;
    let mut current: Vec<usize> = Vec::new();
    let (mut load, mut bytes) = (0u64, 0usize);
    for (i, &p) in list.iter().enumerate() {
        let t = &tests[p];
        let d = nanos(t.expected);
        let cap = caps[k.min(caps.len() - 1)];
        // How far a batch may run over (or stop short of) its size to keep
        // a piece whole: a quarter of the smaller of this batch and the
        // next, so that the head batch does not swallow the tail.
        let slack = cap.min(caps[(k + 1).min(caps.len() - 1)]) / 4;
        let inside_piece = i > 0 && pieces.together(list[i - 1], p);
        let over_time = if inside_piece {
            load.saturating_add(d / 2) > cap && load.saturating_add(rest[i]) > cap + slack
        } else {
            load.saturating_add(d / 2) > cap
                || (load >= cap - slack && load.saturating_add(rest[i]) > cap + slack)
        };
        let over_limit = load.saturating_add(d) > limits.work_cap;
        let over_bytes = bytes + t.id_bytes > limits.max_id_bytes;
        let copy_here =
            copies.has_copies(t.index) && current.iter().any(|&q| tests[q].index == t.index);
        if !current.is_empty() && (over_time || over_limit || over_bytes || copy_here) {
            out.push(std::mem::take(&mut current));
            if over_time || over_limit {
                k += 1;
            }
            load = 0;
            bytes = 0;
        }
        current.push(p);
        load += d;
        bytes += t.id_bytes;
    }
    if !current.is_empty() {
        out.push(current);
    }
}

/// LPT over locality pieces instead of tests: each piece (the tests of one
/// locality, in input order; a test without locality, with copies, or
/// longer than an eighth of a worker's share is a piece of its own) to the
/// least-loaded worker. A piece larger than a worker's fair share (without
/// history: a quarter of it) or than `work_cap` is first cut into equal
/// parts; a piece that would take its worker past the fair share (by more
/// than 1%) is split there, the rest going back to be placed — so about one
/// piece per worker is split for balance, and the loads end within about
/// one test of each other, as with plain LPT. Returns each worker's positions in
/// assignment order (large pieces first), and each position's piece.
fn locality_assign(
    tests: &[SchedTest],
    positions: &[usize],
    initial: &[u64],
    copies: &Copies,
    work_cap: u64,
) -> (Vec<Vec<usize>>, Pieces) {
    let workers = initial.len().max(1);
    let weight = |ps: &[usize]| ps.iter().map(|&p| nanos(tests[p].expected)).sum::<u64>();
    let total: u64 = initial.iter().sum::<u64>() + weight(positions);
    let target = total.div_ceil(workers as u64);
    // A test that long decides the balance by itself: it is placed on its
    // own, as LPT would, rather than wherever its locality's tests go.
    let long = target / 8;
    // The tests of each locality, in input order (first seen first).
    let mut by_key: HashMap<u32, usize> = HashMap::new();
    let mut units: Vec<Vec<usize>> = Vec::new();
    for &p in positions {
        let t = &tests[p];
        let alone = copies.has_copies(t.index) || nanos(t.expected) > long;
        match t.locality.filter(|_| !alone) {
            Some(key) => {
                let u = *by_key.entry(key).or_insert_with(|| {
                    units.push(Vec::new());
                    units.len() - 1
                });
                units[u].push(p);
            }
            None => units.push(vec![p]),
        }
    }
    let slack = target / 100;
    // Without history every test weighs the same, and a slow file (or
    // binary) would land whole on one worker: pieces of at most an eighth
    // of a share spread each over a few batches, as the other tests are
    // (on attrs, whose slowest file holds 4% of the tests, an eighth ran
    // cold 0.69x the wall time of a quarter; a sixteenth was between).
    let guessed = positions.iter().all(|&p| !tests[p].known);
    let share = if guessed {
        target / COLD_PIECES
    } else {
        target
    };
    let max_unit = share.min(work_cap).max(1);

    let mut piece_of = vec![NO_PIECE; tests.len()];
    let mut next_piece = 0u32;
    // Max-heap of pieces: the long tests first (they cannot be split, so
    // they go where there is room for them), then by weight (ties: the
    // earlier first position).
    let mut heap: BinaryHeap<(bool, u64, Reverse<usize>, u32)> = BinaryHeap::new();
    let mut members: Vec<Vec<usize>> = Vec::new();
    let mut add_piece =
        |ps: Vec<usize>, heap: &mut BinaryHeap<_>, members: &mut Vec<Vec<usize>>| {
            let id = next_piece;
            next_piece += 1;
            let w = weight(&ps);
            heap.push((ps.len() == 1 && w > long, w, Reverse(ps[0]), id));
            members.push(ps);
        };
    for unit in units {
        let w = weight(&unit);
        let parts = w.div_ceil(max_unit).clamp(1, unit.len() as u64);
        if parts == 1 {
            add_piece(unit, &mut heap, &mut members);
            continue;
        }
        // Consecutive parts of about equal weight.
        let share = w / parts;
        let mut part = Vec::new();
        let (mut acc, mut made) = (0u64, 1u64);
        for p in unit {
            let d = nanos(tests[p].expected);
            if !part.is_empty() && made < parts && acc + d / 2 > share * made {
                add_piece(std::mem::take(&mut part), &mut heap, &mut members);
                made += 1;
            }
            part.push(p);
            acc += d;
        }
        add_piece(part, &mut heap, &mut members);
    }

    let mut loads: BinaryHeap<Reverse<(u64, usize, usize)>> = initial
        .iter()
        .enumerate()
        .map(|(w, &load)| Reverse((load, 0, w)))
        .collect();
    let mut lists: Vec<Vec<usize>> = vec![Vec::new(); workers];
    let mut holders: HashMap<usize, Vec<usize>> = HashMap::new();
    while let Some((_, piece_weight, _, id)) = heap.pop() {
        let ps = std::mem::take(&mut members[id as usize]);
        let first = &tests[ps[0]];
        let copied = ps.len() == 1 && copies.has_copies(first.index);
        let holds = |w: usize| copied && holders.get(&first.index).is_some_and(|h| h.contains(&w));
        let mut popped = Vec::new();
        let (load, count, w) = loop {
            match loads.pop() {
                Some(Reverse(entry)) if !holds(entry.2) => break entry,
                Some(Reverse(entry)) => popped.push(entry),
                None => break popped.remove(0),
            }
        };
        loads.extend(popped.into_iter().map(Reverse));
        if copied {
            holders.entry(first.index).or_default().push(w);
        }
        // Past the fair share: fill this worker up to it (longest tests
        // first, each that still fits: a worker's excess is final, a gap
        // is filled by later pieces), and place the rest of the piece again;
        // both parts keep input order. When none fits, the piece's tests
        // are placed one by one.
        let (mut here, mut later) = (ps, Vec::new());
        if load + piece_weight > target + slack && here.len() > 1 {
            let room = target.saturating_sub(load);
            let mut longest: Vec<usize> = here.clone();
            longest.sort_by_key(|&p| (Reverse(tests[p].expected), p));
            let mut acc = 0u64;
            let mut take: HashSet<usize> = HashSet::new();
            for p in longest {
                let d = nanos(tests[p].expected);
                if acc + d <= room + slack {
                    acc += d;
                    take.insert(p);
                }
            }
            if take.is_empty() {
                // Every worker is about full: this piece is placed test by
                // test, longest first, as plain LPT would.
                for p in here {
                    add_piece(vec![p], &mut heap, &mut members);
                }
                loads.push(Reverse((load, count, w)));
                continue;
            }
            if take.len() < here.len() {
                (here, later) = here.into_iter().partition(|p| take.contains(p));
            }
        }
        if !later.is_empty() {
            add_piece(later, &mut heap, &mut members);
        }
        let added = weight(&here);
        for &p in &here {
            piece_of[p] = id;
            lists[w].push(p);
        }
        loads.push(Reverse((load + added, count + here.len(), w)));
    }
    (lists, Pieces(piece_of))
}

/// Positions to indices and expected durations: the `early` batches first,
/// in their order, then the others heaviest first (ties: the batch whose
/// first test comes first in the input).
fn finish(
    tests: &[SchedTest],
    early: Vec<Vec<usize>>,
    batches: Vec<Vec<usize>>,
    startup: Option<Duration>,
) -> Vec<PlannedBatch> {
    let startup = startup.unwrap_or_default();
    let planned = |positions: Vec<usize>| {
        let expected = startup
            + positions
                .iter()
                .map(|&p| tests[p].expected)
                .sum::<Duration>();
        let tests = positions.iter().map(|&p| tests[p].index).collect();
        PlannedBatch { tests, expected }
    };
    let mut keyed: Vec<(usize, PlannedBatch)> = batches
        .into_iter()
        .map(|positions| {
            (
                positions.iter().copied().min().unwrap_or(0),
                planned(positions),
            )
        })
        .collect();
    keyed.sort_by_key(|(first, b)| (Reverse(b.expected), *first));
    early
        .into_iter()
        .map(planned)
        .chain(keyed.into_iter().map(|(_, b)| b))
        .collect()
}
