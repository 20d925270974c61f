//! A nextest filterset that selects exactly a batch's tests.
//!
//! Test IDs are `"{binary_id} {test_name}"`. Tests are grouped by binary:
//! `(binary_id(=a) & (test(=x) | test(=y))) | (binary_id(=b) & test(=z))`.
//! Matcher strings end at an unescaped `,` or `)`, and `\` starts an escape,
//! so names from custom harnesses (`weird name (a, b)`) are escaped.

/// Split a canonical ID into binary ID and test name (binary IDs have no spaces).
pub fn split_id(id: &str) -> (&str, &str) {
    id.split_once(' ').unwrap_or(("", id))
}

/// The filterset for `ids`, binaries in first-seen order.
pub fn for_ids(ids: &[String]) -> String {
    let mut binaries: Vec<(&str, Vec<&str>)> = Vec::new();
    for id in ids {
        let (binary, test) = split_id(id);
        match binaries.iter_mut().find(|(b, _)| *b == binary) {
            Some((_, tests)) => tests.push(test),
            None => binaries.push((binary, vec![test])),
        }
    }
    binaries
        .iter()
        .map(|(binary, tests)| {
            let tests: Vec<String> = tests
                .iter()
                .map(|t| format!("test(={})", escape(t)))
                .collect();
            let tests = if tests.len() == 1 {
                tests[0].clone()
            } else {
                format!("({})", tests.join(" | "))
            };
            if binary.is_empty() {
                tests
            } else {
                format!("(binary_id(={}) & {tests})", escape(binary))
            }
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Escape a string for an `=` matcher of nextest's filterset language.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '/' | ')' | ',' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // The parser skips leading blanks; an escaped space is always kept.
            ' ' => out.push_str("\\u{20}"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_the_matcher_specials() {
        assert_eq!(escape("tests::plain_name"), "tests::plain_name");
        assert_eq!(
            escape("weird name (a, b)"),
            "weird\\u{20}name\\u{20}(a\\,\\u{20}b\\)"
        );
        assert_eq!(escape("path/with\\slash"), "path\\/with\\\\slash");
        assert_eq!(escape("ünï\tx\u{7}"), "ünï\\tx\\u{7}");
        assert_eq!(escape("crate::bin/tool"), "crate::bin\\/tool");
    }

    #[test]
    fn groups_tests_by_binary() {
        let ids: Vec<String> = [
            "alpha tests::adds",
            "alpha::integ shared_name",
            "alpha tests::shared_name",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            for_ids(&ids),
            "(binary_id(=alpha) & (test(=tests::adds) | test(=tests::shared_name))) | \
             (binary_id(=alpha::integ) & test(=shared_name))"
        );
    }
}
