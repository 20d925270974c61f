//! The validated configuration: what `offload.toml` says, with defaults filled
//! in, `${VAR}` expanded and relative paths resolved against the directory of
//! the config file. Built by `config::load`; read by every other stage.

use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Clone, Debug)]
pub struct Config {
    /// The file this was loaded from (absolute).
    pub path: PathBuf,
    pub offload: OffloadSection,
    pub provider: ProviderConfig,
    pub framework: FrameworkConfig,
    /// In the order the file lists them.
    pub groups: Vec<GroupConfig>,
    pub report: ReportConfig,
}

/// `[offload]`
#[derive(Clone, Debug)]
pub struct OffloadSection {
    /// Number of sandboxes (worker threads). Default 10.
    pub max_parallel: usize,
    /// Per batch. Default 900.
    pub test_timeout_secs: u64,
    /// Local provider: working directory of test processes (wins over the provider's).
    pub working_dir: Option<PathBuf>,
    /// Project root inside a sandbox; exported as `OFFLOAD_ROOT`. Required for
    /// the `default` and `modal` providers; for `local` it defaults to the
    /// working directory.
    pub sandbox_project_root: Option<String>,
    /// Runs once during image build (prepare), after cwd/copy-dirs are applied.
    pub sandbox_init_cmd: Option<String>,
    /// Reuse a group's last discovery while nothing it reads has changed.
    /// Default true.
    pub reuse_discovery: bool,
    /// What a key Offload does not know is: a warning (default) or an error.
    pub unknown_keys: UnknownKeys,
    /// The exit code of a run whose only problems are flaky tests.
    pub flaky_result: FlakyResult,
}

/// `[offload] flaky_result` / `offload run --flaky-result`: what a run whose
/// only problems are flaky tests (failed, then passed on a retry) ends as.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FlakyResult {
    /// `"exit2"`: exit code 2, the original contract (default).
    #[default]
    Exit2,
    /// `"pass"`: exit code 0, as nextest, Gradle and Surefire treat them.
    Pass,
    /// `"fail"`: exit code 1, as a failing test.
    Fail,
}

impl FlakyResult {
    pub const CHOICES: [&'static str; 3] = ["exit2", "pass", "fail"];

    pub fn parse(value: &str) -> Option<FlakyResult> {
        match value {
            "exit2" => Some(FlakyResult::Exit2),
            "pass" => Some(FlakyResult::Pass),
            "fail" => Some(FlakyResult::Fail),
            _ => None,
        }
    }
}

/// `[offload] unknown_keys`: what to do with a key Offload does not know
/// (a typo such as `retry_cont`, a setting in the wrong table).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UnknownKeys {
    /// `"warn"`: a warning each, and the key is ignored.
    #[default]
    Warn,
    /// `"error"`: the config is not loaded until they are fixed (what
    /// `offload validate --strict` does for one check).
    Error,
}

/// `[provider]`, tagged by `type`.
#[derive(Clone, Debug)]
pub enum ProviderConfig {
    Local(LocalProviderConfig),
    /// `type = "default"`: any sandbox system driven through shell commands.
    Shell(ShellProviderConfig),
    Modal(ModalProviderConfig),
}

#[derive(Clone, Debug)]
pub struct LocalProviderConfig {
    pub working_dir: Option<PathBuf>,
    pub env: BTreeMap<String, String>,
    /// Default `/bin/sh`.
    pub shell: String,
}

#[derive(Clone, Debug)]
pub struct ShellProviderConfig {
    pub prepare_command: Option<String>,
    pub create_command: String,
    pub exec_command: String,
    pub destroy_command: String,
    pub download_command: Option<String>,
    /// Where the lifecycle commands run (local cwd).
    pub working_dir: Option<PathBuf>,
    /// Timeout of each lifecycle command. Default 3600.
    pub timeout_secs: u64,
    pub copy_dirs: Vec<CopyDir>,
    pub env: BTreeMap<String, String>,
}

#[derive(Clone, Debug)]
pub struct ModalProviderConfig {
    pub dockerfile: Option<String>,
    pub include_cwd: bool,
    pub copy_dirs: Vec<CopyDir>,
    pub env: BTreeMap<String, String>,
}

/// A directory copied into each sandbox's image: `copy_dirs` entries and
/// `run --copy-dir`, written `LOCAL:REMOTE` (split at the first colon).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyDir {
    pub local: String,
    pub remote: String,
}

impl CopyDir {
    /// `LOCAL:REMOTE`, both sides non-empty: the one rule for the config
    /// file and the command line alike.
    pub fn parse(spec: &str) -> Result<CopyDir, String> {
        match spec.split_once(':') {
            Some((local, remote)) if !local.is_empty() && !remote.is_empty() => Ok(CopyDir {
                local: local.to_string(),
                remote: remote.to_string(),
            }),
            _ => Err(format!(
                "expected \"local:remote\" (e.g. \"./data:/app/data\"), found \"{spec}\""
            )),
        }
    }
}

impl std::fmt::Display for CopyDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.local, self.remote)
    }
}

/// `[framework]`, tagged by `type` (`"nextest"` is an alias of `"cargo"`).
#[derive(Clone, Debug)]
pub enum FrameworkConfig {
    Pytest(PytestConfig),
    Cargo(CargoConfig),
    Default(DefaultFrameworkConfig),
}

#[derive(Clone, Debug)]
pub struct PytestConfig {
    /// Default `["tests"]`.
    pub paths: Vec<String>,
    /// e.g. `uv run pytest`. When unset: legacy mode `{python} -m pytest {extra_args}`.
    pub command: Option<String>,
    /// Extra arguments for execution only (not discovery).
    pub run_args: Option<String>,
    /// Legacy: pytest arguments, used when `command` is unset.
    pub extra_args: Vec<String>,
    /// Legacy: default `python`.
    pub python: String,
    /// Legacy, undocumented: `-m {markers}` at discovery when a group has no filters.
    pub markers: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct CargoConfig {
    /// `-p`
    pub package: Option<String>,
    /// `--features a,b`
    pub features: Vec<String>,
    /// `--bin`
    pub bin: Option<String>,
    /// `--run-ignored all` when true.
    pub include_ignored: bool,
}

#[derive(Clone, Debug)]
pub struct DefaultFrameworkConfig {
    /// Contains `{filters}`; prints one ID per line (`#` lines skipped).
    pub discover_command: String,
    /// Contains `{tests}`; may contain `{result_file}`.
    pub run_command: String,
    /// Where the runner writes its JUnit when it cannot be told (relative to
    /// the working dir). Unset and no `{result_file}` in `run_command`: exit-code fallback.
    pub result_file: Option<String>,
    pub working_dir: Option<PathBuf>,
    /// Built from `{name}` and `{classname}`.
    pub test_id_format: String,
    /// Files and directories `discover_command` reads (relative to the
    /// working dir): its discovery is reused only when set, while none of
    /// them changes.
    pub discovery_inputs: Option<Vec<String>>,
}

/// `[groups.NAME]`
#[derive(Clone, Debug)]
pub struct GroupConfig {
    pub name: String,
    /// Default 0.
    pub retry_count: u32,
    /// Default "".
    pub filters: String,
}

/// `[report]`
#[derive(Clone, Debug)]
pub struct ReportConfig {
    /// Default `test-results` (resolved against the config file's directory).
    pub output_dir: PathBuf,
    /// Default true.
    pub junit: bool,
    /// Default `junit.xml`.
    pub junit_file: String,
    /// The GitHub Actions annotations and job summary, written when the run
    /// is a GitHub Actions step. Default true; `offload run --no-ci-reports`
    /// also turns them off.
    pub ci_reports: bool,
}

impl ReportConfig {
    pub fn junit_path(&self) -> PathBuf {
        self.output_dir.join(&self.junit_file)
    }
}

impl ProviderConfig {
    pub fn type_name(&self) -> &'static str {
        match self {
            ProviderConfig::Local(_) => "local",
            ProviderConfig::Shell(_) => "default",
            ProviderConfig::Modal(_) => "modal",
        }
    }
}

impl FrameworkConfig {
    pub fn type_name(&self) -> &'static str {
        match self {
            FrameworkConfig::Pytest(_) => "pytest",
            FrameworkConfig::Cargo(_) => "cargo",
            FrameworkConfig::Default(_) => "default",
        }
    }
}

impl Config {
    /// The directory the config file lives in: relative paths in it are
    /// resolved against this.
    pub fn base_dir(&self) -> &std::path::Path {
        self.path.parent().unwrap_or(std::path::Path::new("."))
    }

    /// Where discovery and local batches run: `[offload] working_dir`, else the
    /// framework's, else the local provider's, else the config file's directory.
    pub fn local_working_dir(&self) -> PathBuf {
        let framework_dir = match &self.framework {
            FrameworkConfig::Default(d) => d.working_dir.clone(),
            _ => None,
        };
        let provider_dir = match &self.provider {
            ProviderConfig::Local(l) => l.working_dir.clone(),
            _ => None,
        };
        self.offload
            .working_dir
            .clone()
            .or(framework_dir)
            .or(provider_dir)
            .unwrap_or_else(|| self.base_dir().to_path_buf())
    }

    /// `OFFLOAD_ROOT` for batches: `sandbox_project_root`, or for the local
    /// provider the working directory.
    pub fn project_root(&self) -> String {
        match (&self.offload.sandbox_project_root, &self.provider) {
            (Some(root), ProviderConfig::Local(_)) if root == "." => {
                self.local_working_dir().display().to_string()
            }
            (Some(root), _) => root.clone(),
            (None, _) => self.local_working_dir().display().to_string(),
        }
    }

    /// The environment every batch gets: the provider's `env` and
    /// `OFFLOAD_ROOT` (per-batch variables are added by the worker).
    pub fn batch_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .provider_env()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        env.push(("OFFLOAD_ROOT".into(), self.project_root()));
        env
    }

    /// The provider's `env` table.
    pub fn provider_env(&self) -> &BTreeMap<String, String> {
        match &self.provider {
            ProviderConfig::Local(c) => &c.env,
            ProviderConfig::Shell(c) => &c.env,
            ProviderConfig::Modal(c) => &c.env,
        }
    }
}

#[cfg(test)]
impl Config {
    /// A minimal valid config for unit tests: the file at `path`, the given
    /// provider and project root, a default framework that runs nothing,
    /// one group `all`.
    pub fn for_tests(
        path: &std::path::Path,
        root: Option<&str>,
        provider: ProviderConfig,
    ) -> Config {
        let dir = path.parent().unwrap_or(std::path::Path::new("/"));
        Config {
            path: path.to_path_buf(),
            offload: OffloadSection {
                max_parallel: 2,
                test_timeout_secs: 60,
                working_dir: None,
                sandbox_project_root: root.map(str::to_string),
                sandbox_init_cmd: None,
                reuse_discovery: true,
                unknown_keys: UnknownKeys::Warn,
                flaky_result: FlakyResult::Exit2,
            },
            provider,
            framework: FrameworkConfig::Default(DefaultFrameworkConfig {
                discover_command: "echo {filters}".into(),
                run_command: "true {tests}".into(),
                result_file: None,
                working_dir: None,
                test_id_format: "{name}".into(),
                discovery_inputs: None,
            }),
            groups: vec![GroupConfig {
                name: "all".into(),
                retry_count: 0,
                filters: String::new(),
            }],
            report: ReportConfig {
                output_dir: dir.join("test-results"),
                junit: true,
                junit_file: "junit.xml".into(),
                ci_reports: true,
            },
        }
    }
}
