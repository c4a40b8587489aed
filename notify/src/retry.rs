//! When to try a delivery again: exponential backoff from 1 s to 60 s on failures that may
//! pass (timeouts, refused connections, 5xx, 408, 429), the server's `Retry-After` when it
//! gives one, and a final failure once the channel's `retry_for` has passed. A refusal that
//! will not pass (other 4xx: a wrong token, a bad request) fails at once.

use std::time::Duration;

/// How one attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// Delivered.
    Delivered,
    /// Failed, may pass: try again (after `after` if the server said so).
    Transient {
        /// Why (never a secret).
        error: String,
        /// The server's `Retry-After`.
        after: Option<Duration>,
    },
    /// Failed for good.
    Permanent {
        /// Why (never a secret).
        error: String,
    },
}

impl Attempt {
    /// Classifies an HTTP status.
    pub fn from_status(status: u16, retry_after: Option<Duration>) -> Attempt {
        match status {
            200..=299 => Attempt::Delivered,
            408 | 429 | 500..=599 => Attempt::Transient {
                error: format!("HTTP {status}"),
                after: retry_after,
            },
            _ => Attempt::Permanent {
                error: format!("HTTP {status}"),
            },
        }
    }
}

/// What to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Done: delivered.
    Delivered,
    /// Wait this long, then try again.
    Wait(Duration),
    /// Failed for good, with the last error.
    GiveUp(String),
}

/// Longest wait between attempts (a `Retry-After` may ask for longer, within `retry_for`).
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The wait after the `attempt`-th failure (1-based): 1, 2, 4, ... 60 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.saturating_sub(1).min(6)).min(MAX_BACKOFF)
}

/// Decides after attempt number `attempt` ended as `outcome`, `elapsed` since the first
/// attempt, with `retry_for` to go at most.
pub fn next(attempt: u32, outcome: Attempt, elapsed: Duration, retry_for: Duration) -> Next {
    match outcome {
        Attempt::Delivered => Next::Delivered,
        Attempt::Permanent { error } => Next::GiveUp(error),
        Attempt::Transient { error, after } => {
            let wait = after.unwrap_or_else(|| backoff(attempt));
            if elapsed.saturating_add(wait) > retry_for {
                Next::GiveUp(format!("{error}; gave up after {} s", elapsed.as_secs()))
            } else {
                Next::Wait(wait)
            }
        }
    }
}

/// Parses `Retry-After` given in seconds (the HTTP-date form is treated as absent).
pub fn retry_after(value: &str) -> Option<Duration> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s.min(86_400)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn transient(after: Option<Duration>) -> Attempt {
        Attempt::Transient {
            error: "HTTP 500".into(),
            after,
        }
    }

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let waits: Vec<u64> = (1..=9).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn statuses_are_classified() {
        assert_eq!(Attempt::from_status(204, None), Attempt::Delivered);
        for s in [408, 429, 500, 502, 503] {
            assert!(
                matches!(Attempt::from_status(s, None), Attempt::Transient { .. }),
                "{s}"
            );
        }
        for s in [400, 401, 403, 404, 410] {
            assert!(
                matches!(Attempt::from_status(s, None), Attempt::Permanent { .. }),
                "{s}"
            );
        }
    }

    #[test]
    fn retry_after_is_honoured_within_the_bound() {
        let retry_for = 900 * S;
        assert_eq!(next(1, transient(None), S, retry_for), Next::Wait(S));
        assert_eq!(next(3, transient(None), S, retry_for), Next::Wait(4 * S));
        assert_eq!(
            next(1, transient(Some(7 * S)), S, retry_for),
            Next::Wait(7 * S)
        );
        // Past the bound: a final failure that says why.
        assert_eq!(
            next(5, transient(None), 890 * S, retry_for),
            Next::GiveUp("HTTP 500; gave up after 890 s".into())
        );
        assert_eq!(
            next(1, transient(Some(3600 * S)), S, retry_for),
            Next::GiveUp("HTTP 500; gave up after 1 s".into())
        );
        assert_eq!(
            next(
                1,
                Attempt::Permanent {
                    error: "HTTP 401".into()
                },
                S,
                retry_for
            ),
            Next::GiveUp("HTTP 401".into())
        );
        assert_eq!(retry_after(" 120 "), Some(120 * S));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
