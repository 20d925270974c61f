//! The discovery cache's key: what changes it and what does not.
