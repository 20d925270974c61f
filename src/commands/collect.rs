//! `offload collect`: discovery only, in a deterministic order.

use std::path::Path;

use crate::cancel::Cancel;
use crate::cli::CollectArgs;
use crate::discover::TestTable;
use crate::error::{Error, Result};
use crate::Verdict;

pub fn collect(config_path: &Path, args: &CollectArgs) -> Result<Verdict> {
    let config = super::load_config(config_path)?;
    if args.format != "text" && args.format != "json" {
        return Err(Error::new(format!(
            "unknown format {:?}: use -f text or -f json",
            args.format
        )));
    }
    let framework = crate::framework::from_config(&config)?;
    let mut table =
        crate::discover::discover_all_quietly(framework.as_ref(), &config.groups, &Cancel::new())?;
    if let Some(shard) = args.shard {
        // The same split as `offload run --shard`: discovery and the
        // committed history alone.
        let history = crate::history::History::from_file(&crate::history::path_for(&config));
        let keep = crate::schedule::shard::select(&table, &history, shard);
        table.retain(&keep);
    }
    if args.format == "json" {
        print_json(&table);
    } else {
        print_text(&table);
    }
    Ok(Verdict::Success)
}

/// One ID per line, groups in config order, tests in discovery order.
pub fn print_text(table: &TestTable) {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for t in &table.tests {
        let _ = writeln!(out, "{}", t.id);
    }
    let _ = writeln!(
        out,
        "{} tests in {} groups",
        table.tests.len(),
        table.groups.len()
    );
}

/// `offload collect -f json`. Fields are written in this order (sorted, as
/// they always were).
#[derive(serde::Serialize)]
struct CollectJson<'a> {
    groups: Vec<GroupJson<'a>>,
    total: usize,
}

#[derive(serde::Serialize)]
struct GroupJson<'a> {
    filters: &'a str,
    name: &'a str,
    retry_count: u32,
    tests: Vec<&'a str>,
}

/// `{"groups": [{"filters": .., "name": .., "retry_count": .., "tests": [..]}], "total": N}`.
/// A closed pipe (`| head`) ends the output quietly.
fn print_json(table: &TestTable) {
    use std::io::Write;
    let groups = table
        .groups
        .iter()
        .enumerate()
        .map(|(g, group)| GroupJson {
            filters: &group.filters,
            name: &group.name,
            retry_count: group.retry_count,
            tests: table
                .tests
                .iter()
                .filter(|t| t.group == g)
                .map(|t| t.id.as_str())
                .collect(),
        })
        .collect();
    let doc = CollectJson {
        groups,
        total: table.tests.len(),
    };
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}
