//! The `default` provider: any sandbox system driven through shell commands
//! (`prepare_command`, `create_command`, `exec_command`, `download_command`,
//! `destroy_command`).
//!
//! Every command runs locally as `/bin/sh -c` in `[provider] working_dir`
//! through [`process::run`] (own process group, timeout, cancellation).
//! Placeholders are filled in one pass over the template, so a value that
//! contains the text of another placeholder is never rewritten, and every
//! value is shell-quoted.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{
    ErrorStage, ExecRequest, FetchMode, Provider, ProviderError, ProviderOptions, Sandbox,
};
use crate::cancel::Cancel;
use crate::config::{Config, CopyDir, ShellProviderConfig};
use crate::error::{io_message, Error, Result};
use crate::events::Notices;
use crate::leftovers::SandboxRecord;
use crate::process::{self, shell_quote, CommandSpec, Ending, OnTimeout, ProcessOutput, Stream};
use crate::text::fill;

/// Attempts for a create, download or destroy before giving up.
const ATTEMPTS: u32 = 3;
/// Wait before the first retry; doubled for each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The least time an attempt is given, even when the shared deadline is
/// (nearly) up: a destroy must at least be tried.
const MIN_ATTEMPT_TIME: Duration = Duration::from_secs(1);
/// Where batches write their results, relative to the sandbox's project root.
const RESULTS_DIR: &str = ".offload/results";
/// Exit code of `{command}` when the project root does not exist in the sandbox.
const NO_ROOT_EXIT: i32 = 125;
/// What the `cat` fallback of `fetch` prints when the result file is missing.
const MISSING_RESULT: &str = "offload: no result file at ";

pub struct ShellProvider {
    shared: Arc<Shared>,
    prepare: Option<String>,
    no_cache: bool,
    image_id: Option<String>,
}

/// What every sandbox of the provider needs.
struct Shared {
    create: String,
    exec: String,
    download: Option<String>,
    destroy: String,
    /// `sandbox_project_root`; may contain `{sandbox_id}`.
    project_root: String,
    working_dir: PathBuf,
    lifecycle_timeout: Duration,
    /// Where retries and progress are reported.
    notices: Notices,
    /// The sandboxes alive, on disk, for the next run should this one be killed.
    record: Option<SandboxRecord>,
}

impl ShellProvider {
    /// Check the commands, expand `@name.ext` bundled scripts in them, and
    /// build the full prepare command line (copy dirs, `sandbox_init_cmd`).
    pub fn new(
        config: ShellProviderConfig,
        run: &Config,
        options: &ProviderOptions,
    ) -> Result<Self> {
        let field_error = |field: &str, msg: &str| Error::new(format!("[provider] {field}: {msg}"));
        let expand = |field: &str, template: &str| {
            crate::bundled::expand(template).map_err(|e| field_error(field, &e))
        };
        let project_root = run.offload.sandbox_project_root.clone().ok_or_else(|| {
            Error::new(
                "[offload] sandbox_project_root is required with a remote provider: set it to the \
                 project's directory inside the sandbox (e.g. \"/app\"), or to \"{sandbox_id}\" when \
                 the sandbox ID is that directory",
            )
        })?;
        for key in config.env.keys() {
            if !is_env_name(key) {
                return Err(field_error(
                    "env",
                    &format!("{key:?} is not a valid environment variable name (letters, digits and _, not starting with a digit)"),
                ));
            }
        }
        if config.prepare_command.is_none() && config.create_command.contains("{image_id}") {
            return Err(field_error(
                "create_command",
                "uses {image_id}, but there is no prepare_command to print an image ID",
            ));
        }
        let init = run.offload.sandbox_init_cmd.as_deref();
        let prepare = match &config.prepare_command {
            Some(template) => Some(prepare_line(&expand("prepare_command", template)?, &config.copy_dirs, init)),
            None if !config.copy_dirs.is_empty() => {
                return Err(field_error(
                    "copy_dirs",
                    "copy dirs (copy_dirs or --copy-dir) are handed to prepare_command, but there is none; \
                     add a prepare_command that builds them into the image",
                ))
            }
            None if init.is_some() => {
                return Err(Error::new(
                    "[offload] sandbox_init_cmd runs during the image build, but [provider] has no \
                     prepare_command; add one, or run the setup in create_command",
                ))
            }
            None => None,
        };
        let working_dir = config
            .working_dir
            .clone()
            .unwrap_or_else(|| run.base_dir().to_path_buf());
        if !working_dir.is_dir() {
            return Err(field_error(
                "working_dir",
                &format!("{} is not a directory", working_dir.display()),
            ));
        }
        Ok(ShellProvider {
            shared: Arc::new(Shared {
                create: expand("create_command", &config.create_command)?,
                exec: expand("exec_command", &config.exec_command)?,
                download: config
                    .download_command
                    .as_deref()
                    .map(|t| expand("download_command", t))
                    .transpose()?,
                destroy: expand("destroy_command", &config.destroy_command)?,
                project_root,
                working_dir,
                lifecycle_timeout: Duration::from_secs(config.timeout_secs.max(1)),
                notices: options.notices.clone(),
                record: (!options.scratch_dir.as_os_str().is_empty()).then(|| {
                    SandboxRecord::in_scratch_dir(&options.scratch_dir, options.notices.clone())
                }),
            }),
            prepare,
            no_cache: options.no_cache,
            image_id: None,
        })
    }
}

impl Provider for ShellProvider {
    fn destroy_leftover(&self, id: &str) -> std::result::Result<(), ProviderError> {
        self.shared.destroy_id(id)
    }

    fn prepare(&mut self, cancel: &Cancel) -> std::result::Result<(), ProviderError> {
        let Some(script) = &self.prepare else {
            return Ok(());
        };
        let notices = self.shared.notices.clone();
        notices.send(&format!("preparing sandboxes: {script}"));
        let env: Vec<(String, String)> = if self.no_cache {
            vec![("OFFLOAD_NO_CACHE".into(), "1".into())]
        } else {
            Vec::new()
        };
        // An image build can take minutes: show its progress as it comes.
        let sink: process::LineSink = {
            let notices = notices.clone();
            Arc::new(move |_stream: Stream, line: &str| notices.send(&format!("[prepare] {line}")))
        };
        let out = self
            .shared
            .run(
                script,
                &env,
                self.shared.lifecycle_timeout,
                cancel,
                Some(sink),
            )
            .map_err(|e| e.into_error(ErrorStage::Prepare))?;
        if !out.success() {
            return Err(ProviderError::new(
                ErrorStage::Prepare,
                self.shared.failure("prepare_command", script, &out),
            ));
        }
        let stdout = out.stdout();
        let image_id = stdout.lines().map(str::trim).rfind(|l| !l.is_empty()).ok_or_else(|| {
            ProviderError::new(
                ErrorStage::Prepare,
                "prepare_command printed nothing on stdout; it must print the image ID as its last line",
            )
        })?;
        notices.send(&format!("image {image_id}"));
        self.image_id = Some(image_id.to_string());
        Ok(())
    }

    fn create(
        &self,
        index: usize,
        cancel: &Cancel,
    ) -> std::result::Result<Box<dyn Sandbox>, ProviderError> {
        let image_id = match (&self.prepare, &self.image_id) {
            (Some(_), None) => {
                return Err(ProviderError::new(
                    ErrorStage::Create,
                    "internal error: create before prepare (no image ID)",
                ))
            }
            (_, id) => id.as_deref().map(shell_quote).unwrap_or_default(),
        };
        let script = fill(&self.shared.create, &[("image_id", &image_id)]);
        let env = vec![("OFFLOAD_SANDBOX".to_string(), index.to_string())];
        let label = format!("sandbox {index}");
        // All attempts share one `timeout_secs`: a create that hangs gives up
        // after it, not after three times it.
        let deadline = Instant::now() + self.shared.lifecycle_timeout;
        let id = retrying(
            &self.shared.notices,
            &label,
            "create_command",
            cancel,
            deadline,
            |left| {
                let out = self
                    .shared
                    .run(&script, &env, left, cancel, None)
                    .map_err(|e| Attempt::Final(e.into_error(ErrorStage::Create)))?;
                let id = out.stdout().trim().to_string();
                if !out.success() {
                    let stopped = matches!(out.ending, Ending::Cancelled | Ending::TimedOut);
                    if stopped && !id.is_empty() && !id.contains('\n') {
                        // It got as far as printing an ID: do not leak the sandbox.
                        let _ = self.shared.destroy_id(&id);
                    }
                    let error = ProviderError::new(
                        ErrorStage::Create,
                        self.shared.failure("create_command", &script, &out),
                    );
                    return Err(if stopped {
                        Attempt::Final(error)
                    } else {
                        Attempt::Retry(error)
                    });
                }
                if id.is_empty() || id.contains('\n') {
                    let what = if id.is_empty() {
                        "nothing"
                    } else {
                        "several lines"
                    };
                    return Err(Attempt::Final(ProviderError::new(
                    ErrorStage::Create,
                    format!(
                        "create_command printed {what} on stdout; it must print only the sandbox ID \
                         (send progress output to stderr)\n  command: {script}"
                    ),
                )));
                }
                Ok(id)
            },
        )?;
        if let Some(record) = &self.shared.record {
            record.created(&id);
        }
        let project_root = fill(&self.shared.project_root, &[("sandbox_id", &id)]);
        Ok(Box::new(ShellSandbox {
            id,
            project_root,
            shared: Arc::clone(&self.shared),
        }))
    }
}

/// One sandbox created by `create_command`, identified by what it printed.
pub struct ShellSandbox {
    id: String,
    /// `sandbox_project_root` with `{sandbox_id}` filled in.
    project_root: String,
    shared: Arc<Shared>,
}

impl ShellSandbox {
    /// The `{command}` value: one shell-quoted string that runs `script` in
    /// the project root with `env` exported.
    fn command_arg(&self, script: &str, env: &[(String, String)]) -> String {
        shell_quote(&inner_command(&self.project_root, script, env))
    }

    fn exec_line(&self, script: &str, env: &[(String, String)]) -> String {
        fill(
            &self.shared.exec,
            &[
                ("sandbox_id", &shell_quote(&self.id)),
                ("command", &self.command_arg(script, env)),
            ],
        )
    }

    /// Without a download_command: `cat` the file through exec_command.
    fn fetch_through_exec(
        &self,
        remote: &str,
        local: &Path,
        timeout: Duration,
        cancel: &Cancel,
    ) -> std::result::Result<(), Attempt> {
        let quoted = shell_quote(remote);
        // A missing file (the runner crashed) is told apart from a failing
        // transport, so that only the latter is retried.
        let script = format!(
            "if [ -f {quoted} ]; then cat {quoted}; else echo {MISSING_RESULT}{quoted} >&2; exit 1; fi"
        );
        let line = self.exec_line(&script, &[]);
        let out = self
            .shared
            .run(&line, &[], timeout, cancel, None)
            .map_err(|e| Attempt::Final(e.into_error(ErrorStage::Download)))?;
        if !out.success() || out.truncated {
            let error = ProviderError::new(
                ErrorStage::Download,
                on_first_line(
                    &self.shared.failure("exec_command", &line, &out),
                    " (reading the result file with `cat`, as there is no download_command)",
                ),
            );
            if out.stderr().contains(MISSING_RESULT) {
                return Err(Attempt::Final(error));
            }
            return Err(retry_unless_cancelled(&out, error));
        }
        std::fs::write(local, out.stdout()).map_err(|e| {
            Attempt::Final(ProviderError::new(
                ErrorStage::Download,
                format!("cannot write {}: {}", local.display(), io_message(&e)),
            ))
        })
    }

    fn fetch_with_command(
        &self,
        template: &str,
        remote: &str,
        local: &Path,
        timeout: Duration,
        cancel: &Cancel,
    ) -> std::result::Result<(), Attempt> {
        let pair = format!(
            "{}:{}",
            shell_quote(remote),
            shell_quote(&local.display().to_string())
        );
        let line = fill(
            template,
            &[("sandbox_id", &shell_quote(&self.id)), ("paths", &pair)],
        );
        let out = self
            .shared
            .run(&line, &[], timeout, cancel, None)
            .map_err(|e| Attempt::Final(e.into_error(ErrorStage::Download)))?;
        if !out.success() {
            let error = ProviderError::new(
                ErrorStage::Download,
                self.shared.failure("download_command", &line, &out),
            );
            return Err(retry_unless_cancelled(&out, error));
        }
        if !local.is_file() {
            return Err(Attempt::Retry(ProviderError::new(
                ErrorStage::Download,
                format!(
                    "download_command succeeded but {} was not written (is {remote} the right path in the sandbox?)\n  command: {line}",
                    local.display()
                ),
            )));
        }
        Ok(())
    }
}

impl Sandbox for ShellSandbox {
    fn id(&self) -> &str {
        &self.id
    }

    fn result_path(&self, batch: usize, attempt: u32) -> String {
        let file = format!("{RESULTS_DIR}/batch-{batch}-{attempt}.xml");
        match self.project_root.trim_end_matches('/') {
            "" if self.project_root.starts_with('/') => format!("/{file}"),
            "" | "." => file,
            root => format!("{root}/{file}"),
        }
    }

    fn exec(
        &mut self,
        request: &ExecRequest<'_>,
        cancel: &Cancel,
    ) -> std::result::Result<ProcessOutput, ProviderError> {
        let env: Vec<(String, String)> = request
            .env
            .iter()
            .map(|(k, v)| {
                // OFFLOAD_ROOT is the root of *this* sandbox.
                let v = if k == "OFFLOAD_ROOT" {
                    &self.project_root
                } else {
                    v
                };
                (k.clone(), v.clone())
            })
            .collect();
        let line = self.exec_line(request.script, &env);
        if line.len() >= process::MAX_ARG_BYTES {
            return Err(ProviderError::new(
                ErrorStage::Exec,
                format!(
                    "the batch's exec_command line is {} bytes once {{command}} is quoted, over the {} KiB \
                     Linux passes in one argument; shorten [provider] env values or exec_command",
                    line.len(),
                    process::MAX_ARG_BYTES / 1024
                ),
            ));
        }
        // A hung batch had its whole timeout: no grace (unlike the lifecycle
        // commands, which may need their clean-up trap).
        self.shared
            .spawn(
                &line,
                &[],
                request.timeout,
                OnTimeout::Kill,
                cancel,
                request.sink.clone(),
            )
            .map_err(|e| e.into_error(ErrorStage::Exec))
    }

    fn fetch(
        &mut self,
        remote: &str,
        local: &Path,
        mode: FetchMode,
        cancel: &Cancel,
    ) -> std::result::Result<(), ProviderError> {
        let local = absolute(local);
        if let Some(parent) = local.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                ProviderError::new(
                    ErrorStage::Download,
                    format!("cannot create {}: {}", parent.display(), io_message(&e)),
                )
            })?;
        }
        // A relative path (a runner's fixed `result_file`) is relative to the
        // project root: hand download commands an absolute one when we can.
        let remote = if remote.starts_with('/') || !self.project_root.starts_with('/') {
            remote.to_string()
        } else {
            format!("{}/{remote}", self.project_root.trim_end_matches('/'))
        };
        let remote = remote.as_str();
        let label = format!("sandbox {}", self.id);
        let deadline = Instant::now() + self.shared.lifecycle_timeout;
        let template = self.shared.download.clone();
        let what = match &template {
            Some(_) => "download_command",
            None => "exec_command (cat of the result file)",
        };
        let once = |left: Duration| match &template {
            Some(t) => self.fetch_with_command(t, remote, &local, left, cancel),
            None => self.fetch_through_exec(remote, &local, left, cancel),
        };
        match mode {
            FetchMode::Expected => {
                retrying(&self.shared.notices, &label, what, cancel, deadline, once)
            }
            // The batch timed out: it most likely wrote nothing, so one
            // quiet try, no retries.
            FetchMode::IfWritten => once(self.shared.lifecycle_timeout)
                .map_err(|(Attempt::Retry(e) | Attempt::Final(e))| e),
        }
    }

    fn timeout_kills_everything(&self) -> bool {
        // Killing exec_command locally does not stop what it started remotely.
        false
    }

    fn destroy(&mut self) -> std::result::Result<(), ProviderError> {
        self.shared.destroy_id(&self.id)?;
        if let Some(record) = &self.shared.record {
            record.destroyed(&self.id);
        }
        Ok(())
    }
}

impl Shared {
    /// Run a lifecycle command: stopped on its timeout with SIGTERM and a
    /// grace period, so that its clean-up trap can remove what it made.
    fn run(
        &self,
        script: &str,
        env: &[(String, String)],
        timeout: Duration,
        cancel: &Cancel,
        sink: Option<process::LineSink>,
    ) -> std::result::Result<ProcessOutput, StartError> {
        self.spawn(script, env, timeout, OnTimeout::Terminate, cancel, sink)
    }

    fn spawn(
        &self,
        script: &str,
        env: &[(String, String)],
        timeout: Duration,
        on_timeout: OnTimeout,
        cancel: &Cancel,
        sink: Option<process::LineSink>,
    ) -> std::result::Result<ProcessOutput, StartError> {
        let spec = CommandSpec {
            cwd: Some(&self.working_dir),
            env,
            on_timeout,
            ..CommandSpec::sh(script)
        };
        process::run(&spec, Some(timeout), cancel, sink).map_err(|e| StartError {
            message: format!(
                "cannot run /bin/sh in {}: {}",
                self.working_dir.display(),
                io_message(&e)
            ),
        })
    }

    /// Destroy is bounded by the lifecycle timeout in all (retries share it),
    /// and is not interrupted by a cancelled run: it is what cleans up after one.
    fn destroy_id(&self, id: &str) -> std::result::Result<(), ProviderError> {
        let line = fill(&self.destroy, &[("sandbox_id", &shell_quote(id))]);
        let cancel = Cancel::new();
        let deadline = Instant::now() + self.lifecycle_timeout;
        retrying(
            &self.notices,
            &format!("sandbox {id}"),
            "destroy_command",
            &cancel,
            deadline,
            |left| {
                let out = self
                    .run(&line, &[], left, &cancel, None)
                    .map_err(|e| Attempt::Final(e.into_error(ErrorStage::Destroy)))?;
                if out.success() {
                    return Ok(());
                }
                let message = on_first_line(
                    &self.failure("destroy_command", &line, &out),
                    &format!("; sandbox {id} may still exist: remove it by hand"),
                );
                let error = ProviderError::new(ErrorStage::Destroy, message);
                // Out of time: a retry would break the bound.
                if out.ending == Ending::TimedOut {
                    Err(Attempt::Final(error))
                } else {
                    Err(Attempt::Retry(error))
                }
            },
        )
    }

    /// `create_command failed (exit code 1): <stderr>` with the command and
    /// what to do about it.
    fn failure(&self, field: &str, line: &str, out: &ProcessOutput) -> String {
        let stderr = out.stderr();
        let shown = if stderr.trim().is_empty() {
            out.tail(20)
        } else {
            crate::text::last_lines(&stderr, 20)
        };
        let timeout = (out.ending == Ending::TimedOut).then_some(self.lifecycle_timeout);
        let mut message = format!("{field} failed ({})", out.describe_ending(timeout));
        match telling_line(&shown) {
            Some(last) => message.push_str(&format!(": {}", last.trim())),
            None => message.push_str(" without output"),
        }
        message.push_str(&format!("\n  command: {line}"));
        if shown.lines().filter(|l| !l.trim().is_empty()).count() > 1 {
            for l in shown.lines() {
                message.push_str(&format!("\n    {l}"));
            }
        }
        let hint = match out.ending {
            Ending::TimedOut => format!(
                "\n  it ran longer than [provider] timeout_secs = {}; raise it or find out why {field} hangs",
                self.lifecycle_timeout.as_secs()
            ),
            Ending::Cancelled => String::new(),
            _ => format!(
                "\n  fix [provider] {field}, or run the command by hand in {} to see why",
                self.working_dir.display()
            ),
        };
        message.push_str(&hint);
        message
    }
}

/// The shell could not be started at all.
struct StartError {
    message: String,
}

impl StartError {
    fn into_error(self, stage: ErrorStage) -> ProviderError {
        ProviderError::new(stage, self.message)
    }
}

/// The line of a failed command's output that says what went wrong: the
/// last one that speaks of an error, else the last one. A CLI's closing
/// pointer to its help (`Run 'docker run --help' for more information`)
/// says nothing about the failure.
fn telling_line(output: &str) -> Option<&str> {
    let lines = || output.lines().filter(|l| !l.trim().is_empty());
    lines()
        .rfind(|l| l.to_ascii_lowercase().contains("error"))
        .or_else(|| lines().rfind(|l| !l.contains("--help")))
        .or_else(|| lines().next_back())
}

/// The outcome of one try of a retried command.
enum Attempt {
    /// Worth another try (a failed or timed-out command).
    Retry(ProviderError),
    /// Trying again cannot help (cancelled, bad output, shell missing).
    Final(ProviderError),
}

fn retry_unless_cancelled(out: &ProcessOutput, error: ProviderError) -> Attempt {
    if out.ending == Ending::Cancelled {
        Attempt::Final(error)
    } else {
        Attempt::Retry(error)
    }
}

/// Run `attempt` up to [`ATTEMPTS`] times with exponential backoff, saying
/// what is retried and why. All attempts and the waits between them
/// share the time until `deadline`: each attempt is given what is left (at
/// least [`MIN_ATTEMPT_TIME`]), and no retry starts past it.
fn retrying<T>(
    notices: &Notices,
    who: &str,
    what: &str,
    cancel: &Cancel,
    deadline: Instant,
    mut attempt: impl FnMut(Duration) -> std::result::Result<T, Attempt>,
) -> std::result::Result<T, ProviderError> {
    let mut backoff = FIRST_BACKOFF;
    let mut n = 1;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = match attempt(left.max(MIN_ATTEMPT_TIME)) {
            Ok(v) => return Ok(v),
            Err(Attempt::Final(e)) => return Err(e),
            Err(Attempt::Retry(e)) => e,
        };
        let out_of_time = Instant::now() + backoff >= deadline;
        if n >= ATTEMPTS || cancel.is_cancelled() || out_of_time {
            let message = on_first_line(&e.message, &format!(" (gave up after {})", attempts(n)));
            return Err(ProviderError::new(e.stage, message));
        }
        let first_line = e.message.lines().next().unwrap_or_default();
        notices.send(&format!(
            "{who}: {first_line}; retrying {what} in {:.1} s (attempt {} of {ATTEMPTS})",
            backoff.as_secs_f64(),
            n + 1
        ));
        if cancel.sleep(backoff) {
            return Err(e);
        }
        backoff *= 2;
        n += 1;
    }
}

fn attempts(n: u32) -> String {
    if n == 1 {
        "1 attempt".into()
    } else {
        format!("{n} attempts")
    }
}

/// `message` with `suffix` at the end of its first line, where it is read.
fn on_first_line(message: &str, suffix: &str) -> String {
    match message.split_once('\n') {
        Some((first, rest)) => format!("{first}{suffix}\n{rest}"),
        None => format!("{message}{suffix}"),
    }
}

/// The script `{command}` stands for: enter the project root, make the
/// results directory, export the environment, run the batch.
pub fn inner_command(project_root: &str, script: &str, env: &[(String, String)]) -> String {
    let mut s = format!(
        "cd {} || exit {NO_ROOT_EXIT}; mkdir -p {RESULTS_DIR}; ",
        shell_quote(project_root)
    );
    if !env.is_empty() {
        s.push_str("export");
        for (k, v) in env {
            s.push_str(&format!(" {k}={}", shell_quote(v)));
        }
        s.push_str("; ");
    }
    s.push_str(script);
    s
}

/// `prepare_command` plus ` --copy-dir=L:R` per copy dir and
/// ` --sandbox-init-cmd=C`, each one shell word.
pub fn prepare_line(template: &str, copy_dirs: &[CopyDir], init: Option<&str>) -> String {
    let mut line = template.to_string();
    for spec in copy_dirs {
        line.push(' ');
        line.push_str(&shell_quote(&format!("--copy-dir={spec}")));
    }
    if let Some(init) = init {
        line.push(' ');
        line.push_str(&shell_quote(&format!("--sandbox-init-cmd={init}")));
    }
    line
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod telling_line_tests {
    #[test]
    fn the_line_that_tells_what_went_wrong() {
        let docker = "docker: Error response from daemon: no such image: sb.\nRun 'docker run --help' for more information\n";
        assert_eq!(
            super::telling_line(docker),
            Some("docker: Error response from daemon: no such image: sb.")
        );
        assert_eq!(
            super::telling_line("a\nquota exceeded\n\n"),
            Some("quota exceeded")
        );
        assert_eq!(super::telling_line("see --help"), Some("see --help"));
        assert_eq!(super::telling_line("  \n"), None);
    }
}
