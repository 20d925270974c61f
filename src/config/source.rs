//! Where a config value came from: turns byte spans from toml_edit into the
//! `file:line:col` prefix every config message starts with.

use std::ops::Range;

/// The config text and the name to show for it in messages.
pub(super) struct Source<'a> {
    /// The path as the user gave it (`offload.toml`, `-c ci/offload.toml`).
    name: String,
    text: &'a str,
}

impl<'a> Source<'a> {
    pub(super) fn new(name: String, text: &'a str) -> Self {
        Source { name, text }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(super) fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(self.text, offset.min(self.text.len()));
        let before = &self.text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.matches('\n').count() + 1;
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }

    /// `file:line:col` for a span, or just `file` when there is none (a
    /// section the file never wrote).
    pub(super) fn at(&self, span: Option<Range<usize>>) -> String {
        match span {
            Some(span) => {
                let (line, col) = self.line_col(span.start);
                format!("{}:{line}:{col}", self.name)
            }
            None => self.name.clone(),
        }
    }

    /// The text of the line holding `offset` and a caret under it, indented,
    /// for syntax errors where seeing the line helps.
    pub(super) fn excerpt(&self, offset: usize) -> String {
        let (line, col) = self.line_col(offset);
        let text = self.text.lines().nth(line - 1).unwrap_or("");
        format!("  {text}\n  {}^", " ".repeat(col - 1))
    }
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let src = Source::new("f.toml".into(), "a = 1\nbé = \"x\"\n");
        assert_eq!(src.line_col(0), (1, 1));
        assert_eq!(src.line_col(4), (1, 5));
        assert_eq!(src.line_col(6), (2, 1));
        // "bé = " is 6 bytes but 5 characters.
        assert_eq!(src.line_col(12), (2, 6));
        assert_eq!(src.at(Some(6..7)), "f.toml:2:1");
        assert_eq!(src.at(None), "f.toml");
    }

    #[test]
    fn excerpt_points_at_the_column() {
        let src = Source::new("f.toml".into(), "a = 1\nb = ?\n");
        assert_eq!(src.excerpt(10), "  b = ?\n      ^");
    }
}
