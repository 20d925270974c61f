//! Loading whole configs: defaults, every section and type, the exact
//! messages and their `file:line:col`, warnings, expansion, paths.

use std::path::{Path, PathBuf};

use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "HOME" => Some("/home/u".into()),
        "PROVIDER" => Some("default".into()),
        "TOKEN" => Some("t0k".into()),
        "ROOT" => Some("/app".into()),
        _ => None,
    }
}

fn parse(text: &str) -> Result<Loaded, ConfigError> {
    parse_with_env(text, Path::new("/proj/offload.toml"), &env)
}

/// The error message, for a config that must fail (file name `offload.toml`).
fn error(text: &str) -> String {
    match parse_with_env(text, Path::new("offload.toml"), &env) {
        Ok(loaded) => panic!("expected an error, got {:?}", loaded.config),
        Err(e) => e.message,
    }
}

fn warnings(text: &str) -> Vec<String> {
    parse_with_env(text, Path::new("offload.toml"), &env)
        .unwrap_or_else(|e| panic!("{e}"))
        .warnings
}

const LOCAL_DEFAULT: &str = r#"
[provider]
type = "local"

[framework]
type = "default"
discover_command = "./list {filters}"
run_command = "./run {tests}"
test_id_format = "{name}"

[groups.all]
"#;

#[test]
fn minimal_config_gets_every_default() {
    let loaded = parse(LOCAL_DEFAULT).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = loaded.config;
    assert_eq!(c.path, PathBuf::from("/proj/offload.toml"));
    assert_eq!(c.offload.max_parallel, 10);
    assert_eq!(c.offload.test_timeout_secs, 900);
    assert_eq!(c.offload.working_dir, None);
    assert_eq!(c.offload.sandbox_project_root, None);
    assert_eq!(c.offload.sandbox_init_cmd, None);
    let ProviderConfig::Local(p) = &c.provider else {
        panic!("{:?}", c.provider)
    };
    assert_eq!(p.shell, "/bin/sh");
    assert!(p.env.is_empty());
    assert_eq!(p.working_dir, None);
    let FrameworkConfig::Default(f) = &c.framework else {
        panic!()
    };
    assert_eq!(f.result_file, None);
    assert_eq!(c.groups.len(), 1);
    assert_eq!(c.groups[0].name, "all");
    assert_eq!(c.groups[0].retry_count, 0);
    assert_eq!(c.groups[0].filters, "");
    assert_eq!(c.report.output_dir, PathBuf::from("/proj/test-results"));
    assert!(c.report.junit);
    assert_eq!(c.report.junit_file, "junit.xml");
    assert!(c.report.ci_reports);
    assert_eq!(c.local_working_dir(), PathBuf::from("/proj"));
}

#[test]
fn ci_reports_can_be_switched_off() {
    let c = parse(&format!("{LOCAL_DEFAULT}\n[report]\nci_reports = false\n"))
        .unwrap()
        .config;
    assert!(!c.report.ci_reports);
    assert!(parse(&format!("{LOCAL_DEFAULT}\n[report]\nci_reports = \"no\"\n")).is_err());
}

#[test]
fn readme_local_cargo_example() {
    let loaded = parse(
        r#"
[offload]
max_parallel = 4
test_timeout_secs = 300
sandbox_project_root = "."

[provider]
type = "local"
working_dir = "."

[framework]
type = "cargo"

[groups.all]
retry_count = 0

[report]
output_dir = "test-results"
"#,
    )
    .unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = loaded.config;
    assert_eq!(c.offload.max_parallel, 4);
    assert_eq!(c.offload.test_timeout_secs, 300);
    let ProviderConfig::Local(p) = &c.provider else {
        panic!()
    };
    assert_eq!(p.working_dir, Some(PathBuf::from("/proj")));
    assert!(matches!(c.framework, FrameworkConfig::Cargo(_)));
    assert_eq!(c.project_root(), "/proj");
}

#[test]
fn readme_pytest_default_provider_example() {
    let loaded = parse(
        r#"
[offload]
max_parallel = 4
test_timeout_secs = 600
sandbox_project_root = "/app"
sandbox_init_cmd = "git apply /offload-upload/patch --allow-empty && uv sync --all-packages"

[provider]
type = "default"
prepare_command = "uv run @modal_sandbox.py prepare --include-cwd examples/Dockerfile"
create_command = "uv run @modal_sandbox.py create {image_id}"
exec_command = "uv run @modal_sandbox.py exec {sandbox_id} {command}"
destroy_command = "uv run @modal_sandbox.py destroy {sandbox_id}"
download_command = "uv run @modal_sandbox.py download {sandbox_id} {paths}"
timeout_secs = 600

[framework]
type = "pytest"
paths = ["examples/tests"]
command = "uv run pytest"

[groups.unit]
retry_count = 2
filters = "-m 'not slow' -k 'not test_flaky'"

[groups.slow]
retry_count = 3
filters = "-m 'slow'"

[groups.flaky]
retry_count = 5
filters = "-k test_flaky"

[report]
output_dir = "test-results"
junit = true
junit_file = "junit.xml"
"#,
    )
    .unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = loaded.config;
    let ProviderConfig::Shell(p) = &c.provider else {
        panic!("{:?}", c.provider)
    };
    assert_eq!(
        p.create_command,
        "uv run @modal_sandbox.py create {image_id}"
    );
    assert_eq!(p.timeout_secs, 600);
    assert!(p.download_command.is_some() && p.prepare_command.is_some());
    let FrameworkConfig::Pytest(f) = &c.framework else {
        panic!()
    };
    assert_eq!(f.paths, ["examples/tests"]);
    assert_eq!(f.command.as_deref(), Some("uv run pytest"));
    assert_eq!(f.python, "python");
    let names: Vec<_> = c
        .groups
        .iter()
        .map(|g| (g.name.as_str(), g.retry_count))
        .collect();
    assert_eq!(names, [("unit", 2), ("slow", 3), ("flaky", 5)]);
    assert_eq!(c.groups[0].filters, "-m 'not slow' -k 'not test_flaky'");
    assert_eq!(c.project_root(), "/app");
    assert_eq!(
        c.offload.sandbox_init_cmd.as_deref(),
        Some("git apply /offload-upload/patch --allow-empty && uv sync --all-packages")
    );
}

#[test]
fn readme_cargo_modal_example() {
    let loaded = parse(
        r#"
[offload]
max_parallel = 4
test_timeout_secs = 600
sandbox_project_root = "/app"

[provider]
type = "modal"
dockerfile = ".devcontainer/Dockerfile"
include_cwd = true

[framework]
type = "cargo"

[groups.all]
retry_count = 1

[report]
output_dir = "test-results"
"#,
    )
    .unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let ProviderConfig::Modal(p) = &loaded.config.provider else {
        panic!()
    };
    assert_eq!(p.dockerfile.as_deref(), Some(".devcontainer/Dockerfile"));
    assert!(p.include_cwd);
    assert!(p.copy_dirs.is_empty());
}

#[test]
fn nextest_is_an_alias_of_cargo_with_its_settings() {
    let c = parse(&LOCAL_DEFAULT.replace(
        "type = \"default\"\ndiscover_command = \"./list {filters}\"\nrun_command = \"./run {tests}\"\ntest_id_format = \"{name}\"",
        "type = \"nextest\"\npackage = \"core\"\nfeatures = [\"a\", \"b\"]\nbin = \"x\"\ninclude_ignored = true",
    ))
    .unwrap()
    .config;
    let FrameworkConfig::Cargo(f) = &c.framework else {
        panic!("{:?}", c.framework)
    };
    assert_eq!(f.package.as_deref(), Some("core"));
    assert_eq!(f.features, ["a", "b"]);
    assert_eq!(f.bin.as_deref(), Some("x"));
    assert!(f.include_ignored);
}

#[test]
fn groups_keep_file_order_even_when_split() {
    let c = parse(&format!(
        "{LOCAL_DEFAULT}\n[groups.zeta]\nretry_count = 1\n[report]\njunit = false\n[groups.alpha]\nfilters = \"-k a\"\n"
    ))
    .unwrap()
    .config;
    let names: Vec<_> = c.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["all", "zeta", "alpha"]);
    let quoted = parse(&LOCAL_DEFAULT.replace("[groups.all]", "[groups.\"py3.12 unit\"]")).unwrap();
    assert_eq!(quoted.config.groups[0].name, "py3.12 unit");
    assert!(!c.report.junit);
}

#[test]
fn relative_paths_resolve_against_the_config_directory() {
    let text = r#"
[offload]
working_dir = "./src/.."

[provider]
type = "local"
working_dir = "sub"

[framework]
type = "default"
discover_command = "./list {filters}"
run_command = "./run {tests}"
test_id_format = "{name}"
working_dir = "/abs/dir"

[groups.all]

[report]
output_dir = "out/reports"
"#;
    let c = parse(text).unwrap().config;
    assert_eq!(c.offload.working_dir, Some(PathBuf::from("/proj/src/..")));
    let ProviderConfig::Local(p) = &c.provider else {
        panic!()
    };
    assert_eq!(p.working_dir, Some(PathBuf::from("/proj/sub")));
    let FrameworkConfig::Default(f) = &c.framework else {
        panic!()
    };
    assert_eq!(f.working_dir, Some(PathBuf::from("/abs/dir")));
    assert_eq!(c.report.output_dir, PathBuf::from("/proj/out/reports"));
}

#[test]
fn relative_config_path_is_made_absolute() {
    let loaded = parse_with_env(LOCAL_DEFAULT, Path::new("sub/offload.toml"), &env).unwrap();
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(loaded.config.path, cwd.join("sub/offload.toml"));
    assert_eq!(
        loaded.config.report.output_dir,
        cwd.join("sub/test-results")
    );
}

#[test]
fn sections_may_be_inline_tables() {
    let c = parse(
        "provider = { type = \"local\", env = { A = \"1\" } }\n\
         framework = { type = \"cargo\" }\n\
         groups = { all = { retry_count = 1 } }\n",
    )
    .unwrap()
    .config;
    assert_eq!(c.provider_env().get("A").map(String::as_str), Some("1"));
    assert_eq!(c.groups[0].retry_count, 1);
}

// ---- errors, with their exact location ----

#[test]
fn bad_toml_names_file_line_and_column() {
    let e = error("[offload]\nmax_parallel = = 4\n");
    assert!(e.starts_with("offload.toml:2:16: invalid TOML: "), "{e}");
    assert!(
        e.ends_with("\n  max_parallel = = 4\n                 ^"),
        "{e}"
    );
}

#[test]
fn unknown_provider_type_names_the_value_and_the_choices() {
    let e = error(&LOCAL_DEFAULT.replace("type = \"local\"", "type      = \"lcoal\""));
    assert_eq!(
        e,
        "offload.toml:3:13: [provider] type: unknown provider \"lcoal\"; expected one of \
         local, default, modal (did you mean \"local\"?)"
    );
}

#[test]
fn unknown_framework_type() {
    let e = error(&LOCAL_DEFAULT.replace("type = \"default\"", "type = \"jest\""));
    assert_eq!(
        e,
        "offload.toml:6:8: [framework] type: unknown framework \"jest\"; expected one of \
         pytest, cargo, nextest, default"
    );
}

#[test]
fn missing_type_points_at_the_section_header() {
    let e = error(&LOCAL_DEFAULT.replace("type = \"local\"", "shell = \"/bin/bash\""));
    assert_eq!(
        e,
        "offload.toml:2:1: [provider] type: missing; expected one of local, default, modal, \
         e.g. type = \"local\""
    );
}

#[test]
fn missing_sections_are_named_with_an_example() {
    let e = error("[framework]\ntype = \"cargo\"\n[groups.all]\n");
    assert_eq!(
        e,
        "offload.toml: [provider]: missing section; add e.g.:\n[provider]\ntype = \"local\""
    );
    let e = error("[provider]\ntype = \"local\"\n[groups.all]\n");
    assert!(
        e.starts_with("offload.toml: [framework]: missing section"),
        "{e}"
    );
}

#[test]
fn at_least_one_group() {
    let without = LOCAL_DEFAULT.replace("[groups.all]\n", "");
    assert_eq!(
        error(&without),
        "offload.toml: [groups]: Configuration must define at least one group. Add a \
         [groups.NAME] section, e.g.:\n[groups.all]\nretry_count = 0\nfilters = \"\""
    );
    let empty = LOCAL_DEFAULT.replace("[groups.all]\n", "[groups]\n");
    assert!(
        error(&empty).starts_with(
            "offload.toml:11:1: [groups]: Configuration must define at least one group."
        ),
        "{}",
        error(&empty)
    );
    let not_tables = LOCAL_DEFAULT.replace("[groups.all]\n", "[groups]\nall = 3\n");
    assert_eq!(
        error(&not_tables),
        "offload.toml:12:7: [groups] all: expected a table ([groups.all]), found integer 3"
    );
}

const SHELL_PROVIDER: &str = r#"[offload]
sandbox_project_root = "/app"

[provider]
type = "default"
create_command = "sb create {image_id}"
exec_command = "sb exec {sandbox_id} {command}"
destroy_command = "sb destroy {sandbox_id}"

[framework]
type = "cargo"

[groups.all]
"#;

#[test]
fn shell_provider_defaults() {
    let c = parse(SHELL_PROVIDER).unwrap().config;
    let ProviderConfig::Shell(p) = &c.provider else {
        panic!()
    };
    assert_eq!(p.timeout_secs, 3600);
    assert!(p.copy_dirs.is_empty() && p.env.is_empty());
    assert_eq!(p.prepare_command, None);
    assert_eq!(p.download_command, None);
}

#[test]
fn missing_required_command_names_section_key_and_example() {
    let e = error(&SHELL_PROVIDER.replace("create_command = \"sb create {image_id}\"\n", ""));
    assert_eq!(
        e,
        "offload.toml:4:1: [provider] create_command: missing; required for provider type \
         \"default\" (creates a sandbox and prints its ID), e.g. create_command = \
         \"my-sandbox create {image_id}\""
    );
    let e = error(&SHELL_PROVIDER.replace("\"sb destroy {sandbox_id}\"", "\"  \""));
    assert!(
        e.starts_with("offload.toml:8:19: [provider] destroy_command: must not be empty;"),
        "{e}"
    );
}

#[test]
fn exec_and_download_need_their_placeholders() {
    let e = error(&SHELL_PROVIDER.replace("sb exec {sandbox_id} {command}", "sb exec"));
    assert!(
        e.starts_with("offload.toml:7:16: [provider] exec_command: must contain the '{command}'"),
        "{e}"
    );
    let e =
        error(&SHELL_PROVIDER.replace("[framework]", "download_command = \"sb dl\"\n[framework]"));
    assert!(
        e.starts_with(
            "offload.toml:10:20: [provider] download_command: must contain the '{paths}'"
        ),
        "{e}"
    );
}

#[test]
fn sandbox_project_root_is_required_for_remote_providers() {
    let e = error(&SHELL_PROVIDER.replace("sandbox_project_root = \"/app\"", "max_parallel = 2"));
    assert_eq!(
        e,
        "offload.toml:1:1: [offload] sandbox_project_root: missing; required with provider \
         type \"default\" (the project's directory inside the sandbox, exported as \
         OFFLOAD_ROOT), e.g. sandbox_project_root = \"/app\""
    );
    let e = error(&SHELL_PROVIDER.replace("[offload]\nsandbox_project_root = \"/app\"\n", ""));
    assert!(
        e.starts_with("offload.toml: [offload] sandbox_project_root: missing"),
        "{e}"
    );
    let modal = "[provider]\ntype = \"modal\"\n[framework]\ntype = \"cargo\"\n[groups.all]\n";
    assert!(error(modal).contains("required with provider type \"modal\""));
}

#[test]
fn copy_dirs_must_be_local_colon_remote() {
    let e = error(&SHELL_PROVIDER.replace(
        "[framework]",
        "copy_dirs = [\"a:/b\", \"nocolon\"]\n[framework]",
    ));
    assert_eq!(
        e,
        "offload.toml:10:22: [provider] copy_dirs[1]: expected \"local:remote\" (e.g. \
         \"./data:/app/data\"), found \"nocolon\""
    );
}

#[test]
fn integers_reject_negatives_floats_zero_and_strings() {
    let with = |line: &str| error(&format!("[offload]\n{line}\n{LOCAL_DEFAULT}"));
    assert_eq!(
        with("max_parallel = -3"),
        "offload.toml:2:16: [offload] max_parallel: expected a non-negative integer, found -3"
    );
    assert_eq!(
        with("test_timeout_secs = 2.5"),
        "offload.toml:2:21: [offload] test_timeout_secs: expected a whole number (integer), found float 2.5"
    );
    assert_eq!(
        with("max_parallel = 0"),
        "offload.toml:2:16: [offload] max_parallel: must be at least 1, found 0"
    );
    assert_eq!(
        with("max_parallel = \"4\""),
        "offload.toml:2:16: [offload] max_parallel: expected an integer, found string \"4\""
    );
    let e =
        error(&LOCAL_DEFAULT.replace("[groups.all]\n", "[groups.all]\nretry_count = 5000000000\n"));
    assert_eq!(e, "offload.toml:12:15: [groups.all] retry_count: must be at most 4294967295, found 5000000000");
    let e = error(&LOCAL_DEFAULT.replace("[groups.all]\n", "[groups.all]\nretry_count = -1\n"));
    assert_eq!(
        e,
        "offload.toml:12:15: [groups.all] retry_count: expected a non-negative integer, found -1"
    );
}

#[test]
fn wrong_types_name_what_was_found() {
    let e = error(&format!("{LOCAL_DEFAULT}[report]\njunit = \"yes\"\n"));
    assert_eq!(
        e,
        "offload.toml:13:9: [report] junit: expected true or false, found string \"yes\""
    );
    let e = error(&LOCAL_DEFAULT.replace(
        "[groups.all]\n",
        "[groups.all]\nfilters = [\"-k\", \"x\"]\n",
    ));
    assert_eq!(
        e,
        "offload.toml:12:11: [groups.all] filters: expected a string, found an array"
    );
    let e = error(&LOCAL_DEFAULT.replace("type = \"local\"", "type = \"local\"\nenv = { A = 1 }"));
    assert_eq!(
        e,
        "offload.toml:4:13: [provider] env.A: expected a string, found integer 1"
    );
    let e = error(&LOCAL_DEFAULT.replace("type = \"local\"", "type = \"local\"\nenv = \"A=1\""));
    assert!(
        e.starts_with("offload.toml:4:7: [provider] env: expected a table of strings"),
        "{e}"
    );
    let e = error(&format!(
        "provider = \"local\"\n{}",
        LOCAL_DEFAULT.replace("[provider]\ntype = \"local\"\n", "")
    ));
    assert_eq!(
        e,
        "offload.toml:1:12: provider: expected a table ([provider]), found string \"local\""
    );
    let e = error(&format!("{LOCAL_DEFAULT}[report]\noutput_dir = \"\"\n"));
    assert!(
        e.starts_with("offload.toml:13:14: [report] output_dir: must not be empty"),
        "{e}"
    );
}

#[test]
fn default_framework_placeholders_are_checked() {
    let e = error(&LOCAL_DEFAULT.replace("./list {filters}", "./list"));
    assert_eq!(
        e,
        "offload.toml:7:20: [framework] discover_command: Default framework discover_command \
         must contain '{filters}' placeholder for group filtering. Got: './list'. Add \
         '{filters}' to your discover_command, e.g., 'my-command {filters}'"
    );
    let e = error(&LOCAL_DEFAULT.replace("./run {tests}", "./run"));
    assert!(
        e.starts_with(
            "offload.toml:8:15: [framework] run_command: must contain the '{tests}' placeholder"
        ),
        "{e}"
    );
    let e = error(&LOCAL_DEFAULT.replace("test_id_format = \"{name}\"\n", ""));
    assert_eq!(
        e,
        "offload.toml:5:1: [framework] test_id_format: missing; required for framework type \
         \"default\" (how JUnit name and classname form a test ID), e.g. test_id_format = \
         \"{classname} {name}\""
    );
    let e = error(&LOCAL_DEFAULT.replace("\"{name}\"", "\"id\""));
    assert!(
        e.starts_with("offload.toml:9:18: [framework] test_id_format: must contain '{name}'"),
        "{e}"
    );
}

// ---- warnings ----

#[test]
fn unknown_keys_warn_with_did_you_mean() {
    let w = warnings(&format!(
        "[offload]\nmax_parallel = 2\nretry_cont = 3\n{LOCAL_DEFAULT}retry_cuont = 1\nbogus = 1\n[bogus_top_level]\nx = 1\n"
    ));
    assert_eq!(
        w,
        [
            "offload.toml:17:1: unknown key `bogus_top_level`",
            "offload.toml:3:1: unknown key `offload.retry_cont` (did you mean `retry_count`? \
             it is a setting of [groups.NAME])",
            "offload.toml:15:1: unknown key `groups.all.retry_cuont` (did you mean `retry_count`?)",
            "offload.toml:16:1: unknown key `groups.all.bogus`",
        ]
    );
}

#[test]
fn unknown_keys_are_listed_by_their_dotted_names() {
    let loaded = parse_with_env(
        &format!("[offload]\nretry_cont = 3\nstream_output = true\n{LOCAL_DEFAULT}bogus = 1\n"),
        Path::new("offload.toml"),
        &env,
    )
    .unwrap();
    assert_eq!(
        loaded.unknown_keys,
        ["offload.retry_cont", "groups.all.bogus"]
    );
    assert_eq!(loaded.warnings.len(), 3, "{:?}", loaded.warnings);
    assert_eq!(loaded.config.offload.unknown_keys, UnknownKeys::Warn);
}

/// The error of a strict load (`validate --strict`).
fn strict_error(text: &str) -> String {
    match super::parse(text, Path::new("offload.toml"), &env, true) {
        Ok(loaded) => panic!("expected an error, got {:?}", loaded.config),
        Err(e) => e.message,
    }
}

#[test]
fn strict_makes_every_unknown_key_an_error_and_keeps_other_warnings() {
    let text =
        format!("[offload]\nretry_cont = 3\nstream_output = true\n{LOCAL_DEFAULT}bogus = 1\n");
    assert_eq!(
        strict_error(&text),
        "offload.toml:2:1: unknown key `offload.retry_cont` (did you mean `retry_count`? it is a \
         setting of [groups.NAME])\n\
         error: offload.toml:15:1: unknown key `groups.all.bogus`\n\
         error: unknown keys are errors with `--strict`: fix or remove them (without \
         `--strict`, each is only a warning and the key is ignored)\n\
         warning: offload.toml:3:17: [offload] stream_output: does nothing and can be removed: \
         batch output always goes to {output_dir}/logs, and -v streams it to the console"
    );
    // Without unknown keys, strict changes nothing.
    assert!(super::parse(LOCAL_DEFAULT, Path::new("offload.toml"), &env, true).is_ok());
}

#[test]
fn unknown_keys_error_in_the_file_makes_them_errors() {
    let text = format!("[offload]\nunknown_keys = \"error\"\nmax_paralel = 2\n{LOCAL_DEFAULT}");
    assert_eq!(
        error(&text),
        "offload.toml:3:1: unknown key `offload.max_paralel` (did you mean `max_parallel`?)\n\
         error: an unknown key is an error because offload.toml sets [offload] unknown_keys = \
         \"error\": fix or remove it"
    );
    let fine = format!("[offload]\nunknown_keys = \"error\"\n{LOCAL_DEFAULT}");
    let loaded = parse(&fine).unwrap();
    assert_eq!(loaded.config.offload.unknown_keys, UnknownKeys::Error);
    let warn = format!("[offload]\nunknown_keys = \"warn\"\nmax_paralel = 2\n{LOCAL_DEFAULT}");
    assert_eq!(warnings(&warn).len(), 1);
}

#[test]
fn unknown_keys_takes_warn_or_error() {
    assert_eq!(
        error(&format!(
            "[offload]\nunknown_keys = \"eror\"\n{LOCAL_DEFAULT}"
        )),
        "offload.toml:2:16: [offload] unknown_keys: expected \"warn\" or \"error\", found \
         \"eror\" (did you mean \"error\"?)"
    );
    assert!(
        error(&format!("[offload]\nunknown_keys = true\n{LOCAL_DEFAULT}"))
            .contains("[offload] unknown_keys: expected a string, found boolean true")
    );
}

#[test]
fn keys_of_another_type_say_which_type_uses_them() {
    let w = warnings(&LOCAL_DEFAULT.replace(
        "type = \"local\"",
        "type = \"local\"\ncreate_command = \"x\"\nshel = \"sh\"",
    ));
    assert_eq!(
        w,
        [
            "offload.toml:4:1: unknown key `provider.create_command` (it is a setting of [provider] type = \"default\")",
            "offload.toml:5:1: unknown key `provider.shel` (did you mean `shell`?)",
        ]
    );
}

#[test]
fn stream_output_is_accepted_with_a_warning() {
    let w = warnings(&format!("[offload]\nstream_output = true\n{LOCAL_DEFAULT}"));
    assert_eq!(w.len(), 1);
    assert!(
        w[0].starts_with("offload.toml:2:17: [offload] stream_output: does nothing"),
        "{w:?}"
    );
}

const PYTEST: &str = "[provider]\ntype = \"local\"\n[framework]\ntype = \"pytest\"\n";

#[test]
fn pytest_legacy_fields_are_accepted() {
    let text = format!(
        "{PYTEST}python = \"python3\"\nextra_args = [\"-x\", \"${{TOKEN}}\"]\nmarkers = \"not slow\"\n\
         test_id_format = \"{{name}}\"\n[groups.all]\n"
    );
    let loaded = parse(&text).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let FrameworkConfig::Pytest(f) = &loaded.config.framework else {
        panic!()
    };
    assert_eq!(f.python, "python3");
    assert_eq!(f.extra_args, ["-x", "t0k"]);
    assert_eq!(f.markers.as_deref(), Some("not slow"));
    assert_eq!(f.command, None);
    assert_eq!(f.paths, ["tests"]);
}

#[test]
fn pytest_legacy_fields_warn_when_command_is_set() {
    let w = warnings(&format!(
        "{PYTEST}command = \"uv run pytest\"\npython = \"python3\"\nrun_args = \"-x\"\n[groups.all]\n"
    ));
    assert_eq!(w, ["offload.toml:6:10: [framework] python: ignored because `command` is set (legacy setting)"]);
}

#[test]
fn custom_test_id_format_for_pytest_or_cargo_is_ignored_with_a_warning() {
    let w = warnings(&format!(
        "{PYTEST}test_id_format = \"{{classname}}\"\n[groups.all]\n"
    ));
    assert_eq!(w.len(), 1);
    assert!(
        w[0].starts_with("offload.toml:5:18: [framework] test_id_format: ignored"),
        "{w:?}"
    );
    let cargo = PYTEST.replace("pytest", "cargo");
    assert!(warnings(&format!(
        "{cargo}test_id_format = \"{{classname}} {{name}}\"\n[groups.all]\n"
    ))
    .is_empty());
}

// ---- environment expansion ----

#[test]
fn expansion_applies_to_every_string_value() {
    let text = r#"
[offload]
sandbox_project_root = "${ROOT}"

[provider]
type = "${PROVIDER:-local}"
create_command = "sb create --token ${TOKEN}"
exec_command = "sb exec {sandbox_id} {command} $$ $HOME"
destroy_command = "sb destroy {sandbox_id}"
copy_dirs = ["${HOME}/data:/app/data"]
env = { KEY = "${TOKEN}", PLAIN = "$$x", DEF = "${UNSET_ONE:-d}" }

[framework]
type = "cargo"

[groups.all]
filters = "${FILTERS:-}"
"#;
    let c = parse(text).unwrap().config;
    assert_eq!(c.offload.sandbox_project_root.as_deref(), Some("/app"));
    let ProviderConfig::Shell(p) = &c.provider else {
        panic!("{:?}", c.provider)
    };
    assert_eq!(p.create_command, "sb create --token t0k");
    assert_eq!(p.exec_command, "sb exec {sandbox_id} {command} $ $HOME");
    let dirs: Vec<String> = p.copy_dirs.iter().map(ToString::to_string).collect();
    assert_eq!(dirs, ["/home/u/data:/app/data"]);
    assert_eq!(p.env["KEY"], "t0k");
    assert_eq!(p.env["PLAIN"], "$x");
    assert_eq!(p.env["DEF"], "d");
    assert_eq!(c.groups[0].filters, "");
}

#[test]
fn unset_variable_names_the_variable_key_and_location() {
    let e = error(&LOCAL_DEFAULT.replace(
        "type = \"local\"",
        "type = \"local\"\n[provider.env]\nAPI = \"k=${API_KEY_X}\"",
    ));
    assert_eq!(
        e,
        "offload.toml:5:7: [provider] env.API: environment variable API_KEY_X is not set \
         (referenced as ${API_KEY_X}); set it, or give a default with ${API_KEY_X:-default}"
    );
    let e = error(&LOCAL_DEFAULT.replace("./run {tests}", "./run ${NOPE} {tests}"));
    assert!(
        e.starts_with(
            "offload.toml:8:15: [framework] run_command: environment variable NOPE is not set"
        ),
        "{e}"
    );
    let e = error(&LOCAL_DEFAULT.replace("[groups.all]\n", "[groups.all]\nfilters = \"${BAD\"\n"));
    assert!(
        e.starts_with("offload.toml:12:11: [groups.all] filters: unclosed variable reference"),
        "{e}"
    );
}

#[test]
fn expansion_happens_before_validation() {
    // The expanded value is what the rules see: a {filters} that only
    // appears through a default still counts.
    let c = parse(&LOCAL_DEFAULT.replace("./list {filters}", "${LISTER:-./list {filters}}"));
    // `}` ends the default at the first brace, so this is `./list {filters` + `}`.
    assert!(c.is_ok(), "{:?}", c.err());
    let e = error(&LOCAL_DEFAULT.replace("./list {filters}", "${LISTER:-./list}"));
    assert!(e.contains("Got: './list'"), "{e}");
}

#[test]
fn an_error_keeps_the_warnings_that_explain_it() {
    let e = error(&SHELL_PROVIDER.replace("create_command =", "create_comand ="));
    assert!(
        e.starts_with("offload.toml:4:1: [provider] create_command: missing;"),
        "{e}"
    );
    assert!(
        e.ends_with(
            "\nwarning: offload.toml:6:1: unknown key `provider.create_comand` \
             (did you mean `create_command`?)"
        ),
        "{e}"
    );
}
