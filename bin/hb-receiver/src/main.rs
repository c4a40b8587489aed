//! hb-receiver: reads heartbeat datagrams from the UDP socket the supervisor bound, checks
//! each one (docs/PROTOCOL.md), answers with an ACK at once and forwards it to the engine.
//! Runs chrooted, as its own user, with nothing to write. The engine keeps the table the ACKs
//! need current here, so ACKs keep flowing while the engine restarts, for as long as the
//! queue to it (8,192 messages) holds what arrives meanwhile.
//!
//! When the queue to the engine is full (it is behind, or away longer than that), the
//! receiver stops reading the socket until there is room: an ACK means the datagram is
//! taken, so datagrams wait in the kernel's receive buffer (sized for a fleet's burst),
//! unACKed, instead of being taken, ACKed and dropped. Clients see an engine that stays
//! away as a silent server and turn to their next one. What the kernel itself drops when that buffer overflows is
//! counted (`kernel_dropped`, from `SO_RXQ_OVFL`).
//!
//! Every datagram is stamped with the time the kernel received it (`SO_TIMESTAMPNS`), not the
//! time it was read: the engine judges deadlines by what it has heard, so time a heartbeat
//! spent waiting in the server's own buffers never makes its host late. A few times a second
//! the receiver also tells the engine when it last found the socket empty (`drained`), so a
//! fleet that went silent is told from a backlog (docs/IPC.md, "Time").

#![forbid(unsafe_code)]

mod gate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::process::ExitCode;
use std::time::Instant;

use gate::{Gate, Outcome};
use hb_child::link::Link;
use hb_child::{self as child, Control, ControlEvent, ControlSender, Passed, Taken};
use hb_ipc::Role;
use hb_ipc::config::ReceiverConfig;
use hb_ipc::control::PassedSocket;
use hb_ipc::edge::{Answer, EngineToReceiver, Query, RawMessage, ReceiverToEngine};
use nix::sys::socket::SockaddrStorage;
use tokio::sync::{mpsc, oneshot};

/// Rejections reported to the engine per second at most; the rest are only counted.
const REJECT_REPORTS_PER_SECOND: u32 = 100;

/// How often the engine is told when the socket was last found empty; an idle socket is
/// looked at this often. Deadlines are judged at most about this late when all is quiet.
const DRAINED_EVERY_MS: u64 = 50;

/// Taken off a `drained` time: a datagram is stamped when the kernel receives it, a moment
/// before it is queued on the socket, and one stamped just before a read that found the
/// socket empty may be queued just after it.
const DRAINED_SLACK_MS: u64 = 25;

fn main() -> ExitCode {
    child::run(Role::Receiver, run)
}

/// Work for the task that owns the socket and the gate.
enum ToGate {
    Config(ReceiverConfig),
    Counters(oneshot::Sender<BTreeMap<String, u64>>),
}

/// The receiver as the supervisor sees it: what it is given before the start, and the
/// gate's task after.
struct Receiver {
    engine: Link<ReceiverToEngine>,
    table_tx: mpsc::Sender<EngineToReceiver>,
    table_rx: Option<mpsc::Receiver<EngineToReceiver>>,
    config: ReceiverConfig,
    udp: Option<OwnedFd>,
    gate_tx: Option<mpsc::UnboundedSender<ToGate>>,
}

impl Control for Receiver {
    const ROLE: Role = Role::Receiver;
    const REFUSED_QUERY: &'static str = "the receiver answers only counters";
    type Slice = ReceiverConfig;

    fn configure(&mut self, config: ReceiverConfig) -> Result<(), String> {
        self.config = config.clone();
        if let Some(tx) = &self.gate_tx {
            let _ = tx.send(ToGate::Config(config));
        }
        Ok(())
    }

    fn socket(&mut self, passed: Passed, control: &ControlSender) -> Taken {
        if passed.socket == PassedSocket::UdpListener {
            self.udp = Some(passed.fd);
            return Ok(None);
        }
        passed.link(Role::Engine, &self.engine, &self.table_tx, control)
    }

    async fn start(&mut self) -> anyhow::Result<()> {
        let (Some(fd), Some(table)) = (self.udp.take(), self.table_rx.take()) else {
            anyhow::bail!("started twice, or without a UDP socket");
        };
        let socket = std::net::UdpSocket::from(fd);
        socket.set_nonblocking(true)?;
        let socket = tokio::net::UdpSocket::from_std(socket)?;
        tracing::info!(addr = ?socket.local_addr().ok(), "Receiving.");
        let (tx, rx) = mpsc::unbounded_channel();
        self.gate_tx = Some(tx);
        let gate = Gate::new(self.config.clone(), hb_ipc::now_ms());
        tokio::spawn(receive(socket, gate, self.engine.clone(), table, rx));
        Ok(())
    }

    fn request(&mut self, id: u64, query: Query, control: &ControlSender) -> bool {
        let Query::Counters {} = query else {
            return false;
        };
        match &self.gate_tx {
            Some(tx) => {
                let (reply, answer) = oneshot::channel();
                let _ = tx.send(ToGate::Counters(reply));
                let control = control.clone();
                tokio::spawn(async move {
                    let counters = answer.await.unwrap_or_default();
                    control.answer(id, Answer::Counters { counters });
                });
            }
            None => control.answer(
                id,
                Answer::Counters {
                    counters: BTreeMap::new(),
                },
            ),
        }
        true
    }
}

async fn run(
    mut events: mpsc::UnboundedReceiver<ControlEvent>,
    control: ControlSender,
) -> anyhow::Result<()> {
    let (table_tx, table_rx) = mpsc::channel::<EngineToReceiver>(1024);
    let mut receiver = Receiver {
        engine: Link::new(Role::Engine),
        table_tx,
        table_rx: Some(table_rx),
        config: ReceiverConfig::default(),
        udp: None,
        gate_tx: None,
    };
    while let Some(event) = events.recv().await {
        child::dispatch(&mut receiver, event, &control).await?;
    }
    Ok(())
}

/// Datagrams taken from the socket per system call.
const BATCH: usize = 32;

/// One datagram in a [`Batch`].
#[derive(Clone, Copy, Debug, PartialEq)]
struct Arrival {
    len: usize,
    from: Option<SocketAddr>,
    /// When the kernel received it, Unix ms (`None`: the kernel did not say).
    at_ms: Option<u64>,
}

/// Buffers for one read: up to [`BATCH`] datagrams per wake-up under a burst, with one
/// `recvmmsg` where the system has it.
struct Batch {
    bufs: Vec<Vec<u8>>,
    meta: Vec<Arrival>,
    /// The socket's count of datagrams the kernel dropped for want of buffer space, as last
    /// reported with a datagram; `None` before the first. The socket outlives a receiver
    /// (the supervisor holds it): the first count a new one sees is where it starts, not news.
    kernel_dropped: Option<u32>,
    /// Drops the last read brought news of: how many, and the first datagram (an index in
    /// `meta`) that arrived after them.
    news_of_drops: Option<(u32, usize)>,
    /// The drop count the kernel gave with each datagram of the last read.
    drop_counts: Vec<u32>,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            // 65,536 holds the largest UDP payload, so nothing is ever truncated.
            bufs: (0..BATCH).map(|_| vec![0u8; 65_536]).collect(),
            meta: Vec::with_capacity(BATCH),
            kernel_dropped: None,
            news_of_drops: None,
            drop_counts: Vec::with_capacity(BATCH),
        }
    }

    /// One non-blocking read of up to [`BATCH`] datagrams; how many are now in the buffers.
    fn receive(&mut self, socket: &tokio::net::UdpSocket) -> std::io::Result<usize> {
        self.meta.clear();
        self.drop_counts.clear();
        #[cfg(mmsg)]
        self.read_many(socket)?;
        #[cfg(not(mmsg))]
        self.read_each(socket)?;
        let mut before = self.kernel_dropped;
        let mut dropped = before;
        let mut first_after_drops = None;
        for (i, &count) in self.drop_counts.iter().enumerate() {
            before.get_or_insert(count);
            if *dropped.get_or_insert(count) != count {
                first_after_drops.get_or_insert(i);
            }
            dropped = Some(count);
        }
        self.news_of_drops = first_after_drops.map(|i| {
            let delta = dropped.unwrap_or(0).wrapping_sub(before.unwrap_or(0));
            (delta, i)
        });
        self.kernel_dropped = dropped;
        Ok(self.meta.len())
    }

    /// One `recvmmsg`: a system call for the whole batch.
    #[cfg(mmsg)]
    fn read_many(&mut self, socket: &tokio::net::UdpSocket) -> std::io::Result<()> {
        use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};
        use std::io::IoSliceMut;
        use std::os::fd::AsRawFd;
        let mut headers =
            MultiHeaders::<SockaddrStorage>::preallocate(BATCH, Some(arrival_cmsg_space()));
        let mut iovs: Vec<[IoSliceMut<'_>; 1]> =
            self.bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
        let results = recvmmsg(
            socket.as_raw_fd(),
            &mut headers,
            iovs.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )
        .map_err(std::io::Error::from)?;
        for r in results {
            let cmsgs = r.cmsgs().into_iter().flatten();
            record(
                &mut self.meta,
                &mut self.drop_counts,
                r.bytes,
                r.address.as_ref(),
                cmsgs,
            );
        }
        Ok(())
    }

    /// A `recvmsg` per datagram, for systems without `recvmmsg` (OpenBSD in nix, macOS).
    /// Built everywhere so that it is tested beside [`Batch::read_many`].
    #[cfg_attr(mmsg, allow(dead_code))]
    fn read_each(&mut self, socket: &tokio::net::UdpSocket) -> std::io::Result<()> {
        use nix::sys::socket::{MsgFlags, SockaddrStorage, recvmsg};
        use std::io::IoSliceMut;
        use std::os::fd::AsRawFd;
        let mut cmsgs = arrival_cmsg_space();
        for buf in &mut self.bufs {
            let mut iov = [IoSliceMut::new(buf)];
            let read = recvmsg::<SockaddrStorage>(
                socket.as_raw_fd(),
                &mut iov,
                Some(&mut cmsgs),
                MsgFlags::MSG_DONTWAIT,
            );
            match read {
                Ok(r) => {
                    let cmsgs = r.cmsgs().into_iter().flatten();
                    let (meta, counts) = (&mut self.meta, &mut self.drop_counts);
                    record(meta, counts, r.bytes, r.address.as_ref(), cmsgs);
                }
                // What was read is kept (it has left the socket); the error, if it lasts,
                // comes again on the next read. Nothing at all: the caller's WouldBlock.
                Err(_) if !self.meta.is_empty() => break,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// Notes one datagram read: its length, its sender, and what the kernel said of it.
fn record(
    meta: &mut Vec<Arrival>,
    drop_counts: &mut Vec<u32>,
    len: usize,
    from: Option<&nix::sys::socket::SockaddrStorage>,
    cmsgs: impl Iterator<Item = nix::sys::socket::ControlMessageOwned>,
) {
    let (count, at_ms) = arrival(cmsgs);
    drop_counts.push(count);
    let from = from.and_then(to_std);
    meta.push(Arrival { len, from, at_ms });
}

/// What the kernel said of a datagram: the socket's running count of drops (it wraps) as it
/// was when the datagram was queued (Linux leaves it out while it is 0; elsewhere it is
/// never told), and when the datagram arrived, Unix ms.
fn arrival(
    cmsgs: impl Iterator<Item = nix::sys::socket::ControlMessageOwned>,
) -> (u32, Option<u64>) {
    use nix::sys::socket::ControlMessageOwned;
    use nix::sys::time::TimeValLike;
    let mut at_ms = None;
    // Only Linux tells a count.
    #[cfg_attr(
        not(any(target_os = "linux", target_os = "android")),
        allow(unused_mut)
    )]
    let mut count = 0;
    for cmsg in cmsgs {
        match cmsg {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            ControlMessageOwned::RxqOvfl(n) => count = n,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            ControlMessageOwned::ScmTimestampns(t) => {
                at_ms = u64::try_from(t.num_milliseconds()).ok();
            }
            ControlMessageOwned::ScmTimestamp(t) => {
                at_ms = u64::try_from(t.num_milliseconds()).ok();
            }
            _ => {}
        }
    }
    (count, at_ms)
}

/// Room for what the kernel says of each datagram: its drop count and arrival time in ns
/// (Linux), or its arrival time in µs (the BSDs, which count no drops per socket).
fn arrival_cmsg_space() -> Vec<u8> {
    if cfg!(any(target_os = "linux", target_os = "android")) {
        nix::cmsg_space!(u32, nix::sys::time::TimeSpec)
    } else {
        nix::cmsg_space!(nix::sys::time::TimeVal)
    }
}

/// Asks the kernel to stamp each datagram with its arrival and, where it can (Linux), to
/// report the socket's count of drops with it.
fn ask_arrival_info(socket: &tokio::net::UdpSocket) {
    use nix::sys::socket::{setsockopt, sockopt};
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        if let Err(e) = setsockopt(socket, sockopt::RxqOvfl, &1) {
            tracing::warn!(error = %e, "Cannot count the kernel's drops on the UDP socket (SO_RXQ_OVFL).");
        }
        if let Err(e) = setsockopt(socket, sockopt::ReceiveTimestampns, &true) {
            tracing::warn!(error = %e, "Cannot stamp datagrams with their arrival (SO_TIMESTAMPNS); a backlog in the server may make hosts late.");
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        // No per-socket drop count here: the kernel's drops hold no host's down (see
        // docs/OPERATIONS.md); `netstat -s -p udp` counts them ("full socket buffers").
        if let Err(e) = setsockopt(socket, sockopt::ReceiveTimestamp, &true) {
            tracing::warn!(error = %e, "Cannot stamp datagrams with their arrival (SO_TIMESTAMP); a backlog in the server may make hosts late.");
        }
    }
}

fn to_std(addr: &nix::sys::socket::SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(SocketAddr::from(*v4));
    }
    addr.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6))
}

/// What checks and forwards datagrams: the gate, the link to the engine, and the batch's
/// ACKs waiting to go.
struct Forwarder {
    gate: Gate,
    engine: Link<ReceiverToEngine>,
    /// Rejections reported in the current second.
    reports: (Instant, u32),
    acks: Vec<(Vec<u8>, SockaddrStorage)>,
}

impl Forwarder {
    /// Reads one batch with `read` and forwards it. `Some(t)`: the read, begun at `t` (Unix
    /// ms), left the socket empty, so everything that arrived before `t` has been forwarded.
    async fn take(
        &mut self,
        socket: &tokio::net::UdpSocket,
        batch: &mut Batch,
        read: impl FnOnce(&mut Batch) -> std::io::Result<usize>,
    ) -> Option<u64> {
        let before = hb_ipc::now_ms();
        match read(batch) {
            Ok(n) => {
                self.forward(socket, batch, n).await;
                (n < BATCH).then_some(before)
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Some(before),
            Err(e) => {
                tracing::warn!(error = %e, "UDP receive failed.");
                None
            }
        }
    }

    /// Checks and forwards the first `n` datagrams of `batch`, then sends their ACKs in one
    /// call, after the engine has every message they answer.
    async fn forward(&mut self, socket: &tokio::net::UdpSocket, batch: &Batch, n: usize) {
        self.gate.count_batch(n);
        // Ahead of what came after the loss: the engine holds its judgement first.
        if let Some((count, i)) = batch.news_of_drops {
            let at_ms = batch.meta[i].at_ms.unwrap_or_else(hb_ipc::now_ms);
            tracing::debug!(
                count,
                "The kernel dropped datagrams: the socket's buffer was full."
            );
            self.engine.send(ReceiverToEngine::Lost {
                count: count.into(),
                at_ms,
            });
        }
        for (arrival, buf) in batch.meta[..n].iter().zip(&batch.bufs) {
            let Some(from) = arrival.from else { continue };
            // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
            let source = SocketAddr::new(from.ip().to_canonical(), from.port());
            let at_ms = arrival.at_ms.unwrap_or_else(hb_ipc::now_ms);
            let datagram = &buf[..arrival.len];
            if let Some(ack) = self.handle(datagram, source, at_ms) {
                self.acks.push((ack, SockaddrStorage::from(from)));
            }
        }
        send_acks(socket, &mut self.gate, &self.acks).await;
        self.acks.clear();
    }

    /// Checks one datagram, which arrived at `now_ms`, and forwards it; the ACK to send, if it
    /// was accepted.
    fn handle(&mut self, datagram: &[u8], source: SocketAddr, now_ms: u64) -> Option<Vec<u8>> {
        let now = Instant::now();
        match self.gate.handle(datagram, source, now, now_ms) {
            Outcome::Accepted {
                host,
                signed,
                message,
                ack,
            } => {
                // An ACK says the datagram is taken: none if the queue refused it (the receiver
                // reads only with room for a batch, so this is a bug's safety net).
                self.engine
                    .send(ReceiverToEngine::Received {
                        host,
                        source,
                        received_ms: now_ms,
                        signed,
                        message: RawMessage::of(&message),
                    })
                    .then_some(ack)
            }
            Outcome::Dropped => None,
            Outcome::Rejected(reject) => {
                tracing::debug!(%source, reason = reject.reason(), detail = %reject, "Datagram rejected.");
                if now.duration_since(self.reports.0).as_secs() >= 1 {
                    self.reports = (now, 0);
                }
                // A flood of garbage must not become a flood of engine messages.
                if self.reports.1 < REJECT_REPORTS_PER_SECOND && reject.reason() != "rate_limited" {
                    self.reports.1 += 1;
                    self.engine.send(ReceiverToEngine::Rejected {
                        source,
                        received_ms: now_ms,
                        reason: reject.reason().into(),
                        detail: reject.to_string(),
                    });
                }
                None
            }
        }
    }
}

async fn receive(
    socket: tokio::net::UdpSocket,
    gate: Gate,
    engine: Link<ReceiverToEngine>,
    mut table: mpsc::Receiver<EngineToReceiver>,
    mut work: mpsc::UnboundedReceiver<ToGate>,
) {
    let mut batch = Batch::new();
    let mut fwd = Forwarder {
        gate,
        engine,
        reports: (Instant::now(), 0),
        acks: Vec::with_capacity(BATCH),
    };
    // How long the receiver stopped reading because the queue to the engine was full.
    let mut engine_waited = std::time::Duration::ZERO;
    let mut waiting_since: Option<Instant> = None;
    // When a read last found the socket empty (wall clock, taken before the read), and the
    // last such time told to the engine.
    let mut drained_at = 0u64;
    let mut drained_told = 0u64;
    let mut drained_reports =
        tokio::time::interval(std::time::Duration::from_millis(DRAINED_EVERY_MS));
    drained_reports.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ask_arrival_info(&socket);
    loop {
        // Room for a whole batch (a message per datagram at most), news of drops ahead of it
        // and a drained after it.
        let room = fwd.engine.room() >= BATCH + 2;
        if room {
            if let Some(since) = waiting_since.take() {
                engine_waited += since.elapsed();
            }
        } else {
            waiting_since.get_or_insert_with(Instant::now);
        }
        tokio::select! {
            biased;
            Some(update) = table.recv() => match update {
                EngineToReceiver::HostTable { with_data, queues } => fwd.gate.set_table(with_data, queues),
                EngineToReceiver::Queue { host, queue } => fwd.gate.set_queue(host, queue),
                EngineToReceiver::HostHasData { host } => fwd.gate.has_data(host),
                EngineToReceiver::Forget { host } => fwd.gate.forget(&host),
            },
            Some(job) = work.recv() => match job {
                ToGate::Config(c) => fwd.gate.set_config(c),
                ToGate::Counters(reply) => {
                    let mut counters = fwd.gate.counters().clone();
                    counters.insert("engine_queue_dropped".into(), fwd.engine.dropped());
                    let waiting = waiting_since.map_or(std::time::Duration::ZERO, |t| t.elapsed());
                    counters.insert(
                        "engine_queue_wait_ms".into(),
                        (engine_waited + waiting).as_millis() as u64,
                    );
                    counters.insert("kernel_dropped".into(), batch.kernel_dropped.unwrap_or(0).into());
                    let _ = reply.send(counters);
                }
            },
            // Woken as soon as the writer has taken enough from the queue.
            () = fwd.engine.room_for(BATCH + 2), if !room => {}
            // Ahead of the socket, which is always ready under load.
            _ = drained_reports.tick(), if room => {
                // Nothing woke the loop lately: an idle socket, most likely. Look, so the
                // engine learns that nothing is waiting.
                if hb_ipc::now_ms().saturating_sub(drained_at) >= DRAINED_EVERY_MS
                    && let Some(t) = fwd.take(&socket, &mut batch, |b| b.receive(&socket)).await
                {
                    drained_at = t;
                }
                if drained_at > drained_told {
                    drained_told = drained_at;
                    fwd.engine.send(ReceiverToEngine::Drained {
                        up_to_ms: drained_at.saturating_sub(DRAINED_SLACK_MS),
                    });
                }
            }
            ready = socket.readable(), if room => {
                if let Err(e) = ready {
                    tracing::warn!(error = %e, "UDP socket failed.");
                    continue;
                }
                let read = |b: &mut Batch| socket.try_io(tokio::io::Interest::READABLE, || b.receive(&socket));
                if let Some(t) = fwd.take(&socket, &mut batch, read).await {
                    drained_at = t;
                }
                // One thread runs this loop and the link tasks that carry its messages to and
                // from the engine; under a steady stream the socket is always ready, so give
                // them their turn after every batch or they starve.
                tokio::task::yield_now().await;
            }
        }
    }
}

/// One `sendmmsg`: how many of `acks`, from the first, the kernel took.
#[cfg(mmsg)]
fn send_many(
    fd: std::os::fd::RawFd,
    acks: &[(Vec<u8>, SockaddrStorage)],
) -> std::io::Result<usize> {
    use nix::sys::socket::{ControlMessage, MsgFlags, MultiHeaders, sendmmsg};
    use std::io::IoSlice;
    let slices: Vec<[IoSlice<'_>; 1]> = acks.iter().map(|(b, _)| [IoSlice::new(b)]).collect();
    let addrs: Vec<Option<SockaddrStorage>> = acks.iter().map(|(_, a)| Some(*a)).collect();
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(acks.len(), None);
    let no_cmsgs: [ControlMessage<'_>; 0] = [];
    sendmmsg(
        fd,
        &mut headers,
        &slices,
        &addrs,
        no_cmsgs,
        MsgFlags::MSG_DONTWAIT,
    )
    .map(std::iter::Iterator::count)
    .map_err(std::io::Error::from)
}

/// A `sendto` per ACK, for systems without `sendmmsg` (OpenBSD in nix, macOS): the same
/// answer as [`send_many`]. Built everywhere so that it is tested here.
#[cfg_attr(mmsg, allow(dead_code))]
fn send_each(
    fd: std::os::fd::RawFd,
    acks: &[(Vec<u8>, SockaddrStorage)],
) -> std::io::Result<usize> {
    use nix::sys::socket::{MsgFlags, sendto};
    for (i, (ack, to)) in acks.iter().enumerate() {
        if let Err(e) = sendto(fd, ack, to, MsgFlags::MSG_DONTWAIT) {
            // Like sendmmsg: what went out counts; a failure of the first is the error.
            return if i == 0 { Err(e.into()) } else { Ok(i) };
        }
    }
    Ok(acks.len())
}

/// Sends a batch's ACKs with as few `sendmmsg` calls as the kernel allows: one under load,
/// instead of a system call (and a wake-up of the client) per ACK. An ACK the kernel
/// refuses (an unreachable source) is counted and skipped; the rest still go.
async fn send_acks(
    socket: &tokio::net::UdpSocket,
    gate: &mut Gate,
    acks: &[(Vec<u8>, SockaddrStorage)],
) {
    use std::os::fd::AsRawFd;
    let mut start = 0;
    while start < acks.len() {
        let part = &acks[start..];
        let fd = socket.as_raw_fd();
        #[cfg(mmsg)]
        let send = || send_many(fd, part);
        #[cfg(not(mmsg))]
        let send = || send_each(fd, part);
        let sent = socket.async_io(tokio::io::Interest::WRITABLE, send).await;
        match sent {
            Ok(n) if n > 0 => start += n,
            // The first of the rest failed: skip it.
            Ok(_) | Err(_) => {
                if let Err(e) = &sent {
                    tracing::debug!(error = %e, "Cannot send ACK.");
                }
                gate.count("ack_send_failed");
                start += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[tokio::test]
    async fn the_kernels_drops_are_counted() {
        use nix::sys::socket::{setsockopt, sockopt};
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        setsockopt(&socket, sockopt::RxqOvfl, &1).unwrap();
        setsockopt(&socket, sockopt::RcvBuf, &4096).unwrap();
        let to = socket.local_addr().unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..200 {
            sender.send_to(&[7; 100], to).unwrap();
        }
        let mut batch = Batch::new();
        socket.readable().await.unwrap();
        let mut got = 0;
        while let Ok(n) = socket.try_io(tokio::io::Interest::READABLE, || batch.receive(&socket)) {
            got += n;
        }
        assert!(got < 200, "the buffer held all {got}");
        // The kernel tells with the first datagram queued after the drops.
        sender.send_to(&[8; 100], to).unwrap();
        socket.readable().await.unwrap();
        let n = socket
            .try_io(tokio::io::Interest::READABLE, || batch.receive(&socket))
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(batch.kernel_dropped, Some(200 - got as u32));
        assert_eq!(batch.news_of_drops, Some((200 - got as u32, 0)));
        // Told once.
        sender.send_to(&[9; 100], to).unwrap();
        socket.readable().await.unwrap();
        socket
            .try_io(tokio::io::Interest::READABLE, || batch.receive(&socket))
            .unwrap();
        assert_eq!(batch.news_of_drops, None);
        // A receiver started afresh on the same socket (the supervisor keeps it) counts
        // from where it finds the count: the drops before it are not news.
        let mut fresh = Batch::new();
        sender.send_to(&[10; 100], to).unwrap();
        socket.readable().await.unwrap();
        socket
            .try_io(tokio::io::Interest::READABLE, || fresh.receive(&socket))
            .unwrap();
        assert_eq!(fresh.kernel_dropped, Some(200 - got as u32));
        assert_eq!(fresh.news_of_drops, None);
    }

    #[tokio::test]
    async fn a_batch_of_acks_goes_out_past_one_the_kernel_refuses() {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let clients: Vec<std::net::UdpSocket> = (0..40)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let mut acks: Vec<(Vec<u8>, SockaddrStorage)> = clients
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    format!("ack{i}").into_bytes(),
                    c.local_addr().unwrap().into(),
                )
            })
            .collect();
        // An IPv6 destination on an IPv4 socket: refused by the kernel, in the middle.
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        acks.insert(20, (b"lost".to_vec(), v6.into()));
        let mut gate = Gate::new(ReceiverConfig::default(), 0);
        send_acks(&socket, &mut gate, &acks).await;
        for (i, c) in clients.iter().enumerate() {
            c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let mut buf = [0u8; 16];
            let n = c.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], format!("ack{i}").as_bytes());
        }
        assert_eq!(gate.counters()["ack_send_failed"], 1);
    }

    // Where there is no sendmmsg a sendto per ACK answers as sendmmsg does: what went out
    // from the first, or the error when the first is refused.
    #[tokio::test]
    async fn one_ack_per_call_answers_as_sendmmsg_does() {
        use std::os::fd::AsRawFd;
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to: SockaddrStorage = client.local_addr().unwrap().into();
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        let acks = vec![
            (b"a".to_vec(), to),
            (b"b".to_vec(), to),
            (b"lost".to_vec(), v6.into()),
            (b"c".to_vec(), to),
        ];
        let fd = socket.as_raw_fd();
        assert_eq!(send_each(fd, &acks).unwrap(), 2);
        assert!(send_each(fd, &acks[2..]).is_err());
        assert_eq!(send_each(fd, &acks[3..]).unwrap(), 1);
        #[cfg(mmsg)]
        {
            assert_eq!(send_many(fd, &acks).unwrap(), 2);
            assert!(send_many(fd, &acks[2..]).is_err());
        }
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut got = Vec::new();
        let expected: &[&[u8]] = if cfg!(mmsg) {
            &[b"a", b"b", b"c", b"a", b"b"]
        } else {
            &[b"a", b"b", b"c"]
        };
        for _ in expected {
            let mut buf = [0u8; 8];
            let n = client.recv(&mut buf).unwrap();
            got.push(buf[..n].to_vec());
        }
        assert_eq!(got, expected);
    }

    // Where there is no recvmmsg a recvmsg per datagram takes the same batch: lengths,
    // senders and arrival stamps, a batch at most, then the rest on the next read.
    #[tokio::test]
    async fn one_datagram_per_call_reads_what_recvmmsg_reads() {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        ask_arrival_info(&socket);
        let to = socket.local_addr().unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..BATCH + 3 {
            sender.send_to(&vec![b'x'; i + 1], to).unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut one_by_one = Batch::new();
        let read = |batch: &mut Batch| {
            batch.meta.clear();
            batch.drop_counts.clear();
            batch.read_each(&socket).map(|()| batch.meta.len())
        };
        assert_eq!(read(&mut one_by_one).unwrap(), BATCH);
        let lens: Vec<usize> = one_by_one.meta.iter().map(|a| a.len).collect();
        assert_eq!(lens, (1..=BATCH).collect::<Vec<_>>());
        assert!(one_by_one.meta.iter().all(
            |a| a.from == Some(sender.local_addr().unwrap()) && a.at_ms.is_some_and(|t| t > 0)
        ));
        assert_eq!(read(&mut one_by_one).unwrap(), 3);
        let err = read(&mut one_by_one).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
        // The same datagrams through recvmmsg, as the receiver reads on Linux.
        for i in 0..3 {
            sender.send_to(&vec![b'y'; i + 1], to).unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut many = Batch::new();
        assert_eq!(many.receive(&socket).unwrap(), 3);
        let from = Some(sender.local_addr().unwrap());
        let seen: Vec<(usize, Option<SocketAddr>)> =
            many.meta.iter().map(|a| (a.len, a.from)).collect();
        assert_eq!(seen, [(1, from), (2, from), (3, from)]);
        assert!(many.meta.iter().all(|a| a.at_ms.is_some()));
    }

    // A datagram that waited in the socket's buffer carries the time it arrived, not the
    // time it was read: the engine must not count the server's own delay against the host.
    #[tokio::test]
    async fn datagrams_carry_the_time_the_kernel_received_them() {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        ask_arrival_info(&socket);
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut batch = Batch::new();
        let mut seen = Vec::new();
        // The kernel starts stamping at arrival a moment after it is asked to (a work queue
        // switches it on); until then a datagram is stamped when it is read. Five tries.
        for _ in 0..5 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let sent_ms = hb_ipc::now_ms();
            sender.send_to(b"x", socket.local_addr().unwrap()).unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            let read_ms = hb_ipc::now_ms();
            socket.readable().await.unwrap();
            let n = socket
                .try_io(tokio::io::Interest::READABLE, || batch.receive(&socket))
                .unwrap();
            assert_eq!(n, 1);
            let at = batch.meta[0].at_ms.expect("a kernel timestamp");
            assert!(
                at >= sent_ms,
                "stamped {at} before it was sent at {sent_ms}"
            );
            if at + 250 <= read_ms {
                return;
            }
            seen.push((sent_ms, at, read_ms));
        }
        panic!("stamped when read, not when received: {seen:?} (sent, stamped, read)");
    }

    #[tokio::test]
    async fn one_call_takes_a_whole_burst() {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = socket.local_addr().unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..40u8 {
            sender.send_to(&[i; 3], to).unwrap();
        }
        let mut batch = Batch::new();
        socket.readable().await.unwrap();
        // Let the whole burst land before the call.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let n = socket
            .try_io(tokio::io::Interest::READABLE, || batch.receive(&socket))
            .unwrap();
        assert_eq!(n, BATCH);
        for i in 0..n {
            assert_eq!(batch.meta[i].len, 3);
            assert_eq!(batch.meta[i].from, Some(sender.local_addr().unwrap()));
            assert_eq!(&batch.bufs[i][..3], &[i as u8; 3]);
        }
        let rest = socket
            .try_io(tokio::io::Interest::READABLE, || batch.receive(&socket))
            .unwrap();
        assert_eq!(rest, 40 - BATCH);
        let empty = socket.try_io(tokio::io::Interest::READABLE, || batch.receive(&socket));
        assert_eq!(empty.unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    }
}
