//! Reading JUnit XML as test runners write it (pytest, nextest, any runner),
//! and Offload's own merged report.
//!
//! The reader is deliberately lenient: it looks for `<testcase>` elements
//! wherever they are (under `<testsuites>`, nested `<testsuite>`s, or the
//! root), ignores elements it does not know (`<properties>`, suite-level
//! output), and keeps what it read when the document breaks off. The XML is
//! read by xml-rs's streaming parser after [`super::prepass`] has repaired
//! what runners get wrong; this file knows JUnit, and turns the pre-pass's
//! marks in values back into text: a terminal escape sequence is removed, a
//! cut is said in words.
//!
//! Bounds, whatever the input: time is linear in its size (no entity is
//! expanded, nothing is searched again); memory is what is kept of each
//! testcase — [`super::prepass::TEXT_CAP`] bytes of each of its details,
//! `system-out` and `system-err` (and of each rerun's details, at most
//! [`MAX_RERUNS`] reruns), [`super::prepass::ATTRIBUTE_CAP`] of each
//! attribute — plus the parser's buffers, which hold at most one such value
//! and [`MAX_DEPTH`] open elements. A longer value keeps its beginning and
//! ends with `… N bytes cut`.

use std::borrow::Cow;
use std::io::Read;

use xml_rs::attribute::OwnedAttribute;
use xml_rs::reader::{EventReader, ParserConfig, XmlEvent};

use super::prepass::{Prepass, ATTRIBUTE_CAP, CUT_MARK, ESCAPE_MARK, TEXT_CAP};
use crate::model::Outcome;

/// Elements nested deeper than this are damage: reading stops there.
pub const MAX_DEPTH: usize = 256;
/// Reruns kept per testcase; later ones are ignored.
pub const MAX_RERUNS: usize = 64;

/// One `<testcase>` as written by a runner.
#[derive(Clone, Debug, PartialEq)]
pub struct JunitCase {
    pub name: String,
    pub classname: Option<String>,
    /// `file` attribute (pytest with `junit_family=xunit1`).
    pub file: Option<String>,
    pub line: Option<u32>,
    /// Seconds; 0 when absent or unparsable.
    pub time: f64,
    /// The raw `timestamp` attribute (nextest writes one per test: when it
    /// started), as written.
    pub timestamp: Option<String>,
    /// Failed for `<failure>`, Error for `<error>`, Skipped for `<skipped>`.
    pub outcome: Outcome,
    /// The `message` attribute of the failure/error/skipped element.
    pub message: Option<String>,
    /// The text of the failure/error/skipped element.
    pub details: Option<String>,
    pub system_out: Option<String>,
    pub system_err: Option<String>,
    /// Surefire-style retries in Offload's own report (`flakyFailure`,
    /// `rerunFailure`, ...): (kind element name, message, details).
    pub reruns: Vec<(String, Option<String>, Option<String>)>,
}

impl JunitCase {
    /// A passed testcase named `name`, with nothing else recorded: the
    /// starting point that the other attributes and elements fill in.
    pub fn named(name: impl Into<String>) -> JunitCase {
        JunitCase {
            name: name.into(),
            classname: None,
            file: None,
            line: None,
            time: 0.0,
            timestamp: None,
            outcome: Outcome::Passed,
            message: None,
            details: None,
            system_out: None,
            system_err: None,
            reruns: Vec::new(),
        }
    }
}

/// One Surefire rerun element: (element name, message, details), as in
/// [`JunitCase::reruns`].
type Rerun = (String, Option<String>, Option<String>);

/// The Surefire elements that record an earlier attempt of a test.
pub const RERUN_ELEMENTS: [&str; 4] = ["flakyFailure", "flakyError", "rerunFailure", "rerunError"];

/// xml-rs reading `source` through the pre-pass.
fn events<R: Read>(source: R) -> EventReader<Prepass<R>> {
    ParserConfig::new()
        .ignore_comments(true)
        // Each piece of text as it comes, so that none grows past its cap.
        .coalesce_characters(false)
        // Reports are UTF-8 (the pre-pass made sure), whatever they declare.
        .override_encoding(Some(xml_rs::Encoding::Utf8))
        .ignore_invalid_encoding_declarations(true)
        // No JUnit element has more; the pre-pass bounds values already,
        // these bound the rest of a tag.
        .max_attributes(64)
        .max_name_length(1024)
        .max_attribute_length(ATTRIBUTE_CAP + 64)
        .max_data_length(TEXT_CAP + 64)
        .create_reader(Prepass::new(source))
}

/// Call `each(name, seconds)` for every `<testcase>` with a usable `time`,
/// without building [`JunitCase`]s: what the timing history needs from the
/// previous run's report, at a fraction of the memory of [`parse`]. Stops
/// quietly at damage (what was read before it counts).
pub fn for_each_duration(xml: &str, mut each: impl FnMut(Cow<'_, str>, f64)) {
    let mut events = events(xml.as_bytes());
    let mut depth = 0;
    loop {
        match events.next() {
            Ok(XmlEvent::StartElement {
                name, attributes, ..
            }) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return;
                }
                if name.local_name != "testcase" {
                    continue;
                }
                let marked = events.source().marked();
                let (mut id, mut time) = (None, None);
                for attribute in attributes {
                    match attribute.name.local_name.as_str() {
                        "name" if id.is_none() => id = Some(attribute.value),
                        "time" if time.is_none() => {
                            time = attribute.value.trim().parse::<f64>().ok();
                        }
                        _ => {}
                    }
                }
                if let (Some(id), Some(time)) = (id, time) {
                    if time.is_finite() && time >= 0.0 {
                        each(Cow::Owned(attribute_value(id, marked)), time);
                    }
                }
            }
            Ok(XmlEvent::EndElement { .. }) => depth -= 1,
            Ok(XmlEvent::EndDocument) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Parse every `<testcase>` of a JUnit document, in document order.
/// A truncated document yields the testcases completed before the damage
/// (a runner that crashed mid-write still reports what finished); `Err` only
/// when nothing at all could be read.
///
/// Text is returned as written except that whitespace-only text counts as
/// absent and trailing whitespace is dropped (runners indent their CDATA),
/// terminal escape sequences are removed, characters XML 1.0 forbids are
/// U+FFFD, and values longer than their cap are cut (see the module
/// documentation).
pub fn parse(xml: &str) -> Result<Vec<JunitCase>, String> {
    parse_reader(xml.as_bytes())
}

/// [`parse`], reading the document from `source` as it goes: a file of any
/// size is read with bounded memory (wrap a file in nothing: the pre-pass
/// reads in large chunks itself).
pub fn parse_reader(source: impl Read) -> Result<Vec<JunitCase>, String> {
    let mut events = events(source);
    let mut state = Reader::default();
    loop {
        let event = events.next();
        let marked = events.source().marked();
        let damage = match event {
            Ok(XmlEvent::EndDocument) => break,
            Ok(event) => match state.event(event, marked) {
                Ok(()) => continue,
                Err(damage) => damage,
            },
            Err(e) => e.to_string(),
        };
        if state.cases.is_empty() {
            return Err(format!("not a readable JUnit XML document: {damage}"));
        }
        // Damaged after some testcases: keep those (the one in progress
        // is incomplete and dropped).
        return Ok(state.cases);
    }
    match state.root {
        Some(root)
            if state.cases.is_empty()
                && !matches!(root.as_str(), "testsuites" | "testsuite" | "testcase") =>
        {
            Err(format!(
                "not a JUnit XML document: the root element is <{root}>, expected <testsuites> or <testsuite>"
            ))
        }
        _ => Ok(state.cases),
    }
}

/// An attribute's value with the pre-pass's marks turned back into text
/// (`marked`: whether the pre-pass has written any so far).
fn attribute_value(value: String, marked: bool) -> String {
    let (mut value, cut) = unmark(value, marked);
    if cut > 0 {
        push_cut_note(&mut value, " ", cut);
    }
    value
}

/// `value` with terminal escape sequences (an ESC mark and what follows it)
/// removed, a lone ESC as U+FFFD, and cut marks removed; returns the bytes
/// the marks said were cut.
fn unmark(value: String, marked: bool) -> (String, u64) {
    if !marked || !value.contains([ESCAPE_MARK, CUT_MARK]) {
        return (value, 0);
    }
    let mut out = String::with_capacity(value.len());
    let mut cut = 0u64;
    let mut rest = value.as_str();
    while let Some((at, mark)) = rest
        .char_indices()
        .find(|&(_, c)| c == ESCAPE_MARK || c == CUT_MARK)
    {
        out.push_str(&rest[..at]);
        rest = &rest[at + mark.len_utf8()..];
        if mark == CUT_MARK {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            for d in rest[..digits].bytes() {
                cut = cut.saturating_mul(10).saturating_add(u64::from(d - b'0'));
            }
            rest = &rest[digits..];
            rest = rest.strip_prefix(CUT_MARK).unwrap_or(rest);
        } else if let Some(body) = rest.strip_prefix('[') {
            // A CSI sequence, measured as the console measures it.
            rest = &body[crate::text::csi_body_len(body.as_bytes())..];
        } else {
            out.push('\u{FFFD}');
        }
    }
    out.push_str(rest);
    (out, cut)
}

/// Say that `cut` bytes of a value were cut, after `separator`.
fn push_cut_note(out: &mut String, separator: &str, cut: u64) {
    if !out.is_empty() {
        out.push_str(separator);
    }
    out.push_str("… ");
    out.push_str(itoa::Buffer::new().format(cut));
    out.push_str(" bytes cut");
}

/// What text inside the current testcase is being collected for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// The body of `<failure>`, `<error>` or `<skipped>`.
    Details,
    SystemOut,
    SystemErr,
    /// The body of a Surefire rerun element (or its `<stackTrace>`).
    RerunDetails,
}

#[derive(Default)]
struct Reader {
    cases: Vec<JunitCase>,
    /// Name of the document's root element.
    root: Option<String>,
    /// Element nesting depth of the event being handled.
    depth: usize,
    /// The testcase being read and its depth.
    current: Option<(JunitCase, usize)>,
    /// The rerun element being read (pushed to `current.reruns` at its end)
    /// and its depth.
    rerun: Option<(Rerun, usize)>,
    target: Option<(Target, usize)>,
    text: String,
    /// Bytes of the target's text not kept.
    text_cut: u64,
}

impl Reader {
    /// Handle one event; `Err` says why reading cannot go on.
    fn event(&mut self, event: XmlEvent, marked: bool) -> Result<(), String> {
        match event {
            XmlEvent::StartElement {
                name, attributes, ..
            } => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(format!("elements nested more than {MAX_DEPTH} deep"));
                }
                self.start(&name.local_name, attributes, marked);
            }
            XmlEvent::EndElement { .. } => self.end(),
            XmlEvent::Characters(text) | XmlEvent::CData(text) | XmlEvent::Whitespace(text) => {
                // Only the element's own text: a rerun's nested
                // `<system-out>` is not part of its details.
                if matches!(self.target, Some((_, d)) if d == self.depth) {
                    self.push_text(text, marked);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn start(&mut self, local: &str, attributes: Vec<OwnedAttribute>, marked: bool) {
        if self.root.is_none() {
            self.root = Some(local.to_string());
        }
        let Some((case, case_depth)) = &mut self.current else {
            if local == "testcase" {
                self.current = Some((new_case(attributes, marked), self.depth));
            }
            return;
        };
        let case_depth = *case_depth;
        if self.depth == case_depth + 1 {
            match local {
                "failure" | "error" | "skipped" => {
                    let outcome = match local {
                        "failure" => Outcome::Failed,
                        "error" => Outcome::Error,
                        _ => Outcome::Skipped,
                    };
                    // A testcase with both a failure and an error
                    // keeps the worst; its message goes with it.
                    if case.outcome == Outcome::Passed || outcome > case.outcome {
                        case.outcome = outcome;
                        case.message = message(attributes, marked);
                        self.start_text(Target::Details);
                    }
                }
                "system-out" => self.start_text(Target::SystemOut),
                "system-err" => self.start_text(Target::SystemErr),
                _ if RERUN_ELEMENTS.contains(&local) && case.reruns.len() < MAX_RERUNS => {
                    let message = message(attributes, marked);
                    self.rerun = Some(((local.to_string(), message, None), self.depth));
                    self.start_text(Target::RerunDetails);
                }
                _ => {}
            }
        } else if self.depth == case_depth + 2 && local == "stackTrace" && self.rerun.is_some() {
            // Surefire puts a rerun's trace in a `<stackTrace>` child;
            // its text replaces whatever loose text came before.
            self.start_text(Target::RerunDetails);
        }
    }

    fn end(&mut self) {
        let depth = self.depth;
        self.depth = depth.saturating_sub(1);
        if let Some((target, d)) = self.target {
            if d == depth {
                self.finish_text(target);
            }
        }
        if matches!(&self.rerun, Some((_, d)) if *d == depth) {
            let (rerun, _) = self.rerun.take().expect("checked above");
            if let Some((case, _)) = &mut self.current {
                case.reruns.push(rerun);
            }
        }
        if matches!(&self.current, Some((_, d)) if *d == depth) {
            let (case, _) = self.current.take().expect("checked above");
            self.cases.push(case);
        }
    }

    /// Add a piece of the target's text, within [`TEXT_CAP`].
    fn push_text(&mut self, text: String, marked: bool) {
        let (text, cut) = unmark(text, marked);
        self.text_cut += cut;
        let room = TEXT_CAP.saturating_sub(self.text.len());
        if text.len() <= room {
            self.text.push_str(&text);
            return;
        }
        let mut keep = room;
        while !text.is_char_boundary(keep) {
            keep -= 1;
        }
        self.text.push_str(&text[..keep]);
        self.text_cut += (text.len() - keep) as u64;
    }

    fn start_text(&mut self, target: Target) {
        self.target = Some((target, self.depth));
        self.text.clear();
        self.text_cut = 0;
    }

    fn finish_text(&mut self, target: Target) {
        self.target = None;
        let mut text = tidy(&self.text);
        if self.text_cut > 0 {
            let note = text.get_or_insert_with(String::new);
            push_cut_note(note, "\n", self.text_cut);
        }
        self.text.clear();
        if text.is_none() && target == Target::RerunDetails {
            // An empty `<stackTrace/>` does not erase the rerun's own text.
            return;
        }
        match (target, &mut self.current, &mut self.rerun) {
            (Target::RerunDetails, _, Some(((_, _, details), _))) => *details = text,
            (Target::Details, Some((case, _)), _) => case.details = text,
            (Target::SystemOut, Some((case, _)), _) => case.system_out = text,
            (Target::SystemErr, Some((case, _)), _) => case.system_err = text,
            _ => {}
        }
    }
}

fn new_case(attributes: Vec<OwnedAttribute>, marked: bool) -> JunitCase {
    let mut name = None;
    let mut classname = None;
    let mut file = None;
    let mut line = None;
    let mut time = None;
    let mut timestamp = None;
    for attribute in attributes {
        let slot = match attribute.name.local_name.as_str() {
            "name" => &mut name,
            "classname" => &mut classname,
            "file" => &mut file,
            "line" => &mut line,
            "time" => &mut time,
            "timestamp" => &mut timestamp,
            _ => continue,
        };
        slot.get_or_insert(attribute.value);
    }
    let text = |v: Option<String>| {
        v.map(|v| attribute_value(v, marked))
            .filter(|v| !v.is_empty())
    };
    JunitCase {
        classname: text(classname),
        file: text(file),
        line: line.and_then(|l| l.trim().parse().ok()),
        time: time.map_or(0.0, |t| parse_seconds(&t)),
        timestamp: text(timestamp),
        ..JunitCase::named(name.map(|n| attribute_value(n, marked)).unwrap_or_default())
    }
}

/// The non-empty `message` attribute of a failure, error, skip or rerun.
fn message(attributes: Vec<OwnedAttribute>, marked: bool) -> Option<String> {
    attributes
        .into_iter()
        .find(|a| a.name.local_name == "message")
        .map(|a| attribute_value(a.value, marked))
        .filter(|m| !m.is_empty())
}

/// A `time` attribute in seconds; anything unparsable, negative or not
/// finite (`inf`, `NaN`) is 0 so that no caller can be handed a duration
/// that `Duration::from_secs_f64` panics on.
fn parse_seconds(text: &str) -> f64 {
    match text.trim().parse::<f64>() {
        Ok(t) if t.is_finite() && t > 0.0 => t,
        _ => 0.0,
    }
}

/// Whitespace-only text is absent; otherwise drop trailing whitespace and
/// leading blank lines (indentation around a CDATA block), but keep the
/// first line's own indentation.
pub(super) fn tidy(text: &str) -> Option<String> {
    let trimmed = text.trim_end();
    if trimmed.is_empty() {
        return None;
    }
    let start = trimmed
        .char_indices()
        .take_while(|(_, c)| c.is_whitespace())
        .filter(|&(_, c)| c == '\n')
        .last()
        .map_or(0, |(i, _)| i + 1);
    Some(trimmed[start..].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::junit::prepass::{ATTRIBUTE_CAP, TEXT_CAP};

    #[test]
    fn durations_agree_with_the_full_parse() {
        let xml = r#"<?xml version="1.0"?>
<testsuites><testsuite name="s">
  <testcase classname="c" name="a &amp; b" time="0.25"/>
  <testcase classname="c" name="no time"/>
  <testcase classname="c" name="bad" time="-1"/>
  <testcase classname="c" name="fails" time="1.5"><failure message="m">x</failure></testcase>
</testsuite></testsuites>"#;
        let mut seen = Vec::new();
        for_each_duration(xml, |id, t| seen.push((id.into_owned(), t)));
        assert_eq!(
            seen,
            vec![("a & b".to_string(), 0.25), ("fails".to_string(), 1.5)]
        );
        let full: Vec<(String, f64)> = parse(xml)
            .unwrap()
            .into_iter()
            .filter(|c| c.time > 0.0)
            .map(|c| (c.name, c.time))
            .collect();
        assert_eq!(seen, full);
    }

    fn one(xml: &str) -> JunitCase {
        let mut cases = parse(xml).expect("parses");
        assert_eq!(cases.len(), 1, "{cases:#?}");
        cases.remove(0)
    }

    /// pytest 8, default `junit_family=xunit2`: no `file`/`line`.
    const PYTEST_XUNIT2: &str = r#"<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="5" time="0.087" timestamp="2026-11-27T14:20:01.123456+00:00" hostname="ci-runner-3"><testcase classname="tests.test_math" name="test_add" time="0.001" /><testcase classname="tests.test_math" name="test_div" time="0.002"><failure message="AssertionError: expected 2 got 3&#10;assert 3 == 2">def test_div():
&gt;       assert 1 + 2 == 2, "expected 2 got 3"
E       AssertionError: expected 2 got 3
E       assert 3 == 2

tests/test_math.py:10: AssertionError</failure></testcase><testcase classname="tests.test_math" name="test_param[a b-1]" time="0.000"><skipped type="pytest.skip" message="not on linux">/app/tests/test_math.py:14: not on linux</skipped></testcase><testcase classname="tests.test_io" name="test_read" time="0.004"><error message="failed on setup with &quot;FileNotFoundError: [Errno 2] No such file or directory: 'data.csv'&quot;">@pytest.fixture
    def data():
&gt;       return open("data.csv")
E       FileNotFoundError: [Errno 2] No such file or directory: 'data.csv'</error></testcase><testcase classname="tests.test_io" name="test_print" time="0.003"><system-out>--------------------------------- Captured Log ---------------------------------
hello from the test
</system-out><system-err>warn: 3 &lt; 4</system-err></testcase></testsuite></testsuites>"#;

    /// pytest with `-o junit_family=xunit1`: `file` and `line` attributes.
    const PYTEST_XUNIT1: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<testsuites>
  <testsuite name="pytest" errors="0" failures="0" skipped="0" tests="2" time="0.020" timestamp="2026-11-27T14:20:01" hostname="ci">
    <testcase classname="tests.test_strings.TestUpper" name="test_upper[ß-SS]" file="tests/test_strings.py" line="41" time="0.011">
      <properties><property name="nodeid" value="ignored"/></properties>
    </testcase>
    <testcase classname="tests.test_strings" name="test_len" file="tests/test_strings.py" line="7" time="0.009"/>
  </testsuite>
</testsuites>"#;

    /// cargo-nextest's JUnit: a testsuite per binary, `classname` = binary id.
    const NEXTEST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nextest-run" tests="3" failures="1" errors="0" uuid="45c50d8f-5c45-4a4b-9d1f-1f0d7f2e9a8c" timestamp="2026-11-27T14:20:01.000+00:00" time="0.412">
    <testsuite name="offload::bin/offload" tests="1" disabled="0" errors="0" failures="0">
        <testcase name="cli::tests::parses_run" classname="offload::bin/offload" timestamp="2026-11-27T14:20:01.010+00:00" time="0.004">
        </testcase>
    </testsuite>
    <testsuite name="offload::logs" tests="2" disabled="0" errors="0" failures="1">
        <testcase name="failures_filter" classname="offload::logs" timestamp="2026-11-27T14:20:01.020+00:00" time="0.205">
            <failure type="test failure with exit code 101">thread &apos;failures_filter&apos; panicked at tests/logs.rs:42:5:
assertion `left == right` failed
  left: 1
 right: 0
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace</failure>
            <system-out>
running 1 test
test failures_filter ... FAILED
</system-out>
            <system-err>thread &apos;failures_filter&apos; panicked at tests/logs.rs:42:5:
assertion `left == right` failed</system-err>
        </testcase>
        <testcase name="no_match" classname="offload::logs" timestamp="2026-11-27T14:20:01.030+00:00" time="0.203">
            <flakyFailure type="test failure" message="timed out"><![CDATA[first attempt hung]]></flakyFailure>
        </testcase>
    </testsuite>
</testsuites>
"#;

    #[test]
    fn pytest_xunit2_outcomes_messages_and_output() {
        let cases = parse(PYTEST_XUNIT2).unwrap();
        let names: Vec<_> = cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "test_add",
                "test_div",
                "test_param[a b-1]",
                "test_read",
                "test_print"
            ]
        );
        assert_eq!(cases[0].outcome, Outcome::Passed);
        assert_eq!(cases[0].classname.as_deref(), Some("tests.test_math"));
        assert_eq!(cases[0].time, 0.001);
        assert_eq!(cases[0].message, None);

        let div = &cases[1];
        assert_eq!(div.outcome, Outcome::Failed);
        assert_eq!(
            div.message.as_deref(),
            Some("AssertionError: expected 2 got 3\nassert 3 == 2")
        );
        let details = div.details.as_deref().unwrap();
        assert!(details.starts_with("def test_div():\n>       assert 1 + 2 == 2"));
        assert!(details.ends_with("tests/test_math.py:10: AssertionError"));

        assert_eq!(cases[2].outcome, Outcome::Skipped);
        assert_eq!(cases[2].message.as_deref(), Some("not on linux"));
        assert_eq!(
            cases[3].message.as_deref(),
            Some("failed on setup with \"FileNotFoundError: [Errno 2] No such file or directory: 'data.csv'\"")
        );
        assert_eq!(cases[3].outcome, Outcome::Error);
        assert!(cases[3]
            .details
            .as_deref()
            .unwrap()
            .contains(">       return open(\"data.csv\")"));

        let print = &cases[4];
        assert_eq!(print.outcome, Outcome::Passed);
        assert!(print
            .system_out
            .as_deref()
            .unwrap()
            .ends_with("hello from the test"));
        assert_eq!(print.system_err.as_deref(), Some("warn: 3 < 4"));
        assert_eq!(print.file, None);
    }

    #[test]
    fn pytest_xunit1_file_and_line_and_properties_ignored() {
        let cases = parse(PYTEST_XUNIT1).unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].name, "test_upper[ß-SS]");
        assert_eq!(cases[0].file.as_deref(), Some("tests/test_strings.py"));
        assert_eq!(cases[0].line, Some(41));
        assert_eq!(cases[0].outcome, Outcome::Passed);
        assert_eq!(cases[0].details, None);
        assert_eq!(cases[1].line, Some(7));
        assert_eq!(cases[1].time, 0.009);
    }

    #[test]
    fn nextest_suites_per_binary_with_failure_output_and_flaky() {
        let cases = parse(NEXTEST).unwrap();
        assert_eq!(cases.len(), 3);
        assert_eq!(cases[0].classname.as_deref(), Some("offload::bin/offload"));
        assert_eq!(cases[0].name, "cli::tests::parses_run");
        assert_eq!(cases[0].outcome, Outcome::Passed);
        assert_eq!(cases[0].system_out, None, "indentation is not output");

        let failed = &cases[1];
        assert_eq!(failed.outcome, Outcome::Failed);
        assert_eq!(failed.message, None);
        assert!(failed
            .details
            .as_deref()
            .unwrap()
            .starts_with("thread 'failures_filter' panicked at tests/logs.rs:42:5:\nassertion"));
        assert_eq!(
            failed.system_out.as_deref(),
            Some("running 1 test\ntest failures_filter ... FAILED")
        );
        assert!(failed
            .system_err
            .as_deref()
            .unwrap()
            .contains("`left == right`"));

        let flaky = &cases[2];
        assert_eq!(flaky.outcome, Outcome::Passed);
        assert_eq!(
            flaky.reruns,
            vec![(
                "flakyFailure".to_string(),
                Some("timed out".to_string()),
                Some("first attempt hung".to_string())
            )]
        );
    }

    #[test]
    fn plain_runner_without_declaration_or_testsuites() {
        let cases = parse(
            r#"<testsuite name="t" tests="2"><testcase name="a"/><testcase classname="" name="b" time="1.5e0"><failure>boom</failure></testcase></testsuite>"#,
        )
        .unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].classname, None);
        assert_eq!(cases[1].classname, None);
        assert_eq!(cases[1].time, 1.5);
        assert_eq!(cases[1].details.as_deref(), Some("boom"));
    }

    #[test]
    fn nested_suites_and_suite_level_output_ignored() {
        let cases = parse(
            r#"<testsuites><testsuite name="outer"><system-out>suite noise</system-out>
                <testsuite name="inner"><testcase name="deep"><system-out>mine</system-out></testcase></testsuite>
                <testcase name="shallow"/>
                <system-err>more suite noise</system-err></testsuite></testsuites>"#,
        )
        .unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].name, "deep");
        assert_eq!(cases[0].system_out.as_deref(), Some("mine"));
        assert_eq!(cases[1].name, "shallow");
        assert_eq!(cases[1].system_out, None);
        assert_eq!(cases[1].system_err, None);
    }

    #[test]
    fn surefire_reruns_with_stack_trace_children() {
        let case = one(r#"<testsuite><testcase name="t" classname="C" time="0.5">
                <failure message="final" type="java.lang.AssertionError">final trace</failure>
                <rerunFailure message="first" type="java.lang.AssertionError">
                    <stackTrace>trace one</stackTrace>
                    <system-out>out of attempt one</system-out>
                </rerunFailure>
                <rerunError message="second"><![CDATA[loose text]]></rerunError>
                <flakyError/>
                <system-out>final out</system-out>
            </testcase></testsuite>"#);
        assert_eq!(case.outcome, Outcome::Failed);
        assert_eq!(case.message.as_deref(), Some("final"));
        assert_eq!(case.details.as_deref(), Some("final trace"));
        assert_eq!(case.system_out.as_deref(), Some("final out"));
        let reruns: Vec<_> = case
            .reruns
            .iter()
            .map(|(k, m, d)| (k.as_str(), m.as_deref(), d.as_deref()))
            .collect();
        assert_eq!(
            reruns,
            [
                ("rerunFailure", Some("first"), Some("trace one")),
                ("rerunError", Some("second"), Some("loose text")),
                ("flakyError", None, None),
            ]
        );
    }

    #[test]
    fn cdata_entities_and_non_ascii() {
        let case = one(
            "<testsuite><testcase name=\"tëst &lt;&gt;&amp;&quot;&apos; &#x1F600;&#233;\u{a0}日本\">\
             <failure message=\"caf&#xE9; &#10;line2\"><![CDATA[raw <xml> & ]] stuff]]>\n and after &amp; ü</failure>\
             </testcase></testsuite>",
        );
        assert_eq!(case.name, "tëst <>&\"' 😀é\u{a0}日本");
        assert_eq!(case.message.as_deref(), Some("café \nline2"));
        assert_eq!(
            case.details.as_deref(),
            Some("raw <xml> & ]] stuff\n and after & ü")
        );
    }

    #[test]
    fn illegal_characters_from_a_careless_runner_do_not_lose_results() {
        let cases = parse(
            "<testsuite><testcase name=\"a\"><failure>\x1b[31mred\x1b[0m and nul \x00 and ref &#x1b;</failure></testcase>\
             <testcase name=\"b\"/></testsuite>",
        )
        .unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(
            cases[0].details.as_deref(),
            Some("red and nul \u{FFFD} and ref \u{FFFD}")
        );
    }

    #[test]
    fn html_entities_are_understood() {
        assert_eq!(
            one("<testsuite><testcase name=\"a&nbsp;b\"/></testsuite>").name,
            "a\u{a0}b"
        );
    }

    #[test]
    fn truncated_document_keeps_complete_testcases() {
        let full = PYTEST_XUNIT2;
        // Cut in the middle of the 4th testcase's error text.
        let cut = full.find("E       FileNotFoundError").unwrap();
        let cases = parse(&full[..cut]).unwrap();
        let names: Vec<_> = cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["test_add", "test_div", "test_param[a b-1]"]);

        // Cut inside a tag, and right after a complete testcase.
        let cases =
            parse("<testsuites><testsuite><testcase name=\"a\"/><testcase name=\"b\" ti").unwrap();
        assert_eq!(cases.len(), 1);
        let cases = parse("<testsuite><testcase name=\"a\"></testcase>").unwrap();
        assert_eq!(cases.len(), 1);
        // Garbage written after the damage does not matter either.
        let cases = parse("<testsuite><testcase name=\"a\"/><testcase name=\"b\"><<<>>>").unwrap();
        assert_eq!(cases.len(), 1);
    }

    #[test]
    fn nothing_readable_is_an_error_that_says_why() {
        for bad in [
            "",
            "   \n",
            "not xml at all",
            "<testsuite><testcase name=\"a\"",
            "{\"json\": true}",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(
                err.contains("not a readable JUnit XML document"),
                "{bad:?}: {err}"
            );
        }
        let err = parse("<html><body>502 Bad Gateway</body></html>").unwrap_err();
        assert!(err.contains("root element is <html>"), "{err}");
    }

    #[test]
    fn empty_report_is_not_an_error() {
        assert_eq!(parse("<testsuites/>").unwrap(), vec![]);
        assert_eq!(
            parse("<?xml version=\"1.0\"?><testsuite name=\"pytest\" tests=\"0\"></testsuite>")
                .unwrap(),
            vec![]
        );
    }

    #[test]
    fn bad_times_and_lines_become_defaults() {
        let cases = parse(
            r#"<testsuite><testcase name="a" time="1,5" line="x"/><testcase name="b" time="inf"/><testcase name="c" time="-2"/><testcase name="d" time="NaN"/><testcase name="e" time=" 0.25 "/></testsuite>"#,
        )
        .unwrap();
        let times: Vec<f64> = cases.iter().map(|c| c.time).collect();
        assert_eq!(times, [0.0, 0.0, 0.0, 0.0, 0.25]);
        assert_eq!(cases[0].line, None);
    }

    #[test]
    fn byte_order_mark_is_ignored() {
        let case = one("\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><testsuite><testcase name=\"a\"/></testsuite>");
        assert_eq!(case.name, "a");
    }

    #[test]
    fn declared_latin1_encoding_does_not_mangle_utf8() {
        let case = one("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><testsuite><testcase name=\"ünïcode\"/></testsuite>");
        assert_eq!(case.name, "ünïcode");
    }

    #[test]
    fn error_beats_failure_when_both_present() {
        let case = one(
            r#"<testsuite><testcase name="t"><failure message="f">ff</failure><error message="e">ee</error></testcase></testsuite>"#,
        );
        assert_eq!(case.outcome, Outcome::Error);
        assert_eq!(case.message.as_deref(), Some("e"));
        assert_eq!(case.details.as_deref(), Some("ee"));
    }

    /// Real reports, kept small: pytest 8 in both JUnit families and
    /// cargo-nextest, for tests whose failures contain markup characters
    /// and non-ASCII text (see `testdata/README.md`).
    const REAL_PYTEST_XUNIT1: &str = include_str!("testdata/pytest-xunit1.xml");
    const REAL_PYTEST_XUNIT2: &str = include_str!("testdata/pytest-xunit2.xml");
    const REAL_NEXTEST: &str = include_str!("testdata/nextest.xml");

    #[test]
    fn real_pytest_reports_in_both_families() {
        for (xml, family_has_file) in [(REAL_PYTEST_XUNIT1, true), (REAL_PYTEST_XUNIT2, false)] {
            let cases = parse(xml).unwrap();
            let names: Vec<_> = cases.iter().map(|c| c.name.as_str()).collect();
            assert_eq!(
                names,
                [
                    "test_passes",
                    "test_fails_with_markup",
                    "test_errors_in_fixture",
                    "test_skipped",
                    "test_param[a b]",
                    // pytest escapes non-ASCII in node IDs itself.
                    "test_param[\\xfc<&>]",
                    "test_param[x\\ty]",
                ]
            );
            let outcomes: Vec<_> = cases.iter().map(|c| c.outcome).collect();
            use Outcome::*;
            assert_eq!(
                outcomes,
                [Passed, Failed, Error, Skipped, Passed, Failed, Passed]
            );
            assert!(cases
                .iter()
                .all(|c| c.classname.as_deref() == Some("test_sample")));
            assert_eq!(cases[1].file.is_some(), family_has_file);
            if family_has_file {
                assert_eq!(cases[1].file.as_deref(), Some("test_sample.py"));
                assert_eq!(cases[1].line, Some(8));
            }

            assert!(cases[0]
                .system_out
                .as_deref()
                .unwrap()
                .contains("hello <stdout> & ünïcode"));
            let failed = &cases[1];
            assert!(failed
                .message
                .as_deref()
                .unwrap()
                .starts_with("AssertionError: tags <b> & ampersands ü\nassert \"<a href='x'>"));
            let details = failed.details.as_deref().unwrap();
            assert!(details.starts_with("def test_fails_with_markup():\n"));
            assert!(details.contains(r#"expected = "<a href='x'>&amp; café 日本</a>""#));
            assert_eq!(
                cases[2].message.as_deref(),
                Some("failed on setup with \"RuntimeError: fixture <broke> & stopped: ß\"")
            );
            assert_eq!(cases[3].message.as_deref(), Some("not <here> & now"));
            assert!(cases[5]
                .system_err
                .as_deref()
                .unwrap()
                .contains("stderr 'ü<&>'"));
        }
    }

    #[test]
    fn real_nextest_report() {
        let cases = parse(REAL_NEXTEST).unwrap();
        let names: Vec<_> = cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["tests::panics", "tests::fails_with_markup", "tests::passes"]
        );
        assert!(cases.iter().all(|c| c.classname.as_deref() == Some("tiny")));
        let markup = &cases[1];
        assert_eq!(markup.outcome, Outcome::Failed);
        assert!(markup
            .message
            .as_deref()
            .unwrap()
            .starts_with("thread 'tests::fails_with_markup'"));
        let details = markup.details.as_deref().unwrap();
        assert!(details.contains("failed: markup <x> & non-ascii é\n  left: \"<a>&amp; café\""));
        assert!(details.contains(" right: \"<b>&lt; 日本 🎉\""));
        assert!(markup
            .system_err
            .as_deref()
            .unwrap()
            .starts_with("stderr <b> & ß"));
        assert_eq!(cases[2].outcome, Outcome::Passed);
        assert!(cases[2]
            .system_out
            .as_deref()
            .unwrap()
            .contains("out <ok> & fine ü"));
        // Each testcase's start, as written (the testsuites' own is not one).
        let stamps: Vec<_> = cases.iter().map(|c| c.timestamp.as_deref()).collect();
        assert_eq!(
            stamps,
            [
                Some("2026-11-27T15:09:01.008+00:00"),
                Some("2026-11-27T15:09:01.008+00:00"),
                Some("2026-11-27T15:09:01.014+00:00"),
            ]
        );
        assert!(parse(REAL_PYTEST_XUNIT1)
            .unwrap()
            .iter()
            .all(|c| c.timestamp.is_none()));
    }

    /// A runner killed mid-write leaves a report cut anywhere, even inside a
    /// UTF-8 sequence (the caller reads it lossily). Whatever the cut, the
    /// reader must not panic, and must return exactly the testcases that
    /// were complete: a prefix of the full result that only grows.
    #[test]
    fn a_report_cut_at_every_byte_yields_a_growing_prefix() {
        for full in [REAL_PYTEST_XUNIT2, REAL_NEXTEST, PYTEST_XUNIT1, NEXTEST] {
            let complete = parse(full).unwrap();
            let mut read_before = 0;
            for cut in 0..=full.len() {
                let prefix = String::from_utf8_lossy(&full.as_bytes()[..cut]);
                let cases = match parse(&prefix) {
                    Ok(cases) => cases,
                    Err(e) => {
                        assert_eq!(
                            read_before, 0,
                            "an error after some cases, cut at {cut}: {e}"
                        );
                        continue;
                    }
                };
                assert!(cases.len() >= read_before, "fewer cases at {cut}");
                assert_eq!(cases[..], complete[..cases.len()], "cut at {cut}");
                read_before = cases.len();
            }
            assert_eq!(read_before, complete.len());
        }
    }

    /// What reading a runner's results costs, in CPU time: 20,000 testcases
    /// shaped like pytest's (one in fifty failing with a traceback full of
    /// escaped markup). Run it with
    /// `cargo test --release parse_speed -- --ignored --nocapture`.
    /// The benchmark's bound. Measured on a 2-core box (2.8 MB): 68-72 ms
    /// (about 40 MB/s), of which the pre-pass is 5-6 ms and xml-rs the rest
    /// (the hand-written tokenizer it replaced took 5.3 ms). Three times the
    /// measurement leaves room for a loaded machine and still catches
    /// anything superlinear.
    const BOUND_MS: u64 = 200;

    #[test]
    #[ignore = "a benchmark; meaningful only in release builds"]
    fn parse_speed() {
        let mut xml = String::from(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><testsuites><testsuite name=\"pytest\">\n",
        );
        for i in 0..20_000 {
            let case = format!(
                "<testcase classname=\"tests.test_mod_{}.TestClass\" name=\"test_case_{i}[param-{}]\" file=\"tests/test_mod_{}.py\" line=\"{}\" time=\"0.{:03}\"",
                i / 100,
                i % 7,
                i / 100,
                i % 100 * 3,
                i % 1000
            );
            if i % 50 == 0 {
                xml += &format!(
                    "{case}><failure message=\"AssertionError: assert {i} == 0&#10;+  where {i} = f()\">def test_case():\n&gt;       assert f() == 0\nE       AssertionError: assert {i} == 0\nE        +  where {i} = &lt;function f at 0x7f&gt;()\n\ntests/test_mod.py:3: AssertionError</failure></testcase>\n"
                );
            } else {
                xml += &format!("{case} />\n");
            }
        }
        xml += "</testsuite></testsuites>\n";

        let mut best = std::time::Duration::MAX;
        for _ in 0..10 {
            let start = crate::junit::tests::thread_cpu_time();
            let cases = parse(&xml).unwrap();
            best = best.min(crate::junit::tests::thread_cpu_time() - start);
            assert_eq!(cases.len(), 20_000);
            assert_eq!(cases[50].outcome, Outcome::Failed);
        }
        let mb = xml.len() as f64 / 1e6;
        eprintln!(
            "20,000 testcases, {mb:.1} MB: parse {best:?} of CPU (best of 10), {:.0} MB/s",
            mb / best.as_secs_f64()
        );
        if !cfg!(debug_assertions) {
            assert!(
                best < std::time::Duration::from_millis(BOUND_MS),
                "parse took {best:?}"
            );
        }
    }

    /// Each kind of sloppy XML a runner writes, read as the runner meant it,
    /// and the testcase after it still read.
    #[test]
    fn sloppy_xml_from_runners_is_read() {
        let cases: &[(&str, &str)] = &[
            ("x & y", "x & y"),
            ("&bogus; &amp &lt", "&bogus; &amp &lt"),
            ("a &nbsp;&copy;&hellip;", "a \u{a0}©…"),
            (
                "nul &#0; ref &#x1F; raw \x00\x07",
                "nul \u{FFFD} ref \u{FFFD} raw \u{FFFD}\u{FFFD}",
            ),
            ("\u{FFFE}\u{FFFF}&#xFFFE;", "\u{FFFD}\u{FFFD}\u{FFFD}"),
            ("a ]]> b > c", "a ]]> b > c"),
            ("x <!-- a -- b --> y", "x  y"),
            ("\x1b[1;31mred\x1b[0m \x1b plain", "red \u{FFFD} plain"),
        ];
        for (sloppy, meant) in cases {
            let doc = format!(
                "<testsuite><testcase name=\"t\"><failure message=\"{sloppy}\">{sloppy}</failure></testcase><testcase name=\"next\"/></testsuite>"
            );
            let cases = parse(&doc).unwrap_or_else(|e| panic!("{sloppy:?}: {e}"));
            assert_eq!(cases.len(), 2, "{sloppy:?}");
            assert_eq!(cases[0].details.as_deref(), Some(*meant), "{sloppy:?}");
            // In an attribute too, but a comment is no comment there.
            if !sloppy.contains("<!--") {
                assert_eq!(cases[0].message.as_deref(), Some(*meant), "{sloppy:?}");
            }
        }
        // A `<` in an attribute value, a DOCTYPE declaring entities (never
        // expanded), invalid UTF-8.
        let case = one("<!DOCTYPE x [<!ENTITY e \"boom\">]><testsuite><testcase name=\"a<b &e;\"/></testsuite>");
        assert_eq!(case.name, "a<b &e;");
        let cases =
            parse_reader(&b"<testsuite><testcase name=\"\xff\xfe\"/></testsuite>"[..]).unwrap();
        assert_eq!(cases[0].name, "\u{FFFD}\u{FFFD}");
    }

    /// Issue: escapes were stripped from the raw file, so a cut sequence
    /// swallowed the `"` and `>` after it and every later testcase was lost.
    #[test]
    fn a_cut_escape_sequence_does_not_eat_markup() {
        let cases = parse(
            "<testsuite><testcase name=\"t\"><failure message=\"got \x1b[\">then \x1b[</failure></testcase>\
             <testcase name=\"u\x1b[\"/><testcase name=\"v\x1b[31m\"/></testsuite>",
        )
        .unwrap();
        let names: Vec<_> = cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["t", "u", "v"]);
        assert_eq!(cases[0].outcome, Outcome::Failed);
        assert_eq!(cases[0].message.as_deref(), Some("got "));
        assert_eq!(cases[0].details.as_deref(), Some("then"));
    }

    #[test]
    fn nextest_timestamps_are_kept_as_written() {
        let cases = parse(NEXTEST).unwrap();
        assert_eq!(
            cases[0].timestamp.as_deref(),
            Some("2026-11-27T14:20:01.010+00:00")
        );
        assert_eq!(parse(PYTEST_XUNIT2).unwrap()[0].timestamp, None);
    }

    /// Issue: N unmatched end tags after N open ones took quadratic time.
    /// Work is counted, not timed: the bytes the parser pulls from the
    /// source stay the same however long the damage goes on, because reading
    /// stops at it (an end tag that closes nothing open, or nesting past
    /// [`MAX_DEPTH`]).
    #[test]
    fn stray_end_tags_and_deep_nesting_stop_the_reading_at_once() {
        struct Counting<'a>(&'a [u8], usize);
        impl Read for Counting<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.read(buf)?;
                self.1 += n;
                Ok(n)
            }
        }
        let head = "<testsuite><testcase name=\"t\"/>";
        for n in [10_000, 40_000, 160_000] {
            for doc in [
                format!("{head}{}{}", "<a>".repeat(n), "</b>".repeat(n)),
                format!("{head}{}", "</b>".repeat(n)),
                format!("{head}{}", "<a><b/>".repeat(n)),
            ] {
                let mut source = Counting(doc.as_bytes(), 0);
                let cases = parse_reader(&mut source).unwrap();
                assert_eq!(cases.len(), 1);
                assert!(
                    source.1 <= 4 << 16,
                    "read {} of {} bytes",
                    source.1,
                    doc.len()
                );
            }
        }
    }

    /// Issue: 12 batches writing 300 MB of `<system-out>` each took 5.2 GB.
    /// What is kept of each testcase is capped, and the cut is said.
    #[test]
    fn huge_output_is_cut_and_says_so() {
        let big = "x".repeat(TEXT_CAP + 1000);
        let pieces = format!("<![CDATA[{}]]>", "y".repeat(TEXT_CAP / 4)).repeat(6);
        let doc = format!(
            "<testsuite><testcase name=\"t\"><failure message=\"{}\">{pieces}</failure>\
             <system-out>{big}</system-out><system-err>small</system-err></testcase></testsuite>",
            "m".repeat(ATTRIBUTE_CAP + 5)
        );
        let case = one(&doc);
        let out = case.system_out.unwrap();
        assert_eq!(out, format!("{}\n… 1000 bytes cut", &big[..TEXT_CAP]));
        let details = case.details.unwrap();
        assert!(details.starts_with("yyyy"));
        assert!(
            details.ends_with(&format!("\n… {} bytes cut", TEXT_CAP / 2)),
            "{}",
            &details[details.len() - 40..]
        );
        assert_eq!(
            details.len(),
            TEXT_CAP + format!("\n… {} bytes cut", TEXT_CAP / 2).len()
        );
        assert_eq!(
            case.message.unwrap(),
            format!("{} … 5 bytes cut", "m".repeat(ATTRIBUTE_CAP))
        );
        assert_eq!(case.system_err.as_deref(), Some("small"));
    }

    #[test]
    fn reruns_beyond_the_cap_are_ignored() {
        let doc = format!(
            "<testsuite><testcase name=\"t\">{}</testcase></testsuite>",
            "<rerunFailure message=\"m\"/>".repeat(MAX_RERUNS + 10)
        );
        assert_eq!(one(&doc).reruns.len(), MAX_RERUNS);
    }

    #[test]
    fn tidy_keeps_first_line_indentation() {
        assert_eq!(tidy("\n\n   x\n  y\n\n"), Some("   x\n  y".to_string()));
        assert_eq!(tidy(" \n\t"), None);
        assert_eq!(tidy("a"), Some("a".to_string()));
    }
}
