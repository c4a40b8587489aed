//! hb-dnsupdate's parts that stand alone: the names it may touch, the nsupdate script for a
//! change, and the queue that keeps only the newest wish per name. Pure; `main.rs` runs
//! nsupdate.
//!
//! Every name is checked before it reaches a script (the protocol's host name rules, lower
//! case, 253 characters with the domain), so no datagram can carry a newline, a space or a
//! `;` into nsupdate.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// Why a name is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} cannot be a DNS name: {why}")]
pub struct BadName {
    /// What was asked (cut to 80 characters).
    pub name: String,
    /// Why not.
    pub why: String,
}

/// The record's name, `<host>.<domain>.`: both pass the protocol's host name check (DNS
/// label rules), the host is lower case (as every name is once received), and the whole
/// fits in 253 characters.
pub fn record_name(host: &str, domain: &str) -> Result<String, BadName> {
    let refuse = |why: String| BadName {
        name: host.chars().take(80).collect(),
        why,
    };
    let domain = domain.trim_end_matches('.');
    for part in [host, domain] {
        hb_proto::names::check_host_name(part).map_err(|_| {
            refuse(format!(
                "{:?} breaks DNS label rules",
                part.chars().take(80).collect::<String>()
            ))
        })?;
    }
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(refuse("host names are lower case".into()));
    }
    // Host names may hold `_` (hbd allowed it), but nsupdate and BIND refuse it in the owner
    // of an address record (check-names); refused here once instead of retried forever.
    if host.contains('_') || domain.contains('_') {
        return Err(refuse(
            "an address record's name holds only letters, digits, `-` and dots, not `_`".into(),
        ));
    }
    let name = format!("{host}.{domain}.");
    if name.len() > 254 {
        return Err(refuse("longer than 253 characters with the domain".into()));
    }
    Ok(name)
}

/// What the record of a name should be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wish {
    /// Point it at this address (A for IPv4, AAAA for IPv6).
    Address(IpAddr),
    /// Remove it (the host is down, with `dns_failover`).
    Absent,
}

/// Where and how updates go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Server to send updates to, if not the zone's primary (`server` line).
    pub server: Option<(String, u16)>,
    /// The zone (`zone` line), if given.
    pub zone: Option<String>,
    /// TTL of the records, seconds.
    pub ttl: u32,
}

/// The nsupdate script for `name` (checked by [`record_name`]): both address records go, and
/// the wished one comes back, in one update.
pub fn script(target: &Target, name: &str, wish: &Wish) -> String {
    let mut s = String::new();
    if let Some((server, port)) = &target.server {
        s.push_str(&format!("server {server} {port}\n"));
    }
    if let Some(zone) = &target.zone {
        s.push_str(&format!("zone {zone}\n"));
    }
    s.push_str(&format!(
        "update delete {name} A\nupdate delete {name} AAAA\n"
    ));
    match wish {
        Wish::Address(IpAddr::V4(a)) => {
            s.push_str(&format!("update add {name} {} A {a}\n", target.ttl));
        }
        Wish::Address(IpAddr::V6(a)) => {
            s.push_str(&format!("update add {name} {} AAAA {a}\n", target.ttl));
        }
        Wish::Absent => {}
    }
    s.push_str("send\n");
    s
}

/// Longest wait between tries of a failing update.
pub const BACKOFF_MAX_MS: u64 = 300_000;

/// The wait after the `failures`th failure in a row: 1 s, 2 s, 4 s, ... 5 min.
pub fn backoff_ms(failures: u32) -> u64 {
    1000u64
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(BACKOFF_MAX_MS)
}

/// Least time between the starts of two updates of one name. The first change of a name goes
/// out at once; what follows within this time waits and only its newest wish is sent, so a
/// host bouncing between addresses costs about one update a second, not one per heartbeat.
pub const MIN_GAP_MS: u64 = 1000;

/// One name's newest wish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// The host it belongs to, for the report.
    pub host: String,
    /// What the record should become.
    pub wish: Wish,
    /// Why, for the report.
    pub why: String,
    /// Not to be tried before this time (ms, the caller's clock), after failures.
    pub not_before: u64,
    /// Failures in a row for this name.
    pub failures: u32,
}

/// Wishes waiting, one per name: a newer wish replaces an older one, and a name is started at
/// most once per [`MIN_GAP_MS`], so a host changing its address 200 times in a second costs a
/// handful of updates, the last with the newest address. A name being updated is never taken
/// again until its run ends; a failed one waits out its backoff, which a newer wish inherits
/// (a broken server is not hammered).
#[derive(Debug, Default)]
pub struct Queue {
    wishes: BTreeMap<String, Pending>,
    running: BTreeSet<String>,
    /// When names were last started, kept for [`MIN_GAP_MS`].
    started: BTreeMap<String, u64>,
}

impl Queue {
    /// Wants `name` (of `host`) to become `wish`; replaces what was waiting for it.
    pub fn want(&mut self, name: String, host: String, wish: Wish, why: String) {
        let (not_before, failures) = self
            .wishes
            .get(&name)
            .map_or((0, 0), |p| (p.not_before, p.failures));
        let gap_over = self
            .started
            .get(&name)
            .map_or(0, |t| t.saturating_add(MIN_GAP_MS));
        let not_before = not_before.max(gap_over);
        self.wishes.insert(
            name,
            Pending {
                host,
                wish,
                why,
                not_before,
                failures,
            },
        );
    }

    /// The next name to update (not running, its backoff over) and its newest wish; it counts
    /// as running until [`Queue::finished`].
    pub fn take_ready(&mut self, now: u64) -> Option<(String, Pending)> {
        self.started
            .retain(|_, at| at.saturating_add(MIN_GAP_MS) > now);
        let name = self
            .wishes
            .iter()
            .find(|(name, p)| p.not_before <= now && !self.running.contains(*name))
            .map(|(name, _)| name.clone())?;
        let pending = self.wishes.remove(&name)?;
        self.running.insert(name.clone());
        self.started.insert(name.clone(), now);
        Some((name, pending))
    }

    /// The run of `name` with `pending` ended; a failure puts it back (unless a newer wish
    /// came meanwhile) to be tried after its backoff. Returns that wait, if any.
    pub fn finished(&mut self, name: &str, pending: Pending, ok: bool, now: u64) -> Option<u64> {
        self.running.remove(name);
        if ok {
            return None;
        }
        let failures = pending.failures.saturating_add(1);
        let wait = backoff_ms(failures);
        let not_before = now.saturating_add(wait);
        match self.wishes.get_mut(name) {
            Some(newer) => {
                newer.failures = failures;
                newer.not_before = not_before;
            }
            None => {
                self.wishes.insert(
                    name.to_string(),
                    Pending {
                        not_before,
                        failures,
                        ..pending
                    },
                );
            }
        }
        Some(wait)
    }

    /// Tries everything waiting now (a new configuration may have fixed what failed).
    pub fn retry_now(&mut self) {
        for p in self.wishes.values_mut() {
            p.not_before = 0;
            p.failures = 0;
        }
    }

    /// When the earliest waiting name not running may be tried.
    pub fn next_due(&self) -> Option<u64> {
        self.wishes
            .iter()
            .filter(|(name, _)| !self.running.contains(*name))
            .map(|(_, p)| p.not_before)
            .min()
    }

    /// How many names wait (running ones not counted).
    pub fn len(&self) -> usize {
        self.wishes.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.wishes.is_empty()
    }

    /// How many run.
    pub fn running(&self) -> usize {
        self.running.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_never_reach_a_script() {
        assert_eq!(
            record_name("web1", "dyn.example.net").unwrap(),
            "web1.dyn.example.net."
        );
        assert_eq!(
            record_name("a-b.c9.x", "example.net.").unwrap(),
            "a-b.c9.x.example.net."
        );
        assert!(record_name("a_b", "example.net").is_err());
        assert!(record_name("ab", "_dyn.example.net").is_err());
        for host in [
            "web1\nupdate add evil.example.net 60 A 6.6.6.6",
            "web1 evil",
            "web1;evil",
            "../etc",
            "web1.",
            "",
            "-web",
            "web1..x",
            "web-.x",
            "WEB1",
            &"a".repeat(64),
            &"a.".repeat(130),
            "web1\u{0}",
            "wéb1",
        ] {
            let e = record_name(host, "dyn.example.net");
            assert!(e.is_err(), "{host:?} accepted");
            assert!(e.unwrap_err().name.chars().count() <= 80);
        }
        assert!(record_name("web1", "bad domain").is_err());
    }

    #[test]
    fn scripts_replace_both_address_records_in_one_update() {
        let target = Target {
            server: Some(("127.0.0.1".into(), 5353)),
            zone: Some("dyn.example.net".into()),
            ttl: 60,
        };
        let name = record_name("web1", "dyn.example.net").unwrap();
        assert_eq!(
            script(&target, &name, &Wish::Address("127.0.0.2".parse().unwrap())),
            "server 127.0.0.1 5353\nzone dyn.example.net\n\
             update delete web1.dyn.example.net. A\nupdate delete web1.dyn.example.net. AAAA\n\
             update add web1.dyn.example.net. 60 A 127.0.0.2\nsend\n"
        );
        let v6 = script(
            &target,
            &name,
            &Wish::Address("2001:db8::1".parse().unwrap()),
        );
        assert!(v6.contains("update add web1.dyn.example.net. 60 AAAA 2001:db8::1\n"));
        let gone = script(&target, &name, &Wish::Absent);
        assert!(!gone.contains("update add"));
        assert!(gone.ends_with("update delete web1.dyn.example.net. AAAA\nsend\n"));
    }

    fn addr(i: u32) -> Wish {
        Wish::Address(IpAddr::from([127, 0, (i / 256) as u8, (i % 256) as u8]))
    }

    #[test]
    fn the_queue_keeps_only_the_newest_wish_per_name() {
        let mut q = Queue::default();
        let web = "web1.dyn.example.net.".to_string();
        for i in 0..200u32 {
            q.want(web.clone(), "web1".into(), addr(i), "moved".into());
        }
        q.want(
            "db1.dyn.example.net.".into(),
            "db1".into(),
            Wish::Absent,
            "down".into(),
        );
        assert_eq!(q.len(), 2);
        let (name, p) = q.take_ready(0).unwrap();
        assert_eq!(
            (name.as_str(), &p.wish),
            ("db1.dyn.example.net.", &Wish::Absent)
        );
        assert_eq!(q.finished(&name, p, true, 0), None);
        let (name, p) = q.take_ready(0).unwrap();
        assert_eq!((&name, &p.wish), (&web, &addr(199)));
        // While it runs, newer wishes wait and the name is not taken twice.
        q.want(web.clone(), "web1".into(), addr(200), "moved".into());
        q.want(web.clone(), "web1".into(), addr(201), "moved".into());
        assert_eq!(q.take_ready(0), None);
        assert_eq!(q.finished(&name, p, true, 0), None);
        // The next start of the name waits for the gap.
        assert_eq!(q.next_due(), Some(MIN_GAP_MS));
        assert_eq!(q.take_ready(MIN_GAP_MS - 1), None);
        let (_, p) = q.take_ready(MIN_GAP_MS).unwrap();
        assert_eq!(p.wish, addr(201));
        assert!(q.is_empty());
    }

    #[test]
    fn a_burst_of_moves_costs_a_handful_of_updates_ending_at_the_newest() {
        // 200 moves 5 ms apart (one second), each update taking 30 ms, checked every 5 ms.
        let mut q = Queue::default();
        let name = "mover.dyn.example.net.".to_string();
        let mut run: Option<(Pending, u64)> = None;
        let mut sent = Vec::new();
        for step in 0..1000u64 {
            let now = step * 5;
            if step < 200 {
                q.want(
                    name.clone(),
                    "mover".into(),
                    addr(step as u32),
                    "moved".into(),
                );
            }
            if let Some((p, ends)) = run.take() {
                if now >= ends {
                    q.finished(&name, p, true, now);
                } else {
                    run = Some((p, ends));
                }
            }
            if run.is_none()
                && let Some((_, p)) = q.take_ready(now)
            {
                sent.push(p.wish.clone());
                run = Some((p, now + 30));
            }
        }
        assert!((2..=3).contains(&sent.len()), "{} updates", sent.len());
        assert_eq!(sent.first(), Some(&addr(0)));
        assert_eq!(sent.last(), Some(&addr(199)));
    }

    #[test]
    fn failures_back_off_and_a_newer_wish_inherits_the_wait() {
        assert_eq!(
            (1..=11).map(backoff_ms).collect::<Vec<_>>(),
            [
                1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, 300000, 300000
            ]
        );
        assert_eq!(backoff_ms(u32::MAX), BACKOFF_MAX_MS);
        let mut q = Queue::default();
        let name = "web1.dyn.example.net.".to_string();
        q.want(name.clone(), "web1".into(), addr(1), "first sight".into());
        let (_, p) = q.take_ready(0).unwrap();
        assert_eq!(q.finished(&name, p, false, 10_000), Some(1000));
        assert_eq!(q.next_due(), Some(11_000));
        assert_eq!(q.take_ready(10_999), None);
        let (_, p) = q.take_ready(11_000).unwrap();
        assert_eq!(p.failures, 1);
        // A newer wish arrives during the second run, which fails too: the newer one waits
        // 2 s and keeps the count.
        q.want(name.clone(), "web1".into(), addr(2), "moved".into());
        assert_eq!(q.finished(&name, p, false, 12_000), Some(2000));
        assert_eq!(q.take_ready(13_999), None);
        let (_, p) = q.take_ready(14_000).unwrap();
        assert_eq!((p.wish.clone(), p.failures), (addr(2), 2));
        assert_eq!(q.finished(&name, p, true, 15_000), None);
        assert!(q.is_empty() && q.next_due().is_none());
        // A new configuration retries at once.
        q.want(name.clone(), "web1".into(), addr(3), "moved".into());
        let (_, p) = q.take_ready(20_000).unwrap();
        q.finished(&name, p, false, 20_000);
        q.retry_now();
        assert_eq!(q.take_ready(20_000).map(|(_, p)| p.failures), Some(0));
    }
}
