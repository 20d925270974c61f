//! `offload logs`: per-test results of the most recent run, read back from
//! the merged JUnit report.
//!
//! Each test is printed under a banner `=== {ID} [{LABEL}] ===`, followed by
//! its failure message and details, its earlier failed attempts (Surefire
//! `flaky*`/`rerun*` elements), and its captured stdout/stderr. Labels:
//! `PASSED`, `FAILED`, `ERROR`, `SKIPPED` and `NOT RUN`. A flaky test is
//! `PASSED` (it did pass) with a `Flaky:` line under the banner saying how
//! many attempts failed first, so scripts that look for `[PASSED]` keep working.

use std::io::{self, Write};
use std::path::Path;

use regex::Regex;

use crate::error::{io_error, Error, Result};
use crate::junit::id;
use crate::junit::read::{self, JunitCase};
use crate::model::Outcome;

/// What `offload logs` shows. Every given criterion must hold (AND).
#[derive(Debug, Default)]
pub struct LogsFilter {
    /// `--failures`: tests that failed.
    pub failures: bool,
    /// `--errors`: tests that errored, including those that were not run
    /// (the report records them as `<error type="NotRun">`). With
    /// `--failures` too: tests that failed *or* errored.
    pub errors: bool,
    /// `--test ID`: any of these IDs (empty: any ID), compared through
    /// [`id::normalize`] (the report cannot carry every ID as it is).
    pub tests: Vec<String>,
    /// `--test-regex`: the ID contains a match (unanchored), as the report
    /// has it or in its normal form.
    pub regex: Option<Regex>,
}

impl LogsFilter {
    /// Build a filter from the command line. The regex is compiled here, so a
    /// bad pattern is reported before anything is read.
    pub fn new(
        failures: bool,
        errors: bool,
        tests: Vec<String>,
        test_regex: Option<&str>,
    ) -> Result<LogsFilter> {
        let regex = test_regex
            .map(|p| {
                Regex::new(p).map_err(|e| Error::new(format!("Invalid --test-regex pattern: {e}")))
            })
            .transpose()?;
        Ok(LogsFilter {
            failures,
            errors,
            tests,
            regex,
        })
    }

    pub fn matches(&self, case: &JunitCase) -> bool {
        let status = Status::of(case);
        let status_ok = match (self.failures, self.errors) {
            (false, false) => true,
            (true, false) => status == Status::Failed,
            (false, true) => matches!(status, Status::Error | Status::NotRun),
            (true, true) => matches!(status, Status::Failed | Status::Error | Status::NotRun),
        };
        if !status_ok {
            return false;
        }
        let normal = id::normalize(&case.name);
        (self.tests.is_empty() || self.tests.iter().any(|t| id::normalize(t) == normal))
            && self
                .regex
                .as_ref()
                .map_or(true, |r| r.is_match(&case.name) || r.is_match(&normal))
    }
}

/// How a test from the report is labelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Passed,
    /// Passed after failed attempts (it has `flakyFailure`/`flakyError`).
    Flaky,
    Failed,
    Error,
    Skipped,
    /// Offload's `<error type="NotRun" message="Not run: ...">`.
    NotRun,
}

impl Status {
    pub fn of(case: &JunitCase) -> Status {
        match case.outcome {
            Outcome::Passed
                if case
                    .reruns
                    .iter()
                    .any(|(kind, ..)| kind.starts_with("flaky")) =>
            {
                Status::Flaky
            }
            Outcome::Passed => Status::Passed,
            Outcome::Failed => Status::Failed,
            Outcome::Skipped => Status::Skipped,
            Outcome::Error
                if case
                    .message
                    .as_deref()
                    .is_some_and(|m| m.starts_with(NOT_RUN_PREFIX)) =>
            {
                Status::NotRun
            }
            Outcome::Error => Status::Error,
        }
    }

    /// The banner label.
    pub fn label(self) -> &'static str {
        match self {
            Status::Passed | Status::Flaky => "PASSED",
            Status::Failed => "FAILED",
            Status::Error => "ERROR",
            Status::Skipped => "SKIPPED",
            Status::NotRun => "NOT RUN",
        }
    }
}

/// How the merged report words a test that never ran (see `junit::write`).
const NOT_RUN_PREFIX: &str = "Not run: ";

/// Read the report at `report`, and write the tests that `filter` selects
/// to `out`, sorted by ID. Returns how many were shown; 0 means nothing
/// matched (which is not an error).
///
/// A missing report is the user-facing error `No test results found at
/// {path}. Run `offload run` first.`; a damaged one shows what could be read.
pub fn show(report: &Path, filter: &LogsFilter, out: &mut dyn Write) -> Result<usize> {
    if !report.is_file() {
        return Err(Error::new(format!(
            "No test results found at {}. Run `offload run` first.",
            report.display()
        )));
    }
    let text = std::fs::read_to_string(report).map_err(|e| {
        io_error(
            format_args!("cannot read test results at {}", report.display()),
            &e,
        )
    })?;
    let cases = read::parse(&text).map_err(|e| {
        Error::new(format!(
            "cannot read test results at {}: {e}",
            report.display()
        ))
    })?;
    let selected = select(&cases, filter);
    if selected.is_empty() {
        return Ok(0);
    }
    let mut text = String::new();
    for case in &selected {
        render_case(&mut text, case);
    }
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // `offload logs | head` closing the pipe early is a normal end.
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(io_error("cannot write to stdout", &e))
        }
        _ => Ok(selected.len()),
    }
}

/// The cases `filter` selects, sorted by ID (stable: equal IDs keep the
/// report's order).
pub fn select<'a>(cases: &'a [JunitCase], filter: &LogsFilter) -> Vec<&'a JunitCase> {
    let mut selected: Vec<&JunitCase> = cases.iter().filter(|c| filter.matches(c)).collect();
    selected.sort_by(|a, b| a.name.cmp(&b.name));
    selected
}

/// One test: banner, then (each only when present) the message and details,
/// the flaky note and earlier attempts, stdout and stderr; then a blank line.
pub fn render_case(out: &mut String, case: &JunitCase) {
    let status = Status::of(case);
    out.push_str(&format!("=== {} [{}] ===\n", case.name, status.label()));
    if status == Status::Flaky {
        let failed = case.reruns.len();
        out.push_str(&format!(
            "Flaky: passed after {failed} failed attempt{}.\n",
            if failed == 1 { "" } else { "s" }
        ));
    }
    push_message(out, case.message.as_deref(), case.details.as_deref());
    for (i, (kind, message, details)) in case.reruns.iter().enumerate() {
        let what = if kind.ends_with("Error") {
            "error"
        } else {
            "failure"
        };
        out.push_str(&format!("--- earlier attempt {} ({what}) ---\n", i + 1));
        push_message(out, message.as_deref(), details.as_deref());
    }
    for (title, text) in [("stdout", &case.system_out), ("stderr", &case.system_err)] {
        // Runners often write the failure's text into the output as well
        // (nextest puts a panic in both): show it once.
        let repeats = |t: &str| {
            let t = t.trim();
            !t.is_empty()
                && case
                    .details
                    .as_deref()
                    .is_some_and(|d| d.trim().contains(t))
        };
        if let Some(text) = text.as_deref().filter(|t| !repeats(t)) {
            out.push_str(&format!("--- {title} ---\n"));
            push_line(out, text);
        }
    }
    out.push('\n');
}

/// The message, then the details unless they just repeat it.
fn push_message(out: &mut String, message: Option<&str>, details: Option<&str>) {
    if let Some(m) = message {
        push_line(out, m);
    }
    if let Some(d) = details.filter(|d| Some(*d) != message) {
        push_line(out, d);
    }
}

fn push_line(out: &mut String, text: &str) {
    out.push_str(text);
    if !text.ends_with('\n') {
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(name: &str, outcome: Outcome, message: Option<&str>) -> JunitCase {
        JunitCase {
            classname: Some("unit".into()),
            time: 0.5,
            outcome,
            message: message.map(str::to_string),
            ..JunitCase::named(name)
        }
    }

    fn flaky(name: &str) -> JunitCase {
        let mut c = case(name, Outcome::Passed, None);
        c.reruns = vec![(
            "flakyFailure".into(),
            Some("boom".into()),
            Some("trace".into()),
        )];
        c
    }

    fn sample() -> Vec<JunitCase> {
        vec![
            case(
                "tests/test_math.py::test_div",
                Outcome::Failed,
                Some("AssertionError"),
            ),
            case("tests/test_math.py::test_add", Outcome::Passed, None),
            case(
                "tests/test_io.py::test_read",
                Outcome::Error,
                Some("fixture failed"),
            ),
            case(
                "tests/test_io.py::test_skip",
                Outcome::Skipped,
                Some("not here"),
            ),
            case(
                "tests/test_net.py::test_slow",
                Outcome::Error,
                Some("Not run: cancelled"),
            ),
            flaky("tests/test_net.py::test_retry"),
        ]
    }

    fn names(filter: &LogsFilter) -> Vec<String> {
        select(&sample(), filter)
            .into_iter()
            .map(|c| c.name.clone())
            .collect()
    }

    fn filter(failures: bool, errors: bool, tests: &[&str], regex: Option<&str>) -> LogsFilter {
        LogsFilter::new(
            failures,
            errors,
            tests.iter().map(|t| t.to_string()).collect(),
            regex,
        )
        .unwrap()
    }

    #[test]
    fn statuses_and_labels() {
        let labels: Vec<_> = sample().iter().map(|c| Status::of(c).label()).collect();
        assert_eq!(
            labels,
            ["FAILED", "PASSED", "ERROR", "SKIPPED", "NOT RUN", "PASSED"]
        );
        assert_eq!(Status::of(&flaky("x")), Status::Flaky);
        // A failed test's rerun* children do not make it flaky.
        let mut failed = case("y", Outcome::Failed, None);
        failed.reruns = vec![("rerunFailure".into(), None, None)];
        assert_eq!(Status::of(&failed), Status::Failed);
    }

    #[test]
    fn no_flags_shows_everything_sorted_by_id() {
        assert_eq!(
            names(&LogsFilter::default()),
            [
                "tests/test_io.py::test_read",
                "tests/test_io.py::test_skip",
                "tests/test_math.py::test_add",
                "tests/test_math.py::test_div",
                "tests/test_net.py::test_retry",
                "tests/test_net.py::test_slow",
            ]
        );
    }

    #[test]
    fn status_flags_alone_and_together() {
        assert_eq!(
            names(&filter(true, false, &[], None)),
            ["tests/test_math.py::test_div"]
        );
        assert_eq!(
            names(&filter(false, true, &[], None)),
            [
                "tests/test_io.py::test_read",
                "tests/test_net.py::test_slow"
            ]
        );
        assert_eq!(
            names(&filter(true, true, &[], None)),
            [
                "tests/test_io.py::test_read",
                "tests/test_math.py::test_div",
                "tests/test_net.py::test_slow"
            ]
        );
    }

    #[test]
    fn exact_ids_and_regex_are_anded_with_status() {
        assert_eq!(
            names(&filter(
                false,
                false,
                &[
                    "tests/test_math.py::test_add",
                    "tests/test_io.py::test_read",
                    "nope"
                ],
                None
            )),
            [
                "tests/test_io.py::test_read",
                "tests/test_math.py::test_add"
            ]
        );
        // Exact means exact: a prefix is not enough.
        assert!(names(&filter(false, false, &["tests/test_math.py"], None)).is_empty());
        // The regex matches anywhere in the ID.
        assert_eq!(
            names(&filter(false, false, &[], Some("math"))),
            [
                "tests/test_math.py::test_add",
                "tests/test_math.py::test_div"
            ]
        );
        assert_eq!(
            names(&filter(true, false, &[], Some("math"))),
            ["tests/test_math.py::test_div"]
        );
        assert!(names(&filter(true, false, &[], Some("test_io"))).is_empty());
        assert!(names(&filter(
            false,
            false,
            &["tests/test_math.py::test_add"],
            Some("io")
        ))
        .is_empty());
    }

    /// The report stores the name an ID can carry in XML; the real ID
    /// (with an escape sequence, a control character, a tab) finds it.
    #[test]
    fn real_ids_find_the_names_the_report_could_carry() {
        let cases = vec![
            JunitCase::named("t_red"),
            JunitCase::named("t_\u{FFFD}"),
            JunitCase::named("t_a\tb"),
        ];
        let find = |id: &str| -> Vec<String> {
            select(&cases, &filter(false, false, &[id], None))
                .iter()
                .map(|c| c.name.clone())
                .collect()
        };
        assert_eq!(find("t_\x1b[31mred\x1b[0m"), ["t_red"]);
        assert_eq!(find("t_\x01"), ["t_\u{FFFD}"]);
        assert_eq!(find("t_a\tb"), ["t_a\tb"]);
        assert_eq!(find("t_a b"), ["t_a\tb"]);
        let regex = |r: &str| select(&cases, &filter(false, false, &[], Some(r))).len();
        assert_eq!(regex("^t_a b$"), 1);
        assert_eq!(regex("^t_a\tb$"), 1);
    }

    #[test]
    fn case_insensitive_regex_works() {
        assert_eq!(
            names(&filter(false, false, &[], Some("(?i)TEST_DIV"))),
            ["tests/test_math.py::test_div"]
        );
    }

    #[test]
    fn invalid_regex_is_reported_with_the_flag_name() {
        let err = LogsFilter::new(false, false, vec![], Some("test_(")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("Invalid --test-regex pattern: "),
            "{err}"
        );
    }

    #[test]
    fn formatting_failed_test_with_reruns_and_output() {
        let mut c = case(
            "tests/test_math.py::test_div",
            Outcome::Failed,
            Some("AssertionError: expected 2 got 3"),
        );
        c.details = Some("tests/test_math.py:10: in test_div\n    assert 1 / 0 == 2\nE AssertionError: expected 2 got 3".into());
        c.reruns = vec![
            (
                "rerunFailure".into(),
                Some("first".into()),
                Some("trace 1".into()),
            ),
            ("rerunError".into(), Some("crashed".into()), None),
        ];
        c.system_out = Some("printed\n".into());
        c.system_err = Some("warned".into());
        let mut out = String::new();
        render_case(&mut out, &c);
        assert_eq!(
            out,
            "=== tests/test_math.py::test_div [FAILED] ===
AssertionError: expected 2 got 3
tests/test_math.py:10: in test_div
    assert 1 / 0 == 2
E AssertionError: expected 2 got 3
--- earlier attempt 1 (failure) ---
first
trace 1
--- earlier attempt 2 (error) ---
crashed
--- stdout ---
printed
--- stderr ---
warned

"
        );
    }

    #[test]
    fn formatting_passed_flaky_skipped_and_not_run() {
        let mut out = String::new();
        render_case(&mut out, &case("a", Outcome::Passed, None));
        render_case(&mut out, &flaky("b"));
        render_case(&mut out, &case("c", Outcome::Skipped, Some("not on linux")));
        render_case(
            &mut out,
            &case("d", Outcome::Error, Some("Not run: cancelled")),
        );
        let mut same = case("e", Outcome::Error, Some("same"));
        same.details = Some("same".into());
        render_case(&mut out, &same);
        assert_eq!(
            out,
            "=== a [PASSED] ===

=== b [PASSED] ===
Flaky: passed after 1 failed attempt.
--- earlier attempt 1 (failure) ---
boom
trace

=== c [SKIPPED] ===
not on linux

=== d [NOT RUN] ===
Not run: cancelled

=== e [ERROR] ===
same

"
        );
    }

    #[test]
    fn show_reads_the_report_and_reports_a_missing_one() {
        let dir = std::env::temp_dir().join(format!("offload-logs-cmd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let report = dir.join("junit.xml");

        let err = show(&report, &LogsFilter::default(), &mut Vec::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "No test results found at {}. Run `offload run` first.",
                report.display()
            )
        );
        // A directory where the report should be is "not found" too.
        let err = show(&dir, &LogsFilter::default(), &mut Vec::new()).unwrap_err();
        assert!(err.to_string().starts_with("No test results found at"));

        std::fs::write(
            &report,
            r#"<testsuites><testsuite name="unit"><testcase name="b" classname="unit"><failure message="m">d</failure></testcase><testcase name="a" classname="unit"/></testsuite></testsuites>"#,
        )
        .unwrap();
        let mut out = Vec::new();
        assert_eq!(show(&report, &LogsFilter::default(), &mut out).unwrap(), 2);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "=== a [PASSED] ===\n\n=== b [FAILED] ===\nm\nd\n\n"
        );
        let mut out = Vec::new();
        assert_eq!(
            show(&report, &filter(false, true, &[], None), &mut out).unwrap(),
            0
        );
        assert!(out.is_empty());

        std::fs::write(&report, "<html>oops</html>").unwrap();
        let err = show(&report, &LogsFilter::default(), &mut Vec::new()).unwrap_err();
        assert!(
            err.to_string().contains("cannot read test results at"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn broken_pipe_is_a_normal_end() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let dir = std::env::temp_dir().join(format!("offload-logs-pipe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let report = dir.join("junit.xml");
        std::fs::write(&report, r#"<testsuite><testcase name="a"/></testsuite>"#).unwrap();
        assert_eq!(
            show(&report, &LogsFilter::default(), &mut Closed).unwrap(),
            1
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
