//! JUnit XML in (a runner's per-batch results) and out (the merged report).
pub mod read;
pub mod write;
