//! GitHub Actions annotations: when the run is a GitHub Actions step
//! (`GITHUB_ACTIONS=true`), one `::error` workflow command per test that
//! failed for good and one `::warning` per flaky test, printed when the run
//! finishes. GitHub turns them into annotations on the run's page and, with
//! a file and a line, on the pull request's diff.
//!
//! Also here: [`GithubEnv`], what the environment says about the job (the
//! step summary, `GITHUB_STEP_SUMMARY`, is `step_summary.rs`), and the
//! escaping workflow commands need.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::events::{Event, ReportError, Reporter};
use crate::model::{FinalStatus, Outcome, SourceLocation, TestAttempt, TestRecord};

/// GitHub shows at most 10 error annotations of a step (and 50 of a job);
/// past this many, one more line counts the rest instead of filling the log.
const ANNOTATIONS_SHOWN: usize = 50;

/// A failure message is cut to this many lines, then to this many
/// characters (`offload logs` has the rest).
const MESSAGE_LINES: usize = 10;
const MESSAGE_MAX_CHARS: usize = 1000;

/// What the environment says about a GitHub Actions job.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GithubEnv {
    /// `GITHUB_STEP_SUMMARY`: the file the job summary is appended to.
    pub step_summary: Option<PathBuf>,
    /// What goes before a runner's relative paths to make them relative to
    /// the repository (`GITHUB_WORKSPACE`), as annotations need: `app/` when
    /// the tests run in `$GITHUB_WORKSPACE/app`; empty otherwise.
    pub path_prefix: String,
}

impl GithubEnv {
    /// `Some` inside a GitHub Actions job (`GITHUB_ACTIONS=true`). `var`
    /// reads the environment; `working_dir` is where the runner runs (its
    /// paths are relative to it).
    pub fn detect(var: impl Fn(&str) -> Option<String>, working_dir: &Path) -> Option<GithubEnv> {
        if var("GITHUB_ACTIONS").as_deref() != Some("true") {
            return None;
        }
        let step_summary = var("GITHUB_STEP_SUMMARY")
            .filter(|p| !p.trim().is_empty())
            .map(PathBuf::from);
        let path_prefix = var("GITHUB_WORKSPACE")
            .and_then(|ws| relative_prefix(Path::new(&ws), working_dir))
            .unwrap_or_default();
        Some(GithubEnv {
            step_summary,
            path_prefix,
        })
    }
}

/// `app/` when `dir` is `workspace/app`, `` when it is `workspace`; `None`
/// when it is outside (the runner's paths are then left as they are).
fn relative_prefix(workspace: &Path, dir: &Path) -> Option<String> {
    let workspace = workspace.canonicalize().ok()?;
    let dir = dir.canonicalize().ok()?;
    let rel = dir.strip_prefix(&workspace).ok()?;
    let rel = rel.to_str()?;
    Some(if rel.is_empty() {
        String::new()
    } else {
        format!("{rel}/")
    })
}

/// A workflow command's message: `%`, `\r`, `\n` escaped, as GitHub's
/// runner reads them back.
pub fn escape_data(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c => out.push(c),
        }
    }
    out
}

/// A workflow command's property value (`file=`, `title=`): as
/// [`escape_data`], and `:` and `,`, which end a property.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// Prints the annotations when the run finishes.
pub struct AnnotationsReporter {
    path_prefix: String,
    /// With `--message-format json`, stdout is the event stream; GitHub's
    /// runner reads workflow commands from stderr as well.
    to_stderr: bool,
}

impl AnnotationsReporter {
    pub fn new(env: &GithubEnv, to_stderr: bool) -> Self {
        AnnotationsReporter {
            path_prefix: env.path_prefix.clone(),
            to_stderr,
        }
    }
}

impl Reporter for AnnotationsReporter {
    fn on_event(&mut self, event: &Event<'_>) -> Result<(), ReportError> {
        if let Event::RunFinished { records, .. } = event {
            let text = render_annotations(records, &self.path_prefix);
            crate::console::write_text(&text, self.to_stderr);
        }
        Ok(())
    }
}

/// One `::error` line per test that failed or errored for good, then one
/// `::warning` per flaky test, each list in ID order and bounded; empty
/// when every test passed. `path_prefix` goes before relative file paths.
pub fn render_annotations(records: &[TestRecord], path_prefix: &str) -> String {
    let mut out = String::new();
    let failed = super::summary::by_id(records, |s| {
        matches!(s, FinalStatus::Failed | FinalStatus::Error)
    });
    for r in failed.iter().take(ANNOTATIONS_SHOWN) {
        let verb = if r.status == FinalStatus::Error {
            "errored"
        } else {
            "failed"
        };
        let mut message = r
            .attempts
            .last()
            .map(failure_text)
            .unwrap_or_else(|| "(no failure message)".into());
        if r.attempts.len() > 1 {
            let _ = write!(message, "\n({verb} in all {} attempts)", r.attempts.len());
        }
        command(
            &mut out,
            "error",
            location(r, path_prefix).as_ref(),
            &format!("Test {verb}: {}", r.id),
            &message,
        );
    }
    if failed.len() > ANNOTATIONS_SHOWN {
        let more = failed.len() - ANNOTATIONS_SHOWN;
        command(
            &mut out,
            "error",
            None,
            "More failed tests",
            &format!(
                "… and {} more tests failed: see the job summary, or `offload logs --failures --errors`",
                super::summary::thousands(more)
            ),
        );
    }
    let flaky = super::summary::by_id(records, |s| s == FinalStatus::Flaky);
    for r in flaky.iter().take(ANNOTATIONS_SHOWN) {
        let first_failure = r
            .attempts
            .iter()
            .find(|a| matches!(a.outcome, Outcome::Failed | Outcome::Error));
        let mut message = format!(
            "{}; it failed first with:\n",
            super::summary::attempts_text(r)
        );
        message.push_str(
            &first_failure
                .map(failure_text)
                .unwrap_or_else(|| "(no failure message)".into()),
        );
        command(
            &mut out,
            "warning",
            location(r, path_prefix).as_ref(),
            &format!("Flaky test: {}", r.id),
            &message,
        );
    }
    if flaky.len() > ANNOTATIONS_SHOWN {
        let more = flaky.len() - ANNOTATIONS_SHOWN;
        command(
            &mut out,
            "warning",
            None,
            "More flaky tests",
            &format!(
                "… and {} more tests were flaky: see the job summary",
                super::summary::thousands(more)
            ),
        );
    }
    out
}

/// `::{kind} file=…,line=…,title=…::{message}` and a newline.
fn command(
    out: &mut String,
    kind: &str,
    location: Option<&SourceLocation>,
    title: &str,
    message: &str,
) {
    let mut properties = Vec::new();
    if let Some(l) = location {
        properties.push(format!("file={}", escape_property(&l.file)));
        if let Some(line) = l.line {
            properties.push(format!("line={line}"));
        }
    }
    properties.push(format!("title={}", escape_property(title)));
    let _ = writeln!(
        out,
        "::{kind} {}::{}",
        properties.join(","),
        escape_data(message)
    );
}

/// Where the test failed: the last failed attempt that says (a flaky
/// test's passing attempt only knows where the test is), else any; its
/// relative path made relative to the repository.
fn location(r: &TestRecord, path_prefix: &str) -> Option<SourceLocation> {
    let failed = |a: &&TestAttempt| matches!(a.outcome, Outcome::Failed | Outcome::Error);
    let l = r
        .attempts
        .iter()
        .rev()
        .filter(failed)
        .find_map(|a| a.location.as_deref())
        .or_else(|| r.attempts.iter().rev().find_map(|a| a.location.as_deref()))?;
    let file = l.file.strip_prefix("./").unwrap_or(&l.file);
    let file = if Path::new(file).is_absolute() {
        file.to_string()
    } else {
        format!("{path_prefix}{file}")
    };
    Some(SourceLocation { file, line: l.line })
}

/// The first lines of an attempt's failure: its message, or else its
/// details, bounded.
fn failure_text(a: &TestAttempt) -> String {
    let text = [a.message.as_deref(), a.details.as_deref()]
        .into_iter()
        .flatten()
        .find(|t| !t.trim().is_empty());
    let Some(text) = text else {
        return "(no failure message)".into();
    };
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .skip_while(|l| l.is_empty())
        .collect();
    let mut shown = lines[..lines.len().min(MESSAGE_LINES)].join("\n");
    let shown_chars = shown.chars().count();
    if shown_chars > MESSAGE_MAX_CHARS {
        shown = super::summary::truncate(&shown, MESSAGE_MAX_CHARS);
    } else if lines.len() > MESSAGE_LINES {
        shown.push_str("\n…");
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::testing::record;
    use std::time::Duration;

    fn attempt(outcome: Outcome, message: Option<&str>, at: Option<(&str, u32)>) -> TestAttempt {
        TestAttempt {
            duration: Duration::from_millis(10),
            location: at.map(|(file, line)| {
                Box::new(SourceLocation {
                    file: file.into(),
                    line: Some(line),
                })
            }),
            message: message.map(str::to_string),
            ..TestAttempt::synthetic(outcome, "", 1)
        }
    }

    #[test]
    fn data_escapes_percent_and_line_breaks_only() {
        assert_eq!(
            escape_data("100% sure:\r\nno, not, really"),
            "100%25 sure:%0D%0Ano, not, really"
        );
        // `%` first: an escape is never escaped twice.
        assert_eq!(escape_data("%0A"), "%250A");
    }

    #[test]
    fn properties_also_escape_colons_and_commas() {
        assert_eq!(
            escape_property("tests/a.py::test_x[1,2]"),
            "tests/a.py%3A%3Atest_x[1%2C2]"
        );
        assert_eq!(escape_property("50%\n"), "50%25%0A");
    }

    #[test]
    fn a_failure_with_a_location_names_file_and_line() {
        let records = vec![
            record(
                "tests/test_a.py::test_ok",
                vec![attempt(Outcome::Passed, None, None)],
            ),
            record(
                "tests/test_a.py::test_math[1,2]",
                vec![attempt(
                    Outcome::Failed,
                    Some("AssertionError: assert 1 == 2\n  where 1 = f()"),
                    Some(("tests/test_a.py", 10)),
                )],
            ),
        ];
        assert_eq!(
            render_annotations(&records, "app/"),
            "::error file=app/tests/test_a.py,line=10,title=Test failed%3A tests/test_a.py%3A%3Atest_math[1%2C2]::AssertionError: assert 1 == 2%0A  where 1 = f()\n"
        );
    }

    #[test]
    fn without_a_location_file_and_line_are_left_out_and_errors_say_so() {
        let records = vec![record(
            "crash_one",
            vec![attempt(Outcome::Error, Some("crashed the runner"), None)],
        )];
        assert_eq!(
            render_annotations(&records, ""),
            "::error title=Test errored%3A crash_one::crashed the runner\n"
        );
    }

    #[test]
    fn flaky_tests_are_warnings_with_their_first_failure_and_retried_failures_count_attempts() {
        let records = vec![
            record(
                "flaky_b",
                vec![
                    attempt(Outcome::Failed, Some("flake"), Some(("./t.rs", 3))),
                    attempt(Outcome::Passed, None, Some(("./t.rs", 1))),
                ],
            ),
            record(
                "fail_a",
                vec![
                    attempt(Outcome::Failed, Some("one"), None),
                    attempt(Outcome::Failed, Some("two"), None),
                ],
            ),
        ];
        assert_eq!(
            render_annotations(&records, ""),
            "::error title=Test failed%3A fail_a::two%0A(failed in all 2 attempts)\n\
             ::warning file=t.rs,line=3,title=Flaky test%3A flaky_b::passed on attempt 2 of 2; it failed first with:%0Aflake\n"
        );
    }

    #[test]
    fn long_messages_and_long_lists_are_bounded() {
        let long = (1..=30)
            .map(|i| format!("line {i}"))
            .collect::<Vec<_>>()
            .join("\n");
        let records: Vec<TestRecord> = (0..60)
            .map(|i| {
                record(
                    &format!("fail_{i}"),
                    vec![attempt(Outcome::Failed, Some(&long), None)],
                )
            })
            .collect();
        let text = render_annotations(&records, "");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), ANNOTATIONS_SHOWN + 1);
        assert!(lines[0].ends_with("line 9%0Aline 10%0A…"), "{}", lines[0]);
        assert_eq!(
            lines[ANNOTATIONS_SHOWN],
            "::error title=More failed tests::… and 10 more tests failed: see the job summary, or `offload logs --failures --errors`"
        );
        let huge = "x".repeat(5000);
        let one = vec![record(
            "f",
            vec![attempt(Outcome::Failed, Some(&huge), None)],
        )];
        let text = render_annotations(&one, "");
        assert!(
            text.chars().count() < MESSAGE_MAX_CHARS + 100,
            "{}",
            text.len()
        );
    }

    #[test]
    fn only_a_github_actions_job_is_detected_and_paths_are_made_relative_to_the_workspace() {
        let here = std::env::temp_dir().join(format!("offload-gh-{}", std::process::id()));
        std::fs::create_dir_all(here.join("app")).unwrap();
        let env = |vars: &'static [(&'static str, &'static str)], ws: Option<String>| {
            move |k: &str| {
                if k == "GITHUB_WORKSPACE" {
                    return ws.clone();
                }
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let ws = Some(here.display().to_string());
        assert_eq!(GithubEnv::detect(env(&[], ws.clone()), &here), None);
        assert_eq!(
            GithubEnv::detect(env(&[("GITHUB_ACTIONS", "false")], ws.clone()), &here),
            None
        );
        let found = GithubEnv::detect(
            env(
                &[
                    ("GITHUB_ACTIONS", "true"),
                    ("GITHUB_STEP_SUMMARY", "/tmp/s.md"),
                ],
                ws.clone(),
            ),
            &here.join("app"),
        )
        .unwrap();
        assert_eq!(found.step_summary, Some(PathBuf::from("/tmp/s.md")));
        assert_eq!(found.path_prefix, "app/");
        let at_root = GithubEnv::detect(env(&[("GITHUB_ACTIONS", "true")], ws), &here).unwrap();
        assert_eq!(at_root, GithubEnv::default());
        let elsewhere = GithubEnv::detect(
            env(
                &[("GITHUB_ACTIONS", "true")],
                Some(here.join("app").display().to_string()),
            ),
            &here,
        )
        .unwrap();
        assert_eq!(elsewhere.path_prefix, "");
        let _ = std::fs::remove_dir_all(&here);
    }
}
