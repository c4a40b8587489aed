//! hb-engine: host state, alerts, the notification outbox, the store and the journal. The
//! state lives in `state.rs`; this is the event loop that feeds it and sends out what it
//! decides.

#![forbid(unsafe_code)]

use hb_engine::feed::{ChangeFeed, Handoff};
use hb_engine::state::{EVENTS_KEPT, Reply, State};
use hb_engine::{journal, store};

use std::process::ExitCode;
use std::time::Duration;

use hb_child::link::{self, Link};
use hb_child::{self as child, ControlEvent, ControlSender};
use hb_ipc::Role;
use hb_ipc::config::RoleConfig;
use hb_ipc::control::PassedSocket;
use hb_ipc::edge::{
    Change, DnsupdateToEngine, EngineToDnsupdate, EngineToNotifier, EngineToReceiver, EngineToWeb,
    Notification, NotifierToEngine, ReceiverToEngine, WebToEngine,
};
use tokio::sync::mpsc;

/// The store's file in `state_dir`.
const STORE_FILE: &str = "hb.sqlite";
/// How often deadlines are checked: states change at most this late.
const DEADLINE_TICK_MS: u64 = 100;
/// How often hosts whose figures changed are sent to the web: a heartbeat reaches the
/// dashboards within this (plus the web's own time), and a host heartbeating faster is
/// sent once per tick.
const CHANGES_EVERY: Duration = Duration::from_millis(25);
/// How often the once-a-second work runs (storms, alert timers, host rows to the store).
const SECOND: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    child::run(Role::Engine, run)
}

/// Sends out what the state decided (changes for the web go on the feed's tick).
fn drain(state: &mut State, links: &Links, handoff: &mut Handoff) {
    for msg in state.to_receiver.drain(..) {
        links.receiver.send(msg);
    }
    if !state.dns.out.is_empty() {
        let wishes = std::mem::take(&mut state.dns.out);
        links.dnsupdate.send(EngineToDnsupdate::Update { wishes });
    }
    // Ahead of any notification that should use them.
    if std::mem::take(&mut state.routing_changed) {
        links.notifier.send(EngineToNotifier::FromApi {
            users: state.user_channels(),
            channels: state.api_channels(),
        });
    }
    handoff.extend(state.ready.drain(..));
}

/// Sends the web what changed since the last tick, as one message: sent per event, a burst
/// of new hosts was a message per datagram and overflowed the queue to the web.
fn feed_tick(state: &mut State, links: &Links, feed: &mut ChangeFeed) {
    state.flush_changes();
    let changes = std::mem::take(&mut state.changes);
    feed.send(&links.web, changes);
}

/// The engine's edges.
struct Links {
    receiver: Link<EngineToReceiver>,
    web: Link<EngineToWeb>,
    notifier: Link<EngineToNotifier>,
    dnsupdate: Link<EngineToDnsupdate>,
}

async fn run(
    mut events: mpsc::UnboundedReceiver<ControlEvent>,
    control: ControlSender,
) -> anyhow::Result<()> {
    let links = Links {
        receiver: Link::new(Role::Receiver),
        web: Link::new(Role::Web),
        notifier: Link::new(Role::Notifier),
        dnsupdate: Link::new(Role::Dnsupdate),
    };
    let Links {
        receiver,
        web,
        notifier,
        dnsupdate,
    } = &links;
    let (received_tx, mut received) = mpsc::channel::<ReceiverToEngine>(4096);
    let (web_tx, mut web_requests) = mpsc::channel::<WebToEngine>(256);
    let (notifier_tx, mut from_notifier) = mpsc::channel::<NotifierToEngine>(1024);
    let (dnsupdate_tx, mut from_dnsupdate) = mpsc::channel::<DnsupdateToEngine>(1024);
    // Notifications the store's writer has committed, to hand to the notifier.
    let (committed_tx, mut committed) = mpsc::unbounded_channel::<Vec<Notification>>();
    let mut state = State::default();
    let mut feed = ChangeFeed::default();
    let mut handoff = Handoff::default();
    let mut journal: Option<journal::Journal> = None;
    let mut reader: Option<store::Reader> = None;
    let mut started = false;
    let mut notifier_attached = false;
    let mut deadlines = tokio::time::interval(Duration::from_millis(DEADLINE_TICK_MS));
    deadlines.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut flushes = tokio::time::interval(SECOND);
    let mut seconds = 0u64;
    flushes.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut feed_ticks = tokio::time::interval(CHANGES_EVERY);
    feed_ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = deadlines.tick(), if started => state.tick_heard(hb_ipc::now_ms()),
            _ = feed_ticks.tick(), if started => feed_tick(&mut state, &links, &mut feed),
            _ = flushes.tick(), if started => {
                state.second(hb_ipc::now_ms());
                state.save_hosts(false);
                seconds += 1;
                if seconds.is_multiple_of(10) {
                    hb_child::release_free_memory();
                }
                if seconds.is_multiple_of(60) {
                    handoff.extend(state.overdue_notifications(hb_ipc::now_ms()));
                }
                if feed.left_out > 0 {
                    state.set_counter("web_changes_left_out", feed.left_out);
                }
            }
            event = events.recv() => match event {
                None => {
                    if let Some(journal) = journal.as_mut() {
                        journal.flush();
                    }
                    state.close_store();
                    return Ok(());
                }
                Some(ControlEvent::Config { generation, config: RoleConfig::Engine(c) }) => {
                    match state.configure(*c, hb_ipc::now_ms()) {
                        Ok(()) => control.config_applied(generation),
                        Err(e) => control.config_rejected(generation, e),
                    }
                }
                Some(ControlEvent::Config { generation, .. }) => {
                    control.config_rejected(generation, "not an engine slice".into());
                }
                Some(ControlEvent::Socket { socket: PassedSocket::Peer { role }, fd }) => {
                    let stream = child::unix_stream(fd)?;
                    match role {
                        Role::Receiver => {
                            link::connect(stream, receiver, received_tx.clone(), control.clone());
                            // A fresh receiver knows nothing: give it the whole table.
                            receiver.send(state.host_table());
                        }
                        Role::Web => {
                            link::connect(stream, web, web_tx.clone(), control.clone());
                            // A fresh web knows nothing either.
                            web.send(EngineToWeb::Changes { changes: vec![Change::Resync {}] });
                        }
                        Role::Notifier => {
                            link::connect(stream, notifier, notifier_tx.clone(), control.clone());
                            // A restarted notifier may have lost what was in flight: everything
                            // not reported done goes again, with the same ids.
                            if notifier_attached {
                                handoff.replace(state.pending_notifications(hb_ipc::now_ms()));
                            }
                            notifier_attached = true;
                            // It knows only the file's channels and users' choices.
                            state.routing_changed = true;
                        }
                        Role::Dnsupdate => {
                            link::connect(stream, dnsupdate, dnsupdate_tx.clone(), control.clone());
                            // A restarted updater lost its queue: every record is asked for
                            // again (the first time, the hosts are not restored yet).
                            if started {
                                state.dns_resync();
                            }
                        }
                        Role::Engine => tracing::warn!("Edge to myself; closing it."),
                    }
                }
                Some(ControlEvent::Socket { socket, .. }) => tracing::warn!(?socket, "Unexpected socket; closing it."),
                // Only the web asks for the server's figures.
                Some(ControlEvent::Stats { .. }) => {}
                Some(ControlEvent::Start) => {
                    // Opened now, after the privilege drop, as the engine's own user.
                    let config = state.config().cloned();
                    journal = config.as_ref().and_then(|c| journal::Journal::open(&c.journal));
                    if let Some(c) = config {
                        let path = c.state_dir.join(STORE_FILE);
                        let db = store::open(&path)?;
                        let loaded = store::load(&db, EVENTS_KEPT)?;
                        tracing::info!(
                            hosts = loaded.hosts.len(),
                            alerts = loaded.alerts.len(),
                            outbox = loaded.outbox.len(),
                            "Store opened."
                        );
                        state.restore(loaded, hb_ipc::now_ms());
                        let retention = store::Retention {
                            samples: c.sample_count,
                            events: c.event_retention,
                            pings: c.ping_retention,
                        };
                        let committed_tx = committed_tx.clone();
                        state.attach_store(store::spawn_writer(db, retention, move |n| {
                            let _ = committed_tx.send(n);
                        }));
                        reader = Some(store::spawn_reader(&path)?);
                    }
                    // Whatever the last run left undelivered goes out first.
                    let pending = state.pending_notifications(hb_ipc::now_ms());
                    if !pending.is_empty() {
                        tracing::info!(count = pending.len(), "Handing undelivered notifications to the notifier again.");
                    }
                    handoff.extend(pending);
                    // Records decided before a crash may not have been made.
                    state.dns_resync();
                    started = true;
                    tracing::info!("Running.");
                }
                Some(ControlEvent::Request { id, query }) => {
                    let reply = state.query(query, hb_ipc::now_ms());
                    feed.send(&links.web, std::mem::take(&mut state.changes));
                    match reply {
                        Reply::Now(answer) => {
                            let control = control.clone();
                            state.answer_when_stored(answer, move |a| control.answer(id, a));
                        }
                        Reply::Store(read) => {
                            let control = control.clone();
                            ask_store(reader.as_ref(), read, move |a| control.answer(id, a));
                        }
                    }
                }
            },
            Some(msg) = received.recv(), if started => {
                if let Some(journal) = journal.as_mut() {
                    match &msg {
                        ReceiverToEngine::Received { source, received_ms, message, .. } => {
                            journal.received(*received_ms, *source, message.get());
                        }
                        ReceiverToEngine::Rejected { source, received_ms, reason, detail } => {
                            journal.rejected(*received_ms, *source, reason, detail);
                        }
                        ReceiverToEngine::Drained { .. } | ReceiverToEngine::Lost { .. } => {}
                    }
                    // Flush once what has arrived is drained: one write per burst.
                    if received.is_empty() {
                        journal.flush();
                    }
                    if journal.failed > 0 {
                        state.set_counter("journal_failed", journal.failed);
                    }
                }
                state.received(msg);
            }
            Some(WebToEngine::Request { id, query }) = web_requests.recv(), if started => {
                // What a change made through the API changed goes out ahead of its answer
                // (figures heard meanwhile wait for the tick).
                let reply = state.query(query, hb_ipc::now_ms());
                feed.send(&links.web, std::mem::take(&mut state.changes));
                match reply {
                    Reply::Now(answer) => {
                        let web = web.clone();
                        state.answer_when_stored(answer, move |answer| {
                            web.send(EngineToWeb::Answer { re: id, answer });
                        });
                    }
                    Reply::Store(read) => {
                        let web = web.clone();
                        ask_store(reader.as_ref(), read, move |answer| {
                            web.send(EngineToWeb::Answer { re: id, answer });
                        });
                    }
                }
            }
            Some(msg) = from_notifier.recv(), if started => match msg {
                NotifierToEngine::Delivered { id, channel } => {
                    state.channel_delivered(id, channel, hb_ipc::now_ms());
                }
                NotifierToEngine::Done { id, delivered, failed } => {
                    state.notification_done(id, delivered, failed, hb_ipc::now_ms());
                }
            },
            Some(DnsupdateToEngine::Outcome { host, outcome, text }) = from_dnsupdate.recv(), if started => {
                state.dns_outcome(host, outcome, text, hb_ipc::now_ms());
            }
            Some(batch) = committed.recv() => {
                handoff.extend(state.committed(batch, hb_ipc::now_ms()));
            }
        }
        drain(&mut state, &links, &mut handoff);
        handoff.pump(notifier);
    }
}

fn ask_store(
    reader: Option<&store::Reader>,
    read: store::Read,
    reply: impl FnOnce(hb_ipc::edge::Answer) + Send + 'static,
) {
    match reader {
        Some(reader) => reader.ask(read, reply),
        None => reply(hb_ipc::edge::Answer::Error {
            message: "the store is not open".into(),
        }),
    }
}
