//! Rules a value must follow beyond its TOML type. Each returns the message
//! without a location; the loader adds `file:line:col: [section] key: `.

/// Shown when `[groups]` is missing or has no group.
pub(super) const NO_GROUPS: &str = "Configuration must define at least one group. \
Add a [groups.NAME] section, e.g.:\n[groups.all]\nretry_count = 0\nfilters = \"\"";

/// `discover_command` substitutes each group's filters at `{filters}`.
pub(super) fn discover_command(command: &str) -> Result<(), String> {
    if command.contains("{filters}") {
        return Ok(());
    }
    Err(format!(
        "Default framework discover_command must contain '{{filters}}' placeholder for group \
         filtering. Got: '{command}'. Add '{{filters}}' to your discover_command, e.g., \
         'my-command {{filters}}'"
    ))
}

/// `run_command` receives a batch's test IDs at `{tests}`.
pub(super) fn run_command(command: &str) -> Result<(), String> {
    if command.contains("{tests}") {
        return Ok(());
    }
    Err(format!(
        "must contain the '{{tests}}' placeholder (replaced by the batch's test IDs, each \
         shell-quoted). Got: '{command}'. e.g. 'my-runner --junit {{result_file}} {{tests}}'"
    ))
}

/// `test_id_format` builds IDs from JUnit `name` and `classname`.
pub(super) fn test_id_format(format: &str) -> Result<(), String> {
    if format.contains("{name}") || format.contains("{classname}") {
        return Ok(());
    }
    Err(format!(
        "must contain '{{name}}' and/or '{{classname}}' (the JUnit testcase attributes a test ID \
         is built from). Got: '{format}'. e.g. \"{{classname}} {{name}}\" or \"{{name}}\""
    ))
}

/// `exec_command` runs the batch at `{command}`.
pub(super) fn exec_command(command: &str) -> Result<(), String> {
    if command.contains("{command}") {
        return Ok(());
    }
    Err(format!(
        "must contain the '{{command}}' placeholder (replaced by the shell-quoted test \
         command). Got: '{command}'. e.g. 'my-sandbox exec {{sandbox_id}} {{command}}'"
    ))
}

/// `download_command` fetches result files listed at `{paths}`.
pub(super) fn download_command(command: &str) -> Result<(), String> {
    if command.contains("{paths}") {
        return Ok(());
    }
    Err(format!(
        "must contain the '{{paths}}' placeholder (replaced by 'remote':'local' pairs). \
         Got: '{command}'. e.g. 'my-sandbox download {{sandbox_id}} {{paths}}'"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discover_command_needs_filters() {
        assert!(discover_command("./list {filters}").is_ok());
        assert_eq!(
            discover_command("./list").unwrap_err(),
            "Default framework discover_command must contain '{filters}' placeholder for group \
             filtering. Got: './list'. Add '{filters}' to your discover_command, e.g., \
             'my-command {filters}'"
        );
    }

    #[test]
    fn run_command_needs_tests() {
        assert!(run_command("./run {tests}").is_ok());
        let e = run_command("./run").unwrap_err();
        assert!(
            e.starts_with("must contain the '{tests}' placeholder"),
            "{e}"
        );
        assert!(e.contains("Got: './run'"), "{e}");
    }

    #[test]
    fn test_id_format_needs_a_placeholder() {
        assert!(test_id_format("{name}").is_ok());
        assert!(test_id_format("{classname}::{name}").is_ok());
        assert!(test_id_format("id").unwrap_err().contains("Got: 'id'"));
    }

    #[test]
    fn exec_and_download_need_their_placeholders() {
        assert!(exec_command("x exec {sandbox_id} {command}").is_ok());
        assert!(exec_command("x exec").unwrap_err().contains("'{command}'"));
        assert!(download_command("x dl {sandbox_id} {paths}").is_ok());
        assert!(download_command("x dl").unwrap_err().contains("'{paths}'"));
    }

    #[test]
    fn no_groups_message_matches_the_original() {
        assert_eq!(
            NO_GROUPS,
            "Configuration must define at least one group. Add a [groups.NAME] section, e.g.:\n\
             [groups.all]\nretry_count = 0\nfilters = \"\""
        );
    }
}
