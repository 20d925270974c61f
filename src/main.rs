//! Offload: parse the command line, dispatch to one subcommand, and turn its
//! outcome into an exit code (the only place exit codes are decided).

mod bundled;
mod cancel;
mod cli;
mod commands;
mod config;
mod console;
mod discover;
mod error;
mod events;
mod files;
mod framework;
#[cfg(test)]
mod fuzz;
mod history;
mod junit;
mod leftovers;
mod model;
mod process;
mod provider;
mod report;
mod run;
mod schedule;
mod text;

use std::process::ExitCode;

/// How a subcommand ended; `main` maps it to the process exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// 0: everything passed (or the command succeeded).
    Success,
    /// 1: a test failed, errored or was not run.
    Failure,
    /// 2: everything passed, some only after a retry.
    Flaky,
    /// 3: Offload could not do what was asked, whatever the tests would
    /// say: a usage error (a bad flag), a broken config, a discovery that
    /// failed, no sandbox could be created, a report not written, a failed
    /// `doctor` check. Every error a subcommand returns ends here.
    OffloadError,
    /// 130: interrupted by Ctrl-C.
    Interrupted,
}

impl Verdict {
    /// The one place a verdict becomes an exit code (README, "Exit codes").
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Success => 0,
            Verdict::Failure => 1,
            Verdict::Flaky => 2,
            Verdict::OffloadError => 3,
            Verdict::Interrupted => 130,
        }
    }
}

fn main() -> ExitCode {
    // `offload run` starts a copy of itself that stops its process groups
    // should it be killed (see process/supervisor.rs).
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == process::supervisor::ARG)
    {
        return process::supervisor::main();
    }
    limit_malloc_arenas();
    ExitCode::from(try_main().exit_code())
}

/// Parse the command line and run the subcommand. Every error, from the
/// command line or the subcommand, is printed here and ends as
/// [`Verdict::OffloadError`].
fn try_main() -> Verdict {
    let cli = match cli::parse_env() {
        Ok(cli::Parsed::Command(cli)) => cli,
        Ok(cli::Parsed::Help(text)) => {
            // `offload --help | head -1` is not an error.
            console::outln!("{text}");
            return Verdict::Success;
        }
        Err(usage) => {
            console::errln!("error: {usage}");
            return Verdict::OffloadError;
        }
    };
    match commands::dispatch(cli) {
        Ok(verdict) => verdict,
        Err(e) => {
            console::errln!("error: {e}");
            Verdict::OffloadError
        }
    }
}

/// glibc gives every thread that allocates its own malloc arena; with a pool
/// of workers and their output readers that fragments the heap and costs
/// more than half of the peak memory of a large run. Two arenas are plenty:
/// the threads mostly wait on child processes.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt with integer arguments, before any thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
