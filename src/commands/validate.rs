//! `offload validate`: load the config (warnings go to stderr) and print a
//! summary of its settings to stdout. `--strict` makes unknown keys errors;
//! without it they are warnings, and the summary says they are ignored.
use std::fmt::Write as _;
use std::path::Path;

use crate::cli::ValidateArgs;
use crate::config::{Config, FrameworkConfig, ProviderConfig, UnknownKeys};
use crate::error::{Error, Result};
use crate::Verdict;

pub fn validate(config: &Path, args: &ValidateArgs) -> Result<Verdict> {
    let loaded = if args.strict {
        crate::config::load_strict(config).map_err(|e| Error::new(e.to_string()))?
    } else {
        crate::config::load(config).map_err(|e| Error::new(e.to_string()))?
    };
    for w in &loaded.warnings {
        crate::console::errln!("warning: {w}");
    }
    crate::console::outln!(
        "{}",
        summary(&loaded.config, &loaded.unknown_keys).trim_end()
    );
    Ok(Verdict::Success)
}

/// The first line: valid, or valid with keys that are ignored.
fn verdict_line(unknown_keys: &[String]) -> String {
    match unknown_keys {
        [] => "Configuration is valid!".to_string(),
        keys => {
            let names: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
            format!(
                "Configuration is valid, but {} ignored: {} (see the warnings; \
                 `offload validate --strict` makes unknown keys errors).",
                if keys.len() == 1 {
                    "1 unknown key is".to_string()
                } else {
                    format!("{} unknown keys are", keys.len())
                },
                names.join(", ")
            )
        }
    }
}

/// The settings a user wants to check, defaults and resolved paths included.
/// Environment values are not shown: they may hold secrets from `${VAR}`.
fn summary(config: &Config, unknown_keys: &[String]) -> String {
    let mut out = String::new();
    let o = &config.offload;
    let _ = writeln!(out, "{}\n", verdict_line(unknown_keys));
    let _ = writeln!(out, "Settings ({}):", config.path.display());
    let _ = writeln!(out, "  Max parallel: {}", o.max_parallel);
    let _ = writeln!(out, "  Test timeout: {}s", o.test_timeout_secs);
    let _ = writeln!(
        out,
        "  Working dir: {}",
        config.local_working_dir().display()
    );
    let _ = writeln!(
        out,
        "  Project root (OFFLOAD_ROOT): {}",
        config.project_root()
    );
    if let Some(cmd) = &o.sandbox_init_cmd {
        let _ = writeln!(out, "  Sandbox init cmd: {cmd}");
    }
    if o.unknown_keys == UnknownKeys::Error {
        let _ = writeln!(out, "  Unknown keys: errors");
    }

    let _ = writeln!(out, "\nProvider: {}", config.provider.type_name());
    match &config.provider {
        ProviderConfig::Local(p) => {
            let _ = writeln!(out, "  Shell: {}", p.shell);
        }
        ProviderConfig::Shell(p) => {
            for (name, value) in [
                ("Prepare", &p.prepare_command),
                ("Create", &Some(p.create_command.clone())),
                ("Exec", &Some(p.exec_command.clone())),
                ("Destroy", &Some(p.destroy_command.clone())),
                ("Download", &p.download_command),
            ] {
                if let Some(command) = value {
                    let _ = writeln!(out, "  {name} command: {command}");
                }
            }
            if let Some(dir) = &p.working_dir {
                let _ = writeln!(out, "  Working dir: {}", dir.display());
            }
            let _ = writeln!(out, "  Command timeout: {}s", p.timeout_secs);
            list(&mut out, "Copy dirs", &p.copy_dirs);
        }
        ProviderConfig::Modal(p) => {
            if let Some(dockerfile) = &p.dockerfile {
                let _ = writeln!(out, "  Dockerfile: {dockerfile}");
            }
            let _ = writeln!(out, "  Include cwd: {}", p.include_cwd);
            list(&mut out, "Copy dirs", &p.copy_dirs);
        }
    }
    let env: Vec<String> = config.provider_env().keys().cloned().collect();
    list(&mut out, "Env", &env);

    let _ = writeln!(out, "\nFramework: {}", config.framework.type_name());
    match &config.framework {
        FrameworkConfig::Pytest(f) => {
            if f.paths.is_empty() {
                let _ = writeln!(
                    out,
                    "  Paths: none (pytest chooses: its testpaths, else the whole project)"
                );
            }
            list(&mut out, "Paths", &f.paths);
            match &f.command {
                Some(command) => {
                    let _ = writeln!(out, "  Command: {command}");
                }
                None => {
                    let _ = writeln!(out, "  Python (legacy): {}", f.python);
                    list(&mut out, "Extra args (legacy)", &f.extra_args);
                }
            }
            if let Some(args) = &f.run_args {
                let _ = writeln!(out, "  Run args: {args}");
            }
            if let Some(markers) = &f.markers {
                let _ = writeln!(out, "  Markers (legacy): {markers}");
            }
        }
        FrameworkConfig::Cargo(f) => {
            if let Some(package) = &f.package {
                let _ = writeln!(out, "  Package: {package}");
            }
            if let Some(bin) = &f.bin {
                let _ = writeln!(out, "  Bin: {bin}");
            }
            list(&mut out, "Features", &f.features);
            if f.include_ignored {
                let _ = writeln!(out, "  Include ignored: true");
            }
        }
        FrameworkConfig::Default(f) => {
            let _ = writeln!(out, "  Discover command: {}", f.discover_command);
            let _ = writeln!(out, "  Run command: {}", f.run_command);
            let _ = writeln!(out, "  Test ID format: {}", f.test_id_format);
            match &f.result_file {
                Some(file) => {
                    let _ = writeln!(out, "  Result file: {file}");
                }
                None if !f.run_command.contains("{result_file}") => {
                    let _ = writeln!(
                        out,
                        "  Results: exit code only (no result_file or {{result_file}})"
                    );
                }
                None => {}
            }
        }
    }

    let _ = writeln!(out, "\nGroups:");
    for g in &config.groups {
        let _ = writeln!(
            out,
            "  {}: retry_count = {}, filters = {:?}",
            g.name, g.retry_count, g.filters
        );
    }

    let r = &config.report;
    let _ = writeln!(out, "\nReport:");
    let _ = writeln!(out, "  Output dir: {}", r.output_dir.display());
    if r.junit {
        let _ = writeln!(out, "  JUnit: {}", r.junit_path().display());
    } else {
        let _ = writeln!(out, "  JUnit: off");
    }
    let _ = writeln!(out, "  Batch logs: {}", r.output_dir.join("logs").display());
    if !r.ci_reports {
        let _ = writeln!(out, "  CI reports: off ([report] ci_reports = false)");
    }
    out
}

/// `  Name: a, b` for a non-empty list.
fn list(out: &mut String, name: &str, items: &[impl std::fmt::Display]) {
    if !items.is_empty() {
        let items: Vec<String> = items.iter().map(ToString::to_string).collect();
        let _ = writeln!(out, "  {name}: {}", items.join(", "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_shows_settings_groups_and_paths() {
        let text = r#"
[offload]
max_parallel = 4
test_timeout_secs = 300

[provider]
type = "local"
env = { TOKEN = "x" }

[framework]
type = "default"
discover_command = "./list {filters}"
run_command = "./run --junit {result_file} {tests}"
test_id_format = "{name}"

[groups.unit]
retry_count = 2
filters = "-m 'not slow'"

[groups.all]
"#;
        let loaded = crate::config::parse_str(text, Path::new("/proj/offload.toml")).unwrap();
        let out = summary(&loaded.config, &loaded.unknown_keys);
        let expected = "\
Configuration is valid!

Settings (/proj/offload.toml):
  Max parallel: 4
  Test timeout: 300s
  Working dir: /proj
  Project root (OFFLOAD_ROOT): /proj

Provider: local
  Shell: /bin/sh
  Env: TOKEN

Framework: default
  Discover command: ./list {filters}
  Run command: ./run --junit {result_file} {tests}
  Test ID format: {name}

Groups:
  unit: retry_count = 2, filters = \"-m 'not slow'\"
  all: retry_count = 0, filters = \"\"

Report:
  Output dir: /proj/test-results
  JUnit: /proj/test-results/junit.xml
  Batch logs: /proj/test-results/logs
";
        assert_eq!(out, expected);
    }

    #[test]
    fn unknown_keys_are_named_as_ignored_in_the_first_line() {
        assert_eq!(verdict_line(&[]), "Configuration is valid!");
        assert_eq!(
            verdict_line(&["offload.retry_cont".into()]),
            "Configuration is valid, but 1 unknown key is ignored: `offload.retry_cont` (see the \
             warnings; `offload validate --strict` makes unknown keys errors)."
        );
        assert!(verdict_line(&["a".into(), "b".into()])
            .starts_with("Configuration is valid, but 2 unknown keys are ignored: `a`, `b` ("));
    }
}
