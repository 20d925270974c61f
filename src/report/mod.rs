//! Every output of a run is a [`Reporter`] of the run's events
//! (`crate::events`): one file each, listed once in [`for_run`]. Also here:
//! the `logs` subcommand, which reads the merged report back.

pub mod batch_logs;
pub mod github;
pub mod json_stream;
pub mod junit_report;
pub mod logs_cmd;
pub mod progress;
pub mod spans;
pub mod step_summary;
pub mod summary;
pub mod timeline;
pub mod timing_history;
pub mod trace;

use std::path::PathBuf;

use crate::events::Reporter;

/// What decides which reporters a run has and where they write.
pub struct ReportOptions {
    /// `-v`: stream every batch's output.
    pub verbose: bool,
    /// `--trace`: also write `trace.json`.
    pub trace: bool,
    pub output_dir: PathBuf,
    /// `{output_dir}/{junit_file}`, or `None` with `[report] junit = false`.
    pub junit_path: Option<PathBuf>,
    /// `<config>.history.tsv`.
    pub history_path: PathBuf,
    /// How the framework's runner runs a batch's tests.
    pub execution: crate::history::Execution,
    /// How the framework's runner runs a batch's tests: how the timeline
    /// and the trace place each test inside its batch.
    pub test_order: spans::TestOrder,
    /// Inside a GitHub Actions job, unless `--no-ci-reports` or
    /// `[report] ci_reports = false`: annotations and the job summary.
    pub github: Option<github::GithubEnv>,
    /// `--message-format`.
    pub message_format: MessageFormat,
    /// What a run whose only problems are flaky tests exits with (the JSON
    /// stream's `run_finished` says the exit code).
    pub flaky_result: crate::config::FlakyResult,
}

/// `--message-format`: what goes to stdout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MessageFormat {
    /// The summary for people (default).
    #[default]
    Human,
    /// The event stream, one JSON object per line (`json_stream.rs`); the
    /// summary and the GitHub annotations go to stderr.
    Json,
}

impl MessageFormat {
    pub const CHOICES: &'static [&'static str] = &["human", "json"];

    pub fn parse(value: &str) -> Option<MessageFormat> {
        match value {
            "human" => Some(MessageFormat::Human),
            "json" => Some(MessageFormat::Json),
            _ => None,
        }
    }
}

/// The reporters of a run, in the order they hear each event: progress
/// first (its status line is erased before anything else prints at the
/// end), the summary after every report (it names the reports that could
/// not be written), the JSON stream last (its last line says the exit code,
/// unwritten reports counted).
pub fn for_run<'a>(o: &ReportOptions) -> Vec<Box<dyn Reporter + 'a>> {
    let logs_dir = o.output_dir.join("logs");
    let mut reporters: Vec<Box<dyn Reporter + 'a>> = vec![
        Box::new(progress::ProgressReporter::new(o.verbose)),
        Box::new(batch_logs::BatchLogsReporter::new(&logs_dir)),
        Box::new(timing_history::TimingHistoryReporter::new(
            &o.history_path,
            o.execution,
        )),
        Box::new(timeline::reporter(&o.output_dir, o.test_order)),
    ];
    if let Some(junit) = &o.junit_path {
        reporters.push(Box::new(junit_report::JunitReporter::new(junit)));
    }
    if o.trace {
        reporters.push(Box::new(trace::reporter(&o.output_dir, o.test_order)));
    }
    let json = o.message_format == MessageFormat::Json;
    if let Some(env) = &o.github {
        reporters.push(Box::new(github::AnnotationsReporter::new(env, json)));
        if let Some(path) = &env.step_summary {
            reporters.push(Box::new(step_summary::StepSummaryReporter::new(path)));
        }
    }
    reporters.push(Box::new(summary::SummaryReporter::new(
        o.junit_path.as_deref(),
        &logs_dir,
        json,
    )));
    if json {
        reporters.push(Box::new(json_stream::JsonStreamReporter::new(
            o.flaky_result,
        )));
    }
    reporters
}
