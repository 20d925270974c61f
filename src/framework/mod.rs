//! Frameworks turn a group into canonical test IDs (discovery, run locally),
//! a batch of IDs into a shell command (run in a sandbox), and the runner's
//! JUnit back into per-test results keyed by those IDs.

use std::path::{Path, PathBuf};

use crate::cancel::Cancel;
use crate::config::{Config, FrameworkConfig, GroupConfig};
use crate::error::{Error, Result};
use crate::junit::id;
use crate::junit::read::JunitCase;
use crate::model::TestAttempt;
use crate::process::{self, CommandSpec, Ending, LineSink, ProcessOutput};

pub mod cargo;
pub mod default;
pub mod pytest;

pub trait Framework: Send + Sync {
    /// Discover one group's tests, locally, in the runner's order.
    /// `output`, when given, gets each line of the discovery command's
    /// output as it comes (`offload run -v`).
    fn discover(
        &self,
        group: &GroupConfig,
        cancel: &Cancel,
        output: Option<&LineSink>,
    ) -> Result<Discovery>;

    /// The command [`Framework::discover`] runs for `group`, as shown while
    /// it runs (with a note when it does more than list, as cargo builds).
    fn discovery_command(&self, group: &GroupConfig) -> String;

    /// The shell command that runs `tests` in a sandbox's project root and
    /// writes JUnit to `result_file` (a path as the command sees it).
    /// `from_discovery` is what the tests' group's discovery left for its
    /// batches ([`Discovery::for_batches`]; cargo: the build to reuse).
    fn batch_command(
        &self,
        tests: &[String],
        result_file: &str,
        from_discovery: Option<&str>,
    ) -> BatchCommand;

    /// Map a batch's JUnit testcases to the batch's expected IDs. Only the
    /// batch's own IDs are candidates: never guess across the suite.
    fn match_results(&self, cases: Vec<JunitCase>, expected: &[String]) -> MatchedResults;

    /// What `offload doctor` needs to know about this framework.
    fn hints(&self) -> Hints;

    /// What one group's discovery reads, for reusing its result while none
    /// of it changes (see `discover::cache`); `None`: never reused.
    fn discovery_inputs(&self, _group: &GroupConfig) -> Option<DiscoveryInputs> {
        None
    }

    /// The positions (in `batch.ids`) of the tests the runner said it
    /// does not know: the test is gone since discovery (pytest's `ERROR: not
    /// found:`, nextest: absent from the JUnit of a run that ended normally).
    /// Their neighbours are not to blame, and a reused discovery is redone.
    fn not_found(&self, _batch: &RanBatch<'_>) -> Vec<usize> {
        Vec::new()
    }

    /// A test that one line of the runner's live output says has finished:
    /// the runner's name for it (as in [`Framework::match_results`]'s
    /// `expected`) and how it ended. For the progress shown while a batch
    /// runs; the JUnit file stays the authority on results. `None` for every
    /// other line, and always for runners that print nothing per test.
    fn live_result<'l>(&self, _line: &'l str) -> Option<(&'l str, crate::model::Outcome)> {
        None
    }

    /// A length limit for one batch's ID list, in [`Framework::batch_id_bytes`],
    /// so that the command stays under the OS argument limit (a `sh -c`
    /// script is one argument: at most [`process::MAX_ARG_BYTES`]); what is
    /// left is for the rest of the command, `[provider] env` and the
    /// provider's `exec_command`.
    fn max_batch_id_bytes(&self) -> usize {
        96 * 1024
    }

    /// The bytes `id` adds to the command line that starts its batch: after
    /// the framework quotes it, and after a remote provider quotes the whole
    /// batch command once more to pass it as one word (`{command}`), where
    /// each `'` grows again. Local batches are counted the same: on the safe
    /// side.
    fn batch_id_bytes(&self, id: &str) -> usize {
        // The separating space.
        process::quoted_bytes(id, 1) + 1
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

/// What `offload doctor` checks for a framework and what it advises: the
/// programs the framework starts, a command that shows its runner works, and
/// the fix to suggest for each way discovery or a batch can go wrong. Lives
/// with each framework, so that the doctor never matches on framework types.
#[derive(Clone, Debug, Default)]
pub struct Hints {
    /// Programs that must be installed: (program, the setting that needs it).
    pub programs: Vec<(String, String)>,
    /// Commands whose programs must be installed wherever discovery runs:
    /// (the setting, the command).
    pub discovery_commands: Vec<(String, String)>,
    /// Commands whose programs must be installed where batches run (checked
    /// only when that is this machine, the local provider).
    pub batch_commands: Vec<(String, String)>,
    /// A command that shows the runner works (`pytest --version`), what it
    /// checks, and the fix when it fails.
    pub version_probe: Option<(String, String, String)>,
    /// What to do when discovery fails.
    pub discovery_fix: String,
    /// What to do when discovery finds no tests in any group.
    pub no_tests_fix: String,
    /// What to do when a batch leaves no JUnit file.
    pub no_results_fix: String,
    /// What to do when the JUnit testcases match no discovered test.
    pub mapping_fix: String,
    /// The configured `test_id_format`, when the user chooses how IDs are
    /// built (the default framework): the doctor then suggests a better one.
    pub test_id_format: Option<String>,
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
    output: Option<&LineSink>,
) -> Result<ProcessOutput> {
    let spec = CommandSpec {
        cwd: Some(working_dir),
        env,
        ..CommandSpec::sh(script)
    };
    let out = process::run(&spec, None, cancel, output.cloned()).map_err(|e| {
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

/// What a group's discovery depends on, as a framework sees it: the key of
/// its reuse. Paths are absolute, or relative to the working directory.
#[derive(Debug, Default, Clone)]
pub struct DiscoveryInputs {
    /// Text discovery depends on: the command with the group's filters, the
    /// environment variables the runner reads.
    pub text: Vec<String>,
    /// Files whose contents discovery reads; one that does not exist counts
    /// as absent (creating it changes the key).
    pub files: Vec<PathBuf>,
    /// Directories whose every file counts (walked; hidden directories and
    /// those named in `skip_dirs` left out).
    pub trees: Vec<PathBuf>,
    /// Directory names a walk of `trees` leaves out (`__pycache__`, `target`).
    pub skip_dirs: Vec<&'static str>,
    /// Files or directories that count by size and modification time only
    /// (an interpreter, its `site-packages`): what is installed.
    pub stamps: Vec<PathBuf>,
}

/// A batch whose runner ended on its own, for [`Framework::not_found`].
pub struct RanBatch<'a> {
    /// The runner's exit code (`None`: killed by a signal).
    pub exit_code: Option<i32>,
    /// The batch's test IDs, as given to [`Framework::batch_command`].
    pub ids: &'a [String],
    /// The runner's names of the batch's tests, in the same order.
    pub expected: &'a [String],
    /// What the runner printed.
    pub output: &'a crate::process::CapturedOutput,
    /// What its JUnit said, when it left one.
    pub results: Option<&'a MatchedResults>,
}

/// Where the program a command starts with (`python`, `.venv/bin/pytest`)
/// is: through `PATH`, or relative to `working_dir`; `None` when the word
/// is not a program (`VAR=value`, shell syntax) or is not found.
pub(crate) fn find_program(word: &str, working_dir: &Path) -> Option<PathBuf> {
    let word = word.trim_matches('\'');
    if word.is_empty() || word.contains(['=', '$', '`', '(', '"']) {
        return None;
    }
    if word.contains('/') {
        let path = working_dir.join(word);
        return path.is_file().then_some(path);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| working_dir.join(dir).join(word))
        .find(|p| p.is_file())
}

/// What discovery found for one group.
#[derive(Debug, Default, Clone)]
pub struct Discovery {
    /// Canonical IDs, in the runner's order.
    pub ids: Vec<String>,
    /// How the runner names each test in its JUnit, parallel to `ids`, when
    /// that differs from the canonical IDs (pytest with a rootdir that is not
    /// the working directory); `None` when they are the same.
    pub runner_ids: Option<Vec<String>>,
    /// Things the user should know but that do not stop the run
    /// (e.g. "group `slow` selected no tests").
    pub warnings: Vec<String>,
    /// What the group's batches need from this discovery, given back to
    /// [`Framework::batch_command`] (cargo: where the build's metadata is);
    /// opaque to everyone but the framework.
    pub for_batches: Option<String>,
    /// Files discovery made or used that must stay as they are for its
    /// result to hold (cargo: the test binaries): a reused discovery is
    /// redone when one changes (by size and modification time).
    pub products: Vec<PathBuf>,
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
    /// Testcases that matched no expected ID: they usually mean an ID format
    /// mismatch (shown with [`case_label`]).
    pub unmatched: Vec<JunitCase>,
}

/// How a testcase is shown when it matches nothing: `classname name`, or
/// just `name`.
pub fn case_label(case: &JunitCase) -> String {
    match case.classname.as_deref() {
        Some(c) if !c.is_empty() => format!("{c} {}", case.name),
        _ => case.name.clone(),
    }
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
        location: case.file.filter(|f| !f.trim().is_empty()).map(|file| {
            Box::new(crate::model::SourceLocation {
                file,
                line: case.line,
            })
        }),
    }
}

/// Match testcases whose ID is computed by `id_of` against the expected
/// IDs: exactly, or else through [`id::normalize`] on both sides (a runner
/// that writes an ID with `\x1b[31m` or `\x01` as it is cannot get it
/// through XML unchanged). Among expected IDs with the same normal form, the
/// first without a result yet is taken. Used by frameworks whose JUnit
/// carries the canonical ID.
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
    // Built at the first testcase that does not match exactly (rare).
    let mut normal: Option<rustc_hash::FxHashMap<std::borrow::Cow<'_, str>, Vec<usize>>> = None;
    let mut taken = vec![false; expected.len()];
    let mut out = MatchedResults::default();
    out.matched.reserve_exact(cases.len());
    for case in cases {
        let found = {
            let id = id_of(&case);
            let exact = index.get(id.as_ref()).copied();
            match exact {
                Some(i) if !taken[i] => Ok(i),
                _ => {
                    let normal = normal.get_or_insert_with(|| {
                        let mut map = rustc_hash::FxHashMap::default();
                        for (i, id) in expected.iter().enumerate() {
                            map.entry(id::normalize(id))
                                .or_insert_with(Vec::new)
                                .push(i);
                        }
                        map
                    });
                    let candidates = normal
                        .get(id::normalize(&id).as_ref())
                        .map_or(&[][..], Vec::as_slice);
                    candidates
                        .iter()
                        .copied()
                        .find(|&i| !taken[i])
                        .or(exact)
                        .or(candidates.first().copied())
                        .ok_or(())
                }
            }
        };
        match found {
            Ok(i) => {
                taken[i] = true;
                out.matched.push((i, attempt_from_case(case)));
            }
            Err(()) => out.unmatched.push(case),
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
    std::borrow::Cow::Owned(crate::text::fill(
        format,
        &[
            ("classname", case.classname.as_deref().unwrap_or("")),
            ("name", &case.name),
        ],
    ))
}

/// `text` indented by four spaces, to set quoted output apart in an error.
pub(crate) fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn names(list: &[&str]) -> Vec<JunitCase> {
        list.iter().map(|n| JunitCase::named(*n)).collect()
    }

    fn matched(m: &MatchedResults) -> Vec<usize> {
        m.matched.iter().map(|(i, _)| *i).collect()
    }

    #[test]
    fn an_attempt_keeps_the_testcase_file_and_line() {
        let mut case = JunitCase::named("test_len");
        case.file = Some("tests/test_strings.py".into());
        case.line = Some(7);
        let location = attempt_from_case(case).location.expect("a location");
        assert_eq!(location.file, "tests/test_strings.py");
        assert_eq!(location.line, Some(7));
        let mut blank = JunitCase::named("x");
        blank.file = Some(" ".into());
        assert_eq!(attempt_from_case(blank).location, None);
        assert_eq!(attempt_from_case(JunitCase::named("y")).location, None);
    }

    #[test]
    fn ids_match_through_their_normal_form() {
        let expected: Vec<String> = [
            "t_\x1b[31mred\x1b[0m",
            "t_\x01",
            "t_\u{FFFE}",
            "t_a\tb",
            "plain",
        ]
        .map(String::from)
        .to_vec();
        // What a runner that writes the IDs as they are gets read back as.
        let cases = names(&["plain", "t_a b", "t_\u{FFFD}", "t_red", " t_\u{FFFD} "]);
        let m = match_exact(cases, &expected, |c| Cow::Borrowed(&c.name));
        assert!(m.unmatched.is_empty(), "{:?}", m.unmatched);
        // `t_\x01` and `t_\u{FFFE}` share a normal form: each gets one.
        assert_eq!(matched(&m), [4, 3, 1, 0, 2]);
    }

    #[test]
    fn a_classname_is_never_rewritten_by_the_name() {
        let case = JunitCase {
            classname: Some("k{name}".into()),
            ..JunitCase::named("t")
        };
        assert_eq!(format_test_id("{classname} {name}", &case), "k{name} t");
    }

    #[test]
    fn an_exact_match_wins_over_a_normal_one() {
        let expected: Vec<String> = ["a\tb", "a b"].map(String::from).to_vec();
        let m = match_exact(names(&["a b", "a\tb"]), &expected, |c| {
            Cow::Borrowed(&c.name)
        });
        assert_eq!(matched(&m), [1, 0]);
        let m = match_exact(names(&["nope"]), &expected, |c| Cow::Borrowed(&c.name));
        let unmatched: Vec<String> = m.unmatched.iter().map(case_label).collect();
        assert_eq!(unmatched, ["nope"]);
    }
}
