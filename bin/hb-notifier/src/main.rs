//! hb-notifier: started by hbsupervisor. The channels themselves land with their own issue;
//! this cut speaks the outbox protocol: each notification from the engine is logged once
//! (a repeat of an id, which the engine sends after a restart of either process, is
//! recognised) and reported done, with no channel delivering it yet.

#![forbid(unsafe_code)]

use std::collections::{HashSet, VecDeque};
use std::process::ExitCode;

use hb_ipc::Role;
use hb_ipc::control::PassedSocket;
use hb_ipc::edge::{Answer, EngineToNotifier, NotifierToEngine};
use hb_supervisor::child::{self, ControlEvent, ControlSender};
use hb_supervisor::link::{self, Link};
use tokio::sync::mpsc;

/// Notification ids remembered to recognise repeats.
const SEEN_KEPT: usize = 65_536;

fn main() -> ExitCode {
    child::run(Role::Notifier, run)
}

/// Ids already handled, oldest first out.
#[derive(Default)]
struct Seen {
    ids: HashSet<u64>,
    order: VecDeque<u64>,
}

impl Seen {
    /// False if `id` was handled before.
    fn first(&mut self, id: u64) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > SEEN_KEPT
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        true
    }
}

async fn run(
    mut events: mpsc::UnboundedReceiver<ControlEvent>,
    control: ControlSender,
) -> anyhow::Result<()> {
    let engine = Link::<NotifierToEngine>::new(Role::Engine);
    let (inbound_tx, mut inbound) = mpsc::channel::<EngineToNotifier>(1024);
    let mut seen = Seen::default();
    loop {
        tokio::select! {
            event = events.recv() => match event {
                None => return Ok(()),
                Some(ControlEvent::Config { generation, .. }) => control.config_applied(generation),
                Some(ControlEvent::Socket { socket: PassedSocket::Peer { role: Role::Engine }, fd }) => {
                    link::connect(child::unix_stream(fd)?, &engine, inbound_tx.clone(), control.clone());
                }
                Some(ControlEvent::Socket { socket, .. }) => {
                    tracing::warn!(?socket, "Unexpected socket; closing it.");
                }
                Some(ControlEvent::Start) => tracing::info!("Running."),
                Some(ControlEvent::Request { id, .. }) => control.answer(
                    id,
                    Answer::Error {
                        message: "the notifier answers no queries".into(),
                    },
                ),
            },
            Some(EngineToNotifier::Notify { notification: n }) = inbound.recv() => {
                if seen.first(n.id) {
                    tracing::info!(
                        id = n.id,
                        alert = n.alert,
                        kind = n.kind,
                        host = n.host,
                        "Notification: {}", n.title
                    );
                } else {
                    tracing::info!(id = n.id, "Notification already handled; not sent again.");
                }
                engine.send(NotifierToEngine::Done {
                    id: n.id,
                    delivered: Vec::new(),
                    failed: Vec::new(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_recognised_and_memory_is_bounded() {
        let mut seen = Seen::default();
        assert!(seen.first(1));
        assert!(!seen.first(1));
        for id in 2..(SEEN_KEPT as u64 + 10) {
            seen.first(id);
        }
        assert!(seen.ids.len() <= SEEN_KEPT);
        assert!(seen.first(1), "the oldest ids are forgotten");
    }
}
