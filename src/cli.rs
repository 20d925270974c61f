//! Command-line arguments (argh), one struct per subcommand.

use argh::FromArgs;
use std::path::PathBuf;

/// Offload: a parallel test runner. Discovers tests, runs them in batches
/// across sandboxes, retries failures, and writes one JUnit report.
#[derive(FromArgs, Debug)]
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

#[derive(FromArgs, Debug)]
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
#[derive(FromArgs, Debug, Default)]
#[argh(subcommand, name = "run")]
pub struct RunArgs {
    /// override the maximum number of parallel sandboxes
    #[argh(option)]
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
}

/// Discover tests without running them.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "collect")]
pub struct CollectArgs {
    /// output format: text or json (default: text)
    #[argh(option, short = 'f', default = "String::from(\"text\")")]
    pub format: String,
}

/// Validate the configuration file and print a summary of its settings.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "validate")]
pub struct ValidateArgs {}

/// Generate a new offload.toml configuration file.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "init")]
pub struct InitArgs {
    /// provider type: local or default (default: local)
    #[argh(option, short = 'p', default = "String::from(\"local\")")]
    pub provider: String,

    /// framework type: pytest, cargo or default (default: detected from the project)
    #[argh(option, short = 'f')]
    pub framework: Option<String>,

    /// overwrite an existing file
    #[argh(switch)]
    pub force: bool,
}

/// View per-test results of the most recent run.
#[derive(FromArgs, Debug)]
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
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "doctor")]
pub struct DoctorArgs {}
