//! What the engine sends to peers that may fall behind, without ever waiting for them.
//!
//! - [`ChangeFeed`]: live changes for the web. When the web falls behind, changes are left
//!   out (counted) and it gets one `Resync` once there is room again, so it re-reads
//!   everything instead of showing a gap.
//! - [`Handoff`]: notifications for the notifier. None is ever left out: they wait here, in
//!   order, until the queue to the notifier has room (they are in the outbox in any case).

use std::collections::VecDeque;

use hb_child::link::Link;
use hb_ipc::edge::{Change, EngineToNotifier, EngineToWeb, Notification};

/// Room kept free in the queue to the web for answers to its queries.
pub const WEB_ROOM_FOR_ANSWERS: usize = 1024;

/// Changes for the web.
#[derive(Debug, Default)]
pub struct ChangeFeed {
    resync: bool,
    /// Changes left out since the start.
    pub left_out: u64,
}

impl ChangeFeed {
    /// Sends `changes`, or leaves them out if the web is behind.
    pub fn send(&mut self, web: &Link<EngineToWeb>, changes: Vec<Change>) {
        if changes.is_empty() && !self.resync {
            return;
        }
        if web.room() < WEB_ROOM_FOR_ANSWERS + 1 {
            self.resync = true;
            self.left_out += changes.len() as u64;
            return;
        }
        let mut changes = changes;
        if std::mem::take(&mut self.resync) {
            changes.insert(0, Change::Resync {});
        }
        web.send(EngineToWeb::Changes { changes });
    }
}

/// Notifications waiting for room in the queue to the notifier.
#[derive(Debug, Default)]
pub struct Handoff {
    waiting: VecDeque<Notification>,
}

impl Handoff {
    /// Queues notifications, in order.
    pub fn extend(&mut self, notifications: impl IntoIterator<Item = Notification>) {
        self.waiting.extend(notifications);
    }

    /// Replaces what waits (the whole outbox is handed over again; what waited is in it).
    pub fn replace(&mut self, notifications: Vec<Notification>) {
        self.waiting = notifications.into();
    }

    /// How many wait.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Moves as many as there is room for into the queue to the notifier.
    pub fn pump(&mut self, notifier: &Link<EngineToNotifier>) {
        while notifier.room() > 0 {
            let Some(notification) = self.waiting.pop_front() else {
                return;
            };
            notifier.send(EngineToNotifier::Notify { notification });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_child::link::LINK_QUEUE;
    use hb_ipc::Role;
    use hb_ipc::edge::EventSummary;
    use tokio::io::AsyncBufReadExt;

    fn event(n: u64) -> Change {
        Change::Event {
            event: EventSummary {
                time_ms: n,
                host: "h".into(),
                msg: format!("e{n}"),
            },
        }
    }

    fn notification(id: u64) -> Notification {
        Notification {
            id,
            alert: "h/down".into(),
            kind: "alert".into(),
            level: "CRITICAL".into(),
            host: "h".into(),
            title: "t".into(),
            text: "x".into(),
            created_ms: 0,
            users: vec![],
            channels: vec![],
            alerted: Vec::new(),
            done_channels: Vec::new(),
        }
    }

    async fn lines(read: tokio::net::UnixStream, until: impl Fn(&str) -> bool) -> Vec<String> {
        let mut reader = tokio::io::BufReader::new(read).lines();
        let mut out = Vec::new();
        while let Ok(Some(line)) = reader.next_line().await {
            let done = until(&line);
            out.push(line);
            if done {
                break;
            }
        }
        out
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_web_that_falls_behind_is_cut_off_and_told_to_resync() {
        // No socket yet: nothing drains the queue, as with a web that stopped reading.
        let web = Link::<EngineToWeb>::new(Role::Web);
        let mut feed = ChangeFeed::default();
        for n in 0..20_000 {
            feed.send(&web, vec![event(n)]);
        }
        assert!(feed.left_out > 10_000, "left out {}", feed.left_out);
        assert!(web.room() >= WEB_ROOM_FOR_ANSWERS, "room for answers kept");
        assert_eq!(web.dropped(), 0, "never overfilled");
        // The web catches up: what was queued arrives, then one Resync before new changes.
        let queued = LINK_QUEUE - web.room();
        let (ours, theirs) = tokio::net::UnixStream::pair().unwrap();
        web.attach(ours.into_split().1);
        let mut reader = tokio::io::BufReader::new(theirs).lines();
        for _ in 0..queued {
            reader.next_line().await.unwrap().unwrap();
        }
        while web.room() < LINK_QUEUE {
            tokio::task::yield_now().await;
        }
        feed.send(&web, vec![event(99_999)]);
        // One message: the Resync, then the new change.
        let next = reader.next_line().await.unwrap().unwrap();
        let resync = next.find("resync").expect("a resync");
        let change = next.find("e99999").expect("the new change");
        assert!(resync < change, "{next}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn notifications_wait_for_room_and_none_is_dropped() {
        let notifier = Link::<EngineToNotifier>::new(Role::Notifier);
        let mut handoff = Handoff::default();
        let total = LINK_QUEUE as u64 + 5_000;
        handoff.extend((1..=total).map(notification));
        handoff.pump(&notifier);
        assert_eq!(handoff.len(), 5_000, "the rest waits");
        assert_eq!(notifier.dropped(), 0);
        let (ours, theirs) = tokio::net::UnixStream::pair().unwrap();
        notifier.attach(ours.into_split().1);
        let last = format!("\"id\":{total},");
        let reading = tokio::spawn(lines(theirs, move |l| l.contains(&last)));
        while !handoff.is_empty() {
            handoff.pump(&notifier);
            tokio::task::yield_now().await;
        }
        let got = reading.await.unwrap();
        assert_eq!(got.len() as u64, total, "every notification, in order");
        assert!(got[0].contains("\"id\":1,"));
    }
}
