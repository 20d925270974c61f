//! `offload init`: write a commented `offload.toml` for the project next to
//! it — one that passes `offload validate` and runs as written.
//!
//! The framework is detected from the project unless `-f` names it; the
//! provider is `local` (batches run here) or `default` (a working example of
//! shell-driven sandboxes: each sandbox is a copy of the project in a temporary
//! directory). The file is built with toml_edit, so it is always valid TOML.

use std::path::{Path, PathBuf};

use toml_edit::{value, Array, DocumentMut, Item, Table};

use crate::cli::InitArgs;
use crate::error::{io_error, Error, Result};
use crate::Verdict;

/// Where batches run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitProvider {
    Local,
    /// Directory sandboxes driven through the `default` provider's commands.
    Directory,
}

/// What runs the tests, with what the template needs to know about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InitFramework {
    Pytest { command: String, paths: Vec<String> },
    Cargo,
    Default,
}

/// Write the template to `config_path` (the global `-c`, default `offload.toml`).
pub fn init(config_path: &Path, args: &InitArgs) -> Result<Verdict> {
    let provider = parse_provider(&args.provider)?;
    let project = project_dir(config_path);
    if !project.is_dir() {
        return Err(Error::new(format!(
            "cannot write {}: directory {} does not exist; create it first or pass another path with -c",
            config_path.display(),
            project.display()
        )));
    }
    if config_path.exists() && !args.force {
        return Err(Error::new(format!(
            "{} already exists; not overwriting it. Edit it by hand, or run `{}` to replace it",
            config_path.display(),
            command_line(config_path, "init --force")
        )));
    }

    let (framework, reason) = match &args.framework {
        Some(name) => (
            parse_framework(name, &project)?,
            format!("chosen with -f {name}"),
        ),
        None => {
            let (kind, reason) = detect(&project);
            (framework_for(kind, &project), reason)
        }
    };
    let text = render_template(provider, &framework, &reason);
    std::fs::write(config_path, &text)
        .map_err(|e| io_error(format!("cannot write {}", config_path.display()), &e))?;

    let provider_name = match provider {
        InitProvider::Local => "local provider",
        InitProvider::Directory => "default provider (directory sandboxes)",
    };
    println!(
        "Created {}: {} framework ({reason}), {provider_name}.",
        config_path.display(),
        framework_name(&framework)
    );
    if let InitFramework::Pytest { command, .. } = &framework {
        println!("pytest runs as: {command}");
    }
    println!();
    println!("Edit the configuration as needed, then run:");
    println!("  {}", command_line(config_path, "doctor"));
    println!("  {}", command_line(config_path, "run"));
    Ok(Verdict::Success)
}

/// `offload run`, or `offload -c path run` when the config is not the default.
fn command_line(config_path: &Path, sub: &str) -> String {
    if config_path == Path::new("offload.toml") {
        format!("offload {sub}")
    } else {
        format!(
            "offload -c {} {sub}",
            crate::process::shell_quote(&config_path.display().to_string())
        )
    }
}

/// The directory the config file goes in: the project it describes.
fn project_dir(config_path: &Path) -> PathBuf {
    match config_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn parse_provider(name: &str) -> Result<InitProvider> {
    match name {
        "local" => Ok(InitProvider::Local),
        "default" => Ok(InitProvider::Directory),
        other => Err(Error::new(format!(
            "unknown provider \"{other}\" for `offload init -p`; expected local or default \
             (for Modal, write [provider] type = \"modal\" by hand: see the README's providers section)"
        ))),
    }
}

fn parse_framework(name: &str, project: &Path) -> Result<InitFramework> {
    let kind = match name {
        "pytest" => DetectedKind::Pytest,
        "cargo" | "nextest" => DetectedKind::Cargo,
        "default" => DetectedKind::Default,
        other => {
            return Err(Error::new(format!(
                "unknown framework \"{other}\" for `offload init -f`; expected pytest, cargo (or nextest) or default"
            )))
        }
    };
    Ok(framework_for(kind, project))
}

fn framework_name(f: &InitFramework) -> &'static str {
    match f {
        InitFramework::Pytest { .. } => "pytest",
        InitFramework::Cargo => "cargo",
        InitFramework::Default => "default",
    }
}

/// The kind of project found, before the details are worked out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetectedKind {
    Pytest,
    Cargo,
    Default,
}

/// Which framework the project in `dir` uses, and the evidence (for the
/// message and the file's header). pytest configuration wins over a
/// `Cargo.toml` (a Rust extension with Python tests is a pytest project);
/// a `tests/` directory of `test_*.py` files counts when nothing else does.
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
    for tests in ["tests", "test"] {
        if has_python_tests(&dir.join(tests), 2) {
            return (
                DetectedKind::Pytest,
                format!("detected from test_*.py files in {tests}/"),
            );
        }
    }
    (
        DetectedKind::Default,
        "no pytest or cargo project found".into(),
    )
}

/// Whether `dir` (or its subdirectories, `depth` levels down) holds a
/// `test_*.py` or `*_test.py` file.
fn has_python_tests(dir: &Path, depth: usize) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if path.is_dir() {
            if depth > 0 && !name.starts_with('.') && has_python_tests(&path, depth - 1) {
                return true;
            }
        } else if name.ends_with(".py") && (name.starts_with("test_") || name.ends_with("_test.py"))
        {
            return true;
        }
    }
    false
}

fn framework_for(kind: DetectedKind, project: &Path) -> InitFramework {
    match kind {
        DetectedKind::Pytest => InitFramework::Pytest {
            command: pytest_command(project),
            paths: vec![pytest_path(project)],
        },
        DetectedKind::Cargo => InitFramework::Cargo,
        DetectedKind::Default => InitFramework::Default,
    }
}

fn pytest_path(project: &Path) -> String {
    ["tests", "test"]
        .into_iter()
        .find(|d| project.join(d).is_dir())
        .unwrap_or(".")
        .to_string()
}

/// How to start pytest in this project: `uv run pytest` with a uv lock
/// file, the project's own virtualenv when it has one, else the first
/// Python on PATH that can import pytest (else `python3 -m pytest`, which
/// `offload doctor` will then report as missing).
fn pytest_command(project: &Path) -> String {
    if project.join("uv.lock").is_file() {
        return "uv run pytest".into();
    }
    for venv in [".venv", "venv"] {
        if project.join(venv).join("bin").join("python").is_file() {
            return format!("{venv}/bin/python -m pytest");
        }
    }
    for python in ["python", "python3"] {
        let imports_pytest = std::process::Command::new(python)
            .args(["-c", "import pytest"])
            .current_dir(project)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if imports_pytest {
            return format!("{python} -m pytest");
        }
    }
    "python3 -m pytest".into()
}

/// Set `key = v` in `table` with `comment` (one or more lines) above it.
fn entry(table: &mut Table, key: &str, v: impl Into<Item>, comment: &str) {
    table.insert(key, v.into());
    if !comment.is_empty() {
        if let Some(mut k) = table.key_mut(key) {
            k.leaf_decor_mut().set_prefix(comment_lines(comment));
        }
    }
}

fn comment_lines(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                "#\n".to_string()
            } else {
                format!("# {l}\n")
            }
        })
        .collect()
}

/// A table with a comment block above its header.
fn section(comment: &str) -> Table {
    let mut t = Table::new();
    t.decor_mut()
        .set_prefix(format!("\n{}", comment_lines(comment)));
    t
}

fn string_array(items: &[&str]) -> Item {
    let mut a = Array::new();
    for i in items {
        a.push(*i);
    }
    value(a)
}

/// The directory-sandbox example for the `default` provider: every command
/// is plain POSIX sh. (`$$` is the config's escape for a literal `$`.)
const CREATE_COMMAND: &str =
    "d=$(mktemp -d /tmp/offload-sandbox.XXXXXX) && cp -R . \"$d\" && echo \"$d\"";
const EXEC_COMMAND: &str = "cd {sandbox_id} && sh -c {command}";
const DOWNLOAD_COMMAND: &str = "for p in {paths}; do r=$${p%%:*}; l=$${p#*:}; case $r in /*) ;; *) r={sandbox_id}/$r ;; esac; cp \"$r\" \"$l\" || exit 1; done";
const DESTROY_COMMAND: &str =
    "case {sandbox_id} in */offload-sandbox.*) rm -rf {sandbox_id} ;; *) exit 1 ;; esac";

/// The `default` framework example: every `tests/test_*.sh` is a test; the
/// run command runs each and writes a JUnit file itself.
const DISCOVER_COMMAND: &str =
    "if [ -d tests ]; then find tests -type f -name 'test_*.sh' {filters} | sort; fi";
const RUN_COMMAND: &str = "( echo '<testsuite name=\"scripts\">'; for t in {tests}; do if sh \"$t\" >&2; then echo \"<testcase name=\\\"$t\\\"/>\"; else echo \"<testcase name=\\\"$t\\\"><failure message=\\\"exit code $?\\\"/></testcase>\"; fi; done; echo '</testsuite>' ) > {result_file}";

/// The whole file.
pub fn render_template(provider: InitProvider, framework: &InitFramework, reason: &str) -> String {
    let mut doc = DocumentMut::new();

    // The file's header comment sits above the first section.
    let mut offload = Table::new();
    offload.decor_mut().set_prefix(comment_lines(&format!(
        "Offload configuration, written by `offload init` ({} framework, {reason}).\n\
         Check it with `offload validate` and `offload doctor`; the README describes every field.\n\n\
         [offload]: how the run is shaped.",
        framework_name(framework)
    )));
    entry(
        &mut offload,
        "max_parallel",
        value(4),
        "How many sandboxes run batches at the same time.",
    );
    entry(
        &mut offload,
        "test_timeout_secs",
        value(600),
        "A batch running longer than this many seconds is killed; its unfinished tests are re-run\nto find the one that hangs, which is reported as failed.",
    );
    let root_comment = match provider {
        InitProvider::Local => "The project's directory for the tests (OFFLOAD_ROOT); \".\" is where this file is.",
        InitProvider::Directory => {
            "The project's directory inside a sandbox (OFFLOAD_ROOT), where batches run. Here \".\":\n\
             exec_command below already enters the sandbox's copy of the project."
        }
    };
    entry(
        &mut offload,
        "sandbox_project_root",
        value("."),
        root_comment,
    );
    doc.insert("offload", Item::Table(offload));

    let provider_table = match provider {
        InitProvider::Local => {
            let mut t = section(
                "[provider]: where batches run. \"local\": child processes on this machine.\n\
                 Environment for every test process, e.g.: env = { RUST_BACKTRACE = \"1\" }",
            );
            entry(&mut t, "type", value("local"), "");
            entry(
                &mut t,
                "working_dir",
                value("."),
                "Directory the tests run in, relative to this file.",
            );
            entry(
                &mut t,
                "shell",
                value("/bin/sh"),
                "Shell that runs each batch command.",
            );
            t
        }
        InitProvider::Directory => {
            let mut t = section(
                "[provider]: where batches run. \"default\": sandboxes driven by shell commands.\n\
                 This example makes each sandbox a copy of the project in a temporary directory;\n\
                 replace the commands with your own (ssh, docker, a cloud API) to run elsewhere.\n\
                 {sandbox_id}: what create_command printed. {command}: the batch, one quoted argument.\n\
                 {paths}: 'remote':'local' pairs of files to copy back. $$ is a literal $.",
            );
            entry(&mut t, "type", value("default"), "");
            entry(
                &mut t,
                "working_dir",
                value("."),
                "Directory the commands below run in (locally), relative to this file.",
            );
            entry(
                &mut t,
                "create_command",
                value(CREATE_COMMAND),
                "Create one sandbox and print its ID (here: the directory).",
            );
            entry(
                &mut t,
                "exec_command",
                value(EXEC_COMMAND),
                "Run a batch in the sandbox.",
            );
            entry(
                &mut t,
                "download_command",
                value(DOWNLOAD_COMMAND),
                "Copy result files out of the sandbox.",
            );
            entry(
                &mut t,
                "destroy_command",
                value(DESTROY_COMMAND),
                "Remove the sandbox (only directories this example created).",
            );
            entry(
                &mut t,
                "timeout_secs",
                value(600),
                "Timeout of each command above, in seconds.",
            );
            t
        }
    };
    doc.insert("provider", Item::Table(provider_table));

    let framework_table = match framework {
        InitFramework::Pytest { command, paths } => {
            let mut t = section("[framework]: how tests are found and run.");
            entry(&mut t, "type", value("pytest"), "");
            let path_refs: Vec<&str> = paths.iter().map(String::as_str).collect();
            entry(
                &mut t,
                "paths",
                string_array(&path_refs),
                "Where pytest collects tests, relative to the project root.",
            );
            entry(
                &mut t,
                "command",
                value(command.as_str()),
                "How to start pytest (e.g. \"uv run pytest\", \".venv/bin/python -m pytest\").\n\
                 Extra pytest arguments for batches only (not discovery), e.g.:\n\
                 run_args = \"-p no:cacheprovider\"",
            );
            t
        }
        InitFramework::Cargo => {
            let mut t = section(
                "[framework]: how tests are found and run. \"cargo\" uses cargo-nextest:\n\
                 cargo install cargo-nextest --locked\n\
                 Options: package = \"my-crate\", features = [\"a\"], include_ignored = true",
            );
            entry(&mut t, "type", value("cargo"), "");
            t
        }
        InitFramework::Default => {
            let mut t = section(
                "[framework]: how tests are found and run. \"default\": any runner, through commands.\n\
                 This example treats every tests/test_*.sh script as a test (exit code 0 = pass).",
            );
            entry(&mut t, "type", value("default"), "");
            entry(
                &mut t,
                "discover_command",
                value(DISCOVER_COMMAND),
                "Print one test ID per line. {filters} is replaced by the group's filters.",
            );
            entry(
                &mut t,
                "run_command",
                value(RUN_COMMAND),
                "Run the tests {tests} (each one shell-quoted) and write JUnit XML to {result_file}.",
            );
            entry(
                &mut t,
                "test_id_format",
                value("{name}"),
                "How a JUnit testcase's {name} and {classname} make the discovered ID.",
            );
            t
        }
    };
    doc.insert("framework", Item::Table(framework_table));

    let filters_example = match framework {
        InitFramework::Pytest { .. } => "filters = \"-m 'not slow'\"",
        InitFramework::Cargo => "filters = \"-E 'not test(slow)'\"",
        InitFramework::Default => "filters = \"-name 'test_slow*'\"",
    };
    let mut groups = Table::new();
    groups.set_implicit(true);
    let mut all = section(&format!(
        "[groups.NAME]: each group is discovered on its own, with its own filters and retries.\n\
         Add more, e.g. [groups.slow] with {filters_example}"
    ));
    entry(
        &mut all,
        "retry_count",
        value(1),
        "Re-run a failed test up to this many times; a pass on a retry marks it flaky (exit code 2).",
    );
    entry(
        &mut all,
        "filters",
        value(""),
        &format!("Passed to discovery, e.g. {filters_example}"),
    );
    groups.insert("all", Item::Table(all));
    doc.insert("groups", Item::Table(groups));

    let mut report = section("[report]: what is written after the run.");
    entry(
        &mut report,
        "output_dir",
        value("test-results"),
        "junit.xml, logs/batch-N.*, timeline.html (and trace.json with `run --trace`) go here.",
    );
    entry(&mut report, "junit", value(true), "");
    entry(&mut report, "junit_file", value("junit.xml"), "");
    doc.insert("report", Item::Table(report));

    doc.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_project(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("offload-init-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn touch(dir: &Path, file: &str, text: &str) {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn detects_the_project_kind() {
        let d = temp_project("detect");
        assert_eq!(detect(&d).0, DetectedKind::Default);
        touch(&d, "tests/unit/test_x.py", "");
        assert_eq!(
            detect(&d),
            (
                DetectedKind::Pytest,
                "detected from test_*.py files in tests/".into()
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
        touch(&d, "uv.lock", "");
        assert_eq!(
            framework_for(DetectedKind::Pytest, &d),
            InitFramework::Pytest {
                command: "uv run pytest".into(),
                paths: vec!["tests".into()]
            }
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    fn all_templates() -> Vec<(String, String)> {
        let frameworks = [
            InitFramework::Pytest {
                command: "python -m pytest".into(),
                paths: vec!["tests".into()],
            },
            InitFramework::Cargo,
            InitFramework::Default,
        ];
        let mut out = Vec::new();
        for p in [InitProvider::Local, InitProvider::Directory] {
            for f in &frameworks {
                out.push((
                    format!("{p:?}/{}", framework_name(f)),
                    render_template(p, f, "a test"),
                ));
            }
        }
        out
    }

    #[test]
    fn every_template_passes_the_config_loader() {
        for (what, text) in all_templates() {
            let loaded = crate::config::parse_str(&text, Path::new("/project/offload.toml"))
                .unwrap_or_else(|e| panic!("{what}: {e}\n{text}"));
            assert!(
                loaded.warnings.is_empty(),
                "{what}: {:?}\n{text}",
                loaded.warnings
            );
            assert_eq!(loaded.config.groups.len(), 1, "{what}");
        }
    }

    #[test]
    fn template_is_commented_and_round_trips_through_toml() {
        for (what, text) in all_templates() {
            let doc: DocumentMut = text.parse().unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(
                doc["groups"]["all"]["retry_count"].as_integer(),
                Some(1),
                "{what}"
            );
            assert!(text.starts_with("# Offload configuration"), "{what}");
            assert!(
                text.matches("\n# ").count() >= 8,
                "{what}: few comments\n{text}"
            );
        }
    }

    #[test]
    fn local_pytest_template_snapshot_head() {
        let text = render_template(
            InitProvider::Local,
            &InitFramework::Pytest {
                command: "python -m pytest".into(),
                paths: vec!["tests".into()],
            },
            "detected from pytest.ini",
        );
        let expected_start =
            "# Offload configuration, written by `offload init` (pytest framework, detected from pytest.ini).
# Check it with `offload validate` and `offload doctor`; the README describes every field.
#
# [offload]: how the run is shaped.
[offload]
# How many sandboxes run batches at the same time.
max_parallel = 4
";
        assert!(text.starts_with(expected_start), "{text}");
        assert!(
            text.contains("\n[framework]\ntype = \"pytest\"\n"),
            "{text}"
        );
        assert!(text.contains("command = \"python -m pytest\"\n"), "{text}");
    }

    /// The directory-sandbox commands really work with plain sh: create a
    /// sandbox, run a command in it, copy a file out, destroy it.
    #[test]
    fn directory_sandbox_commands_work_with_sh() {
        let project = temp_project("dirsandbox");
        touch(&project, "hello.txt", "hi\n");
        let sh = |script: &str| {
            let out = std::process::Command::new("/bin/sh")
                .args(["-c", script])
                .current_dir(&project)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{script}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        let unescape = |s: &str| s.replace("$$", "$");
        let id = sh(CREATE_COMMAND).trim().to_string();
        assert!(Path::new(&id).join("hello.txt").is_file(), "{id}");
        let quoted_id = crate::process::shell_quote(&id);
        let inner = "cd . && mkdir -p res && cat hello.txt > res/out.txt";
        sh(&EXEC_COMMAND
            .replace("{sandbox_id}", &quoted_id)
            .replace("{command}", &crate::process::shell_quote(inner)));
        let local = project.join("copied.txt");
        let pairs = format!(
            "{}:{}",
            crate::process::shell_quote("res/out.txt"),
            crate::process::shell_quote(&local.display().to_string())
        );
        sh(&unescape(DOWNLOAD_COMMAND)
            .replace("{sandbox_id}", &quoted_id)
            .replace("{paths}", &pairs));
        assert_eq!(std::fs::read_to_string(&local).unwrap(), "hi\n");
        sh(&DESTROY_COMMAND.replace("{sandbox_id}", &quoted_id));
        assert!(!Path::new(&id).exists());
        let _ = std::fs::remove_dir_all(&project);
    }

    /// The `default` framework example discovers `tests/test_*.sh` and
    /// writes JUnit that maps back to the discovered IDs.
    #[test]
    fn default_framework_example_discovers_and_writes_junit() {
        let project = temp_project("defaultfw");
        touch(&project, "tests/test_ok.sh", "exit 0\n");
        touch(&project, "tests/test_bad.sh", "echo oops; exit 3\n");
        let run = |script: &str| {
            std::process::Command::new("/bin/sh")
                .args(["-c", script])
                .current_dir(&project)
                .output()
                .unwrap()
        };
        let found = run(&DISCOVER_COMMAND.replace("{filters}", ""));
        assert_eq!(
            String::from_utf8_lossy(&found.stdout),
            "tests/test_bad.sh\ntests/test_ok.sh\n"
        );
        let junit = project.join("out.xml");
        let script = RUN_COMMAND
            .replace(
                "{result_file}",
                &crate::process::shell_quote(&junit.display().to_string()),
            )
            .replace("{tests}", "'tests/test_bad.sh' 'tests/test_ok.sh'");
        let out = run(&script);
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
        assert_eq!(
            std::fs::read_to_string(&junit).unwrap(),
            "<testsuite name=\"scripts\">\n\
             <testcase name=\"tests/test_bad.sh\"><failure message=\"exit code 3\"/></testcase>\n\
             <testcase name=\"tests/test_ok.sh\"/>\n\
             </testsuite>\n"
        );
        let _ = std::fs::remove_dir_all(&project);
    }
}
