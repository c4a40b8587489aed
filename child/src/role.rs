//! The child side of the supervisor protocol, shared by every role binary.
//!
//! [`run`] is the whole life of a child: parse the hidden command line, set up logging, take
//! fd 3, drop privileges, and only then build the async runtime, say Hello, and hand control
//! events to the role's own code. EOF on fd 3 (the supervisor is gone) ends the child.
//! [`dispatch`] is the one place a control event is answered: each role says what it does
//! with its slice, its sockets, the start and the queries it takes ([`Control`]), and the
//! refusals (another role's slice, a socket it does not use, a query it does not answer) are
//! the same in every role.

use std::future::Future;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use hb_ipc::codec::{CONTROL_MAX_LINE, encode_line};
use hb_ipc::config::RoleConfig;
use hb_ipc::control::{FromChild, PassedSocket, ServerStats, ToChild};
use hb_ipc::edge::{Answer, Query};
use hb_ipc::{Role, VERSION};
use tokio::net::UnixStream;
use tokio::sync::mpsc;

use crate::fdpass::ControlReader;
use crate::privdrop::{self, Plan};

/// What the supervisor tells a running child.
#[derive(Debug)]
pub enum ControlEvent {
    /// A configuration slice to apply; answer with [`ControlSender::config_applied`].
    Config {
        /// Its generation.
        generation: u64,
        /// The slice.
        config: RoleConfig,
    },
    /// A socket: a listener or a fresh channel to a peer.
    Socket {
        /// What it is.
        socket: PassedSocket,
        /// The descriptor.
        fd: OwnedFd,
    },
    /// Begin work.
    Start,
    /// A relayed query (engine); answer with [`ControlSender::answer`].
    Request {
        /// Request id.
        id: u64,
        /// The query.
        query: Query,
    },
    /// The server's figures, asked for with [`ControlSender::ask_stats`].
    Stats {
        /// The id it was asked with.
        re: u64,
        /// The figures.
        stats: ServerStats,
    },
}

/// Sends messages to the supervisor; cheap to clone. Sending never blocks the caller.
#[derive(Clone, Debug)]
pub struct ControlSender {
    tx: mpsc::UnboundedSender<FromChild>,
}

impl ControlSender {
    /// A sender whose messages go to the returned receiver (for tests of role code).
    pub fn detached() -> (ControlSender, mpsc::UnboundedReceiver<FromChild>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (ControlSender { tx }, rx)
    }

    /// Acknowledges a configuration generation.
    pub fn config_applied(&self, generation: u64) {
        let _ = self.tx.send(FromChild::ConfigApplied { generation });
    }

    /// Refuses a configuration generation; the old one stays in force.
    pub fn config_rejected(&self, generation: u64, reason: String) {
        let _ = self
            .tx
            .send(FromChild::ConfigRejected { generation, reason });
    }

    /// Answers a relayed request.
    pub fn answer(&self, re: u64, answer: Answer) {
        let _ = self.tx.send(FromChild::Answer { re, answer });
    }

    /// Asks the supervisor for every role's counters and restarts (web only); the answer
    /// arrives as [`ControlEvent::Stats`] with `id`.
    pub fn ask_stats(&self, id: u64) {
        let _ = self.tx.send(FromChild::Stats { id });
    }

    /// Reports a peer that broke the protocol, so the supervisor restarts it.
    pub fn peer_failed(&self, peer: Role, reason: String) {
        let _ = self.tx.send(FromChild::PeerFailed { peer, reason });
    }
}

/// What a role does with the supervisor's control events; [`dispatch`] routes each event to
/// it. Only what differs between roles is here: the defaults are what most roles do.
pub trait Control {
    /// Which role this is.
    const ROLE: Role;
    /// Why a query the role does not answer is refused (`hbctl` shows it).
    const REFUSED_QUERY: &'static str;
    /// The role's configuration slice, taken out of a configuration message (another role's
    /// slice is refused).
    type Slice: TryFrom<RoleConfig>;

    /// Applies a slice; an error refuses it, and the slice in force stays.
    fn configure(&mut self, slice: Self::Slice) -> Result<(), String>;

    /// Takes a socket the supervisor passed (links to peers report broken peers through
    /// `control`); gives back the kind of one the role has no use for, which is then closed.
    fn socket(&mut self, passed: Passed, control: &ControlSender) -> Taken;

    /// Begins work; an error ends the child.
    fn start(&mut self) -> impl Future<Output = anyhow::Result<()>> {
        tracing::info!("Running.");
        std::future::ready(Ok(()))
    }

    /// Answers a relayed query (now, or later through `control`); false when the role does
    /// not answer such a query, which is then refused with [`Control::REFUSED_QUERY`].
    fn request(&mut self, id: u64, query: Query, control: &ControlSender) -> bool {
        let _ = (id, query, control);
        false
    }

    /// The server's figures, asked for with [`ControlSender::ask_stats`]; only the web asks.
    fn stats(&mut self, re: u64, stats: ServerStats) {
        let _ = (re, stats);
    }
}

/// A socket the supervisor passed: what it is, and its descriptor.
#[derive(Debug)]
pub struct Passed {
    /// What it is.
    pub socket: PassedSocket,
    /// The descriptor.
    pub fd: OwnedFd,
}

/// What a role did with a passed socket: `None`, taken; `Some(kind)`, of no use to it (it is
/// closed, and a warning says so).
pub type Taken = anyhow::Result<Option<PassedSocket>>;

/// Hands one control event to the role. The end of the events (a shutdown, or the supervisor
/// gone) is the caller's to handle: each role finishes its own way.
pub async fn dispatch<C: Control>(
    role: &mut C,
    event: ControlEvent,
    control: &ControlSender,
) -> anyhow::Result<()> {
    match event {
        ControlEvent::Config { generation, config } => match C::Slice::try_from(config) {
            Ok(slice) => match role.configure(slice) {
                Ok(()) => control.config_applied(generation),
                Err(why) => control.config_rejected(generation, why),
            },
            Err(_) => control.config_rejected(generation, format!("not the {}'s slice", C::ROLE)),
        },
        ControlEvent::Socket { socket, fd } => {
            if let Some(socket) = role.socket(Passed { socket, fd }, control)? {
                tracing::warn!(?socket, "Unexpected socket; closing it.");
            }
        }
        ControlEvent::Start => role.start().await?,
        ControlEvent::Request { id, query } => {
            if !role.request(id, query, control) {
                let message = C::REFUSED_QUERY.to_string();
                control.answer(id, Answer::Error { message });
            }
        }
        ControlEvent::Stats { re, stats } => role.stats(re, stats),
    }
    Ok(())
}

/// Command-line arguments of a role binary (all passed by the supervisor).
#[derive(Debug, Default)]
struct Args {
    role: Option<String>,
    verbosity: u8,
    plan: Plan,
}

fn parse_args() -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut args = Args::default();
    let (mut uid, mut gid) = (None, None);
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("role") => args.role = Some(parser.value()?.string()?),
            Short('v') => args.verbosity = args.verbosity.saturating_add(1),
            Long("uid") => uid = Some(parser.value()?.parse()?),
            Long("gid") => gid = Some(parser.value()?.parse()?),
            Long("chroot") => args.plan.chroot = Some(PathBuf::from(parser.value()?)),
            Long("writable") => args.plan.writable.push(PathBuf::from(parser.value()?)),
            _ => return Err(arg.unexpected()),
        }
    }
    args.plan.ids = uid.zip(gid);
    Ok(args)
}

/// Runs a role: everything up to the handshake here, then `work` with the control events.
pub fn run<F, Fut>(role: Role, work: F) -> ExitCode
where
    F: FnOnce(mpsc::UnboundedReceiver<ControlEvent>, ControlSender) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{}: {e}", role.binary());
            return ExitCode::from(64);
        }
    };
    hb_log::init(role.binary(), args.verbosity);
    if args.role.as_deref() != Some(role.name()) {
        tracing::error!(
            "This program is started by hbsupervisor (--role={}), not by hand.",
            role.name()
        );
        return ExitCode::from(64);
    }
    let fd = match crate::sys::take_control_fd() {
        Ok(fd) => fd,
        Err(e) => {
            tracing::error!(error = %e, "No control channel.");
            return ExitCode::from(71);
        }
    };
    let confinement = match privdrop::confine(&args.plan, role) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "Cannot confine; refusing to run.");
            return ExitCode::from(71);
        }
    };
    if !confinement.escaped.is_empty() {
        tracing::error!(escaped = ?confinement.escaped, "Write probes succeeded outside the allowed directories; refusing to run.");
        return ExitCode::from(71);
    }
    tracing::info!("Confined: {}.", confinement.layers.join(", "));
    let runtime = match crate::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "Cannot build the runtime.");
            return ExitCode::from(71);
        }
    };
    let result = runtime.block_on(async move {
        let stream = Arc::new(unix_stream(fd)?);
        let (tx, out) = mpsc::unbounded_channel();
        let sender = ControlSender { tx };
        let _ = sender.tx.send(FromChild::Hello {
            role,
            version: VERSION.to_string(),
            pid: std::process::id(),
        });
        let _ = sender.tx.send(FromChild::Confined { report: confinement });
        tokio::spawn(write_control(Arc::clone(&stream), out));
        // Unbounded: the role code is polled by the same loop that fills this channel, so a
        // bounded send could wait on itself. Control events are few.
        let (events_tx, events) = mpsc::unbounded_channel();
        let work = work(events, sender.clone());
        tokio::pin!(work);
        let mut reader = ControlReader::new(stream);
        let mut events_tx = Some(events_tx);
        loop {
            tokio::select! {
                result = &mut work => return result,
                frame = reader.next() => match frame {
                    Ok(Some(received)) => {
                        let event = match received.msg {
                            ToChild::Config { generation, config } => {
                                if config.role() != role {
                                    anyhow::bail!("supervisor sent the {} slice to the {role}", config.role());
                                }
                                ControlEvent::Config { generation, config }
                            }
                            ToChild::Socket { socket } => match received.fd {
                                Some(fd) => ControlEvent::Socket { socket, fd },
                                None => anyhow::bail!("socket frame without a descriptor"),
                            },
                            ToChild::Start {} => ControlEvent::Start,
                            ToChild::Request { id, query } => ControlEvent::Request { id, query },
                            ToChild::Stats { re, stats } => ControlEvent::Stats { re, stats },
                            ToChild::Shutdown {} => {
                                tracing::info!("Shutting down.");
                                // Closing the event channel tells the role to finish.
                                events_tx = None;
                                continue;
                            }
                        };
                        if let Some(tx) = &events_tx
                            && tx.send(event).is_err()
                        {
                            return Ok(());
                        }
                    }
                    Ok(None) => {
                        tracing::info!("Supervisor gone; exiting.");
                        return Ok(());
                    }
                    Err(e) => anyhow::bail!("control channel: {e}"),
                },
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "Exiting on error.");
            ExitCode::from(70)
        }
    }
}

async fn write_control(stream: Arc<UnixStream>, mut out: mpsc::UnboundedReceiver<FromChild>) {
    while let Some(msg) = out.recv().await {
        let line = match encode_line(&msg, CONTROL_MAX_LINE) {
            Ok(line) => line,
            Err(e) => {
                tracing::error!(error = %e, "Cannot encode a message for the supervisor.");
                continue;
            }
        };
        if let Err(e) = crate::fdpass::send_frame(&stream, &line, None).await {
            tracing::debug!(error = %e, "Control channel closed.");
            return;
        }
    }
}

/// Turns a passed descriptor into a tokio Unix stream.
pub(crate) fn unix_stream(fd: OwnedFd) -> std::io::Result<UnixStream> {
    let stream = std::os::unix::net::UnixStream::from(fd);
    stream.set_nonblocking(true)?;
    UnixStream::from_std(stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_ipc::config::{DnsupdateConfig, ReceiverConfig};

    /// A role that takes the receiver's slice, refuses a negative burst, keeps the
    /// UDP socket and answers only counters.
    #[derive(Default)]
    struct Probe {
        configured: u32,
        udp: Option<OwnedFd>,
        started: bool,
    }

    impl Control for Probe {
        const ROLE: Role = Role::Receiver;
        const REFUSED_QUERY: &'static str = "probe answers only counters";
        type Slice = ReceiverConfig;

        fn configure(&mut self, slice: ReceiverConfig) -> Result<(), String> {
            if slice.source_burst < 0.0 {
                return Err("negative burst".into());
            }
            self.configured += 1;
            Ok(())
        }

        fn socket(&mut self, passed: Passed, _: &ControlSender) -> Taken {
            match passed.socket {
                PassedSocket::UdpListener => self.udp = Some(passed.fd),
                other => return Ok(Some(other)),
            }
            Ok(None)
        }

        async fn start(&mut self) -> anyhow::Result<()> {
            self.started = true;
            Ok(())
        }

        fn request(&mut self, id: u64, query: Query, control: &ControlSender) -> bool {
            let Query::Counters {} = query else {
                return false;
            };
            control.answer(
                id,
                Answer::Counters {
                    counters: Default::default(),
                },
            );
            true
        }
    }

    fn fd() -> OwnedFd {
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        a.into()
    }

    #[tokio::test]
    async fn every_event_reaches_the_role_or_is_refused_alike() {
        let (control, mut out) = ControlSender::detached();
        let mut probe = Probe::default();
        let events = [
            ControlEvent::Config {
                generation: 1,
                config: RoleConfig::Receiver(ReceiverConfig::default()),
            },
            ControlEvent::Config {
                generation: 2,
                config: RoleConfig::Dnsupdate(DnsupdateConfig::default()),
            },
            ControlEvent::Config {
                generation: 3,
                config: RoleConfig::Receiver(ReceiverConfig {
                    source_burst: -1.0,
                    ..ReceiverConfig::default()
                }),
            },
            ControlEvent::Socket {
                socket: PassedSocket::UdpListener,
                fd: fd(),
            },
            ControlEvent::Socket {
                socket: PassedSocket::TcpListener,
                fd: fd(),
            },
            ControlEvent::Start,
            ControlEvent::Request {
                id: 7,
                query: Query::Counters {},
            },
            ControlEvent::Request {
                id: 8,
                query: Query::ListHosts {},
            },
        ];
        for event in events {
            dispatch(&mut probe, event, &control)
                .await
                .expect("dispatch");
        }
        assert_eq!(probe.configured, 1);
        assert!(probe.udp.is_some() && probe.started);
        let mut said = Vec::new();
        while let Ok(msg) = out.try_recv() {
            said.push(serde_json::to_string(&msg).expect("encode"));
        }
        let expected = [
            r#"{"type":"config_applied","generation":1}"#,
            r#"{"type":"config_rejected","generation":2,"reason":"not the receiver's slice"}"#,
            r#"{"type":"config_rejected","generation":3,"reason":"negative burst"}"#,
        ];
        assert_eq!(said[..3], expected);
        assert!(
            said[3].contains(r#""re":7"#) && said[3].contains("counters"),
            "{}",
            said[3]
        );
        assert!(
            said[4].contains(r#""re":8"#) && said[4].contains("probe answers only counters"),
            "{}",
            said[4]
        );
        assert_eq!(said.len(), 5);
    }
}
