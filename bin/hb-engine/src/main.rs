//! hb-engine: host state, alerts, the notification outbox, the store and the journal. The
//! state lives in `state/`; this is the event loop that feeds it and sends out what it
//! decides.

#![forbid(unsafe_code)]

use hb_engine::feed::{ChangeFeed, Handoff};
use hb_engine::state::{EVENTS_KEPT, Reply, State};
use hb_engine::{journal, store};

use std::process::ExitCode;
use std::time::Duration;

use hb_child::link::{self, Link};
use hb_child::{self as child, Control, ControlEvent, ControlSender, Passed, Taken};
use hb_ipc::Role;
use hb_ipc::config::EngineConfig;
use hb_ipc::control::PassedSocket;
use hb_ipc::edge::{
    Change, DnsupdateToEngine, EngineToDnsupdate, EngineToNotifier, EngineToReceiver, EngineToWeb,
    Notification, NotifierToEngine, Query, ReceiverToEngine, WebToEngine,
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

/// Where the peers' messages to the engine go, for the links made when a peer's socket
/// arrives.
struct Inbound {
    received: mpsc::Sender<ReceiverToEngine>,
    web: mpsc::Sender<WebToEngine>,
    notifier: mpsc::Sender<NotifierToEngine>,
    dnsupdate: mpsc::Sender<DnsupdateToEngine>,
    committed: mpsc::UnboundedSender<Vec<Notification>>,
}

/// Everything the event loop works on but the queues it waits on.
struct Engine {
    state: State,
    links: Links,
    inbound: Inbound,
    feed: ChangeFeed,
    handoff: Handoff,
    journal: Option<journal::Journal>,
    reader: Option<store::Reader>,
    started: bool,
    notifier_attached: bool,
}

impl Control for Engine {
    const ROLE: Role = Role::Engine;
    // The engine answers every query; a query it has nothing for is answered by `State`.
    const REFUSED_QUERY: &'static str = "the engine cannot answer this query";
    type Slice = EngineConfig;

    fn configure(&mut self, config: EngineConfig) -> Result<(), String> {
        self.state.configure(config, hb_ipc::now_ms())
    }

    fn socket(&mut self, passed: Passed, control: &ControlSender) -> Taken {
        let Passed {
            socket: PassedSocket::Peer { role },
            fd,
        } = passed
        else {
            return Ok(Some(passed.socket));
        };
        let (links, inbound, control) = (&self.links, &self.inbound, control.clone());
        match role {
            Role::Receiver => {
                link::connect(fd, &links.receiver, inbound.received.clone(), control)?;
                // A fresh receiver knows nothing: give it the whole table.
                links.receiver.send(self.state.host_table());
            }
            Role::Web => {
                link::connect(fd, &links.web, inbound.web.clone(), control)?;
                // A fresh web knows nothing either.
                let changes = vec![Change::Resync {}];
                links.web.send(EngineToWeb::Changes { changes });
            }
            Role::Notifier => {
                link::connect(fd, &links.notifier, inbound.notifier.clone(), control)?;
                // A restarted notifier may have lost what was in flight: everything not
                // reported done goes again, with the same ids.
                if self.notifier_attached {
                    let pending = self.state.pending_notifications(hb_ipc::now_ms());
                    self.handoff.replace(pending);
                }
                self.notifier_attached = true;
                // It knows only the file's channels and users' choices.
                self.state.routing_changed = true;
            }
            Role::Dnsupdate => {
                link::connect(fd, &links.dnsupdate, inbound.dnsupdate.clone(), control)?;
                // A restarted updater lost its queue: every record is asked for again (the
                // first time, the hosts are not restored yet).
                if self.started {
                    self.state.dns_resync();
                }
            }
            Role::Engine => tracing::warn!("Edge to myself; closing it."),
        }
        Ok(None)
    }

    async fn start(&mut self) -> anyhow::Result<()> {
        // Opened now, after the privilege drop, as the engine's own user.
        let config = self.state.config().cloned();
        self.journal = config
            .as_ref()
            .and_then(|c| journal::Journal::open(&c.journal));
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
            self.state.restore(loaded, hb_ipc::now_ms());
            let retention = store::Retention {
                samples: c.sample_count,
                events: c.event_retention,
                pings: c.ping_retention,
            };
            let committed = self.inbound.committed.clone();
            self.state
                .attach_store(store::spawn_writer(db, retention, move |n| {
                    let _ = committed.send(n);
                }));
            self.reader = Some(store::spawn_reader(&path)?);
        }
        // Whatever the last run left undelivered goes out first.
        let pending = self.state.pending_notifications(hb_ipc::now_ms());
        if !pending.is_empty() {
            tracing::info!(
                count = pending.len(),
                "Handing undelivered notifications to the notifier again."
            );
        }
        self.handoff.extend(pending);
        // Records decided before a crash may not have been made.
        self.state.dns_resync();
        self.started = true;
        tracing::info!("Running.");
        Ok(())
    }

    fn request(&mut self, id: u64, query: Query, control: &ControlSender) -> bool {
        let reply = self.state.query(query, hb_ipc::now_ms());
        let changes = std::mem::take(&mut self.state.changes);
        self.feed.send(&self.links.web, changes);
        let control = control.clone();
        match reply {
            Reply::Now(answer) => {
                self.state
                    .answer_when_stored(answer, move |a| control.answer(id, a));
            }
            Reply::Store(read) => {
                ask_store(self.reader.as_ref(), read, move |a| control.answer(id, a));
            }
        }
        true
    }
}

impl Engine {
    fn new(inbound: Inbound) -> Engine {
        Engine {
            state: State::default(),
            links: Links {
                receiver: Link::new(Role::Receiver),
                web: Link::new(Role::Web),
                notifier: Link::new(Role::Notifier),
                dnsupdate: Link::new(Role::Dnsupdate),
            },
            inbound,
            feed: ChangeFeed::default(),
            handoff: Handoff::default(),
            journal: None,
            reader: None,
            started: false,
            notifier_attached: false,
        }
    }

    /// The once-a-second work; `seconds` since the start.
    fn every_second(&mut self, seconds: u64) {
        let state = &mut self.state;
        state.second(hb_ipc::now_ms());
        state.save_hosts(false);
        if seconds.is_multiple_of(10) {
            hb_child::release_free_memory();
        }
        if seconds.is_multiple_of(60) {
            self.handoff
                .extend(state.overdue_notifications(hb_ipc::now_ms()));
        }
        if self.feed.left_out > 0 {
            state.set_counter("web_changes_left_out", self.feed.left_out);
        }
    }

    /// A report from the receiver, journaled first; `burst_over`: nothing more is queued.
    fn heard(&mut self, msg: ReceiverToEngine, burst_over: bool) {
        if let Some(journal) = self.journal.as_mut() {
            match &msg {
                ReceiverToEngine::Received {
                    source,
                    received_ms,
                    message,
                    ..
                } => journal.received(*received_ms, *source, message.get()),
                ReceiverToEngine::Rejected {
                    source,
                    received_ms,
                    reason,
                    detail,
                } => journal.rejected(*received_ms, *source, reason, detail),
                ReceiverToEngine::Drained { .. } | ReceiverToEngine::Lost { .. } => {}
            }
            // Flush once what has arrived is drained: one write per burst.
            if burst_over {
                journal.flush();
            }
            if journal.failed > 0 {
                self.state.set_counter("journal_failed", journal.failed);
            }
        }
        self.state.received(msg);
    }

    /// A query from the web, answered on its link.
    fn web_asked(&mut self, id: u64, query: Query) {
        // What a change made through the API changed goes out ahead of its answer (figures
        // heard meanwhile wait for the tick).
        let reply = self.state.query(query, hb_ipc::now_ms());
        let changes = std::mem::take(&mut self.state.changes);
        self.feed.send(&self.links.web, changes);
        let web = self.links.web.clone();
        let answer = move |answer| {
            web.send(EngineToWeb::Answer { re: id, answer });
        };
        match reply {
            Reply::Now(now) => self.state.answer_when_stored(now, answer),
            Reply::Store(read) => ask_store(self.reader.as_ref(), read, answer),
        }
    }

    fn notifier_said(&mut self, msg: NotifierToEngine) {
        match msg {
            NotifierToEngine::Delivered { id, channel } => {
                self.state.channel_delivered(id, channel, hb_ipc::now_ms());
            }
            NotifierToEngine::Done {
                id,
                delivered,
                failed,
            } => {
                let now_ms = hb_ipc::now_ms();
                self.state.notification_done(id, delivered, failed, now_ms);
            }
        }
    }

    /// The supervisor is gone or said shut down: what is held is written.
    fn stop(&mut self) {
        if let Some(journal) = self.journal.as_mut() {
            journal.flush();
        }
        self.state.close_store();
    }
}

async fn run(
    mut events: mpsc::UnboundedReceiver<ControlEvent>,
    control: ControlSender,
) -> anyhow::Result<()> {
    let (received_tx, mut received) = mpsc::channel::<ReceiverToEngine>(4096);
    let (web_tx, mut web_requests) = mpsc::channel::<WebToEngine>(256);
    let (notifier_tx, mut from_notifier) = mpsc::channel::<NotifierToEngine>(1024);
    let (dnsupdate_tx, mut from_dnsupdate) = mpsc::channel::<DnsupdateToEngine>(1024);
    // Notifications the store's writer has committed, to hand to the notifier.
    let (committed_tx, mut committed) = mpsc::unbounded_channel::<Vec<Notification>>();
    let mut engine = Engine::new(Inbound {
        received: received_tx,
        web: web_tx,
        notifier: notifier_tx,
        dnsupdate: dnsupdate_tx,
        committed: committed_tx,
    });
    let mut deadlines = tokio::time::interval(Duration::from_millis(DEADLINE_TICK_MS));
    deadlines.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut flushes = tokio::time::interval(SECOND);
    let mut seconds = 0u64;
    flushes.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut feed_ticks = tokio::time::interval(CHANGES_EVERY);
    feed_ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let started = engine.started;
        tokio::select! {
            _ = deadlines.tick(), if started => engine.state.tick_heard(hb_ipc::now_ms()),
            _ = feed_ticks.tick(), if started => {
                feed_tick(&mut engine.state, &engine.links, &mut engine.feed);
            }
            _ = flushes.tick(), if started => {
                seconds += 1;
                engine.every_second(seconds);
            }
            event = events.recv() => match event {
                None => {
                    engine.stop();
                    return Ok(());
                }
                Some(event) => child::dispatch(&mut engine, event, &control).await?,
            },
            Some(msg) = received.recv(), if started => engine.heard(msg, received.is_empty()),
            Some(WebToEngine::Request { id, query }) = web_requests.recv(), if started => {
                engine.web_asked(id, query);
            }
            Some(msg) = from_notifier.recv(), if started => engine.notifier_said(msg),
            Some(DnsupdateToEngine::Outcome { host, outcome, text }) = from_dnsupdate.recv(), if started => {
                engine.state.dns_outcome(host, outcome, text, hb_ipc::now_ms());
            }
            Some(batch) = committed.recv() => {
                let now_ms = hb_ipc::now_ms();
                engine.handoff.extend(engine.state.committed(batch, now_ms));
            }
        }
        drain(&mut engine.state, &engine.links, &mut engine.handoff);
        engine.handoff.pump(&engine.links.notifier);
    }
}

fn ask_store(
    reader: Option<&store::Reader>,
    read: Query,
    reply: impl FnOnce(hb_ipc::edge::Answer) + Send + 'static,
) {
    match reader {
        Some(reader) => reader.ask(read, reply),
        None => reply(hb_ipc::edge::Answer::Error {
            message: "the store is not open".into(),
        }),
    }
}
