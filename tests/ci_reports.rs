//! CI-native reports end to end, the real binary on the shell fixture suite
//! (`fixtures/shell`): the GitHub Actions annotations and job summary
//! against golden files (`tests/golden/ci_reports/`), and the
//! `--message-format json` event stream read back line by line.
//!
//! `OFFLOAD_UPDATE_GOLDEN=1 cargo test --test ci_reports` rewrites the
//! golden files from what the binary prints.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;

/// A pass, a fail, a fail whose testcase names its file and line, and a
/// flaky test, with one retry.
const SUITE: &[&str] = &["pass_one", "fail_two", "failat_three", "flaky_four"];

fn project() -> TempDir {
    let dir = TempDir::with_fixture("shell");
    dir.write("tests.txt", &(SUITE.join("\n") + "\n"));
    dir.write(
        "offload.toml",
        r#"
[offload]
max_parallel = 2
test_timeout_secs = 60

[provider]
type = "local"

[framework]
type = "default"
discover_command = "./discover.sh {filters}"
run_command = "./runner.sh {result_file} {tests}"
test_id_format = "{name}"

[groups.all]
retry_count = 1
"#,
    );
    dir
}

fn run(dir: &TempDir, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    run_within(offload(&dir.path, &all, env), Duration::from_secs(60))
}

/// `GITHUB_ACTIONS=true`, the job summary in `summary`, the workspace at
/// the project.
fn github_env<'a>(dir: &'a TempDir, summary: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_STEP_SUMMARY", summary),
        ("GITHUB_WORKSPACE", dir.path.to_str().unwrap()),
    ]
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/ci_reports")
        .join(name)
}

/// Compare with (or, with `OFFLOAD_UPDATE_GOLDEN=1`, write) a golden file.
fn assert_golden(name: &str, actual: &str) {
    let path = golden_path(name);
    if std::env::var_os("OFFLOAD_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (OFFLOAD_UPDATE_GOLDEN=1 writes it)",
            path.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "{} differs (OFFLOAD_UPDATE_GOLDEN=1 rewrites it)",
        path.display()
    );
}

/// The wall time in the counts table varies from run to run.
fn normalise_wall_time(summary: &str) -> String {
    let wall =
        regex::Regex::new(r"(?m)^(\| \d+ \| \d+ \| \d+ \| \d+ \| \d+ \| \d+ \| )[^|]+( \|)$")
            .unwrap();
    wall.replace_all(summary, "${1}<wall>${2}").into_owned()
}

#[test]
fn a_github_actions_run_annotates_its_failures_and_appends_a_job_summary() {
    let dir = project();
    let summary = dir.write("step-summary.md", "Earlier step's summary.\n\n");
    let out = run(&dir, &[], &github_env(&dir, summary.to_str().unwrap()));
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));

    let commands: String = stdout(&out)
        .lines()
        .filter(|l| l.starts_with("::"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_golden("annotations.txt", &commands);
    // The summary for people is still there, after the annotations.
    let text = stdout(&out);
    assert!(
        text.find("::warning").unwrap() < text.find("Test results").unwrap(),
        "{text}"
    );

    let written = std::fs::read_to_string(&summary).unwrap();
    assert!(
        written.starts_with("Earlier step's summary.\n\n### Offload: "),
        "appended, not replaced:\n{written}"
    );
    assert_golden("step_summary.md", &normalise_wall_time(&written));
}

#[test]
fn without_github_actions_or_with_no_ci_reports_there_are_none() {
    let dir = project();
    let out = run(&dir, &[], &[("GITHUB_STEP_SUMMARY", "ignored.md")]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(!stdout(&out).contains("::error"), "{}", describe(&out));
    assert!(!dir.join("ignored.md").exists());

    let summary = dir.join("summary.md");
    let env = github_env(&dir, summary.to_str().unwrap());
    let out = run(&dir, &["--no-ci-reports"], &env);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(!stdout(&out).contains("::"), "{}", describe(&out));
    assert!(!summary.exists());

    let config = dir.read("offload.toml") + "\n[report]\nci_reports = false\n";
    dir.write("offload.toml", &config);
    let out = run(&dir, &[], &env);
    assert!(!stdout(&out).contains("::"), "{}", describe(&out));
    assert!(!summary.exists());
}

#[test]
fn a_job_summary_that_cannot_be_appended_is_a_warning_not_a_failed_run() {
    let dir = project();
    // A directory: it cannot be opened for appending.
    std::fs::create_dir_all(dir.join("not-a-file")).unwrap();
    let summary = dir.join("not-a-file");
    let out = run(&dir, &[], &github_env(&dir, summary.to_str().unwrap()));
    // Exit 1 for the failed tests, not 3 for a report not written.
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("warning: cannot append the job summary to"),
        "{}",
        describe(&out)
    );
    assert!(!stdout(&out).contains("Not written"), "{}", describe(&out));
}

#[test]
fn the_json_stream_is_one_versioned_object_per_line_covering_every_test() {
    let dir = project();
    let summary = dir.join("summary.md");
    let env = github_env(&dir, summary.to_str().unwrap());
    let out = run(&dir, &["--message-format", "json"], &env);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));

    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect();
    assert!(!lines.is_empty(), "{}", describe(&out));
    for l in &lines {
        assert_eq!(l["v"], 1, "{l}");
        assert!(l["type"].is_string(), "{l}");
    }
    let of_type =
        |t: &str| -> Vec<&serde_json::Value> { lines.iter().filter(|l| l["type"] == t).collect() };

    let started = of_type("run_started");
    assert_eq!(started.len(), 1);
    assert_eq!(started[0]["tests"], SUITE.len());
    assert_eq!(started[0]["sandboxes"], 2);

    // Every test is decided once, with its group and status.
    let decided = of_type("test_decided");
    let status_of = |id: &str| -> Vec<&str> {
        decided
            .iter()
            .filter(|l| l["id"] == id)
            .map(|l| l["status"].as_str().unwrap())
            .collect()
    };
    assert_eq!(decided.len(), SUITE.len(), "{decided:?}");
    assert_eq!(status_of("pass_one"), ["passed"]);
    assert_eq!(status_of("fail_two"), ["failed"]);
    assert_eq!(status_of("failat_three"), ["failed"]);
    assert_eq!(status_of("flaky_four"), ["flaky"]);
    assert!(decided.iter().all(|l| l["group"] == "all"));

    // Each attempt is a test_finished line, numbered, before the verdict.
    let finished = of_type("test_finished");
    let attempts_of = |id: &str| -> Vec<(u64, String)> {
        finished
            .iter()
            .filter(|l| l["id"] == id)
            .map(|l| {
                (
                    l["attempt"].as_u64().unwrap(),
                    l["outcome"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    for id in SUITE {
        assert!(
            !attempts_of(id).is_empty(),
            "{id} has no test_finished line"
        );
    }
    assert_eq!(attempts_of("pass_one"), [(1, "passed".to_string())]);
    assert_eq!(
        attempts_of("flaky_four"),
        [(1, "failed".to_string()), (2, "passed".to_string())]
    );
    let at = finished.iter().find(|l| l["id"] == "failat_three").unwrap();
    assert_eq!(
        (&at["file"], &at["line"]),
        (&"tests/failat_three.sh".into(), &3.into())
    );
    assert_eq!(at["message"], "expected 1 got 2");
    assert!(finished
        .iter()
        .all(|l| l["duration"].as_f64() == Some(0.01)));
    let position = |t: &str, id: &str| {
        lines
            .iter()
            .position(|l| l["type"] == t && l["id"] == id)
            .unwrap()
    };
    assert!(position("test_retrying", "flaky_four") < position("test_decided", "flaky_four"));

    // Batches: each started one finishes, on a sandbox, with a kind.
    let batches_started = of_type("batch_started");
    let batches_finished = of_type("batch_finished");
    assert_eq!(batches_started.len(), batches_finished.len());
    assert!(batches_finished.iter().any(|b| b["kind"] == "retry"));
    for b in &batches_finished {
        assert!(b["started"].as_f64().unwrap() <= b["finished"].as_f64().unwrap());
        assert!(b["sandbox"].as_u64().unwrap() < 2);
    }

    // The last line: the counts and the exit code.
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "run_finished", "{last}");
    assert_eq!(last["total"], SUITE.len());
    assert_eq!(last["passed"], 1);
    assert_eq!(last["failed"], 2);
    assert_eq!(last["flaky"], 1);
    assert_eq!(last["not_run"], 0);
    assert_eq!(last["exit_code"], 1);
    assert!(last["wall"].as_f64().unwrap() > 0.0);

    // The summary for people and the annotations went to stderr.
    let err = stderr(&out);
    assert!(err.contains("Test results"), "{err}");
    assert!(
        err.contains("::error title=Test failed%3A fail_two::"),
        "{err}"
    );
    assert!(summary.exists());
}

#[test]
fn the_json_stream_says_the_flaky_policy_exit_code() {
    let dir = project();
    dir.write("tests.txt", "pass_one\nflaky_four\n");
    let out = run(&dir, &["--message-format", "json"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let last: serde_json::Value =
        serde_json::from_str(stdout(&out).lines().last().unwrap()).unwrap();
    assert_eq!(last["exit_code"], 2);
    let out = run(
        &dir,
        &["--message-format", "json", "--flaky-result", "pass"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let last: serde_json::Value =
        serde_json::from_str(stdout(&out).lines().last().unwrap()).unwrap();
    assert_eq!(last["exit_code"], 0);
}

#[test]
fn an_unknown_message_format_is_a_usage_error() {
    let dir = project();
    let out = run(&dir, &["--message-format", "xml"], &[]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(stderr(&out).contains("human, json"), "{}", describe(&out));
    let out = run(&dir, &["--collect-only", "--message-format", "json"], &[]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(
        stderr(&out).contains("use `offload collect -f json`"),
        "{}",
        describe(&out)
    );
}

/// Whether `program args` runs: the real runners are required (never
/// skipped), as in `tests/pytest.rs` and `tests/cargo.rs`.
fn require(program: &str, args: &[&str], how: &str) {
    let ok = std::process::Command::new(program)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(ok, "{program} {args:?} does not run: {how}");
}

/// The `::error` / `::warning` lines of a run's stdout.
fn commands_of(out: &std::process::Output) -> Vec<String> {
    stdout(out)
        .lines()
        .filter(|l| l.starts_with("::"))
        .map(str::to_string)
        .collect()
}

#[test]
fn pytest_failures_are_annotated_on_the_line_they_failed_on() {
    require(
        "pytest",
        &["--version"],
        "run `make setup`, then the tests through `make test` (.venv/bin first on PATH)",
    );
    let dir = TempDir::with_fixture("pytest-basic");
    dir.write(
        "offload.toml",
        "[offload]\nmax_parallel = 2\ntest_timeout_secs = 120\n\n\
         [provider]\ntype = \"local\"\n\n\
         [framework]\ntype = \"pytest\"\npaths = [\"tests\"]\ncommand = \"pytest\"\n\n\
         [groups.all]\nretry_count = 1\n",
    );
    let state = dir.join("state");
    let mut env = github_env(&dir, "");
    env.retain(|(k, _)| *k != "GITHUB_STEP_SUMMARY");
    env.push(("OFFLOAD_FIXTURE_STATE", state.to_str().unwrap()));
    let out = run_within(offload(&dir.path, &["run"], &env), Duration::from_secs(120));
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let commands = commands_of(&out);
    // `assert 1 + 1 == 3, "this test fails on purpose"` is line 9 of
    // tests/test_math.py (its `def` is line 8).
    assert_eq!(
        commands
            .iter()
            .filter(|c| c.starts_with("::error"))
            .collect::<Vec<_>>(),
        [
            "::error file=tests/test_math.py,line=9,title=Test failed%3A tests/test_math.py%3A%3Atest_fails::AssertionError: this test fails on purpose%0Aassert (1 + 1) == 3%0A(failed in all 2 attempts)"
        ],
        "{}",
        describe(&out)
    );
    let flaky: Vec<&String> = commands
        .iter()
        .filter(|c| c.starts_with("::warning"))
        .collect();
    assert_eq!(flaky.len(), 1, "{commands:?}");
    // Where its first attempt failed (`raise AssertionError(…)`, line 9),
    // not where the passing attempt says the test is (its `def`, line 4).
    assert!(
        flaky[0].starts_with("::warning file=tests/test_flaky.py,line=9,")
            && flaky[0].contains(",title=Flaky test%3A tests/test_flaky.py%3A%3Atest_flaky_first_attempt::passed on attempt 2 of 2"),
        "{}",
        flaky[0]
    );
}

#[test]
fn a_rust_panic_is_annotated_where_it_happened_relative_to_the_repository() {
    require(
        "cargo",
        &["nextest", "--version"],
        "`cargo install cargo-nextest --locked` (see https://nexte.st)",
    );
    let dir = TempDir::new("ci-cargo");
    let repo = env!("CARGO_MANIFEST_DIR");
    let fixture = fixtures_dir().join("cargo-workspace");
    dir.write(
        "offload.toml",
        &format!(
            "[offload]\nmax_parallel = 2\ntest_timeout_secs = 300\nworking_dir = \"{}\"\n\n\
             [provider]\ntype = \"local\"\n\n\
             [framework]\ntype = \"cargo\"\n\n[groups.all]\nretry_count = 0\n",
            fixture.display()
        ),
    );
    let state = dir.join("state");
    let target = PathBuf::from(repo).join("target/fixture-cargo-workspace");
    let env = [
        ("GITHUB_ACTIONS", "true"),
        // The repository: the fixture's paths get `fixtures/cargo-workspace/`.
        ("GITHUB_WORKSPACE", repo),
        ("OFFLOAD_FIXTURE_STATE", state.to_str().unwrap()),
        ("CARGO_TARGET_DIR", target.to_str().unwrap()),
        ("NEXTEST_PROFILE", "no-such-profile"),
    ];
    let out = run_within(offload(&dir.path, &["run"], &env), Duration::from_secs(300));
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let commands = commands_of(&out);
    let fails = commands
        .iter()
        .find(|c| c.contains("title=Test failed%3A alpha%3A%3Ainteg fails::"))
        .unwrap_or_else(|| panic!("{}", describe(&out)));
    assert!(
        fails.starts_with(
            "::error file=fixtures/cargo-workspace/alpha/tests/integ.rs,line=10,title="
        ),
        "{fails}"
    );
    assert!(
        fails.ends_with("::assertion `left == right` failed: this test fails on purpose; left: 2; right: 3 (at alpha/tests/integ.rs:10:5)"),
        "{fails}"
    );
    // The hand-written harness says nothing of where: no file, no line.
    let custom = commands
        .iter()
        .find(|c| c.contains("title=Test failed%3A beta%3A%3Acustom fails%2C with comma::"))
        .unwrap_or_else(|| panic!("{}", describe(&out)));
    assert!(custom.starts_with("::error title="), "{custom}");
}
