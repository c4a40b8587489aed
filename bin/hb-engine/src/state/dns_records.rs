//! The DNS records hosts want: asked of hb-dnsupdate as hosts move, fail over and come
//! back, asked again when it restarts, and its outcomes made events.

use super::*;

impl State {
    /// Asks for `host`'s DNS records as they should be now, if that changed (or always,
    /// with `force`, the reason).
    pub(super) fn follow_dns(&mut self, host: &str, force: Option<&str>) {
        let Some(entry) = self.hosts.get(host) else {
            return;
        };
        let alive = !matches!(
            self.liveness.state(host),
            Some(liveness::State::Down | liveness::State::Shutdown)
        );
        self.dns.follow(host, entry.address.ip(), alive, force);
    }

    /// Every dynamic host's records again (a fresh hb-dnsupdate knows nothing).
    pub fn dns_resync(&mut self) {
        self.dns.reset();
        let hosts: Vec<String> = self
            .sorted_hosts()
            .filter(|h| self.dns.is_dynamic(h))
            .map(str::to_string)
            .collect();
        for host in hosts {
            self.follow_dns(&host, None);
        }
    }

    /// `hbctl dns HOST`.
    pub(super) fn ask_dns(&mut self, host: &str) -> Answer {
        let error = |message: String| Answer::Error { message };
        if !self.dns.enabled() {
            return error("no dynamic DNS: `dyndomains` is not configured".into());
        }
        if !self.hosts.contains_key(host) {
            return error(format!("no host {host:?}"));
        }
        if !self.dns.is_dynamic(host) {
            return error(format!(
                "{host} has no dynamic DNS (set hosts.{host}.dyndns or list it in dyndnshosts)"
            ));
        }
        self.follow_dns(host, Some("asked for"));
        match self.dns.out.last() {
            Some(wish) => Answer::Done {
                message: match wish.address {
                    Some(a) => format!("asked hb-dnsupdate to point {host} at {a}"),
                    None => format!("asked hb-dnsupdate to remove {host}'s records (it is down)"),
                },
            },
            None => error("nothing to ask".into()),
        }
    }

    /// What hb-dnsupdate did with a record: an event of its host, and a counter.
    pub fn dns_outcome(&mut self, host: String, outcome: DnsOutcome, text: String, now_ms: u64) {
        let counter = match outcome {
            DnsOutcome::Updated => "dns_updated",
            DnsOutcome::Failed => "dns_failed",
            DnsOutcome::Refused => "dns_refused",
        };
        self.count(counter);
        // A known host keeps its full name (up to 253 characters) so its events find it; a
        // name the engine never asked about is bounded like any host name.
        let host = if self.hosts.contains_key(&host) {
            host
        } else {
            host.chars().take(253).collect()
        };
        self.event(now_ms, &host, text.chars().take(500).collect());
    }
}
