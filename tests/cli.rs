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

#[test]
fn a_misspelt_option_suggests_the_right_one_and_its_commands_help() {
    let dir = shell_fixture(&["pass_a"]);
    let out = run_in(&dir.path, &["run", "--paralel", "2"]);
    assert_exit(&out, 3);
    assert_eq!(
        stderr(&out),
        "error: unknown option `--paralel` for `offload run` (did you mean `--parallel`?)\n\
         See `offload run --help` for its options.\n"
    );
    assert!(stdout(&out).is_empty(), "{}", describe(&out));
    assert!(
        !dir.join("test-results").exists(),
        "nothing ran: {}",
        describe(&out)
    );
    let out = run_in(&dir.path, &["logs", "--failure"]);
    assert_exit(&out, 3);
    assert!(
        stderr(&out).contains("(did you mean `--failures`?)\nSee `offload logs --help`"),
        "{}",
        describe(&out)
    );
}

#[test]
fn a_misspelt_or_guessed_command_suggests_the_real_one() {
    let dir = shell_fixture(&["pass_a"]);
    for word in ["rnu", "test"] {
        let out = run_in(&dir.path, &[word]);
        assert_exit(&out, 3);
        assert_eq!(
            stderr(&out),
            format!(
                "error: unknown command `{word}`; did you mean `offload run` (run tests in parallel)?\n\
                 The commands are run, collect, validate, init, logs, doctor; `offload --help` describes them.\n"
            )
        );
    }
}

#[test]
fn a_bad_number_says_what_is_expected_and_equals_works() {
    let dir = shell_fixture(&["pass_a"]);
    for bad in ["-1", "x", "0"] {
        let out = run_in(&dir.path, &["run", "--parallel", bad]);
        assert_exit(&out, 3);
        assert!(
            stderr(&out).starts_with(&format!(
                "error: `--parallel` expects a whole number of at least 1, got `{bad}`\n"
            )),
            "{}",
            describe(&out)
        );
    }
    let out = run_in(&dir.path, &["run", "--parallel=1"]);
    assert_exit(&out, 0);
}

#[test]
fn help_goes_to_stdout_and_exits_0() {
    let dir = shell_fixture(&["pass_a"]);
    let out = run_in(&dir.path, &["run", "--help"]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).starts_with("Usage: offload run"),
        "{}",
        describe(&out)
    );
    assert!(stdout(&out).contains("--parallel"), "{}", describe(&out));
    assert!(stderr(&out).is_empty(), "{}", describe(&out));
}

/// The shell fixture's config with a misspelt key in `[offload]`.
fn config_with_a_typo(dir: &TempDir, extra: &str) {
    let config = dir.read("offload.toml").replace(
        "[offload]\n",
        &format!("[offload]\n{extra}max_paralel = 3\n"),
    );
    dir.write("offload.toml", &config);
}

#[test]
fn validate_names_ignored_keys_and_strict_makes_them_errors() {
    let dir = shell_fixture(&["pass_a"]);
    config_with_a_typo(&dir, "");
    let out = run_in(&dir.path, &["validate"]);
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains(
            "warning: offload.toml:3:1: unknown key `offload.max_paralel` (did you mean `max_parallel`?)"
        ),
        "{}",
        describe(&out)
    );
    let first = stdout(&out).lines().next().unwrap_or("").to_string();
    assert_eq!(
        first,
        "Configuration is valid, but 1 unknown key is ignored: `offload.max_paralel` (see the \
         warnings; `offload validate --strict` makes unknown keys errors)."
    );

    let out = run_in(&dir.path, &["validate", "--strict"]);
    assert_exit(&out, 3);
    assert!(stdout(&out).is_empty(), "{}", describe(&out));
    assert_eq!(
        stderr(&out),
        "error: offload.toml:3:1: unknown key `offload.max_paralel` (did you mean `max_parallel`?)\n\
         error: an unknown key is an error with `--strict`: fix or remove it (without `--strict`, \
         each is only a warning and the key is ignored)\n"
    );
    // A clean file passes --strict.
    let clean = shell_fixture(&["pass_a"]);
    let out = run_in(&clean.path, &["validate", "--strict"]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).starts_with("Configuration is valid!\n"),
        "{}",
        describe(&out)
    );
}

#[test]
fn unknown_keys_error_in_the_file_stops_every_command() {
    let dir = shell_fixture(&["pass_a"]);
    config_with_a_typo(&dir, "unknown_keys = \"error\"\n");
    for args in [&["run"][..], &["validate"], &["collect"]] {
        let out = run_in(&dir.path, args);
        assert_exit(&out, 3);
        assert!(
            stderr(&out).contains(
                "error: an unknown key is an error because offload.toml sets [offload] unknown_keys = \"error\": fix or remove it"
            ),
            "{args:?}: {}",
            describe(&out)
        );
    }
    assert!(!dir.join("test-results").exists());
}
