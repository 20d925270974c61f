//! The cargo (nextest) framework end to end: the real binary and real
//! cargo-nextest on `fixtures/cargo-workspace`, a workspace with unit and
//! integration tests, a test function name shared by three binaries, an
//! ignored test, a hand-written harness with awkward test names, and a
//! `.config/nextest.toml` of its own (retries for its flaky test).
//!
//! The fixture is used in place (it builds into Offload's `target/`), with
//! the config and the results in a temporary directory.

mod common;

use std::process::Output;
use std::time::Duration;

use common::*;

/// Fail (never skip) when cargo-nextest is missing.
fn require_nextest() {
    let ok = std::process::Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "cargo-nextest is not installed: `cargo install cargo-nextest --locked` (see https://nexte.st)"
    );
}

fn project(framework: &str, groups: &str) -> TempDir {
    require_nextest();
    let dir = TempDir::new("cargo");
    let fixture = fixtures_dir().join("cargo-workspace");
    dir.write(
        "offload.toml",
        &format!(
            "[offload]\nmax_parallel = 2\ntest_timeout_secs = 300\nworking_dir = \"{}\"\n\n\
             [provider]\ntype = \"local\"\n\n\
             [framework]\n{framework}\n\n{groups}\n",
            fixture.display()
        ),
    );
    dir
}

fn run_offload(dir: &TempDir, args: &[&str]) -> Output {
    let state = dir.join("state");
    let target =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fixture-cargo-workspace");
    run_within(
        offload(
            &dir.path,
            args,
            &[
                ("OFFLOAD_FIXTURE_STATE", state.to_str().unwrap()),
                ("CARGO_TARGET_DIR", target.to_str().unwrap()),
                // What nextest sets for the tests it runs (Offload's own suite
                // under Offload): it must not leak into the fixture's nextest.
                ("NEXTEST_PROFILE", "no-such-profile"),
            ],
        ),
        Duration::from_secs(300),
    )
}

/// `offload collect -f json`: each group's IDs.
fn collect(dir: &TempDir) -> Vec<Vec<String>> {
    collected_groups(&run_offload(dir, &["collect", "-f", "json"]))
        .into_iter()
        .map(|(_, ids)| ids)
        .collect()
}

const ALL_IDS: [&str; 12] = [
    "alpha tests::adds",
    "alpha tests::shared_name",
    "alpha::integ fails",
    "alpha::integ flaky_first_attempt",
    "alpha::integ shared_name",
    "beta tests::nested::deep",
    "beta tests::shared_name",
    "beta::custom comma,paren) back\\slash",
    "beta::custom fails, with comma",
    "beta::custom path/with/slash",
    "beta::custom unicode ünïcödé",
    "beta::custom weird name (a, b)",
];

#[test]
fn discovery_ids_are_binary_and_test_name() {
    let dir = project(
        "type = \"cargo\"",
        "[groups.all]\n\n[groups.custom]\nfilters = \"-E 'binary_id(beta::custom)'\"\n",
    );
    let groups = collect(&dir);
    // The ignored test is left out; the shared name is three distinct IDs.
    assert_eq!(groups[0], ALL_IDS);
    // filter-match honoured: only the custom harness's tests (found by `all`
    // first, so they run once, in that group).
    let out = run_offload(&dir, &["collect"]);
    assert!(
        stderr(&out).contains("group `custom`: 5 test"),
        "{}",
        describe(&out)
    );
}

#[test]
fn include_ignored_and_package_options() {
    let dir = project(
        "type = \"nextest\"\npackage = \"alpha\"\ninclude_ignored = true",
        "[groups.all]\n",
    );
    let groups = collect(&dir);
    assert_eq!(
        groups[0],
        [
            "alpha tests::adds",
            "alpha tests::ignored_slow",
            "alpha tests::shared_name",
            "alpha::integ fails",
            "alpha::integ flaky_first_attempt",
            "alpha::integ shared_name",
        ]
    );
    let out = run_offload(&dir, &["run"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let cases = junit_cases(&dir.join("test-results/junit.xml"));
    assert_eq!(
        case(&cases, "alpha tests::ignored_slow").status,
        "passed",
        "{cases:#?}"
    );
}

#[test]
fn run_selects_exactly_each_batch_and_keeps_the_projects_nextest_config() {
    let dir = project("type = \"cargo\"", "[groups.all]\nretry_count = 0\n");
    let out = run_offload(&dir, &["run"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    // A failing assert_eq! is summed up by what it says, not where it panicked.
    assert!(
        stdout(&out).contains(
            "assertion `left == right` failed: this test fails on purpose; left: 2; right: 3 (at alpha/tests/integ.rs:"
        ),
        "{}",
        describe(&out)
    );
    let cases = junit_cases(&dir.join("test-results/junit.xml"));
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ALL_IDS, "one testcase per discovered ID");
    for c in &cases {
        match c.name.as_str() {
            "alpha::integ fails" | "beta::custom fails, with comma" => {
                assert_eq!(c.status, "failure", "{c:?}")
            }
            // Fails once, then passes on a retry that only the fixture's own
            // .config/nextest.toml asks for (Offload's retry_count is 0).
            _ => assert_eq!(c.status, "passed", "{c:?}"),
        }
    }
    assert!(
        dir.join("state/cargo_flaky_first_attempt").exists(),
        "the flaky test ran with the fixture's state dir"
    );
    assert!(
        !stderr(&out).contains("matched no expected ID"),
        "{}",
        describe(&out)
    );

    // nextest runs a batch's tests side by side: the history learns the
    // batch's fixed cost from the span of its tests' timestamps, and how
    // many ran at once.
    let history = std::fs::read_to_string(dir.join("offload.history.tsv")).unwrap();
    let value = |kind: &str| -> f64 {
        let line = history
            .lines()
            .find(|l| l.starts_with(&format!("{kind}\tall\t")))
            .unwrap_or_else(|| panic!("no `{kind}` line for the group:\n{history}"));
        line.split('\t').nth(2).unwrap().parse().unwrap()
    };
    let startup_ms = value("startup");
    assert!(
        startup_ms > 0.0 && startup_ms < 300_000.0,
        "{startup_ms} ms\n{history}"
    );
    assert!(value("concurrency") >= 1000.0, "{history}");
    assert!(!history.contains("pertest\t"), "{history}");

    // The report is keyed by canonical ID: the next run finds every duration.
    let again = run_offload(&dir, &["run"]);
    assert_eq!(again.status.code(), Some(1), "{}", describe(&again));
    assert!(
        describe(&again).contains("durations for 12 of 12 tests"),
        "{}",
        describe(&again)
    );
}
