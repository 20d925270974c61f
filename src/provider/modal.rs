//! The `modal` provider: generates `default`-provider commands around the
//! bundled `@modal_sandbox.py` script.

use super::ProviderOptions;
use crate::config::{Config, ModalProviderConfig, ShellProviderConfig};
use crate::error::{Error, Result};

/// The shell-provider configuration equivalent to a `[provider] type = "modal"`.
pub fn shell_config(
    _modal: &ModalProviderConfig,
    _config: &Config,
    _options: &ProviderOptions,
) -> Result<ShellProviderConfig> {
    Err(Error::new("the modal provider is not implemented yet"))
}
