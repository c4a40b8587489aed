//! A notifier for tests, at the IPC boundary: it logs every notification it receives
//! (`test-notifier received id=.. title=..`) and reports done only those for hosts whose name
//! starts with `ack`, so the rest stay in the engine's outbox.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use hb_child::link::Link;
use hb_child::{self as child, Control, ControlEvent, ControlSender, Passed, Taken};
use hb_ipc::Role;
use hb_ipc::config::RoleConfig;
use hb_ipc::edge::{EngineToNotifier, NotifierToEngine};
use tokio::sync::mpsc;

fn main() -> ExitCode {
    child::run(Role::Notifier, run)
}

/// Takes any slice, and the engine's socket.
struct TestNotifier<'a> {
    engine: &'a Link<NotifierToEngine>,
    inbound: &'a mpsc::Sender<EngineToNotifier>,
}

impl Control for TestNotifier<'_> {
    const ROLE: Role = Role::Notifier;
    const REFUSED_QUERY: &'static str = "no queries";
    type Slice = RoleConfig;

    fn configure(&mut self, _: RoleConfig) -> Result<(), String> {
        Ok(())
    }

    fn socket(&mut self, passed: Passed, control: &ControlSender) -> Taken {
        // Any other socket is closed without a word: this notifier takes only the engine's.
        passed
            .link(Role::Engine, self.engine, self.inbound, control)
            .map(|_| None)
    }
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
                Some(event) => {
                    let mut role = TestNotifier { engine: &engine, inbound: &inbound_tx };
                    child::dispatch(&mut role, event, &control).await?;
                }
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
