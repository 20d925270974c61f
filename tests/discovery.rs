//! Discovery reuse end to end: the real binary, real pytest and real
//! cargo-nextest. A run reuses the last discovery while nothing it reads
//! changed; a changed test file, conftest or filter and `--rediscover` each
//! discover afresh; a test gone since the reused discovery is left out
//! without failing its neighbours; cargo's batches run discovery's build.

mod common;

use std::process::Output;
use std::time::Duration;

use common::*;

/// Fail (never skip) when pytest is missing.
fn require_pytest() {
    let ok = std::process::Command::new("pytest")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "pytest is not on PATH: run `make setup` once, then the tests through `make test`"
    );
}

/// A copy of `fixtures/pytest-reuse` with one group of `filters`.
fn pytest_project(filters: &str) -> TempDir {
    require_pytest();
    let dir = TempDir::with_fixture("pytest-reuse");
    write_config(&dir, filters);
    dir
}

fn write_config(dir: &TempDir, filters: &str) {
    dir.write(
        "offload.toml",
        &format!(
            "[offload]\nmax_parallel = 2\ntest_timeout_secs = 120\n\n\
             [provider]\ntype = \"local\"\n\n\
             [framework]\ntype = \"pytest\"\npaths = [\"tests\"]\n\n\
             [groups.all]\nretry_count = 0\nfilters = \"{filters}\"\n"
        ),
    );
}

fn run(dir: &TempDir, args: &[&str]) -> Output {
    let state = dir.join("state");
    run_within(
        offload(
            &dir.path,
            args,
            &[("OFFLOAD_FIXTURE_STATE", state.to_str().unwrap())],
        ),
        Duration::from_secs(120),
    )
}

/// How many times pytest has collected (`--collect-only`) so far.
fn discoveries(dir: &TempDir) -> usize {
    std::fs::read_to_string(dir.join("state/discoveries"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// The run passed; its JUnit names exactly `ids`, all passed.
fn passed_exactly(dir: &TempDir, out: &Output, ids: &[&str]) {
    assert_eq!(out.status.code(), Some(0), "{}", describe(out));
    let cases = junit_cases(&dir.join("test-results/junit.xml"));
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    let mut expected = ids.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected, "{}", describe(out));
    assert!(cases.iter().all(|c| c.status == "passed"), "{cases:#?}");
}

const IDS: [&str; 6] = [
    "tests/test_other.py::test_one",
    "tests/test_other.py::test_slow_one",
    "tests/test_params.py::test_param[one]",
    "tests/test_params.py::test_param[two]",
    "tests/test_params.py::test_param[three]",
    "tests/test_params.py::test_plain",
];

#[test]
fn an_unchanged_project_reuses_its_discovery() {
    let dir = pytest_project("");
    let first = run(&dir, &["run"]);
    passed_exactly(&dir, &first, &IDS);
    assert_eq!(discoveries(&dir), 1);
    assert!(dir.join("test-results/offload.discovery.json").exists());

    let second = run(&dir, &["run"]);
    passed_exactly(&dir, &second, &IDS);
    assert_eq!(discoveries(&dir), 1, "{}", describe(&second));
    assert!(
        stderr(&second).contains("group `all`: reusing the last discovery (6 tests)"),
        "{}",
        describe(&second)
    );

    // A clean output directory (a CI job) discovers again.
    std::fs::remove_dir_all(dir.join("test-results")).unwrap();
    passed_exactly(&dir, &run(&dir, &["run"]), &IDS);
    assert_eq!(discoveries(&dir), 2);
}

#[test]
fn a_changed_test_file_is_discovered_afresh_and_its_new_test_runs() {
    let dir = pytest_project("");
    passed_exactly(&dir, &run(&dir, &["run"]), &IDS);
    dir.write(
        "tests/test_other.py",
        &(dir.read("tests/test_other.py") + "\n\ndef test_two():\n    assert 2\n"),
    );
    let out = run(&dir, &["run"]);
    assert_eq!(discoveries(&dir), 2);
    assert!(
        stderr(&out).contains("discovering afresh: tests/test_other.py changed"),
        "{}",
        describe(&out)
    );
    let mut ids = IDS.to_vec();
    ids.push("tests/test_other.py::test_two");
    passed_exactly(&dir, &out, &ids);
}

#[test]
fn a_changed_conftest_is_discovered_afresh() {
    let dir = pytest_project("");
    passed_exactly(&dir, &run(&dir, &["run"]), &IDS);
    dir.write(
        "tests/conftest.py",
        &(dir.read("tests/conftest.py") + "\n# a comment changes nothing but the file\n"),
    );
    let out = run(&dir, &["run"]);
    assert!(
        stderr(&out).contains("discovering afresh: tests/conftest.py changed"),
        "{}",
        describe(&out)
    );
    assert_eq!(discoveries(&dir), 2);
    passed_exactly(&dir, &out, &IDS);
}

#[test]
fn a_changed_filter_is_discovered_afresh() {
    let dir = pytest_project("");
    passed_exactly(&dir, &run(&dir, &["run"]), &IDS);
    write_config(&dir, "-m 'not slow'");
    let out = run(&dir, &["run"]);
    assert!(
        stderr(&out).contains(
            "discovering afresh: the discovery command, its filters or its environment changed"
        ),
        "{}",
        describe(&out)
    );
    assert_eq!(discoveries(&dir), 2);
    let without_slow: Vec<&str> = IDS
        .iter()
        .copied()
        .filter(|i| !i.contains("slow"))
        .collect();
    passed_exactly(&dir, &out, &without_slow);
}

#[test]
fn rediscover_and_the_config_switch_discover_afresh() {
    let dir = pytest_project("");
    passed_exactly(&dir, &run(&dir, &["run"]), &IDS);
    let out = run(&dir, &["run", "--rediscover"]);
    assert!(
        stderr(&out).contains("discovering afresh: --rediscover"),
        "{}",
        describe(&out)
    );
    passed_exactly(&dir, &out, &IDS);
    assert_eq!(discoveries(&dir), 2);

    // Turned off in the config: every run discovers.
    dir.write(
        "offload.toml",
        &dir.read("offload.toml")
            .replace("[offload]\n", "[offload]\nreuse_discovery = false\n"),
    );
    passed_exactly(&dir, &run(&dir, &["run"]), &IDS);
    passed_exactly(&dir, &run(&dir, &["run"]), &IDS);
    assert_eq!(discoveries(&dir), 4);
}

#[test]
fn a_test_gone_since_the_reused_discovery_does_not_fail_its_neighbours() {
    let dir = pytest_project("");
    passed_exactly(&dir, &run(&dir, &["run"]), &IDS);
    // The parameters come from a file the key does not cover: the reused
    // list still has `test_param[two]`, which no longer exists, and lacks
    // `test_param[four]`.
    dir.write("data/params.txt", "one\nthree\nfour\n");
    let out = run(&dir, &["run"]);
    let said = stderr(&out);
    assert!(
        said.contains("reusing the last discovery"),
        "{}",
        describe(&out)
    );
    assert!(
        said.contains("the runner does not know 1 test(s) of the reused discovery (e.g. `tests/test_params.py::test_param[two]`): discovering afresh"),
        "{}",
        describe(&out)
    );
    assert!(
        said.contains("1 test(s) of the reused discovery no longer exist and are left out (e.g. `tests/test_params.py::test_param[two]`); 1 new test(s) to run"),
        "{}",
        describe(&out)
    );
    let ids: Vec<&str> = IDS
        .iter()
        .copied()
        .filter(|i| !i.ends_with("[two]"))
        .chain(["tests/test_params.py::test_param[four]"])
        .collect();
    passed_exactly(&dir, &out, &ids);
    assert_eq!(discoveries(&dir), 2);

    // The fresh discovery was stored: the next run reuses it as it is.
    let next = run(&dir, &["run"]);
    passed_exactly(&dir, &next, &ids);
    assert_eq!(discoveries(&dir), 2, "{}", describe(&next));
}

#[test]
fn the_default_framework_reuses_only_with_discovery_inputs() {
    let dir = TempDir::with_fixture("shell");
    let count = dir.join("discovered");
    let original = dir.read("offload.toml");
    let config = |inputs: &str| {
        original.replace(
            "discover_command = \"./discover.sh {filters}\"",
            &format!(
                "discover_command = \"echo x >> {} && ./discover.sh {{filters}}\"{inputs}",
                count.display()
            ),
        )
    };
    let base = config("");
    let runs = |n: usize| {
        for _ in 0..n {
            let out = run(&dir, &["run"]);
            assert!(out.status.code().is_some(), "{}", describe(&out));
        }
        std::fs::read_to_string(&count).unwrap().lines().count()
    };
    dir.write("offload.toml", &base);
    assert_eq!(runs(2), 2, "opaque discovery: never reused");
    dir.write(
        "offload.toml",
        &config("\ndiscovery_inputs = [\"tests.txt\", \"discover.sh\"]"),
    );
    assert_eq!(runs(2), 3, "named inputs: reused while they stay the same");
    dir.write("tests.txt", &(dir.read("tests.txt") + "pass_added\n"));
    assert_eq!(runs(1), 4, "a named input changed");
}

/// A copy of `fixtures/cargo-workspace` with the config in the copy, and
/// its own target directory inside it, as a project has it (cargo marks it
/// with a `CACHEDIR.TAG`, which keeps it out of the key).
fn cargo_project() -> (TempDir, std::path::PathBuf) {
    let ok = std::process::Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "cargo-nextest is not installed: `cargo install cargo-nextest --locked`"
    );
    let dir = TempDir::with_fixture("cargo-workspace");
    dir.write(
        "offload.toml",
        "[offload]\nmax_parallel = 2\ntest_timeout_secs = 300\n\n\
         [provider]\ntype = \"local\"\n\n[framework]\ntype = \"cargo\"\n\n\
         [groups.all]\nretry_count = 0\n",
    );
    let target = dir.join("target");
    (dir, target)
}

fn run_cargo(dir: &TempDir, target: &std::path::Path, args: &[&str]) -> Output {
    // Outside the workspace: a file a test writes into the workspace is a
    // change of what discovery reads (and rightly redoes it).
    let state = target.join(format!(
        "state-{}",
        dir.path.file_name().unwrap().to_string_lossy()
    ));
    run_within(
        offload(
            &dir.path,
            args,
            &[
                ("OFFLOAD_FIXTURE_STATE", state.to_str().unwrap()),
                ("CARGO_TARGET_DIR", target.to_str().unwrap()),
                ("NEXTEST_PROFILE", "no-such-profile"),
            ],
        ),
        Duration::from_secs(300),
    )
}

/// Every batch log of the last run, concatenated.
fn batch_logs(dir: &TempDir) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(dir.join("test-results/logs")).unwrap() {
        all.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    all
}

#[test]
fn cargo_batches_run_discoverys_build_and_a_changed_source_is_discovered_afresh() {
    let (dir, target) = cargo_project();
    let first = run_cargo(&dir, &target, &["run"]);
    // Two of the fixture's tests fail on purpose.
    assert_eq!(first.status.code(), Some(1), "{}", describe(&first));
    let logs = batch_logs(&dir);
    assert!(logs.contains("Starting"), "{logs}");
    // No batch asks cargo to build or check: they run discovery's binaries.
    assert!(
        !logs.contains("Finished `test` profile") && !logs.contains("Compiling"),
        "{logs}"
    );
    let cases = junit_cases(&dir.join("test-results/junit.xml"));
    assert_eq!(cases.len(), 12, "{cases:#?}");

    let second = run_cargo(&dir, &target, &["run"]);
    assert_eq!(second.status.code(), Some(1), "{}", describe(&second));
    assert!(
        stderr(&second).contains("group `all`: reusing the last discovery (12 tests)"),
        "{}",
        describe(&second)
    );
    assert_eq!(junit_cases(&dir.join("test-results/junit.xml")).len(), 12);

    dir.write(
        "alpha/src/lib.rs",
        &(dir.read("alpha/src/lib.rs")
            + "\n#[cfg(test)]\nmod more {\n    #[test]\n    fn added() {}\n}\n"),
    );
    let third = run_cargo(&dir, &target, &["run"]);
    assert!(
        stderr(&third).contains("discovering afresh: alpha/src/lib.rs changed"),
        "{}",
        describe(&third)
    );
    let cases = junit_cases(&dir.join("test-results/junit.xml"));
    assert_eq!(case(&cases, "alpha more::added").status, "passed");
    assert_eq!(cases.len(), 13);
}
