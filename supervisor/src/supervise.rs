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
use hb_child::privdrop::Plan;

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

/// Everything resolved before the first child is spawned.
#[derive(Debug)]
pub struct Prepared {
    /// The configuration.
    pub config: Config,
    /// Where the role binaries are.
    pub libexec: PathBuf,
    /// Confinement per role.
    pub plans: BTreeMap<Role, Plan>,
    /// True when not root.
    pub unprivileged: bool,
    /// `-v` count, passed on to children.
    pub verbosity: u8,
}

impl Prepared {
    /// Resolves users and confinement for every role. Checked by `-n` too, so "configuration
    /// OK" means the server can start.
    pub fn new(config: Config, verbosity: u8) -> Result<Prepared, ConfigErrors> {
        let unprivileged = !nix::unistd::geteuid().is_root();
        let libexec = match &config.file.libexec_dir {
            Some(dir) => dir.clone(),
            None => own_dir().map_err(|e| config.error("libexec_dir", e))?,
        };
        let mut plans = BTreeMap::new();
        for role in Role::ALL {
            let ids = if unprivileged {
                None
            } else {
                let (user, group) = config.user_spec(role);
                Some(
                    resolve_ids(&user, group.as_deref())
                        .map_err(|e| config.error(config.user_key(role), e))?,
                )
            };
            let chroot = match role {
                Role::Receiver | Role::Web if !unprivileged => Some(config.chroot_dir.clone()),
                _ => None,
            };
            let writable = match role {
                Role::Engine => vec![config.state_dir.clone(), config.journal_dir.clone()],
                _ => Vec::new(),
            };
            plans.insert(
                role,
                Plan {
                    ids,
                    chroot,
                    writable,
                },
            );
        }
        Ok(Prepared {
            config,
            libexec,
            plans,
            unprivileged,
            verbosity,
        })
    }

    /// Creates the directories the server needs, owned by whoever must write them.
    pub fn make_dirs(&self) -> std::io::Result<()> {
        let engine = self.plans.get(&Role::Engine).and_then(|p| p.ids);
        for dir in [&self.config.state_dir, &self.config.journal_dir] {
            let handle = make_dir(dir, 0o750)?;
            if let Some((uid, gid)) = engine {
                // Through the handle: the path is opened without following a final symlink,
                // so an engine that planted one cannot have root chown what it points to.
                std::os::unix::fs::fchown(&handle, Some(uid), Some(gid))?;
            }
        }
        if let Some(parent) = self.config.control_socket.parent() {
            make_dir(parent, 0o755)?;
        }
        if !self.unprivileged {
            make_dir(&self.config.chroot_dir, 0o755)?;
        }
        Ok(())
    }
}

/// Creates `dir` if missing (with `mode`) and opens it. Refuses a path with a symlink that
/// root does not own in any component: these directories are chowned to, and written by,
/// less privileged users, who must not be able to redirect root's next start elsewhere.
fn make_dir(dir: &Path, mode: u32) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let mut prefix = PathBuf::new();
    for part in dir.components() {
        prefix.push(part);
        match std::fs::symlink_metadata(&prefix) {
            Ok(meta) if meta.file_type().is_symlink() && meta.uid() != 0 => {
                return Err(std::io::Error::other(format!(
                    "{} is a symlink owned by uid {}; refusing to use {}",
                    prefix.display(),
                    meta.uid(),
                    dir.display()
                )));
            }
            _ => {}
        }
    }
    let created = match std::fs::symlink_metadata(dir) {
        Ok(_) => false,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)?;
            true
        }
        Err(e) => return Err(e),
    };
    let handle = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY)
        .open(dir)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    if created {
        handle.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    Ok(handle)
}

fn own_dir() -> Result<PathBuf, String> {
    // Resolved once at start: after a package upgrade the path names the new binaries, and
    // the Hello version check refuses any that do not match this supervisor.
    let exe = std::fs::read_link("/proc/self/exe")
        .or_else(|_| std::env::current_exe())
        .map_err(|e| format!("cannot find my own executable: {e}"))?;
    exe.parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| "my executable has no directory".to_string())
}

/// Resolves `user[:group]` (names or numbers) to ids; refuses root.
pub fn resolve_ids(user: &str, group: Option<&str>) -> Result<(u32, u32), String> {
    use nix::unistd::{Group, User};
    let (uid, primary) = match user.parse::<u32>() {
        Ok(uid) => (uid, None),
        Err(_) => match User::from_name(user) {
            Ok(Some(u)) => (u.uid.as_raw(), Some(u.gid.as_raw())),
            Ok(None) => {
                return Err(format!(
                    "user {user:?} does not exist; create it (useradd --system --no-create-home --shell /usr/sbin/nologin {user}) or name another"
                ));
            }
            Err(e) => return Err(format!("cannot look up user {user:?}: {e}")),
        },
    };
    let gid = match group {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => match Group::from_name(g) {
                Ok(Some(grp)) => grp.gid.as_raw(),
                Ok(None) => return Err(format!("group {g:?} does not exist")),
                Err(e) => return Err(format!("cannot look up group {g:?}: {e}")),
            },
        },
        None => {
            primary.ok_or_else(|| format!("numeric user {uid} needs a group: write {uid}:GID"))?
        }
    };
    if uid == 0 || gid == 0 {
        return Err(
            "children must not run as root (uid or gid 0); name an unprivileged user".into(),
        );
    }
    Ok((uid, gid))
}

/// The sockets the supervisor binds for its children.
#[derive(Debug)]
pub struct Listeners {
    /// UDP heartbeats, for the receiver.
    pub udp: std::net::UdpSocket,
    /// HTTP, for web.
    pub tcp: std::net::TcpListener,
    /// The second HTTP port (`ws_port`), for web.
    pub ws: Option<std::net::TcpListener>,
    /// hbctl's socket.
    pub control: std::os::unix::net::UnixListener,
}

impl Listeners {
    /// Binds everything; errors name the address.
    pub fn bind(config: &Config) -> anyhow::Result<Listeners> {
        use anyhow::Context;
        let udp = std::net::UdpSocket::bind(config.hb_addr)
            .with_context(|| format!("cannot bind UDP {} (hb_host, hb_port)", config.hb_addr))?;
        size_receive_buffer(&udp, config.udp_receive_buffer);
        let tcp = std::net::TcpListener::bind(config.hbd_addr)
            .with_context(|| format!("cannot bind TCP {} (hbd_host, hbd_port)", config.hbd_addr))?;
        let ws = config
            .ws_addr
            .map(|addr| {
                std::net::TcpListener::bind(addr)
                    .with_context(|| format!("cannot bind TCP {addr} (hbd_host, ws_port)"))
            })
            .transpose()?;
        let control = crate::ctl::bind(&config.control_socket)?;
        Ok(Listeners {
            udp,
            tcp,
            ws,
            control,
        })
    }
}

/// Sizes the heartbeat socket's receive buffer (`udp_receive_buffer`): on Linux as root past
/// `net.core.rmem_max` (`SO_RCVBUFFORCE`), otherwise up to it (the BSDs' limit is
/// `kern.ipc.maxsockbuf`). Logs what the kernel granted.
fn size_receive_buffer(udp: &std::net::UdpSocket, wanted: usize) {
    use nix::sys::socket::{setsockopt, sockopt};
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let forced = setsockopt(udp, sockopt::RcvBufForce, &wanted).is_ok();
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let forced = false;
    if !forced {
        let _ = setsockopt(udp, sockopt::RcvBuf, &wanted);
    }
    // Linux grants (and reports) twice what is asked, half of it for its own overhead; the
    // BSDs grant what is asked.
    let usable = |granted: usize| {
        if cfg!(any(target_os = "linux", target_os = "android")) {
            granted / 2
        } else {
            granted
        }
    };
    match nix::sys::socket::getsockopt(udp, sockopt::RcvBuf) {
        Ok(granted) if usable(granted) < wanted => tracing::warn!(
            granted,
            wanted,
            "UDP receive buffer is small; a burst of heartbeats may be dropped by the kernel (raise net.core.rmem_max or kern.ipc.maxsockbuf, or start as root on Linux)."
        ),
        Ok(granted) => tracing::debug!(granted, "UDP receive buffer sized."),
        Err(e) => tracing::warn!(error = %e, "Cannot read the UDP receive buffer size."),
    }
}

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
                self.message(role, msg)
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
                self.spawn(role)
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
                    tracing::error!(role = %role, error = %e, "Cannot duplicate the listener.")
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

    fn reload(&mut self, reply: Option<oneshot::Sender<CtlResponse>>) {
        let answer = |reply: Option<oneshot::Sender<CtlResponse>>, response| {
            if let Some(reply) = reply {
                let _ = reply.send(response);
            }
        };
        if self.reload.is_some() {
            tracing::warn!("Reload already in progress; ignoring this one.");
            return answer(
                reply,
                CtlResponse::Error {
                    message: "a reload is already in progress".into(),
                },
            );
        }
        if matches!(self.phase, Phase::ShuttingDown { .. }) {
            return answer(
                reply,
                CtlResponse::Error {
                    message: "shutting down".into(),
                },
            );
        }
        let path = match &self.config().source {
            crate::config::Source::File(path) => path.clone(),
            crate::config::Source::Builtin => {
                tracing::info!("Running on the built-in default; nothing to reload.");
                return answer(
                    reply,
                    CtlResponse::Reloaded {
                        generation: self.generation,
                    },
                );
            }
        };
        let mut new = match Config::load(&path) {
            Ok(config) => config,
            Err(e) => {
                tracing::error!(
                    generation = self.generation,
                    "Reload failed; keeping the configuration in force:\n{e}"
                );
                return answer(
                    reply,
                    CtlResponse::Error {
                        message: e.to_string(),
                    },
                );
            }
        };
        carry_restart_only(self.config(), &mut new);
        let previous = Box::new(std::mem::replace(&mut self.prepared.config, new));
        self.generation += 1;
        let generation = self.generation;
        let waiting: BTreeSet<Role> = self
            .slots
            .values()
            .filter(|s| s.alive() && s.hello)
            .map(|s| s.role)
            .collect();
        for &role in &waiting {
            let msg = ToChild::Config {
                generation,
                config: self.config().slice(role),
            };
            self.send(role, &msg, None);
        }
        tracing::info!(generation, "Reloading.");
        self.reload = Some(Reload {
            generation,
            previous,
            waiting,
            failures: Vec::new(),
            reply,
        });
        self.finish_reload_if_done();
        self.after(RELOAD_TIMEOUT, Event::ReloadTimeout { generation });
    }

    /// Counts a reload acknowledgement (or a death, with generation 0) and finishes the reload
    /// when nobody is left to answer.
    fn reload_ack(&mut self, role: Role, generation: u64, rejected: Option<String>) {
        let Some(reload) = self.reload.as_mut() else {
            return;
        };
        if generation == reload.generation || generation == 0 && !self.slots[&role].alive() {
            reload.waiting.remove(&role);
            if let Some(reason) = rejected {
                reload.failures.push(format!("{role}: {reason}"));
            }
        }
        self.finish_reload_if_done();
    }

    fn finish_reload_if_done(&mut self) {
        if self.reload.as_ref().is_none_or(|r| !r.waiting.is_empty()) {
            return;
        }
        let Some(reload) = self.reload.take() else {
            return;
        };
        let response = if reload.failures.is_empty() {
            tracing::info!(
                generation = reload.generation,
                "Reload complete, generation {}.",
                reload.generation
            );
            CtlResponse::Reloaded {
                generation: reload.generation,
            }
        } else {
            // Some children run the new slice, one refused it: put everyone back on the
            // previous configuration, under a new generation so acknowledgements stay
            // unambiguous.
            self.prepared.config = *reload.previous;
            self.generation += 1;
            let generation = self.generation;
            for role in Role::ALL {
                if self.slots[&role].alive() && self.slots[&role].hello {
                    let msg = ToChild::Config {
                        generation,
                        config: self.config().slice(role),
                    };
                    self.send(role, &msg, None);
                }
            }
            let message = format!(
                "generation {} rejected by {}; rolled back to the previous configuration as generation {generation}",
                reload.generation,
                reload.failures.join("; ")
            );
            tracing::error!("Reload failed: {message}.");
            CtlResponse::Error { message }
        };
        if let Some(reply) = reload.reply {
            let _ = reply.send(response);
        }
    }

    fn reload_timeout(&mut self, generation: u64) {
        let Some(reload) = self.reload.as_ref() else {
            return;
        };
        if reload.generation != generation {
            return;
        }
        let late: Vec<Role> = reload.waiting.iter().copied().collect();
        for role in late {
            tracing::error!(role = %role, generation, "No answer to the reload; killing child (it restarts on the new configuration).");
            self.kill(role, Signal::SIGKILL);
        }
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
        self.after(grace - lead, Event::Escalate { stage: 1 });
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

    fn control(&mut self, request: CtlRequest, reply: oneshot::Sender<CtlResponse>) {
        match request {
            CtlRequest::Status {} => {
                let _ = reply.send(CtlResponse::Status {
                    status: self.status(),
                });
            }
            CtlRequest::Reload {} => self.reload(Some(reply)),
            CtlRequest::Hosts {} => self.ask(Role::Engine, Query::ListHosts {}, reply),
            CtlRequest::Counters { role } => self.ask(role, Query::Counters {}, reply),
            CtlRequest::Messages {} => self.ask(Role::Engine, Query::Messages {}, reply),
            CtlRequest::Command { host, command } => {
                self.ask(Role::Engine, Query::QueueCommand { host, command }, reply)
            }
            CtlRequest::Query { query } => self.ask(Role::Engine, query, reply),
            // A test notification waits for one attempt on each channel.
            CtlRequest::Notify { channel } => self.ask_within(
                Role::Notifier,
                Query::TestNotify { channel },
                reply,
                NOTIFY_TIMEOUT,
            ),
        }
    }

    /// Forgets the oldest questions past 1024 (ids only grow); an answer to one of them is
    /// late, not a lie.
    fn prune_asked(&mut self) {
        while self.asked.len() > 1024 {
            if let Some((id, _)) = self.asked.pop_first() {
                self.asked_forgotten = self.asked_forgotten.max(id);
            }
        }
    }

    /// Gathers every other role's counters (each asked at once, all within
    /// [`STATS_TIMEOUT`]) and the restart counts, and sends them to the web.
    fn stats(&mut self, re: u64) {
        // One gathering at a time; whoever asks meanwhile gets its result.
        self.stats_waiting.push(re);
        if self.stats_waiting.len() > 1 {
            if self.stats_waiting.len() > 1024 {
                self.stats_waiting.remove(1);
            }
            return;
        }
        let mut stats = ServerStats {
            roles: BTreeMap::new(),
            uptime_s: self.started.elapsed().as_secs(),
        };
        let mut waits = Vec::new();
        for role in Role::ALL {
            let slot = &self.slots[&role];
            stats.roles.insert(
                role,
                RoleStats {
                    running: slot.state == State::Running,
                    restarts: slot.restarts,
                    counters: BTreeMap::new(),
                },
            );
            // The web, which asks, adds its own counters.
            if role == Role::Web || !slot.configured() {
                continue;
            }
            let (id, rx) = self.queries.register();
            let query = ToChild::Request {
                id,
                query: Query::Counters {},
            };
            if self.send(role, &query, None) {
                self.asked.insert(id, role);
                waits.push((role, id, rx));
            } else {
                self.queries.complete(
                    id,
                    Answer::Error {
                        message: String::new(),
                    },
                );
            }
        }
        self.prune_asked();
        let queries = self.queries.clone();
        let events = self.events_tx.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + STATS_TIMEOUT;
            for (role, id, rx) in waits {
                let left = deadline.saturating_duration_since(Instant::now());
                if let Ok(Answer::Counters { counters }) = queries.wait(id, rx, left).await
                    && let Some(r) = stats.roles.get_mut(&role)
                {
                    r.counters = counters;
                }
            }
            let _ = events.send(Event::StatsReady { stats });
        });
    }

    /// Relays a query to a child and its answer to `hbctl`, with a timeout.
    fn ask(&mut self, role: Role, query: Query, reply: oneshot::Sender<CtlResponse>) {
        self.ask_within(role, query, reply, QUERY_TIMEOUT);
    }

    fn ask_within(
        &mut self,
        role: Role,
        query: Query,
        reply: oneshot::Sender<CtlResponse>,
        timeout: Duration,
    ) {
        let (id, rx) = self.queries.register();
        let sent = self.slots[&role].configured()
            && self.send(role, &ToChild::Request { id, query }, None);
        if sent {
            self.asked.insert(id, role);
            self.prune_asked();
        } else {
            let message = format!("the {role} is not running");
            self.queries.complete(id, Answer::Error { message });
        }
        let queries = self.queries.clone();
        tokio::spawn(async move {
            let response = match queries.wait(id, rx, timeout).await {
                Ok(Answer::Hosts { hosts }) => CtlResponse::Hosts { hosts },
                Ok(Answer::Counters { counters }) => CtlResponse::Counters { role, counters },
                Ok(Answer::Messages { messages }) => CtlResponse::Messages { messages },
                Ok(Answer::Queued { id }) => CtlResponse::Queued { id },
                Ok(Answer::Error { message }) => CtlResponse::Error { message },
                Ok(answer) => CtlResponse::Answer { answer },
                Err(e) => CtlResponse::Error {
                    message: format!("{role}: {e}"),
                },
            };
            let _ = reply.send(response);
        });
    }

    fn status(&self) -> ServerStatus {
        ServerStatus {
            pid: std::process::id(),
            version: VERSION.to_string(),
            generation: self.generation,
            uptime_s: self.started.elapsed().as_secs(),
            unprivileged: self.prepared.unprivileged,
            config: self.config().source.to_string(),
            children: self
                .slots
                .values()
                .map(|s| ChildStatus {
                    role: s.role,
                    pid: s.pid,
                    state: match s.state {
                        State::Starting | State::Configured => "starting",
                        State::Running => "running",
                        State::Backoff => "restarting",
                        State::Stopped => "stopped",
                    }
                    .into(),
                    uptime_s: s.pid.and(s.started_at).map(|t| t.elapsed().as_secs()),
                    restarts: s.restarts,
                    last_exit: s.last_exit.clone(),
                    generation: s.generation,
                    confinement: s.confinement.clone(),
                })
                .collect(),
        }
    }
}

/// Settings that only take effect at start: a reload keeps the old value and says so.
fn carry_restart_only(old: &Config, new: &mut Config) {
    macro_rules! keep {
        ($($field:ident).+, $key:expr) => {
            if old.$($field).+ != new.$($field).+ {
                tracing::warn!(key = $key, "Changed, but takes effect only after a restart; keeping the running value.");
                new.$($field).+ = old.$($field).+.clone();
            }
        };
    }
    keep!(hb_addr, "hb_host/hb_port");
    keep!(udp_receive_buffer, "udp_receive_buffer");
    keep!(hbd_addr, "hbd_host/hbd_port");
    keep!(ws_addr, "ws_port");
    keep!(state_dir, "state_dir");
    keep!(journal_dir, "journal_dir");
    keep!(control_socket, "control_socket");
    keep!(pidfile, "pidfile");
    keep!(logfile, "logfile");
    keep!(chroot_dir, "chroot_dir");
    keep!(file.user, "user");
    keep!(file.group, "group");
    keep!(file.receiver_user, "receiver_user");
    keep!(file.engine_user, "engine_user");
    keep!(file.notifier_user, "notifier_user");
    keep!(file.dnsupdate_user, "dnsupdate_user");
    keep!(file.web_user, "web_user");
    keep!(file.libexec_dir, "libexec_dir");
    keep!(file.journal_enabled, "journal_enabled");
    keep!(file.journal_file, "journal_file");
    keep!(file.journal_max_size, "journal_max_size");
    keep!(file.journal_max_backups, "journal_max_backups");
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
