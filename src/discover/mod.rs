//! Discovery: every `[groups.NAME]` through the framework, one group after
//! another, into the run's [`TestTable`] of canonical test IDs — or, while
//! nothing a group's discovery reads has changed, its last result
//! ([`cache`]).

pub mod cache;

use std::sync::Arc;
use std::time::Duration;

use crate::cancel::Cancel;
use crate::config::GroupConfig;
use crate::error::{Error, Result};
use crate::framework::Framework;
use crate::process::LineSink;

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
    /// Per group: its IDs are the last run's, reused (see [`cache`]): a
    /// test the runner does not find means discovering again.
    pub reused: Vec<bool>,
    /// Per group: what its discovery left for its batches
    /// ([`crate::framework::Discovery::for_batches`]).
    pub for_batches: Vec<Option<Arc<str>>>,
    /// Tests discovery found that this run leaves to others (the other
    /// shards of `--shard`, the tests that passed for `--failed`): the
    /// timing history counts them as seen, so that a run of a part of the
    /// suite does not age out the rest.
    pub left_out: Arc<[String]>,
}

impl TestTable {
    /// Whether group `group`'s IDs come from a reused discovery.
    pub fn is_reused(&self, group: usize) -> bool {
        self.reused.get(group).copied().unwrap_or(false)
    }

    /// Keep only the tests for which `keep` (by index) is true; the others
    /// are [`TestTable::left_out`].
    pub fn retain(&mut self, keep: &[bool]) {
        let mut left_out: Vec<String> = self.left_out.to_vec();
        let tests = std::mem::take(&mut self.tests);
        for (entry, &k) in tests
            .into_iter()
            .zip(keep.iter().chain(std::iter::repeat(&false)))
        {
            if k {
                self.tests.push(entry);
            } else {
                left_out.push(entry.id);
            }
        }
        self.left_out = left_out.into();
    }

    /// What group `group`'s batches get from its discovery.
    pub fn for_batches(&self, group: usize) -> Option<&Arc<str>> {
        self.for_batches.get(group).and_then(Option::as_ref)
    }
}

/// What discovery tells whoever watches it (the run's reporters, or stderr).
#[derive(Clone, Copy, Debug)]
pub enum Progress<'a> {
    /// Group `group` (index into the config's groups) is being discovered
    /// with `command`.
    Started { group: usize, command: &'a str },
    /// Something the user should know that does not stop the run.
    Warning(&'a str),
    /// A note on how discovery goes (a group's last discovery reused).
    Note(&'a str),
    /// Group `group` found `tests` tests (before duplicates are removed).
    Finished { group: usize, tests: usize },
}

/// Discover every group, one after another. An ID found by several groups
/// runs once, in the first group that found it. With a `cache`, a group
/// whose inputs did not change since its last discovery reuses it, and
/// every fresh discovery is stored (the caller saves the cache). `output`
/// gets the discovery commands' output lines as they come (`-v`).
pub fn discover_all(
    framework: &dyn Framework,
    groups: &[GroupConfig],
    cancel: &Cancel,
    progress: &mut dyn FnMut(Progress<'_>),
    mut cache: Option<&mut cache::DiscoveryCache>,
    output: Option<&LineSink>,
) -> Result<TestTable> {
    // Every group's IDs are kept until all are discovered, so duplicates are
    // found by borrowing them (no copy of each ID).
    let mut found: Vec<crate::framework::Discovery> = Vec::with_capacity(groups.len());
    let mut reused = Vec::with_capacity(groups.len());
    if let Some(cache) = cache.as_deref_mut() {
        cache.keep_only(groups);
    }
    for (g, group) in groups.iter().enumerate() {
        // The phase's time includes checking the key, so that what reuse
        // costs shows.
        progress(Progress::Started {
            group: g,
            command: &framework.discovery_command(group),
        });
        let lookup = cache.as_deref().and_then(|cache| {
            let inputs = framework.discovery_inputs(group)?;
            Some(cache.lookup(group, &inputs))
        });
        let (discovery, key, was_reused) = match lookup {
            Some(cache::Lookup::Reused(discovery)) => {
                progress(Progress::Note(&format!(
                    "group `{}`: reusing the last discovery ({} tests): nothing it depends on changed \
                     (`offload run --rediscover` discovers afresh)",
                    group.name,
                    discovery.ids.len()
                )));
                (discovery, None, true)
            }
            Some(cache::Lookup::Changed { key, why }) => {
                if why != "no earlier discovery" {
                    progress(Progress::Note(&format!(
                        "group `{}`: discovering afresh: {why}",
                        group.name
                    )));
                }
                (framework.discover(group, cancel, output)?, Some(key), false)
            }
            None => (framework.discover(group, cancel, output)?, None, false),
        };
        if cancel.is_cancelled() {
            return Err(Error::new("discovery cancelled"));
        }
        reused.push(was_reused);
        if let (Some(cache), Some(key)) = (cache.as_deref_mut(), key) {
            cache.store(group, key, &discovery);
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
        reused,
        for_batches: found
            .iter_mut()
            .map(|d| d.for_batches.take().map(Arc::from))
            .collect(),
        left_out: Arc::from(Vec::new()),
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
/// always afresh, warnings straight to stderr.
pub fn discover_all_quietly(
    framework: &dyn Framework,
    groups: &[GroupConfig],
    cancel: &Cancel,
) -> Result<TestTable> {
    discover_all(
        framework,
        groups,
        cancel,
        &mut |p| {
            if let Progress::Warning(w) = p {
                crate::console::errln!("warning: {w}");
            }
        },
        None,
        None,
    )
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
        fn discover(
            &self,
            group: &GroupConfig,
            _: &Cancel,
            _: Option<&LineSink>,
        ) -> Result<Discovery> {
            let ids: Vec<String> = group.filters.split(' ').map(str::to_string).collect();
            let runner_ids = group
                .name
                .starts_with('r')
                .then(|| ids.iter().map(|i| format!("sub/{i}")).collect());
            Ok(Discovery {
                ids,
                runner_ids,
                warnings: vec![],
                ..Default::default()
            })
        }
        fn discovery_command(&self, group: &GroupConfig) -> String {
            format!("list {}", group.filters)
        }
        fn batch_command(&self, _: &[String], _: &str, _: Option<&str>) -> BatchCommand {
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
        let table = discover_all(
            &Listed,
            &groups,
            &Cancel::new(),
            &mut |p| seen.push(format!("{p:?}")),
            None,
            None,
        )
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
