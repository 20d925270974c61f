//! `offload logs`: per-test results of the most recent run.
use std::path::Path;

use crate::cli::LogsArgs;
use crate::error::{Error, Result};
use crate::Verdict;

pub fn logs(_config: &Path, _args: &LogsArgs) -> Result<Verdict> {
    Err(Error::new("`offload logs` is not implemented yet"))
}
