#![allow(dead_code)]
//! TEMPORARY: the xml-rs based reader, as an oracle for the tokenizer.
//! Reading JUnit XML as test runners write it (pytest, nextest, any runner),
//! and Offload's own merged report.
//!
//! The reader is deliberately lenient: it looks for `<testcase>` elements
//! wherever they are (under `<testsuites>`, nested `<testsuite>`s, or the
//! root), ignores elements it does not know (`<properties>`, suite-level
//! output), and keeps what it read when the document breaks off.

use xml::reader::{EventReader, ParserConfig, XmlEvent};
use xml::Encoding;

use super::escape;
use crate::model::Outcome;

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

/// One Surefire rerun element: (element name, message, details), as in
/// [`JunitCase::reruns`].
type Rerun = (String, Option<String>, Option<String>);

/// The Surefire elements that record an earlier attempt of a test.
const RERUN_ELEMENTS: [&str; 4] = ["flakyFailure", "flakyError", "rerunFailure", "rerunError"];

/// Parse every `<testcase>` of a JUnit document, in document order.
/// A truncated document yields the testcases completed before the damage
/// (a runner that crashed mid-write still reports what finished); `Err` only
/// when nothing at all could be read.
///
/// Text is returned as written except that whitespace-only text counts as
/// absent and trailing whitespace is dropped (runners indent their CDATA).
/// Characters XML 1.0 forbids (a raw `\x1b` from a runner that does not
/// escape its output) are removed or replaced first, see [`escape::sanitize`].
pub fn old_parse(xml: &str) -> Result<Vec<JunitCase>, String> {
    // A UTF-8 byte order mark (Windows tools write one) is not content.
    let xml = escape::sanitize(xml.strip_prefix('\u{feff}').unwrap_or(xml));
    let mut config = ParserConfig::new()
        .cdata_to_characters(true)
        .whitespace_to_characters(true)
        .ignore_comments(true)
        .coalesce_characters(true)
        // `&#x1b;` and friends: keep reading, as U+FFFD.
        .replace_unknown_entity_references(true)
        // Runners sometimes use HTML's entities.
        .add_entities([("nbsp", "\u{a0}"), ("copy", "©"), ("hellip", "…")]);
    // We were handed a `str`: it is UTF-8 whatever the declaration claims.
    config.override_encoding = Some(Encoding::Utf8);
    config.ignore_invalid_encoding_declarations = true;

    let mut reader = EventReader::new_with_config(xml.as_bytes(), config);
    let mut state = Reader::default();
    loop {
        match reader.next() {
            Ok(XmlEvent::EndDocument) => break,
            Ok(event) => state.event(event),
            Err(e) if state.cases.is_empty() => {
                return Err(format!("not a readable JUnit XML document: {e}"));
            }
            // Damaged after some testcases: keep those (the one in progress
            // is incomplete and dropped).
            Err(_) => return Ok(state.cases),
        }
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
}

impl Reader {
    fn event(&mut self, event: XmlEvent) {
        match event {
            XmlEvent::StartElement {
                name, attributes, ..
            } => {
                self.depth += 1;
                let attr = |key: &str| {
                    attributes
                        .iter()
                        .find(|a| a.name.local_name == key)
                        .map(|a| a.value.clone())
                };
                let local = name.local_name.as_str();
                if self.root.is_none() {
                    self.root = Some(local.to_string());
                }
                let Some((case, case_depth)) = &mut self.current else {
                    if local == "testcase" {
                        self.current = Some((new_case(&attr), self.depth));
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
                                case.message = attr("message").filter(|m| !m.is_empty());
                                self.start_text(Target::Details);
                            }
                        }
                        "system-out" => self.start_text(Target::SystemOut),
                        "system-err" => self.start_text(Target::SystemErr),
                        _ if RERUN_ELEMENTS.contains(&local) => {
                            let message = attr("message").filter(|m| !m.is_empty());
                            self.rerun = Some(((local.to_string(), message, None), self.depth));
                            self.start_text(Target::RerunDetails);
                        }
                        _ => {}
                    }
                } else if self.depth == case_depth + 2
                    && local == "stackTrace"
                    && self.rerun.is_some()
                {
                    // Surefire puts a rerun's trace in a `<stackTrace>` child;
                    // its text replaces whatever loose text came before.
                    self.start_text(Target::RerunDetails);
                }
            }
            XmlEvent::EndElement { .. } => {
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
            XmlEvent::Characters(text) | XmlEvent::Whitespace(text) | XmlEvent::CData(text) => {
                // Only the element's own text: a rerun's nested
                // `<system-out>` is not part of its details.
                if matches!(self.target, Some((_, d)) if d == self.depth) {
                    self.text.push_str(&text);
                }
            }
            _ => {}
        }
    }

    fn start_text(&mut self, target: Target) {
        self.target = Some((target, self.depth));
        self.text.clear();
    }

    fn finish_text(&mut self, target: Target) {
        self.target = None;
        let text = tidy(&self.text);
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

fn new_case(attr: &impl Fn(&str) -> Option<String>) -> JunitCase {
    JunitCase {
        name: attr("name").unwrap_or_default(),
        classname: attr("classname").filter(|c| !c.is_empty()),
        file: attr("file").filter(|f| !f.is_empty()),
        line: attr("line").and_then(|l| l.trim().parse().ok()),
        time: attr("time").map_or(0.0, |t| parse_seconds(&t)),
        outcome: Outcome::Passed,
        message: None,
        details: None,
        system_out: None,
        system_err: None,
        reruns: Vec::new(),
    }
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
fn tidy(text: &str) -> Option<String> {
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
