//! Configuration slices: what each role is told of `/etc/hb.yaml`.
//!
//! The supervisor alone reads the file; each child gets only the part it needs, so secrets
//! (SMTP passwords, webhook tokens, the TSIG key path, password hashes) reach only the process
//! that uses them. The types here are shared by the file parser and the children.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One role's slice, tagged with the role so a slice can never reach the wrong child.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum RoleConfig {
    /// For hb-receiver.
    Receiver(ReceiverConfig),
    /// For hb-engine.
    Engine(Box<EngineConfig>),
    /// For hb-notifier.
    Notifier(NotifierConfig),
    /// For hb-dnsupdate.
    Dnsupdate(DnsupdateConfig),
    /// For hb-web.
    Web(WebConfig),
}

/// Each role's slice out of a configuration message: another role's slice comes back as the
/// error, so a role can say it was refused (`hb_child::dispatch`).
macro_rules! slice_of {
    ($variant:ident, $slice:ty, $unbox:expr) => {
        impl TryFrom<RoleConfig> for $slice {
            type Error = RoleConfig;

            fn try_from(config: RoleConfig) -> Result<$slice, RoleConfig> {
                match config {
                    RoleConfig::$variant(c) => Ok($unbox(c)),
                    other => Err(other),
                }
            }
        }
    };
}

slice_of!(Receiver, ReceiverConfig, std::convert::identity);
slice_of!(Engine, EngineConfig, |c: Box<EngineConfig>| *c);
slice_of!(Notifier, NotifierConfig, std::convert::identity);
slice_of!(Dnsupdate, DnsupdateConfig, std::convert::identity);
slice_of!(Web, WebConfig, std::convert::identity);

impl RoleConfig {
    /// The role this slice is for.
    pub fn role(&self) -> crate::Role {
        match self {
            RoleConfig::Receiver(_) => crate::Role::Receiver,
            RoleConfig::Engine(_) => crate::Role::Engine,
            RoleConfig::Notifier(_) => crate::Role::Notifier,
            RoleConfig::Dnsupdate(_) => crate::Role::Dnsupdate,
            RoleConfig::Web(_) => crate::Role::Web,
        }
    }
}

/// hb-receiver's slice: the only process that sees the heartbeat keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    /// Hosts whose datagrams are ignored (`drophosts`).
    pub drophosts: Vec<String>,
    /// Per-host signing keys (`hosts.<h>.key`).
    pub keys: BTreeMap<String, String>,
    /// Key for hosts without their own (`hb_key`).
    pub shared_key: Option<String>,
    /// Whether unsigned datagrams are accepted, by default (`accept_unsigned`); `None`:
    /// accepted exactly when no key applies to the host.
    pub accept_unsigned: Option<bool>,
    /// Per-host overrides of `accept_unsigned`.
    pub accept_unsigned_hosts: BTreeMap<String, bool>,
    /// Datagrams per second one source address may send on average (`source_rate`).
    pub source_rate: f64,
    /// Datagrams one source address may send at once (`source_burst`).
    pub source_burst: f64,
    /// Largest difference between a signature's time and ours, ms (`clock_skew`).
    pub clock_skew_ms: u64,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig {
            drophosts: Vec::new(),
            keys: BTreeMap::new(),
            shared_key: None,
            accept_unsigned: None,
            accept_unsigned_hosts: BTreeMap::new(),
            source_rate: 50.0,
            source_burst: 200.0,
            clock_skew_ms: 120_000,
        }
    }
}

/// hb-engine's slice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Default heartbeat interval in seconds, for hosts that do not announce one.
    pub interval: u32,
    /// Seconds of slack after a missed heartbeat before a host is overdue.
    pub grace: f64,
    /// Missed heartbeats in a row before a host is down.
    pub max_missed: u32,
    /// Seconds after a start of the engine before a host not heard from since is reported
    /// down; `None`: one `max_missed` window of the host.
    pub startup_grace: Option<f64>,
    /// Samples kept per host and plugin, and RTTs per host.
    pub sample_count: u32,
    /// Events kept in the store.
    pub event_retention: u32,
    /// Whether flapping is detected.
    pub flap_detection: bool,
    /// State change percentage above which an alert is flapping.
    pub flap_high: f64,
    /// And below which it has settled.
    pub flap_low: f64,
    /// Recurring maintenance windows (`maintenance:`), checked by the supervisor.
    pub maintenance: serde_json::Value,
    /// Whether storms (many hosts down at once) are summarised.
    pub storm_detection: bool,
    /// Share of the watched hosts that makes a storm.
    pub storm_fraction: f64,
    /// And at least this many.
    pub storm_min_hosts: u32,
    /// Within this many seconds.
    pub storm_window: f64,
    /// Where the engine keeps its durable state.
    pub state_dir: PathBuf,
    /// The message journal.
    pub journal: JournalConfig,
    /// Per-host settings.
    pub hosts: BTreeMap<String, HostConfig>,
    /// Hosts to monitor in addition to those with `watch: true`.
    pub watchhosts: Vec<String>,
    /// Hosts with dynamic DNS in addition to those with `dyndns: true`.
    pub dyndnshosts: Vec<String>,
    /// Domains of the dynamic records; empty: no DNS updates are asked for.
    pub dyndomains: Vec<String>,
    /// Hosts to ignore.
    pub drophosts: Vec<String>,
    /// Owner of hosts without one.
    pub default_owner: Option<String>,
    /// Re-notification interval for ongoing threshold alerts, seconds.
    pub threshold_renotify_interval: Option<u64>,
    /// The threshold tree (`thresholds`), validated by the alerting code.
    pub thresholds: serde_json::Value,
    /// Named threshold profiles (`threshold_configs`).
    pub threshold_configs: serde_json::Value,
    /// Name of the base profile.
    pub default_threshold_config: String,
    /// HTTP push monitors (`checks:`), by name; each is also in `hosts` with its timing and
    /// roles, so it is watched like a host.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<String, CheckConfig>,
    /// Pings kept per check in the store.
    #[serde(default = "default_ping_retention")]
    pub ping_retention: u32,
    /// Hosts the engine holds at most; heartbeats of further new hosts are refused.
    #[serde(default = "default_max_hosts")]
    pub max_hosts: u32,
}

fn default_ping_retention() -> u32 {
    100
}

/// Hosts the engine holds at most unless `max_hosts` says otherwise: an unauthenticated
/// sender could otherwise invent names until memory runs out.
pub const DEFAULT_MAX_HOSTS: u32 = 100_000;

fn default_max_hosts() -> u32 {
    DEFAULT_MAX_HOSTS
}

/// An HTTP push monitor: pinged at `/ping/<uuid>` by a cron job or an application.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    /// Its ping address (lower-case UUID).
    pub uuid: String,
    /// Whether pings are taken (an inactive check answers 400 and is not timed).
    pub active: bool,
    /// Expected seconds between pings.
    pub interval: u32,
    /// Seconds of slack after a missed ping.
    pub grace: f64,
    /// What it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A cron schedule instead of an interval: a ping is due at each time it fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// The time zone the schedule is read in (IANA name; UTC when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
    /// A key pings must carry besides the UUID (`X-Ping-Key` or `?key=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping_key: Option<String>,
}

/// The JSON Lines journal of received messages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    /// Whether messages are journaled at all.
    pub enabled: bool,
    /// Directory of the journal files.
    pub dir: PathBuf,
    /// Base file name.
    pub file: String,
    /// Size in bytes at which the journal rotates.
    pub max_size: u64,
    /// Rotated files kept.
    pub max_backups: u32,
}

/// Settings of one host under `hosts:`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// User who owns the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Users with the manager role on the host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managers: Vec<String>,
    /// Users with the monitor role on the host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub monitors: Vec<String>,
    /// Threshold profile name or list of names, applied left to right.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_config: Option<OneOrMany>,
    /// Whether the host's outages notify anyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<bool>,
    /// Channels that get this host's notifications in addition to its users'.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notification_channels: Vec<String>,
    /// Keep `<host>.<dyndomain>` pointing at the host's address.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dyndns: bool,
    /// Remove the host's DNS record while it is down.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dns_failover: bool,
    /// Expected heartbeat interval in seconds, overriding what the host announces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<u32>,
    /// Seconds of slack after a missed heartbeat, overriding `grace` (checks have their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace: Option<f64>,
    /// Missed heartbeats before down, overriding `max_missed` (1 for checks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_missed: Option<u32>,
    /// Key the host signs its datagrams with (only the receiver's slice carries it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Whether unsigned datagrams from this host are accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_unsigned: Option<bool>,
    /// Hosts this one is reached through: while one of them is down, this host's down
    /// alert is held and it shows as unreachable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<String>,
}

/// A YAML value that may be one string or a list of strings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single name.
    One(String),
    /// Several names, in order.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The names in order.
    pub fn names(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(name) => vec![name.as_str()],
            OneOrMany::Many(names) => names.iter().map(String::as_str).collect(),
        }
    }
}

/// hb-notifier's slice: the only process that sees channel secrets.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifierConfig {
    /// Channel definitions by name, with their secrets.
    pub channels: BTreeMap<String, serde_json::Value>,
    /// Server-wide channels used when no users are configured.
    pub notify: Vec<String>,
    /// Public URL for links in notifications.
    pub base_url: Option<String>,
    /// Each user's channels (empty: no users are configured).
    pub users: BTreeMap<String, Vec<String>>,
}

/// hb-dnsupdate's slice: the only process that knows where the TSIG key is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsupdateConfig {
    /// Domains under which dynamic host records live.
    pub dyndomains: Vec<String>,
    /// Absolute path of `nsupdate`.
    pub nsupdate_bin: PathBuf,
    /// TSIG key file, given to nsupdate with `-k`.
    pub rndc_key: Option<PathBuf>,
    /// Server the updates go to, and its port (`None`: the zone's primary, from its SOA).
    pub server: Option<(String, u16)>,
    /// Zone to update (`None`: nsupdate finds it).
    pub zone: Option<String>,
    /// TTL of the records, seconds.
    pub ttl: u32,
    /// How long one nsupdate run may take before it is killed, ms.
    pub timeout_ms: u64,
}

impl Default for DnsupdateConfig {
    fn default() -> Self {
        DnsupdateConfig {
            dyndomains: Vec::new(),
            nsupdate_bin: PathBuf::from("/usr/bin/nsupdate"),
            rndc_key: None,
            server: None,
            zone: None,
            ttl: 60,
            timeout_ms: 10_000,
        }
    }
}

/// hb-web's slice.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// Accounts; empty means unauthenticated mode.
    pub users: BTreeMap<String, WebUser>,
    /// Owner of hosts without one.
    pub default_owner: Option<String>,
    /// Public URL of the dashboard.
    pub base_url: Option<String>,
    /// Plugin samples kept per host and plugin (shown with the plugin data).
    #[serde(default)]
    pub sample_count: u32,
    /// The file's notification channels, as they may be shown (no secrets).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub channels: BTreeMap<String, serde_json::Value>,
    /// The server's configuration as it may be shown (no secrets), for admins.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub server: serde_json::Value,
    /// The TLS certificate and key: HTTPS and WSS instead of HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsPem>,
    /// Bearer token that opens `/metrics` to a scraper.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_token: Option<String>,
    /// Pings taken per second on average from one address (in bursts of five times as
    /// many).
    #[serde(default = "default_ping_rate_per_address")]
    pub ping_rate_per_address: f64,
    /// And for one check.
    #[serde(default = "default_ping_rate_per_check")]
    pub ping_rate_per_check: f64,
}

fn default_ping_rate_per_address() -> f64 {
    20.0
}

fn default_ping_rate_per_check() -> f64 {
    5.0
}

/// A certificate chain and its private key, as PEM text. Its `Debug` shows no key.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsPem {
    /// The chain, leaf first.
    pub cert_pem: String,
    /// The private key.
    pub key_pem: String,
}

impl std::fmt::Debug for TlsPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsPem")
            .field("cert_pem_bytes", &self.cert_pem.len())
            .finish_non_exhaustive()
    }
}

/// One account as hb-web needs it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebUser {
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    /// Avatar path, URL or data URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
    /// `pbkdf2:sha256:<iterations>$<salt>$<hex>` hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Owner rights on every host and the user list.
    #[serde(default)]
    pub admin: bool,
    /// Channels the user is notified through.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notification_channels: Vec<String>,
}

/// An HTTP push monitor, as written in the file or made through the API (the engine keeps
/// those in this form too).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CheckFile {
    /// Its ping address: a UUID (`hbctl uuid` makes one).
    pub uuid: String,
    /// Expected seconds between pings (default one day).
    pub interval: Option<u32>,
    /// Seconds of slack after a missed ping (default one hour).
    pub grace: Option<f64>,
    /// Whether it takes pings (default true).
    pub active: Option<bool>,
    /// What it is for.
    pub description: Option<String>,
    /// Its owner, as for a host.
    pub owner: Option<String>,
    /// Its managers.
    #[serde(default)]
    pub managers: Vec<String>,
    /// Its monitors.
    #[serde(default)]
    pub monitors: Vec<String>,
    /// Channels that get its notifications besides its users'.
    #[serde(default)]
    pub notification_channels: Vec<String>,
    /// Whether its outages notify anyone (default true: a check exists to be watched).
    pub watch: Option<bool>,
    /// A cron schedule instead of an interval (`0 2 * * *`).
    pub schedule: Option<String>,
    /// The schedule's time zone (`Europe/Berlin`; default UTC).
    pub tz: Option<String>,
    /// A key pings must carry besides the UUID.
    pub ping_key: Option<String>,
}

/// Longest check interval or grace: 30 days.
pub const MAX_CHECK_SECONDS: u32 = 30 * 86_400;

/// A UUID in its usual text form, lower case; anything else is refused.
pub fn normalize_uuid(text: &str) -> Option<String> {
    let lower = text.trim().to_ascii_lowercase();
    let groups: Vec<&str> = lower.split('-').collect();
    let ok = groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
    ok.then_some(lower)
}

impl CheckFile {
    /// What is wrong with the definition itself, by key (whether its users, channels, name
    /// and UUID clash with others is the caller's to check). `check_schedule` judges a cron
    /// schedule in its zone (`hb_rules::cron::check`): the rules crate knows cron, this one
    /// only the shapes both sides exchange.
    pub fn problems(
        &self,
        check_schedule: impl FnOnce(&str, Option<&str>) -> Result<(), String>,
    ) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if normalize_uuid(&self.uuid).is_none() {
            let why = format!("{:?} is not a UUID (uuidgen makes one)", self.uuid);
            out.push(("uuid", why));
        }
        if self
            .interval
            .is_some_and(|i| !(1..=MAX_CHECK_SECONDS).contains(&i))
        {
            out.push((
                "interval",
                format!("must be 1 to {MAX_CHECK_SECONDS} seconds"),
            ));
        }
        if self
            .grace
            .is_some_and(|g| !(g.is_finite() && (0.0..=f64::from(MAX_CHECK_SECONDS)).contains(&g)))
        {
            out.push(("grace", format!("must be 0 to {MAX_CHECK_SECONDS} seconds")));
        }
        match &self.schedule {
            Some(schedule) => {
                if let Err(why) = check_schedule(schedule, self.tz.as_deref()) {
                    out.push(("schedule", why));
                }
                if self.interval.is_some() {
                    out.push(("interval", "give interval or schedule, not both".into()));
                }
            }
            None if self.tz.is_some() => {
                out.push(("tz", "only a schedule has a time zone".into()));
            }
            None => {}
        }
        if self.ping_key.as_ref().is_some_and(|k| {
            !(8..=128).contains(&k.len()) || k.chars().any(|c| c.is_control() || c == ' ')
        }) {
            out.push(("ping_key", "must be 8 to 128 characters, no spaces".into()));
        }
        if self.description.as_ref().is_some_and(|d| d.len() > 500) {
            out.push(("description", "is at most 500 bytes".into()));
        }
        out
    }

    /// Its entry among the hosts: a check is timed, owned and notified like a host.
    pub fn host_config(&self) -> HostConfig {
        HostConfig {
            owner: self.owner.clone(),
            managers: self.managers.clone(),
            monitors: self.monitors.clone(),
            watch: Some(self.watch.unwrap_or(true)),
            notification_channels: self.notification_channels.clone(),
            // A schedule times it from one firing to the next.
            interval: self
                .schedule
                .is_none()
                .then(|| self.interval.unwrap_or(86_400)),
            grace: Some(self.grace.unwrap_or(3600.0)),
            max_missed: Some(1),
            ..HostConfig::default()
        }
    }

    /// Its entry among the checks.
    pub fn check_config(&self) -> CheckConfig {
        CheckConfig {
            uuid: normalize_uuid(&self.uuid).unwrap_or_default(),
            active: self.active.unwrap_or(true),
            interval: self.interval.unwrap_or(86_400),
            grace: self.grace.unwrap_or(3600.0),
            description: self.description.clone(),
            schedule: self.schedule.clone(),
            tz: self.tz.clone(),
            ping_key: self.ping_key.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_are_tagged_with_their_role() {
        let slice = RoleConfig::Receiver(ReceiverConfig {
            drophosts: vec!["old".into()],
            ..ReceiverConfig::default()
        });
        let json = serde_json::to_string(&slice).unwrap();
        assert!(
            json.starts_with(r#"{"role":"receiver","drophosts":["old"],"#),
            "{json}"
        );
        let back: RoleConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back.role(), crate::Role::Receiver);
        let extra = json.replace("\"drophosts\"", "\"x\":1,\"drophosts\"");
        assert!(serde_json::from_str::<RoleConfig>(&extra).is_err());
    }

    #[test]
    fn one_or_many_accepts_both_forms() {
        let one: OneOrMany = serde_json::from_str(r#""tight""#).unwrap();
        let many: OneOrMany = serde_json::from_str(r#"["a","b"]"#).unwrap();
        assert_eq!(one.names(), ["tight"]);
        assert_eq!(many.names(), ["a", "b"]);
    }
}
