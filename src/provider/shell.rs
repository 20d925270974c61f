//! The `default` provider: any sandbox system driven through shell commands
//! (`prepare_command`, `create_command`, `exec_command`, `download_command`,
//! `destroy_command`).

use super::{ErrorStage, Provider, ProviderError, ProviderOptions, Sandbox};
use crate::cancel::Cancel;
use crate::config::{Config, ShellProviderConfig};
use crate::error::{Error, Result};

pub struct ShellProvider {
    #[allow(dead_code)]
    config: ShellProviderConfig,
}

impl ShellProvider {
    pub fn new(
        config: ShellProviderConfig,
        _run: &Config,
        _options: &ProviderOptions,
    ) -> Result<Self> {
        let _ = Error::new("");
        Ok(ShellProvider { config })
    }
}

impl Provider for ShellProvider {
    fn create(
        &self,
        _index: usize,
        _cancel: &Cancel,
    ) -> std::result::Result<Box<dyn Sandbox>, ProviderError> {
        Err(ProviderError::new(
            ErrorStage::Create,
            "the default provider is not implemented yet",
        ))
    }
}
