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
use std::sync::Arc;
use std::time::Duration;

use crate::cancel::Cancel;
use crate::config::{Config, ProviderConfig};
use crate::discover::{Progress, TestTable};
use crate::error::Result;
use crate::events::{BatchKind, Notices};
use crate::framework::{format_test_id, Framework, Hints};
use crate::junit::read::JunitCase;
use crate::leftovers::ScratchDir;
use crate::model::Outcome;
use crate::process::{self, CapturedOutput, CommandSpec};
use crate::provider::{ProviderOptions, SandboxGuard};
use crate::run::batch::{run_batch, BatchContext, BatchEnd, BatchResult, BatchResults, Job};
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
        match crate::framework::from_config(&config) {
            Ok(framework) => {
                let framework: Arc<dyn Framework> = Arc::from(framework);
                let hints = framework.hints();
                check_tools(&config, &hints, &mut report);
                let table =
                    check_discovery(&config, framework.as_ref(), &hints, &cancel, &mut report);
                if let Some(table) = table {
                    check_batches(
                        &config,
                        &framework,
                        &hints,
                        &table,
                        &cancel,
                        verbose,
                        &mut report,
                    );
                }
            }
            Err(e) => report.add(Check::fail(
                "discovery: cannot set up the framework",
                e.to_string(),
                "fix the [framework] section of the config",
            )),
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
        // What doctor found would stop a run before its tests: a setup error.
        Ok(Verdict::OffloadError)
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

fn check_tools(config: &Config, hints: &Hints, report: &mut Report) {
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
    for (program, needed_by) in &hints.programs {
        add(program, needed_by);
    }
    // Discovery always runs here; batches run here only with the local provider.
    let local_batches = if remote {
        &[][..]
    } else {
        &hints.batch_commands[..]
    };
    for (setting, command) in hints.discovery_commands.iter().chain(local_batches) {
        for program in programs_in(command) {
            add(&program, setting);
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
    if let Some((probe, what, fix)) = &hints.version_probe {
        let all_found = report.checks.iter().all(|c| c.status != Status::Fail);
        if all_found {
            report.add(check_version(probe, what, fix, &workdir));
        }
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
fn check_version(command: &str, what: &str, fix: &str, workdir: &Path) -> Check {
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
            format!(
                "tool: `{command}` failed ({})",
                out.describe_ending(Some(TOOL_TIMEOUT))
            ),
            format!(
                "{what} is not usable from {}:\n{}",
                workdir.display(),
                out.tail(5)
            ),
            fix,
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

/// Discover every group as the run does (one after another, duplicates
/// removed), checking each. A group that selects nothing is a warning, as
/// for the run; no tests in any group fails, as the run does.
fn check_discovery(
    config: &Config,
    framework: &dyn Framework,
    hints: &Hints,
    cancel: &Cancel,
    report: &mut Report,
) -> Option<TestTable> {
    let mut failed = false;
    let mut counts = Vec::new();
    let mut warnings = Vec::new();
    let result = crate::discover::discover_all(
        framework,
        &config.groups,
        cancel,
        &mut |p| match p {
            Progress::Finished { group, tests } => counts.push((group, tests)),
            Progress::Warning(w) => warnings.push(w.to_string()),
            Progress::Started { .. } | Progress::Note(_) => {}
        },
        None,
        None,
    );
    for (group, tests) in &counts {
        let name = &config.groups[*group].name;
        if *tests == 0 {
            report.add(Check::warn(
                format!("discovery: group `{name}` found no tests"),
                "discovery ran, but selected nothing",
                format!(
                    "check the group's filters (\"{}\"); `offload collect` shows what each group finds",
                    config.groups[*group].filters
                ),
            ));
        }
    }
    for w in warnings {
        report.add(Check::warn(
            "discovery: a warning",
            w,
            "see the message; `offload collect` shows what discovery finds",
        ));
    }
    let table = match result {
        Ok(table) => table,
        Err(e) => {
            let group = config
                .groups
                .get(counts.len())
                .map_or_else(|| "?".to_string(), |g| g.name.clone());
            report.add(Check::fail(
                format!("discovery: group `{group}` failed"),
                e.to_string(),
                hints.discovery_fix.clone(),
            ));
            failed = true;
            TestTable::default()
        }
    };
    if failed {
        return None;
    }
    for (g, group) in config.groups.iter().enumerate() {
        let ids: Vec<&str> = table
            .tests
            .iter()
            .filter(|t| t.group == g)
            .map(|t| t.id.as_str())
            .collect();
        if let Some(first) = ids.first() {
            report.add(Check::pass(format!(
                "discovery: group `{}` found {} test{} (e.g. {first})",
                group.name,
                ids.len(),
                if ids.len() == 1 { "" } else { "s" },
            )));
        }
    }
    if table.tests.is_empty() {
        report.add(Check::fail(
            "discovery: no tests found in any group",
            "`offload run` would stop here",
            hints.no_tests_fix.clone(),
        ));
        return None;
    }
    Some(table)
}

/// One sandbox, and in it one small batch per group through the run's own
/// batch path ([`run_batch`]): the same command, environment, result file
/// and matching as `offload run`.
fn check_batches(
    config: &Config,
    framework: &Arc<dyn Framework>,
    hints: &Hints,
    table: &TestTable,
    cancel: &Cancel,
    verbose: bool,
    report: &mut Report,
) {
    let scratch = match ScratchDir::create(&config.report.output_dir, "doctor") {
        Ok(s) => s,
        Err(e) => {
            report.add(Check::fail(
                "sandbox: cannot prepare a scratch directory",
                e.to_string(),
                "check that [report] output_dir is writable",
            ));
            return;
        }
    };
    let options = ProviderOptions {
        no_cache: false,
        scratch_dir: scratch.path.clone(),
        notices: Notices::stderr(),
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
            SandboxGuard::new(s, options.notices.clone())
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
    let timeout = Duration::from_secs(config.offload.test_timeout_secs);
    let ctx = BatchContext {
        framework: Arc::clone(framework),
        env: config.batch_env(),
        timeout,
        scratch_dir: scratch.path.clone(),
        cancel: cancel.clone(),
    };

    for (g, group) in config.groups.iter().enumerate() {
        let sample: Vec<usize> = (0..table.tests.len())
            .filter(|&t| table.tests[t].group == g)
            .take(SAMPLE_TESTS)
            .collect();
        if sample.is_empty() {
            continue;
        }
        let entries = || sample.iter().map(|&t| &table.tests[t]);
        let job = Job {
            batch: g + 1,
            kind: BatchKind::Fresh,
            ids: entries().map(|e| e.id.clone()).collect(),
            runner_ids: entries()
                .any(|e| e.runner_id.is_some())
                .then(|| entries().map(|e| e.runner_id().to_string()).collect()),
            tests: sample.clone(),
            attempt: 1,
            from_discovery: table.for_batches(g).cloned(),
        };
        let label = format!(
            "batch: group `{}` ({} test{})",
            group.name,
            sample.len(),
            if sample.len() == 1 { "" } else { "s" }
        );
        let result = run_batch(&ctx, 0, guard.get(), job, None);
        if verbose {
            for (_, text) in result.output.iter() {
                println!("    | {}", crate::report::progress::sanitize(text));
            }
        }
        report.add(judge_batch(hints, &label, &result, timeout));
    }

    let id = guard.id().to_string();
    match guard.destroy() {
        Ok(()) => report.add(Check::pass(format!("sandbox: destroyed {id}"))),
        Err(e) => report.add(Check::fail(
            format!("sandbox: cannot destroy {id}"),
            e.to_string(),
            "run [provider] destroy_command by hand; remove the sandbox yourself if it still exists",
        )),
    }
}

/// What a trial batch's result says about the setup.
fn judge_batch(hints: &Hints, label: &str, result: &BatchResult, timeout: Duration) -> Check {
    let out = &result.output;
    let (runner, matched) = match &result.end {
        BatchEnd::NotRun(e) => {
            return Check::fail(
                format!("{label} could not run"),
                e.clone(),
                "check [provider] exec_command (or the local shell); run the command above by hand in a sandbox",
            )
        }
        BatchEnd::Cancelled => {
            return Check::fail(
                format!("{label} cancelled"),
                "the batch was stopped (Ctrl-C)",
                "run `offload doctor` again",
            )
        }
        BatchEnd::TimedOut(_) => {
            return Check::fail(
                format!("{label} timed out after {} s", timeout.as_secs()),
                format!("the batch did not finish; its last output:\n{}", out.tail(5)),
                "raise [offload] test_timeout_secs, or find the test that waits (run it by hand)",
            )
        }
        BatchEnd::Ran {
            runner,
            results: BatchResults::ExitCodeOnly,
        } => {
            return Check::warn(
                format!("{label} ran ({})", runner.describe()),
                "without a result file the exit code decides for the whole batch, so results \
                 cannot be checked test by test",
                "have run_command write JUnit XML to {result_file} (or set result_file to where it writes)",
            )
        }
        BatchEnd::Ran {
            runner,
            results: BatchResults::Missing(why),
        } => {
            return Check::fail(
                format!("{label}: no JUnit results ({})", runner.describe()),
                format!("{why}\n{}", output_excerpt(out)),
                hints.no_results_fix.clone(),
            )
        }
        BatchEnd::Ran {
            runner,
            results: BatchResults::Junit(m),
        } => (runner, m),
    };
    let sample = &result.job.ids;
    if !matched.unmatched.is_empty() {
        let shown: Vec<String> = matched
            .unmatched
            .iter()
            .take(3)
            .map(|c| format!("  {}", case_name(c)))
            .collect();
        let fix = match &hints.test_id_format {
            Some(current) => match suggest_id_format(&matched.unmatched, result.job.expected_names()) {
                Some(f) if f != *current => format!(
                    "set [framework] test_id_format = \"{f}\" (it maps these testcases to the discovered IDs)"
                ),
                _ => hints.mapping_fix.clone(),
            },
            None => hints.mapping_fix.clone(),
        };
        let n = matched.unmatched.len();
        return Check::fail(
            format!(
                "{label}: {n} JUnit result{} match no discovered test",
                if n == 1 { "" } else { "s" }
            ),
            format!(
                "the runner's testcases are named\n{}\nbut discovery printed IDs like\n  {}",
                shown.join("\n"),
                sample[0]
            ),
            fix,
        );
    }
    let mut got = vec![false; sample.len()];
    for (i, _) in &matched.matched {
        if let Some(g) = got.get_mut(*i) {
            *g = true;
        }
    }
    let missing: Vec<&str> = sample
        .iter()
        .zip(&got)
        .filter(|(_, g)| !**g)
        .map(|(id, _)| id.as_str())
        .collect();
    if !missing.is_empty() {
        return Check::fail(
            format!(
                "{label}: no result for {} of {} tests",
                missing.len(),
                sample.len()
            ),
            format!(
                "the JUnit file has no testcase for: {} ({})\n{}",
                missing.join(", "),
                runner.describe(),
                output_excerpt(out)
            ),
            "run the batch's tests by hand: the runner probably crashed or skipped collecting them",
        );
    }
    let failed = matched
        .matched
        .iter()
        .filter(|(_, a)| matches!(a.outcome, Outcome::Failed | Outcome::Error))
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

/// The last lines of a batch's output, indented, for a cause.
fn output_excerpt(out: &CapturedOutput) -> String {
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
