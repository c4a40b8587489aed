//! hb-web: the HTTP API on the listener the supervisor bound. Chrooted, its own user, no
//! secrets; every answer about hosts comes from the engine. This first cut serves
//! `/api/0/hosts`; the full API and dashboard land with their issue.

#![forbid(unsafe_code)]

use std::os::fd::OwnedFd;
use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hb_ipc::Role;
use hb_ipc::config::RoleConfig;
use hb_ipc::control::PassedSocket;
use hb_ipc::edge::{Answer, EngineToWeb, Query, WebToEngine};
use hb_ipc::request::Pending;
use hb_supervisor::child::{self, ControlEvent, ControlSender};
use hb_supervisor::link::{self, Link};
use serde_json::json;
use tokio::sync::mpsc;

const ENGINE_TIMEOUT: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    child::run(Role::Web, run)
}

#[derive(Clone)]
struct Api {
    engine: Link<WebToEngine>,
    pending: Pending<Answer>,
}

impl Api {
    async fn ask(&self, query: Query) -> Result<Answer, Response> {
        let (id, rx) = self.pending.register();
        if !self.engine.send(WebToEngine::Request { id, query }) {
            return Err(error(StatusCode::SERVICE_UNAVAILABLE, "engine queue full"));
        }
        self.pending
            .wait(id, rx, ENGINE_TIMEOUT)
            .await
            .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, &format!("engine: {e}")))
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

async fn hosts(State(api): State<Api>) -> Response {
    match api.ask(Query::ListHosts {}).await {
        Ok(Answer::Hosts { hosts }) => {
            let list: Vec<_> = hosts
                .into_iter()
                .map(|h| {
                    json!({
                        "name": h.name,
                        "last_seen": h.last_seen_ms as f64 / 1000.0,
                        "address": h.address.ip().to_string(),
                        "port": h.address.port(),
                        "interval": h.interval,
                        "heartbeats": h.heartbeats,
                        "rtt": h.rtt_ms,
                        "ver": h.version,
                        "signed": h.signed,
                        "state": h.state,
                    })
                })
                .collect();
            axum::Json(list).into_response()
        }
        Ok(Answer::Error { message }) => error(StatusCode::INTERNAL_SERVER_ERROR, &message),
        Ok(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "unexpected answer"),
        Err(response) => response,
    }
}

async fn messages(State(api): State<Api>) -> Response {
    match api.ask(Query::Messages {}).await {
        Ok(Answer::Messages { messages }) => {
            let list: Vec<_> = messages
                .into_iter()
                .rev()
                .map(|m| json!({"time": m.time_ms as f64 / 1000.0, "host": m.host, "msg": m.msg}))
                .collect();
            axum::Json(list).into_response()
        }
        Ok(Answer::Error { message }) => error(StatusCode::INTERNAL_SERVER_ERROR, &message),
        Ok(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "unexpected answer"),
        Err(response) => response,
    }
}

async fn run(
    mut events: mpsc::UnboundedReceiver<ControlEvent>,
    control: ControlSender,
) -> anyhow::Result<()> {
    let api = Api {
        engine: Link::new(Role::Engine),
        pending: Pending::new(),
    };
    let (answers_tx, mut answers) = mpsc::channel::<EngineToWeb>(256);
    let pending = api.pending.clone();
    tokio::spawn(async move {
        while let Some(msg) = answers.recv().await {
            match msg {
                EngineToWeb::Answer { re, answer } => {
                    if !pending.complete(re, answer) {
                        tracing::debug!(re, "Late answer from the engine dropped.");
                    }
                }
                // The live dashboard (its own issue) turns these into WebSocket updates.
                EngineToWeb::Change { change } => tracing::trace!(?change, "Change."),
            }
        }
    });
    let mut tcp: Option<OwnedFd> = None;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    while let Some(event) = events.recv().await {
        match event {
            ControlEvent::Config {
                generation,
                config: RoleConfig::Web(c),
            } => {
                if c.users.is_empty() {
                    tracing::info!(
                        "No users configured: unauthenticated mode, every page and endpoint is open."
                    );
                }
                control.config_applied(generation);
            }
            ControlEvent::Config { generation, .. } => {
                control.config_rejected(generation, "not a web slice".into())
            }
            ControlEvent::Socket {
                socket: PassedSocket::TcpListener,
                fd,
            } => tcp = Some(fd),
            ControlEvent::Socket {
                socket: PassedSocket::Peer { role: Role::Engine },
                fd,
            } => {
                link::connect(
                    child::unix_stream(fd)?,
                    &api.engine,
                    answers_tx.clone(),
                    control.clone(),
                );
            }
            ControlEvent::Socket { socket, .. } => {
                tracing::warn!(?socket, "Unexpected socket; closing it.")
            }
            ControlEvent::Start => {
                let Some(fd) = tcp.take() else {
                    anyhow::bail!("started without a TCP listener");
                };
                let listener = std::net::TcpListener::from(fd);
                listener.set_nonblocking(true)?;
                let listener = tokio::net::TcpListener::from_std(listener)?;
                tracing::info!(addr = ?listener.local_addr().ok(), "Serving HTTP.");
                let app = Router::new()
                    .route("/api/0/hosts", get(hosts))
                    .route("/api/0/messages", get(messages))
                    .with_state(api.clone());
                let mut stop = stop_rx.clone();
                tokio::spawn(async move {
                    let shutdown = async move {
                        let _ = stop.wait_for(|s| *s).await;
                    };
                    if let Err(e) = axum::serve(listener, app)
                        .with_graceful_shutdown(shutdown)
                        .await
                    {
                        tracing::error!(error = %e, "HTTP server failed.");
                    }
                });
            }
            ControlEvent::Request { id, .. } => {
                control.answer(
                    id,
                    Answer::Error {
                        message: "the web answers no queries".into(),
                    },
                );
            }
        }
    }
    let _ = stop_tx.send(true);
    Ok(())
}
