//! Discovery: every `[groups.NAME]` through the framework, one group after
//! another, into the run's [`TestTable`] of canonical test IDs.

use std::time::Duration;

use crate::cancel::Cancel;
use crate::config::GroupConfig;
use crate::error::{Error, Result};
use crate::framework::Framework;

/// One discovered test.
#[derive(Clone, Debug)]
pub struct TestEntry {
    /// The canonical ID.
    pub id: String,
    /// Index into [`TestTable::groups`].
    pub group: usize,
    /// Expected duration, from history or the group's typical duration.
    pub expected: Duration,
    /// How the runner itself names the test in its JUnit, when that differs
    /// from the canonical ID (pytest with a rootdir that is not the working
    /// directory). Matching results needs it; it travels with the test.
    pub runner_id: Option<Box<str>>,
}

impl TestEntry {
    /// The name result matching looks for: the runner's, else the ID.
    pub fn runner_id(&self) -> &str {
        self.runner_id.as_deref().unwrap_or(&self.id)
    }
}

/// Every test of the run, in discovery order. Tests are referred to by their
/// index in `tests` everywhere else.
#[derive(Clone, Debug, Default)]
pub struct TestTable {
    pub tests: Vec<TestEntry>,
    pub groups: Vec<GroupConfig>,
}

/// What discovery tells whoever watches it (the run's reporters, or stderr).
#[derive(Clone, Copy, Debug)]
pub enum Progress<'a> {
    /// Group `group` (index into the config's groups) is being discovered
    /// with `command`.
    Started { group: usize, command: &'a str },
    /// Something the user should know that does not stop the run.
    Warning(&'a str),
    /// Group `group` found `tests` tests (before duplicates are removed).
    Finished { group: usize, tests: usize },
}

/// Discover every group, one after another. An ID found by several groups
/// runs once, in the first group that found it.
pub fn discover_all(
    framework: &dyn Framework,
    groups: &[GroupConfig],
    cancel: &Cancel,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<TestTable> {
    // Every group's IDs are kept until all are discovered, so duplicates are
    // found by borrowing them (no copy of each ID).
    let mut found: Vec<crate::framework::Discovery> = Vec::with_capacity(groups.len());
    for (g, group) in groups.iter().enumerate() {
        progress(Progress::Started {
            group: g,
            command: &framework.discovery_command(group),
        });
        let discovery = framework.discover(group, cancel)?;
        if cancel.is_cancelled() {
            return Err(Error::new("discovery cancelled"));
        }
        for w in &discovery.warnings {
            progress(Progress::Warning(w));
        }
        progress(Progress::Finished {
            group: g,
            tests: discovery.ids.len(),
        });
        found.push(discovery);
    }
    let keep: Vec<Vec<bool>> = {
        let total = found.iter().map(|d| d.ids.len()).sum();
        let mut seen: rustc_hash::FxHashSet<&str> =
            rustc_hash::FxHashSet::with_capacity_and_hasher(total, Default::default());
        found
            .iter()
            .map(|d| d.ids.iter().map(|id| seen.insert(id.as_str())).collect())
            .collect()
    };
    let mut table = TestTable {
        tests: Vec::with_capacity(keep.iter().flatten().filter(|&&k| k).count()),
        groups: groups.to_vec(),
    };
    for (g, (discovery, keep)) in found.into_iter().zip(keep).enumerate() {
        let duplicates = keep.iter().filter(|&&k| !k).count();
        if duplicates > 0 {
            progress(Progress::Warning(&format!(
                "group `{}`: {duplicates} test(s) also found by an earlier group run once, in that group",
                groups[g].name
            )));
        }
        let mut runner_ids = discovery.runner_ids.map(Vec::into_iter);
        for (id, k) in discovery.ids.into_iter().zip(keep) {
            let runner_id = runner_ids
                .as_mut()
                .and_then(Iterator::next)
                .filter(|r| *r != id)
                .map(String::into_boxed_str);
            if k {
                table.tests.push(TestEntry {
                    id,
                    group: g,
                    expected: Duration::ZERO,
                    runner_id,
                });
            }
        }
    }
    Ok(table)
}

/// [`discover_all`] for commands that are not a run (`collect`, `doctor`):
/// warnings go straight to stderr.
pub fn discover_all_quietly(
    framework: &dyn Framework,
    groups: &[GroupConfig],
    cancel: &Cancel,
) -> Result<TestTable> {
    discover_all(framework, groups, cancel, &mut |p| {
        if let Progress::Warning(w) = p {
            crate::console::errln!("warning: {w}");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::{BatchCommand, Discovery, MatchedResults};
    use crate::junit::read::JunitCase;

    /// Discovers `group.filters` split at spaces; runner names are the IDs
    /// with a prefix when the group's name starts with `r`.
    struct Listed;
    impl Framework for Listed {
        fn discover(&self, group: &GroupConfig, _: &Cancel) -> Result<Discovery> {
            let ids: Vec<String> = group.filters.split(' ').map(str::to_string).collect();
            let runner_ids = group
                .name
                .starts_with('r')
                .then(|| ids.iter().map(|i| format!("sub/{i}")).collect());
            Ok(Discovery {
                ids,
                runner_ids,
                warnings: vec![],
            })
        }
        fn discovery_command(&self, group: &GroupConfig) -> String {
            format!("list {}", group.filters)
        }
        fn batch_command(&self, _: &[String], _: &str) -> BatchCommand {
            unreachable!()
        }
        fn match_results(&self, _: Vec<JunitCase>, _: &[String]) -> MatchedResults {
            unreachable!()
        }
        fn hints(&self) -> crate::framework::Hints {
            Default::default()
        }
    }

    fn group(name: &str, ids: &str) -> GroupConfig {
        GroupConfig {
            name: name.into(),
            retry_count: 0,
            filters: ids.into(),
        }
    }

    #[test]
    fn duplicates_run_once_in_the_first_group_and_runner_ids_travel_with_the_tests() {
        let groups = [group("a", "x y"), group("rb", "y z")];
        let mut seen = Vec::new();
        let table = discover_all(&Listed, &groups, &Cancel::new(), &mut |p| {
            seen.push(format!("{p:?}"))
        })
        .unwrap();
        let ids: Vec<(&str, usize, &str)> = table
            .tests
            .iter()
            .map(|t| (t.id.as_str(), t.group, t.runner_id()))
            .collect();
        assert_eq!(ids, [("x", 0, "x"), ("y", 0, "y"), ("z", 1, "sub/z")]);
        assert_eq!(seen.len(), 5, "{seen:?}");
        assert!(seen[4].contains("1 test(s) also found by an earlier group"));
    }
}
