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
    /// A valid heartbeat arrived.
    HeartbeatReceived {
        /// The host's name as it announced it.
        host: String,
        /// Its announced interval in seconds.
        interval: Option<u32>,
        /// Where the datagram came from.
        source: SocketAddr,
        /// When it arrived, Unix ms.
        received_ms: u64,
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
}

/// The message type of a direction that carries nothing yet: no frame decodes to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Silent {}

/// Engine to receiver (pending commands arrive with the protocol issue).
pub type EngineToReceiver = Silent;
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
    fn golden_heartbeat_line() {
        let msg = ReceiverToEngine::HeartbeatReceived {
            host: "web1".into(),
            interval: Some(10),
            source: "127.0.0.2:4000".parse().unwrap(),
            received_ms: 1,
        };
        let line = serde_json::to_string(&msg).unwrap();
        assert_eq!(
            line,
            r#"{"type":"heartbeat_received","host":"web1","interval":10,"source":"127.0.0.2:4000","received_ms":1}"#
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
