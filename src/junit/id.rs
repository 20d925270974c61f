//! Test IDs as Offload compares them across JUnit.
//!
//! A runner that writes an ID into JUnit as it is cannot carry every
//! character: XML 1.0 has no way at all to write ESC, `\x01` or U+FFFE (not
//! even as `&#…;`), and a raw tab or line break in an attribute reads back as
//! a space. So the name read back from a runner's report (or from Offload's
//! own merged report) is not always the ID discovery printed. Both sides are
//! compared through [`normalize`], which maps an ID to what survives that
//! trip; an ID without such characters is its own normal form.

use std::borrow::Cow;

use super::escape;

/// `id` as it survives a JUnit file: terminal escape sequences (`\x1b[31m`)
/// removed, every other character XML 1.0 cannot carry replaced by U+FFFD
/// (as [`escape::sanitize`] does, and as the reader does with a runner's
/// raw ones), tabs and line breaks (`\r\n` counting as one) as spaces, and
/// surrounding whitespace trimmed. Borrowed when nothing changes.
pub fn normalize(id: &str) -> Cow<'_, str> {
    let needs_work = id.bytes().any(|b| b < 0x20 || b == 0xEF || b == 0xF4)
        || id.starts_with(char::is_whitespace)
        || id.ends_with(char::is_whitespace);
    if !needs_work {
        return Cow::Borrowed(id);
    }
    let clean = escape::sanitize(id);
    let mut out = String::with_capacity(clean.len());
    let mut chars = clean.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push(' ');
            }
            '\t' | '\n' => out.push(' '),
            // The pre-pass's marks: a runner's own become U+FFFD.
            '\u{10FFFE}' | '\u{10FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    let trimmed = out.trim();
    if trimmed.len() == out.len() {
        Cow::Owned(out)
    } else {
        Cow::Owned(trimmed.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ids_are_borrowed_as_they_are() {
        for id in ["tests/t.py::test_a[1-2]", "a b", "café 日本", "m::t"] {
            assert!(matches!(normalize(id), Cow::Borrowed(s) if s == id));
        }
    }

    #[test]
    fn what_xml_cannot_carry_is_normalised() {
        assert_eq!(normalize("t\x1b[31mred\x1b[0m"), "tred");
        assert_eq!(normalize("a\x01b"), "a\u{FFFD}b");
        assert_eq!(normalize("a\u{FFFE}b\u{FFFF}"), "a\u{FFFD}b\u{FFFD}");
        assert_eq!(normalize("a\tb\nc\r\nd\re"), "a b c d e");
        assert_eq!(normalize("  padded\t"), "padded");
        assert_eq!(normalize("x\u{10FFFF}"), "x\u{FFFD}");
    }

    #[test]
    fn normalising_twice_changes_nothing() {
        for id in [
            "t\x1b[31mred",
            "a\x01b",
            "a\tb",
            " x ",
            "\x1b[",
            "é\u{FFFE}",
        ] {
            let once = normalize(id).into_owned();
            assert_eq!(normalize(&once), once, "{id:?}");
        }
    }
}
