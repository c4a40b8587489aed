//! The supervisor: process table, spawn, handshake, restart, reload and shutdown.
//!
//! One task owns all state and handles [`Event`]s one at a time; per-child tasks only read,
//! write and wait, and report back as events. Each spawn of a role gets a new `epoch`, so an
//! event from a process that is already gone can never be mistaken for its successor's.
//!
//! Edges: when a child has applied its configuration, the supervisor makes a fresh socketpair
//! for each edge whose other end is alive and passes one end to each (`Socket` frames with
//! `SCM_RIGHTS`). The same code path serves the first start and every restart, so a restarted
//! child's peers reconnect without restarting themselves.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hb_ipc::codec::{CONTROL_MAX_LINE, JsonLines, encode_line};
use hb_ipc::control::{Confinement, FromChild, PassedSocket, RoleStats, ServerStats, ToChild};
use hb_ipc::ctl::{ChildStatus, CtlRequest, CtlResponse, ServerStatus};
use hb_ipc::edge::{Answer, Query};
use hb_ipc::request::Pending;
use hb_ipc::{Role, VERSION};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::FramedRead;

use crate::config::{Config, ConfigErrors};

mod control;
mod prepare;
mod reload;

use hb_child::privdrop::Plan;
pub use prepare::{Listeners, Prepared, resolve_ids};

/// Crashes of one role tolerated within [`CRASH_WINDOW`] before the supervisor gives up.
pub const CRASH_BUDGET: usize = 5;
/// The engine holds the state; it gets a smaller budget.
pub const ENGINE_CRASH_BUDGET: usize = 3;
/// The window the crash budget counts in.
pub const CRASH_WINDOW: Duration = Duration::from_secs(60);
const BACKOFF_BASE: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the roles have to report their counters for `/metrics`; one that does not is
/// shown without them.
const STATS_TIMEOUT: Duration = Duration::from_secs(2);
/// How long `hbctl notify` waits for the notifier (one attempt per channel, each bounded).
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(25);
/// Within the shutdown grace, how long before its end SIGTERM goes out (at most half of it).
const TERM_BEFORE_KILL: Duration = Duration::from_secs(2);
/// Frames queued to one child before it counts as hung.
const CHILD_QUEUE: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Spawned, handshake not complete.
    Starting,
    /// Configured and given its sockets; waiting for `Start` (first start only).
    Configured,
    Running,
    /// Dead, restart scheduled.
    Backoff,
    Stopped,
}

struct Slot {
    role: Role,
    state: State,
    epoch: u64,
    pid: Option<u32>,
    hello: bool,
    started_at: Option<Instant>,
    restarts: u32,
    crashes: VecDeque<Instant>,
    last_exit: Option<String>,
    generation: u64,
    confinement: Option<Confinement>,
    out: Option<mpsc::Sender<Outgoing>>,
}

impl Slot {
    fn alive(&self) -> bool {
        self.pid.is_some()
    }

    fn configured(&self) -> bool {
        matches!(self.state, State::Configured | State::Running)
    }
}

struct Outgoing {
    line: Vec<u8>,
    fd: Option<OwnedFd>,
}

enum Event {
    Message {
        role: Role,
        epoch: u64,
        msg: FromChild,
    },
    Violation {
        role: Role,
        epoch: u64,
        reason: String,
    },
    Exited {
        role: Role,
        epoch: u64,
        status: std::io::Result<ExitStatus>,
    },
    RestartDue {
        role: Role,
    },
    HandshakeTimeout {
        role: Role,
        epoch: u64,
    },
    ReloadTimeout {
        generation: u64,
    },
    Escalate {
        stage: u8,
    },
    /// The figures the web asked for are gathered.
    StatsReady {
        stats: ServerStats,
    },
    Signal(SignalKind),
}

struct Reload {
    generation: u64,
    /// Restored if any child rejects the new configuration.
    previous: Box<Config>,
    waiting: BTreeSet<Role>,
    failures: Vec<String>,
    reply: Option<oneshot::Sender<CtlResponse>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Starting,
    Running,
    ShuttingDown { code: u8 },
}

/// Runs the supervisor until shutdown; the exit code says whether it ended by request (0) or
/// because a role could not be kept alive (1).
pub async fn run(prepared: Prepared, listeners: Listeners) -> ExitCode {
    let (events_tx, events) = mpsc::unbounded_channel();
    let (ctl_tx, ctl_rx) = mpsc::channel(16);
    let control = listeners.control;
    match crate::ctl::serve(control, ctl_tx) {
        Ok(()) => {}
        Err(e) => {
            tracing::error!(error = %e, "Cannot serve the control socket.");
            return ExitCode::from(71);
        }
    }
    for kind in [
        SignalKind::hangup(),
        SignalKind::terminate(),
        SignalKind::interrupt(),
    ] {
        let tx = events_tx.clone();
        match signal(kind) {
            Ok(mut stream) => {
                tokio::spawn(async move {
                    while stream.recv().await.is_some() {
                        if tx.send(Event::Signal(kind)).is_err() {
                            return;
                        }
                    }
                });
            }
            Err(e) => {
                tracing::error!(error = %e, "Cannot install signal handlers.");
                return ExitCode::from(71);
            }
        }
    }
    let mut sup = Supervisor {
        slots: Role::ALL
            .into_iter()
            .map(|role| {
                (
                    role,
                    Slot {
                        role,
                        state: State::Stopped,
                        epoch: 0,
                        pid: None,
                        hello: false,
                        started_at: None,
                        restarts: 0,
                        crashes: VecDeque::new(),
                        last_exit: None,
                        generation: 0,
                        confinement: None,
                        out: None,
                    },
                )
            })
            .collect(),
        prepared,
        udp: listeners.udp,
        tcp: listeners.tcp,
        ws: listeners.ws,
        generation: 1,
        phase: Phase::Starting,
        reload: None,
        queries: Pending::new(),
        reportable: BTreeSet::new(),
        asked: BTreeMap::new(),
        asked_forgotten: 0,
        stats_waiting: Vec::new(),
        events_tx,
        started: Instant::now(),
    };
    if sup.prepared.unprivileged {
        tracing::warn!(
            "Not running as root: unprivileged mode, children keep this user and are not chrooted (no_new_privs and Landlock still apply)."
        );
    }
    tracing::info!(config = %sup.prepared.config.source, udp = %sup.prepared.config.hb_addr, http = %sup.prepared.config.hbd_addr, version = VERSION, "Starting.");
    for role in Role::ALL {
        sup.spawn(role);
    }
    let code = sup.event_loop(events, ctl_rx).await;
    let _ = std::fs::remove_file(&sup.prepared.config.control_socket);
    tracing::info!(code, "Stopped.");
    ExitCode::from(code)
}

struct Supervisor {
    slots: BTreeMap<Role, Slot>,
    prepared: Prepared,
    udp: std::net::UdpSocket,
    tcp: std::net::TcpListener,
    ws: Option<std::net::TcpListener>,
    generation: u64,
    phase: Phase,
    reload: Option<Reload>,
    queries: Pending<Answer>,
    /// Which role each relayed query went to; only that role may answer it.
    asked: BTreeMap<u64, Role>,
    /// The highest id forgotten from `asked`.
    asked_forgotten: u64,
    /// Web requests for the figures waiting on the one gathering in progress.
    stats_waiting: Vec<u64>,
    /// (reporter, peer) pairs whose current channel may still be reported as broken.
    reportable: BTreeSet<(Role, Role)>,
    events_tx: mpsc::UnboundedSender<Event>,
    started: Instant,
}

impl Supervisor {
    async fn event_loop(
        &mut self,
        mut events: mpsc::UnboundedReceiver<Event>,
        mut ctl: mpsc::Receiver<crate::ctl::CtlCall>,
    ) -> u8 {
        loop {
            if let Phase::ShuttingDown { code } = self.phase
                && self.slots.values().all(|s| !s.alive())
            {
                return code;
            }
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => self.handle(event),
                    None => return 70,
                },
                Some((request, reply)) = ctl.recv() => self.control(request, reply),
            }
        }
    }

    fn slot(&mut self, role: Role) -> &mut Slot {
        // Every role has a slot from construction on.
        self.slots.get_mut(&role).expect("slot for every role")
    }

    fn config(&self) -> &Config {
        &self.prepared.config
    }

    fn after(&self, delay: Duration, event: Event) {
        let tx = self.events_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(event);
        });
    }

    fn spawn(&mut self, role: Role) {
        let program = self.prepared.libexec.join(role.binary());
        let plan = self.prepared.plans.get(&role).cloned().unwrap_or_default();
        let (ours, theirs) = match std::os::unix::net::UnixStream::pair() {
            Ok(pair) => pair,
            Err(e) => {
                tracing::error!(role = %role, error = %e, "Cannot create the control socketpair.");
                self.lost(role, self.slots[&role].epoch, format!("spawn failed: {e}"));
                return;
            }
        };
        let theirs = OwnedFd::from(theirs);
        let mut cmd = tokio::process::Command::new(&program);
        cmd.arg(format!("--role={}", role.name()))
            .args(plan.to_args())
            .args((0..self.prepared.verbosity).map(|_| "-v"))
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .process_group(0)
            .kill_on_drop(false);
        hb_child::sys::map_to_control_fd(&mut cmd, &theirs);
        let child = cmd.spawn();
        drop(theirs);
        let slot = self.slot(role);
        slot.epoch += 1;
        let epoch = slot.epoch;
        let mut child = match child {
            Ok(child) => child,
            Err(e) => {
                tracing::error!(role = %role, program = %program.display(), error = %e, "Cannot start child.");
                self.lost(
                    role,
                    epoch,
                    format!("cannot execute {}: {e}", program.display()),
                );
                return;
            }
        };
        let pid = child.id();
        let slot = self.slot(role);
        slot.pid = pid;
        slot.state = State::Starting;
        slot.hello = false;
        slot.started_at = Some(Instant::now());
        slot.confinement = None;
        tracing::info!(role = %role, pid = pid.unwrap_or(0), "Started child.");

        let tx = self.events_tx.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            let _ = tx.send(Event::Exited {
                role,
                epoch,
                status,
            });
        });
        let stream = ours
            .set_nonblocking(true)
            .and_then(|()| tokio::net::UnixStream::from_std(ours));
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(role = %role, error = %e, "Cannot use the control socket.");
                self.kill(role, Signal::SIGKILL);
                return;
            }
        };
        let (read, write) = stream.into_split();
        let (out_tx, mut out_rx) = mpsc::channel::<Outgoing>(CHILD_QUEUE);
        self.slot(role).out = Some(out_tx);
        tokio::spawn(async move {
            while let Some(frame) = out_rx.recv().await {
                let fd = frame.fd.as_ref().map(|fd| fd.as_fd());
                if let Err(e) = hb_child::fdpass::send_frame(write.as_ref(), &frame.line, fd).await
                {
                    tracing::debug!(role = %role, error = %e, "Control channel to child closed.");
                    return;
                }
            }
        });
        let tx = self.events_tx.clone();
        tokio::spawn(async move {
            let mut frames =
                FramedRead::new(read, JsonLines::<FromChild, ToChild>::new(CONTROL_MAX_LINE));
            while let Some(frame) = frames.next().await {
                let event = match frame {
                    Ok(msg) => Event::Message { role, epoch, msg },
                    Err(e) => Event::Violation {
                        role,
                        epoch,
                        reason: e.to_string(),
                    },
                };
                let stop = matches!(event, Event::Violation { .. });
                if tx.send(event).is_err() || stop {
                    return;
                }
            }
        });
        self.after(HANDSHAKE_TIMEOUT, Event::HandshakeTimeout { role, epoch });
    }

    fn send(&mut self, role: Role, msg: &ToChild, fd: Option<OwnedFd>) -> bool {
        let line = match encode_line(msg, CONTROL_MAX_LINE) {
            Ok(line) => line,
            Err(e) => {
                tracing::error!(role = %role, error = %e, "Cannot encode a message for child.");
                return false;
            }
        };
        let Some(out) = self.slots[&role].out.clone() else {
            return false;
        };
        match out.try_send(Outgoing { line, fd }) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::error!(role = %role, "Child does not read its control channel; killing it.");
                self.kill(role, Signal::SIGKILL);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    fn kill(&mut self, role: Role, signal: Signal) {
        if let Some(pid) = self.slots[&role].pid {
            // The child leads its own process group, so this also reaches what it spawned.
            if let Err(e) = killpg(Pid::from_raw(pid as i32), signal) {
                tracing::debug!(role = %role, pid, error = %e, "Cannot signal child.");
            }
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Message { role, epoch, msg } if self.slots[&role].epoch == epoch => {
                self.message(role, msg);
            }
            Event::Violation {
                role,
                epoch,
                reason,
            } if self.slots[&role].epoch == epoch => {
                tracing::error!(role = %role, pid = self.slots[&role].pid.unwrap_or(0), reason = %reason, "Protocol violation on control channel; killing child.");
                self.kill(role, Signal::SIGKILL);
            }
            Event::Exited {
                role,
                epoch,
                status,
            } if self.slots[&role].epoch == epoch => {
                let how = match status {
                    Ok(status) => describe(status),
                    Err(e) => format!("wait failed: {e}"),
                };
                self.lost(role, epoch, how);
            }
            Event::HandshakeTimeout { role, epoch }
                if self.slots[&role].epoch == epoch
                    && self.slots[&role].state == State::Starting =>
            {
                tracing::error!(role = %role, "No handshake within {HANDSHAKE_TIMEOUT:?}; killing child.");
                self.kill(role, Signal::SIGKILL);
            }
            Event::RestartDue { role }
                if self.slots[&role].state == State::Backoff
                    && !matches!(self.phase, Phase::ShuttingDown { .. }) =>
            {
                self.spawn(role);
            }
            Event::ReloadTimeout { generation } => self.reload_timeout(generation),
            Event::Escalate { stage } => self.escalate(stage),
            Event::StatsReady { stats } => {
                for re in std::mem::take(&mut self.stats_waiting) {
                    self.send(
                        Role::Web,
                        &ToChild::Stats {
                            re,
                            stats: stats.clone(),
                        },
                        None,
                    );
                }
            }
            Event::Signal(kind) if kind == SignalKind::hangup() => self.reload(None),
            Event::Signal(_) => self.shutdown(0),
            // Stale: from a process that is already gone.
            _ => {}
        }
    }

    fn message(&mut self, role: Role, msg: FromChild) {
        let must_chroot =
            !self.prepared.unprivileged && self.prepared.plans[&role].chroot.is_some();
        let slot = self.slot(role);
        if !slot.hello && !matches!(msg, FromChild::Hello { .. }) {
            tracing::error!(role = %role, "First message is not Hello; killing child.");
            self.kill(role, Signal::SIGKILL);
            return;
        }
        match msg {
            FromChild::Hello {
                role: said,
                version,
                pid,
            } => {
                if slot.hello || said != role || version != VERSION {
                    tracing::error!(role = %role, said = %said, version = %version, expected = VERSION, pid, "Bad Hello; killing child.");
                    self.kill(role, Signal::SIGKILL);
                    return;
                }
                slot.hello = true;
                let msg = ToChild::Config {
                    generation: self.generation,
                    config: self.config().slice(role),
                };
                self.send(role, &msg, None);
            }
            FromChild::Confined { report } => {
                if must_chroot && report.chroot.is_none() {
                    tracing::error!(role = %role, "Child reports no chroot; killing it.");
                    self.kill(role, Signal::SIGKILL);
                    return;
                }
                slot.confinement = Some(report);
            }
            FromChild::ConfigApplied { generation } => {
                slot.generation = generation;
                if slot.state == State::Starting {
                    self.configured(role);
                }
                self.reload_ack(role, generation, None);
            }
            FromChild::ConfigRejected { generation, reason } => {
                tracing::error!(role = %role, generation, reason = %reason, "Child rejected its configuration.");
                if slot.state == State::Starting {
                    // A child that cannot run on the configuration in force is broken.
                    self.kill(role, Signal::SIGKILL);
                }
                self.reload_ack(role, generation, Some(reason));
            }
            FromChild::Stats { .. } if role != Role::Web => {
                tracing::error!(role = %role, "Asked for the server's figures, which only the web may; killing it.");
                self.kill(role, Signal::SIGKILL);
            }
            FromChild::Stats { id } => self.stats(id),
            FromChild::PeerFailed { peer, reason } => {
                if !role.peers().contains(&peer) {
                    tracing::error!(role = %role, peer = %peer, "Report about a role that is not a peer; killing the reporter.");
                    self.kill(role, Signal::SIGKILL);
                } else if self.reportable.remove(&(role, peer)) {
                    tracing::error!(role = %role, peer = %peer, reason = %reason, "Peer broke the protocol; restarting it.");
                    self.kill(peer, Signal::SIGKILL);
                } else {
                    // One report per channel: a compromised child must not be able to
                    // keep killing its peer, nor a late report kill the peer's successor.
                    tracing::warn!(role = %role, peer = %peer, reason = %reason, "Repeated report about a channel already replaced; ignoring it.");
                }
            }
            FromChild::Answer { re, .. }
                if re <= self.asked_forgotten && !self.asked.contains_key(&re) =>
            {
                tracing::debug!(role = %role, re, "Late answer to a forgotten question dropped.");
            }
            FromChild::Answer { re, .. } if self.asked.get(&re) != Some(&role) => {
                tracing::error!(role = %role, re, "Answer to a question this role was not asked; killing it.");
                self.kill(role, Signal::SIGKILL);
            }
            FromChild::Answer { re, answer } => {
                self.asked.remove(&re);
                if !self.queries.complete(re, answer) {
                    tracing::debug!(role = %role, re, "Late or unknown answer dropped.");
                }
            }
        }
    }

    /// A child applied its first configuration: give it its sockets and, once everyone is
    /// ready (or at once after a restart), start it.
    fn configured(&mut self, role: Role) {
        self.slot(role).state = State::Configured;
        let listener: Option<(PassedSocket, std::io::Result<OwnedFd>)> = match role {
            Role::Receiver => Some((
                PassedSocket::UdpListener,
                self.udp.try_clone().map(OwnedFd::from),
            )),
            Role::Web => Some((
                PassedSocket::TcpListener,
                self.tcp.try_clone().map(OwnedFd::from),
            )),
            _ => None,
        };
        let second = match (&self.ws, role) {
            (Some(ws), Role::Web) => {
                Some((PassedSocket::WsListener, ws.try_clone().map(OwnedFd::from)))
            }
            _ => None,
        };
        for (socket, fd) in listener.into_iter().chain(second) {
            match fd {
                Ok(fd) => {
                    self.send(role, &ToChild::Socket { socket }, Some(fd));
                }
                Err(e) => {
                    tracing::error!(role = %role, error = %e, "Cannot duplicate the listener.");
                }
            }
        }
        for &peer in role.peers() {
            if !self.slots[&peer].configured() {
                continue; // The edge is made when the peer comes up.
            }
            let (a, b) = match std::os::unix::net::UnixStream::pair() {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::error!(role = %role, peer = %peer, error = %e, "Cannot create an edge.");
                    continue;
                }
            };
            self.send(
                role,
                &ToChild::Socket {
                    socket: PassedSocket::Peer { role: peer },
                },
                Some(a.into()),
            );
            self.send(
                peer,
                &ToChild::Socket {
                    socket: PassedSocket::Peer { role },
                },
                Some(b.into()),
            );
            self.reportable.insert((role, peer));
            self.reportable.insert((peer, role));
        }
        match self.phase {
            Phase::Running => {
                self.send(role, &ToChild::Start {}, None);
                self.slot(role).state = State::Running;
                tracing::info!(role = %role, "Child restarted and running.");
            }
            Phase::Starting if self.slots.values().all(Slot::configured) => {
                for r in Role::ALL {
                    self.send(r, &ToChild::Start {}, None);
                    self.slot(r).state = State::Running;
                }
                self.phase = Phase::Running;
                tracing::info!(generation = self.generation, "All children running.");
            }
            _ => {}
        }
    }

    fn lost(&mut self, role: Role, epoch: u64, how: String) {
        let phase = self.phase;
        let slot = self.slot(role);
        if slot.epoch != epoch {
            return;
        }
        let pid = slot.pid.take().unwrap_or(0);
        if pid != 0 {
            // What the child spawned (nsupdate) is in its process group and must not outlive
            // it; the group survives its leader while members remain.
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
        slot.out = None;
        slot.hello = false;
        slot.last_exit = Some(how.clone());
        if let Phase::ShuttingDown { .. } = phase {
            slot.state = State::Stopped;
            tracing::info!(role = %role, pid, status = %how, "Child exited.");
            return;
        }
        tracing::warn!(role = %role, pid, status = %how, "Lost child.");
        let now = Instant::now();
        slot.crashes.push_back(now);
        while slot
            .crashes
            .front()
            .is_some_and(|t| now.duration_since(*t) > CRASH_WINDOW)
        {
            slot.crashes.pop_front();
        }
        let budget = if role == Role::Engine {
            ENGINE_CRASH_BUDGET
        } else {
            CRASH_BUDGET
        };
        let crashes = slot.crashes.len();
        if crashes > budget {
            slot.state = State::Stopped;
            tracing::error!(role = %role, crashes, window_s = CRASH_WINDOW.as_secs(), "Child keeps dying; giving up and shutting down.");
            self.shutdown(1);
            return;
        }
        slot.state = State::Backoff;
        slot.restarts += 1;
        let delay = backoff(crashes);
        tracing::info!(role = %role, delay_ms = delay.as_millis() as u64, "Restarting child.");
        self.after(delay, Event::RestartDue { role });
        self.reload_ack(role, 0, None);
    }

    fn shutdown(&mut self, code: u8) {
        if let Phase::ShuttingDown { .. } = self.phase {
            tracing::warn!("Second shutdown request; killing children now.");
            self.escalate(2);
            return;
        }
        tracing::info!(
            grace_s = self.config().shutdown_grace.as_secs_f64(),
            "Shutting down."
        );
        self.phase = Phase::ShuttingDown { code };
        for role in Role::ALL {
            if self.slots[&role].alive() {
                self.send(role, &ToChild::Shutdown {}, None);
            } else {
                self.slot(role).state = State::Stopped;
            }
        }
        // Everything is gone by the end of the grace period: SIGTERM shortly before it, SIGKILL
        // at it.
        let grace = self.config().shutdown_grace;
        let lead = TERM_BEFORE_KILL.min(grace / 2);
        self.after(grace.saturating_sub(lead), Event::Escalate { stage: 1 });
    }

    fn escalate(&mut self, stage: u8) {
        let signal = if stage == 1 {
            Signal::SIGTERM
        } else {
            Signal::SIGKILL
        };
        for role in Role::ALL {
            if self.slots[&role].alive() {
                tracing::warn!(role = %role, signal = %signal, "Child still running; signalling it.");
                self.kill(role, signal);
            }
        }
        if stage == 1 {
            let grace = self.config().shutdown_grace;
            self.after(
                TERM_BEFORE_KILL.min(grace / 2),
                Event::Escalate { stage: 2 },
            );
        }
    }
}

/// Jittered exponential backoff: 250 ms doubling per crash in the window, at most 10 s, then
/// +-25 % so roles that died together do not restart in lockstep.
fn backoff(crashes: usize) -> Duration {
    let exp = crashes.saturating_sub(1).min(16) as u32;
    let base = BACKOFF_BASE.saturating_mul(1 << exp).min(BACKOFF_MAX);
    let mut byte = [0u8; 1];
    let jitter = match getrandom::fill(&mut byte) {
        Ok(()) => 0.75 + f64::from(byte[0]) / 510.0,
        Err(_) => 1.0,
    };
    base.mul_f64(jitter)
}

/// "exit status 3" or "killed by signal SIGKILL".
pub fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => match Signal::try_from(sig) {
            Ok(s) => format!("killed by signal {s}"),
            Err(_) => format!("killed by signal {sig}"),
        },
        _ => "ended".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let first = backoff(1);
        assert!(
            first >= Duration::from_millis(187) && first <= Duration::from_millis(313),
            "{first:?}"
        );
        assert!(backoff(3) > backoff(1));
        assert!(backoff(40) <= BACKOFF_MAX.mul_f64(1.25));
    }

    #[test]
    fn ids_refuse_root_and_unknown_users() {
        assert!(resolve_ids("0", Some("0")).is_err());
        assert!(resolve_ids("root", None).is_err());
        assert!(
            resolve_ids("no-such-user-hb", None)
                .unwrap_err()
                .contains("does not exist")
        );
        assert!(
            resolve_ids("61001", None)
                .unwrap_err()
                .contains("needs a group")
        );
        assert_eq!(resolve_ids("61001", Some("61002")), Ok((61001, 61002)));
        assert_eq!(resolve_ids("nobody", None).map(|(u, _)| u), Ok(65534));
    }
}
