//! Web <-> engine: queries with their answers, and the live feed of changes.

use super::*;

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
