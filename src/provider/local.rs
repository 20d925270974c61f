//! The local provider: a sandbox is a worker slot on this machine; batches are
//! `{shell} -c` child processes in their own process group.

use std::path::{Path, PathBuf};

use super::{ErrorStage, ExecRequest, FetchMode, Provider, ProviderError, Sandbox};
use crate::cancel::Cancel;
use crate::error::io_message;
use crate::process::{self, CommandSpec, ProcessOutput};

pub struct LocalProvider {
    shell: String,
    working_dir: PathBuf,
    /// Where batches write their JUnit (the run's scratch directory).
    results_dir: PathBuf,
}

impl LocalProvider {
    pub fn new(shell: String, working_dir: PathBuf, results_dir: PathBuf) -> Self {
        LocalProvider {
            shell,
            working_dir,
            results_dir,
        }
    }
}

impl Provider for LocalProvider {
    fn create(&self, index: usize, _cancel: &Cancel) -> Result<Box<dyn Sandbox>, ProviderError> {
        if !self.working_dir.is_dir() {
            return Err(ProviderError::new(
                ErrorStage::Create,
                format!(
                    "working directory {} does not exist; fix working_dir in offload.toml",
                    self.working_dir.display()
                ),
            ));
        }
        Ok(Box::new(LocalSandbox {
            id: format!("local-{index}"),
            shell: self.shell.clone(),
            working_dir: self.working_dir.clone(),
            results_dir: self.results_dir.clone(),
        }))
    }
}

pub struct LocalSandbox {
    id: String,
    shell: String,
    working_dir: PathBuf,
    results_dir: PathBuf,
}

impl Sandbox for LocalSandbox {
    fn id(&self) -> &str {
        &self.id
    }

    fn result_path(&self, batch: usize, attempt: u32) -> String {
        self.results_dir
            .join(super::result_file_name(batch, attempt))
            .display()
            .to_string()
    }

    fn exec(
        &mut self,
        request: &ExecRequest<'_>,
        cancel: &Cancel,
    ) -> Result<ProcessOutput, ProviderError> {
        let spec = CommandSpec {
            shell: &self.shell,
            script: request.script,
            cwd: Some(&self.working_dir),
            env: request.env,
            on_timeout: process::OnTimeout::Kill,
        };
        process::run(&spec, Some(request.timeout), cancel, request.sink.clone()).map_err(|e| {
            ProviderError::new(
                ErrorStage::Exec,
                format!(
                    "cannot start shell {:?}: {}; set [provider] shell to an existing shell",
                    self.shell,
                    io_message(&e)
                ),
            )
        })
    }

    fn fetch(
        &mut self,
        remote: &str,
        local: &Path,
        _mode: FetchMode,
        _cancel: &Cancel,
    ) -> Result<(), ProviderError> {
        let source = self.working_dir.join(remote);
        if source == local {
            return if local.exists() {
                Ok(())
            } else {
                Err(ProviderError::new(
                    ErrorStage::Download,
                    "wrote no JUnit result file",
                ))
            };
        }
        std::fs::copy(&source, local).map(|_| ()).map_err(|e| {
            ProviderError::new(
                ErrorStage::Download,
                format!(
                    "wrote no readable result file at {}: {}",
                    source.display(),
                    io_message(&e)
                ),
            )
        })
    }

    fn timeout_kills_everything(&self) -> bool {
        true
    }

    fn destroy(&mut self) -> Result<(), ProviderError> {
        Ok(())
    }
}
