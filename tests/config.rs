//! `offload validate` on real files: broken configs exit 3 with a message
//! naming the file, line and key (or variable); a good one exits 0 with a
//! summary of its settings, and warnings go to stderr.

mod common;

use std::process::Output;
use std::time::Duration;

use common::*;

/// Write `text` as `dir/offload.toml` and run `offload validate` in `dir`.
fn validate(dir: &TempDir, text: &str, env: &[(&str, &str)]) -> Output {
    dir.write("offload.toml", text);
    let mut cmd = offload(&dir.path, &["validate"], env);
    cmd.env_remove("OFFLOAD_IT_UNSET_VAR");
    run_within(cmd, Duration::from_secs(20))
}

fn assert_error(out: &Output, expected: &str) {
    assert_eq!(out.status.code(), Some(3), "{}", describe(out));
    assert!(stdout(out).is_empty(), "{}", describe(out));
    let err = stderr(out);
    assert!(
        err.starts_with(&format!("error: {expected}")),
        "expected stderr to start with\nerror: {expected}\n{}",
        describe(out)
    );
}

const GOOD: &str = r#"# a comment
[offload]
max_parallel = 3
test_timeout_secs = 120

[provider]
type = "local"
env = { TOKEN = "${OFFLOAD_IT_TOKEN:-none}" }

[framework]
type = "default"
discover_command = "./discover.sh {filters}"
run_command = "./runner.sh {result_file} {tests}"
test_id_format = "{name}"

[groups.fast]
retry_count = 1
filters = "fast"

[groups.slow]
filters = "slow"

[report]
output_dir = "out"
"#;

#[test]
fn good_config_exits_0_with_a_summary() {
    let dir = TempDir::new("config-good");
    let out = validate(&dir, GOOD, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(stderr(&out), "", "{}", describe(&out));
    let text = stdout(&out);
    let root = dir.path.display().to_string();
    for line in [
        "Configuration is valid!".to_string(),
        "  Max parallel: 3".to_string(),
        "  Test timeout: 120s".to_string(),
        "Provider: local".to_string(),
        "  Env: TOKEN".to_string(),
        "Framework: default".to_string(),
        "  Run command: ./runner.sh {result_file} {tests}".to_string(),
        "  fast: retry_count = 1, filters = \"fast\"".to_string(),
        "  slow: retry_count = 0, filters = \"slow\"".to_string(),
        format!("  Output dir: {root}/out"),
        format!("  JUnit: {root}/out/junit.xml"),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing line {line:?}\n{text}"
        );
    }
    // Groups are listed in file order.
    assert!(text.find("  fast:").unwrap() < text.find("  slow:").unwrap());
}

#[test]
fn relative_paths_resolve_against_the_config_files_directory() {
    let dir = TempDir::new("config-subdir");
    dir.write("ci/offload.toml", GOOD);
    let out = run_within(
        offload(&dir.path, &["-c", "ci/offload.toml", "validate"], &[]),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let expected = format!("  Output dir: {}/ci/out", dir.path.display());
    assert!(
        stdout(&out).lines().any(|l| l == expected),
        "{}",
        describe(&out)
    );
}

#[test]
fn unknown_keys_warn_on_stderr_but_validate() {
    let dir = TempDir::new("config-unknown");
    let text = GOOD.replace("max_parallel = 3", "max_parallel = 3\nretry_cont = 2");
    let out = validate(&dir, &text, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(
        stderr(&out),
        "warning: offload.toml:4:1: unknown key `offload.retry_cont` (did you mean \
         `retry_count`? it is a setting of [groups.NAME])\n"
    );
    // Valid, but not in silence: the first line says the key is ignored.
    assert!(
        stdout(&out).starts_with(
            "Configuration is valid, but 1 unknown key is ignored: `offload.retry_cont`"
        ),
        "{}",
        describe(&out)
    );
}

#[test]
fn bad_toml_exits_3_naming_file_line_and_column() {
    let dir = TempDir::new("config-bad-toml");
    let out = validate(
        &dir,
        &GOOD.replace("max_parallel = 3", "max_parallel = = 3"),
        &[],
    );
    assert_error(&out, "offload.toml:3:16: invalid TOML: ");
}

#[test]
fn unknown_provider_type_exits_3_with_the_choices() {
    let dir = TempDir::new("config-bad-provider");
    let out = validate(&dir, &GOOD.replace("\"local\"", "\"lcoal\""), &[]);
    assert_error(
        &out,
        "offload.toml:7:8: [provider] type: unknown provider \"lcoal\"; expected one of local, \
         default, modal (did you mean \"local\"?)\n",
    );
}

#[test]
fn missing_required_field_exits_3_naming_section_and_key() {
    let dir = TempDir::new("config-missing");
    let out = validate(
        &dir,
        &GOOD.replace("test_id_format = \"{name}\"\n", ""),
        &[],
    );
    assert_error(
        &out,
        "offload.toml:10:1: [framework] test_id_format: missing; required for framework type \
         \"default\"",
    );
}

#[test]
fn unset_variable_exits_3_naming_the_variable_and_key() {
    let dir = TempDir::new("config-unset");
    let text = GOOD.replace(
        "filters = \"slow\"",
        "filters = \"${OFFLOAD_IT_UNSET_VAR}\"",
    );
    let out = validate(&dir, &text, &[]);
    assert_error(
        &out,
        "offload.toml:21:11: [groups.slow] filters: environment variable OFFLOAD_IT_UNSET_VAR \
         is not set",
    );
}

#[test]
fn variables_are_expanded_from_the_environment() {
    let dir = TempDir::new("config-env");
    let text = GOOD.replace(
        "filters = \"slow\"",
        "filters = \"-k ${OFFLOAD_IT_FILTER}\"",
    );
    let out = validate(&dir, &text, &[("OFFLOAD_IT_FILTER", "x and $$y")]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    // The value is used as it is: `$$` in a variable's value is not unescaped.
    assert!(
        stdout(&out).contains("  slow: retry_count = 0, filters = \"-k x and $$y\""),
        "{}",
        describe(&out)
    );
}

#[test]
fn missing_config_file_exits_3() {
    let dir = TempDir::new("config-none");
    let out = run_within(
        offload(&dir.path, &["validate"], &[]),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert_eq!(
        stderr(&out),
        "error: cannot read config file offload.toml: No such file or directory (create one \
         with `offload init`, or pass another with -c PATH)\n"
    );
}

#[test]
fn the_shell_fixture_config_validates() {
    let dir = TempDir::with_fixture("shell");
    let out = run_within(
        offload(&dir.path, &["validate"], &[]),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(stderr(&out), "");
}
