//! The parent of hb's privilege separation: configuration, the process table, spawning,
//! supervision and reload. Only `hbsupervisor` and `hbctl` link it; the roles link
//! `hb-child`, which holds the other side of every exchange.
//!
//! Layout:
//! - [`config`]: `/etc/hb.yaml` and the per-role slices.
//! - [`supervise`]: the supervisor's event loop (spawn, handshake, restart, reload, shutdown).
//! - [`ctl`]: the control socket `hbctl` talks to.
//! - [`daemon`]: detaching and the pid file.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod config;
pub mod ctl;
pub mod daemon;
pub mod supervise;

pub use hb_child::runtime;
