//! Small text rules that several parts of Offload must apply the same way:
//! terminal escape sequences, the last lines of some output, and filling
//! `{placeholders}` in a command template.

/// The length in bytes of a CSI escape sequence's body, after its `ESC [`:
/// parameter and intermediate bytes (0x20–0x3f), then the final byte
/// (0x40–0x7e) when there is one. A sequence cut short ends where its
/// parameters do. Every reader of terminal escapes (the console, the JUnit
/// reader and writer) measures them with this.
pub fn csi_body_len(body: &[u8]) -> usize {
    let mut n = 0;
    while n < body.len() && (0x20..=0x3f).contains(&body[n]) {
        n += 1;
    }
    if n < body.len() && (0x40..=0x7e).contains(&body[n]) {
        n += 1;
    }
    n
}

/// The length in bytes of the terminal escape sequence at the start of
/// `seq` (which starts with ESC): CSI (`ESC [ … m`), OSC (`ESC ] … BEL` or
/// `ESC ] … ESC \\`, a window title), or `ESC`, intermediate bytes and a
/// final byte (`ESC ( B`, `ESC =`). A lone or cut ESC is one byte.
pub fn escape_len(seq: &[u8]) -> usize {
    match seq.get(1) {
        Some(b'[') => 2 + csi_body_len(&seq[2..]),
        Some(b']') => {
            let body = &seq[2..];
            let end =
                (0..body.len()).find(|&i| body[i] == 0x07 || body[i..].starts_with(b"\x1b\\"));
            match end {
                Some(i) if body[i] == 0x07 => 2 + i + 1,
                Some(i) => 2 + i + 2,
                None => seq.len(),
            }
        }
        _ => {
            let mut n = 1;
            while n < seq.len() && (0x20..=0x2f).contains(&seq[n]) {
                n += 1;
            }
            if n < seq.len() && (0x30..=0x7e).contains(&seq[n]) {
                n += 1;
            }
            n
        }
    }
}

/// `line` safe to print next to a status line: terminal escape sequences
/// ([`escape_len`]) and control characters removed, tabs kept. A stray `\r`
/// would overwrite the status line; CI logs must not get escapes from us.
pub fn strip_terminal_escapes(line: &str) -> String {
    let bytes = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    let mut run = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let len = match b {
            0x1b => escape_len(&bytes[i..]),
            b'\t' => 0,
            0x00..=0x1f | 0x7f => 1,
            _ => 0,
        };
        if len == 0 {
            i += 1;
            continue;
        }
        out.push_str(&line[run..i]);
        i += len;
        run = i;
    }
    out.push_str(&line[run..]);
    // C1 controls (U+0080–U+009F) are characters of their own in UTF-8.
    if out.chars().any(|c| c.is_control() && c != '\t') {
        out.retain(|c| !c.is_control() || c == '\t');
    }
    out
}

/// The last `n` lines of `text`, for quoting a command's output in an error.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Fill `{name}` placeholders in one pass: text that a value brings in is
/// never scanned again (a test ID containing `{tests}` stays as it is), and
/// braces that name no placeholder are left alone.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    'scan: while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        for (name, value) in values {
            if let Some(tail) = after
                .strip_prefix('{')
                .and_then(|t| t.strip_prefix(*name))
                .and_then(|t| t.strip_prefix('}'))
            {
                out.push_str(value);
                rest = tail;
                continue 'scan;
            }
        }
        out.push('{');
        rest = &after[1..];
    }
    out.push_str(rest);
    out
}

/// Order for people: runs of digits compare as numbers (`test[2]` before
/// `test[10]`), everything else as text; ties fall back to plain order.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    while !x.is_empty() && !y.is_empty() {
        if x[0].is_ascii_digit() && y[0].is_ascii_digit() {
            let dx = x.iter().take_while(|c| c.is_ascii_digit()).count();
            let dy = y.iter().take_while(|c| c.is_ascii_digit()).count();
            // Numbers compare by value: without leading zeros, by length
            // first, then digit by digit.
            let (nx, ny) = (trim_zeros(&x[..dx]), trim_zeros(&y[..dy]));
            let order = nx.len().cmp(&ny.len()).then_with(|| nx.cmp(ny));
            if order != Ordering::Equal {
                return order;
            }
            x = &x[dx..];
            y = &y[dy..];
        } else {
            if x[0] != y[0] {
                return x[0].cmp(&y[0]);
            }
            x = &x[1..];
            y = &y[1..];
        }
    }
    x.len().cmp(&y.len()).then_with(|| a.cmp(b))
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&d| d == b'0').count();
    &digits[zeros.min(digits.len().saturating_sub(1))..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csi_bodies_end_at_their_final_byte_or_where_they_are_cut() {
        assert_eq!(csi_body_len(b"31mred"), 3);
        assert_eq!(csi_body_len(b"1;31m"), 5);
        assert_eq!(csi_body_len(b"2K"), 2);
        assert_eq!(csi_body_len(b""), 0);
        assert_eq!(csi_body_len(b"12"), 2, "cut short");
        assert_eq!(csi_body_len("\u{fffd}".as_bytes()), 0);
    }

    #[test]
    fn terminal_escapes_and_control_characters_are_stripped() {
        assert_eq!(
            strip_terminal_escapes("\x1b[31mred\x1b[0m\tok\r\x07 \x1b(Bdone\u{85}"),
            "red\tok done"
        );
        assert_eq!(strip_terminal_escapes("cut \x1b["), "cut ");
        assert_eq!(strip_terminal_escapes("lone \x1b"), "lone ");
        assert_eq!(strip_terminal_escapes("\x1b]0;title\x07shown"), "shown");
        assert_eq!(strip_terminal_escapes("\x1b]8;;x\x1b\\link"), "link");
        assert_eq!(strip_terminal_escapes("plain é"), "plain é");
    }

    #[test]
    fn numbers_in_ids_sort_by_value() {
        let mut ids = vec!["t[10]", "t[2]", "t[1]", "a", "t[02]", "t[1]x", "u"];
        ids.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(ids, ["a", "t[1]", "t[1]x", "t[02]", "t[2]", "t[10]", "u"]);
    }

    #[test]
    fn last_lines_are_the_tail() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines("a", 5), "a");
        assert_eq!(last_lines("", 3), "");
    }

    #[test]
    fn placeholders_are_filled_in_one_pass() {
        assert_eq!(
            fill("run {a} {b} {c}", &[("a", "{b}"), ("b", "2")]),
            "run {b} 2 {c}"
        );
        assert_eq!(fill("{{a}}", &[("a", "x")]), "{x}");
        assert_eq!(fill("no placeholders", &[("a", "x")]), "no placeholders");
        assert_eq!(
            fill(
                "x {sandbox_id} {command} {other} ${HOME} {",
                &[("sandbox_id", "{command}"), ("command", "C")]
            ),
            "x {command} C {other} ${HOME} {"
        );
        assert_eq!(fill("{a}{a}", &[("a", "1")]), "11");
    }
}
