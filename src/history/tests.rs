use super::*;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// A fresh scratch directory under the target dir's temp (removed on drop).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("offload-history-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run_with<'a>(tests: &[(&'a str, u64)]) -> RunTimings<'a> {
    run_of(tests, Execution::Sequential)
}

fn run_of<'a>(tests: &[(&'a str, u64)], execution: Execution) -> RunTimings<'a> {
    let mut run = RunTimings::new(tests.iter().map(|(id, _)| *id), execution);
    for (id, d) in tests {
        run.test(id, ms(*d));
    }
    run
}

/// A batch whose tests reported `tests_total` between them, without
/// timestamps.
fn overhead_of(run: &mut RunTimings<'_>, wall: Duration, tests_total: Duration, tests: usize) {
    run.batch(
        ANY_GROUP,
        BatchSample {
            wall,
            tests_total,
            span: None,
            tests,
        },
    );
}

fn batch_in<'a>(
    run: &mut RunTimings<'a>,
    group: &'a str,
    wall: Duration,
    tests_total: Duration,
    tests: usize,
) {
    run.batch(
        group,
        BatchSample {
            wall,
            tests_total,
            span: None,
            tests,
        },
    );
}

#[test]
fn path_is_named_after_the_config() {
    assert_eq!(
        path_in(Path::new("/p"), Path::new("/p/ci/offload-modal.toml")),
        PathBuf::from("/p/offload-modal.history.tsv")
    );
    assert_eq!(
        path_in(Path::new("."), Path::new("offload.toml")),
        PathBuf::from("./offload.history.tsv")
    );
}

#[test]
fn round_trip_through_the_file() {
    let dir = Scratch::new("roundtrip");
    let path = dir.0.join("offload.history.tsv");
    let odd = "tests/t.py::test_x[a\tb\\c\nd] with spaces";
    let mut run = run_with(&[("a::one", 120), (odd, 7)]);
    // A runner that writes when each test started: its tests' span is
    // measured, and the rest of the wall time is the fixed cost.
    for (wall, span) in [(400, 127), (390, 120), (900, 120)] {
        let sample = BatchSample {
            wall: ms(wall),
            tests_total: ms(120),
            span: Some(ms(span)),
            tests: 2,
        };
        run.batch("unit", sample);
    }
    save(&path, &run).unwrap();

    let h = History::load(&dir.0.join("no-junit.xml"), &path, std::iter::empty());
    assert_eq!(h.expected("a::one"), Some(ms(120)));
    assert_eq!(h.expected(odd), Some(ms(7)));
    // median of (273, 270, 780)
    assert_eq!(h.startup.get("unit"), Some(&ms(273)));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("# offload timing history"));
    let lines: Vec<&str> = text.lines().skip(1).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted, "lines are sorted, so merges stay line-local");
    // two tests, the group's start-up and the run's (`*`), the gap between
    // tests (median of 7, 0, 0 ms)
    assert_eq!(lines.len(), 5);
    assert_eq!(h.per_test.get(ANY_GROUP), Some(&ms(0)));
}

#[test]
fn stable_durations_leave_the_file_unchanged_and_real_changes_move_it() {
    let dir = Scratch::new("settle");
    let path = dir.0.join("h.tsv");
    save(&path, &run_with(&[("t", 100)])).unwrap();
    let before = std::fs::read_to_string(&path).unwrap();
    save(&path, &run_with(&[("t", 105)])).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    save(&path, &run_with(&[("t", 300)])).unwrap();
    let h = History::load(Path::new("/nonexistent"), &path, std::iter::empty());
    assert_eq!(h.expected("t"), Some(ms(200)));
}

#[test]
fn undiscovered_tests_age_out_and_discovered_ones_stay() {
    let mut file = HistoryFile::default();
    file = merge_run(file, &run_with(&[("gone", 10), ("kept", 10)]));
    for _ in 0..MAX_MISSED_RUNS {
        // "kept" is discovered but does not run (e.g. a cancelled run).
        file = merge_run(file, &RunTimings::new(["kept"], Execution::Sequential));
        assert!(file.get(Kind::Test, "gone").is_some());
    }
    file = merge_run(file, &RunTimings::new(["kept"], Execution::Sequential));
    assert!(file.get(Kind::Test, "gone").is_none());
    assert_eq!(file.get(Kind::Test, "kept").unwrap().missed, 0);
}

#[test]
fn size_is_capped_dropping_the_longest_missed_first() {
    let mut file = HistoryFile::default();
    for i in 0..MAX_ENTRIES + 5 {
        file.map_mut(Kind::Test).insert(
            format!("old{i:06}"),
            Entry {
                value: ms(1),
                missed: 3,
            },
        );
    }
    let file = merge_run(file, &run_with(&[("new", 5)]));
    assert_eq!(file.len(), MAX_ENTRIES);
    assert!(file.get(Kind::Test, "new").is_some());
}

#[test]
fn damaged_lines_and_conflict_markers_are_skipped() {
    let text = "# header\n\
        test\ta\t10.0\t0\n\
        <<<<<<< HEAD\n\
        test\tb\t20.0\t0\n\
        =======\n\
        test\tb\t40.0\t2\n\
        >>>>>>> other\n\
        test\tc\tnot-a-number\t0\n\
        test\td\t-5\t0\n\
        test\te\t5\n\
        startup\tunit\t300.0\t1\n\
        bogus\tline\n\
        test\tf\t1.0\t0\textra\n\
        \u{0}\u{1}binary junk\n";
    let f = parse(text);
    assert_eq!(f.skipped, 9);
    assert_eq!(f.get(Kind::Test, "a").unwrap().value, ms(10));
    // both sides of the conflict: averaged, fewest missed
    assert_eq!(
        (*f.get(Kind::Test, "b").unwrap()),
        Entry {
            value: ms(30),
            missed: 0
        }
    );
    assert_eq!(f.get(Kind::Startup, "unit").unwrap().value, ms(300));
    assert_eq!(f.len(), 3);
}

#[test]
fn an_unreadable_file_is_an_empty_history() {
    let dir = Scratch::new("corrupt");
    let path = dir.0.join("h.tsv");
    std::fs::write(&path, [0xff, 0xfe, 0x00, b'\n', b'\t', 0x80]).unwrap();
    let h = History::load(&dir.0.join("junit.xml"), &path, std::iter::empty());
    assert!(h.durations.is_empty());
    // and saving over it works
    save(&path, &run_with(&[("t", 3)])).unwrap();
    assert_eq!(
        History::load(Path::new("/x"), &path, std::iter::empty()).expected("t"),
        Some(ms(3))
    );
}

#[test]
fn union_merge_of_two_branches_is_order_independent() {
    let base = render(&merge_run(
        HistoryFile::default(),
        &run_with(&[("a", 100), ("b", 50)]),
    ));
    let ours = render(&merge_run(
        parse(&base),
        &run_with(&[("a", 300), ("b", 50), ("c", 9)]),
    ));
    let theirs = render(&merge_run(
        parse(&base),
        &run_with(&[("a", 100), ("b", 500)]),
    ));
    let union_1 = format!("{ours}{theirs}");
    let union_2 = format!("{theirs}{ours}");
    assert_eq!(parse(&union_1), parse(&union_2));
    let merged = parse(&union_1);
    assert_eq!(merged.get(Kind::Test, "a").unwrap().value, ms(150));
    assert_eq!(
        merged.get(Kind::Test, "b").unwrap().value,
        ms(162) + Duration::from_micros(500)
    );
    assert!(merged.get(Kind::Test, "c").is_some());
}

#[test]
fn concurrent_writers_lose_nothing() {
    let dir = Scratch::new("concurrent");
    let path = dir.0.join("h.tsv");
    let all: Vec<String> = (0..8)
        .flat_map(|w| (0..10).map(move |k| format!("w{w}-t{k}")))
        .collect();
    let threads: Vec<_> = (0..8u64)
        .map(|w| {
            let (path, all) = (path.clone(), all.clone());
            std::thread::spawn(move || {
                for k in 0..10u64 {
                    // Every run discovers the whole suite but measures one test.
                    let id = format!("w{w}-t{k}");
                    let mut run =
                        RunTimings::new(all.iter().map(String::as_str), Execution::Sequential);
                    run.test(&id, ms(10 + k));
                    save(&path, &run).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let f = parse(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(f.skipped, 0);
    assert_eq!(f.len(), 80, "no save lost another's update");
    for w in 0..8 {
        for k in 0..10 {
            let key = format!("w{w}-t{k}");
            assert_eq!(f.get(Kind::Test, &key).unwrap().value, ms(10 + k));
        }
    }
    let leftovers: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn junit_fills_what_the_file_does_not_know() {
    let dir = Scratch::new("junit");
    let junit = dir.0.join("junit.xml");
    std::fs::write(
        &junit,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites><testsuite name="offload" tests="3">
<testcase name="a" classname="x" time="0.250"/>
<testcase name="b" classname="x" time="1.5"/>
<testcase name="b" classname="x" time="0.5"/>
</testsuite></testsuites>"#,
    )
    .unwrap();
    let path = dir.0.join("h.tsv");
    save(&path, &run_with(&[("a", 100)])).unwrap();
    let h = History::load(&junit, &path, ["a", "b"].into_iter());
    assert_eq!(h.expected("a"), Some(ms(100)), "the history file wins");
    assert_eq!(h.expected("b"), Some(ms(1500)), "the longest of repeats");
}

#[test]
fn estimates_use_the_group_median_for_unknown_tests() {
    let mut h = History::default();
    for (id, d) in [("u1", 10), ("u2", 30), ("u3", 1000), ("s1", 5000)] {
        h.durations.insert(id.into(), ms(d));
    }
    h.startup.insert("unit".into(), ms(100));
    h.startup.insert("slow".into(), ms(400));
    let tests = [
        ("u1", "unit"),
        ("u2", "unit"),
        ("u3", "unit"),
        ("new-u", "unit"),
        ("s1", "slow"),
        ("new-s", "slow"),
        ("new-x", "other"),
    ];
    let e = h.estimate(tests.iter().copied());
    assert_eq!(e.coverage(), (4, 7));
    assert_eq!(e.durations[3], ms(30), "median of the unit group");
    assert_eq!(e.durations[5], ms(5000));
    assert_eq!(e.durations[6], ms(1000), "median of everything known");
    assert_eq!(e.known, vec![true, true, true, false, true, false, false]);
    // (4 × 100 + 2 × 400) / 6 tests with a known group start-up
    assert_eq!(e.startup, Some(ms(200)));

    let empty = History::default().estimate(tests.iter().copied());
    assert_eq!(empty.coverage(), (0, 7));
    assert!(empty.durations.iter().all(|&d| d == NOMINAL));
    assert_eq!(empty.startup, None);
    // A start-up cost means nothing against nominal durations.
    let only_startup = History {
        startup: h.startup.clone(),
        ..History::default()
    };
    assert_eq!(only_startup.estimate(tests.iter().copied()).startup, None);
}

#[test]
fn the_estimate_error_is_learned() {
    let ids: Vec<(String, u64)> = (0..10).map(|i| (format!("t{i}"), 100)).collect();
    let first: Vec<(&str, u64)> = ids.iter().map(|(id, d)| (id.as_str(), *d)).collect();
    let file = merge_run(HistoryFile::default(), &run_with(&first));
    assert!(
        file.get(Kind::Error, ANY_GROUP).is_none(),
        "nothing to compare yet"
    );
    // every test 20% slower than expected: 0.2 = 200 per mille
    let slower: Vec<(&str, u64)> = ids.iter().map(|(id, _)| (id.as_str(), 120)).collect();
    let file = merge_run(file, &run_with(&slower));
    let text = render(&file);
    assert!(text.contains("error\t*\t200.0\t0\n"), "{text}");
    let dir = Scratch::new("error");
    let path = dir.0.join("h.tsv");
    std::fs::write(&path, text).unwrap();
    let h = History::load(Path::new("/x"), &path, std::iter::empty());
    assert!((h.estimate_error.unwrap() - 0.2).abs() < 1e-9);
    assert_eq!(
        h.estimate(first.iter().map(|(id, _)| (*id, "g")))
            .estimate_error,
        h.estimate_error
    );
}

/// Benchmark, not a check: `cargo test --release history_bench -- --ignored --nocapture`
#[test]
#[ignore]
fn history_bench_20k() {
    let dir = Scratch::new("bench");
    let path = dir.0.join("h.tsv");
    let ids: Vec<String> = (0..20_000)
        .map(|i| format!("m{:03}/t{i:05}_0ms_pass", i / 100))
        .collect();
    let mut run = RunTimings::new(ids.iter().map(String::as_str), Execution::Sequential);
    for (i, id) in ids.iter().enumerate() {
        run.test(id, Duration::from_micros(10 + i as u64 % 7));
    }
    overhead_of(&mut run, ms(100), ms(1), 1);
    let t = std::time::Instant::now();
    save(&path, &run).unwrap();
    let first = t.elapsed();
    let t = std::time::Instant::now();
    let h = History::load(&dir.0.join("none.xml"), &path, std::iter::empty());
    let e = h.estimate(ids.iter().map(|id| (id.as_str(), "all")));
    let load = t.elapsed();
    let t = std::time::Instant::now();
    save(&path, &run).unwrap();
    let second = t.elapsed();
    let t = std::time::Instant::now();
    let text = render(&merge_run(read_file(&path), &run));
    println!(
        "read+merge+render {:.1} ms ({} bytes)",
        t.elapsed().as_secs_f64() * 1e3,
        text.len()
    );
    println!(
        "20,000 tests: first save {:.1} ms, load+estimate {:.1} ms ({} known), second save {:.1} ms",
        first.as_secs_f64() * 1e3,
        load.as_secs_f64() * 1e3,
        e.coverage().0,
        second.as_secs_f64() * 1e3
    );
}

#[test]
fn durations_are_written_in_tenths_of_milliseconds() {
    let mut file = HistoryFile::default();
    file.map_mut(Kind::Test).insert(
        "slow\ttest".into(),
        Entry {
            value: Duration::from_micros(1_234_567_850),
            missed: 12,
        },
    );
    assert_eq!(
        render(&file).lines().nth(1),
        Some("test\tslow\\ttest\t1234567.9\t12")
    );
}

#[test]
fn batch_overhead_is_split_into_start_up_and_per_test_cost() {
    let dir = Scratch::new("overhead");
    let path = dir.0.join("h.tsv");
    // Overhead 400 ms + 2 ms per test, a few milliseconds of noise.
    let mut run = run_with(&[("t", 10)]);
    for (n, noise) in [(3usize, 5u64), (3, 0), (120, 3), (124, 0), (126, 4)] {
        let overhead = ms(400 + 2 * n as u64 + noise);
        overhead_of(&mut run, ms(1000) + overhead, ms(1000), n);
    }
    save(&path, &run).unwrap();
    let h = History::load(&dir.0.join("no-junit.xml"), &path, std::iter::empty());
    let startup = h.startup[ANY_GROUP].as_secs_f64() * 1000.0;
    let per_test = h.per_test[ANY_GROUP].as_secs_f64() * 1000.0;
    assert!((395.0..=410.0).contains(&startup), "start-up {startup} ms");
    assert!((1.9..=2.1).contains(&per_test), "per test {per_test} ms");
    let e = h.estimate([("t", "g"), ("new", "g")]);
    assert_eq!(e.per_test, h.per_test[ANY_GROUP]);
    assert_eq!(e.startup, Some(h.startup[ANY_GROUP]));

    // Batches all of one size cannot tell the two apart: the per-test cost
    // is kept, and the start-up is what remains of the overhead.
    let mut run = run_with(&[("t", 10)]);
    for _ in 0..3 {
        overhead_of(&mut run, ms(1000 + 500 + 100), ms(1000), 50);
    }
    save(&path, &run).unwrap();
    let h2 = History::load(&dir.0.join("no-junit.xml"), &path, std::iter::empty());
    assert_eq!(h2.per_test[ANY_GROUP], h.per_test[ANY_GROUP]);
    let startup = h2.startup[ANY_GROUP].as_secs_f64() * 1000.0;
    // 600 ms − 50 × ~2 ms ≈ 500 ms; the old value moves halfway to it.
    assert!((440.0..=460.0).contains(&startup), "start-up {startup} ms");
}

#[test]
fn each_group_learns_its_own_start_up_with_the_runners_per_test_cost() {
    let dir = Scratch::new("groups");
    let path = dir.0.join("h.tsv");
    let mut run = run_with(&[("t", 10)]);
    // "slow" starts in 900 ms, "fast" in 100 ms; both runners add 2 ms a test.
    for (group, start, sizes) in [("slow", 900, [2usize, 40, 80]), ("fast", 100, [5, 60, 120])] {
        for n in sizes {
            let overhead = ms(start + 2 * n as u64);
            batch_in(&mut run, group, ms(500) + overhead, ms(500), n);
        }
    }
    save(&path, &run).unwrap();
    let h = History::load(&dir.0.join("no-junit.xml"), &path, std::iter::empty());
    let at = |map: &BTreeMap<String, Duration>, key: &str| map[key].as_secs_f64() * 1000.0;
    assert!((at(&h.per_test, ANY_GROUP) - 2.0).abs() < 0.01);
    assert!((at(&h.startup, "slow") - 900.0).abs() < 1.0);
    assert!((at(&h.startup, "fast") - 100.0).abs() < 1.0);
    assert!(
        !h.per_test.contains_key("slow"),
        "the per-test cost is the runner's"
    );
    // Estimates weigh the groups' start-ups by their numbers of tests.
    let e = h.estimate([
        ("t", "slow"),
        ("t2", "fast"),
        ("t3", "fast"),
        ("t4", "fast"),
    ]);
    let startup = e.startup.unwrap().as_secs_f64() * 1000.0;
    assert!((startup - 300.0).abs() < 1.0, "{startup}");
}

#[test]
fn per_test_cost_is_fitted_across_groups_when_no_group_varies() {
    let dir = Scratch::new("pooled");
    let path = dir.0.join("h.tsv");
    let mut run = run_with(&[("t", 10)]);
    // One big batch per sandbox for "main", two small ones for "flaky":
    // 400 ms start-up and 2 ms a test in both.
    for (group, n) in [
        ("main", 124usize),
        ("main", 125),
        ("main", 123),
        ("flaky", 3),
        ("flaky", 3),
    ] {
        batch_in(&mut run, group, ms(1000 + 400 + 2 * n as u64), ms(1000), n);
    }
    save(&path, &run).unwrap();
    let h = History::load(&dir.0.join("no-junit.xml"), &path, std::iter::empty());
    let per_test = h.per_test[ANY_GROUP].as_secs_f64() * 1000.0;
    assert!((per_test - 2.0).abs() < 0.01, "{per_test}");
    for group in ["main", "flaky", ANY_GROUP] {
        let startup = h.startup[group].as_secs_f64() * 1000.0;
        assert!((startup - 400.0).abs() < 1.0, "{group}: {startup}");
    }
}

#[test]
fn batches_that_ran_tests_side_by_side_teach_no_start_up() {
    // nextest: four tests of 1 s each on four cores finish in 1.1 s.
    let mut run = run_with(&[("t", 10)]);
    overhead_of(&mut run, ms(1100), ms(4000), 4);
    let file = merge_run(HistoryFile::default(), &run);
    assert!(file.get(Kind::Startup, ANY_GROUP).is_none());
}

#[test]
fn junit_is_not_read_when_the_file_knows_every_test() {
    let dir = Scratch::new("junit-skip");
    let junit = dir.0.join("junit.xml");
    std::fs::write(
        &junit,
        r#"<testsuites><testsuite name="offload" tests="1">
<testcase name="b" classname="x" time="1.5"/>
</testsuite></testsuites>"#,
    )
    .unwrap();
    let path = dir.0.join("h.tsv");
    save(&path, &run_with(&[("a", 100)])).unwrap();
    let h = History::load(&junit, &path, ["a"].into_iter());
    assert_eq!(h.expected("b"), None);
}

#[test]
fn equal_batches_do_not_pass_per_test_cost_off_as_start_up() {
    // pytest, cold: four batches of 300 tests; 1 s start-up and 2 ms a test
    // give each an overhead of 1.6 s. Nothing tells the two apart: no
    // start-up is learned rather than a wrong one.
    let mut run = run_with(&[("t", 10)]);
    for noise in [0, 30, 10, 20] {
        overhead_of(&mut run, ms(5000 + 1600 + noise), ms(5000), 300);
    }
    let file = merge_run(HistoryFile::default(), &run);
    assert!(file.get(Kind::Startup, ANY_GROUP).is_none());
    assert!(file.get(Kind::PerTest, ANY_GROUP).is_none());

    // Once a run has told the per-test cost, equal batches take it off.
    let mut file = file;
    file.map_mut(Kind::PerTest).insert(
        ANY_GROUP.into(),
        Entry {
            value: ms(2),
            missed: 0,
        },
    );
    let file = merge_run(file, &run);
    let startup = file.get(Kind::Startup, ANY_GROUP).unwrap().value;
    assert!(
        (ms(1000)..=ms(1040)).contains(&startup),
        "{startup:?}: the overhead less 300 × 2 ms"
    );
    assert_eq!(file.get(Kind::PerTest, ANY_GROUP).unwrap().value, ms(2));
}

#[test]
fn the_per_test_slope_shrugs_off_a_noisy_batch() {
    // 800 ms start-up, 1 ms a test; one batch slowed by 3 s (a busy machine).
    let mut run = run_with(&[("t", 10)]);
    for (n, extra) in [(20u64, 0u64), (40, 5), (100, 3000), (200, 2), (400, 4)] {
        overhead_of(&mut run, ms(2000 + 800 + n + extra), ms(2000), n as usize);
    }
    let file = merge_run(HistoryFile::default(), &run);
    let per_test = file.get(Kind::PerTest, ANY_GROUP).unwrap().value;
    let startup = file.get(Kind::Startup, ANY_GROUP).unwrap().value;
    assert!(
        (Duration::from_micros(950)..=Duration::from_micros(1100)).contains(&per_test),
        "{per_test:?}"
    );
    assert!((ms(790)..=ms(820)).contains(&startup), "{startup:?}");
}

#[test]
fn a_per_test_cost_never_leaves_a_batch_a_negative_start_up() {
    // Overheads that fall with size (noise): the slope is clamped at zero.
    let mut run = run_with(&[("t", 10)]);
    for (n, overhead) in [(10usize, 900u64), (40, 600), (100, 500)] {
        overhead_of(&mut run, ms(1000 + overhead), ms(1000), n);
    }
    let file = merge_run(HistoryFile::default(), &run);
    assert_eq!(file.get(Kind::PerTest, ANY_GROUP).unwrap().value, ms(0));
    assert_eq!(file.get(Kind::Startup, ANY_GROUP).unwrap().value, ms(600));
}

#[test]
fn timestamps_measure_start_up_and_gaps_of_sequential_tests() {
    // A runner that writes when each test started, one after another: 40
    // tests of 10 ms with 1 ms between them span 439 ms; the batch took 1 s.
    let mut run = run_with(&[("t", 10)]);
    for wall in [1000, 1010, 990] {
        let sample = BatchSample {
            wall: ms(wall),
            tests_total: ms(400),
            span: Some(ms(439)),
            tests: 40,
        };
        run.batch("g", sample);
    }
    let file = merge_run(HistoryFile::default(), &run);
    assert_eq!(file.get(Kind::PerTest, ANY_GROUP).unwrap().value, ms(1));
    assert_eq!(file.get(Kind::Startup, "g").unwrap().value, ms(561));
}

#[test]
fn side_by_side_batches_learn_start_up_from_their_span() {
    // nextest: 100 tests of 20 ms on 4 cores, 2 s of test time in 0.5 s of
    // span, in a batch of 1.3 s: 0.8 s of cargo and listing.
    let mut run = run_of(&[("t", 20)], Execution::SideBySide);
    for wall in [1300, 1350, 1280] {
        let sample = BatchSample {
            wall: ms(wall),
            tests_total: ms(2000),
            span: Some(ms(500)),
            tests: 100,
        };
        run.batch("unit", sample);
    }
    // Without timestamps such a batch tells nothing.
    let sample = BatchSample {
        wall: ms(9000),
        tests_total: ms(2000),
        span: None,
        tests: 100,
    };
    run.batch("unit", sample);
    let file = merge_run(HistoryFile::default(), &run);
    assert_eq!(file.get(Kind::Startup, "unit").unwrap().value, ms(800));
    assert!(
        file.get(Kind::PerTest, ANY_GROUP).is_none(),
        "the per-test cost is inside the span"
    );
    let text = render(&file);
    assert!(text.contains("concurrency\tunit\t4000.0\t0\n"), "{text}");

    let dir = Scratch::new("concurrency");
    let path = dir.0.join("h.tsv");
    std::fs::write(&path, text).unwrap();
    let mut h = History::load(Path::new("/x"), &path, std::iter::empty());
    assert_eq!(h.concurrency.get("unit"), Some(&4.0));
    h.durations.insert("t".into(), ms(20));
    let e = h.estimate([("t", "unit")]);
    assert_eq!(e.concurrency, 4.0);
    assert_eq!(e.startup, Some(ms(800)));
    assert_eq!(History::default().estimate([("t", "g")]).concurrency, 1.0);
}

#[test]
fn sandbox_ready_delays_are_learned_by_rank_and_drive_the_estimates() {
    let dir = Scratch::new("ready");
    let path = dir.0.join("offload.history.tsv");
    let mut run = run_with(&[("a", 100), ("b", 100)]);
    // Reported in whatever order the sandboxes came up.
    run.sandboxes_ready(vec![ms(900), ms(300), ms(600)]);
    save(&path, &run).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("ready\t1\t300.0\t0\n"), "{text}");
    assert!(text.contains("ready\t3\t900.0\t0\n"), "{text}");
    let h = History::from_file(&path);
    assert_eq!(h.ready, vec![ms(300), ms(600), ms(900)]);
    let e = h.estimate([("a", "all"), ("b", "all")]);
    assert_eq!(e.ready, h.ready);
    // Nothing known about the tests: nominal durations cannot be weighed
    // against real delays.
    let e = h.estimate([("c", "all")]);
    assert!(e.ready.is_empty());

    // A run with two sandboxes moves their ranks (off by over 20%: halfway)
    // and ages the third.
    let mut run = run_with(&[("a", 100), ("b", 100)]);
    run.sandboxes_ready(vec![ms(100), ms(600)]);
    save(&path, &run).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("ready\t1\t200.0\t0\n"), "{text}");
    assert!(text.contains("ready\t2\t600.0\t0\n"), "{text}");
    assert!(text.contains("ready\t3\t900.0\t1\n"), "{text}");
    // A gap in the ranks ends the list.
    let mut file = parse(&text);
    file.map_mut(Kind::Ready).remove("2");
    assert_eq!(by_rank(file.map(Kind::Ready)), vec![ms(200)]);
}
