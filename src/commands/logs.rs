//! `offload logs`: per-test results of the most recent run.
use std::path::Path;

use crate::cli::LogsArgs;
use crate::error::{Error, Result};
use crate::report::logs_cmd::{self, LogsFilter};
use crate::Verdict;

/// Show the tests of `{output_dir}/{junit_file}` that the flags select.
/// Exit 0 when something (or nothing) matched; 1 when there is no report,
/// the config is broken, or `--test-regex` is not a valid pattern.
pub fn logs(config_path: &Path, args: &LogsArgs) -> Result<Verdict> {
    // The pattern is checked before anything is read.
    let filter = LogsFilter::new(
        args.failures,
        args.errors,
        args.test.clone(),
        args.test_regex.as_deref(),
    )?;
    let config = super::load_config(config_path)?;
    let report = config.report.junit_path();
    let shown = logs_cmd::show(&report, &filter, &mut std::io::stdout().lock()).map_err(|e| {
        if config.report.junit || report.is_file() {
            e
        } else {
            Error::new(format!(
                "{e} (note: [report] junit = false in {}, so runs do not write it)",
                config.path.display()
            ))
        }
    })?;
    if shown == 0 {
        eprintln!("No matching test results found in {}", report.display());
    }
    Ok(Verdict::Success)
}
