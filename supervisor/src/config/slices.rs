//! What each role is told of the configuration: its slice, and nothing more (secrets reach
//! only the role that uses them).

use hb_ipc::Role;
use hb_ipc::config::{
    DnsupdateConfig, EngineConfig, HostConfig, JournalConfig, NotifierConfig, ReceiverConfig,
    RoleConfig, WebConfig,
};

use super::Config;
use super::resolve::dns_server;

impl Config {
    /// The configuration slice for `role`.
    pub fn slice(&self, role: Role) -> RoleConfig {
        match role {
            Role::Receiver => RoleConfig::Receiver(self.receiver_slice()),
            Role::Engine => RoleConfig::Engine(Box::new(self.engine_slice())),
            Role::Notifier => RoleConfig::Notifier(self.notifier_slice()),
            Role::Dnsupdate => RoleConfig::Dnsupdate(self.dnsupdate_slice()),
            Role::Web => RoleConfig::Web(self.web_slice()),
        }
    }

    fn receiver_slice(&self) -> ReceiverConfig {
        let f = &self.file;
        let defaults = ReceiverConfig::default();
        ReceiverConfig {
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
        }
    }

    fn engine_slice(&self) -> EngineConfig {
        let f = &self.file;
        EngineConfig {
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
        }
    }

    fn notifier_slice(&self) -> NotifierConfig {
        let f = &self.file;
        NotifierConfig {
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
        }
    }

    fn dnsupdate_slice(&self) -> DnsupdateConfig {
        let f = &self.file;
        let defaults = DnsupdateConfig::default();
        DnsupdateConfig {
            dyndomains: f.dyndomains.clone(),
            nsupdate_bin: f.nsupdate_bin.clone().unwrap_or(defaults.nsupdate_bin),
            rndc_key: f.rndc_key.clone(),
            server: f.dns_server.as_deref().and_then(|s| dns_server(s).ok()),
            zone: f.dns_zone.clone(),
            ttl: f.dns_ttl.unwrap_or(defaults.ttl),
            timeout_ms: f
                .dns_timeout
                .map_or(defaults.timeout_ms, |t| (t * 1000.0) as u64),
        }
    }

    fn web_slice(&self) -> WebConfig {
        let f = &self.file;
        WebConfig {
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
        }
    }
}
