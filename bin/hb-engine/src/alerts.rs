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
//!   part of a storm) is kept and shown; it notifies when that ends if it is still active.
//!   A recovery always goes to whoever got the alert.
//! - Flapping (Icinga's method): the last 21 observed levels of a key are weighed, older
//!   0.8 to newest 1.2; the share of changes between neighbours is its state change
//!   percentage. Above `high` it is flapping: one notice, then nothing for that key until
//!   it falls below `low`, when one more notice says where it settled.

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
    /// The level its last alert notification was about (an escalation while it was held
    /// is notified when the hold ends).
    pub notified_level: Option<Level>,
    /// Who acknowledged it (reminders stop until the level changes).
    pub acknowledged: Option<String>,
    /// Channels that delivered a notification about it: its recovery goes to them.
    pub alerted: std::collections::BTreeSet<String>,
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
    /// It started flapping.
    Flapping,
    /// It stopped flapping (the notice says where it settled).
    Settled,
}

impl Kind {
    /// Name in notifications.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Alert => "alert",
            Kind::Recovery => "recovery",
            Kind::Reminder => "reminder",
            Kind::Closed => "recovery",
            Kind::Flapping => "flapping",
            Kind::Settled => "flapping_stopped",
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

/// When a key counts as flapping.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlapLimits {
    /// Whether flapping is detected at all.
    pub enabled: bool,
    /// State change percentage above which a key is flapping.
    pub high: f64,
    /// And below which it has settled.
    pub low: f64,
}

impl Default for FlapLimits {
    fn default() -> Self {
        FlapLimits {
            enabled: true,
            high: 30.0,
            low: 25.0,
        }
    }
}

/// Observed levels of a key that was not OK lately.
#[derive(Debug, Default)]
struct Flap {
    levels: VecDeque<Level>,
    flapping: bool,
    /// When it was last observed.
    touched: u64,
}

/// Keys with a flap history at most: past it, new keys are not watched for flapping.
const MAX_FLAPS: usize = 10_000;
/// A history not observed for this long is forgotten (a flapping key counts as settled).
const FLAP_FORGET_MS: u64 = 3_600_000;

/// Observations weighed for flapping (Icinga keeps 21).
const FLAP_HISTORY: usize = 21;

impl Flap {
    /// Icinga's state change percentage: of the 20 neighbour pairs of a full history,
    /// those that differ, weighted from 0.8 (oldest) to 1.2 (newest). A short history counts
    /// as if its oldest level had come before, so a few changes are not yet flapping.
    fn percent(&self) -> f64 {
        let pairs = (FLAP_HISTORY - 1) as f64;
        let mut changed = 0.0;
        for (age, i) in (1..self.levels.len()).rev().enumerate() {
            if self.levels[i] != self.levels[i - 1] {
                changed += 1.2 - 0.4 * age as f64 / (pairs - 1.0);
            }
        }
        changed / pairs * 100.0
    }
}

/// Active alerts one host may have: a host (or a forger of its name) reporting thousands
/// of partitions over a wildcard threshold cannot grow the table without bound.
pub const MAX_ALERTS_PER_HOST: usize = 1000;

/// Every active alert.
#[derive(Debug, Default)]
pub struct Alerts {
    map: BTreeMap<String, Alert>,
    /// Active alerts per host.
    per_host: std::collections::HashMap<String, usize>,
    /// New alerts refused because their host had [`MAX_ALERTS_PER_HOST`].
    pub refused: u64,
    /// Recent levels of keys that were not OK lately.
    flaps: BTreeMap<String, Flap>,
    /// When a key is flapping.
    pub flap_limits: FlapLimits,
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
        *self.per_host.entry(alert.host.clone()).or_insert(0) += 1;
        self.map.insert(key, alert);
    }

    fn removed(&mut self, host: &str) {
        if let Some(n) = self.per_host.get_mut(host) {
            *n -= 1;
            if *n == 0 {
                self.per_host.remove(host);
            }
        }
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
        who: (&str, &str),
        (level, text): (Level, String),
        now_ms: u64,
        grace_ms: u64,
        may_notify: bool,
    ) -> Vec<Action> {
        let (was, is) = self.note_level(key, level, now_ms);
        let mut actions =
            self.observe_level(key, who, (level, text), now_ms, grace_ms, may_notify && !is);
        if was || is {
            // While flapping, nothing notifies but the notices about it.
            actions.retain(|a| !matches!(a, Action::Notify { .. }));
            for a in &mut actions {
                if let Action::Ended { notify, .. } = a {
                    *notify = false;
                }
            }
        }
        actions.extend(self.flap_notice(key, was, is, now_ms));
        actions
    }

    /// A sign that `key` is fine (a heartbeat, for a host's down alert): counts for flap
    /// detection if the key was not OK lately.
    pub fn note_ok(&mut self, key: &str, now_ms: u64) -> Vec<Action> {
        if self.flaps.is_empty() || !self.flaps.contains_key(key) {
            return Vec::new();
        }
        let (was, is) = self.note_level(key, Level::Ok, now_ms);
        self.flap_notice(key, was, is, now_ms).into_iter().collect()
    }

    /// Forgets flap histories: all (detection turned off: held keys notify again), or
    /// those of one host (dropped).
    pub fn forget_flaps(&mut self, host: Option<&str>) {
        match host {
            None => self.flaps.clear(),
            Some(host) => {
                let prefix = format!("{host}/");
                self.flaps.retain(|k, _| !k.starts_with(&prefix));
            }
        }
    }

    /// Forgets histories not observed for an hour; a key that was flapping counts as
    /// settled (its notice is returned).
    pub fn forget_stale_flaps(&mut self, now_ms: u64) -> Vec<Action> {
        let stale: Vec<(String, bool)> = self
            .flaps
            .iter()
            .filter(|(_, f)| now_ms.saturating_sub(f.touched) >= FLAP_FORGET_MS)
            .map(|(k, f)| (k.clone(), f.flapping))
            .collect();
        let mut actions = Vec::new();
        for (key, flapping) in stale {
            self.flaps.remove(&key);
            if flapping {
                actions.extend(self.flap_notice(&key, true, false, now_ms));
            }
        }
        actions
    }

    /// Sets whether `key` counts as notified (a storm summary covered it; or, for a storm
    /// member coming back, its recovery is part of the storm's).
    pub fn mark_notified(&mut self, key: &str, notified: bool, now_ms: u64) {
        if let Some(alert) = self.map.get_mut(key) {
            alert.notified = notified;
            alert.last_notified_ms = now_ms;
        }
    }

    /// Channels delivered a notification about `key`.
    pub fn alerted(&mut self, key: &str, channels: &[String]) -> bool {
        match self.map.get_mut(key) {
            Some(alert) => {
                let before = alert.alerted.len();
                alert.alerted.extend(channels.iter().cloned());
                alert.alerted.len() != before
            }
            None => false,
        }
    }

    /// Whether any key has a flap history (so callers can skip building keys).
    pub fn has_flaps(&self) -> bool {
        !self.flaps.is_empty()
    }

    /// Whether `key` is flapping now.
    pub fn is_flapping(&self, key: &str) -> bool {
        self.flaps.get(key).is_some_and(|f| f.flapping)
    }

    /// Records a level for flap detection; whether the key was flapping, and is now.
    fn note_level(&mut self, key: &str, level: Level, now_ms: u64) -> (bool, bool) {
        if !self.flap_limits.enabled {
            return (false, false);
        }
        if !self.flaps.contains_key(key) && (level == Level::Ok || self.flaps.len() >= MAX_FLAPS) {
            return (false, false);
        }
        let limits = self.flap_limits;
        let flap = self.flaps.entry(key.to_string()).or_default();
        flap.touched = now_ms;
        flap.levels.push_back(level);
        while flap.levels.len() > FLAP_HISTORY {
            flap.levels.pop_front();
        }
        let was = flap.flapping;
        let percent = flap.percent();
        if !was && percent > limits.high {
            flap.flapping = true;
        } else if was && percent < limits.low {
            flap.flapping = false;
        }
        let is = flap.flapping;
        // A key that has been OK for the whole history is forgotten.
        if !is && flap.levels.len() == FLAP_HISTORY && flap.levels.iter().all(|l| *l == Level::Ok) {
            self.flaps.remove(key);
        }
        (was, is)
    }

    /// The notice for a key that started or stopped flapping.
    fn flap_notice(&mut self, key: &str, was: bool, is: bool, now_ms: u64) -> Option<Action> {
        match (was, is) {
            (false, true) => Some(Action::Notify {
                key: key.to_string(),
                kind: Kind::Flapping,
            }),
            (true, false) => {
                // Where it settled is notified now: an active alert counts as notified.
                if let Some(alert) = self.map.get_mut(key) {
                    alert.notified = true;
                    alert.last_notified_ms = now_ms;
                    alert.notified_level = Some(alert.level);
                }
                Some(Action::Notify {
                    key: key.to_string(),
                    kind: Kind::Settled,
                })
            }
            _ => None,
        }
    }

    fn observe_level(
        &mut self,
        key: &str,
        (host, metric): (&str, &str),
        (level, text): (Level, String),
        now_ms: u64,
        grace_ms: u64,
        may_notify: bool,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        let changed = Action::Changed {
            key: key.to_string(),
        };
        match self.map.get(key).map(|a| a.level) {
            None if level == Level::Ok => {}
            None if self.per_host.get(host).copied().unwrap_or(0) >= MAX_ALERTS_PER_HOST => {
                self.refused += 1;
            }
            None => {
                *self.per_host.entry(host.to_string()).or_insert(0) += 1;
                let notify = grace_ms == 0 && may_notify;
                self.map.insert(
                    key.to_string(),
                    Alert {
                        host: host.to_string(),
                        metric: metric.to_string(),
                        level,
                        since_ms: now_ms,
                        opened_ms: now_ms,
                        text,
                        notified: notify,
                        last_notified_ms: if notify { now_ms } else { 0 },
                        notified_level: notify.then_some(level),
                        acknowledged: None,
                        alerted: Default::default(),
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
                if let Some(alert) = self.map.remove(key) {
                    self.removed(&alert.host);
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
                // WARNING and UNKNOWN are alike: a change between them is no escalation.
                let escalation = level.severity() > current.severity();
                if let Some(alert) = self.map.get_mut(key) {
                    alert.level = level;
                    alert.since_ms = now_ms;
                    alert.text = text;
                    alert.acknowledged = None;
                    // The reminder timer starts again at a level change.
                    alert.last_notified_ms = now_ms;
                    let notify = escalation && alert.notified && may_notify;
                    if notify {
                        alert.notified_level = Some(level);
                    }
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
        self.removed(&alert.host);
        // Whoever heard it was flapping hears it is closed.
        let flapping = self.flaps.remove(key).is_some_and(|f| f.flapping);
        alert.text = text;
        let notify = alert.notified || flapping;
        Some(Action::Ended {
            key: key.to_string(),
            alert,
            notify,
            closed: true,
        })
    }

    /// Keys of the alerts of `host` (keys are `host/...`, and `0` sorts right after `/`).
    pub fn of_host(&self, host: &str) -> Vec<String> {
        self.map
            .range(format!("{host}/")..format!("{host}0"))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Time passes: alerts past their grace notify, notified ones remind. `may_notify`
    /// says whether an alert may notify now; `renotify_ms`: the reminder interval.
    pub fn tick(
        &mut self,
        now_ms: u64,
        grace_ms: u64,
        renotify_ms: Option<u64>,
        may_notify: impl Fn(&str, &Alert) -> bool,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        for (key, alert) in &mut self.map {
            if self.flaps.get(key).is_some_and(|f| f.flapping) {
                continue;
            }
            if !alert.notified {
                if now_ms >= alert.opened_ms.saturating_add(grace_ms) && may_notify(key, alert) {
                    alert.notified = true;
                    alert.last_notified_ms = now_ms;
                    alert.notified_level = Some(alert.level);
                    actions.push(Action::Notify {
                        key: key.clone(),
                        kind: Kind::Alert,
                    });
                }
                continue;
            }
            // Escalated while held: notified when the hold ends.
            if alert
                .notified_level
                .is_some_and(|l| alert.level.severity() > l.severity())
                && may_notify(key, alert)
            {
                alert.last_notified_ms = now_ms;
                alert.notified_level = Some(alert.level);
                actions.push(Action::Notify {
                    key: key.clone(),
                    kind: Kind::Alert,
                });
                continue;
            }
            if let Some(every) = renotify_ms
                && alert.acknowledged.is_none()
                && now_ms >= alert.last_notified_ms.saturating_add(every)
                && may_notify(key, alert)
            {
                alert.last_notified_ms = now_ms;
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
}

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

    fn see(a: &mut Alerts, level: Level, now_ms: u64, grace: u64) -> Vec<String> {
        kinds(&a.observe(
            "h/cpu",
            ("h", "cpu"),
            (level, format!("{level:?}")),
            now_ms,
            grace,
            true,
        ))
    }

    fn tick(a: &mut Alerts, now_ms: u64, grace: u64, renotify: Option<u64>) -> Vec<String> {
        kinds(&a.tick(now_ms, grace, renotify, |_, _| true))
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
    }

    /// Issue 5, acceptance 5: 20 crossings in 10 minutes give one flapping notice.
    #[test]
    fn a_flapping_metric_gives_one_notice_then_one_when_it_settles() {
        use Level::*;
        let mut a = Alerts::default();
        let mut sent = Vec::new();
        // Every 30 s across the threshold and back: 20 crossings in 10 minutes.
        for i in 0..20u64 {
            let level = if i % 2 == 0 { Warning } else { Ok };
            sent.extend(see(&mut a, level, i * 30 * S, 0));
        }
        let flapping = sent.iter().filter(|k| *k == "flapping").count();
        assert_eq!(flapping, 1, "{sent:?}");
        assert!(
            sent.len() <= 7,
            "a few alerts until it is seen to flap, not 20: {sent:?}"
        );
        assert_eq!(sent.last().map(String::as_str), Some("flapping"));
        assert!(a.is_flapping("h/cpu"));
        // It settles at OK: quiet observations until the percentage falls below 25 %.
        let mut settled = Vec::new();
        for i in 20..60u64 {
            settled.extend(see(&mut a, Ok, i * 30 * S, 0));
        }
        assert_eq!(settled, ["flapping_stopped"]);
        assert!(!a.is_flapping("h/cpu"));
        assert!(a.flaps.is_empty(), "history of a settled key is forgotten");
        // Settling while in an alert counts as notified: no second alert from the tick.
        for i in 0..12u64 {
            let level = if i % 2 == 0 { Critical } else { Ok };
            see(&mut a, level, i * S, 0);
        }
        assert!(a.is_flapping("h/cpu"));
        let mut after = Vec::new();
        for i in 12..50u64 {
            after.extend(see(&mut a, Critical, i * S, 0));
        }
        assert_eq!(after, ["flapping_stopped"]);
        assert!(tick(&mut a, 100 * S, 0, None).is_empty());
    }

    #[test]
    fn a_host_cannot_open_alerts_without_bound() {
        let mut a = Alerts::default();
        for i in 0..MAX_ALERTS_PER_HOST + 10 {
            let key = format!("h/disk.{i}");
            a.observe(
                &key,
                ("h", "disk"),
                (Level::Warning, String::new()),
                0,
                0,
                true,
            );
        }
        assert_eq!(a.len(), MAX_ALERTS_PER_HOST);
        assert_eq!(a.refused, 10);
        // Ending one makes room.
        a.end("h/disk.0", String::new());
        a.observe(
            "h/new",
            ("h", "new"),
            (Level::Warning, String::new()),
            0,
            0,
            true,
        );
        assert!(a.get("h/new").is_some());
        // Other hosts are not affected.
        a.observe(
            "g/x",
            ("g", "x"),
            (Level::Warning, String::new()),
            0,
            0,
            true,
        );
        assert!(a.get("g/x").is_some());
    }
}
