//! Providers create sandboxes; a sandbox runs batch commands and hands back
//! their result files. Each worker thread owns exactly one sandbox for its
//! life, behind a [`SandboxGuard`] that destroys it on every path out.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use crate::cancel::Cancel;
use crate::events::Notices;
use crate::process::{LineSink, ProcessOutput};

pub mod local;
pub mod modal;
pub mod shell;

pub trait Provider: Send + Sync {
    /// Once, before any sandbox is created (e.g. build an image).
    fn prepare(&mut self, _cancel: &Cancel) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Create sandbox number `index` (0-based). Called on the worker thread
    /// that will own it, so creations run in parallel.
    fn create(&self, index: usize, cancel: &Cancel) -> Result<Box<dyn Sandbox>, ProviderError>;

    /// Destroy sandbox `id`, which an earlier run created and was killed
    /// before it could destroy (its record is in that run's scratch
    /// directory: see [`crate::leftovers`]). Providers that record nothing
    /// are never asked.
    fn destroy_leftover(&self, id: &str) -> Result<(), ProviderError> {
        Err(ProviderError::new(
            ErrorStage::Destroy,
            format!("this provider cannot destroy sandbox {id}; remove it by hand"),
        ))
    }
}

pub trait Sandbox: Send {
    /// A name for logs and errors (`local-3`, `sb-xyz123`).
    fn id(&self) -> &str;

    /// Where batch `batch` (attempt `attempt`) should write its JUnit, as a
    /// path the command sees inside the sandbox. Unique per batch attempt, so
    /// a stale file from an earlier batch can never be read by mistake.
    fn result_path(&self, batch: usize, attempt: u32) -> String;

    /// Run a batch command in the sandbox's project root.
    fn exec(
        &mut self,
        request: &ExecRequest<'_>,
        cancel: &Cancel,
    ) -> Result<ProcessOutput, ProviderError>;

    /// Copy the file at `remote` (a [`Sandbox::result_path`], or a path
    /// relative to the project root) to `local`. A missing remote file is an
    /// error of kind [`ErrorStage::Download`].
    fn fetch(
        &mut self,
        remote: &str,
        local: &Path,
        mode: FetchMode,
        cancel: &Cancel,
    ) -> Result<(), ProviderError>;

    /// Whether killing a timed-out command also stops everything it started.
    /// True for local process groups; false for remote sandboxes, which are
    /// then destroyed and replaced.
    fn timeout_kills_everything(&self) -> bool {
        false
    }

    /// Tear the sandbox down. Called exactly once, by the guard.
    fn destroy(&mut self) -> Result<(), ProviderError>;
}

/// The name of batch `batch`'s result file for attempt `attempt`
/// (`batch-3-1.xml`): unique per attempt, so that a stale file from an
/// earlier batch can never be read by mistake. Every sandbox's
/// [`Sandbox::result_path`] and the run's local copy use it.
pub fn result_file_name(batch: usize, attempt: u32) -> String {
    format!("batch-{batch}-{attempt}.xml")
}

/// A batch command to run in a sandbox.
pub struct ExecRequest<'a> {
    pub script: &'a str,
    /// `[provider] env` plus `OFFLOAD_*`; the sandbox applies them.
    pub env: &'a [(String, String)],
    pub timeout: Duration,
    /// Receives each output line as it arrives (`-v`).
    pub sink: Option<LineSink>,
}

/// How hard [`Sandbox::fetch`] tries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchMode {
    /// The batch ended on its own: its result file should be there, and a
    /// failing transfer is retried.
    Expected,
    /// The batch timed out and most likely wrote nothing: one try, no
    /// retries (partial results are kept when there are some).
    IfWritten,
}

/// Which lifecycle step failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorStage {
    Prepare,
    Create,
    Exec,
    Download,
    Destroy,
}

impl fmt::Display for ErrorStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorStage::Prepare => "prepare",
            ErrorStage::Create => "create",
            ErrorStage::Exec => "exec",
            ErrorStage::Download => "download",
            ErrorStage::Destroy => "destroy",
        })
    }
}

/// A lifecycle step that failed, with the command's own words.
#[derive(Clone, Debug)]
pub struct ProviderError {
    pub stage: ErrorStage,
    /// What happened and what to do, e.g. `create_command failed (exit code 1): <stderr>`.
    pub message: String,
}

impl ProviderError {
    pub fn new(stage: ErrorStage, message: impl Into<String>) -> Self {
        ProviderError {
            stage,
            message: message.into(),
        }
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sandbox {} failed: {}", self.stage, self.message)
    }
}

/// Owns a sandbox and destroys it when dropped — after success, failure,
/// cancellation or a panic of the worker thread.
pub struct SandboxGuard {
    sandbox: Option<Box<dyn Sandbox>>,
    /// Where a failed destroy on drop is reported.
    notices: Notices,
}

impl SandboxGuard {
    pub fn new(sandbox: Box<dyn Sandbox>, notices: Notices) -> Self {
        SandboxGuard {
            sandbox: Some(sandbox),
            notices,
        }
    }

    pub fn get(&mut self) -> &mut dyn Sandbox {
        self.sandbox
            .as_deref_mut()
            .expect("sandbox already destroyed")
    }

    pub fn id(&self) -> &str {
        self.sandbox.as_deref().map_or("", |s| s.id())
    }

    /// Destroy now, reporting the error (dropping the guard destroys and
    /// reports a failure as a notice).
    pub fn destroy(mut self) -> Result<(), ProviderError> {
        match self.sandbox.take() {
            Some(mut s) => s.destroy(),
            None => Ok(()),
        }
    }
}

impl Drop for SandboxGuard {
    fn drop(&mut self) {
        if let Some(mut s) = self.sandbox.take() {
            if let Err(e) = s.destroy() {
                self.notices.warn(&e.to_string());
            }
        }
    }
}

/// Run-time choices that are not in the config file.
#[derive(Clone, Debug)]
pub struct ProviderOptions {
    /// `--no-cache`: build the image afresh instead of reusing a cached one.
    pub no_cache: bool,
    /// Local directory for this run's scratch files (batch result files).
    pub scratch_dir: std::path::PathBuf,
    /// Where retries and other notes for the user go.
    pub notices: Notices,
}

impl Default for ProviderOptions {
    /// No `--no-cache`, no scratch directory, notes on stderr.
    fn default() -> Self {
        ProviderOptions {
            no_cache: false,
            scratch_dir: std::path::PathBuf::new(),
            notices: Notices::stderr(),
        }
    }
}

/// Build the configured provider.
pub fn from_config(
    config: &crate::config::Config,
    options: &ProviderOptions,
) -> crate::error::Result<Box<dyn Provider>> {
    use crate::config::ProviderConfig;
    Ok(match &config.provider {
        ProviderConfig::Local(c) => Box::new(local::LocalProvider::new(
            c.shell.clone(),
            config.local_working_dir(),
            options.scratch_dir.clone(),
        )),
        ProviderConfig::Shell(c) => {
            Box::new(shell::ShellProvider::new(c.clone(), config, options)?)
        }
        ProviderConfig::Modal(c) => {
            let shell_config = modal::shell_config(c, config, options)?;
            Box::new(shell::ShellProvider::new(shell_config, config, options)?)
        }
    })
}
