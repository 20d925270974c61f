//! What `cargo nextest list` reads, as the key of its reuse
//! (`discover::cache`).
//!
//! Seen: the listing command with the group's filters and the framework's
//! options; `PATH` and every `CARGO*` and `RUST*` environment variable;
//! every file of the workspace (sources, manifests, `Cargo.lock`, build
//! scripts, data files; not `target/` or any directory marked with a
//! `CACHEDIR.TAG`, as cargo marks its target directories, nor hidden
//! directories); `.cargo/config.toml`, `.config/nextest.toml` and
//! `rust-toolchain(.toml)` in the workspace and above it; the `cargo` and
//! `cargo-nextest` programs. The last listing's test binaries, its
//! metadata files and the toolchain's library directory count as products
//! (see `Discovery::products`): a rebuild, a `cargo clean` or a toolchain
//! update redoes the discovery.
//!
//! Not seen: path dependencies outside the workspace, files a build script
//! reads from elsewhere.

use std::path::{Path, PathBuf};

use crate::framework::DiscoveryInputs;

/// The key of a discovery that runs `script` in `working_dir`.
pub fn discovery_inputs(script: &str, working_dir: &Path) -> DiscoveryInputs {
    let mut text = vec![script.to_string()];
    let mut vars: Vec<(String, String)> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .filter(|(k, _)| k == "PATH" || k.starts_with("CARGO") || k.starts_with("RUST"))
        .collect();
    vars.sort();
    text.extend(vars.into_iter().map(|(k, v)| format!("{k}={v}")));

    let root = workspace_root(working_dir);
    let mut files = Vec::new();
    for dir in root.ancestors() {
        for f in [
            ".cargo/config.toml",
            ".cargo/config",
            "rust-toolchain",
            "rust-toolchain.toml",
        ] {
            files.push(dir.join(f));
        }
    }
    files.push(root.join(".config/nextest.toml"));
    if let Some(home) = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
    {
        files.push(home.join("config.toml"));
    }
    let stamps = ["cargo", "cargo-nextest"]
        .iter()
        .filter_map(|p| crate::framework::find_program(p, working_dir))
        .collect();
    DiscoveryInputs {
        text,
        files,
        trees: vec![root],
        skip_dirs: vec!["target"],
        stamps,
    }
}

/// The outermost directory at or above `working_dir` whose `Cargo.toml`
/// declares a `[workspace]`; `working_dir` itself when none does.
fn workspace_root(working_dir: &Path) -> PathBuf {
    let mut root = working_dir.to_path_buf();
    for dir in working_dir.ancestors() {
        if std::fs::read_to_string(dir.join("Cargo.toml"))
            .is_ok_and(|t| t.lines().any(|l| l.trim() == "[workspace]"))
        {
            root = dir.to_path_buf();
        }
    }
    root
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_is_walked_from_its_root() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cargo-workspace");
        let inputs = discovery_inputs("cargo nextest list", &fixture.join("alpha"));
        assert_eq!(inputs.trees, std::slice::from_ref(&fixture));
        assert!(inputs.files.contains(&fixture.join(".config/nextest.toml")));
        assert!(inputs.text.iter().any(|t| t.starts_with("PATH=")));
    }
}
