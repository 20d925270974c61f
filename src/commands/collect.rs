//! `offload collect`: discovery only.
use std::path::Path;

use crate::cli::CollectArgs;
use crate::error::Result;
use crate::Verdict;

pub fn collect(config: &Path, _args: &CollectArgs) -> Result<Verdict> {
    let _ = super::load_config(config)?;
    Ok(Verdict::Success)
}
