//! The file as written: every key of `/etc/hb.yaml`, optional, unknown ones refused.

use std::collections::BTreeMap;
use std::path::PathBuf;

use hb_ipc::config::{CheckFile, HostConfig, WebUser};
use serde::Deserialize;

/// The file as written, every key optional. Key names follow the original hbd where it had
/// them; see docs/CONFIG.md.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    /// UDP heartbeat port.
    pub hb_port: Option<u16>,
    /// Address the UDP socket binds.
    pub hb_host: Option<String>,
    /// Bytes of kernel receive buffer asked for the UDP socket.
    pub udp_receive_buffer: Option<u64>,
    /// HTTP port.
    pub hbd_port: Option<u16>,
    /// Address the HTTP socket binds.
    pub hbd_host: Option<String>,
    /// Default heartbeat interval, seconds.
    pub interval: Option<u32>,
    /// Slack after a missed heartbeat, seconds.
    pub grace: Option<f64>,
    /// Missed heartbeats before a host is down.
    pub max_missed: Option<u32>,
    /// Seconds after a start before silent hosts are reported down.
    pub startup_grace: Option<f64>,
    /// Samples kept per host and plugin (and RTTs per host).
    pub sample_count: Option<u32>,
    /// Events kept in the store.
    pub event_retention: Option<u32>,
    /// Whether flapping is detected.
    pub flap_detection: Option<bool>,
    /// Flapping above this state change percentage.
    pub flap_high: Option<f64>,
    /// Settled below this one.
    pub flap_low: Option<f64>,
    /// Recurring maintenance windows.
    pub maintenance: Option<serde_json::Value>,
    /// Whether storms are summarised.
    pub storm_detection: Option<bool>,
    /// Share of watched hosts down that makes a storm.
    pub storm_fraction: Option<f64>,
    /// And at least this many hosts.
    pub storm_min_hosts: Option<u32>,
    /// Within this many seconds.
    pub storm_window: Option<f64>,
    /// Journal on or off.
    pub journal_enabled: Option<bool>,
    /// Journal directory.
    pub journal_dir: Option<PathBuf>,
    /// Journal base name.
    pub journal_file: Option<String>,
    /// Rotate at this many bytes.
    pub journal_max_size: Option<u64>,
    /// Rotated files kept.
    pub journal_max_backups: Option<u32>,
    /// Per-host settings.
    #[serde(default)]
    pub hosts: BTreeMap<String, HostConfig>,
    /// Hosts to watch.
    #[serde(default)]
    pub watchhosts: Vec<String>,
    /// Hosts with dynamic DNS.
    #[serde(default)]
    pub dyndnshosts: Vec<String>,
    /// Hosts to ignore.
    #[serde(default)]
    pub drophosts: Vec<String>,
    /// Accounts.
    #[serde(default)]
    pub users: BTreeMap<String, WebUser>,
    /// Owner of hosts without one.
    pub default_owner: Option<String>,
    /// Channel definitions.
    #[serde(default)]
    pub notification_channels: BTreeMap<String, Channel>,
    /// Server-wide channels for setups without users.
    #[serde(default)]
    pub notify: Vec<String>,
    /// Threshold tree.
    pub thresholds: Option<serde_json::Value>,
    /// Named threshold profiles.
    pub threshold_configs: Option<serde_json::Value>,
    /// HTTP push monitors, by name (docs/CHECKS.md).
    #[serde(default)]
    pub checks: BTreeMap<String, CheckFile>,
    /// Pings kept per check.
    pub ping_retention: Option<u32>,
    /// Hosts the engine holds at most.
    pub max_hosts: Option<u32>,
    /// Base profile name.
    pub default_threshold_config: Option<String>,
    /// Legacy host -> profile map.
    pub host_threshold_mapping: Option<BTreeMap<String, hb_ipc::config::OneOrMany>>,
    /// Reminder interval for ongoing alerts, seconds.
    pub threshold_renotify_interval: Option<u64>,
    /// Dynamic DNS domains.
    #[serde(default)]
    pub dyndomains: Vec<String>,
    /// Path of nsupdate.
    pub nsupdate_bin: Option<PathBuf>,
    /// TSIG key file.
    pub rndc_key: Option<PathBuf>,
    /// Server for DNS updates: an address or name, with `:port` (`[v6]:port`) optional.
    pub dns_server: Option<String>,
    /// Zone the dynamic records are in (default: nsupdate finds it).
    pub dns_zone: Option<String>,
    /// TTL of the dynamic records, seconds.
    pub dns_ttl: Option<u32>,
    /// Seconds one nsupdate run may take.
    pub dns_timeout: Option<f64>,
    /// Public URL used in links.
    pub base_url: Option<String>,
    /// Bearer token a Prometheus scraper presents for `/metrics` (with users configured).
    pub metrics_token: Option<String>,
    /// Pings per second from one address (default 20).
    pub ping_rate_per_address: Option<f64>,
    /// Pings per second for one check (default 5).
    pub ping_rate_per_check: Option<f64>,
    /// A second HTTP port (on hbd_host) serving the same, for clients of the original's
    /// WebSocket port.
    pub ws_port: Option<u16>,
    /// TLS certificate chain (PEM) for HTTPS and WSS on hbd_port.
    pub tls_cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// The original's directory of `wss_pem` and `wss_key`.
    pub cert_path: Option<PathBuf>,
    /// The original's certificate file name under `cert_path`.
    pub wss_pem: Option<String>,
    /// The original's key file name under `cert_path`.
    pub wss_key: Option<String>,
    /// Key every host may sign with unless it has its own (`hosts.<h>.key`).
    pub hb_key: Option<String>,
    /// Accept unsigned datagrams; default: exactly from hosts no key applies to.
    pub accept_unsigned: Option<bool>,
    /// Datagrams per second per source address, on average.
    pub source_rate: Option<f64>,
    /// Datagrams per source address at once.
    pub source_burst: Option<f64>,
    /// Seconds a signature's time may differ from the server's.
    pub clock_skew: Option<f64>,
    /// Unprivileged user for every child.
    pub user: Option<String>,
    /// Group for every child (default: the user's primary group).
    pub group: Option<String>,
    /// User for hb-receiver.
    pub receiver_user: Option<String>,
    /// User for hb-engine.
    pub engine_user: Option<String>,
    /// User for hb-notifier.
    pub notifier_user: Option<String>,
    /// User for hb-dnsupdate.
    pub dnsupdate_user: Option<String>,
    /// User for hb-web.
    pub web_user: Option<String>,
    /// Empty root-owned directory for chrooted roles.
    pub chroot_dir: Option<PathBuf>,
    /// Durable state.
    pub state_dir: Option<PathBuf>,
    /// hbctl's socket.
    pub control_socket: Option<PathBuf>,
    /// Pid file written when daemonized.
    pub pidfile: Option<PathBuf>,
    /// Log file when daemonized.
    pub logfile: Option<PathBuf>,
    /// Directory of the role binaries.
    pub libexec_dir: Option<PathBuf>,
    /// Seconds children get to exit on shutdown before they are signalled.
    pub shutdown_grace: Option<f64>,
}

/// A notification channel definition; its options are checked by hb-notifier's channel code.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
pub struct Channel {
    /// Channel type (`email`, `pushover`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// Everything else.
    #[serde(flatten)]
    pub options: serde_json::Map<String, serde_json::Value>,
}
