//! The `default` framework: any runner, through `discover_command` and
//! `run_command` templates.

use std::path::PathBuf;

use super::{
    format_test_id, match_exact, BatchCommand, Discovery, DiscoveryInputs, Framework, Hints,
    MatchedResults, ResultLocation,
};
use crate::cancel::Cancel;
use crate::config::{DefaultFrameworkConfig, GroupConfig};
use crate::error::{Error, Result};
use crate::junit::read::JunitCase;
use crate::process::{shell_quote, LineSink};

pub struct DefaultFramework {
    config: DefaultFrameworkConfig,
    working_dir: PathBuf,
}

impl DefaultFramework {
    pub fn new(config: DefaultFrameworkConfig, working_dir: PathBuf) -> Self {
        DefaultFramework {
            config,
            working_dir,
        }
    }
}

impl Framework for DefaultFramework {
    fn discover(
        &self,
        group: &GroupConfig,
        cancel: &Cancel,
        output: Option<&LineSink>,
    ) -> Result<Discovery> {
        let script = self.discovery_command(group);
        let out = super::run_discovery(
            group,
            "discover_command",
            &script,
            &self.working_dir,
            &[],
            cancel,
            output,
        )?;
        if !out.success() {
            let stderr = out.stderr();
            let shown = if stderr.trim().is_empty() {
                out.tail(20)
            } else {
                stderr
            };
            return Err(Error::new(format!(
                "group `{}`: discover_command failed ({}): {}\n  command: {}\n{}\n  fix the command in [framework] discover_command, or run it by hand in {} to see why",
                group.name,
                out.describe_ending(None),
                shown.lines().last().unwrap_or("no output"),
                script,
                super::indent(&crate::text::last_lines(&shown, 20)),
                self.working_dir.display()
            )));
        }
        let ids = parse_discovered_ids(&out.stdout());
        let mut warnings = Vec::new();
        if ids.is_empty() {
            warnings.push(format!(
                "group `{}`: discover_command found no tests",
                group.name
            ));
        }
        Ok(Discovery {
            ids,
            runner_ids: None,
            warnings,
            ..Default::default()
        })
    }

    fn discovery_command(&self, group: &GroupConfig) -> String {
        // Filters are shell syntax chosen by the user (`-m 'not slow'`):
        // inserted as they are.
        crate::text::fill(
            &self.config.discover_command,
            &[("filters", &group.filters)],
        )
    }

    fn batch_command(
        &self,
        tests: &[String],
        result_file: &str,
        _from_discovery: Option<&str>,
    ) -> BatchCommand {
        let quoted: Vec<String> = tests.iter().map(|t| shell_quote(t)).collect();
        let template = &self.config.run_command;
        let results = if template.contains("{result_file}") {
            ResultLocation::ResultFile
        } else if let Some(fixed) = &self.config.result_file {
            ResultLocation::Fixed(fixed.clone())
        } else {
            ResultLocation::ExitCode
        };
        // One pass: a test ID containing the text "{result_file}" is never
        // rewritten.
        let script = crate::text::fill(
            template,
            &[
                ("result_file", &shell_quote(result_file)),
                ("tests", &quoted.join(" ")),
            ],
        );
        BatchCommand { script, results }
    }

    fn match_results(&self, cases: Vec<JunitCase>, expected: &[String]) -> MatchedResults {
        match_exact(cases, expected, |c| {
            format_test_id(&self.config.test_id_format, c)
        })
    }

    /// What `discover_command` reads is opaque to Offload: its discovery is
    /// reused only for a project that names it (`discovery_inputs`), while
    /// the command, the filters, `PATH` and every file under those paths
    /// stay the same.
    fn discovery_inputs(&self, group: &GroupConfig) -> Option<DiscoveryInputs> {
        let paths = self.config.discovery_inputs.as_ref()?;
        Some(DiscoveryInputs {
            text: vec![
                self.discovery_command(group),
                format!("PATH={}", std::env::var("PATH").unwrap_or_default()),
            ],
            trees: paths.iter().map(PathBuf::from).collect(),
            ..DiscoveryInputs::default()
        })
    }

    fn hints(&self) -> Hints {
        Hints {
            discovery_commands: vec![(
                "[framework] discover_command".into(),
                self.config.discover_command.clone(),
            )],
            batch_commands: vec![(
                "[framework] run_command".into(),
                self.config.run_command.clone(),
            )],
            discovery_fix: format!(
                "fix [framework] discover_command: it must exit with 0 and print one test ID per line \
                 when run with sh in {}",
                self.working_dir.display()
            ),
            no_tests_fix: "check the groups' filters and [framework] discover_command: it must print \
                           one test ID per line (`offload collect` shows what discovery finds)"
                .into(),
            no_results_fix: "make [framework] run_command write JUnit XML to {result_file} \
                             (or set result_file to the path it writes)"
                .into(),
            mapping_fix: "make [framework] test_id_format (built from {name} and {classname}) rebuild the IDs \
                          discover_command prints, or make the runner name its testcases by those IDs"
                .into(),
            test_id_format: Some(self.config.test_id_format.clone()),
            ..Hints::default()
        }
    }
}

/// One ID per line; blank lines and `#` comments skipped; IDs may contain spaces.
pub fn parse_discovered_ids(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|l| l.trim_end_matches(['\r', ' ', '\t']))
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framework(run: &str, result_file: Option<&str>) -> DefaultFramework {
        DefaultFramework::new(
            DefaultFrameworkConfig {
                discover_command: "echo {filters}".into(),
                run_command: run.into(),
                result_file: result_file.map(str::to_string),
                working_dir: None,
                test_id_format: "{classname} {name}".into(),
                discovery_inputs: None,
            },
            PathBuf::from("."),
        )
    }

    #[test]
    fn discovered_ids_skip_comments_and_keep_spaces() {
        let ids = parse_discovered_ids("# header\na b\n\nc\r\n  \n#x\n");
        assert_eq!(ids, vec!["a b", "c"]);
    }

    #[test]
    fn batch_command_quotes_each_id() {
        let f = framework("run {result_file} {tests}", None);
        let cmd = f.batch_command(
            &["a b".into(), "it's".into(), "{result_file}".into()],
            "/r.xml",
            None,
        );
        assert_eq!(cmd.script, "run /r.xml 'a b' 'it'\\''s' '{result_file}'");
        assert_eq!(cmd.results, ResultLocation::ResultFile);
        assert_eq!(
            framework("run {tests}", Some("out.xml"))
                .batch_command(&[], "/r", None)
                .results,
            ResultLocation::Fixed("out.xml".into())
        );
        assert_eq!(
            framework("run {tests}", None)
                .batch_command(&[], "/r", None)
                .results,
            ResultLocation::ExitCode
        );
    }
}
