//! Printing that never panics. `println!` and `eprintln!` panic when the
//! other end of the pipe is gone (`offload run 2>&1 | head`); for Offload a
//! closed stdout or stderr is a normal end of its reader's interest, not a
//! reason to abandon a run half-way (its sandboxes still have to be
//! destroyed). These write and ignore the error.

/// `println!` that ignores a closed stdout.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `eprintln!` that ignores a closed stderr.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub(crate) use {errln, outln};

/// Write `text` whole to stdout (or stderr) and flush, ignoring a closed
/// stream: one lock, so that another thread's line cannot cut into it.
pub fn write_text(text: &str, to_stderr: bool) {
    use std::io::Write as _;
    if to_stderr {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(text.as_bytes());
        let _ = err.flush();
    } else {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}
