//! Reading `cargo nextest list --message-format json`.

use std::collections::BTreeMap;

use serde::Deserialize;

/// What Offload reads of `cargo nextest list --message-format json`; every
/// other field is ignored. Maps are ordered as nextest orders them (sorted).
#[derive(Debug, Deserialize)]
struct Listing {
    #[serde(rename = "rust-suites")]
    rust_suites: Option<BTreeMap<String, Suite>>,
}

#[derive(Debug, Deserialize)]
struct Suite {
    #[serde(rename = "binary-id")]
    binary_id: Option<String>,
    /// Absent for a binary nextest skipped.
    #[serde(default)]
    testcases: BTreeMap<String, Case>,
}

#[derive(Debug, Deserialize)]
struct Case {
    /// Absent in old nextest versions: then every test is kept.
    #[serde(rename = "filter-match")]
    filter_match: Option<FilterMatch>,
}

#[derive(Debug, Deserialize)]
struct FilterMatch {
    /// `matches` or `mismatch`.
    status: String,
}

/// The tests nextest would run, as `"{binary_id} {test_name}"`, in nextest's
/// order (binaries, then tests, sorted). A test is kept when its
/// `filter-match` says `matches` (so a group's `-E` filter and ignored tests
/// are honoured); a listing without `filter-match` (old nextest) keeps all.
pub fn parse(stdout: &str) -> Result<Vec<String>, String> {
    // Cargo writes its build output to stderr; stdout holds one JSON document.
    // Tolerate stray lines around it.
    let listing: Listing = match serde_json::from_str(stdout.trim()) {
        Ok(listing) => listing,
        Err(first_error) => stdout
            .lines()
            .filter(|l| l.trim_start().starts_with('{'))
            .find_map(|l| serde_json::from_str(l).ok())
            .ok_or_else(|| format!("not the JSON nextest prints: {first_error}"))?,
    };
    let suites = listing
        .rust_suites
        .ok_or("the JSON has no `rust-suites` object")?;
    let mut ids = Vec::new();
    for (key, suite) in &suites {
        let binary_id = suite.binary_id.as_deref().unwrap_or(key);
        for (name, case) in &suite.testcases {
            let status = case.filter_match.as_ref().map(|m| m.status.as_str());
            if matches!(status, None | Some("matches")) {
                ids.push(format!("{binary_id} {name}"));
            }
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = r#"{
      "rust-build-meta": {"target-directory": "/p/target"},
      "test-count": 5,
      "rust-suites": {
        "alpha": {
          "binary-id": "alpha", "kind": "lib", "status": "listed",
          "testcases": {
            "tests::adds": {"kind": "test", "ignored": false, "filter-match": {"status": "matches"}},
            "tests::ignored_slow": {"kind": "test", "ignored": true,
                                    "filter-match": {"status": "mismatch", "reason": "ignored"}},
            "tests::shared_name": {"kind": "test", "ignored": false, "filter-match": {"status": "matches"}}
          }
        },
        "alpha::integ": {
          "binary-id": "alpha::integ", "kind": "test", "status": "listed",
          "testcases": {
            "shared_name": {"kind": "test", "ignored": false, "filter-match": {"status": "matches"}},
            "fails": {"kind": "test", "ignored": false,
                      "filter-match": {"status": "mismatch", "reason": "expression"}}
          }
        },
        "beta::custom": {"binary-id": "beta::custom", "status": "skipped", "testcases": {}},
        "gamma": {"binary-id": "gamma", "status": "skipped"}
      }
    }"#;

    #[test]
    fn keeps_what_matches() {
        assert_eq!(
            parse(LISTING).unwrap(),
            vec![
                "alpha tests::adds",
                "alpha tests::shared_name",
                "alpha::integ shared_name"
            ]
        );
    }

    #[test]
    fn tolerates_noise_and_reports_garbage() {
        let noisy = format!("warning: something\n{}\n", LISTING.replace('\n', " "));
        assert_eq!(parse(&noisy).unwrap().len(), 3);
        assert!(parse("error: no such command: `nextest`").is_err());
        assert!(parse("{\"x\": 1}").unwrap_err().contains("rust-suites"));
    }
}
