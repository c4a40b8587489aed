//! The life of an alert (docs/ALERTING.md): when it notifies, reminds, escalates quietly or
//! loudly, recovers, and when it is held back. Pure: the caller passes observations and the
//! time and gets back what to do ([`Action`]).
//!
//! - A new alert waits `grace` before it notifies; one that recovers within it sends
//!   neither alert nor recovery.
//! - Escalation (a more severe level) notifies at once if the alert was notified;
//!   de-escalation (CRITICAL -> WARNING) is silent. Either resets the reminder timer and
//!   clears an acknowledgement.
//! - A notified alert reminds every `renotify` until it is acknowledged or ends.
//! - An alert that may not notify now (host not watched, silenced, behind a down parent,
//!   flapping, part of a storm) is kept and shown; it notifies when that ends if it is still
//!   active. A recovery always goes to whoever got the alert.

use std::collections::{BTreeMap, VecDeque};

use hb_rules::Level;

/// One active alert.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// The host.
    pub host: String,
    /// What is alerting (`down`, `rtt`, `cpu_monitor.cpu_percent`).
    pub metric: String,
    /// Its level now (never OK: an alert at OK has ended).
    pub level: Level,
    /// When it entered this level.
    pub since_ms: u64,
    /// When it opened (left OK).
    pub opened_ms: u64,
    /// What it says now.
    pub text: String,
    /// Whether a notification went out for it (so its recovery goes out too).
    pub notified: bool,
    /// When the last notification for it went out (reminders count from here).
    pub last_notified_ms: u64,
    /// Who acknowledged it (reminders stop until the level changes).
    pub acknowledged: Option<String>,
}

/// What a notification is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The alert began, or escalated.
    Alert,
    /// It ended.
    Recovery,
    /// It goes on.
    Reminder,
    /// It was closed without recovering (its host dropped, its metric gone).
    Closed,
}

impl Kind {
    /// Name in notifications.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Alert => "alert",
            Kind::Recovery => "recovery",
            Kind::Reminder => "reminder",
            Kind::Closed => "recovery",
        }
    }
}

/// What the caller must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Send a notification about alert `key` (its state is in the map, or in `ended`).
    Notify {
        /// The alert.
        key: String,
        /// What kind.
        kind: Kind,
    },
    /// The alert changed: store it and show it.
    Changed {
        /// The alert.
        key: String,
    },
    /// The alert ended (it is no longer in the map).
    Ended {
        /// The alert.
        key: String,
        /// How it was when it ended.
        alert: Alert,
        /// Whether its recovery is notified.
        notify: bool,
        /// Closed rather than recovered.
        closed: bool,
    },
}

/// Every active alert.
#[derive(Debug, Default)]
pub struct Alerts {
    map: BTreeMap<String, Alert>,
    /// Level changes per alert key, newest last (for flap detection).
    changes: BTreeMap<String, VecDeque<u64>>,
}

impl Alerts {
    /// The alert `key`.
    pub fn get(&self, key: &str) -> Option<&Alert> {
        self.map.get(key)
    }

    /// Every alert, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Alert)> {
        self.map.iter()
    }

    /// How many are active.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Takes back a stored alert.
    pub fn restore(&mut self, key: String, alert: Alert) {
        self.map.insert(key, alert);
    }

    /// The level of `key` now (OK without an alert).
    pub fn level(&self, key: &str) -> Level {
        self.map.get(key).map_or(Level::Ok, |a| a.level)
    }

    /// A new observation of `key`: its level and text now. `grace_ms`: how long a new
    /// alert waits before it notifies; `may_notify`: whether it may notify now.
    pub fn observe(
        &mut self,
        key: &str,
        (host, metric): (&str, &str),
        (level, text): (Level, String),
        now: u64,
        grace_ms: u64,
        may_notify: bool,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        let changed = Action::Changed {
            key: key.to_string(),
        };
        match self.map.get(key).map(|a| a.level) {
            None if level == Level::Ok => {}
            None => {
                self.record_change(key, now);
                let notify = grace_ms == 0 && may_notify;
                self.map.insert(
                    key.to_string(),
                    Alert {
                        host: host.to_string(),
                        metric: metric.to_string(),
                        level,
                        since_ms: now,
                        opened_ms: now,
                        text,
                        notified: notify,
                        last_notified_ms: if notify { now } else { 0 },
                        acknowledged: None,
                    },
                );
                actions.push(changed);
                if notify {
                    actions.push(Action::Notify {
                        key: key.to_string(),
                        kind: Kind::Alert,
                    });
                }
            }
            Some(current) if current == level => {
                if let Some(alert) = self.map.get_mut(key)
                    && alert.text != text
                {
                    alert.text = text;
                    actions.push(changed);
                }
            }
            Some(_) if level == Level::Ok => {
                self.record_change(key, now);
                if let Some(alert) = self.map.remove(key) {
                    // Within the grace (never notified): neither alert nor recovery.
                    let notify = alert.notified;
                    actions.push(Action::Ended {
                        key: key.to_string(),
                        alert,
                        notify,
                        closed: false,
                    });
                }
            }
            Some(current) => {
                self.record_change(key, now);
                let escalation = level.severity() > current.severity()
                    || (level.severity() == current.severity() && level != current);
                if let Some(alert) = self.map.get_mut(key) {
                    alert.level = level;
                    alert.since_ms = now;
                    alert.text = text;
                    alert.acknowledged = None;
                    // The reminder timer starts again at a level change.
                    alert.last_notified_ms = now;
                    let notify = escalation && alert.notified && may_notify;
                    actions.push(changed);
                    if notify {
                        actions.push(Action::Notify {
                            key: key.to_string(),
                            kind: Kind::Alert,
                        });
                    }
                }
            }
        }
        actions
    }

    /// Ends an alert whatever its level (its host was dropped, or its metric is no longer
    /// reported or checked); its recovery goes to whoever got it.
    pub fn end(&mut self, key: &str, text: String) -> Option<Action> {
        let mut alert = self.map.remove(key)?;
        self.changes.remove(key);
        alert.text = text;
        let notify = alert.notified;
        Some(Action::Ended {
            key: key.to_string(),
            alert,
            notify,
            closed: true,
        })
    }

    /// Keys of the alerts of `host`.
    pub fn of_host(&self, host: &str) -> Vec<String> {
        self.map
            .iter()
            .filter(|(_, a)| a.host == host)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Time passes: alerts past their grace notify, notified ones remind. `may_notify`
    /// says whether an alert may notify now; `renotify_ms`: the reminder interval.
    pub fn tick(
        &mut self,
        now: u64,
        grace_ms: u64,
        renotify_ms: Option<u64>,
        may_notify: impl Fn(&str, &Alert) -> bool,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        for (key, alert) in &mut self.map {
            if !alert.notified {
                if now >= alert.opened_ms.saturating_add(grace_ms) && may_notify(key, alert) {
                    alert.notified = true;
                    alert.last_notified_ms = now;
                    actions.push(Action::Notify {
                        key: key.clone(),
                        kind: Kind::Alert,
                    });
                }
                continue;
            }
            if let Some(every) = renotify_ms
                && alert.acknowledged.is_none()
                && now >= alert.last_notified_ms.saturating_add(every)
                && may_notify(key, alert)
            {
                alert.last_notified_ms = now;
                actions.push(Action::Notify {
                    key: key.clone(),
                    kind: Kind::Reminder,
                });
            }
        }
        actions
    }

    /// Acknowledges `key`: no reminders until its level changes.
    pub fn acknowledge(&mut self, key: &str, by: &str) -> Option<Action> {
        let alert = self.map.get_mut(key)?;
        alert.acknowledged = Some(by.to_string());
        Some(Action::Changed {
            key: key.to_string(),
        })
    }

    fn record_change(&mut self, key: &str, now: u64) {
        let changes = self.changes.entry(key.to_string()).or_default();
        changes.push_back(now);
        while changes.len() > FLAP_HISTORY {
            changes.pop_front();
        }
    }

    /// Level changes of `key` since `from`.
    pub fn changes_since(&self, key: &str, from: u64) -> usize {
        self.changes
            .get(key)
            .map_or(0, |c| c.iter().filter(|t| **t >= from).count())
    }

    /// Forgets change history older than `before` (bounded memory).
    pub fn forget_changes_before(&mut self, before: u64) {
        self.changes.retain(|key, c| {
            while c.front().is_some_and(|t| *t < before) {
                c.pop_front();
            }
            !c.is_empty() || self.map.contains_key(key)
        });
    }
}

/// Level changes remembered per alert.
const FLAP_HISTORY: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1000;

    fn kinds(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Notify { kind, .. } => Some(kind.name().to_string()),
                Action::Ended { notify: true, .. } => Some("recovery".to_string()),
                _ => None,
            })
            .collect()
    }

    fn see(a: &mut Alerts, level: Level, now: u64, grace: u64) -> Vec<String> {
        kinds(&a.observe(
            "h/cpu",
            ("h", "cpu"),
            (level, format!("{level:?}")),
            now,
            grace,
            true,
        ))
    }

    fn tick(a: &mut Alerts, now: u64, grace: u64, renotify: Option<u64>) -> Vec<String> {
        kinds(&a.tick(now, grace, renotify, |_, _| true))
    }

    #[test]
    fn grace_defers_and_suppresses_transient_alerts() {
        use Level::*;
        let mut a = Alerts::default();
        assert!(see(&mut a, Warning, 0, 5 * S).is_empty(), "deferred");
        assert!(tick(&mut a, 4 * S, 5 * S, None).is_empty());
        assert!(
            see(&mut a, Ok, 4 * S + 500, 5 * S).is_empty(),
            "neither alert nor recovery"
        );
        assert!(a.is_empty());
        // One that stays past the grace notifies then, and its recovery goes out.
        see(&mut a, Critical, 10 * S, 5 * S);
        assert_eq!(tick(&mut a, 15 * S, 5 * S, None), ["alert"]);
        assert!(tick(&mut a, 16 * S, 5 * S, None).is_empty(), "once");
        assert_eq!(see(&mut a, Ok, 20 * S, 5 * S), ["recovery"]);
        // Without grace it notifies at once.
        assert_eq!(see(&mut a, Warning, 30 * S, 0), ["alert"]);
    }

    #[test]
    fn escalation_notifies_de_escalation_is_silent_and_reminders_follow_level_changes() {
        use Level::*;
        let mut a = Alerts::default();
        let hour = 3600 * S;
        assert_eq!(see(&mut a, Warning, 0, 0), ["alert"]);
        assert_eq!(see(&mut a, Critical, 60 * S, 0), ["alert"], "escalation");
        assert!(
            see(&mut a, Warning, 120 * S, 0).is_empty(),
            "de-escalation is silent"
        );
        // Reminders count from the last level change (120 s), not the first alert.
        assert!(tick(&mut a, hour + 60 * S, 0, Some(hour)).is_empty());
        assert_eq!(tick(&mut a, hour + 120 * S, 0, Some(hour)), ["reminder"]);
        assert!(tick(&mut a, hour + 121 * S, 0, Some(hour)).is_empty());
        assert_eq!(
            tick(&mut a, 2 * hour + 120 * S, 0, Some(hour)),
            ["reminder"]
        );
        // Acknowledged: no more reminders, until the level changes.
        a.acknowledge("h/cpu", "alice");
        assert!(tick(&mut a, 5 * hour, 0, Some(hour)).is_empty());
        assert_eq!(see(&mut a, Critical, 5 * hour, 0), ["alert"]);
        assert_eq!(a.get("h/cpu").unwrap().acknowledged, None);
        assert_eq!(tick(&mut a, 6 * hour, 0, Some(hour)), ["reminder"]);
        assert_eq!(see(&mut a, Ok, 6 * hour + S, 0), ["recovery"]);
    }

    #[test]
    fn held_alerts_notify_when_the_hold_ends_and_recoveries_always_go() {
        use Level::*;
        let mut a = Alerts::default();
        let actions = a.observe("h/cpu", ("h", "cpu"), (Critical, "x".into()), 0, 0, false);
        assert!(kinds(&actions).is_empty(), "held");
        assert!(kinds(&a.tick(S, 0, None, |_, _| false)).is_empty());
        assert_eq!(
            kinds(&a.tick(2 * S, 0, None, |_, _| true)),
            ["alert"],
            "hold over"
        );
        // Held again (silenced) while notified: the recovery still goes.
        let actions = a.observe("h/cpu", ("h", "cpu"), (Ok, "x".into()), 3 * S, 0, false);
        assert_eq!(kinds(&actions), ["recovery"]);
        // Recovered while held and never notified: nothing.
        a.observe(
            "h/cpu",
            ("h", "cpu"),
            (Warning, "x".into()),
            4 * S,
            0,
            false,
        );
        let actions = a.observe("h/cpu", ("h", "cpu"), (Ok, "x".into()), 5 * S, 0, false);
        assert!(kinds(&actions).is_empty());
        assert_eq!(a.changes_since("h/cpu", 0), 4);
    }
}
