//! Command-line arguments (argh), one struct per subcommand, and [`parse`]:
//! the command line to a [`Cli`], help to print, or a [`UsageError`] that
//! says what is wrong and which `--help` to read (see `usage.rs`).

mod usage;

use argh::{ArgsInfo, FromArgs};
use std::path::PathBuf;

pub use usage::UsageError;

/// Offload: a parallel test runner. Discovers tests, runs them in batches
/// across sandboxes, retries failures, and writes one JUnit report.
#[derive(FromArgs, ArgsInfo, Debug)]
pub struct Cli {
    /// configuration file path (default: offload.toml)
    #[argh(option, short = 'c', default = "PathBuf::from(\"offload.toml\")")]
    pub config: PathBuf,

    /// verbose output: stream each batch's output as it arrives
    #[argh(switch, short = 'v')]
    pub verbose: bool,

    /// print the version and exit
    #[argh(switch, short = 'V')]
    pub version: bool,

    #[argh(subcommand)]
    pub command: Option<Command>,
}

#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand)]
pub enum Command {
    Run(RunArgs),
    Collect(CollectArgs),
    Validate(ValidateArgs),
    Init(InitArgs),
    Logs(LogsArgs),
    Doctor(DoctorArgs),
}

/// Run tests in parallel.
#[derive(FromArgs, ArgsInfo, Debug, Default)]
#[argh(subcommand, name = "run")]
pub struct RunArgs {
    /// override the maximum number of parallel sandboxes
    #[argh(option, from_str_fn(at_least_one))]
    pub parallel: Option<usize>,

    /// discover tests without running them
    #[argh(switch)]
    pub collect_only: bool,

    /// copy a directory into each sandbox, LOCAL:REMOTE (repeatable)
    #[argh(option)]
    pub copy_dir: Vec<String>,

    /// set an environment variable in sandboxes, KEY=VALUE (repeatable)
    #[argh(option)]
    pub env: Vec<String>,

    /// skip the cached image lookup during prepare (forces a fresh build)
    #[argh(switch)]
    pub no_cache: bool,

    /// stop at the first test that fails for good (after its retries)
    #[argh(switch)]
    pub fail_fast: bool,

    /// also write a Chrome trace-event file ({output_dir}/trace.json)
    #[argh(switch)]
    pub trace: bool,

    /// discover every group afresh, even when nothing discovery reads has changed
    #[argh(switch)]
    pub rediscover: bool,

    /// what a run whose only problems are flaky tests exits with: exit2 (code 2, the default), pass (0) or fail (1)
    #[argh(option, from_str_fn(flaky_result))]
    pub flaky_result: Option<crate::config::FlakyResult>,

    /// run only this part of the suite, K/N (1 <= K <= N): CI jobs each run one, split by measured time
    #[argh(option, from_str_fn(shard))]
    pub shard: Option<crate::schedule::shard::Shard>,

    /// run only the tests that failed, errored or were not run in the last report
    #[argh(switch)]
    pub failed: bool,

    /// in a GitHub Actions job, write no annotations and no job summary (as `[report] ci_reports = false` does)
    #[argh(switch)]
    pub no_ci_reports: bool,

    /// what goes to stdout: human (the summary, default) or json (the run's events, one JSON object per line; the summary goes to stderr)
    #[argh(option, from_str_fn(message_format))]
    pub message_format: Option<crate::report::MessageFormat>,
}

/// Discover tests without running them.
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "collect")]
pub struct CollectArgs {
    /// output format: text or json (default: text)
    #[argh(option, short = 'f', default = "String::from(\"text\")")]
    pub format: String,

    /// list only the tests of shard K of N, as `offload run --shard K/N` runs them
    #[argh(option, from_str_fn(shard))]
    pub shard: Option<crate::schedule::shard::Shard>,
}

/// Validate the configuration file and print a summary of its settings.
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "validate")]
pub struct ValidateArgs {
    /// make unknown keys errors, not warnings (as `[offload] unknown_keys = "error"` does)
    #[argh(switch)]
    pub strict: bool,
}

/// Generate a new offload.toml configuration file.
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "init")]
pub struct InitArgs {
    /// provider type: local or default (default: local)
    #[argh(option, short = 'p', default = "String::from(\"local\")")]
    pub provider: String,

    /// framework: pytest, cargo, node or default (default: detected from the project)
    #[argh(option, short = 'f')]
    pub framework: Option<String>,

    /// overwrite an existing file
    #[argh(switch)]
    pub force: bool,
}

/// View per-test results of the most recent run.
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "logs")]
pub struct LogsArgs {
    /// show only failed tests
    #[argh(switch)]
    pub failures: bool,

    /// show only errored tests
    #[argh(switch)]
    pub errors: bool,

    /// show only the test with this exact ID (repeatable)
    #[argh(option)]
    pub test: Vec<String>,

    /// show only tests whose ID matches this regex (substring match)
    #[argh(option)]
    pub test_regex: Option<String>,
}

/// Check the config, the tools, discovery and one batch per group.
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "doctor")]
pub struct DoctorArgs {}

/// A whole number of at least 1 (`--parallel`). The message completes
/// argh's "Error parsing option '--parallel' with value 'x': …", which
/// [`usage`] turns into `--parallel expects a whole number of at least 1, got "x"`.
fn at_least_one(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(usage::EXPECTS_AT_LEAST_ONE.to_string()),
    }
}

fn flaky_result(value: &str) -> Result<crate::config::FlakyResult, String> {
    crate::config::FlakyResult::parse(value).ok_or_else(|| {
        format!(
            "expects one of {}",
            crate::config::FlakyResult::CHOICES.join(", ")
        )
    })
}

fn message_format(value: &str) -> Result<crate::report::MessageFormat, String> {
    crate::report::MessageFormat::parse(value).ok_or_else(|| {
        format!(
            "expects one of {}",
            crate::report::MessageFormat::CHOICES.join(", ")
        )
    })
}

fn shard(value: &str) -> Result<crate::schedule::shard::Shard, String> {
    crate::schedule::shard::Shard::parse(value)
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    /// A command to run.
    Command(Cli),
    /// `--help` (or `help`): the text to print on stdout, exit 0.
    Help(String),
}

/// Parse `args` (without the program name). `--name=value` is accepted for
/// an option (`--parallel=4`), as most command lines do; argh itself only
/// takes `--name value`.
pub fn parse(args: &[String]) -> Result<Parsed, UsageError> {
    let args = usage::split_equals(args);
    let strs: Vec<&str> = args.iter().map(String::as_str).collect();
    match Cli::from_args(&["offload"], &strs) {
        Ok(cli) => Ok(Parsed::Command(cli)),
        Err(exit) => match exit.status {
            Ok(()) => Ok(Parsed::Help(exit.output)),
            Err(()) => Err(usage::explain(&args, &exit.output)),
        },
    }
}

/// [`parse`] the process's arguments.
pub fn parse_env() -> Result<Parsed, UsageError> {
    let mut args = Vec::new();
    for arg in std::env::args_os().skip(1) {
        match arg.into_string() {
            Ok(a) => args.push(a),
            Err(raw) => return Err(usage::not_utf8(&raw.to_string_lossy())),
        }
    }
    parse(&args)
}
