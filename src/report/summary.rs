//! The end-of-run summary printed on stdout: counts, wall time, the failed,
//! flaky and not-run tests by name, the slowest tests, and where the reports
//! are. Pure text from the final records, so it is tested as exact snapshots.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::events::{Counts, Event, ReportError, Reporter};
use crate::model::{FinalStatus, TestRecord};

/// How many of the slowest tests the summary lists.
const SLOWEST_SHOWN: usize = 5;

/// How many tests each list (failed, flaky, not run) shows; the rest are
/// counted, with the command that shows them all.
const LIST_SHOWN: usize = 20;

/// Failure messages longer than this are cut (with `…`) so one huge
/// assertion does not flood the terminal; `offload logs` shows the rest.
const MESSAGE_MAX_CHARS: usize = 200;

/// The summary of a finished (or cancelled) run, ending with a newline.
///
/// `junit_path` is `None` when the JUnit report is disabled
/// (`[report] junit = false`); `logs_dir` is `{output_dir}/logs`;
/// `failures` are the reports that could not be written.
pub fn render_summary(
    records: &[TestRecord],
    wall: Duration,
    junit_path: Option<&Path>,
    logs_dir: &Path,
    cancelled: bool,
    failures: &[String],
) -> String {
    let counts = Counts::of(records);
    let mut out = String::new();

    out.push('\n');
    let _ = writeln!(out, "Test results ({}):", format_duration(wall));
    let _ = writeln!(out, "  Total:    {}", counts.total);
    let _ = writeln!(out, "  Passed:   {}", counts.passed);
    let _ = writeln!(out, "  Failed:   {}", counts.failed);
    let _ = writeln!(out, "  Flaky:    {}", counts.flaky);
    let _ = writeln!(out, "  Not run:  {}", counts.not_run);
    let _ = writeln!(out, "  Skipped:  {}", counts.skipped);

    let failed: Vec<&TestRecord> = by_id(records, |s| {
        matches!(s, FinalStatus::Failed | FinalStatus::Error)
    });
    if !failed.is_empty() {
        let _ = writeln!(out, "\nFailed tests:");
        let more = failed.len().saturating_sub(LIST_SHOWN);
        for r in failed.into_iter().take(LIST_SHOWN) {
            let kind = if r.status == FinalStatus::Error {
                " [error]"
            } else {
                ""
            };
            let _ = writeln!(out, "  {}{kind}", r.id);
            let _ = writeln!(out, "      {}", first_failure_line(r));
        }
        and_more(&mut out, more, "", "offload logs --failures --errors");
    }

    let flaky = by_id(records, |s| s == FinalStatus::Flaky);
    if !flaky.is_empty() {
        let _ = writeln!(out, "\nFlaky tests (failed, then passed on a retry):");
        let more = flaky.len().saturating_sub(LIST_SHOWN);
        for r in flaky.into_iter().take(LIST_SHOWN) {
            let _ = writeln!(out, "  {} ({})", r.id, attempts_text(r));
        }
        and_more(&mut out, more, "", "offload logs");
    }

    let not_run = by_id(records, |s| s == FinalStatus::NotRun);
    if !not_run.is_empty() {
        let _ = writeln!(out, "\nNot run:");
        let reason = |r: &TestRecord| {
            one_line(
                r.not_run_reason
                    .as_deref()
                    .unwrap_or("no result was produced"),
            )
        };
        let more = not_run.len().saturating_sub(LIST_SHOWN);
        // The rest often share one reason (a cancelled run): say it once.
        let rest: Vec<String> = not_run[LIST_SHOWN.min(not_run.len())..]
            .iter()
            .map(|r| reason(r))
            .collect();
        let shared = match rest.first() {
            Some(first) if rest.iter().all(|r| r == first) => format!(" ({first})"),
            _ => String::new(),
        };
        for r in not_run.into_iter().take(LIST_SHOWN) {
            let _ = writeln!(out, "  {}: {}", r.id, reason(r));
        }
        and_more(&mut out, more, &shared, "offload logs --errors");
    }

    let slowest = slowest(records);
    if !slowest.is_empty() {
        let _ = writeln!(out, "\nSlowest tests:");
        let width = slowest
            .iter()
            .map(|(_, d)| format_seconds(*d).len())
            .max()
            .unwrap_or(0);
        for (r, d) in slowest {
            let _ = writeln!(out, "  {:>width$}  {}", format_seconds(d), r.id);
        }
    }

    let _ = writeln!(out, "\nReports:");
    match junit_path {
        Some(p) => {
            let _ = writeln!(out, "  JUnit:      {}", p.display());
        }
        None => {
            let _ = writeln!(out, "  JUnit:      not written ([report] junit = false)");
        }
    }
    let _ = writeln!(
        out,
        "  Batch logs: {}  (offload logs --failures shows the failures)",
        logs_dir.display()
    );
    for failure in failures {
        let _ = writeln!(out, "  Not written: {failure}");
    }

    out.push('\n');
    out.push_str(&verdict_line(&counts, cancelled));
    if !failures.is_empty() {
        let _ = write!(
            out,
            " {} could not be written.",
            if failures.len() == 1 {
                "A report"
            } else {
                "Some reports"
            }
        );
    }
    out.push('\n');
    out
}

/// Prints the summary on stdout when the run finishes, naming the reports
/// that could not be written, and the error that stopped the run, if any,
/// on stderr.
pub struct SummaryReporter {
    /// `None` when `[report] junit = false`.
    junit_path: Option<std::path::PathBuf>,
    logs_dir: std::path::PathBuf,
    failures: Vec<String>,
    /// `--message-format json`: stdout is the event stream, so the summary
    /// goes to stderr.
    to_stderr: bool,
}

impl SummaryReporter {
    pub fn new(junit_path: Option<&Path>, logs_dir: &Path, to_stderr: bool) -> Self {
        SummaryReporter {
            junit_path: junit_path.map(shown_path),
            logs_dir: shown_path(logs_dir),
            failures: Vec::new(),
            to_stderr,
        }
    }
}

impl Reporter for SummaryReporter {
    fn on_event(&mut self, event: &Event<'_>) -> Result<(), ReportError> {
        match event {
            Event::ReportFailed {
                message,
                fails_run: true,
            } => self.failures.push(message.to_string()),
            Event::ReportFailed {
                message,
                fails_run: false,
            } => crate::console::errln!("warning: {message}"),
            Event::RunFinished { records, stats } => {
                let text = render_summary(
                    records,
                    stats.wall,
                    self.junit_path.as_deref(),
                    &self.logs_dir,
                    stats.stopped.is_some(),
                    &self.failures,
                );
                crate::console::write_text(&text, self.to_stderr);
                if let Some(fatal) = &stats.fatal {
                    crate::console::errln!("error: {fatal}");
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// `path` relative to the current directory when it is inside it (what a
/// user would type), else as it is.
pub fn shown_path(path: &Path) -> std::path::PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| path.to_path_buf())
}

pub(super) fn verdict_line(c: &Counts, cancelled: bool) -> String {
    if cancelled {
        return format!(
            "Run cancelled: {} of {} tests did not run.",
            c.not_run, c.total
        );
    }
    if c.total == 0 {
        return "No tests were run.".into();
    }
    if c.failed > 0 || c.not_run > 0 {
        let mut parts = Vec::new();
        if c.failed > 0 {
            parts.push(format!("{} failed", c.failed));
        }
        if c.not_run > 0 {
            parts.push(format!("{} not run", c.not_run));
        }
        return format!("Some tests failed: {}.", parts.join(", "));
    }
    if c.flaky > 0 {
        return format!("All tests passed, {} only after a retry (flaky).", c.flaky);
    }
    "All tests passed!".into()
}

/// The records whose status matches, sorted by ID in natural order
/// (`test[2]` before `test[10]`) so the output is stable.
pub(super) fn by_id(
    records: &[TestRecord],
    keep: impl Fn(FinalStatus) -> bool,
) -> Vec<&TestRecord> {
    let mut v: Vec<&TestRecord> = records.iter().filter(|r| keep(r.status)).collect();
    v.sort_by(|a, b| crate::text::natural_cmp(&a.id, &b.id));
    v
}

/// `  … and 1,980 more (cancelled (Ctrl-C)): offload logs --errors`.
fn and_more(out: &mut String, more: usize, why: &str, command: &str) {
    if more > 0 {
        let _ = writeln!(out, "  … and {} more{why}: {command}", thousands(more));
    }
}

/// `1980` as `1,980`.
pub(super) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The first line of the deciding attempt's failure: its message, or else
/// the first non-empty line of its details.
pub(super) fn first_failure_line(r: &TestRecord) -> String {
    let Some(a) = r.deciding_attempt() else {
        return "(no failure message)".into();
    };
    let from_message = a.message.as_deref().and_then(first_nonempty_line);
    let from_details = a.details.as_deref().and_then(first_nonempty_line);
    match from_message.or(from_details) {
        Some(line) => truncate(line, MESSAGE_MAX_CHARS),
        None => "(no failure message)".into(),
    }
}

fn first_nonempty_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).find(|l| !l.is_empty())
}

fn one_line(text: &str) -> String {
    truncate(first_nonempty_line(text).unwrap_or(""), MESSAGE_MAX_CHARS)
}

pub(super) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}

pub(super) fn attempts_text(r: &TestRecord) -> String {
    let n = r.attempts.len();
    let passed_at = r
        .attempts
        .iter()
        .position(|a| a.outcome == crate::model::Outcome::Passed)
        .map(|i| i + 1);
    match passed_at {
        Some(i) => format!("passed on attempt {i} of {n}"),
        None => format!("{n} attempts"),
    }
}

/// The slowest tests by the duration of their deciding attempt, slowest
/// first (ties by ID). Tests that never ran or took under 1 ms are left out.
pub(super) fn slowest(records: &[TestRecord]) -> Vec<(&TestRecord, Duration)> {
    let mut v: Vec<(&TestRecord, Duration)> = records
        .iter()
        .filter_map(|r| r.deciding_attempt().map(|a| (r, a.duration)))
        // Under a millisecond is noise, not a slow test.
        .filter(|(_, d)| *d >= Duration::from_millis(1))
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.id.cmp(&b.0.id)));
    v.truncate(SLOWEST_SHOWN);
    v
}

/// A test's duration: `7ms`, `420ms`, `3.10s`.
pub(super) fn format_seconds(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

/// A wall time for people: `850ms`, `12.3s`, `2m 05s`, `1h 02m 03s`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    if secs < 60 {
        return format!("{:.1}s", d.as_secs_f64());
    }
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else {
        format!("{m}m {s:02}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::testing::record;
    use crate::model::{Outcome, TestAttempt};
    use std::path::PathBuf;

    fn attempt(outcome: Outcome, secs: f64, message: Option<&str>) -> TestAttempt {
        TestAttempt {
            outcome,
            duration: Duration::from_secs_f64(secs),
            message: message.map(str::to_string),
            details: None,
            system_out: None,
            system_err: None,
            batch: 1,
            started: None,
            location: None,
        }
    }

    fn mixed_run() -> Vec<TestRecord> {
        let mut not_run = record("tests/test_c.py::test_hang", vec![]);
        not_run.not_run_reason = Some("the batch crashed before writing results".into());
        let mut details_only = attempt(Outcome::Error, 0.5, None);
        details_only.details = Some("\n  Traceback (most recent call last):\n  boom\n".into());
        vec![
            record(
                "tests/test_a.py::test_ok",
                vec![attempt(Outcome::Passed, 1.25, None)],
            ),
            record(
                "tests/test_a.py::test_math",
                vec![attempt(
                    Outcome::Failed,
                    0.75,
                    Some("AssertionError: assert 1 == 2\n  where 1 = f()"),
                )],
            ),
            record("tests/test_b.py::test_setup", vec![details_only]),
            record(
                "tests/test_b.py::test_sometimes",
                vec![
                    attempt(Outcome::Failed, 0.1, Some("flake")),
                    attempt(Outcome::Passed, 0.2, None),
                ],
            ),
            not_run,
            record(
                "tests/test_d.py::test_skip",
                vec![attempt(Outcome::Skipped, 0.0, Some("no db"))],
            ),
            record(
                "tests/test_d.py::test_slow",
                vec![attempt(Outcome::Passed, 12.0, None)],
            ),
            record(
                "tests/test_d.py::test_fast",
                vec![attempt(Outcome::Passed, 0.01, None)],
            ),
        ]
    }

    #[test]
    fn summary_of_a_mixed_run() {
        let text = render_summary(
            &mixed_run(),
            Duration::from_millis(83_400),
            Some(&PathBuf::from("test-results/junit.xml")),
            &PathBuf::from("test-results/logs"),
            false,
            &[],
        );
        let expected = "
Test results (1m 23s):
  Total:    8
  Passed:   3
  Failed:   2
  Flaky:    1
  Not run:  1
  Skipped:  1

Failed tests:
  tests/test_a.py::test_math
      AssertionError: assert 1 == 2
  tests/test_b.py::test_setup [error]
      Traceback (most recent call last):

Flaky tests (failed, then passed on a retry):
  tests/test_b.py::test_sometimes (passed on attempt 2 of 2)

Not run:
  tests/test_c.py::test_hang: the batch crashed before writing results

Slowest tests:
  12.00s  tests/test_d.py::test_slow
   1.25s  tests/test_a.py::test_ok
   750ms  tests/test_a.py::test_math
   500ms  tests/test_b.py::test_setup
   200ms  tests/test_b.py::test_sometimes

Reports:
  JUnit:      test-results/junit.xml
  Batch logs: test-results/logs  (offload logs --failures shows the failures)

Some tests failed: 2 failed, 1 not run.
";
        assert_eq!(text, expected);
    }

    #[test]
    fn summary_of_a_clean_run_without_junit() {
        let records = vec![
            record("b", vec![attempt(Outcome::Passed, 0.5, None)]),
            record("a", vec![attempt(Outcome::Passed, 0.5, None)]),
        ];
        let text = render_summary(
            &records,
            Duration::from_millis(640),
            None,
            Path::new("out/logs"),
            false,
            &[],
        );
        let expected = "
Test results (640ms):
  Total:    2
  Passed:   2
  Failed:   0
  Flaky:    0
  Not run:  0
  Skipped:  0

Slowest tests:
  500ms  a
  500ms  b

Reports:
  JUnit:      not written ([report] junit = false)
  Batch logs: out/logs  (offload logs --failures shows the failures)

All tests passed!
";
        assert_eq!(text, expected);
    }

    #[test]
    fn long_lists_are_cut_in_natural_order_and_say_what_is_left() {
        let mut records: Vec<TestRecord> = (0..2000)
            .map(|i| {
                let mut r = record(&format!("t[{i}]"), vec![]);
                r.not_run_reason = Some("cancelled (Ctrl-C)".into());
                r
            })
            .collect();
        records.push(record(
            "f[10]",
            vec![attempt(Outcome::Failed, 0.0, Some("x"))],
        ));
        records.push(record(
            "f[9]",
            vec![attempt(Outcome::Failed, 0.0, Some("x"))],
        ));
        let text = render_summary(
            &records,
            Duration::from_secs(1),
            None,
            Path::new("logs"),
            true,
            &[],
        );
        let not_run: Vec<&str> = text
            .lines()
            .skip_while(|l| *l != "Not run:")
            .skip(1)
            .take_while(|l| !l.is_empty())
            .collect();
        assert_eq!(not_run.len(), 21, "{text}");
        assert_eq!(not_run[0], "  t[0]: cancelled (Ctrl-C)");
        assert_eq!(not_run[19], "  t[19]: cancelled (Ctrl-C)");
        assert_eq!(
            not_run[20],
            "  … and 1,980 more (cancelled (Ctrl-C)): offload logs --errors"
        );
        let failed = text.find("  f[9]\n").unwrap();
        assert!(failed < text.find("  f[10]\n").unwrap(), "{text}");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    fn verdicts() {
        let flaky = Counts {
            total: 3,
            passed: 2,
            flaky: 1,
            ..Counts::default()
        };
        assert_eq!(
            verdict_line(&flaky, false),
            "All tests passed, 1 only after a retry (flaky)."
        );
        let cancelled = Counts {
            total: 3,
            passed: 1,
            not_run: 2,
            ..Counts::default()
        };
        assert_eq!(
            verdict_line(&cancelled, true),
            "Run cancelled: 2 of 3 tests did not run."
        );
        assert_eq!(
            verdict_line(&Counts::default(), false),
            "No tests were run."
        );
    }

    #[test]
    fn long_messages_are_cut_and_durations_read_well() {
        let long = "x".repeat(300);
        let r = record("t", vec![attempt(Outcome::Failed, 0.0, Some(&long))]);
        let line = first_failure_line(&r);
        assert_eq!(line.chars().count(), MESSAGE_MAX_CHARS + 1);
        assert!(line.ends_with('…'));
        assert_eq!(format_duration(Duration::from_millis(12_340)), "12.3s");
        assert_eq!(format_duration(Duration::from_secs(3723)), "1h 02m 03s");
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            shown_path(&cwd.join("out/junit.xml")),
            PathBuf::from("out/junit.xml")
        );
        assert_eq!(
            shown_path(Path::new("/elsewhere/x")),
            PathBuf::from("/elsewhere/x")
        );
    }
}
