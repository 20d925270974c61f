//! `{output_dir}/{junit_file}`: the merged JUnit report, written when the
//! run finishes (see `junit::write` for its shape).

use std::path::{Path, PathBuf};

use crate::events::{Event, ReportError, Reporter};

pub struct JunitReporter {
    path: PathBuf,
}

impl JunitReporter {
    pub fn new(path: &Path) -> Self {
        JunitReporter {
            path: path.to_path_buf(),
        }
    }
}

impl Reporter for JunitReporter {
    fn on_event(&mut self, event: &Event<'_>) -> Result<(), ReportError> {
        if let Event::RunFinished { records, stats } = event {
            crate::junit::write::write_report(&self.path, records, stats.wall).map_err(|e| {
                ReportError::Failed(format!(
                    "cannot write {}: {}",
                    super::summary::shown_path(&self.path).display(),
                    crate::error::io_message(&e)
                ))
            })?;
        }
        Ok(())
    }
}
