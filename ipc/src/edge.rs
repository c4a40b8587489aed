//! Child <-> child messages, one enum per direction of each edge.
//!
//! Every edge goes through the engine. Directions that carry nothing yet use [`Silent`], which
//! no frame can decode to: anything a peer sends there is a protocol violation.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The receiver's reports to the engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ReceiverToEngine {
    /// A datagram passed every check (limits, name, signature, rate).
    Received {
        /// The host's name as it announced it.
        host: String,
        /// Where the datagram came from.
        source: SocketAddr,
        /// When it arrived, Unix ms.
        received_ms: u64,
        /// Whether it carried a valid signature.
        signed: bool,
        /// The message as on the wire (validated), for the engine and the journal.
        message: serde_json::Value,
    },
    /// A datagram was refused (rate-limited rejections are only counted, not reported).
    Rejected {
        /// Where it came from.
        source: SocketAddr,
        /// When it arrived, Unix ms.
        received_ms: u64,
        /// Stable reason name (`zlib_bomb`, `bad_signature`, ...).
        reason: String,
        /// Human-readable detail.
        detail: String,
    },
}

/// What the engine keeps current in the receiver so an ACK never waits on the engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum EngineToReceiver {
    /// The whole table, sent whenever the channel is (re)made.
    HostTable {
        /// Hosts the engine has plugin data for.
        with_data: Vec<String>,
        /// Commands and updates waiting, per host.
        queues: std::collections::BTreeMap<String, Vec<QueuedCommand>>,
    },
    /// The commands and updates waiting for `host` now (empty: none).
    Queue {
        /// The host.
        host: String,
        /// Oldest first.
        queue: Vec<QueuedCommand>,
    },
    /// The engine now has plugin data for `host`.
    HostHasData {
        /// The host.
        host: String,
    },
}

/// hb-web's requests to the engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum WebToEngine {
    /// A query, answered with [`EngineToWeb::Answer`] carrying the same id.
    Request {
        /// Request id, unique per connection.
        id: u64,
        /// What is asked.
        query: Query,
    },
}

/// The engine's answers to hb-web.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum EngineToWeb {
    /// Answer to a [`WebToEngine::Request`].
    Answer {
        /// The id of the request answered.
        re: u64,
        /// The answer.
        answer: Answer,
    },
}

/// A question to the engine, from hb-web or (for `hbctl`) the supervisor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "query", rename_all = "snake_case", deny_unknown_fields)]
pub enum Query {
    /// Every known host.
    ListHosts {},
    /// The role's counters.
    Counters {},
    /// Recent events, oldest first.
    Messages {},
    /// Queue a named command (or, with `command: None`, an update) for a host.
    QueueCommand {
        /// The host.
        host: String,
        /// Name in the host's `commands:` map; `None` queues an update.
        command: Option<String>,
    },
}

/// The engine's answer to a [`Query`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case", deny_unknown_fields)]
pub enum Answer {
    /// The host list.
    Hosts {
        /// One entry per host, sorted by name.
        hosts: Vec<HostSummary>,
    },
    /// The id given to a queued command.
    Queued {
        /// The id; the host's result carries it.
        id: u64,
    },
    /// Recent events.
    Messages {
        /// Oldest first.
        messages: Vec<EventSummary>,
    },
    /// Counters by name.
    Counters {
        /// Name -> value.
        counters: std::collections::BTreeMap<String, u64>,
    },
    /// The query failed.
    Error {
        /// Why.
        message: String,
    },
}

/// A host as listed by `/api/0/hosts` and `hbctl hosts`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSummary {
    /// Host name.
    pub name: String,
    /// Last heartbeat, Unix ms.
    pub last_seen_ms: u64,
    /// Address of the last heartbeat.
    pub address: SocketAddr,
    /// Expected interval in seconds.
    pub interval: u32,
    /// Heartbeats received since the engine started.
    pub heartbeats: u64,
    /// Round-trip time the host last reported, ms.
    pub rtt_ms: Option<f64>,
    /// Client version the host last reported.
    pub version: Option<String>,
    /// Whether its last heartbeat was signed.
    pub signed: bool,
    /// `up`, `overdue`, `down` or `shutdown`.
    pub state: String,
}

/// A command or update waiting for a host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueuedCommand {
    /// Unique id.
    pub id: u64,
    /// Name in the host's `commands:` map; `None` for an update.
    pub command: Option<String>,
}

/// An event as listed by `/api/0/messages` and `hbctl messages`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSummary {
    /// When, Unix ms.
    pub time_ms: u64,
    /// The host it concerns.
    pub host: String,
    /// What happened.
    pub msg: String,
}

/// The message type of a direction that carries nothing yet: no frame decodes to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Silent {}

/// Engine to notifier.
pub type EngineToNotifier = Silent;
/// Notifier to engine.
pub type NotifierToEngine = Silent;
/// Engine to DNS updater.
pub type EngineToDnsupdate = Silent;
/// DNS updater to engine.
pub type DnsupdateToEngine = Silent;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_received_line() {
        let msg = ReceiverToEngine::Received {
            host: "web1".into(),
            source: "127.0.0.2:4000".parse().unwrap(),
            received_ms: 1,
            signed: false,
            message: serde_json::json!({"ID": "HTB", "name": "web1"}),
        };
        let line = serde_json::to_string(&msg).unwrap();
        assert_eq!(
            line,
            r#"{"type":"received","host":"web1","source":"127.0.0.2:4000","received_ms":1,"signed":false,"message":{"ID":"HTB","name":"web1"}}"#
        );
        assert_eq!(
            serde_json::from_str::<ReceiverToEngine>(&line).unwrap(),
            msg
        );
    }

    #[test]
    fn silent_directions_accept_nothing() {
        for line in ["{}", "null", r#"{"type":"x"}"#, "\"a\""] {
            assert!(serde_json::from_str::<Silent>(line).is_err());
        }
    }

    #[test]
    fn request_and_answer_round_trip() {
        let req = WebToEngine::Request {
            id: 9,
            query: Query::ListHosts {},
        };
        let line = serde_json::to_string(&req).unwrap();
        assert_eq!(
            line,
            r#"{"type":"request","id":9,"query":{"query":"list_hosts"}}"#
        );
        assert_eq!(serde_json::from_str::<WebToEngine>(&line).unwrap(), req);
    }
}
