//! JUnit XML in (a runner's per-batch results) and out (the merged report).
pub mod escape;
pub mod read;
pub mod write;
