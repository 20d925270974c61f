//! The files Offload writes: every report and cache file is written
//! atomically ([`write_atomically`]: a temporary file in the same directory,
//! renamed into place, so no reader ever sees half of one).

use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How a file written by [`write_atomically`] is made.
#[derive(Clone, Copy, Debug, Default)]
pub struct AtomicOptions {
    /// `fsync` before the rename: the new contents survive a crash of the
    /// machine (reports); without, a crash may lose the update (caches).
    pub sync: bool,
    /// Unix permission bits of the new file (e.g. `0o755` for a script);
    /// `None` for the default.
    pub mode: Option<u32>,
}

/// Write `path` atomically: `write` fills a temporary file next to it
/// (`.{name}.{pid}.{n}.tmp`, hidden and unique), which is then renamed over
/// `path`. The directory is created if needed. On any error the temporary
/// file is removed and `path` is left as it was.
pub fn write_atomically(
    path: &Path,
    options: AtomicOptions,
    write: impl FnOnce(&mut BufWriter<std::fs::File>) -> io::Result<()>,
) -> io::Result<()> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut open = std::fs::OpenOptions::new();
        open.write(true).create_new(true);
        if let Some(mode) = options.mode {
            use std::os::unix::fs::OpenOptionsExt;
            open.mode(mode);
        }
        let mut file = BufWriter::with_capacity(256 * 1024, open.open(&tmp)?);
        write(&mut file)?;
        let file = file.into_inner().map_err(|e| e.into_error())?;
        if options.sync {
            file.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// [`write_atomically`] of a whole text.
pub fn write_text_atomically(path: &Path, text: &str) -> io::Result<()> {
    write_atomically(path, AtomicOptions::default(), |f| {
        f.write_all(text.as_bytes())
    })
}

/// Bytes free for an unprivileged writer on the file system that holds
/// `path`, when the system says.
pub fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into the struct we pass and reads a C string.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
    #[allow(clippy::useless_conversion)] // the field types differ between targets
    (rc == 0).then(|| u64::from(stat.f_bavail).saturating_mul(u64::from(stat.f_frsize)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_atomically_and_leaves_nothing_behind_on_error() {
        let dir = std::env::temp_dir().join(format!("offload-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub/report.xml");
        write_text_atomically(&path, "one").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one");
        let failed = write_atomically(&path, AtomicOptions::default(), |f| {
            f.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        // The old contents stay, and no temporary file is left.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one");
        assert_eq!(std::fs::read_dir(dir.join("sub")).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
