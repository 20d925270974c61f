use std::time::Duration;

use super::sim::{bench_like_ms, lower_bound, makespan, makespan_after, sched_tests, Rng};
use super::*;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Study, not a check: makespan / LB of the plan on bench-like suites under
/// several noise and start-up regimes. `cargo test --release study -- --ignored --nocapture`
/// (`STUDY_LOCALITY=1`: the same suites with tests in files of 1 to 40 tests)
#[test]
#[ignore]
fn study_makespan_ratios() {
    struct Case {
        name: &'static str,
        known: bool,
        noise: f64,
        startup_ms: u64,
        plan_startup: bool,
    }
    let cases = [
        Case {
            name: "warm exact, s=10ms",
            known: true,
            noise: 0.01,
            startup_ms: 10,
            plan_startup: true,
        },
        Case {
            name: "warm 10%, s=10ms",
            known: true,
            noise: 0.10,
            startup_ms: 10,
            plan_startup: true,
        },
        Case {
            name: "warm 30%, s=10ms",
            known: true,
            noise: 0.30,
            startup_ms: 10,
            plan_startup: true,
        },
        Case {
            name: "warm 10%, s=400ms",
            known: true,
            noise: 0.10,
            startup_ms: 400,
            plan_startup: true,
        },
        Case {
            name: "cold, s=10ms",
            known: false,
            noise: 0.0,
            startup_ms: 10,
            plan_startup: false,
        },
        Case {
            name: "cold, s=400ms",
            known: false,
            noise: 0.0,
            startup_ms: 400,
            plan_startup: false,
        },
    ];
    let variants: Vec<(&str, Tuning)> = std::env::var("STUDY_VARIANTS")
        .map(|_| {
            vec![
                ("base", TUNING),
                ("singletons", TUNING),
                (
                    "sig3",
                    Tuning {
                        tail_sigmas: 3.0,
                        ..TUNING
                    },
                ),
                (
                    "sig1.5",
                    Tuning {
                        tail_sigmas: 1.5,
                        ..TUNING
                    },
                ),
                (
                    "frac32",
                    Tuning {
                        unknown_startup_min_fraction: 32,
                        ..TUNING
                    },
                ),
                (
                    "frac64 sig3",
                    Tuning {
                        unknown_startup_min_fraction: 64,
                        tail_sigmas: 3.0,
                        ..TUNING
                    },
                ),
                (
                    "known.05",
                    Tuning {
                        rel_error_known: 0.05,
                        ..TUNING
                    },
                ),
                (
                    "known.2",
                    Tuning {
                        rel_error_known: 0.2,
                        ..TUNING
                    },
                ),
                (
                    "mwps2",
                    Tuning {
                        min_work_per_startup: 2,
                        ..TUNING
                    },
                ),
                (
                    "mwps8",
                    Tuning {
                        min_work_per_startup: 8,
                        ..TUNING
                    },
                ),
            ]
        })
        .unwrap_or_else(|_| vec![("base", TUNING)]);
    for (n, p) in [(500usize, 8usize), (500, 4), (2000, 16), (50, 4)] {
        for c in &cases {
            for (vname, tuning) in &variants {
                let mut ratios = Vec::new();
                let mut per_worker = 0.0;
                for seed in 0..200u64 {
                    let mut rng = Rng::new(seed);
                    let d = bench_like_ms(&mut rng, n);
                    let mut tests = sched_tests(&d, c.known);
                    if std::env::var("STUDY_LOCALITY").is_ok() {
                        // The same suites in files of 1 to 40 tests.
                        let files = uneven_files(&mut Rng::new(seed ^ 0x5eed), n);
                        for (t, f) in tests.iter_mut().zip(files) {
                            t.locality = Some(f);
                        }
                    }
                    let actual: Vec<Duration> = d
                        .iter()
                        .map(|&v| {
                            Duration::from_secs_f64(
                                v as f64 / 1000.0 * (c.noise * rng.gauss()).exp(),
                            )
                        })
                        .collect();
                    let params = PlanParams {
                        parallelism: p,
                        batch_startup: c.plan_startup.then(|| ms(c.startup_ms)),
                        max_id_bytes: 96 * 1024,
                        // the mean absolute error of lognormal noise ≈ 0.8 σ
                        estimate_error: (c.known && std::env::var("STUDY_LEARNED").is_ok())
                            .then_some(0.8 * c.noise),
                        unknown_startup_min_fraction: None,
                        unknown_startup_min_tests: 0,
                        timeout: None,
                        sandbox_ready: Vec::new(),
                    };
                    let plan = if *vname == "singletons" {
                        // Reference: every test its own batch, in input order
                        // (list scheduling; the best a scheduler that knows
                        // nothing can do when start-up is free).
                        (0..n)
                            .map(|i| PlannedBatch {
                                tests: vec![i],
                                expected: Duration::ZERO,
                            })
                            .collect()
                    } else {
                        plan_tuned(&tests, &params, tuning)
                    };
                    per_worker += plan.len() as f64 / p as f64;
                    let lb = lower_bound(&actual, p) + ms(c.startup_ms);
                    let wall = makespan(&plan, &actual, p, ms(c.startup_ms));
                    ratios.push(wall.as_secs_f64() / lb.as_secs_f64());
                }
                ratios.sort_by(|a, b| a.partial_cmp(b).unwrap());
                println!(
                "n={n:5} p={p:2} {:22} {vname:12} median {:.3}  p90 {:.3}  max {:.3}  batches/worker {:.1}",
                c.name,
                ratios[ratios.len() / 2],
                ratios[ratios.len() * 9 / 10],
                ratios[ratios.len() - 1],
                per_worker / 200.0
            );
            }
        }
    }
}

fn params(parallelism: usize, startup_ms: Option<u64>) -> PlanParams {
    PlanParams {
        parallelism,
        batch_startup: startup_ms.map(ms),
        max_id_bytes: 96 * 1024,
        estimate_error: None,
        unknown_startup_min_fraction: None,
        unknown_startup_min_tests: 0,
        timeout: None,
        sandbox_ready: Vec::new(),
    }
}

fn test(index: usize, expected_ms: u64) -> SchedTest {
    SchedTest {
        index,
        expected: ms(expected_ms),
        known: true,
        may_retry: false,
        id_bytes: 10,
        locality: None,
    }
}

/// Every input entry appears in exactly one batch (copies included).
fn assert_covers(tests: &[SchedTest], plan: &[PlannedBatch]) {
    let mut want: Vec<usize> = tests.iter().map(|t| t.index).collect();
    let mut got: Vec<usize> = plan.iter().flat_map(|b| b.tests.iter().copied()).collect();
    want.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, want);
}

/// The best makespan over every assignment of tests to workers, each worker
/// running its tests as one batch (extra batches only add start-up).
fn brute_force_optimum(d: &[u64], workers: usize, startup: u64) -> u64 {
    let mut best = u64::MAX;
    let mut assign = vec![0usize; d.len()];
    loop {
        let mut loads = vec![0u64; workers];
        let mut used = vec![false; workers];
        for (i, &w) in assign.iter().enumerate() {
            loads[w] += d[i];
            used[w] = true;
        }
        let span = (0..workers)
            .filter(|&w| used[w])
            .map(|w| loads[w] + startup)
            .max()
            .unwrap_or(0);
        best = best.min(span);
        // next assignment (odometer)
        let mut k = 0;
        loop {
            if k == assign.len() {
                return best;
            }
            assign[k] += 1;
            if assign[k] < workers {
                break;
            }
            assign[k] = 0;
            k += 1;
        }
    }
}

#[test]
fn within_20_percent_of_the_optimum_on_small_random_instances() {
    let mut rng = Rng::new(42);
    let mut worst: f64 = 0.0;
    for case in 0..300 {
        let n = rng.range(1, 9) as usize;
        let workers = rng.range(1, 4) as usize;
        let startup = [0, 5, 50][case % 3];
        let d: Vec<u64> = (0..n)
            .map(|_| {
                if rng.unit() < 0.2 {
                    rng.range(200, 1000)
                } else {
                    rng.range(1, 100)
                }
            })
            .collect();
        let tests: Vec<SchedTest> = d.iter().enumerate().map(|(i, &v)| test(i, v)).collect();
        let plan = plan(&tests, &params(workers, Some(startup)));
        assert_covers(&tests, &plan);
        let actual: Vec<Duration> = d.iter().map(|&v| ms(v)).collect();
        let span = makespan(&plan, &actual, workers, ms(startup)).as_millis() as u64;
        let opt = brute_force_optimum(&d, workers, startup);
        let ratio = span as f64 / opt as f64;
        worst = worst.max(ratio);
        assert!(
            ratio <= 1.2,
            "case {case}: {d:?} on {workers} workers (start-up {startup}): {span} vs optimum {opt}"
        );
    }
    println!("worst ratio to the optimum: {worst:.3}");
}

#[test]
fn copies_never_share_a_batch() {
    let mut rng = Rng::new(7);
    for case in 0..200 {
        let n = rng.range(1, 40) as usize;
        let workers = rng.range(1, 6) as usize;
        let mut tests: Vec<SchedTest> = (0..n).map(|i| test(i, rng.range(0, 500))).collect();
        // speculative copies: some tests two, three or six times
        for _ in 0..rng.range(0, 10) {
            let i = rng.range(0, n as u64 - 1) as usize;
            for _ in 0..rng.range(1, 5) {
                tests.push(tests[i].clone());
            }
        }
        for plan in [
            plan(&tests, &params(workers, Some(rng.range(0, 20)))),
            plan(&tests, &params(workers, None)),
        ] {
            assert_covers(&tests, &plan);
            for b in &plan {
                let mut ids = b.tests.clone();
                ids.sort_unstable();
                ids.dedup();
                assert_eq!(
                    ids.len(),
                    b.tests.len(),
                    "case {case}: copies share a batch: {:?}",
                    b.tests
                );
            }
        }
    }
}

#[test]
fn copies_go_to_different_workers_when_there_are_enough() {
    // Two copies of the long test, two workers: one each, in parallel.
    let tests = vec![test(0, 1000), test(0, 1000), test(1, 10), test(2, 10)];
    let plan = plan(&tests, &params(2, Some(100)));
    assert_eq!(plan.len(), 2);
    assert!(plan.iter().all(|b| b.tests.contains(&0)));
}

#[test]
fn deterministic_for_the_same_input() {
    let mut rng = Rng::new(3);
    let d = bench_like_ms(&mut rng, 2000);
    for known in [true, false] {
        let tests = sched_tests(&d, known);
        let a = plan(&tests, &params(8, known.then_some(10)));
        let b = plan(&tests, &params(8, known.then_some(10)));
        assert_eq!(a, b);
    }
}

#[test]
fn heaviest_batch_first() {
    let mut rng = Rng::new(11);
    let tests = sched_tests(&bench_like_ms(&mut rng, 500), true);
    let plan = plan(&tests, &params(8, Some(10)));
    assert!(plan.windows(2).all(|w| w[0].expected >= w[1].expected));
    let startup_total = ms(10) * plan.len() as u32;
    let sum: Duration = tests.iter().map(|t| t.expected).sum();
    assert_eq!(
        plan.iter().map(|b| b.expected).sum::<Duration>(),
        sum + startup_total
    );
}

#[test]
fn byte_cap_is_respected() {
    let tests: Vec<SchedTest> = (0..1000)
        .map(|i| SchedTest {
            id_bytes: 100 + i % 37,
            ..test(i, 1 + (i as u64 % 50))
        })
        .collect();
    let p = PlanParams {
        max_id_bytes: 2000,
        ..params(3, Some(1))
    };
    let plan = plan(&tests, &p);
    assert_covers(&tests, &plan);
    for b in &plan {
        let bytes: usize = b.tests.iter().map(|&i| tests[i].id_bytes).sum();
        assert!(bytes <= 2000, "{bytes} bytes");
    }
    // A single ID over the cap still runs, alone.
    let huge = vec![
        SchedTest {
            id_bytes: 5000,
            ..test(0, 1)
        },
        test(1, 1),
    ];
    let plan = plan_tuned(
        &huge,
        &PlanParams {
            max_id_bytes: 2000,
            ..params(1, Some(1))
        },
        &TUNING,
    );
    assert_covers(&huge, &plan);
    assert_eq!(plan.len(), 2);
}

#[test]
fn start_up_cost_shapes_the_batch_count() {
    let mut rng = Rng::new(5);
    let tests = sched_tests(&bench_like_ms(&mut rng, 500), true);
    let cheap = plan(&tests, &params(8, Some(1))).len();
    let dear = plan(&tests, &params(8, Some(2000))).len();
    assert!(
        cheap > 8 && cheap <= 8 * 7,
        "{cheap} batches with a cheap start-up"
    );
    assert_eq!(dear, 8, "one batch per worker when start-up is expensive");
    // No history: round-robin into a few batches per worker.
    let cold = plan(
        &sched_tests(&bench_like_ms(&mut rng, 500), false),
        &params(8, None),
    );
    assert!(
        (2 * 8..=5 * 8).contains(&cold.len()),
        "{} batches cold",
        cold.len()
    );
}

#[test]
fn without_history_tests_are_dealt_round_robin() {
    let tests: Vec<SchedTest> = (0..16)
        .map(|i| SchedTest {
            known: false,
            ..test(i, 1000)
        })
        .collect();
    let plan = plan(&tests, &params(4, Some(100_000)));
    assert_eq!(plan.len(), 4);
    for b in &plan {
        assert_eq!(b.tests.len(), 4);
        // each batch samples the whole discovery order, not one stretch of it
        let lo = b.tests.iter().min().unwrap();
        let hi = b.tests.iter().max().unwrap();
        assert!(hi - lo >= 8, "{:?}", b.tests);
    }
}

#[test]
fn tests_that_may_retry_run_first_with_room_for_their_retry() {
    let mut tests: Vec<SchedTest> = (0..200).map(|i| test(i, 50)).collect();
    tests[150].may_retry = true;
    tests[151].may_retry = true;
    let startup = 20;
    let plan = plan(&tests, &params(4, Some(startup)));
    // They run first, on their own, so a failure is retried early.
    assert_eq!(plan[0].tests, vec![150, 151]);
    assert!(plan[1..]
        .iter()
        .all(|b| !b.tests.contains(&150) && !b.tests.contains(&151)));
    let mut all: Vec<usize> = plan.iter().flat_map(|b| b.tests.iter().copied()).collect();
    all.sort_unstable();
    assert_eq!(all, (0..200).collect::<Vec<_>>());
    // The regular work is spread so that one worker has room for the early
    // batch and a retry of it: simulate the queue with one failure.
    let early = plan[0].expected;
    let mut loads = vec![Duration::ZERO; 4];
    loads[0] = early * 2;
    for b in &plan[1..] {
        let w = (0..4).min_by_key(|&w| loads[w]).unwrap();
        loads[w] += b.expected;
    }
    let (lo, hi) = (loads.iter().min().unwrap(), loads.iter().max().unwrap());
    assert!(*hi - *lo <= ms(2 * 50 + 2 * startup), "{loads:?}");

    // When every test may be retried, that tells nothing: plain plan.
    let all: Vec<SchedTest> = tests
        .iter()
        .map(|t| SchedTest {
            may_retry: true,
            ..t.clone()
        })
        .collect();
    let plain: Vec<SchedTest> = tests
        .iter()
        .map(|t| SchedTest {
            may_retry: false,
            ..t.clone()
        })
        .collect();
    assert_eq!(
        plan_tuned(&all, &params(4, Some(1)), &TUNING),
        plan_tuned(&plain, &params(4, Some(1)), &TUNING)
    );
}

#[test]
fn edge_cases() {
    assert!(plan(&[], &params(4, None)).is_empty());
    let one = plan(&[test(9, 5)], &params(8, None));
    assert_eq!(
        one,
        vec![PlannedBatch {
            tests: vec![9],
            expected: ms(5)
        }]
    );
    // all-zero durations (e.g. a suite of instant tests): one batch per worker
    let zeros: Vec<SchedTest> = (0..100).map(|i| test(i, 0)).collect();
    assert_eq!(plan(&zeros, &params(4, Some(5))).len(), 4);
    assert_eq!(
        plan(&zeros, &params(0, None)).len(),
        1,
        "parallelism 0 acts as 1"
    );
}

/// Benchmark, not a check: `cargo test --release sched_bench -- --ignored --nocapture`
#[test]
#[ignore]
fn sched_bench_100k() {
    let mut rng = Rng::new(1);
    for n in [100_000, 20_000] {
        let d = bench_like_ms(&mut rng, n);
        let files = uneven_files(&mut Rng::new(2), n);
        for (label, known, local) in [
            ("warm", true, false),
            ("cold", false, false),
            ("warm, files", true, true),
            ("cold, files", false, true),
        ] {
            let mut tests = sched_tests(&d, known);
            if local {
                for (t, &f) in tests.iter_mut().zip(&files) {
                    t.locality = Some(f);
                }
            }
            let start = std::time::Instant::now();
            let plan = plan(&tests, &params(64, known.then_some(50)));
            let took = start.elapsed();
            println!(
                "{n} tests ({label}), parallelism 64: {} batches in {:.1} ms",
                plan.len(),
                took.as_secs_f64() * 1000.0
            );
        }
    }
}

#[test]
fn small_suites_of_expensive_runners_get_one_batch_per_worker_when_cold() {
    let tests = sched_tests(&[40; 50], false);
    let cold = |min_tests| {
        plan(
            &tests,
            &PlanParams {
                unknown_startup_min_fraction: Some(4),
                unknown_startup_min_tests: min_tests,
                ..params(4, None)
            },
        )
    };
    assert!(cold(0).len() > 4, "the fraction alone cuts a tail");
    let batches = cold(40);
    assert_eq!(batches.len(), 4, "{batches:?}");
    assert_covers(&tests, &batches);
    // A cheap runner (the default framework's settings) keeps its tail.
    let cheap = plan(&tests, &params(4, None));
    assert!(cheap.len() > 4, "{} batches", cheap.len());
}

/// `ms` as tests of `files` files: test `i` is in file `file_of(i)`.
fn in_files(ms: &[u64], known: bool, file_of: impl Fn(usize) -> u32) -> Vec<SchedTest> {
    sched_tests(ms, known)
        .into_iter()
        .enumerate()
        .map(|(i, t)| SchedTest {
            locality: Some(file_of(i)),
            ..t
        })
        .collect()
}

/// Σ over files of the batches that hold some of its tests.
fn file_batches(tests: &[SchedTest], plan: &[PlannedBatch]) -> usize {
    let mut pairs: Vec<(u32, usize)> = plan
        .iter()
        .enumerate()
        .flat_map(|(b, batch)| {
            batch
                .tests
                .iter()
                .map(move |&i| (tests[i].locality.unwrap_or(u32::MAX), b))
        })
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    pairs.len()
}

/// Files of uneven sizes (1 to 40 tests), in discovery order.
fn uneven_files(rng: &mut Rng, n: usize) -> Vec<u32> {
    let mut out = Vec::with_capacity(n);
    let mut file = 0;
    while out.len() < n {
        let size = rng.range(1, 40) as usize;
        out.extend(std::iter::repeat(file).take(size.min(n - out.len())));
        file += 1;
    }
    out
}

#[test]
fn tests_of_a_file_stay_together_and_the_plan_stays_balanced() {
    for seed in 0..40u64 {
        let mut rng = Rng::new(seed);
        let d = bench_like_ms(&mut rng, 500);
        let files = uneven_files(&mut rng, d.len());
        let actual: Vec<Duration> = d.iter().map(|&v| ms(v)).collect();
        for (workers, startup) in [(8, 10), (4, 10), (4, 400), (16, 50)] {
            let local = in_files(&d, true, |i| files[i]);
            let opaque = sched_tests(&d, true);
            let p = params(workers, Some(startup));
            let with = plan(&local, &p);
            let without = plan(&opaque, &p);
            assert_covers(&local, &with);
            let span = |plan: &[PlannedBatch]| makespan(plan, &actual, workers, ms(startup));
            let lb = lower_bound(&actual, workers) + ms(startup);
            assert!(
                span(&with).as_secs_f64() <= 1.03 * span(&without).as_secs_f64()
                    && span(&with).as_secs_f64() <= 1.10 * lb.as_secs_f64(),
                "seed {seed}, {workers} workers, start-up {startup}: {:?} with locality, {:?} without, LB {lb:?}",
                span(&with),
                span(&without)
            );
            // Each batch boundary splits at most about one file.
            let distinct = files.iter().max().unwrap() + 1;
            let pairs = file_batches(&local, &with);
            assert!(
                pairs <= distinct as usize + 2 * with.len(),
                "seed {seed}: {pairs} (file, batch) pairs for {distinct} files in {} batches",
                with.len()
            );
            assert!(pairs < file_batches(&local, &without));
        }
    }
}

#[test]
fn cold_plans_keep_files_together_too() {
    let mut rng = Rng::new(9);
    let d = bench_like_ms(&mut rng, 1000);
    let files = uneven_files(&mut rng, d.len());
    let tests = in_files(&d, false, |i| files[i]);
    let p = PlanParams {
        unknown_startup_min_fraction: Some(4),
        unknown_startup_min_tests: 40,
        ..params(4, None)
    };
    let batches = plan(&tests, &p);
    assert_covers(&tests, &batches);
    assert_eq!(
        batches.len(),
        4,
        "one batch per sandbox until start-up is known"
    );
    // Balanced by count (every guess is the same), within the 1% slack a
    // worker may overshoot its share by to keep a piece whole…
    let sizes: Vec<usize> = batches.iter().map(|b| b.tests.len()).collect();
    assert!(sizes.iter().all(|&n| (247..=253).contains(&n)), "{sizes:?}");
    // …and at most one file per sandbox is shared with another, beside
    // the files larger than a cold piece (an eighth of a share: 31 tests),
    // which are cut in two.
    let distinct = *files.iter().max().unwrap() as usize + 1;
    let piece = 1000 / 4 / 8;
    let big = (0..distinct as u32)
        .filter(|&f| files.iter().filter(|&&g| g == f).count() > piece)
        .count();
    assert!(big > 0, "the suite has files larger than a piece");
    assert!(file_batches(&tests, &batches) <= distinct + 3 + big);
}

#[test]
fn a_file_larger_than_a_workers_share_is_split() {
    // One file holds 90% of the work.
    let mut tests: Vec<SchedTest> = (0..100)
        .map(|i| SchedTest {
            locality: Some(u32::from(i >= 90)),
            ..test(i, 100)
        })
        .collect();
    tests.push(SchedTest {
        locality: Some(7),
        ..test(100, 100)
    });
    let batches = plan(&tests, &params(4, Some(1000)));
    assert_covers(&tests, &batches);
    assert_eq!(batches.len(), 4);
    let loads: Vec<u128> = batches.iter().map(|b| b.expected.as_millis()).collect();
    let (lo, hi) = (loads.iter().min().unwrap(), loads.iter().max().unwrap());
    assert!(hi - lo <= 100, "{loads:?}");
}

#[test]
fn locality_within_20_percent_of_the_optimum_on_small_random_instances() {
    let mut rng = Rng::new(43);
    for case in 0..300 {
        let n = rng.range(1, 9) as usize;
        let workers = rng.range(1, 4) as usize;
        let startup = [0, 5, 50][case % 3];
        let d: Vec<u64> = (0..n)
            .map(|_| {
                if rng.unit() < 0.2 {
                    rng.range(200, 1000)
                } else {
                    rng.range(1, 100)
                }
            })
            .collect();
        let tests: Vec<SchedTest> = d
            .iter()
            .enumerate()
            .map(|(i, &v)| SchedTest {
                locality: Some(rng.range(0, 2) as u32),
                ..test(i, v)
            })
            .collect();
        let plan = plan(&tests, &params(workers, Some(startup)));
        assert_covers(&tests, &plan);
        let actual: Vec<Duration> = d.iter().map(|&v| ms(v)).collect();
        let span = makespan(&plan, &actual, workers, ms(startup)).as_millis() as u64;
        let opt = brute_force_optimum(&d, workers, startup);
        assert!(
            span as f64 <= 1.2 * opt as f64,
            "case {case}: {d:?} on {workers} workers (start-up {startup}): {span} vs optimum {opt}"
        );
    }
}

#[test]
fn copies_never_share_a_batch_with_locality() {
    let mut rng = Rng::new(8);
    for _ in 0..100 {
        let n = rng.range(1, 40) as usize;
        let workers = rng.range(1, 6) as usize;
        let mut tests: Vec<SchedTest> = (0..n)
            .map(|i| SchedTest {
                locality: Some((i / 5) as u32),
                ..test(i, rng.range(0, 500))
            })
            .collect();
        for _ in 0..rng.range(0, 6) {
            let i = rng.range(0, n as u64 - 1) as usize;
            tests.push(tests[i].clone());
        }
        let plan = plan(&tests, &params(workers, Some(rng.range(0, 20))));
        assert_covers(&tests, &plan);
        for b in &plan {
            let mut ids = b.tests.clone();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), b.tests.len(), "{:?}", b.tests);
        }
    }
}

#[test]
fn batches_are_planned_well_inside_the_timeout() {
    let tests: Vec<SchedTest> = (0..200).map(|i| test(i, 1000)).collect();
    let timeout = Duration::from_secs(20);
    let limit = batch_time_limit(timeout);
    for startup in [Some(2_000), Some(100), None] {
        // An expensive start-up wants one batch per sandbox (50 s each): the
        // timeout says no.
        let p = PlanParams {
            timeout: Some(timeout),
            ..params(4, startup)
        };
        let batches = plan(&tests, &p);
        assert_covers(&tests, &batches);
        assert!(
            batches.iter().all(|b| b.expected <= limit),
            "start-up {startup:?}: {:?}",
            batches.iter().map(|b| b.expected).collect::<Vec<_>>()
        );
    }
    // Even a start-up above the limit leaves batches of a quarter of it.
    let p = PlanParams {
        timeout: Some(timeout),
        ..params(4, Some(30_000))
    };
    let batches = plan(&tests, &p);
    assert!(batches.iter().all(|b| b.tests.len() == 2), "{batches:?}");
    // A test longer than the limit runs alone.
    let mut tests: Vec<SchedTest> = (0..40).map(|i| test(i, 500)).collect();
    tests.push(test(40, 15_000));
    let p = PlanParams {
        timeout: Some(timeout),
        ..params(2, Some(100))
    };
    let batches = plan(&tests, &p);
    assert_covers(&tests, &batches);
    let long = batches.iter().find(|b| b.tests.contains(&40)).unwrap();
    assert_eq!(long.tests, vec![40]);
    assert!(batches
        .iter()
        .filter(|b| !b.tests.contains(&40))
        .all(|b| b.expected <= limit));
    // With locality, the cap still holds.
    let tests: Vec<SchedTest> = (0..200)
        .map(|i| SchedTest {
            locality: Some((i / 50) as u32),
            ..test(i, 1000)
        })
        .collect();
    let p = PlanParams {
        timeout: Some(timeout),
        ..params(4, Some(2_000))
    };
    let batches = plan(&tests, &p);
    assert_covers(&tests, &batches);
    assert!(batches.iter().all(|b| b.expected <= limit));
    assert_eq!(
        file_batches(&tests, &batches),
        batches.len(),
        "one file each"
    );
}

#[test]
fn split_to_fit_keeps_order_and_fits() {
    let tests: Vec<usize> = (0..10).collect();
    // 1 s a test, 2 s to start, 6 s allowed: 4 tests fit, so 3 parts.
    let parts = split_to_fit(&tests, ms(1000), ms(2000), ms(6000));
    assert_eq!(parts, vec![vec![0, 1, 2, 3], vec![4, 5, 6], vec![7, 8, 9]]);
    // Already fits: unchanged.
    assert_eq!(
        split_to_fit(&tests, ms(100), ms(2000), ms(6000)),
        vec![tests.clone()]
    );
    assert_eq!(
        split_to_fit(&tests, Duration::ZERO, ms(0), ms(1)),
        vec![tests.clone()]
    );
    // A test longer than the limit: one per part.
    assert_eq!(
        split_to_fit(&tests[..3], ms(9000), ms(0), ms(6000)).len(),
        3
    );
    // A start-up above the limit still leaves a quarter for tests.
    let parts = split_to_fit(&tests, ms(1000), ms(9000), ms(8000));
    assert_eq!(parts.len(), 5);
    assert!(split_to_fit(&[], ms(1), ms(1), ms(1)).is_empty());
}

#[test]
fn sandboxes_that_come_up_late_get_less_work() {
    // Eight containers as measured on the Docker bench: one up at once, the
    // others crowding the engine; 370 ms per batch.
    let ready: Vec<Duration> = [260, 550, 650, 730, 760, 800, 850, 900]
        .into_iter()
        .map(ms)
        .collect();
    let startup = ms(370);
    let mut rng = Rng::new(7);
    let durations = bench_like_ms(&mut rng, 500);
    let actual: Vec<Duration> = durations.iter().map(|&d| ms(d)).collect();
    let tests = sched_tests(&durations, true);
    let blind = plan(&tests, &params(8, Some(370)));
    let aware = plan(
        &tests,
        &PlanParams {
            sandbox_ready: ready.clone(),
            ..params(8, Some(370))
        },
    );
    assert_covers(&tests, &aware);
    let blind_span = makespan_after(&blind, &actual, &ready, startup);
    let aware_span = makespan_after(&aware, &actual, &ready, startup);
    // The bound: the work and one start-up per sandbox spread over the
    // time each sandbox has after it comes up.
    let work: Duration = actual.iter().sum::<Duration>() + startup * 8;
    let mean_ready = ready.iter().sum::<Duration>() / 8;
    let bound = mean_ready + work / 8;
    assert!(
        aware_span + ms(150) < blind_span,
        "aware {aware_span:?}, blind {blind_span:?}"
    );
    assert!(
        aware_span <= bound.mul_f64(1.03),
        "aware {aware_span:?}, bound {bound:?}"
    );
    // Without measured delays, nothing changes.
    let same = plan(
        &tests,
        &PlanParams {
            sandbox_ready: vec![ms(300); 8],
            ..params(8, Some(370))
        },
    );
    let tests_of = |p: &[PlannedBatch]| p.iter().map(|b| b.tests.clone()).collect::<Vec<_>>();
    assert_eq!(tests_of(&same), tests_of(&blind));
}
