//! Reusing a group's discovery while nothing it reads has changed.
//!
//! A group's *key* is what its framework says discovery reads
//! ([`DiscoveryInputs`]): text (the command with the group's filters, the
//! environment variables the runner reads), files and directory trees by
//! content, and stamps (an interpreter, its `site-packages`) by size and
//! modification time. The last discovery's *products* (cargo's test
//! binaries) count by size and modification time too.
//!
//! Contents are compared by a 64-bit hash, computed only for the files whose
//! size or modification time differ from the last run (git's index does the
//! same): a warm run costs a `stat` per file, and a clean checkout (every
//! modification time new, contents the same) hashes the files once and still
//! reuses. A file modified within two seconds of being stamped is hashed
//! again next time, since a coarse clock could hide a second change.
//!
//! The cache is one JSON file per config in the output directory
//! (`{output_dir}/{config stem}.discovery.json`): machine-specific (absolute
//! paths of interpreters and binaries, modification times), so not beside
//! the history file that is meant to be committed; a CI job can keep it
//! between runs like any cache directory.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config::GroupConfig;
use crate::framework::{Discovery, DiscoveryInputs};

/// Bumped when the file's meaning changes: an older file is ignored.
const FORMAT: u32 = 1;

/// A modification time this close to the moment of stamping is not trusted
/// to show the next change.
const RACY: Duration = Duration::from_secs(2);

/// File names a tree walk leaves out wherever they are: compiled Python and
/// editors' leftovers, which come and go without changing any test.
const SKIPPED_SUFFIXES: &[&str] = &[".pyc", ".pyo", "~", ".swp", ".swo", HISTORY_SUFFIX];

/// Offload's timing history files (`{config stem}.history.tsv`), of any
/// config: they change with every run and no discovery reads them.
const HISTORY_SUFFIX: &str = ".history.tsv";

/// The name every discovery cache ends with: a directory holding one is an
/// output directory of Offload (any config's), left out of every walk.
const CACHE_SUFFIX: &str = ".discovery.json";

/// The cache file of the config at `config_path`, in `output_dir`.
pub fn path_for(output_dir: &Path, config_path: &Path) -> PathBuf {
    let stem = config_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "offload".into());
    output_dir.join(format!("{stem}{CACHE_SUFFIX}"))
}

/// Where a run's discovery cache is, to open it again during the run.
#[derive(Clone, Debug)]
pub struct CacheLocation {
    /// The cache file ([`path_for`]).
    pub path: PathBuf,
    /// The working directory, which relative inputs are under.
    pub base: PathBuf,
    /// What Offload itself writes (the output directory, the history file,
    /// the config): never an input, even under a walked directory.
    pub ignore: Vec<PathBuf>,
}

impl CacheLocation {
    /// Load the cache (`refresh`: look nothing up, store every result).
    pub fn open(&self, refresh: bool) -> DiscoveryCache {
        let mut cache = DiscoveryCache::load(self.path.clone(), self.base.clone(), refresh);
        cache.ignore = self.ignore.clone();
        cache
    }
}

#[derive(Serialize, Deserialize, Default)]
struct CacheFile {
    format: u32,
    groups: Vec<Entry>,
}

/// One group's last discovery and the key it was made under.
#[derive(Serialize, Deserialize, Clone, Debug)]
struct Entry {
    group: String,
    key: Key,
    /// The last discovery's products, stamped when it was stored.
    products: Vec<Stamp>,
    discovery: Stored,
}

/// What a discovery found, as stored.
#[derive(Serialize, Deserialize, Clone, Debug)]
struct Stored {
    ids: Vec<String>,
    runner_ids: Option<Vec<String>>,
    warnings: Vec<String>,
    for_batches: Option<String>,
    products: Vec<PathBuf>,
}

/// A group's key, as computed before its discovery runs.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Key {
    /// Hash of the text inputs (with Offload's version).
    text: String,
    /// Every file counted by content, sorted by path.
    files: Vec<FileStamp>,
    /// Everything counted by size and modification time, in input order.
    stamps: Vec<Stamp>,
}

/// A file counted by content. `size` is `None` for a file that does not
/// exist.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
struct FileStamp {
    path: String,
    size: Option<u64>,
    /// Nanoseconds since the epoch; 0: not to be trusted (hash again).
    mtime: i64,
    hash: u64,
}

/// A file or directory counted by size and modification time.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
struct Stamp {
    path: String,
    size: Option<u64>,
    mtime: i64,
}

/// What looking a group up found.
pub enum Lookup {
    /// Nothing it depends on changed: its last discovery.
    Reused(Discovery),
    /// Discover it; store the result under this key.
    Changed { key: Key, why: String },
}

/// The discovery cache of one run: loaded before discovery, saved after.
pub struct DiscoveryCache {
    path: PathBuf,
    /// Where relative inputs are (the working directory).
    base: PathBuf,
    /// Paths left out of every walk ([`CacheLocation::ignore`]).
    ignore: Vec<PathBuf>,
    file: CacheFile,
    /// `--rediscover`: look nothing up, store every fresh result.
    refresh: bool,
    changed: bool,
}

impl DiscoveryCache {
    /// The cache at `path` (empty when missing, unreadable or of another
    /// format: it is only a cache). `refresh`: every group is discovered
    /// afresh and stored.
    pub fn load(path: PathBuf, base: PathBuf, refresh: bool) -> DiscoveryCache {
        let file = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<CacheFile>(&bytes).ok())
            .filter(|f| f.format == FORMAT)
            .unwrap_or_default();
        DiscoveryCache {
            path,
            base,
            ignore: Vec::new(),
            file,
            refresh,
            changed: false,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Group `group`'s last discovery if nothing it depends on changed,
    /// else the key to store its fresh discovery under.
    pub fn lookup(&self, group: &GroupConfig, inputs: &DiscoveryInputs) -> Lookup {
        let previous = self.file.groups.iter().find(|e| e.group == group.name);
        let key = compute_key(inputs, &self.base, &self.ignore, previous.map(|e| &e.key));
        let why = match previous {
            _ if self.refresh => "--rediscover".to_string(),
            None => "no earlier discovery".to_string(),
            Some(entry) => match difference(&entry.key, &key) {
                Some(why) => why,
                None => match entry
                    .products
                    .iter()
                    .find(|p| stamp(&self.base, Path::new(&p.path)) != **p)
                {
                    Some(p) => format!("{} changed", p.path),
                    None => {
                        let d = &entry.discovery;
                        return Lookup::Reused(Discovery {
                            ids: d.ids.clone(),
                            runner_ids: d.runner_ids.clone(),
                            warnings: d.warnings.clone(),
                            for_batches: d.for_batches.clone(),
                            products: d.products.clone(),
                        });
                    }
                },
            },
        };
        Lookup::Changed { key, why }
    }

    /// Keep `discovery` as group `group`'s, made under `key`.
    pub fn store(&mut self, group: &GroupConfig, key: Key, discovery: &Discovery) {
        let products = discovery
            .products
            .iter()
            .map(|p| stamp(&self.base, p))
            .collect();
        let entry = Entry {
            group: group.name.clone(),
            key,
            products,
            discovery: Stored {
                ids: discovery.ids.clone(),
                runner_ids: discovery.runner_ids.clone(),
                warnings: discovery.warnings.clone(),
                for_batches: discovery.for_batches.clone(),
                products: discovery.products.clone(),
            },
        };
        self.file.groups.retain(|e| e.group != group.name);
        self.file.groups.push(entry);
        self.changed = true;
    }

    /// Forget every group but `groups` (renamed or removed from the config).
    pub fn keep_only(&mut self, groups: &[GroupConfig]) {
        let before = self.file.groups.len();
        self.file
            .groups
            .retain(|e| groups.iter().any(|g| g.name == e.group));
        self.changed |= self.file.groups.len() != before;
    }

    /// Write the cache if anything changed (atomically: a reader sees the
    /// old file or the new one).
    pub fn save(&mut self) -> std::io::Result<()> {
        if !self.changed {
            return Ok(());
        }
        self.file.format = FORMAT;
        let file = &self.file;
        crate::files::write_atomically(&self.path, Default::default(), |w| {
            serde_json::to_writer(w, file).map_err(std::io::Error::other)
        })?;
        self.changed = false;
        Ok(())
    }
}

/// The key of `inputs` now, leaving `ignore` out of walks. Files whose
/// size and modification time are those of `previous` keep its hash;
/// others are read.
pub fn compute_key(
    inputs: &DiscoveryInputs,
    base: &Path,
    ignore: &[PathBuf],
    previous: Option<&Key>,
) -> Key {
    let now = SystemTime::now();
    let mut text = rustc_hash::FxHasher::default();
    use std::hash::Hasher;
    for t in [env!("CARGO_PKG_VERSION")]
        .into_iter()
        .chain(inputs.text.iter().map(String::as_str))
    {
        text.write(t.as_bytes());
        text.write_u8(0);
    }
    let mut paths: Vec<PathBuf> = inputs.files.clone();
    for tree in &inputs.trees {
        let skip = Skip {
            names: &inputs.skip_dirs,
            paths: ignore,
        };
        walk(&base.join(tree), &skip, true, &mut paths);
    }
    let mut files: Vec<FileStamp> = paths
        .iter()
        .map(|p| {
            let shown = shown_path(base, p);
            let known = previous.and_then(|k| {
                k.files
                    .binary_search_by(|f| f.path.as_str().cmp(&shown))
                    .ok()
                    .map(|i| &k.files[i])
            });
            file_stamp(base, p, shown, known, now)
        })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files.dedup_by(|a, b| a.path == b.path);
    Key {
        text: format!("{:016x}", text.finish()),
        files,
        stamps: inputs.stamps.iter().map(|p| stamp(base, p)).collect(),
    }
}

/// The first way `now` differs from `before`, said for the user; `None`
/// when they are the same key.
fn difference(before: &Key, now: &Key) -> Option<String> {
    if before.text != now.text {
        return Some("the discovery command, its filters or its environment changed".into());
    }
    let mut old = before.files.iter().peekable();
    let mut new = now.files.iter().peekable();
    loop {
        match (old.peek(), new.peek()) {
            (None, None) => break,
            (Some(o), Some(n)) if o.path == n.path => {
                if (o.size, o.hash) != (n.size, n.hash) {
                    return Some(match (o.size, n.size) {
                        (None, Some(_)) => format!("{} appeared", n.path),
                        (Some(_), None) => format!("{} was removed", n.path),
                        _ => format!("{} changed", n.path),
                    });
                }
                old.next();
                new.next();
            }
            (Some(o), Some(n)) if o.path < n.path => {
                return Some(format!("{} was removed", o.path));
            }
            (Some(o), None) => return Some(format!("{} was removed", o.path)),
            (_, Some(n)) => return Some(format!("{} appeared", n.path)),
        }
    }
    if before.stamps.len() != now.stamps.len() {
        return Some("the runner's environment changed".into());
    }
    before
        .stamps
        .iter()
        .zip(&now.stamps)
        .find(|(o, n)| o != n)
        .map(|(_, n)| format!("{} changed", n.path))
}

/// Every file under `dir`, depth first, leaving out hidden entries, the
/// directories named in `skip`, holding a `CACHEDIR.TAG` or an Offload
/// discovery cache (an output directory), Offload's history files, and
/// symbolic links to directories (no cycles).
fn walk(dir: &Path, skip: &Skip<'_>, top: bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        // A missing tree is one absent file: its appearance changes the key.
        out.push(dir.to_path_buf());
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    if !top
        && entries
            .iter()
            .any(|e| e.file_name().to_string_lossy().ends_with(CACHE_SUFFIX))
    {
        // Another config's output directory (this config's is in
        // `skip.paths`): its reports change with every run.
        return;
    }
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        let skipped =
            SKIPPED_SUFFIXES.iter().any(|s| name.ends_with(s)) || skip.paths.contains(&path);
        if kind.is_dir() {
            // Cargo marks its target directories so (other tools too).
            if !skipped
                && !skip.names.contains(&name.as_ref())
                && !path.join("CACHEDIR.TAG").exists()
            {
                walk(&path, skip, false, out);
            }
        } else if !skipped && (kind.is_file() || path.is_file()) {
            out.push(path);
        }
    }
}

/// What a walk leaves out.
struct Skip<'a> {
    /// Directory names.
    names: &'a [&'static str],
    /// Files and directories.
    paths: &'a [PathBuf],
}

/// `p` as stored: relative to `base` when under it (a checkout elsewhere
/// keeps its key), else as it is.
fn shown_path(base: &Path, p: &Path) -> String {
    let full = base.join(p);
    full.strip_prefix(base)
        .unwrap_or(&full)
        .to_string_lossy()
        .into_owned()
}

fn mtime_nanos(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn file_stamp(
    base: &Path,
    p: &Path,
    shown: String,
    known: Option<&FileStamp>,
    now: SystemTime,
) -> FileStamp {
    let full = base.join(p);
    let Ok(meta) = std::fs::metadata(&full) else {
        return FileStamp {
            path: shown,
            size: None,
            mtime: 0,
            hash: 0,
        };
    };
    let size = meta.len();
    let mut mtime = mtime_nanos(&meta);
    let hash = match known {
        Some(k) if k.mtime != 0 && k.mtime == mtime && k.size == Some(size) => k.hash,
        _ => hash_file(&full).unwrap_or(0),
    };
    let racy = meta
        .modified()
        .ok()
        .and_then(|m| now.duration_since(m).ok())
        .map_or(true, |age| age < RACY);
    if racy {
        mtime = 0;
    }
    FileStamp {
        path: shown,
        size: Some(size),
        mtime,
        hash,
    }
}

fn stamp(base: &Path, p: &Path) -> Stamp {
    let meta = std::fs::metadata(base.join(p)).ok();
    Stamp {
        path: shown_path(base, p),
        size: meta.as_ref().map(|m| if m.is_dir() { 0 } else { m.len() }),
        mtime: meta.as_ref().map_or(0, mtime_nanos),
    }
}

/// A 64-bit hash of the file's contents, fed in fixed-size chunks (so the
/// hash never depends on how reads happen to split the file).
fn hash_file(path: &Path) -> std::io::Result<u64> {
    use std::hash::Hasher;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = rustc_hash::FxHasher::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            match file.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        hasher.write(&buf[..filled]);
        if filled < buf.len() {
            break;
        }
    }
    hasher.write_u64(std::fs::metadata(path)?.len());
    Ok(hasher.finish())
}

#[cfg(test)]
mod tests;
