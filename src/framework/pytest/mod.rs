//! pytest: discovery with `--collect-only -q`, batches with `--junitxml`,
//! and results mapped back to node IDs from what pytest writes anyway — the
//! project needs no conftest change.
//!
//! Canonical IDs are node IDs as they would be typed in the working directory
//! (see [`rootdir`]); in the usual layout that is exactly what pytest prints.

mod collect_output;
mod inputs;
mod junit_ids;
mod rootdir;

use std::path::PathBuf;

use super::{
    indent, BatchCommand, Discovery, DiscoveryInputs, Framework, Hints, MatchedResults, RanBatch,
    ResultLocation,
};
use crate::cancel::Cancel;
use crate::config::{GroupConfig, PytestConfig};
use crate::error::{Error, Result};
use crate::junit::read::JunitCase;
use crate::model::Outcome;
use crate::process::{shell_quote, Ending, LineSink};

/// Options that make discovery output readable whatever the project's
/// `addopts` (or a group's filters) say; they come after both, and the last
/// one wins. `--verbosity=-1` sets the level outright (a user `-v` plus our
/// `-q` would otherwise cancel out into a tree listing, and a user `-q` would
/// turn the IDs into per-file counts); `-rfE` and `--tb=short` make sure
/// collection errors are named; `--color=no` keeps escape codes out; and
/// [`ESCAPE_IDS`].
const DISCOVERY_OPTIONS: &str = "--verbosity=-1 --color=no --tb=short -rfE";

/// pytest escapes non-ASCII and control characters in node IDs (`\n`,
/// `\xe9`) unless a project sets this ini option; unescaped, a raw newline
/// splits an ID over two lines of discovery output. Discovery and every
/// batch override it, so that IDs are printed whole, one a line, and the
/// batch's pytest knows them by the same escaped form.
/// The captured output (stdout, stderr, logging) of failing tests in their
/// JUnit testcase; passing tests' output stays out of the report.
const JUNIT_OUTPUT: &str = "-o junit_logging=all -o junit_log_passing_tests=false";

const ESCAPE_IDS: &str =
    "-o disable_test_id_escaping_and_forfeit_all_rights_to_community_support=false";

/// Lines of pytest output quoted in an error message.
const QUOTED_LINES: usize = 40;

pub struct PytestFramework {
    config: PytestConfig,
    working_dir: PathBuf,
}

impl PytestFramework {
    pub fn new(config: PytestConfig, working_dir: PathBuf) -> Self {
        PytestFramework {
            config,
            working_dir,
        }
    }

    /// `command`, or the legacy `{python} -m pytest {extra_args}`.
    fn pytest(&self) -> String {
        match self.config.command.as_deref().map(str::trim) {
            Some(c) if !c.is_empty() => c.to_string(),
            _ => {
                let mut s = format!("{} -m pytest", shell_quote(&self.config.python));
                for a in &self.config.extra_args {
                    s.push(' ');
                    s.push_str(&shell_quote(a));
                }
                s
            }
        }
    }

    fn discovery_script(&self, group: &GroupConfig) -> String {
        let mut s = format!("{} --collect-only -q", self.pytest());
        let filters = group.filters.trim();
        if !filters.is_empty() {
            // Shell syntax chosen by the user (`-m 'not slow'`): inserted as is.
            s.push(' ');
            s.push_str(filters);
        } else if let Some(m) = self
            .config
            .markers
            .as_deref()
            .filter(|m| !m.trim().is_empty())
        {
            s.push_str(" -m ");
            s.push_str(&shell_quote(m));
        }
        s.push(' ');
        s.push_str(DISCOVERY_OPTIONS);
        s.push(' ');
        s.push_str(ESCAPE_IDS);
        for p in &self.config.paths {
            s.push(' ');
            s.push_str(&shell_quote(p));
        }
        s
    }

    /// Turn pytest's node IDs into canonical IDs: `(canonical, node IDs)`,
    /// the node IDs only when some differ (pytest's rootdir is not the
    /// working directory), for matching its JUnit later.
    fn canonical_ids(
        &self,
        node_ids: Vec<String>,
        warnings: &mut Vec<String>,
        group: &str,
    ) -> (Vec<String>, Option<Vec<String>>) {
        // Items without `::` (a plugin's whole-session check) name no file.
        let mut files: Vec<&str> = node_ids
            .iter()
            .filter(|n| n.contains("::"))
            .map(|n| junit_ids::file_part(n))
            .collect();
        files.sort_unstable();
        files.dedup();
        let Some(root) = rootdir::locate(&self.working_dir, &self.config.paths, &files) else {
            warnings.push(format!(
                "group `{group}`: pytest's test files (e.g. {}) were not found under {} or its ini-file directories; \
                 IDs are used as pytest printed them",
                files.first().unwrap_or(&"?"),
                self.working_dir.display()
            ));
            return (node_ids, None);
        };
        if root.as_os_str().is_empty() {
            return (node_ids, None);
        }
        let canonical = node_ids
            .iter()
            .map(|node_id| {
                if !node_id.contains("::") {
                    return node_id.clone();
                }
                let file = junit_ids::file_part(node_id);
                let rel = rootdir::relative_to_working_dir(&self.working_dir, &root, file);
                format!("{rel}{}", &node_id[file.len()..])
            })
            .collect();
        (canonical, Some(node_ids))
    }
}

impl Framework for PytestFramework {
    fn discover(
        &self,
        group: &GroupConfig,
        cancel: &Cancel,
        output: Option<&LineSink>,
    ) -> Result<Discovery> {
        let script = self.discovery_script(group);
        let env = [("PYTHONIOENCODING".to_string(), "utf-8".to_string())];
        let out = super::run_discovery(
            group,
            "pytest discovery",
            &script,
            &self.working_dir,
            &env,
            cancel,
            output,
        )?;
        let parsed = collect_output::parse(&out.stdout());
        let mut warnings = Vec::new();

        if !parsed.collection_errors.is_empty() {
            let shown = if parsed.errors_section.trim().is_empty() {
                out.tail(QUOTED_LINES)
            } else {
                crate::text::last_lines(&parsed.errors_section, QUOTED_LINES)
            };
            return Err(Error::new(format!(
                "group `{}`: pytest could not collect {}: {}\n  \
                 their tests would silently be missing from the run, so Offload stops here.\n  \
                 command: {script}\n  pytest said:\n{}\n  \
                 fix the module, or leave it out with `--ignore=PATH` in the group's filters",
                group.name,
                plural(parsed.collection_errors.len(), "module"),
                parsed.collection_errors.join(", "),
                indent(&shown),
            )));
        }
        match out.ending {
            Ending::Exited(0) => {}
            // pytest's "no tests collected".
            Ending::Exited(5) => {
                warnings.push(format!(
                    "group `{}`: pytest collected no tests (filters: {})",
                    group.name,
                    if group.filters.trim().is_empty() {
                        "none"
                    } else {
                        group.filters.trim()
                    }
                ));
                return Ok(Discovery {
                    warnings,
                    ..Default::default()
                });
            }
            _ => {
                let hint = match out.ending {
                    _ if out.tail(QUOTED_LINES).contains("No module named pytest") => {
                        "pytest is not installed for that Python: install it, or set [framework] command"
                    }
                    Ending::Exited(4) => "pytest rejected its command line: check the group's filters and [framework] paths",
                    Ending::Exited(127) => "the pytest command was not found: check [framework] command (or python)",
                    _ => "run the command by hand in the working directory to see why",
                };
                return Err(Error::new(format!(
                    "group `{}`: pytest discovery failed ({})\n  command: {script}\n  in: {}\n{}\n  {hint}",
                    group.name,
                    out.describe_ending(None),
                    self.working_dir.display(),
                    indent(&out.tail(QUOTED_LINES)),
                )));
            }
        }
        if let Some(n) = parsed.reported {
            if n != parsed.ids.len() {
                return Err(Error::new(format!(
                    "group `{}`: pytest reported {} but Offload read {} node IDs from its output; \
                     a test would be lost or invented\n  command: {script}\n  output:\n{}",
                    group.name,
                    plural(n, "test"),
                    parsed.ids.len(),
                    indent(&out.tail(QUOTED_LINES)),
                )));
            }
        }
        if !parsed.split_lines.is_empty() {
            return Err(Error::new(format!(
                "group `{}`: pytest printed node IDs over several lines ({} such as {:?} between the IDs); \
                 a raw newline in a test ID does that when ID escaping is turned off, and the pieces are not tests\n  \
                 Offload passes `{ESCAPE_IDS}` to undo the ini option; check that the pytest command passes it on, \
                 or give the parameters ids without newlines\n  command: {script}\n  output:\n{}",
                group.name,
                plural(parsed.split_lines.len(), "line"),
                parsed.split_lines[0],
                indent(&out.tail(QUOTED_LINES)),
            )));
        }
        if !parsed.stray_lines.is_empty() {
            warnings.push(format!(
                "group `{}`: ignored {} of pytest discovery output that are not test IDs (first: {:?})",
                group.name,
                plural(parsed.stray_lines.len(), "line"),
                parsed.stray_lines[0]
            ));
        }
        if parsed.ids.is_empty() {
            warnings.push(format!(
                "group `{}`: pytest printed no test IDs (exit code 0); output:\n{}",
                group.name,
                indent(&out.tail(10))
            ));
        }
        let (ids, runner_ids) = self.canonical_ids(parsed.ids, &mut warnings, &group.name);
        Ok(Discovery {
            ids,
            runner_ids,
            warnings,
            ..Default::default()
        })
    }

    fn discovery_command(&self, group: &GroupConfig) -> String {
        self.discovery_script(group)
    }

    fn batch_command(
        &self,
        tests: &[String],
        result_file: &str,
        _from_discovery: Option<&str>,
    ) -> BatchCommand {
        // Unbuffered, one line per test (`--verbosity=1`, before `run_args`
        // so that a user's `-q` there still wins): the run shows each test
        // as it finishes.
        let mut script = format!("PYTHONUNBUFFERED=1 {} --verbosity=1", self.pytest());
        if let Some(args) = self
            .config
            .run_args
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            script.push(' ');
            script.push_str(args);
        }
        // xunit1 adds the `file` attribute; an empty prefix undoes a user's
        // `--junit-prefix`, which would otherwise change every classname.
        // A failing test's captured output goes into its testcase, where
        // the merged report and `offload logs` show it.
        script.push_str(&format!(
            " --junitxml={} -o junit_family=xunit1 --junit-prefix= {JUNIT_OUTPUT} {ESCAPE_IDS}",
            shell_quote(result_file)
        ));
        for id in tests {
            script.push(' ');
            // pytest reads `@file` as an argument file and `-x` as an option.
            if id.starts_with('@') || id.starts_with('-') {
                script.push_str(&shell_quote(&format!("./{id}")));
            } else {
                script.push_str(&shell_quote(id));
            }
        }
        BatchCommand {
            script,
            results: ResultLocation::ResultFile,
        }
    }

    /// `tests/t.py::test_a PASSED   [ 10%]`, as `--verbosity=1` prints it.
    fn live_result<'l>(&self, line: &'l str) -> Option<(&'l str, Outcome)> {
        collect_output::verbose_result(line)
    }

    /// `expected` are the runner's names of the batch's tests: the node IDs
    /// pytest itself prints (see [`PytestFramework::canonical_ids`]).
    fn match_results(&self, cases: Vec<JunitCase>, expected: &[String]) -> MatchedResults {
        let node_ids: Vec<&str> = expected.iter().map(String::as_str).collect();
        let mut matched = junit_ids::match_cases(cases, &node_ids);
        for (_, attempt) in &mut matched.matched {
            locate_failure(attempt);
        }
        matched
    }

    fn discovery_inputs(&self, group: &GroupConfig) -> Option<DiscoveryInputs> {
        Some(inputs::discovery_inputs(
            &self.discovery_script(group),
            &self.pytest(),
            &self.config.paths,
            &self.working_dir,
        ))
    }

    /// pytest runs nothing and exits with 4 when an argument names no test.
    fn not_found(&self, batch: &RanBatch<'_>) -> Vec<usize> {
        if batch.exit_code != Some(4) {
            return Vec::new();
        }
        inputs::not_found(batch.ids, batch.output.iter().map(|(_, line)| line))
    }

    fn hints(&self) -> Hints {
        let command = self.pytest();
        Hints {
            discovery_commands: vec![("[framework] command (pytest)".into(), command.clone())],
            version_probe: Some((
                format!("{command} --version"),
                "pytest".into(),
                "install pytest for that interpreter (pip install pytest), or set [framework] command \
                 to one that has it (e.g. \"uv run pytest\", \".venv/bin/python -m pytest\")"
                    .into(),
            )),
            discovery_fix: format!(
                "run `{command} --collect-only -q {}` in {} and fix what it reports (import errors, \
                 missing packages), or fix [framework] command / paths",
                self.config.paths.join(" "),
                self.working_dir.display()
            ),
            no_tests_fix: "check the groups' filters and [framework] paths (`offload collect` shows \
                           what discovery finds)"
                .into(),
            no_results_fix: format!(
                "run `{command} <a test> --junitxml=out.xml` by hand and check that pytest starts (plugins, addopts)"
            ),
            mapping_fix: "a conftest.py or plugin probably renames the JUnit testcases; \
                 Offload maps the `file`/`classname` and `name` pytest writes back to node IDs: \
                 remove the renaming, or write the node ID into `name`"
                .into(),
            ..Hints::default()
        }
    }

    /// Every batch pays Python start-up, pytest's plugins and the collection
    /// of its modules (0.3–1 s, the time of ten or more typical tests): plan
    /// few, large batches until history has measured it.
    fn unknown_startup_min_fraction(&self) -> u64 {
        4
    }

    fn unknown_startup_min_tests(&self) -> usize {
        40
    }

    fn batch_id_bytes(&self, id: &str) -> usize {
        let prefix = if id.starts_with('@') || id.starts_with('-') {
            "./".len()
        } else {
            0
        };
        crate::process::quoted_bytes(id, 1) + prefix + 1
    }

    /// The file: the part of the node ID before the first `::` (an item
    /// without one, such as a plugin's whole-session check, has no file).
    fn locality_key<'a>(&self, id: &'a str) -> Option<&'a str> {
        id.split_once("::").map(|(file, _)| file)
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Where a pytest test failed, for the CI annotations. pytest's JUnit
/// `line` is the 0-based line of the test's `def`; a failure's traceback
/// names the 1-based line it failed on in the test's file
/// (`tests/test_math.py:9: AssertionError`): the last such line, when
/// there is one, else the `def`.
fn locate_failure(attempt: &mut crate::model::TestAttempt) {
    let Some(location) = attempt.location.as_deref_mut() else {
        return;
    };
    location.line = location.line.map(|l| l.saturating_add(1));
    let Some(details) = attempt.details.as_deref() else {
        return;
    };
    let prefix = format!("{}:", location.file);
    let failed_at = details.lines().rev().find_map(|l| {
        let (n, rest) = l.strip_prefix(&prefix)?.split_once(':')?;
        rest.starts_with(' ').then(|| n.parse::<u32>().ok())?
    });
    if let Some(n) = failed_at {
        location.line = Some(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(command: Option<&str>) -> PytestConfig {
        PytestConfig {
            paths: vec!["tests".into(), "my tests".into()],
            command: command.map(str::to_string),
            run_args: Some("-p no:randomly".into()),
            extra_args: vec!["-x".into(), "--co'x".into()],
            python: "python3".into(),
            markers: Some("not slow".into()),
        }
    }

    fn group(filters: &str) -> GroupConfig {
        GroupConfig {
            name: "g".into(),
            retry_count: 0,
            filters: filters.into(),
        }
    }

    #[test]
    fn discovery_command() {
        let f = PytestFramework::new(config(Some("uv run pytest")), PathBuf::from("."));
        assert_eq!(
            f.discovery_script(&group("-m 'slow' -k x")),
            format!("uv run pytest --collect-only -q -m 'slow' -k x {DISCOVERY_OPTIONS} {ESCAPE_IDS} tests 'my tests'")
        );
        // Legacy mode: python + extra_args (pytest arguments), markers when no filters.
        let f = PytestFramework::new(config(None), PathBuf::from("."));
        assert_eq!(
            f.discovery_script(&group("")),
            format!("python3 -m pytest -x '--co'\\''x' --collect-only -q -m 'not slow' {DISCOVERY_OPTIONS} {ESCAPE_IDS} tests 'my tests'")
        );
    }

    #[test]
    fn locality_is_the_file() {
        let f = PytestFramework::new(config(None), PathBuf::from("."));
        assert_eq!(
            f.locality_key("tests/a b.py::TestK::test_p[x::y]"),
            Some("tests/a b.py")
        );
        assert_eq!(
            f.locality_key("pkg/mod.py::pkg.mod.func"),
            Some("pkg/mod.py")
        );
        assert_eq!(f.locality_key("session-check"), None);
        assert!(!f.runs_tests_side_by_side());
    }

    #[test]
    fn batch_command_quotes_ids() {
        let f = PytestFramework::new(config(Some("uv run pytest")), PathBuf::from("."));
        let cmd = f.batch_command(
            &[
                "tests/t.py::test_p[a b]".into(),
                "tests/t.py::test_p[it's]".into(),
                "tests/t.py::test_plain".into(),
                "@odd/t.py::test".into(),
            ],
            "/tmp/out dir/r.xml",
            None,
        );
        assert_eq!(
            cmd.script,
            format!(
                "PYTHONUNBUFFERED=1 uv run pytest --verbosity=1 -p no:randomly --junitxml='/tmp/out dir/r.xml' -o junit_family=xunit1 --junit-prefix= {JUNIT_OUTPUT} {ESCAPE_IDS} \
                 'tests/t.py::test_p[a b]' 'tests/t.py::test_p[it'\\''s]' tests/t.py::test_plain './@odd/t.py::test'"
            )
        );
        assert_eq!(cmd.results, ResultLocation::ResultFile);
    }

    #[test]
    fn results_are_matched_through_the_node_ids_pytest_prints() {
        // pytest's rootdir is `tests/`: its JUnit speaks of `test_r.py`, the
        // canonical ID is `tests/test_r.py::test_a`, and the batch's expected
        // names are the node IDs discovery saw.
        let f = PytestFramework::new(config(Some("pytest")), PathBuf::from("."));
        let case = JunitCase {
            classname: Some("test_r".into()),
            file: Some("test_r.py".into()),
            time: 0.1,
            outcome: crate::model::Outcome::Failed,
            ..JunitCase::named("test_a")
        };
        let expected = vec![
            "other.py::test_b".to_string(),
            "test_r.py::test_a".to_string(),
        ];
        let m = f.match_results(vec![case], &expected);
        assert!(m.unmatched.is_empty(), "{:?}", m.unmatched);
        assert_eq!(m.matched.len(), 1);
        assert_eq!(m.matched[0].0, 1);
    }

    #[test]
    fn a_failure_is_located_on_its_line_in_the_test_file() {
        use crate::model::{SourceLocation, TestAttempt};
        let at = |details: Option<&str>| {
            let mut a = TestAttempt {
                details: details.map(str::to_string),
                location: Some(Box::new(SourceLocation {
                    file: "tests/test_math.py".into(),
                    line: Some(7),
                })),
                ..TestAttempt::synthetic(Outcome::Failed, "", 1)
            };
            locate_failure(&mut a);
            a.location.unwrap().line
        };
        // No traceback: the `def`, 1-based.
        assert_eq!(at(None), Some(8));
        assert_eq!(
            at(Some(
                "def test_fails():\n>       assert 1 + 1 == 3\nE       AssertionError\n\ntests/test_math.py:9: AssertionError"
            )),
            Some(9)
        );
        // Through a helper: the last line in the test's own file.
        assert_eq!(
            at(Some(
                "tests/test_math.py:12: in test_x\n    helper()\ntests/helpers.py:3: in helper\n    boom()\ntests/helpers.py:5: ValueError"
            )),
            Some(12)
        );
        // Another file's line is never taken for the test file's.
        assert_eq!(at(Some("tests/test_math.pyc:4: nope")), Some(8));
    }
}
