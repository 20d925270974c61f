//! What a run keeps on disk while it runs, and what the next run clears up
//! when that run was killed before it could.
//!
//! Each run keeps its scratch files in `{output_dir}/.scratch-PID`, removed
//! when the run ends ([`ScratchDir`]). In it, `owner` names the process that
//! made it (PID and start time, so that a PID the system has since given to
//! another process is told apart), and `sandboxes` ([`SandboxRecord`]) lists
//! the remote sandboxes the run created and destroyed, one `+ID` or `-ID`
//! line each. A run that was killed (SIGKILL, the OOM killer, a CI job's time
//! limit) leaves both behind: the next run in the same output directory finds
//! the scratch directories of processes that are gone, destroys the sandboxes
//! their record still lists, removes the directories, and says so
//! ([`clean_after_killed_runs`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{io_error, io_message, Result};
use crate::events::Notices;
use crate::provider::Provider;

/// Scratch directories are `.{kind}-{pid}`: `.scratch-` for runs, `.doctor-`
/// for `offload doctor`'s trial batches.
const SCRATCH_KINDS: [&str; 2] = ["scratch", "doctor"];
const OWNER_FILE: &str = "owner";
const RECORD_FILE: &str = "sandboxes";

/// A run's (or doctor's) scratch directory, `{output_dir}/.{kind}-{pid}`
/// (batch result files, the sandbox record); removed on drop.
#[derive(Debug)]
pub struct ScratchDir {
    pub path: PathBuf,
}

impl ScratchDir {
    /// `kind` is `scratch` (a run) or `doctor`.
    pub fn create(output_dir: &Path, kind: &str) -> Result<Self> {
        debug_assert!(SCRATCH_KINDS.contains(&kind));
        let pid = std::process::id();
        ScratchDir::at(output_dir.join(format!(".{kind}-{pid}")))
    }

    /// [`ScratchDir::create`], or when the output directory cannot hold it
    /// (a full disk, no permission), a directory in the system's temporary
    /// directory: the run goes on, and its results are reported, whatever
    /// becomes of its reports. The second value says why, for a warning.
    pub fn create_anywhere(output_dir: &Path, kind: &str) -> Result<(Self, Option<String>)> {
        match ScratchDir::create(output_dir, kind) {
            Ok(dir) => Ok((dir, None)),
            Err(e) => {
                let pid = std::process::id();
                let dir =
                    ScratchDir::at(std::env::temp_dir().join(format!("offload-{kind}-{pid}")))?;
                let why = format!(
                    "{e}; keeping this run's scratch files in {} instead (should this run be killed, \
                     the next one cannot clear what it leaves there)",
                    dir.path.display()
                );
                Ok((dir, Some(why)))
            }
        }
    }

    fn at(path: PathBuf) -> Result<Self> {
        let pid = std::process::id();
        std::fs::create_dir_all(&path)
            .map_err(|e| io_error(format!("cannot create {}", path.display()), &e))?;
        // Owned from here: a failure below removes the directory again.
        let dir = ScratchDir { path };
        let owner = format!("{pid} {}\n", start_time(pid).unwrap_or_default());
        let owner_path = dir.path.join(OWNER_FILE);
        std::fs::write(&owner_path, owner)
            .map_err(|e| io_error(format!("cannot write {}", owner_path.display()), &e))?;
        Ok(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The sandboxes a run has created and not yet destroyed, on disk, for the
/// next run should this one be killed. Written by providers whose sandboxes
/// outlive the process that made them.
#[derive(Clone, Debug)]
pub struct SandboxRecord {
    path: PathBuf,
    /// Where a record that cannot be written is reported.
    notices: Notices,
}

impl SandboxRecord {
    pub fn in_scratch_dir(scratch_dir: &Path, notices: Notices) -> Self {
        SandboxRecord {
            path: scratch_dir.join(RECORD_FILE),
            notices,
        }
    }

    pub fn created(&self, id: &str) {
        self.append('+', id);
    }

    pub fn destroyed(&self, id: &str) {
        self.append('-', id);
    }

    fn append(&self, sign: char, id: &str) {
        // One short write in append mode: lines from parallel workers never
        // interleave.
        let line = format!("{sign}{id}\n");
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            self.notices.warn(&format!(
                "cannot record sandbox {id} in {}: {}; should this run be killed, the next one cannot destroy it",
                self.path.display(),
                io_message(&e)
            ));
        }
    }
}

/// The sandboxes a record lists as created and not destroyed, in creation order.
fn pending(record: &str) -> Vec<String> {
    let mut live: Vec<String> = Vec::new();
    for line in record.lines() {
        if let Some(id) = line.strip_prefix('+') {
            if !live.iter().any(|l| l == id) {
                live.push(id.to_string());
            }
        } else if let Some(id) = line.strip_prefix('-') {
            live.retain(|l| l != id);
        }
    }
    live
}

/// Clear up after earlier runs in `output_dir` that were killed: destroy the
/// sandboxes each still had (with `provider`, this run's), remove its scratch
/// directory, and say so (a warning through `notices`). The directories of
/// runs still going are left alone. A sandbox that cannot be destroyed stays
/// in the record, for the next run to try again, and the warning names it.
pub fn clean_after_killed_runs(output_dir: &Path, provider: &dyn Provider, notices: &Notices) {
    let Ok(entries) = std::fs::read_dir(output_dir) else {
        return;
    };
    let me = std::process::id();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| {
            let (kind, pid) = n.strip_prefix('.')?.split_once('-')?;
            SCRATCH_KINDS.contains(&kind).then_some(())?;
            pid.parse::<u32>().ok()
        }) else {
            continue;
        };
        let dir = entry.path();
        if pid == me || !dir.is_dir() || owner_alive(&dir, pid) {
            continue;
        }
        clean_one(&dir, pid, provider, notices);
    }
}

fn clean_one(dir: &Path, pid: u32, provider: &dyn Provider, notices: &Notices) {
    let record_path = dir.join(RECORD_FILE);
    let sandboxes = pending(&std::fs::read_to_string(&record_path).unwrap_or_default());
    let results: Vec<(String, std::result::Result<(), String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = sandboxes
            .iter()
            .map(|id| {
                scope.spawn(move || {
                    provider
                        .destroy_leftover(id)
                        .map_err(|e| e.message.lines().next().unwrap_or_default().to_string())
                })
            })
            .collect();
        sandboxes
            .iter()
            .cloned()
            .zip(handles.into_iter().map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("destroying it crashed".into()))
            }))
            .collect()
    });
    let destroyed: Vec<&str> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(id, _)| id.as_str())
        .collect();
    let failed: Vec<(&str, &str)> = results
        .iter()
        .filter_map(|(id, r)| r.as_ref().err().map(|e| (id.as_str(), e.as_str())))
        .collect();
    let mut said = format!("an earlier run (PID {pid}) was killed before it could clean up: ");
    if !destroyed.is_empty() {
        said.push_str(&format!(
            "destroyed the {} it left ({}), ",
            plural(destroyed.len(), "sandbox"),
            destroyed.join(", ")
        ));
    }
    if failed.is_empty() {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => said.push_str(&format!("removed {}", dir.display())),
            Err(e) => said.push_str(&format!(
                "but cannot remove {}: {}",
                dir.display(),
                io_message(&e)
            )),
        }
        notices.warn(&said);
        return;
    }
    // Keep what is left to do for the next run.
    let left: String = failed.iter().map(|(id, _)| format!("+{id}\n")).collect();
    let _ = std::fs::write(&record_path, left);
    said.push_str(&format!(
        "could not destroy the {} it left:",
        plural(failed.len(), "sandbox")
    ));
    for (id, why) in failed {
        said.push_str(&format!("\n  {id}: {why}"));
    }
    said.push_str(&format!(
        "\n  the next run tries again ({} keeps the list); remove them by hand if they are gone",
        record_path.display()
    ));
    notices.warn(&said);
}

fn plural(n: usize, what: &str) -> String {
    match (n, what) {
        (1, _) => what.to_string(),
        (_, "sandbox") => format!("{n} sandboxes"),
        _ => format!("{n} {what}s"),
    }
}

/// Whether the run that made `dir` is still going: its PID exists and, when
/// the directory says when that process started, it is the same process.
fn owner_alive(dir: &Path, pid: u32) -> bool {
    let Some(now) = start_time(pid) else {
        return false;
    };
    match std::fs::read_to_string(dir.join(OWNER_FILE)) {
        Ok(text) => match text.split_whitespace().nth(1) {
            Some(recorded) => recorded == now,
            // Being written: the run has only just started.
            None => true,
        },
        // Made before owner files existed: the PID alone decides.
        Err(_) => true,
    }
}

/// When process `pid` started (clock ticks since boot, `/proc/PID/stat`
/// field 22), or `None` when there is no such process.
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name: state is field 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.nth(22 - 4).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_lists_what_was_created_and_not_destroyed() {
        assert_eq!(pending("+a\n+b\n-a\n+c\n+b\n"), vec!["b", "c"]);
        assert!(pending("").is_empty());
        assert!(pending("+a\n-a\n").is_empty());
    }

    #[test]
    fn a_scratch_dir_is_alive_while_its_process_is() {
        let out = std::env::temp_dir().join(format!("offload-leftovers-{}", std::process::id()));
        std::fs::create_dir_all(&out).unwrap();
        let scratch = ScratchDir::create(&out, "scratch").unwrap();
        assert!(owner_alive(&scratch.path, std::process::id()));
        // The same PID, started at another time: another process.
        std::fs::write(
            scratch.path.join(OWNER_FILE),
            format!("{} 1\n", std::process::id()),
        )
        .unwrap();
        assert!(!owner_alive(&scratch.path, std::process::id()));
        // A PID that is gone (a reaped child's).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        assert!(!owner_alive(&scratch.path, gone));
        drop(scratch);
        std::fs::remove_dir_all(&out).unwrap();
    }
}
