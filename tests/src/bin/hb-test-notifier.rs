//! A notifier for tests, at the IPC boundary: it logs every notification it receives
//! (`test-notifier received id=.. title=..`) and reports done only those for hosts whose name
//! starts with `ack`, so the rest stay in the engine's outbox.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use hb_child::link::{self, Link};
use hb_child::{self as child, ControlEvent, ControlSender};
use hb_ipc::Role;
use hb_ipc::control::PassedSocket;
use hb_ipc::edge::{Answer, EngineToNotifier, NotifierToEngine};
use tokio::sync::mpsc;

fn main() -> ExitCode {
    child::run(Role::Notifier, run)
}

async fn run(
    mut events: mpsc::UnboundedReceiver<ControlEvent>,
    control: ControlSender,
) -> anyhow::Result<()> {
    let engine = Link::<NotifierToEngine>::new(Role::Engine);
    let (inbound_tx, mut inbound) = mpsc::channel::<EngineToNotifier>(1024);
    loop {
        tokio::select! {
            event = events.recv() => match event {
                None => return Ok(()),
                Some(ControlEvent::Config { generation, .. }) => control.config_applied(generation),
                Some(ControlEvent::Socket { socket: PassedSocket::Peer { role: Role::Engine }, fd }) => {
                    link::connect(child::unix_stream(fd)?, &engine, inbound_tx.clone(), control.clone());
                }
                Some(ControlEvent::Socket { .. } | ControlEvent::Start | ControlEvent::Stats { .. }) => {}
                Some(ControlEvent::Request { id, .. }) => control.answer(
                    id,
                    Answer::Error { message: "no queries".into() },
                ),
            },
            // Every message must be taken: a refused pattern would leave the branch off
            // until a control event comes.
            Some(msg) = inbound.recv() => {
                let EngineToNotifier::Notify { notification: n } = msg else {
                    continue;
                };
                tracing::info!("test-notifier received id={} kind={} title={}", n.id, n.kind, n.title);
                if n.host.starts_with("ack") {
                    engine.send(NotifierToEngine::Done {
                        id: n.id,
                        delivered: vec!["test".into()],
                        failed: Vec::new(),
                    });
                }
            }
        }
    }
}
