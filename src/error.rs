//! The user-facing error: a message that says what failed, where, and what to
//! do. Typed errors live next to the code whose callers must react to them
//! (`ConfigError`, `ProviderError`, `ExecError`); everything that only needs to
//! reach the user ends up here.

use std::fmt;

#[derive(Debug)]
pub struct Error {
    message: String,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Describe an I/O error the way a user wants to read it: the OS message
/// without Rust's debug formatting (`No such file or directory`, not
/// `Os { code: 2, .. }`).
pub fn io_message(err: &std::io::Error) -> String {
    let text = err.to_string();
    // std appends " (os error N)"; users do not need the number.
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// `Error` from an I/O error with what was being done, e.g.
/// `io_error("cannot read offload.toml", &e)`.
pub fn io_error(what: impl fmt::Display, err: &std::io::Error) -> Error {
    Error::new(format!("{what}: {}", io_message(err)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_message_drops_os_error_number() {
        let e = std::io::Error::from_raw_os_error(2);
        assert_eq!(io_message(&e), "No such file or directory");
    }
}
