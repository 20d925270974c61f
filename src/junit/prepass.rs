//! What a runner's JUnit goes through before xml-rs reads it: a streaming
//! filter that makes sloppy XML acceptable to a strict parser, and bounds
//! what the parser can be made to hold.
//!
//! xml-rs rejects a whole document for things runners do write: a bare `&`,
//! an HTML entity (`&nbsp;`), a raw `\x1b` from a coloured assertion message,
//! a NUL from a crashed process. This filter tracks just enough of the markup
//! (text, tags, quoted attribute values, CDATA, comments, processing
//! instructions, a DOCTYPE) to repair those where they occur, and never
//! touches the markup itself:
//!
//! * In text and attribute values: a bare `&` or an unknown entity becomes
//!   `&amp;` (so it reads back as written); `&nbsp;`, `&copy;` and `&hellip;`
//!   become their characters; a character reference to a character XML 1.0
//!   cannot carry is treated like that character, raw. A `>` in text and a
//!   `<` in an attribute value are escaped.
//! * Everywhere: invalid UTF-8 and the C0 controls other than tab, newline
//!   and carriage return become U+FFFD, except ESC in text, CDATA and
//!   attribute values, which becomes [`ESCAPE_MARK`] so that the reader can
//!   remove whole terminal escape sequences from the *values* once the markup
//!   is read (stripping them from the raw file would eat a `"` or `>` that
//!   follows a cut sequence). U+FFFE, U+FFFF and the two marks themselves,
//!   should a runner write them, become U+FFFD.
//! * Comments, processing instructions (the XML declaration too: the input
//!   is always read as UTF-8, whatever it declares) and the DOCTYPE are
//!   dropped: Offload needs none of them, and declared entities are never
//!   expanded, so no input can make the parser do more than linear work.
//! * Size: a text run, CDATA section or attribute value longer than its cap
//!   ([`TEXT_CAP`], [`ATTRIBUTE_CAP`]) keeps its first cap's worth of bytes;
//!   the rest is counted, not passed on, and the count is written in its
//!   place between two [`CUT_MARK`]s for the reader to report.
//!
//! Both marks are noncharacters (U+10FFFF, U+10FFFE): legal XML, never
//! meaningful in a report, and reserved by Unicode for such internal use.

use std::io::{self, Read};

/// The most bytes of one text run (text between two tags, comments aside) or
/// one CDATA section passed on to the parser.
pub const TEXT_CAP: usize = 1 << 20;
/// The most bytes of one attribute value passed on to the parser.
pub const ATTRIBUTE_CAP: usize = 64 << 10;
/// What an ESC in a value is passed on as.
pub const ESCAPE_MARK: char = '\u{10FFFF}';
/// Brackets the decimal count of bytes cut from a value.
pub const CUT_MARK: char = '\u{10FFFE}';

const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();
/// How much input is read at a time, and roughly how much output is made
/// before the parser takes it.
const CHUNK: usize = 64 << 10;
/// The longest construct decided by looking ahead: `<![CDATA[`, a
/// reference (`&#x0010FFFF;`), a UTF-8 sequence.
const LOOKAHEAD: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Character data, and whatever lies between root elements.
    Text,
    /// Inside `<name …>` or `</name>`, outside quotes.
    Tag,
    /// Inside an attribute value quoted with this byte.
    Attribute(u8),
    Cdata,
    /// Dropped: `<!-- … -->`.
    Comment,
    /// Dropped: `<? … ?>`.
    Instruction,
    /// Dropped: `<!DOCTYPE …>`, with its internal subset, quoted strings
    /// and comments (any of which may hold a `>`).
    Doctype {
        subset: bool,
        quote: Option<u8>,
        comment: bool,
    },
}

/// The filter, as a [`Read`] for xml-rs to pull bytes from (it reads one
/// byte at a time, so reads are served from a buffer).
pub struct Prepass<R> {
    source: R,
    /// Bytes read from `source`; `input[start..]` is not processed yet.
    input: Vec<u8>,
    start: usize,
    eof: bool,
    /// Processed bytes; `out[out_pos..]` not yet read by the parser.
    out: Vec<u8>,
    out_pos: usize,
    state: State,
    /// Bytes passed on of the current text run, CDATA section or attribute
    /// value, and bytes cut from it.
    kept: usize,
    cut: u64,
    at_start: bool,
    marked: bool,
}

impl<R: Read> Prepass<R> {
    pub fn new(source: R) -> Self {
        Prepass {
            source,
            input: Vec::with_capacity(CHUNK),
            start: 0,
            eof: false,
            out: Vec::with_capacity(CHUNK + 64),
            out_pos: 0,
            state: State::Text,
            kept: 0,
            cut: 0,
            at_start: true,
            marked: false,
        }
    }

    /// Whether any mark was passed on so far: only then do values need
    /// [`super::read`]'s decoding.
    pub fn marked(&self) -> bool {
        self.marked
    }

    /// Process input until there is output, or the input is exhausted.
    fn fill(&mut self) -> io::Result<()> {
        self.out.clear();
        self.out_pos = 0;
        loop {
            let available = self.input.len() - self.start;
            if available >= LOOKAHEAD || self.eof {
                let hard_end = self.eof;
                self.process(hard_end);
                if !self.out.is_empty() || (self.eof && self.start == self.input.len()) {
                    return Ok(());
                }
                if self.input.len() - self.start >= LOOKAHEAD {
                    // Everything was dropped (a comment): go on.
                    continue;
                }
            }
            self.read_more()?;
        }
    }

    fn read_more(&mut self) -> io::Result<()> {
        self.input.drain(..self.start);
        self.start = 0;
        let had = self.input.len();
        self.input.resize(had + CHUNK, 0);
        let n = loop {
            match self.source.read(&mut self.input[had..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        match n {
            Ok(n) => {
                self.input.truncate(had + n);
                self.eof |= n == 0;
                Ok(())
            }
            Err(e) => {
                self.input.truncate(had);
                Err(e)
            }
        }
    }

    /// Process `input[start..]` into `out`, stopping where deciding would
    /// need bytes not read yet (unless `hard_end`: there are none) or when
    /// `out` holds a chunk.
    fn process(&mut self, hard_end: bool) {
        let input = std::mem::take(&mut self.input);
        let mut i = self.start;
        if self.at_start {
            if input.len() - i < 3 && !hard_end {
                self.input = input;
                return;
            }
            self.at_start = false;
            if input[i..].starts_with("\u{feff}".as_bytes()) {
                i += 3;
            }
        }
        // Valid UTF-8 up to `valid`; what lies beyond is handled when reached.
        let mut valid = valid_up_to(&input[i..]) + i;
        while i < input.len() && self.out.len() < CHUNK {
            if i == valid {
                match invalid_len(&input[i..]) {
                    None if !hard_end => break,
                    len => {
                        // Invalid UTF-8: U+FFFD where anything is passed on.
                        if self.passes_on() {
                            self.pass(REPLACEMENT);
                        }
                        i += len.unwrap_or(input.len() - i);
                        valid = valid_up_to(&input[i..]) + i;
                        continue;
                    }
                }
            }
            // The end of what is certain: lookahead stops short of it unless
            // the input really ends there.
            let end_is_hard = hard_end && valid == input.len();
            let window = &input[i..valid];
            match self.step(window, end_is_hard || valid < input.len()) {
                Some(0) | None => break,
                Some(n) => i += n,
            }
        }
        self.start = i;
        self.input = input;
    }

    /// Handle the start of `window` (valid UTF-8) in the current state.
    /// Returns the bytes consumed, or `None` when more input is needed to
    /// decide (never when `hard_end`).
    fn step(&mut self, window: &[u8], hard_end: bool) -> Option<usize> {
        let state = self.state;
        let special = specials(state);
        let plain = window
            .iter()
            .position(|&b| special[b as usize])
            .unwrap_or(window.len());
        if plain > 0 {
            self.pass(&window[..plain]);
            return Some(plain);
        }
        let b = window[0];
        // Controls and the lead bytes of U+FFFE/U+FFFF and the marks are
        // special in every state.
        if b < 0x20 {
            if b == 0x1b && self.in_value() {
                self.marked = true;
                self.pass(ESCAPE_MARK.encode_utf8(&mut [0; 4]).as_bytes());
            } else if self.passes_on() {
                self.pass(REPLACEMENT);
            }
            return Some(1);
        }
        if b >= 0x80 {
            let len = utf8_len(b);
            let c = std::str::from_utf8(&window[..len]).ok()?.chars().next()?;
            if matches!(c, '\u{FFFE}' | '\u{FFFF}' | ESCAPE_MARK | CUT_MARK) {
                if self.passes_on() {
                    self.pass(REPLACEMENT);
                }
            } else {
                self.pass(&window[..len]);
            }
            return Some(len);
        }
        match (state, b) {
            (State::Text, b'<') => self.markup(window, hard_end),
            (State::Text, b'>') => {
                self.pass(b"&gt;");
                Some(1)
            }
            (State::Text | State::Attribute(_), b'&') => self.reference(window, hard_end),
            (State::Attribute(_), b'<') => {
                self.pass(b"&lt;");
                Some(1)
            }
            (State::Attribute(q), _) if b == q => {
                self.end_value();
                self.out.push(q);
                self.state = State::Tag;
                Some(1)
            }
            (State::Tag, b'"' | b'\'') => {
                self.out.push(b);
                self.begin_value(State::Attribute(b));
                Some(1)
            }
            (State::Tag, b'>') => {
                self.out.push(b);
                self.begin_value(State::Text);
                Some(1)
            }
            (State::Cdata, b']') => self.terminator(window, hard_end, b"]]>", true),
            (State::Comment, b'-') => self.terminator(window, hard_end, b"-->", false),
            (State::Instruction, b'?') => self.terminator(window, hard_end, b"?>", false),
            (State::Doctype { .. }, _) => self.doctype(window, hard_end),
            _ => {
                self.pass(&window[..1]);
                Some(1)
            }
        }
    }

    /// `<` in text: what kind of markup starts here.
    fn markup(&mut self, window: &[u8], hard_end: bool) -> Option<usize> {
        const OPENERS: [&[u8]; 4] = [b"<!--", b"<![CDATA[", b"<!DOCTYPE", b"<?"];
        for (kind, opener) in OPENERS.into_iter().enumerate() {
            let n = opener.len().min(window.len());
            if !window[..n].eq_ignore_ascii_case(&opener[..n]) {
                continue;
            }
            if n < opener.len() {
                // A prefix of it so far: wait for more, or let the parser
                // report the document cut there.
                if !hard_end {
                    return None;
                }
                continue;
            }
            // Comments, instructions and the DOCTYPE are dropped: the text
            // around them stays one run (as the parser will see it).
            match kind {
                0 => self.state = State::Comment,
                1 => {
                    self.end_value();
                    self.out.extend_from_slice(opener);
                    self.begin_value(State::Cdata);
                }
                2 => {
                    self.state = State::Doctype {
                        subset: false,
                        quote: None,
                        comment: false,
                    }
                }
                _ => self.state = State::Instruction,
            }
            return Some(opener.len());
        }
        self.end_value();
        self.out.push(b'<');
        self.state = State::Tag;
        Some(1)
    }

    /// The end of a CDATA section, comment or instruction if `window`
    /// starts with it (returning to text), else one byte of its content.
    fn terminator(
        &mut self,
        window: &[u8],
        hard_end: bool,
        end: &[u8],
        keep: bool,
    ) -> Option<usize> {
        if window.len() < end.len() && end.starts_with(window) && !hard_end {
            return None;
        }
        if !window.starts_with(end) {
            self.pass(&window[..1]);
            return Some(1);
        }
        if keep {
            self.end_value();
            self.out.extend_from_slice(end);
            self.begin_value(State::Text);
        } else {
            // Text on both sides of a comment is one run for the parser.
            self.state = State::Text;
        }
        Some(end.len())
    }

    /// The start of `window` inside a DOCTYPE, which is dropped whole.
    fn doctype(&mut self, window: &[u8], hard_end: bool) -> Option<usize> {
        let State::Doctype {
            mut subset,
            mut quote,
            mut comment,
        } = self.state
        else {
            unreachable!("called in a DOCTYPE");
        };
        let starts = |with: &[u8]| -> Option<bool> {
            if window.len() < with.len() && with.starts_with(window) && !hard_end {
                return None;
            }
            Some(window.starts_with(with))
        };
        let b = window[0];
        let mut len = 1;
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if comment => {
                if starts(b"-->")? {
                    comment = false;
                    len = 3;
                }
            }
            None => match b {
                b'"' | b'\'' => quote = Some(b),
                b'[' => subset = true,
                b']' => subset = false,
                b'<' if subset && starts(b"<!--")? => {
                    comment = true;
                    len = 4;
                }
                b'>' if !subset => {
                    self.state = State::Text;
                    return Some(1);
                }
                _ => {}
            },
        }
        self.state = State::Doctype {
            subset,
            quote,
            comment,
        };
        Some(len)
    }

    /// `&` in text or an attribute value.
    fn reference(&mut self, window: &[u8], hard_end: bool) -> Option<usize> {
        // The longest we accept is `&#x0010FFFF;`; anything longer is not one.
        let limit = window.len().min(13);
        let Some(semi) = window[1..limit].iter().position(|&b| b == b';') else {
            let may_be_one = window[1..]
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'#');
            if limit < 13 && !hard_end && may_be_one {
                return None;
            }
            self.pass(b"&amp;");
            return Some(1);
        };
        let name = &window[1..1 + semi];
        let whole = semi + 2;
        let html = match name {
            b"lt" | b"gt" | b"amp" | b"quot" | b"apos" => {
                self.pass(&window[..whole]);
                return Some(whole);
            }
            b"nbsp" => Some('\u{a0}'),
            b"copy" => Some('©'),
            b"hellip" => Some('…'),
            _ => None,
        };
        if let Some(c) = html {
            self.pass(c.encode_utf8(&mut [0; 4]).as_bytes());
            return Some(whole);
        }
        let Some(c) = character_reference(name) else {
            // A bare `&` or an unknown entity: kept as written.
            self.pass(b"&amp;");
            return Some(1);
        };
        if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') {
            // As if the character had been written raw.
            return self.step(&[c as u8], true).map(|_| whole);
        }
        if is_xml_char(c) && !matches!(c, ESCAPE_MARK | CUT_MARK) {
            self.pass(&window[..whole]);
        } else {
            self.pass(REPLACEMENT);
        }
        Some(whole)
    }

    fn in_value(&self) -> bool {
        matches!(self.state, State::Text | State::Cdata | State::Attribute(_))
    }

    /// Whether the current state passes anything on (dropped constructs do not).
    fn passes_on(&self) -> bool {
        matches!(
            self.state,
            State::Text | State::Cdata | State::Attribute(_) | State::Tag
        )
    }

    fn begin_value(&mut self, state: State) {
        self.state = state;
        self.kept = 0;
        self.cut = 0;
    }

    /// The current value ends: say how much of it was cut.
    fn end_value(&mut self) {
        if self.cut > 0 {
            self.marked = true;
            let mut mark = [0; 4];
            let mark = CUT_MARK.encode_utf8(&mut mark).as_bytes();
            self.out.extend_from_slice(mark);
            self.out
                .extend_from_slice(itoa::Buffer::new().format(self.cut).as_bytes());
            self.out.extend_from_slice(mark);
        }
        self.kept = 0;
        self.cut = 0;
    }

    /// Pass `bytes` (whole characters) on, within the current value's cap.
    fn pass(&mut self, bytes: &[u8]) {
        let cap = match self.state {
            State::Text | State::Cdata => TEXT_CAP,
            State::Attribute(_) => ATTRIBUTE_CAP,
            State::Tag => usize::MAX,
            _ => return,
        };
        let room = cap.saturating_sub(self.kept);
        if self.cut > 0 || bytes.len() > room {
            // Cut at a character boundary at or before the cap.
            let mut keep = if self.cut > 0 { 0 } else { room };
            while keep > 0 && keep < bytes.len() && bytes[keep] & 0xC0 == 0x80 {
                keep -= 1;
            }
            let keep = keep.min(bytes.len());
            self.out.extend_from_slice(&bytes[..keep]);
            self.cut += (bytes.len() - keep) as u64;
            // Nothing more is kept of this value once something was cut.
            self.kept = cap;
            return;
        }
        self.kept += bytes.len();
        self.out.extend_from_slice(bytes);
    }
}

impl<R: Read> Read for Prepass<R> {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.out_pos == self.out.len() {
            self.fill()?;
        }
        let ready = &self.out[self.out_pos..];
        let n = ready.len().min(buf.len());
        buf[..n].copy_from_slice(&ready[..n]);
        self.out_pos += n;
        Ok(n)
    }
}

/// `#65` / `#x41` → 'A'; a number that is no character becomes U+FFFE (so
/// that the caller replaces it); `None` if `name` is not a number.
fn character_reference(name: &[u8]) -> Option<char> {
    let (digits, radix) = match name.strip_prefix(b"#")? {
        [b'x' | b'X', hex @ ..] => (hex, 16),
        dec => (dec, 10),
    };
    if digits.is_empty() || !digits.iter().all(|&b| (b as char).is_digit(radix)) {
        return None;
    }
    let digits = std::str::from_utf8(digits).ok()?;
    Some(
        u32::from_str_radix(digits, radix)
            .ok()
            .and_then(char::from_u32)
            .unwrap_or('\u{FFFE}'),
    )
}

/// Characters XML 1.0 allows in a document (`Char` in the specification).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// The bytes that need a decision in `state`, as a table; every other byte
/// is copied as is. Looking bytes up in one table rather than comparing
/// each against several is most of the filter's speed.
fn specials(state: State) -> &'static [bool; 256] {
    match state {
        State::Text => &TEXT,
        State::Tag => &TAG,
        State::Attribute(b'"') => &DOUBLE_QUOTED,
        State::Attribute(_) => &SINGLE_QUOTED,
        State::Cdata => &CDATA,
        State::Comment => &COMMENT,
        State::Instruction => &INSTRUCTION,
        State::Doctype { .. } => &ALL,
    }
}

static TEXT: [bool; 256] = table(b"<&>");
static TAG: [bool; 256] = table(b"\"'>");
static DOUBLE_QUOTED: [bool; 256] = table(b"\"<&");
static SINGLE_QUOTED: [bool; 256] = table(b"'<&");
static CDATA: [bool; 256] = table(b"]");
static COMMENT: [bool; 256] = table(b"-");
static INSTRUCTION: [bool; 256] = table(b"?");
static ALL: [bool; 256] = [true; 256];

/// `extra` and what is special in every state: the C0 controls other than
/// tab, newline and carriage return, and the lead bytes of U+FFFE/U+FFFF
/// (0xEF) and of the marks (0xF4).
const fn table(extra: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = !matches!(b as u8, b'\t' | b'\n' | b'\r');
        b += 1;
    }
    t[0xEF] = true;
    t[0xF4] = true;
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
}

fn valid_up_to(bytes: &[u8]) -> usize {
    match std::str::from_utf8(bytes) {
        Ok(_) => bytes.len(),
        Err(e) => e.valid_up_to(),
    }
}

/// At invalid UTF-8: how many bytes are invalid, or `None` when they may be
/// the start of a sequence that the next read completes.
fn invalid_len(bytes: &[u8]) -> Option<usize> {
    match std::str::from_utf8(bytes) {
        Ok(_) => Some(0),
        Err(e) => e.error_len(),
    }
}

fn utf8_len(lead: u8) -> usize {
    match lead {
        0xF0.. => 4,
        0xE0.. => 3,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the parser is handed for `doc`.
    fn filtered(doc: &[u8]) -> String {
        let mut out = Vec::new();
        Prepass::new(doc).read_to_end(&mut out).unwrap();
        String::from_utf8(out).expect("the filter's output is UTF-8")
    }

    /// The same, read one byte at a time from a source that hands out one
    /// byte at a time: no construct may depend on where reads end.
    fn filtered_bytewise(doc: &[u8]) -> String {
        struct OneByte<'a>(&'a [u8]);
        impl Read for OneByte<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(1);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut prepass = Prepass::new(OneByte(doc));
        let mut out = Vec::new();
        let mut byte = [0];
        while prepass.read(&mut byte).unwrap() == 1 {
            out.push(byte[0]);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn well_formed_markup_passes_unchanged() {
        let doc = "<a x=\"1 &amp; 2\" y='&lt;'>t &lt;&gt;&amp;&quot;&apos; &#10;&#x1F600;<b/><![CDATA[<raw> & ]]></a>";
        assert_eq!(filtered(doc.as_bytes()), doc);
    }

    #[test]
    fn what_runners_get_wrong_is_repaired_in_text_and_attributes() {
        let cases: &[(&str, &str)] = &[
            ("<a>x & y</a>", "<a>x &amp; y</a>"),
            (
                "<a>&bogus; &amp &#; &#12a;</a>",
                "<a>&amp;bogus; &amp;amp &amp;#; &amp;#12a;</a>",
            ),
            (
                "<a v=\"&nbsp;&copy;&hellip;\">&nbsp;</a>",
                "<a v=\"\u{a0}©…\">\u{a0}</a>",
            ),
            (
                "<a>&#0;&#xFFFE;&#xD800;&#x110000;</a>",
                "<a>\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}</a>",
            ),
            ("<a>\x00\x07\u{FFFF}</a>", "<a>\u{FFFD}\u{FFFD}\u{FFFD}</a>"),
            ("<a>x ]]> y</a>", "<a>x ]]&gt; y</a>"),
            ("<a v=\"1<2\"/>", "<a v=\"1&lt;2\"/>"),
            // Too long to be a reference: a bare `&`.
            ("<a>&#000000000000065;</a>", "<a>&amp;#000000000000065;</a>"),
            // References and `&` inside CDATA are not references.
            ("<a><![CDATA[&bogus;]]></a>", "<a><![CDATA[&bogus;]]></a>"),
        ];
        for (doc, expected) in cases {
            assert_eq!(filtered(doc.as_bytes()), *expected, "{doc:?}");
            assert_eq!(filtered_bytewise(doc.as_bytes()), *expected, "{doc:?}");
        }
    }

    #[test]
    fn esc_becomes_a_mark_in_values_and_only_there() {
        let mark = ESCAPE_MARK.to_string();
        assert_eq!(
            filtered(b"<a v=\"got \x1b[\">\x1b[31mred<![CDATA[\x1b]]></a>"),
            format!("<a v=\"got {mark}[\">{mark}[31mred<![CDATA[{mark}]]></a>")
        );
        // A reference to ESC counts as ESC; one in a tag is no value.
        assert_eq!(filtered(b"<a>&#x1b;[0m</a>"), format!("<a>{mark}[0m</a>"));
        assert_eq!(filtered(b"<a\x1b/>"), "<a\u{FFFD}/>");
        // A runner's own marks are not taken for ours.
        assert_eq!(
            filtered("<a>\u{10FFFF}\u{10FFFE}</a>".as_bytes()),
            "<a>\u{FFFD}\u{FFFD}</a>"
        );
    }

    #[test]
    fn comments_instructions_and_doctype_are_dropped() {
        assert_eq!(
            filtered(
                b"\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"latin1\"?>\n<!-- top -- dashes -->\
                  <!DOCTYPE a [ <!ENTITY x \"a > b ]\"> <!-- ] > --> ]>\
                  <a>x<!-- <b> & -->y<?pi ?>z&x;</a>"
            ),
            "\n<a>xyz&amp;x;</a>"
        );
        assert_eq!(filtered(b"<!doctype html><a/>"), "<a/>");
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        assert_eq!(
            filtered(b"<a v=\"\xff\">\xc3(\xe6\x97</a>"),
            "<a v=\"\u{FFFD}\">\u{FFFD}(\u{FFFD}</a>"
        );
        // Cut inside a character at the very end.
        assert_eq!(filtered(b"<a>\xe6\x97"), "<a>\u{FFFD}");
    }

    #[test]
    fn long_values_keep_their_cap_and_say_how_much_was_cut() {
        let cut = |n: usize| format!("{CUT_MARK}{n}{CUT_MARK}");
        let text = "é".repeat(TEXT_CAP); // 2 bytes each: twice the cap
        let doc = format!("<a>{text}</a><b>{text}<!-- c -->{text}<![CDATA[{text}]]></b>");
        let out = filtered(doc.as_bytes());
        let kept = "é".repeat(TEXT_CAP / 2);
        assert_eq!(
            out,
            format!(
                "<a>{kept}{}</a><b>{kept}{}<![CDATA[{kept}{}]]></b>",
                cut(TEXT_CAP),
                cut(3 * TEXT_CAP),
                cut(TEXT_CAP)
            )
        );
        let value = "v".repeat(ATTRIBUTE_CAP + 10);
        assert_eq!(
            filtered(format!("<a x=\"{value}\" y='1'/>").as_bytes()),
            format!("<a x=\"{}{}\" y='1'/>", &value[..ATTRIBUTE_CAP], cut(10))
        );
    }

    #[test]
    fn huge_input_streams_through_a_bounded_buffer() {
        // 64 MiB of text never held whole: the filter's buffers stay at
        // their chunk size.
        struct Endless {
            left: usize,
        }
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.left);
                buf[..n].fill(b'x');
                self.left -= n;
                Ok(n)
            }
        }
        let mut prepass =
            Prepass::new(b"<a>".chain(Endless { left: 64 << 20 }).chain(&b"</a>"[..]));
        let mut buf = vec![0; 1 << 16];
        let mut total = 0;
        loop {
            let n = prepass.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n;
            assert!(prepass.input.capacity() <= 4 * CHUNK && prepass.out.capacity() <= 4 * CHUNK);
        }
        let note = format!("{CUT_MARK}{}{CUT_MARK}", (64 << 20) - TEXT_CAP);
        assert_eq!(total, 3 + TEXT_CAP + note.len() + 4);
    }
}
