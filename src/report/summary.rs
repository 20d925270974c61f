//! The end-of-run summary printed on stdout: counts, wall time, the failed,
//! flaky and not-run tests by name, the slowest tests, and where the reports
//! are. Pure text from the final records, so it is tested as exact snapshots.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::model::{FinalStatus, TestRecord};

/// How many of the slowest tests the summary lists.
const SLOWEST_SHOWN: usize = 5;

/// Failure messages longer than this are cut (with `…`) so one huge
/// assertion does not flood the terminal; `offload logs` shows the rest.
const MESSAGE_MAX_CHARS: usize = 200;

/// The summary of a finished (or cancelled) run, ending with a newline.
///
/// `junit_path` is `None` when the JUnit report is disabled
/// (`[report] junit = false`); `logs_dir` is `{output_dir}/logs`.
pub fn render_summary(
    records: &[TestRecord],
    wall: Duration,
    junit_path: Option<&Path>,
    logs_dir: &Path,
    cancelled: bool,
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
        for r in failed {
            let kind = if r.status == FinalStatus::Error {
                " [error]"
            } else {
                ""
            };
            let _ = writeln!(out, "  {}{kind}", r.id);
            let _ = writeln!(out, "      {}", first_failure_line(r));
        }
    }

    let flaky = by_id(records, |s| s == FinalStatus::Flaky);
    if !flaky.is_empty() {
        let _ = writeln!(out, "\nFlaky tests (failed, then passed on a retry):");
        for r in flaky {
            let _ = writeln!(out, "  {} ({})", r.id, attempts_text(r));
        }
    }

    let not_run = by_id(records, |s| s == FinalStatus::NotRun);
    if !not_run.is_empty() {
        let _ = writeln!(out, "\nNot run:");
        for r in not_run {
            let reason = r
                .not_run_reason
                .as_deref()
                .unwrap_or("no result was produced");
            let _ = writeln!(out, "  {}: {}", r.id, one_line(reason));
        }
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

    out.push('\n');
    out.push_str(&verdict_line(&counts, cancelled));
    out.push('\n');
    out
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

/// Test counts by final status. The categories do not overlap: they add up
/// to `total` (an errored test counts as failed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub flaky: usize,
    pub not_run: usize,
    pub skipped: usize,
}

impl Counts {
    pub fn of(records: &[TestRecord]) -> Counts {
        let mut c = Counts {
            total: records.len(),
            ..Counts::default()
        };
        for r in records {
            c.add(r.status);
        }
        c
    }

    /// Count one more test with this final status (not touching `total`).
    pub fn add(&mut self, status: FinalStatus) {
        match status {
            FinalStatus::Passed => self.passed += 1,
            FinalStatus::Flaky => self.flaky += 1,
            FinalStatus::Skipped => self.skipped += 1,
            FinalStatus::Failed | FinalStatus::Error => self.failed += 1,
            FinalStatus::NotRun => self.not_run += 1,
        }
    }

    /// Tests with a final verdict.
    pub fn decided(&self) -> usize {
        self.passed + self.failed + self.flaky + self.not_run + self.skipped
    }
}

fn verdict_line(c: &Counts, cancelled: bool) -> String {
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

/// The records whose status matches, sorted by ID so the output is stable.
fn by_id(records: &[TestRecord], keep: impl Fn(FinalStatus) -> bool) -> Vec<&TestRecord> {
    let mut v: Vec<&TestRecord> = records.iter().filter(|r| keep(r.status)).collect();
    v.sort_by(|a, b| a.id.cmp(&b.id));
    v
}

/// The first line of the deciding attempt's failure: its message, or else
/// the first non-empty line of its details.
fn first_failure_line(r: &TestRecord) -> String {
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

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}

fn attempts_text(r: &TestRecord) -> String {
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
fn slowest(records: &[TestRecord]) -> Vec<(&TestRecord, Duration)> {
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
fn format_seconds(d: Duration) -> String {
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
        }
    }

    fn record(id: &str, attempts: Vec<TestAttempt>) -> TestRecord {
        TestRecord {
            id: id.into(),
            group: "all".into(),
            status: TestRecord::status_from_attempts(&attempts),
            attempts,
            not_run_reason: None,
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
