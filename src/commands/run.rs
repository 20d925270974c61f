//! `offload run`: discover, schedule, execute, report.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::cancel::{Cancel, CancelLevel};
use crate::cli::RunArgs;
use crate::config::{Config, CopyDir, ProviderConfig};
use crate::error::{io_error, Error, Result};
use crate::events::Reporters;
use crate::history::{self, History};
use crate::report::ReportOptions;
use crate::run::{ExecuteOptions, Session};
use crate::Verdict;

pub fn run(config_path: &Path, verbose: bool, args: &RunArgs) -> Result<Verdict> {
    let mut config = super::load_config(config_path)?;
    apply_overrides(&mut config, args)?;
    let cancel = install_interrupt_handler();
    // Grandchildren that daemonize out of their batch's process group come
    // back to us, so that nothing the run started outlives it; and should
    // Offload be killed, a watchdog stops every process group it started.
    crate::process::become_subreaper();
    let _watchdog = crate::process::supervisor::start();
    let framework: Arc<dyn crate::framework::Framework> =
        Arc::from(crate::framework::from_config(&config)?);

    let output_dir = config.report.output_dir.clone();
    // An output directory that cannot be made (a full disk) is not a reason
    // not to run: each report that cannot be written is named at the end.
    let output_dir_error = std::fs::create_dir_all(&output_dir).err();
    let junit_path = config.report.junit_path();
    let history_path = history::path_for(&config);
    let reporters = crate::report::for_run(&ReportOptions {
        verbose,
        trace: args.trace,
        output_dir: output_dir.clone(),
        junit_path: config.report.junit.then(|| junit_path.clone()),
        history_path: history_path.clone(),
        execution: if framework.runs_tests_side_by_side() {
            history::Execution::SideBySide
        } else {
            history::Execution::Sequential
        },
        test_order: crate::report::spans::TestOrder::of(&config.framework),
        github: (config.report.ci_reports && !args.no_ci_reports)
            .then(|| {
                crate::report::github::GithubEnv::detect(
                    |k| std::env::var(k).ok(),
                    &config.local_working_dir(),
                )
            })
            .flatten(),
        message_format: args.message_format.unwrap_or_default(),
        flaky_result: config.offload.flaky_result,
    });
    let mut session = Session::new(&cancel, Reporters::new(reporters));

    // The provider is built (and its config checked) before discovery, and
    // prepared (an image built) while discovery runs.
    if let Some(e) = output_dir_error {
        session.emit(&crate::events::Event::Warning {
            message: &io_error(
                format!(
                    "cannot create the output directory {}",
                    output_dir.display()
                ),
                &e,
            )
            .to_string(),
        });
    }
    let (scratch, elsewhere) =
        crate::leftovers::ScratchDir::create_anywhere(&output_dir, "scratch")?;
    if let Some(why) = elsewhere {
        session.emit(&crate::events::Event::Warning { message: &why });
    }
    let provider = crate::provider::from_config(
        &config,
        &crate::provider::ProviderOptions {
            no_cache: args.no_cache,
            scratch_dir: scratch.path.clone(),
            notices: session.notices(),
        },
    )?;
    crate::leftovers::clean_after_killed_runs(&output_dir, provider.as_ref(), &session.notices());
    let preparing = session.start_preparing(provider, !args.collect_only);

    // `--collect-only` is discovery itself: always afresh, never stored.
    let discovery_cache = (config.offload.reuse_discovery && !args.collect_only).then(|| {
        crate::discover::cache::CacheLocation {
            path: crate::discover::cache::path_for(&output_dir, &config.path),
            base: config.local_working_dir(),
            ignore: vec![
                output_dir.clone(),
                history_path.clone(),
                config.path.clone(),
            ],
        }
    });
    let cache = discovery_cache.as_ref().map(|c| c.open(args.rediscover));
    let mut table = match session.discover(&framework, &config.groups, cache, verbose) {
        Ok(t) => t,
        Err(_) if cancel.was_interrupted() => {
            drop(session);
            crate::console::errln!("interrupted during discovery");
            return Ok(Verdict::Interrupted);
        }
        Err(e) => return Err(e),
    };
    // Read once: the shard split uses the file alone (what every CI job
    // sees alike), the plan adds the last report's durations.
    let history = History::from_file(&history_path);
    if let Some(shard) = args.shard {
        let keep = crate::schedule::shard::select(&table, &history, shard);
        let all = table.tests.len();
        table.retain(&keep);
        session.emit(&crate::events::Event::Notice {
            message: &format!(
                "shard {shard}: {} of the {all} discovered tests",
                table.tests.len()
            ),
        });
    }
    if args.failed {
        match last_problems(&junit_path) {
            Ok(ids) => {
                let keep: Vec<bool> = table
                    .tests
                    .iter()
                    .map(|t| ids.contains(crate::junit::id::normalize(&t.id).as_ref()))
                    .collect();
                table.retain(&keep);
                if table.tests.is_empty() {
                    drop(session);
                    crate::console::errln!(
                        "--failed: nothing to re-run: no test failed, errored or was left not run in {}",
                        junit_path.display()
                    );
                    return Ok(Verdict::Success);
                }
                session.emit(&crate::events::Event::Notice {
                    message: &format!(
                        "--failed: re-running the {} tests that failed, errored or were not run in {}",
                        table.tests.len(),
                        junit_path.display()
                    ),
                });
            }
            Err(why) => {
                drop(session);
                crate::console::errln!("--failed: {why}; run `offload run` first");
                return Ok(Verdict::Success);
            }
        }
    }
    if args.collect_only {
        super::collect::print_text(&table);
        return Ok(Verdict::Success);
    }
    if table.tests.is_empty() {
        // The same words as `offload doctor`'s check, from the framework.
        return Err(Error::new(format!(
            "no tests found in any group; {}",
            framework.hints().no_tests_fix
        )));
    }
    let parallelism = config.offload.max_parallel.max(1);
    let plan = {
        // Dropped once the plan is made: the run does not need it.
        let history =
            history.with_last_report(&junit_path, table.tests.iter().map(|t| t.id.as_str()));
        let timeout = Duration::from_secs(config.offload.test_timeout_secs);
        crate::run::timing::plan(
            &mut table,
            &history,
            parallelism,
            timeout,
            framework.as_ref(),
        )
    };
    let provider = match session.wait_prepared(preparing) {
        Ok(provider) => provider,
        Err(e) if cancel.was_interrupted() => {
            drop(session);
            crate::console::errln!("interrupted while preparing the sandboxes: {e}");
            return Ok(Verdict::Interrupted);
        }
        Err(e) => return Err(Error::new(e.to_string())),
    };
    let stats = session.execute(
        &table,
        plan.batches,
        framework,
        Arc::from(provider),
        ExecuteOptions {
            parallelism,
            timeout: Duration::from_secs(config.offload.test_timeout_secs),
            fail_fast: args.fail_fast,
            stream_output: verbose,
            scratch_dir: scratch.path.clone(),
            env: config.batch_env(),
            batch_startup: plan.batch_startup,
            expected_wall: plan.expected_wall,
            known_durations: plan.known_durations,
            provider: config.provider.type_name(),
            discovery_cache,
        },
    )?;
    drop(scratch);
    crate::process::kill_orphans();
    Ok(stats.verdict(config.offload.flaky_result))
}

/// The IDs (in their normal form, see `junit::id`) of the tests that
/// failed, errored or were not run in the report at `path` (`--failed`).
fn last_problems(path: &Path) -> std::result::Result<rustc_hash::FxHashSet<String>, String> {
    let file = std::fs::File::open(path).map_err(|e| {
        format!(
            "no last report at {}: {}",
            path.display(),
            crate::error::io_message(&e)
        )
    })?;
    let cases = crate::junit::read::parse_reader(std::io::BufReader::new(file))
        .map_err(|e| format!("cannot read the last report {}: {e}", path.display()))?;
    Ok(cases
        .into_iter()
        .filter(|c| {
            matches!(
                c.outcome,
                crate::model::Outcome::Failed | crate::model::Outcome::Error
            )
        })
        .map(|c| crate::junit::id::normalize(&c.name).into_owned())
        .collect())
}

/// `--parallel`, `--env`, `--copy-dir` on top of the config file.
fn apply_overrides(config: &mut Config, args: &RunArgs) -> Result<()> {
    if args.collect_only && args.message_format == Some(crate::report::MessageFormat::Json) {
        // Its stdout is the list of tests, not an event stream.
        return Err(Error::new(
            "--collect-only prints the tests, not events: for JSON, use `offload collect -f json`",
        ));
    }
    if let Some(f) = args.flaky_result {
        config.offload.flaky_result = f;
    }
    if let Some(shard) = args.shard {
        // Each shard's own report, beside the others' when they are
        // gathered in one place: junit-shard-2-of-4.xml.
        config.report.junit_file = shard.tag_file_name(&config.report.junit_file);
    }
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
    for spec in &args.copy_dir {
        let dir = CopyDir::parse(spec).map_err(|e| Error::new(format!("--copy-dir: {e}")))?;
        match &mut config.provider {
            ProviderConfig::Shell(c) => c.copy_dirs.push(dir),
            ProviderConfig::Modal(c) => c.copy_dirs.push(dir),
            ProviderConfig::Local(_) => {
                return Err(Error::new(
                    "--copy-dir needs a remote provider (type = \"default\" or \"modal\"); the local provider runs in place",
                ))
            }
        }
    }
    Ok(())
}

/// Ctrl-C: the first press cancels gracefully, the second kills at once (the
/// run says so as it sees the level rise), a third leaves without waiting
/// for anything.
fn install_interrupt_handler() -> Cancel {
    let cancel = Cancel::new();
    let c = cancel.clone();
    let result = ctrlc::set_handler(move || {
        let before = c.level();
        c.interrupt();
        if before == CancelLevel::Immediate {
            std::process::exit(i32::from(Verdict::Interrupted.exit_code()));
        }
    });
    if let Err(e) = result {
        crate::console::errln!("warning: cannot install the Ctrl-C handler: {e}");
    }
    cancel
}
