//! The discovery cache's key: what changes it and what does not, on real
//! files in a temporary directory.

use std::time::{Duration, UNIX_EPOCH};

use super::*;

struct Dir(PathBuf);

impl Dir {
    fn new(label: &str) -> Dir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("offload-cache-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    /// Write `rel` with a modification time well in the past (not racy),
    /// a later one for every write, as an edit has.
    fn write(&self, rel: &str, text: &str) {
        static T: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1_000_000);
        self.write_at(
            rel,
            text,
            T.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        );
    }

    fn write_at(&self, rel: &str, text: &str, secs: u64) {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(UNIX_EPOCH + Duration::from_secs(secs))
            .unwrap();
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn group(name: &str) -> GroupConfig {
    GroupConfig {
        name: name.into(),
        retry_count: 0,
        filters: String::new(),
    }
}

fn inputs(text: &str) -> DiscoveryInputs {
    DiscoveryInputs {
        text: vec![text.into()],
        files: vec!["pytest.ini".into()],
        trees: vec!["tests".into()],
        skip_dirs: vec!["__pycache__"],
        stamps: vec![],
    }
}

fn found(ids: &[&str]) -> Discovery {
    Discovery {
        ids: ids.iter().map(|s| s.to_string()).collect(),
        ..Discovery::default()
    }
}

/// Store `ids` as group `all`'s discovery under `inputs`, save, reload.
fn stored(dir: &Dir, inputs: &DiscoveryInputs, ids: &[&str]) -> DiscoveryCache {
    let path = dir.0.join("out/offload.discovery.json");
    let mut cache = DiscoveryCache::load(path.clone(), dir.0.clone(), false);
    let Lookup::Changed { key, .. } = cache.lookup(&group("all"), inputs) else {
        panic!("an empty cache reuses nothing");
    };
    cache.store(&group("all"), key, &found(ids));
    cache.save().unwrap();
    DiscoveryCache::load(path, dir.0.clone(), false)
}

fn why_changed(cache: &DiscoveryCache, inputs: &DiscoveryInputs) -> Option<String> {
    match cache.lookup(&group("all"), inputs) {
        Lookup::Reused(_) => None,
        Lookup::Changed { why, .. } => Some(why),
    }
}

fn project() -> Dir {
    let dir = Dir::new("p");
    dir.write("tests/test_a.py", "def test_a(): pass\n");
    dir.write("tests/sub/conftest.py", "\n");
    dir
}

#[test]
fn nothing_changed_reuses_the_ids() {
    let dir = project();
    let cache = stored(&dir, &inputs("pytest"), &["tests/test_a.py::test_a"]);
    match cache.lookup(&group("all"), &inputs("pytest")) {
        Lookup::Reused(d) => assert_eq!(d.ids, ["tests/test_a.py::test_a"]),
        Lookup::Changed { why, .. } => panic!("rediscovered: {why}"),
    }
    // Another group was never discovered.
    assert!(matches!(
        cache.lookup(&group("other"), &inputs("pytest")),
        Lookup::Changed { .. }
    ));
}

#[test]
fn a_changed_file_a_new_file_a_removed_file_and_new_text_each_change_the_key() {
    let dir = project();
    let cache = stored(&dir, &inputs("pytest"), &["x"]);
    assert_eq!(
        why_changed(&cache, &inputs("pytest -k slow")).as_deref(),
        Some("the discovery command, its filters or its environment changed")
    );
    dir.write("tests/test_a.py", "def test_b(): pass\n");
    assert_eq!(
        why_changed(&cache, &inputs("pytest")).as_deref(),
        Some("tests/test_a.py changed")
    );
    dir.write("tests/test_a.py", "def test_a(): pass\n");
    assert_eq!(why_changed(&cache, &inputs("pytest")), None);
    dir.write("tests/test_new.py", "\n");
    assert_eq!(
        why_changed(&cache, &inputs("pytest")).as_deref(),
        Some("tests/test_new.py appeared")
    );
    std::fs::remove_file(dir.0.join("tests/test_new.py")).unwrap();
    std::fs::remove_file(dir.0.join("tests/sub/conftest.py")).unwrap();
    assert_eq!(
        why_changed(&cache, &inputs("pytest")).as_deref(),
        Some("tests/sub/conftest.py was removed")
    );
    dir.write("tests/sub/conftest.py", "\n");
    dir.write("pytest.ini", "[pytest]\n");
    assert_eq!(
        why_changed(&cache, &inputs("pytest")).as_deref(),
        Some("pytest.ini appeared")
    );
}

#[test]
fn a_new_mtime_with_the_same_contents_is_the_same_key() {
    // A clean checkout: every file written anew, nothing different.
    let dir = project();
    let cache = stored(&dir, &inputs("pytest"), &["x"]);
    dir.write_at("tests/test_a.py", "def test_a(): pass\n", 2_000_000);
    assert_eq!(why_changed(&cache, &inputs("pytest")), None);
}

#[test]
fn caches_byte_code_hidden_and_skipped_directories_do_not_count() {
    let dir = project();
    let cache = stored(&dir, &inputs("pytest"), &["x"]);
    dir.write("tests/__pycache__/test_a.cpython-312.pyc", "x");
    dir.write("tests/.hidden/x.py", "x");
    dir.write("tests/test_a.pyc", "x");
    dir.write("tests/out/CACHEDIR.TAG", "x");
    dir.write("tests/out/results.txt", "x");
    assert_eq!(why_changed(&cache, &inputs("pytest")), None);
    // What Offload writes itself is left out wherever it is.
    let mut ignoring = DiscoveryCache::load(cache.path().to_path_buf(), dir.0.clone(), false);
    ignoring.ignore = vec![dir.0.join("tests/results"), dir.0.join("tests/h.tsv")];
    dir.write("tests/results/junit.xml", "x");
    dir.write("tests/h.tsv", "x");
    assert_eq!(why_changed(&ignoring, &inputs("pytest")), None);
    // Nor another config's history file and output directory.
    dir.write("tests/other.history.tsv", "x");
    dir.write("tests/other-results/other.discovery.json", "{}");
    dir.write("tests/other-results/junit.xml", "x");
    assert_eq!(why_changed(&ignoring, &inputs("pytest")), None);
}

#[test]
fn stamps_and_products_count_by_size_and_time() {
    let dir = project();
    dir.write("bin/python", "elf");
    let mut with_stamp = inputs("pytest");
    with_stamp.stamps = vec![dir.0.join("bin/python")];
    let path = dir.0.join("c.json");
    let mut cache = DiscoveryCache::load(path.clone(), dir.0.clone(), false);
    let Lookup::Changed { key, .. } = cache.lookup(&group("all"), &with_stamp) else {
        panic!()
    };
    let mut d = found(&["x"]);
    dir.write_at("target/test-bin", "v1", 1_000);
    d.products = vec!["target/test-bin".into()];
    cache.store(&group("all"), key, &d);
    cache.save().unwrap();
    let cache = DiscoveryCache::load(path, dir.0.clone(), false);
    assert_eq!(why_changed(&cache, &with_stamp), None);
    dir.write_at("target/test-bin", "v1", 3_000_000);
    assert_eq!(
        why_changed(&cache, &with_stamp).as_deref(),
        Some("target/test-bin changed")
    );
    dir.write_at("target/test-bin", "v1", 1_000);
    dir.write_at("bin/python", "elf", 3_000_000);
    assert!(why_changed(&cache, &with_stamp)
        .unwrap()
        .ends_with("bin/python changed"));
}

#[test]
fn a_file_just_written_is_hashed_again_next_time() {
    let dir = project();
    // Written now: its time cannot be trusted to show a change made within
    // the same tick of a coarse clock.
    std::fs::write(dir.0.join("tests/test_a.py"), "def test_a(): pass\n").unwrap();
    let key = compute_key(&inputs("pytest"), &dir.0, &[], None);
    let stamp = key
        .files
        .iter()
        .find(|f| f.path == "tests/test_a.py")
        .unwrap();
    assert_eq!(stamp.mtime, 0);
    assert_ne!(stamp.hash, 0);
}

#[test]
fn rediscover_and_a_damaged_file_reuse_nothing() {
    let dir = project();
    let cache = stored(&dir, &inputs("pytest"), &["x"]);
    let refreshing = DiscoveryCache::load(cache.path().to_path_buf(), dir.0.clone(), true);
    assert_eq!(
        why_changed(&refreshing, &inputs("pytest")).as_deref(),
        Some("--rediscover")
    );
    std::fs::write(cache.path(), "{ not json").unwrap();
    let damaged = DiscoveryCache::load(cache.path().to_path_buf(), dir.0.clone(), false);
    assert_eq!(
        why_changed(&damaged, &inputs("pytest")).as_deref(),
        Some("no earlier discovery")
    );
}
