//! hb-receiver: reads heartbeat datagrams from the UDP socket the supervisor bound and
//! forwards valid ones to the engine. Runs chrooted, as its own user, with nothing to write.

#![forbid(unsafe_code)]

use std::os::fd::OwnedFd;
use std::process::ExitCode;

use hb_ipc::Role;
use hb_ipc::config::{ReceiverConfig, RoleConfig};
use hb_ipc::control::PassedSocket;
use hb_ipc::edge::{Answer, ReceiverToEngine, Silent};
use hb_supervisor::child::{self, ControlEvent, ControlSender};
use hb_supervisor::link::{self, Link};
use serde::Deserialize;
use tokio::sync::{mpsc, watch};

fn main() -> ExitCode {
    child::run(Role::Receiver, run)
}

async fn run(
    mut events: mpsc::UnboundedReceiver<ControlEvent>,
    control: ControlSender,
) -> anyhow::Result<()> {
    let engine = Link::<ReceiverToEngine>::new(Role::Engine);
    let (inbound, _keep) = mpsc::channel::<Silent>(1);
    let (config_tx, config) = watch::channel(ReceiverConfig::default());
    let mut udp: Option<OwnedFd> = None;
    while let Some(event) = events.recv().await {
        match event {
            ControlEvent::Config {
                generation,
                config: RoleConfig::Receiver(c),
            } => {
                config_tx.send_replace(c);
                control.config_applied(generation);
            }
            ControlEvent::Config { generation, .. } => {
                control.config_rejected(generation, "not a receiver slice".into());
            }
            ControlEvent::Socket {
                socket: PassedSocket::UdpListener,
                fd,
            } => udp = Some(fd),
            ControlEvent::Socket {
                socket: PassedSocket::Peer { role: Role::Engine },
                fd,
            } => {
                link::connect(
                    child::unix_stream(fd)?,
                    &engine,
                    inbound.clone(),
                    control.clone(),
                );
            }
            ControlEvent::Socket { socket, .. } => {
                tracing::warn!(?socket, "Unexpected socket; closing it.")
            }
            ControlEvent::Start => {
                let Some(fd) = udp.take() else {
                    anyhow::bail!("started without a UDP socket");
                };
                let socket = std::net::UdpSocket::from(fd);
                socket.set_nonblocking(true)?;
                let socket = tokio::net::UdpSocket::from_std(socket)?;
                tracing::info!(addr = ?socket.local_addr().ok(), "Receiving.");
                tokio::spawn(receive(socket, engine.clone(), config.clone()));
            }
            ControlEvent::Request { id, .. } => {
                control.answer(
                    id,
                    Answer::Error {
                        message: "the receiver answers no queries".into(),
                    },
                );
            }
        }
    }
    Ok(())
}

/// The fields of a datagram the skeleton pipeline needs; the full protocol is docs/PROTOCOL.md.
#[derive(Deserialize)]
struct Datagram {
    #[serde(rename = "ID")]
    id: String,
    name: Option<String>,
    interval: Option<u32>,
}

async fn receive(
    socket: tokio::net::UdpSocket,
    engine: Link<ReceiverToEngine>,
    config: watch::Receiver<ReceiverConfig>,
) {
    let mut buf = vec![0u8; 65536];
    let mut rejected: u64 = 0;
    loop {
        let (len, source) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "UDP receive failed.");
                continue;
            }
        };
        let reason = match serde_json::from_slice::<Datagram>(&buf[..len]) {
            Err(e) => Some(format!("not a heartbeat: {e}")),
            Ok(d) if d.id != "HTB" => Some(format!("unhandled ID {:?}", d.id)),
            Ok(Datagram { name: None, .. }) => Some("no name".into()),
            Ok(Datagram {
                name: Some(name),
                interval,
                ..
            }) => match hb_proto::names::check_host_name(&name) {
                Err(why) => Some(why),
                Ok(()) if config.borrow().drophosts.contains(&name) => None,
                Ok(()) => {
                    engine.send(ReceiverToEngine::HeartbeatReceived {
                        host: name,
                        interval: interval.filter(|i| *i > 0),
                        source,
                        received_ms: hb_ipc::now_ms(),
                    });
                    None
                }
            },
        };
        if let Some(reason) = reason {
            rejected += 1;
            tracing::debug!(%source, rejected, reason = %reason, "Datagram rejected.");
        }
    }
}
