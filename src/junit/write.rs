//! Writing the merged JUnit report: one `<testcase>` per test, whatever
//! number of attempts it took.
//!
//! ```xml
//! <testsuites name="offload" tests="3" failures="1" errors="0" skipped="0" time="12.345">
//!   <testsuite name="{group}" tests="3" failures="1" errors="0" skipped="0" time="1.500">
//!     <testcase name="{canonical id}" classname="{group}" time="0.500"/>
//!     <testcase name="..." classname="..." time="0.500">
//!       <flakyFailure message="..." type="failure">
//!         <stackTrace>...</stackTrace><system-out>...</system-out>
//!       </flakyFailure>
//!     </testcase>
//!     <testcase name="..." classname="..." time="0.500">
//!       <failure message="..." type="failure">...</failure>
//!       <rerunFailure message="..." type="failure"><stackTrace>...</stackTrace></rerunFailure>
//!       <system-out>...</system-out>
//!     </testcase>
//!   </testsuite>
//! </testsuites>
//! ```
//!
//! Retries follow Maven Surefire's convention (`flakyFailure`/`flakyError`
//! for the failed attempts of a test that finally passed, `rerunFailure`/
//! `rerunError` for the earlier attempts of a test that failed for good), which
//! Jenkins, GitLab and most JUnit viewers understand. A test that never ran is
//! an `<error type="NotRun">`. `name` is the canonical ID discovery printed, so
//! the next run's scheduler finds its duration.

use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::time::Duration;

use super::escape::{push_attr, push_text};
use crate::model::{FinalStatus, Outcome, TestAttempt, TestRecord};

/// Write the merged report for `records` to `path`, atomically: the file is
/// written next to `path` under a temporary name and renamed over it, so a
/// reader (or the next run's scheduler) never sees half a report. `wall` is
/// the run's wall-clock time (the root's `time`).
pub fn write_report(path: &Path, records: &[TestRecord], wall: Duration) -> io::Result<()> {
    let options = crate::files::AtomicOptions {
        sync: true,
        mode: None,
    };
    crate::files::write_atomically(path, options, |file| render_to(file, records, wall))
}

/// The report as a string (see the module documentation for its shape).
#[cfg(test)]
pub fn render(records: &[TestRecord], wall: Duration) -> String {
    let mut out = Vec::with_capacity(256 + records.len() * 160);
    render_to(&mut out, records, wall).expect("writing to a Vec cannot fail");
    String::from_utf8(out).expect("the report is built from strings")
}

/// Stream the report to `out`. Groups appear in the order of their first
/// record, tests in the order given. Counts are computed in a first pass so
/// that nothing but one testcase at a time is held in memory.
pub fn render_to(
    out: &mut impl io::Write,
    records: &[TestRecord],
    wall: Duration,
) -> io::Result<()> {
    // Group the records without reordering them: first appearance wins.
    let mut groups: Vec<(&str, Counts)> = Vec::new();
    let mut group_of: Vec<usize> = Vec::with_capacity(records.len());
    for record in records {
        let g = match groups.iter().position(|(g, _)| *g == record.group) {
            Some(g) => g,
            None => {
                groups.push((&record.group, Counts::default()));
                groups.len() - 1
            }
        };
        groups[g].1.add(record);
        group_of.push(g);
    }
    let mut total = Counts::default();
    for (_, counts) in &groups {
        total.merge(counts);
    }

    let mut buf = String::with_capacity(4096);
    buf.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"offload\"");
    total.push_attrs(&mut buf);
    let _ = writeln!(buf, " time=\"{}\">", seconds(wall));
    for (g, (group, counts)) in groups.iter().enumerate() {
        buf.push_str("  <testsuite name=\"");
        push_attr(&mut buf, group);
        buf.push('"');
        counts.push_attrs(&mut buf);
        let _ = writeln!(buf, " time=\"{}\">", seconds(counts.time));
        for (record, _) in records.iter().zip(&group_of).filter(|(_, &rg)| rg == g) {
            push_testcase(&mut buf, record);
            if buf.len() >= 64 * 1024 {
                out.write_all(buf.as_bytes())?;
                buf.clear();
            }
        }
        buf.push_str("  </testsuite>\n");
    }
    buf.push_str("</testsuites>\n");
    out.write_all(buf.as_bytes())
}

/// A `<testsuite>`'s (or the root's) counters. `time` sums the testcases'.
#[derive(Default)]
struct Counts {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
    time: Duration,
}

impl Counts {
    fn add(&mut self, record: &TestRecord) {
        self.tests += 1;
        match record.status {
            FinalStatus::Passed | FinalStatus::Flaky => {}
            FinalStatus::Skipped => self.skipped += 1,
            FinalStatus::Failed => self.failures += 1,
            FinalStatus::Error | FinalStatus::NotRun => self.errors += 1,
        }
        self.time += case_time(record);
    }

    fn merge(&mut self, other: &Counts) {
        self.tests += other.tests;
        self.failures += other.failures;
        self.errors += other.errors;
        self.skipped += other.skipped;
        self.time += other.time;
    }

    fn push_attrs(&self, out: &mut String) {
        let _ = write!(
            out,
            " tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\"",
            self.tests, self.failures, self.errors, self.skipped
        );
    }
}

/// A testcase's `time`: its deciding attempt's duration.
fn case_time(record: &TestRecord) -> Duration {
    record
        .deciding_attempt()
        .map_or(Duration::ZERO, |a| a.duration)
}

/// Seconds with three decimals, as JUnit readers expect, rounded to the
/// nearest millisecond (integer arithmetic: float formatting was a tenth of
/// the report's cost).
fn seconds(d: Duration) -> String {
    let mut out = String::new();
    push_seconds(&mut out, d);
    out
}

/// [`seconds`], appended to `out`.
fn push_seconds(out: &mut String, d: Duration) {
    let millis = (d.as_nanos() + 500_000) / 1_000_000;
    let mut digits = itoa::Buffer::new();
    // Seconds fit a u64 (itoa formats it faster than a u128).
    out.push_str(digits.format((millis / 1000) as u64));
    out.push('.');
    let fraction = (millis % 1000) as u16;
    for place in [100, 10] {
        if fraction < place {
            out.push('0');
        }
    }
    out.push_str(digits.format(fraction));
}

fn push_testcase(out: &mut String, record: &TestRecord) {
    out.push_str("    <testcase name=\"");
    push_attr(out, &record.id);
    out.push_str("\" classname=\"");
    push_attr(out, &record.group);
    out.push_str("\" time=\"");
    push_seconds(out, case_time(record));
    out.push('"');

    let deciding = record.deciding_attempt();
    // Every failed or errored attempt other than the deciding one is an
    // earlier try: flaky* for a test that passed in the end, rerun* otherwise.
    let earlier = record.attempts.iter().filter(|a| {
        matches!(a.outcome, Outcome::Failed | Outcome::Error)
            && !deciding.is_some_and(|d| std::ptr::eq(*a, d))
    });
    let rerun_prefix = match record.status {
        FinalStatus::Passed | FinalStatus::Flaky => "flaky",
        _ => "rerun",
    };

    let mut body = String::new();
    match record.status {
        FinalStatus::Passed | FinalStatus::Flaky => {}
        FinalStatus::Skipped => {
            let (message, details) = deciding.map_or((None, None), |a| {
                (a.message.as_deref(), a.details.as_deref())
            });
            push_element(&mut body, "skipped", message, None, details);
        }
        FinalStatus::Failed | FinalStatus::Error => {
            let (element, kind) = if record.status == FinalStatus::Failed {
                ("failure", "failure")
            } else {
                ("error", "error")
            };
            let (message, details) = deciding.map_or((None, None), |a| {
                (a.message.as_deref(), a.details.as_deref())
            });
            push_element(&mut body, element, message, Some(kind), details);
        }
        FinalStatus::NotRun => {
            let reason = record
                .not_run_reason
                .as_deref()
                .unwrap_or("no result was produced");
            let message = format!("Not run: {reason}");
            push_element(&mut body, "error", Some(&message), Some("NotRun"), None);
        }
    }
    for attempt in earlier {
        push_rerun(&mut body, rerun_prefix, attempt);
    }
    // A not-run test has no deciding attempt of its own worth showing.
    if record.status != FinalStatus::NotRun {
        if let Some(a) = deciding {
            push_output(&mut body, "      ", a);
        }
    }

    if body.is_empty() {
        out.push_str("/>\n");
    } else {
        out.push_str(">\n");
        out.push_str(&body);
        out.push_str("    </testcase>\n");
    }
}

/// `<{element} message=".." type="..">details</{element}>` at testcase level.
fn push_element(
    out: &mut String,
    element: &str,
    message: Option<&str>,
    kind: Option<&str>,
    details: Option<&str>,
) {
    let _ = write!(out, "      <{element}");
    if let Some(m) = message {
        out.push_str(" message=\"");
        push_attr(out, m);
        out.push('"');
    }
    if let Some(k) = kind {
        out.push_str(" type=\"");
        push_attr(out, k);
        out.push('"');
    }
    match details {
        Some(d) if !d.is_empty() => {
            out.push('>');
            push_text(out, d);
            let _ = writeln!(out, "</{element}>");
        }
        _ => out.push_str("/>\n"),
    }
}

/// A Surefire rerun element: the attempt's trace in `<stackTrace>`, its
/// output in nested `<system-out>`/`<system-err>`.
fn push_rerun(out: &mut String, prefix: &str, attempt: &TestAttempt) {
    let (suffix, kind) = if attempt.outcome == Outcome::Error {
        ("Error", "error")
    } else {
        ("Failure", "failure")
    };
    let _ = write!(out, "      <{prefix}{suffix}");
    if let Some(m) = &attempt.message {
        out.push_str(" message=\"");
        push_attr(out, m);
        out.push('"');
    }
    let _ = write!(out, " type=\"{kind}\"");
    let mut inner = String::new();
    if let Some(d) = attempt.details.as_deref().filter(|d| !d.is_empty()) {
        inner.push_str("        <stackTrace>");
        push_text(&mut inner, d);
        inner.push_str("</stackTrace>\n");
    }
    push_output(&mut inner, "        ", attempt);
    if inner.is_empty() {
        out.push_str("/>\n");
    } else {
        out.push_str(">\n");
        out.push_str(&inner);
        let _ = writeln!(out, "      </{prefix}{suffix}>");
    }
}

/// The attempt's `<system-out>` and `<system-err>`, when it printed anything.
fn push_output(out: &mut String, indent: &str, attempt: &TestAttempt) {
    for (element, text) in [
        ("system-out", &attempt.system_out),
        ("system-err", &attempt.system_err),
    ] {
        if let Some(text) = text.as_deref().filter(|t| !t.is_empty()) {
            let _ = write!(out, "{indent}<{element}>");
            push_text(out, text);
            let _ = writeln!(out, "</{element}>");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_have_three_decimals_rounded_to_the_millisecond() {
        assert_eq!(seconds(Duration::ZERO), "0.000");
        assert_eq!(seconds(Duration::from_micros(1_234_500)), "1.235");
        assert_eq!(seconds(Duration::from_micros(1_234_499)), "1.234");
        assert_eq!(seconds(Duration::from_millis(61_007)), "61.007");
    }
    use crate::junit::read::{parse, JunitCase};

    fn attempt(outcome: Outcome, message: Option<&str>, details: Option<&str>) -> TestAttempt {
        TestAttempt {
            outcome,
            duration: Duration::from_millis(1234),
            message: message.map(str::to_string),
            details: details.map(str::to_string),
            system_out: None,
            system_err: None,
            batch: 1,
            started: None,
            location: None,
        }
    }

    fn record(id: &str, group: &str, attempts: Vec<TestAttempt>) -> TestRecord {
        let status = TestRecord::status_from_attempts(&attempts);
        TestRecord {
            id: id.into(),
            group: group.into(),
            attempts,
            status,
            not_run_reason: None,
        }
    }

    fn not_run(id: &str, reason: Option<&str>) -> TestRecord {
        TestRecord {
            id: id.into(),
            group: "unit".into(),
            attempts: vec![],
            status: FinalStatus::NotRun,
            not_run_reason: reason.map(str::to_string),
        }
    }

    fn by_name<'a>(cases: &'a [JunitCase], name: &str) -> &'a JunitCase {
        cases
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("{name} missing from {cases:#?}"))
    }

    #[test]
    fn passed_test_is_a_self_closing_testcase_with_id_group_and_time() {
        let xml = render(
            &[record(
                "tests/t.py::test_a",
                "unit",
                vec![attempt(Outcome::Passed, None, None)],
            )],
            Duration::from_secs(3),
        );
        assert!(
            xml.contains(r#"<testcase name="tests/t.py::test_a" classname="unit" time="1.234"/>"#),
            "{xml}"
        );
        assert!(xml.contains(
            r#"<testsuites name="offload" tests="1" failures="0" errors="0" skipped="0" time="3.000">"#
        ));
    }

    #[test]
    fn suite_counts_per_group_and_totals() {
        let records = vec![
            record("a", "unit", vec![attempt(Outcome::Passed, None, None)]),
            record("b", "slow", vec![attempt(Outcome::Failed, Some("m"), None)]),
            record(
                "c",
                "unit",
                vec![
                    attempt(Outcome::Failed, None, None),
                    attempt(Outcome::Passed, None, None),
                ],
            ),
            record("d", "unit", vec![attempt(Outcome::Error, None, None)]),
            record(
                "e",
                "unit",
                vec![attempt(Outcome::Skipped, Some("why"), None)],
            ),
            not_run("f", Some("cancelled")),
        ];
        let xml = render(&records, Duration::from_millis(500));
        // unit: a, c (flaky counts as passed), d, e, f (not run counts as an error).
        assert!(xml.contains(
            r#"<testsuite name="unit" tests="5" failures="0" errors="2" skipped="1" time="4.936">"#
        ), "{xml}");
        assert!(xml.contains(
            r#"<testsuite name="slow" tests="1" failures="1" errors="0" skipped="0" time="1.234">"#
        ), "{xml}");
        assert!(xml.contains(
            r#"<testsuites name="offload" tests="6" failures="1" errors="2" skipped="1" time="0.500">"#
        ), "{xml}");
        // Groups in order of first appearance.
        assert!(xml.find("name=\"unit\"").unwrap() < xml.find("name=\"slow\"").unwrap());
    }

    #[test]
    fn flaky_test_has_surefire_flaky_children_with_output() {
        let mut first = attempt(Outcome::Failed, Some("boom"), Some("trace 1"));
        first.system_out = Some("out 1".into());
        first.system_err = Some("err 1".into());
        let second = attempt(Outcome::Error, Some("crash"), None);
        let mut pass = attempt(Outcome::Passed, None, None);
        pass.duration = Duration::from_millis(20);
        pass.system_out = Some("fine".into());
        let r = record("t", "g", vec![first, second, pass]);
        assert_eq!(r.status, FinalStatus::Flaky);
        let xml = render(&[r], Duration::ZERO);
        let expected = "    <testcase name=\"t\" classname=\"g\" time=\"0.020\">
      <flakyFailure message=\"boom\" type=\"failure\">
        <stackTrace>trace 1</stackTrace>
        <system-out>out 1</system-out>
        <system-err>err 1</system-err>
      </flakyFailure>
      <flakyError message=\"crash\" type=\"error\"/>
      <system-out>fine</system-out>
    </testcase>
";
        assert!(xml.contains(expected), "{xml}");
    }

    #[test]
    fn failed_test_has_failure_then_reruns_then_output() {
        let mut last = attempt(Outcome::Failed, Some("second"), Some("trace 2"));
        last.system_err = Some("stderr 2".into());
        let r = record(
            "t",
            "g",
            vec![
                attempt(Outcome::Failed, Some("first"), Some("trace 1")),
                last,
            ],
        );
        let xml = render(&[r], Duration::ZERO);
        let expected = "      <failure message=\"second\" type=\"failure\">trace 2</failure>
      <rerunFailure message=\"first\" type=\"failure\">
        <stackTrace>trace 1</stackTrace>
      </rerunFailure>
      <system-err>stderr 2</system-err>
";
        assert!(xml.contains(expected), "{xml}");
    }

    #[test]
    fn error_skipped_and_not_run_elements() {
        let xml = render(
            &[
                record(
                    "e",
                    "g",
                    vec![attempt(Outcome::Error, Some("infra"), Some("sandbox died"))],
                ),
                record(
                    "s",
                    "g",
                    vec![attempt(Outcome::Skipped, Some("not on linux"), None)],
                ),
                not_run("n", Some("runner crashed")),
                not_run("m", None),
            ],
            Duration::ZERO,
        );
        assert!(
            xml.contains(r#"<error message="infra" type="error">sandbox died</error>"#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<skipped message="not on linux"/>"#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<error message="Not run: runner crashed" type="NotRun"/>"#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<error message="Not run: no result was produced" type="NotRun"/>"#),
            "{xml}"
        );
    }

    #[test]
    fn round_trip_keeps_ids_outcomes_and_messages() {
        let odd_ids = [
            "tests/t.py::test_x[a b-\"q\"-'s']",
            "tests/t.py::test_cmp[<>&]",
            "crate::bin/x tests::ünïcödé_日本_🎉",
            "  leading and trailing  ",
            "tab\there & new\nline",
        ];
        let mut records: Vec<TestRecord> = odd_ids
            .iter()
            .map(|id| {
                record(
                    id,
                    "g <&> \"1\"",
                    vec![attempt(
                        Outcome::Failed,
                        Some(&format!("msg for {id}\nline 2")),
                        Some(&format!("details <{id}> & ]]>")),
                    )],
                )
            })
            .collect();
        let mut flaky_fail = attempt(Outcome::Failed, Some("first try"), Some("trace"));
        flaky_fail.system_out = Some("printed while failing".into());
        let mut pass = attempt(Outcome::Passed, None, None);
        pass.system_out = Some("out\r\nwith CRLF".into());
        pass.system_err = Some("err".into());
        records.push(record("flaky one", "h", vec![flaky_fail, pass]));
        records.push(record(
            "skipped one",
            "h",
            vec![attempt(Outcome::Skipped, Some("why"), None)],
        ));
        records.push(record(
            "error one",
            "h",
            vec![attempt(Outcome::Error, Some("E"), Some("D"))],
        ));
        records.push(not_run("never", Some("cancelled")));

        let cases = parse(&render(&records, Duration::from_secs(1))).expect("our report parses");
        assert_eq!(cases.len(), records.len());
        for (case, record) in cases.iter().zip(&records) {
            assert_eq!(case.name, record.id);
            assert_eq!(case.classname.as_deref(), Some(record.group.as_str()));
        }
        for (case, id) in cases.iter().zip(odd_ids) {
            assert_eq!(case.outcome, Outcome::Failed);
            assert_eq!(
                case.message.as_deref(),
                Some(format!("msg for {id}\nline 2").as_str())
            );
            assert_eq!(
                case.details.as_deref(),
                Some(format!("details <{id}> & ]]>").as_str())
            );
            assert_eq!(case.time, 1.234);
        }
        let flaky = by_name(&cases, "flaky one");
        assert_eq!(flaky.outcome, Outcome::Passed);
        assert_eq!(flaky.system_out.as_deref(), Some("out\r\nwith CRLF"));
        assert_eq!(flaky.system_err.as_deref(), Some("err"));
        assert_eq!(
            flaky.reruns,
            vec![(
                "flakyFailure".into(),
                Some("first try".into()),
                Some("trace".into())
            )]
        );
        let skipped = by_name(&cases, "skipped one");
        assert_eq!(
            (skipped.outcome, skipped.message.as_deref()),
            (Outcome::Skipped, Some("why"))
        );
        let error = by_name(&cases, "error one");
        assert_eq!(
            (error.outcome, error.details.as_deref()),
            (Outcome::Error, Some("D"))
        );
        let never = by_name(&cases, "never");
        assert_eq!(never.outcome, Outcome::Error);
        assert_eq!(never.message.as_deref(), Some("Not run: cancelled"));
        assert_eq!(never.time, 0.0);
    }

    #[test]
    fn terminal_escapes_and_nul_still_give_valid_xml() {
        let mut a = attempt(
            Outcome::Failed,
            Some("\x1b[31mAssertionError\x1b[0m: \x00"),
            Some("line \x1b[1mbold\x1b[22m\x07 \u{FFFE}\u{FFFF} end"),
        );
        a.system_out = Some("\x1b[32m.\x1b[0m\x1b[32m.\x1b[0m\x00\x08\x0b\x0c".into());
        a.system_err = Some("\x1b]0;title\x07".into());
        let xml = render(
            &[record("id\x1b[31m\x00", "g\x01", vec![a])],
            Duration::ZERO,
        );
        assert!(!xml
            .chars()
            .any(|c| (c < ' ' && !matches!(c, '\n' | '\r' | '\t'))
                || c == '\u{FFFE}'
                || c == '\u{FFFF}'));
        let cases = parse(&xml).expect("valid XML");
        assert_eq!(cases.len(), 1);
        let c = &cases[0];
        assert_eq!(c.name, "id\u{FFFD}");
        assert_eq!(c.classname.as_deref(), Some("g\u{FFFD}"));
        assert_eq!(c.message.as_deref(), Some("AssertionError: \u{FFFD}"));
        assert_eq!(
            c.details.as_deref(),
            Some("line bold\u{FFFD} \u{FFFD}\u{FFFD} end")
        );
        assert_eq!(
            c.system_out.as_deref(),
            Some("..\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}")
        );
        assert_eq!(c.system_err.as_deref(), Some("\u{FFFD}]0;title\u{FFFD}"));
    }

    #[test]
    fn empty_report_is_valid() {
        let xml = render(&[], Duration::from_secs(2));
        assert_eq!(parse(&xml), Ok(vec![]));
        assert!(xml.contains(r#"tests="0""#));
    }

    #[test]
    fn write_report_replaces_the_file_atomically() {
        let dir = std::env::temp_dir().join(format!("offload-junit-write-{}", std::process::id()));
        let path = dir.join("nested").join("junit.xml");
        let records = [record("a", "g", vec![attempt(Outcome::Passed, None, None)])];
        write_report(&path, &records, Duration::ZERO).unwrap();
        std::fs::write(&path, "old").unwrap();
        write_report(&path, &records, Duration::ZERO).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(parse(&text).unwrap().len(), 1);
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["junit.xml"], "no temporary file left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
