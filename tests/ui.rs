//! What users see, end to end with the real binary: `init` on small pytest,
//! cargo and script projects (the file it writes must validate and run
//! unedited), `doctor` on healthy and broken projects, the summary and the
//! CI progress lines as snapshots, the live status line under a
//! pseudo-terminal, and the timeline page rendered by headless Chromium.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(120);

fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    run_within(offload(dir, args, env), LIMIT)
}

fn assert_exit(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "{}", describe(out));
}

/// A project of shell-script tests: `tests/test_ok.sh` passes, `tests/test_bad.sh` fails.
fn script_project() -> TempDir {
    let dir = TempDir::new("ui-scripts");
    dir.write("tests/test_ok.sh", "echo fine\n");
    dir.write("tests/test_bad.sh", "echo broken >&2\nexit 3\n");
    dir
}

/// A tiny pytest project with no configuration of its own.
fn pytest_project() -> TempDir {
    let dir = TempDir::new("ui-pytest");
    dir.write(
        "tests/test_math.py",
        "def test_add():\n    assert 1 + 1 == 2\n\n\ndef test_sub():\n    assert 2 - 1 == 1\n\n\n\
         class TestGroup:\n    def test_in_class(self):\n        assert True\n",
    );
    dir
}

/// A tiny cargo crate with two unit tests.
fn cargo_project() -> TempDir {
    let dir = TempDir::new("ui-cargo");
    dir.write(
        "Cargo.toml",
        "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    );
    dir.write(
        "src/lib.rs",
        "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n\n#[cfg(test)]\nmod tests {\n    \
         #[test]\n    fn adds() {\n        assert_eq!(super::add(1, 2), 3);\n    }\n\n    \
         #[test]\n    fn adds_negative() {\n        assert_eq!(super::add(-1, 1), 0);\n    }\n}\n",
    );
    dir
}

/// `init` then `validate` then `run`, all unedited; returns the run.
fn init_validate_run(dir: &TempDir, init_args: &[&str]) -> Output {
    let mut args = vec!["init"];
    args.extend_from_slice(init_args);
    let init = run_in(&dir.path, &args, &[]);
    assert_exit(&init, 0);
    assert!(
        stdout(&init).contains("Created offload.toml"),
        "{}",
        describe(&init)
    );
    let validate = run_in(&dir.path, &["validate"], &[]);
    assert_exit(&validate, 0);
    run_in(&dir.path, &["run"], &[])
}

#[test]
fn init_on_a_pytest_project_validates_and_runs() {
    let dir = pytest_project();
    let out = init_validate_run(&dir, &[]);
    let config = dir.read("offload.toml");
    assert!(config.contains("type = \"pytest\""), "{config}");
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("Passed:   3"), "{}", describe(&out));
}

#[test]
fn init_on_a_cargo_project_validates_and_runs() {
    let dir = cargo_project();
    let out = init_validate_run(&dir, &[]);
    assert!(dir.read("offload.toml").contains("type = \"cargo\""));
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("Passed:   2"), "{}", describe(&out));
}

#[test]
fn init_on_a_script_project_runs_each_script_as_a_test() {
    let dir = script_project();
    let out = init_validate_run(&dir, &[]);
    assert!(dir.read("offload.toml").contains("type = \"default\""));
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(
        text.contains("  tests/test_bad.sh\n      exit code 3\n"),
        "{text}"
    );
    assert!(text.contains("Passed:   1"), "{text}");
}

#[test]
fn init_asks_pytest_and_finds_tests_inside_the_package() {
    // networkx's layout: tests next to the code they test, no tests/ at the
    // top, no pytest configuration.
    let dir = TempDir::new("ui-pkg-tests");
    dir.write(
        "pyproject.toml",
        "[project]\nname = \"pkg\"\nversion = \"0\"\n",
    );
    dir.write("pkg/__init__.py", "");
    dir.write("pkg/algorithms/__init__.py", "");
    dir.write(
        "pkg/algorithms/tests/test_paths.py",
        "def test_short():\n    assert True\n\n\ndef test_long():\n    assert True\n",
    );
    dir.write(
        "pkg/tests/test_core.py",
        "def test_core():\n    assert True\n",
    );
    let init = run_in(&dir.path, &["init"], &[]);
    assert_exit(&init, 0);
    let text = stdout(&init);
    assert!(
        text.contains("pytest framework (detected from pytest test files such as pkg/algorithms/tests/test_paths.py)"),
        "{}",
        describe(&init)
    );
    assert!(
        text.contains("pytest collects 3 tests in pkg/ (asked with `"),
        "{}",
        describe(&init)
    );
    assert!(stderr(&init).is_empty(), "{}", describe(&init));
    let config = dir.read("offload.toml");
    assert!(config.contains("\npaths = []\n"), "{config}");
    assert_exit(&run_in(&dir.path, &["validate"], &[]), 0);
    let run = run_in(&dir.path, &["run"], &[]);
    assert_exit(&run, 0);
    assert!(stdout(&run).contains("Passed:   3"), "{}", describe(&run));
}

#[test]
fn init_turns_off_xdist_from_addopts_for_batches() {
    let dir = pytest_project();
    dir.write("pytest.ini", "[pytest]\naddopts = -ra -n 2\n");
    let init = run_in(&dir.path, &["init"], &[]);
    assert_exit(&init, 0);
    assert!(
        stdout(&init).contains("pytest.ini sets addopts `-n 2`: run_args = \"-n 0\""),
        "{}",
        describe(&init)
    );
    assert!(dir.read("offload.toml").contains("\nrun_args = \"-n 0\"\n"));
    // Whether some batch started xdist workers (pytest-xdist says
    // "created: 2/2 workers").
    let xdist_started = |dir: &TempDir| {
        std::fs::read_dir(dir.join("test-results/logs"))
            .unwrap()
            .any(|log| {
                std::fs::read_to_string(log.unwrap().path())
                    .unwrap()
                    .contains(" workers")
            })
    };
    let run = run_in(&dir.path, &["run"], &[]);
    assert_exit(&run, 0);
    assert!(stdout(&run).contains("Passed:   3"), "{}", describe(&run));
    assert!(!xdist_started(&dir), "{}", describe(&run));
    // Without run_args, every batch would start its workers.
    let config = dir.read("offload.toml").replace("run_args = \"-n 0\"", "");
    dir.write("offload.toml", &config);
    let _ = std::fs::remove_dir_all(dir.join("test-results"));
    let run = run_in(&dir.path, &["run"], &[]);
    assert_exit(&run, 0);
    assert!(xdist_started(&dir), "{}", describe(&run));
}

#[test]
fn init_without_a_pytest_capable_python_warns_and_says_what_to_install() {
    let dir = pytest_project();
    // `python` and `python3` exist but cannot import pytest.
    let bin = TempDir::new("ui-no-pytest-bin");
    for python in ["python", "python3"] {
        let path = bin.write(python, "#!/bin/sh\nexit 1\n");
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&path)
            .status()
            .unwrap();
    }
    let path = format!("{}:/usr/bin:/bin", bin.path.display());
    let init = run_in(&dir.path, &["init"], &[("PATH", &path)]);
    assert_exit(&init, 0);
    let err = stderr(&init);
    assert!(
        err.contains("warning: no pytest-capable Python found")
            && err.contains("install pytest (`python3 -m pip install pytest`"),
        "{}",
        describe(&init)
    );
    assert!(
        err.contains("paths = [\"tests\"] comes from the test file names (1 file in tests/), not from pytest"),
        "{}",
        describe(&init)
    );
    let config = dir.read("offload.toml");
    assert!(
        config.contains("command = \"python3 -m pytest\""),
        "{config}"
    );
    assert!(
        config.contains("No pytest-capable Python was found"),
        "{config}"
    );
}

#[test]
fn init_says_what_to_commit_and_what_to_ignore() {
    let dir = script_project();
    dir.write(".gitignore", "/test-results\n");
    let init = run_in(&dir.path, &["init"], &[]);
    assert_exit(&init, 0);
    let text = stdout(&init);
    assert!(
        text.contains("Commit offload.toml and, after the first run, offload.history.tsv:"),
        "{text}"
    );
    assert!(
        text.contains("Do not commit test-results/: the last run's reports and logs (.gitignore already ignores it)."),
        "{text}"
    );
}

/// A Node project whose `npm test` is `node --test`: one passing and one
/// failing test file, a helper under test/ that is a test file by Node's rules.
fn node_project() -> TempDir {
    let dir = TempDir::new("ui-node");
    dir.write(
        "package.json",
        "{\"name\": \"tiny\", \"version\": \"1.0.0\", \"scripts\": {\"test\": \"node --test\"}}\n",
    );
    dir.write(
        "test/math.test.js",
        "const test = require('node:test');\nconst assert = require('node:assert');\n\
         test('adds', () => { assert.strictEqual(1 + 1, 2); });\n",
    );
    dir.write(
        "src/util.test.mjs",
        "import test from 'node:test';\nimport assert from 'node:assert';\n\
         test('compares', () => { console.log('comparing <1> & <2>'); assert.strictEqual(1, 2); });\n",
    );
    dir.write(
        "node_modules/dep/test/ignored.test.js",
        "throw new Error('not ours');\n",
    );
    dir
}

#[test]
fn init_on_a_node_project_validates_and_runs() {
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED init_on_a_node_project_validates_and_runs: `node` is not installed (install Node.js 20+ to run it)");
        return;
    }
    let dir = node_project();
    let out = init_validate_run(&dir, &[]);
    let config = dir.read("offload.toml");
    assert!(config.contains("type = \"default\""), "{config}");
    assert!(config.contains("node --test"), "{config}");
    let collect = run_in(&dir.path, &["collect"], &[]);
    assert_eq!(
        stdout(&collect),
        "src/util.test.mjs\ntest/math.test.js\n2 tests in 1 groups\n",
        "{}",
        describe(&collect)
    );
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(
        text.contains("Passed:   1") && text.contains("Failed:   1"),
        "{}",
        describe(&out)
    );
    assert!(
        text.contains(
            "  src/util.test.mjs\n      compares: Expected values to be strictly equal:\n"
        ),
        "{text}"
    );
    // The failing file's output is in the report, escaped and back.
    let logs = run_in(&dir.path, &["logs", "--failures"], &[]);
    assert_exit(&logs, 0);
    assert!(
        stdout(&logs).contains("comparing <1> & <2>"),
        "{}",
        describe(&logs)
    );
    // Durations come from Node's own timing.
    let history = dir.read("offload.history.tsv");
    assert!(history.contains("test\ttest/math.test.js\t"), "{history}");
}

/// The directory sandboxes (`/tmp/offload-sandbox.*`) that exist now.
fn directory_sandboxes() -> Vec<PathBuf> {
    std::fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.display().to_string().starts_with("/tmp/offload-sandbox."))
        .collect()
}

#[test]
fn init_with_directory_sandboxes_runs() {
    let dir = script_project();
    let before = directory_sandboxes();
    let out = init_validate_run(&dir, &["-p", "default", "-f", "default"]);
    assert!(dir.read("offload.toml").contains("mktemp -d"));
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(
        text.contains("Passed:   1") && text.contains("Failed:   1"),
        "{text}"
    );
    let left: Vec<PathBuf> = directory_sandboxes()
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert!(left.is_empty(), "sandboxes left behind: {left:?}");
}

#[test]
fn init_refuses_to_overwrite_without_force() {
    let dir = script_project();
    assert_exit(&run_in(&dir.path, &["init"], &[]), 0);
    dir.write("offload.toml", "# my own edits\n");
    let again = run_in(&dir.path, &["init"], &[]);
    assert_exit(&again, 3);
    let err = stderr(&again);
    assert!(err.contains("offload.toml already exists"), "{err}");
    assert!(err.contains("offload init --force"), "{err}");
    assert_eq!(dir.read("offload.toml"), "# my own edits\n");
    assert_exit(&run_in(&dir.path, &["init", "--force"], &[]), 0);
    assert!(dir.read("offload.toml").contains("[framework]"));
}

#[test]
fn init_writes_where_dash_c_says() {
    let dir = script_project();
    std::fs::create_dir_all(dir.join("ci")).unwrap();
    let out = run_in(
        &dir.path,
        &["-c", "ci/offload-local.toml", "init", "-f", "nextest"],
        &[],
    );
    assert_exit(&out, 0);
    assert!(!dir.join("offload.toml").exists());
    assert!(dir
        .read("ci/offload-local.toml")
        .contains("type = \"cargo\""));
    assert!(
        stdout(&out).contains("offload -c ci/offload-local.toml run"),
        "{}",
        describe(&out)
    );
    assert_exit(
        &run_in(&dir.path, &["-c", "ci/offload-local.toml", "validate"], &[]),
        0,
    );
    let bad = run_in(&dir.path, &["init", "-p", "lcoal"], &[]);
    assert_exit(&bad, 3);
    assert!(
        stderr(&bad).contains("unknown provider \"lcoal\""),
        "{}",
        describe(&bad)
    );
}

/// A script project with an `offload.toml` from `init`, edited by `edit`.
fn doctor_project(edit: impl Fn(String) -> String) -> TempDir {
    let dir = script_project();
    assert_exit(&run_in(&dir.path, &["init"], &[]), 0);
    let config = edit(dir.read("offload.toml"));
    dir.write("offload.toml", &config);
    dir
}

#[test]
fn doctor_on_a_healthy_project_passes_every_check() {
    let dir = doctor_project(|c| c);
    let out = run_in(&dir.path, &["doctor"], &[]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(!text.contains('✗'), "{text}");
    for expected in [
        "✓ config: offload.toml is valid (local provider, default framework, 1 group)",
        "✓ tool: find (",
        "✓ discovery: group `all` found 2 tests (e.g. tests/test_bad.sh)",
        "✓ sandbox: created local-0",
        "✓ batch: group `all` (2 tests): all 2 results map back to discovered tests (1 failed: a test failure is not a setup problem)",
        "✓ sandbox: destroyed local-0",
        "All ",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}

#[test]
fn doctor_reports_a_broken_discover_command_with_a_fix() {
    let dir = doctor_project(|c| {
        let start = c.find("discover_command = ").unwrap();
        let end = start + c[start..].find('\n').unwrap();
        format!(
            "{}discover_command = \"./list-tests.sh {{filters}}\"{}",
            &c[..start],
            &c[end..]
        )
    });
    let out = run_in(&dir.path, &["doctor"], &[]);
    assert_exit(&out, 3);
    let text = stdout(&out);
    assert!(
        text.contains("✗ tool: ./list-tests.sh not found (needed by [framework] discover_command)"),
        "{text}"
    );
    let at = text
        .find("✗ discovery: group `all` failed")
        .unwrap_or_else(|| panic!("{text}"));
    let block: String = text[at..]
        .lines()
        .take_while(|l| !l.starts_with(['✓', '!']))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        block.contains("cause: group `all`: discover_command failed (exit code 127)"),
        "{block}"
    );
    assert!(
        block.contains("fix:   fix [framework] discover_command"),
        "{block}"
    );
    assert!(
        text.contains("checks failed; fix them and run `offload doctor` again."),
        "{text}"
    );
}

#[test]
fn doctor_reports_junit_names_that_do_not_map_with_the_format_that_would() {
    let dir = doctor_project(|c| {
        c.replace(
            "test_id_format = \"{name}\"",
            "test_id_format = \"suite::{name}\"",
        )
    });
    let out = run_in(&dir.path, &["doctor"], &[]);
    assert_exit(&out, 3);
    let text = stdout(&out);
    assert!(
        text.contains("✗ batch: group `all` (2 tests): 2 JUnit results match no discovered test"),
        "{text}"
    );
    assert!(text.contains("name \"tests/test_bad.sh\""), "{text}");
    assert!(
        text.contains("fix:   set [framework] test_id_format = \"{name}\" (it maps these testcases to the discovered IDs)"),
        "{text}"
    );
}

/// A copy of the shell fixture (`fixtures/shell`) running `tests`.
fn shell_fixture(tests: &[&str], parallel: usize, retry: u32) -> TempDir {
    let dir = TempDir::with_fixture("shell");
    dir.write("tests.txt", &(tests.join("\n") + "\n"));
    let config = dir
        .read("offload.toml")
        .replace("max_parallel = 2", &format!("max_parallel = {parallel}"))
        .replace("retry_count = 0", &format!("retry_count = {retry}"));
    dir.write("offload.toml", &config);
    dir
}

/// The run's wall time and the temp directory vary: mask them.
fn mask(text: &str, dir: &Path) -> String {
    let text = text.replace(&dir.display().to_string(), "DIR");
    let re = regex::Regex::new(r"Test results \([^)]*\)").unwrap();
    re.replace(&text, "Test results (WALL)").into_owned()
}

#[test]
fn summary_snapshot() {
    let dir = shell_fixture(&["pass_a", "fail_b", "flaky_c", "pass_d"], 2, 1);
    let out = run_in(&dir.path, &["run"], &[]);
    assert_exit(&out, 1);
    let expected = "
Test results (WALL):
  Total:    4
  Passed:   2
  Failed:   1
  Flaky:    1
  Not run:  0
  Skipped:  0

Failed tests:
  fail_b
      expected 1 got 2

Flaky tests (failed, then passed on a retry):
  flaky_c (passed on attempt 2 of 2)

Slowest tests:
  10ms  fail_b
  10ms  flaky_c
  10ms  pass_a
  10ms  pass_d

Reports:
  JUnit:      test-results/junit.xml
  Batch logs: test-results/logs  (offload logs --failures shows the failures)

Some tests failed: 1 failed.
";
    assert_eq!(mask(&stdout(&out), &dir.path), expected);
}

#[test]
fn ci_progress_lines_are_plain() {
    let dir = shell_fixture(&["pass_a", "fail_b", "flaky_c", "pass_d"], 2, 1);
    let out = run_in(&dir.path, &["run"], &[("CI", "true")]);
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        !err.chars().any(|c| c.is_control() && c != '\n'),
        "control characters in CI output: {err:?}"
    );
    let progress: Vec<&str> = err.lines().filter(|l| l.starts_with("[offload]")).collect();
    // Discovery is a visible phase: the group, its command, what it found.
    assert!(
        progress[0].starts_with("[offload] discovering group `all`: ./discover.sh"),
        "{err}"
    );
    let found = regex::Regex::new(r"^\[offload\] group `all`: 4 tests \(\d+(\.\d)?m?s\)$").unwrap();
    assert!(found.is_match(progress[1]), "{err}");
    let progress = &progress[2..];
    assert_eq!(
        progress.first(),
        Some(&"[offload] running 4 tests on up to 2 sandboxes"),
        "{err}"
    );
    let last = regex::Regex::new(r"^\[offload\] finished in 0:0\d: 4/4 tests done: 2 passed, 1 failed, 1 flaky, 0 not run, 0 skipped$").unwrap();
    assert!(progress.last().is_some_and(|l| last.is_match(l)), "{err}");
    // In between, only periodic status lines (every 5 s at most).
    let periodic = regex::Regex::new(r"^\[offload\] \d+:\d\d \d+/4 tests done: ").unwrap();
    for line in &progress[1..progress.len() - 1] {
        assert!(periodic.is_match(line), "{line}");
    }
    assert!(err.contains("\nFAILED fail_b\n"), "{err}");
    assert!(err.contains("\nRETRY  flaky_c (attempt "), "{err}");
}

#[test]
fn verbose_output_is_prefixed_with_the_batch_number() {
    let dir = shell_fixture(&["pass_a", "fail_b"], 1, 0);
    let out = run_in(&dir.path, &["-v", "run"], &[("CI", "true")]);
    assert_exit(&out, 1);
    let err = stderr(&out);
    // Discovery's own output streams too, before the run starts.
    let discovered = err.find("\n[discovery] pass_a\n");
    let running = err.find("running 2 tests on up to 1 sandbox");
    assert!(
        discovered.is_some() && discovered < running,
        "discovery output before the run: {err}"
    );
    let prefixed = regex::Regex::new(r"(?m)^\[batch \d+\] running pass_a$").unwrap();
    assert!(prefixed.is_match(&err), "{err}");
    let stderr_line =
        regex::Regex::new(r"(?m)^\[batch \d+\] \[stderr\] assertion failed in fail_b$").unwrap();
    assert!(stderr_line.is_match(&err), "{err}");
}

/// What a terminal shows after `bytes` are written to it: carriage
/// returns, newlines and "erase line" (`ESC [ 2 K`) are applied; other
/// escape sequences are dropped.
fn final_screen(bytes: &str) -> Vec<String> {
    let mut lines: Vec<Vec<char>> = vec![Vec::new()];
    let mut col = 0;
    let mut chars = bytes.chars().peekable();
    while let Some(c) = chars.next() {
        let line = lines.last_mut().unwrap();
        match c {
            '\r' => col = 0,
            '\n' => {
                lines.push(Vec::new());
                col = 0;
            }
            '\x1b' => {
                let mut seq = String::new();
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for s in chars.by_ref() {
                        seq.push(s);
                        if s.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
                if seq == "2K" {
                    line.clear();
                }
            }
            c => {
                if col < line.len() {
                    line[col] = c;
                } else {
                    line.resize(col, ' ');
                    line.push(c);
                }
                col += 1;
            }
        }
    }
    lines.into_iter().map(|l| l.into_iter().collect()).collect()
}

#[test]
fn terminal_run_shows_a_live_line_and_leaves_a_clean_screen() {
    let dir = shell_fixture(&["slow_a", "pass_b", "slow_c"], 1, 0);
    let command = format!("{} run", offload_bin());
    let mut cmd = Command::new("script");
    cmd.args(["-qfec", &command, "/dev/null"])
        .current_dir(&dir.path)
        .env_remove("CI")
        .env("COLUMNS", "200");
    let out = run_within(cmd, LIMIT);
    let raw = stdout(&out);
    // The status line is drawn in place: erase-line, then the line, no newline.
    let draws: Vec<&str> = raw
        .split("\r\x1b[2K")
        .skip(1)
        .map(|s| s.split(['\r', '\n']).next().unwrap_or(""))
        .filter(|s| s.contains(" tests · "))
        .collect();
    assert!(
        draws.len() >= 2,
        "expected several draws of the status line:\n{raw:?}"
    );
    assert!(draws[0].contains("0/3 tests"), "{draws:?}");
    assert!(
        draws.iter().any(|d| d.contains("3/3 tests · 3 passed")),
        "{draws:?}"
    );
    assert!(draws.iter().all(|d| d.chars().count() < 200), "{draws:?}");
    // Cleared at the end: the final screen has the summary and no status line.
    let screen = final_screen(&raw);
    assert!(
        !screen.iter().any(|l| l.contains(" tests · ")),
        "status line left on screen:\n{}",
        screen.join("\n")
    );
    assert!(
        screen.iter().any(|l| l == "All tests passed!"),
        "{}",
        screen.join("\n")
    );
    assert!(
        screen.iter().any(|l| l.starts_with("Test results (")),
        "{}",
        screen.join("\n")
    );
}

/// A screenshot's pixels, decoded with Python's zlib (the test has no image
/// crate).
struct Screenshot {
    width: usize,
    height: usize,
    /// Row after row.
    pixels: Vec<[u8; 3]>,
}

impl Screenshot {
    fn at(&self, x: usize, y: usize) -> [u8; 3] {
        self.pixels[y * self.width + x]
    }

    fn column(&self, x: usize) -> Vec<[u8; 3]> {
        (0..self.height).map(|y| self.at(x, y)).collect()
    }
}

/// Decode the PNG at `png`: Python prints the width and height, then the
/// raw RGB bytes.
fn decode_png(png: &Path) -> Screenshot {
    const DECODE: &str = r#"
import struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
pos, idat = 8, b''
while pos < len(data):
    (length,) = struct.unpack('>I', data[pos:pos + 4])
    kind, chunk = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
    pos += 12 + length
    if kind == b'IHDR':
        w, h, depth, color = struct.unpack('>IIBB', chunk[:10])
    elif kind == b'IDAT':
        idat += chunk
assert depth == 8 and color in (2, 6), 'unsupported PNG %d/%d' % (depth, color)
bpp = 3 if color == 2 else 4
raw, stride = zlib.decompress(idat), w * bpp
prev, i, out = bytearray(stride), 0, bytearray()
for y in range(h):
    f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
    i += 1 + stride
    for k in range(stride):
        a = line[k - bpp] if k >= bpp else 0
        b = prev[k]
        c = prev[k - bpp] if k >= bpp else 0
        if f == 1: line[k] = (line[k] + a) & 255
        elif f == 2: line[k] = (line[k] + b) & 255
        elif f == 3: line[k] = (line[k] + ((a + b) >> 1)) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[k] = (line[k] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    for x in range(w):
        out += line[x * bpp:x * bpp + 3]
    prev = line
sys.stdout.buffer.write(b'%d %d\n' % (w, h) + bytes(out))
"#;
    let out = Command::new("python3")
        .args(["-c", DECODE, &png.display().to_string()])
        .output()
        .expect("python3 is needed to decode the screenshot");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let newline = out.stdout.iter().position(|&b| b == b'\n').unwrap();
    let size = String::from_utf8_lossy(&out.stdout[..newline]).to_string();
    let (width, height) = size.split_once(' ').unwrap();
    let (width, height): (usize, usize) = (width.parse().unwrap(), height.parse().unwrap());
    let pixels: Vec<[u8; 3]> = out.stdout[newline + 1..]
        .chunks_exact(3)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    assert_eq!(pixels.len(), width * height);
    Screenshot {
        width,
        height,
        pixels,
    }
}

fn near(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 8)
}

/// The lane backgrounds of the timeline page (`.lane` in timeline.rs).
const ROW: [u8; 3] = [0xee, 0xf0, 0xf4];
const CRITICAL_ROW: [u8; 3] = [0xff, 0xf1, 0xbf];
const PHASE_ROW: [u8; 3] = [0xec, 0xe6, 0xf5];
/// Batch bars that passed and failed (`.success`, `.failure`).
const SUCCESS_BAR: [u8; 3] = [0x2e, 0x9d, 0x4e];
const FAILURE_BAR: [u8; 3] = [0xd1, 0x3b, 0x3b];

/// Run `chromium --headless` on `page` with `args` (a screenshot, a DOM dump).
fn chromium(page: &str, args: &[&str]) -> Output {
    let profile = TempDir::new("chromium-profile");
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        &format!("--user-data-dir={}", profile.path.display()),
    ])
    .args(args)
    .arg(page);
    match cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(child) => wait_within(child, LIMIT),
        Err(e) => panic!("cannot start chromium ({e}); install it: apt-get install -y chromium"),
    }
}

/// Down a pixel column, the lanes are bands of their background colour
/// separated by white: each band's colour and first and last row.
fn bands(column: &[[u8; 3]]) -> Vec<([u8; 3], usize, usize)> {
    let mut bands: Vec<([u8; 3], usize, usize)> = Vec::new();
    let mut inside = false;
    for (y, px) in column.iter().enumerate() {
        let colour = [ROW, CRITICAL_ROW, PHASE_ROW]
            .into_iter()
            .find(|c| near(*px, *c));
        match (colour, inside) {
            (Some(c), false) => {
                bands.push((c, y, y));
                inside = true;
            }
            (Some(_), true) => bands.last_mut().unwrap().2 = y,
            (None, true) if near(*px, [255, 255, 255]) => inside = false,
            _ => {}
        }
    }
    bands
}

/// Along row `y`, the widest stretch of a batch bar's colour (gaps of up to
/// 10 pixels — the letters of a label — bridged): its first and last column.
fn widest_bar(shot: &Screenshot, y: usize) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    let mut current: Option<(usize, usize)> = None;
    for x in 0..shot.width {
        let px = shot.at(x, y);
        if !(near(px, SUCCESS_BAR) || near(px, FAILURE_BAR)) {
            continue;
        }
        current = match current {
            Some((start, end)) if x - end <= 10 => Some((start, x)),
            _ => Some((x, x)),
        };
        let (start, end) = current.unwrap();
        if best.map_or(true, |(s, e)| end - start > e - s) {
            best = Some((start, end));
        }
    }
    best
}

#[test]
fn timeline_renders_one_row_per_sandbox_in_chromium() {
    let dir = shell_fixture(
        &["pass_a", "pass_b", "slow_c", "pass_d", "fail_e", "pass_f"],
        3,
        0,
    );
    let out = run_in(&dir.path, &["run"], &[]);
    assert_exit(&out, 1);
    let page = dir.join("test-results/timeline.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(
        html.matches("<div class=\"lane sandbox").count(),
        3,
        "{html}"
    );
    for phase in ["discovery", "prepare"] {
        assert_eq!(
            html.matches(&format!("<div class=\"lane phase\" data-phase=\"{phase}\""))
                .count(),
            1,
            "{phase} has a row"
        );
    }
    let batch_logs = std::fs::read_dir(dir.join("test-results/logs"))
        .unwrap()
        .count();
    assert_eq!(
        html.matches("<details class=\"bar batch ").count(),
        batch_logs,
        "one bar per batch"
    );
    let failing = regex::Regex::new(
        r#"<details class="bar batch failure [^"]*" name="batch" data-batch="(\d+)""#,
    )
    .unwrap()
    .captures(&html)
    .expect("the failing batch is coloured as such")[1]
        .to_string();
    assert!(
        html.contains("FAILED  fail_e"),
        "the failing test is named on hover"
    );

    // The DOM as Chromium built it, opened at the failing batch's
    // breakdown (`#batch-N` opens its <details>, as a click does): every
    // bar has its label, and the breakdown lists fail_e with its time.
    let url = format!("file://{}", page.display());
    let dom = chromium(&format!("{url}#batch-{failing}"), &["--dump-dom"]);
    let dom = String::from_utf8_lossy(&dom.stdout).to_string();
    let labels = regex::Regex::new(r"<summary[^>]*><span>#(\d+) · (\d+)</span></summary>").unwrap();
    let labelled: Vec<(usize, usize)> = labels
        .captures_iter(&dom)
        .map(|c| (c[1].parse().unwrap(), c[2].parse().unwrap()))
        .collect();
    assert_eq!(labelled.len(), batch_logs, "a label per bar: {dom}");
    assert_eq!(
        labelled.iter().map(|(_, tests)| tests).sum::<usize>(),
        6,
        "the labels count every test once: {labelled:?}"
    );
    let open = regex::Regex::new(
        r#"<details class="bar batch [^"]*" name="batch" data-batch="(\d+)"[^>]*\bopen\b"#,
    )
    .unwrap();
    let opened: Vec<String> = open.captures_iter(&dom).map(|c| c[1].to_string()).collect();
    assert_eq!(opened, [failing], "the breakdown opened: {dom}");
    assert!(
        regex::Regex::new(r#"<div class="t failed" style="--s:[0-9.]+%;--w:[0-9.]+%"><code>fail_e</code><b>10ms</b><em>FAILED</em>"#)
            .unwrap()
            .is_match(&dom),
        "fail_e in the breakdown: {dom}"
    );

    // Render it: the screenshot is kept under target/ as an artefact.
    let artefacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-artefacts");
    std::fs::create_dir_all(&artefacts).unwrap();
    let png = artefacts.join("timeline.png");
    let _ = std::fs::remove_file(&png);
    let shot = chromium(
        &url,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1400,600",
        ],
    );
    assert!(png.is_file(), "no screenshot: {}", describe(&shot));
    let shot = decode_png(&png);

    // Down a pixel column left of the labels: the discovery and prepare
    // rows, then a row per sandbox, one of them the critical path.
    let lanes = bands(&shot.column(4));
    let colours: Vec<[u8; 3]> = lanes.iter().map(|b| b.0).collect();
    assert_eq!(
        colours[..2],
        [PHASE_ROW, PHASE_ROW],
        "the phase rows in the screenshot: {colours:?} ({})",
        png.display()
    );
    let sandboxes: Vec<&([u8; 3], usize, usize)> =
        lanes.iter().filter(|b| b.0 != PHASE_ROW).collect();
    assert_eq!(
        sandboxes.len(),
        3,
        "rows seen in the screenshot: {colours:?} ({})",
        png.display()
    );
    assert_eq!(
        sandboxes.iter().filter(|b| b.0 == CRITICAL_ROW).count(),
        1,
        "one critical path row"
    );
    // The page fills the window: the rows reach past where the old fixed
    // 1,160-pixel page ended, to the right margin (its background shows
    // above or below the bars there).
    for (colour, top, bottom) in &lanes {
        let edge: Vec<[u8; 3]> = (*top..=*bottom)
            .map(|y| shot.at(shot.width - 30, y))
            .collect();
        assert!(
            edge.iter().any(|px| near(*px, *colour)),
            "a row stops short of the window's edge: {edge:?} ({})",
            png.display()
        );
    }
    // The widest bar (the one with slow_c, a second long) shows its label:
    // white letters on the bar's colour, along the bar's middle.
    let mut found = None;
    for (_, top, bottom) in &sandboxes {
        let middle = (top + bottom) / 2;
        if let Some((start, end)) = widest_bar(&shot, middle) {
            if found.map_or(true, |(_, s, e)| end - start > e - s) {
                found = Some((middle, start, end));
            }
        }
    }
    let (middle, start, end) = found.expect("no batch bar in the screenshot");
    assert!(
        end - start > 200,
        "the widest bar is {} pixels wide ({})",
        end - start,
        png.display()
    );
    let letters = (middle - 5..=middle + 5)
        .flat_map(|y| (start..=end.min(start + 80)).map(move |x| (x, y)))
        .filter(|&(x, y)| shot.at(x, y).iter().all(|&c| c >= 200))
        .count();
    assert!(
        letters >= 10,
        "no label drawn on the widest bar ({letters} light pixels; {})",
        png.display()
    );
}

#[test]
fn trace_has_a_process_per_sandbox_and_an_event_per_batch() {
    let dir = shell_fixture(&["pass_a", "pass_b", "fail_c", "pass_d"], 2, 0);
    let out = run_in(&dir.path, &["run", "--trace"], &[]);
    assert_exit(&out, 1);
    let trace: serde_json::Value =
        serde_json::from_str(&dir.read("test-results/trace.json")).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    let processes = events
        .iter()
        .filter(|e| e["name"] == "process_name")
        .count();
    assert_eq!(processes, 3, "Offload and two sandboxes");
    let batches: Vec<&serde_json::Value> = events.iter().filter(|e| e["cat"] == "batch").collect();
    let batch_logs = std::fs::read_dir(dir.join("test-results/logs"))
        .unwrap()
        .count();
    assert_eq!(batches.len(), batch_logs);
    let mut tests: Vec<String> = Vec::new();
    for b in &batches {
        assert_eq!(b["ph"], "X");
        assert!(
            b["pid"].as_u64().unwrap() >= 1 && b["dur"].as_u64().is_some(),
            "{b}"
        );
        for t in b["args"]["tests"].as_array().unwrap() {
            tests.push(t["id"].as_str().unwrap().to_string());
        }
    }
    tests.sort();
    assert_eq!(tests, ["fail_c", "pass_a", "pass_b", "pass_d"]);
    // A slice per test (from the JUnit times), inside its batch.
    let mut slices: Vec<&str> = Vec::new();
    for t in events.iter().filter(|e| e["cat"] == "test") {
        let (ts, dur) = (t["ts"].as_u64().unwrap(), t["dur"].as_u64().unwrap());
        let batch = batches
            .iter()
            .find(|b| b["args"]["batch"] == t["args"]["batch"])
            .expect("a test slice of a batch");
        let (bts, bdur) = (
            batch["ts"].as_u64().unwrap(),
            batch["dur"].as_u64().unwrap(),
        );
        assert!(
            t["pid"] == batch["pid"] && ts >= bts && ts + dur <= bts + bdur,
            "{t} is not inside {batch}"
        );
        slices.push(t["name"].as_str().unwrap());
    }
    slices.sort();
    assert_eq!(slices, ["fail_c", "pass_a", "pass_b", "pass_d"]);
    // Discovery and each sandbox's start-up are phases of their own.
    let discovery: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["cat"] == "discovery").collect();
    assert_eq!(discovery.len(), 1, "one group");
    assert_eq!(discovery[0]["args"]["tests"], 4);
    let startups = events.iter().filter(|e| e["name"] == "start-up").count();
    assert_eq!(startups, 2, "one start-up per sandbox");
    // Without --trace there is no trace file.
    std::fs::remove_file(dir.join("test-results/trace.json")).unwrap();
    run_in(&dir.path, &["run"], &[]);
    assert!(!dir.join("test-results/trace.json").exists());
}

/// `init` then `doctor` on a copy of `fixtures/{name}`.
fn doctor_on_fixture(name: &str) -> Output {
    let dir = TempDir::with_fixture(name);
    let _ = std::fs::remove_file(dir.join("offload.toml"));
    assert_exit(&run_in(&dir.path, &["init"], &[]), 0);
    run_in(&dir.path, &["doctor"], &[])
}

#[test]
fn doctor_passes_on_the_pytest_and_cargo_fixtures() {
    for (fixture, tool) in [
        ("pytest-basic", "✓ tool: `python"),
        ("cargo-workspace", "✓ tool: `cargo nextest --version` works"),
    ] {
        let out = doctor_on_fixture(fixture);
        assert_exit(&out, 0);
        let text = stdout(&out);
        assert!(!text.contains('✗'), "{fixture}:\n{text}");
        assert!(text.contains(tool), "{fixture}:\n{text}");
        assert!(
            text.contains("results map back to discovered tests"),
            "{fixture}:\n{text}"
        );
    }
}

#[test]
fn doctor_names_the_pytest_module_that_cannot_be_collected() {
    let out = doctor_on_fixture("pytest-broken");
    assert_exit(&out, 3);
    let text = stdout(&out);
    let at = text
        .find("✗ discovery: group `all` failed")
        .unwrap_or_else(|| panic!("{text}"));
    let block = &text[at..];
    assert!(block.contains("tests/test_broken_import.py"), "{text}");
    assert!(block.contains("    fix:   run `"), "{text}");
}
