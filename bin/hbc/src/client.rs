//! The client's event loop.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use hb_proto::datagram::{Limits, decode_server, encode};
use hb_proto::message::{
    ClientMessage, Header, Heartbeat, Notice, PluginData, Queued, ServerMessage, TextMessage,
};
use hb_proto::sign::{self, ReplayGuard};
use tokio::net::UdpSocket;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::commands;
use crate::config::{Mode, Settings};

/// Datagrams over this are compressed (one Ethernet frame minus headers).
const COMPRESS_OVER: usize = 1200;
/// IPv6 addresses that never answered are dropped after this many missed heartbeats.
const IPV6_GIVE_UP: u32 = 3;
/// One-shot modes: attempts and the wait for an ACK after each.
const ONE_SHOT_TRIES: u32 = 3;
const ONE_SHOT_WAIT: Duration = Duration::from_secs(1);
/// Command ids remembered (with their results) so a command repeated in later ACKs runs once
/// and its result can be sent again if it was lost.
const DONE_COMMANDS_KEPT: usize = 1024;
/// Plugin data is sent again to a server that asks at most this often.
const RESEND_GAP: Duration = Duration::from_secs(5);
/// Commands running at once; more wait for a later ACK.
const MAX_RUNNING: usize = 4;

struct Target {
    addr: SocketAddr,
    acked_ever: bool,
    misses: u32,
    dropped: bool,
    last_rtt: Option<f64>,
    in_flight: HashMap<u64, Instant>,
}

struct Client {
    settings: Settings,
    v4: Option<UdpSocket>,
    v6: Option<UdpSocket>,
    targets: Vec<Target>,
    seq: u64,
    counter: u64,
    ack_guard: ReplayGuard,
    /// Command ids in the order they arrived, and their results once finished.
    done: VecDeque<u64>,
    results_by_id: HashMap<u64, Option<ClientMessage>>,
    running: usize,
    /// Only a long-running client takes commands; -1 and -m exit right away.
    accept_commands: bool,
    results: mpsc::UnboundedSender<(SocketAddr, u64, ClientMessage)>,
    /// Each plugin's latest data, sent again when a server says it has none.
    latest: std::collections::BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
    /// Bumped to run the info plugins again; when that was last done.
    refresh: tokio::sync::watch::Sender<u64>,
    refreshed_at: Option<Instant>,
}

pub async fn run(settings: Settings, mode: Mode) -> anyhow::Result<ExitCode> {
    let (results, mut results_rx) = mpsc::unbounded_channel();
    let v4 = UdpSocket::bind("0.0.0.0:0").await.ok();
    let v6 = UdpSocket::bind("[::]:0").await.ok();
    if v4.is_none() && v6.is_none() {
        anyhow::bail!("cannot open a UDP socket");
    }
    let now_ms = hb_proto::now_ms();
    let mut client = Client {
        targets: Vec::new(),
        v4,
        v6,
        seq: 0,
        // Signing counter: the clock in µs, so it keeps increasing across restarts.
        counter: now_ms.saturating_mul(1000),
        ack_guard: ReplayGuard::new(120_000),
        done: VecDeque::new(),
        results_by_id: HashMap::new(),
        running: 0,
        accept_commands: matches!(mode, Mode::Run),
        results,
        latest: std::collections::BTreeMap::new(),
        refresh: tokio::sync::watch::channel(0).0,
        refreshed_at: None,
        settings,
    };
    client.resolve().await;
    tracing::info!(
        name = %client.settings.name,
        interval = client.settings.interval,
        targets = ?client.targets.iter().map(|t| t.addr).collect::<Vec<_>>(),
        signed = client.settings.key.is_some(),
        "Starting."
    );
    if client.settings.boot {
        client.notice_to_first(true).await;
    }
    match mode {
        Mode::Message(text) => {
            let ok = client
                .one_shot(|header| {
                    ClientMessage::Message(TextMessage {
                        header,
                        text: text.clone(),
                        ..TextMessage::default()
                    })
                })
                .await;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Mode::Once => {
            let interval = client.settings.interval;
            let ok = client
                .one_shot(|header| client_heartbeat(header, interval, None))
                .await;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Mode::Run => {
            let (plugin_tx, mut plugin_rx) = mpsc::unbounded_channel();
            let specs = std::mem::take(&mut client.settings.plugins);
            tracing::info!(plugins = ?specs.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), "Starting plugins.");
            crate::plugins::start(specs, plugin_tx, client.refresh.subscribe());
            let mut term = signal(SignalKind::terminate())?;
            let mut int = signal(SignalKind::interrupt())?;
            let mut tick =
                tokio::time::interval(Duration::from_secs(u64::from(client.settings.interval)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut buf4 = vec![0u8; 65_536];
            let mut buf6 = vec![0u8; 65_536];
            loop {
                tokio::select! {
                    _ = tick.tick() => client.heartbeat_round().await,
                    r = recv(client.v4.as_ref(), &mut buf4) => {
                        if let Some((n, from)) = r { client.handle(&buf4[..n], from).await; }
                    }
                    r = recv(client.v6.as_ref(), &mut buf6) => {
                        if let Some((n, from)) = r { client.handle(&buf6[..n], from).await; }
                    }
                    Some((to, id, msg)) = results_rx.recv() => client.finished(to, id, msg).await,
                    Some((plugin, data)) = plugin_rx.recv() => client.plugin_data(plugin, data).await,
                    _ = term.recv() => break,
                    _ = int.recv() => break,
                }
            }
            if client.settings.boot {
                client.notice_to_first(false).await;
            }
            tracing::info!("Stopped.");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn client_heartbeat(header: Header, interval: u32, rtt: Option<f64>) -> ClientMessage {
    ClientMessage::Heartbeat(Heartbeat {
        header,
        interval: Some(interval),
        rtt,
        ver: Some(env!("CARGO_PKG_VERSION").into()),
    })
}

/// `host`, `host:port`, `v4:port`, `[v6]` or `[v6]:port`; a bare IPv6 address has no port.
fn split_port(server: &str, default: u16) -> (&str, u16) {
    if let Some(rest) = server.strip_prefix('[')
        && let Some((host, after)) = rest.split_once(']')
    {
        let port = after
            .strip_prefix(':')
            .and_then(|p| p.parse().ok())
            .unwrap_or(default);
        return (host, port);
    }
    match server.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(port) => (host, port),
            Err(_) => (server, default),
        },
        _ => (server, default),
    }
}

async fn recv(socket: Option<&UdpSocket>, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
    match socket {
        Some(s) => match s.recv_from(buf).await {
            Ok((n, from)) => Some((n, SocketAddr::new(from.ip().to_canonical(), from.port()))),
            Err(e) => {
                tracing::debug!(error = %e, "Receive failed.");
                None
            }
        },
        None => std::future::pending().await,
    }
}

impl Client {
    async fn resolve(&mut self) {
        let port = self.settings.port;
        for server in self.settings.servers.clone() {
            let (host, port) = split_port(&server, port);
            match tokio::net::lookup_host((host, port)).await {
                Ok(addrs) => {
                    for addr in addrs {
                        if self.targets.iter().all(|t| t.addr != addr) {
                            self.targets.push(Target {
                                addr,
                                acked_ever: false,
                                misses: 0,
                                dropped: false,
                                last_rtt: None,
                                in_flight: HashMap::new(),
                            });
                        }
                    }
                }
                Err(e) => tracing::warn!(server, error = %e, "Cannot resolve server; will retry."),
            }
        }
    }

    fn header(&mut self) -> Header {
        self.seq += 1;
        Header {
            name: self.settings.name.clone(),
            ts: Some(hb_proto::now_ms()),
            seq: Some(self.seq),
            v: None,
        }
    }

    async fn send(&mut self, to: SocketAddr, msg: ClientMessage) {
        let header = msg.header().clone();
        let sign = self.settings.key.as_deref().map(|key| {
            // Never behind the clock: another hbc for the same host (hbc -m from cron) starts
            // its counter at the clock, and the server keeps one last counter per host.
            self.counter = (self.counter + 1).max(hb_proto::now_ms().saturating_mul(1000));
            (
                key,
                header.ts.unwrap_or_else(hb_proto::now_ms),
                self.counter,
            )
        });
        let bytes = encode(&msg.to_json(), COMPRESS_OVER, sign);
        let socket = if to.is_ipv4() {
            self.v4.as_ref()
        } else {
            self.v6.as_ref()
        };
        let Some(socket) = socket else {
            tracing::debug!(%to, "No socket for this address family.");
            return;
        };
        if let Some(t) = self.targets.iter_mut().find(|t| t.addr == to)
            && let Some(seq) = header.seq
        {
            t.in_flight.insert(seq, Instant::now());
        }
        if let Err(e) = socket.send_to(&bytes, to).await {
            tracing::debug!(%to, error = %e, "Send failed.");
        }
    }

    async fn heartbeat_round(&mut self) {
        if self.targets.is_empty() {
            self.resolve().await;
        }
        let interval = self.settings.interval;
        for i in 0..self.targets.len() {
            let t = &mut self.targets[i];
            if t.dropped {
                continue;
            }
            if !t.in_flight.is_empty() {
                t.misses += 1;
                t.in_flight.clear();
                if t.addr.is_ipv6() && !t.acked_ever && t.misses >= IPV6_GIVE_UP {
                    t.dropped = true;
                    tracing::warn!(addr = %t.addr, "IPv6 address never answered; no longer trying it.");
                    continue;
                }
            }
            let (addr, rtt) = (t.addr, t.last_rtt);
            let header = self.header();
            self.send(addr, client_heartbeat(header, interval, rtt))
                .await;
        }
    }

    /// Boot (or shutdown) to the first address of the first server only, so a host with
    /// several servers announces it once; retried until ACKed, a few times.
    async fn notice_to_first(&mut self, boot: bool) {
        let Some(to) = self.targets.first().map(|t| t.addr) else {
            tracing::warn!("No server to announce boot or shutdown to.");
            return;
        };
        for _ in 0..ONE_SHOT_TRIES {
            let header = self.header();
            let seq = header.seq;
            let notice = Notice {
                header,
                ver: Some(env!("CARGO_PKG_VERSION").into()),
            };
            let msg = if boot {
                ClientMessage::Boot(notice)
            } else {
                ClientMessage::Shutdown(notice)
            };
            self.send(to, msg).await;
            if self.wait_acks(&[(to, seq.unwrap_or(0))]).await {
                return;
            }
        }
        tracing::warn!(%to, boot, "No ACK for the boot or shutdown notice.");
    }

    /// Sends one message to every address and waits for the ACKs, retrying.
    async fn one_shot(&mut self, make: impl Fn(Header) -> ClientMessage) -> bool {
        let mut waiting: Vec<SocketAddr> = self.targets.iter().map(|t| t.addr).collect();
        for _ in 0..ONE_SHOT_TRIES {
            let mut sent = Vec::new();
            for to in waiting.clone() {
                let header = self.header();
                let seq = header.seq.unwrap_or(0);
                self.send(to, make(header)).await;
                sent.push((to, seq));
            }
            self.wait_acks(&sent).await;
            waiting.retain(|to| {
                !self
                    .targets
                    .iter()
                    .any(|t| t.addr == *to && t.in_flight.is_empty())
            });
            if waiting.is_empty() {
                return true;
            }
        }
        tracing::error!(unanswered = ?waiting, "No ACK.");
        false
    }

    /// Handles what arrives for up to [`ONE_SHOT_WAIT`]; true when every (target, seq) is ACKed.
    async fn wait_acks(&mut self, sent: &[(SocketAddr, u64)]) -> bool {
        let deadline = tokio::time::Instant::now() + ONE_SHOT_WAIT;
        let mut buf4 = vec![0u8; 65_536];
        let mut buf6 = vec![0u8; 65_536];
        loop {
            let acked = sent.iter().all(|(to, seq)| {
                self.targets
                    .iter()
                    .any(|t| t.addr == *to && !t.in_flight.contains_key(seq))
            });
            if acked {
                return true;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return false,
                r = recv(self.v4.as_ref(), &mut buf4) => {
                    if let Some((n, from)) = r { self.handle(&buf4[..n], from).await; }
                }
                r = recv(self.v6.as_ref(), &mut buf6) => {
                    if let Some((n, from)) = r { self.handle(&buf6[..n], from).await; }
                }
            }
        }
    }

    async fn handle(&mut self, datagram: &[u8], from: SocketAddr) {
        let Some(index) = self.targets.iter().position(|t| t.addr == from) else {
            tracing::debug!(%from, "Datagram from an address that is not a server; ignored.");
            return;
        };
        let decoded = match decode_server(datagram, &Limits::default()) {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!(%from, error = %e, "Bad datagram from server; ignored.");
                return;
            }
        };
        if let Some(key) = &self.settings.key {
            // With a key, only signed, fresh answers count: a forged ACK could queue commands.
            let ok = match decoded.signature {
                Some((t, covered)) => {
                    sign::verify(key, covered, &t)
                        && self
                            .ack_guard
                            .check(&from.to_string(), &t, hb_proto::now_ms())
                            .is_ok()
                }
                None => false,
            };
            if !ok {
                tracing::warn!(%from, "Unsigned or badly signed answer from server; ignored.");
                return;
            }
        }
        let ack = match decoded.message {
            ServerMessage::Ack(ack) => ack,
            // Commands count only inside an ACK to a datagram we sent (below): an off-path
            // sender cannot know our sequence numbers.
            ServerMessage::Command(_) | ServerMessage::Update(_) => {
                tracing::warn!(%from, "Command outside an ACK; ignored.");
                return;
            }
        };
        if ack.name != self.settings.name {
            tracing::debug!(%from, name = %ack.name, "ACK for another name; ignored.");
            return;
        }
        let target = &mut self.targets[index];
        let answered = ack.seq.and_then(|seq| target.in_flight.remove(&seq));
        if let Some(sent) = answered {
            let rtt = sent.elapsed().as_secs_f64() * 1000.0;
            target.last_rtt = Some((rtt * 1000.0).round() / 1000.0);
            target.acked_ever = true;
            target.misses = 0;
            // Older heartbeats still in flight are answered by this one too.
            target
                .in_flight
                .retain(|_, t| t.elapsed() < Duration::from_secs(1));
            tracing::trace!(%from, rtt_ms = rtt, "ACK.");
        }
        if ack.request_update {
            self.server_wants_data(from).await;
        }
        if answered.is_none() {
            if !ack.queue.is_empty() {
                tracing::warn!(%from, "Commands in an ACK to nothing we sent; ignored.");
            }
            return;
        }
        if self.accept_commands {
            for queued in ack.queue {
                self.command(from, queued).await;
            }
        }
    }

    /// A plugin reported: keep it, and send it to every server.
    async fn plugin_data(&mut self, plugin: String, data: serde_json::Value) {
        let serde_json::Value::Object(data) = data else {
            return;
        };
        let data = crate::plugins::fit(data, |d| self.plugin_fits(&plugin, d));
        self.latest.insert(plugin.clone(), data.clone());
        let targets: Vec<SocketAddr> = self
            .targets
            .iter()
            .filter(|t| !t.dropped)
            .map(|t| t.addr)
            .collect();
        for to in targets {
            let header = self.header();
            let msg = ClientMessage::Plugin(PluginData {
                header,
                plugin: plugin.clone(),
                data: data.clone(),
            });
            self.send(to, msg).await;
        }
    }

    /// Whether a report would be accepted by the server as one datagram.
    fn plugin_fits(&self, plugin: &str, data: &serde_json::Map<String, serde_json::Value>) -> bool {
        let msg = ClientMessage::Plugin(PluginData {
            header: Header {
                name: self.settings.name.clone(),
                ts: Some(u64::MAX / 2),
                seq: Some(u64::MAX / 2),
                v: None,
            },
            plugin: plugin.to_string(),
            data: data.clone(),
        });
        let json = msg.to_json();
        let text = json.to_string().len();
        let limits = Limits::default();
        if text >= limits.max_inflated {
            return false;
        }
        // What fits uncompressed fits: compressing only to measure is left to large ones.
        if text + hb_proto::sign::TRAILER_LEN <= limits.max_datagram {
            return true;
        }
        let sign = self.settings.key.as_deref().map(|k| (k, 0, 0));
        encode(&json, COMPRESS_OVER, sign).len() <= limits.max_datagram
    }

    /// A server has no plugin data for this host (it restarted, or forgot the host): send it
    /// what we have, and run the info plugins again; at most once per [`RESEND_GAP`] (a
    /// server that keeps asking, because it refuses the data, costs a few datagrams).
    async fn server_wants_data(&mut self, from: SocketAddr) {
        // Before the first reports are in, there is nothing to send: they go out as they come.
        if self.latest.is_empty() || self.refreshed_at.is_some_and(|t| t.elapsed() < RESEND_GAP) {
            return;
        }
        self.refreshed_at = Some(Instant::now());
        tracing::info!(%from, plugins = self.latest.len(), "Server asked for plugin data; sending it.");
        self.refresh.send_modify(|n| *n += 1);
        for (plugin, data) in self.latest.clone() {
            let header = self.header();
            let msg = ClientMessage::Plugin(PluginData {
                header,
                plugin,
                data,
            });
            self.send(from, msg).await;
        }
    }

    /// A command finished: keep its result for resending, and send it.
    async fn finished(&mut self, to: SocketAddr, id: u64, msg: ClientMessage) {
        self.running = self.running.saturating_sub(1);
        if let Some(slot) = self.results_by_id.get_mut(&id) {
            *slot = Some(msg.clone());
        }
        self.send(to, msg).await;
    }

    /// Runs a queued command or update once (by id), in the background; the result goes back
    /// to the server that asked as a `MSG` with `cmd` set, and again whenever the id shows up
    /// in a later ACK (the first result was lost).
    async fn command(&mut self, from: SocketAddr, queued: Queued) {
        let (id, argv, what) = match &queued {
            Queued::Command(c) => (
                c.id,
                self.settings.commands.get(&c.command).cloned(),
                c.command.clone(),
            ),
            Queued::Update(u) => (
                u.id,
                self.settings.update_command.clone(),
                "update".to_string(),
            ),
        };
        match self.results_by_id.get(&id) {
            Some(Some(result)) => {
                let mut result = result.clone();
                if let ClientMessage::Message(m) = &mut result {
                    m.header = self.header();
                }
                self.send(from, result).await;
                return;
            }
            Some(None) => return, // still running
            None => {}
        }
        let header = self.header();
        let Some(argv) = argv else {
            let text = match queued {
                Queued::Command(_) => {
                    format!("refused: command {what:?} is not in this host's commands map")
                }
                Queued::Update(_) => "refused: no update_command is configured".to_string(),
            };
            tracing::warn!(id, command = %what, "{text}");
            let msg = ClientMessage::Message(TextMessage {
                header,
                text,
                cmd: Some(id),
                exit: None,
            });
            self.remember(id, Some(msg.clone()));
            self.send(from, msg).await;
            return;
        };
        if self.running >= MAX_RUNNING {
            tracing::info!(id, command = %what, "Busy; the command runs when a later ACK repeats it.");
            return;
        }
        self.remember(id, None);
        self.running += 1;
        tracing::info!(id, command = %what, "Running command the server asked for.");
        let results = self.results.clone();
        let timeout = self.settings.command_timeout;
        tokio::spawn(async move {
            let outcome = commands::run(&argv, timeout).await;
            let msg = TextMessage {
                header,
                text: outcome.text,
                cmd: Some(id),
                exit: outcome.exit,
            };
            let _ = results.send((from, id, ClientMessage::Message(msg)));
        });
    }

    fn remember(&mut self, id: u64, result: Option<ClientMessage>) {
        self.results_by_id.insert(id, result);
        self.done.push_back(id);
        if self.done.len() > DONE_COMMANDS_KEPT
            && let Some(old) = self.done.pop_front()
        {
            self.results_by_id.remove(&old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_port;

    #[test]
    fn servers_may_name_a_port() {
        assert_eq!(
            split_port("hb.example.net", 50003),
            ("hb.example.net", 50003)
        );
        assert_eq!(
            split_port("hb.example.net:6000", 50003),
            ("hb.example.net", 6000)
        );
        assert_eq!(split_port("127.0.0.1:6000", 50003), ("127.0.0.1", 6000));
        assert_eq!(split_port("::1", 50003), ("::1", 50003));
        assert_eq!(split_port("[::1]:6000", 50003), ("::1", 6000));
        assert_eq!(split_port("[::1]", 50003), ("::1", 50003));
    }
}
