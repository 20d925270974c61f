//! The core runner end to end: the real binary on the shell fixture suite
//! (`fixtures/shell`: a tiny runner that writes JUnit), with the local
//! provider and the default framework.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// A copy of the shell fixture with `tests` as its suite and a config with
/// the given retry count, parallelism and timeout.
fn project(tests: &[&str], retry: u32, parallel: usize, timeout: u64) -> TempDir {
    let dir = TempDir::with_fixture("shell");
    dir.write("tests.txt", &(tests.join("\n") + "\n"));
    dir.write(
        "offload.toml",
        &format!(
            r#"
[offload]
max_parallel = {parallel}
test_timeout_secs = {timeout}

[provider]
type = "local"

[framework]
type = "default"
discover_command = "./discover.sh {{filters}}"
run_command = "./runner.sh {{result_file}} {{tests}}"
test_id_format = "{{name}}"

[groups.all]
retry_count = {retry}
"#
        ),
    );
    dir
}

fn run(dir: &TempDir) -> std::process::Output {
    run_within(offload(&dir.path, &["run"], &[]), Duration::from_secs(60))
}

#[test]
fn all_pass_exits_0() {
    let dir = project(
        &["pass_one", "pass_two", "pass_with space", "pass_four"],
        0,
        2,
        60,
    );
    let out = run(&dir);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let cases = junit_cases(&dir.join("test-results/junit.xml"));
    assert_eq!(cases.len(), 4, "{cases:#?}");
    assert!(cases.iter().all(|c| c.status == "passed"), "{cases:#?}");
    assert_eq!(case(&cases, "pass_with space").classname, "all");
    // Batch logs exist, and nothing was left in the output dir's scratch area.
    let logs: Vec<String> = std::fs::read_dir(dir.join("test-results/logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !logs.is_empty() && logs.iter().all(|n| n.ends_with(".success")),
        "{logs:?}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("test-results"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with(".scratch"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn one_failure_exits_1_and_is_named() {
    let dir = project(&["pass_one", "fail_two", "pass_three"], 0, 2, 60);
    let out = run(&dir);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(stdout(&out).contains("fail_two"), "{}", describe(&out));
    let cases = junit_cases(&dir.join("test-results/junit.xml"));
    assert_eq!(case(&cases, "fail_two").status, "failure");
    assert_eq!(case(&cases, "fail_two").message, "expected 1 got 2");
    assert_eq!(case(&cases, "pass_one").status, "passed");
    // The failing batch's log says so and prefixes stderr.
    let logs = dir.join("test-results/logs");
    let failure_log = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "failure"))
        .expect("a batch-N.failure log");
    let text = std::fs::read_to_string(failure_log).unwrap();
    assert!(
        text.contains("[stderr] assertion failed in fail_two"),
        "{text}"
    );
}

#[test]
fn flaky_test_with_retry_exits_2() {
    let dir = project(&["pass_one", "flaky_two", "pass_three"], 1, 2, 60);
    let out = run(&dir);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let cases = junit_cases(&dir.join("test-results/junit.xml"));
    let flaky = case(&cases, "flaky_two");
    assert_eq!(flaky.status, "passed", "{flaky:?}");
    assert!(flaky.flaky, "expected a flakyFailure child: {flaky:?}");
    assert_eq!(cases.iter().filter(|c| c.name == "flaky_two").count(), 1);
    assert!(stdout(&out).contains("flaky_two"), "{}", describe(&out));
}

#[test]
fn flaky_test_without_retry_exits_1() {
    let dir = project(&["pass_one", "flaky_two"], 0, 2, 60);
    let out = run(&dir);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let cases = junit_cases(&dir.join("test-results/junit.xml"));
    assert_eq!(case(&cases, "flaky_two").status, "failure");
}

#[test]
fn crashing_runner_keeps_finished_results_and_names_the_rest() {
    // One sandbox, one batch: pass_a and fail_b finish, crash_c kills the
    // runner, pass_d never runs in that batch.
    let dir = project(&["pass_a", "fail_b", "crash_c", "pass_d"], 0, 1, 60);
    let out = run(&dir);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let cases = junit_cases(&dir.join("test-results/junit.xml"));
    assert_eq!(case(&cases, "pass_a").status, "passed", "{cases:#?}");
    assert_eq!(case(&cases, "fail_b").status, "failure");
    // The tests without a result run again, apart, so pass_d gets its real
    // result and the crasher, alone, is named as the one that crashed the
    // runner, with how it ended.
    assert_eq!(case(&cases, "pass_d").status, "passed", "{cases:#?}");
    let crash = case(&cases, "crash_c");
    assert_eq!(crash.status, "error");
    assert!(
        crash.message.contains("crashed the runner")
            && crash.message.contains("killed by signal 9"),
        "{crash:?}"
    );
    assert!(stdout(&out).contains("crash_c"), "{}", describe(&out));
}

#[test]
fn hanging_test_times_out_and_nothing_survives() {
    let dir = project(&["pass_a", "hang_b", "pass_c"], 0, 1, 2);
    let state = dir.join("state");
    let started = Instant::now();
    let out = run_within(
        offload(
            &dir.path,
            &["run"],
            &[("FIXTURE_STATE", state.to_str().unwrap())],
        ),
        Duration::from_secs(30),
    );
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        took < Duration::from_secs(15),
        "took {took:?}\n{}",
        describe(&out)
    );
    let cases = junit_cases(&dir.join("test-results/junit.xml"));
    let hang = case(&cases, "hang_b");
    assert_eq!(hang.status, "failure");
    assert!(hang.message.contains("timed out after 2 s"), "{hang:?}");
    // The other tests of the batch got their real results.
    assert_eq!(case(&cases, "pass_a").status, "passed", "{cases:#?}");
    assert_eq!(case(&cases, "pass_c").status, "passed", "{cases:#?}");
    // The grandchild the hanging test started is gone.
    let pid: i32 = std::fs::read_to_string(state.join("hang.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        !pid_alive(pid),
        "grandchild {pid} of the hanging test is still alive"
    );
}

#[test]
fn sigint_exits_130_kills_children_and_writes_the_report() {
    let dir = project(&["pass_a", "hang_b", "pass_c", "pass_d"], 0, 2, 120);
    let state = dir.join("state");
    let mut cmd = offload(
        &dir.path,
        &["run"],
        &[("FIXTURE_STATE", state.to_str().unwrap())],
    );
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id() as i32;
    // Wait until the hanging test is running.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !state.join("hang.pid").exists() {
        assert!(Instant::now() < deadline, "the hanging test never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let grandchild: i32 = loop {
        if let Ok(s) = std::fs::read_to_string(state.join("hang.pid")) {
            if let Ok(p) = s.trim().parse() {
                break p;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let descendants = live_descendants(pid);
    assert!(!descendants.is_empty());
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
    let signalled = Instant::now();
    let out = wait_within(child, Duration::from_secs(20));
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "took {:?} to stop",
        signalled.elapsed()
    );
    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    for p in descendants.iter().chain([&grandchild]) {
        assert!(!pid_alive(*p), "process {p} survived the interrupt");
    }
    let cases = junit_cases(&dir.join("test-results/junit.xml"));
    assert_eq!(cases.len(), 4, "{cases:#?}");
    let hang = case(&cases, "hang_b");
    assert_eq!(hang.status, "error", "{hang:?}");
    assert!(hang.message.contains("cancelled"), "{hang:?}");
}

#[test]
fn sigkill_mid_run_kills_the_batches_and_the_next_run_removes_the_scratch_dir() {
    let dir = project(&["pass_a", "hang_b", "pass_c", "hang_d"], 0, 2, 120);
    let state = dir.join("state");
    let mut cmd = offload(
        &dir.path,
        &["run"],
        &[("FIXTURE_STATE", state.to_str().unwrap())],
    );
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id() as i32;
    // A hanging test's grandchild (`sleep 300` started by the runner).
    let grandchild = wait_for_pid_file(&state.join("hang.pid"), "the hanging test");
    let descendants = live_descendants(pid);
    assert!(descendants.contains(&grandchild), "{descendants:?}");
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    let killed = Instant::now();
    let out = wait_within(child, Duration::from_secs(20));
    assert_eq!(out.status.code(), None, "killed by a signal");
    assert_all_gone_within(&descendants, killed, Duration::from_secs(5), "");
    let scratch = dir.join(&format!("test-results/.scratch-{pid}"));
    assert!(
        scratch.is_dir(),
        "the killed run could not remove its scratch dir"
    );

    dir.write("tests.txt", "pass_a\npass_c\n");
    let out = run(&dir);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("an earlier run (PID {pid}) was killed"))
            && err.contains(&format!("removed {}", scratch.display())),
        "{err}"
    );
    assert!(!scratch.exists());
}

#[test]
fn same_id_in_two_groups_runs_once() {
    let dir = project(&["pass_a", "pass_b"], 0, 2, 60);
    let toml = dir.read("offload.toml") + "\n[groups.again]\nretry_count = 0\n";
    dir.write("offload.toml", &toml);
    let out = run(&dir);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let cases = junit_cases(&dir.join("test-results/junit.xml"));
    assert_eq!(cases.len(), 2, "{cases:#?}");
}

#[test]
fn collect_json_lists_every_id() {
    let dir = project(&["pass_a", "pass_with space", "fail_c"], 0, 2, 60);
    let out = run_within(
        offload(&dir.path, &["collect", "-f", "json"], &[]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("valid JSON");
    let ids: Vec<&str> = doc["groups"][0]["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["pass_a", "pass_with space", "fail_c"]);
    assert_eq!(doc["total"], 3);
}

#[test]
fn env_and_offload_variables_reach_the_batch() {
    let dir = project(&["pass_a"], 0, 1, 60);
    let toml = dir
        .read("offload.toml")
        .replace(
            "./runner.sh {result_file} {tests}",
            "env > env.txt; ./runner.sh {result_file} {tests}",
        )
        .replace(
            "type = \"local\"",
            "type = \"local\"\nenv = { GREETING = \"hello\" }",
        );
    dir.write("offload.toml", &toml);
    let out = run_within(
        offload(&dir.path, &["run", "--env", "EXTRA=1"], &[]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let env = dir.read("env.txt");
    for needle in [
        "GREETING=hello",
        "EXTRA=1",
        "OFFLOAD_SANDBOX=0",
        "OFFLOAD_BATCH=1",
        "OFFLOAD_ATTEMPT=1",
        "OFFLOAD_ROOT=",
    ] {
        assert!(
            env.lines().any(|l| l.starts_with(needle)),
            "{needle} missing from\n{env}"
        );
    }
}

#[test]
fn second_sigint_kills_at_once() {
    // The whole batch ignores SIGTERM, and the grace period is far longer
    // than the test waits: only the second Ctrl-C can end the run quickly.
    let dir = project(&["hang_a", "pass_b"], 0, 1, 600);
    let toml = dir.read("offload.toml").replace(
        "run_command = \"./runner.sh",
        "run_command = \"trap '' TERM; ./runner.sh",
    );
    dir.write("offload.toml", &toml);
    let state = dir.join("state");
    let mut cmd = offload(
        &dir.path,
        &["run"],
        &[
            ("FIXTURE_STATE", state.to_str().unwrap()),
            ("OFFLOAD_GRACE_PERIOD_SECS", "300"),
        ],
    );
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id() as i32;
    let hanging = wait_for_pid_file(&state.join("hang.pid"), "the hanging test");
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
    // The first Ctrl-C asks nicely; the batch ignores it and lives on.
    std::thread::sleep(Duration::from_millis(500));
    assert!(pid_alive(hanging), "the batch should survive SIGTERM");
    assert!(
        pid_alive(pid),
        "offload should still be waiting for the grace period"
    );
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
    let out = wait_within(child, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    assert!(!pid_alive(hanging), "the second Ctrl-C must kill at once");
    let cases = junit_cases(&dir.join("test-results/junit.xml"));
    assert_eq!(case(&cases, "hang_a").status, "error");
    assert!(
        stderr(&out).contains("Interrupted again"),
        "{}",
        describe(&out)
    );
}

#[test]
fn no_sandbox_can_be_created_fails_with_the_create_commands_words() {
    let dir = project(&["pass_a", "pass_b"], 0, 2, 60);
    let toml = dir.read("offload.toml").replace(
        "[provider]\ntype = \"local\"\n",
        "[provider]\ntype = \"default\"\n\
         create_command = \"echo 'quota exceeded for project demo' >&2; exit 7\"\n\
         exec_command = \"sh -c {command}\"\n\
         destroy_command = \"true\"\n",
    );
    let toml = toml.replace("[offload]\n", "[offload]\nsandbox_project_root = \".\"\n");
    dir.write("offload.toml", &toml);
    let out = run(&dir);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(
        stderr(&out).contains("quota exceeded for project demo"),
        "{}",
        describe(&out)
    );
    let cases = junit_cases(&dir.join("test-results/junit.xml"));
    assert_eq!(cases.len(), 2, "{cases:#?}");
    for c in &cases {
        assert_eq!(c.status, "error", "{c:?}");
        assert!(c.message.contains("no sandbox available"), "{c:?}");
    }
}

#[test]
fn fail_fast_stops_dispatching() {
    // Every test fails, one sandbox, several batches: whichever batch runs
    // first fails, and no other batch may start after it.
    let tests: Vec<String> = (1..=16).map(|i| format!("fail_{i:02}")).collect();
    let names: Vec<&str> = tests.iter().map(String::as_str).collect();
    let dir = project(&names, 0, 1, 60);
    let out = run_within(
        offload(&dir.path, &["run", "--fail-fast"], &[]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let planned: usize = stderr(&out)
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("Running 16 tests in ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no plan line\n{}", describe(&out)));
    assert!(
        planned > 1,
        "the test needs several batches\n{}",
        describe(&out)
    );
    let ran = std::fs::read_dir(dir.join("test-results/logs"))
        .unwrap()
        .count();
    assert_eq!(
        ran,
        1,
        "batches ran after the first failure\n{}",
        describe(&out)
    );
    let cases = junit_cases(&dir.join("test-results/junit.xml"));
    assert_eq!(cases.len(), 16);
    let not_run: Vec<&Case> = cases.iter().filter(|c| c.status == "error").collect();
    assert!(!not_run.is_empty(), "{cases:#?}");
    assert!(
        not_run.iter().all(|c| c.message.contains("--fail-fast")),
        "{not_run:#?}"
    );
    assert!(cases.iter().any(|c| c.status == "failure"));
}

#[test]
fn without_a_result_file_the_exit_code_decides_for_the_batch() {
    let dir = project(&["pass_a", "pass_b", "fail_c"], 0, 1, 60);
    let toml = dir.read("offload.toml").replace(
        "./runner.sh {result_file} {tests}",
        "./runner.sh unread.xml {tests}",
    );
    dir.write("offload.toml", &toml);
    let out = run(&dir);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let cases = junit_cases(&dir.join("test-results/junit.xml"));
    assert_eq!(cases.len(), 3, "{cases:#?}");
    // The failing test's batch exits 1: every test of that batch fails with
    // the batch's exit code (which tests shared it is the plan's business).
    let failed = case(&cases, "fail_c");
    assert_eq!(failed.status, "failure", "{failed:?}");
    assert!(failed.message.contains("exited with code 1"), "{failed:?}");
    for c in &cases {
        assert!(
            c.status == "passed" || c.message == failed.message,
            "{c:?} vs {failed:?}"
        );
    }

    let passing = project(&["pass_a", "pass_b"], 0, 1, 60);
    let toml = passing.read("offload.toml").replace(
        "./runner.sh {result_file} {tests}",
        "./runner.sh unread.xml {tests}",
    );
    passing.write("offload.toml", &toml);
    let out = run(&passing);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let cases = junit_cases(&passing.join("test-results/junit.xml"));
    assert_eq!(cases.len(), 2);
    assert!(cases.iter().all(|c| c.status == "passed"), "{cases:#?}");
}

/// A tiny file system that is already full, mounted for one test (needs
/// root: CI runs as root; elsewhere the test says it is skipped).
struct FullDisk(std::path::PathBuf);

impl FullDisk {
    fn mount(dir: &TempDir) -> Option<FullDisk> {
        let at = dir.join("full");
        std::fs::create_dir_all(&at).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(&at)
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(!in_ci, "CI must be able to mount a tmpfs (it runs as root)");
            eprintln!("skipped: cannot mount a tmpfs here (not root)");
            return None;
        }
        let disk = FullDisk(at);
        // Fill it: writing stops at the first byte that does not fit.
        let _ = std::fs::write(disk.0.join("filler"), vec![0u8; 128 * 1024]);
        Some(disk)
    }
}

impl Drop for FullDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_output_disk_loses_no_result_and_names_the_reports_it_cannot_write() {
    let dir = project(&["pass_a", "fail_b", "pass_c"], 0, 2, 60);
    let Some(disk) = FullDisk::mount(&dir) else {
        return;
    };
    let out_dir = disk.0.join("out");
    let toml = dir.read("offload.toml")
        + &format!(
            "\n[report]\noutput_dir = {:?}\n",
            out_dir.display().to_string()
        );
    dir.write("offload.toml", &toml);
    let out = run(&dir);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let text = stdout(&out);
    // The summary is printed, with every test's real result: none "not run".
    assert!(
        text.contains("Passed:   2") && text.contains("Failed:   1"),
        "{text}"
    );
    assert!(text.contains("Not run:  0"), "{text}");
    let junit_line = text
        .lines()
        .find(|l| l.contains("Not written: cannot write") && l.contains("junit.xml"));
    assert!(
        junit_line.is_some_and(|l| l.ends_with("junit.xml: No space left on device")),
        "{text}"
    );
    assert!(
        text.contains("Some reports could not be written."),
        "{text}"
    );
    // The scratch files went elsewhere, and are gone.
    let err = stderr(&out);
    assert!(err.contains("keeping this run's scratch files in"), "{err}");
}
