//! `offload doctor`: check the config, tools, discovery and one batch per group.
use std::path::Path;

use crate::error::{Error, Result};
use crate::Verdict;

pub fn doctor(_config: &Path, _verbose: bool) -> Result<Verdict> {
    Err(Error::new("`offload doctor` is not implemented yet"))
}
