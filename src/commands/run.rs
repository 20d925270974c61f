//! `offload run`: discover, schedule, execute, report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::cancel::{Cancel, CancelLevel};
use crate::cli::RunArgs;
use crate::config::{Config, ProviderConfig};
use crate::error::{io_error, Error, Result};
use crate::history::{self, History};
use crate::run::{self, ExecuteOptions};
use crate::Verdict;

pub fn run(config_path: &Path, verbose: bool, args: &RunArgs) -> Result<Verdict> {
    let mut config = super::load_config(config_path)?;
    apply_overrides(&mut config, args)?;
    let cancel = install_interrupt_handler();
    // Grandchildren that daemonize out of their batch's process group come
    // back to us, so that nothing the run started outlives it.
    crate::process::become_subreaper();
    let framework: Arc<dyn crate::framework::Framework> =
        Arc::from(crate::framework::from_config(&config)?);

    // The provider is built (and its config checked) before discovery, and
    // prepared (e.g. an image built) while discovery runs.
    let output_dir = config.report.output_dir.clone();
    std::fs::create_dir_all(&output_dir).map_err(|e| {
        io_error(
            format!("cannot create output directory {}", output_dir.display()),
            &e,
        )
    })?;
    let scratch = ScratchDir::create(&output_dir)?;
    let provider = crate::provider::from_config(
        &config,
        &crate::provider::ProviderOptions {
            no_cache: args.no_cache,
            scratch_dir: scratch.path.clone(),
        },
    )?;
    let preparing = Preparing::start(provider, &cancel, !args.collect_only);

    let table = match run::discover_all(framework.as_ref(), &config.groups, &cancel, |w| {
        eprintln!("warning: {w}")
    }) {
        Ok(t) => t,
        Err(_) if cancel.was_interrupted() => {
            eprintln!("interrupted during discovery");
            return Ok(Verdict::Interrupted);
        }
        Err(e) => return Err(e),
    };
    if args.collect_only {
        super::collect::print_text(&table);
        return Ok(Verdict::Success);
    }
    if table.tests.is_empty() {
        return Err(Error::new(
            "no tests found in any group; check the groups' filters and the framework's paths (`offload collect` shows what discovery finds)",
        ));
    }
    let mut table = table;
    let junit_path = config.report.junit_path();
    let history_path = history::path_for(&config);
    let parallelism = config.offload.max_parallel.max(1);
    let plan = {
        // Dropped once the plan is made: the run does not need it.
        let history = History::load(
            &junit_path,
            &history_path,
            table.tests.iter().map(|t| t.id.as_str()),
        );
        let timeout = Duration::from_secs(config.offload.test_timeout_secs);
        run::timing::plan(
            &mut table,
            &history,
            parallelism,
            timeout,
            framework.as_ref(),
        )
    };
    let provider = match preparing.finish() {
        Ok(provider) => provider,
        Err(e) if cancel.was_interrupted() => {
            eprintln!("interrupted while preparing the sandboxes: {e}");
            return Ok(Verdict::Interrupted);
        }
        Err(e) => return Err(e),
    };
    let provider: Arc<dyn crate::provider::Provider> = Arc::from(provider);

    let env = config.batch_env();

    eprintln!(
        "Running {} tests in {} batches on {} sandboxes ({} provider)",
        table.tests.len(),
        plan.batches.len(),
        parallelism.min(table.tests.len()),
        config.provider.type_name()
    );
    let collected = run::execute(
        &table,
        plan.batches,
        Arc::clone(&framework),
        provider,
        ExecuteOptions {
            parallelism,
            timeout: Duration::from_secs(config.offload.test_timeout_secs),
            fail_fast: args.fail_fast,
            stream_output: verbose,
            logs_dir: output_dir.join("logs"),
            scratch_dir: scratch.path.clone(),
            env,
            batch_startup: plan.batch_startup,
            expected_wall: plan.expected_wall,
        },
        &cancel,
        reporters(verbose, args.trace, &output_dir),
    )?;
    drop(scratch);
    crate::process::kill_orphans();

    let timings = run::timing::learn(&table, &collected, framework.as_ref());
    if let Err(e) = history::save(&history_path, &timings) {
        eprintln!(
            "warning: cannot save the timing history {}: {}",
            history_path.display(),
            crate::error::io_message(&e)
        );
    }
    if config.report.junit {
        crate::junit::write::write_report(&junit_path, &collected.records, collected.wall)
            .map_err(|e| io_error(format!("cannot write {}", junit_path.display()), &e))?;
    }
    print!(
        "{}",
        crate::report::summary::render_summary(
            &collected.records,
            collected.wall,
            config
                .report
                .junit
                .then(|| crate::report::summary::shown_path(&junit_path))
                .as_deref(),
            &crate::report::summary::shown_path(&output_dir.join("logs")),
            collected.cancelled,
        )
    );
    if let Some(fatal) = &collected.fatal {
        eprintln!("error: {fatal}");
        return Ok(Verdict::Failure);
    }
    Ok(run::verdict(&collected.records, cancel.was_interrupted()))
}

/// `--parallel`, `--env`, `--copy-dir` on top of the config file.
fn apply_overrides(config: &mut Config, args: &RunArgs) -> Result<()> {
    if let Some(p) = args.parallel {
        if p == 0 {
            return Err(Error::new("--parallel must be at least 1"));
        }
        config.offload.max_parallel = p;
    }
    for kv in &args.env {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(Error::new(format!("--env {kv:?}: expected KEY=VALUE")));
        };
        let env = match &mut config.provider {
            ProviderConfig::Local(c) => &mut c.env,
            ProviderConfig::Shell(c) => &mut c.env,
            ProviderConfig::Modal(c) => &mut c.env,
        };
        env.insert(k.to_string(), v.to_string());
    }
    for dir in &args.copy_dir {
        if !dir.contains(':') {
            return Err(Error::new(format!(
                "--copy-dir {dir:?}: expected LOCAL:REMOTE"
            )));
        }
        match &mut config.provider {
            ProviderConfig::Shell(c) => c.copy_dirs.push(dir.clone()),
            ProviderConfig::Modal(c) => c.copy_dirs.push(dir.clone()),
            ProviderConfig::Local(_) => {
                return Err(Error::new(
                    "--copy-dir needs a remote provider (type = \"default\" or \"modal\"); the local provider runs in place",
                ))
            }
        }
    }
    Ok(())
}

/// Ctrl-C: first press cancels gracefully, second kills at once, a third
/// leaves without waiting for anything.
fn install_interrupt_handler() -> Cancel {
    let cancel = Cancel::new();
    let c = cancel.clone();
    // On a terminal, erase the live status line first so the message stands alone.
    // SAFETY: isatty on a file descriptor number.
    let clear = if unsafe { libc::isatty(2) } == 1 {
        "\r\x1b[2K"
    } else {
        "\n"
    };
    let result = ctrlc::set_handler(move || {
        let before = c.level();
        match c.interrupt() {
            CancelLevel::Graceful => eprintln!(
                "{clear}Interrupted: stopping batches and destroying sandboxes (press Ctrl-C again to kill at once)"
            ),
            _ if before == CancelLevel::Immediate => std::process::exit(130),
            _ => eprintln!("{clear}Interrupted again: killing everything now"),
        }
    });
    if let Err(e) = result {
        eprintln!("warning: cannot install the Ctrl-C handler: {e}");
    }
    cancel
}

type BoxedProvider = Box<dyn crate::provider::Provider>;

/// `Provider::prepare` on its own thread, so an image builds while discovery
/// runs. Dropping it without [`Preparing::finish`] (an early return) cancels
/// the preparation and waits for it, so no build process outlives the run.
struct Preparing {
    handle: Option<
        std::thread::JoinHandle<std::result::Result<BoxedProvider, crate::provider::ProviderError>>,
    >,
    cancel: Cancel,
}

impl Preparing {
    fn start(mut provider: BoxedProvider, cancel: &Cancel, prepare: bool) -> Self {
        let c = cancel.clone();
        let handle = std::thread::spawn(move || {
            if prepare {
                provider.prepare(&c)?;
            }
            Ok(provider)
        });
        Preparing {
            handle: Some(handle),
            cancel: cancel.clone(),
        }
    }

    fn finish(mut self) -> Result<BoxedProvider> {
        let handle = self.handle.take().expect("finished once");
        match handle.join() {
            Ok(Ok(provider)) => Ok(provider),
            Ok(Err(e)) => Err(Error::new(e.to_string())),
            Err(_) => Err(Error::new(
                "preparing the sandboxes crashed (a bug in Offload; please report it)",
            )),
        }
    }
}

impl Drop for Preparing {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.cancel.raise(CancelLevel::Immediate);
            let _ = handle.join();
        }
    }
}

/// The run's scratch directory (batch result files); removed on drop.
struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    fn create(output_dir: &Path) -> Result<Self> {
        let path = output_dir.join(format!(".scratch-{}", std::process::id()));
        std::fs::create_dir_all(&path)
            .map_err(|e| io_error(format!("cannot create {}", path.display()), &e))?;
        Ok(ScratchDir { path })
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// What watches the run: console progress, the timeline page, and with
/// `--trace` the Chrome trace file. Progress comes first so that its status
/// line is cleared before anything else writes at the end.
fn reporters<'a>(
    verbose: bool,
    trace: bool,
    output_dir: &Path,
) -> Vec<Box<dyn crate::run::events::Reporter + 'a>> {
    use crate::report::{progress, timeline, trace as trace_file};
    let mut r: Vec<Box<dyn crate::run::events::Reporter + 'a>> = vec![
        Box::new(progress::ProgressReporter::new(verbose)),
        Box::new(timeline::reporter(output_dir)),
    ];
    if trace {
        r.push(Box::new(trace_file::reporter(output_dir)));
    }
    r
}
