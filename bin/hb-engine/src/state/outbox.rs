//! Notifications the notifier has not reported done. Each is written to the store before it
//! is handed over (or handed over at once without a store), handed over again when the
//! notifier reconnects or its report is long overdue, and kept until it is done, so a crash
//! of either process loses none.

use std::collections::BTreeMap;

use hb_ipc::edge::Notification;

/// How long a notification may wait for the notifier's report before it is handed over
/// again (the notifier recognises the id).
const OUTBOX_RESEND_AFTER_MS: u64 = 300_000;

#[derive(Debug)]
struct Waiting {
    notification: Notification,
    /// When it was last handed over; `None` until the store committed it.
    handed_ms: Option<u64>,
}

#[derive(Debug)]
pub(super) struct Outbox {
    waiting: BTreeMap<u64, Waiting>,
    last_id: u64,
}

impl Outbox {
    pub(super) fn new(now_ms: u64) -> Outbox {
        Outbox {
            waiting: BTreeMap::new(),
            // A thousand ids per ms: a storm of notifications cannot catch up with the clock
            // before a restart.
            last_id: now_ms.saturating_mul(1000),
        }
    }

    /// What the last run left undone (committed then: ready to hand over).
    pub(super) fn restore(&mut self, undone: Vec<Notification>, last_id: u64) {
        self.last_id = self.last_id.max(last_id);
        for notification in undone {
            let waiting = Waiting {
                notification,
                handed_ms: Some(0),
            };
            self.waiting.insert(waiting.notification.id, waiting);
        }
    }

    /// Gives a notification its id and keeps it; `handed_now` without a store (it goes out
    /// at once), else it waits for the store's commit.
    pub(super) fn add(&mut self, mut notification: Notification, handed_now: bool) -> u64 {
        // Ids follow the clock (a thousand per ms), so they stay unique across restarts.
        self.last_id = self
            .last_id
            .max(notification.created_ms.saturating_mul(1000))
            + 1;
        notification.id = self.last_id;
        let handed_ms = handed_now.then_some(notification.created_ms);
        let waiting = Waiting {
            notification,
            handed_ms,
        };
        self.waiting.insert(self.last_id, waiting);
        self.last_id
    }

    /// Every committed notification, handed over again now (the notifier reconnected).
    pub(super) fn pending(&mut self, now_ms: u64) -> Vec<Notification> {
        self.waiting
            .values_mut()
            .filter_map(|w| {
                w.handed_ms.as_mut()?;
                w.handed_ms = Some(now_ms);
                Some(w.notification.clone())
            })
            .collect()
    }

    /// The store committed these: those still waiting go out now.
    pub(super) fn committed(
        &mut self,
        notifications: Vec<Notification>,
        now_ms: u64,
    ) -> Vec<Notification> {
        notifications
            .into_iter()
            .filter(|n| match self.waiting.get_mut(&n.id) {
                Some(w) => {
                    w.handed_ms = Some(now_ms);
                    true
                }
                None => false,
            })
            .collect()
    }

    /// Handed over long ago and not reported done (a report lost on the way): again.
    pub(super) fn overdue(&mut self, now_ms: u64) -> Vec<Notification> {
        self.waiting
            .values_mut()
            .filter_map(|w| match &mut w.handed_ms {
                Some(at) if now_ms.saturating_sub(*at) >= OUTBOX_RESEND_AFTER_MS => {
                    *at = now_ms;
                    Some(w.notification.clone())
                }
                _ => None,
            })
            .collect()
    }

    /// `channel` delivered notification `id`: the notification, if that is news.
    pub(super) fn delivered(&mut self, id: u64, channel: &str) -> Option<&Notification> {
        let n = &mut self.waiting.get_mut(&id)?.notification;
        if n.done_channels.iter().any(|c| c == channel) {
            return None;
        }
        n.done_channels.push(channel.to_string());
        Some(n)
    }

    /// The notifier is done with `id`.
    pub(super) fn done(&mut self, id: u64) -> Option<Notification> {
        self.waiting.remove(&id).map(|w| w.notification)
    }

    pub(super) fn len(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(created_ms: u64) -> Notification {
        Notification {
            id: 0,
            alert: "web1/down".into(),
            kind: "alert".into(),
            level: "CRITICAL".into(),
            host: "web1".into(),
            title: "[CRITICAL] web1 down".into(),
            text: String::new(),
            created_ms,
            users: Vec::new(),
            channels: Vec::new(),
            alerted: Vec::new(),
            done_channels: Vec::new(),
        }
    }

    #[test]
    fn a_notification_waits_for_its_commit_and_goes_again_until_done() {
        let mut o = Outbox::new(1);
        let id = o.add(note(5), false);
        assert_eq!(id, 5001, "ids follow the clock");
        assert!(o.pending(10).is_empty(), "not committed: not handed over");
        assert_eq!(
            o.committed(vec![Notification { id, ..note(5) }], 10).len(),
            1
        );
        assert!(o.overdue(10 + OUTBOX_RESEND_AFTER_MS - 1).is_empty());
        assert_eq!(o.overdue(10 + OUTBOX_RESEND_AFTER_MS).len(), 1);
        assert!(o.delivered(id, "mail").is_some());
        assert!(o.delivered(id, "mail").is_none(), "once per channel");
        assert_eq!(
            o.done(id).map(|n| n.done_channels),
            Some(vec!["mail".to_string()])
        );
        assert_eq!(o.len(), 0);
        // What the last run left undone is handed over at once, and ids go on past it.
        o.restore(
            vec![Notification {
                id: 9000,
                ..note(6)
            }],
            9000,
        );
        assert_eq!(o.pending(20).len(), 1);
        assert_eq!(o.add(note(6), true), 9001);
    }
}
