//! Child <-> child messages, one enum per direction of each edge.
//!
//! Every edge goes through the engine. The unused half of a one-way codec is [`Silent`],
//! which no frame can decode to: anything a peer sends there is a protocol violation.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// A validated client message as JSON text, passed through as it is: the engine decodes it
/// once (text to its own types) and the journal writes it out verbatim; no decoded tree is
/// carried, copied and printed again on the way (at a fleet's rate that was a fifth of the
/// engine's time).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawMessage(Box<serde_json::value::RawValue>);

impl RawMessage {
    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// `value` printed as JSON text, without a tree on the way.
    pub fn of<T: Serialize>(value: &T) -> RawMessage {
        // Printing plain data cannot fail; the fallback is unreachable but costs nothing.
        RawMessage(
            serde_json::value::to_raw_value(value)
                .unwrap_or_else(|_| serde_json::value::RawValue::NULL.to_owned()),
        )
    }
}

impl From<serde_json::Value> for RawMessage {
    fn from(value: serde_json::Value) -> RawMessage {
        RawMessage::of(&value)
    }
}

impl PartialEq for RawMessage {
    fn eq(&self, other: &RawMessage) -> bool {
        self.get() == other.get()
    }
}

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

/// A ping of a check, as hb-web passes it to the engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PingRequest {
    /// The check's UUID, as pinged.
    pub uuid: String,
    /// `success`, `start`, `fail` or `log` (an exit status: 0 success, else fail).
    pub kind: String,
    /// Exit status of the job, when the URL ends in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<i32>,
    /// The run id (`rid`) tying a start to its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<String>,
    /// Who pinged.
    pub source: SocketAddr,
    /// The request body, cut to the stored size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// `GET`, `POST` or `HEAD`.
    pub method: String,
    /// The client's User-Agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The ping key it carried, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
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

/// The engine's answers to hb-web, and the stream of changes it turns into live updates.
///
/// Decoded through [`EngineToWebWire`] and each change through [`ChangeWire`], plain
/// structs: serde decodes an internally tagged enum by buffering all of it first, and a
/// batch of thousands of changes was buffered whole, then each change again (at 150,000
/// heartbeats/s, half of the web's time).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    deny_unknown_fields,
    try_from = "EngineToWebWire"
)]
pub enum EngineToWeb {
    /// Answer to a [`WebToEngine::Request`].
    Answer {
        /// The id of the request answered.
        re: u64,
        /// The answer.
        answer: Answer,
    },
    /// What changed since the last such message, in order (one message per turn of the
    /// engine's loop, so a burst of changes is one message on the link).
    Changes {
        /// What.
        changes: Vec<Change>,
    },
}

/// [`EngineToWeb`] as it is on the wire: every variant's fields, each optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineToWebWire {
    #[serde(rename = "type")]
    kind: EngineToWebKind,
    re: Option<u64>,
    answer: Option<Answer>,
    changes: Option<Vec<Change>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum EngineToWebKind {
    Answer,
    Changes,
}

fn missing(field: &str) -> String {
    format!("missing field `{field}`")
}

/// Refuses a wire struct's field given a value (`present`: each field and whether it has
/// one) that its variant does not have, as a tagged enum would.
fn only(present: &[(&str, bool)], allowed: &[&str]) -> Result<(), String> {
    match present
        .iter()
        .find(|(field, here)| *here && !allowed.contains(field))
    {
        Some((field, _)) => Err(format!("unknown field `{field}` for this variant")),
        None => Ok(()),
    }
}

impl TryFrom<EngineToWebWire> for EngineToWeb {
    type Error = String;

    fn try_from(w: EngineToWebWire) -> Result<EngineToWeb, String> {
        match w.kind {
            EngineToWebKind::Answer => {
                if w.changes.is_some() {
                    return Err("an answer carries no changes".into());
                }
                Ok(EngineToWeb::Answer {
                    re: w.re.ok_or_else(|| missing("re"))?,
                    answer: w.answer.ok_or_else(|| missing("answer"))?,
                })
            }
            EngineToWebKind::Changes => {
                if w.re.is_some() || w.answer.is_some() {
                    return Err("changes carry no answer".into());
                }
                Ok(EngineToWeb::Changes {
                    changes: w.changes.ok_or_else(|| missing("changes"))?,
                })
            }
        }
    }
}

/// [`Change`] as it is on the wire: every variant's fields, each optional. `host` is a
/// whole summary in one variant and a name in the others, so it is kept as text until the
/// variant is known.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeWire {
    change: ChangeKind,
    host: Option<Box<serde_json::value::RawValue>>,
    last_seen_ms: Option<u64>,
    heartbeats: Option<u64>,
    // Present and null is "no RTT"; absent too.
    #[serde(default)]
    rtt_ms: Option<f64>,
    plugin: Option<String>,
    time_ms: Option<u64>,
    event: Option<EventSummary>,
    alert: Option<AlertSummary>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ChangeKind {
    Host,
    Seen,
    Sample,
    Event,
    Alert,
    Dropped,
    Resync,
}

impl TryFrom<ChangeWire> for Change {
    type Error = String;

    fn try_from(w: ChangeWire) -> Result<Change, String> {
        // The fields each variant has; any other with a value is refused, as the tagged
        // enum refused them (one given as null reads as absent).
        let present = [
            ("host", w.host.is_some()),
            ("last_seen_ms", w.last_seen_ms.is_some()),
            ("heartbeats", w.heartbeats.is_some()),
            ("rtt_ms", w.rtt_ms.is_some()),
            ("plugin", w.plugin.is_some()),
            ("time_ms", w.time_ms.is_some()),
            ("event", w.event.is_some()),
            ("alert", w.alert.is_some()),
        ];
        let allowed: &[&str] = match w.change {
            ChangeKind::Host | ChangeKind::Dropped => &["host"],
            ChangeKind::Seen => &["host", "last_seen_ms", "heartbeats", "rtt_ms"],
            ChangeKind::Sample => &["host", "plugin", "time_ms"],
            ChangeKind::Event => &["event"],
            ChangeKind::Alert => &["alert"],
            ChangeKind::Resync => &[],
        };
        only(&present, allowed)?;
        let name = |raw: Option<Box<serde_json::value::RawValue>>| -> Result<String, String> {
            let raw = raw.ok_or_else(|| missing("host"))?;
            serde_json::from_str(raw.get()).map_err(|e| e.to_string())
        };
        Ok(match w.change {
            ChangeKind::Host => {
                let raw = w.host.ok_or_else(|| missing("host"))?;
                Change::Host {
                    host: serde_json::from_str(raw.get()).map_err(|e| e.to_string())?,
                }
            }
            ChangeKind::Seen => Change::Seen {
                host: name(w.host)?,
                last_seen_ms: w.last_seen_ms.ok_or_else(|| missing("last_seen_ms"))?,
                heartbeats: w.heartbeats.ok_or_else(|| missing("heartbeats"))?,
                rtt_ms: w.rtt_ms,
            },
            ChangeKind::Sample => Change::Sample {
                host: name(w.host)?,
                plugin: w.plugin.ok_or_else(|| missing("plugin"))?,
                time_ms: w.time_ms.ok_or_else(|| missing("time_ms"))?,
            },
            ChangeKind::Event => Change::Event {
                event: w.event.ok_or_else(|| missing("event"))?,
            },
            ChangeKind::Alert => Change::Alert {
                alert: w.alert.ok_or_else(|| missing("alert"))?,
            },
            ChangeKind::Dropped => Change::Dropped {
                host: name(w.host)?,
            },
            ChangeKind::Resync => Change::Resync {},
        })
    }
}

/// One change in the engine's state, for live views.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "change",
    rename_all = "snake_case",
    deny_unknown_fields,
    try_from = "ChangeWire"
)]
pub enum Change {
    /// A host's state, address, version or access changed, or it is new.
    Host {
        /// The host as listed.
        host: HostSummary,
    },
    /// A host was heard from and nothing but these figures changed (sent at most once per
    /// host per 25 ms): the web applies them to the host it holds. Building and sending a whole summary per host cost the engine
    /// half its time with 100,000 hosts.
    Seen {
        /// The host.
        host: String,
        /// When it was last heard from, Unix ms.
        last_seen_ms: u64,
        /// Heartbeats since it was first seen.
        heartbeats: u64,
        /// The round trip it last reported, ms.
        rtt_ms: Option<f64>,
    },
    /// New plugin data arrived for a host.
    Sample {
        /// The host.
        host: String,
        /// The plugin.
        plugin: String,
        /// When, Unix ms.
        time_ms: u64,
    },
    /// A new event.
    Event {
        /// The event.
        event: EventSummary,
    },
    /// An alert began, changed level or ended.
    Alert {
        /// The alert as it is now (`level` `OK` when it ended).
        alert: AlertSummary,
    },
    /// A host was dropped.
    Dropped {
        /// The host.
        host: String,
    },
    /// Changes were left out because the web fell behind: query everything again.
    Resync {},
}

/// Engine to notifier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
// Nearly every message is a Notify; boxing it would cost an allocation each for nothing.
#[allow(clippy::large_enum_variant)]
pub enum EngineToNotifier {
    /// Deliver this (it is in the engine's outbox until answered with [`NotifierToEngine::Done`]).
    Notify {
        /// The notification.
        notification: Notification,
    },
    /// What routing takes from changes made through the API (sent whenever it changes and
    /// when the notifier connects): users' own choice of channels, each replacing what the
    /// file says for that user while the file still says what it said then; and the
    /// channels defined through the API (a file channel of the same name wins).
    FromApi {
        /// User -> choice.
        users: std::collections::BTreeMap<String, ChosenChannels>,
        /// Name -> definition, as in `notification_channels` (secrets included).
        channels: std::collections::BTreeMap<String, serde_json::Value>,
    },
}

/// A user's choice of channels, and the file's channels for them when it was made.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChosenChannels {
    /// The choice.
    pub channels: Vec<String>,
    /// What the file said then.
    pub base: Vec<String>,
}

/// Notifier to engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum NotifierToEngine {
    /// One channel delivered notification `id` (sent at once, so a resend after a crash of
    /// the notifier skips it).
    Delivered {
        /// The notification.
        id: u64,
        /// The channel.
        channel: String,
    },
    /// Every channel of notification `id` delivered it or failed for good.
    Done {
        /// The notification.
        id: u64,
        /// Channels that delivered it.
        delivered: Vec<String>,
        /// Channels that gave up, with why.
        failed: Vec<ChannelFailure>,
    },
}

/// A channel that could not deliver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelFailure {
    /// The channel's name.
    pub channel: String,
    /// The last error (never a secret).
    pub error: String,
}

/// One notification, as kept in the outbox and handed to the notifier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notification {
    /// Unique and kept across resends: a channel delivers each id once.
    pub id: u64,
    /// The alert this is about (`web1/down`); a recovery carries its alert's key, so it goes
    /// to the channels that got the alert.
    pub alert: String,
    /// `alert`, `recovery` or `reminder`.
    pub kind: String,
    /// `CRITICAL`, `WARNING`, `UNKNOWN` or `OK`.
    pub level: String,
    /// The host.
    pub host: String,
    /// Short text (`[CRITICAL] web1 down`).
    pub title: String,
    /// The details.
    pub text: String,
    /// When the engine decided it, Unix ms.
    pub created_ms: u64,
    /// The host's owner and managers, whose channels get it.
    pub users: Vec<String>,
    /// The host's own channels.
    pub channels: Vec<String>,
    /// For a recovery: the channels that got its alert (they get the recovery whatever
    /// their `min_level`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerted: Vec<String>,
    /// Channels that already delivered it (a resend skips them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub done_channels: Vec<String>,
}

/// An alert that is active (or, in a change, just ended).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSummary {
    /// Key, unique per host and check (`web1/down`).
    pub key: String,
    /// The host.
    pub host: String,
    /// `CRITICAL`, `WARNING`, `UNKNOWN` or `OK`.
    pub level: String,
    /// Since when at this level, Unix ms.
    pub since_ms: u64,
    /// What it is about.
    pub text: String,
    /// Whether a notification went out for it (false for unwatched hosts).
    pub notified: bool,
    /// What is alerting (`down`, `rtt`, `cpu_monitor.cpu_percent`).
    #[serde(default)]
    pub metric: String,
    /// When it opened (left OK), Unix ms.
    #[serde(default)]
    pub opened_ms: u64,
    /// Who acknowledged it, if anyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<String>,
}

/// An ad-hoc silence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceSummary {
    /// Id.
    pub id: u64,
    /// Host pattern.
    pub host: String,
    /// Metric pattern.
    pub metric: String,
    /// From, Unix ms.
    pub start_ms: u64,
    /// Until, Unix ms.
    pub end_ms: u64,
    /// Who.
    pub author: String,
    /// Why.
    pub comment: String,
}

/// A plugin sample from the history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    /// When it arrived, Unix ms.
    pub time_ms: u64,
    /// The plugin's data.
    pub data: serde_json::Value,
}

/// A round-trip time from the history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RttSample {
    /// When the heartbeat carrying it arrived, Unix ms.
    pub time_ms: u64,
    /// Round-trip time the host reported, ms.
    pub rtt_ms: f64,
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
    /// One host with its latest plugin data and active alerts.
    Host {
        /// The host.
        host: String,
    },
    /// The newest samples of one plugin of a host, newest first.
    Samples {
        /// The host.
        host: String,
        /// The plugin.
        plugin: String,
        /// At most this many (capped at the retained `sample_count`).
        limit: u32,
    },
    /// The newest round-trip times of a host, newest first.
    Rtt {
        /// The host.
        host: String,
        /// At most this many.
        limit: u32,
    },
    /// Events from the store, newest first, optionally of one host.
    Events {
        /// Only this host's.
        host: Option<String>,
        /// At most this many (capped at 1000).
        limit: u32,
    },
    /// Active alerts.
    Alerts {},
    /// Forget a host: its state, history and alerts (it reappears if it heartbeats again).
    DropHost {
        /// The host.
        host: String,
    },
    /// Silence alerts matching host and metric patterns for a while.
    Silence {
        /// Host pattern (`*`, `?`).
        host: String,
        /// Metric pattern (`down`, `rtt`, `cpu_monitor.*`, `*`).
        metric: String,
        /// For how long, minutes (at most 30 days).
        minutes: u32,
        /// Who.
        author: String,
        /// Why.
        comment: String,
    },
    /// End a silence early.
    Unsilence {
        /// Its id.
        id: u64,
    },
    /// Silences in force and maintenance windows.
    Silences {},
    /// (notifier) Send a test notification through one channel or all, once each.
    TestNotify {
        /// The channel; `None`: every channel.
        channel: Option<String>,
    },
    /// Set a host's DNS records to its current address (or remove them if it is down with
    /// `dns_failover`) now, whatever the engine last asked for.
    Dns {
        /// The host.
        host: String,
    },
    /// The alerting rules in force: thresholds, profiles, the default profile.
    Thresholds {},
    /// Settings changed through the API, of one kind (`user`), by name.
    Settings {
        /// The kind.
        kind: String,
    },
    /// Stores (or, with `None`, removes) one setting changed through the API.
    PutSetting {
        /// The kind (`user`).
        kind: String,
        /// Whose.
        name: String,
        /// The value (a JSON object, at most 16 KiB).
        value: Option<serde_json::Value>,
    },
    /// Channels defined through the API, by name, as they may be shown (no secrets).
    Channels {},
    /// Defines, replaces or (with `None`) removes a channel made through the API. A secret
    /// option the new definition leaves out keeps its value when the type stays the same;
    /// one given as `null` is removed.
    PutChannel {
        /// Its name.
        name: String,
        /// Its definition: `type` and options.
        definition: Option<serde_json::Value>,
    },
    /// Changes who holds which role on a host (until the file changes them); each field
    /// not given stays as it is.
    SetAccess {
        /// The host.
        host: String,
        /// The new owner (`Some(None)`: the default owner).
        #[serde(
            default,
            deserialize_with = "given",
            skip_serializing_if = "Option::is_none"
        )]
        owner: Option<Option<String>>,
        /// The new managers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        managers: Option<Vec<String>>,
        /// The new monitors.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        monitors: Option<Vec<String>>,
    },
    /// A ping of a check (`/ping/<uuid>...`, `/heartbeat/<uuid>`), answered once stored.
    Ping(PingRequest),
    /// The checks, with their state.
    Checks {},
    /// Defines, replaces or (with `None`) removes a check made through the API; removing one
    /// forgets its state and history.
    PutCheck {
        /// Its name (a host name).
        name: String,
        /// `uuid`, `interval`, `grace`, `active`, `description`, `owner`, `managers`,
        /// `monitors`, `notification_channels`.
        definition: Option<serde_json::Value>,
    },
    /// A check's ping history, newest first.
    Pings {
        /// The check.
        check: String,
        /// At most this many.
        limit: u32,
    },
    /// Acknowledge an alert: no reminders until its level changes.
    Acknowledge {
        /// The alert's key (`web1/down`).
        key: String,
        /// Who.
        by: String,
    },
}

/// Tells a field given as `null` (`Some(None)`) from one not given (`None`); use with
/// `#[serde(default, deserialize_with = "given")]`.
pub fn given<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// The engine's answer to a change its store could not keep.
pub const STORE_FAILED: &str = "the store failed to keep the change (see the engine's log)";

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
    /// One host.
    Host {
        /// As listed (boxed: it is the largest answer by far).
        host: Box<HostSummary>,
        /// Latest data per plugin.
        plugins: std::collections::BTreeMap<String, PluginLatest>,
        /// Its active alerts.
        alerts: Vec<AlertSummary>,
    },
    /// Plugin history, newest first.
    Samples {
        /// The samples.
        samples: Vec<Sample>,
    },
    /// RTT history, newest first.
    Rtt {
        /// The samples.
        samples: Vec<RttSample>,
    },
    /// Active alerts.
    Alerts {
        /// Oldest first.
        alerts: Vec<AlertSummary>,
    },
    /// The host is forgotten.
    Dropped {
        /// The host.
        host: String,
    },
    /// A silence was made.
    Silenced {
        /// Its id.
        id: u64,
    },
    /// Silences in force, and the maintenance windows.
    Silences {
        /// Ad-hoc silences not yet over, oldest first.
        silences: Vec<SilenceSummary>,
        /// Names of the maintenance windows, with whether each is open now.
        windows: Vec<(String, bool)>,
    },
    /// The alerting rules in force, as configured.
    Thresholds {
        /// `thresholds`.
        thresholds: serde_json::Value,
        /// `threshold_configs` (the profiles).
        profiles: serde_json::Value,
        /// `default_threshold_config`.
        default_profile: String,
    },
    /// A ping was taken.
    Pinged {
        /// The check's name.
        check: String,
        /// When, Unix ms.
        at_ms: u64,
    },
    /// The checks.
    Checks {
        /// Sorted by name.
        checks: Vec<CheckSummary>,
    },
    /// A check's pings, newest first.
    Pings {
        /// The pings.
        pings: Vec<PingRecord>,
    },
    /// Settings of one kind, by name.
    Settings {
        /// Name -> value.
        values: std::collections::BTreeMap<String, serde_json::Value>,
    },
    /// Done.
    Done {
        /// What was done.
        message: String,
    },
    /// The query failed.
    Error {
        /// Why.
        message: String,
    },
}

/// A check as listed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSummary {
    /// Its name (also its host name).
    pub name: String,
    /// Its ping UUID.
    pub uuid: String,
    /// Whether it takes pings.
    pub active: bool,
    /// Expected seconds between pings.
    pub interval: u32,
    /// Seconds of slack after a missed ping.
    pub grace: f64,
    /// What it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `new` (never pinged), `up`, `overdue`, `down` (or `paused` when inactive).
    pub state: String,
    /// The last ping that counted (success), Unix ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ping_ms: Option<u64>,
    /// The last ping of any kind, and its kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event: Option<(u64, String)>,
    /// Its owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Its managers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managers: Vec<String>,
    /// Its monitors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub monitors: Vec<String>,
    /// Its cron schedule and time zone, when it has one instead of an interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// The schedule's time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
    /// Made through the API (else in the configuration file).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub api: bool,
}

/// One ping of a check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PingRecord {
    /// When, Unix ms.
    pub at_ms: u64,
    /// `success`, `start`, `fail` or `log`.
    pub kind: String,
    /// The job's exit status, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<i32>,
    /// The run id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<String>,
    /// Who pinged.
    pub source: String,
    /// How: `GET`, `POST` or `HEAD`.
    pub method: String,
    /// The client's User-Agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The body, as stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// For an end after a start: the run's duration, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
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
    /// `up`, `overdue`, `down`, `unreachable` (down while a parent is) or `shutdown`.
    pub state: String,
    /// Since when in that state, Unix ms.
    pub state_since_ms: u64,
    /// Whether its outages notify anyone (`watch`).
    pub watched: bool,
    /// Its owner.
    pub owner: Option<String>,
    /// Users who may act on it (queue commands, DNS, upgrades) besides the owner.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managers: Vec<String>,
    /// Users who may see it and acknowledge its alerts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub monitors: Vec<String>,
    /// Whether its DNS records follow it (`dyndns`, `dns_failover`, `dyndnshosts`).
    #[serde(default)]
    pub dyn_dns: bool,
}

/// A plugin's latest report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginLatest {
    /// When it arrived, Unix ms.
    pub time_ms: u64,
    /// What it said.
    pub data: serde_json::Value,
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

/// The message type of the unused half of a link's codec: no frame decodes to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Silent {}

/// What a host's DNS records should be.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsWish {
    /// The host (its records are `<host>.<dyndomain>` for every dyndomain).
    pub host: String,
    /// The address to point them at (A for IPv4, AAAA for IPv6); `None`: remove them (the
    /// host is down and has `dns_failover`).
    pub address: Option<std::net::IpAddr>,
    /// Why (`first sight`, `moved`, `down`, `recovered`, `asked by hbctl`), for the event.
    pub why: String,
}

/// Engine to DNS updater.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum EngineToDnsupdate {
    /// Make these records so; a newer wish for a name replaces an older one not yet done.
    Update {
        /// In the order they were decided.
        wishes: Vec<DnsWish>,
    },
}

/// DNS updater to engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DnsupdateToEngine {
    /// What became of one record's update; the engine makes it an event of the host.
    Outcome {
        /// The host.
        host: String,
        /// `updated`, `failed` (retried later) or `refused` (never sent to nsupdate).
        outcome: DnsOutcome,
        /// What was done or went wrong, for the event.
        text: String,
    },
}

/// How an update ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DnsOutcome {
    /// nsupdate succeeded.
    Updated,
    /// nsupdate failed or timed out; it will be tried again.
    Failed,
    /// The name or address was refused before anything ran.
    Refused,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_feed_lines_decode_as_the_tagged_enums_did() {
        let summary = serde_json::json!({"name": "web1"});
        let good = [
            r#"{"type":"changes","changes":[]}"#.to_string(),
            r#"{"type":"changes","changes":[{"change":"seen","host":"a","last_seen_ms":1,"heartbeats":2,"rtt_ms":null},{"change":"seen","host":"b","last_seen_ms":1,"heartbeats":2,"rtt_ms":0.5},{"change":"resync"},{"change":"dropped","host":"c"},{"change":"sample","host":"d","plugin":"cpu","time_ms":3}]}"#.into(),
            r#"{"changes":[{"host":"a","change":"dropped"}],"type":"changes"}"#.into(),
            r#"{"type":"changes","changes":[{"change":"seen","host":"a","last_seen_ms":1,"heartbeats":2}]}"#.into(),
        ];
        for line in &good {
            let msg: EngineToWeb = serde_json::from_str(line).expect(line);
            let again = serde_json::to_string(&msg).unwrap();
            assert_eq!(serde_json::from_str::<EngineToWeb>(&again).unwrap(), msg);
        }
        let bad = [
            r#"{"type":"changes"}"#.to_string(),
            r#"{"type":"changes","changes":[],"re":1}"#.into(),
            r#"{"type":"answer","re":1,"changes":[]}"#.into(),
            r#"{"type":"nothing","changes":[]}"#.into(),
            r#"{"type":"changes","changes":[{"change":"seen","host":"a","last_seen_ms":1}]}"#.into(),
            r#"{"type":"changes","changes":[{"change":"seen","host":7,"last_seen_ms":1,"heartbeats":2}]}"#.into(),
            r#"{"type":"changes","changes":[{"change":"dropped","host":"a","plugin":"x"}]}"#.into(),
            r#"{"type":"changes","changes":[{"change":"resync","host":"a"}]}"#.into(),
            r#"{"type":"changes","changes":[{"change":"seen","host":"a","last_seen_ms":1,"heartbeats":2,"extra":1}]}"#.into(),
            format!(r#"{{"type":"changes","changes":[{{"change":"dropped","host":{summary}}}]}}"#),
            r#"{"type":"changes","changes":[{"change":"host","host":"a"}]}"#.into(),
            r#"{"type":"changes","changes":[{"change":"seen","host":"a","host":"b","last_seen_ms":1,"heartbeats":2}]}"#.into(),
        ];
        for line in &bad {
            assert!(serde_json::from_str::<EngineToWeb>(line).is_err(), "{line}");
        }
    }

    #[test]
    fn golden_received_line() {
        let msg = ReceiverToEngine::Received {
            host: "web1".into(),
            source: "127.0.0.2:4000".parse().unwrap(),
            received_ms: 1,
            signed: false,
            message: serde_json::json!({"ID": "HTB", "name": "web1"}).into(),
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
    fn receiver_lines_with_wrong_or_missing_fields_are_refused() {
        for line in [
            r#"{"type":"received","source":"127.0.0.2:4000","received_ms":1,"signed":false,"message":{}}"#,
            r#"{"type":"received","host":"a","source":"127.0.0.2:4000","received_ms":1,"signed":false}"#,
            r#"{"type":"received","host":"a","source":"127.0.0.2:4000","received_ms":1,"signed":false,"message":{},"reason":"x"}"#,
            r#"{"type":"rejected","source":"127.0.0.2:4000","received_ms":1,"reason":"x"}"#,
            r#"{"type":"rejected","source":"127.0.0.2:4000","received_ms":1,"reason":"x","detail":"y","host":"a"}"#,
            r#"{"type":"other","source":"127.0.0.2:4000","received_ms":1}"#,
            r#"{"type":"rejected","received_ms":1,"reason":"x","detail":"y"}"#,
            r#"{"type":"drained"}"#,
            r#"{"type":"drained","up_to_ms":-1}"#,
            r#"{"type":"drained","up_to_ms":1,"received_ms":1}"#,
            r#"{"type":"drained","up_to_ms":1,"source":"127.0.0.2:4000"}"#,
            r#"{"type":"drained","up_to_ms":1,"count":1}"#,
            r#"{"type":"lost","count":1}"#,
            r#"{"type":"lost","at_ms":1}"#,
            r#"{"type":"lost","count":1,"at_ms":1,"up_to_ms":1}"#,
            r#"{"type":"lost","count":1,"at_ms":1,"host":"a"}"#,
            r#"{"type":"rejected","source":"127.0.0.2:4000","received_ms":1,"reason":"x","detail":"y","up_to_ms":1}"#,
            r#"{"type":"received","host":"a","source":"127.0.0.2:4000","received_ms":1,"signed":false,"message":{},"extra":1}"#,
            r#"{"type":"received","host":"a","source":"127.0.0.2:4000","received_ms":1,"signed":false,"message":{"#,
        ] {
            assert!(
                serde_json::from_str::<ReceiverToEngine>(line).is_err(),
                "{line}"
            );
        }
        let rejected = ReceiverToEngine::Rejected {
            source: "[::1]:9".parse().unwrap(),
            received_ms: 2,
            reason: "bad_json".into(),
            detail: "not an object".into(),
        };
        let line = serde_json::to_string(&rejected).unwrap();
        assert_eq!(
            serde_json::from_str::<ReceiverToEngine>(&line).unwrap(),
            rejected
        );
        for (msg, text) in [
            (
                ReceiverToEngine::Drained { up_to_ms: 3 },
                r#"{"type":"drained","up_to_ms":3}"#,
            ),
            (
                ReceiverToEngine::Lost { count: 5, at_ms: 4 },
                r#"{"type":"lost","count":5,"at_ms":4}"#,
            ),
        ] {
            let line = serde_json::to_string(&msg).unwrap();
            assert_eq!(line, text);
            assert_eq!(
                serde_json::from_str::<ReceiverToEngine>(&line).unwrap(),
                msg
            );
        }
    }

    #[test]
    fn a_ping_is_one_flat_object_and_refuses_strangers() {
        let line =
            r#"{"query":"ping","uuid":"u","kind":"start","source":"127.0.0.1:9","method":"GET"}"#;
        let q: Query = serde_json::from_str(line).unwrap();
        assert!(matches!(&q, Query::Ping(p) if p.kind == "start" && p.exit.is_none()));
        assert_eq!(serde_json::to_string(&q).unwrap(), line);
        let stranger = line.replace("}", r#","extra":1}"#);
        assert!(serde_json::from_str::<Query>(&stranger).is_err());
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
