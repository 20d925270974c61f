//! `offload init`: write a commented `offload.toml` for the project next to
//! it — one that passes `offload validate` and runs as written.
//!
//! The framework is detected from the project unless `-f` names it
//! (`detect.rs`): for pytest, pytest itself is asked where the tests are,
//! and xdist in the project's `addopts` is turned off for batches; a
//! `node --test` project gets the `default` framework driving Node's test
//! runner. The provider is `local` (batches run here) or `default` (a
//! working example of shell-driven sandboxes: each sandbox is a copy of the
//! project in a temporary directory). The file itself is `template.rs`.
//! What init could not find out (no pytest, no node) is a warning, never a
//! silent guess.

mod detect;
mod template;

use std::path::{Path, PathBuf};

use crate::cli::InitArgs;
use crate::console::{errln, outln};
use crate::error::{io_error, Error, Result};
use crate::Verdict;

pub use detect::DetectedKind;
pub use template::render_template;

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
    Pytest(PytestSetup),
    Cargo,
    /// The `default` framework driving `node --test`, one test per file.
    Node(NodeSetup),
    /// The `default` framework's example: every `tests/test_*.sh` is a test.
    Default,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PytestSetup {
    /// `[framework] command`.
    pub command: String,
    /// `[framework] paths`; empty: pytest's own choice (its `testpaths`,
    /// else the whole project), which is where pytest was asked.
    pub paths: Vec<String>,
    /// `-n 0` when the project's `addopts` start xdist workers.
    pub run_args: Option<String>,
    /// What init found out, for the file's comments.
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSetup {
    /// Where test files are looked for (`.`, or the script's paths).
    pub roots: Vec<String>,
    /// The script's own node options, kept for every run.
    pub flags: Vec<String>,
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

    let (kind, reason) = match &args.framework {
        Some(name) => (parse_framework(name)?, format!("chosen with -f {name}")),
        None => detect::detect(&project),
    };
    let mut findings = Findings::default();
    let Some(framework) = framework_for(kind, &project, &mut findings) else {
        errln!("interrupted while pytest was collecting the tests; nothing written");
        return Ok(Verdict::Interrupted);
    };
    let text = render_template(provider, &framework, &reason);
    std::fs::write(config_path, &text)
        .map_err(|e| io_error(format!("cannot write {}", config_path.display()), &e))?;

    for w in &findings.warnings {
        errln!("warning: {w}");
    }
    let provider_name = match provider {
        InitProvider::Local => "local provider",
        InitProvider::Directory => "default provider (directory sandboxes)",
    };
    outln!(
        "Created {}: {} framework ({reason}), {provider_name}.",
        config_path.display(),
        framework_name(&framework)
    );
    match &framework {
        InitFramework::Pytest(setup) => outln!("pytest runs as: {}", setup.command),
        InitFramework::Node(_) => outln!("Each test file runs as: node --test FILE"),
        _ => {}
    }
    for line in &findings.facts {
        outln!("{line}");
    }
    outln!();
    outln!("Edit the configuration as needed, then run:");
    outln!("  {}", command_line(config_path, "doctor"));
    outln!("  {}", command_line(config_path, "run"));
    outln!();
    outln!(
        "{}",
        version_control_advice(config_path, &project).trim_end()
    );
    Ok(Verdict::Success)
}

/// What init learnt on the way: facts for stdout, warnings for stderr.
#[derive(Debug, Default)]
struct Findings {
    facts: Vec<String>,
    warnings: Vec<String>,
}

/// What to commit and what to ignore, for the config at `config_path`.
fn version_control_advice(config_path: &Path, project: &Path) -> String {
    let stem = config_path
        .file_stem()
        .map_or("offload".into(), |s| s.to_string_lossy().into_owned());
    let in_dir = |name: &str| -> String {
        if project == Path::new(".") {
            name.to_string()
        } else {
            project.join(name).display().to_string()
        }
    };
    let history = in_dir(&format!("{stem}.history.tsv"));
    let results = in_dir("test-results/");
    let gitignore = std::fs::read_to_string(project.join(".gitignore")).unwrap_or_default();
    let ignored = gitignore
        .lines()
        .any(|l| l.trim().trim_matches('/') == "test-results");
    format!(
        "Commit {} and, after the first run, {history}: the tests' durations, which plan the\n\
         next runs' batches (on a merge conflict keep both sides; see the README).\n\
         Do not commit {results}: the last run's reports and logs{}.\n",
        config_path.display(),
        if ignored {
            " (.gitignore already ignores it)"
        } else {
            "; add `test-results/` to .gitignore"
        }
    )
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

fn parse_framework(name: &str) -> Result<DetectedKind> {
    match name {
        "pytest" => Ok(DetectedKind::Pytest),
        "cargo" | "nextest" => Ok(DetectedKind::Cargo),
        "node" => Ok(DetectedKind::Node),
        "default" => Ok(DetectedKind::Default),
        other => Err(Error::new(format!(
            "unknown framework \"{other}\" for `offload init -f`; expected pytest, cargo (or \
             nextest), node or default"
        ))),
    }
}

/// The `type` the config gets.
pub fn framework_name(f: &InitFramework) -> &'static str {
    match f {
        InitFramework::Pytest(_) => "pytest",
        InitFramework::Cargo => "cargo",
        InitFramework::Node(_) | InitFramework::Default => "default",
    }
}

/// The details of `kind` in `project`; `None` when the user interrupted.
fn framework_for(
    kind: DetectedKind,
    project: &Path,
    findings: &mut Findings,
) -> Option<InitFramework> {
    Some(match kind {
        DetectedKind::Pytest => InitFramework::Pytest(pytest_setup(project, findings)?),
        DetectedKind::Cargo => InitFramework::Cargo,
        DetectedKind::Node => InitFramework::Node(node_setup(project, findings)),
        DetectedKind::Default => InitFramework::Default,
    })
}

/// pytest's command, where it finds the tests (asked), and run_args.
fn pytest_setup(project: &Path, findings: &mut Findings) -> Option<PytestSetup> {
    let runner = detect::pytest_runner(project);
    let mut notes = Vec::new();
    if let Some(missing) = &runner.missing {
        findings.warnings.push(missing.clone());
    }
    let collected = runner
        .probe
        .as_deref()
        .map(|probe| (probe, detect::ask_pytest(project, probe)));
    let paths = match collected {
        Some((_, detect::Collected::Interrupted)) => return None,
        Some((probe, detect::Collected::Tests(ids))) => {
            let files = ids.iter().map(|id| id.split("::").next().unwrap_or(id));
            let places = detect::top_levels(files);
            let found = format!(
                "pytest collects {} (asked with `{probe} --collect-only -q`)",
                where_(ids.len(), "test", &places)
            );
            findings.facts.push(format!("{found}."));
            notes.push(format!("When this file was written, {found}."));
            Vec::new()
        }
        other => {
            // pytest could not be asked, or could not list the tests: fall
            // back to its default file names, and say so.
            if let Some((_, detect::Collected::Failed(why))) = other {
                findings
                    .warnings
                    .push(format!("pytest could not list the tests: {why}"));
            }
            let files = detect::python_test_files(project);
            let places = detect::top_levels(files.iter().map(String::as_str));
            if places.is_empty() {
                findings.warnings.push(
                    "no test_*.py or *_test.py files found either; paths = [\"tests\"] is a guess: \
                     set [framework] paths, and check with `offload collect`"
                        .into(),
                );
                notes.push("paths was guessed: no pytest test files were found.".into());
                vec!["tests".to_string()]
            } else {
                let paths: Vec<String> = places
                    .iter()
                    .map(|(p, _)| p.trim_end_matches('/').to_string())
                    .collect();
                findings.warnings.push(format!(
                    "paths = {paths:?} comes from the test file names ({}), not from pytest: \
                     check it with `offload collect`",
                    where_(files.len(), "file", &places)
                ));
                notes.push(format!(
                    "paths comes from {}: pytest could not be asked.",
                    where_(files.len(), "test file", &places)
                ));
                paths
            }
        }
    };
    let run_args = detect::pytest_addopts(project).and_then(|(file, addopts)| {
        let workers = detect::xdist_workers(&addopts)?;
        findings.facts.push(format!(
            "{file} sets addopts `{workers}`: run_args = \"-n 0\" keeps every batch from \
             starting its own pytest-xdist workers (Offload runs batches in parallel itself)."
        ));
        Some("-n 0".to_string())
    });
    if runner.missing.is_some() {
        notes.push(format!(
            "No pytest-capable Python was found when this file was written: install pytest, or\n\
             change `command`. ({})",
            runner.command
        ));
    }
    Some(PytestSetup {
        command: runner.command,
        paths,
        run_args,
        notes,
    })
}

/// `12 tests in networkx/ (10), tests/ (2)`.
fn where_(n: usize, what: &str, places: &[(String, usize)]) -> String {
    let plural = if n == 1 { "" } else { "s" };
    let shown: Vec<String> = places
        .iter()
        .take(5)
        .map(|(p, k)| {
            if places.len() == 1 {
                p.clone()
            } else {
                format!("{p} ({k})")
            }
        })
        .collect();
    let more = match places.len() {
        0..=5 => String::new(),
        n => format!(" and {} more", n - 5),
    };
    format!("{n} {what}{plural} in {}{more}", shown.join(", "))
}

/// Where `node --test` looks, its options, and a warning without node.
fn node_setup(project: &Path, findings: &mut Findings) -> NodeSetup {
    let script = detect::node_test_script(project);
    match detect::node_version() {
        None => findings.warnings.push(
            "node was not found on PATH: the config runs `node --test`; install Node.js 20 or \
             later"
                .into(),
        ),
        Some(v) if detect::node_major(&v).is_some_and(|m| m < 20) => {
            findings.warnings.push(format!(
                "node {v} is older than 20; its test runner may differ: Node.js 20 or later is \
                 what this config was written for"
            ))
        }
        Some(_) => {}
    }
    match script {
        Some(s) => {
            if s.had_glob {
                findings.warnings.push(format!(
                    "package.json's \"{}\" script names its test files with a glob; the config \
                     looks for Node's default test file names under {} instead: check with \
                     `offload collect`",
                    s.name,
                    s.roots.join(" ")
                ));
            }
            NodeSetup {
                roots: s.roots,
                flags: s.flags,
            }
        }
        None => NodeSetup {
            roots: vec![".".into()],
            flags: Vec::new(),
        },
    }
}

/// Throwaway projects for the unit tests of `init`'s parts.
#[cfg(test)]
pub(super) mod test_project {
    use std::path::{Path, PathBuf};

    pub fn temp_project(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("offload-init-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    pub fn touch(dir: &Path, file: &str, text: &str) {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_tests_are_is_said_briefly() {
        assert_eq!(
            where_(
                12,
                "test",
                &[("networkx/".into(), 10), ("tests/".into(), 2)]
            ),
            "12 tests in networkx/ (10), tests/ (2)"
        );
        assert_eq!(
            where_(1, "test", &[("tests/".into(), 1)]),
            "1 test in tests/"
        );
        let many: Vec<(String, usize)> = (0..7).map(|i| (format!("d{i}/"), 1)).collect();
        assert!(where_(7, "file", &many).ends_with("d4/ (1) and 2 more"));
    }

    #[test]
    fn the_advice_names_the_history_file_and_the_results() {
        let dir = std::env::temp_dir().join(format!("offload-init-vc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("ci.toml");
        let text = version_control_advice(&config, &dir);
        assert!(
            text.contains(&format!("{}/ci.history.tsv", dir.display())),
            "{text}"
        );
        assert!(text.contains("add `test-results/` to .gitignore"), "{text}");
        std::fs::write(dir.join(".gitignore"), "/target\n/test-results\n").unwrap();
        assert!(version_control_advice(&config, &dir).contains("already ignores it"));
        let text = version_control_advice(Path::new("offload.toml"), Path::new("."));
        assert!(
            text.starts_with("Commit offload.toml and, after the first run, offload.history.tsv:"),
            "{text}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
