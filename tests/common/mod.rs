//! Helpers shared by the integration tests: temporary copies of fixture
//! projects, running the real binary with a deadline, reading junit.xml.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The `offload` binary under test.
pub fn offload_bin() -> &'static str {
    env!("CARGO_BIN_EXE_offload")
}

/// The repository's `fixtures/` directory.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A directory under the system temp dir, removed when dropped.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("offload-it-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }

    /// A fresh copy of `fixtures/{name}`.
    pub fn with_fixture(name: &str) -> TempDir {
        let dir = TempDir::new(name);
        copy_dir(&fixtures_dir().join(name), &dir.path);
        dir
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.path.join(p)
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path.join(rel))
            .unwrap_or_else(|e| panic!("cannot read {rel} in {}: {e}", self.path.display()))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "cp -a {} {}",
        from.display(),
        to.display()
    );
}

/// `offload ARGS` in `dir`, with extra environment.
pub fn offload(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(offload_bin());
    cmd.args(args).current_dir(dir).stdin(Stdio::null());
    cmd.env_remove("CI");
    // Tests run inside GitHub Actions too: its annotations only where a
    // test asks for them.
    for var in ["GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITHUB_WORKSPACE"] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Run to completion, failing the test if it takes longer than `limit`.
pub fn run_within(mut cmd: Command, limit: Duration) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn offload");
    wait_within(child, limit)
}

pub fn wait_within(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "offload did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Both streams, for assertion messages.
pub fn describe(o: &Output) -> String {
    format!(
        "exit: {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    )
}

/// Whether process `pid` is alive (a zombie counts as dead).
pub fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next());
            !matches!(state, Some("Z") | Some("X"))
        }
        Err(_) => false,
    }
}

/// The descendants of `pid` that are alive (by walking /proc).
pub fn live_descendants(pid: i32) -> Vec<i32> {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(p) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) {
            if let Some(rest) = stat.rfind(')').map(|i| stat[i + 1..].to_string()) {
                let mut f = rest.split_whitespace();
                let state = f.next().unwrap_or("");
                let ppid: i32 = f.next().and_then(|x| x.parse().ok()).unwrap_or(0);
                if state != "Z" {
                    parent_of.push((p, ppid));
                }
            }
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let cur = found[i];
        for &(p, pp) in &parent_of {
            if pp == cur && !found.contains(&p) {
                found.push(p);
            }
        }
        i += 1;
    }
    found.remove(0);
    found
}

/// One `<testcase>` of a JUnit file, reduced to what the tests check.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub name: String,
    pub classname: String,
    /// "passed", "failure", "error", "skipped"
    pub status: String,
    /// The `message` of the failure/error/skipped element.
    pub message: String,
    /// Whether the testcase carries Surefire `flakyFailure`/`flakyError` children.
    pub flaky: bool,
    pub reruns: usize,
}

/// A small, tolerant reader of junit.xml, independent of Offload's own.
pub fn junit_cases(path: &Path) -> Vec<Case> {
    let xml = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut cases = Vec::new();
    let mut rest = xml.as_str();
    while let Some(start) = rest.find("<testcase") {
        rest = &rest[start..];
        let head_end = rest.find('>').unwrap();
        let head = &rest[..head_end];
        let self_closing = head.ends_with('/');
        let body = if self_closing {
            ""
        } else {
            let end = rest.find("</testcase>").unwrap();
            &rest[head_end + 1..end]
        };
        let status = if body.contains("<failure") {
            "failure"
        } else if body.contains("<error") {
            "error"
        } else if body.contains("<skipped") {
            "skipped"
        } else {
            "passed"
        };
        let message = ["<failure", "<error", "<skipped"]
            .iter()
            .find_map(|tag| {
                body.find(tag)
                    .map(|i| attr(&body[i..body[i..].find('>').unwrap() + i], "message"))
            })
            .unwrap_or_default();
        cases.push(Case {
            name: attr(head, "name"),
            classname: attr(head, "classname"),
            status: status.into(),
            message,
            flaky: body.contains("<flakyFailure") || body.contains("<flakyError"),
            reruns: body.matches("<rerunFailure").count() + body.matches("<rerunError").count(),
        });
        rest = &rest[head_end..];
    }
    cases
}

fn attr(tag: &str, name: &str) -> String {
    let key = format!(" {name}=\"");
    match tag.find(&key) {
        Some(i) => {
            let v = &tag[i + key.len()..];
            unescape(&v[..v.find('"').unwrap_or(v.len())])
        }
        None => String::new(),
    }
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

pub fn case<'a>(cases: &'a [Case], name: &str) -> &'a Case {
    cases
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no testcase named {name:?} in {cases:#?}"))
}

/// The groups of `offload collect -f json` output: (group name, IDs), failing
/// the test if the command failed or printed something else.
pub fn collected_groups(out: &Output) -> Vec<(String, Vec<String>)> {
    assert_eq!(out.status.code(), Some(0), "{}", describe(out));
    let doc: serde_json::Value =
        serde_json::from_str(&stdout(out)).expect("collect -f json prints JSON");
    doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let tests = g["tests"].as_array().unwrap();
            (
                g["name"].as_str().unwrap().to_string(),
                tests
                    .iter()
                    .map(|t| t.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

/// Wait until every process of `pids` is gone, failing if one is still
/// alive `limit` after `since`.
pub fn assert_all_gone_within(pids: &[i32], since: Instant, limit: Duration, context: &str) {
    loop {
        let alive: Vec<i32> = pids.iter().copied().filter(|&p| pid_alive(p)).collect();
        if alive.is_empty() {
            return;
        }
        assert!(
            since.elapsed() < limit,
            "processes outlived the run by {limit:?}: {alive:?}\n{context}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The PID a fixture writes to `path` (e.g. a hanging test's `sleep`),
/// once it is there; fails after 30 s.
pub fn wait_for_pid_file(path: &Path, what: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(p) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return p;
        }
        assert!(Instant::now() < deadline, "{what} never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}
