//! Remote providers end to end: the real binary with the `default` provider
//! driving real sandboxes — directories (examples/dir-sandbox) and sessions
//! on a real OpenSSH server on 127.0.0.1 (examples/ssh) — on the
//! fixtures/shell-suite runner; and the pytest tests of the bundled
//! modal_sandbox.py (tests/python), which use a stand-in for the Modal SDK.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn example(name: &str) -> String {
    repo().join("examples").join(name).display().to_string()
}

/// A test project (a copy of fixtures/shell-suite with the given tests), a
/// directory for the sandboxes, and a log of which directory ran which test.
struct Setup {
    root: TempDir,
    framework: &'static str,
    /// `test_timeout_secs`.
    batch_timeout: u64,
}

/// The `[framework]` body for fixtures/shell-suite.
const SHELL_SUITE: &str = r#"type = "default"
discover_command = "./suite.sh list {filters}"
run_command = "./suite.sh run {result_file} {tests}"
test_id_format = "{name}""#;

impl Setup {
    /// Start a run of three directory sandboxes whose creates are slow, and
    /// return once all three are copying the project into their
    /// directories (by then their clean-up traps are set). A generous grace
    /// period: on a loaded machine the traps may need more than the default
    /// 2 s to remove their copies.
    fn spawn_while_three_creates_copy(&self) -> std::process::Child {
        let config = self.dir_sandbox_config(3);
        let mut cmd = self.offload(
            &config,
            &[
                ("DIR_SANDBOX_CREATE_DELAY", "60"),
                ("OFFLOAD_GRACE_PERIOD_SECS", "15"),
            ],
        );
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let copying = || {
            let boxes = self.leftover_boxes();
            boxes.len() == 3
                && boxes
                    .iter()
                    .all(|b| self.boxes().join(b).join("suite.sh").exists())
        };
        while !copying() {
            assert!(Instant::now() < deadline, "creates did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }

    fn new(label: &str, tests: &[&str]) -> Setup {
        let s = Setup::with_fixture(label, "shell-suite", SHELL_SUITE);
        s.root
            .write("project/tests.txt", &(tests.join("\n") + "\n"));
        s
    }

    /// A copy of `fixtures/{fixture}`, run with `framework` (the
    /// `[framework]` body).
    fn with_fixture(label: &str, fixture: &str, framework: &'static str) -> Setup {
        let root = TempDir::new(label);
        std::fs::create_dir_all(root.join("project")).unwrap();
        copy_dir(&fixtures_dir().join(fixture), &root.join("project"));
        std::fs::create_dir_all(root.join("boxes")).unwrap();
        Setup {
            root,
            framework,
            batch_timeout: 120,
        }
    }

    fn project(&self) -> PathBuf {
        self.root.join("project")
    }

    fn boxes(&self) -> PathBuf {
        self.root.join("boxes")
    }

    fn log(&self) -> PathBuf {
        self.root.join("seen.log")
    }

    /// The config for `provider` (the `[provider]` body), written beside the
    /// project so that nothing lands in the repository.
    fn config(&self, parallel: usize, provider: &str) -> PathBuf {
        let text = format!(
            r#"
[offload]
max_parallel = {parallel}
test_timeout_secs = {timeout}
working_dir = "{project}"
sandbox_project_root = "{{sandbox_id}}"

[provider]
type = "default"
working_dir = "{project}"
timeout_secs = 60
{provider}

[provider.env]
SUITE_LOG = "{log}"

[framework]
{framework}

[groups.all]
retry_count = 0

[report]
output_dir = "{out}"
"#,
            project = self.project().display(),
            log = self.log().display(),
            out = self.root.join("test-results").display(),
            framework = self.framework,
            timeout = self.batch_timeout,
        );
        self.root.write("offload.toml", &text)
    }

    /// examples/dir-sandbox, with each created sandbox also noted in
    /// `created.log`.
    fn dir_sandbox_config(&self, parallel: usize) -> PathBuf {
        let d = example("dir-sandbox");
        let created = self.root.join("created.log").display().to_string();
        self.config(
            parallel,
            &format!(
                r#"create_command = "id=$({d}/create.sh) && echo \"$id\" >> {created} && echo \"$id\""
exec_command = "{d}/exec.sh {{sandbox_id}} {{command}}"
download_command = "{d}/download.sh {{sandbox_id}} {{paths}}"
destroy_command = "{d}/destroy.sh {{sandbox_id}}""#
            ),
        )
    }

    fn offload(&self, config: &Path, env: &[(&str, &str)]) -> Command {
        let boxes = self.boxes().display().to_string();
        let mut all = vec![("DIR_SANDBOX_PARENT", boxes.as_str())];
        all.extend_from_slice(env);
        offload(
            &self.root.path,
            &["-c", &config.display().to_string(), "run"],
            &all,
        )
    }

    /// Which directory ran each test (from $SUITE_LOG).
    fn seen(&self) -> Vec<(String, String)> {
        self.seen_in(&self.log())
    }

    fn seen_in(&self, log: &Path) -> Vec<(String, String)> {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let (dir, id) = l.split_once('\t').expect("dir<TAB>id");
                (dir.to_string(), id.to_string())
            })
            .collect()
    }

    /// The sandboxes created so far (with `dir_sandbox_config`).
    fn created(&self) -> Vec<String> {
        std::fs::read_to_string(self.root.join("created.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn leftover_boxes(&self) -> Vec<String> {
        std::fs::read_dir(self.boxes())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }

    fn junit(&self) -> Vec<Case> {
        junit_cases(&self.root.join("test-results/junit.xml"))
    }
}

fn nine_tests() -> Vec<String> {
    (1..=9).map(|i| format!("test_{i}")).collect()
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn dir_sandboxes_each_run_in_their_own_directory_and_are_removed() {
    let tests = nine_tests();
    let s = Setup::new("dirsb", &as_strs(&tests));
    let config = s.dir_sandbox_config(3);
    let out = run_within(s.offload(&config, &[]), Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    let cases = s.junit();
    assert_eq!(cases.len(), 9, "{cases:#?}");
    assert!(cases.iter().all(|c| c.status == "passed"), "{cases:#?}");

    let seen = s.seen();
    let ids: BTreeSet<&str> = seen.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(
        ids,
        tests.iter().map(String::as_str).collect(),
        "every test ran once"
    );
    assert_eq!(seen.len(), 9, "{seen:?}");
    let dirs: BTreeSet<&str> = seen.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(
        dirs.len(),
        3,
        "three sandboxes, three directories: {dirs:?}"
    );
    for d in &dirs {
        assert!(
            Path::new(d).starts_with(s.boxes()) && d.contains("offload-dir-sandbox."),
            "{d} is a sandbox directory, not the project"
        );
    }
    assert!(
        s.leftover_boxes().is_empty(),
        "left behind: {:?}",
        s.leftover_boxes()
    );
}

/// Fail (never skip) when pytest is missing.
fn require_pytest() {
    let ok = Command::new("pytest")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "pytest is not on PATH: run `make setup`, then the tests through `make test` \
         (which puts .venv/bin first on PATH)"
    );
}

#[test]
fn pytest_project_runs_across_three_dir_sandboxes() {
    require_pytest();
    let s = Setup::with_fixture(
        "dirsb-pytest",
        "provider-pytest",
        "type = \"pytest\"\npaths = [\"tests\"]\ncommand = \"pytest -p no:cacheprovider\"",
    );
    let config = s.dir_sandbox_config(3);
    let out = run_within(s.offload(&config, &[]), Duration::from_secs(120));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let cases = s.junit();
    assert_eq!(cases.len(), 9, "{cases:#?}");
    assert!(cases.iter().all(|c| c.status == "passed"), "{cases:#?}");
    let seen = s.seen();
    let ids: BTreeSet<&str> = seen.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids.len(), 9, "{seen:?}");
    assert!(
        ids.contains("tests/test_strings.py::test_len[with space]"),
        "{ids:?}"
    );
    let dirs: BTreeSet<&str> = seen.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(
        dirs.len(),
        3,
        "three sandboxes, three directories: {dirs:?}"
    );
    for d in &dirs {
        assert!(
            Path::new(d).starts_with(s.boxes()),
            "{d} is a sandbox directory"
        );
    }
    assert!(
        s.leftover_boxes().is_empty(),
        "left behind: {:?}",
        s.leftover_boxes()
    );
}

#[test]
fn a_sandbox_that_cannot_be_created_is_retried_then_retired_and_nothing_leaks() {
    let tests = nine_tests();
    let s = Setup::new("dirsb-create-fails", &as_strs(&tests));
    let config = s.dir_sandbox_config(3);
    let out = run_within(
        s.offload(&config, &[("DIR_SANDBOX_FAIL_INDEX", "1")]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let err = stderr(&out);
    assert!(
        err.contains("retrying create_command") && err.contains("no room for sandbox 1"),
        "the retry is logged with the command's own words:\n{err}"
    );
    let cases = s.junit();
    assert_eq!(cases.len(), 9);
    assert!(cases.iter().all(|c| c.status == "passed"), "{cases:#?}");
    let dirs: BTreeSet<String> = s.seen().into_iter().map(|(d, _)| d).collect();
    assert_eq!(
        dirs.len(),
        2,
        "the two healthy sandboxes ran everything: {dirs:?}"
    );
    assert!(
        s.leftover_boxes().is_empty(),
        "left behind: {:?}",
        s.leftover_boxes()
    );
}

#[test]
fn fault_injection_failed_create_and_failed_download_still_give_every_result() {
    let mut tests = nine_tests();
    tests.push("fail_on_purpose".into());
    let s = Setup::new("faults", &as_strs(&tests));
    let config = s.dir_sandbox_config(4);
    let marker = s.root.join("download-failed-once").display().to_string();
    let out = run_within(
        s.offload(
            &config,
            &[
                ("DIR_SANDBOX_FAIL_INDEX", "2"),
                ("DIR_SANDBOX_FLAKY_DOWNLOAD", &marker),
            ],
        ),
        Duration::from_secs(90),
    );
    // One test fails on its own merits: exit 1, and only for that reason.
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = stderr(&out);
    assert!(err.contains("retrying create_command"), "{err}");
    assert!(
        err.contains("retrying download_command") && err.contains("connection reset"),
        "{err}"
    );
    assert!(
        Path::new(&marker).exists(),
        "the download failure was injected"
    );
    let cases = s.junit();
    assert_eq!(cases.len(), 10, "{cases:#?}");
    for c in &cases {
        let want = if c.name == "fail_on_purpose" {
            "failure"
        } else {
            "passed"
        };
        assert_eq!(c.status, want, "{c:?}");
    }
    assert_eq!(case(&cases, "fail_on_purpose").message, "expected 1, got 2");
    assert!(
        s.leftover_boxes().is_empty(),
        "left behind: {:?}",
        s.leftover_boxes()
    );
}

#[test]
fn awkward_test_ids_round_trip_through_command_quoting() {
    let ids = [
        "test with spaces",
        "it's \"double\" and 'single'",
        "cost $HOME ${PATH} $(echo no) `echo no`",
        "back\\slash \\n \\\\ end\\",
        "uses @x.py and @modal_sandbox.py",
        "{command} {sandbox_id} {paths} {tests}",
        "semi; colon && pipe | amp & star * hash #",
    ];
    let s = Setup::new("quoting", &ids);
    let config = s.dir_sandbox_config(2);
    // `--env` wins over [provider] env and reaches the sandbox through the
    // same quoting: the log goes to a path with a space, a quote and a `$`.
    let log = s.root.join("it's a $log");
    let env_arg = format!("SUITE_LOG={}", log.display());
    let mut cmd = s.offload(&config, &[]);
    cmd.args(["--env", &env_arg]);
    let out = run_within(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(s.seen().is_empty(), "--env replaced the config's SUITE_LOG");
    let received: BTreeSet<String> = s.seen_in(&log).into_iter().map(|(_, id)| id).collect();
    let sent: BTreeSet<String> = ids.iter().map(|s| s.to_string()).collect();
    assert_eq!(received, sent, "the runner received each ID byte for byte");
    let names: BTreeSet<String> = s.junit().into_iter().map(|c| c.name).collect();
    assert_eq!(names, sent, "and each came back as its own result");
}

#[test]
fn a_timed_out_batch_gets_its_sandbox_destroyed_and_replaced() {
    let mut s = Setup::new(
        "dirsb-timeout",
        &["test_1", "test_2", "sleep_forever", "test_3"],
    );
    s.batch_timeout = 3;
    let config = s.dir_sandbox_config(2);
    let out = run_within(
        s.offload(&config, &[("SUITE_SLEEP", "600")]),
        Duration::from_secs(90),
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let cases = s.junit();
    assert_eq!(cases.len(), 4, "{cases:#?}");
    for c in &cases {
        if c.name == "sleep_forever" {
            assert_eq!(c.status, "failure", "{c:?}");
            assert!(c.message.contains("timed out after 3 s"), "{c:?}");
        } else {
            assert_eq!(c.status, "passed", "{c:?}");
        }
    }
    assert_eq!(
        s.created().len(),
        3,
        "two sandboxes, and one to replace the timed-out one: {:?}",
        s.created()
    );
    assert!(
        s.leftover_boxes().is_empty(),
        "left behind: {:?}",
        s.leftover_boxes()
    );
}

#[test]
fn a_timed_out_batch_is_downloaded_once_without_retries() {
    let mut s = Setup::new("dirsb-timeout-download", &["sleep_forever"]);
    s.batch_timeout = 2;
    let d = example("dir-sandbox");
    let downloads = s.root.join("downloads.log").display().to_string();
    let config = s.config(
        1,
        &format!(
            r#"create_command = "{d}/create.sh"
exec_command = "{d}/exec.sh {{sandbox_id}} {{command}}"
download_command = "echo x >> {downloads}; {d}/download.sh {{sandbox_id}} {{paths}}"
destroy_command = "{d}/destroy.sh {{sandbox_id}}""#
        ),
    );
    let out = run_within(
        s.offload(&config, &[("SUITE_SLEEP", "600")]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(case(&s.junit(), "sleep_forever").status, "failure");
    let err = stderr(&out);
    assert!(!err.contains("retrying download_command"), "{err}");
    let tries = std::fs::read_to_string(&downloads).unwrap_or_default();
    assert_eq!(
        tries.lines().count(),
        1,
        "one try for the result file a killed batch never wrote\n{err}"
    );
    assert!(s.leftover_boxes().is_empty(), "{:?}", s.leftover_boxes());
}

#[test]
fn a_create_that_times_out_cleans_up_and_is_not_retried() {
    let s = Setup::new("dirsb-create-timeout", &["test_1", "test_2"]);
    let d = example("dir-sandbox");
    let attempts = s.root.join("attempts.log").display().to_string();
    // create.sh copies the project, then hangs past timeout_secs; its trap
    // removes the copy when it gets SIGTERM.
    let config = s
        .config(
            2,
            &format!(
                r#"create_command = "echo x >> {attempts}; {d}/create.sh"
exec_command = "{d}/exec.sh {{sandbox_id}} {{command}}"
destroy_command = "{d}/destroy.sh {{sandbox_id}}""#
            ),
        )
        .display()
        .to_string();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("timeout_secs = 60", "timeout_secs = 2");
    std::fs::write(&config, text).unwrap();
    let out = run_within(
        s.offload(
            Path::new(&config),
            &[
                ("DIR_SANDBOX_CREATE_DELAY", "60"),
                ("OFFLOAD_GRACE_PERIOD_SECS", "10"),
            ],
        ),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let err = stderr(&out);
    assert!(err.contains("timed out after 2 s"), "{err}");
    assert!(!err.contains("retrying create_command"), "{err}");
    let tries = std::fs::read_to_string(&attempts).unwrap_or_default();
    assert_eq!(tries.lines().count(), 2, "one attempt per sandbox\n{err}");
    assert!(
        s.leftover_boxes().is_empty(),
        "the creates' traps did not run: {:?}",
        s.leftover_boxes()
    );
}

#[test]
fn batches_of_many_quoted_ids_stay_under_the_argument_limit() {
    // Each ID needs quoting (`t 1`, `t'2`), and exec_command quotes the whole
    // batch command once more: the batch size limit must count those bytes,
    // or the batch fails to start with "Argument list too long".
    let s = Setup::with_fixture(
        "argmax",
        "many-ids",
        r#"type = "default"
discover_command = "./many.sh list {filters}"
run_command = "./many.sh run {result_file} {tests}"
test_id_format = "{name}""#,
    );
    let config = s.dir_sandbox_config(2);
    let n = 60_000;
    let out = run_within(
        s.offload(&config, &[("MANY_IDS", &n.to_string())]),
        Duration::from_secs(120),
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let err = stderr(&out);
    assert!(!err.contains("Argument list too long"), "{err}");
    assert!(!err.contains("retry"), "{err}");
    let cases = s.junit();
    assert_eq!(cases.len(), n);
    assert!(cases.iter().all(|c| c.status == "passed"));
    assert!(s.leftover_boxes().is_empty(), "{:?}", s.leftover_boxes());
}

#[test]
fn copy_dir_no_cache_and_the_image_id_reach_the_lifecycle_commands() {
    let s = Setup::new("dirsb-prepare", &["test_1", "test_2"]);
    let prepare = s.root.write(
        "prepare.sh",
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > prepare.args\n\
         echo \"OFFLOAD_NO_CACHE=${OFFLOAD_NO_CACHE:-}\" >> prepare.args\n\
         echo 'building the image' >&2\necho 'step 1/1'\necho img-42\n",
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&prepare, std::fs::Permissions::from_mode(0o755)).unwrap();
    let d = example("dir-sandbox");
    let config = s.config(
        2,
        &format!(
            r#"prepare_command = "{prepare}"
copy_dirs = ["./data:/data"]
create_command = "echo {{image_id}} >> image.seen; {d}/create.sh"
exec_command = "{d}/exec.sh {{sandbox_id}} {{command}}"
download_command = "{d}/download.sh {{sandbox_id}} {{paths}}"
destroy_command = "{d}/destroy.sh {{sandbox_id}}""#,
            prepare = prepare.display()
        ),
    );
    let mut cmd = s.offload(&config, &[]);
    cmd.args(["--copy-dir", "./more data:/more", "--no-cache"]);
    let out = run_within(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(
        std::fs::read_to_string(s.project().join("prepare.args")).unwrap(),
        "--copy-dir=./data:/data\n--copy-dir=./more data:/more\nOFFLOAD_NO_CACHE=1\n"
    );
    assert_eq!(
        std::fs::read_to_string(s.project().join("image.seen")).unwrap(),
        "img-42\nimg-42\n",
        "each create got the last line prepare printed"
    );
    assert!(
        stderr(&out).contains("building the image"),
        "prepare's progress is shown"
    );
    assert!(s.leftover_boxes().is_empty());
}

#[test]
fn sigint_mid_run_destroys_every_sandbox() {
    let tests: Vec<String> = (1..=6).map(|i| format!("sleep_{i}")).collect();
    let s = Setup::new("dirsb-sigint", &as_strs(&tests));
    let config = s.dir_sandbox_config(3);
    let mut cmd = s.offload(&config, &[("SUITE_SLEEP", "60")]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id() as i32;
    // Wait until all three sandboxes are running a test.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let dirs: BTreeSet<String> = s.seen().into_iter().map(|(d, _)| d).collect();
        if dirs.len() == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sandboxes did not start: {dirs:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(s.leftover_boxes().len(), 3);
    let descendants = live_descendants(pid);
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
    let out = wait_within(child, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    assert!(
        s.leftover_boxes().is_empty(),
        "left behind: {:?}",
        s.leftover_boxes()
    );
    std::thread::sleep(Duration::from_millis(100));
    let alive: Vec<i32> = descendants.into_iter().filter(|&p| pid_alive(p)).collect();
    assert!(alive.is_empty(), "processes outlived the run: {alive:?}");
}

#[test]
fn sigint_while_sandboxes_are_being_created_leaves_nothing() {
    let s = Setup::new("dirsb-sigint-create", &["test_1", "test_2", "test_3"]);
    let child = s.spawn_while_three_creates_copy();
    let pid = child.id() as i32;
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
    let out = wait_within(child, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    assert!(s.seen().is_empty(), "no test ran");
    assert!(
        s.leftover_boxes().is_empty(),
        "left behind: {:?}",
        s.leftover_boxes()
    );
}

#[test]
fn sigkill_mid_run_stops_every_batch_and_the_next_run_destroys_the_sandboxes() {
    let tests: Vec<String> = (1..=6).map(|i| format!("sleep_{i}")).collect();
    let s = Setup::new("dirsb-sigkill", &as_strs(&tests));
    let config = s.dir_sandbox_config(3);
    let mut cmd = s.offload(&config, &[("SUITE_SLEEP", "60")]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let dirs: BTreeSet<String> = s.seen().into_iter().map(|(d, _)| d).collect();
        if dirs.len() == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sandboxes did not start: {dirs:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let descendants = live_descendants(pid);
    assert!(descendants.len() >= 3, "{descendants:?}");
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    let killed = Instant::now();
    let out = wait_within(child, Duration::from_secs(20));
    assert_eq!(out.status.code(), None, "killed by a signal");
    assert_all_gone_within(
        &descendants,
        killed,
        Duration::from_secs(5),
        &describe(&out),
    );
    // It had no chance to destroy its sandboxes or remove its scratch files.
    assert_eq!(s.leftover_boxes().len(), 3, "{:?}", s.leftover_boxes());
    let scratch = s.root.join(&format!("test-results/.scratch-{pid}"));
    assert!(scratch.is_dir());

    let out = run_within(
        s.offload(&config, &[("SUITE_SLEEP", "0")]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("an earlier run (PID {pid}) was killed"))
            && err.contains("destroyed the 3 sandboxes it left")
            && err.contains(&format!("removed {}", scratch.display())),
        "{err}"
    );
    assert!(!scratch.exists());
    assert!(
        s.leftover_boxes().is_empty(),
        "left behind: {:?}",
        s.leftover_boxes()
    );
}

#[test]
fn sigkill_while_sandboxes_are_being_created_lets_the_creates_clean_up() {
    let s = Setup::new("dirsb-sigkill-create", &["test_1", "test_2", "test_3"]);
    let child = s.spawn_while_three_creates_copy();
    let pid = child.id() as i32;
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    // The watchdog gives each create SIGTERM: its trap removes its copy
    // (slowly on a loaded machine: the bound is generous).
    let out = wait_within(child, Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(45);
    while !s.leftover_boxes().is_empty() {
        assert!(
            Instant::now() < deadline,
            "left behind: {:?}\n{}",
            s.leftover_boxes(),
            describe(&out)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(s.seen().is_empty(), "no test ran");
}

// ---------------------------------------------------------------- ssh

/// A real OpenSSH server on a loopback port, with a throwaway host key, a
/// throwaway client key and its own sshd_config. Killed when dropped.
struct SshServer {
    dir: TempDir,
    port: u16,
    sshd: Child,
}

impl SshServer {
    fn start() -> SshServer {
        let sshd = Path::new("/usr/sbin/sshd");
        assert!(
            sshd.exists(),
            "/usr/sbin/sshd is missing: run `make setup-ssh` (installs openssh-server)"
        );
        let dir = TempDir::new("sshd");
        for key in ["host_key", "client_key"] {
            let status = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.join(key))
                .status()
                .unwrap();
            assert!(status.success(), "ssh-keygen");
        }
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
        // sshd insists on its privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        // A port that was free a moment ago; if sshd loses the race for it,
        // try another.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            dir.write(
                "sshd_config",
                &format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
                     AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\nUsePAM no\nPermitRootLogin prohibit-password\n\
                     StrictModes no\nSubsystem sftp internal-sftp\nLogLevel ERROR\n",
                    d = dir.path.display()
                ),
            );
            let host_key = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
            dir.write("known_hosts", &format!("[127.0.0.1]:{port} {host_key}"));
            let mut sshd = Command::new(sshd)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(dir.join("sshd_config"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(status) = sshd.try_wait().unwrap() {
                    let mut err = String::new();
                    use std::io::Read;
                    let _ = sshd.stderr.take().unwrap().read_to_string(&mut err);
                    if err.contains("Address already in use") {
                        break;
                    }
                    panic!("sshd exited ({status}): {err}");
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return SshServer { dir, port, sshd };
                }
                assert!(Instant::now() < deadline, "sshd did not start listening");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("could not find a free port for sshd");
    }

    /// What examples/ssh/*.sh read to reach this server.
    fn env(&self) -> Vec<(&'static str, String)> {
        let user =
            String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
        vec![
            ("SSH_SANDBOX_HOST", "127.0.0.1".into()),
            ("SSH_SANDBOX_PORT", self.port.to_string()),
            ("SSH_SANDBOX_USER", user.trim().to_string()),
            (
                "SSH_SANDBOX_KEY",
                self.dir.join("client_key").display().to_string(),
            ),
            (
                "SSH_SANDBOX_KNOWN_HOSTS",
                self.dir.join("known_hosts").display().to_string(),
            ),
        ]
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.sshd.kill();
        let _ = self.sshd.wait();
    }
}

fn ssh_config(s: &Setup, parallel: usize, with_download: bool) -> PathBuf {
    let d = example("ssh");
    let download = if with_download {
        format!("download_command = \"{d}/download.sh {{paths}}\"")
    } else {
        String::new()
    };
    s.config(
        parallel,
        &format!(
            r#"create_command = "{d}/create.sh"
exec_command = "{d}/ssh.sh {{command}}"
destroy_command = "{d}/destroy.sh {{sandbox_id}}"
{download}"#
        ),
    )
}

fn ssh_run(s: &Setup, server: &SshServer, config: &Path) -> std::process::Output {
    let env = server.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_within(s.offload(config, &env), Duration::from_secs(120))
}

fn assert_ssh_run(s: &Setup, out: &std::process::Output, tests: &[String]) {
    assert_eq!(out.status.code(), Some(1), "{}", describe(out));
    let cases = s.junit();
    assert_eq!(cases.len(), tests.len(), "{cases:#?}");
    for c in &cases {
        let want = if c.name.starts_with("fail") {
            "failure"
        } else {
            "passed"
        };
        assert_eq!(c.status, want, "{c:?}");
    }
    let seen = s.seen();
    let dirs: BTreeSet<&str> = seen.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(dirs.len(), 2, "{seen:?}");
    for d in dirs {
        assert!(
            d.contains("/offload-ssh-sandbox."),
            "ran in a session's directory: {d}"
        );
        assert!(!Path::new(d).exists(), "the sandbox {d} was destroyed");
    }
}

#[test]
fn ssh_sandboxes_on_a_real_openssh_server() {
    let server = SshServer::start();
    let mut tests = nine_tests();
    tests.push("fail with 'quotes' and $dollar".into());
    let s = Setup::new("ssh", &as_strs(&tests));

    // Results come back with scp (download_command).
    let config = ssh_config(&s, 2, true);
    let out = ssh_run(&s, &server, &config);
    assert_ssh_run(&s, &out, &tests);

    // Without a download_command they come back with `cat` over ssh.
    std::fs::remove_file(s.log()).unwrap();
    std::fs::remove_dir_all(s.root.join("test-results")).unwrap();
    let config = ssh_config(&s, 2, false);
    let out = ssh_run(&s, &server, &config);
    assert_ssh_run(&s, &out, &tests);
}

// ---------------------------------------------------------------- configs

#[test]
fn example_configs_validate() {
    for example in ["dir-sandbox", "ssh", "docker", "kubernetes"] {
        let config = repo().join("examples").join(example).join("offload.toml");
        let out = run_within(
            offload(
                &repo(),
                &["-c", &config.display().to_string(), "validate"],
                &[],
            ),
            Duration::from_secs(20),
        );
        assert_eq!(out.status.code(), Some(0), "{example}: {}", describe(&out));
    }
}

#[test]
fn unknown_bundled_script_is_a_configuration_error() {
    let s = Setup::new("bundled", &["test_1"]);
    let config = s.config(
        1,
        r#"create_command = "uv run @modal_sandbx.py create"
exec_command = "sh -c {command}"
destroy_command = "true""#,
    );
    let out = run_within(s.offload(&config, &[]), Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let err = stderr(&out);
    assert!(
        err.contains("create_command")
            && err.contains("@modal_sandbx.py")
            && err.contains("@modal_sandbox.py"),
        "{err}"
    );
    assert!(s.seen().is_empty());
    // `offload validate` catches it too, with the line and column.
    let out = run_within(
        offload(
            &s.root.path,
            &["-c", &config.display().to_string(), "validate"],
            &[],
        ),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(stderr(&out).contains("offload.toml:"), "{}", describe(&out));
    assert!(
        stderr(&out).contains("@modal_sandbx.py"),
        "{}",
        describe(&out)
    );
}

// ---------------------------------------------------------------- modal script

/// `type = "modal"` end to end — the generated commands, the extracted
/// bundled script, `uv run`, the image cache and `--no-cache` — with a
/// stand-in `uv` (runs the script with python3) and a stand-in Modal SDK
/// whose sandboxes are this machine (tests/python/fake_uv, fake_modal).
#[test]
fn modal_provider_end_to_end_with_a_stand_in_sdk() {
    let tests = nine_tests();
    let s = Setup::new("modal", &as_strs(&tests));
    let state = s.root.join("modal-state");
    std::fs::create_dir_all(&state).unwrap();
    let app_root = s.root.join("app");
    // The config lives in the project: `--include-cwd` uploads its directory.
    let config = s.root.write(
        "project/offload.toml",
        &format!(
            r#"
[offload]
max_parallel = 3
test_timeout_secs = 60
sandbox_project_root = "{app}"

[provider]
type = "modal"
include_cwd = true

[provider.env]
SUITE_LOG = "{log}"

[framework]
{SHELL_SUITE}

[groups.all]

[report]
output_dir = "{out}"
"#,
            app = app_root.display(),
            log = s.log().display(),
            out = s.root.join("test-results").display(),
        ),
    );
    let python = repo().join("tests/python");
    let path = format!(
        "{}:{}",
        python.join("fake_uv").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let fake_sdk = python.join("fake_modal").display().to_string();
    let state_str = state.display().to_string();
    let cache = s.root.join("cache");
    let cache_str = cache.display().to_string();
    let run = |extra: &[&str]| {
        let mut cmd = offload(
            &s.project(),
            &["-c", &config.display().to_string(), "run"],
            &[
                ("PATH", path.as_str()),
                ("PYTHONPATH", fake_sdk.as_str()),
                ("PYTHONDONTWRITEBYTECODE", "1"),
                ("FAKE_MODAL_ROOT", state_str.as_str()),
                ("FAKE_MODAL_HOST_FS", "1"),
                ("XDG_CACHE_HOME", cache_str.as_str()),
            ],
        );
        cmd.args(extra);
        let _ = std::fs::remove_file(state.join("calls.jsonl"));
        run_within(cmd, Duration::from_secs(120))
    };
    let calls = |op: &str| {
        std::fs::read_to_string(state.join("calls.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&format!("\"op\": \"{op}\"")))
            .count()
    };

    let out = run(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let cases = s.junit();
    assert_eq!(cases.len(), 9, "{cases:#?}");
    assert!(cases.iter().all(|c| c.status == "passed"), "{cases:#?}");
    assert!(
        s.seen().iter().all(|(d, _)| Path::new(d) == app_root),
        "{:?}",
        s.seen()
    );
    assert_eq!(
        calls("Image.build"),
        2,
        "base image, then the project image"
    );
    assert_eq!(calls("Sandbox.create"), 3);
    assert_eq!(calls("Sandbox.terminate"), 3, "every sandbox destroyed");
    assert!(calls("Sandbox.exec") >= 1 && calls("Sandbox.open") >= 1);
    assert!(s.project().join(".offload-image-cache").is_file());
    // The bundled script was extracted under $XDG_CACHE_HOME, keyed by content.
    let scripts: Vec<_> = std::fs::read_dir(cache.join("offload/scripts"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("modal_sandbox.py"))
        .collect();
    assert_eq!(scripts.len(), 1, "{scripts:?}");
    assert_eq!(
        std::fs::read(&scripts[0]).unwrap(),
        std::fs::read(repo().join("assets/modal_sandbox.py")).unwrap()
    );

    // Same project, same image: the cache answers, nothing is built.
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(calls("Image.build"), 0, "{}", describe(&out));
    assert!(
        stderr(&out).contains("using cached image"),
        "{}",
        describe(&out)
    );

    // --no-cache builds afresh.
    let out = run(&["--no-cache"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(calls("Image.build"), 2, "{}", describe(&out));
}

/// The pytest suite of assets/modal_sandbox.py (tests/python), run against
/// the stand-in SDK in tests/python/fake_modal. Needs pytest on PATH or in
/// the repository's .venv (`make setup-python`).
#[test]
fn modal_sandbox_script_pytest_suite() {
    let venv = repo().join(".venv/bin/python");
    let python = if venv.exists() {
        venv.display().to_string()
    } else {
        "python3".to_string()
    };
    let mut env = BTreeMap::new();
    env.insert("PYTHONDONTWRITEBYTECODE", "1");
    let out = run_within(
        {
            let mut c = Command::new(&python);
            c.args([
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "tests/python",
            ])
            .current_dir(repo())
            .envs(env);
            c
        },
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "pytest tests/python failed (needs pytest: `make setup-python`)\n{}",
        describe(&out)
    );
    assert!(stdout(&out).contains("passed"), "{}", describe(&out));
}
