//! The live feed: `/ws` sends a snapshot of what the viewer may see, then every change the
//! engine reports, filtered per viewer, as JSON arrays of updates (live.rs fans them out).
//! A client that falls the ring behind, or does not take a frame within [`SEND_TIMEOUT`],
//! is dropped (it reconnects and gets a fresh snapshot).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hb_ipc::edge::{Answer, HostSummary, Query};
use hb_web::access::Viewer;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::authed::Authed;
use crate::live::Update;
use crate::reply::ApiError;
use crate::views::{alert_json, event_json, hosts_json};
use crate::web::{Web, WebState};

/// A client must take each message within this.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Pings keep proxies from closing quiet connections, and check the session is still alive.
const PING_EVERY: Duration = Duration::from_secs(30);
/// Clients at once.
const MAX_CLIENTS: usize = 10_000;

pub fn routes() -> Router<Arc<Web>> {
    Router::new().route("/ws", get(upgrade))
}

/// `GET /ws`: upgrades a logged-in (or, without users, any) client.
async fn upgrade(
    State(web): WebState,
    authed: Authed,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    // Another site's Origin was refused by the request guard (main.rs).
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(e) => return ApiError::new(e.status(), e.body_text()).into_response(),
    };
    // Counted from here, so a burst of upgrades cannot pass the cap together.
    let slot = ClientSlot::take(&web);
    if web.live.clients() > MAX_CLIENTS {
        web.count("ws_refused_full");
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "too many live clients")
            .into_response();
    }
    // Subscribe before the snapshot is asked for, so nothing falls between them.
    let rx = web.live.subscribe();
    let snapshot = match snapshot(&web, &authed.viewer).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    upgrade
        // Clients send nothing but pongs and closes.
        .max_message_size(4096)
        .max_frame_size(4096)
        .on_upgrade(move |socket| serve(web, slot, authed, socket, snapshot, rx))
}

/// One live client counted; uncounted when dropped, however its connection ends.
struct ClientSlot(Arc<Web>);

impl ClientSlot {
    fn take(web: &Arc<Web>) -> ClientSlot {
        web.live.client_came();
        ClientSlot(web.clone())
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.0.live.client_left();
    }
}

/// The first frame, and (for a non-admin) the hosts it shows.
async fn snapshot(web: &Web, viewer: &Viewer) -> Result<(String, HashSet<String>), ApiError> {
    let hosts = web.host_list().await?;
    let visible: Vec<&HostSummary> = hosts.iter().filter(|h| viewer.sees(h)).collect();
    let names: HashSet<&str> = visible.iter().map(|h| h.name.as_str()).collect();
    let seen: HashSet<String> = if viewer.is_admin() {
        HashSet::new()
    } else {
        names.iter().map(std::string::ToString::to_string).collect()
    };
    let alerts: Vec<Value> = match web.ask(Query::Alerts {}).await? {
        Answer::Alerts { alerts } => alerts
            .iter()
            .filter(|a| names.contains(a.host.as_str()))
            .map(alert_json)
            .collect(),
        _ => Vec::new(),
    };
    let messages: Vec<Value> = match web.ask(Query::Messages {}).await? {
        Answer::Messages { messages } => messages
            .iter()
            .rev()
            .filter(|m| names.contains(m.host.as_str()))
            .map(event_json)
            .collect(),
        _ => Vec::new(),
    };
    // The host list is by far the largest part: serialized straight, not through a tree.
    let head = json!({
        "type": "snapshot",
        "time": hb_ipc::now_ms() as f64 / 1000.0,
        "user": viewer.name(),
        "unauthenticated": matches!(viewer, Viewer::Open),
        "alerts": alerts,
        "messages": messages,
    })
    .to_string();
    let hosts = hosts_json(visible.into_iter(), viewer);
    let head = head.strip_suffix('}').unwrap_or(&head);
    let snapshot = format!("{head},\"hosts\":{hosts}}}");
    Ok((snapshot, seen))
}

async fn serve(
    web: Arc<Web>,
    _slot: ClientSlot,
    authed: Authed,
    mut socket: WebSocket,
    (snapshot, mut seen): (String, HashSet<String>),
    mut rx: broadcast::Receiver<Arc<Update>>,
) {
    web.count("ws_connected");
    let why = run_client(&web, &authed, &mut socket, snapshot, &mut seen, &mut rx).await;
    if let Some((code, reason)) = why {
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            socket.send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            }))),
        )
        .await;
    }
}

/// Sends one text, within [`SEND_TIMEOUT`].
async fn send(
    socket: &mut WebSocket,
    text: Utf8Bytes,
) -> Result<Result<(), axum::Error>, tokio::time::error::Elapsed> {
    tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(text))).await
}

/// Feeds one client until it goes or must go; the close code and reason, if we close.
async fn run_client(
    web: &Web,
    authed: &Authed,
    socket: &mut WebSocket,
    snapshot: String,
    seen: &mut HashSet<String>,
    rx: &mut broadcast::Receiver<Arc<Update>>,
) -> Option<(u16, &'static str)> {
    if !matches!(send(socket, snapshot.into()).await, Ok(Ok(()))) {
        web.count("ws_dropped_slow");
        return None;
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            update = rx.recv() => match update {
                Ok(update) => {
                    let Some(frame) = update.frame_for(&authed.viewer, seen) else {
                        continue;
                    };
                    match send(socket, frame).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return None,
                        Err(_) => {
                            web.count("ws_dropped_slow");
                            return Some((1013, "too slow: reconnect"));
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    web.count("ws_dropped_slow");
                    return Some((1013, "too slow: reconnect"));
                }
                Err(broadcast::error::RecvError::Closed) => return Some((1001, "going away")),
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                // A logged-out or expired session ends its feed, and so does an anonymous
                // one once users are configured.
                match &authed.token {
                    Some(token) if web.sessions().touch(token, hb_ipc::now_ms()).is_none() => {
                        return Some((1008, "session ended"));
                    }
                    None if !web.users().is_empty() => return Some((1008, "log in")),
                    _ => {}
                }
                let ping = socket.send(Message::Ping(Default::default()));
                if !matches!(tokio::time::timeout(SEND_TIMEOUT, ping).await, Ok(Ok(()))) {
                    web.count("ws_dropped_slow");
                    return None;
                }
            }
        }
    }
}
