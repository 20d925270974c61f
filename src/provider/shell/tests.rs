use super::*;
use crate::config::ProviderConfig;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A scratch directory removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "offload-shell-test-{}-{tag}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_default()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn shell_config(create: &str, exec: &str, destroy: &str) -> ShellProviderConfig {
    ShellProviderConfig {
        prepare_command: None,
        create_command: create.into(),
        exec_command: exec.into(),
        destroy_command: destroy.into(),
        download_command: None,
        working_dir: None,
        timeout_secs: 30,
        copy_dirs: Vec::new(),
        env: BTreeMap::new(),
    }
}

fn run_config(dir: &Path, root: &str, provider: &ShellProviderConfig) -> Config {
    Config::for_tests(
        &dir.join("offload.toml"),
        Some(root),
        ProviderConfig::Shell(provider.clone()),
    )
}

fn provider(dir: &Path, root: &str, config: ShellProviderConfig) -> ShellProvider {
    let run = run_config(dir, root, &config);
    ShellProvider::new(config, &run, &ProviderOptions::default()).unwrap()
}

fn build_error(dir: &Path, config: ShellProviderConfig) -> String {
    let run = run_config(dir, "/app", &config);
    match ShellProvider::new(config, &run, &ProviderOptions::default()) {
        Ok(_) => panic!("expected a configuration error"),
        Err(e) => e.to_string(),
    }
}

/// A directory sandbox in pure shell: create copies nothing, it just makes
/// a directory under the scratch dir and prints it.
fn dir_sandbox_config(scratch: &Scratch) -> ShellProviderConfig {
    let boxes = scratch.path("boxes");
    std::fs::create_dir_all(&boxes).unwrap();
    shell_config(
        &format!("mktemp -d {}/sb.XXXXXX", boxes.display()),
        "sh -c {command}",
        "rm -rf {sandbox_id}",
    )
}

fn exec(sandbox: &mut dyn Sandbox, script: &str, env: &[(String, String)]) -> ProcessOutput {
    let request = ExecRequest {
        script,
        env,
        timeout: Duration::from_secs(20),
        sink: None,
    };
    sandbox.exec(&request, &Cancel::new()).unwrap()
}

#[test]
fn command_round_trips_awkward_ids_and_env() {
    let scratch = Scratch::new("roundtrip");
    let p = provider(&scratch.0, "{sandbox_id}", dir_sandbox_config(&scratch));
    let mut sandbox = p.create(0, &Cancel::new()).unwrap();
    let ids = [
        "tests/a b.py::test[x y]",
        "it's \"quoted\"",
        "cost $HOME $(whoami) `id`",
        "back\\slash\\n",
        "uses @x.py and @modal_sandbox.py",
        "{command} {sandbox_id}",
    ];
    let script = format!(
        "printf '%s\\n' {}; printf 'env=%s|\\n' \"$WEIRD\"; pwd; echo \"root=$OFFLOAD_ROOT\"",
        ids.iter()
            .map(|id| shell_quote(id))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let env = vec![
        ("WEIRD".to_string(), "a 'b' \"c\" $d \\e".to_string()),
        ("OFFLOAD_ROOT".to_string(), "{sandbox_id}".to_string()),
    ];
    let out = exec(sandbox.as_mut(), &script, &env);
    assert!(out.success(), "{}", out.tail(50));
    let lines: Vec<String> = out.stdout().lines().map(str::to_string).collect();
    assert_eq!(&lines[..ids.len()], &ids.map(String::from)[..]);
    assert_eq!(lines[ids.len()], "env=a 'b' \"c\" $d \\e|");
    // The command ran in the sandbox's own directory, which is OFFLOAD_ROOT.
    let here = std::fs::canonicalize(&lines[ids.len() + 1]).unwrap();
    assert_eq!(here, std::fs::canonicalize(sandbox.id()).unwrap());
    assert_eq!(lines[ids.len() + 2], format!("root={}", sandbox.id()));
    let dir = PathBuf::from(sandbox.id());
    sandbox.destroy().unwrap();
    assert!(!dir.exists(), "destroy_command removed the sandbox");
}

#[test]
fn the_frameworks_count_every_byte_an_id_adds_to_the_exec_line() {
    use crate::framework::Framework;
    let sandbox = ShellSandbox {
        id: "sb-1".into(),
        project_root: "/app".into(),
        shared: Arc::clone(
            &provider(
                Path::new("/tmp"),
                "/app",
                dir_sandbox_config(&Scratch::new("bytes")),
            )
            .shared,
        ),
    };
    let ids: Vec<String> = [
        "t 1",
        "t'2",
        "plain",
        "it's 'two'",
        "tests/t.py::test[a b]",
        "-x",
        "@f",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let default = crate::framework::default::DefaultFramework::new(
        crate::config::DefaultFrameworkConfig {
            discover_command: "echo {filters}".into(),
            run_command: "run {result_file} {tests}".into(),
            result_file: None,
            working_dir: None,
            test_id_format: "{name}".into(),
            discovery_inputs: None,
        },
        PathBuf::from("."),
    );
    let pytest = crate::framework::pytest::PytestFramework::new(
        crate::config::PytestConfig {
            paths: vec![],
            command: Some("pytest".into()),
            run_args: None,
            extra_args: vec![],
            python: "python3".into(),
            markers: None,
        },
        PathBuf::from("."),
    );
    let frameworks: [&dyn Framework; 2] = [&default, &pytest];
    for f in frameworks {
        let line =
            |ids: &[String]| sandbox.exec_line(&f.batch_command(ids, "/r.xml", None).script, &[]);
        // The first ID pays for the separator the template already has.
        let base = line(&ids[..1]).len() - f.batch_id_bytes(&ids[0]);
        let counted: usize = ids.iter().map(|id| f.batch_id_bytes(id)).sum();
        assert_eq!(line(&ids).len(), base + counted);
    }
}

#[test]
fn exec_reports_the_remote_exit_code_and_a_missing_root() {
    let scratch = Scratch::new("exit");
    let p = provider(
        &scratch.0,
        "/nonexistent/offload-root",
        dir_sandbox_config(&scratch),
    );
    let mut sandbox = p.create(0, &Cancel::new()).unwrap();
    let out = exec(sandbox.as_mut(), "exit 3", &[]);
    assert_eq!(
        out.ending,
        Ending::Exited(NO_ROOT_EXIT),
        "cd into a missing root fails first"
    );
    sandbox.destroy().unwrap();

    let p = provider(&scratch.0, "{sandbox_id}", dir_sandbox_config(&scratch));
    let mut sandbox = p.create(1, &Cancel::new()).unwrap();
    assert_eq!(
        exec(sandbox.as_mut(), "echo hi; exit 3", &[]).ending,
        Ending::Exited(3)
    );
    sandbox.destroy().unwrap();
}

#[test]
fn result_paths_are_per_batch_attempt_under_the_root() {
    let scratch = Scratch::new("paths");
    let p = provider(&scratch.0, "/app/", dir_sandbox_config(&scratch));
    let mut sandbox = p.create(0, &Cancel::new()).unwrap();
    assert_eq!(
        sandbox.result_path(3, 1),
        "/app/.offload/results/batch-3-1.xml"
    );
    assert_ne!(sandbox.result_path(3, 1), sandbox.result_path(3, 2));
    assert_ne!(sandbox.result_path(3, 1), sandbox.result_path(4, 1));
    sandbox.destroy().unwrap();
    let p = provider(&scratch.0, ".", dir_sandbox_config(&scratch));
    let mut sandbox = p.create(0, &Cancel::new()).unwrap();
    assert_eq!(sandbox.result_path(1, 0), ".offload/results/batch-1-0.xml");
    sandbox.destroy().unwrap();
}

#[test]
fn prepare_passes_copy_dirs_init_and_no_cache_and_keeps_the_last_line() {
    let scratch = Scratch::new("prepare");
    let mut config = dir_sandbox_config(&scratch);
    let args = scratch.path("args");
    config.prepare_command = Some(format!(
        "printf '%s\\n' \"$@\" > {} ; echo \"nocache=$OFFLOAD_NO_CACHE\" >&2; echo progress; echo; echo '  im-123  '; echo; true",
        args.display()
    ));
    // `sh -c` puts the first appended word in $0: make the command a script.
    config.prepare_command = Some(format!(
        "sh -c {} prepare",
        shell_quote(config.prepare_command.as_deref().unwrap())
    ));
    config.create_command = format!(
        "echo {{image_id}} > {}; echo sb-1",
        scratch.path("image").display()
    );
    config.copy_dirs = ["./data dir:/app/data", "x:/y"]
        .map(|d| crate::config::CopyDir::parse(d).unwrap())
        .to_vec();
    let mut run = run_config(&scratch.0, "/app", &config);
    run.offload.sandbox_init_cmd = Some("uv sync && echo 'done $x'".into());
    let options = ProviderOptions {
        no_cache: true,
        ..ProviderOptions::default()
    };
    let mut p = ShellProvider::new(config, &run, &options).unwrap();
    p.prepare(&Cancel::new()).unwrap();
    assert_eq!(
        scratch.read("args"),
        "--copy-dir=./data dir:/app/data\n--copy-dir=x:/y\n--sandbox-init-cmd=uv sync && echo 'done $x'\n"
    );
    let sandbox = p.create(0, &Cancel::new()).unwrap();
    assert_eq!(sandbox.id(), "sb-1");
    assert_eq!(scratch.read("image"), "im-123\n");
}

#[test]
fn prepare_failure_carries_its_stderr() {
    let scratch = Scratch::new("prepare-fail");
    let mut config = dir_sandbox_config(&scratch);
    config.prepare_command = Some("echo 'Dockerfile not found: nope' >&2; exit 2".into());
    let mut p = provider(&scratch.0, "/app", config);
    let err = p.prepare(&Cancel::new()).unwrap_err();
    assert_eq!(err.stage, ErrorStage::Prepare);
    assert!(
        err.message
            .contains("prepare_command failed (exit code 2): Dockerfile not found: nope"),
        "{err}"
    );
}

#[test]
fn create_is_retried_and_says_so() {
    let scratch = Scratch::new("create-retry");
    let counter = scratch.path("count");
    let mut config = dir_sandbox_config(&scratch);
    // Fails on the first try only.
    config.create_command = format!(
        "n=$(cat {c} 2>/dev/null || echo 0); echo $((n+1)) > {c}; \
         if [ $n -eq 0 ]; then echo 'quota exceeded' >&2; exit 1; fi; echo sb-$OFFLOAD_SANDBOX",
        c = counter.display()
    );
    config.destroy_command = "true".into();
    let p = provider(&scratch.0, "/app", config);
    let sandbox = p.create(7, &Cancel::new()).unwrap();
    assert_eq!(sandbox.id(), "sb-7");
    assert_eq!(scratch.read("count").trim(), "2");
}

#[test]
fn create_gives_up_with_the_commands_own_words() {
    let scratch = Scratch::new("create-fail");
    let counter = scratch.path("count");
    let mut config = dir_sandbox_config(&scratch);
    config.create_command = format!(
        "echo x >> {}; echo 'line one' >&2; echo 'no capacity in region' >&2; exit 4",
        counter.display()
    );
    let p = provider(&scratch.0, "/app", config);
    let err = p.create(0, &Cancel::new()).err().unwrap();
    assert_eq!(err.stage, ErrorStage::Create);
    assert!(
        err.message
            .contains("create_command failed (exit code 4): no capacity in region"),
        "{err}"
    );
    assert!(err.message.contains("line one"), "{err}");
    let first_line = err.message.lines().next().unwrap();
    assert!(first_line.ends_with("(gave up after 3 attempts)"), "{err}");
    assert!(
        err.message.contains("fix [provider] create_command"),
        "{err}"
    );
    assert_eq!(scratch.read("count").lines().count(), ATTEMPTS as usize);
}

#[test]
fn create_without_an_id_is_not_retried() {
    let scratch = Scratch::new("create-empty");
    let counter = scratch.path("count");
    let mut config = dir_sandbox_config(&scratch);
    config.create_command = format!("echo x >> {}", counter.display());
    let p = provider(&scratch.0, "/app", config);
    let err = p.create(0, &Cancel::new()).err().unwrap();
    assert!(err.message.contains("printed nothing on stdout"), "{err}");
    assert_eq!(scratch.read("count").lines().count(), 1);
}

#[test]
fn cancel_stops_a_hanging_create() {
    let scratch = Scratch::new("create-cancel");
    let mut config = dir_sandbox_config(&scratch);
    config.create_command = "sleep 30".into();
    let p = provider(&scratch.0, "/app", config);
    let cancel = Cancel::new();
    let c2 = cancel.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        c2.raise(crate::cancel::CancelLevel::Immediate);
    });
    let started = std::time::Instant::now();
    let err = p.create(0, &cancel).err().unwrap();
    t.join().unwrap();
    assert!(err.message.contains("cancelled"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_create_that_times_out_is_terminated_once_and_its_trap_cleans_up() {
    let scratch = Scratch::new("create-timeout");
    let counter = scratch.path("count");
    let made = scratch.path("made");
    let mut config = dir_sandbox_config(&scratch);
    // Makes something, then hangs; SIGTERM lets its trap remove it.
    config.create_command = format!(
        "sh -c 'echo x >> {c}; mkdir {m}; trap \"rm -rf {m}; exit 1\" TERM; sleep 30 & wait'",
        c = counter.display(),
        m = made.display()
    );
    config.timeout_secs = 1;
    let p = provider(&scratch.0, "/app", config);
    let started = std::time::Instant::now();
    let err = p.create(0, &Cancel::new()).err().unwrap();
    assert!(
        err.message
            .contains("create_command failed (timed out after 1 s)"),
        "{err}"
    );
    // timeout_secs bounds the whole create: a hung attempt is not retried.
    assert_eq!(scratch.read("count").lines().count(), 1);
    assert!(!made.exists(), "the trap did not get to clean up");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn create_retries_stop_at_the_shared_deadline() {
    let scratch = Scratch::new("create-deadline");
    let counter = scratch.path("count");
    let mut config = dir_sandbox_config(&scratch);
    // Each attempt fails after most of the time is used up.
    config.create_command = format!(
        "echo x >> {}; sleep 0.8; echo busy >&2; exit 1",
        counter.display()
    );
    config.timeout_secs = 1;
    let p = provider(&scratch.0, "/app", config);
    let err = p.create(0, &Cancel::new()).err().unwrap();
    assert!(err.message.contains("(gave up after 1 attempt)"), "{err}");
    assert_eq!(scratch.read("count").lines().count(), 1);
}

#[test]
fn fetch_after_a_timeout_tries_once() {
    let scratch = Scratch::new("download-once");
    let counter = scratch.path("count");
    let mut config = dir_sandbox_config(&scratch);
    config.download_command = Some(format!(
        "echo x >> {}; echo no such file: {{paths}} >&2; exit 1",
        counter.display()
    ));
    let p = provider(&scratch.0, "{sandbox_id}", config);
    let mut sandbox = p.create(0, &Cancel::new()).unwrap();
    let remote = sandbox.result_path(1, 1);
    let local = scratch.path("local/r.xml");
    let err = sandbox
        .fetch(&remote, &local, FetchMode::IfWritten, &Cancel::new())
        .unwrap_err();
    assert_eq!(err.stage, ErrorStage::Download);
    assert_eq!(scratch.read("count").lines().count(), 1);
    sandbox.destroy().unwrap();
}

#[test]
fn fetch_uses_download_command_and_retries_it() {
    let scratch = Scratch::new("download");
    let counter = scratch.path("count");
    let mut config = dir_sandbox_config(&scratch);
    // Copies each 'remote':'local' pair; fails once.
    config.download_command = Some(format!(
        "n=$(cat {c} 2>/dev/null || echo 0); echo $((n+1)) > {c}; \
         if [ $n -eq 0 ]; then echo 'connection reset' >&2; exit 1; fi; \
         for p in {{paths}}; do cp \"${{p%%:*}}\" \"${{p#*:}}\"; done",
        c = counter.display()
    ));
    let p = provider(&scratch.0, "{sandbox_id}", config);
    let mut sandbox = p.create(0, &Cancel::new()).unwrap();
    let remote = sandbox.result_path(1, 0);
    assert!(remote.starts_with(sandbox.id()));
    let out = exec(
        sandbox.as_mut(),
        &format!("echo '<testsuite/>' > {remote}"),
        &[],
    );
    assert!(out.success(), "{}", out.tail(50));
    let local = scratch.path("local/results/batch 1.xml");
    sandbox
        .fetch(&remote, &local, FetchMode::Expected, &Cancel::new())
        .unwrap();
    assert_eq!(std::fs::read_to_string(&local).unwrap(), "<testsuite/>\n");
    assert_eq!(scratch.read("count").trim(), "2");
    sandbox.destroy().unwrap();
}

#[test]
fn relative_remote_paths_are_under_the_project_root() {
    let scratch = Scratch::new("relative");
    let mut config = dir_sandbox_config(&scratch);
    config.download_command = Some(format!(
        "echo {{paths}} > {}; for p in {{paths}}; do cp \"${{p%%:*}}\" \"${{p#*:}}\"; done",
        scratch.path("paths").display()
    ));
    let p = provider(&scratch.0, "{sandbox_id}", config);
    let mut sandbox = p.create(0, &Cancel::new()).unwrap();
    exec(
        sandbox.as_mut(),
        "mkdir -p out && echo '<x/>' > out/junit.xml",
        &[],
    );
    let local = scratch.path("got.xml");
    sandbox
        .fetch("out/junit.xml", &local, FetchMode::Expected, &Cancel::new())
        .unwrap();
    assert_eq!(std::fs::read_to_string(&local).unwrap(), "<x/>\n");
    assert!(
        scratch
            .read("paths")
            .starts_with(&format!("{}/out/junit.xml:", sandbox.id())),
        "{}",
        scratch.read("paths")
    );
    sandbox.destroy().unwrap();
}

#[test]
fn fetch_without_download_command_cats_through_exec() {
    let scratch = Scratch::new("cat");
    let p = provider(&scratch.0, "{sandbox_id}", dir_sandbox_config(&scratch));
    let mut sandbox = p.create(0, &Cancel::new()).unwrap();
    let remote = sandbox.result_path(2, 1);
    let xml = "<testsuite name=\"a b\">\n  <testcase name=\"x\"/>\n</testsuite>";
    exec(
        sandbox.as_mut(),
        &format!("printf '%s\\n' {} > {remote}", shell_quote(xml)),
        &[],
    );
    let local = scratch.path("got.xml");
    sandbox
        .fetch(&remote, &local, FetchMode::Expected, &Cancel::new())
        .unwrap();
    assert_eq!(std::fs::read_to_string(&local).unwrap(), format!("{xml}\n"));
    // A missing file is a download error naming the file, not retried.
    let missing = sandbox.result_path(9, 9);
    let err = sandbox
        .fetch(&missing, &local, FetchMode::Expected, &Cancel::new())
        .unwrap_err();
    assert_eq!(err.stage, ErrorStage::Download);
    assert!(
        err.message
            .contains(&format!("no result file at {missing}")),
        "{err}"
    );
    assert!(!err.message.contains("gave up"), "{err}");
    sandbox.destroy().unwrap();
}

#[test]
fn destroy_is_bounded_by_the_lifecycle_timeout() {
    let scratch = Scratch::new("destroy");
    let mut config = dir_sandbox_config(&scratch);
    config.create_command = "echo sb-1".into();
    let counter = scratch.path("count");
    config.destroy_command = format!("echo x >> {}; sleep 30", counter.display());
    config.timeout_secs = 1;
    let p = provider(&scratch.0, "/app", config);
    let mut sandbox = p.create(0, &Cancel::new()).unwrap();
    let started = std::time::Instant::now();
    let err = sandbox.destroy().unwrap_err();
    assert_eq!(err.stage, ErrorStage::Destroy);
    let first_line = err.message.lines().next().unwrap();
    assert!(
        first_line.contains("destroy_command failed (timed out after 1 s)"),
        "{err}"
    );
    assert!(
        first_line.ends_with("sandbox sb-1 may still exist: remove it by hand"),
        "{err}"
    );
    // timeout_secs bounds the whole destroy: no retry after a timeout.
    assert_eq!(scratch.read("count").lines().count(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_failing_destroy_is_retried_within_its_time() {
    let scratch = Scratch::new("destroy-retry");
    let counter = scratch.path("count");
    let mut config = dir_sandbox_config(&scratch);
    config.create_command = "echo sb-1".into();
    config.destroy_command = format!(
        "n=$(cat {c} 2>/dev/null || echo 0); echo $((n+1)) > {c}; [ $n -ge 1 ] || {{ echo busy >&2; exit 1; }}",
        c = counter.display()
    );
    let p = provider(&scratch.0, "/app", config);
    let mut sandbox = p.create(0, &Cancel::new()).unwrap();
    sandbox.destroy().unwrap();
    assert_eq!(scratch.read("count").trim(), "2");
}

#[test]
fn configuration_errors_name_the_field() {
    let scratch = Scratch::new("config");
    let base = || dir_sandbox_config(&scratch);

    let mut c = base();
    c.create_command = "create {image_id}".into();
    assert!(build_error(&scratch.0, c).contains("no prepare_command"));

    let mut c = base();
    c.create_command = "uv run @nope.py create".into();
    let e = build_error(&scratch.0, c);
    assert!(
        e.contains("[provider] create_command")
            && e.contains("@nope.py")
            && e.contains("@modal_sandbox.py"),
        "{e}"
    );

    let mut c = base();
    c.copy_dirs = vec![crate::config::CopyDir::parse("./x:/x").unwrap()];
    assert!(build_error(&scratch.0, c).contains("copy_dirs"));

    let mut c = base();
    c.env.insert("BAD-NAME".into(), "x".into());
    assert!(build_error(&scratch.0, c).contains("BAD-NAME"));

    let c = base();
    let mut run = run_config(&scratch.0, "/app", &c);
    run.offload.sandbox_project_root = None;
    let e = ShellProvider::new(c, &run, &ProviderOptions::default())
        .err()
        .unwrap();
    assert!(e.to_string().contains("sandbox_project_root"));
}

#[test]
fn bundled_scripts_are_expanded_in_templates_only() {
    let scratch = Scratch::new("bundled");
    let mut config = dir_sandbox_config(&scratch);
    config.create_command = "test -f @modal_sandbox.py && echo sb-ok".into();
    config.destroy_command = "true".into();
    let root = scratch.0.display().to_string();
    let p = provider(&scratch.0, &root, config);
    let mut sandbox = p.create(0, &Cancel::new()).unwrap();
    assert_eq!(
        sandbox.id(),
        "sb-ok",
        "@modal_sandbox.py became the path of an existing file"
    );
    // A test ID containing @modal_sandbox.py reaches the command untouched.
    let out = exec(sandbox.as_mut(), "echo @modal_sandbox.py", &[]);
    assert_eq!(out.stdout(), "@modal_sandbox.py\n");
    sandbox.destroy().unwrap();
}
