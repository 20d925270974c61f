//! `${VAR}`, `${VAR:-default}` and `$$` in config string values.
//!
//! Expansion works on parsed values, never on the raw file, so a `${` inside a
//! comment or a key is left alone. A `$` not followed by `{` or `$` stays as
//! it is, so `$HOME` in a command reaches the shell.

use std::fmt;

/// Why a string could not be expanded; the caller adds the file, line and key.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ExpandError {
    /// `${NAME}` with NAME unset.
    Unset(String),
    /// `${` with no closing `}`; holds the text from `${` on.
    Unclosed(String),
    /// `${...}` whose inside is not `NAME` or `NAME:-default`.
    BadReference(String),
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpandError::Unset(name) => write!(
                f,
                "environment variable {name} is not set (referenced as ${{{name}}}); \
                 set it, or give a default with ${{{name}:-default}}"
            ),
            ExpandError::Unclosed(rest) => write!(
                f,
                "unclosed variable reference \"{rest}\"; write ${{NAME}} or ${{NAME:-default}}, \
                 or $$ for a literal $"
            ),
            ExpandError::BadReference(inner) => write!(
                f,
                "invalid variable reference \"${{{inner}}}\"; expected ${{NAME}} or \
                 ${{NAME:-default}} where NAME is letters, digits and _"
            ),
        }
    }
}

/// Expand `text`, reading variables through `lookup` (the process
/// environment in production, a map in tests).
///
/// `${NAME:-default}` uses `default` (literally, not expanded again) when
/// NAME is unset or empty, as the shell does.
pub(super) fn expand(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    if !text.contains('$') {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                return Err(ExpandError::Unclosed(rest[i..].to_string()));
            };
            let inner = &body[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (inner, None),
            };
            if !is_variable_name(name) {
                return Err(ExpandError::BadReference(inner.to_string()));
            }
            match (lookup(name), default) {
                (Some(value), Some(default)) if value.is_empty() => out.push_str(default),
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => return Err(ExpandError::Unset(name.to_string())),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/u".into()),
            "EMPTY" => Some(String::new()),
            "TOKEN" => Some("s3cr$t".into()),
            _ => None,
        }
    }

    fn run(text: &str) -> Result<String, ExpandError> {
        expand(text, &env)
    }

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(
            run("uv run pytest -m 'not slow'").unwrap(),
            "uv run pytest -m 'not slow'"
        );
    }

    #[test]
    fn braced_variable_is_replaced() {
        assert_eq!(run("${HOME}/x").unwrap(), "/home/u/x");
        assert_eq!(run("a${HOME}b${HOME}").unwrap(), "a/home/ub/home/u");
    }

    #[test]
    fn value_is_not_expanded_again() {
        assert_eq!(run("${TOKEN}").unwrap(), "s3cr$t");
    }

    #[test]
    fn default_used_when_unset_or_empty() {
        assert_eq!(run("${NOPE:-local}").unwrap(), "local");
        assert_eq!(run("${EMPTY:-fallback}").unwrap(), "fallback");
        assert_eq!(run("${HOME:-fallback}").unwrap(), "/home/u");
        assert_eq!(run("${NOPE:-}").unwrap(), "");
        assert_eq!(run("${NOPE:-a:-b $x}").unwrap(), "a:-b $x");
    }

    #[test]
    fn set_but_empty_variable_without_default_is_empty() {
        assert_eq!(run("[${EMPTY}]").unwrap(), "[]");
    }

    #[test]
    fn double_dollar_is_a_literal_dollar() {
        assert_eq!(run("$$").unwrap(), "$");
        assert_eq!(run("cost $$5 and $${HOME}").unwrap(), "cost $5 and ${HOME}");
    }

    #[test]
    fn lone_dollar_is_left_for_the_shell() {
        assert_eq!(run("echo $HOME $1 $").unwrap(), "echo $HOME $1 $");
        assert_eq!(run("a$").unwrap(), "a$");
    }

    #[test]
    fn unset_variable_is_an_error_naming_it() {
        assert_eq!(
            run("x ${MISSING_VAR} y"),
            Err(ExpandError::Unset("MISSING_VAR".into()))
        );
        let message = run("${MISSING_VAR}").unwrap_err().to_string();
        assert!(message.contains("MISSING_VAR is not set"), "{message}");
    }

    #[test]
    fn unclosed_reference_is_an_error() {
        assert_eq!(run("a ${HOME"), Err(ExpandError::Unclosed("${HOME".into())));
    }

    #[test]
    fn bad_names_are_errors() {
        assert_eq!(run("${}"), Err(ExpandError::BadReference(String::new())));
        assert_eq!(run("${:-x}"), Err(ExpandError::BadReference(":-x".into())));
        assert_eq!(run("${1A}"), Err(ExpandError::BadReference("1A".into())));
        assert_eq!(run("${A-b}"), Err(ExpandError::BadReference("A-b".into())));
    }
}
