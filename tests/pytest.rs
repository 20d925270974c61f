//! The pytest framework end to end: the real binary and real pytest on the
//! `fixtures/pytest-*` projects, unmodified (no conftest help).
//!
//! pytest is found on PATH; `make test` puts `.venv/bin` (made by `make
//! setup`) first.

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
        "pytest is not on PATH: run `make setup` once, then the tests through `make test` \
         (which puts .venv/bin first on PATH)"
    );
}

/// A copy of `fixtures/{fixture}` with an offload.toml made of `framework`
/// (the `[framework]` body) and `groups`.
fn project(fixture: &str, framework: &str, groups: &str) -> TempDir {
    require_pytest();
    let dir = TempDir::with_fixture(fixture);
    dir.write(
        "offload.toml",
        &format!(
            "[offload]\nmax_parallel = 3\ntest_timeout_secs = 120\n\n\
             [provider]\ntype = \"local\"\n\n\
             [framework]\ntype = \"pytest\"\n{framework}\n\n{groups}\n"
        ),
    );
    dir
}

fn run_offload(dir: &TempDir, args: &[&str]) -> Output {
    let state = dir.join("state");
    let state = state.to_str().unwrap();
    run_within(
        offload(&dir.path, args, &[("OFFLOAD_FIXTURE_STATE", state)]),
        Duration::from_secs(120),
    )
}

/// `offload collect -f json`: group name → IDs.
fn collect(dir: &TempDir) -> Vec<(String, Vec<String>)> {
    collected_groups(&run_offload(dir, &["collect", "-f", "json"]))
}

/// Every ID pytest-basic has, in pytest's order.
const BASIC_IDS: [&str; 18] = [
    "tests/sub/test_math.py::test_add",
    "tests/test_flaky.py::test_flaky_first_attempt",
    "tests/test_inherit.py::TestPositive::test_inherited",
    "tests/test_math.py::test_add",
    "tests/test_math.py::test_fails",
    "tests/test_math.py::test_slow_sum",
    "tests/test_math.py::TestArithmetic::test_mul",
    "tests/test_math.py::TestArithmetic::TestNested::test_div",
    "tests/test_math.py::test_awkward[a b]",
    "tests/test_math.py::test_awkward[[x]]",
    "tests/test_math.py::test_awkward[c::d]",
    "tests/test_math.py::test_awkward[\\xe9]",
    "tests/test_math.py::test_awkward[x/y.py]",
    "tests/test_math.py::test_awkward[q\"uote]",
    "tests/test_math.py::test_awkward[it's]",
    "tests/test_math.py::test_explicit_ids[one two]",
    "tests/test_math.py::test_explicit_ids[na\\xefve]",
    "tests/test_math.py::test_café",
];

const BASIC_GROUPS: &str = r#"
[groups.fast]
retry_count = 1
filters = "-m 'not slow' -k 'not flaky'"

[groups.slow]
filters = "-m slow"

[groups.flaky]
retry_count = 2
filters = "-k flaky"

[groups.nothing]
filters = "-k no_test_has_this_name"
"#;

fn basic_project() -> TempDir {
    project(
        "pytest-basic",
        "paths = [\"tests\"]\ncommand = \"pytest\"",
        BASIC_GROUPS,
    )
}

#[test]
fn discovery_gives_exact_node_ids_and_honours_group_filters() {
    let dir = basic_project();
    let groups = collect(&dir);
    let names: Vec<&str> = groups.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(names, ["fast", "slow", "flaky", "nothing"]);
    let expected_fast: Vec<String> = BASIC_IDS
        .iter()
        .filter(|id| !id.contains("slow") && !id.contains("flaky"))
        .map(|s| s.to_string())
        .collect();
    assert_eq!(groups[0].1, expected_fast);
    assert_eq!(groups[1].1, ["tests/test_math.py::test_slow_sum"]);
    assert_eq!(
        groups[2].1,
        ["tests/test_flaky.py::test_flaky_first_attempt"]
    );
    assert!(groups[3].1.is_empty());
}

#[test]
fn a_group_that_selects_nothing_is_a_warning() {
    let dir = basic_project();
    let out = run_offload(&dir, &["collect"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        stderr(&out).contains(
            "group `nothing`: pytest collected no tests (filters: -k no_test_has_this_name)"
        ),
        "{}",
        describe(&out)
    );
}

#[test]
fn run_maps_every_result_back_to_its_node_id() {
    let dir = basic_project();
    let out = run_offload(&dir, &["run"]);
    // test_fails fails (exit 1); the flaky test passes on its retry.
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let cases = junit_cases(&dir.join("test-results/junit.xml"));
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    let mut expected = BASIC_IDS.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected, "one testcase per discovered ID, by its ID");
    for c in &cases {
        match c.name.as_str() {
            "tests/test_math.py::test_fails" => {
                assert_eq!(c.status, "failure", "{c:?}");
                assert!(c.message.contains("fails on purpose"), "{c:?}");
                assert_eq!(c.reruns, 1, "retried once (retry_count = 1): {c:?}");
            }
            "tests/test_flaky.py::test_flaky_first_attempt" => {
                assert_eq!(c.status, "passed", "{c:?}");
                assert!(c.flaky, "{c:?}");
            }
            _ => assert_eq!(c.status, "passed", "{c:?}"),
        }
    }
    let err = stderr(&out);
    assert!(
        !err.contains("matched no expected ID"),
        "{}",
        describe(&out)
    );
    assert!(
        !err.contains("no result for this test"),
        "{}",
        describe(&out)
    );
}

#[test]
fn next_run_finds_every_duration_by_canonical_id() {
    let dir = project(
        "pytest-basic",
        "paths = [\"tests\"]\ncommand = \"pytest\"",
        "[groups.all]\nfilters = \"-k 'not fails and not flaky'\"\n",
    );
    let first = run_offload(&dir, &["run"]);
    assert_eq!(first.status.code(), Some(0), "{}", describe(&first));
    // Without the history file, the durations must come from junit.xml alone
    // (the report names every test by its canonical ID).
    let history = dir.join("offload.history.tsv");
    assert!(history.exists(), "the first run writes the history file");
    std::fs::remove_file(&history).unwrap();
    let second = run_offload(&dir, &["run"]);
    assert_eq!(second.status.code(), Some(0), "{}", describe(&second));
    let all = describe(&second);
    assert!(all.contains("durations for 16 of 16 tests"), "{all}");
    // And from the history file alone, with the report gone (a CI job that
    // starts from a clean test-results/).
    std::fs::remove_dir_all(dir.join("test-results")).unwrap();
    let third = run_offload(&dir, &["run"]);
    assert_eq!(third.status.code(), Some(0), "{}", describe(&third));
    let all = describe(&third);
    assert!(all.contains("durations for 16 of 16 tests"), "{all}");
}

#[test]
fn legacy_python_extra_args_and_markers() {
    // No `command`: `{python} -m pytest {extra_args}`; `markers` applies to a
    // group without filters.
    let dir = project(
        "pytest-basic",
        "paths = [\"tests\"]\npython = \"python\"\nextra_args = [\"-p\", \"no:cacheprovider\"]\nmarkers = \"slow\"",
        "[groups.all]\n",
    );
    // A cache left by someone running pytest in the fixture must not count.
    let _ = std::fs::remove_dir_all(dir.join(".pytest_cache"));
    let groups = collect(&dir);
    assert_eq!(groups[0].1, ["tests/test_math.py::test_slow_sum"]);
    let out = run_offload(&dir, &["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let cases = junit_cases(&dir.join("test-results/junit.xml"));
    assert_eq!(cases.len(), 1);
    assert_eq!(
        case(&cases, "tests/test_math.py::test_slow_sum").status,
        "passed"
    );
    assert!(
        !dir.join(".pytest_cache").exists(),
        "extra_args reached pytest"
    );
}

#[test]
fn a_module_that_does_not_import_stops_discovery_and_is_named() {
    let dir = project(
        "pytest-broken",
        "paths = [\"tests\"]\ncommand = \"pytest\"",
        "[groups.all]\n",
    );
    for args in [&["collect"][..], &["run"][..]] {
        let out = run_offload(&dir, args);
        assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
        let err = stderr(&out);
        assert!(
            err.contains("pytest could not collect 1 module: tests/test_broken_import.py"),
            "{}",
            describe(&out)
        );
        assert!(
            err.contains("ModuleNotFoundError: No module named 'module_that_does_not_exist'"),
            "{}",
            describe(&out)
        );
    }
    assert!(!dir.join("test-results/junit.xml").exists());
}

#[test]
fn verbose_addopts_and_a_junit_prefix_change_nothing() {
    // pyproject.toml: addopts = "-v -ra --junit-prefix=myprefix"; a group's
    // filters may change verbosity too.
    let dir = project(
        "pytest-addopts",
        "paths = [\"tests\"]\ncommand = \"pytest\"",
        "[groups.chatty]\nfilters = \"-v -v -k param\"\n\n[groups.all]\n",
    );
    let groups = collect(&dir);
    assert_eq!(
        groups[0].1,
        [
            "tests/test_verbose.py::test_param[a b]",
            "tests/test_verbose.py::test_param[c]",
        ]
    );
    // `all` also finds the two above; they run once, in the first group.
    assert_eq!(
        groups[1].1,
        [
            "tests/test_verbose.py::test_one",
            "tests/test_verbose.py::test_fails"
        ]
    );
    let out = run_offload(&dir, &["run"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let cases = junit_cases(&dir.join("test-results/junit.xml"));
    assert_eq!(cases.len(), 4, "{cases:#?}");
    assert_eq!(
        case(&cases, "tests/test_verbose.py::test_fails").status,
        "failure"
    );
    assert_eq!(
        case(&cases, "tests/test_verbose.py::test_param[a b]").status,
        "passed"
    );
    assert!(
        !stderr(&out).contains("matched no expected ID"),
        "{}",
        describe(&out)
    );
}

#[test]
fn rootdir_below_the_working_dir() {
    // tests/pytest.ini makes tests/ pytest's rootdir: pytest prints
    // `pkg/test_deep.py::…`, which is not a valid argument from the project root.
    let dir = project(
        "pytest-nested-rootdir",
        "paths = [\"tests\"]\ncommand = \"pytest\"",
        "[groups.all]\n",
    );
    let groups = collect(&dir);
    assert_eq!(
        groups[0].1,
        [
            "tests/pkg/test_deep.py::TestDeep::test_deep",
            "tests/pkg/test_deep.py::TestDeep::test_deep_fails",
            "tests/test_top.py::test_top",
        ]
    );
    let out = run_offload(&dir, &["run"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let cases = junit_cases(&dir.join("test-results/junit.xml"));
    assert_eq!(cases.len(), 3, "{cases:#?}");
    assert_eq!(
        case(&cases, "tests/pkg/test_deep.py::TestDeep::test_deep").status,
        "passed"
    );
    assert_eq!(
        case(&cases, "tests/pkg/test_deep.py::TestDeep::test_deep_fails").status,
        "failure"
    );
    assert_eq!(case(&cases, "tests/test_top.py::test_top").status, "passed");
}

#[test]
fn a_conftest_that_writes_node_ids_into_name_keeps_working() {
    let dir = project(
        "pytest-basic",
        "paths = [\"tests\"]\ncommand = \"pytest\"",
        "[groups.all]\nfilters = \"-k 'awkward or Nested'\"\n",
    );
    let conftest = dir.read("tests/conftest.py");
    dir.write(
        "tests/conftest.py",
        &format!(
            "{conftest}\n\n@pytest.fixture(autouse=True)\n\
             def _offload_junit_nodeid(request, record_xml_attribute):\n    \
             record_xml_attribute(\"name\", request.node.nodeid)\n"
        ),
    );
    let out = run_offload(&dir, &["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let cases = junit_cases(&dir.join("test-results/junit.xml"));
    assert_eq!(cases.len(), 8, "{cases:#?}");
    assert!(cases.iter().all(|c| c.status == "passed"), "{cases:#?}");
}

#[test]
fn node_ids_with_a_raw_newline_run_whole() {
    // pytest.ini disables ID escaping: pytest would print `test_param[a`,
    // `b]` on two lines, and fragments must never be run.
    let dir = project(
        "pytest-raw-ids",
        "paths = [\"tests\"]\ncommand = \"pytest\"",
        "[groups.all]\n",
    );
    let expected = [
        "tests/test_raw.py::test_param[a\\nb]",
        "tests/test_raw.py::test_param[caf\\xe9]",
        "tests/test_raw.py::test_param[tab\\there]",
        "tests/test_raw.py::test_param[plain]",
        "tests/test_raw.py::test_explicit_ids[two\\nlines]",
        "tests/test_raw.py::test_explicit_ids[one line]",
        "tests/test_raw.py::test_plain",
    ];
    let groups = collect(&dir);
    assert_eq!(groups[0].1, expected, "each ID whole, as pytest escapes it");
    let out = run_offload(&dir, &["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let cases = junit_cases(&dir.join("test-results/junit.xml"));
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    let mut want = expected.to_vec();
    want.sort_unstable();
    assert_eq!(names, want, "{}", describe(&out));
    assert!(cases.iter().all(|c| c.status == "passed"), "{cases:#?}");
}

#[test]
fn a_test_that_kills_pytest_is_named_and_no_other_test_is_lost() {
    // 61 tests on 2 sandboxes, one of which ends the pytest process
    // (os._exit(1)) so that its batch writes no JUnit at all.
    let dir = project(
        "pytest-crash",
        "paths = [\"tests\"]\ncommand = \"python -m pytest\"",
        "[groups.all]\nretry_count = 0",
    );
    let out = run_offload(&dir, &["run", "--parallel", "2"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let cases = junit_cases(&dir.join("test-results/junit.xml"));
    assert_eq!(cases.len(), 61, "{cases:#?}");
    let crasher = case(&cases, "tests/test_crash.py::test_kills_the_runner");
    assert_eq!(crasher.status, "error", "{crasher:?}");
    assert!(
        crasher.message.contains("crashed the runner: exit code 1"),
        "{crasher:?}"
    );
    let not_passed: Vec<&Case> = cases
        .iter()
        .filter(|c| c.status != "passed" && c.name != crasher.name)
        .collect();
    assert!(
        not_passed.is_empty(),
        "innocent tests lost: {not_passed:#?}"
    );
    // The summary names the crasher.
    assert!(
        stdout(&out).contains("tests/test_crash.py::test_kills_the_runner [error]"),
        "{}",
        describe(&out)
    );
}

/// Run `offload run` in a pseudo-terminal `columns` wide; what it wrote.
fn run_in_terminal(dir: &TempDir, columns: usize) -> String {
    let command = format!("{} run --parallel 1", offload_bin());
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qfec", &command, "/dev/null"])
        .current_dir(&dir.path)
        .env_remove("CI")
        .env("COLUMNS", columns.to_string());
    stdout(&run_within(cmd, Duration::from_secs(120)))
}

#[test]
fn the_count_rises_test_by_test_while_a_pytest_batch_runs() {
    let dir = project(
        "pytest-slow",
        "paths = [\"tests\"]\ncommand = \"python -m pytest\"",
        "[groups.all]\nretry_count = 0",
    );
    let eta = regex::Regex::new(r"(ETA (\d+:\d\d|--)|\d+:\d\d)$").unwrap();
    for columns in [120, 80, 60] {
        let raw = run_in_terminal(&dir, columns);
        let draws: Vec<&str> = raw
            .split("\r\x1b[2K")
            .skip(1)
            .map(|s| s.split(['\r', '\n']).next().unwrap_or(""))
            .filter(|s| !s.is_empty())
            .collect();
        // Discovery is shown first, with its command.
        assert!(
            draws[0].starts_with("discovering group `all`: python -m pytest"),
            "{columns} columns: {draws:?}"
        );
        // One batch of 12 tests, and the count moves inside it.
        let counts: Vec<usize> = draws
            .iter()
            .filter_map(|d| {
                let (done, rest) = d.split_once('/')?;
                let done = done.rsplit(' ').next()?.parse().ok()?;
                rest.starts_with("12").then_some(done)
            })
            .collect();
        let between: Vec<&usize> = counts.iter().filter(|&&c| c > 0 && c < 12).collect();
        assert!(
            between.len() >= 3,
            "{columns} columns: the count did not rise during the batch: {counts:?}\n{draws:?}"
        );
        // The ETA is whole in every draw, and no line is wider than the terminal.
        for d in draws.iter().filter(|d| d.contains("/12")) {
            assert!(d.chars().count() < columns, "{columns}: {d}");
            assert!(eta.is_match(d), "{columns}: the clock is cut: {d:?}");
        }
    }
    // The failing test's printed output is in the merged report and in
    // `offload logs --failures`.
    let junit = dir.read("test-results/junit.xml");
    assert!(junit.contains("test 7 printed this"), "{junit}");
    let logs = run_offload(&dir, &["logs", "--failures"]);
    assert!(
        stdout(&logs).contains("test 7 printed this"),
        "{}",
        describe(&logs)
    );
    // The batch log names no result file that is gone.
    let log = std::fs::read_dir(dir.join("test-results/logs"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect::<String>();
    assert!(!log.contains(".scratch-"), "{log}");
}

#[test]
fn a_batch_still_finishing_tests_at_the_timeout_is_split_not_bisected() {
    // 12 tests of 0.25 s in one batch with a 2 s timeout: the batch is
    // stopped while it is still going. Not a hang: what pytest said of the
    // finished tests stands, the rest run again in batches that fit.
    let dir = TempDir::with_fixture("pytest-slow");
    require_pytest();
    dir.write(
        "offload.toml",
        "[offload]\nmax_parallel = 1\ntest_timeout_secs = 2\n\n\
         [provider]\ntype = \"local\"\n\n\
         [framework]\ntype = \"pytest\"\npaths = [\"tests\"]\ncommand = \"python -m pytest\"\n\n\
         [groups.all]\nretry_count = 0\n",
    );
    let out = run_offload(&dir, &["run"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = stderr(&out);
    assert!(
        err.contains("was still finishing tests when it reached the timeout (2 s): not a hang"),
        "{}",
        describe(&out)
    );
    let cases = junit_cases(&dir.join("test-results/junit.xml"));
    assert_eq!(cases.len(), 12);
    for c in &cases {
        assert!(!c.message.contains("timed out"), "{c:?}");
        let expected = if c.name.ends_with("[7]") {
            "failure"
        } else {
            "passed"
        };
        assert_eq!(c.status, expected, "{c:?}");
    }
}
