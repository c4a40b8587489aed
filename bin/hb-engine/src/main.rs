//! hb-engine: host state. In this cut it keeps hosts, their latest plugin data and recent
//! events in memory and answers queries; the store, journal and alerting land with their
//! issues.

#![forbid(unsafe_code)]

use hb_engine::{journal, liveness, store};

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::process::ExitCode;

use hb_ipc::Role;
use hb_ipc::config::{EngineConfig, RoleConfig};
use hb_ipc::control::PassedSocket;
use hb_ipc::edge::{
    Answer, EngineToReceiver, EngineToWeb, EventSummary, HostSummary, Query, QueuedCommand,
    ReceiverToEngine, Silent, WebToEngine,
};
use hb_proto::message::ClientMessage;
use hb_supervisor::child::{self, ControlEvent, ControlSender};
use hb_supervisor::link::{self, Link};
use tokio::sync::mpsc;

/// Hosts tracked at most; datagrams from further new names are refused and counted (an
/// unauthenticated sender could otherwise invent names until memory runs out).
const MAX_HOSTS: usize = 100_000;
/// Plugins kept per host, and bytes of plugin data per host (as JSON).
const MAX_PLUGINS: usize = 64;
const MAX_PLUGIN_BYTES: usize = 1 << 20;
/// The store's file in `state_dir`.
const STORE_FILE: &str = "hb.sqlite";
/// How often deadlines are checked: states change at most this late.
const DEADLINE_TICK_MS: u64 = 100;
/// Answered command ids remembered to recognise repeated results.
const ANSWERED_KEPT: usize = 4096;
/// Commands waiting for one host at most (they ride in every ACK to it).
const MAX_QUEUED: usize = 16;
/// Events kept for queries (the original's `/api/0/messages` shows 30).
const EVENTS_KEPT: usize = 30;

fn main() -> ExitCode {
    child::run(Role::Engine, run)
}

struct Host {
    last_seen_ms: u64,
    address: SocketAddr,
    announced_interval: Option<u32>,
    heartbeats: u64,
    rtt_ms: Option<f64>,
    version: Option<String>,
    signed: bool,
    /// Latest data per plugin, with its size as JSON.
    plugins: BTreeMap<String, (serde_json::Map<String, serde_json::Value>, usize)>,
    /// `seq` of the last boot or shutdown notice, so a retransmitted one counts once.
    last_notice_seq: Option<u64>,
}

/// One thing that happened, for the event list.
struct Event {
    at_ms: u64,
    host: String,
    text: String,
}

struct State {
    config: Option<EngineConfig>,
    hosts: BTreeMap<String, Host>,
    events: VecDeque<Event>,
    counters: BTreeMap<String, u64>,
    /// Commands waiting for each host, until its result arrives.
    queues: BTreeMap<String, Vec<QueuedCommand>>,
    next_command_id: u64,
    /// Ids of commands whose result arrived, newest last.
    answered: VecDeque<u64>,
    liveness: liveness::Liveness,
    /// The store's writer thread.
    store: Option<store::Writer>,
}

impl State {
    fn new() -> State {
        State {
            config: None,
            hosts: BTreeMap::new(),
            events: VecDeque::new(),
            counters: BTreeMap::new(),
            queues: BTreeMap::new(),
            // Ids from the clock, so they stay unique across engine restarts (hosts run each
            // id once).
            next_command_id: hb_ipc::now_ms(),
            answered: VecDeque::new(),
            liveness: liveness::Liveness::default(),
            store: None,
        }
    }

    /// Queues a command or update; the answer, and the receiver's new queue for the host.
    fn queue_command(
        &mut self,
        host: String,
        command: Option<String>,
    ) -> (Answer, Option<EngineToReceiver>) {
        if let Err(e) = hb_proto::names::check_host_name(&host) {
            return (Answer::Error { message: e }, None);
        }
        if let Some(name) = &command
            && let Err(e) = hb_proto::datagram::check_command_name(name)
        {
            return (
                Answer::Error {
                    message: e.to_string(),
                },
                None,
            );
        }
        let queue = self.queues.entry(host.clone()).or_default();
        if queue.len() >= MAX_QUEUED {
            let message = format!("{host} already has {MAX_QUEUED} commands waiting");
            return (Answer::Error { message }, None);
        }
        self.next_command_id += 1;
        let id = self.next_command_id;
        queue.push(QueuedCommand {
            id,
            command: command.clone(),
        });
        let queue = queue.clone();
        let what = command.map_or("update".to_string(), |c| format!("command {c:?}"));
        self.event(
            hb_ipc::now_ms(),
            &host,
            format!("{host}: {what} queued as {id}"),
        );
        (
            Answer::Queued { id },
            Some(EngineToReceiver::Queue { host, queue }),
        )
    }

    fn count(&mut self, name: &str) {
        *self.counters.entry(name.to_string()).or_insert(0) += 1;
    }

    fn event(&mut self, at_ms: u64, host: &str, text: String) {
        tracing::info!(host, "{text}");
        self.write(store::Write::Event {
            at_ms,
            host: host.to_string(),
            text: text.clone(),
        });
        if self.events.len() == EVENTS_KEPT {
            self.events.pop_front();
        }
        self.events.push_back(Event {
            at_ms,
            host: host.to_string(),
            text,
        });
    }

    fn write(&self, write: store::Write) {
        if let Some(store) = &self.store {
            store.send(write);
        }
    }

    /// Takes in what the store held: hosts (shown, not yet timed: their deadlines start with
    /// their next heartbeat) and the newest events.
    fn restore(&mut self, loaded: store::Loaded) {
        for h in loaded.hosts {
            let Ok(address) = h.address.parse() else {
                continue;
            };
            self.hosts.insert(
                h.name,
                Host {
                    last_seen_ms: h.last_seen_ms,
                    address,
                    announced_interval: h.interval,
                    heartbeats: 0,
                    rtt_ms: h.rtt_ms,
                    version: h.version,
                    signed: h.signed,
                    plugins: BTreeMap::new(),
                    last_notice_seq: None,
                },
            );
        }
        for (at_ms, host, text) in loaded.events {
            self.events.push_back(Event { at_ms, host, text });
        }
    }

    /// Applies a report from the receiver and stores the host's new state.
    fn received(&mut self, msg: ReceiverToEngine) -> Option<EngineToReceiver> {
        let host = match &msg {
            ReceiverToEngine::Received { host, .. } => Some(host.clone()),
            ReceiverToEngine::Rejected { .. } => None,
        };
        let update = self.apply(msg);
        if let Some(h) = host
            .as_deref()
            .and_then(|name| self.hosts.get(name).map(|h| (name, h)))
        {
            let stored = store::StoredHost {
                name: h.0.to_string(),
                last_seen_ms: h.1.last_seen_ms,
                address: h.1.address.to_string(),
                interval: h.1.announced_interval,
                version: h.1.version.clone(),
                rtt_ms: h.1.rtt_ms,
                signed: h.1.signed,
            };
            self.write(store::Write::Host(stored));
        }
        update
    }

    /// Applies a report from the receiver; returns what the receiver must learn from it
    /// (a host's first plugin data, a command answered).
    fn apply(&mut self, msg: ReceiverToEngine) -> Option<EngineToReceiver> {
        match msg {
            ReceiverToEngine::Rejected {
                source,
                reason,
                detail,
                ..
            } => {
                self.count(&format!("rejected_{reason}"));
                tracing::debug!(%source, reason, detail, "Datagram rejected by the receiver.");
                None
            }
            ReceiverToEngine::Received {
                host,
                source,
                received_ms,
                signed,
                message,
            } => {
                let message = match hb_proto::datagram::parse_client(message) {
                    Ok(m) => m,
                    Err(e) => {
                        // The receiver validated it; this means the two disagree.
                        tracing::error!(host, error = %e, "Receiver forwarded an invalid message.");
                        self.count("invalid_forwarded");
                        return None;
                    }
                };
                self.count(&format!("received_{}", message.id()));
                if !self.hosts.contains_key(&host) && self.hosts.len() >= MAX_HOSTS {
                    self.count("hosts_refused");
                    return None;
                }
                let entry = self.hosts.entry(host.clone()).or_insert_with(|| Host {
                    last_seen_ms: received_ms,
                    address: source,
                    announced_interval: None,
                    heartbeats: 0,
                    rtt_ms: None,
                    version: None,
                    signed,
                    plugins: BTreeMap::new(),
                    last_notice_seq: None,
                });
                if entry.address != source {
                    let text = format!("{host} moved from {} to {source}", entry.address);
                    entry.address = source;
                    self.event(received_ms, &host, text);
                }
                let entry = self.hosts.get_mut(&host)?;
                entry.last_seen_ms = received_ms;
                entry.signed = signed;
                match message {
                    ClientMessage::Heartbeat(h) => {
                        entry.heartbeats += 1;
                        entry.announced_interval = h.interval.or(entry.announced_interval);
                        entry.rtt_ms = h.rtt.or(entry.rtt_ms);
                        entry.version = h.ver.or(entry.version.take());
                        let timing = self.timing(&host);
                        if let Some(liveness::Change::Recovered { silent_ms }) =
                            self.liveness.heartbeat(&host, received_ms, timing)
                        {
                            let text = format!("{host} recovered after {} s", silent_ms / 1000);
                            self.event(received_ms, &host, text);
                        }
                        None
                    }
                    ClientMessage::Plugin(p) => {
                        let first = entry.plugins.is_empty();
                        let size = serde_json::to_vec(&p.data).map_or(usize::MAX, |v| v.len());
                        let others: usize = entry
                            .plugins
                            .iter()
                            .filter(|(name, _)| **name != p.plugin)
                            .map(|(_, (_, n))| n)
                            .sum();
                        let new_plugin = !entry.plugins.contains_key(&p.plugin);
                        if others.saturating_add(size) > MAX_PLUGIN_BYTES
                            || (new_plugin && entry.plugins.len() >= MAX_PLUGINS)
                        {
                            self.count("plugin_data_refused");
                            return None;
                        }
                        entry.plugins.insert(p.plugin, (p.data, size));
                        first.then_some(EngineToReceiver::HostHasData { host })
                    }
                    ClientMessage::Boot(n) | ClientMessage::Shutdown(n)
                        if n.header.seq.is_some() && entry.last_notice_seq == n.header.seq =>
                    {
                        self.count("duplicate_notice");
                        None
                    }
                    ClientMessage::Boot(n) => {
                        entry.last_notice_seq = n.header.seq;
                        entry.version = n.ver.or(entry.version.take());
                        self.event(received_ms, &host, format!("{host} booted"));
                        None
                    }
                    ClientMessage::Shutdown(n) => {
                        entry.last_notice_seq = n.header.seq;
                        self.liveness.shutdown(&host, received_ms);
                        self.event(received_ms, &host, format!("{host} is shutting down"));
                        None
                    }
                    ClientMessage::Message(m) => {
                        let answered = m.cmd.and_then(|id| {
                            let queue = self.queues.get_mut(&host)?;
                            let before = queue.len();
                            queue.retain(|c| c.id != id);
                            (queue.len() != before).then(|| EngineToReceiver::Queue {
                                host: host.clone(),
                                queue: queue.clone(),
                            })
                        });
                        let text = match (m.cmd, m.exit) {
                            (Some(id), Some(code)) => {
                                format!("{host}: command {id} exited {code}: {}", m.text)
                            }
                            (Some(id), None) => format!("{host}: command {id}: {}", m.text),
                            _ => format!("{host}: {}", m.text),
                        };
                        // A result can arrive more than once (the host resends it while the
                        // command still rides in ACKs); it is an event once.
                        if let Some(id) = m.cmd {
                            if answered.is_none() && self.answered.contains(&id) {
                                self.count("duplicate_result");
                                return None;
                            }
                            self.answered.push_back(id);
                            if self.answered.len() > ANSWERED_KEPT {
                                self.answered.pop_front();
                            }
                        }
                        self.event(received_ms, &host, text);
                        answered
                    }
                }
            }
        }
    }

    /// Answers a query from the supervisor or the web; queueing a command also tells the
    /// receiver, which carries the queue in its ACKs.
    fn query(&mut self, query: Query, receiver: &Link<EngineToReceiver>) -> Answer {
        match query {
            Query::QueueCommand { host, command } => {
                let (answer, update) = self.queue_command(host, command);
                if let Some(update) = update {
                    receiver.send(update);
                }
                answer
            }
            Query::ListHosts {} => Answer::Hosts {
                hosts: self
                    .hosts
                    .iter()
                    .map(|(name, h)| HostSummary {
                        name: name.clone(),
                        last_seen_ms: h.last_seen_ms,
                        address: h.address,
                        interval: self.interval(name, h),
                        heartbeats: h.heartbeats,
                        rtt_ms: h.rtt_ms,
                        version: h.version.clone(),
                        signed: h.signed,
                        state: self
                            .liveness
                            .state(name)
                            .map_or("up", liveness::State::name)
                            .into(),
                    })
                    .collect(),
            },
            Query::Messages {} => Answer::Messages {
                messages: self
                    .events
                    .iter()
                    .map(|e| EventSummary {
                        time_ms: e.at_ms,
                        host: e.host.clone(),
                        msg: e.text.clone(),
                    })
                    .collect(),
            },
            Query::Counters {} => {
                let mut counters = self.counters.clone();
                counters.insert("hosts".into(), self.hosts.len() as u64);
                counters.insert("deadlines".into(), self.liveness.pending() as u64);
                Answer::Counters { counters }
            }
        }
    }

    /// The configured interval wins over the announced one, which wins over the default.
    fn interval(&self, name: &str, host: &Host) -> u32 {
        let config = self.config.as_ref();
        config
            .and_then(|c| c.hosts.get(name))
            .and_then(|h| h.interval)
            .or(host.announced_interval)
            .or(config.map(|c| c.interval))
            .unwrap_or(10)
    }

    /// The deadlines that apply to `host` now.
    fn timing(&self, host: &str) -> liveness::Timing {
        let interval = self.hosts.get(host).map_or(10, |h| self.interval(host, h));
        let config = self.config.as_ref();
        liveness::Timing {
            interval_ms: u64::from(interval) * 1000,
            grace_ms: config.map_or(2000, |c| (c.grace * 1000.0) as u64),
            max_missed: config.map_or(2, |c| c.max_missed),
        }
    }

    /// Applies the deadlines due by `now`.
    fn tick(&mut self, now: u64) {
        for (host, change) in self.liveness.tick(now) {
            let watched = self.config.as_ref().is_some_and(|c| {
                c.hosts.get(&host).and_then(|h| h.watch).unwrap_or(false)
                    || c.watchhosts.contains(&host)
            });
            match change {
                liveness::Change::Overdue => tracing::info!(host, "Overdue."),
                liveness::Change::Down => {
                    let text = if watched {
                        format!("{host} down")
                    } else {
                        format!("{host} down (not watched)")
                    };
                    self.event(now, &host, text);
                }
                liveness::Change::Recovered { .. } => {}
            }
        }
    }

    fn with_data(&self) -> Vec<String> {
        self.hosts
            .iter()
            .filter(|(_, h)| !h.plugins.is_empty())
            .map(|(name, _)| name.clone())
            .collect()
    }
}

async fn run(
    mut events: mpsc::UnboundedReceiver<ControlEvent>,
    control: ControlSender,
) -> anyhow::Result<()> {
    let receiver = Link::<EngineToReceiver>::new(Role::Receiver);
    let web = Link::<EngineToWeb>::new(Role::Web);
    let notifier = Link::<Silent>::new(Role::Notifier);
    let dnsupdate = Link::<Silent>::new(Role::Dnsupdate);
    let (received_tx, mut received) = mpsc::channel::<ReceiverToEngine>(4096);
    let (web_tx, mut web_requests) = mpsc::channel::<WebToEngine>(256);
    let (silent_tx, _keep) = mpsc::channel::<Silent>(1);
    let mut state = State::new();
    let mut journal: Option<journal::Journal> = None;
    let mut started = false;
    let mut deadlines = tokio::time::interval(std::time::Duration::from_millis(DEADLINE_TICK_MS));
    deadlines.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = deadlines.tick(), if started => state.tick(hb_ipc::now_ms()),
            event = events.recv() => match event {
                None => {
                    if let Some(journal) = journal.as_mut() {
                        journal.flush();
                    }
                    if let Some(store) = state.store.take() {
                        store.close();
                    }
                    return Ok(());
                }
                Some(ControlEvent::Config { generation, config: RoleConfig::Engine(c) }) => {
                    state.config = Some(*c);
                    control.config_applied(generation);
                }
                Some(ControlEvent::Config { generation, .. }) => {
                    control.config_rejected(generation, "not an engine slice".into());
                }
                Some(ControlEvent::Socket { socket: PassedSocket::Peer { role }, fd }) => {
                    let stream = child::unix_stream(fd)?;
                    match role {
                        Role::Receiver => {
                            link::connect(stream, &receiver, received_tx.clone(), control.clone());
                            // A fresh receiver knows nothing: give it the whole table.
                            receiver.send(EngineToReceiver::HostTable {
                                with_data: state.with_data(),
                                queues: state.queues.clone(),
                            });
                        }
                        Role::Web => link::connect(stream, &web, web_tx.clone(), control.clone()),
                        Role::Notifier => link::connect(stream, &notifier, silent_tx.clone(), control.clone()),
                        Role::Dnsupdate => link::connect(stream, &dnsupdate, silent_tx.clone(), control.clone()),
                        Role::Engine => tracing::warn!("Edge to myself; closing it."),
                    }
                }
                Some(ControlEvent::Socket { socket, .. }) => tracing::warn!(?socket, "Unexpected socket; closing it."),
                Some(ControlEvent::Start) => {
                    // Opened now, after the privilege drop, as the engine's own user.
                    journal = state.config.as_ref().and_then(|c| journal::Journal::open(&c.journal));
                    if let Some(dir) = state.config.as_ref().map(|c| c.state_dir.clone()) {
                        let db = store::open(&dir.join(STORE_FILE))?;
                        let loaded = store::load(&db, EVENTS_KEPT)?;
                        tracing::info!(hosts = loaded.hosts.len(), "Store opened.");
                        state.restore(loaded);
                        state.store = Some(store::spawn_writer(db));
                    }
                    started = true;
                    tracing::info!("Running.");
                }
                Some(ControlEvent::Request { id, query }) => {
                    control.answer(id, state.query(query, &receiver));
                }
            },
            Some(msg) = received.recv(), if started => {
                if let Some(journal) = journal.as_mut() {
                    match &msg {
                        ReceiverToEngine::Received { source, received_ms, message, .. } => {
                            journal.received(*received_ms, *source, message);
                        }
                        ReceiverToEngine::Rejected { source, received_ms, reason, detail } => {
                            journal.rejected(*received_ms, *source, reason, detail);
                        }
                    }
                    // Flush once what has arrived is drained: one write per burst.
                    if received.is_empty() {
                        journal.flush();
                    }
                    if journal.failed > 0 {
                        state.counters.insert("journal_failed".into(), journal.failed);
                    }
                }
                if let Some(update) = state.received(msg) {
                    receiver.send(update);
                }
            }
            Some(WebToEngine::Request { id, query }) = web_requests.recv(), if started => {
                web.send(EngineToWeb::Answer { re: id, answer: state.query(query, &receiver) });
            }
        }
    }
}
