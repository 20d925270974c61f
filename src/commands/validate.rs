//! `offload validate`: load the config and print a summary of its settings.
use std::path::Path;

use crate::error::Result;
use crate::Verdict;

pub fn validate(config: &Path) -> Result<Verdict> {
    let _ = super::load_config(config)?;
    Ok(Verdict::Success)
}
