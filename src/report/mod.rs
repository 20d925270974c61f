//! What the user sees and keeps: batch logs, console progress and summary,
//! and the `logs` subcommand.
pub mod batch_logs;
pub mod logs_cmd;
pub mod progress;
pub mod spans;
pub mod summary;
pub mod timeline;
pub mod trace;
