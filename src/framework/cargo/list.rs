//! Reading `cargo nextest list --message-format json`.

use std::collections::BTreeMap;

use serde::Deserialize;

/// What Offload reads of `cargo nextest list --message-format json`; every
/// other field is ignored. Maps are ordered as nextest orders them (sorted).
#[derive(Debug, Deserialize)]
struct Listing {
    #[serde(rename = "rust-suites")]
    rust_suites: Option<BTreeMap<String, Suite>>,
    /// Passed on as it is to the binaries metadata of the build's reuse.
    #[serde(rename = "rust-build-meta")]
    rust_build_meta: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Suite {
    #[serde(rename = "binary-id")]
    binary_id: Option<String>,
    /// Absent for a binary nextest skipped.
    #[serde(default)]
    testcases: BTreeMap<String, Case>,
    /// The rest: the binary's fields (`binary-path`, `package-id`, …).
    #[serde(flatten)]
    binary: serde_json::Map<String, serde_json::Value>,
}

/// The fields of a test binary in nextest's binaries metadata
/// (`cargo nextest list --list-type binaries-only`), which a suite of the
/// test listing carries too.
const BINARY_FIELDS: &[&str] = &[
    "binary-id",
    "binary-name",
    "package-id",
    "kind",
    "binary-path",
    "build-platform",
];

/// What the build's reuse needs from a listing.
#[derive(Debug, Default)]
pub struct Build {
    /// nextest's binaries metadata (`--binaries-metadata`) of the listed
    /// build, as JSON; `None` when the listing lacks what it needs (an old
    /// nextest).
    pub binaries_metadata: Option<String>,
    /// Every test binary's path.
    pub binaries: Vec<std::path::PathBuf>,
    /// The build's target directory.
    pub target_dir: Option<std::path::PathBuf>,
}

/// The listed build: its binaries, and the binaries metadata that lets
/// `cargo nextest run` use them without asking cargo.
pub fn build(stdout: &str) -> Build {
    let Ok(listing) = read(stdout) else {
        return Build::default();
    };
    let suites = listing.rust_suites.unwrap_or_default();
    let binaries: Vec<std::path::PathBuf> = suites
        .values()
        .filter_map(|s| s.binary.get("binary-path")?.as_str().map(Into::into))
        .collect();
    let target_dir = listing
        .rust_build_meta
        .as_ref()
        .and_then(|m| m.get("target-directory")?.as_str().map(Into::into));
    let complete = suites
        .values()
        .all(|s| BINARY_FIELDS[1..].iter().all(|f| s.binary.contains_key(*f)));
    let binaries_metadata = listing
        .rust_build_meta
        .filter(|_| complete && !suites.is_empty())
        .map(|meta| {
            let rust_binaries: serde_json::Map<String, serde_json::Value> = suites
                .iter()
                .map(|(key, suite)| {
                    let id = suite.binary_id.clone().unwrap_or_else(|| key.clone());
                    let mut fields: serde_json::Map<String, serde_json::Value> = BINARY_FIELDS[1..]
                        .iter()
                        .filter_map(|f| Some((f.to_string(), suite.binary.get(*f)?.clone())))
                        .collect();
                    fields.insert("binary-id".into(), id.clone().into());
                    (id, fields.into())
                })
                .collect();
            serde_json::json!({
                "rust-build-meta": meta,
                "rust-binaries": rust_binaries,
            })
            .to_string()
        });
    Build {
        binaries_metadata,
        binaries,
        target_dir,
    }
}

fn read(stdout: &str) -> Result<Listing, String> {
    // Cargo writes its build output to stderr; stdout holds one JSON document.
    // Tolerate stray lines around it.
    match serde_json::from_str(stdout.trim()) {
        Ok(listing) => Ok(listing),
        Err(first_error) => stdout
            .lines()
            .filter(|l| l.trim_start().starts_with('{'))
            .find_map(|l| serde_json::from_str(l).ok())
            .ok_or_else(|| format!("not the JSON nextest prints: {first_error}")),
    }
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
    let listing = read(stdout)?;
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
    fn the_build_of_a_listing_is_its_binaries_metadata() {
        let listing = r#"{
          "rust-build-meta": {"target-directory": "/p/target", "base-output-directories": ["debug"]},
          "rust-suites": {
            "alpha": {"binary-id": "alpha", "binary-name": "alpha", "package-id": "p#alpha",
                      "kind": "lib", "binary-path": "/p/target/debug/deps/alpha-1",
                      "build-platform": "target", "cwd": "/p/alpha", "status": "listed",
                      "testcases": {"t": {"filter-match": {"status": "matches"}}}},
            "alpha::integ": {"binary-id": "alpha::integ", "binary-name": "integ", "package-id": "p#alpha",
                      "kind": "test", "binary-path": "/p/target/debug/deps/integ-2",
                      "build-platform": "target", "cwd": "/p/alpha", "status": "skipped"}
          }
        }"#;
        let build = build(listing);
        assert_eq!(
            build.target_dir.as_deref(),
            Some(std::path::Path::new("/p/target"))
        );
        assert_eq!(build.binaries.len(), 2);
        let meta: serde_json::Value =
            serde_json::from_str(build.binaries_metadata.as_deref().unwrap()).unwrap();
        assert_eq!(meta["rust-build-meta"]["target-directory"], "/p/target");
        let integ = &meta["rust-binaries"]["alpha::integ"];
        assert_eq!(integ["binary-path"], "/p/target/debug/deps/integ-2");
        assert_eq!(integ["binary-id"], "alpha::integ");
        // Only what nextest's binary list has: no listing fields.
        assert!(integ.get("cwd").is_none() && integ.get("testcases").is_none());
        // A listing without the binaries' fields (an old nextest): no reuse.
        assert!(super::build(LISTING).binaries_metadata.is_none());
    }

    #[test]
    fn tolerates_noise_and_reports_garbage() {
        let noisy = format!("warning: something\n{}\n", LISTING.replace('\n', " "));
        assert_eq!(parse(&noisy).unwrap().len(), 3);
        assert!(parse("error: no such command: `nextest`").is_err());
        assert!(parse("{\"x\": 1}").unwrap_err().contains("rust-suites"));
    }
}
