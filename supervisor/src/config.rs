//! `/etc/hb.yaml`: parsing, defaults, validation and the per-role slices.
//!
//! The file is read by the supervisor alone, before anything is spawned. Every error names the
//! file, the line and the key; an unknown key is an error. Semantic checks (a host owned by a
//! user who does not exist, a relative path, a channel of an unknown type) run after parsing and
//! are all reported at once, so an operator fixes a file in one pass.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use hb_ipc::Role;
use hb_ipc::config::{
    CheckFile, DnsupdateConfig, EngineConfig, HostConfig, JournalConfig, NotifierConfig,
    ReceiverConfig, RoleConfig, WebConfig, WebUser, normalize_uuid,
};
use serde::Deserialize;

/// Where the configuration came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A file.
    File(PathBuf),
    /// No file: the built-in default for a first run.
    Builtin,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Builtin => f.write_str("built-in default"),
        }
    }
}

/// One problem in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line, when it could be found.
    pub line: Option<usize>,
    /// Dotted key path, empty for the document itself.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// Everything wrong with a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors {
    /// The file.
    pub source: Source,
    /// The problems, in file order.
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.source)?;
            if let Some(line) = e.line {
                write!(f, ":{line}")?;
            }
            if e.key.is_empty() {
                write!(f, ": {}", e.message)?;
            } else {
                write!(f, ": {}: {}", e.key, e.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

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

/// Keys of the original hbd that hb does not use, with what to do instead.
const OBSOLETE_KEYS: &[(&str, &str)] = &[
    (
        "pickfile",
        "hb keeps its state in SQLite under state_dir; remove it",
    ),
    (
        "wss_port",
        "use ws_port: it serves /ws (and everything else) over TLS when tls_cert and tls_key are set",
    ),
    ("logfmt", "log lines have one fixed format; remove it"),
    ("debug", "use -v on the command line; remove it"),
    ("verbose", "use -v on the command line; remove it"),
];

/// Kernel receive buffer asked for the heartbeat socket by default: a fleet heartbeating at
/// the top of the minute arrives at once, and whatever does not fit is dropped by the
/// kernel. A small datagram takes about 830 bytes of it on loopback (2 KiB or more from a
/// NIC), and Linux grants twice what is asked, so 64 MiB holds about 160,000 such datagrams
/// (about 60,000 from a NIC). Memory is only used while datagrams wait.
pub const UDP_RECEIVE_BUFFER: u64 = 64 << 20;
const UDP_RECEIVE_BUFFER_MIN: u64 = 1 << 20;
const UDP_RECEIVE_BUFFER_MAX: u64 = 1 << 30;

/// A validated configuration with every default resolved.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where it came from.
    pub source: Source,
    /// The file as parsed.
    pub file: File,
    /// The file's text, for naming lines in errors found later.
    pub text: String,
    /// UDP bind address.
    pub hb_addr: std::net::SocketAddr,
    /// Bytes of kernel receive buffer asked for the UDP socket.
    pub udp_receive_buffer: usize,
    /// HTTP bind address.
    pub hbd_addr: std::net::SocketAddr,
    /// The second HTTP address (`ws_port`), if any.
    pub ws_addr: Option<std::net::SocketAddr>,
    /// Durable state directory.
    pub state_dir: PathBuf,
    /// Journal directory.
    pub journal_dir: PathBuf,
    /// Control socket path.
    pub control_socket: PathBuf,
    /// Pid file path.
    pub pidfile: PathBuf,
    /// Log file path (daemon mode).
    pub logfile: PathBuf,
    /// Chroot directory.
    pub chroot_dir: PathBuf,
    /// Shutdown grace.
    pub shutdown_grace: std::time::Duration,
    /// The TLS certificate chain and key, read when the file was loaded (so a reload picks
    /// up renewed ones).
    pub tls: Option<hb_ipc::config::TlsPem>,
}

/// Where a file path for the default configuration points.
pub const DEFAULT_PATH: &str = "/etc/hb.yaml";

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        // Absolute, so a reload after daemonizing (cwd /) reads the same file.
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let path = path.as_path();
        let source = Source::File(path.to_path_buf());
        let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
            source: source.clone(),
            errors: vec![ConfigError {
                line: None,
                key: String::new(),
                message: format!("cannot read: {e}"),
            }],
        })?;
        Config::parse(source, &text)
    }

    /// Parses and validates configuration text.
    pub fn parse(source: Source, text: &str) -> Result<Config, ConfigErrors> {
        let fail = |errors| ConfigErrors {
            source: source.clone(),
            errors,
        };
        let mut errors = obsolete_keys(text);
        let file: File = match yaml_serde::from_str::<Option<File>>(text) {
            Ok(file) => file.unwrap_or_default(),
            Err(e) => {
                errors.push(yaml_error(&e, text));
                return Err(fail(errors));
            }
        };
        let config = resolve(source.clone(), file, text, &mut errors);
        if errors.is_empty() {
            Ok(config)
        } else {
            errors.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
            Err(fail(errors))
        }
    }

    /// The configuration used without `-c` when `/etc/hb.yaml` does not exist: loopback only,
    /// state in a per-user directory, no root needed.
    pub fn builtin() -> Config {
        let mut errors = Vec::new();
        let file = File {
            user: Some("nobody".into()),
            ..File::default()
        };
        let config = resolve(Source::Builtin, file, "", &mut errors);
        debug_assert!(errors.is_empty(), "built-in default invalid: {errors:?}");
        config
    }

    /// The configuration slice for `role`.
    pub fn slice(&self, role: Role) -> RoleConfig {
        let f = &self.file;
        match role {
            Role::Receiver => {
                let defaults = ReceiverConfig::default();
                RoleConfig::Receiver(ReceiverConfig {
                    drophosts: f.drophosts.clone(),
                    keys: f
                        .hosts
                        .iter()
                        .filter_map(|(name, h)| Some((name.clone(), h.key.clone()?)))
                        .collect(),
                    shared_key: f.hb_key.clone(),
                    accept_unsigned: f.accept_unsigned,
                    accept_unsigned_hosts: f
                        .hosts
                        .iter()
                        .filter_map(|(name, h)| Some((name.clone(), h.accept_unsigned?)))
                        .collect(),
                    source_rate: f.source_rate.unwrap_or(defaults.source_rate),
                    source_burst: f.source_burst.unwrap_or(defaults.source_burst),
                    clock_skew_ms: f
                        .clock_skew
                        .map_or(defaults.clock_skew_ms, |s| (s * 1000.0) as u64),
                })
            }
            Role::Engine => RoleConfig::Engine(Box::new(EngineConfig {
                interval: f.interval.unwrap_or(10),
                grace: f.grace.unwrap_or(2.0),
                max_missed: f.max_missed.unwrap_or(2),
                startup_grace: f.startup_grace,
                sample_count: f.sample_count.unwrap_or(100),
                event_retention: f.event_retention.unwrap_or(10_000),
                flap_detection: f.flap_detection.unwrap_or(true),
                flap_high: f.flap_high.unwrap_or(30.0),
                flap_low: f.flap_low.unwrap_or(25.0),
                maintenance: f.maintenance.clone().unwrap_or(serde_json::Value::Null),
                storm_detection: f.storm_detection.unwrap_or(true),
                storm_fraction: f.storm_fraction.unwrap_or(0.1),
                storm_min_hosts: f.storm_min_hosts.unwrap_or(5),
                storm_window: f.storm_window.unwrap_or(10.0),
                state_dir: self.state_dir.clone(),
                journal: JournalConfig {
                    enabled: f.journal_enabled.unwrap_or(true),
                    dir: self.journal_dir.clone(),
                    file: f
                        .journal_file
                        .clone()
                        .unwrap_or_else(|| "messages.journal".into()),
                    max_size: f.journal_max_size.unwrap_or(100 << 20),
                    max_backups: f.journal_max_backups.unwrap_or(10),
                },
                // Keys are the receiver's alone. Checks are timed and owned like hosts.
                hosts: f
                    .hosts
                    .iter()
                    .map(|(name, h)| {
                        (
                            name.clone(),
                            HostConfig {
                                key: None,
                                ..h.clone()
                            },
                        )
                    })
                    .chain(
                        f.checks
                            .iter()
                            .map(|(name, c)| (name.clone(), c.host_config())),
                    )
                    .collect(),
                checks: f
                    .checks
                    .iter()
                    .map(|(name, c)| (name.clone(), c.check_config()))
                    .collect(),
                ping_retention: f.ping_retention.unwrap_or(100).clamp(1, 10_000),
                max_hosts: f
                    .max_hosts
                    .unwrap_or(hb_ipc::config::DEFAULT_MAX_HOSTS)
                    .clamp(1, 10_000_000),
                watchhosts: f.watchhosts.clone(),
                dyndnshosts: f.dyndnshosts.clone(),
                dyndomains: f.dyndomains.clone(),
                drophosts: f.drophosts.clone(),
                default_owner: self.default_owner(),
                threshold_renotify_interval: f.threshold_renotify_interval,
                thresholds: f.thresholds.clone().unwrap_or(serde_json::Value::Null),
                threshold_configs: f
                    .threshold_configs
                    .clone()
                    .unwrap_or(serde_json::Value::Null),
                default_threshold_config: f
                    .default_threshold_config
                    .clone()
                    .unwrap_or_else(|| "default".into()),
            })),
            Role::Notifier => RoleConfig::Notifier(NotifierConfig {
                channels: f
                    .notification_channels
                    .iter()
                    .map(|(name, ch)| {
                        let value = serde_json::to_value(ch).unwrap_or(serde_json::Value::Null);
                        (name.clone(), value)
                    })
                    .collect(),
                notify: f.notify.clone(),
                base_url: f.base_url.clone(),
                users: f
                    .users
                    .iter()
                    .map(|(name, u)| (name.clone(), u.notification_channels.clone()))
                    .collect(),
            }),
            Role::Dnsupdate => {
                let defaults = DnsupdateConfig::default();
                RoleConfig::Dnsupdate(DnsupdateConfig {
                    dyndomains: f.dyndomains.clone(),
                    nsupdate_bin: f.nsupdate_bin.clone().unwrap_or(defaults.nsupdate_bin),
                    rndc_key: f.rndc_key.clone(),
                    server: f.dns_server.as_deref().and_then(|s| dns_server(s).ok()),
                    zone: f.dns_zone.clone(),
                    ttl: f.dns_ttl.unwrap_or(defaults.ttl),
                    timeout_ms: f
                        .dns_timeout
                        .map_or(defaults.timeout_ms, |t| (t * 1000.0) as u64),
                })
            }
            Role::Web => RoleConfig::Web(WebConfig {
                users: f.users.clone(),
                default_owner: self.default_owner(),
                base_url: f.base_url.clone(),
                sample_count: f.sample_count.unwrap_or(100),
                metrics_token: f.metrics_token.clone(),
                ping_rate_per_address: f.ping_rate_per_address.unwrap_or(20.0),
                ping_rate_per_check: f.ping_rate_per_check.unwrap_or(5.0),
                channels: f
                    .notification_channels
                    .iter()
                    .map(|(name, ch)| {
                        let value = serde_json::to_value(ch).unwrap_or(serde_json::Value::Null);
                        (name.clone(), hb_notify::channel::public_view(&value))
                    })
                    .collect(),
                server: self.shown(),
                tls: self.tls.clone(),
            }),
        }
    }

    /// The configuration as admins may see it on the dashboard: the file as written with
    /// every secret left out, and where the server listens and keeps its state.
    pub fn shown(&self) -> serde_json::Value {
        let mut file = yaml_serde::from_str::<yaml_serde::Value>(&self.text)
            .ok()
            .and_then(|v| serde_json::to_value(v).ok())
            .filter(serde_json::Value::is_object)
            .unwrap_or_else(|| serde_json::json!({}));
        hide_secrets(&mut file);
        let path = |p: &Path| p.display().to_string();
        serde_json::json!({
            "source": match &self.source {
                Source::File(p) => path(p),
                Source::Builtin => "built-in default".to_string(),
            },
            "udp": self.hb_addr.to_string(),
            "http": self.hbd_addr.to_string(),
            "ws": self.ws_addr.map(|a| a.to_string()),
            "https": self.tls.is_some(),
            "state_dir": path(&self.state_dir),
            "journal_dir": path(&self.journal_dir),
            "control_socket": path(&self.control_socket),
            "file": file,
        })
    }

    /// `default_owner`, or else the first admin user.
    pub fn default_owner(&self) -> Option<String> {
        self.file.default_owner.clone().or_else(|| {
            self.file
                .users
                .iter()
                .find(|(_, u)| u.admin)
                .map(|(name, _)| name.clone())
        })
    }

    /// The role's own user setting and its key name.
    fn role_user(&self, role: Role) -> (&Option<String>, &'static str) {
        let f = &self.file;
        match role {
            Role::Receiver => (&f.receiver_user, "receiver_user"),
            Role::Engine => (&f.engine_user, "engine_user"),
            Role::Notifier => (&f.notifier_user, "notifier_user"),
            Role::Dnsupdate => (&f.dnsupdate_user, "dnsupdate_user"),
            Role::Web => (&f.web_user, "web_user"),
        }
    }

    /// The user spec (`name`, `name:group`, `uid` or `uid:gid`) a role runs as.
    pub fn user_spec(&self, role: Role) -> (String, Option<String>) {
        let f = &self.file;
        let spec = self
            .role_user(role)
            .0
            .clone()
            .or_else(|| f.user.clone())
            .unwrap_or_else(|| DEFAULT_USER.into());
        match spec.split_once(':') {
            Some((user, group)) => (user.to_string(), Some(group.to_string())),
            None => (spec, f.group.clone()),
        }
    }

    /// An error about `key` found after parsing (start-up checks), with its line.
    pub fn error(&self, key: &str, message: String) -> ConfigErrors {
        let path: Vec<&str> = key.split('.').collect();
        ConfigErrors {
            source: self.source.clone(),
            errors: vec![ConfigError {
                line: locate(&self.text, &path),
                key: key.to_string(),
                message,
            }],
        }
    }

    /// The key naming the user a role runs as, for error messages.
    pub fn user_key(&self, role: Role) -> &'static str {
        match self.role_user(role) {
            (Some(_), key) => key,
            (None, _) => "user",
        }
    }
}

/// The unprivileged user when the file names none.
pub const DEFAULT_USER: &str = "_hb";

fn resolve(source: Source, mut file: File, text: &str, errors: &mut Vec<ConfigError>) -> Config {
    // Host names are DNS names, compared without case, as the receiver does on the wire.
    let mut hosts = BTreeMap::new();
    for (name, host) in std::mem::take(&mut file.hosts) {
        let lower = name.to_ascii_lowercase();
        if hosts.insert(lower.clone(), host).is_some() {
            errors.push(ConfigError {
                line: locate(text, &["hosts", &name]),
                key: format!("hosts.{name}"),
                message: format!("{lower:?} appears twice (host names ignore case)"),
            });
        }
    }
    for host in hosts.values_mut() {
        host.parents
            .iter_mut()
            .for_each(|p| p.make_ascii_lowercase());
    }
    file.hosts = hosts;
    let mut checks = BTreeMap::new();
    for (name, check) in std::mem::take(&mut file.checks) {
        let lower = name.to_ascii_lowercase();
        if checks.insert(lower.clone(), check).is_some() {
            errors.push(ConfigError {
                line: locate(text, &["checks", &name]),
                key: format!("checks.{name}"),
                message: format!("{lower:?} appears twice (check names ignore case)"),
            });
        }
    }
    file.checks = checks;
    for list in [
        &mut file.watchhosts,
        &mut file.dyndnshosts,
        &mut file.drophosts,
    ] {
        list.iter_mut().for_each(|n| n.make_ascii_lowercase());
    }
    let mut err = |key: &str, message: String| {
        let path: Vec<&str> = key.split('.').collect();
        errors.push(ConfigError {
            line: locate(text, &path),
            key: key.to_string(),
            message,
        });
    };
    let root = nix::unistd::geteuid().is_root();

    let ip = |key: &str, value: &Option<String>, err: &mut dyn FnMut(&str, String)| {
        let text = value.as_deref().unwrap_or("127.0.0.1");
        text.parse::<IpAddr>().unwrap_or_else(|e| {
            err(key, format!("{text:?} is not an IP address ({e})"));
            IpAddr::from([127, 0, 0, 1])
        })
    };
    let hb_ip = ip("hb_host", &file.hb_host, &mut err);
    let hbd_ip = ip("hbd_host", &file.hbd_host, &mut err);
    let hb_port = file.hb_port.unwrap_or(50003);
    let hbd_port = file.hbd_port.unwrap_or(50004);
    for (key, port) in [("hb_port", hb_port), ("hbd_port", hbd_port)] {
        if port == 0 {
            err(key, "must be a port number from 1 to 65535".into());
        }
    }
    let udp_receive_buffer = file.udp_receive_buffer.unwrap_or(UDP_RECEIVE_BUFFER);
    if !(UDP_RECEIVE_BUFFER_MIN..=UDP_RECEIVE_BUFFER_MAX).contains(&udp_receive_buffer) {
        err(
            "udp_receive_buffer",
            format!(
                "must be from {UDP_RECEIVE_BUFFER_MIN} to {UDP_RECEIVE_BUFFER_MAX} bytes (1 MiB to 1 GiB)"
            ),
        );
    }
    for (key, value, min) in [
        ("source_rate", file.source_rate, 0.1),
        ("source_burst", file.source_burst, 1.0),
        ("clock_skew", file.clock_skew, 1.0),
    ] {
        if let Some(v) = value
            && !(v.is_finite() && v >= min && v <= 1e9)
        {
            err(key, format!("must be a number of at least {min}, not {v}"));
        }
    }
    if let Some(k) = &file.hb_key
        && k.len() < hb_proto::sign::MIN_KEY_LEN
    {
        err(
            "hb_key",
            format!("must be at least {} bytes", hb_proto::sign::MIN_KEY_LEN),
        );
    }
    if file.interval == Some(0) {
        err("interval", "must be at least 1 second".into());
    }
    if file.max_missed == Some(0) {
        err("max_missed", "must be at least 1".into());
    }
    if let Some(grace) = file.grace
        && !(grace.is_finite() && grace >= 0.0)
    {
        err("grace", format!("must be 0 or more seconds, not {grace}"));
    }
    if let Some(g) = file.startup_grace
        && !(g.is_finite() && (0.0..=86_400.0).contains(&g))
    {
        err(
            "startup_grace",
            format!("must be 0 to 86400 seconds, not {g}"),
        );
    }
    let (high, low) = (
        file.flap_high.unwrap_or(30.0),
        file.flap_low.unwrap_or(25.0),
    );
    if !(high.is_finite() && low.is_finite() && 0.0 < low && low <= high && high <= 100.0) {
        err(
            if file.flap_low.is_some() {
                "flap_low"
            } else {
                "flap_high"
            },
            format!(
                "flap_low ({low}) and flap_high ({high}) must be percentages with 0 < low <= high <= 100"
            ),
        );
    }
    if let Some(f) = file.storm_fraction
        && !(f.is_finite() && 0.0 < f && f <= 1.0)
    {
        err(
            "storm_fraction",
            format!("must be above 0 and at most 1, not {f}"),
        );
    }
    if file.storm_min_hosts.is_some_and(|n| n < 2) {
        err("storm_min_hosts", "must be at least 2".into());
    }
    if let Some(w) = file.storm_window
        && !(w.is_finite() && (1.0..=600.0).contains(&w))
    {
        err("storm_window", format!("must be 1 to 600 seconds, not {w}"));
    }
    if let Some(n) = file.threshold_renotify_interval
        && n > 30 * 86_400
    {
        err(
            "threshold_renotify_interval",
            format!("must be at most 30 days (2592000 s), not {n}"),
        );
    }
    if let Some(n) = file.sample_count
        && !(1..=100_000).contains(&n)
    {
        err("sample_count", format!("must be 1 to 100000, not {n}"));
    }
    if let Some(n) = file.event_retention
        && !(30..=10_000_000).contains(&n)
    {
        err(
            "event_retention",
            format!("must be 30 to 10000000, not {n}"),
        );
    }
    if let Some(g) = file.shutdown_grace
        && !(g.is_finite() && (0.0..=300.0).contains(&g))
    {
        err(
            "shutdown_grace",
            format!("must be 0 to 300 seconds, not {g}"),
        );
    }
    check_dns(&file, &mut err);
    if let Some(name) = &file.journal_file
        && (name.is_empty() || name.contains('/') || name == "." || name == "..")
    {
        err(
            "journal_file",
            format!("{name:?} must be a plain file name"),
        );
    }

    let state_dir = match &file.state_dir {
        Some(dir) => dir.clone(),
        None if root => PathBuf::from("/var/lib/hb"),
        None => user_state_dir(),
    };
    let run_dir = if root && file.state_dir.is_none() {
        PathBuf::from("/run/hb")
    } else {
        state_dir.clone()
    };
    let journal_dir = file
        .journal_dir
        .clone()
        .unwrap_or_else(|| state_dir.join("journal"));
    let control_socket = file
        .control_socket
        .clone()
        .unwrap_or_else(|| run_dir.join("hb.sock"));
    let pidfile = file
        .pidfile
        .clone()
        .unwrap_or_else(|| run_dir.join("hbsupervisor.pid"));
    let logfile = match &file.logfile {
        Some(path) => path.clone(),
        None if root => PathBuf::from("/var/log/hb/hb.log"),
        None => state_dir.join("hb.log"),
    };
    let chroot_dir = file
        .chroot_dir
        .clone()
        .unwrap_or_else(|| run_dir.join("empty"));
    for (key, path) in [
        ("state_dir", Some(&state_dir)),
        ("journal_dir", Some(&journal_dir)),
        ("control_socket", Some(&control_socket)),
        ("pidfile", Some(&pidfile)),
        ("logfile", Some(&logfile)),
        ("chroot_dir", Some(&chroot_dir)),
        ("libexec_dir", file.libexec_dir.as_ref()),
        ("nsupdate_bin", file.nsupdate_bin.as_ref()),
        ("rndc_key", file.rndc_key.as_ref()),
    ] {
        if let Some(path) = path
            && !path.is_absolute()
        {
            err(key, format!("{} must be an absolute path", path.display()));
        }
    }

    for (key, spec) in [
        ("user", &file.user),
        ("group", &file.group),
        ("receiver_user", &file.receiver_user),
        ("engine_user", &file.engine_user),
        ("notifier_user", &file.notifier_user),
        ("dnsupdate_user", &file.dnsupdate_user),
        ("web_user", &file.web_user),
    ] {
        if let Some(spec) = spec
            && (spec.is_empty()
                || spec.split(':').count() > 2
                || spec.contains(char::is_whitespace))
        {
            err(
                key,
                format!("{spec:?} must be `user`, `user:group`, `uid` or `uid:gid`"),
            );
        }
    }

    // Alerting rules: checked here so `-n` reports them; the engine applies them.
    let default_profile = file
        .default_threshold_config
        .clone()
        .unwrap_or_else(|| "default".into());
    let rules = hb_rules::Rules::parse(
        file.thresholds.as_ref().unwrap_or(&serde_json::Value::Null),
        file.threshold_configs
            .as_ref()
            .unwrap_or(&serde_json::Value::Null),
        &default_profile,
    );
    if let Err(e) = &rules {
        // The line of the deepest part of the path that is a plain key.
        let key: Vec<&str> = e
            .path
            .split('.')
            .take_while(|k| !k.is_empty() && !k.contains('/'))
            .collect();
        let key = key.join(".");
        let message = if key == e.path {
            e.message.clone()
        } else {
            e.to_string()
        };
        err(&key, message);
    }

    if let Some(windows) = &file.maintenance
        && let Err(e) = hb_rules::silence::parse_windows(windows)
    {
        let key: Vec<&str> = e.path.split('.').take(2).collect();
        err(&key.join("."), e.to_string());
    }

    let mut uuids = BTreeMap::new();
    for (name, check) in &file.checks {
        let key = format!("checks.{name}");
        if let Err(why) = hb_proto::names::check_host_name(name) {
            err(&key, format!("{why} (a check is named like a host)"));
        }
        if file.hosts.contains_key(name) {
            err(&key, format!("{name:?} is a host under hosts too"));
        }
        for (field, why) in check.problems(hb_rules::cron::check) {
            err(&format!("{key}.{field}"), why);
        }
        if let Some(uuid) = normalize_uuid(&check.uuid)
            && let Some(other) = uuids.insert(uuid, name.clone())
        {
            err(
                &format!("{key}.uuid"),
                format!("the UUID of check {other:?} too"),
            );
        }
        if !file.users.is_empty() {
            for user in check
                .owner
                .iter()
                .chain(&check.managers)
                .chain(&check.monitors)
            {
                if !file.users.contains_key(user) {
                    err(&key, format!("user {user:?} is not defined under users"));
                }
            }
        }
        for ch in &check.notification_channels {
            if !file.notification_channels.contains_key(ch) {
                err(
                    &format!("{key}.notification_channels"),
                    format!("channel {ch:?} is not defined under notification_channels"),
                );
            }
        }
    }

    // Names and references.
    for (name, host) in &file.hosts {
        let key = format!("hosts.{name}");
        for parent in &host.parents {
            if let Err(why) = hb_proto::names::check_host_name(parent) {
                err(&format!("{key}.parents"), format!("{parent:?}: {why}"));
            }
        }
        if let Some(cycle) = parent_cycle(&file.hosts, name) {
            err(
                &format!("{key}.parents"),
                format!("parents go round in a circle: {}", cycle.join(" -> ")),
            );
        }
        if let (Ok(rules), Some(profiles)) = (&rules, &host.threshold_config) {
            for profile in profiles.names() {
                if !rules.has_profile(profile) {
                    err(
                        &format!("{key}.threshold_config"),
                        format!("no profile {profile:?} under threshold_configs"),
                    );
                }
            }
        }
        if let Err(why) = hb_proto::names::check_host_name(name) {
            err(&key, why);
        }
        if let Some(k) = &host.key
            && k.len() < hb_proto::sign::MIN_KEY_LEN
        {
            err(
                &format!("{key}.key"),
                format!("must be at least {} bytes", hb_proto::sign::MIN_KEY_LEN),
            );
        }
        if host.grace.is_some_and(|g| !(g.is_finite() && g >= 0.0)) {
            err(&format!("{key}.grace"), "must be seconds, 0 or more".into());
        }
        if host.max_missed == Some(0) {
            err(&format!("{key}.max_missed"), "must be at least 1".into());
        }
        if let Some(interval) = host.interval
            && interval == 0
        {
            err(
                &format!("{key}.interval"),
                "must be at least 1 second".into(),
            );
        }
        if !file.users.is_empty() {
            let users = host
                .owner
                .iter()
                .chain(&host.managers)
                .chain(&host.monitors);
            for user in users {
                if !file.users.contains_key(user) {
                    err(&key, format!("user {user:?} is not defined under users"));
                }
            }
        }
        for ch in &host.notification_channels {
            if !file.notification_channels.contains_key(ch) {
                err(
                    &format!("{key}.notification_channels"),
                    format!("channel {ch:?} is not defined under notification_channels"),
                );
            }
        }
    }
    for (list, names) in [
        ("watchhosts", &file.watchhosts),
        ("dyndnshosts", &file.dyndnshosts),
        ("drophosts", &file.drophosts),
    ] {
        for name in names {
            if let Err(why) = hb_proto::names::check_host_name(name) {
                err(list, why);
            }
        }
    }
    for (name, user) in &file.users {
        let key = format!("users.{name}");
        if let Some(hash) = &user.password
            && let Err(why) = hb_child::passwd::PasswordHash::parse(hash)
        {
            err(&format!("{key}.password"), why);
        }
        for ch in &user.notification_channels {
            if !file.notification_channels.contains_key(ch) {
                err(
                    &format!("{key}.notification_channels"),
                    format!("channel {ch:?} is not defined under notification_channels"),
                );
            }
        }
    }
    if let Some(owner) = &file.default_owner
        && !file.users.contains_key(owner)
    {
        err(
            "default_owner",
            format!("user {owner:?} is not defined under users"),
        );
    }
    for (name, ch) in &file.notification_channels {
        let definition = serde_json::to_value(ch).unwrap_or(serde_json::Value::Null);
        if let Err(e) = hb_notify::Channel::parse(name, &definition) {
            err(
                &format!("notification_channels.{name}.{}", e.key),
                e.message,
            );
        }
    }
    for ch in &file.notify {
        if !file.notification_channels.contains_key(ch) {
            err(
                "notify",
                format!("channel {ch:?} is not defined under notification_channels"),
            );
        }
    }
    if let Some(url) = &file.base_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        err(
            "base_url",
            format!("{url:?} must start with http:// or https://"),
        );
    }

    for (key, rate) in [
        ("ping_rate_per_address", file.ping_rate_per_address),
        ("ping_rate_per_check", file.ping_rate_per_check),
    ] {
        // Below 0.2/s a bucket (five seconds of the rate) would not hold one ping.
        if rate.is_some_and(|r| !(r.is_finite() && (0.2..=1_000_000.0).contains(&r))) {
            err(key, "must be pings per second, 0.2 to 1000000".into());
        }
    }
    if let Some(token) = &file.metrics_token
        && (token.len() < 16 || token.len() > 256 || !token.bytes().all(|b| b.is_ascii_graphic()))
    {
        err(
            "metrics_token",
            "must be 16 to 256 printable characters without spaces".into(),
        );
    }

    let tls = tls_files(&file, &mut err);
    if let Some(port) = file.ws_port
        && (port == 0 || port == hbd_port)
    {
        err(
            "ws_port",
            format!("must be a port number other than hbd_port ({hbd_port})"),
        );
    }
    let ws_addr = file
        .ws_port
        .map(|port| std::net::SocketAddr::from((hbd_ip, port)));

    Config {
        source,
        tls,
        hb_addr: (hb_ip, hb_port).into(),
        udp_receive_buffer: udp_receive_buffer.clamp(UDP_RECEIVE_BUFFER_MIN, UDP_RECEIVE_BUFFER_MAX)
            as usize,
        hbd_addr: (hbd_ip, hbd_port).into(),
        ws_addr,
        state_dir,
        journal_dir,
        control_socket,
        pidfile,
        logfile,
        chroot_dir,
        shutdown_grace: std::time::Duration::from_secs_f64(file.shutdown_grace.unwrap_or(10.0)),
        file,
        text: text.to_string(),
    }
}

/// The certificate and key: `tls_cert` and `tls_key`, or the original's `wss_pem` and
/// `wss_key` under `cert_path`; read now, with a check that they hold what they should.
fn tls_files(file: &File, err: &mut dyn FnMut(&str, String)) -> Option<hb_ipc::config::TlsPem> {
    let (cert, key, cert_key, key_key) = match (&file.tls_cert, &file.tls_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone(), "tls_cert", "tls_key"),
        (None, None) => match (&file.cert_path, &file.wss_pem, &file.wss_key) {
            (None, None, None) => return None,
            (dir, Some(c), Some(k)) => {
                let dir = dir.clone().unwrap_or_default();
                (dir.join(c), dir.join(k), "wss_pem", "wss_key")
            }
            _ => {
                err(
                    "cert_path",
                    "TLS needs both wss_pem and wss_key (under cert_path), or tls_cert and tls_key"
                        .into(),
                );
                return None;
            }
        },
        _ => {
            err("tls_cert", "TLS needs both tls_cert and tls_key".into());
            return None;
        }
    };
    let mut read = |key: &str, path: &Path, marker: &str| -> Option<String> {
        if !path.is_absolute() {
            err(key, format!("{} must be an absolute path", path.display()));
            return None;
        }
        match std::fs::read_to_string(path) {
            Ok(text) if text.contains(marker) => Some(text),
            Ok(_) => {
                err(key, format!("{} holds no PEM {marker}", path.display()));
                None
            }
            Err(e) => {
                err(key, format!("cannot read {}: {e}", path.display()));
                None
            }
        }
    };
    let cert_pem = read(cert_key, &cert, "-----BEGIN CERTIFICATE-----");
    let key_pem = read(key_key, &key, "PRIVATE KEY-----");
    Some(hb_ipc::config::TlsPem {
        cert_pem: cert_pem?,
        key_pem: key_pem?,
    })
}

/// `$XDG_STATE_HOME/hb`, else `~/.local/state/hb`, else a directory under /tmp named by uid.
pub fn user_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| Path::new(d).is_absolute()) {
        return PathBuf::from(dir).join("hb");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| Path::new(d).is_absolute()) {
        return PathBuf::from(home).join(".local/state/hb");
    }
    PathBuf::from(format!("/tmp/hb-{}", nix::unistd::getuid()))
}

/// Keys whose values are secrets wherever they appear (and any key naming a password,
/// token, secret or key, even a key file's path, which only its one role needs); channel
/// options by their type's description.
const SECRET_KEYS: &[&str] = &["hb_key", "key", "password", "metrics_token", "cert_path"];

/// Replaces every secret in a configuration document by `"(hidden)"`.
fn hide_secrets(doc: &mut serde_json::Value) {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                for (key, value) in map.iter_mut() {
                    let lower = key.to_ascii_lowercase();
                    let secret = SECRET_KEYS.contains(&lower.as_str())
                        || ["password", "token", "secret", "key"]
                            .iter()
                            .any(|s| lower.contains(s));
                    // Secrets are values, never maps: a host or user named "monkey" is shown.
                    let scalar = !value.is_null() && !value.is_object();
                    if secret && scalar {
                        *value = serde_json::Value::String("(hidden)".into());
                    } else {
                        walk(value);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let channels = doc
        .as_object_mut()
        .and_then(|d| d.remove("notification_channels"));
    walk(doc);
    if let (Some(serde_json::Value::Object(channels)), Some(d)) = (channels, doc.as_object_mut()) {
        let shown = channels
            .iter()
            .map(|(name, def)| (name.clone(), hb_notify::channel::public_view(def)))
            .collect();
        d.insert(
            "notification_channels".into(),
            serde_json::Value::Object(shown),
        );
    }
}

fn obsolete_keys(text: &str) -> Vec<ConfigError> {
    let Ok(yaml_serde::Value::Mapping(map)) = yaml_serde::from_str::<yaml_serde::Value>(text)
    else {
        return Vec::new();
    };
    OBSOLETE_KEYS
        .iter()
        .filter(|(key, _)| map.contains_key(*key))
        .map(|(key, why)| ConfigError {
            line: locate(text, &[key]),
            key: key.to_string(),
            message: format!("key of the original hbd not used by hb: {why}"),
        })
        .collect()
}

fn yaml_error(e: &yaml_serde::Error, text: &str) -> ConfigError {
    let full = e.to_string();
    // The message carries "path: what at line L column C"; split it into our fields.
    let without_location = match full.rfind(" at line ") {
        Some(at) => &full[..at],
        None => &full,
    };
    let (key, message) = match without_location.split_once(": ") {
        Some((key, msg)) if !key.contains(' ') => (key.to_string(), msg.to_string()),
        _ => (String::new(), without_location.to_string()),
    };
    let message = shorten_expected(&message);
    let key = match unknown_field(&message) {
        Some(field) if key.is_empty() => field.to_string(),
        Some(field) => format!("{key}.{field}"),
        None => key,
    };
    let line = e.location().map(|l| l.line()).or_else(|| {
        let path: Vec<&str> = key.split('.').collect();
        locate(text, &path)
    });
    ConfigError { line, key, message }
}

/// serde lists every expected field after an unknown one; past a few it is noise.
fn shorten_expected(message: &str) -> String {
    match message.split_once(", expected one of ") {
        Some((head, list)) if list.matches('`').count() > 12 => {
            format!("{head} (see docs/CONFIG.md for the keys)")
        }
        _ => message.to_string(),
    }
}

fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

/// `dns_server`: `host`, `host:port`, `v4:port` or `[v6]:port`; the port defaults to 53.
pub fn dns_server(text: &str) -> Result<(String, u16), String> {
    if let Ok(addr) = text.parse::<std::net::SocketAddr>() {
        return Ok((addr.ip().to_string(), addr.port()));
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok((ip.to_string(), 53));
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("{port:?} is not a port number"))?,
        ),
        None => (text, 53),
    };
    hb_proto::names::check_host_name(host)
        .map_err(|_| format!("{text:?} is not an address or DNS name, with an optional :port"))?;
    Ok((host.to_string(), port))
}

/// The dynamic DNS keys: every name that reaches an nsupdate script is a checked DNS name,
/// and hosts that want records have somewhere to put them.
fn check_dns(file: &File, err: &mut dyn FnMut(&str, String)) {
    for domain in &file.dyndomains {
        if hb_proto::names::check_host_name(domain.trim_end_matches('.')).is_err() {
            err("dyndomains", format!("{domain:?} is not a DNS domain name"));
        }
    }
    if let Some(zone) = &file.dns_zone
        && hb_proto::names::check_host_name(zone.trim_end_matches('.')).is_err()
    {
        err("dns_zone", format!("{zone:?} is not a DNS zone name"));
    }
    if let Some(server) = &file.dns_server
        && let Err(why) = dns_server(server)
    {
        err("dns_server", why);
    }
    if let Some(ttl) = file.dns_ttl
        && !(1..=604_800).contains(&ttl)
    {
        err("dns_ttl", format!("must be 1 to 604800 seconds, not {ttl}"));
    }
    if let Some(t) = file.dns_timeout
        && !(t.is_finite() && (0.5..=300.0).contains(&t))
    {
        err(
            "dns_timeout",
            format!("must be 0.5 to 300 seconds, not {t}"),
        );
    }
    let wanted = file
        .hosts
        .iter()
        .filter(|(_, h)| h.dyndns || h.dns_failover)
        .map(|(name, h)| {
            if h.dyndns {
                format!("hosts.{name}.dyndns")
            } else {
                format!("hosts.{name}.dns_failover")
            }
        })
        .chain(file.dyndnshosts.iter().map(|_| "dyndnshosts".to_string()))
        .next();
    if let Some(key) = wanted
        && file.dyndomains.is_empty()
    {
        err(
            &key,
            "dynamic DNS needs `dyndomains`, the domains its records go in".into(),
        );
    }
}

/// Finds the line of a dotted key path in block-style YAML by indentation. Returns the line
/// of the deepest component found, so an error inside a flow mapping still points near it.
pub fn locate(text: &str, path: &[&str]) -> Option<usize> {
    let mut found = None;
    let mut depth = 0;
    let mut parent_indent: isize = -1;
    // Indentation of the direct children of the current parent, set by its first child.
    let mut child_indent: Option<isize> = None;
    for (index, line) in text.lines().enumerate() {
        if depth == path.len() {
            break;
        }
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---") {
            continue;
        }
        let indent = (line.len() - trimmed.len()) as isize;
        if indent <= parent_indent {
            break;
        }
        let level = *child_indent.get_or_insert(indent);
        if indent != level {
            continue;
        }
        let Some((key, _)) = trimmed.split_once(':') else {
            continue;
        };
        let key = key.trim().trim_matches(|c| c == '"' || c == '\'');
        if key == path[depth] {
            found = Some(index + 1);
            depth += 1;
            parent_indent = indent;
            child_indent = None;
        }
    }
    found
}

/// The circle of `parents:` that `start` is on, if any.
fn parent_cycle(hosts: &BTreeMap<String, HostConfig>, start: &str) -> Option<Vec<String>> {
    // Depth-first along parents; a path that comes back to `start` is the circle.
    fn walk(
        hosts: &BTreeMap<String, HostConfig>,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut std::collections::BTreeSet<String>,
    ) -> bool {
        let Some(host) = path.last().and_then(|h| hosts.get(h)) else {
            return false;
        };
        for parent in &host.parents {
            if parent == start {
                path.push(parent.clone());
                return true;
            }
            if seen.insert(parent.clone()) {
                path.push(parent.clone());
                if walk(hosts, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    walk(hosts, start, &mut path, &mut Default::default()).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigErrors> {
        Config::parse(Source::File("/t/hb.yaml".into()), text)
    }

    fn errors(text: &str) -> String {
        parse(text).expect_err("should be rejected").to_string()
    }

    #[test]
    fn empty_file_is_the_default() {
        let c = parse("").unwrap();
        assert_eq!(c.hb_addr.to_string(), "127.0.0.1:50003");
        assert_eq!(c.hbd_addr.to_string(), "127.0.0.1:50004");
        let c = parse("# only a comment\n").unwrap();
        assert_eq!(c.hb_addr.port(), 50003);
    }

    #[test]
    fn builtin_default_is_valid_and_loopback() {
        let c = Config::builtin();
        assert!(c.hb_addr.ip().is_loopback());
        assert!(c.hbd_addr.ip().is_loopback());
        assert!(c.state_dir.is_absolute());
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let e = errors("hb_port: 50003\nhbd_prot: 1\n");
        assert!(
            e.starts_with("/t/hb.yaml:2: hbd_prot: unknown field `hbd_prot`"),
            "{e}"
        );
        assert!(e.contains("docs/CONFIG.md"), "{e}");
    }

    #[test]
    fn nested_unknown_key_is_named_with_its_path() {
        let e = errors("hosts:\n  web1:\n    owner: bob\n    wach: true\n");
        assert!(
            e.starts_with("/t/hb.yaml:4: hosts.web1.wach: unknown field `wach`"),
            "{e}"
        );
    }

    #[test]
    fn bad_thresholds_and_unknown_profiles_name_key_and_line() {
        let e = errors("thresholds:\n  cpu_monitor:\n    cpu_percent:\n      warning: high\n");
        assert!(
            e.starts_with(
                "/t/hb.yaml:4: thresholds.cpu_monitor.cpu_percent.warning: must be a number"
            ),
            "{e}"
        );
        let e = errors("hosts:\n  web1:\n    threshold_config: [tight]\n");
        assert!(
            e.starts_with("/t/hb.yaml:3: hosts.web1.threshold_config: no profile \"tight\""),
            "{e}"
        );
        let ok = "threshold_configs:\n  tight:\n    thresholds:\n      cpu_monitor:\n        cpu_percent: {warning: 60, critical: 75}\nhosts:\n  web1:\n    threshold_config: tight\n";
        assert!(parse(ok).is_ok());
    }

    #[test]
    fn the_channels_of_docs_notify_load() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/NOTIFY.md"))
                .expect("docs/NOTIFY.md");
        let start = doc.find("```yaml\n").expect("a yaml block") + 8;
        let end = start + doc[start..].find("```").expect("its end");
        let c = parse(&doc[start..end]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.file.notification_channels.len(), 12, "one of each type");
    }

    #[test]
    fn the_web_is_shown_the_configuration_without_any_secret() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/NOTIFY.md"))
                .expect("docs/NOTIFY.md");
        let start = doc.find("```yaml\n").expect("a yaml block") + 8;
        let end = start + doc[start..].find("```").expect("its end");
        let mut text = doc[start..end]
            .replace("services/...", "services/SECRET-slack")
            .replace("webhooks/...", "webhooks/SECRET-discord")
            .replace(
                "https://example.net/hb",
                "https://example.net/hb/SECRET-hook",
            );
        let mut n = 0;
        while let Some(at) = text.find("\"...\"") {
            n += 1;
            text.replace_range(at..at + 5, &format!("SECRET-{n}"));
        }
        text.push_str(
            "users:\n  monkey: {}\n  a:\n    admin: true\n    password: \"pbkdf2:sha256:1000$SECRETsalt$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\nhb_key: SECRET-shared-key\n\
             metrics_token: SECRET-metrics-token\nrndc_key: /etc/hb/SECRET.key\n\
             hosts:\n  h1:\n    key: SECRET-host-key-long-enough\n",
        );
        let c = parse(&text).unwrap_or_else(|e| panic!("{e}"));
        let RoleConfig::Web(web) = c.slice(Role::Web) else {
            panic!("not a web slice")
        };
        // The slice holds the hashes and the metrics token hb-web needs, but what it shows
        // holds no secret.
        let json = serde_json::to_string(&(&web.server, &web.channels)).unwrap();
        assert!(!json.contains("SECRET"), "{json}");
        let file = &web.server["file"];
        assert_eq!(file["users"]["a"]["password"], "(hidden)");
        assert_eq!(
            file["users"]["monkey"],
            serde_json::json!({}),
            "a name is no secret"
        );
        assert_eq!(file["hosts"]["h1"]["key"], "(hidden)");
        assert_eq!(
            file["notification_channels"]["phone"]["secrets_set"],
            serde_json::json!(["token", "user"])
        );
        assert_eq!(
            file["notification_channels"]["phone"]["min_level"],
            "CRITICAL"
        );
        assert_eq!(
            web.channels["hook"]["secrets_set"],
            serde_json::json!(["secret", "url"])
        );
        assert_eq!(web.channels["ops_mail"]["smtp_server"], "mail.example.net");
        assert_eq!(web.server["source"], "/t/hb.yaml");
    }

    #[test]
    fn the_thresholds_of_docs_alerting_load() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/ALERTING.md"))
                .expect("docs/ALERTING.md");
        let start = doc.find("```yaml\n").expect("a yaml block") + 8;
        let end = start + doc[start..].find("```").expect("its end");
        parse(&doc[start..end]).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn the_example_of_docs_dns_loads() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/DNS.md"))
            .expect("docs/DNS.md");
        let start = doc.find("```yaml\n").expect("a yaml block") + 8;
        let end = start + doc[start..].find("```").expect("its end");
        let c = parse(&doc[start..end]).unwrap_or_else(|e| panic!("{e}"));
        let RoleConfig::Dnsupdate(d) = c.slice(Role::Dnsupdate) else {
            panic!("not a dnsupdate slice");
        };
        assert_eq!(d.server, Some(("ns1.example.net".into(), 53)));
        assert_eq!(d.dyndomains, ["dyn.example.net"]);
    }

    #[test]
    fn parents_in_a_circle_are_refused() {
        let e = errors(
            "hosts:\n  a:\n    parents: [b]\n  b:\n    parents: [c]\n  c:\n    parents: [A]\n",
        );
        assert!(
            e.contains("hosts.a.parents: parents go round in a circle: a -> b -> c -> a"),
            "{e}"
        );
        assert!(parse("hosts:\n  a:\n    parents: [b]\n  b:\n    parents: [c]\n").is_ok());
    }

    #[test]
    fn wrong_type_names_key_and_line() {
        let e = errors("interval: 10\nhb_port: lots\n");
        assert!(
            e.starts_with("/t/hb.yaml:2: hb_port: invalid type: string"),
            "{e}"
        );
        let e = errors("hosts:\n  web1:\n    watch: maybe\n");
        assert!(
            e.starts_with("/t/hb.yaml:3: hosts.web1.watch: invalid type"),
            "{e}"
        );
    }

    #[test]
    fn syntax_error_names_the_line() {
        let e = errors("hb_port: 1\nhosts: [\n");
        assert!(e.starts_with("/t/hb.yaml:"), "{e}");
        assert!(e.contains(":3:") || e.contains(":2:"), "{e}");
    }

    #[test]
    fn semantic_errors_are_all_reported_with_lines() {
        let text = "\
users:
  alice:
    admin: true
    password: plain
hosts:
  web1:
    owner: bob
  \"bad host\": {}
hb_port: 0
state_dir: relative/dir
default_owner: carol
notification_channels:
  x:
    type: carrier-pigeon
";
        let e = errors(text);
        for want in [
            "/t/hb.yaml:4: users.alice.password:",
            "/t/hb.yaml:6: hosts.web1: user \"bob\" is not defined",
            "/t/hb.yaml:8: hosts.bad host:",
            "/t/hb.yaml:9: hb_port: must be a port number",
            "/t/hb.yaml:10: state_dir: relative/dir must be an absolute path",
            "/t/hb.yaml:11: default_owner: user \"carol\"",
            "/t/hb.yaml:14: notification_channels.x.type: unknown channel type",
        ] {
            assert!(e.contains(want), "missing {want:?} in:\n{e}");
        }
    }

    #[test]
    fn the_udp_receive_buffer_is_bounded() {
        assert_eq!(parse("").unwrap().udp_receive_buffer, 64 << 20);
        assert_eq!(
            parse("udp_receive_buffer: 268435456\n")
                .unwrap()
                .udp_receive_buffer,
            256 << 20
        );
        for bad in ["100", "4294967296", "-1", "lots"] {
            let e = errors(&format!("udp_receive_buffer: {bad}\n"));
            assert!(e.contains("/t/hb.yaml:1: udp_receive_buffer"), "{bad}: {e}");
        }
    }

    #[test]
    fn host_names_ignore_case() {
        let c = parse("hosts:\n  Web1:\n    interval: 5\ndrophosts: [OLD]\n").unwrap();
        assert!(c.file.hosts.contains_key("web1"));
        assert_eq!(c.file.drophosts, ["old"]);
        let e = errors("hosts:\n  web1: {}\n  WEB1: {}\n");
        assert!(e.contains("appears twice"), "{e}");
    }

    #[test]
    fn obsolete_hbd_keys_explain_themselves() {
        let e = errors("hb_port: 50003\npickfile: /var/lib/hbd.pickle\n");
        assert!(
            e.contains("/t/hb.yaml:2: pickfile: key of the original hbd"),
            "{e}"
        );
    }

    #[test]
    fn hostile_documents_are_errors() {
        for text in [
            "- a\n- b\n",
            "!!binary aGVsbG8=\n",
            "hb_port: 99999999999\n",
            "a: &a [*a]\n",
            "hosts: {web1: {interval: -5}}\n",
            "grace: .nan\n",
            "\u{0}",
        ] {
            assert!(parse(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn slices_carry_only_their_part() {
        let c = parse(
            "notification_channels:\n  p:\n    type: pushover\n    token: s3cret\n    user: u\nusers:\n  a:\n    admin: true\n    notification_channels: [p]\nhb_key: sharedsharedshared\nhosts:\n  h1:\n    key: hostkeyhostkeyhostkey\n",
        )
        .unwrap();
        for role in Role::ALL {
            let json = serde_json::to_string(&c.slice(role)).unwrap();
            assert_eq!(
                json.contains("s3cret"),
                role == Role::Notifier,
                "{role}: {json}"
            );
            for secret in ["hostkeyhostkey", "sharedshared"] {
                assert_eq!(
                    json.contains(secret),
                    role == Role::Receiver,
                    "{role}: {json}"
                );
            }
        }
        assert_eq!(c.default_owner().as_deref(), Some("a"));
    }

    #[test]
    fn dns_keys_are_checked_and_reach_only_the_updater() {
        let c = parse(
            "dyndomains: [dyn.example.net]\ndns_server: \"[::1]:5353\"\ndns_zone: example.net.\ndns_ttl: 300\ndns_timeout: 2.5\nrndc_key: /etc/hb/ddns.key\nhosts:\n  web1: {dns_failover: true}\ndyndnshosts: [Laptop]\n",
        )
        .unwrap();
        let RoleConfig::Dnsupdate(d) = c.slice(Role::Dnsupdate) else {
            panic!("not a dnsupdate slice");
        };
        assert_eq!(d.server, Some(("::1".into(), 5353)));
        assert_eq!((d.ttl, d.timeout_ms), (300, 2500));
        assert_eq!(d.nsupdate_bin, PathBuf::from("/usr/bin/nsupdate"));
        assert_eq!(c.file.dyndnshosts, ["laptop"]);
        for role in Role::ALL {
            let json = serde_json::to_string(&c.slice(role)).unwrap();
            assert_eq!(json.contains("ddns.key"), role == Role::Dnsupdate, "{role}");
        }

        assert_eq!(
            dns_server("ns1.example.net"),
            Ok(("ns1.example.net".into(), 53))
        );
        assert_eq!(dns_server("192.0.2.1:5300"), Ok(("192.0.2.1".into(), 5300)));
        assert_eq!(dns_server("2001:db8::1"), Ok(("2001:db8::1".into(), 53)));
        for bad in ["ns1:0", "ns1:99999", "ns 1", "ns1;rm", "", "ns1\nsend"] {
            assert!(dns_server(bad).is_err(), "{bad:?} accepted");
        }

        let e = errors(
            "dyndomains: [\"bad domain\"]\ndns_server: \"x y\"\ndns_zone: \"z;z\"\ndns_ttl: 0\ndns_timeout: 0.1\nrndc_key: ddns.key\nnsupdate_bin: nsupdate\ndyndnshosts: [\"a b\"]\n",
        );
        for want in [
            "/t/hb.yaml:1: dyndomains: \"bad domain\" is not a DNS domain name",
            "/t/hb.yaml:2: dns_server:",
            "/t/hb.yaml:3: dns_zone:",
            "/t/hb.yaml:4: dns_ttl: must be 1 to 604800 seconds, not 0",
            "/t/hb.yaml:5: dns_timeout: must be 0.5 to 300 seconds, not 0.1",
            "/t/hb.yaml:6: rndc_key: ddns.key must be an absolute path",
            "/t/hb.yaml:7: nsupdate_bin: nsupdate must be an absolute path",
            "/t/hb.yaml:8: dyndnshosts",
        ] {
            assert!(e.contains(want), "missing {want:?} in:\n{e}");
        }
        let e = errors("hosts:\n  web1:\n    dyndns: true\n");
        assert!(
            e.contains("hosts.web1.dyndns: dynamic DNS needs `dyndomains`"),
            "{e}"
        );
        assert!(errors("dyndnshosts: [web1]\n").contains("dyndnshosts: dynamic DNS needs"));
    }

    #[test]
    fn user_specs_resolve_per_role() {
        let c = parse("user: hb\ngroup: hbg\nweb_user: www:www\nengine_user: '1234'\n").unwrap();
        assert_eq!(
            c.user_spec(Role::Receiver),
            ("hb".into(), Some("hbg".into()))
        );
        assert_eq!(c.user_spec(Role::Web), ("www".into(), Some("www".into())));
        assert_eq!(
            c.user_spec(Role::Engine),
            ("1234".into(), Some("hbg".into()))
        );
    }

    #[test]
    fn locate_follows_indentation() {
        let text = "a:\n  b:\n    c: 1\nb:\n  c: 2\n";
        assert_eq!(locate(text, &["b", "c"]), Some(5));
        assert_eq!(locate(text, &["a", "b", "c"]), Some(3));
        assert_eq!(locate(text, &["a", "x"]), Some(1));
        assert_eq!(locate(text, &["z"]), None);
    }
}
