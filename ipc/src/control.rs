//! Supervisor <-> child messages on fd 3.
//!
//! Handshake: the child sends [`FromChild::Hello`] (and then [`FromChild::Confined`], what its
//! privilege drop achieved); the supervisor checks role and version, sends
//! [`ToChild::Config`]; the child answers [`FromChild::ConfigApplied`]; the supervisor passes
//! the child's sockets ([`ToChild::Socket`], each frame carrying one descriptor as
//! `SCM_RIGHTS`) and, once every child is configured, sends [`ToChild::Start`]. A reload is a
//! new `Config` with a higher generation, acknowledged the same way.

use serde::{Deserialize, Serialize};

use crate::Role;
use crate::config::RoleConfig;
use crate::edge::{Answer, Query};

/// Messages from the supervisor to a child.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ToChild {
    /// The child's configuration slice; answered with `ConfigApplied` or `ConfigRejected`.
    Config {
        /// Increases by one with every successful reload.
        generation: u64,
        /// The slice itself.
        config: RoleConfig,
    },
    /// One socket rides with this frame as ancillary data.
    Socket {
        /// What the descriptor is.
        socket: PassedSocket,
    },
    /// Begin work.
    Start {},
    /// Finish in-flight work and exit.
    Shutdown {},
    /// A query relayed for `hbctl` (engine only).
    Request {
        /// Answered in `Answer::re`.
        id: u64,
        /// What is asked.
        query: Query,
    },
    /// The answer to [`FromChild::Stats`] (web only).
    Stats {
        /// The request's id.
        re: u64,
        /// Every role's counters and restarts.
        stats: ServerStats,
    },
}

/// The counters of every role and how often each was restarted, for `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerStats {
    /// Per role (receiver, engine, notifier, dnsupdate; the web adds its own).
    pub roles: std::collections::BTreeMap<Role, RoleStats>,
    /// Seconds since the supervisor started.
    pub uptime_s: u64,
}

/// One role's figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleStats {
    /// Whether it runs now.
    pub running: bool,
    /// Restarts since the supervisor started.
    pub restarts: u32,
    /// Its counters (empty if it did not answer in time).
    pub counters: std::collections::BTreeMap<String, u64>,
}

/// What a descriptor passed with [`ToChild::Socket`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PassedSocket {
    /// A fresh data channel to `role`; it replaces any earlier channel to that peer.
    Peer {
        /// The peer at the other end.
        role: Role,
    },
    /// The bound UDP heartbeat socket (receiver).
    UdpListener,
    /// The bound, listening HTTP socket (web).
    TcpListener,
    /// A second listening socket on `ws_port`, served like the first (web).
    WsListener,
}

/// Messages from a child to the supervisor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FromChild {
    /// First message; `version` must equal the supervisor's [`crate::VERSION`].
    Hello {
        /// The role the binary implements.
        role: Role,
        /// Build and protocol version.
        version: String,
        /// The child's pid, as it sees itself.
        pid: u32,
    },
    /// What the privilege drop achieved; shown by `hbctl status`.
    Confined {
        /// The report.
        report: Confinement,
    },
    /// The slice of `generation` is in force.
    ConfigApplied {
        /// The generation applied.
        generation: u64,
    },
    /// The slice could not be applied; the child keeps the previous one.
    ConfigRejected {
        /// The generation refused.
        generation: u64,
        /// Why.
        reason: String,
    },
    /// A peer broke the protocol on the data channel between them; the supervisor restarts
    /// the peer (the reporter is the victim, not the culprit).
    PeerFailed {
        /// The peer at fault.
        peer: Role,
        /// What it did.
        reason: String,
    },
    /// Asks for every role's counters and restarts (web only; answered by
    /// [`ToChild::Stats`]).
    Stats {
        /// Echoed in the answer.
        id: u64,
    },
    /// Answer to [`ToChild::Request`].
    Answer {
        /// The request id answered.
        re: u64,
        /// The answer.
        answer: Answer,
    },
}

/// The confinement a child verified on itself after dropping privileges.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confinement {
    /// Real, effective and saved uid after the drop.
    pub uid: u32,
    /// Real, effective and saved gid after the drop.
    pub gid: u32,
    /// The chroot directory, if the role is chrooted.
    pub chroot: Option<String>,
    /// Whether the kernel refuses new privileges on exec (`PR_SET_NO_NEW_PRIVS` on Linux,
    /// `PROC_NO_NEW_PRIVS_CTL` on FreeBSD).
    pub no_new_privs: bool,
    /// Landlock status: `full`, `partial`, `none` or `off` (not root, nothing to confine).
    pub landlock: String,
    /// Directories the role may write to.
    pub writable: Vec<String>,
    /// Places outside `writable` where a write probe succeeded; empty when confined.
    pub escaped: Vec<String>,
    /// Each layer in force, as logged at start (`chroot /var/empty`, `uid 61001 gid 61001`,
    /// `no_new_privs (prctl)`, `landlock full`, `unveil`, `pledge "..."`), or `none`.
    #[serde(default)]
    pub layers: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_handshake_lines() {
        let hello = FromChild::Hello {
            role: Role::Engine,
            version: "1".into(),
            pid: 42,
        };
        assert_eq!(
            serde_json::to_string(&hello).unwrap(),
            r#"{"type":"hello","role":"engine","version":"1","pid":42}"#
        );
        let sock = ToChild::Socket {
            socket: PassedSocket::Peer { role: Role::Web },
        };
        assert_eq!(
            serde_json::to_string(&sock).unwrap(),
            r#"{"type":"socket","socket":{"kind":"peer","role":"web"}}"#
        );
        assert_eq!(
            serde_json::to_string(&ToChild::Start {}).unwrap(),
            r#"{"type":"start"}"#
        );
    }

    #[test]
    fn unknown_fields_and_types_are_rejected() {
        for bad in [
            r#"{"type":"hello","role":"engine","version":"1","pid":42,"uid":0}"#,
            r#"{"type":"hello","role":"root","version":"1","pid":42}"#,
            r#"{"type":"hello","role":"engine","version":"1","pid":-1}"#,
            r#"{"type":"exec","cmd":"sh"}"#,
            r#"{"role":"engine"}"#,
        ] {
            assert!(serde_json::from_str::<FromChild>(bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<ToChild>(r#"{"type":"start","now":true}"#).is_err());
    }
}
