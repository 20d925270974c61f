//! `{output_dir}/logs/batch-{N}.{success|failure|error|cancelled}`: what each
//! batch printed, stderr lines prefixed with `[stderr] `, and Offload's own
//! notes about the batch prefixed with `[offload] `.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::events::{BatchOutcome, Event, ReportError, Reporter};
use crate::process::{CapturedOutput, Stream};

pub struct BatchLogs {
    dir: PathBuf,
}

impl BatchLogs {
    /// Use `dir`, creating it and removing the batch logs of an earlier run
    /// (so that `batch-3.failure` from yesterday cannot be mistaken for today's).
    pub fn prepare(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        for entry in std::fs::read_dir(dir)?.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("batch-") && is_log_extension(name.rsplit('.').next().unwrap_or(""))
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(BatchLogs {
            dir: dir.to_path_buf(),
        })
    }

    pub fn write(
        &self,
        batch: usize,
        outcome: BatchOutcome,
        output: &CapturedOutput,
        notes: &[String],
    ) -> std::io::Result<()> {
        let path = self.dir.join(format!("batch-{batch}.{}", outcome.as_str()));
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        for (stream, line) in output.iter() {
            match stream {
                Stream::Stdout => writeln!(f, "{line}")?,
                Stream::Stderr => writeln!(f, "[stderr] {line}")?,
            }
        }
        if output.is_empty() {
            writeln!(f, "[offload] the batch printed nothing")?;
        }
        for note in notes {
            writeln!(f, "[offload] {note}")?;
        }
        f.flush()
    }
}

/// Writes each batch's log as it finishes. The directory is made ready (old
/// logs removed) when the run starts, not before: a run that fails in
/// discovery leaves the last run's logs alone.
pub struct BatchLogsReporter {
    dir: PathBuf,
    logs: Option<BatchLogs>,
}

impl BatchLogsReporter {
    pub fn new(dir: &Path) -> Self {
        BatchLogsReporter {
            dir: dir.to_path_buf(),
            logs: None,
        }
    }
}

impl Reporter for BatchLogsReporter {
    fn on_event(&mut self, event: &Event<'_>) -> Result<(), ReportError> {
        let cannot = |what: String, e: std::io::Error| {
            ReportError::Failed(format!(
                "cannot write {what}: {}",
                crate::error::io_message(&e)
            ))
        };
        match event {
            Event::RunStarted { .. } => {
                let logs = BatchLogs::prepare(&self.dir)
                    .map_err(|e| cannot(format!("the batch logs in {}", self.dir.display()), e))?;
                self.logs = Some(logs);
            }
            Event::BatchFinished(b) => {
                if let Some(logs) = &self.logs {
                    if let Err(e) = logs.write(b.batch, b.outcome, &b.output, &b.notes) {
                        // Said once: a full disk would fail every later batch too.
                        self.logs = None;
                        return Err(cannot(
                            format!("the log of batch {} (nor of the batches after it)", b.batch),
                            e,
                        ));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn is_log_extension(ext: &str) -> bool {
    matches!(ext, "success" | "failure" | "error" | "cancelled")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_prefixed_stderr_and_clears_old_logs() {
        let dir = std::env::temp_dir().join(format!("offload-logs-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("batch-9.failure"), "old").unwrap();
        std::fs::write(dir.join("keep.txt"), "mine").unwrap();
        let logs = BatchLogs::prepare(&dir).unwrap();
        assert!(!dir.join("batch-9.failure").exists());
        assert!(dir.join("keep.txt").exists());
        let mut out = CapturedOutput::default();
        out.push(Stream::Stdout, "hello");
        out.push(Stream::Stderr, "oops");
        logs.write(1, BatchOutcome::Failure, &out, &["timed out".into()])
            .unwrap();
        let text = std::fs::read_to_string(dir.join("batch-1.failure")).unwrap();
        assert_eq!(text, "hello\n[stderr] oops\n[offload] timed out\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
