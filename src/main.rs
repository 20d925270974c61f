//! Offload: parse the command line, dispatch to one subcommand, and turn its
//! outcome into an exit code (the only place exit codes are decided).

mod bundled;
mod cancel;
mod cli;
mod commands;
mod config;
mod error;
mod framework;
mod history;
mod junit;
mod model;
mod process;
mod provider;
mod report;
mod run;
mod schedule;

use std::process::ExitCode;

/// How a subcommand ended; `main` maps it to the process exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// 0: everything passed (or the command succeeded).
    Success,
    /// 1: a test failed or was not run, or the command failed.
    Failure,
    /// 2: everything passed, some only after a retry.
    Flaky,
    /// 130: interrupted by Ctrl-C.
    Interrupted,
}

impl Verdict {
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Success => 0,
            Verdict::Failure => 1,
            Verdict::Flaky => 2,
            Verdict::Interrupted => 130,
        }
    }
}

fn main() -> ExitCode {
    let cli: cli::Cli = argh::from_env();
    match commands::dispatch(cli) {
        Ok(verdict) => ExitCode::from(verdict.exit_code()),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
