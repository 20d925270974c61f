//! `offload run`: discover, schedule, execute, report.
use std::path::Path;

use crate::cli::RunArgs;
use crate::error::Result;
use crate::Verdict;

pub fn run(config: &Path, _verbose: bool, _args: &RunArgs) -> Result<Verdict> {
    let _ = super::load_config(config)?;
    Ok(Verdict::Success)
}
