//! A small pull tokenizer for the XML that JUnit reports are made of.
//!
//! A general XML library allocates for every event and attribute; a 20,000
//! test report is millions of those, and reading it was most of Offload's
//! own CPU time. JUnit files use a small subset of XML, so this reads exactly
//! that subset and borrows everything from the input: a tag, its name and
//! its attribute values are slices, and text is only copied when it has
//! something to unescape.
//!
//! Understood: the XML declaration and other processing instructions, the
//! DOCTYPE (with an internal subset) and comments (all skipped), start, end
//! and empty-element tags, attributes quoted with `"` or `'`, character
//! data, CDATA sections, the five predefined entities plus `&nbsp;`,
//! `&copy;` and `&hellip;` (runners borrow them from HTML), and numeric
//! character references. Namespace prefixes are part of the name
//! ([`local_name`] drops them). Declared entities, DTD validation and
//! encodings other than UTF-8 are not supported: the caller hands us a `str`.
//!
//! As XML requires, `\r\n` and a lone `\r` in text become `\n`, and raw
//! tabs and line breaks in attribute values become spaces (`&#10;` stays a
//! newline).
//!
//! It is lenient where a test runner could plausibly go wrong: a bare `&` or
//! an unknown entity stays as written, a character reference to a character
//! XML forbids becomes U+FFFD, an end tag closes every element left open
//! inside the element it names, an end tag for no open element is ignored,
//! and several root elements (reports appended to one file) are all read.
//! Anything else it cannot read is a [`SyntaxError`], after which the
//! tokenizer yields nothing more. It never panics, and every token moves
//! forward through the input, so it always ends.

use std::borrow::Cow;
use std::fmt;

/// U+FFFD, what a reference to a character XML cannot carry becomes.
const REPLACEMENT: char = '\u{FFFD}';

/// One piece of an XML document, borrowed from it.
#[derive(Debug)]
pub enum Token<'a> {
    /// `<name attr="value">`. An empty element (`<name/>`) is a `Start`
    /// immediately followed by its `End`, so consumers see one shape.
    Start {
        name: &'a str,
        attributes: Attributes<'a>,
    },
    /// `</name>`, or the implicit end of an element left open (see the
    /// module documentation). Every `Start` gets exactly one `End`.
    End {
        // The JUnit reader only counts depth; the name is for tests and
        // debugging output.
        #[allow(dead_code)]
        name: &'a str,
    },
    /// Character data or a CDATA section inside the root element. Adjacent
    /// pieces (text around a comment or a CDATA section) come as several
    /// tokens.
    Text(Text<'a>),
}

/// Character data as written; unescaped only on demand, because most text
/// in a report (indentation, suite-level output) is never looked at.
#[derive(Clone, Copy, Debug)]
pub struct Text<'a> {
    raw: &'a str,
    /// CDATA: no entities, only line endings to normalise.
    cdata: bool,
}

impl<'a> Text<'a> {
    /// Append the text to `out` with entities and references resolved and
    /// line endings normalised to `\n`, without an intermediate copy.
    pub fn push_to(&self, out: &mut String) {
        push_unescaped(out, self.raw, self.context());
    }

    fn context(&self) -> Context {
        if self.cdata {
            Context::Cdata
        } else {
            Context::Text
        }
    }
}

/// The attributes of a start tag, in document order: (name as written,
/// unescaped value). The tag was checked when it was read, so iterating
/// cannot fail.
#[derive(Clone, Copy, Debug)]
pub struct Attributes<'a> {
    /// Everything between the element name and `>` or `/>`.
    raw: &'a str,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = (&'a str, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        // Bytes, not chars: every byte we stop at is ASCII, so the slices
        // fall on character boundaries.
        let bytes = self.raw.as_bytes();
        let start = skip_space(bytes, 0);
        let name_end = name_end(bytes, start);
        let equals = skip_space(bytes, name_end);
        if name_end == start || bytes.get(equals) != Some(&b'=') {
            return None;
        }
        let open = skip_space(bytes, equals + 1);
        let quote = *bytes.get(open)?;
        let close = find_byte(bytes, open + 1, quote)?;
        let name = &self.raw[start..name_end];
        let value = &self.raw[open + 1..close];
        self.raw = &self.raw[close + 1..];
        // Without early exit, so that the compiler can vectorise it; a
        // control character other than those unescaping changes is
        // harmless here (it was replaced before we saw the document).
        let special = value
            .bytes()
            .fold(false, |found, b| found | (b < 0x20) | (b == b'&'));
        let value = if special {
            let mut out = String::with_capacity(value.len());
            push_unescaped(&mut out, value, Context::Attribute);
            Cow::Owned(out)
        } else {
            Cow::Borrowed(value)
        };
        Some((name, value))
    }
}

/// `name` without its namespace prefix: `junit:testcase` → `testcase`.
pub fn local_name(name: &str) -> &str {
    match name.bytes().rposition(|b| b == b':') {
        Some(colon) => &name[colon + 1..],
        None => name,
    }
}

/// Why a document could not be read further, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub message: String,
    /// 1-based, in lines of the document as handed to the tokenizer.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {}, column {}",
            self.message, self.line, self.column
        )
    }
}

impl std::error::Error for SyntaxError {}

/// Reads tokens from a document, in order. Yields `Err` once, for the first
/// thing it cannot read (including a document that ends inside an element
/// or has no element at all), and nothing after that.
pub struct Tokenizer<'a> {
    src: &'a str,
    pos: usize,
    /// Names of the open elements, outermost first.
    open: Vec<&'a str>,
    /// How many of the innermost open elements to end before reading on
    /// (an empty element, or an end tag that closes several).
    closing: usize,
    seen_root: bool,
    done: bool,
}

impl<'a> Tokenizer<'a> {
    pub fn new(src: &'a str) -> Self {
        Tokenizer {
            // A UTF-8 byte order mark (Windows tools write one) is not content.
            src: src.strip_prefix('\u{feff}').unwrap_or(src),
            pos: 0,
            open: Vec::new(),
            closing: 0,
            seen_root: false,
            done: false,
        }
    }

    fn error(&mut self, at: usize, message: impl Into<String>) -> SyntaxError {
        self.done = true;
        let mut at = at.min(self.src.len());
        while !self.src.is_char_boundary(at) {
            at -= 1;
        }
        let before = &self.src[..at];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        SyntaxError {
            message: message.into(),
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }

    fn eof(&mut self, inside: &str) -> SyntaxError {
        let at = self.src.len();
        self.error(at, format!("the document ends inside {inside}"))
    }

    /// The next token, or `None` at the end of a well-formed document.
    fn token(&mut self) -> Result<Option<Token<'a>>, SyntaxError> {
        let bytes = self.src.as_bytes();
        loop {
            if self.closing > 0 {
                self.closing -= 1;
                let name = self.open.pop().expect("closing counts open elements");
                return Ok(Some(Token::End { name }));
            }
            let start = self.pos;
            if start >= bytes.len() {
                return match self.open.last() {
                    Some(name) => {
                        let inside = format!("<{name}>");
                        Err(self.eof(&inside))
                    }
                    None if !self.seen_root => Err(self.error(start, "no root element")),
                    None => Ok(None),
                };
            }
            if bytes[start] != b'<' {
                let end = find_byte(bytes, start, b'<').unwrap_or(bytes.len());
                self.pos = end;
                let raw = &self.src[start..end];
                if !self.open.is_empty() {
                    return Ok(Some(Token::Text(Text { raw, cdata: false })));
                }
                if let Some(offset) = raw.find(|c| !is_space_char(c)) {
                    return Err(self.error(start + offset, "text outside the root element"));
                }
                continue;
            }
            let rest = &bytes[start..];
            if rest.starts_with(b"<?") {
                self.pos = self.skip_past(start + 2, b"?>", "a processing instruction")?;
            } else if rest.starts_with(b"<!--") {
                self.pos = self.skip_past(start + 4, b"-->", "a comment")?;
            } else if rest.starts_with(b"<![CDATA[") {
                let body = start + 9;
                self.pos = self.skip_past(body, b"]]>", "a CDATA section")?;
                if self.open.is_empty() {
                    return Err(self.error(start, "a CDATA section outside the root element"));
                }
                let raw = &self.src[body..self.pos - 3];
                return Ok(Some(Token::Text(Text { raw, cdata: true })));
            } else if rest.len() >= 9 && rest[..9].eq_ignore_ascii_case(b"<!DOCTYPE") {
                self.pos = self.skip_doctype(start + 9)?;
            } else if rest.starts_with(b"</") {
                let name_start = start + 2;
                let name_end = name_end(bytes, name_start);
                let close = skip_space(bytes, name_end);
                match bytes.get(close) {
                    None => return Err(self.eof("an end tag")),
                    Some(b'>') if name_end > name_start => {}
                    Some(_) => return Err(self.error(close, "a malformed end tag")),
                }
                self.pos = close + 1;
                let name = &self.src[name_start..name_end];
                // An end tag for no open element is ignored.
                if let Some(i) = self.open.iter().rposition(|open| *open == name) {
                    self.closing = self.open.len() - i;
                }
            } else if rest.len() == 1 || is_cut_declaration(rest) {
                return Err(self.eof("a tag"));
            } else if rest.starts_with(b"<!") {
                return Err(self.error(start, "an unknown `<!` declaration"));
            } else if is_name_start(rest[1]) {
                return self.start_tag(start).map(Some);
            } else {
                return Err(self.error(start, "`<` not followed by a tag name"));
            }
        }
    }

    /// Read the start tag at `start` (which is `<` followed by a name).
    fn start_tag(&mut self, start: usize) -> Result<Token<'a>, SyntaxError> {
        let bytes = self.src.as_bytes();
        let name_end = name_end(bytes, start + 1);
        let mut i = name_end;
        let (attributes_end, empty) = loop {
            i = skip_space(bytes, i);
            match bytes.get(i) {
                None => return Err(self.eof("a tag")),
                Some(b'>') => break (i, false),
                Some(b'/') => match bytes.get(i + 1) {
                    Some(b'>') => break (i, true),
                    None => return Err(self.eof("a tag")),
                    Some(_) => return Err(self.error(i, "`/` not followed by `>` in a tag")),
                },
                Some(&b) if is_name_start(b) => {
                    i = skip_space(bytes, self::name_end(bytes, i));
                    match bytes.get(i) {
                        None => return Err(self.eof("a tag")),
                        Some(b'=') => {}
                        Some(_) => return Err(self.error(i, "an attribute without `=value`")),
                    }
                    i = skip_space(bytes, i + 1);
                    let quote = match bytes.get(i) {
                        None => return Err(self.eof("a tag")),
                        Some(&q @ (b'"' | b'\'')) => q,
                        Some(_) => return Err(self.error(i, "an attribute value without quotes")),
                    };
                    i = match find_byte(bytes, i + 1, quote) {
                        Some(close) => close + 1,
                        None => return Err(self.eof("an attribute value")),
                    };
                }
                Some(_) => return Err(self.error(i, "an unexpected character in a tag")),
            }
        };
        self.pos = attributes_end + if empty { 2 } else { 1 };
        let name = &self.src[start + 1..name_end];
        self.open.push(name);
        self.seen_root = true;
        if empty {
            self.closing = 1;
        }
        Ok(Token::Start {
            name,
            attributes: Attributes {
                raw: &self.src[name_end..attributes_end],
            },
        })
    }

    /// The offset just past the first `terminator` at or after `from`.
    fn skip_past(
        &mut self,
        from: usize,
        terminator: &[u8],
        inside: &str,
    ) -> Result<usize, SyntaxError> {
        match find_bytes(&self.src.as_bytes()[from..], terminator) {
            Some(i) => Ok(from + i + terminator.len()),
            None => Err(self.eof(inside)),
        }
    }

    /// The offset just past the `>` ending a DOCTYPE whose body starts at
    /// `from`: quoted strings, an internal subset in `[...]` and comments
    /// inside it may all contain `>`.
    fn skip_doctype(&mut self, from: usize) -> Result<usize, SyntaxError> {
        let bytes = self.src.as_bytes();
        let mut in_subset = false;
        let mut i = from;
        while i < bytes.len() {
            match bytes[i] {
                q @ (b'"' | b'\'') => match find_byte(bytes, i + 1, q) {
                    Some(close) => i = close,
                    None => break,
                },
                b'[' => in_subset = true,
                b']' => in_subset = false,
                b'<' if in_subset && bytes[i..].starts_with(b"<!--") => {
                    i = self.skip_past(i + 4, b"-->", "a comment")? - 1;
                }
                b'>' if !in_subset => return Ok(i + 1),
                _ => {}
            }
            i += 1;
        }
        Err(self.eof("the DOCTYPE"))
    }
}

impl<'a> Iterator for Tokenizer<'a> {
    type Item = Result<Token<'a>, SyntaxError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.token().transpose()
    }
}

/// Whether `rest` (the whole remaining input) is the start of a comment,
/// CDATA section or DOCTYPE cut off by the end of the document.
fn is_cut_declaration(rest: &[u8]) -> bool {
    [&b"<!--"[..], b"<![CDATA[", b"<!DOCTYPE"]
        .iter()
        .any(|full| rest.len() < full.len() && full[..rest.len()].eq_ignore_ascii_case(rest))
}

/// Where text was found, which decides how it is unescaped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Text,
    /// Raw tabs and newlines in an attribute value are spaces (XML's
    /// attribute-value normalisation); `&#10;` stays a newline.
    Attribute,
    /// No references; only line endings.
    Cdata,
}

#[inline]
fn is_special(b: u8, context: Context) -> bool {
    let class = match context {
        Context::Text => TEXT_SPECIAL,
        Context::Attribute => ATTRIBUTE_SPECIAL,
        Context::Cdata => CDATA_SPECIAL,
    };
    has(b, class)
}

fn push_unescaped(out: &mut String, raw: &str, context: Context) {
    let bytes = raw.as_bytes();
    let mut run = 0;
    let mut i = 0;
    // Every byte we stop at is ASCII, so `run..i` falls on char boundaries.
    while i < bytes.len() {
        let b = bytes[i];
        if !is_special(b, context) {
            i += 1;
            continue;
        }
        out.push_str(&raw[run..i]);
        i += 1;
        match b {
            b'&' => match reference(&raw[i..]) {
                Some((c, len)) => {
                    out.push(c);
                    i += len;
                }
                // A bare `&` or an unknown entity: keep it as written.
                None => out.push('&'),
            },
            b'\r' => {
                // `\r\n` and a lone `\r` are both one line break.
                if bytes.get(i) == Some(&b'\n') {
                    i += 1;
                }
                out.push(if context == Context::Attribute {
                    ' '
                } else {
                    '\n'
                });
            }
            _ => out.push(' '),
        }
        run = i;
    }
    out.push_str(&raw[run..]);
}

/// The character a reference stands for and the length of the rest of it,
/// given what follows its `&`: `lt;…` → (`<`, 3). `None` when it is not a
/// reference we know.
fn reference(after_amp: &str) -> Option<(char, usize)> {
    // The longest we accept is `#x0010FFFF;`; anything longer is not one.
    let semi = after_amp.bytes().take(12).position(|b| b == b';')?;
    let name = &after_amp[..semi];
    let c = match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "copy" => '©',
        "hellip" => '…',
        _ => {
            let (digits, radix) = match name.strip_prefix('#')? {
                hex if hex.starts_with(['x', 'X']) => (&hex[1..], 16),
                dec => (dec, 10),
            };
            if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
                return None;
            }
            u32::from_str_radix(digits, radix)
                .ok()
                .and_then(char::from_u32)
                .filter(|&c| is_xml_char(c))
                .unwrap_or(REPLACEMENT)
        }
    };
    Some((c, semi + 1))
}

/// Characters XML 1.0 allows in a document (`Char` in the specification).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn is_space_char(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

// Byte classes, looked up in one table rather than compared one by one:
// scanning names, spaces and attribute values is most of the work.
const SPACE: u8 = 1;
/// May start a name. Any non-ASCII byte may, so a name always ends on a
/// character boundary.
const NAME_START: u8 = 2;
const NAME: u8 = 4;
/// Needs work when unescaping text: `&`, `\r`.
const TEXT_SPECIAL: u8 = 8;
/// Needs work when unescaping an attribute value: also raw `\n` and `\t`.
const ATTRIBUTE_SPECIAL: u8 = 16;
/// Needs work in a CDATA section: `\r`.
const CDATA_SPECIAL: u8 = 32;

static CLASSES: [u8; 256] = {
    let mut table = [0; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut class = 0;
        if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            class |= SPACE;
        }
        if b.is_ascii_alphabetic() || b == b'_' || b == b':' || b >= 0x80 {
            class |= NAME_START | NAME;
        }
        if b.is_ascii_digit() || b == b'-' || b == b'.' {
            class |= NAME;
        }
        if b == b'&' || b == b'\r' {
            class |= TEXT_SPECIAL | ATTRIBUTE_SPECIAL;
        }
        if b == b'\n' || b == b'\t' {
            class |= ATTRIBUTE_SPECIAL;
        }
        if b == b'\r' {
            class |= CDATA_SPECIAL;
        }
        table[i] = class;
        i += 1;
    }
    table
};

#[inline]
fn has(b: u8, class: u8) -> bool {
    CLASSES[b as usize] & class != 0
}

#[inline]
fn is_name_start(b: u8) -> bool {
    has(b, NAME_START)
}

/// The first offset at or after `from` whose byte is not in `class`.
#[inline]
fn skip_class(bytes: &[u8], mut from: usize, class: u8) -> usize {
    while from < bytes.len() && has(bytes[from], class) {
        from += 1;
    }
    from
}

/// The end of the name starting at `from`.
#[inline]
fn name_end(bytes: &[u8], from: usize) -> usize {
    skip_class(bytes, from, NAME)
}

#[inline]
fn skip_space(bytes: &[u8], from: usize) -> usize {
    skip_class(bytes, from, SPACE)
}

/// The first offset at or after `from` holding `needle`. Eight bytes at a
/// time: attribute values and text are most of a report.
#[inline]
fn find_byte(bytes: &[u8], mut from: usize, needle: u8) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let pattern = ONES * u64::from(needle);
    while let Some(chunk) = bytes.get(from..from + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes")) ^ pattern;
        // The high bit of every zero byte, i.e. every `needle`; exact for
        // the lowest (first) one, which is the one we want.
        let found = word.wrapping_sub(ONES) & !word & HIGHS;
        if found != 0 {
            return Some(from + found.trailing_zeros() as usize / 8);
        }
        from += 8;
    }
    while from < bytes.len() {
        if bytes[from] == needle {
            return Some(from);
        }
        from += 1;
    }
    None
}

fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The document as a compact trace: `<a k=v>`, `'text'`, `</a>`, and
    /// `!message` for an error.
    fn trace(doc: &str) -> Vec<String> {
        Tokenizer::new(doc)
            .map(|token| match token {
                Ok(Token::Start { name, attributes }) => {
                    let mut s = format!("<{name}");
                    for (k, v) in attributes {
                        s += &format!(" {k}={v}");
                    }
                    s + ">"
                }
                Ok(Token::End { name }) => format!("</{name}>"),
                Ok(Token::Text(text)) => {
                    let mut s = String::new();
                    text.push_to(&mut s);
                    format!("'{s}'")
                }
                Err(e) => format!("!{}", e.message),
            })
            .collect()
    }

    /// The text content of a one-element document.
    fn text_of(doc: &str) -> String {
        trace(doc)
            .iter()
            .filter_map(|t| t.strip_prefix('\'')?.strip_suffix('\''))
            .collect()
    }

    #[test]
    fn tags_attributes_and_text() {
        assert_eq!(
            trace(r#"<a x="1" y = '2'  z=""><b/>hi<c:d e:f="g">there</c:d></a>"#),
            [
                "<a x=1 y=2 z=>",
                "<b>",
                "</b>",
                "'hi'",
                "<c:d e:f=g>",
                "'there'",
                "</c:d>",
                "</a>"
            ]
        );
        assert_eq!(trace("<a\n\tx\n=\n\"1\"\n/>"), ["<a x=1>", "</a>"]);
        // `>` and the other quote are fine inside a quoted value.
        assert_eq!(
            trace(r#"<a x='say "a>b"'/>"#),
            [r#"<a x=say "a>b">"#, "</a>"]
        );
        assert_eq!(local_name("junit:testcase"), "testcase");
        assert_eq!(local_name("testcase"), "testcase");
    }

    #[test]
    fn declaration_processing_instructions_comments_and_doctype_are_skipped() {
        assert_eq!(
            trace(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- top -->\n\
                 <!DOCTYPE testsuites SYSTEM \"junit.dtd\" [\n\
                   <!ENTITY x \"a > b ]\">\n  <!-- ] > -->\n  <!ELEMENT a ANY>\n]>\n\
                 <?xml-stylesheet href=\"r.xsl\"?><a>x<!-- <b> -->y<?pi ?>z</a>\n<!-- end -->\n"
            ),
            ["<a>", "'x'", "'y'", "'z'", "</a>"]
        );
        assert_eq!(trace("<!doctype html><a/>"), ["<a>", "</a>"]);
    }

    #[test]
    fn cdata_is_raw_text() {
        assert_eq!(
            trace("<a>1<![CDATA[<b> &amp; ]] ]>]]>2</a>"),
            ["<a>", "'1'", "'<b> &amp; ]] ]>'", "'2'", "</a>"]
        );
        assert_eq!(text_of("<a><![CDATA[]]></a>"), "");
    }

    #[test]
    fn entities_and_character_references() {
        assert_eq!(
            text_of("<a>&lt;&gt;&amp;&quot;&apos;&nbsp;&copy;&hellip;</a>"),
            "<>&\"'\u{a0}©…"
        );
        assert_eq!(
            text_of("<a>&#10;&#x1F600;&#X41;&#233;&#9;&#13;</a>"),
            "\n😀Aé\t\r"
        );
        // Characters XML cannot carry, and numbers that are no character.
        assert_eq!(
            text_of("<a>&#x1b;&#0;&#xD800;&#xFFFE;&#x110000;&#4294967296;</a>"),
            "\u{FFFD}".repeat(6)
        );
        // Too long to be any character: not a reference.
        assert_eq!(text_of("<a>&#000000000000065;</a>"), "&#000000000000065;");
        // Not references at all: kept as written.
        assert_eq!(
            text_of("<a>a & b &unknown; &#; &#x; &#12a; &#-1; &#x+1; &amp &lt</a>"),
            "a & b &unknown; &#; &#x; &#12a; &#-1; &#x+1; &amp &lt"
        );
        assert_eq!(
            trace("<a v=\"&lt;x&gt; &#10;&amp;\"/>"),
            ["<a v=<x> \n&>", "</a>"]
        );
    }

    #[test]
    fn line_endings_and_attribute_whitespace_are_normalised() {
        assert_eq!(text_of("<a>1\r\n2\r3\n</a>"), "1\n2\n3\n");
        assert_eq!(text_of("<a><![CDATA[1\r\n2]]></a>"), "1\n2");
        assert_eq!(
            trace("<a v=\"1\r\n2\n3\t4&#9;&#13;\"/>"),
            ["<a v=1 2 3 4\t\r>", "</a>"]
        );
    }

    #[test]
    fn non_ascii_and_byte_order_mark() {
        assert_eq!(
            trace("\u{feff}<?xml version=\"1.0\"?><tëst ñ=\"日本\">🎉</tëst>"),
            ["<tëst ñ=日本>", "'🎉'", "</tëst>"]
        );
    }

    #[test]
    fn text_borrows_and_attributes_borrow_unless_unescaped() {
        let doc = r#"<t a="plain" b="a&amp;b">x</t>"#;
        let mut tokens = Tokenizer::new(doc);
        let Some(Ok(Token::Start { attributes, .. })) = tokens.next() else {
            panic!("a start tag");
        };
        let values: Vec<_> = attributes.map(|(_, v)| v).collect();
        assert!(matches!(values[0], Cow::Borrowed("plain")));
        assert!(matches!(&values[1], Cow::Owned(v) if v == "a&b"));
    }

    #[test]
    fn end_tags_close_what_was_left_open_and_strays_are_ignored() {
        assert_eq!(
            trace("<a><b><c>x</a>"),
            ["<a>", "<b>", "<c>", "'x'", "</c>", "</b>", "</a>"]
        );
        assert_eq!(trace("<a><b></z></b ></a>"), ["<a>", "<b>", "</b>", "</a>"]);
    }

    #[test]
    fn find_byte_finds_the_first_at_any_position() {
        for len in 0..20 {
            let mut bytes = vec![b'a'; len];
            assert_eq!(find_byte(&bytes, 0, b'"'), None);
            for at in 0..len {
                bytes[at] = b'"';
                // A second one further on, and a byte that borrows in the
                // word arithmetic (0x23 = '"' ^ 1) before it, change nothing.
                if at + 3 < len {
                    bytes[at + 3] = b'"';
                }
                if at > 0 {
                    bytes[at - 1] = 0x23;
                }
                for from in 0..=at {
                    assert_eq!(find_byte(&bytes, from, b'"'), Some(at), "{bytes:?} {from}");
                }
                bytes.fill(b'a');
            }
        }
    }

    #[test]
    fn several_root_elements_are_read() {
        assert_eq!(trace("<a/>\n<b/>"), ["<a>", "</a>", "<b>", "</b>"]);
    }

    /// Random documents made of XML-ish pieces: the tokenizer never panics,
    /// always ends, and when it reads a document to the end every `Start`
    /// had its `End`.
    #[test]
    fn random_documents_never_panic_and_stay_balanced() {
        const PIECES: &[&str] = &[
            "<a>",
            "</a>",
            "<b x=\"1\">",
            "</b>",
            "<c/>",
            "<d y='&amp;'/>",
            "text",
            " ",
            "\n",
            "&",
            "&lt;",
            "&#",
            "&#x1F600;",
            ";",
            "<",
            ">",
            "/",
            "\"",
            "'",
            "=",
            "<!--",
            "-->",
            "<![CDATA[",
            "]]>",
            "<?",
            "?>",
            "<!DOCTYPE",
            "[",
            "]",
            "é",
            "日",
            "\r",
            "</",
            "<e:f g:h=\"i\">",
            "</e:f>",
        ];
        let mut seed: u64 = 0xC0FFEE;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for _ in 0..20_000 {
            let doc: String = (0..next() % 24)
                .map(|_| PIECES[next() % PIECES.len()])
                .collect();
            let mut depth: i64 = 0;
            let mut failed = false;
            for (n, token) in Tokenizer::new(&doc).enumerate() {
                assert!(n <= 2 * doc.len() + 1, "too many tokens for {doc:?}");
                match token {
                    Ok(Token::Start { attributes, .. }) => {
                        depth += 1;
                        attributes.for_each(drop);
                    }
                    Ok(Token::End { .. }) => depth -= 1,
                    Ok(Token::Text(text)) => text.push_to(&mut String::new()),
                    Err(_) => failed = true,
                }
                assert!(depth >= 0, "{doc:?}");
            }
            assert!(failed || depth == 0, "{doc:?}");
        }
    }

    #[test]
    fn errors_say_what_and_where_and_end_the_tokens() {
        let cases: &[(&str, &str)] = &[
            ("", "no root element"),
            (" \n\t", "no root element"),
            ("hello", "text outside the root element"),
            ("<a/>trailing", "text outside the root element"),
            (
                "<![CDATA[x]]><a/>",
                "a CDATA section outside the root element",
            ),
            ("<a>", "the document ends inside <a>"),
            ("<a><b>text", "the document ends inside <b>"),
            ("<a x=\"1", "the document ends inside an attribute value"),
            ("<a x", "the document ends inside a tag"),
            ("<a", "the document ends inside a tag"),
            ("<a/", "the document ends inside a tag"),
            ("<a></a", "the document ends inside an end tag"),
            ("<", "the document ends inside a tag"),
            ("<!-", "the document ends inside a tag"),
            ("<![CDA", "the document ends inside a tag"),
            ("<a><!-- x", "the document ends inside a comment"),
            (
                "<a><![CDATA[x]>",
                "the document ends inside a CDATA section",
            ),
            (
                "<?xml ",
                "the document ends inside a processing instruction",
            ),
            (
                "<!DOCTYPE a [ <!ENTITY x \">\"> ",
                "the document ends inside the DOCTYPE",
            ),
            ("<a x=1/>", "an attribute value without quotes"),
            ("<a x/>", "an attribute without `=value`"),
            ("<a checked>", "an attribute without `=value`"),
            ("<a / >", "`/` not followed by `>` in a tag"),
            ("<a \"x\">", "an unexpected character in a tag"),
            ("<a><<<>>></a>", "`<` not followed by a tag name"),
            ("<a>< b/></a>", "`<` not followed by a tag name"),
            ("<a></ a>", "a malformed end tag"),
            ("<a></a b>", "a malformed end tag"),
            ("<!ELEMENT a ANY><a/>", "an unknown `<!` declaration"),
        ];
        for (doc, expected) in cases {
            let tokens = trace(doc);
            let last = tokens.last().map(String::as_str).unwrap_or_default();
            assert_eq!(
                last.strip_prefix('!'),
                Some(*expected),
                "{doc:?}: {tokens:?}"
            );
            assert_eq!(tokens.iter().filter(|t| t.starts_with('!')).count(), 1);
        }
        let err = Tokenizer::new("<a>\n  <b>\n  éé<<")
            .find_map(Result::err)
            .unwrap();
        assert_eq!((err.line, err.column), (3, 5));
        assert_eq!(
            err.to_string(),
            "`<` not followed by a tag name at line 3, column 5"
        );
    }
}
