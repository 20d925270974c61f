//! `offload.toml`: parsed with toml_edit (so errors carry line and column),
//! `${VAR}` expanded, validated, defaults filled in.
//!
//! * `source.rs`: byte spans → `file:line:col`.
//! * `read.rs`: typed reads from one table, with located errors and
//!   unknown-key warnings.
//! * `expand.rs`: `${VAR}`, `${VAR:-default}`, `$$`.
//! * `load.rs`: the sections, their defaults, and which rule applies where.
//! * `validate.rs`: the rules (placeholders, formats) and their messages.
//! * `suggest.rs`: did-you-mean.

mod expand;
mod load;
mod read;
mod schema;
mod source;
pub(crate) mod suggest;
mod validate;

pub use schema::*;

use std::cell::RefCell;
use std::fmt;
use std::path::Path;

use read::{Ctx, Section};
use source::Source;

/// A loaded configuration and the warnings found on the way (unknown keys).
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    /// Every warning, unknown keys included, in file order.
    pub warnings: Vec<String>,
    /// The unknown keys among them, dotted (`offload.retry_cont`): ignored
    /// settings, which `validate` must not call a valid config in silence.
    pub unknown_keys: Vec<String>,
}

/// A configuration problem, already phrased for the user:
/// `offload.toml:7:14: [provider] type: unknown provider "lcoal"; expected one of local, default, modal`.
#[derive(Debug, Clone)]
pub struct ConfigError {
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Read, parse, expand and validate the config file at `path`. Unknown
/// keys are warnings, or errors when the file sets
/// `[offload] unknown_keys = "error"`.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    load_with(path, false)
}

/// [`load`], with unknown keys errors whatever the file says
/// (`offload validate --strict`).
pub fn load_strict(path: &Path) -> Result<Loaded, ConfigError> {
    load_with(path, true)
}

fn load_with(path: &Path, strict: bool) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            " (create one with `offload init`, or pass another with -c PATH)"
        } else {
            ""
        };
        ConfigError {
            message: format!(
                "cannot read config file {}: {}{hint}",
                path.display(),
                crate::error::io_message(&e)
            ),
        }
    })?;
    parse(&text, path, &|name| std::env::var(name).ok(), strict)
}

/// Parse config text as if it were the file at `path` (used for messages and
/// to resolve relative paths).
#[cfg(test)]
pub fn parse_str(text: &str, path: &Path) -> Result<Loaded, ConfigError> {
    parse_with_env(text, path, &|name| std::env::var(name).ok())
}

/// [`parse_str`] reading `${VAR}`s through `lookup` instead of the process
/// environment.
#[cfg(test)]
fn parse_with_env(
    text: &str,
    path: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigError> {
    parse(text, path, lookup, false)
}

/// The whole load; `strict`: unknown keys are errors whatever the file says.
fn parse(
    text: &str,
    path: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
    strict: bool,
) -> Result<Loaded, ConfigError> {
    let source = Source::new(path.display().to_string(), text);
    let document = toml_edit::Document::parse(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        ConfigError {
            message: format!(
                "{}: invalid TOML: {}\n{}",
                source.at(Some(offset..offset)),
                e.message().trim_end(),
                source.excerpt(offset)
            ),
        }
    })?;
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let absolute: std::path::PathBuf = absolute.components().collect();
    let ctx = Ctx {
        source,
        lookup,
        base_dir: absolute.parent().unwrap_or(Path::new("/")).to_path_buf(),
        warnings: RefCell::new(Vec::new()),
    };
    let root = Section::root(&ctx, document.as_table());
    let result = load::config(&root, absolute);
    let warnings = ctx.warnings.into_inner();
    match result {
        Ok(config) => {
            let why_strict = if strict {
                Some((
                    "with `--strict`".to_string(),
                    " (without `--strict`, each is only a warning and the key is ignored)",
                ))
            } else if config.offload.unknown_keys == UnknownKeys::Error {
                Some((
                    format!(
                        "because {} sets [offload] unknown_keys = \"error\"",
                        path.display()
                    ),
                    "",
                ))
            } else {
                None
            };
            match why_strict {
                Some((why, note)) if warnings.iter().any(|w| w.unknown_key.is_some()) => {
                    Err(unknown_keys_error(&warnings, &why, note))
                }
                _ => Ok(Loaded {
                    config,
                    unknown_keys: warnings
                        .iter()
                        .filter_map(|w| w.unknown_key.clone())
                        .collect(),
                    warnings: warnings.into_iter().map(|w| w.message).collect(),
                }),
            }
        }
        // A misspelt key is often why a required one is "missing": keep the
        // warnings found so far with the error.
        Err(mut error) => {
            for warning in warnings {
                error.message.push_str("\nwarning: ");
                error.message.push_str(&warning.message);
            }
            Err(error)
        }
    }
}

/// Every unknown key as an error, then why they are errors, then the other
/// warnings.
fn unknown_keys_error(warnings: &[read::Warning], why: &str, note: &str) -> ConfigError {
    let (unknown, other): (Vec<_>, Vec<_>) = warnings.iter().partition(|w| w.unknown_key.is_some());
    let mut message = unknown
        .iter()
        .map(|w| w.message.as_str())
        .collect::<Vec<_>>()
        .join("\nerror: ");
    let (what, them) = match unknown.len() {
        1 => ("an unknown key is an error", "it"),
        _ => ("unknown keys are errors", "them"),
    };
    message.push_str(&format!(
        "\nerror: {what} {why}: fix or remove {them}{note}"
    ));
    for w in other {
        message.push_str("\nwarning: ");
        message.push_str(&w.message);
    }
    ConfigError { message }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz_tests;
