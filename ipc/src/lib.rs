//! Messages, framing and handshake shared by hb's processes.
//!
//! Layout:
//! - [`codec`]: the bounded newline-delimited JSON codec every channel uses.
//! - [`control`]: supervisor <-> child messages on fd 3 (handshake, config, sockets, shutdown).
//! - [`edge`]: child <-> child messages, one enum per direction.
//! - [`ctl`]: `hbctl` <-> supervisor messages on the control socket.
//! - [`config`]: the per-role configuration slices the supervisor pushes.
//! - [`request`]: request ids and timeouts for request/response exchanges.
//!
//! Every payload rejects unknown fields: our processes are built and installed together and
//! compare [`VERSION`] in `Hello`, so strictness costs nothing and catches mismatches early.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod codec;
pub mod config;
pub mod control;
pub mod ctl;
pub mod edge;
pub mod request;

use std::fmt;

use serde::{Deserialize, Serialize};

/// Build and protocol version every child reports in `Hello`; a mismatch is fatal for that
/// child, which catches a half-upgraded install (old supervisor, new role binaries).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "+ipc1");

/// The five child roles. The supervisor is not a role: it is the parent of all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// UDP heartbeats in, ACKs out.
    Receiver,
    /// Host state, thresholds, store, journal.
    Engine,
    /// Delivers notifications.
    Notifier,
    /// Runs `nsupdate`.
    Dnsupdate,
    /// HTTP API, dashboard, WebSocket, HTTP pings.
    Web,
}

impl Role {
    /// Every role, in start order: the engine first so its peers find it ready.
    pub const ALL: [Role; 5] = [
        Role::Engine,
        Role::Receiver,
        Role::Notifier,
        Role::Dnsupdate,
        Role::Web,
    ];

    /// The role's name as used in logs, argv and config keys.
    pub fn name(self) -> &'static str {
        match self {
            Role::Receiver => "receiver",
            Role::Engine => "engine",
            Role::Notifier => "notifier",
            Role::Dnsupdate => "dnsupdate",
            Role::Web => "web",
        }
    }

    /// File name of the role's binary, next to `hbsupervisor`.
    pub fn binary(self) -> &'static str {
        match self {
            Role::Receiver => "hb-receiver",
            Role::Engine => "hb-engine",
            Role::Notifier => "hb-notifier",
            Role::Dnsupdate => "hb-dnsupdate",
            Role::Web => "hb-web",
        }
    }

    /// Parses a role name as written by [`Role::name`].
    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The peers this role has a data channel with. Every edge goes through the engine.
    pub fn peers(self) -> &'static [Role] {
        match self {
            Role::Engine => &[Role::Receiver, Role::Notifier, Role::Dnsupdate, Role::Web],
            Role::Receiver | Role::Notifier | Role::Dnsupdate | Role::Web => &[Role::Engine],
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

pub use hb_proto::now_ms;

/// Adds `n` to counter `name` (saturating). The name is looked up before it is inserted:
/// most counts are of a counter that exists, and its allocation would be paid per datagram.
pub fn add_to_counter(counters: &mut std::collections::BTreeMap<String, u64>, name: &str, n: u64) {
    match counters.get_mut(name) {
        Some(total) => *total = total.saturating_add(n),
        None => {
            counters.insert(name.to_string(), n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::from_name(role.name()), Some(role));
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.name()));
        }
        assert_eq!(Role::from_name("supervisor"), None);
    }

    #[test]
    fn every_edge_is_symmetric() {
        for role in Role::ALL {
            for peer in role.peers() {
                assert!(peer.peers().contains(&role), "{role} -> {peer}");
            }
        }
    }
}
