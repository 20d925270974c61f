//! The Docker example end to end: the real `examples/docker/offload.toml`
//! (copied, with its Dockerfile and .dockerignore, into a copy of
//! fixtures/docker-shell) driving a real Docker engine — images built by its
//! `prepare_command`, one container per sandbox, batches through
//! `docker exec`, results back through `docker cp`, every container removed.
//!
//! The engine is the one `make setup-docker` starts
//! (examples/docker/private-engine.sh; its socket is named in
//! target/docker-engine/docker-host), or the one `DOCKER_HOST` names. Without
//! an engine the tests say so and skip; in CI (`CI=true`) they fail.
//!
//! Each test project holds a file with a value of its own, so each builds an
//! image of its own: the checks look at that image's containers only (from
//! the engine's event log and `docker ps --filter ancestor=`), and hold when
//! the tests run side by side (nextest, `offload run` on this repository).
//! Within one `cargo test` they take turns, to spare a small machine.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;

/// The image tests/test_*.sh run in (busybox-static, built by private-engine.sh).
const BASE_IMAGE: &str = "offload-busybox";
/// Debian bookworm with python3-pytest (private-engine.sh, OFFLOAD_DOCKER_PYTEST=1).
const PYTEST_IMAGE: &str = "offload-python-pytest";
/// A whole `offload run` on a loaded machine: builds, container starts, batches.
const RUN_LIMIT: Duration = Duration::from_secs(240);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// How the tests reach the engine, or why they cannot.
fn docker_host() -> Result<String, String> {
    if let Ok(host) = std::env::var("DOCKER_HOST") {
        if !host.is_empty() {
            return Ok(host);
        }
    }
    let dir = std::env::var_os("OFFLOAD_DOCKER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/docker-engine"));
    let file = dir.join("docker-host");
    match std::fs::read_to_string(&file) {
        Ok(host) => Ok(host.trim().to_string()),
        Err(_) => Err(format!(
            "no Docker engine: {} is missing and DOCKER_HOST is not set; `make setup-docker` \
             starts a private engine (as root), or point DOCKER_HOST at one",
            file.display()
        )),
    }
}

/// The engine, checked to answer and to hold the base image; the lock that
/// makes the Docker tests take turns. `None` (after saying why) when there is
/// no engine outside CI.
struct Engine {
    host: String,
    /// Images the test built, removed when it ends.
    built: std::cell::RefCell<Vec<String>>,
    _turn: MutexGuard<'static, ()>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        for image in self.built.take() {
            let _ = docker_cmd(&self.host, &["rmi", "-f", &image])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn engine() -> Option<Engine> {
    static TURN: Mutex<()> = Mutex::new(());
    let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let checked = docker_host().and_then(|host| {
        let out = docker_cmd(&host, &["version", "--format", "{{.Server.Version}}"])
            .output()
            .map_err(|e| format!("cannot run `docker`: {e} (apt-get install docker.io)"))?;
        if !out.status.success() {
            return Err(format!(
                "the Docker engine at {host} does not answer: {}(`make setup-docker` starts one)",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        if !image_exists(&host, BASE_IMAGE) {
            return Err(format!(
                "the Docker engine at {host} has no image {BASE_IMAGE} (`make setup-docker` builds it)"
            ));
        }
        Ok(host)
    });
    match checked {
        Ok(host) => Some(Engine {
            host,
            built: Default::default(),
            _turn: turn,
        }),
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("the Docker tests need a Docker engine in CI: {why}")
        }
        Err(why) => {
            skipped(&why);
            None
        }
    }
}

/// Say why a test does nothing. Written to stderr directly: the test
/// harness captures `eprintln!` of a passing test, and a skip must be seen.
fn skipped(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

fn image_exists(host: &str, image: &str) -> bool {
    docker_cmd(host, &["image", "inspect", image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn docker_cmd(host: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("docker");
    cmd.args(args).env("DOCKER_HOST", host).stdin(Stdio::null());
    cmd
}

impl Engine {
    fn has_image(&self, image: &str) -> bool {
        image_exists(&self.host, image)
    }

    fn docker(&self, args: &[&str]) -> String {
        let out = run_within(docker_cmd(&self.host, args), Duration::from_secs(60));
        assert!(out.status.success(), "docker {args:?}: {}", describe(&out));
        stdout(&out)
    }

    /// The containers of `image` (every container, with `None`), running or
    /// not.
    fn containers(&self, image: Option<&str>) -> BTreeSet<String> {
        let filter = image.map(|i| format!("ancestor={i}"));
        let mut args = vec!["ps", "-aq", "--no-trunc"];
        if let Some(f) = &filter {
            args.extend(["--filter", f]);
        }
        self.docker(&args).lines().map(str::to_string).collect()
    }

    /// The IDs of the containers that had events matching `filters` between
    /// `since` and now (one line per event, so an ID can repeat).
    /// The same for the containers of `image` labelled as the example's
    /// sandboxes.
    fn sandbox_events(&self, since: &str, image: &str, event: &str) -> Vec<String> {
        self.events_filtered(
            since,
            &[
                &format!("event={event}"),
                &format!("image={image}"),
                "label=offload-sandbox",
            ],
        )
    }

    fn events_filtered(&self, since: &str, filters: &[&str]) -> Vec<String> {
        let until = unix_now();
        let mut args = vec!["events", "--since", since, "--until", &until];
        args.extend(["--filter", "type=container"]);
        for f in filters {
            args.extend(["--filter", f]);
        }
        args.extend(["--format", "{{.Actor.ID}}"]);
        self.docker(&args).lines().map(str::to_string).collect()
    }

    /// Containers running a process whose command line is `command`.
    fn running(&self, command: &str) -> Vec<String> {
        self.containers(None)
            .into_iter()
            .filter(|c| {
                let out = docker_cmd(&self.host, &["top", c, "-o", "pid,args"])
                    .output()
                    .unwrap();
                stdout(&out)
                    .lines()
                    .any(|l| l.trim().split_once(' ').map(|(_, args)| args.trim()) == Some(command))
            })
            .collect()
    }
}

/// Now, as `docker events` takes it (seconds.nanoseconds since the epoch).
fn unix_now() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    format!("{}.{:09}", now.as_secs(), now.subsec_nanos())
}

/// A copy of fixtures/docker-shell with the example's offload.toml, Dockerfile
/// and .dockerignore at its root: what a user who copied the example has.
struct Project {
    dir: TempDir,
}

impl Project {
    fn new() -> Project {
        Project::with("docker-shell", "offload.toml")
    }

    /// A copy of `fixtures/{fixture}` with examples/docker/`{config}`, its
    /// Dockerfile and .dockerignore.
    fn with(fixture: &str, config: &str) -> Project {
        let dir = TempDir::with_fixture(fixture);
        // An image of this test's own (see the top of the file).
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        dir.write(
            "run-id.txt",
            &format!("{} {}\n", std::process::id(), now.as_nanos()),
        );
        for file in [config, "Dockerfile", ".dockerignore"] {
            std::fs::copy(repo().join("examples/docker").join(file), dir.join(file))
                .unwrap_or_else(|e| panic!("copying examples/docker/{file}: {e}"));
        }
        Project { dir }
    }

    fn path(&self) -> &Path {
        &self.dir.path
    }

    /// `offload [-c config] run ARGS` in the project, against `engine`.
    fn offload(
        &self,
        engine: &Engine,
        config: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Command {
        let mut all = vec!["-c", config, "run"];
        all.extend_from_slice(args);
        let mut vars = vec![
            ("DOCKER_HOST", engine.host.as_str()),
            ("DOCKER_SANDBOX_BASE", BASE_IMAGE),
        ];
        // Later entries win: a test may name another base image.
        vars.extend_from_slice(env);
        offload(self.path(), &all, &vars)
    }

    fn run(&self, engine: &Engine, config: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        Run::start(self.offload(engine, config, args, env)).finish(RUN_LIMIT)
    }

    fn junit(&self) -> Vec<Case> {
        junit_cases(&self.dir.join("test-results/junit.xml"))
    }
}

/// A running `offload`. Should the test fail before it ends, it gets Ctrl-C
/// (SIGINT), so that it removes its containers, rather than a SIGKILL that
/// would leave them to the next test.
struct Run {
    child: Option<Child>,
}

impl Run {
    fn start(mut cmd: Command) -> Run {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        Run {
            child: Some(cmd.spawn().expect("spawn offload")),
        }
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    fn interrupt(&self) {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.pid(), libc::SIGINT);
        }
    }

    /// Wait for the end; past `limit`, interrupt it and fail the test.
    fn finish(mut self, limit: Duration) -> Output {
        let start = Instant::now();
        let child = self.child.as_mut().unwrap();
        while child.try_wait().unwrap().is_none() {
            if start.elapsed() > limit {
                self.interrupt();
                let out = wait_within(self.child.take().unwrap(), Duration::from_secs(120));
                panic!(
                    "offload did not finish within {limit:?}; interrupted:\n{}",
                    describe(&out)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            self.child = Some(child);
            self.interrupt();
            let _ = wait_within(self.child.take().unwrap(), Duration::from_secs(120));
        }
    }
}

/// The image `prepare_command` built, as Offload reported it (removed when
/// the test ends).
fn image_of(engine: &Engine, out: &Output) -> String {
    let image = stderr(out)
        .lines()
        .find_map(|l| l.strip_prefix("note: image "))
        .unwrap_or_else(|| panic!("no `note: image` line: {}", describe(out)))
        .to_string();
    engine.built.borrow_mut().push(image.clone());
    image
}

const PASSING: [&str; 7] = [
    "tests/test_in_container.sh",
    "tests/test_pass_1.sh",
    "tests/test_pass_2.sh",
    "tests/test_pass_3.sh",
    "tests/test_pass_4.sh",
    "tests/test_pass_5.sh",
    "tests/test_slow.sh",
];

/// The results of fixtures/docker-shell: passing, failing (after its retry),
/// flaky; `tests/test_slow.sh` as `slow` says (`None`: passed).
fn assert_suite_results(cases: &[Case], slow: Option<&str>) {
    assert_eq!(cases.len(), 9, "{cases:#?}");
    for id in PASSING {
        let c = case(cases, id);
        match (id, slow) {
            ("tests/test_slow.sh", Some(message)) => {
                assert_eq!(c.status, "failure", "{c:?}");
                assert!(c.message.contains(message), "{c:?}");
            }
            _ => assert_eq!(c.status, "passed", "{c:?}"),
        }
    }
    let fail = case(cases, "tests/test_fail.sh");
    assert_eq!(fail.status, "failure", "{fail:?}");
    assert_eq!(fail.message, "exit code 1", "{fail:?}");
    assert_eq!(fail.reruns, 1, "failed once, then on its retry: {fail:?}");
    let flaky = case(cases, "tests/test_flaky.sh");
    assert_eq!(flaky.status, "passed", "{flaky:?}");
    assert!(flaky.flaky, "failed on attempt 1, passed on 2: {flaky:?}");
}

/// Every container of `out`'s image created since `since` was destroyed,
/// and none is left. Returns how many there were (one per sandbox).
fn assert_no_container_left(engine: &Engine, since: &str, out: &Output) -> usize {
    let image = image_of(engine, out);
    let created: BTreeSet<String> = engine
        .sandbox_events(since, &image, "create")
        .into_iter()
        .collect();
    let destroyed: BTreeSet<String> = engine
        .sandbox_events(since, &image, "destroy")
        .into_iter()
        .collect();
    let kept: Vec<&String> = created.difference(&destroyed).collect();
    assert!(
        kept.is_empty(),
        "containers created and never destroyed: {kept:?}"
    );
    let left = engine.containers(Some(&image));
    assert!(left.is_empty(), "containers left behind: {left:?}");
    created.len()
}

#[test]
fn the_example_runs_a_shell_suite_in_containers_and_removes_them() {
    let Some(engine) = engine() else { return };
    let project = Project::new();
    let since = unix_now();
    let out = project.run(&engine, "offload.toml", &[], &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a test failed: {}",
        describe(&out)
    );
    assert_suite_results(&project.junit(), None);
    let created = assert_no_container_left(&engine, &since, &out);
    assert_eq!(created, 4, "one container per sandbox (max_parallel = 4)");

    // Each batch ran through `docker exec` and its JUnit came back through
    // `docker cp` (the engine records a copy out of a container as
    // `archive-path`).
    let batches = std::fs::read_dir(project.dir.join("test-results/logs"))
        .unwrap()
        .count();
    assert!(batches >= 4, "{batches} batch logs");
    let first_image = image_of(&engine, &out);
    let events = |event| engine.sandbox_events(&since, &first_image, event).len();
    assert_eq!(events("exec_start"), batches);
    assert_eq!(events("archive-path"), batches);

    // Again, with the timing history and test-results/ now in the project:
    // .dockerignore keeps both out of the build context (test_in_container.sh
    // checks they are not in /app), so the image is the same one, from the
    // build cache.
    let since = unix_now();
    let out = project.run(&engine, "offload.toml", &[], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("Timing history: durations for 9 of 9 tests"),
        "{}",
        describe(&out)
    );
    assert_suite_results(&project.junit(), None);
    assert_eq!(
        image_of(&engine, &out),
        first_image,
        "an unchanged project, the same image"
    );
    assert_no_container_left(&engine, &since, &out);
}

#[test]
fn a_hanging_test_times_out_and_its_container_is_replaced() {
    let Some(engine) = engine() else { return };
    let project = Project::new();
    // The example as it is, but with a 5 s batch timeout instead of 600 s.
    let example = std::fs::read_to_string(project.dir.join("offload.toml")).unwrap();
    assert_eq!(example.matches("\ntest_timeout_secs = 600\n").count(), 1);
    project.dir.write(
        "offload-hang.toml",
        &example.replace("\ntest_timeout_secs = 600\n", "\ntest_timeout_secs = 5\n"),
    );
    let since = unix_now();
    let out = project.run(
        &engine,
        "offload-hang.toml",
        &["--parallel", "2", "--env", "SUITE_SLEEP=600"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_suite_results(&project.junit(), Some("timed out after 5 s"));
    let created = assert_no_container_left(&engine, &since, &out);
    assert!(
        created > 2,
        "each timed-out batch's container is replaced: {created} created\n{}",
        describe(&out)
    );
    assert!(
        stderr(&out).contains("replaced by"),
        "the replacement is reported: {}",
        describe(&out)
    );
}

#[test]
fn ctrl_c_mid_run_removes_every_container() {
    let Some(engine) = engine() else { return };
    let project = Project::new();
    let since = unix_now();
    let run =
        // 601 s: a command line no other test's containers run.
        Run::start(project.offload(&engine, "offload.toml", &["--env", "SUITE_SLEEP=601"], &[]));
    // Wait until the slow test is sleeping inside a container.
    let deadline = Instant::now() + Duration::from_secs(120);
    while engine.running("sleep 601").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the slow test did not start in a container"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let descendants = live_descendants(run.pid());
    run.interrupt();
    let out = run.finish(Duration::from_secs(120));
    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    let slow = case(&project.junit(), "tests/test_slow.sh").clone();
    assert_eq!(slow.status, "error", "{slow:?}");
    assert!(slow.message.contains("Not run"), "{slow:?}");
    assert_no_container_left(&engine, &since, &out);
    assert!(engine.running("sleep 601").is_empty());
    std::thread::sleep(Duration::from_millis(200));
    let alive: Vec<i32> = descendants.into_iter().filter(|&p| pid_alive(p)).collect();
    assert!(alive.is_empty(), "processes outlived the run: {alive:?}");
}

#[test]
fn a_failing_docker_run_retires_its_sandbox_and_the_others_do_the_work() {
    let Some(engine) = engine() else { return };
    let project = Project::new();
    // A `docker` first on PATH that makes sandbox 1's `docker run` ask the
    // real engine for an image that does not exist; everything else goes to
    // the real docker unchanged.
    let real = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v docker"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let shim = project.dir.write(
        "bin/docker",
        &format!(
            "#!/bin/sh\n\
             if [ \"$1\" = run ] && [ \"${{OFFLOAD_SANDBOX:-}}\" = 1 ]; then\n\
             \texec {real} run -d --pull=never --rm offload-no-such-image sleep infinity\n\
             fi\n\
             exec {real} \"$@\"\n",
            real = real.trim()
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        shim.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let since = unix_now();
    // The slow test keeps the run going while sandbox 1 is tried three times.
    let out = project.run(
        &engine,
        "offload.toml",
        &["--parallel", "3", "--env", "SUITE_SLEEP=5"],
        &[("PATH", &path)],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = stderr(&out);
    assert!(
        err.contains("sandbox 1: create_command failed") && err.contains("(attempt 3 of 3)"),
        "retried: {}",
        describe(&out)
    );
    assert!(
        err.contains("(gave up after 3 attempts)")
            && err.contains("No such image: offload-no-such-image"),
        "retired, with docker's own words: {}",
        describe(&out)
    );
    assert_suite_results(&project.junit(), None);
    let created = assert_no_container_left(&engine, &since, &out);
    assert_eq!(created, 2, "sandboxes 0 and 2 only");
}

#[test]
fn a_pytest_project_in_containers() {
    let Some(engine) = engine() else { return };
    if !engine.has_image(PYTEST_IMAGE) {
        // Not built by default: debootstrap takes one to two minutes, more than
        // CI's budget for the Docker tests.
        skipped(&format!(
            "no image {PYTEST_IMAGE}; `OFFLOAD_DOCKER_PYTEST=1 make setup-docker` builds it"
        ));
        return;
    }
    let python_has_pytest = Command::new("python")
        .args(["-m", "pytest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        python_has_pytest,
        "`python -m pytest` (discovery runs here) does not work: run `make setup`, then the \
         tests through `make test` (which puts .venv/bin first on PATH)"
    );
    let project = Project::with("provider-pytest", "offload-pytest.toml");
    let since = unix_now();
    let out = project.run(
        &engine,
        "offload-pytest.toml",
        &["--parallel", "3"],
        &[("DOCKER_SANDBOX_BASE", PYTEST_IMAGE)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let cases = project.junit();
    assert_eq!(cases.len(), 9, "{cases:#?}");
    assert!(cases.iter().all(|c| c.status == "passed"), "{cases:#?}");
    case(&cases, "tests/test_strings.py::test_len[with space]");
    assert_eq!(assert_no_container_left(&engine, &since, &out), 3);
}

/// offload-pytest.toml is offload.toml with another framework: the same
/// `[offload]` and `[provider]`, but no default base image.
#[test]
fn the_pytest_example_shares_the_docker_settings() {
    let read = |f: &str| std::fs::read_to_string(repo().join("examples/docker").join(f)).unwrap();
    let settings = |text: &str| {
        let start = text.find("\n[offload]\n").expect("[offload]");
        let end = text.find("\n[framework]\n").expect("[framework]");
        text[start..end].to_string()
    };
    assert_eq!(
        settings(&read("offload.toml")).replace(
            "${DOCKER_SANDBOX_BASE:-debian:bookworm-slim}",
            "${DOCKER_SANDBOX_BASE}"
        ),
        settings(&read("offload-pytest.toml"))
    );
    // Without a base image, the error names the variable.
    let dir = repo().join("examples/docker");
    let mut cmd = offload(&dir, &["-c", "offload-pytest.toml", "validate"], &[]);
    cmd.env_remove("DOCKER_SANDBOX_BASE");
    let out = run_within(cmd, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(
        stderr(&out).contains("DOCKER_SANDBOX_BASE"),
        "{}",
        describe(&out)
    );
    let out = run_within(
        offload(
            &dir,
            &["-c", "offload-pytest.toml", "validate"],
            &[("DOCKER_SANDBOX_BASE", PYTEST_IMAGE)],
        ),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}
