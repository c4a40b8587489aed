//! hb-engine: host state. In this first cut it tracks last-seen times in memory and answers
//! host queries; the store, journal and alerting land with their issues.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;

use hb_ipc::Role;
use hb_ipc::config::{EngineConfig, RoleConfig};
use hb_ipc::control::PassedSocket;
use hb_ipc::edge::{
    Answer, EngineToWeb, HostSummary, Query, ReceiverToEngine, Silent, WebToEngine,
};
use hb_supervisor::child::{self, ControlEvent, ControlSender};
use hb_supervisor::link::{self, Link};
use tokio::sync::mpsc;

fn main() -> ExitCode {
    child::run(Role::Engine, run)
}

struct Host {
    last_seen_ms: u64,
    address: SocketAddr,
    announced_interval: Option<u32>,
    heartbeats: u64,
}

#[derive(Default)]
struct State {
    config: Option<EngineConfig>,
    hosts: BTreeMap<String, Host>,
}

impl State {
    fn heartbeat(&mut self, msg: ReceiverToEngine) {
        match msg {
            ReceiverToEngine::HeartbeatReceived {
                host,
                interval,
                source,
                received_ms,
            } => {
                let entry = self.hosts.entry(host).or_insert(Host {
                    last_seen_ms: received_ms,
                    address: source,
                    announced_interval: interval,
                    heartbeats: 0,
                });
                entry.last_seen_ms = received_ms;
                entry.address = source;
                entry.announced_interval = interval.or(entry.announced_interval);
                entry.heartbeats += 1;
            }
        }
    }

    fn answer(&self, query: Query) -> Answer {
        match query {
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
                    })
                    .collect(),
            },
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
}

async fn run(
    mut events: mpsc::UnboundedReceiver<ControlEvent>,
    control: ControlSender,
) -> anyhow::Result<()> {
    let receiver = Link::<Silent>::new(Role::Receiver);
    let web = Link::<EngineToWeb>::new(Role::Web);
    let notifier = Link::<Silent>::new(Role::Notifier);
    let dnsupdate = Link::<Silent>::new(Role::Dnsupdate);
    let (heartbeats_tx, mut heartbeats) = mpsc::channel::<ReceiverToEngine>(4096);
    let (web_tx, mut web_requests) = mpsc::channel::<WebToEngine>(256);
    let (silent_tx, _keep) = mpsc::channel::<Silent>(1);
    let mut state = State::default();
    let mut started = false;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                None => return Ok(()),
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
                        Role::Receiver => link::connect(stream, &receiver, heartbeats_tx.clone(), control.clone()),
                        Role::Web => link::connect(stream, &web, web_tx.clone(), control.clone()),
                        Role::Notifier => link::connect(stream, &notifier, silent_tx.clone(), control.clone()),
                        Role::Dnsupdate => link::connect(stream, &dnsupdate, silent_tx.clone(), control.clone()),
                        Role::Engine => tracing::warn!("Edge to myself; closing it."),
                    }
                }
                Some(ControlEvent::Socket { socket, .. }) => tracing::warn!(?socket, "Unexpected socket; closing it."),
                Some(ControlEvent::Start) => {
                    started = true;
                    tracing::info!("Running.");
                }
                Some(ControlEvent::Request { id, query }) => control.answer(id, state.answer(query)),
            },
            Some(msg) = heartbeats.recv(), if started => state.heartbeat(msg),
            Some(WebToEngine::Request { id, query }) = web_requests.recv(), if started => {
                web.send(EngineToWeb::Answer { re: id, answer: state.answer(query) });
            }
        }
    }
}
