//! Walks the parsed TOML document section by section and builds a [`Config`]:
//! types checked, `${VAR}` expanded, defaults filled in, rules applied,
//! unknown keys reported as warnings (`mod.rs` makes them errors when
//! `[offload] unknown_keys = "error"` or `validate --strict` says so).

use std::path::PathBuf;

use super::read::Section;
use super::validate;
use super::*;

const TOP_LEVEL_KEYS: &[&str] = &["offload", "provider", "framework", "groups", "report"];

const OFFLOAD_KEYS: &[&str] = &[
    "max_parallel",
    "test_timeout_secs",
    "working_dir",
    "sandbox_project_root",
    "sandbox_init_cmd",
    "unknown_keys",
    "stream_output",
    "reuse_discovery",
    "flaky_result",
];

const PROVIDER_TYPES: &[&str] = &["local", "default", "modal"];
const LOCAL_KEYS: &[&str] = &["type", "working_dir", "env", "shell"];
const SHELL_KEYS: &[&str] = &[
    "type",
    "prepare_command",
    "create_command",
    "exec_command",
    "destroy_command",
    "download_command",
    "working_dir",
    "timeout_secs",
    "copy_dirs",
    "env",
];
const MODAL_KEYS: &[&str] = &["type", "dockerfile", "include_cwd", "copy_dirs", "env"];

const FRAMEWORK_TYPES: &[&str] = &["pytest", "cargo", "nextest", "default"];
const PYTEST_KEYS: &[&str] = &[
    "type",
    "paths",
    "command",
    "run_args",
    "extra_args",
    "python",
    "markers",
    "test_id_format",
];
const CARGO_KEYS: &[&str] = &[
    "type",
    "package",
    "features",
    "bin",
    "include_ignored",
    "test_id_format",
];
const DEFAULT_FRAMEWORK_KEYS: &[&str] = &[
    "type",
    "discover_command",
    "run_command",
    "result_file",
    "working_dir",
    "test_id_format",
    "discovery_inputs",
];

const GROUP_KEYS: &[&str] = &["retry_count", "filters"];
const REPORT_KEYS: &[&str] = &["output_dir", "junit", "junit_file", "ci_reports"];

/// Every table and its keys, to tell a user where a misplaced key belongs.
const PLACES: &[(&str, &[&str])] = &[
    ("[offload]", OFFLOAD_KEYS),
    ("[provider] type = \"local\"", LOCAL_KEYS),
    ("[provider] type = \"default\"", SHELL_KEYS),
    ("[provider] type = \"modal\"", MODAL_KEYS),
    ("[framework] type = \"pytest\"", PYTEST_KEYS),
    ("[framework] type = \"cargo\"", CARGO_KEYS),
    ("[framework] type = \"default\"", DEFAULT_FRAMEWORK_KEYS),
    ("[groups.NAME]", GROUP_KEYS),
    ("[report]", REPORT_KEYS),
];

/// Warn about the keys of `s` that are not keys of the table `here` (one of
/// [`PLACES`], or the root when `here` is empty).
fn warn_unknown(s: &Section, here: &str) {
    let known = PLACES
        .iter()
        .find(|(place, _)| *place == here)
        .map_or(TOP_LEVEL_KEYS, |(_, keys)| *keys);
    let elsewhere: Vec<(&str, &[&str])> = PLACES
        .iter()
        .filter(|(place, _)| *place != here)
        .copied()
        .collect();
    s.warn_unknown(known, &elsewhere);
}

/// Build the configuration from the document's root table.
pub(super) fn config(root: &Section, path: PathBuf) -> Result<Config, ConfigError> {
    warn_unknown(root, "");
    let offload_section = root.section("offload")?;
    let provider_section = required_section(root, "provider", "[provider]\ntype = \"local\"")?;
    let framework_section = required_section(root, "framework", "[framework]\ntype = \"default\"")?;

    let offload = offload(offload_section.as_ref())?;
    let provider = provider(&provider_section)?;
    if !matches!(provider, ProviderConfig::Local(_)) && offload.sandbox_project_root.is_none() {
        let message = format!(
            "missing; required with provider type \"{}\" (the project's directory inside the \
             sandbox, exported as OFFLOAD_ROOT), e.g. sandbox_project_root = \"/app\"",
            provider.type_name()
        );
        return Err(match &offload_section {
            Some(section) => section.missing("sandbox_project_root", message),
            None => root.missing("[offload] sandbox_project_root", message),
        });
    }
    let framework = framework(&framework_section)?;
    let groups = groups(root)?;
    let report = match root.section("report")? {
        Some(section) => report(&section)?,
        None => ReportConfig {
            output_dir: root.resolve("test-results"),
            junit: true,
            junit_file: "junit.xml".to_string(),
            ci_reports: true,
        },
    };
    Ok(Config {
        path,
        offload,
        provider,
        framework,
        groups,
        report,
    })
}

fn required_section<'a>(
    root: &Section<'a>,
    key: &str,
    example: &str,
) -> Result<Section<'a>, ConfigError> {
    root.section(key)?.ok_or_else(|| {
        root.missing(
            &format!("[{key}]"),
            format!("missing section; add e.g.:\n{example}"),
        )
    })
}

/// `[offload]`; every field has a default, so the section may be absent.
fn offload(section: Option<&Section>) -> Result<OffloadSection, ConfigError> {
    let Some(s) = section else {
        return Ok(OffloadSection {
            max_parallel: 10,
            test_timeout_secs: 900,
            working_dir: None,
            sandbox_project_root: None,
            sandbox_init_cmd: None,
            reuse_discovery: true,
            unknown_keys: UnknownKeys::Warn,
            flaky_result: FlakyResult::Exit2,
        });
    };
    warn_unknown(s, "[offload]");
    if s.bool("stream_output")?.is_some() {
        s.warn(
            "stream_output",
            "does nothing and can be removed: batch output always goes to \
             {output_dir}/logs, and -v streams it to the console",
        );
    }
    let sandbox_project_root = s.string("sandbox_project_root")?;
    if sandbox_project_root
        .as_deref()
        .is_some_and(|r| r.trim().is_empty())
    {
        return Err(s.error_at(
            s.span_of("sandbox_project_root"),
            "sandbox_project_root",
            "must not be empty; e.g. sandbox_project_root = \"/app\"",
        ));
    }
    Ok(OffloadSection {
        max_parallel: to_usize(s.uint("max_parallel", 1)?.unwrap_or(10)),
        test_timeout_secs: s.uint("test_timeout_secs", 1)?.unwrap_or(900),
        working_dir: s.path("working_dir")?,
        sandbox_project_root,
        sandbox_init_cmd: s.string("sandbox_init_cmd")?,
        reuse_discovery: s.bool("reuse_discovery")?.unwrap_or(true),
        unknown_keys: match s.choice("unknown_keys", &["warn", "error"])?.as_deref() {
            Some("error") => UnknownKeys::Error,
            _ => UnknownKeys::Warn,
        },
        flaky_result: s
            .choice("flaky_result", &FlakyResult::CHOICES)?
            .as_deref()
            .and_then(FlakyResult::parse)
            .unwrap_or_default(),
    })
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// `[provider]`, selected by `type`.
fn provider(s: &Section) -> Result<ProviderConfig, ConfigError> {
    let tag = s.tag("provider", PROVIDER_TYPES, "local")?;
    let env = s.string_map("env")?.unwrap_or_default();
    Ok(match tag.as_str() {
        "local" => {
            warn_unknown(s, "[provider] type = \"local\"");
            ProviderConfig::Local(LocalProviderConfig {
                working_dir: s.path("working_dir")?,
                env,
                shell: match s.string("shell")? {
                    Some(shell) if shell.trim().is_empty() => {
                        return Err(s.error_at(
                            s.span_of("shell"),
                            "shell",
                            "must not be empty; leave it out to use /bin/sh",
                        ))
                    }
                    Some(shell) => shell,
                    None => "/bin/sh".to_string(),
                },
            })
        }
        "default" => {
            warn_unknown(s, "[provider] type = \"default\"");
            let required = |key: &str, why: &str, example: &str| {
                s.required_string(
                    key,
                    &format!("required for provider type \"default\" ({why})"),
                    example,
                )
            };
            let create_command = required(
                "create_command",
                "creates a sandbox and prints its ID",
                "\"my-sandbox create {image_id}\"",
            )?;
            let exec_command = required(
                "exec_command",
                "runs a command in a sandbox",
                "\"my-sandbox exec {sandbox_id} {command}\"",
            )?;
            check(s, "exec_command", validate::exec_command(&exec_command))?;
            let destroy_command = required(
                "destroy_command",
                "destroys a sandbox",
                "\"my-sandbox destroy {sandbox_id}\"",
            )?;
            let download_command = s.string("download_command")?;
            if let Some(command) = &download_command {
                check(s, "download_command", validate::download_command(command))?;
            }
            let prepare_command = s.string("prepare_command")?;
            // `@name.ext` must name a bundled script (crate::bundled).
            for (key, command) in [
                ("prepare_command", prepare_command.as_deref()),
                ("create_command", Some(create_command.as_str())),
                ("exec_command", Some(exec_command.as_str())),
                ("download_command", download_command.as_deref()),
                ("destroy_command", Some(destroy_command.as_str())),
            ] {
                if let Some(command) = command {
                    check(s, key, crate::bundled::check(command))?;
                }
            }
            ProviderConfig::Shell(ShellProviderConfig {
                prepare_command,
                create_command,
                exec_command,
                destroy_command,
                download_command,
                working_dir: s.path("working_dir")?,
                timeout_secs: s.uint("timeout_secs", 1)?.unwrap_or(3600),
                copy_dirs: copy_dirs(s)?,
                env,
            })
        }
        _ => {
            warn_unknown(s, "[provider] type = \"modal\"");
            ProviderConfig::Modal(ModalProviderConfig {
                dockerfile: s.string("dockerfile")?,
                include_cwd: s.bool("include_cwd")?.unwrap_or(false),
                copy_dirs: copy_dirs(s)?,
                env,
            })
        }
    })
}

fn copy_dirs(s: &Section) -> Result<Vec<CopyDir>, ConfigError> {
    let dirs = s.string_list("copy_dirs")?.unwrap_or_default();
    dirs.iter()
        .enumerate()
        .map(|(i, dir)| {
            CopyDir::parse(dir).map_err(|m| {
                s.error_at(
                    s.span_of_element("copy_dirs", i),
                    &format!("copy_dirs[{i}]"),
                    m,
                )
            })
        })
        .collect()
}

/// Turn a rule's verdict into an error located at `key`'s value.
fn check(s: &Section, key: &str, verdict: Result<(), String>) -> Result<(), ConfigError> {
    verdict.map_err(|message| s.error_at(s.span_of(key), key, message))
}

/// `[framework]`, selected by `type` (`nextest` is `cargo`).
fn framework(s: &Section) -> Result<FrameworkConfig, ConfigError> {
    let tag = s.tag("framework", FRAMEWORK_TYPES, "pytest")?;
    Ok(match tag.as_str() {
        "pytest" => {
            warn_unknown(s, "[framework] type = \"pytest\"");
            fixed_test_id_format(s, "pytest", "{name}")?;
            let command = s.string("command")?;
            if command.as_deref().is_some_and(|c| c.trim().is_empty()) {
                return Err(s.error_at(
                    s.span_of("command"),
                    "command",
                    "must not be empty; e.g. command = \"uv run pytest\"",
                ));
            }
            if command.is_some() {
                for legacy in ["python", "extra_args"] {
                    if s.contains(legacy) {
                        s.warn(legacy, "ignored because `command` is set (legacy setting)");
                    }
                }
            }
            FrameworkConfig::Pytest(PytestConfig {
                paths: s
                    .string_list("paths")?
                    .unwrap_or_else(|| vec!["tests".to_string()]),
                command,
                run_args: s.string("run_args")?,
                extra_args: s.string_list("extra_args")?.unwrap_or_default(),
                python: match s.string("python")? {
                    Some(p) if p.trim().is_empty() => {
                        return Err(s.error_at(
                            s.span_of("python"),
                            "python",
                            "must not be empty; e.g. python = \"python3\"",
                        ))
                    }
                    Some(p) => p,
                    None => "python".to_string(),
                },
                markers: s.string("markers")?,
            })
        }
        "cargo" | "nextest" => {
            warn_unknown(s, "[framework] type = \"cargo\"");
            fixed_test_id_format(s, "cargo", "{classname} {name}")?;
            FrameworkConfig::Cargo(CargoConfig {
                package: s.string("package")?,
                features: s.string_list("features")?.unwrap_or_default(),
                bin: s.string("bin")?,
                include_ignored: s.bool("include_ignored")?.unwrap_or(false),
            })
        }
        _ => {
            warn_unknown(s, "[framework] type = \"default\"");
            let required = |key: &str, why: &str, example: &str| {
                s.required_string(
                    key,
                    &format!("required for framework type \"default\" ({why})"),
                    example,
                )
            };
            let discover_command = required(
                "discover_command",
                "prints one test ID per line",
                "\"./list-tests {filters}\"",
            )?;
            check(
                s,
                "discover_command",
                validate::discover_command(&discover_command),
            )?;
            let run_command = required(
                "run_command",
                "runs a batch of tests",
                "\"./run-tests --junit {result_file} {tests}\"",
            )?;
            check(s, "run_command", validate::run_command(&run_command))?;
            let test_id_format = required(
                "test_id_format",
                "how JUnit name and classname form a test ID",
                "\"{classname} {name}\"",
            )?;
            check(
                s,
                "test_id_format",
                validate::test_id_format(&test_id_format),
            )?;
            FrameworkConfig::Default(DefaultFrameworkConfig {
                discover_command,
                run_command,
                result_file: s.string("result_file")?,
                working_dir: s.path("working_dir")?,
                test_id_format,
                discovery_inputs: s.string_list("discovery_inputs")?,
            })
        }
    })
}

/// pytest and cargo build test IDs themselves; an older config may still
/// carry `test_id_format`, which is fine when it says what Offload does anyway.
fn fixed_test_id_format(s: &Section, framework: &str, fixed: &str) -> Result<(), ConfigError> {
    if let Some(format) = s.string("test_id_format")? {
        if format != fixed {
            s.warn(
                "test_id_format",
                &format!(
                    "ignored: the {framework} framework matches results to discovered test IDs \
                     itself (it always behaves as \"{fixed}\")"
                ),
            );
        }
    }
    Ok(())
}

/// `[groups.NAME]`, in file order; at least one.
fn groups(root: &Section) -> Result<Vec<GroupConfig>, ConfigError> {
    let Some(groups) = root.section("groups")? else {
        return Err(root.missing("[groups]", validate::NO_GROUPS));
    };
    if groups.is_empty() {
        return Err(root.error_at(root.span_of("groups"), "[groups]", validate::NO_GROUPS));
    }
    groups
        .sections()?
        .iter()
        .map(|g| {
            warn_unknown(g, "[groups.NAME]");
            Ok(GroupConfig {
                name: g.name().to_string(),
                retry_count: g.uint32("retry_count")?.unwrap_or(0),
                filters: g.string("filters")?.unwrap_or_default(),
            })
        })
        .collect()
}

/// `[report]`
fn report(s: &Section) -> Result<ReportConfig, ConfigError> {
    warn_unknown(s, "[report]");
    let junit_file = s
        .string("junit_file")?
        .unwrap_or_else(|| "junit.xml".to_string());
    if junit_file.trim().is_empty() {
        return Err(s.error_at(
            s.span_of("junit_file"),
            "junit_file",
            "must not be empty; e.g. junit_file = \"junit.xml\"",
        ));
    }
    Ok(ReportConfig {
        output_dir: match s.path("output_dir")? {
            Some(dir) => dir,
            None => s.resolve("test-results"),
        },
        junit: s.bool("junit")?.unwrap_or(true),
        junit_file,
        ci_reports: s.bool("ci_reports")?.unwrap_or(true),
    })
}
