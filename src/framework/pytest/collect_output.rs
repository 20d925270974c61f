//! Reading what `pytest --collect-only -q` prints.
//!
//! At verbosity -1 pytest prints one node ID per line, a blank line, then its
//! report sections (`=== ERRORS ===`, `=== warnings summary ===`, the short
//! summary) and a footer such as `2/11 tests collected (9 deselected), 1 error
//! in 0.33s`. Anything the project prints itself (a conftest `print` under
//! `-s`) can come before the IDs. The footer's count is the check that no ID
//! was lost: a mismatch is reported, never papered over.

use std::sync::OnceLock;

use regex::Regex;

/// What one discovery run printed, taken apart.
#[derive(Debug, Default, PartialEq)]
pub struct CollectOutput {
    /// Node IDs in the order pytest printed them.
    pub ids: Vec<String>,
    /// The number of selected tests the footer announced, when there is a footer.
    pub reported: Option<usize>,
    /// Lines of the ID block that are not node IDs (output of the project itself).
    pub stray_lines: Vec<String>,
    /// Lines without `::` between node IDs: the rest of an ID that a raw
    /// newline split (pytest's ID escaping turned off), never a test.
    pub split_lines: Vec<String>,
    /// Modules (or other files) pytest could not collect, as it names them.
    pub collection_errors: Vec<String>,
    /// The text of the `ERRORS` section, for error messages.
    pub errors_section: String,
}

fn section_header() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^(=+|!+) .*(=+|!+)$").expect("valid regex"))
}

fn footer() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^=*\s*(?:(\d+)(?:/\d+)? tests? collected|no tests collected|no tests ran)\b")
            .expect("valid regex")
    })
}

fn error_header() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^_+ ERROR collecting (.+?) _+$").expect("valid regex"))
}

/// Parse stdout of `pytest --collect-only -q --verbosity=-1`.
pub fn parse(stdout: &str) -> CollectOutput {
    let lines: Vec<&str> = stdout.lines().map(|l| l.trim_end_matches('\r')).collect();
    let mut out = CollectOutput::default();

    // The ID block ends where pytest's own report starts.
    let report_start = lines
        .iter()
        .position(|l| section_header().is_match(l) || footer().is_match(l))
        .unwrap_or(lines.len());
    // The IDs are the last run of non-blank lines before the report; anything
    // above a blank line is the project's own output.
    let block = &lines[..report_start];
    let end = block
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(0, |i| i + 1);
    let start = block[..end]
        .iter()
        .rposition(|l| l.trim().is_empty())
        .map_or(0, |i| i + 1);
    out.stray_lines = block[..start]
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.to_string())
        .collect();
    let run = &block[start..end];

    for line in &lines[report_start..] {
        if let Some(c) = footer().captures(line) {
            out.reported = Some(c.get(1).and_then(|n| n.as_str().parse().ok()).unwrap_or(0));
        }
    }
    // Node IDs always contain `::` (file::test); a run line without it is
    // stray output, unless the footer says every line of the run is a test.
    let with_sep: Vec<&str> = run.iter().copied().filter(|l| l.contains("::")).collect();
    if out.reported == Some(run.len()) && with_sep.len() != run.len() {
        out.ids = run.iter().map(|l| l.to_string()).collect();
    } else {
        out.ids = with_sep.iter().map(|l| l.to_string()).collect();
        // The project's own output comes before the list, pytest's after it.
        let first_id = run.iter().position(|l| l.contains("::")).unwrap_or(0);
        for (i, line) in run.iter().enumerate().filter(|(_, l)| !l.contains("::")) {
            let list = if i > first_id {
                &mut out.split_lines
            } else {
                &mut out.stray_lines
            };
            list.push(line.to_string());
        }
    }

    // Collection errors: the ERRORS section's headers name each module; the
    // short summary (`ERROR path - message`) is the fallback when tracebacks
    // are off.
    let mut in_errors = false;
    let mut errors_section = Vec::new();
    for line in &lines[report_start..] {
        if section_header().is_match(line) {
            in_errors = line.contains(" ERRORS ");
            if in_errors {
                errors_section.push(*line);
            }
            continue;
        }
        if in_errors {
            errors_section.push(*line);
            if let Some(c) = error_header().captures(line) {
                push_unique(&mut out.collection_errors, c[1].to_string());
            }
        }
    }
    if out.collection_errors.is_empty() {
        for line in &lines[report_start..] {
            if let Some(rest) = line.strip_prefix("ERROR ") {
                let path = rest.split(" - ").next().unwrap_or(rest).trim();
                if !path.is_empty() && !path.contains("::") {
                    push_unique(&mut out.collection_errors, path.to_string());
                }
            }
        }
    }
    out.errors_section = errors_section.join("\n");
    out
}

fn push_unique(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// A test result line of `pytest --verbosity=1` (`tests/t.py::test_a PASSED
/// [ 10%]`, `… SKIPPED (no db) [ 20%]`): the node ID and its outcome.
pub fn verbose_result(line: &str) -> Option<(&str, crate::model::Outcome)> {
    use crate::model::Outcome;
    const WORDS: [(&str, Outcome); 6] = [
        ("PASSED", Outcome::Passed),
        ("XPASS", Outcome::Passed),
        ("FAILED", Outcome::Failed),
        ("ERROR", Outcome::Error),
        ("SKIPPED", Outcome::Skipped),
        ("XFAIL", Outcome::Skipped),
    ];
    // The progress column (`[ 10%]`, or `[ 3/30]` with another style).
    let line = line.trim_end();
    let line = match line.rfind(" [") {
        Some(i) if line.ends_with(']') => line[..i].trim_end(),
        _ => line,
    };
    if !line.contains("::") {
        return None;
    }
    // The status is the last of these words that follows the ID: a reason
    // in parentheses may come after it.
    let mut best: Option<(usize, Outcome)> = None;
    for (word, outcome) in WORDS {
        let mut from = line.len();
        while let Some(i) = line[..from].rfind(word) {
            let before = line[..i].ends_with(' ');
            let rest = &line[i + word.len()..];
            if before && (rest.is_empty() || rest.starts_with(" (")) {
                if best.map_or(true, |(j, _)| i > j) {
                    best = Some((i, outcome));
                }
                break;
            }
            from = i;
        }
    }
    let (at, outcome) = best?;
    let id = line[..at].trim_end();
    id.contains("::").then_some((id, outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbose_result_lines_give_the_node_id_and_outcome() {
        use crate::model::Outcome::*;
        let r = |l| verbose_result(l);
        assert_eq!(
            r("tests/t.py::test_a PASSED                          [ 10%]"),
            Some(("tests/t.py::test_a", Passed))
        );
        assert_eq!(
            r("tests/t.py::test_p[a b] FAILED [ 50%]"),
            Some(("tests/t.py::test_p[a b]", Failed))
        );
        assert_eq!(
            r("tests/t.py::test_s SKIPPED (no db)            [ 70%]"),
            Some(("tests/t.py::test_s", Skipped))
        );
        assert_eq!(
            r("tests/t.py::T::test_e ERROR [100%]"),
            Some(("tests/t.py::T::test_e", Error))
        );
        assert_eq!(
            r("tests/t.py::test_x XFAIL (bug)"),
            Some(("tests/t.py::test_x", Skipped))
        );
        // Not test results: the summary, collection, a test named like a word.
        assert_eq!(r("FAILED tests/t.py::test_a - assert 1 == 2"), None);
        assert_eq!(r("collected 30 items"), None);
        assert_eq!(r("tests/t.py::test_PASSED_twice"), None);
    }

    #[test]
    fn plain_list_with_awkward_ids() {
        let out = parse(
            "tests/test_a.py::TestK::test_p[a b]\n\
             tests/test_a.py::TestK::test_p[c::d]\n\
             tests/test_a.py::test_p[\\xe9]\n\
             tests/test_a.py::test_café\n\
             \n\
             4 tests collected in 0.01s\n",
        );
        assert_eq!(
            out.ids,
            vec![
                "tests/test_a.py::TestK::test_p[a b]",
                "tests/test_a.py::TestK::test_p[c::d]",
                "tests/test_a.py::test_p[\\xe9]",
                "tests/test_a.py::test_café",
            ]
        );
        assert_eq!(out.reported, Some(4));
        assert!(out.stray_lines.is_empty());
        assert!(out.collection_errors.is_empty());
    }

    #[test]
    fn deselection_warnings_and_project_output() {
        let out = parse(
            "hello from conftest\n\
             \n\
             loading:: plugin\n\
             tests/t.py::test_a\n\
             tests/t.py::test_b\n\
             \n\
             =============================== warnings summary ===============================\n\
             tests/t.py::test_a\n\
             \x20 /x/tests/t.py:3: UserWarning: w\n\
             \n\
             2/11 tests collected (9 deselected) in 0.33s\n",
        );
        // `loading:: plugin` is in the run and contains `::`: it counts, and
        // the footer check (3 != 2) is what the caller reports.
        assert_eq!(
            out.ids,
            vec![
                "loading:: plugin",
                "tests/t.py::test_a",
                "tests/t.py::test_b"
            ]
        );
        assert_eq!(out.reported, Some(2));
        assert_eq!(out.stray_lines, vec!["hello from conftest"]);
    }

    #[test]
    fn footer_vouches_for_ids_without_separator() {
        let out = parse("mypy-status\ntests/t.py::test_a\n\n2 tests collected in 0.1s\n");
        assert_eq!(out.ids, vec!["mypy-status", "tests/t.py::test_a"]);
        let out = parse("stray\ntests/t.py::test_a\n\n1 test collected in 0.1s\n");
        assert_eq!(out.ids, vec!["tests/t.py::test_a"]);
        assert_eq!(out.stray_lines, vec!["stray"]);
    }

    #[test]
    fn lines_between_ids_are_split_ids_not_stray_output() {
        let out = parse(
            "conftest says hi\n\
             tests/t.py::test_p[a\n\
             b]\n\
             tests/t.py::test_q\n\
             \n\
             2 tests collected in 0.1s\n",
        );
        assert_eq!(out.ids, vec!["tests/t.py::test_p[a", "tests/t.py::test_q"]);
        assert_eq!(out.split_lines, vec!["b]"]);
        assert_eq!(out.stray_lines, vec!["conftest says hi"]);
    }

    #[test]
    fn nothing_collected() {
        let out = parse("\nno tests collected (11 deselected) in 0.01s\n");
        assert!(out.ids.is_empty());
        assert_eq!(out.reported, Some(0));
        let out = parse("no tests ran in 0.01s\n");
        assert_eq!(out.reported, Some(0));
    }

    #[test]
    fn collection_errors_are_named() {
        let out = parse(
            "tests/sub/test_b.py::test_b\n\
             \n\
             ==================================== ERRORS ====================================\n\
             ____________________ ERROR collecting tests/test_broken.py _____________________\n\
             ImportError while importing test module '/p/tests/test_broken.py'.\n\
             E   ModuleNotFoundError: No module named 'nonexistent_module_xyz'\n\
             _________________ ERROR collecting tests/my dir/test_syntax.py _________________\n\
             E   SyntaxError: invalid syntax\n\
             =========================== short test summary info ============================\n\
             ERROR tests/test_broken.py\n\
             ERROR tests/my dir/test_syntax.py - SyntaxError\n\
             !!!!!!!!!!!!!!!!!!! Interrupted: 2 errors during collection !!!!!!!!!!!!!!!!!!!!\n\
             1 test collected, 2 errors in 0.33s\n",
        );
        assert_eq!(out.ids, vec!["tests/sub/test_b.py::test_b"]);
        assert_eq!(
            out.collection_errors,
            vec!["tests/test_broken.py", "tests/my dir/test_syntax.py"]
        );
        assert!(out
            .errors_section
            .contains("No module named 'nonexistent_module_xyz'"));
        assert!(!out.errors_section.contains("short test summary"));
    }

    #[test]
    fn collection_errors_from_short_summary_when_tracebacks_are_off() {
        let out = parse(
            "\n=========================== short test summary info ============================\n\
             ERROR tests/test_broken.py - ModuleNotFoundError: No module named 'x'\n\
             !!!!!!!!!!!!!!!!!!!! Interrupted: 1 error during collection !!!!!!!!!!!!!!!!!!!!\n\
             no tests collected, 1 error in 0.21s\n",
        );
        assert_eq!(out.collection_errors, vec!["tests/test_broken.py"]);
        assert_eq!(out.reported, Some(0));
    }
}
