//! Which DNS records the engine asks hb-dnsupdate for. A dynamic host's records follow its
//! source address; with `dns_failover` they are removed while it is down or shut down and
//! come back when it heartbeats again. Each host's record is asked for only when what it
//! should be differs from what was last asked, so a steady host costs one update per engine
//! start and nothing per heartbeat.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use hb_ipc::config::EngineConfig;
use hb_ipc::edge::DnsWish;

/// Dynamic hosts and what was last asked for each.
#[derive(Debug, Default)]
pub struct DnsFollow {
    /// Whether any domain is configured: without one, nothing is asked.
    enabled: bool,
    /// Dynamic hosts, with whether their records follow their health.
    hosts: HashMap<String, bool>,
    /// Per host: the address last asked for, `None` for "removed".
    asked: HashMap<String, Option<IpAddr>>,
    /// Wishes for hb-dnsupdate, in order.
    pub out: Vec<DnsWish>,
}

impl DnsFollow {
    /// Takes the dynamic hosts from `config`: `hosts.<h>.dyndns`, `hosts.<h>.dns_failover`
    /// (which implies a record) and `dyndnshosts`.
    pub fn configure(&mut self, config: &EngineConfig) {
        self.enabled = !config.dyndomains.is_empty();
        self.hosts = config
            .hosts
            .iter()
            .filter(|(_, h)| h.dyndns || h.dns_failover)
            .map(|(name, h)| (name.clone(), h.dns_failover))
            .collect();
        for name in &config.dyndnshosts {
            self.hosts.entry(name.clone()).or_insert(false);
        }
        // A host no longer dynamic is left as it is; one that becomes dynamic is asked for at
        // its next message.
        let dynamic: HashSet<&String> = self.hosts.keys().collect();
        self.asked.retain(|h, _| dynamic.contains(h));
    }

    /// Whether `host` has dynamic records (and domains to put them in).
    pub fn is_dynamic(&self, host: &str) -> bool {
        self.enabled && self.hosts.contains_key(host)
    }

    /// Whether any domain is configured.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Asks for `host`'s record as it should be now, if that differs from what was last asked
    /// (or always, with `force`). `address` is its last source address; `alive` is false
    /// while it is down or shut down.
    pub fn follow(&mut self, host: &str, address: IpAddr, alive: bool, force: Option<&str>) {
        if !self.enabled {
            return;
        }
        let Some(&failover) = self.hosts.get(host) else {
            return;
        };
        let want = if alive || !failover {
            Some(address)
        } else {
            None
        };
        let last = self.asked.get(host).copied();
        let why = match (force, last, want) {
            (Some(why), _, _) => why.to_string(),
            (None, Some(last), want) if last == want => return,
            (None, None, _) => "first sight".into(),
            (None, Some(None), Some(_)) => "recovered".into(),
            (None, Some(Some(_)), Some(_)) => "moved".into(),
            (None, Some(_), None) => "down".into(),
        };
        self.asked.insert(host.to_string(), want);
        self.out.push(DnsWish {
            host: host.to_string(),
            address: want,
            why,
        });
    }

    /// Forgets `host` (dropped): a return is a first sight. Its records stay as they are.
    pub fn forget(&mut self, host: &str) {
        self.asked.remove(host);
    }

    /// Forgets everything asked (hb-dnsupdate restarted and lost its queue): the caller
    /// follows every host again.
    pub fn reset(&mut self) {
        self.asked.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_ipc::config::HostConfig;

    fn follow(dyndomains: &[&str]) -> DnsFollow {
        let mut config = crate::state::tests::config();
        config.dyndomains = dyndomains
            .iter()
            .map(std::string::ToString::to_string)
            .collect();
        config.hosts.insert(
            "web1".into(),
            HostConfig {
                dyndns: true,
                ..HostConfig::default()
            },
        );
        config.hosts.insert(
            "db1".into(),
            HostConfig {
                dns_failover: true,
                ..HostConfig::default()
            },
        );
        config.dyndnshosts = vec!["gw1".into()];
        let mut f = DnsFollow::default();
        f.configure(&config);
        f
    }

    fn asked(f: &mut DnsFollow) -> Vec<(String, Option<IpAddr>, String)> {
        f.out
            .drain(..)
            .map(|w| (w.host, w.address, w.why))
            .collect()
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 3));

    #[test]
    fn records_follow_address_changes_once_each() {
        let mut f = follow(&["dyn.test"]);
        for _ in 0..3 {
            f.follow("web1", A, true, None);
        }
        f.follow("web1", B, true, None);
        f.follow("web1", B, true, None);
        f.follow("gw1", A, true, None);
        f.follow("other", A, true, None);
        assert_eq!(
            asked(&mut f),
            [
                ("web1".into(), Some(A), "first sight".into()),
                ("web1".into(), Some(B), "moved".into()),
                ("gw1".into(), Some(A), "first sight".into()),
            ]
        );
        // Down without failover changes nothing; forcing asks again.
        f.follow("web1", B, false, None);
        assert!(asked(&mut f).is_empty());
        f.follow("web1", B, true, Some("asked by hbctl"));
        assert_eq!(
            asked(&mut f),
            [("web1".into(), Some(B), "asked by hbctl".into())]
        );
    }

    #[test]
    fn failover_records_leave_while_down_and_return() {
        let mut f = follow(&["dyn.test"]);
        f.follow("db1", A, true, None);
        f.follow("db1", A, false, None);
        f.follow("db1", A, false, None);
        f.follow("db1", A, true, None);
        assert_eq!(
            asked(&mut f),
            [
                ("db1".into(), Some(A), "first sight".into()),
                ("db1".into(), None, "down".into()),
                ("db1".into(), Some(A), "recovered".into()),
            ]
        );
        // After a reset (a restarted hb-dnsupdate) every host is asked for again.
        f.reset();
        f.follow("db1", A, true, None);
        assert_eq!(asked(&mut f).len(), 1);
    }

    #[test]
    fn nothing_is_asked_without_domains() {
        let mut f = follow(&[]);
        f.follow("web1", A, true, None);
        assert!(!f.is_dynamic("web1"));
        assert!(asked(&mut f).is_empty());
    }
}
