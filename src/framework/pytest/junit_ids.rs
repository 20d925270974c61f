//! Mapping pytest's JUnit testcases back to node IDs, with nothing from the
//! project's side (no conftest fixture).
//!
//! pytest's junitxml plugin derives a testcase's `classname` and `name` from
//! the node ID (`mangle_test_address`): the part before the first `[` is split
//! at `::`, the file path becomes dotted without `.py`, the parameter part
//! goes back on the last name. Reversing that is lossy (`a.b/test_x.py` and
//! `a/b/test_x.py` look alike), so we go forward instead: each expected ID of
//! the batch is mangled the same way and looked up. The `file` attribute
//! (`junit_family=xunit1`) settles the rare collisions; a node ID written into
//! `name` by a user's conftest (`record_xml_attribute`) is honoured first.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::framework::{attempt_from_case, MatchedResults};
use crate::junit::id;
use crate::junit::read::JunitCase;
use crate::model::Outcome;

/// `(classname, name)` as pytest's junitxml writes them for `node_id`.
pub fn junit_key(node_id: &str) -> (String, String) {
    let (path, params) = match node_id.find('[') {
        Some(i) => node_id.split_at(i),
        None => (node_id, ""),
    };
    let mut names: Vec<String> = path.split("::").map(str::to_string).collect();
    let first = names[0].replace('/', ".");
    names[0] = first.strip_suffix(".py").unwrap_or(&first).to_string();
    let last = names.pop().unwrap_or_default() + params;
    (names.join("."), xml_safe(&last))
}

/// pytest's `bin_xml_escape`: characters XML cannot carry become `#xNN`.
fn xml_safe(s: &str) -> String {
    let valid = |c: char| matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..);
    if s.chars().all(valid) {
        return s.to_string();
    }
    s.chars()
        .map(|c| match (valid(c), c as u32) {
            (true, _) => c.to_string(),
            (false, n) if n <= 0xFF => format!("#x{n:02X}"),
            (false, n) => format!("#x{n:04X}"),
        })
        .collect()
}

/// A `(classname, name)` key in [`id::normalize`]d form.
fn normal_key((classname, name): (String, String)) -> (String, String) {
    let normal = |s: String| match id::normalize(&s) {
        Cow::Borrowed(_) => s,
        Cow::Owned(n) => n,
    };
    (normal(classname), normal(name))
}

/// The file part of a node ID (`tests/t.py` for `tests/t.py::T::test[x]`).
pub fn file_part(node_id: &str) -> &str {
    node_id.split("::").next().unwrap_or(node_id)
}

/// Match a batch's testcases to its expected tests, given as the node IDs
/// pytest uses for them (`node_ids[i]` is expected test `i`; it differs from
/// the canonical ID only when the rootdir is not the working directory).
pub fn match_cases(cases: Vec<JunitCase>, node_ids: &[&str]) -> MatchedResults {
    // Exact first, then through `id::normalize` (an ID with a character XML
    // cannot carry never reads back exactly).
    let by_node_id: HashMap<&str, usize> =
        node_ids.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let by_normal_node_id: HashMap<Cow<str>, usize> = node_ids
        .iter()
        .enumerate()
        .rev()
        .map(|(i, n)| (id::normalize(n), i))
        .collect();
    let mut by_key: HashMap<(String, String), Vec<usize>> = HashMap::new();
    for (i, n) in node_ids.iter().enumerate() {
        by_key.entry(normal_key(junit_key(n))).or_default().push(i);
    }

    let mut slot: Vec<Option<usize>> = vec![None; node_ids.len()];
    let mut out = MatchedResults::default();
    let mut leftovers = Vec::new();
    for case in cases {
        let classname = case.classname.clone().unwrap_or_default();
        let node_id = by_node_id
            .get(case.name.as_str())
            .or_else(|| by_normal_node_id.get(id::normalize(&case.name).as_ref()));
        let candidates: Vec<usize> = match node_id {
            Some(&i) => vec![i],
            None => by_key
                .get(&normal_key((classname, case.name.clone())))
                .cloned()
                .unwrap_or_default(),
        };
        let chosen = pick(&candidates, &case, node_ids, &slot);
        match chosen {
            Some(i) => match slot[i] {
                // pytest reports a teardown error of a test that already has a
                // result as a second testcase: keep the worse of the two.
                Some(at) => merge(&mut out.matched[at].1, &case),
                None => {
                    slot[i] = Some(out.matched.len());
                    out.matched.push((i, attempt_from_case(case)));
                }
            },
            None => leftovers.push(case),
        }
    }

    // A module that fails to import while the batch runs shows up as one
    // `<error>` testcase named after the module: it is the result of every
    // test of that module in the batch.
    for case in leftovers {
        let module_error =
            case.outcome == Outcome::Error && case.classname.as_deref().unwrap_or("").is_empty();
        let mut claimed = false;
        if module_error {
            for (i, n) in node_ids.iter().enumerate() {
                if slot[i].is_none()
                    && id::normalize(&junit_key(file_part(n)).1) == id::normalize(&case.name)
                {
                    slot[i] = Some(out.matched.len());
                    out.matched.push((i, attempt_from_case(case.clone())));
                    claimed = true;
                }
            }
        }
        if !claimed {
            out.unmatched.push(case);
        }
    }
    out
}

/// Among IDs with the same JUnit key, prefer the one whose file is the
/// testcase's `file`, then one without a result yet, in batch order.
fn pick(
    candidates: &[usize],
    case: &JunitCase,
    node_ids: &[&str],
    slot: &[Option<usize>],
) -> Option<usize> {
    if candidates.len() <= 1 {
        return candidates.first().copied();
    }
    let same_file: Vec<usize> = match &case.file {
        Some(f) => candidates
            .iter()
            .copied()
            .filter(|&i| file_part(node_ids[i]) == f)
            .collect(),
        None => Vec::new(),
    };
    let pool = if same_file.is_empty() {
        candidates
    } else {
        &same_file[..]
    };
    pool.iter()
        .copied()
        .find(|&i| slot[i].is_none())
        .or(pool.first().copied())
}

fn merge(into: &mut crate::model::TestAttempt, case: &JunitCase) {
    let other = attempt_from_case(case.clone());
    into.duration += other.duration;
    if other.outcome > into.outcome {
        into.outcome = other.outcome;
        into.message = other.message;
        into.details = other.details;
    }
    for (mine, theirs) in [
        (&mut into.system_out, other.system_out),
        (&mut into.system_err, other.system_err),
    ] {
        if let Some(t) = theirs {
            match mine {
                Some(m) => {
                    m.push('\n');
                    m.push_str(&t);
                }
                None => *mine = Some(t),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(classname: &str, name: &str, file: Option<&str>, outcome: Outcome) -> JunitCase {
        JunitCase {
            classname: Some(classname.into()),
            file: file.map(str::to_string),
            time: 0.5,
            outcome,
            ..JunitCase::named(name)
        }
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn refs(list: &[String]) -> Vec<&str> {
        list.iter().map(String::as_str).collect()
    }

    #[test]
    fn keys_follow_pytest_mangling() {
        let k = |id: &str| junit_key(id);
        assert_eq!(k("tests/t.py::test_a"), ("tests.t".into(), "test_a".into()));
        assert_eq!(
            k("tests/sub/t.py::TestK::TestInner::test_n"),
            ("tests.sub.t.TestK.TestInner".into(), "test_n".into())
        );
        // `::`, `/`, `.py` and spaces inside the parameter part are kept as is.
        assert_eq!(
            k("t.py::TestK::test_p[c::d/x.py a b]"),
            ("t.TestK".into(), "test_p[c::d/x.py a b]".into())
        );
        assert_eq!(
            k("t.py::test_p[\\xe9]"),
            ("t".into(), "test_p[\\xe9]".into())
        );
        assert_eq!(k("t.py::test_café"), ("t".into(), "test_café".into()));
        // Doctests and non-Python files.
        assert_eq!(
            k("src/pkg/mod.py::pkg.mod.f"),
            ("src.pkg.mod".into(), "pkg.mod.f".into())
        );
        assert_eq!(
            k("README.rst::README.rst"),
            ("README.rst".into(), "README.rst".into())
        );
        // Only a trailing `.py` goes.
        assert_eq!(k("a.py.d/t.py::x"), ("a.py.d.t".into(), "x".into()));
        assert_eq!(
            k("t.py::test_x[\u{1}]"),
            ("t".into(), "test_x[#x01]".into())
        );
    }

    #[test]
    fn reconstructs_ids_from_plain_pytest_junit() {
        let expected = ids(&[
            "tests/test_math.py::test_add",
            "tests/sub/test_math.py::test_add",
            "tests/test_math.py::TestArithmetic::TestNested::test_div",
            "tests/test_math.py::test_awkward[c::d]",
            "tests/test_math.py::test_awkward[a b]",
            "tests/test_inherit.py::TestPositive::test_inherited",
        ]);
        let cases = vec![
            case(
                "tests.test_math",
                "test_awkward[a b]",
                Some("tests/test_math.py"),
                Outcome::Passed,
            ),
            case(
                "tests.sub.test_math",
                "test_add",
                Some("tests/sub/test_math.py"),
                Outcome::Failed,
            ),
            case(
                "tests.test_math",
                "test_add",
                Some("tests/test_math.py"),
                Outcome::Passed,
            ),
            case(
                "tests.test_math.TestArithmetic.TestNested",
                "test_div",
                Some("tests/test_math.py"),
                Outcome::Passed,
            ),
            case(
                "tests.test_math",
                "test_awkward[c::d]",
                Some("tests/test_math.py"),
                Outcome::Skipped,
            ),
            // The function lives in tests/base.py: `file` names that file.
            case(
                "tests.test_inherit.TestPositive",
                "test_inherited",
                Some("tests/base.py"),
                Outcome::Passed,
            ),
        ];
        let m = match_cases(cases, &refs(&expected));
        assert!(m.unmatched.is_empty(), "{:?}", m.unmatched);
        let got: Vec<(usize, Outcome)> = m.matched.iter().map(|(i, a)| (*i, a.outcome)).collect();
        assert_eq!(
            got,
            vec![
                (4, Outcome::Passed),
                (1, Outcome::Failed),
                (0, Outcome::Passed),
                (2, Outcome::Passed),
                (3, Outcome::Skipped),
                (5, Outcome::Passed),
            ]
        );
    }

    #[test]
    fn node_id_in_name_from_a_user_conftest() {
        let expected = ids(&["tests/t.py::test_a", "tests/t.py::T::test_b[1]"]);
        let cases = vec![
            case(
                "tests.t.T",
                "tests/t.py::T::test_b[1]",
                Some("tests/t.py"),
                Outcome::Failed,
            ),
            case(
                "tests.t",
                "tests/t.py::test_a",
                Some("tests/t.py"),
                Outcome::Passed,
            ),
        ];
        let m = match_cases(cases, &refs(&expected));
        assert!(m.unmatched.is_empty());
        assert_eq!(m.matched[0].0, 1);
        assert_eq!(m.matched[1].0, 0);
    }

    #[test]
    fn ids_with_characters_xml_cannot_carry_still_match() {
        // A conftest that writes the node ID into `name` as it is: the ESC
        // sequence cannot survive XML, the tab reads back as a space.
        let expected = ids(&["t.py::test_a[\x1b[31mred]", "t.py::test_b[a\tb]"]);
        let cases = vec![
            case("t", "t.py::test_b[a b]", None, Outcome::Passed),
            case("t", "t.py::test_a[red]", None, Outcome::Failed),
        ];
        let m = match_cases(cases, &refs(&expected));
        assert!(m.unmatched.is_empty(), "{:?}", m.unmatched);
        let got: Vec<usize> = m.matched.iter().map(|(i, _)| *i).collect();
        assert_eq!(got, [1, 0]);
    }

    #[test]
    fn colliding_keys_are_settled_by_file_within_the_batch() {
        // Both mangle to classname `a.b.t`.
        let expected = ids(&["a.b/t.py::test_x", "a/b/t.py::test_x"]);
        let cases = vec![
            case("a.b.t", "test_x", Some("a/b/t.py"), Outcome::Failed),
            case("a.b.t", "test_x", Some("a.b/t.py"), Outcome::Passed),
        ];
        let m = match_cases(cases, &refs(&expected));
        let got: Vec<(usize, Outcome)> = m.matched.iter().map(|(i, a)| (*i, a.outcome)).collect();
        assert_eq!(got, vec![(1, Outcome::Failed), (0, Outcome::Passed)]);
    }

    #[test]
    fn only_the_batch_is_searched() {
        // `test_add` exists elsewhere in the suite; this batch only has the
        // sub-package's: the top-level testcase must not be taken for it.
        let expected = ids(&["tests/sub/test_math.py::test_add"]);
        let cases = vec![case(
            "tests.test_math",
            "test_add",
            Some("tests/test_math.py"),
            Outcome::Passed,
        )];
        let m = match_cases(cases, &refs(&expected));
        assert!(m.matched.is_empty());
        let unmatched: Vec<String> = m
            .unmatched
            .iter()
            .map(crate::framework::case_label)
            .collect();
        assert_eq!(unmatched, vec!["tests.test_math test_add"]);
    }

    #[test]
    fn teardown_error_after_a_pass_makes_it_an_error() {
        let expected = ids(&["t.py::test_a"]);
        let mut second = case("t", "test_a", Some("t.py"), Outcome::Error);
        second.message = Some("failed on teardown".into());
        let cases = vec![case("t", "test_a", Some("t.py"), Outcome::Passed), second];
        let m = match_cases(cases, &refs(&expected));
        assert_eq!(m.matched.len(), 1);
        assert_eq!(m.matched[0].1.outcome, Outcome::Error);
        assert_eq!(
            m.matched[0].1.message.as_deref(),
            Some("failed on teardown")
        );
        assert_eq!(m.matched[0].1.duration, std::time::Duration::from_secs(1));
    }

    #[test]
    fn module_that_fails_to_import_errors_each_of_its_tests() {
        let expected = ids(&[
            "tests/t.py::test_a",
            "tests/t.py::T::test_b",
            "tests/u.py::test_c",
        ]);
        let mut err = case("", "tests.t", None, Outcome::Error);
        err.message = Some("collection failure".into());
        let cases = vec![
            err,
            case("tests.u", "test_c", Some("tests/u.py"), Outcome::Passed),
        ];
        let m = match_cases(cases, &refs(&expected));
        assert!(m.unmatched.is_empty());
        let mut got: Vec<(usize, Outcome)> =
            m.matched.iter().map(|(i, a)| (*i, a.outcome)).collect();
        got.sort_by_key(|g| g.0);
        assert_eq!(
            got,
            vec![
                (0, Outcome::Error),
                (1, Outcome::Error),
                (2, Outcome::Passed)
            ]
        );
    }
}
