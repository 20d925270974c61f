//! What `pytest --collect-only` reads, as the key of its reuse
//! (`discover::cache`), and pytest's word on node IDs it does not know.
//!
//! Seen: the discovery command with the group's filters; the environment
//! variables pytest and Python read; every file under the configured paths
//! (test modules, conftests, data files beside them; not `__pycache__`,
//! hidden or pytest's default `norecursedirs`); the ini files and conftests
//! in the working directory and every directory above it and above each
//! path; lock files of the project's environment; the interpreter (the
//! command's program) and its `site-packages` by modification time, which
//! changes when a package is installed, upgraded or removed.
//!
//! Not seen: modules imported from outside the paths (the package under
//! test in a `src/` layout), files read from elsewhere (a parametrization
//! built from a data file outside the paths), an installed package edited in
//! place, a `-c FILE` or `--rootdir` pointing outside them.

use std::path::{Path, PathBuf};

use crate::framework::DiscoveryInputs;

/// Files pytest reads for its configuration, in every directory from a
/// test path up to the root.
const CONFIG_FILES: &[&str] = &[
    "pytest.ini",
    ".pytest.ini",
    "pytest.toml",
    ".pytest.toml",
    "pyproject.toml",
    "tox.ini",
    "setup.cfg",
    "conftest.py",
];

/// Lock files of the project's environment, in the working directory.
const LOCK_FILES: &[&str] = &["uv.lock", "poetry.lock", "pdm.lock", "Pipfile.lock"];

/// Environment variables that change what pytest collects.
const ENV_VARS: &[&str] = &[
    "PATH",
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSAFEPATH",
    "VIRTUAL_ENV",
];

/// Directory names pytest does not collect from by default
/// (`norecursedirs`), and Python's byte-code caches.
const SKIP_DIRS: &[&str] = &[
    "__pycache__",
    "node_modules",
    "venv",
    "build",
    "dist",
    "CVS",
    "_darcs",
    "{arch}",
];

/// The key of a discovery that runs `script` (the pytest command `pytest`,
/// with the group's filters and `paths`) in `working_dir`.
pub fn discovery_inputs(
    script: &str,
    pytest: &str,
    paths: &[String],
    working_dir: &Path,
) -> DiscoveryInputs {
    let mut text = vec![script.to_string()];
    for var in ENV_VARS {
        text.push(match std::env::var_os(var) {
            Some(v) => format!("{var}={}", v.to_string_lossy()),
            None => format!("{var} unset"),
        });
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut add_ancestors = |start: &Path| {
        for dir in start.ancestors() {
            if !dirs.iter().any(|d| d == dir) {
                dirs.push(dir.to_path_buf());
            }
        }
    };
    add_ancestors(working_dir);
    for p in paths {
        let full = working_dir.join(p);
        add_ancestors(full.parent().unwrap_or(&full));
    }
    let mut files: Vec<PathBuf> = dirs
        .iter()
        .flat_map(|d| CONFIG_FILES.iter().map(move |f| d.join(f)))
        .collect();
    files.extend(LOCK_FILES.iter().map(|f| working_dir.join(f)));
    DiscoveryInputs {
        text,
        files,
        trees: paths.iter().map(PathBuf::from).collect(),
        skip_dirs: SKIP_DIRS.to_vec(),
        stamps: interpreter_stamps(pytest, working_dir),
    }
}

/// The command's program (resolved through `PATH`) and the package
/// directories of the environment it belongs to, and of the project's
/// `.venv` (what `uv run` and poetry use).
fn interpreter_stamps(pytest: &str, working_dir: &Path) -> Vec<PathBuf> {
    let mut stamps = Vec::new();
    if let Some(program) = pytest
        .split_whitespace()
        .next()
        .and_then(|word| crate::framework::find_program(word, working_dir))
    {
        // `X/bin/python` → the environment `X`.
        if let Some(prefix) = program.parent().and_then(Path::parent) {
            stamps.extend(package_dirs(prefix));
        }
        stamps.insert(0, program);
    }
    stamps.extend(package_dirs(&working_dir.join(".venv")));
    if let Some(home) = std::env::var_os("HOME") {
        stamps.extend(package_dirs(&Path::new(&home).join(".local")));
    }
    stamps
}

/// `PREFIX/lib/python*/site-packages` (and Debian's `dist-packages`) that
/// exist.
fn package_dirs(prefix: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for lib in [prefix.join("lib"), prefix.join("local/lib")] {
        let Ok(entries) = std::fs::read_dir(&lib) else {
            continue;
        };
        let mut pythons: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("python"))
            .map(|e| e.path())
            .collect();
        pythons.sort();
        for python in pythons {
            for name in ["site-packages", "dist-packages"] {
                let dir = python.join(name);
                if dir.is_dir() {
                    found.push(dir);
                }
            }
        }
    }
    found
}

/// The positions of `ids` that pytest said it does not know. pytest stops
/// before running anything (exit code 4) when an argument names no test:
/// `ERROR: not found: /abs/dir/tests/t.py::test_x` for a test gone from its
/// file, `ERROR: file or directory not found: tests/gone.py::test_y` for a
/// file gone (named once: every ID of that file is gone with it).
pub fn not_found(ids: &[String], lines: impl Iterator<Item = impl AsRef<str>>) -> Vec<usize> {
    let mut gone_tests: Vec<String> = Vec::new();
    let mut gone_files: Vec<String> = Vec::new();
    for line in lines {
        let line = line.as_ref().trim_end();
        if let Some(arg) = line.strip_prefix("ERROR: file or directory not found: ") {
            let file = arg.split("::").next().unwrap_or(arg);
            gone_files.push(file.trim_start_matches("./").to_string());
        } else if let Some(arg) = line.strip_prefix("ERROR: not found: ") {
            gone_tests.push(arg.to_string());
        }
    }
    if gone_tests.is_empty() && gone_files.is_empty() {
        return Vec::new();
    }
    let index: rustc_hash::FxHashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let mut found = Vec::new();
    for arg in &gone_tests {
        // pytest prints the argument joined to its directory: try every
        // suffix that starts after a `/`.
        let mut rest = arg.as_str();
        loop {
            if let Some(&i) = index.get(rest.trim_start_matches("./")) {
                found.push(i);
                break;
            }
            match rest.find('/') {
                Some(slash) => rest = &rest[slash + 1..],
                None => break,
            }
        }
    }
    for (i, id) in ids.iter().enumerate() {
        let file = id.split("::").next().unwrap_or(id);
        if gone_files.iter().any(|f| f == file) {
            found.push(i);
        }
    }
    found.sort_unstable();
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_test_gone_from_its_file_is_found_by_its_printed_path() {
        let ids = ids(&[
            "tests/a.py::test_x[1]",
            "tests/a.py::test_x[3]",
            "tests/a.py::test_y",
            "@odd/t.py::test",
        ]);
        let out = [
            "",
            "no tests ran in 0.01s",
            "ERROR: not found: /tmp/p/tests/a.py::test_x[3]",
            "(no match in any of [<Module a.py>])",
            "ERROR: not found: /tmp/p/@odd/t.py::test",
        ];
        assert_eq!(not_found(&ids, out.iter()), [1, 3]);
    }

    #[test]
    fn a_file_gone_takes_every_test_of_it() {
        let ids = ids(&[
            "tests/gone.py::test_a",
            "tests/a.py::test_y",
            "tests/gone.py::TestK::test_b",
        ]);
        let out = ["ERROR: file or directory not found: tests/gone.py::test_a"];
        assert_eq!(not_found(&ids, out.iter()), [0, 2]);
    }

    #[test]
    fn other_errors_name_no_test() {
        let ids = ids(&["tests/a.py::test_y"]);
        let out = [
            "ERROR: usage: pytest [options]",
            "ERROR: not found: /x/tests/other.py::t",
        ];
        assert!(not_found(&ids, out.iter()).is_empty());
    }

    #[test]
    fn the_key_covers_ini_files_up_the_tree_and_the_paths() {
        let inputs = discovery_inputs(
            "pytest --collect-only -q tests",
            "pytest",
            &["tests/unit".into()],
            Path::new("/p/proj"),
        );
        assert_eq!(inputs.trees, [PathBuf::from("tests/unit")]);
        for f in [
            "/p/proj/pytest.ini",
            "/p/proj/tests/conftest.py",
            "/p/conftest.py",
            "/pyproject.toml",
            "/p/proj/uv.lock",
        ] {
            assert!(inputs.files.contains(&PathBuf::from(f)), "{f}");
        }
        assert!(inputs.text[0].contains("--collect-only"));
        assert!(inputs.text.iter().any(|t| t.starts_with("PYTEST_ADDOPTS")));
    }
}
