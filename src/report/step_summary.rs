//! The GitHub Actions job summary: a Markdown section appended to the file
//! `GITHUB_STEP_SUMMARY` names when the run finishes — the counts, the
//! failed and flaky tests, the slowest tests. Link-free (IDs and messages
//! are code spans, which GitHub neither links nor reads as HTML). Best
//! effort: a summary that cannot be appended is a warning, never a failed
//! run.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::events::{Counts, Event, ReportError, Reporter, RunStats};
use crate::model::{FinalStatus, TestRecord};

/// How many tests each list shows; the rest are counted.
const LIST_SHOWN: usize = 20;

pub struct StepSummaryReporter {
    path: PathBuf,
}

impl StepSummaryReporter {
    pub fn new(path: &Path) -> Self {
        StepSummaryReporter {
            path: path.to_path_buf(),
        }
    }
}

impl Reporter for StepSummaryReporter {
    fn on_event(&mut self, event: &Event<'_>) -> Result<(), ReportError> {
        if let Event::RunFinished { records, stats } = event {
            let text = render_step_summary(records, stats);
            append(&self.path, &text).map_err(|e| {
                ReportError::Warning(format!(
                    "cannot append the job summary to {} (GITHUB_STEP_SUMMARY): {}",
                    self.path.display(),
                    crate::error::io_message(&e)
                ))
            })?;
        }
        Ok(())
    }
}

/// Append `text` in one write: other steps' summaries stay as they are.
fn append(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.flush()
}

/// The job summary of a finished (or cancelled) run, in Markdown.
pub fn render_step_summary(records: &[TestRecord], stats: &RunStats) -> String {
    use super::summary::{
        attempts_text, by_id, first_failure_line, format_duration, format_seconds, slowest,
        thousands, verdict_line,
    };
    let c: Counts = Counts::of(records);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### Offload: {}\n",
        verdict_line(&c, stats.stopped.is_some())
    );
    out.push_str("| Total | Passed | Failed | Flaky | Not run | Skipped | Wall time |\n");
    out.push_str("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} | {} | {} |",
        thousands(c.total),
        thousands(c.passed),
        thousands(c.failed),
        thousands(c.flaky),
        thousands(c.not_run),
        thousands(c.skipped),
        format_duration(stats.wall)
    );

    let failed = by_id(records, |s| {
        matches!(s, FinalStatus::Failed | FinalStatus::Error)
    });
    if !failed.is_empty() {
        out.push_str("\n#### Failed tests\n\n| Test | Group | Failure |\n| --- | --- | --- |\n");
        for r in failed.iter().take(LIST_SHOWN) {
            let mut failure = first_failure_line(r);
            if r.status == FinalStatus::Error {
                failure = format!("[error] {failure}");
            }
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                cell_code(&r.id),
                cell_code(&r.group),
                cell_code(&failure)
            );
        }
        and_more(&mut out, failed.len(), "`offload logs --failures --errors`");
    }

    let flaky = by_id(records, |s| s == FinalStatus::Flaky);
    if !flaky.is_empty() {
        out.push_str(
            "\n#### Flaky tests (failed, then passed on a retry)\n\n| Test | Group | Attempts |\n| --- | --- | --- |\n",
        );
        for r in flaky.iter().take(LIST_SHOWN) {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                cell_code(&r.id),
                cell_code(&r.group),
                attempts_text(r)
            );
        }
        and_more(&mut out, flaky.len(), "`offload logs`");
    }

    let not_run = by_id(records, |s| s == FinalStatus::NotRun);
    if !not_run.is_empty() {
        out.push_str("\n#### Not run\n\n| Test | Group | Why |\n| --- | --- | --- |\n");
        for r in not_run.iter().take(LIST_SHOWN) {
            let why = r
                .not_run_reason
                .as_deref()
                .and_then(|w| w.lines().map(str::trim).find(|l| !l.is_empty()))
                .unwrap_or("no result was produced");
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                cell_code(&r.id),
                cell_code(&r.group),
                cell_code(&super::summary::truncate(why, 200))
            );
        }
        and_more(&mut out, not_run.len(), "`offload logs --errors`");
    }

    let slowest = slowest(records);
    if !slowest.is_empty() {
        out.push_str("\n#### Slowest tests\n\n| Time | Test |\n| ---: | --- |\n");
        for (r, d) in slowest {
            let _ = writeln!(out, "| {} | {} |", format_seconds(d), cell_code(&r.id));
        }
    }
    if let Some(fatal) = &stats.fatal {
        let _ = writeln!(out, "\n**Error:** {}", cell_code(fatal));
    }
    out.push('\n');
    out
}

/// `… and 3 more: offload logs` under a list of `total` rows.
fn and_more(out: &mut String, total: usize, command: &str) {
    if total > LIST_SHOWN {
        let _ = writeln!(
            out,
            "\n… and {} more: {command}",
            super::summary::thousands(total - LIST_SHOWN)
        );
    }
}

/// `text` as a code span that is safe in a table cell: on one line, fenced
/// by more backticks than it holds in a row, its `|` escaped (GitHub's
/// tables split cells at `|` even inside code spans).
fn cell_code(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    let one_line = one_line.trim();
    if one_line.is_empty() {
        return String::new();
    }
    let longest_run = one_line
        .split(|c| c != '`')
        .map(str::len)
        .max()
        .unwrap_or(0);
    let fence = "`".repeat(longest_run + 1);
    // A span that starts or ends with a backtick needs a space inside.
    let pad = if one_line.starts_with('`') || one_line.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{}{pad}{fence}", one_line.replace('|', "\\|"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::testing::record;
    use crate::model::{Outcome, TestAttempt};
    use std::time::Duration;

    fn attempt(outcome: Outcome, ms: u64, message: Option<&str>) -> TestAttempt {
        TestAttempt {
            duration: Duration::from_millis(ms),
            message: message.map(str::to_string),
            ..TestAttempt::synthetic(outcome, "", 1)
        }
    }

    #[test]
    fn code_spans_survive_backticks_pipes_and_line_breaks() {
        assert_eq!(cell_code("a::b"), "`a::b`");
        assert_eq!(cell_code("x | y\nz"), "`x \\| y z`");
        assert_eq!(cell_code("uses `` and `"), "``` uses `` and ` ```");
        assert_eq!(cell_code("a`b"), "``a`b``");
        assert_eq!(cell_code("<b>http://x</b>"), "`<b>http://x</b>`");
        assert_eq!(cell_code(" \n"), "");
    }

    #[test]
    fn a_mixed_run_reads_as_a_summary() {
        let mut not_run = record("hang_one", vec![]);
        not_run.not_run_reason = Some("cancelled (Ctrl-C)".into());
        let records = vec![
            record("pass_one", vec![attempt(Outcome::Passed, 1500, None)]),
            record(
                "fail_two",
                vec![attempt(Outcome::Failed, 20, Some("expected 1 | got 2"))],
            ),
            record(
                "flaky_three",
                vec![
                    attempt(Outcome::Failed, 5, Some("flake")),
                    attempt(Outcome::Passed, 5, None),
                ],
            ),
            not_run,
        ];
        let stats = RunStats {
            counts: Counts::of(&records),
            wall: Duration::from_millis(2500),
            ..RunStats::default()
        };
        assert_eq!(
            render_step_summary(&records, &stats),
            "### Offload: Some tests failed: 1 failed, 1 not run.

| Total | Passed | Failed | Flaky | Not run | Skipped | Wall time |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: |
| 4 | 1 | 1 | 1 | 1 | 0 | 2.5s |

#### Failed tests

| Test | Group | Failure |
| --- | --- | --- |
| `fail_two` | `all` | `expected 1 \\| got 2` |

#### Flaky tests (failed, then passed on a retry)

| Test | Group | Attempts |
| --- | --- | --- |
| `flaky_three` | `all` | passed on attempt 2 of 2 |

#### Not run

| Test | Group | Why |
| --- | --- | --- |
| `hang_one` | `all` | `cancelled (Ctrl-C)` |

#### Slowest tests

| Time | Test |
| ---: | --- |
| 1.50s | `pass_one` |
| 20ms | `fail_two` |
| 5ms | `flaky_three` |

"
        );
    }

    #[test]
    fn long_lists_are_bounded() {
        let records: Vec<TestRecord> = (0..25)
            .map(|i| {
                record(
                    &format!("fail_{i}"),
                    vec![attempt(Outcome::Failed, 0, Some("no"))],
                )
            })
            .collect();
        let text = render_step_summary(&records, &RunStats::default());
        assert_eq!(text.matches("| `fail_").count(), LIST_SHOWN);
        assert!(text.contains("\n… and 5 more: `offload logs --failures --errors`\n"));
    }

    #[test]
    fn an_unwritable_summary_is_a_warning_not_a_failure() {
        let mut reporter = StepSummaryReporter::new(Path::new("/nonexistent-dir/summary.md"));
        let stats = RunStats::default();
        let err = reporter
            .on_event(&Event::RunFinished {
                records: &[],
                stats: &stats,
            })
            .unwrap_err();
        assert!(
            matches!(&err, ReportError::Warning(m) if m.starts_with("cannot append the job summary to /nonexistent-dir/summary.md")),
            "{err:?}"
        );
    }
}
