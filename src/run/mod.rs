//! The run: discovery, then a pool of worker threads (one sandbox each) fed
//! from a priority queue by the collector, which owns every result.

pub mod events;
