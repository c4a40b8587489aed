//! Who is up: per-host deadlines and the up -> overdue -> down state machine (DESIGN.md, Host
//! state). Pure: the caller passes the time, so tests drive it with any clock.
//!
//! - overdue at `last_seen + interval + grace` (shown at once, notifies nobody),
//! - down at `last_seen + max_missed * interval + grace` (one lost datagram pages nobody with
//!   the default `max_missed: 2`),
//! - never down before [`RECOVERY_QUIET_MS`] of silence, so outages under 4 s neither alert
//!   nor recover (this only matters for intervals of a second or two),
//! - recovered when a heartbeat returns after down,
//! - a host that said it shuts down is not reported down,
//! - after a restart of the server, a host resumes from its stored last-seen time, but is not
//!   reported down before the start-up grace ends ([`Liveness::resume`]).
//!
//! Deadlines live in an ordered map keyed by due time, so a tick costs in proportion to the
//! deadlines that fall due, not to the number of hosts. A host has one live entry, and a
//! heartbeat usually touches none: it only moves the host's last-seen time, and when the
//! entry comes due it is set again from there if the host was heard from since (a host
//! heartbeating many times per deadline cost an insertion each, and as many stale entries).
//! An entry is replaced only when the new deadline is earlier (a shorter interval); the
//! generation tells the live entry from a replaced one, or one left by a host removed and
//! added again, which lapse when they come due.
//!
//! Deadlines are judged at what has been heard ([`Heard`]), not at the wall clock: while the
//! server is behind, a heartbeat waiting in a queue is not late. And when the server itself
//! lost datagrams (the kernel dropped them, its socket's buffer full), a host is overdue or
//! down only after a whole such period without a loss, one period more at most: its missing
//! heartbeat may be among those lost ([`Liveness::server_lost`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// No host is down before this much silence: shorter outages neither alert nor recover.
pub const RECOVERY_QUIET_MS: u64 = 4_000;

/// How long a host may be silent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Expected interval, ms.
    pub interval_ms: u64,
    /// Slack, ms.
    pub grace_ms: u64,
    /// Missed heartbeats before down (at least 1).
    pub max_missed: u32,
}

impl Timing {
    fn overdue_after(&self) -> u64 {
        self.interval_ms + self.grace_ms
    }

    /// Silence after which the host is down.
    pub fn down_after(&self) -> u64 {
        (u64::from(self.max_missed.max(1)) * self.interval_ms + self.grace_ms)
            .max(RECOVERY_QUIET_MS)
    }
}

/// The most the time deadlines are judged at trails the wall clock: a pipeline stalled
/// longer (a receiver that hangs) must not hide a fleet's silence for ever.
pub const MAX_LAG_MS: u64 = 30_000;

/// How far the engine has heard: the arrival time of the newest datagram it has processed,
/// or the last time the receiver found its socket empty, whichever is later.
///
/// Deadlines are judged at this time rather than at the wall clock. A server that falls
/// behind (datagrams waiting in the socket's buffer and the queues to the engine) would
/// otherwise find hosts overdue and down whose heartbeats it holds, unread; each of those is
/// an event, a store write and a notification, which puts it further behind (a million hosts
/// offered 80,000/s collapsed to 37,000/s taken). Judged at what was heard, a host is late
/// only if nothing of it arrived in time; a host that really stopped is still found as soon
/// as the backlog before its deadline is read.
#[derive(Clone, Copy, Debug, Default)]
pub struct Heard {
    up_to: u64,
}

impl Heard {
    /// Something that arrived at `at` (Unix ms) has been processed, or the receiver found
    /// nothing waiting that arrived before `at`.
    pub fn advance(&mut self, at: u64) {
        self.up_to = self.up_to.max(at);
    }

    /// The time to judge deadlines at when the wall clock reads `now`: never ahead of it,
    /// and never more than [`MAX_LAG_MS`] behind.
    pub fn clock(&self, now_ms: u64) -> u64 {
        self.up_to
            .min(now_ms)
            .max(now_ms.saturating_sub(MAX_LAG_MS))
    }

    /// How far behind the wall clock deadlines are judged, ms.
    pub fn lag(&self, now_ms: u64) -> u64 {
        now_ms - self.clock(now_ms)
    }
}

/// A host's liveness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Heartbeats arrive in time.
    Up,
    /// One is late.
    Overdue,
    /// `max_missed` in a row are missing.
    Down,
    /// It said it shuts down and has been silent since.
    Shutdown,
}

impl std::str::FromStr for State {
    type Err = String;

    fn from_str(s: &str) -> Result<State, String> {
        Ok(match s {
            "up" => State::Up,
            "overdue" => State::Overdue,
            "down" => State::Down,
            "shutdown" => State::Shutdown,
            other => return Err(format!("unknown host state {other:?}")),
        })
    }
}

impl State {
    /// Lower-case name for the API.
    pub fn name(self) -> &'static str {
        match self {
            State::Up => "up",
            State::Overdue => "overdue",
            State::Down => "down",
            State::Shutdown => "shutdown",
        }
    }
}

/// A state change worth an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Late, not yet down.
    Overdue,
    /// Down.
    Down,
    /// Back after being down; `silent_ms` is how long nothing came.
    Recovered {
        /// Length of the silence, ms.
        silent_ms: u64,
    },
}

#[derive(Debug)]
struct Tracked {
    last_seen: u64,
    state: State,
    /// When it entered `state`.
    since: u64,
    timing: Timing,
    /// The generation of the host's live entry in `due`; any other entry is stale.
    generation: u64,
    /// When the live entry is due; 0 when there is none.
    scheduled: u64,
    /// Not down before this (the start-up grace after a restart); 0 once it heartbeats.
    hold_until: u64,
    /// Fed by pings over HTTP (a check), not datagrams: the server's UDP losses say nothing
    /// of it.
    pinged: bool,
}

/// Every host's liveness and the deadlines.
#[derive(Debug, Default)]
pub struct Liveness {
    /// A host's name is allocated once, here, and shared by its deadlines: at 100,000 hosts
    /// and more, the copies were a tenth of the engine's memory.
    hosts: HashMap<Arc<str>, Tracked>,
    /// (due ms, generation it was set for) -> host.
    due: BTreeMap<(u64, u64), Arc<str>>,
    sequence: u64,
    /// When the server last lost datagrams of its own doing, Unix ms.
    lost_at: u64,
}

impl Liveness {
    /// A heartbeat from `host` at `now`; returns a recovery if it was down.
    pub fn heartbeat(&mut self, host: &str, now_ms: u64, timing: Timing) -> Option<Change> {
        let (key, tracked) = self.tracked(
            host,
            Tracked {
                last_seen: now_ms,
                state: State::Up,
                since: now_ms,
                timing,
                generation: 0,
                scheduled: 0,
                hold_until: 0,
                pinged: false,
            },
        );
        let silent_ms = now_ms.saturating_sub(tracked.last_seen);
        let change = match tracked.state {
            State::Down => Some(Change::Recovered { silent_ms }),
            _ => None,
        };
        if tracked.state != State::Up {
            tracked.since = now_ms;
        }
        tracked.last_seen = now_ms;
        tracked.state = State::Up;
        tracked.timing = timing;
        tracked.hold_until = 0;
        // An entry due before the new deadline is set again from here when it comes due.
        let overdue_at = now_ms.saturating_add(timing.overdue_after());
        if tracked.scheduled == 0 || tracked.scheduled > overdue_at {
            self.schedule(overdue_at, key);
        }
        change
    }

    /// The host's entry, made from `new` if it has none, with its shared name. Looked up
    /// first: a name is allocated only for a new host, not per heartbeat.
    fn tracked(&mut self, host: &str, new: Tracked) -> (Arc<str>, &mut Tracked) {
        let key = self
            .hosts
            .get_key_value(host)
            .map_or_else(|| Arc::from(host), |(key, _)| Arc::clone(key));
        let tracked = self.hosts.entry(Arc::clone(&key)).or_insert(new);
        (key, tracked)
    }

    /// `host` said it shuts down: its silence from now on is expected. A host that was down
    /// has evidently come back: that is a recovery.
    pub fn shutdown(&mut self, host: &str, now_ms: u64, timing: Timing) -> Option<Change> {
        let (_, t) = self.tracked(
            host,
            Tracked {
                last_seen: now_ms,
                state: State::Shutdown,
                since: now_ms,
                timing,
                generation: 0,
                scheduled: 0,
                hold_until: 0,
                pinged: false,
            },
        );
        let change = (t.state == State::Down).then(|| Change::Recovered {
            silent_ms: now_ms.saturating_sub(t.last_seen),
        });
        // Its entry, if any, finds it shut down and lapses.
        t.state = State::Shutdown;
        t.since = now_ms;
        t.last_seen = now_ms;
        change
    }

    /// `host` reported a failure: down at once (true), unless it already is.
    pub fn fail(&mut self, host: &str, now_ms: u64) -> bool {
        let Some(t) = self.hosts.get_mut(host) else {
            return false;
        };
        if t.state == State::Down {
            return false;
        }
        // Its entry, if any, finds it down and lapses.
        t.state = State::Down;
        t.since = now_ms;
        true
    }

    /// Generations come from one counter, so a deadline left by a host that was removed can
    /// never match the same name added again.
    fn next_generation(&mut self) -> u64 {
        self.sequence += 1;
        self.sequence
    }

    /// Takes a host back after a restart of the engine, as it was stored: its deadlines run
    /// from `last_seen`, but it is not down before `hold_until` (the start-up grace), so hosts
    /// whose heartbeats fell into the downtime do not all page at once.
    pub fn resume(
        &mut self,
        host: &str,
        last_seen: u64,
        (state, since): (State, u64),
        timing: Timing,
        hold_until: u64,
    ) {
        let key: Arc<str> = Arc::from(host);
        self.hosts.insert(
            Arc::clone(&key),
            Tracked {
                last_seen,
                state,
                since,
                timing,
                generation: 0,
                scheduled: 0,
                hold_until,
                pinged: false,
            },
        );
        match state {
            State::Up => {
                let overdue_at = last_seen.saturating_add(timing.overdue_after());
                self.schedule(overdue_at, key);
            }
            State::Overdue => {
                let down_at = last_seen
                    .saturating_add(timing.down_after())
                    .max(hold_until);
                self.schedule(down_at, key);
            }
            State::Down | State::Shutdown => {}
        }
    }

    /// Forgets a host (its stale deadlines are skipped when they come due).
    pub fn remove(&mut self, host: &str) {
        self.hosts.remove(host);
    }

    /// The host's state.
    pub fn state(&self, host: &str) -> Option<State> {
        self.hosts.get(host).map(|t| t.state)
    }

    /// The host's state and since when, Unix ms.
    pub fn state_since(&self, host: &str) -> Option<(State, u64)> {
        self.hosts.get(host).map(|t| (t.state, t.since))
    }

    /// The server lost datagrams at `at` (the kernel dropped them for want of buffer space):
    /// no host is down before a whole down period (`max_missed * interval + grace`) has
    /// passed since without a heartbeat from it, since what it sent may be among them, nor
    /// overdue before a whole overdue period (`interval + grace`). Paging a fleet for the
    /// server's own overload is worse than paging late, and a fleet shown late by the tens
    /// of thousands is both wrong and costly (a state change is a store write and a web
    /// change each, which put the server further behind). But never later than twice the
    /// period after its last heartbeat, so losses that go on (a server overloaded for good,
    /// or a flood of junk at the port) cannot hide a dead host.
    pub fn server_lost(&mut self, at: u64) {
        self.lost_at = self.lost_at.max(at);
    }

    /// `host` is a check, fed by pings over HTTP: the server's UDP losses never hold it.
    pub fn fed_by_pings(&mut self, host: &str) {
        if let Some(t) = self.hosts.get_mut(host) {
            t.pinged = true;
        }
    }

    /// Deadlines waiting (for tests and counters).
    pub fn pending(&self) -> usize {
        self.due.len()
    }

    /// Applies every deadline due by `now`, in order.
    pub fn tick(&mut self, now_ms: u64) -> Vec<(String, Change)> {
        let mut changes = Vec::new();
        while let Some(entry) = self.due.first_entry() {
            if entry.key().0 > now_ms {
                break;
            }
            let ((_, generation), host) = entry.remove_entry();
            let Some(t) = self.hosts.get_mut(&host) else {
                continue;
            };
            if t.generation != generation {
                continue; // Replaced by an earlier deadline, or the host was added anew.
            }
            t.scheduled = 0;
            let lost_at = if t.pinged { 0 } else { self.lost_at };
            // A whole period of silence, and one without the server's losses, or two.
            let after = |period: u64| {
                t.last_seen.saturating_add(period).max(
                    lost_at
                        .saturating_add(period)
                        .min(t.last_seen.saturating_add(period.saturating_mul(2))),
                )
            };
            let overdue_at = after(t.timing.overdue_after());
            let down_at = after(t.timing.down_after()).max(t.hold_until);
            match t.state {
                // Heard from since the entry was set, or held for the server's losses: due
                // again then.
                State::Up if overdue_at > now_ms => self.schedule(overdue_at, host),
                State::Up if down_at <= now_ms => {
                    t.state = State::Down;
                    t.since = now_ms;
                    changes.push((host.to_string(), Change::Down));
                }
                State::Overdue if down_at > now_ms => {
                    // Its down deadline moved (a reload changed the timing): wait for it.
                    self.schedule(down_at, host);
                }
                State::Up => {
                    t.state = State::Overdue;
                    t.since = now_ms;
                    changes.push((host.to_string(), Change::Overdue));
                    self.schedule(down_at, host);
                }
                State::Overdue => {
                    t.state = State::Down;
                    t.since = now_ms;
                    changes.push((host.to_string(), Change::Down));
                }
                State::Down | State::Shutdown => {}
            }
        }
        changes
    }

    /// Makes `due` the host's live entry (any other it has becomes stale).
    fn schedule(&mut self, due: u64, host: Arc<str>) {
        let generation = self.next_generation();
        if let Some(t) = self.hosts.get_mut(&host) {
            t.generation = generation;
            t.scheduled = due;
        }
        self.due.insert((due, generation), host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1000;

    fn timing(interval: u64, grace: u64, max_missed: u32) -> Timing {
        Timing {
            interval_ms: interval * S,
            grace_ms: grace * S,
            max_missed,
        }
    }

    /// Ticks every 100 ms from `from` to `to` and returns (time, change) pairs.
    fn run(l: &mut Liveness, from: u64, to: u64) -> Vec<(u64, Change)> {
        let mut out = Vec::new();
        let mut now = from;
        while now <= to {
            out.extend(l.tick(now).into_iter().map(|(_, c)| (now, c)));
            now += 100;
        }
        out
    }

    #[test]
    fn no_host_is_late_until_a_whole_period_passes_after_the_server_lost_datagrams() {
        let t = timing(10, 2, 2); // overdue at 12 s, down at 22 s
        let mut l = Liveness::default();
        l.heartbeat("a", 0, t);
        l.heartbeat("b", 0, t);
        // A check, pinged over HTTP: UDP losses say nothing of it.
        l.heartbeat("check", 0, t);
        l.fed_by_pings("check");
        l.server_lost(15_000);
        let check = run(&mut l, 0, 22_000);
        assert_eq!(
            check,
            [(12_000, Change::Overdue), (22_000, Change::Down)],
            "the check is timed as ever"
        );
        let mut changes = run(&mut l, 22_100, 36_900);
        // Overdue at 24 s, not 12: a whole overdue period after the loss (27 s), but twice
        // the period at most. Not down: b's heartbeat of 20 s may be among those lost.
        assert_eq!(
            changes,
            [(24_000, Change::Overdue), (24_000, Change::Overdue)]
        );
        l.heartbeat("b", 30_000, t);
        changes = run(&mut l, 37_000, 60_000);
        // a: silent for a whole down period after the loss; b heard from meanwhile, and
        // timed from then on as usual.
        assert_eq!(
            changes,
            [
                (37_000, Change::Down),
                (42_000, Change::Overdue),
                (52_000, Change::Down)
            ]
        );
        // Losses go on: a silent host is held one period more, no longer.
        let mut l = Liveness::default();
        l.heartbeat("c", 0, t);
        for at in (5_000..=60_000).step_by(5_000) {
            l.server_lost(at);
        }
        let changes = run(&mut l, 0, 70_000);
        assert_eq!(changes, [(24_000, Change::Overdue), (44_000, Change::Down)]);
    }

    #[test]
    fn overdue_and_down_at_exactly_the_documented_times() {
        for (interval, grace, max_missed) in [
            (10, 2, 2),
            (10, 0, 1),
            (1, 2, 2),
            (60, 5, 3),
            (5, 1, 1),
            (1, 0, 2),
            (2, 0, 1),
        ] {
            let t = timing(interval, grace, max_missed);
            let mut l = Liveness::default();
            l.heartbeat("h", 0, t);
            let changes = run(&mut l, 0, 400 * S);
            let overdue = (interval + grace) * S;
            // Never down before 4 s of silence.
            let down = ((u64::from(max_missed) * interval + grace) * S).max(4 * S);
            let expected = if down == overdue {
                vec![(down, Change::Down)]
            } else {
                vec![(overdue, Change::Overdue), (down, Change::Down)]
            };
            assert_eq!(
                changes, expected,
                "interval {interval} grace {grace} max_missed {max_missed}"
            );
            assert_eq!(l.state("h"), Some(State::Down));
        }
    }

    #[test]
    fn deadlines_are_judged_at_what_was_heard_within_the_lag_bound() {
        let mut heard = Heard::default();
        // Nothing heard yet (a fresh engine): the bound.
        assert_eq!(heard.clock(100_000), 100_000 - MAX_LAG_MS);
        heard.advance(95_000);
        assert_eq!(heard.clock(100_000), 95_000);
        assert_eq!(heard.lag(100_000), 5_000);
        // Never backwards, never ahead of the wall clock.
        heard.advance(90_000);
        assert_eq!(heard.clock(100_000), 95_000);
        heard.advance(200_000);
        assert_eq!(heard.clock(100_000), 100_000);
        assert_eq!(heard.lag(100_000), 0);
        // A pipeline stalled past the bound: the wall clock, less the bound.
        let stalled = Heard { up_to: 1_000 };
        assert_eq!(stalled.clock(1_000 + MAX_LAG_MS + 5), 1_005);
    }

    #[test]
    fn a_host_beating_often_holds_one_deadline_timed_from_its_last_beat() {
        let t = timing(1, 2, 2);
        let mut l = Liveness::default();
        // Ten heartbeats a second for 10 s: one deadline, not one per heartbeat.
        let mut changes = Vec::new();
        for n in 0..100u64 {
            l.heartbeat("h", n * 100, t);
            changes.extend(l.tick(n * 100));
            assert_eq!(l.pending(), 1, "after heartbeat {n}");
        }
        assert!(changes.is_empty(), "{changes:?}");
        // Silent from 9.9 s: overdue at 9.9 + 3, down at 9.9 + 4.
        assert_eq!(
            run(&mut l, 10_000, 20_000),
            [(12_900, Change::Overdue), (13_900, Change::Down)]
        );
        // A shorter interval takes effect at once, not after the old deadline.
        let mut l = Liveness::default();
        l.heartbeat("h", 0, timing(60, 0, 2));
        l.heartbeat("h", 1_000, timing(1, 0, 2));
        assert_eq!(run(&mut l, 1_000, 10_000)[0], (2_000, Change::Overdue));
    }

    #[test]
    fn heartbeats_in_time_keep_a_host_up() {
        let t = timing(10, 2, 2);
        let mut l = Liveness::default();
        for beat in 0..100 {
            l.heartbeat("h", beat * 10 * S + (beat % 3) * 500, t);
            assert!(l.tick(beat * 10 * S + 5 * S).is_empty());
        }
        assert_eq!(l.state("h"), Some(State::Up));
        assert!(l.pending() <= 2, "stale deadlines pile up: {}", l.pending());
    }

    #[test]
    fn one_lost_heartbeat_is_overdue_not_down() {
        let t = timing(10, 2, 2);
        let mut l = Liveness::default();
        l.heartbeat("h", 0, t);
        assert_eq!(run(&mut l, 0, 15 * S), vec![(12 * S, Change::Overdue)]);
        assert_eq!(
            l.heartbeat("h", 20 * S, t),
            None,
            "back from overdue is no event"
        );
        assert_eq!(l.state("h"), Some(State::Up));
        assert!(run(&mut l, 15 * S, 31 * S).is_empty());
    }

    #[test]
    fn recovery_after_down_and_quiet_short_outages() {
        let t = timing(10, 2, 2);
        let mut l = Liveness::default();
        l.heartbeat("h", 0, t);
        run(&mut l, 0, 22 * S);
        assert_eq!(
            l.heartbeat("h", 30 * S, t),
            Some(Change::Recovered { silent_ms: 30 * S })
        );
        // With a 1 s interval the host is late after 1 s, but an outage under 4 s is neither
        // down nor a recovery ...
        let fast = timing(1, 0, 1);
        let mut l = Liveness::default();
        l.heartbeat("f", 100 * S, fast);
        assert_eq!(
            run(&mut l, 100 * S, 103 * S + 900),
            vec![(101 * S, Change::Overdue)]
        );
        assert_eq!(l.heartbeat("f", 103 * S + 900, fast), None);
        assert_eq!(l.state("f"), Some(State::Up));
        // ... and one of 4 s or more is both.
        assert_eq!(
            run(&mut l, 104 * S, 108 * S),
            vec![
                (104 * S + 900, Change::Overdue),
                (107 * S + 900, Change::Down)
            ]
        );
        assert_eq!(
            l.heartbeat("f", 108 * S, fast),
            Some(Change::Recovered {
                silent_ms: 4 * S + 100
            })
        );
    }

    #[test]
    fn shutdown_then_silence_is_not_down() {
        let t = timing(10, 2, 2);
        let mut l = Liveness::default();
        l.heartbeat("h", 0, t);
        assert_eq!(l.shutdown("h", 5 * S, t), None);
        assert!(run(&mut l, 0, 100 * S).is_empty());
        assert_eq!(l.state("h"), Some(State::Shutdown));
        assert_eq!(
            l.heartbeat("h", 200 * S, t),
            None,
            "coming back after a shutdown is no recovery"
        );
    }

    #[test]
    fn a_tick_costs_what_falls_due() {
        let t = timing(10, 2, 2);
        let mut l = Liveness::default();
        for i in 0..100_000u64 {
            l.heartbeat(&format!("h{i}"), i % 10_000, t);
        }
        // Nothing due yet: the tick looks at one entry.
        assert!(l.tick(11_000).is_empty());
        assert_eq!(l.pending(), 100_000);
        let due = l.tick(12_000 + 99);
        assert_eq!(
            due.len(),
            1000,
            "hosts seen in the first 100 ms are overdue"
        );
    }

    #[test]
    fn resumed_hosts_wait_for_the_startup_grace() {
        let t = timing(10, 2, 2);
        let mut l = Liveness::default();
        // The server was down from 0 to 100 s; hosts were last seen at 0, 95 and 99.5 s.
        let start = 100 * S;
        let hold = start + 22 * S;
        l.resume("old", 0, (State::Up, 0), t, hold);
        l.resume("recent", 95 * S, (State::Up, 0), t, hold);
        l.resume("gone", 0, (State::Down, 50 * S), t, hold);
        l.resume("off", 0, (State::Shutdown, 0), t, hold);
        // "old" is shown overdue at once; "recent" becomes overdue on its own schedule.
        assert_eq!(l.tick(start), vec![("old".to_string(), Change::Overdue)]);
        // "recent" heartbeats within the grace: never down.
        assert_eq!(l.heartbeat("recent", 115 * S, t), None);
        let changes: Vec<_> = (1000..=1250)
            .flat_map(|tenth| l.tick(tenth * 100))
            .collect();
        // "old" stays silent: reported down once, when the grace ends; "gone" stays down
        // without a new report and recovers when it returns.
        assert_eq!(changes, vec![("old".to_string(), Change::Down)]);
        assert_eq!(l.state_since("old"), Some((State::Down, hold)));
        assert_eq!(l.state("gone"), Some(State::Down));
        assert_eq!(l.state("off"), Some(State::Shutdown));
        assert_eq!(
            l.heartbeat("gone", 130 * S, t),
            Some(Change::Recovered { silent_ms: 130 * S })
        );
    }

    #[test]
    fn a_dropped_host_is_forgotten_and_starts_afresh() {
        let t = timing(10, 2, 2);
        let mut l = Liveness::default();
        l.heartbeat("h", 0, t);
        l.remove("h");
        assert!(run(&mut l, 0, 11 * S).is_empty());
        assert_eq!(l.state("h"), None);
        // Back under the same name: the old deadlines do not apply to it.
        l.heartbeat("h", 10 * S, t);
        assert_eq!(
            run(&mut l, 11 * S, 40 * S),
            vec![(22 * S, Change::Overdue), (32 * S, Change::Down)]
        );
    }

    #[test]
    fn a_down_host_that_says_it_shuts_down_has_recovered() {
        let t = timing(10, 2, 2);
        let mut l = Liveness::default();
        l.heartbeat("h", 0, t);
        run(&mut l, 0, 30 * S);
        assert_eq!(
            l.shutdown("h", 40 * S, t),
            Some(Change::Recovered { silent_ms: 40 * S })
        );
        assert_eq!(l.state("h"), Some(State::Shutdown));
        // A shutdown notice from a host not seen before is tracked too.
        assert_eq!(l.shutdown("new", 40 * S, t), None);
        assert_eq!(l.state("new"), Some(State::Shutdown));
    }
}
