//! hb-web: the HTTP API (and, with its issue, the dashboard) on the listener the supervisor
//! bound. Chrooted, its own user; it holds the users' password hashes and the sessions, and
//! every answer about hosts comes from the engine.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use hb_child::link::{self, Link};
use hb_child::passwd::PasswordHash;
use hb_child::{self as child, Control, ControlEvent, ControlSender};
use hb_ipc::Role;
use hb_ipc::config::WebConfig;
use hb_ipc::control::PassedSocket;
use hb_ipc::control::ServerStats;
use hb_ipc::edge::{Answer, EngineToWeb, Query, WebToEngine};
use hb_ipc::request::Pending;
use hb_web::auth::{LoginLimiter, Sessions};
use tokio::sync::mpsc;

mod api;
mod channels;
mod checks;
mod live;
mod metrics;
mod pages;
mod ping_limits;
mod reply;
mod tls;
mod views;
mod ws;

use reply::ApiError;

const ENGINE_TIMEOUT: Duration = Duration::from_secs(5);
/// Request bodies at most (logins, commands, silences): anything larger is refused with 413
/// before it is read further.
const BODY_LIMIT: usize = 64 * 1024;
/// Password checks at once: each is 600,000 rounds of PBKDF2, so a flood of logins cannot
/// take more than this many cores.
const VERIFYING: usize = 2;
/// Password checks waiting at most.
const VERIFY_QUEUE: usize = 64;
/// How long serving waits at start for the users' own changes from the engine (a changed
/// password must not lose to the file's old one); past it, the file's users apply until
/// the engine answers.
const USERS_WAIT: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    child::run(Role::Web, run)
}

/// One user as hb-web holds them: the config's account with its hash parsed.
#[derive(Clone, Debug)]
pub struct Account {
    pub hash: Option<PasswordHash>,
    pub full_name: Option<String>,
    pub avatar: Option<String>,
    pub admin: bool,
    pub notification_channels: Vec<String>,
}

/// Everything the handlers share.
pub struct Web {
    engine: Link<WebToEngine>,
    pending: Pending<Answer>,
    /// To ask the supervisor for the server's figures (`/metrics`).
    control: ControlSender,
    stats_pending: Pending<ServerStats>,
    config: RwLock<Arc<WebConfig>>,
    accounts: RwLock<Arc<BTreeMap<String, Account>>>,
    /// Users' own changes, as the engine keeps them.
    chosen: RwLock<BTreeMap<String, serde_json::Value>>,
    sessions: Mutex<Sessions>,
    limiter: Mutex<LoginLimiter>,
    verifying: Arc<tokio::sync::Semaphore>,
    /// Pings per source address and per check.
    ping_limiter: ping_limits::Limiter,
    verify_waiting: std::sync::atomic::AtomicUsize,
    counters: Mutex<BTreeMap<&'static str, u64>>,
    /// The live feed.
    live: live::Live,
    /// Whether the users' own changes were read from the engine.
    users_loaded: std::sync::atomic::AtomicBool,
    /// Where HTTP listens, once started.
    bound: std::sync::OnceLock<std::net::SocketAddr>,
    /// The TLS configuration, when HTTPS is configured.
    tls: RwLock<Option<Arc<tokio_rustls::rustls::ServerConfig>>>,
    /// A hash to check unknown users' passwords against, so a wrong name costs as long as a
    /// wrong password and the timing does not tell which names exist.
    dummy: RwLock<PasswordHash>,
}

impl Web {
    fn new(control: ControlSender) -> Web {
        Web {
            engine: Link::new(Role::Engine),
            pending: Pending::new(),
            control,
            stats_pending: Pending::new(),
            config: RwLock::default(),
            accounts: RwLock::default(),
            chosen: RwLock::default(),
            sessions: Mutex::default(),
            limiter: Mutex::default(),
            verifying: Arc::new(tokio::sync::Semaphore::new(VERIFYING)),
            ping_limiter: ping_limits::Limiter::default(),
            verify_waiting: std::sync::atomic::AtomicUsize::new(0),
            counters: Mutex::default(),
            live: live::Live::default(),
            tls: RwLock::default(),
            bound: std::sync::OnceLock::new(),
            users_loaded: std::sync::atomic::AtomicBool::new(false),
            // Parsing costs nothing; checking against it costs what a real hash does.
            dummy: RwLock::new(dummy_hash(hb_child::passwd::ITERATIONS)),
        }
    }

    async fn ask(&self, query: Query) -> Result<Answer, ApiError> {
        let (id, rx) = self.pending.register();
        if !self.engine.send(WebToEngine::Request { id, query }) {
            self.pending.cancel(id);
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the engine's queue is full; try again",
            ));
        }
        self.pending
            .wait(id, rx, ENGINE_TIMEOUT)
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the engine did not answer: {e}"),
                )
            })
    }

    /// Every role's counters and restarts, from the supervisor.
    async fn stats(&self, wait: Duration) -> Option<ServerStats> {
        let (id, rx) = self.stats_pending.register();
        self.control.ask_stats(id);
        self.stats_pending.wait(id, rx, wait).await.ok()
    }

    fn config(&self) -> Arc<WebConfig> {
        self.config.read().map(|c| c.clone()).unwrap_or_default()
    }

    fn users(&self) -> Arc<BTreeMap<String, Account>> {
        self.accounts.read().map(|a| a.clone()).unwrap_or_default()
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ping_limiter(&self) -> &ping_limits::Limiter {
        &self.ping_limiter
    }

    fn limiter(&self) -> std::sync::MutexGuard<'_, LoginLimiter> {
        self.limiter.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count(&self, name: &'static str) {
        let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        *c.entry(name).or_default() += 1;
    }

    fn counters(&self) -> BTreeMap<String, u64> {
        let mut out: BTreeMap<String, u64> = self
            .counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        out.insert("sessions".into(), self.sessions().len() as u64);
        out.insert("ws_clients".into(), self.live.clients() as u64);
        out.insert("engine_link_dropped".into(), self.engine.dropped());
        out
    }

    /// Checks a password off the async threads, at most [`VERIFYING`] at once and
    /// [`VERIFY_QUEUE`] waiting (past it: 503). `None` (an unknown user, or one without a
    /// password) is checked against a dummy and fails.
    async fn verify(&self, hash: Option<PasswordHash>, password: String) -> Result<bool, ApiError> {
        use std::sync::atomic::Ordering;
        let busy = || {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many logins at once; try again",
            )
        };
        // Counted while waiting, uncounted however the wait ends (a client that hangs up
        // drops this future).
        struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let waiting = Waiting(&self.verify_waiting);
        if self.verify_waiting.fetch_add(1, Ordering::Relaxed) >= VERIFY_QUEUE {
            self.count("login_busy");
            return Err(busy());
        }
        let Ok(permit) = self.verifying.clone().acquire_owned().await else {
            return Err(busy());
        };
        drop(waiting);
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| {
            self.dummy
                .read()
                .map(|d| d.clone())
                .unwrap_or_else(|_| dummy_hash(hb_child::passwd::ITERATIONS))
        });
        // The permit goes with the work: it is held until PBKDF2 ends, even if the client
        // hangs up meanwhile.
        let matched = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            hash.verify(&password)
        })
        .await
        .unwrap_or(false);
        Ok(known && matched)
    }

    /// A new configuration: accounts with parsed hashes; sessions of users who are gone, or
    /// whose password or admin flag changed, end.
    /// Hashes a new password off the async threads, under the same limit as checks.
    async fn hash(&self, password: String) -> Option<PasswordHash> {
        let permit = self.verifying.clone().acquire_owned().await.ok()?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            PasswordHash::new(&password).ok()
        })
        .await
        .ok()
        .flatten()
    }

    /// A new configuration: the file's users with their own changes on top. Returns the
    /// changes the file overtook, for [`Web::clean`].
    fn configure(&self, config: WebConfig) -> Result<hb_web::users::Stale, String> {
        let tls = config.tls.as_ref().map(tls::server_config).transpose()?;
        if let Ok(mut t) = self.tls.write() {
            *t = tls;
        }
        if let Ok(mut c) = self.config.write() {
            *c = Arc::new(config);
        }
        Ok(self.rebuild())
    }

    /// The TLS configuration, if HTTPS is on.
    fn tls_config(&self) -> Option<Arc<tokio_rustls::rustls::ServerConfig>> {
        self.tls.read().ok().and_then(|t| t.clone())
    }

    /// Whether HTTP is served over TLS (cookies get `Secure`).
    pub fn tls(&self) -> bool {
        self.tls_config().is_some()
    }

    /// Replaces (or removes) users' changes the file overtook.
    async fn clean(&self, stale: hb_web::users::Stale) {
        for (name, replacement) in stale {
            tracing::info!(user = %name, "The file changed what this user had changed; the file wins.");
            if let Err(e) = self.put_user(&name, replacement).await {
                tracing::warn!(user = %name, "Could not clean up a user's change: {}", e.message());
            }
        }
    }

    /// Users' own changes as the engine keeps them (after a restart of either).
    async fn refresh_users(&self) {
        if self.config().users.is_empty() {
            self.users_loaded
                .store(true, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        // Until the engine answers, the file's users apply; it is asked again and again, so a
        // slow start does not leave a changed password forgotten.
        let mut pause = Duration::from_secs(1);
        loop {
            match self
                .ask(Query::Settings {
                    kind: "user".into(),
                })
                .await
            {
                Ok(Answer::Settings { values }) => {
                    if let Ok(mut c) = self.chosen.write() {
                        *c = values;
                    }
                    self.users_loaded
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    let stale = self.rebuild();
                    self.clean(stale).await;
                    return;
                }
                Ok(_) | Err(_) => {
                    tracing::warn!(
                        "Could not read the users' own changes from the engine; the file's users apply meanwhile."
                    );
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// Reads the whole host list for the live feed's cache (after a resync).
    async fn refresh_hosts(&self) {
        match self.ask(Query::ListHosts {}).await {
            Ok(Answer::Hosts { hosts }) => self.live.refreshed(hosts),
            _ => tracing::warn!(
                "Could not read the host list; host lists ask the engine until the next resync."
            ),
        }
    }

    /// Whether the users' own changes are known (changing them before would overwrite them).
    fn users_loaded(&self) -> bool {
        self.users_loaded.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stores a user's own change with the engine and applies it.
    async fn put_user(&self, name: &str, value: Option<serde_json::Value>) -> Result<(), ApiError> {
        match self
            .ask(Query::PutSetting {
                kind: "user".into(),
                name: name.to_string(),
                value: value.clone(),
            })
            .await?
        {
            Answer::Done { .. } => {}
            Answer::Error { message } => {
                return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message));
            }
            _ => {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unexpected answer",
                ));
            }
        }
        if let Ok(mut c) = self.chosen.write() {
            match value {
                Some(v) => c.insert(name.to_string(), v),
                None => c.remove(name),
            };
        }
        Ok(())
    }

    fn chosen(&self) -> BTreeMap<String, serde_json::Value> {
        self.chosen.read().map(|c| c.clone()).unwrap_or_default()
    }

    /// The accounts from the file and the users' own changes; sessions of users who are
    /// gone, or whose password or admin flag changed, end. Changes the file overtook are
    /// cleaned up in the engine.
    fn rebuild(&self) -> hb_web::users::Stale {
        let config = self.config();
        let (users, stale) = hb_web::users::merge(&config.users, &self.chosen());
        let accounts: BTreeMap<String, Account> = users
            .iter()
            .map(|(name, u)| {
                let hash = u
                    .password
                    .as_deref()
                    .and_then(|p| match PasswordHash::parse(p) {
                        Ok(h) => Some(h),
                        Err(e) => {
                            // The supervisor checked the file's; a user without a usable hash
                            // cannot log in.
                            tracing::error!(user = %name, "Bad password hash: {e}");
                            None
                        }
                    });
                (
                    name.clone(),
                    Account {
                        hash,
                        full_name: u.full_name.clone(),
                        avatar: u.avatar.clone(),
                        admin: u.admin,
                        notification_channels: u.notification_channels.clone(),
                    },
                )
            })
            .collect();
        let old = self.users();
        self.sessions()
            .retain_users(|user| match (old.get(user), accounts.get(user)) {
                (Some(a), Some(b)) => a.hash == b.hash && a.admin == b.admin,
                _ => false,
            });
        // Unknown names cost what the users' hashes cost, so timing tells no names.
        let rounds = users
            .values()
            .filter_map(|u| {
                u.password
                    .as_deref()?
                    .strip_prefix("pbkdf2:sha256:")?
                    .split('$')
                    .next()?
                    .parse()
                    .ok()
            })
            .next();
        if let (Some(rounds), Ok(mut d)) = (rounds, self.dummy.write()) {
            *d = dummy_hash(rounds);
        }
        if let Ok(mut a) = self.accounts.write() {
            *a = Arc::new(accounts);
        }
        stale
    }
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
        let stale = self
            .web
            .configure(config)
            .map_err(|e| format!("TLS: {e}"))?;
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

    fn socket(
        &mut self,
        socket: PassedSocket,
        fd: OwnedFd,
        control: &ControlSender,
    ) -> anyhow::Result<Option<PassedSocket>> {
        match socket {
            PassedSocket::TcpListener => self.tcp = Some(fd),
            PassedSocket::WsListener => self.ws_port = Some(fd),
            PassedSocket::Peer { role: Role::Engine } => {
                link::connect(fd, &self.web.engine, self.answers.clone(), control.clone())?;
            }
            other => return Ok(Some(other)),
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
            .merge(api::router())
            .merge(checks::router())
            .merge(pages::router())
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

/// A hash no password matches, costing `iterations` rounds to check. Parsing costs nothing.
fn dummy_hash(iterations: u32) -> PasswordHash {
    PasswordHash::parse(&format!(
        "pbkdf2:sha256:{iterations}$hb-web-dummy${}",
        "0".repeat(64)
    ))
    .unwrap_or_else(|_| PasswordHash::with_salt("", "hb-web-dummy", 1000))
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
