//! The `modal` provider: generates `default`-provider commands around the
//! bundled `@modal_sandbox.py` script (run with `uv run`, which installs the
//! Modal SDK from the script's inline metadata).

use super::ProviderOptions;
use crate::config::{Config, ModalProviderConfig, ShellProviderConfig};
use crate::error::{Error, Result};
use crate::process::shell_quote;

/// How `modal_sandbox.py` is invoked.
const SCRIPT: &str = "uv run @modal_sandbox.py";

/// Lifecycle timeout: an image build from a Dockerfile can take a while.
const TIMEOUT_SECS: u64 = 3600;

/// The shell-provider configuration equivalent to a `[provider] type = "modal"`.
/// Copy dirs and `sandbox_init_cmd` are appended to the prepare command by the
/// shell provider itself; `--no-cache` reaches the script as
/// `OFFLOAD_NO_CACHE=1` in prepare's environment.
pub fn shell_config(
    modal: &ModalProviderConfig,
    config: &Config,
    _options: &ProviderOptions,
) -> Result<ShellProviderConfig> {
    let root = config
        .offload
        .sandbox_project_root
        .as_deref()
        .ok_or_else(|| {
            Error::new(
            "[offload] sandbox_project_root is required with the modal provider: the directory \
             inside the sandbox where the project lives (e.g. \"/app\")",
        )
        })?;
    if !root.starts_with('/') {
        return Err(Error::new(format!(
            "[offload] sandbox_project_root = {root:?}: the modal provider needs an absolute path such as \"/app\""
        )));
    }
    let mut prepare = format!("{SCRIPT} prepare");
    if let Some(dockerfile) = &modal.dockerfile {
        prepare.push(' ');
        prepare.push_str(&shell_quote(dockerfile));
    }
    if modal.include_cwd {
        prepare.push_str(" --include-cwd");
    }
    prepare.push(' ');
    prepare.push_str(&shell_quote(&format!("--project-root={root}")));
    // The report directory changes every run: keep it out of the image (the
    // script already leaves out the default `test-results` and the history).
    if let Ok(rel) = config.report.output_dir.strip_prefix(config.base_dir()) {
        let rel = rel.display().to_string();
        if !rel.is_empty() && rel != "test-results" {
            prepare.push(' ');
            prepare.push_str(&shell_quote(&format!("--exclude={rel}")));
        }
    }
    let workdir = shell_quote(&format!("--workdir={root}"));
    Ok(ShellProviderConfig {
        prepare_command: Some(prepare),
        create_command: format!("{SCRIPT} create {{image_id}} {workdir}"),
        exec_command: format!("{SCRIPT} exec {{sandbox_id}} {{command}}"),
        destroy_command: format!("{SCRIPT} destroy {{sandbox_id}}"),
        download_command: Some(format!("{SCRIPT} download {{sandbox_id}} {{paths}}")),
        // The config file's directory: `.offload-image-cache` and
        // `--include-cwd` are relative to the project.
        working_dir: Some(config.base_dir().to_path_buf()),
        timeout_secs: TIMEOUT_SECS,
        copy_dirs: modal.copy_dirs.clone(),
        env: modal.env.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProviderConfig;
    use crate::provider::shell::{inner_command, prepare_line};
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    fn modal(
        dockerfile: Option<&str>,
        include_cwd: bool,
        copy_dirs: &[&str],
    ) -> ModalProviderConfig {
        ModalProviderConfig {
            dockerfile: dockerfile.map(str::to_string),
            include_cwd,
            copy_dirs: copy_dirs
                .iter()
                .map(|s| crate::config::CopyDir::parse(s).unwrap())
                .collect(),
            env: BTreeMap::from([("PYTHONUNBUFFERED".to_string(), "1".to_string())]),
        }
    }

    fn config(root: Option<&str>, m: &ModalProviderConfig) -> Config {
        Config::for_tests(
            std::path::Path::new("/work/project/offload.toml"),
            root,
            ProviderConfig::Modal(m.clone()),
        )
    }

    #[test]
    fn generates_the_script_commands() {
        let m = modal(Some(".devcontainer/Dockerfile"), true, &["./data:/data"]);
        let c = shell_config(&m, &config(Some("/app"), &m), &ProviderOptions::default()).unwrap();
        assert_eq!(
            c.prepare_command.as_deref(),
            Some("uv run @modal_sandbox.py prepare .devcontainer/Dockerfile --include-cwd --project-root=/app")
        );
        assert_eq!(
            c.create_command,
            "uv run @modal_sandbox.py create {image_id} --workdir=/app"
        );
        assert_eq!(
            c.exec_command,
            "uv run @modal_sandbox.py exec {sandbox_id} {command}"
        );
        assert_eq!(
            c.destroy_command,
            "uv run @modal_sandbox.py destroy {sandbox_id}"
        );
        assert_eq!(
            c.download_command.as_deref(),
            Some("uv run @modal_sandbox.py download {sandbox_id} {paths}")
        );
        assert_eq!(c.copy_dirs[0].to_string(), "./data:/data");
        assert_eq!(c.env.get("PYTHONUNBUFFERED").map(String::as_str), Some("1"));
        assert_eq!(c.working_dir, Some(PathBuf::from("/work/project")));
    }

    #[test]
    fn optional_parts_are_left_out_and_odd_paths_quoted() {
        let m = modal(None, false, &[]);
        let c = shell_config(
            &m,
            &config(Some("/srv/my app"), &m),
            &ProviderOptions::default(),
        )
        .unwrap();
        assert_eq!(
            c.prepare_command.as_deref(),
            Some("uv run @modal_sandbox.py prepare '--project-root=/srv/my app'")
        );
        assert_eq!(
            c.create_command,
            "uv run @modal_sandbox.py create {image_id} '--workdir=/srv/my app'"
        );
        let m = modal(Some("docker files/Dockerfile"), false, &[]);
        let c = shell_config(&m, &config(Some("/app"), &m), &ProviderOptions::default()).unwrap();
        assert!(c
            .prepare_command
            .unwrap()
            .starts_with("uv run @modal_sandbox.py prepare 'docker files/Dockerfile' "));
    }

    #[test]
    fn a_report_directory_inside_the_project_is_excluded() {
        let m = modal(None, true, &[]);
        let mut c = config(Some("/app"), &m);
        c.report.output_dir = PathBuf::from("/work/project/out/reports");
        let prepare = shell_config(&m, &c, &ProviderOptions::default())
            .unwrap()
            .prepare_command
            .unwrap();
        assert!(prepare.ends_with(" --exclude=out/reports"), "{prepare}");
        c.report.output_dir = PathBuf::from("/elsewhere/reports");
        let prepare = shell_config(&m, &c, &ProviderOptions::default())
            .unwrap()
            .prepare_command
            .unwrap();
        assert!(!prepare.contains("--exclude"), "{prepare}");
    }

    #[test]
    fn the_full_prepare_line_carries_copy_dirs_and_init() {
        let m = modal(None, true, &["./fixtures:/app/fixtures"]);
        let c = shell_config(&m, &config(Some("/app"), &m), &ProviderOptions::default()).unwrap();
        let line = prepare_line(
            c.prepare_command.as_deref().unwrap(),
            &c.copy_dirs,
            Some("uv sync --all-packages"),
        );
        assert_eq!(
            line,
            "uv run @modal_sandbox.py prepare --include-cwd --project-root=/app \
             --copy-dir=./fixtures:/app/fixtures '--sandbox-init-cmd=uv sync --all-packages'"
        );
    }

    #[test]
    fn exec_command_is_one_argument_for_the_script() {
        let inner = inner_command(
            "/app",
            "pytest 'tests/t.py::test a'",
            &[("K".into(), "v w".into())],
        );
        assert_eq!(
            inner,
            "cd /app || exit 125; mkdir -p .offload/results; export K='v w'; pytest 'tests/t.py::test a'"
        );
    }

    #[test]
    fn project_root_must_be_set_and_absolute() {
        let m = modal(None, true, &[]);
        let e = shell_config(&m, &config(None, &m), &ProviderOptions::default()).unwrap_err();
        assert!(e.to_string().contains("sandbox_project_root is required"));
        let e =
            shell_config(&m, &config(Some("app"), &m), &ProviderOptions::default()).unwrap_err();
        assert!(e.to_string().contains("absolute"));
    }
}
