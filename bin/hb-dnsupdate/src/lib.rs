//! hb-dnsupdate's parts that stand alone: the names it may touch, the nsupdate script for a
//! change, and the queue that keeps only the newest wish per name. Pure; `main.rs` runs
//! nsupdate.
//!
//! Every name is checked before it reaches a script (the protocol's host name rules, lower
//! case, 253 characters with the domain), so no datagram can carry a newline, a space or a
//! `;` into nsupdate.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
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

/// Wishes waiting, one per name: a newer wish replaces an older one, so a host changing its
/// address 200 times in a second costs a handful of updates, the last with the newest address.
#[derive(Debug, Default)]
pub struct Queue {
    wishes: BTreeMap<String, Wish>,
}

impl Queue {
    /// Wants `name` to become `wish`; replaces what was waiting for it.
    pub fn want(&mut self, name: String, wish: Wish) {
        self.wishes.insert(name, wish);
    }

    /// The next name to update and its newest wish.
    pub fn take_next(&mut self) -> Option<(String, Wish)> {
        self.wishes.pop_first()
    }

    /// How many names wait.
    pub fn len(&self) -> usize {
        self.wishes.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.wishes.is_empty()
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
            record_name("a-b_c.x", "example.net.").unwrap(),
            "a-b_c.x.example.net."
        );
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

    #[test]
    fn the_queue_keeps_only_the_newest_wish_per_name() {
        let mut q = Queue::default();
        for i in 0..200u32 {
            let addr = IpAddr::from([127, 0, (i / 256) as u8, (i % 256) as u8]);
            q.want("web1.dyn.example.net.".into(), Wish::Address(addr));
        }
        q.want("db1.dyn.example.net.".into(), Wish::Absent);
        assert_eq!(q.len(), 2);
        assert_eq!(
            q.take_next(),
            Some(("db1.dyn.example.net.".into(), Wish::Absent))
        );
        assert_eq!(
            q.take_next(),
            Some((
                "web1.dyn.example.net.".into(),
                Wish::Address("127.0.0.199".parse().unwrap())
            ))
        );
        assert!(q.is_empty());
    }
}
