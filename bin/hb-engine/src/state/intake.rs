//! What reaches the engine besides hosts' news: datagrams the receiver refused, datagrams the
//! kernel dropped, and the per-host log lines. Each decides whether something is worth an
//! event, sparingly, so a flood cannot push real events out of the list; `State` records it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// A rejected datagram is an event at most once per source address and reason in this
/// time, so a flood of garbage cannot push real events out of the list.
const REJECTION_EVENT_EVERY_MS: u64 = 60_000;
/// (Source, reason) pairs tracked for that; beyond it, rejections are only counted.
pub(super) const REJECTION_SOURCES: usize = 1024;
/// And at most this many such events a minute from all sources together.
const REJECTION_EVENTS_PER_MINUTE: u32 = 10;

/// Per (source address, reason): when its rejection was last an event, and how many were
/// rejected since.
#[derive(Clone, Copy, Debug)]
struct Tally {
    last_event_ms: u64,
    since: u64,
}

/// What to do about one rejected datagram.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Rejection {
    /// Make this event.
    Event(String),
    /// Counted with its source's next event.
    Held,
    /// Over the budget of sources or of events a minute: only counted.
    Suppressed,
}

#[derive(Debug, Default)]
pub(super) struct Intake {
    rejections: HashMap<(IpAddr, String), Tally>,
    /// Start of the current minute of rejection events, and how many were made in it.
    minute_start_ms: u64,
    events_this_minute: u32,
    /// When the last event about the server's own losses was made, and how many since.
    last_loss_event_ms: Option<u64>,
    lost_since: u64,
}

impl Intake {
    /// (Source, reason) pairs tracked now.
    #[cfg(test)]
    pub(super) fn tracked_sources(&self) -> usize {
        self.rejections.len()
    }

    /// A rejection becomes an event at most once per source address and reason a minute,
    /// and [`REJECTION_EVENTS_PER_MINUTE`] from all sources together.
    pub(super) fn rejected(
        &mut self,
        source: SocketAddr,
        now_ms: u64,
        reason: String,
        detail: &str,
    ) -> Rejection {
        let key = (source.ip(), reason);
        let suppressed = match self.rejections.get_mut(&key) {
            Some(t) if now_ms < t.last_event_ms + REJECTION_EVENT_EVERY_MS => {
                t.since += 1;
                return Rejection::Held;
            }
            Some(t) => t.since,
            None => {
                if self.rejections.len() >= REJECTION_SOURCES {
                    self.rejections
                        .retain(|_, t| now_ms < t.last_event_ms + REJECTION_EVENT_EVERY_MS);
                }
                if self.rejections.len() >= REJECTION_SOURCES {
                    return Rejection::Suppressed;
                }
                0
            }
        };
        if now_ms >= self.minute_start_ms + 60_000 {
            (self.minute_start_ms, self.events_this_minute) = (now_ms, 0);
        }
        if self.events_this_minute >= REJECTION_EVENTS_PER_MINUTE {
            return Rejection::Suppressed;
        }
        self.events_this_minute += 1;
        let detail: String = detail.chars().take(200).collect();
        let more = match suppressed {
            0 => String::new(),
            n => format!(" ({n} more since the last report)"),
        };
        let text = format!(
            "datagram from {source} rejected ({}): {detail}{more}",
            key.1
        );
        let tally = Tally {
            last_event_ms: now_ms,
            since: 0,
        };
        self.rejections.insert(key, tally);
        Rejection::Event(text)
    }

    /// The kernel dropped `count` datagrams, the last before `at_ms`: the event's text, once
    /// a minute at most.
    pub(super) fn lost(&mut self, count: u64, at_ms: u64) -> Option<String> {
        self.lost_since = self.lost_since.saturating_add(count);
        if self
            .last_loss_event_ms
            .is_some_and(|last| at_ms < last + 60_000)
        {
            return None;
        }
        let n = std::mem::take(&mut self.lost_since);
        self.last_loss_event_ms = Some(at_ms);
        Some(format!(
            "the server dropped {n} datagrams (it is behind and its UDP receive buffer was full): no host is shown overdue or reported down until a whole such period has passed without a loss"
        ))
    }
}

/// Per-host log lines (a host is new, overdue, down...) logged per second at most; the
/// rest are counted and summed up in one line. Every event is still stored and shown: a
/// million new hosts, or a fleet gone overdue while the server was behind, were a million
/// log lines, each a write to stderr.
const HOST_LINES_PER_SECOND: u32 = 100;

#[derive(Debug, Default)]
pub(super) struct LogBudget {
    second: u64,
    logged: u32,
    left_out: u64,
}

impl LogBudget {
    /// Whether a line at `now_ms` may be logged; says how many were left out in the last
    /// second that left any out, once, when a new one starts.
    pub(super) fn take(&mut self, now_ms: u64) -> bool {
        let second = now_ms / 1000;
        // Only forward: lines are timed by arrival and by what was heard, which trail each
        // other, and going back and forth would start a fresh budget each time.
        if second > self.second {
            if self.left_out > 0 {
                tracing::info!(
                    left_out = self.left_out,
                    "{} more host events in a second were not logged (over {HOST_LINES_PER_SECOND} a second); the event list and the store have them all.",
                    self.left_out
                );
            }
            *self = LogBudget {
                second,
                ..LogBudget::default()
            };
        }
        if self.logged < HOST_LINES_PER_SECOND {
            self.logged += 1;
            true
        } else {
            self.left_out += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_lines_are_capped_per_second_and_the_rest_counted() {
        let mut b = LogBudget::default();
        let logged = (0..250).filter(|_| b.take(5_000)).count();
        assert_eq!(logged, HOST_LINES_PER_SECOND as usize);
        assert_eq!(b.left_out, 150);
        // A new second starts afresh (and sums up the last one).
        assert!(b.take(6_000));
        assert_eq!((b.logged, b.left_out), (1, 0));
    }
}
