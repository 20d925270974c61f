//! `offload logs` end to end: the real binary, a minimal config, and a
//! hand-written report in Offload's format.

mod common;

use std::process::Output;
use std::time::Duration;

use common::{describe, offload, run_within, stderr, stdout, TempDir};

/// A minimal valid config whose report lives at a non-default place, so the
/// test also checks that `[report] output_dir` / `junit_file` are honoured.
const CONFIG: &str = r#"
[offload]
max_parallel = 1

[provider]
type = "local"

[framework]
type = "default"
discover_command = "echo {filters}"
run_command = "true {tests}"
test_id_format = "{name}"

[groups.unit]
retry_count = 0

[report]
output_dir = "results"
junit_file = "report.xml"
"#;

const REPORT_PATH: &str = "results/report.xml";

/// 2 passed, 1 failed (with an earlier attempt), 1 error, 1 flaky, 1 skipped,
/// 1 not run — as `offload run` writes them.
const REPORT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="offload" tests="7" failures="1" errors="2" skipped="1" time="4.200">
  <testsuite name="unit" tests="7" failures="1" errors="2" skipped="1" time="3.100">
    <testcase name="tests/test_math.py::test_add" classname="unit" time="0.100"/>
    <testcase name="tests/test_math.py::test_div" classname="unit" time="0.200">
      <failure message="AssertionError: expected 2 got 3" type="failure">tests/test_math.py:10: in test_div
    assert 1 / 0 == 2
E AssertionError: expected 2 got 3</failure>
      <rerunFailure message="AssertionError: first try" type="failure">
        <stackTrace>first trace</stackTrace>
      </rerunFailure>
      <system-out>computing 1 / 0</system-out>
    </testcase>
    <testcase name="tests/test_strings.py::test_upper[a b]" classname="unit" time="0.300"/>
    <testcase name="tests/test_io.py::test_read" classname="unit" time="0.400">
      <error message="fixture &apos;data&apos; failed" type="error">FileNotFoundError: data.csv</error>
      <system-err>warning: &lt;missing&gt; file</system-err>
    </testcase>
    <testcase name="tests/test_flaky.py::test_coin" classname="unit" time="0.500">
      <flakyFailure message="tails" type="failure">
        <stackTrace>assert coin() == "heads"</stackTrace>
      </flakyFailure>
    </testcase>
    <testcase name="tests/test_io.py::test_windows" classname="unit" time="0.000">
      <skipped message="only on windows"/>
    </testcase>
    <testcase name="tests/test_net.py::test_download" classname="unit" time="0.000">
      <error message="Not run: cancelled" type="NotRun"/>
    </testcase>
  </testsuite>
</testsuites>
"#;

fn project(with_report: bool) -> TempDir {
    let dir = TempDir::new("logs");
    dir.write("offload.toml", CONFIG);
    if with_report {
        dir.write(REPORT_PATH, REPORT);
    }
    dir
}

fn logs(dir: &TempDir, args: &[&str]) -> Output {
    let mut full = vec!["logs"];
    full.extend_from_slice(args);
    run_within(offload(&dir.path, &full, &[]), Duration::from_secs(20))
}

/// The IDs of the banners printed, in order.
fn banners(out: &Output) -> Vec<String> {
    stdout(out)
        .lines()
        .filter(|l| l.starts_with("=== ") && l.ends_with(" ==="))
        .map(|l| l.to_string())
        .collect()
}

fn assert_success(out: &Output) {
    assert_eq!(out.status.code(), Some(0), "{}", describe(out));
}

#[test]
fn missing_report_exits_3_and_says_run_first() {
    let dir = project(false);
    let out = logs(&dir, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let err = stderr(&out);
    assert!(err.contains("No test results found at"), "{err}");
    assert!(
        err.contains(REPORT_PATH),
        "names the configured path: {err}"
    );
    assert!(err.contains("Run `offload run` first."), "{err}");
}

#[test]
fn all_tests_with_banners_sorted_by_id() {
    let dir = project(true);
    let out = logs(&dir, &[]);
    assert_success(&out);
    assert_eq!(
        banners(&out),
        [
            "=== tests/test_flaky.py::test_coin [PASSED] ===",
            "=== tests/test_io.py::test_read [ERROR] ===",
            "=== tests/test_io.py::test_windows [SKIPPED] ===",
            "=== tests/test_math.py::test_add [PASSED] ===",
            "=== tests/test_math.py::test_div [FAILED] ===",
            "=== tests/test_net.py::test_download [NOT RUN] ===",
            "=== tests/test_strings.py::test_upper[a b] [PASSED] ===",
        ]
    );
    let text = stdout(&out);
    assert!(
        text.contains("Flaky: passed after 1 failed attempt.\n"),
        "{text}"
    );
    assert!(text.contains("fixture 'data' failed\nFileNotFoundError: data.csv\n--- stderr ---\nwarning: <missing> file\n"), "{text}");
}

#[test]
fn failures_only_with_details_and_output() {
    let dir = project(true);
    let out = logs(&dir, &["--failures"]);
    assert_success(&out);
    assert_eq!(
        stdout(&out),
        "=== tests/test_math.py::test_div [FAILED] ===
AssertionError: expected 2 got 3
tests/test_math.py:10: in test_div
    assert 1 / 0 == 2
E AssertionError: expected 2 got 3
--- earlier attempt 1 (failure) ---
AssertionError: first try
first trace
--- stdout ---
computing 1 / 0

"
    );
}

#[test]
fn errors_only_includes_not_run() {
    let dir = project(true);
    let out = logs(&dir, &["--errors"]);
    assert_success(&out);
    assert_eq!(
        banners(&out),
        [
            "=== tests/test_io.py::test_read [ERROR] ===",
            "=== tests/test_net.py::test_download [NOT RUN] ===",
        ]
    );
}

#[test]
fn failures_and_errors_together_mean_either() {
    let dir = project(true);
    let out = logs(&dir, &["--failures", "--errors"]);
    assert_success(&out);
    assert_eq!(
        banners(&out),
        [
            "=== tests/test_io.py::test_read [ERROR] ===",
            "=== tests/test_math.py::test_div [FAILED] ===",
            "=== tests/test_net.py::test_download [NOT RUN] ===",
        ]
    );
}

#[test]
fn test_flag_is_exact_and_repeatable() {
    let dir = project(true);
    let out = logs(&dir, &["--test", "tests/test_strings.py::test_upper[a b]"]);
    assert_success(&out);
    assert_eq!(
        banners(&out),
        ["=== tests/test_strings.py::test_upper[a b] [PASSED] ==="]
    );

    let out = logs(
        &dir,
        &[
            "--test",
            "tests/test_math.py::test_add",
            "--test",
            "tests/test_io.py::test_read",
        ],
    );
    assert_success(&out);
    assert_eq!(
        banners(&out),
        [
            "=== tests/test_io.py::test_read [ERROR] ===",
            "=== tests/test_math.py::test_add [PASSED] ===",
        ]
    );
}

#[test]
fn regex_is_a_substring_match_and_composes_with_failures() {
    let dir = project(true);
    let out = logs(&dir, &["--test-regex", "test_math"]);
    assert_success(&out);
    assert_eq!(
        banners(&out),
        [
            "=== tests/test_math.py::test_add [PASSED] ===",
            "=== tests/test_math.py::test_div [FAILED] ===",
        ]
    );
    let out = logs(&dir, &["--failures", "--test-regex", "test_math"]);
    assert_success(&out);
    assert_eq!(
        banners(&out),
        ["=== tests/test_math.py::test_div [FAILED] ==="]
    );
}

#[test]
fn no_match_exits_0_with_a_message() {
    let dir = project(true);
    let out = logs(&dir, &["--failures", "--test-regex", "test_strings"]);
    assert_success(&out);
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("No matching test results found"),
        "{}",
        describe(&out)
    );
}

#[test]
fn invalid_regex_exits_3_before_reading_anything() {
    // No report at all: the pattern is still what gets reported.
    let dir = project(false);
    let out = logs(&dir, &["--test-regex", "test_("]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(
        stderr(&out).contains("Invalid --test-regex pattern"),
        "{}",
        describe(&out)
    );
}

#[test]
fn default_report_location_is_test_results_junit_xml() {
    let dir = TempDir::new("logs-default");
    let config = CONFIG.replace(
        "output_dir = \"results\"\njunit_file = \"report.xml\"\n",
        "",
    );
    assert!(!config.contains("report.xml"));
    dir.write("offload.toml", &config);
    dir.write("test-results/junit.xml", REPORT);
    let out = logs(&dir, &["--test", "tests/test_math.py::test_add"]);
    assert_success(&out);
    assert_eq!(
        banners(&out),
        ["=== tests/test_math.py::test_add [PASSED] ==="]
    );
}
