//! Receiver <-> engine: what arrived (or was refused, or lost), and the host table and
//! command queues the receiver answers datagrams from.

use super::*;

/// The receiver's reports to the engine.
///
/// Decoded through [`ReceiverToEngineWire`], a plain struct: serde decodes an internally
/// tagged enum by buffering every field first, which costs as much as the rest of the
/// decoding and cannot carry a [`RawMessage`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    deny_unknown_fields,
    try_from = "ReceiverToEngineWire"
)]
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
        message: RawMessage,
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
    /// The receiver found its socket empty: every datagram that reached the host before
    /// `up_to_ms` (Unix ms) has been reported. Sent a few times a second, so the engine can
    /// tell a silent fleet from its own backlog (docs/IPC.md, "Time").
    Drained {
        /// Everything that arrived before this has been reported.
        up_to_ms: u64,
    },
    /// The kernel dropped datagrams for want of room in the socket's buffer (the server is
    /// behind). Sent ahead of the datagram that brought the news, so the engine holds its
    /// judgement before it reads what came after the loss.
    Lost {
        /// Datagrams dropped since the last report (or since this receiver started: the
        /// socket outlives it, and the drops before it are not news).
        count: u64,
        /// The arrival of the first datagram after them, Unix ms.
        at_ms: u64,
    },
}

/// [`ReceiverToEngine`] as it is on the wire: every variant's fields, each optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverToEngineWire {
    #[serde(rename = "type")]
    kind: ReceiverToEngineKind,
    source: Option<SocketAddr>,
    received_ms: Option<u64>,
    up_to_ms: Option<u64>,
    count: Option<u64>,
    at_ms: Option<u64>,
    host: Option<String>,
    signed: Option<bool>,
    message: Option<RawMessage>,
    reason: Option<String>,
    detail: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ReceiverToEngineKind {
    Received,
    Rejected,
    Drained,
    Lost,
}

impl TryFrom<ReceiverToEngineWire> for ReceiverToEngine {
    type Error = String;

    fn try_from(w: ReceiverToEngineWire) -> Result<ReceiverToEngine, String> {
        use ReceiverToEngineKind as Kind;
        let present = [
            ("source", w.source.is_some()),
            ("received_ms", w.received_ms.is_some()),
            ("host", w.host.is_some()),
            ("signed", w.signed.is_some()),
            ("message", w.message.is_some()),
            ("reason", w.reason.is_some()),
            ("detail", w.detail.is_some()),
            ("up_to_ms", w.up_to_ms.is_some()),
            ("count", w.count.is_some()),
            ("at_ms", w.at_ms.is_some()),
        ];
        let allowed: &[&str] = match w.kind {
            Kind::Received => &["source", "received_ms", "host", "signed", "message"],
            Kind::Rejected => &["source", "received_ms", "reason", "detail"],
            Kind::Drained => &["up_to_ms"],
            Kind::Lost => &["count", "at_ms"],
        };
        only(&present, allowed)?;
        Ok(match w.kind {
            Kind::Received => ReceiverToEngine::Received {
                host: w.host.ok_or_else(|| missing("host"))?,
                source: w.source.ok_or_else(|| missing("source"))?,
                received_ms: w.received_ms.ok_or_else(|| missing("received_ms"))?,
                signed: w.signed.ok_or_else(|| missing("signed"))?,
                message: w.message.ok_or_else(|| missing("message"))?,
            },
            Kind::Rejected => ReceiverToEngine::Rejected {
                source: w.source.ok_or_else(|| missing("source"))?,
                received_ms: w.received_ms.ok_or_else(|| missing("received_ms"))?,
                reason: w.reason.ok_or_else(|| missing("reason"))?,
                detail: w.detail.ok_or_else(|| missing("detail"))?,
            },
            Kind::Drained => ReceiverToEngine::Drained {
                up_to_ms: w.up_to_ms.ok_or_else(|| missing("up_to_ms"))?,
            },
            Kind::Lost => ReceiverToEngine::Lost {
                count: w.count.ok_or_else(|| missing("count"))?,
                at_ms: w.at_ms.ok_or_else(|| missing("at_ms"))?,
            },
        })
    }
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
    /// `host` was dropped: forget its queue and that it has data.
    Forget {
        /// The host.
        host: String,
    },
}
