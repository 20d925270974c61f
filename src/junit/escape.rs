//! Making arbitrary text safe for XML 1.0: escaping markup characters and
//! removing the characters XML 1.0 cannot carry at all (`\x00`, `\x1b`, the
//! other C0 controls, U+FFFE, U+FFFF — not even as `&#…;` references).
//!
//! Test output is full of those (ANSI colours, NUL bytes from a crashed
//! process), and one of them is enough to make a whole report unreadable, so
//! both the writer (on every string) and the reader (on a runner's raw file)
//! go through here. ANSI CSI sequences (`\x1b[31m`, `\x1b[2K`) are dropped
//! whole, because a CI page shows them as noise; any other illegal character
//! becomes U+FFFD (the replacement character), so the reader still sees that
//! something was there.

use std::borrow::Cow;

/// U+FFFD, what an illegal character is replaced with.
const REPLACEMENT: &str = "\u{FFFD}";

/// Where the text goes: attribute values also escape quotes and keep their
/// newlines and tabs (an XML reader turns raw ones into spaces).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Text,
    Attribute,
}

/// Append `s` to `out` as element text: `&`, `<`, `>` escaped, `\r` kept as
/// `&#13;` (a reader would turn a raw one into `\n`), illegal characters removed.
pub fn push_text(out: &mut String, s: &str) {
    push_escaped(out, s, Context::Text);
}

/// Append `s` to `out` as a double-quoted attribute value.
pub fn push_attr(out: &mut String, s: &str) {
    push_escaped(out, s, Context::Attribute);
}

/// `s` with the characters XML 1.0 forbids removed (ANSI CSI sequences) or
/// replaced by U+FFFD. Borrowed, without copying, when there are none (the
/// usual case), so a runner's well-formed file costs one scan.
pub fn sanitize(s: &str) -> Cow<'_, str> {
    let bytes = s.as_bytes();
    let Some(first) = (0..bytes.len()).find(|&i| illegal_at(bytes, i).is_some()) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len());
    out.push_str(&s[..first]);
    let mut i = first;
    let mut run = first;
    while i < bytes.len() {
        match illegal_at(bytes, i) {
            Some(len) => {
                out.push_str(&s[run..i]);
                replace_illegal(&mut out, bytes, i, len);
                i += len;
                run = i;
            }
            None => i += 1,
        }
    }
    out.push_str(&s[run..]);
    Cow::Owned(out)
}

fn push_escaped(out: &mut String, s: &str, context: Context) {
    let bytes = s.as_bytes();
    // Copy runs of ordinary bytes in one go; only stop at the few bytes that
    // need work. Every byte we stop at is ASCII or the lead byte of U+FFFE/
    // U+FFFF, so `run..i` always falls on character boundaries.
    let mut run = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let replacement = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'\r' => "&#13;",
            b'"' if context == Context::Attribute => "&quot;",
            b'\n' if context == Context::Attribute => "&#10;",
            b'\t' if context == Context::Attribute => "&#9;",
            _ => {
                if let Some(len) = illegal_at(bytes, i) {
                    out.push_str(&s[run..i]);
                    replace_illegal(out, bytes, i, len);
                    i += len;
                    run = i;
                } else {
                    i += 1;
                }
                continue;
            }
        };
        out.push_str(&s[run..i]);
        out.push_str(replacement);
        i += 1;
        run = i;
    }
    out.push_str(&s[run..]);
}

/// Write the replacement for the illegal sequence at `bytes[i..i + len]`:
/// nothing for an ANSI CSI sequence, U+FFFD otherwise.
fn replace_illegal(out: &mut String, bytes: &[u8], i: usize, len: usize) {
    let is_csi = bytes[i] == 0x1b && len > 1;
    if !is_csi {
        out.push_str(REPLACEMENT);
    }
}

/// If an illegal sequence starts at `bytes[i]`, its length in bytes: a whole
/// ANSI CSI sequence (`ESC [` parameters, intermediates, final byte), a single
/// C0 control other than tab, newline and carriage return, or the three bytes
/// of U+FFFE / U+FFFF. `i` must be on a character boundary for the U+FFFE
/// check to mean anything; continuation bytes are never reported.
#[inline]
fn illegal_at(bytes: &[u8], i: usize) -> Option<usize> {
    let b = bytes[i];
    if b < 0x20 {
        if matches!(b, b'\t' | b'\n' | b'\r') {
            return None;
        }
        if b == 0x1b && bytes.get(i + 1) == Some(&b'[') {
            return Some(csi_len(&bytes[i..]));
        }
        return Some(1);
    }
    // U+FFFE is EF BF BE, U+FFFF is EF BF BF.
    if b == 0xEF && bytes.get(i + 1) == Some(&0xBF) && matches!(bytes.get(i + 2), Some(0xBE | 0xBF))
    {
        return Some(3);
    }
    None
}

/// Length of the CSI sequence at the start of `seq` (which starts `ESC [`).
/// An unterminated one runs as far as its parameter and intermediate bytes go.
fn csi_len(seq: &[u8]) -> usize {
    2 + crate::text::csi_body_len(&seq[2..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> String {
        let mut out = String::new();
        push_text(&mut out, s);
        out
    }

    fn attr(s: &str) -> String {
        let mut out = String::new();
        push_attr(&mut out, s);
        out
    }

    #[test]
    fn text_escapes_markup_but_not_quotes_or_newlines() {
        assert_eq!(
            text("a < b && c > d \"q\" 'x'\n\tz\r\n"),
            "a &lt; b &amp;&amp; c &gt; d \"q\" 'x'\n\tz&#13;\n"
        );
        assert_eq!(text("]]>"), "]]&gt;");
    }

    #[test]
    fn attributes_keep_newlines_tabs_and_quotes() {
        assert_eq!(attr("say \"hi\"\n\tnow"), "say &quot;hi&quot;&#10;&#9;now");
    }

    #[test]
    fn ansi_colour_sequences_are_dropped_and_other_controls_replaced() {
        assert_eq!(text("\x1b[31mred\x1b[0m plain"), "red plain");
        assert_eq!(text("\x1b[1;32;40mgreen\x1b[2K"), "green");
        assert_eq!(
            text("nul\x00 bell\x07 esc\x1bx"),
            "nul\u{FFFD} bell\u{FFFD} esc\u{FFFD}x"
        );
        assert_eq!(attr("a\x00b"), "a\u{FFFD}b");
        // An unterminated CSI at the very end is dropped too.
        assert_eq!(text("cut\x1b[3"), "cut");
    }

    #[test]
    fn noncharacters_fffe_ffff_are_replaced_but_other_non_ascii_kept() {
        assert_eq!(
            text("é\u{FFFE}ü\u{FFFF}漢\u{FFFD}🎉"),
            "é\u{FFFD}ü\u{FFFD}漢\u{FFFD}🎉"
        );
        // U+FFEF and U+EFBF share lead bytes with U+FFFE but are legal.
        assert_eq!(text("\u{FFEF}\u{EFBF}\u{FFBE}"), "\u{FFEF}\u{EFBF}\u{FFBE}");
    }

    #[test]
    fn sanitize_borrows_clean_text_and_fixes_dirty_text() {
        assert!(matches!(sanitize("<a>é & ok</a>\n"), Cow::Borrowed(_)));
        assert_eq!(sanitize("<a>\x1b[31mx\x00</a>"), "<a>x\u{FFFD}</a>");
        assert_eq!(sanitize("\u{FFFF}"), "\u{FFFD}");
    }
}
