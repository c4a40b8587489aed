//! Storm control: many hosts down at once is more likely the monitor's own network than
//! many failures, and is one page, not hundreds. Pure; the caller passes the time.
//!
//! The first down in a quiet time is notified at once (a single failure pages without
//! delay). Downs within `window` of it are held while the storm is decided; when the window
//! has passed, either enough hosts went down (the larger of `min_hosts` and `fraction` of the
//! watched fleet) and one summary goes out instead of their pages, or they are released and
//! notified one by one (up to `window` late). A declared storm absorbs further downs until
//! `window` passes without one. Members' recoveries are not paged one by one either: one
//! notice says when all of them are back. The first host, paged on its own, recovers on its
//! own too.

use std::collections::BTreeSet;

/// When downs make a storm.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StormLimits {
    /// Whether storms are detected.
    pub enabled: bool,
    /// Share of the watched hosts that must go down within the window.
    pub fraction: f64,
    /// And at least this many.
    pub min_hosts: usize,
    /// The window, ms.
    pub window_ms: u64,
}

impl Default for StormLimits {
    fn default() -> Self {
        StormLimits {
            enabled: true,
            fraction: 0.1,
            min_hosts: 5,
            window_ms: 10_000,
        }
    }
}

#[derive(Debug)]
struct Gathering {
    started: u64,
    last: u64,
    first: String,
    /// The first host came back before the decision.
    first_back: bool,
    held: Vec<String>,
    declared: bool,
}

/// What the window's end decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// A storm: one summary for these hosts (the first was paged already).
    Declared {
        /// Every host down in it, the first first (if it is still down).
        hosts: Vec<String>,
        /// How many went down (the first included, even if it is back).
        count: usize,
    },
    /// No storm: these held hosts are notified one by one now.
    Released {
        /// The hosts.
        hosts: Vec<String>,
    },
    /// A declared storm had no new down for a window.
    Over {
        /// Hosts it took in.
        total: usize,
    },
}

/// Storm state.
#[derive(Debug, Default)]
pub struct Storms {
    gathering: Option<Gathering>,
    /// Hosts of declared storms not yet back.
    members: BTreeSet<String>,
    /// How many hosts the storms since the last "all back" took in.
    total: usize,
    /// The limits.
    pub limits: StormLimits,
}

impl Storms {
    /// A watched, reachable host went down at `now`: false if its page is held (for the
    /// decision, or because a storm is on).
    pub fn down(&mut self, host: &str, now_ms: u64) -> bool {
        if !self.limits.enabled {
            return true;
        }
        let window = self.limits.window_ms;
        match &mut self.gathering {
            Some(g) if g.declared && now_ms <= g.last.saturating_add(window) => {
                g.last = now_ms;
                if self.members.insert(host.to_string()) {
                    self.total += 1;
                }
                false
            }
            Some(g) if !g.declared => {
                g.last = now_ms;
                g.held.push(host.to_string());
                false
            }
            _ => {
                self.gathering = Some(Gathering {
                    started: now_ms,
                    last: now_ms,
                    first: host.to_string(),
                    first_back: false,
                    held: Vec::new(),
                    declared: false,
                });
                true
            }
        }
    }

    /// Whether `host`'s down alert is held by a storm (undecided or declared).
    pub fn holds(&self, host: &str) -> bool {
        self.members.contains(host)
            || self
                .gathering
                .as_ref()
                .is_some_and(|g| !g.declared && g.held.iter().any(|h| h == host))
    }

    /// Whether anything is going on (so the caller can skip counting the fleet).
    pub fn gathering(&self) -> bool {
        self.gathering.is_some()
    }

    /// Time passes; `fleet`: watched hosts. Decides a window that has ended.
    pub fn tick(&mut self, now_ms: u64, fleet: usize) -> Option<Decision> {
        let window = self.limits.window_ms;
        let g = self.gathering.as_mut()?;
        if g.declared {
            if now_ms > g.last.saturating_add(window) {
                self.gathering = None;
                return Some(Decision::Over { total: self.total });
            }
            return None;
        }
        if g.held.is_empty() && g.first_back {
            self.gathering = None;
            return None;
        }
        if now_ms < g.started.saturating_add(window) {
            return None;
        }
        let needed = self
            .limits
            .min_hosts
            .max((self.limits.fraction * fleet as f64).ceil() as usize);
        let count = g.held.len() + 1;
        if count >= needed.max(2) {
            g.declared = true;
            let mut hosts = Vec::new();
            if !g.first_back {
                hosts.push(g.first.clone());
            }
            // The first was paged on its own and recovers on its own: not a member.
            self.members.extend(g.held.iter().cloned());
            self.total += g.held.len();
            hosts.append(&mut g.held);
            Some(Decision::Declared { hosts, count })
        } else {
            let hosts = std::mem::take(&mut g.held);
            self.gathering = None;
            if hosts.is_empty() {
                None
            } else {
                Some(Decision::Released { hosts })
            }
        }
    }

    /// `host` is back (or dropped): whether it was a storm member, and if it was the last
    /// one, how many the storms took in.
    pub fn back(&mut self, host: &str) -> (bool, Option<usize>) {
        if let Some(g) = self.gathering.as_mut()
            && !g.declared
        {
            g.held.retain(|h| h != host);
            if g.first == host {
                g.first_back = true;
            }
        }
        if !self.members.remove(host) {
            return (false, None);
        }
        if self.members.is_empty() {
            return (true, Some(std::mem::take(&mut self.total)));
        }
        (true, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1000;

    #[test]
    fn a_lone_failure_pages_at_once_and_a_few_are_released() {
        let mut s = Storms::default();
        assert!(s.down("a", 0));
        assert!(!s.down("b", 3 * S), "held for the decision");
        assert!(s.holds("b"));
        assert_eq!(s.tick(9 * S, 100), None);
        assert_eq!(
            s.tick(10 * S, 100),
            Some(Decision::Released {
                hosts: vec!["b".into()]
            })
        );
        assert!(!s.holds("b"));
        assert!(s.down("c", 60 * S), "quiet again");
    }

    #[test]
    fn many_downs_in_the_window_are_one_storm_until_all_are_back() {
        let mut s = Storms::default();
        assert!(s.down("h0", 0));
        for i in 1..200 {
            assert!(!s.down(&format!("h{i}"), i * 50));
        }
        let Some(Decision::Declared { hosts, count }) = s.tick(10 * S, 500) else {
            panic!("no storm")
        };
        assert_eq!((hosts.len(), count), (200, 200));
        assert!(
            !s.holds("h0"),
            "the first was paged and recovers on its own"
        );
        // More downs while it lasts are absorbed, each counted once.
        assert!(!s.down("late", 15 * S));
        assert!(!s.down("late", 16 * S));
        assert_eq!(s.tick(20 * S, 500), None);
        assert_eq!(s.tick(26 * S + 1, 500), Some(Decision::Over { total: 200 }));
        assert_eq!(s.back("h0"), (false, None));
        for i in 1..200 {
            assert_eq!(s.back(&format!("h{i}")), (true, None));
        }
        assert_eq!(s.back("late"), (true, Some(200)));
        assert_eq!(s.back("late"), (false, None));
    }

    #[test]
    fn hosts_back_within_the_window_still_get_their_all_back_notice() {
        let mut s = Storms::default();
        s.down("h0", 0);
        for i in 1..10 {
            s.down(&format!("h{i}"), i * 100);
        }
        // The first returns before the decision: not in the summary, not a member.
        s.back("h0");
        let Some(Decision::Declared { hosts, count }) = s.tick(10 * S, 20) else {
            panic!("no storm")
        };
        assert_eq!((hosts.len(), count), (9, 10));
        assert!(!s.holds("h0"));
        // The rest return while the storm is still declared (a short blip).
        let mut all_back = None;
        for i in 1..10 {
            all_back = s.back(&format!("h{i}")).1.or(all_back);
        }
        assert_eq!(all_back, Some(9));
        assert_eq!(s.tick(30 * S, 20), Some(Decision::Over { total: 0 }));
    }
}
