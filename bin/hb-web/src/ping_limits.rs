//! The limits on pings (checks.rs): how many a source address and a check may send.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hb_child::rate::{RateTable, source_key};

/// A bucket holds this many seconds of its rate (the burst taken at once).
const BURST_SECONDS: f64 = 5.0;
/// Sources and checks with a bucket of their own at most (past it, they share one).
const MAX_BUCKETS: usize = 100_000;

/// The ping limits: a bucket per source address (an IPv6 /64, as the receiver counts) and
/// one per check, in the receiver's bounded tables (hb_child::rate).
pub struct Limiter {
    sources: Mutex<RateTable<IpAddr>>,
    checks: Mutex<RateTable<String>>,
}

impl Default for Limiter {
    fn default() -> Limiter {
        let now = Instant::now();
        Limiter {
            sources: Mutex::new(RateTable::new(MAX_BUCKETS, now)),
            checks: Mutex::new(RateTable::new(MAX_BUCKETS, now)),
        }
    }
}

impl Limiter {
    /// A token from `source`'s bucket and from the check's (`per_address` and `per_check`
    /// pings per second); else the seconds to wait.
    pub fn take(
        &self,
        source: IpAddr,
        uuid: &str,
        (per_address, per_check): (f64, f64),
        now: Instant,
    ) -> Result<(), u64> {
        if per_address <= 0.0 || per_check <= 0.0 {
            return Ok(()); // Not configured yet.
        }
        let wait = |d: Duration| d.as_secs_f64().ceil().max(1.0) as u64;
        self.sources
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take(
                &source_key(source),
                per_address,
                per_address * BURST_SECONDS,
                now,
            )
            .map_err(wait)?;
        self.checks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take(&uuid.to_string(), per_check, per_check * BURST_SECONDS, now)
            .map_err(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ping_takes_from_the_source_and_the_check() {
        // Both buckets: the source's and the check's (five seconds of each rate).
        let l = Limiter::default();
        let (a, b) = (IpAddr::from([192, 0, 2, 1]), IpAddr::from([192, 0, 2, 2]));
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(l.take(a, "u1", (1.0, 100.0), t0).is_ok());
        }
        assert_eq!(l.take(a, "u2", (1.0, 100.0), t0), Err(1), "the source's");
        for _ in 0..5 {
            assert!(l.take(b, "u4", (100.0, 1.0), t0).is_ok());
        }
        assert!(l.take(b, "u4", (100.0, 1.0), t0).is_err(), "the check's");
        assert!(l.take(b, "u5", (100.0, 1.0), t0).is_ok(), "per check");
    }
}
