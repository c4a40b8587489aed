//! The child side of hb's privilege separation: what every role binary links, and nothing
//! of the parent (the supervisor's configuration parser, process table and control socket
//! stay in `hb-supervisor`, which no role links).
//!
//! Layout:
//! - [`role`]: a role binary's start-up, handshake and control events; [`role::Control`] is
//!   what a role does with each event and [`role::dispatch`] the one place every role's loop
//!   hands an event to it.
//! - [`link`]: its data channels to the other roles.
//! - [`privdrop`]: the confinement sequence; [`fdpass`]: descriptors over the control channel.
//! - [`passwd`]: password hashes; [`program`]: running an outside program for a role.
//! - [`rate`]: token buckets per key in a bounded table (the receiver's, the web's pings).
//! - [`sys`]: the only unsafe code.

#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod fdpass;
pub mod link;
pub mod passwd;
pub mod privdrop;
pub mod program;
pub mod rate;
pub mod role;
pub mod sys;

pub use role::{Control, ControlEvent, ControlSender, Passed, Taken, dispatch, run};
pub use sys::release_free_memory;

/// The single-threaded runtime every hb program builds once its synchronous set-up (options,
/// configuration, detaching, privilege drop) is done.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}
