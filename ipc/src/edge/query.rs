//! What the web and hbctl may ask the engine, and what it answers.

use super::*;

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
