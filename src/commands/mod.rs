//! One function per subcommand. Each returns a [`Verdict`] or an error for
//! `main` to turn into an exit code.

mod collect;
mod doctor;
mod init;
mod logs;
mod run;
mod validate;

use crate::cli::{Cli, Command};
use crate::error::{Error, Result};
use crate::Verdict;

pub fn dispatch(cli: Cli) -> Result<Verdict> {
    if cli.version {
        crate::console::outln!("offload {}", env!("CARGO_PKG_VERSION"));
        return Ok(Verdict::Success);
    }
    let Some(command) = cli.command else {
        return Err(Error::new(
            "no command given; try `offload run`, or `offload --help` for the commands",
        ));
    };
    match command {
        Command::Run(args) => run::run(&cli.config, cli.verbose, &args),
        Command::Collect(args) => collect::collect(&cli.config, &args),
        Command::Validate(args) => validate::validate(&cli.config, &args),
        Command::Init(args) => init::init(&cli.config, &args),
        Command::Logs(args) => logs::logs(&cli.config, &args),
        Command::Doctor(_) => doctor::doctor(&cli.config, cli.verbose),
    }
}

/// Load the config, printing its warnings to stderr.
pub fn load_config(path: &std::path::Path) -> Result<crate::config::Config> {
    let loaded = crate::config::load(path).map_err(|e| Error::new(e.to_string()))?;
    for w in &loaded.warnings {
        crate::console::errln!("warning: {w}");
    }
    Ok(loaded.config)
}
