//! Test IDs that JUnit cannot carry as they are (`\x01`, an ANSI colour
//! sequence, U+FFFE, a raw tab), written into the runner's JUnit as they are
//! (`fixtures/control-ids`): every test gets its result, and the canonical
//! ID finds it in the merged report and the history.

mod common;

use std::time::Duration;

use common::{describe, junit_cases, offload, run_within, stdout, TempDir};

const IDS: [&str; 5] = [
    "pass_ctl_\x01_one",
    "fail_esc_\x1b[31mred\x1b[0m",
    "pass_nonchar_\u{FFFE}",
    "pass_tab_a\tb",
    "pass_plain",
];

#[test]
fn ids_with_control_characters_get_their_results_and_are_found_by_their_real_id() {
    let dir = TempDir::with_fixture("control-ids");
    let run = run_within(offload(&dir.path, &["run"], &[]), Duration::from_secs(60));
    let out = stdout(&run);
    // One test fails on purpose; none may be "not run".
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    let count = |label: &str| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .map(|n| n.trim().to_string())
    };
    assert_eq!(count("Passed:").as_deref(), Some("4"), "{}", describe(&run));
    assert_eq!(
        count("Not run:").as_deref(),
        Some("0"),
        "{}",
        describe(&run)
    );
    assert!(!out.contains("no result"), "{}", describe(&run));

    // The merged report has one testcase per test, each with its result, and
    // the name it can carry: the escape sequence gone, `\x01` and U+FFFE
    // as U+FFFD, the tab kept (as `&#9;`).
    let report = dir.join("test-results/junit.xml");
    let cases = junit_cases(&report);
    let mut names: Vec<(String, String)> = cases
        .iter()
        .map(|c| (c.name.clone(), c.status.clone()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("fail_esc_red".to_string(), "failure".to_string()),
            ("pass_ctl_\u{FFFD}_one".into(), "passed".into()),
            ("pass_nonchar_\u{FFFD}".into(), "passed".into()),
            ("pass_plain".into(), "passed".into()),
            ("pass_tab_a&#9;b".into(), "passed".into()),
        ]
    );

    // `offload logs --test` with the real ID finds each test.
    for id in IDS {
        let logs = run_within(
            offload(&dir.path, &["logs", "--test", id], &[]),
            Duration::from_secs(30),
        );
        let text = stdout(&logs);
        assert_eq!(logs.status.code(), Some(0), "{id:?}: {}", describe(&logs));
        let label = if id.starts_with("fail_") {
            "[FAILED]"
        } else {
            "[PASSED]"
        };
        assert_eq!(text.matches("=== ").count(), 1, "{id:?}: {text}");
        assert!(text.contains(label), "{id:?}: {text}");
    }
    let regex = run_within(
        offload(&dir.path, &["logs", "--test-regex", "^pass_tab_a b$"], &[]),
        Duration::from_secs(30),
    );
    assert!(stdout(&regex).contains("[PASSED]"), "{}", describe(&regex));

    // The history file has every test under its real ID (escaped the
    // history's way), and a second run knows all their durations.
    let history = std::fs::read_to_string(dir.join("offload.history.tsv")).unwrap();
    for id in [
        "pass_ctl_\x01_one",
        "fail_esc_\x1b[31mred\x1b[0m",
        "pass_tab_a\\tb",
    ] {
        assert!(history.contains(id), "{id:?} missing from:\n{history}");
    }
    std::fs::remove_file(dir.join("offload.history.tsv")).unwrap();
    // Without the history file, durations come from the merged report.
    let again = run_within(offload(&dir.path, &["run"], &[]), Duration::from_secs(60));
    let text = format!("{}{}", stdout(&again), common::stderr(&again));
    assert!(
        text.contains("durations for 5 of 5 tests"),
        "{}",
        describe(&again)
    );
}
