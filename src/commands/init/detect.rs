//! What `offload init` finds in a project: which framework, which Python
//! runs pytest, where pytest finds the tests (pytest is asked), whether the
//! project's `addopts` start pytest-xdist workers, and how a Node project
//! runs `node --test`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cancel::{Cancel, CancelLevel};
use crate::config::{GroupConfig, PytestConfig};
use crate::framework::Framework;

/// The kind of project found, before the details are worked out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetectedKind {
    Pytest,
    Cargo,
    /// `node --test` in a `package.json` script.
    Node,
    Default,
}

/// Which framework the project in `dir` uses, and the evidence (for the
/// message and the file's header). pytest configuration wins over a
/// `Cargo.toml` (a Rust extension with Python tests is a pytest project);
/// pytest's test file names anywhere in the project count when nothing
/// else does.
pub fn detect(dir: &Path) -> (DetectedKind, String) {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    if dir.join("pytest.ini").is_file() {
        return (DetectedKind::Pytest, "detected from pytest.ini".into());
    }
    if read("pyproject.toml").contains("[tool.pytest") {
        return (
            DetectedKind::Pytest,
            "detected from [tool.pytest] in pyproject.toml".into(),
        );
    }
    if read("setup.cfg").contains("[tool:pytest]") {
        return (
            DetectedKind::Pytest,
            "detected from [tool:pytest] in setup.cfg".into(),
        );
    }
    if read("tox.ini").contains("[pytest]") {
        return (
            DetectedKind::Pytest,
            "detected from [pytest] in tox.ini".into(),
        );
    }
    if dir.join("Cargo.toml").is_file() {
        return (DetectedKind::Cargo, "detected from Cargo.toml".into());
    }
    if let Some(script) = node_test_script(dir) {
        return (
            DetectedKind::Node,
            format!(
                "detected from `node --test` in package.json's \"{}\" script",
                script.name
            ),
        );
    }
    if let Some(first) = python_test_files(dir).first() {
        return (
            DetectedKind::Pytest,
            format!("detected from pytest test files such as {first}"),
        );
    }
    (
        DetectedKind::Default,
        "no pytest, cargo or node --test project found".into(),
    )
}

/// Directories no test lives in, or whose tests are not the project's.
const SKIPPED_DIRS: &[&str] = &[
    "node_modules",
    "venv",
    "env",
    "__pycache__",
    "site-packages",
    "target",
    "build",
    "dist",
];

/// How much of a large tree the walk looks at before it gives up.
const WALK_LIMIT: usize = 50_000;
const WALK_DEPTH: usize = 8;

/// pytest's default test file names (`test_*.py`, `*_test.py`) under `dir`,
/// relative to it and sorted: hidden and build directories skipped, at most
/// [`WALK_DEPTH`] levels and [`WALK_LIMIT`] entries looked at. Used to tell
/// a Python project, and for `paths` when pytest cannot be asked.
pub fn python_test_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut seen = 0;
    let mut queue = vec![(PathBuf::new(), 0)];
    while let Some((rel, depth)) = queue.pop() {
        let Ok(entries) = std::fs::read_dir(dir.join(&rel)) else {
            continue;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            seen += 1;
            if seen > WALK_LIMIT {
                found.sort();
                return found;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = rel.join(&name);
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                let skipped = name.starts_with('.')
                    || name.ends_with(".egg-info")
                    || SKIPPED_DIRS.contains(&name.as_str());
                if !skipped && depth < WALK_DEPTH {
                    queue.push((path, depth + 1));
                }
            } else if name.ends_with(".py")
                && (name.starts_with("test_") || name.ends_with("_test.py"))
            {
                found.push(path.to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found
}

/// The first directory (or the file itself, at the top) of each path.
pub fn top_levels<'a>(paths: impl IntoIterator<Item = &'a str>) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for p in paths {
        let top = match p.split_once('/') {
            Some((dir, _)) => format!("{dir}/"),
            None => p.to_string(),
        };
        match counts.iter_mut().find(|(t, _)| *t == top) {
            Some((_, n)) => *n += 1,
            None => counts.push((top, 1)),
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts
}

/// How pytest runs in the project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PytestRunner {
    /// The config's `command`.
    pub command: String,
    /// A command that can run pytest here and now, to ask it where the
    /// tests are: `command`, or the project's virtualenv for a uv project.
    pub probe: Option<String>,
    /// Why there is no probe: the warning to print.
    pub missing: Option<String>,
}

/// Whether `python` (a path or a name on PATH) can import pytest, run in
/// `project`.
fn imports_pytest(python: &Path, project: &Path) -> bool {
    std::process::Command::new(python)
        .args(["-c", "import pytest"])
        .current_dir(project)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn on_path(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// How to start pytest in this project: `uv run pytest` with a uv lock
/// file, the project's own virtualenv when it has one, else the first
/// Python on PATH that can import pytest. Without any, `python3 -m pytest`
/// and a warning saying what to install.
pub fn pytest_runner(project: &Path) -> PytestRunner {
    let venv = [".venv", "venv"]
        .into_iter()
        .find(|v| project.join(v).join("bin/python").is_file());
    let venv_pytest = venv.filter(|v| imports_pytest(&project.join(v).join("bin/python"), project));
    if project.join("uv.lock").is_file() {
        let missing = if venv_pytest.is_some() {
            None
        } else if !on_path("uv") {
            Some(
                "the project has a uv.lock but uv is not installed: install uv \
                 (https://docs.astral.sh/uv/), or set [framework] command"
                    .to_string(),
            )
        } else {
            Some(
                "the project's environment has no pytest yet (no .venv that can import it), so \
                 pytest was not asked where the tests are: run `uv sync` (with pytest among the \
                 dev dependencies), then `offload collect` to check"
                    .to_string(),
            )
        };
        return PytestRunner {
            command: "uv run pytest".into(),
            probe: venv_pytest.map(|v| format!("{v}/bin/python -m pytest")),
            missing,
        };
    }
    if let Some(v) = venv {
        let command = format!("{v}/bin/python -m pytest");
        let missing = venv_pytest.is_none().then(|| {
            format!(
                "{v}/bin/python cannot import pytest: install it there \
                 (`{v}/bin/python -m pip install pytest`), or set [framework] command"
            )
        });
        return PytestRunner {
            probe: venv_pytest.map(|_| command.clone()),
            command,
            missing,
        };
    }
    for python in ["python", "python3"] {
        if imports_pytest(Path::new(python), project) {
            let command = format!("{python} -m pytest");
            return PytestRunner {
                probe: Some(command.clone()),
                command,
                missing: None,
            };
        }
    }
    PytestRunner {
        command: "python3 -m pytest".into(),
        probe: None,
        missing: Some(
            "no pytest-capable Python found (no .venv or venv here, and neither `python` nor \
             `python3` on PATH can import pytest): the config says `python3 -m pytest`; install \
             pytest (`python3 -m pip install pytest`, or in a virtualenv), or set [framework] \
             command"
                .to_string(),
        ),
    }
}

/// How long `init` waits for pytest to list the tests.
const COLLECT_LIMIT: Duration = Duration::from_secs(300);

/// What pytest said when asked where the tests are.
#[derive(Debug)]
pub enum Collected {
    /// The canonical IDs of every test pytest collects with no paths.
    Tests(Vec<String>),
    /// pytest ran but could not list the tests: the reason.
    Failed(String),
    /// Ctrl-C.
    Interrupted,
}

/// Ask pytest (`probe --collect-only -q`, with no paths, as a plain `pytest`
/// would collect) which tests the project has. Discovery goes through the
/// pytest framework itself, so `init` sees exactly what `offload run` will.
pub fn ask_pytest(project: &Path, probe: &str) -> Collected {
    let framework = crate::framework::pytest::PytestFramework::new(
        PytestConfig {
            paths: Vec::new(),
            command: Some(probe.to_string()),
            run_args: None,
            extra_args: Vec::new(),
            python: "python".into(),
            markers: None,
        },
        project.to_path_buf(),
    );
    let cancel = Cancel::new();
    {
        let c = cancel.clone();
        let _ = ctrlc::set_handler(move || {
            c.interrupt();
        });
        let c = cancel.clone();
        // Gives up on a collection that hangs; the thread ends with init.
        std::thread::spawn(move || {
            if !c.sleep(COLLECT_LIMIT) {
                c.raise(CancelLevel::Immediate);
            }
        });
    }
    let group = GroupConfig {
        name: "all".into(),
        retry_count: 0,
        filters: String::new(),
    };
    match framework.discover(&group, &cancel, None) {
        _ if cancel.was_interrupted() => Collected::Interrupted,
        _ if cancel.is_cancelled() => Collected::Failed(format!(
            "`{probe} --collect-only -q` did not finish within {} s",
            COLLECT_LIMIT.as_secs()
        )),
        Ok(d) if d.ids.is_empty() => {
            Collected::Failed(format!("`{probe} --collect-only -q` collected no tests"))
        }
        Ok(d) => Collected::Tests(d.ids),
        Err(e) => {
            let text = e.to_string();
            let text = text.strip_prefix("group `all`: ").unwrap_or(&text);
            Collected::Failed(text.to_string())
        }
    }
}

/// `addopts` of the pytest configuration pytest would use in `dir`
/// (pytest.ini, .pytest.ini, pyproject.toml, tox.ini, setup.cfg: the first
/// that has a pytest section), and that file's name.
pub fn pytest_addopts(dir: &Path) -> Option<(String, String)> {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    for (file, section) in [("pytest.ini", "pytest"), (".pytest.ini", "pytest")] {
        if let Some(text) = read(file) {
            // pytest.ini is used even without an addopts.
            return Some((
                file.into(),
                ini_value(&text, section, "addopts").unwrap_or_default(),
            ));
        }
    }
    if let Some(text) = read("pyproject.toml") {
        if let Ok(doc) = text.parse::<toml_edit::DocumentMut>() {
            if let Some(options) = doc
                .get("tool")
                .and_then(|t| t.get("pytest"))
                .and_then(|t| t.get("ini_options"))
            {
                let addopts = match options.get("addopts") {
                    Some(item) => match item.as_array() {
                        Some(a) => a
                            .iter()
                            .filter_map(|v| v.as_str())
                            .collect::<Vec<_>>()
                            .join(" "),
                        None => item.as_str().unwrap_or_default().to_string(),
                    },
                    None => String::new(),
                };
                return Some(("pyproject.toml".into(), addopts));
            }
        }
    }
    for (file, section) in [("tox.ini", "pytest"), ("setup.cfg", "tool:pytest")] {
        if let Some(text) = read(file) {
            if has_ini_section(&text, section) {
                return Some((
                    file.into(),
                    ini_value(&text, section, "addopts").unwrap_or_default(),
                ));
            }
        }
    }
    None
}

fn has_ini_section(text: &str, section: &str) -> bool {
    text.lines().any(|l| l.trim() == format!("[{section}]"))
}

/// The value of `key` in `[section]` of an INI file, continuation lines
/// (indented) joined with spaces.
fn ini_value(text: &str, section: &str, key: &str) -> Option<String> {
    let header = format!("[{section}]");
    let mut in_section = false;
    let mut value: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') && trimmed.ends_with(']') {
            if value.is_some() {
                break;
            }
            in_section = trimmed == header;
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some(v) = value.as_mut() {
            if line.starts_with([' ', '\t']) && !trimmed.is_empty() {
                if !v.is_empty() {
                    v.push(' ');
                }
                v.push_str(trimmed);
                continue;
            }
            break;
        }
        if let Some((k, v)) = trimmed.split_once(['=', ':']) {
            if k.trim() == key {
                value = Some(v.trim().to_string());
            }
        }
    }
    value
}

/// The pytest-xdist option in `addopts` that starts workers (`-n auto`,
/// `-n4`, `--numprocesses=2`), as written; `-n 0` starts none.
pub fn xdist_workers(addopts: &str) -> Option<String> {
    let words: Vec<&str> = addopts.split_whitespace().collect();
    let mut i = 0;
    while i < words.len() {
        let w = words[i].trim_matches(['"', '\'']);
        let (option, value) = if w == "-n" || w == "--numprocesses" {
            i += 1;
            (w, words.get(i).map(|v| v.trim_matches(['"', '\''])))
        } else if let Some(v) = w.strip_prefix("--numprocesses=") {
            ("--numprocesses", Some(v))
        } else if let Some(v) = w
            .strip_prefix("-n")
            .filter(|v| !v.is_empty() && !v.starts_with('-'))
        {
            ("-n", Some(v.trim_start_matches('=')))
        } else {
            i += 1;
            continue;
        };
        if let Some(v) = value.filter(|v| *v != "0") {
            return Some(format!("{option} {v}"));
        }
        i += 1;
    }
    None
}

/// A `package.json` script that runs Node's test runner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeScript {
    /// `test`, `test:unit`.
    pub name: String,
    /// Where it looks for test files: its path arguments (a glob's leading
    /// directories), or `.`.
    pub roots: Vec<String>,
    /// Its node options (`--experimental-vm-modules`, `--import tsx`),
    /// reporters and `--watch` left out.
    pub flags: Vec<String>,
    /// It names files with a glob: Node's default file names are used
    /// under the glob's directory instead.
    pub had_glob: bool,
}

/// Node options that take the next word as their value.
const NODE_VALUE_OPTIONS: &[&str] = &[
    "-r",
    "--require",
    "--import",
    "--loader",
    "--experimental-loader",
    "-C",
    "--conditions",
    "--env-file",
    "--test-name-pattern",
    "--test-skip-pattern",
    "--test-concurrency",
    "--test-timeout",
    "--test-shard",
    "--test-reporter",
    "--test-reporter-destination",
];

/// The `package.json` script of the project in `dir` that runs
/// `node … --test …`: `test` first, else the first other one.
pub fn node_test_script(dir: &Path) -> Option<NodeScript> {
    let text = std::fs::read_to_string(dir.join("package.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let scripts = json.get("scripts")?.as_object()?;
    let mut ordered: Vec<(&String, &serde_json::Value)> = scripts.iter().collect();
    ordered.sort_by_key(|(name, _)| *name != "test");
    ordered
        .into_iter()
        .find_map(|(name, command)| parse_node_test(name, command.as_str()?))
}

/// `node [options] --test [options] [paths]` in the script `command`.
fn parse_node_test(name: &str, command: &str) -> Option<NodeScript> {
    // The part of the script that runs node (`tsc && node --test`).
    let part = command
        .split(['&', ';', '|'])
        .find(|p| p.split_whitespace().any(|w| w == "--test"))?;
    let words: Vec<&str> = part.split_whitespace().collect();
    let start = words
        .iter()
        .position(|w| *w == "node" || w.ends_with("/node"))?;
    let (mut roots, mut flags, mut had_glob) = (Vec::new(), Vec::new(), false);
    let mut i = start + 1;
    let mut has_test = false;
    while i < words.len() {
        let w = words[i].trim_matches(['"', '\'']);
        let takes_value = NODE_VALUE_OPTIONS.contains(&w);
        let reporter = w.starts_with("--test-reporter") || w == "--watch";
        if w == "--test" {
            has_test = true;
        } else if w.starts_with('-') {
            if !reporter {
                flags.push(w.to_string());
            }
            if takes_value {
                i += 1;
                if let (Some(v), false) = (words.get(i), reporter) {
                    flags.push(v.trim_matches(['"', '\'']).to_string());
                }
            }
        } else if w.contains(['*', '?', '[', '{']) {
            had_glob = true;
            let fixed: Vec<&str> = w
                .split('/')
                .take_while(|c| !c.contains(['*', '?', '[', '{']))
                .collect();
            let dir = if fixed.is_empty() {
                ".".to_string()
            } else {
                fixed.join("/")
            };
            if !roots.contains(&dir) {
                roots.push(dir);
            }
        } else {
            roots.push(w.trim_end_matches('/').to_string());
        }
        i += 1;
    }
    if !has_test {
        return None;
    }
    if roots.is_empty() {
        roots.push(".".into());
    }
    Some(NodeScript {
        name: name.to_string(),
        roots,
        flags,
        had_glob,
    })
}

/// `node --version` (`v20.11.1`), when node runs.
pub fn node_version() -> Option<String> {
    let out = std::process::Command::new("node")
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The major version of `v20.11.1`.
pub fn node_major(version: &str) -> Option<u32> {
    version
        .trim_start_matches('v')
        .split('.')
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::test_project::{temp_project, touch};

    #[test]
    fn detects_the_project_kind() {
        let d = temp_project("kind");
        assert_eq!(detect(&d).0, DetectedKind::Default);
        touch(&d, "pkg/sub/tests/test_x.py", "");
        assert_eq!(
            detect(&d),
            (
                DetectedKind::Pytest,
                "detected from pytest test files such as pkg/sub/tests/test_x.py".into()
            )
        );
        touch(
            &d,
            "package.json",
            r#"{"scripts": {"lint": "eslint .", "test": "node --test"}}"#,
        );
        assert_eq!(
            detect(&d),
            (
                DetectedKind::Node,
                "detected from `node --test` in package.json's \"test\" script".into()
            )
        );
        touch(&d, "Cargo.toml", "[package]");
        assert_eq!(detect(&d).0, DetectedKind::Cargo);
        touch(&d, "pyproject.toml", "[tool.pytest.ini_options]\n");
        assert_eq!(
            detect(&d),
            (
                DetectedKind::Pytest,
                "detected from [tool.pytest] in pyproject.toml".into()
            )
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn python_test_files_are_found_inside_packages_but_not_in_environments() {
        let d = temp_project("walk");
        for f in [
            "networkx/algorithms/tests/test_cycles.py",
            "networkx/tests/test_import.py",
            "networkx/utils/misc_test.py",
            "networkx/utils/helpers.py",
            ".venv/lib/site/test_venv.py",
            "node_modules/x/test_js.py",
            "build/lib/test_built.py",
            "test_top.py",
        ] {
            touch(&d, f, "");
        }
        let found = python_test_files(&d);
        assert_eq!(
            found,
            [
                "networkx/algorithms/tests/test_cycles.py",
                "networkx/tests/test_import.py",
                "networkx/utils/misc_test.py",
                "test_top.py",
            ]
        );
        assert_eq!(
            top_levels(found.iter().map(String::as_str)),
            [("networkx/".to_string(), 3), ("test_top.py".to_string(), 1)]
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn addopts_are_read_from_the_file_pytest_would_use() {
        let d = temp_project("addopts");
        assert_eq!(pytest_addopts(&d), None);
        touch(
            &d,
            "setup.cfg",
            "[metadata]\nname = x\n[tool:pytest]\naddopts =\n    -ra\n    -n auto\n[flake8]\nx = 1\n",
        );
        assert_eq!(
            pytest_addopts(&d),
            Some(("setup.cfg".into(), "-ra -n auto".into()))
        );
        touch(
            &d,
            "pyproject.toml",
            "[tool.pytest.ini_options]\naddopts = [\"-ra\", \"--numprocesses=4\"]\n",
        );
        assert_eq!(
            pytest_addopts(&d),
            Some(("pyproject.toml".into(), "-ra --numprocesses=4".into()))
        );
        touch(&d, "pytest.ini", "[pytest]\ntestpaths = tests\n");
        assert_eq!(
            pytest_addopts(&d),
            Some(("pytest.ini".into(), String::new()))
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn xdist_workers_are_found_in_addopts() {
        assert_eq!(xdist_workers("-ra -n auto"), Some("-n auto".into()));
        assert_eq!(xdist_workers("-n4 -q"), Some("-n 4".into()));
        assert_eq!(
            xdist_workers("--numprocesses=logical"),
            Some("--numprocesses logical".into())
        );
        assert_eq!(
            xdist_workers("--numprocesses 2"),
            Some("--numprocesses 2".into())
        );
        assert_eq!(xdist_workers("-n 0 -ra"), None);
        assert_eq!(
            xdist_workers("-ra --dist loadscope -nauto"),
            Some("-n auto".into())
        );
        assert_eq!(xdist_workers("-ra --no-header"), None);
        assert_eq!(xdist_workers(""), None);
    }

    #[test]
    fn node_test_scripts_give_roots_and_flags() {
        let s = parse_node_test("test", "node --test").unwrap();
        assert_eq!(
            (s.roots, s.flags, s.had_glob),
            (vec![".".into()], vec![], false)
        );
        let s = parse_node_test(
            "test",
            "tsc && node --experimental-vm-modules --test --test-reporter spec test/ src/",
        )
        .unwrap();
        assert_eq!(s.roots, ["test", "src"]);
        assert_eq!(s.flags, ["--experimental-vm-modules"]);
        let s = parse_node_test("t", "node --import tsx --test \"test/**/*.test.js\"").unwrap();
        assert_eq!(s.roots, ["test"]);
        assert_eq!(s.flags, ["--import", "tsx"]);
        assert!(s.had_glob);
        assert_eq!(parse_node_test("t", "jest --ci"), None);
        assert_eq!(parse_node_test("t", "node scripts/test.js"), None);
        assert_eq!(node_major("v20.11.1"), Some(20));
    }
}
