//! `offload init`: write a commented offload.toml for the project here.
use std::path::Path;

use crate::cli::InitArgs;
use crate::error::{Error, Result};
use crate::Verdict;

pub fn init(_config: &Path, _args: &InitArgs) -> Result<Verdict> {
    Err(Error::new("`offload init` is not implemented yet"))
}
