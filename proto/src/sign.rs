//! Signatures: an HMAC-SHA256 trailer on the datagram, and the replay window.
//!
//! A signed datagram is `body || trailer`, the trailer 52 bytes:
//!
//! ```text
//! 0xFF 'H' 'B' 0x01 | ts: u64 big-endian, Unix ms | counter: u64 big-endian | mac: 32 bytes
//! ```
//!
//! `mac = HMAC-SHA256(key, body || first 20 bytes of the trailer)`: the payload, the time and
//! the counter are all covered. 0xFF never occurs in UTF-8, so a text datagram cannot be
//! mistaken for a signed one.

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of the trailer.
pub const TRAILER_LEN: usize = 52;
/// First bytes of the trailer.
pub const MAGIC: [u8; 4] = [0xFF, b'H', b'B', 0x01];
/// Shortest key accepted, in bytes.
pub const MIN_KEY_LEN: usize = 16;

/// The parsed trailer of a signed datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trailer {
    /// Sender's clock when it signed, Unix ms.
    pub ts_ms: u64,
    /// Sender's counter, increasing with every datagram it signs.
    pub counter: u64,
    /// The HMAC.
    pub mac: [u8; 32],
}

type HmacSha256 = Hmac<Sha256>;

fn mac_over(key: &[u8], signed: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(signed);
    mac
}

/// Appends a trailer signing `datagram` (the body) with `key`.
pub fn append(datagram: &mut Vec<u8>, key: &[u8], ts_ms: u64, counter: u64) {
    datagram.extend_from_slice(&MAGIC);
    datagram.extend_from_slice(&ts_ms.to_be_bytes());
    datagram.extend_from_slice(&counter.to_be_bytes());
    let tag = mac_over(key, datagram).finalize().into_bytes();
    datagram.extend_from_slice(&tag);
}

/// A datagram split into its body and, if signed, its trailer and the bytes the MAC covers.
#[derive(Clone, Copy, Debug)]
pub struct Split<'a> {
    /// The message bytes (text or zlib).
    pub body: &'a [u8],
    /// The trailer and the signed bytes, when there is one.
    pub signature: Option<(Trailer, &'a [u8])>,
}

/// Splits off a trailer if the datagram carries one.
pub fn split(datagram: &[u8]) -> Split<'_> {
    let n = datagram.len();
    if n >= TRAILER_LEN && datagram[n - TRAILER_LEN..n - TRAILER_LEN + 4] == MAGIC {
        let t = &datagram[n - TRAILER_LEN..];
        let mut ts = [0u8; 8];
        let mut counter = [0u8; 8];
        let mut mac = [0u8; 32];
        ts.copy_from_slice(&t[4..12]);
        counter.copy_from_slice(&t[12..20]);
        mac.copy_from_slice(&t[20..52]);
        let trailer = Trailer {
            ts_ms: u64::from_be_bytes(ts),
            counter: u64::from_be_bytes(counter),
            mac,
        };
        return Split {
            body: &datagram[..n - TRAILER_LEN],
            signature: Some((trailer, &datagram[..n - 32])),
        };
    }
    Split {
        body: datagram,
        signature: None,
    }
}

/// Whether `a` and `b` are equal, in a time that depends on their lengths only (for
/// comparing secrets: tokens, keys, digests).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// True when `trailer.mac` is the MAC of `signed` under `key` (constant-time compare).
pub fn verify(key: &[u8], signed: &[u8], trailer: &Trailer) -> bool {
    mac_over(key, signed).verify_slice(&trailer.mac).is_ok()
}

/// Why [`ReplayGuard::check`] refused a signed datagram (each is a `datagram::Reject` too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replay {
    /// Signed too far from our clock.
    Stale,
    /// Its counter is not above the last accepted one.
    Repeated,
}

/// Rejects stale and replayed datagrams: the timestamp must be within `window_ms` of now, and
/// the counter above the last one accepted from that host.
#[derive(Debug)]
pub struct ReplayGuard {
    window_ms: u64,
    last: HashMap<String, u64>,
}

impl ReplayGuard {
    /// A guard allowing `window_ms` of clock difference.
    pub fn new(window_ms: u64) -> Self {
        ReplayGuard {
            window_ms,
            last: HashMap::new(),
        }
    }

    /// Checks, and on success records, a verified trailer from `host`.
    pub fn check(&mut self, host: &str, trailer: &Trailer, now_ms: u64) -> Result<(), Replay> {
        if trailer.ts_ms.abs_diff(now_ms) > self.window_ms {
            return Err(Replay::Stale);
        }
        match self.last.get_mut(host) {
            Some(last) if trailer.counter <= *last => Err(Replay::Repeated),
            Some(last) => {
                *last = trailer.counter;
                Ok(())
            }
            None => {
                self.last.insert(host.to_string(), trailer.counter);
                Ok(())
            }
        }
    }

    /// Changes the allowed clock difference; what was accepted stays remembered.
    pub fn set_window(&mut self, window_ms: u64) {
        self.window_ms = window_ms;
    }

    /// Hosts remembered.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    /// True when no host is remembered.
    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123";

    #[test]
    fn sign_split_verify() {
        let mut d = b"{\"ID\":\"HTB\",\"name\":\"a\"}".to_vec();
        append(&mut d, KEY, 1000, 7);
        assert_eq!(d.len(), 23 + TRAILER_LEN);
        let s = split(&d);
        assert_eq!(s.body, b"{\"ID\":\"HTB\",\"name\":\"a\"}");
        let (t, signed) = s.signature.unwrap();
        assert_eq!((t.ts_ms, t.counter), (1000, 7));
        assert!(verify(KEY, signed, &t));
        assert!(!verify(b"another key.......", signed, &t));
        // Any flipped bit anywhere breaks it.
        for i in 0..d.len() {
            let mut bad = d.clone();
            bad[i] ^= 1;
            let s = split(&bad);
            let ok = s
                .signature
                .is_some_and(|(t, signed)| verify(KEY, signed, &t));
            assert!(!ok, "flip at {i} accepted");
        }
    }

    #[test]
    fn unsigned_text_is_not_mistaken_for_signed() {
        let d = vec![b'x'; 200];
        assert!(split(&d).signature.is_none());
    }

    #[test]
    fn replay_guard_rejects_old_and_repeated() {
        let mut g = ReplayGuard::new(60_000);
        let t = |ts, counter| Trailer {
            ts_ms: ts,
            counter,
            mac: [0; 32],
        };
        assert_eq!(g.check("a", &t(100_000, 5), 100_000), Ok(()));
        assert_eq!(g.check("a", &t(100_000, 5), 100_000), Err(Replay::Repeated));
        assert_eq!(g.check("a", &t(100_000, 4), 100_000), Err(Replay::Repeated));
        assert_eq!(g.check("a", &t(100_000, 6), 100_000), Ok(()));
        assert_eq!(g.check("b", &t(100_000, 1), 100_000), Ok(()), "per host");
        assert_eq!(g.check("a", &t(30_000, 9), 100_000), Err(Replay::Stale));
        assert_eq!(g.check("a", &t(170_000, 9), 100_000), Err(Replay::Stale));
    }
}
