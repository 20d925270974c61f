//! The `offload.toml` that `offload init` writes: built with toml_edit (so
//! it is always valid TOML), every section commented, and runnable as
//! written. Shell commands are plain POSIX sh.

use toml_edit::{value, Array, DocumentMut, Item, Table};

use super::{framework_name, InitFramework, InitProvider, NodeSetup, PytestSetup};
use crate::process::shell_quote;

/// Set `key = v` in `table` with `comment` (one or more lines) above it.
fn entry(table: &mut Table, key: &str, v: impl Into<Item>, comment: &str) {
    table.insert(key, v.into());
    if !comment.is_empty() {
        if let Some(mut k) = table.key_mut(key) {
            k.leaf_decor_mut().set_prefix(comment_lines(comment));
        }
    }
}

fn comment_lines(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                "#\n".to_string()
            } else {
                format!("# {l}\n")
            }
        })
        .collect()
}

/// A table with a comment block above its header.
fn section(comment: &str) -> Table {
    let mut t = Table::new();
    t.decor_mut()
        .set_prefix(format!("\n{}", comment_lines(comment)));
    t
}

fn string_array(items: &[&str]) -> Item {
    let mut a = Array::new();
    for i in items {
        a.push(*i);
    }
    value(a)
}

/// The directory-sandbox example for the `default` provider: every command
/// is plain POSIX sh. (`$$` is the config's escape for a literal `$`.)
const CREATE_COMMAND: &str =
    "d=$(mktemp -d /tmp/offload-sandbox.XXXXXX) && cp -R . \"$d\" && echo \"$d\"";
const EXEC_COMMAND: &str = "cd {sandbox_id} && sh -c {command}";
const DOWNLOAD_COMMAND: &str = "for p in {paths}; do r=$${p%%:*}; l=$${p#*:}; case $r in /*) ;; *) r={sandbox_id}/$r ;; esac; cp \"$r\" \"$l\" || exit 1; done";
const DESTROY_COMMAND: &str =
    "case {sandbox_id} in */offload-sandbox.*) rm -rf {sandbox_id} ;; *) exit 1 ;; esac";

/// The `default` framework example: every `tests/test_*.sh` is a test; the
/// run command runs each and writes a JUnit file itself.
const DISCOVER_COMMAND: &str =
    "if [ -d tests ]; then find tests -type f -name 'test_*.sh' {filters} | sort; fi";
const RUN_COMMAND: &str = "( echo '<testsuite name=\"scripts\">'; for t in {tests}; do if sh \"$t\" >&2; then echo \"<testcase name=\\\"$t\\\"/>\"; else echo \"<testcase name=\\\"$t\\\"><failure message=\\\"exit code $?\\\"/></testcase>\"; fi; done; echo '</testsuite>' ) > {result_file}";

/// The whole file.
pub fn render_template(provider: InitProvider, framework: &InitFramework, reason: &str) -> String {
    let mut doc = DocumentMut::new();

    // The file's header comment sits above the first section.
    let mut offload = Table::new();
    offload.decor_mut().set_prefix(comment_lines(&format!(
        "Offload configuration, written by `offload init` ({} framework, {reason}).\n\
         Check it with `offload validate` and `offload doctor`; the README describes every field.\n\n\
         [offload]: how the run is shaped.",
        framework_name(framework)
    )));
    entry(
        &mut offload,
        "max_parallel",
        value(4),
        "How many sandboxes run batches at the same time.",
    );
    entry(
        &mut offload,
        "test_timeout_secs",
        value(600),
        "A batch running longer than this many seconds is killed; its unfinished tests are re-run\nto find the one that hangs, which is reported as failed.",
    );
    let root_comment = match provider {
        InitProvider::Local => "The project's directory for the tests (OFFLOAD_ROOT); \".\" is where this file is.",
        InitProvider::Directory => {
            "The project's directory inside a sandbox (OFFLOAD_ROOT), where batches run. Here \".\":\n\
             exec_command below already enters the sandbox's copy of the project."
        }
    };
    entry(
        &mut offload,
        "sandbox_project_root",
        value("."),
        root_comment,
    );
    doc.insert("offload", Item::Table(offload));

    let provider_table = match provider {
        InitProvider::Local => {
            let mut t = section(
                "[provider]: where batches run. \"local\": child processes on this machine.\n\
                 Environment for every test process, e.g.: env = { RUST_BACKTRACE = \"1\" }",
            );
            entry(&mut t, "type", value("local"), "");
            entry(
                &mut t,
                "working_dir",
                value("."),
                "Directory the tests run in, relative to this file.",
            );
            entry(
                &mut t,
                "shell",
                value("/bin/sh"),
                "Shell that runs each batch command.",
            );
            t
        }
        InitProvider::Directory => {
            let mut t = section(
                "[provider]: where batches run. \"default\": sandboxes driven by shell commands.\n\
                 This example makes each sandbox a copy of the project in a temporary directory;\n\
                 replace the commands with your own (ssh, docker, a cloud API) to run elsewhere.\n\
                 {sandbox_id}: what create_command printed. {command}: the batch, one quoted argument.\n\
                 {paths}: 'remote':'local' pairs of files to copy back. $$ is a literal $.",
            );
            entry(&mut t, "type", value("default"), "");
            entry(
                &mut t,
                "working_dir",
                value("."),
                "Directory the commands below run in (locally), relative to this file.",
            );
            entry(
                &mut t,
                "create_command",
                value(CREATE_COMMAND),
                "Create one sandbox and print its ID (here: the directory).",
            );
            entry(
                &mut t,
                "exec_command",
                value(EXEC_COMMAND),
                "Run a batch in the sandbox.",
            );
            entry(
                &mut t,
                "download_command",
                value(DOWNLOAD_COMMAND),
                "Copy result files out of the sandbox.",
            );
            entry(
                &mut t,
                "destroy_command",
                value(DESTROY_COMMAND),
                "Remove the sandbox (only directories this example created).",
            );
            entry(
                &mut t,
                "timeout_secs",
                value(600),
                "Timeout of each command above, in seconds.",
            );
            t
        }
    };
    doc.insert("provider", Item::Table(provider_table));

    let framework_table = match framework {
        InitFramework::Pytest(setup) => pytest_section(setup),
        InitFramework::Cargo => {
            let mut t = section(
                "[framework]: how tests are found and run. \"cargo\" uses cargo-nextest:\n\
                 cargo install cargo-nextest --locked\n\
                 Options: package = \"my-crate\", features = [\"a\"], include_ignored = true",
            );
            entry(&mut t, "type", value("cargo"), "");
            t
        }
        InitFramework::Node(setup) => node_section(setup),
        InitFramework::Default => {
            let mut t = section(
                "[framework]: how tests are found and run. \"default\": any runner, through commands.\n\
                 This example treats every tests/test_*.sh script as a test (exit code 0 = pass).",
            );
            entry(&mut t, "type", value("default"), "");
            entry(
                &mut t,
                "discover_command",
                value(DISCOVER_COMMAND),
                "Print one test ID per line. {filters} is replaced by the group's filters.",
            );
            entry(
                &mut t,
                "run_command",
                value(RUN_COMMAND),
                "Run the tests {tests} (each one shell-quoted) and write JUnit XML to {result_file}.",
            );
            entry(
                &mut t,
                "test_id_format",
                value("{name}"),
                "How a JUnit testcase's {name} and {classname} make the discovered ID.",
            );
            t
        }
    };
    doc.insert("framework", Item::Table(framework_table));

    let filters_example = match framework {
        InitFramework::Pytest(_) => "filters = \"-m 'not slow'\"",
        InitFramework::Cargo => "filters = \"-E 'not test(slow)'\"",
        InitFramework::Node(_) => "filters = \"test/slow\"",
        InitFramework::Default => "filters = \"-name 'test_slow*'\"",
    };
    let mut groups = Table::new();
    groups.set_implicit(true);
    let mut all = section(&format!(
        "[groups.NAME]: each group is discovered on its own, with its own filters and retries.\n\
         Add more, e.g. [groups.slow] with {filters_example}"
    ));
    entry(
        &mut all,
        "retry_count",
        value(1),
        "Re-run a failed test up to this many times; a pass on a retry marks it flaky (exit code 2).",
    );
    entry(
        &mut all,
        "filters",
        value(""),
        &format!("Passed to discovery, e.g. {filters_example}"),
    );
    groups.insert("all", Item::Table(all));
    doc.insert("groups", Item::Table(groups));

    let mut report = section("[report]: what is written after the run.");
    entry(
        &mut report,
        "output_dir",
        value("test-results"),
        "junit.xml, logs/batch-N.*, timeline.html (and trace.json with `run --trace`) go here.",
    );
    entry(&mut report, "junit", value(true), "");
    entry(&mut report, "junit_file", value("junit.xml"), "");
    doc.insert("report", Item::Table(report));

    doc.to_string()
}

/// `[framework] type = "pytest"`, with what `init` learnt in the comments.
fn pytest_section(setup: &PytestSetup) -> Table {
    let mut head = String::from("[framework]: how tests are found and run.");
    for note in &setup.notes {
        head.push('\n');
        head.push_str(note);
    }
    let mut t = section(&head);
    entry(&mut t, "type", value("pytest"), "");
    let path_refs: Vec<&str> = setup.paths.iter().map(String::as_str).collect();
    entry(
        &mut t,
        "paths",
        string_array(&path_refs),
        "Where pytest collects tests, relative to the project root. [] lets pytest choose,\n\
         as a plain `pytest` would: its testpaths setting, else the whole project.",
    );
    let run_args_example = if setup.run_args.is_some() {
        ""
    } else {
        "\nExtra pytest arguments for batches only (not discovery), e.g.:\n\
         run_args = \"-p no:cacheprovider\""
    };
    entry(
        &mut t,
        "command",
        value(setup.command.as_str()),
        &format!(
            "How to start pytest (e.g. \"uv run pytest\", \".venv/bin/python -m pytest\").{run_args_example}"
        ),
    );
    if let Some(run_args) = &setup.run_args {
        entry(
            &mut t,
            "run_args",
            value(run_args.as_str()),
            "Arguments for batches only (not discovery). Offload runs batches in parallel itself:\n\
             -n 0 keeps the project's addopts from starting pytest-xdist workers in every batch.",
        );
    }
    t
}

/// Node's default test file names (`node --test` with no file arguments),
/// as an extended regular expression on paths: `*.test.js`, `*-test.js`,
/// `*_test.js`, `test-*.js`, `test.js`, anything under a `test/` directory;
/// `.js`, `.cjs`, `.mjs`.
const NODE_TEST_FILES: &str = r"(^|/)(test/.*|[^/]*[._-]test|test-[^/]*|test)\.[cm]?js$";

/// `discover_command` for `node --test`: the files Node would run, under the
/// group's filters (paths) or else ROOTS, one per line.
const NODE_DISCOVER: &str = r#"set -- {filters}
[ $# -gt 0 ] || set -- ROOTS
find "$@" -name node_modules -prune -o -name '.?*' -prune -o -type f -print |
  grep -E 'PATTERN' | sed 's|^\./||' | sort
"#;

/// `run_command` for `node --test`: each test file on its own (NODE is the
/// node command line), its output (TAP) to the batch log and, when it
/// fails, into the report; one JUnit testcase per file, timed by Node's own
/// `duration_ms`, its message the first failing test and the first line of
/// its error (`inner: The expression evaluated to a falsy value:`). Node 20's JUnit
/// reporter does not say which file a test is in, so its testcases could
/// not be told apart: the file is the test.
const NODE_RUN: &str = r#"x() { sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e 's/"/\&quot;/g'; }
{
echo '<testsuite name="node --test">'
for t in {tests}; do
  n=$(printf '%s' "$t" | x)
  if o=$(NODE "$t" 2>&1); then c=0; else c=$?; fi
  printf '%s\n' "$o" >&2
  s=$(printf '%s\n' "$o" | awk '/^# duration_ms /{d=$3} END{printf "%.3f", d/1000}')
  if [ "$c" = 0 ]; then
    echo "<testcase name=\"$n\" time=\"$s\"/>"
  else
    m=$(printf '%s\n' "$o" | awk '
      /^ *not ok [0-9]+ - / && !n { n = $0; sub(/^ *not ok [0-9]+ - /, "", n); next }
      n && /^ *error: / { e = $0; sub(/^ *error: */, "", e)
        if (e ~ /^[|>]/) { getline e; sub(/^ */, "", e) }
        gsub(/^\047|\047$/, "", e); print n ": " e; done = 1; exit }
      END { if (n && !done) print n }' | x)
    [ -n "$m" ] || m="node --test exited with code $c"
    echo "<testcase name=\"$n\" time=\"$s\"><failure message=\"$m\"/><system-out>$(printf '%s' "$o" | x)</system-out></testcase>"
  fi
done
echo '</testsuite>'
} > {result_file}
"#;

pub(super) fn node_discover_command(roots: &[String]) -> String {
    let roots: Vec<String> = roots.iter().map(|r| shell_quote(r)).collect();
    NODE_DISCOVER
        .replace("ROOTS", &roots.join(" "))
        .replace("PATTERN", NODE_TEST_FILES)
}

/// [`NODE_RUN`] with `node --test` and the project's own node `flags`.
pub(super) fn node_run_command(flags: &[String]) -> String {
    let mut node = String::from("node --test");
    for f in flags {
        node.push(' ');
        node.push_str(&shell_quote(f));
    }
    NODE_RUN.replace("NODE", &node)
}

/// `[framework] type = "default"` driving `node --test`.
fn node_section(setup: &NodeSetup) -> Table {
    let roots = setup
        .roots
        .iter()
        .map(|r| format!("`{r}`"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut t = section(&format!(
        "[framework]: how tests are found and run. \"default\": any runner, through commands;\n\
         here Node's test runner (`node --test`), one test per test file: Node runs each file\n\
         in a process of its own, and Offload spreads the files over the sandboxes.\n\
         Test files are those `node --test` picks under {roots} ({}).",
        "*.test.js, *-test.js, *_test.js, test-*.js, test.js, test/**/*.js; .cjs, .mjs"
    ));
    entry(&mut t, "type", value("default"), "");
    entry(
        &mut t,
        "discover_command",
        value(node_discover_command(&setup.roots)),
        &format!(
            "Print one test file per line. {{filters}}: the group's filters, paths to look in\n\
             instead of {roots}."
        ),
    );
    entry(
        &mut t,
        "run_command",
        value(node_run_command(&setup.flags)),
        "Run each test file {tests} with node --test and write one JUnit testcase per file to\n\
         {result_file}; the output of a failing file is kept in the report (`offload logs`).",
    );
    entry(
        &mut t,
        "test_id_format",
        value("{name}"),
        "The testcases above are named by their file, as discovered.",
    );
    t
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    use super::super::test_project::{temp_project, touch};

    fn pytest(command: &str, paths: &[&str]) -> PytestSetup {
        PytestSetup {
            command: command.into(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
            run_args: None,
            notes: Vec::new(),
        }
    }

    fn all_templates() -> Vec<(String, String)> {
        let frameworks = [
            InitFramework::Pytest(pytest("python -m pytest", &["tests"])),
            InitFramework::Pytest(PytestSetup {
                run_args: Some("-n 0".into()),
                notes: vec!["When this file was written, pytest collects 3 tests.".into()],
                ..pytest(".venv/bin/python -m pytest", &[])
            }),
            InitFramework::Cargo,
            InitFramework::Node(NodeSetup {
                roots: vec![".".into()],
                flags: vec![],
            }),
            InitFramework::Default,
        ];
        let mut out = Vec::new();
        for p in [InitProvider::Local, InitProvider::Directory] {
            for f in &frameworks {
                out.push((
                    format!("{p:?}/{}", framework_name(f)),
                    render_template(p, f, "a test"),
                ));
            }
        }
        out
    }

    #[test]
    fn every_template_passes_the_config_loader() {
        for (what, text) in all_templates() {
            let loaded = crate::config::parse_str(&text, Path::new("/project/offload.toml"))
                .unwrap_or_else(|e| panic!("{what}: {e}\n{text}"));
            assert!(
                loaded.warnings.is_empty(),
                "{what}: {:?}\n{text}",
                loaded.warnings
            );
            assert_eq!(loaded.config.groups.len(), 1, "{what}");
        }
    }

    #[test]
    fn template_is_commented_and_round_trips_through_toml() {
        for (what, text) in all_templates() {
            let doc: DocumentMut = text.parse().unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(
                doc["groups"]["all"]["retry_count"].as_integer(),
                Some(1),
                "{what}"
            );
            assert!(text.starts_with("# Offload configuration"), "{what}");
            assert!(
                text.matches("\n# ").count() >= 8,
                "{what}: few comments\n{text}"
            );
        }
    }

    #[test]
    fn local_pytest_template_snapshot_head() {
        let text = render_template(
            InitProvider::Local,
            &InitFramework::Pytest(pytest("python -m pytest", &["tests"])),
            "detected from pytest.ini",
        );
        let expected_start =
            "# Offload configuration, written by `offload init` (pytest framework, detected from pytest.ini).
# Check it with `offload validate` and `offload doctor`; the README describes every field.
#
# [offload]: how the run is shaped.
[offload]
# How many sandboxes run batches at the same time.
max_parallel = 4
";
        assert!(text.starts_with(expected_start), "{text}");
        assert!(
            text.contains("\n[framework]\ntype = \"pytest\"\n"),
            "{text}"
        );
        assert!(text.contains("command = \"python -m pytest\"\n"), "{text}");
    }

    /// The directory-sandbox commands really work with plain sh: create a
    /// sandbox, run a command in it, copy a file out, destroy it.
    #[test]
    fn directory_sandbox_commands_work_with_sh() {
        let project = temp_project("dirsandbox");
        touch(&project, "hello.txt", "hi\n");
        let sh = |script: &str| {
            let out = std::process::Command::new("/bin/sh")
                .args(["-c", script])
                .current_dir(&project)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{script}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        let unescape = |s: &str| s.replace("$$", "$");
        let id = sh(CREATE_COMMAND).trim().to_string();
        assert!(Path::new(&id).join("hello.txt").is_file(), "{id}");
        let quoted_id = crate::process::shell_quote(&id);
        let inner = "cd . && mkdir -p res && cat hello.txt > res/out.txt";
        sh(&EXEC_COMMAND
            .replace("{sandbox_id}", &quoted_id)
            .replace("{command}", &crate::process::shell_quote(inner)));
        let local = project.join("copied.txt");
        let pairs = format!(
            "{}:{}",
            crate::process::shell_quote("res/out.txt"),
            crate::process::shell_quote(&local.display().to_string())
        );
        sh(&unescape(DOWNLOAD_COMMAND)
            .replace("{sandbox_id}", &quoted_id)
            .replace("{paths}", &pairs));
        assert_eq!(std::fs::read_to_string(&local).unwrap(), "hi\n");
        sh(&DESTROY_COMMAND.replace("{sandbox_id}", &quoted_id));
        assert!(!Path::new(&id).exists());
        let _ = std::fs::remove_dir_all(&project);
    }

    /// The `default` framework example discovers `tests/test_*.sh` and
    /// writes JUnit that maps back to the discovered IDs.
    #[test]
    fn default_framework_example_discovers_and_writes_junit() {
        let project = temp_project("defaultfw");
        touch(&project, "tests/test_ok.sh", "exit 0\n");
        touch(&project, "tests/test_bad.sh", "echo oops; exit 3\n");
        let run = |script: &str| {
            std::process::Command::new("/bin/sh")
                .args(["-c", script])
                .current_dir(&project)
                .output()
                .unwrap()
        };
        let found = run(&DISCOVER_COMMAND.replace("{filters}", ""));
        assert_eq!(
            String::from_utf8_lossy(&found.stdout),
            "tests/test_bad.sh\ntests/test_ok.sh\n"
        );
        let junit = project.join("out.xml");
        let script = RUN_COMMAND
            .replace(
                "{result_file}",
                &crate::process::shell_quote(&junit.display().to_string()),
            )
            .replace("{tests}", "'tests/test_bad.sh' 'tests/test_ok.sh'");
        let out = run(&script);
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
        assert_eq!(
            std::fs::read_to_string(&junit).unwrap(),
            "<testsuite name=\"scripts\">\n\
             <testcase name=\"tests/test_bad.sh\"><failure message=\"exit code 3\"/></testcase>\n\
             <testcase name=\"tests/test_ok.sh\"/>\n\
             </testsuite>\n"
        );
        let _ = std::fs::remove_dir_all(&project);
    }

    /// The `node --test` discovery lists the files Node would run: its
    /// default names anywhere, anything under test/, never node_modules.
    #[test]
    fn node_discovery_lists_the_files_node_would_run() {
        let project = temp_project("nodedisc");
        for f in [
            "a.test.js",
            "b-test.mjs",
            "c_test.cjs",
            "test-d.js",
            "lib/test.js",
            "test/helpers/anything.js",
            "test/unit/e.test.js",
            "src/helper.js",
            "src/contest.js",
            "src/x.spec.js",
            "node_modules/dep/test/f.test.js",
            ".cache/g.test.js",
            "README.md",
        ] {
            touch(&project, f, "");
        }
        let discover = |roots: &[&str], filters: &str| {
            let roots: Vec<String> = roots.iter().map(|r| r.to_string()).collect();
            let script = node_discover_command(&roots).replace("{filters}", filters);
            let out = std::process::Command::new("/bin/sh")
                .args(["-c", &script])
                .current_dir(&project)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        assert_eq!(
            discover(&["."], ""),
            "a.test.js\nb-test.mjs\nc_test.cjs\nlib/test.js\ntest-d.js\n\
             test/helpers/anything.js\ntest/unit/e.test.js\n"
        );
        assert_eq!(
            discover(&["test"], ""),
            "test/helpers/anything.js\ntest/unit/e.test.js\n"
        );
        assert_eq!(
            discover(&["."], "test/unit lib"),
            "lib/test.js\ntest/unit/e.test.js\n"
        );
        let _ = std::fs::remove_dir_all(&project);
    }
}
