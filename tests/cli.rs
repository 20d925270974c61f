//! The command line with the real binary: exit codes (0 passed, 1 tests
//! failed, 2 flaky, 3 Offload could not run the tests), did-you-mean for
//! commands and flags with a pointer to the right `--help`, clear messages
//! for bad values, and `validate --strict`.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(60);

fn run_in(dir: &Path, args: &[&str]) -> Output {
    run_within(offload(dir, args, &[]), LIMIT)
}

fn assert_exit(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "{}", describe(out));
}

/// A copy of the shell fixture running `tests`.
fn shell_fixture(tests: &[&str]) -> TempDir {
    let dir = TempDir::with_fixture("shell");
    dir.write("tests.txt", &(tests.join("\n") + "\n"));
    dir
}

#[test]
fn a_broken_config_exits_3_from_every_command_that_reads_it() {
    let dir = shell_fixture(&["pass_a"]);
    let config = dir
        .read("offload.toml")
        .replace("type = \"local\"", "type = \"lcoal\"");
    dir.write("offload.toml", &config);
    for args in [
        &["run"][..],
        &["validate"],
        &["collect"],
        &["logs"],
        &["doctor"],
    ] {
        let out = run_in(&dir.path, args);
        assert_exit(&out, 3);
        // doctor reports on stdout, the others on stderr.
        assert!(
            describe(&out).contains("unknown provider \"lcoal\""),
            "{args:?}: {}",
            describe(&out)
        );
    }
}

#[test]
fn a_discovery_that_fails_exits_3_and_a_failing_test_exits_1() {
    let dir = shell_fixture(&["pass_a", "fail_b"]);
    let out = run_in(&dir.path, &["run"]);
    assert_exit(&out, 1);
    let config = dir.read("offload.toml").replace(
        "retry_count = 0",
        "retry_count = 0\nfilters = \"--fail-discovery\"",
    );
    dir.write("offload.toml", &config);
    let out = run_in(&dir.path, &["run"]);
    assert_exit(&out, 3);
    assert!(
        stderr(&out).contains("discovery exploded"),
        "{}",
        describe(&out)
    );
}

/// `test-results/junit.xml` made a directory: the merged report cannot be
/// written over it.
fn block_the_report(dir: &TempDir) {
    std::fs::create_dir_all(dir.join("test-results/junit.xml/blocked")).unwrap();
}

#[test]
fn a_report_that_cannot_be_written_exits_3_unless_a_test_failed() {
    let dir = shell_fixture(&["pass_a", "pass_b"]);
    block_the_report(&dir);
    let out = run_in(&dir.path, &["run"]);
    assert_exit(&out, 3);
    assert!(stdout(&out).contains("junit.xml"), "{}", describe(&out));

    // A test failure in the same run wins: exit 1, "the tests failed".
    let dir = shell_fixture(&["pass_a", "fail_b"]);
    block_the_report(&dir);
    let out = run_in(&dir.path, &["run"]);
    assert_exit(&out, 1);
}
