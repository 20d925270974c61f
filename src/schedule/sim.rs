//! Test helpers: a tiny deterministic PRNG, synthetic suites shaped like the
//! benchmark's, and a simulation of the engine's queue (each batch to the
//! worker that frees up first, in plan order).

use std::time::Duration;

use super::{PlannedBatch, SchedTest};

/// SplitMix64: small, deterministic, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi].
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// Standard normal (Box-Muller).
    pub fn gauss(&mut self) -> f64 {
        let u1 = self.unit().max(1e-12);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// Durations in ms like the benchmark suites: lognormal body (median 40 ms,
/// sigma 0.7, clamped to 10..200) plus 1% tails of 600..1500 ms.
pub fn bench_like_ms(rng: &mut Rng, n: usize) -> Vec<u64> {
    let mut ms: Vec<u64> = (0..n)
        .map(|_| {
            (40.0 * (0.7 * rng.gauss()).exp())
                .round()
                .clamp(10.0, 200.0) as u64
        })
        .collect();
    let tails = (n as f64 / 100.0).round().max(1.0) as usize;
    for _ in 0..tails {
        let i = rng.range(0, n as u64 - 1) as usize;
        ms[i] = rng.range(600, 1500);
    }
    ms
}

/// Scheduler input for durations `ms`; `known` says whether the scheduler
/// sees them (warm) or only a common guess (cold).
pub fn sched_tests(ms: &[u64], known: bool) -> Vec<SchedTest> {
    let guess = if ms.is_empty() {
        0
    } else {
        let mut s = ms.to_vec();
        s.sort_unstable();
        s[s.len() / 2]
    };
    ms.iter()
        .enumerate()
        .map(|(i, &d)| SchedTest {
            index: i,
            expected: Duration::from_millis(if known { d } else { guess }),
            known,
            may_retry: false,
            id_bytes: 24,
            locality: None,
        })
        .collect()
}

/// Makespan of running `plan` on `workers` workers when test `i` really
/// takes `actual[i]` and every batch costs `startup` on top.
pub fn makespan(
    plan: &[PlannedBatch],
    actual: &[Duration],
    workers: usize,
    startup: Duration,
) -> Duration {
    makespan_after(plan, actual, &vec![Duration::ZERO; workers.max(1)], startup)
}

/// [`makespan`] on workers whose sandboxes are ready at the times `ready`
/// gives (one per worker).
pub fn makespan_after(
    plan: &[PlannedBatch],
    actual: &[Duration],
    ready: &[Duration],
    startup: Duration,
) -> Duration {
    let mut free = ready.to_vec();
    for b in plan {
        let w = (0..free.len()).min_by_key(|&w| (free[w], w)).unwrap();
        free[w] += startup + b.tests.iter().map(|&i| actual[i]).sum::<Duration>();
    }
    free.into_iter().max().unwrap_or_default()
}

/// The benchmark's lower bound: max(longest test, sum / workers).
pub fn lower_bound(actual: &[Duration], workers: usize) -> Duration {
    let sum: Duration = actual.iter().sum();
    let longest = actual.iter().copied().max().unwrap_or_default();
    longest.max(sum / workers as u32)
}
