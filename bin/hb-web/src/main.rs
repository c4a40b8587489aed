//! hb-web: the HTTP API (and, with its issue, the dashboard) on the listener the supervisor
//! bound. Chrooted, its own user; it holds the users' password hashes and the sessions, and
//! every answer about hosts comes from the engine.

#![forbid(unsafe_code)]

use std::os::fd::OwnedFd;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use hb_child::{self as child, Control, ControlEvent, ControlSender, Passed, Taken};
use hb_ipc::Role;
use hb_ipc::config::WebConfig;
use hb_ipc::control::PassedSocket;
use hb_ipc::control::ServerStats;
use hb_ipc::edge::{Answer, EngineToWeb, Query};
use tokio::sync::mpsc;

// Layers, each using only those above it: the replies, the JSON shapes, the fan-out and the
// ping limits; the shared state (web); who asks (authed), what they see (visibility), the
// channels known (channel_list), the listener (tls); then one module per resource, none
// using another. A test (tests/layers.rs) holds them to it.
mod authed;
mod channel_list;
mod live;
mod ping_limits;
mod reply;
mod tls;
mod views;
mod visibility;
mod web;

mod accounts;
mod alerts;
mod channels;
mod checks;
mod commands;
mod events;
mod host_access;
mod hosts;
mod metrics;
mod pages;
mod server;
mod silences;
mod ws;

use reply::ApiError;
use web::Web;

/// Request bodies at most (logins, commands, silences): anything larger is refused with 413
/// before it is read further.
const BODY_LIMIT: usize = 64 * 1024;
/// How long serving waits at start for the users' own changes from the engine (a changed
/// password must not lose to the file's old one); past it, the file's users apply until
/// the engine answers.
const USERS_WAIT: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    child::run(Role::Web, run)
}

async fn run(
    mut events: mpsc::UnboundedReceiver<ControlEvent>,
    control: ControlSender,
) -> anyhow::Result<()> {
    let web = Arc::new(Web::new(control.clone()));
    let (answers_tx, mut answers) = mpsc::channel::<EngineToWeb>(256);
    let feed = web.clone();
    tokio::spawn(async move {
        let pending = &feed.pending;
        let answer = |re, answer| {
            if !pending.complete(re, answer) {
                tracing::debug!(re, "Late answer from the engine dropped.");
            }
        };
        while let Some(msg) = answers.recv().await {
            let mut batch = match msg {
                EngineToWeb::Answer { re, answer: a } => {
                    answer(re, a);
                    continue;
                }
                EngineToWeb::Changes { changes } => changes,
            };
            // What is already queued goes out with it, as one batch.
            while batch.len() < live::BATCH_MAX {
                match answers.try_recv() {
                    Ok(EngineToWeb::Changes { changes }) => batch.extend(changes),
                    Ok(EngineToWeb::Answer { re, answer: a }) => answer(re, a),
                    Err(_) => break,
                }
            }
            // A (re)connected engine, or changes left out: the users' own changes may be
            // news, and the host list must be read whole again.
            if batch
                .iter()
                .any(|c| matches!(c, hb_ipc::edge::Change::Resync {}))
            {
                feed.live.begin_refresh();
                let web = feed.clone();
                tokio::spawn(async move {
                    web.refresh_hosts().await;
                    web.refresh_users().await;
                });
            }
            feed.live.publish(batch);
        }
    });
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut role = WebRole {
        web,
        answers: answers_tx,
        tcp: None,
        ws_port: None,
        stop,
        bound: None,
    };
    while let Some(event) = events.recv().await {
        child::dispatch(&mut role, event, &control).await?;
    }
    let _ = stop_tx.send(true);
    Ok(())
}

/// The web as the supervisor sees it: its listeners until the start, and where it listens.
struct WebRole {
    web: Arc<Web>,
    answers: mpsc::Sender<EngineToWeb>,
    tcp: Option<OwnedFd>,
    ws_port: Option<OwnedFd>,
    stop: tokio::sync::watch::Receiver<bool>,
    bound: Option<std::net::SocketAddr>,
}

impl Control for WebRole {
    const ROLE: Role = Role::Web;
    const REFUSED_QUERY: &'static str = "the web answers no queries but counters";
    type Slice = WebConfig;

    fn configure(&mut self, config: WebConfig) -> Result<(), String> {
        let open = config.users.is_empty();
        let tls = config
            .tls
            .as_ref()
            .map(tls::server_config)
            .transpose()
            .map_err(|e| format!("TLS: {e}"))?;
        let stale = self.web.configure(config, tls);
        if !stale.is_empty() {
            let web = self.web.clone();
            tokio::spawn(async move { web.clean(stale).await });
        }
        // Before the start it is said once the listener is known.
        if open && self.bound.is_some() {
            unauthenticated_warning(self.bound);
        }
        Ok(())
    }

    fn socket(&mut self, passed: Passed, control: &ControlSender) -> Taken {
        match passed.socket {
            PassedSocket::TcpListener => self.tcp = Some(passed.fd),
            PassedSocket::WsListener => self.ws_port = Some(passed.fd),
            _ => return passed.link(Role::Engine, &self.web.engine, &self.answers, control),
        }
        Ok(None)
    }

    async fn start(&mut self) -> anyhow::Result<()> {
        let web = &self.web;
        let first = {
            let web = web.clone();
            tokio::spawn(async move { web.refresh_users().await })
        };
        if tokio::time::timeout(USERS_WAIT, first).await.is_err() {
            tracing::warn!(
                "The engine did not tell the users' own changes in time; the file's users apply until it does."
            );
        }
        let Some(fd) = self.tcp.take() else {
            anyhow::bail!("started without a TCP listener");
        };
        let listener = std::net::TcpListener::from(fd);
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        self.bound = listener.local_addr().ok();
        if let Some(addr) = self.bound {
            let _ = web.bound.set(addr);
        }
        tracing::info!(addr = ?self.bound, tls = web.tls(), "Serving HTTP.");
        let listener = tls::HbListener::new(listener, web.clone())?;
        if web.users().is_empty() {
            unauthenticated_warning(self.bound);
        }
        let app = Router::new()
            .merge(routes())
            .fallback(reply::not_found)
            .method_not_allowed_fallback(reply::method_not_allowed)
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .layer(axum::middleware::from_fn_with_state(
                web.clone(),
                request_guard,
            ))
            .layer(axum::middleware::from_fn(security_headers))
            .with_state(web.clone());
        serve(listener, app.clone(), self.stop.clone());
        // ws_port: the same, for clients of the original's WebSocket port.
        if let Some(fd) = self.ws_port.take() {
            let second = std::net::TcpListener::from(fd);
            second.set_nonblocking(true)?;
            let second = tokio::net::TcpListener::from_std(second)?;
            tracing::info!(addr = ?second.local_addr().ok(), "Serving HTTP on ws_port too.");
            serve(
                tls::HbListener::new(second, web.clone())?,
                app,
                self.stop.clone(),
            );
        }
        Ok(())
    }

    fn stats(&mut self, re: u64, stats: ServerStats) {
        if !self.web.stats_pending.complete(re, stats) {
            tracing::debug!(re, "Late figures from the supervisor dropped.");
        }
    }

    fn request(&mut self, id: u64, query: Query, control: &ControlSender) -> bool {
        let Query::Counters {} = query else {
            return false;
        };
        let counters = self.web.counters();
        control.answer(id, Answer::Counters { counters });
        true
    }
}

/// Every route, each resource's own: the REST API under `/api/0`, then the live feed,
/// `/metrics`, the checks' pings and API, and the pages.
fn routes() -> Router<Arc<Web>> {
    let api = Router::new()
        .merge(server::routes())
        .merge(accounts::routes())
        .merge(hosts::routes())
        .merge(host_access::routes())
        .merge(commands::routes())
        .merge(events::routes())
        .merge(alerts::routes())
        .merge(silences::routes())
        .merge(channels::routes());
    api.merge(ws::routes())
        .merge(metrics::routes())
        .merge(checks::routes())
        .merge(pages::routes())
}

/// Refuses what a page of another site could make a browser send: a write or a WebSocket
/// upgrade whose `Origin` is not this server (cookies or not, and in unauthenticated mode too), and, without users
/// on a loopback listener, any request whose `Host` is not a loopback name (DNS rebinding:
/// a site whose name resolves to 127.0.0.1 is "same origin" to the browser).
async fn request_guard(
    axum::extract::State(web): axum::extract::State<Arc<Web>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{Method, header};
    use axum::response::IntoResponse;
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let safe = matches!(
        request.method(),
        &Method::GET | &Method::HEAD | &Method::OPTIONS
    );
    // Writes, and the live feed's upgrade (a page of another site must not open it with the
    // user's cookie). Pings carry no cookie: their UUID is their credential.
    let path = request.uri().path();
    let ping = path.starts_with("/ping/") || path.starts_with("/heartbeat/");
    let guarded = (!safe || headers.contains_key(header::UPGRADE)) && !ping;
    if guarded
        && let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
        && origin.split_once("://").map_or(origin, |(_, rest)| rest) != host
    {
        web.count("cross_site_refused");
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "a write from another site's page is refused",
        )
        .into_response();
    }
    let loopback = web.bound.get().is_some_and(|a| a.ip().is_loopback());
    if loopback && web.users().is_empty() && !hb_web::access::loopback_host(host) {
        web.count("host_refused");
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "without users this server answers only to loopback names (localhost, 127.0.0.1, [::1])",
        )
        .into_response();
    }
    next.run(request).await
}

/// Every answer: no script or style but our own files, no framing, no sniffing, and no
/// caching of anything but the static files.
async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// How long a client has to send a request's headers once it starts one.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `stop` turns true: HTTP/1.1 with upgrades (WebSocket),
/// each connection in its own task, headers due within [`HEADER_TIMEOUT`] (a client that
/// trickles them is cut off), the client's address given to handlers as `ConnectInfo<Peer>`.
fn serve(mut listener: tls::HbListener, app: Router, mut stop: tokio::sync::watch::Receiver<bool>) {
    use axum::serve::Listener;
    tokio::spawn(async move {
        loop {
            let (io, peer) = tokio::select! {
                c = listener.accept() => c,
                _ = stop.wait_for(|s| *s) => return,
            };
            let app = app.clone();
            let service = hyper::service::service_fn(
                move |request: hyper::Request<hyper::body::Incoming>| {
                    let mut request = request.map(axum::body::Body::new);
                    request
                        .extensions_mut()
                        .insert(axum::extract::ConnectInfo(tls::Peer(peer)));
                    let mut app = app.clone();
                    tower_service::Service::call(&mut app, request)
                },
            );
            let mut stop = stop.clone();
            tokio::spawn(async move {
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(hyper_util::rt::TokioIo::new(io), service)
                    .with_upgrades();
                tokio::pin!(connection);
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(%peer, error = %e, "Connection ended.");
                        }
                    }
                    _ = async { stop.wait_for(|s| *s).await.is_ok() } => {
                        connection.as_mut().graceful_shutdown();
                        let _ = connection.as_mut().await;
                    }
                }
            });
        }
    });
}

/// Without users everything is open: said at start-up, and loudly when the listener is not
/// on loopback.
fn unauthenticated_warning(bound: Option<std::net::SocketAddr>) {
    match bound {
        Some(addr) if !addr.ip().is_loopback() => tracing::warn!(
            %addr,
            "NO USERS ARE CONFIGURED and HTTP listens beyond loopback: anyone who can reach {addr} can see every host and act on it. Add users (docs/CONFIG.md) or bind hbd_host to 127.0.0.1."
        ),
        _ => tracing::info!(
            "No users configured: unauthenticated mode, every page and endpoint is open."
        ),
    }
}
