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
