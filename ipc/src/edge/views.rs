//! The shapes the engine shows of hosts, alerts, silences, checks, pings and history.

use super::*;

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
