use std::time::Duration;

use super::sim::{bench_like_ms, lower_bound, makespan, sched_tests, Rng};
use super::*;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Study, not a check: makespan / LB of the plan on bench-like suites under
/// several noise and start-up regimes. `cargo test --release study -- --ignored --nocapture`
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
                    let tests = sched_tests(&d, c.known);
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
                    };
                    let plan = plan_tuned(&tests, &params, tuning);
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
