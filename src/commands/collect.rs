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
    let table =
        crate::discover::discover_all_quietly(framework.as_ref(), &config.groups, &Cancel::new())?;
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

/// `{"total": N, "groups": [{"name": .., "retry_count": .., "tests": [..]}]}`.
fn print_json(table: &TestTable) {
    let groups: Vec<serde_json::Value> = table
        .groups
        .iter()
        .enumerate()
        .map(|(g, group)| {
            let tests: Vec<&str> = table
                .tests
                .iter()
                .filter(|t| t.group == g)
                .map(|t| t.id.as_str())
                .collect();
            serde_json::json!({
                "name": group.name,
                "retry_count": group.retry_count,
                "filters": group.filters,
                "tests": tests,
            })
        })
        .collect();
    let doc = serde_json::json!({ "total": table.tests.len(), "groups": groups });
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}
