//! Process management for hb: configuration, the process table, spawning, privilege
//! separation, supervision and reload (supervisor side), and the matching child side that
//! every role binary links.
//!
//! Layout:
//! - [`config`]: `/etc/hb.yaml` and the per-role slices.
//! - [`supervise`]: the supervisor's event loop (spawn, handshake, restart, reload, shutdown).
//! - [`ctl`]: the control socket `hbctl` talks to.
//! - [`child`]: a role binary's start-up and control events; [`link`]: its data channels.
//! - [`privdrop`]: the confinement sequence; [`fdpass`]: descriptors over the control channel.
//! - [`daemon`]: detaching and the pid file; [`log`]: log line format.
//! - [`passwd`]: password hashes; [`program`]: running an outside program for a role.
//! - [`rate`]: token buckets per key in a bounded table (the receiver's, the web's pings).
//! - `sys`: the only unsafe code.

#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod child;
pub mod config;
pub mod ctl;
pub mod daemon;
pub mod fdpass;
pub mod link;
pub mod log;
pub mod passwd;
pub mod privdrop;
pub mod program;
pub mod rate;
pub mod supervise;
mod sys;

pub use sys::release_free_memory;

/// The single-threaded runtime every hb program builds once its synchronous set-up (options,
/// configuration, detaching, privilege drop) is done.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}
