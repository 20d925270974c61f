//! One build for every batch: discovery's `cargo nextest list` builds the
//! tests; its listing and one `cargo metadata` become the binaries metadata
//! and cargo metadata that let each batch's `cargo nextest run` use that
//! build without asking cargo (no build check, no `cargo metadata`).
//!
//! The two files are written into the build's target directory
//! (`target/nextest/offload/`), named by their contents, so concurrent runs
//! and several configs never clash. What the batches need travels as
//! [`crate::framework::Discovery::for_batches`]: the two paths and the
//! directory the build is valid in. A batch uses them only where both files
//! exist and it runs in that very directory (the local provider); anywhere
//! else (a remote sandbox with its own copy of the project) it runs
//! `cargo nextest run` as before, which builds there.

use std::path::{Path, PathBuf};

use crate::process::shell_quote;

/// What a batch needs to reuse discovery's build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reuse {
    pub binaries_metadata: PathBuf,
    pub cargo_metadata: PathBuf,
    /// The directory (canonical) the build's batches must run in.
    pub workspace: PathBuf,
}

impl Reuse {
    /// As [`crate::framework::Discovery::for_batches`] carries it: one
    /// `key=value` line each.
    pub fn encode(&self) -> String {
        format!(
            "binaries-metadata={}\ncargo-metadata={}\nworkspace={}",
            self.binaries_metadata.display(),
            self.cargo_metadata.display(),
            self.workspace.display()
        )
    }

    /// The reverse of [`Reuse::encode`]; `None` for anything else.
    pub fn decode(text: &str) -> Option<Reuse> {
        let get = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(PathBuf::from)
        };
        Some(Reuse {
            binaries_metadata: get("binaries-metadata")?,
            cargo_metadata: get("cargo-metadata")?,
            workspace: get("workspace")?,
        })
    }

    /// Shell lines that set the positional parameters to the options that
    /// choose the build: discovery's, where this batch can use it, else
    /// `build_options` (cargo builds here).
    pub fn choose_script(&self, build_options: &str) -> String {
        let bm = shell_quote(&self.binaries_metadata.to_string_lossy());
        let cm = shell_quote(&self.cargo_metadata.to_string_lossy());
        let wd = shell_quote(&self.workspace.to_string_lossy());
        format!(
            "if [ -f {bm} ] && [ -f {cm} ] && [ \"$(pwd -P)\" = {wd} ]; then\n\
             set -- --binaries-metadata {bm} --cargo-metadata {cm}\n\
             else\n\
             set --{build_options}\n\
             fi\n"
        )
    }
}

/// Write `binaries_metadata` and `cargo_metadata` (JSON) into
/// `target_dir/nextest/offload/`, named by content (an existing file of
/// that name is already right), and say where.
pub fn store(
    target_dir: &Path,
    binaries_metadata: &str,
    cargo_metadata: &str,
    workspace: &Path,
) -> std::io::Result<Reuse> {
    let dir = target_dir.join("nextest").join("offload");
    let write = |kind: &str, json: &str| -> std::io::Result<PathBuf> {
        use std::hash::Hasher;
        let mut h = rustc_hash::FxHasher::default();
        h.write(json.as_bytes());
        let path = dir.join(format!("{kind}-{:016x}.json", h.finish()));
        if std::fs::read(&path).ok().as_deref() != Some(json.as_bytes()) {
            crate::files::write_text_atomically(&path, json)?;
        }
        Ok(path)
    };
    Ok(Reuse {
        binaries_metadata: write("binaries-metadata", binaries_metadata)?,
        cargo_metadata: write("cargo-metadata", cargo_metadata)?,
        workspace: std::fs::canonicalize(workspace).unwrap_or_else(|_| workspace.to_path_buf()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_batches_get_survives_the_trip() {
        let r = Reuse {
            binaries_metadata: "/t/nextest/offload/binaries-metadata-1.json".into(),
            cargo_metadata: "/t/nextest/offload/cargo-metadata-2.json".into(),
            workspace: "/p/my ws".into(),
        };
        assert_eq!(Reuse::decode(&r.encode()), Some(r));
        assert_eq!(Reuse::decode("something else"), None);
    }

    #[test]
    fn files_are_named_by_content_and_written_once() {
        let dir = std::env::temp_dir().join(format!("offload-reuse-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let a = store(&dir, "{\"b\":1}", "{\"c\":1}", &dir).unwrap();
        let again = store(&dir, "{\"b\":1}", "{\"c\":1}", &dir).unwrap();
        let other = store(&dir, "{\"b\":2}", "{\"c\":1}", &dir).unwrap();
        assert_eq!(a, again);
        assert_ne!(a.binaries_metadata, other.binaries_metadata);
        assert_eq!(a.cargo_metadata, other.cargo_metadata);
        assert_eq!(
            std::fs::read_to_string(&other.binaries_metadata).unwrap(),
            "{\"b\":2}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
