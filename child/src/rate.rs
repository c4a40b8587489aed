//! Token buckets per key (a source address, a check), in a bounded table: the receiver's
//! per-source limit and hb-web's ping limits. When the table is full, keys not in it share
//! one bucket, so a flood from many keys is limited too (fail closed); idle entries (full
//! again) are swept at most once a second, so the sweep cannot be made to run per request.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn take(&mut self, rate: f64, burst: f64, now: Instant) -> Result<(), Duration> {
        let refill = now.saturating_duration_since(self.last).as_secs_f64() * rate;
        self.tokens = (self.tokens + refill).min(burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / rate.max(1e-9),
            ))
        }
    }
}

/// Buckets by key, at most `max` of them.
#[derive(Debug)]
pub struct RateTable<K> {
    buckets: HashMap<K, Bucket>,
    /// Shared by keys that do not fit in `buckets`.
    overflow: Bucket,
    last_sweep: Option<Instant>,
    max: usize,
    /// Tokens asked of the shared bucket (the table was full).
    pub overflowed: u64,
}

impl<K: Hash + Eq + Clone> RateTable<K> {
    /// An empty table of at most `max` keys.
    pub fn new(max: usize, now: Instant) -> RateTable<K> {
        RateTable {
            buckets: HashMap::new(),
            overflow: Bucket {
                tokens: 0.0,
                last: now,
            },
            last_sweep: None,
            max,
            overflowed: 0,
        }
    }

    /// Takes a token for `key` (`rate` per second, `burst` at once): `Ok`, or how long
    /// until there is one.
    pub fn take(&mut self, key: &K, rate: f64, burst: f64, now: Instant) -> Result<(), Duration> {
        if self.buckets.len() >= self.max && !self.buckets.contains_key(key) {
            if self
                .last_sweep
                .is_none_or(|t| now.saturating_duration_since(t).as_secs() >= 1)
            {
                self.last_sweep = Some(now);
                self.buckets.retain(|_, b| {
                    b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate < burst
                });
            }
            if self.buckets.len() >= self.max {
                self.overflowed += 1;
                return self.overflow.take(rate, burst, now);
            }
        }
        self.buckets
            .entry(key.clone())
            .or_insert(Bucket {
                tokens: burst,
                last: now,
            })
            .take(rate, burst, now)
    }

    /// Keys with a bucket of their own.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no key has one.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

/// The key of a source address: an IPv4 address, or an IPv6 /64 (one host can use a whole
/// /64 without spoofing).
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::from(octets)
        }
        v4 @ IpAddr::V4(_) => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_and_a_full_table_fails_closed() {
        let t0 = Instant::now();
        let mut t = RateTable::new(2, t0);
        for _ in 0..3 {
            assert!(t.take(&"a", 1.0, 3.0, t0).is_ok());
        }
        assert_eq!(t.take(&"a", 1.0, 3.0, t0), Err(Duration::from_secs(1)));
        assert!(
            t.take(&"a", 1.0, 3.0, t0 + Duration::from_secs(1)).is_ok(),
            "refilled"
        );
        assert!(t.take(&"b", 1.0, 3.0, t0).is_ok(), "per key");
        // Full, and nobody idle: a third key shares the (empty) overflow bucket.
        assert!(t.take(&"c", 1.0, 3.0, t0).is_err());
        assert_eq!(t.overflowed, 1);
        // Idle long enough, the others are swept and "c" gets its own.
        assert!(t.take(&"c", 1.0, 3.0, t0 + Duration::from_secs(10)).is_ok());
        assert_eq!(t.len(), 1);
        assert_eq!(
            source_key("2001:db8:1:2:aaaa::1".parse().unwrap()),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            source_key("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
    }
}
