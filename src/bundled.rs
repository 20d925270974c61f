//! `@name.ext` in provider commands: scripts from `assets/` compiled into the
//! binary and extracted to a per-user cache directory, so a command such as
//! `uv run @modal_sandbox.py create {image_id}` works on a machine that has
//! nothing but the `offload` binary.
//!
//! Each script lands in `{cache}/offload/scripts/{content hash}/{name}`: two
//! builds of Offload with different versions of a script never overwrite each
//! other's file, and a file is written to a temporary name and renamed into
//! place, so a concurrent reader never sees half of it.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::process::shell_quote;

/// A script compiled into the binary.
pub struct Script {
    /// The name used after `@` (`modal_sandbox.py`).
    pub name: &'static str,
    pub contents: &'static [u8],
}

/// Every bundled script (the repository's `assets/`).
pub const SCRIPTS: &[Script] = &[Script {
    name: "modal_sandbox.py",
    contents: include_bytes!("../assets/modal_sandbox.py"),
}];

/// Replace every `@name.ext` reference in a command template with the
/// shell-quoted path of the extracted script. A reference is an `@` at the
/// start of the template or after whitespace, followed by a file name with an
/// extension; `user@host.example` is not one. Call this on the *template*,
/// before placeholders such as `{command}` are filled in, so that a test ID
/// that happens to contain `@x.py` is never rewritten.
pub fn expand(template: &str) -> Result<String, String> {
    expand_with(template, &mut |script| {
        extract(script, &cache_root()).map_err(|e| {
            format!(
                "cannot extract the bundled script @{} into {}: {e}; set XDG_CACHE_HOME to a writable directory",
                script.name,
                cache_root().display()
            )
        })
    })
}

/// Check a template's `@name.ext` references without extracting anything:
/// an unknown name is an error naming it and the bundled scripts (for
/// config validation).
pub fn check(template: &str) -> Result<(), String> {
    expand_with(template, &mut |script| Ok(PathBuf::from(script.name))).map(|_| ())
}

fn expand_with(
    template: &str,
    path_of: &mut dyn FnMut(&'static Script) -> Result<PathBuf, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut last = 0;
    for (start, end) in reference_spans(template) {
        let name = &template[start + 1..end];
        let script = find(name).ok_or_else(|| {
            let known: Vec<String> = SCRIPTS.iter().map(|s| format!("@{}", s.name)).collect();
            format!(
                "unknown bundled script @{name}; the bundled scripts are: {}",
                known.join(", ")
            )
        })?;
        out.push_str(&template[last..start]);
        out.push_str(&shell_quote(&path_of(script)?.display().to_string()));
        last = end;
    }
    out.push_str(&template[last..]);
    Ok(out)
}

/// Byte ranges of `@name.ext` references (the range includes the `@`).
fn reference_spans(template: &str) -> Vec<(usize, usize)> {
    let bytes = template.as_bytes();
    let is_name = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
    let mut spans = Vec::new();
    for (i, &b) in bytes.iter().enumerate() {
        if b != b'@' || (i > 0 && !bytes[i - 1].is_ascii_whitespace()) {
            continue;
        }
        let end = bytes[i + 1..]
            .iter()
            .position(|&c| !is_name(c))
            .map_or(bytes.len(), |p| i + 1 + p);
        let name = &template[i + 1..end];
        // A file name with an extension: `x.py`, not `x`, `.py` or `x.`.
        let dotted = name.contains('.') && !name.starts_with('.') && !name.ends_with('.');
        if dotted {
            spans.push((i, end));
        }
    }
    spans
}

fn find(name: &str) -> Option<&'static Script> {
    SCRIPTS.iter().find(|s| s.name == name)
}

/// `$XDG_CACHE_HOME/offload/scripts`, else `~/.cache/offload/scripts`, else a
/// directory of this user's in the system temp dir.
pub fn cache_root() -> PathBuf {
    let absolute = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    if let Some(xdg) = absolute("XDG_CACHE_HOME") {
        return xdg.join("offload").join("scripts");
    }
    if let Some(home) = absolute("HOME") {
        return home.join(".cache").join("offload").join("scripts");
    }
    temp_root()
}

/// `/tmp/offload-{uid}/scripts`.
fn temp_root() -> PathBuf {
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir()
        .join(format!("offload-{uid}"))
        .join("scripts")
}

/// Write `script` under `root` (unless an identical copy is there already) and
/// return its path. Falls back to the temp-dir root when `root` is not
/// writable (a read-only home directory).
pub fn extract(script: &Script, root: &Path) -> std::io::Result<PathBuf> {
    let fallback = temp_root();
    let in_temp = |script: &Script| {
        ensure_private_dir(fallback.parent().unwrap_or(&fallback))?;
        extract_into(script, &fallback)
    };
    if root == fallback {
        return in_temp(script);
    }
    extract_into(script, root).or_else(|e| in_temp(script).map_err(|_| e))
}

fn extract_into(script: &Script, root: &Path) -> std::io::Result<PathBuf> {
    let dir = root.join(content_hash(script.contents));
    let path = dir.join(script.name);
    if std::fs::read(&path).is_ok_and(|existing| existing == script.contents) {
        return Ok(path);
    }
    let options = crate::files::AtomicOptions {
        sync: true,
        mode: Some(0o755),
    };
    crate::files::write_atomically(&path, options, |f| f.write_all(script.contents))?;
    Ok(path)
}

/// A directory in the shared temp dir must be ours and private, or another
/// user could swap the script we are about to run.
fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::symlink_metadata(dir)?;
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o022 != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} is not a private directory owned by this user",
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// FNV-1a, 64 bits, as 16 hex digits: enough to tell script versions apart.
fn content_hash(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let p = std::env::temp_dir().join(format!(
                "offload-bundled-test-{}-{tag}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn fake_paths(template: &str) -> Result<String, String> {
        expand_with(template, &mut |s| {
            Ok(PathBuf::from(format!("/cache/{}", s.name)))
        })
    }

    #[test]
    fn no_reference_leaves_the_template_alone() {
        let t = "ssh root@127.0.0.1 -p 2222 {command}";
        assert_eq!(fake_paths(t).unwrap(), t);
    }

    #[test]
    fn references_at_start_and_after_whitespace_are_expanded() {
        assert_eq!(
            fake_paths("uv run @modal_sandbox.py exec {sandbox_id} {command}").unwrap(),
            "uv run /cache/modal_sandbox.py exec {sandbox_id} {command}"
        );
        assert_eq!(
            fake_paths("@modal_sandbox.py create").unwrap(),
            "/cache/modal_sandbox.py create"
        );
        assert_eq!(
            fake_paths("a @modal_sandbox.py;\tb\t@modal_sandbox.py").unwrap(),
            "a /cache/modal_sandbox.py;\tb\t/cache/modal_sandbox.py"
        );
    }

    #[test]
    fn at_inside_a_word_or_without_extension_is_not_a_reference() {
        for t in [
            "x@modal_sandbox.py",
            "npx foo@latest",
            "echo @everyone",
            "mail @.py",
            "a @x.",
        ] {
            assert_eq!(fake_paths(t).unwrap(), t, "{t}");
        }
    }

    #[test]
    fn unknown_script_names_it_and_the_known_ones() {
        let err = fake_paths("uv run @modal_sandbx.py create").unwrap_err();
        assert!(err.contains("@modal_sandbx.py"), "{err}");
        assert!(err.contains("@modal_sandbox.py"), "{err}");
    }

    #[test]
    fn check_finds_unknown_names_without_extracting() {
        assert!(check("uv run @modal_sandbox.py create {image_id}").is_ok());
        assert!(check("ssh user@host.example {command}").is_ok());
        let err = check("a @modal_sandbox.py b @other.sh").unwrap_err();
        assert!(
            err.contains("@other.sh") && err.contains("@modal_sandbox.py"),
            "{err}"
        );
    }

    #[test]
    fn paths_with_spaces_are_quoted() {
        let out = expand_with("uv run @modal_sandbox.py", &mut |_| {
            Ok(PathBuf::from("/my cache/m.py"))
        })
        .unwrap();
        assert_eq!(out, "uv run '/my cache/m.py'");
    }

    #[test]
    fn extraction_is_keyed_by_content_and_idempotent() {
        let root = TempDir::new("extract");
        let a = Script {
            name: "x.py",
            contents: b"print(1)\n",
        };
        let b = Script {
            name: "x.py",
            contents: b"print(2)\n",
        };
        let pa = extract_into(&a, &root.0).unwrap();
        let pb = extract_into(&b, &root.0).unwrap();
        assert_ne!(pa, pb, "two versions must not share a path");
        assert_eq!(std::fs::read(&pa).unwrap(), a.contents);
        assert_eq!(std::fs::read(&pb).unwrap(), b.contents);
        assert_eq!(pa.file_name().unwrap(), "x.py");
        // A second extraction reuses the file; a damaged copy is rewritten.
        assert_eq!(extract_into(&a, &root.0).unwrap(), pa);
        std::fs::write(&pa, "garbage").unwrap();
        extract_into(&a, &root.0).unwrap();
        assert_eq!(std::fs::read(&pa).unwrap(), a.contents);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&pa).unwrap().permissions().mode() & 0o777,
            0o755
        );
        // No temporary files are left behind.
        let leftovers: Vec<_> = std::fs::read_dir(pa.parent().unwrap())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn concurrent_extractions_agree() {
        let root = TempDir::new("concurrent");
        let script = &SCRIPTS[0];
        let paths: Vec<PathBuf> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| extract_into(script, &root.0).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(paths.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(std::fs::read(&paths[0]).unwrap(), script.contents);
    }

    #[test]
    fn bundled_modal_script_is_the_asset() {
        let script = find("modal_sandbox.py").expect("modal_sandbox.py is bundled");
        assert!(std::str::from_utf8(script.contents)
            .unwrap()
            .contains("# /// script"));
    }
}
