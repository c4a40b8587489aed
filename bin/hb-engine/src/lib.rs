//! hb-engine's parts that stand alone, shared by the binary and its benchmarks.

#![forbid(unsafe_code)]

pub mod alerts;
pub mod dns;
pub mod feed;
pub mod journal;
pub mod liveness;
pub mod settings;
pub mod state;
pub mod store;
pub mod storm;
