//! The checks every datagram passes, in order: source rate, decoding limits, drophosts,
//! signature and replay window; and the ACK that answers it. Pure state, no I/O, so it is
//! tested without sockets.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use hb_child::rate::RateTable;
use hb_ipc::config::ReceiverConfig;
use hb_ipc::edge::QueuedCommand;
use hb_proto::datagram::{Limits, Reject, decode_client, encode_text};
use hb_proto::message::{Ack, ClientMessage, Command, Queued, Update, ack_text};
use hb_proto::sign::{self, ReplayGuard};

/// Source addresses tracked for rate limiting before idle ones are forgotten.
const MAX_SOURCES: usize = 100_000;
/// ACKs are small; compressing them would only cost.
const NEVER_COMPRESS: usize = usize::MAX;
/// An ACK to an unsigned datagram is at most this many times its size...
const UNSIGNED_ACK_FACTOR: usize = 3;
/// ...or this many bytes, whichever is more.
const MIN_ACK_ROOM: usize = 128;

/// What became of a datagram.
#[derive(Debug)]
pub enum Outcome {
    /// Passed every check: forward `message` and send `ack` back.
    Accepted {
        /// The host.
        host: String,
        /// Whether a valid signature covered it.
        signed: bool,
        /// The message.
        message: ClientMessage,
        /// The ACK to send to the source.
        ack: Vec<u8>,
    },
    /// From a host in `drophosts`: ignored without an answer.
    Dropped,
    /// Refused.
    Rejected(Reject),
}

/// The receiver's per-datagram state.
#[derive(Debug)]
pub struct Gate {
    config: ReceiverConfig,
    limits: Limits,
    /// Per source (hb_child::rate).
    sources: RateTable<IpAddr>,
    replay: ReplayGuard,
    with_data: HashSet<String>,
    queues: HashMap<String, Vec<Queued>>,
    ack_counter: u64,
    counters: BTreeMap<String, u64>,
}

impl Gate {
    /// A gate for `config`.
    pub fn new(config: ReceiverConfig, now_ms: u64) -> Gate {
        Gate {
            replay: ReplayGuard::new(config.clock_skew_ms),
            config,
            limits: Limits::default(),
            sources: RateTable::new(MAX_SOURCES, Instant::now()),
            with_data: HashSet::new(),
            queues: HashMap::new(),
            // Our own signatures' counter starts at the clock in µs, so it keeps increasing
            // across restarts of the receiver.
            ack_counter: now_ms.saturating_mul(1000),
            counters: BTreeMap::new(),
        }
    }

    /// Applies a new configuration (reload); the rate and replay state carry over.
    pub fn set_config(&mut self, config: ReceiverConfig) {
        self.replay.set_window(config.clock_skew_ms);
        self.config = config;
    }

    /// Replaces the whole table: hosts with plugin data, and queued commands.
    pub fn set_table(
        &mut self,
        with_data: Vec<String>,
        queues: BTreeMap<String, Vec<QueuedCommand>>,
    ) {
        self.with_data = with_data.into_iter().collect();
        self.queues.clear();
        for (host, queue) in queues {
            self.set_queue(host, queue);
        }
    }

    /// Replaces what waits for `host`; it rides in every ACK to the host until the engine
    /// has the result.
    pub fn set_queue(&mut self, host: String, queue: Vec<QueuedCommand>) {
        if queue.is_empty() {
            self.queues.remove(&host);
            return;
        }
        let queue = queue
            .into_iter()
            .map(|c| match c.command {
                Some(command) => Queued::Command(Command { id: c.id, command }),
                None => Queued::Update(Update { id: c.id }),
            })
            .collect();
        self.queues.insert(host, queue);
    }

    /// The engine dropped `host`: no data, no queue.
    pub fn forget(&mut self, host: &str) {
        self.with_data.remove(host);
        self.queues.remove(host);
    }

    /// The engine now has plugin data for `host`.
    pub fn has_data(&mut self, host: String) {
        self.with_data.insert(host);
    }

    /// Counters by name.
    pub fn counters(&self) -> &BTreeMap<String, u64> {
        &self.counters
    }

    /// Records one receive call that returned `n` datagrams.
    pub fn count_batch(&mut self, n: usize) {
        self.count("receive_calls");
        if n > 1 {
            hb_ipc::add_to_counter(&mut self.counters, "batched_datagrams", n as u64);
        }
    }

    /// Adds one to counter `name`.
    pub fn count(&mut self, name: &str) {
        hb_ipc::add_to_counter(&mut self.counters, name, 1);
    }

    /// Runs every check on one datagram.
    pub fn handle(
        &mut self,
        datagram: &[u8],
        source: SocketAddr,
        now: Instant,
        now_ms: u64,
    ) -> Outcome {
        self.count("datagrams");
        let outcome = self.check(datagram, source, now, now_ms);
        match &outcome {
            Outcome::Accepted { signed, .. } => {
                self.count("accepted");
                if *signed {
                    self.count("accepted_signed");
                }
            }
            Outcome::Dropped => self.count("dropped_host"),
            Outcome::Rejected(r) => {
                self.count("rejected");
                self.count(&format!("rejected_{}", r.reason()));
            }
        }
        outcome
    }

    fn check(&mut self, datagram: &[u8], source: SocketAddr, now: Instant, now_ms: u64) -> Outcome {
        if !self.take_token(source.ip(), now) {
            return Outcome::Rejected(Reject::RateLimited);
        }
        let decoded = match decode_client(datagram, &self.limits) {
            Ok(d) => d,
            Err(e) => return Outcome::Rejected(e),
        };
        let header = decoded.message.header();
        let host = header.name.clone();
        if self.config.drophosts.contains(&host) {
            return Outcome::Dropped;
        }
        let key = self.key_for(&host).map(|k| k.as_bytes().to_vec());
        let signed = match (decoded.signature, &key) {
            (Some((trailer, covered)), Some(key)) => {
                if !sign::verify(key, covered, &trailer) {
                    return Outcome::Rejected(Reject::BadSignature);
                }
                if let Err(e) = self.replay.check(&host, &trailer, now_ms) {
                    return Outcome::Rejected(e.into());
                }
                true
            }
            // Signed, but we hold no key for the host: nothing to verify against, so it
            // counts as unsigned.
            (Some(_), None) | (None, _) => {
                if !self.accepts_unsigned(&host) {
                    return Outcome::Rejected(Reject::Unsigned);
                }
                false
            }
        };
        let queue = self.queues.get(&host).cloned().unwrap_or_default();
        let mut ack = Ack {
            name: host.clone(),
            ts: header.ts,
            seq: header.seq,
            request_update: matches!(decoded.message, ClientMessage::Heartbeat(_))
                && !self.with_data.contains(&host),
            queue: Vec::new(),
        };
        let ack = if signed {
            // Signed only in answer to a signed request: otherwise anyone could have the
            // server sign datagrams of their choosing for a keyed host.
            ack.queue = queue;
            let key = key.as_deref().unwrap_or_default();
            self.ack_counter = (self.ack_counter + 1).max(now_ms.saturating_mul(1000));
            encode_text(
                ack_text(&ack),
                NEVER_COMPRESS,
                Some((key, now_ms, self.ack_counter)),
            )
        } else {
            // The source of an unsigned datagram may be spoofed: never answer it with more
            // than a few times what it sent, so the server is no amplifier.
            let limit = (datagram.len() * UNSIGNED_ACK_FACTOR).max(MIN_ACK_ROOM);
            let mut bytes = encode_text(ack_text(&ack), NEVER_COMPRESS, None);
            for queued in queue {
                ack.queue.push(queued);
                let bigger = encode_text(ack_text(&ack), NEVER_COMPRESS, None);
                if bigger.len() > limit {
                    break;
                }
                bytes = bigger;
            }
            bytes
        };
        Outcome::Accepted {
            host,
            signed,
            message: decoded.message,
            ack,
        }
    }

    fn key_for(&self, host: &str) -> Option<&String> {
        self.config
            .keys
            .get(host)
            .or(self.config.shared_key.as_ref())
    }

    fn accepts_unsigned(&self, host: &str) -> bool {
        self.config
            .accept_unsigned_hosts
            .get(host)
            .copied()
            .or(self.config.accept_unsigned)
            .unwrap_or_else(|| self.key_for(host).is_none())
    }

    /// Token bucket per source: an IPv4 address, or an IPv6 /64 (one host can use a whole
    /// /64 without spoofing), in a bounded table that fails closed when full.
    fn take_token(&mut self, ip: IpAddr, now: Instant) -> bool {
        let (rate, burst) = (self.config.source_rate, self.config.source_burst);
        let shared = self.sources.overflowed;
        let taken = self
            .sources
            .take(&hb_child::rate::source_key(ip), rate, burst, now)
            .is_ok();
        if self.sources.overflowed > shared {
            self.count("rate_table_full");
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_proto::datagram::{decode_server, encode};
    use hb_proto::message::ServerMessage;
    use std::time::Duration;

    const NOW: u64 = 1_795_300_000_000;
    const KEY: &str = "host-key-0123456789";

    fn src() -> SocketAddr {
        "192.0.2.1:5000".parse().unwrap()
    }

    fn config() -> ReceiverConfig {
        let mut c = ReceiverConfig::default();
        c.keys.insert("signed1".into(), KEY.into());
        c.drophosts.push("gone".into());
        c
    }

    fn signed(name: &str, ts: u64, counter: u64) -> Vec<u8> {
        let json = serde_json::json!({"ID": "HTB", "name": name, "ts": ts, "seq": counter});
        encode(&json, usize::MAX, Some((KEY.as_bytes(), ts, counter)))
    }

    fn reason(o: &Outcome) -> &'static str {
        match o {
            Outcome::Rejected(r) => r.reason(),
            Outcome::Accepted { .. } => "accepted",
            Outcome::Dropped => "dropped",
        }
    }

    #[test]
    fn ack_echoes_and_asks_for_data_until_the_engine_has_it() {
        let mut g = Gate::new(config(), NOW);
        let now = Instant::now();
        let d = br#"{"ID":"HTB","name":"web1","ts":123,"seq":9}"#;
        let Outcome::Accepted { ack, signed, .. } = g.handle(d, src(), now, NOW) else {
            panic!()
        };
        assert!(!signed);
        let ServerMessage::Ack(ack) = decode_server(&ack, &Limits::default()).unwrap().message
        else {
            panic!()
        };
        assert_eq!(
            (ack.ts, ack.seq, ack.request_update),
            (Some(123), Some(9), true)
        );
        g.has_data("web1".into());
        let Outcome::Accepted { ack, .. } = g.handle(d, src(), now, NOW) else {
            panic!()
        };
        let ServerMessage::Ack(ack) = decode_server(&ack, &Limits::default()).unwrap().message
        else {
            panic!()
        };
        assert!(!ack.request_update);
    }

    #[test]
    fn signatures_replays_and_stale_times() {
        let mut g = Gate::new(config(), NOW);
        let now = Instant::now();
        let first = signed("signed1", NOW, 1);
        let Outcome::Accepted {
            signed: true, ack, ..
        } = g.handle(&first, src(), now, NOW)
        else {
            panic!()
        };
        // The ACK to a keyed host is signed with its key.
        let d = decode_server(&ack, &Limits::default()).unwrap();
        let (t, covered) = d.signature.expect("signed ack");
        assert!(sign::verify(KEY.as_bytes(), covered, &t));
        assert_eq!(reason(&g.handle(&first, src(), now, NOW)), "replay");
        let mut tampered = signed("signed1", NOW, 2);
        // Change the message (seq 2 -> 3) and, separately, the trailer's counter.
        let at = tampered.windows(7).position(|w| w == b"\"seq\":2").unwrap() + 6;
        tampered[at] = b'3';
        assert_eq!(
            reason(&g.handle(&tampered, src(), now, NOW)),
            "bad_signature"
        );
        let mut tampered = signed("signed1", NOW, 2);
        let n = tampered.len();
        tampered[n - 33] ^= 1;
        assert_eq!(
            reason(&g.handle(&tampered, src(), now, NOW)),
            "bad_signature"
        );
        assert_eq!(
            reason(&g.handle(&signed("signed1", NOW - 600_000, 3), src(), now, NOW)),
            "stale"
        );
        assert_eq!(
            reason(&g.handle(br#"{"ID":"HTB","name":"signed1"}"#, src(), now, NOW)),
            "unsigned"
        );
        assert_eq!(
            reason(&g.handle(&signed("signed1", NOW, 4), src(), now, NOW)),
            "accepted"
        );
        assert_eq!(g.counters()["rejected_replay"], 1);
        assert_eq!(g.counters()["accepted_signed"], 2);
    }

    #[test]
    fn unsigned_policy_follows_config() {
        let mut c = config();
        c.shared_key = Some("shared-key-0123456789".into());
        c.accept_unsigned_hosts.insert("legacy".into(), true);
        let mut g = Gate::new(c, NOW);
        let now = Instant::now();
        // The shared key applies to every host, so unsigned is refused by default...
        assert_eq!(
            reason(&g.handle(br#"{"ID":"HTB","name":"any"}"#, src(), now, NOW)),
            "unsigned"
        );
        // ...except where the config says otherwise.
        assert_eq!(
            reason(&g.handle(br#"{"ID":"HTB","name":"legacy"}"#, src(), now, NOW)),
            "accepted"
        );
        assert_eq!(
            reason(&g.handle(br#"{"ID":"HTB","name":"gone"}"#, src(), now, NOW)),
            "dropped"
        );
    }

    #[test]
    fn ipv6_sources_share_a_bucket_per_64() {
        let mut c = config();
        c.source_rate = 1.0;
        c.source_burst = 2.0;
        let mut g = Gate::new(c, NOW);
        let t0 = Instant::now();
        let d = br#"{"ID":"HTB","name":"web1"}"#;
        let a: SocketAddr = "[2001:db8::1]:1".parse().unwrap();
        let b: SocketAddr = "[2001:db8::ffff:2]:1".parse().unwrap();
        let other: SocketAddr = "[2001:db8:0:1::1]:1".parse().unwrap();
        assert_eq!(reason(&g.handle(d, a, t0, NOW)), "accepted");
        assert_eq!(reason(&g.handle(d, b, t0, NOW)), "accepted");
        assert_eq!(reason(&g.handle(d, a, t0, NOW)), "rate_limited", "same /64");
        assert_eq!(
            reason(&g.handle(d, other, t0, NOW)),
            "accepted",
            "another /64"
        );
    }

    #[test]
    fn unsigned_acks_are_no_amplifier_and_unsigned() {
        let mut c = config();
        c.shared_key = Some("shared-key-0123456789".into());
        c.accept_unsigned = Some(true);
        let mut g = Gate::new(c, NOW);
        let queue: Vec<QueuedCommand> = (0..16)
            .map(|id| QueuedCommand {
                id,
                command: Some("a-rather-long-command-name".into()),
            })
            .collect();
        g.set_queue("web1".into(), queue);
        let d = br#"{"ID":"HTB","name":"web1"}"#;
        let Outcome::Accepted { ack, .. } = g.handle(d, src(), Instant::now(), NOW) else {
            panic!()
        };
        assert!(
            ack.len() <= MIN_ACK_ROOM.max(d.len() * UNSIGNED_ACK_FACTOR),
            "{} bytes",
            ack.len()
        );
        let decoded = decode_server(&ack, &Limits::default()).unwrap();
        assert!(
            decoded.signature.is_none(),
            "signed an answer to an unsigned datagram"
        );
        let ServerMessage::Ack(ack) = decoded.message else {
            panic!()
        };
        assert!(ack.queue.len() < 16);
        // Signed requests get the whole queue, signed.
        let signed = encode(
            &serde_json::json!({"ID":"HTB","name":"web1","seq":1}),
            usize::MAX,
            Some((b"shared-key-0123456789", NOW, 1)),
        );
        let Outcome::Accepted { ack, .. } = g.handle(&signed, src(), Instant::now(), NOW) else {
            panic!()
        };
        let decoded = decode_server(&ack, &Limits::default()).unwrap();
        assert!(decoded.signature.is_some());
        let ServerMessage::Ack(ack) = decoded.message else {
            panic!()
        };
        assert_eq!(ack.queue.len(), 16);
    }

    #[test]
    fn rate_limit_is_per_source_and_refills() {
        let mut c = config();
        c.source_rate = 10.0;
        c.source_burst = 5.0;
        let mut g = Gate::new(c, NOW);
        let t0 = Instant::now();
        let d = br#"{"ID":"HTB","name":"web1"}"#;
        let results: Vec<_> = (0..8)
            .map(|_| reason(&g.handle(d, src(), t0, NOW)))
            .collect();
        assert_eq!(results.iter().filter(|r| **r == "accepted").count(), 5);
        assert_eq!(results[7], "rate_limited");
        // Another source is not affected.
        assert_eq!(
            reason(&g.handle(d, "192.0.2.2:1".parse().unwrap(), t0, NOW)),
            "accepted"
        );
        // 200 ms later two tokens are back.
        let t1 = t0 + Duration::from_millis(200);
        assert_eq!(reason(&g.handle(d, src(), t1, NOW)), "accepted");
        assert_eq!(reason(&g.handle(d, src(), t1, NOW)), "accepted");
        assert_eq!(reason(&g.handle(d, src(), t1, NOW)), "rate_limited");
    }
}
