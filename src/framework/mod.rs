//! Frameworks turn a group into canonical test IDs (discovery, run locally),
//! a batch of IDs into a shell command (run in a sandbox), and the runner's
//! JUnit back into per-test results keyed by those IDs.

use std::path::Path;

use crate::cancel::Cancel;
use crate::config::{Config, FrameworkConfig, GroupConfig};
use crate::error::{Error, Result};
use crate::junit::read::JunitCase;
use crate::model::TestAttempt;
use crate::process::{self, CommandSpec, Ending, ProcessOutput};

pub mod cargo;
pub mod default;
pub mod pytest;

pub trait Framework: Send + Sync {
    /// Discover one group's tests, locally, in the runner's order.
    fn discover(&self, group: &GroupConfig, cancel: &Cancel) -> Result<Discovery>;

    /// The shell command that runs `tests` in a sandbox's project root and
    /// writes JUnit to `result_file` (a path as the command sees it).
    fn batch_command(&self, tests: &[String], result_file: &str) -> BatchCommand;

    /// Map a batch's JUnit testcases to the batch's expected IDs. Only the
    /// batch's own IDs are candidates: never guess across the suite.
    fn match_results(&self, cases: Vec<JunitCase>, expected: &[String]) -> MatchedResults;

    /// A length limit for one batch's ID list, in bytes of IDs, so that the
    /// command stays under the OS argument limit (a `sh -c` script is one
    /// argument: at most 128 KiB on Linux).
    fn max_batch_id_bytes(&self) -> usize {
        96 * 1024
    }

    /// Until history has measured a batch's start-up cost, no batch is
    /// planned smaller than 1/this of a worker's share: runners that are
    /// expensive to start return a small number (fewer, larger batches).
    fn unknown_startup_min_fraction(&self) -> u64 {
        16
    }

    /// And no batch smaller than this many tests: a start-up worth several
    /// typical tests is paid in full by a small suite's every batch, however
    /// its share is divided (50 pytest tests on 4 sandboxes: one batch each,
    /// not three).
    fn unknown_startup_min_tests(&self) -> usize {
        0
    }

    /// Whether a batch runs its tests side by side (cargo nextest: one
    /// process per test, on every core) rather than one after another. The
    /// timing history then learns a batch's fixed cost from when its tests
    /// ran (JUnit timestamps), not from the sum of their times.
    fn runs_tests_side_by_side(&self) -> bool {
        false
    }

    /// What a test shares with others that a batch pays for once (its file
    /// for pytest: the module is imported and collected once per batch; its
    /// test binary for cargo: listed once per batch). The scheduler keeps
    /// tests with the same key together where balance allows. `None`: IDs
    /// are opaque (the default framework).
    fn locality_key<'a>(&self, _id: &'a str) -> Option<&'a str> {
        None
    }
}

/// Run one group's discovery `script` locally in `working_dir`. An error
/// names the group and `what` could not be started (with the command), or
/// says discovery was cancelled; any other ending is the caller's to judge.
pub(crate) fn run_discovery(
    group: &GroupConfig,
    what: &str,
    script: &str,
    working_dir: &Path,
    env: &[(String, String)],
    cancel: &Cancel,
) -> Result<ProcessOutput> {
    let spec = CommandSpec {
        cwd: Some(working_dir),
        env,
        ..CommandSpec::sh(script)
    };
    let out = process::run(&spec, None, cancel, None).map_err(|e| {
        Error::new(format!(
            "group `{}`: cannot start {what}: {}\n  command: {script}",
            group.name,
            crate::error::io_message(&e)
        ))
    })?;
    if out.ending == Ending::Cancelled {
        return Err(Error::new("discovery cancelled"));
    }
    Ok(out)
}

/// What discovery found for one group.
#[derive(Debug, Default, Clone)]
pub struct Discovery {
    pub ids: Vec<String>,
    /// Things the user should know but that do not stop the run
    /// (e.g. "group `slow` selected no tests").
    pub warnings: Vec<String>,
}

/// A batch's command and where its results will be.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchCommand {
    pub script: String,
    pub results: ResultLocation,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ResultLocation {
    /// The runner writes JUnit at the `result_file` path it was given.
    ResultFile,
    /// The runner writes JUnit at this fixed path (relative to the working
    /// directory) because it cannot be told where (default framework's
    /// `result_file` without `{result_file}` in `run_command`).
    Fixed(String),
    /// No per-test results: the exit code decides for the whole batch.
    ExitCode,
}

/// The result of matching JUnit testcases against a batch's expected IDs.
#[derive(Debug, Default, Clone)]
pub struct MatchedResults {
    /// (index into `expected`, the attempt). At most one per expected ID;
    /// the `batch` field of each attempt is filled in by the caller.
    pub matched: Vec<(usize, TestAttempt)>,
    /// Testcases that matched no expected ID, as `classname name` — shown as a
    /// warning since they usually mean an ID format mismatch.
    pub unmatched: Vec<String>,
}

/// Build the configured framework.
pub fn from_config(config: &Config) -> Result<Box<dyn Framework>> {
    let workdir = config.local_working_dir();
    Ok(match &config.framework {
        FrameworkConfig::Default(c) => Box::new(default::DefaultFramework::new(c.clone(), workdir)),
        FrameworkConfig::Pytest(c) => Box::new(pytest::PytestFramework::new(c.clone(), workdir)),
        FrameworkConfig::Cargo(c) => Box::new(cargo::CargoFramework::new(c.clone(), workdir)),
    })
}

/// The attempt a JUnit testcase records (its `batch` is filled in later).
pub fn attempt_from_case(case: JunitCase) -> TestAttempt {
    TestAttempt {
        outcome: case.outcome,
        duration: std::time::Duration::from_secs_f64(if case.time.is_finite() {
            case.time.max(0.0)
        } else {
            0.0
        }),
        message: case.message,
        details: case.details,
        system_out: case.system_out,
        system_err: case.system_err,
        batch: 0,
        started: case
            .timestamp
            .as_deref()
            .and_then(crate::junit::timestamp::parse),
    }
}

/// Match testcases whose ID is computed by `id_of` exactly against the
/// expected IDs. Used by frameworks whose JUnit carries the canonical ID.
pub fn match_exact(
    cases: Vec<JunitCase>,
    expected: &[String],
    id_of: impl Fn(&JunitCase) -> std::borrow::Cow<'_, str>,
) -> MatchedResults {
    let index: rustc_hash::FxHashMap<&str, usize> = expected
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let mut out = MatchedResults::default();
    out.matched.reserve_exact(cases.len());
    for case in cases {
        let found = {
            let id = id_of(&case);
            match index.get(id.as_ref()).or_else(|| index.get(id.trim())) {
                Some(&i) => Ok(i),
                None => Err(id.into_owned()),
            }
        };
        match found {
            Ok(i) => out.matched.push((i, attempt_from_case(case))),
            Err(id) => out.unmatched.push(id),
        }
    }
    out
}

/// Replace `{name}` and `{classname}` in a `test_id_format` (borrowing the
/// name when the format is just `{name}`, the common case).
pub fn format_test_id<'c>(format: &str, case: &'c JunitCase) -> std::borrow::Cow<'c, str> {
    if format == "{name}" {
        return std::borrow::Cow::Borrowed(&case.name);
    }
    std::borrow::Cow::Owned(
        format
            .replace("{classname}", case.classname.as_deref().unwrap_or(""))
            .replace("{name}", &case.name),
    )
}

/// The last `n` lines of `text`, for quoting a command's output in an error.
pub(crate) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `text` indented by four spaces, to set quoted output apart in an error.
pub(crate) fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
