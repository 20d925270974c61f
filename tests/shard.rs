//! `offload run --shard K/N`, `offload collect --shard K/N`, `--failed` and
//! the flaky policy, end to end with the real binary on the shell fixture.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(120);

fn run_in(dir: &Path, args: &[&str]) -> Output {
    run_within(offload(dir, args, &[]), LIMIT)
}

fn assert_exit(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "{}", describe(out));
}

/// The shell fixture with `tests` (one ID per line in tests.txt).
fn project(tests: &[String]) -> TempDir {
    let dir = TempDir::with_fixture("shell");
    dir.write("tests.txt", &(tests.join("\n") + "\n"));
    dir
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("pass_{i:03}")).collect()
}

/// The IDs `offload collect --shard K/N` lists.
fn collected(dir: &Path, shard: &str) -> Vec<String> {
    let out = run_in(dir, &["collect", "--shard", shard]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let summary = lines.pop().unwrap_or_default();
    assert!(summary.ends_with("groups"), "{text}");
    lines
}

/// A history file giving test `i` a duration of 10..1000 ms (spread by a
/// fixed rule) and the group a start-up of 200 ms.
fn write_history(dir: &TempDir, tests: &[String]) -> BTreeMap<String, f64> {
    let mut text = String::from(
        "# offload timing history, format 1 (see README, \"Scheduling\"): kind\tkey\tmilliseconds\truns-missed\nstartup\tall\t200.0\t0\n",
    );
    let mut durations = BTreeMap::new();
    for (i, id) in tests.iter().enumerate() {
        let ms = 10.0 + ((i * 7919) % 991) as f64;
        text.push_str(&format!("test\t{id}\t{ms:.1}\t0\n"));
        durations.insert(id.clone(), ms);
    }
    dir.write("offload.history.tsv", &text);
    durations
}

#[test]
fn shards_cover_the_suite_once_and_balance_by_history() {
    let tests = ids(120);
    let dir = project(&tests);
    let durations = write_history(&dir, &tests);
    let all: BTreeSet<String> = tests.iter().cloned().collect();
    for n in [1usize, 3, 7] {
        let mut union = BTreeSet::new();
        let mut loads = Vec::new();
        for k in 1..=n {
            let shard = collected(&dir.path, &format!("{k}/{n}"));
            assert!(!shard.is_empty(), "shard {k}/{n} is empty");
            loads.push(200.0 + shard.iter().map(|id| durations[id]).sum::<f64>());
            for id in shard {
                assert!(union.insert(id.clone()), "{id} in two shards of {n}");
            }
        }
        assert_eq!(union, all, "the {n} shards together are the suite");
        let mean = loads.iter().sum::<f64>() / n as f64;
        let spread = loads
            .iter()
            .map(|l| (l - mean).abs() / mean)
            .fold(0.0, f64::max);
        eprintln!(
            "{n} shards: expected loads {loads:?}, spread {:.1}%",
            spread * 100.0
        );
        assert!(spread <= 0.10, "{n} shards: {loads:?}");
    }
}

#[test]
fn without_history_the_split_is_the_same_in_two_fresh_copies() {
    let tests = ids(50);
    let a = project(&tests);
    // The second copy lists the tests in another order.
    let mut reversed = tests.clone();
    reversed.reverse();
    let b = project(&reversed);
    for k in 1..=3 {
        let shard = format!("{k}/3");
        let mut from_a = collected(&a.path, &shard);
        let mut from_b = collected(&b.path, &shard);
        from_a.sort();
        from_b.sort();
        assert_eq!(from_a, from_b, "shard {shard}");
        assert!((16..=17).contains(&from_a.len()), "{from_a:?}");
    }
}

#[test]
fn a_shard_runs_its_tests_writes_its_own_report_and_keeps_the_others_history() {
    let tests = ids(30);
    let dir = project(&tests);
    write_history(&dir, &tests);
    let shard = collected(&dir.path, "2/3");
    let out = run_in(&dir.path, &["run", "--shard", "2/3"]);
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains(&format!(
            "shard 2/3: {} of the 30 discovered tests",
            shard.len()
        )),
        "{}",
        describe(&out)
    );
    let report = dir.join("test-results/junit-shard-2-of-3.xml");
    let mut ran: Vec<String> = junit_cases(&report).into_iter().map(|c| c.name).collect();
    ran.sort();
    assert_eq!(ran, shard);
    assert!(!dir.join("test-results/junit.xml").exists());
    // The history still knows every test, not only this shard's.
    let history = dir.read("offload.history.tsv");
    for id in &tests {
        assert!(
            history.contains(&format!("test\t{id}\t")),
            "{id} dropped:\n{history}"
        );
    }
}

#[test]
fn failed_reruns_exactly_the_failed_and_the_not_run_tests() {
    let tests: Vec<String> = [
        "pass_a", "fail_b", "pass_c", "pass_d", "pass_e", "pass_f", "slow_g", "pass_h",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let dir = project(&tests);
    // --fail-fast on one sandbox: fail_b fails, the batches after it are
    // left not run.
    let first = run_in(&dir.path, &["run", "--fail-fast", "--parallel", "1"]);
    assert_exit(&first, 1);
    let cases = junit_cases(&dir.join("test-results/junit.xml"));
    let problems: BTreeSet<String> = cases
        .iter()
        .filter(|c| c.status != "passed")
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(case(&cases, "fail_b").status, "failure");
    assert!(
        cases
            .iter()
            .any(|c| c.status == "error" && c.message.contains("cancelled")),
        "a not-run test: {cases:?}"
    );
    let again = run_in(&dir.path, &["run", "--failed"]);
    assert_exit(&again, 1);
    let err = stderr(&again);
    assert!(
        err.contains(&format!(
            "--failed: re-running the {} tests",
            problems.len()
        )),
        "{}",
        describe(&again)
    );
    let ran: BTreeSet<String> = junit_cases(&dir.join("test-results/junit.xml"))
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(ran, problems);
}

#[test]
fn failed_without_a_report_or_without_failures_says_so_and_exits_0() {
    let dir = project(&ids(3));
    let out = run_in(&dir.path, &["run", "--failed"]);
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains("--failed: no last report at "),
        "{}",
        describe(&out)
    );
    assert_exit(&run_in(&dir.path, &["run"]), 0);
    let out = run_in(&dir.path, &["run", "--failed"]);
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains("--failed: nothing to re-run"),
        "{}",
        describe(&out)
    );
}

#[test]
fn the_flaky_policy_chooses_the_exit_code_of_a_flaky_only_run() {
    for (cli, config, code) in [
        (None, None, 2),
        (Some("exit2"), None, 2),
        (Some("pass"), None, 0),
        (Some("fail"), None, 1),
        (None, Some("pass"), 0),
        (None, Some("fail"), 1),
        (Some("exit2"), Some("pass"), 2),
    ] {
        let dir = project(&["pass_a".into(), "flaky_b".into()]);
        let mut toml = dir
            .read("offload.toml")
            .replace("retry_count = 0", "retry_count = 1");
        if let Some(policy) = config {
            toml = toml.replace(
                "[offload]\n",
                &format!("[offload]\nflaky_result = \"{policy}\"\n"),
            );
        }
        dir.write("offload.toml", &toml);
        let mut args = vec!["run"];
        if let Some(policy) = cli {
            args.extend(["--flaky-result", policy]);
        }
        let out = run_in(&dir.path, &args);
        assert_exit(&out, code);
        assert!(stdout(&out).contains("Flaky:    1"), "{}", describe(&out));
    }
}

#[test]
fn bad_shard_and_policy_values_are_usage_errors() {
    let dir = project(&ids(2));
    for args in [
        &["run", "--shard", "5/4"][..],
        &["run", "--shard", "x"],
        &["collect", "--shard", "0/2"],
        &["run", "--flaky-result", "maybe"],
    ] {
        let out = run_in(&dir.path, args);
        assert_exit(&out, 3);
    }
    let dir = project(&ids(2));
    let toml = dir
        .read("offload.toml")
        .replace("[offload]\n", "[offload]\nflaky_result = \"maybe\"\n");
    dir.write("offload.toml", &toml);
    let out = run_in(&dir.path, &["validate"]);
    assert_exit(&out, 3);
    assert!(stderr(&out).contains("flaky_result"), "{}", describe(&out));
}
