//! pytest: discovery with `--collect-only -q`, batches with `--junitxml`,
//! and results mapped back to node IDs from what pytest writes anyway — the
//! project needs no conftest change.
//!
//! Canonical IDs are node IDs as they would be typed in the working directory
//! (see [`rootdir`]); in the usual layout that is exactly what pytest prints.

mod collect_output;
mod junit_ids;
mod rootdir;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use super::{
    indent, last_lines, BatchCommand, Discovery, Framework, MatchedResults, ResultLocation,
};
use crate::cancel::Cancel;
use crate::config::{GroupConfig, PytestConfig};
use crate::error::{Error, Result};
use crate::junit::read::JunitCase;
use crate::process::{shell_quote, Ending};

/// Options that make discovery output readable whatever the project's
/// `addopts` (or a group's filters) say; they come after both, and the last
/// one wins. `--verbosity=-1` sets the level outright (a user `-v` plus our
/// `-q` would otherwise cancel out into a tree listing, and a user `-q` would
/// turn the IDs into per-file counts); `-rfE` and `--tb=short` make sure
/// collection errors are named; `--color=no` keeps escape codes out.
const DISCOVERY_OPTIONS: &str = "--verbosity=-1 --color=no --tb=short -rfE";

/// Lines of pytest output quoted in an error message.
const QUOTED_LINES: usize = 40;

pub struct PytestFramework {
    config: PytestConfig,
    working_dir: PathBuf,
    /// Canonical ID → pytest node ID, for the tests where they differ (the
    /// rootdir is not the working directory). Written by discovery, read when
    /// matching results.
    node_ids: Mutex<HashMap<String, String>>,
}

impl PytestFramework {
    pub fn new(config: PytestConfig, working_dir: PathBuf) -> Self {
        PytestFramework {
            config,
            working_dir,
            node_ids: Mutex::new(HashMap::new()),
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
        for p in &self.config.paths {
            s.push(' ');
            s.push_str(&shell_quote(p));
        }
        s
    }

    /// Turn pytest's node IDs into canonical IDs, remembering the ones that differ.
    fn canonical_ids(
        &self,
        node_ids: Vec<String>,
        warnings: &mut Vec<String>,
        group: &str,
    ) -> Vec<String> {
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
            return node_ids;
        };
        if root.as_os_str().is_empty() {
            return node_ids;
        }
        let mut map = self.node_ids.lock().unwrap_or_else(|e| e.into_inner());
        node_ids
            .into_iter()
            .map(|node_id| {
                if !node_id.contains("::") {
                    return node_id;
                }
                let file = junit_ids::file_part(&node_id);
                let rel = rootdir::relative_to_working_dir(&self.working_dir, &root, file);
                let canonical = format!("{rel}{}", &node_id[file.len()..]);
                map.insert(canonical.clone(), node_id);
                canonical
            })
            .collect()
    }
}

impl Framework for PytestFramework {
    fn discover(&self, group: &GroupConfig, cancel: &Cancel) -> Result<Discovery> {
        let script = self.discovery_script(group);
        let env = [("PYTHONIOENCODING".to_string(), "utf-8".to_string())];
        let out = super::run_discovery(
            group,
            "pytest discovery",
            &script,
            &self.working_dir,
            &env,
            cancel,
        )?;
        let parsed = collect_output::parse(&out.stdout());
        let mut warnings = Vec::new();

        if !parsed.collection_errors.is_empty() {
            let shown = if parsed.errors_section.trim().is_empty() {
                out.tail(QUOTED_LINES)
            } else {
                last_lines(&parsed.errors_section, QUOTED_LINES)
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
                    ids: Vec::new(),
                    warnings,
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
        let ids = self.canonical_ids(parsed.ids, &mut warnings, &group.name);
        Ok(Discovery { ids, warnings })
    }

    fn batch_command(&self, tests: &[String], result_file: &str) -> BatchCommand {
        let mut script = self.pytest();
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
        script.push_str(&format!(
            " --junitxml={} -o junit_family=xunit1 --junit-prefix=",
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

    fn match_results(&self, cases: Vec<JunitCase>, expected: &[String]) -> MatchedResults {
        let node_ids: Vec<String> = {
            let map = self.node_ids.lock().unwrap_or_else(|e| e.into_inner());
            expected
                .iter()
                .map(|id| map.get(id).unwrap_or(id).clone())
                .collect()
        };
        let node_ids: Vec<&str> = node_ids.iter().map(String::as_str).collect();
        junit_ids::match_cases(cases, &node_ids)
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

    /// The file: the part of the node ID before the first `::` (an item
    /// without one, such as a plugin's whole-session check, has no file).
    fn locality_key<'a>(&self, id: &'a str) -> Option<&'a str> {
        id.split_once("::").map(|(file, _)| file)
    }

    /// Each ID costs 3 bytes of quoting, more when a provider quotes the
    /// script again: 64 KiB of IDs keeps the script well under Linux's
    /// 128 KiB limit for one argument.
    fn max_batch_id_bytes(&self) -> usize {
        64 * 1024
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
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
            format!("uv run pytest --collect-only -q -m 'slow' -k x {DISCOVERY_OPTIONS} tests 'my tests'")
        );
        // Legacy mode: python + extra_args (pytest arguments), markers when no filters.
        let f = PytestFramework::new(config(None), PathBuf::from("."));
        assert_eq!(
            f.discovery_script(&group("")),
            format!("python3 -m pytest -x '--co'\\''x' --collect-only -q -m 'not slow' {DISCOVERY_OPTIONS} tests 'my tests'")
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
        );
        assert_eq!(
            cmd.script,
            "uv run pytest -p no:randomly --junitxml='/tmp/out dir/r.xml' -o junit_family=xunit1 --junit-prefix= \
             'tests/t.py::test_p[a b]' 'tests/t.py::test_p[it'\\''s]' tests/t.py::test_plain './@odd/t.py::test'"
        );
        assert_eq!(cmd.results, ResultLocation::ResultFile);
    }

    #[test]
    fn results_are_matched_through_the_node_ids_discovery_saw() {
        // pytest's rootdir is `tests/`: its JUnit speaks of `test_r.py`, the
        // canonical ID is `tests/test_r.py::test_a`.
        let f = PytestFramework::new(config(Some("pytest")), PathBuf::from("."));
        f.node_ids
            .lock()
            .unwrap()
            .insert("tests/test_r.py::test_a".into(), "test_r.py::test_a".into());
        let case = JunitCase {
            classname: Some("test_r".into()),
            file: Some("test_r.py".into()),
            time: 0.1,
            outcome: crate::model::Outcome::Failed,
            ..JunitCase::named("test_a")
        };
        let expected = vec![
            "tests/other.py::test_b".to_string(),
            "tests/test_r.py::test_a".to_string(),
        ];
        let m = f.match_results(vec![case], &expected);
        assert!(m.unmatched.is_empty(), "{:?}", m.unmatched);
        assert_eq!(m.matched.len(), 1);
        assert_eq!(m.matched[0].0, 1);
    }
}
