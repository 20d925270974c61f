//! `offload doctor`: check that a run can work before running it — the
//! config loads, the tools it needs are installed, every group's discovery
//! works, one small batch per group runs in one sandbox, and every JUnit
//! result of those batches maps back to a discovered test ID.
//!
//! Each check is printed as it finishes, `✓` or `✗` (or `!` for a warning
//! that does not fail), and every `✗` says the likely cause and the fix.
//! Exit code 0 only when nothing failed.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cancel::Cancel;
use crate::config::{Config, FrameworkConfig, ProviderConfig};
use crate::error::Result;
use crate::framework::{format_test_id, Framework, ResultLocation};
use crate::junit::read::JunitCase;
use crate::process::{self, CommandSpec, Ending, ProcessOutput};
use crate::provider::{ExecRequest, FetchMode, ProviderOptions, SandboxGuard};
use crate::Verdict;

/// Tests per group in the trial batch: enough to see the mapping work,
/// few enough to be quick.
const SAMPLE_TESTS: usize = 3;

/// How long a tool's `--version` may take (uv may sync an environment first).
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Pass,
    /// Worth knowing; does not fail the doctor.
    Warn,
    Fail,
}

/// One check's outcome, as printed.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub status: Status,
    pub title: String,
    /// Why it probably failed (or what the warning means).
    pub cause: Option<String>,
    /// What to do about it.
    pub fix: Option<String>,
}

impl Check {
    fn pass(title: impl Into<String>) -> Check {
        Check {
            status: Status::Pass,
            title: title.into(),
            cause: None,
            fix: None,
        }
    }

    fn fail(title: impl Into<String>, cause: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            status: Status::Fail,
            title: title.into(),
            cause: Some(cause.into()),
            fix: Some(fix.into()),
        }
    }

    fn warn(title: impl Into<String>, cause: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            status: Status::Warn,
            ..Check::fail(title, cause, fix)
        }
    }
}

/// `✓ title`, and for a failure or warning the cause and fix, indented.
pub fn render_check(check: &Check) -> String {
    let mark = match check.status {
        Status::Pass => "✓",
        Status::Warn => "!",
        Status::Fail => "✗",
    };
    let mut out = format!("{mark} {}\n", check.title);
    for (label, text) in [("cause", &check.cause), ("fix", &check.fix)] {
        if let Some(text) = text {
            for (i, line) in text.lines().enumerate() {
                let head = if i == 0 {
                    format!("{label}:")
                } else {
                    String::new()
                };
                out.push_str(&format!("    {head:<7}{line}\n"));
            }
        }
    }
    out
}

/// Collects checks, printing each as it comes.
struct Report {
    checks: Vec<Check>,
}

impl Report {
    fn add(&mut self, check: Check) {
        print!("{}", render_check(&check));
        let _ = std::io::stdout().flush();
        self.checks.push(check);
    }

    fn failures(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .count()
    }
}

pub fn doctor(config_path: &Path, verbose: bool) -> Result<Verdict> {
    println!("offload doctor: checking {}\n", config_path.display());
    let mut report = Report { checks: Vec::new() };
    let cancel = Cancel::new();
    {
        let c = cancel.clone();
        // Ctrl-C stops the trial batch; the sandbox guard still destroys it.
        let _ = ctrlc::set_handler(move || {
            c.interrupt();
        });
    }

    if let Some(config) = check_config(config_path, &mut report) {
        check_tools(&config, &mut report);
        let discovered = check_discovery(&config, &cancel, &mut report);
        if let Some((framework, groups)) = discovered {
            check_batches(
                &config,
                framework.as_ref(),
                &groups,
                &cancel,
                verbose,
                &mut report,
            );
        }
    }

    let failed = report.failures();
    let total = report.checks.len();
    println!();
    if failed == 0 {
        println!("All {total} checks passed.");
        Ok(Verdict::Success)
    } else {
        println!("{failed} of {total} checks failed; fix them and run `offload doctor` again.");
        Ok(Verdict::Failure)
    }
}

fn check_config(path: &Path, report: &mut Report) -> Option<Config> {
    match crate::config::load(path) {
        Ok(loaded) => {
            let c = &loaded.config;
            report.add(Check::pass(format!(
                "config: {} is valid ({} provider, {} framework, {} group{})",
                path.display(),
                c.provider.type_name(),
                c.framework.type_name(),
                c.groups.len(),
                if c.groups.len() == 1 { "" } else { "s" }
            )));
            for w in &loaded.warnings {
                report.add(Check::warn(
                    "config: a setting is ignored",
                    w.clone(),
                    "fix the key's spelling, or remove it",
                ));
            }
            Some(loaded.config)
        }
        Err(e) => {
            let fix = if path.exists() {
                "fix the file at the place shown (`offload validate` checks it), \
                 or write a fresh one with `offload init --force`"
            } else {
                "write one with `offload init` (it detects the project), \
                 or pass another file with -c PATH"
            };
            report.add(Check::fail(
                format!("config: {} cannot be used", path.display()),
                e.message,
                fix,
            ));
            None
        }
    }
}

/// A program a command needs, and which setting needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Tool {
    program: String,
    needed_by: String,
}

fn check_tools(config: &Config, report: &mut Report) {
    let workdir = config.local_working_dir();
    let mut tools: Vec<Tool> = Vec::new();
    let mut add = |program: &str, needed_by: &str| {
        if !tools.iter().any(|t| t.program == program) {
            tools.push(Tool {
                program: program.to_string(),
                needed_by: needed_by.to_string(),
            });
        }
    };
    let remote = !matches!(config.provider, ProviderConfig::Local(_));

    // Discovery always runs here; batches run here only with the local provider.
    let mut version_probe: Option<(String, String)> = None;
    match &config.framework {
        FrameworkConfig::Pytest(p) => {
            let command = pytest_command(p);
            for program in programs_in(&command) {
                add(&program, "[framework] command (pytest)");
            }
            version_probe = Some((format!("{command} --version"), "pytest".into()));
        }
        FrameworkConfig::Cargo(_) => {
            add("cargo", "the cargo framework");
            add(
                "cargo-nextest",
                "the cargo framework, which runs `cargo nextest`",
            );
            version_probe = Some(("cargo nextest --version".into(), "cargo-nextest".into()));
        }
        FrameworkConfig::Default(d) => {
            for program in programs_in(&d.discover_command) {
                add(&program, "[framework] discover_command");
            }
            if !remote {
                for program in programs_in(&d.run_command) {
                    add(&program, "[framework] run_command");
                }
            }
        }
    }
    match &config.provider {
        ProviderConfig::Local(l) => add(&l.shell, "[provider] shell"),
        ProviderConfig::Shell(s) => {
            let commands = [
                ("prepare_command", s.prepare_command.as_deref()),
                ("create_command", Some(s.create_command.as_str())),
                ("exec_command", Some(s.exec_command.as_str())),
                ("download_command", s.download_command.as_deref()),
                ("destroy_command", Some(s.destroy_command.as_str())),
            ];
            for (key, command) in commands {
                for program in command.map(programs_in).unwrap_or_default() {
                    add(&program, &format!("[provider] {key}"));
                }
            }
        }
        ProviderConfig::Modal(_) => add(
            "uv",
            "the modal provider, which runs `uv run @modal_sandbox.py`",
        ),
    }

    for tool in &tools {
        report.add(check_tool(tool, &workdir));
    }
    if let Some((probe, what)) = version_probe {
        let all_found = report.checks.iter().all(|c| c.status != Status::Fail);
        if all_found {
            report.add(check_version(&probe, &what, &workdir));
        }
    }
}

/// The pytest command as the framework starts it.
fn pytest_command(p: &crate::config::PytestConfig) -> String {
    match &p.command {
        Some(c) => c.clone(),
        None => format!("{} -m pytest", p.python),
    }
}

fn check_tool(tool: &Tool, workdir: &Path) -> Check {
    match find_program(&tool.program, workdir) {
        Some(path) => Check::pass(format!(
            "tool: {} ({}, for {})",
            tool.program,
            path.display(),
            tool.needed_by
        )),
        None => {
            let where_ = if tool.program.contains('/') {
                format!(
                    "{} does not exist or is not executable (relative to {})",
                    tool.program,
                    workdir.display()
                )
            } else {
                format!("{} is not on PATH", tool.program)
            };
            Check::fail(
                format!(
                    "tool: {} not found (needed by {})",
                    tool.program, tool.needed_by
                ),
                where_,
                install_hint(&tool.program, &tool.needed_by),
            )
        }
    }
}

fn install_hint(program: &str, needed_by: &str) -> String {
    match program {
        "cargo-nextest" => "install it: cargo install cargo-nextest --locked".into(),
        "uv" => "install uv (https://docs.astral.sh/uv/), or change the command to not use it".into(),
        "cargo" => "install Rust with rustup (https://rustup.rs)".into(),
        "python" | "python3" => format!(
            "install Python, or point {needed_by} at an existing interpreter (e.g. .venv/bin/python -m pytest)"
        ),
        _ => format!("install {program}, or change {needed_by} to use a program that exists"),
    }
}

/// Run `command` (e.g. `python -m pytest --version`) to see that it works.
fn check_version(command: &str, what: &str, workdir: &Path) -> Check {
    let spec = CommandSpec {
        cwd: Some(workdir),
        ..CommandSpec::sh(command)
    };
    match process::run(&spec, Some(TOOL_TIMEOUT), &Cancel::new(), None) {
        Ok(out) if out.success() => {
            let version = out
                .output
                .iter()
                .map(|(_, text)| text.trim())
                .find(|l| !l.is_empty())
                .unwrap_or("")
                .to_string();
            Check::pass(format!("tool: `{command}` works ({version})"))
        }
        Ok(out) => Check::fail(
            format!("tool: `{command}` failed ({})", out.describe_ending(Some(TOOL_TIMEOUT))),
            format!("{what} is not usable from {}:\n{}", workdir.display(), out.tail(5)),
            match what {
                "pytest" => "install pytest for that interpreter (pip install pytest), or set [framework] command \
                             to one that has it (e.g. \"uv run pytest\", \".venv/bin/python -m pytest\")"
                    .to_string(),
                _ => "install cargo-nextest: cargo install cargo-nextest --locked".to_string(),
            },
        ),
        Err(e) => Check::fail(
            format!("tool: cannot run `{command}`"),
            crate::error::io_message(&e),
            "check that /bin/sh exists",
        ),
    }
}

/// Where `program` is: a path (relative to `workdir`) when it has a `/`,
/// else the first executable of that name on PATH.
fn find_program(program: &str, workdir: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.is_file()
            && p.metadata()
                .map(|m| m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
    };
    if program.contains('/') {
        let path = workdir.join(program.strip_prefix("./").unwrap_or(program));
        return executable(&path).then_some(path);
    }
    let path_var = std::env::var_os("PATH")?;
    std::env::split_paths(&path_var)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
}

/// Shell words that are not programs to look for.
const NOT_PROGRAMS: &[&str] = &[
    "cd", "echo", "exit", "export", "set", "unset", "test", "[", "[[", "true", "false", ":", ".",
    "source", "eval", "read", "printf", "shift", "return", "local", "trap", "wait", "umask",
    "type", "alias", "break", "continue", "pwd", "fi", "done", "esac", "then", "else", "elif",
    "do", "in", "}", "{",
];

/// Words after which the next word is the program.
const PREFIX_WORDS: &[&str] = &[
    "if", "then", "else", "elif", "do", "while", "until", "!", "exec", "command", "time",
];

/// The programs a shell command template starts, as well as can be told
/// without a shell parser: the first word of each simple command (after
/// `&&`, `||`, `;`, `|`, `(`, `$(`), skipping variable assignments, shell
/// keywords and builtins, and anything with quotes, `$`, globs or
/// `{placeholders}`. Good enough to catch a missing `pytest` or `uv`.
pub fn programs_in(command: &str) -> Vec<String> {
    let mut programs: Vec<String> = Vec::new();
    let mut normalised = command.to_string();
    for sep in ["&&", "||", "$(", "`", ";", "|", "(", ")", "\n"] {
        normalised = normalised.replace(sep, "\n");
    }
    for segment in normalised.lines() {
        let mut words = segment.split_whitespace().peekable();
        // Skip assignments and prefix keywords to reach the command word.
        let program = loop {
            match words.next() {
                None => break None,
                Some(w) if is_assignment(w) => continue,
                Some(w) if PREFIX_WORDS.contains(&w) => continue,
                Some("for" | "case") => break None,
                Some(w) => break Some(w),
            }
        };
        let Some(program) = program else { continue };
        let plain = program
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./+-".contains(c));
        if plain && !NOT_PROGRAMS.contains(&program) && !programs.iter().any(|p| p == program) {
            programs.push(program.to_string());
        }
    }
    programs
}

fn is_assignment(word: &str) -> bool {
    match word.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        }
        None => false,
    }
}

/// A group and the tests discovery found for it.
struct DiscoveredGroup {
    name: String,
    ids: Vec<String>,
}

fn check_discovery(
    config: &Config,
    cancel: &Cancel,
    report: &mut Report,
) -> Option<(Box<dyn Framework>, Vec<DiscoveredGroup>)> {
    let framework = match crate::framework::from_config(config) {
        Ok(f) => f,
        Err(e) => {
            report.add(Check::fail(
                "discovery: cannot set up the framework",
                e.to_string(),
                "fix the [framework] section of the config",
            ));
            return None;
        }
    };
    let mut groups = Vec::new();
    for group in &config.groups {
        match framework.discover(group, cancel) {
            Ok(d) => {
                if d.ids.is_empty() {
                    report.add(Check::warn(
                        format!("discovery: group `{}` found no tests", group.name),
                        "discovery ran, but selected nothing",
                        format!(
                            "check the group's filters (\"{}\") and the framework's paths; \
                             `offload collect` shows what each group finds",
                            group.filters
                        ),
                    ));
                } else {
                    report.add(Check::pass(format!(
                        "discovery: group `{}` found {} test{} (e.g. {})",
                        group.name,
                        d.ids.len(),
                        if d.ids.len() == 1 { "" } else { "s" },
                        d.ids[0]
                    )));
                }
                for w in d.warnings {
                    report.add(Check::warn(
                        format!("discovery: group `{}`", group.name),
                        w,
                        "see the message; `offload collect` shows what discovery finds",
                    ));
                }
                groups.push(DiscoveredGroup {
                    name: group.name.clone(),
                    ids: d.ids,
                });
            }
            Err(e) => report.add(Check::fail(
                format!("discovery: group `{}` failed", group.name),
                e.to_string(),
                discovery_fix(config),
            )),
        }
    }
    Some((framework, groups))
}

fn discovery_fix(config: &Config) -> String {
    let dir = config.local_working_dir();
    match &config.framework {
        FrameworkConfig::Pytest(p) => format!(
            "run `{} --collect-only -q {}` in {} and fix what it reports (import errors, \
             missing packages), or fix [framework] command / paths",
            pytest_command(p),
            p.paths.join(" "),
            dir.display()
        ),
        FrameworkConfig::Cargo(_) => format!(
            "run `cargo nextest list` in {} and fix what it reports (the project must build)",
            dir.display()
        ),
        FrameworkConfig::Default(_) => format!(
            "fix [framework] discover_command: it must exit with 0 and print one test ID per line \
             when run with sh in {}",
            dir.display()
        ),
    }
}

fn check_batches(
    config: &Config,
    framework: &dyn Framework,
    groups: &[DiscoveredGroup],
    cancel: &Cancel,
    verbose: bool,
    report: &mut Report,
) {
    let groups: Vec<&DiscoveredGroup> = groups.iter().filter(|g| !g.ids.is_empty()).collect();
    if groups.is_empty() {
        return;
    }
    let scratch = ScratchDir::create(&config.report.output_dir);
    let scratch = match scratch {
        Ok(s) => s,
        Err(e) => {
            report.add(Check::fail(
                "sandbox: cannot prepare a scratch directory",
                e,
                "check that [report] output_dir is writable",
            ));
            return;
        }
    };
    let options = ProviderOptions {
        no_cache: false,
        scratch_dir: scratch.path.clone(),
    };
    let mut provider = match crate::provider::from_config(config, &options) {
        Ok(p) => p,
        Err(e) => {
            report.add(Check::fail(
                "sandbox: cannot set up the provider",
                e.to_string(),
                "fix the [provider] section of the config",
            ));
            return;
        }
    };
    if let Err(e) = provider.prepare(cancel) {
        report.add(Check::fail(
            "sandbox: prepare_command failed",
            e.to_string(),
            "run [provider] prepare_command by hand and fix what it reports",
        ));
        return;
    }
    let mut guard = match provider.create(0, cancel) {
        Ok(s) => {
            report.add(Check::pass(format!("sandbox: created {}", s.id())));
            SandboxGuard::new(s)
        }
        Err(e) => {
            report.add(Check::fail(
                "sandbox: cannot create one",
                e.to_string(),
                match &config.provider {
                    ProviderConfig::Local(_) => "check [provider] working_dir and shell".to_string(),
                    _ => "run [provider] create_command by hand: it must exit with 0 and print the sandbox ID"
                        .to_string(),
                },
            ));
            return;
        }
    };

    let mut env = config.batch_env();
    env.push(("OFFLOAD_SANDBOX".into(), "0".into()));
    env.push(("OFFLOAD_ATTEMPT".into(), "1".into()));
    let timeout = Duration::from_secs(config.offload.test_timeout_secs);

    for (i, group) in groups.iter().enumerate() {
        let batch = i + 1;
        let sample: Vec<String> = group.ids.iter().take(SAMPLE_TESTS).cloned().collect();
        let mut batch_env = env.clone();
        batch_env.push(("OFFLOAD_BATCH".into(), batch.to_string()));
        let sandbox = guard.get();
        let remote_result = sandbox.result_path(batch, 1);
        let command = framework.batch_command(&sample, &remote_result);
        let request = ExecRequest {
            script: &command.script,
            env: &batch_env,
            timeout,
            sink: None,
        };
        let label = format!(
            "batch: group `{}` ({} test{})",
            group.name,
            sample.len(),
            if sample.len() == 1 { "" } else { "s" }
        );
        let out = match sandbox.exec(&request, cancel) {
            Ok(out) => out,
            Err(e) => {
                report.add(Check::fail(
                    format!("{label} could not run"),
                    e.to_string(),
                    "check [provider] exec_command (or the local shell); run the command above by hand in a sandbox",
                ));
                continue;
            }
        };
        if verbose {
            for (_, text) in out.output.iter() {
                println!("    | {}", crate::report::progress::sanitize(text));
            }
        }
        if matches!(out.ending, Ending::TimedOut | Ending::Cancelled) {
            report.add(Check::fail(
                format!("{label} {}", out.describe_ending(Some(timeout))),
                format!(
                    "the batch did not finish; its last output:\n{}",
                    out.tail(5)
                ),
                "raise [offload] test_timeout_secs, or find the test that waits (run it by hand)",
            ));
            continue;
        }
        let remote = match &command.results {
            ResultLocation::ExitCode => {
                report.add(Check::warn(
                    format!("{label} ran ({})", out.describe_ending(None)),
                    "without a result file the exit code decides for the whole batch, so results \
                     cannot be checked test by test",
                    "have run_command write JUnit XML to {result_file} (or set result_file to where it writes)",
                ));
                continue;
            }
            ResultLocation::ResultFile => remote_result.clone(),
            ResultLocation::Fixed(p) => p.clone(),
        };
        let local = scratch.path.join(format!("batch-{batch}-1.xml"));
        if let Err(e) = sandbox.fetch(&remote, &local, FetchMode::Expected, cancel) {
            report.add(Check::fail(
                format!("{label}: no JUnit results ({})", out.describe_ending(None)),
                format!(
                    "the batch did not leave a JUnit file at {remote}: {}\n{}",
                    e.message,
                    output_excerpt(&out)
                ),
                no_results_fix(config),
            ));
            continue;
        }
        let text = std::fs::read(&local)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let _ = std::fs::remove_file(&local);
        let cases = match crate::junit::read::parse(&text) {
            Ok(c) => c,
            Err(e) => {
                report.add(Check::fail(
                    format!("{label}: the JUnit file is unreadable"),
                    e,
                    "make the runner write JUnit XML (a <testsuite> of <testcase> elements)",
                ));
                continue;
            }
        };
        report.add(check_mapping(
            config, framework, &label, &out, cases, &sample,
        ));
    }

    let id = guard.get().id().to_string();
    match guard.destroy() {
        Ok(()) => report.add(Check::pass(format!("sandbox: destroyed {id}"))),
        Err(e) => report.add(Check::fail(
            format!("sandbox: cannot destroy {id}"),
            e.to_string(),
            "run [provider] destroy_command by hand; remove the sandbox yourself if it still exists",
        )),
    }
}

/// The last lines of a batch's output, indented, for a cause.
fn output_excerpt(out: &ProcessOutput) -> String {
    let tail = out.tail(8);
    if tail.trim().is_empty() {
        "the batch printed nothing".into()
    } else {
        format!(
            "its last output:\n{}",
            tail.lines()
                .map(|l| format!("  {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    }
}

fn no_results_fix(config: &Config) -> String {
    match &config.framework {
        FrameworkConfig::Pytest(p) => format!(
            "run `{} <a test> --junitxml=out.xml` by hand and check that pytest starts (plugins, addopts)",
            pytest_command(p)
        ),
        FrameworkConfig::Cargo(_) => "run `cargo nextest run` by hand and check that the tests build".into(),
        FrameworkConfig::Default(_) => "make [framework] run_command write JUnit XML to {result_file} \
                                        (or set result_file to the path it writes)"
            .into(),
    }
}

/// Do the batch's JUnit testcases map back to the IDs it was given?
fn check_mapping(
    config: &Config,
    framework: &dyn Framework,
    label: &str,
    out: &ProcessOutput,
    cases: Vec<JunitCase>,
    sample: &[String],
) -> Check {
    let names: Vec<String> = cases.iter().map(case_name).collect();
    let all_cases = cases.clone();
    let matched = framework.match_results(cases, sample);
    if !matched.unmatched.is_empty() {
        let shown: Vec<String> = names.iter().take(3).map(|n| format!("  {n}")).collect();
        let fix = match &config.framework {
            FrameworkConfig::Default(d) => match suggest_id_format(&all_cases, sample) {
                Some(f) if f != d.test_id_format => format!(
                    "set [framework] test_id_format = \"{f}\" (it maps these testcases to the discovered IDs)"
                ),
                _ => "make [framework] test_id_format (built from {name} and {classname}) rebuild the IDs \
                      discover_command prints, or make the runner name its testcases by those IDs"
                    .into(),
            },
            FrameworkConfig::Pytest(_) => "a conftest.py or plugin probably renames the JUnit testcases; \
                 Offload maps the `file`/`classname` and `name` pytest writes back to node IDs: \
                 remove the renaming, or write the node ID into `name`"
                .into(),
            FrameworkConfig::Cargo(_) => "check .config/nextest.toml: the JUnit testcases must keep \
                 nextest's binary ID (classname) and test name"
                .into(),
        };
        return Check::fail(
            format!(
                "{label}: {} JUnit result{} match no discovered test",
                matched.unmatched.len(),
                if matched.unmatched.len() == 1 {
                    ""
                } else {
                    "s"
                }
            ),
            format!(
                "the runner's testcases are named\n{}\nbut discovery printed IDs like\n  {}",
                shown.join("\n"),
                sample[0]
            ),
            fix,
        );
    }
    let mut got: Vec<bool> = vec![false; sample.len()];
    for (i, _) in &matched.matched {
        if let Some(g) = got.get_mut(*i) {
            *g = true;
        }
    }
    let missing: Vec<&String> = sample
        .iter()
        .zip(&got)
        .filter(|(_, g)| !**g)
        .map(|(id, _)| id)
        .collect();
    if !missing.is_empty() {
        return Check::fail(
            format!(
                "{label}: no result for {} of {} tests",
                missing.len(),
                sample.len()
            ),
            format!(
                "the JUnit file has no testcase for: {}\n{}",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                output_excerpt(out)
            ),
            "run the batch's tests by hand: the runner probably crashed or skipped collecting them",
        );
    }
    let failed = matched
        .matched
        .iter()
        .filter(|(_, a)| {
            matches!(
                a.outcome,
                crate::model::Outcome::Failed | crate::model::Outcome::Error
            )
        })
        .count();
    let note = if failed > 0 {
        format!(" ({failed} failed: a test failure is not a setup problem)")
    } else {
        String::new()
    };
    Check::pass(format!(
        "{label}: all {} results map back to discovered tests{note}",
        sample.len()
    ))
}

/// `classname name` (or just `name`), as a person reads a testcase.
fn case_name(case: &JunitCase) -> String {
    match &case.classname {
        Some(c) if !c.is_empty() => format!("classname \"{c}\", name \"{}\"", case.name),
        _ => format!("name \"{}\"", case.name),
    }
}

/// A `test_id_format` under which the testcases map to the expected IDs.
pub fn suggest_id_format(cases: &[JunitCase], expected: &[String]) -> Option<String> {
    const FORMATS: [&str; 6] = [
        "{name}",
        "{classname} {name}",
        "{classname}::{name}",
        "{classname}.{name}",
        "{classname}/{name}",
        "{classname}#{name}",
    ];
    FORMATS
        .iter()
        .map(|f| {
            let hits = cases
                .iter()
                .filter(|c| expected.iter().any(|e| *e == format_test_id(f, c)))
                .count();
            (hits, *f)
        })
        .filter(|(hits, _)| *hits > 0)
        .max_by_key(|(hits, _)| *hits)
        .map(|(_, f)| f.to_string())
}

/// Scratch directory for the trial batch's result files; removed on drop.
struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    fn create(output_dir: &Path) -> std::result::Result<ScratchDir, String> {
        let path = output_dir.join(format!(".doctor-{}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|e| {
            format!(
                "cannot create {}: {}",
                path.display(),
                crate::error::io_message(&e)
            )
        })?;
        Ok(ScratchDir { path })
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_render_with_cause_and_fix() {
        assert_eq!(render_check(&Check::pass("tool: uv")), "✓ tool: uv\n");
        let failed = Check::fail(
            "discovery: group `unit` failed",
            "discover_command failed (exit code 2)\nline two",
            "fix it",
        );
        assert_eq!(
            render_check(&failed),
            "✗ discovery: group `unit` failed\n    cause: discover_command failed (exit code 2)\n           line two\n    fix:   fix it\n"
        );
        assert!(render_check(&Check::warn("w", "c", "f")).starts_with("! w\n"));
    }

    #[test]
    fn finds_the_programs_a_command_starts() {
        assert_eq!(programs_in("uv run pytest"), ["uv"]);
        assert_eq!(programs_in("python -m pytest"), ["python"]);
        assert_eq!(programs_in("./discover.sh {filters}"), ["./discover.sh"]);
        assert_eq!(
            programs_in("cd {sandbox_id} && FOO=1 ssh host {command} | tee log; exec docker rm x"),
            ["ssh", "tee", "docker"]
        );
        assert_eq!(
            programs_in("d=$(mktemp -d /tmp/x.XXXXXX) && cp -R . \"$d\" && echo \"$d\""),
            ["mktemp", "cp"]
        );
        assert_eq!(
            programs_in("case {sandbox_id} in */offload-sandbox.*) rm -rf {sandbox_id} ;; *) exit 1 ;; esac"),
            ["rm"]
        );
        assert_eq!(
            programs_in("for p in {paths}; do r=$${p%%:*}; cp \"$r\" x || exit 1; done"),
            ["cp"]
        );
        assert_eq!(
            programs_in("if [ -d tests ]; then find tests | sort; fi"),
            ["find", "sort"]
        );
    }

    fn case(classname: Option<&str>, name: &str) -> JunitCase {
        JunitCase {
            classname: classname.map(str::to_string),
            ..JunitCase::named(name)
        }
    }

    #[test]
    fn suggests_the_id_format_that_maps_the_testcases() {
        let expected = vec!["suite::a".to_string(), "suite::b".to_string()];
        let cases = vec![case(Some("suite"), "a"), case(Some("suite"), "b")];
        assert_eq!(
            suggest_id_format(&cases, &expected).as_deref(),
            Some("{classname}::{name}")
        );
        let cases = vec![case(Some("x"), "suite::a")];
        assert_eq!(
            suggest_id_format(&cases, &expected).as_deref(),
            Some("{name}")
        );
        assert_eq!(suggest_id_format(&[case(None, "zzz")], &expected), None);
    }

    #[test]
    fn finds_programs_on_path_and_relative_to_the_working_dir() {
        let dir = std::env::temp_dir().join(format!("offload-doctor-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(find_program("sh", &dir).is_some());
        assert!(find_program("offload-no-such-program", &dir).is_none());
        let script = dir.join("run.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        assert!(
            find_program("./run.sh", &dir).is_none(),
            "not executable yet"
        );
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_program("./run.sh", &dir), Some(dir.join("run.sh")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
