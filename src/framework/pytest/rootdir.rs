//! Where pytest's node IDs are rooted.
//!
//! pytest prints node IDs relative to its *rootdir* (the directory of the ini
//! file it found, usually the project root), but resolves the IDs it is given
//! on the command line relative to the directory it runs in. When the two
//! differ — `tests/pytest.ini`, or an ini file above the working directory —
//! the printed IDs cannot be passed back. Offload's canonical IDs are
//! therefore relative to the working directory (what a user would type to
//! re-run a test), and the node ID is kept aside to match the JUnit report.
//!
//! pytest does not print its rootdir at `-q`; we find it as the nearest
//! candidate directory under which every collected file exists.

use std::path::{Component, Path, PathBuf};

/// Files that make a directory pytest's rootdir.
const ROOT_MARKERS: [&str; 6] = [
    "pytest.ini",
    ".pytest.ini",
    "pyproject.toml",
    "tox.ini",
    "setup.cfg",
    "setup.py",
];

/// The rootdir, relative to `working_dir` (`""` when they are the same), or
/// `None` when no candidate holds every file of `files`.
///
/// Candidates in order: the working directory; directories on the way to each
/// of `paths` that hold an ini file (a `tests/pytest.ini`); the working
/// directory's ancestors that hold one (a monorepo's top-level ini).
pub fn locate(working_dir: &Path, paths: &[String], files: &[&str]) -> Option<PathBuf> {
    if files.is_empty() {
        return Some(PathBuf::new());
    }
    let holds_all = |dir: &Path| files.iter().all(|f| working_dir.join(dir).join(f).exists());
    let is_root = |dir: &Path| {
        ROOT_MARKERS
            .iter()
            .any(|m| working_dir.join(dir).join(m).is_file())
    };

    let mut candidates = vec![PathBuf::new()];
    for p in paths {
        let mut dir = normalize(Path::new(p));
        // Deepest first: pytest looks for the ini from the paths upwards.
        let mut chain = Vec::new();
        while !dir.as_os_str().is_empty() && !dir.starts_with("..") && !dir.is_absolute() {
            chain.push(dir.clone());
            if !dir.pop() {
                break;
            }
        }
        candidates.extend(chain.into_iter().filter(|d| is_root(d)));
    }
    let mut up = PathBuf::new();
    for _ in absolute(working_dir).ancestors().skip(1) {
        up.push("..");
        if is_root(&up) {
            candidates.push(up.clone());
        }
    }
    candidates.into_iter().find(|c| holds_all(c))
}

/// `rootdir/file` as a path relative to the working directory
/// (`../proj/tests/t.py` from `proj` is `tests/t.py`).
pub fn relative_to_working_dir(working_dir: &Path, rootdir: &Path, file: &str) -> String {
    let target = normalize(&absolute(working_dir).join(rootdir).join(file));
    let base = normalize(&absolute(working_dir));
    let common = target
        .components()
        .zip(base.components())
        .take_while(|(a, b)| a == b)
        .count();
    let mut rel = PathBuf::new();
    for _ in base.components().skip(common) {
        rel.push("..");
    }
    for c in target.components().skip(common) {
        rel.push(c);
    }
    rel.to_string_lossy().into_owned()
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    }
}

/// Remove `.` and fold `..` lexically (symlinks are not resolved: pytest does not either).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else if !out.has_root() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tree(PathBuf);
    impl Tree {
        fn new(files: &[&str]) -> Tree {
            let root = std::env::temp_dir().join(format!(
                "offload-rootdir-{}-{}",
                std::process::id(),
                files.join("+").replace('/', "_")
            ));
            let _ = std::fs::remove_dir_all(&root);
            for f in files {
                let p = root.join(f);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, "").unwrap();
            }
            Tree(root)
        }
    }
    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn working_dir_is_the_rootdir() {
        let t = Tree::new(&["pytest.ini", "tests/test_a.py"]);
        assert_eq!(
            locate(&t.0, &["tests".into()], &["tests/test_a.py"]),
            Some(PathBuf::new())
        );
    }

    #[test]
    fn ini_file_in_the_tests_directory() {
        let t = Tree::new(&["tests/pytest.ini", "tests/test_a.py", "tests/pkg/test_b.py"]);
        let root = locate(
            &t.0,
            &["tests/pkg".into(), "tests".into()],
            &["test_a.py", "pkg/test_b.py"],
        );
        assert_eq!(root, Some(PathBuf::from("tests")));
        assert_eq!(
            relative_to_working_dir(&t.0, Path::new("tests"), "pkg/test_b.py"),
            "tests/pkg/test_b.py"
        );
    }

    #[test]
    fn ini_file_above_the_working_dir() {
        let t = Tree::new(&["pyproject.toml", "proj/tests/test_a.py"]);
        let wd = t.0.join("proj");
        let root = locate(&wd, &["tests".into()], &["proj/tests/test_a.py"]).unwrap();
        assert_eq!(root, PathBuf::from(".."));
        assert_eq!(
            relative_to_working_dir(&wd, &root, "proj/tests/test_a.py"),
            "tests/test_a.py"
        );
    }

    #[test]
    fn unknown_layout() {
        let t = Tree::new(&["tests/test_a.py"]);
        assert_eq!(
            locate(&t.0, &["tests".into()], &["elsewhere/test_x.py"]),
            None
        );
    }
}
