//! What every handler shares (`Web`): the link to the engine and how to ask it, the
//! configuration and the users with their sessions, password checks, counters, and the
//! live feed's host list.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::http::StatusCode;
use hb_child::ControlSender;
use hb_child::link::Link;
use hb_child::passwd::PasswordHash;
use hb_ipc::Role;
use hb_ipc::config::WebConfig;
use hb_ipc::control::ServerStats;
use hb_ipc::edge::{Answer, Query, WebToEngine};
use hb_ipc::request::Pending;
use hb_web::auth::{LoginLimiter, Sessions};

use crate::live::Live;
use crate::ping_limits;
use crate::reply::{ApiError, unexpected};

/// What [`Web::ask_for`] keeps of the engine's answer: the variant matching `$pattern`,
/// as `$taken`; any other answer is given back.
macro_rules! answer {
    ($pattern:pat => $taken:expr) => {
        |answer| match answer {
            $pattern => Ok($taken),
            other => Err(other),
        }
    };
}
pub(crate) use answer;

/// How long the engine has to answer a question.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(5);
/// Password checks at once: each is 600,000 rounds of PBKDF2, so a flood of logins cannot
/// take more than this many cores.
const VERIFYING: usize = 2;
/// Password checks waiting at most.
const VERIFY_QUEUE: usize = 64;

/// One user as hb-web holds them: the config's account with its hash parsed.
#[derive(Clone, Debug)]
pub struct Account {
    pub hash: Option<PasswordHash>,
    pub full_name: Option<String>,
    pub avatar: Option<String>,
    pub admin: bool,
    pub notification_channels: Vec<String>,
}

/// How handlers take the [`Web`] they share.
pub type WebState = axum::extract::State<Arc<Web>>;

/// Everything the handlers share.
pub struct Web {
    pub engine: Link<WebToEngine>,
    pub pending: Pending<Answer>,
    /// To ask the supervisor for the server's figures (`/metrics`).
    control: ControlSender,
    pub stats_pending: Pending<ServerStats>,
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
    pub live: Live,
    /// Whether the users' own changes were read from the engine.
    users_loaded: std::sync::atomic::AtomicBool,
    /// Where HTTP listens, once started.
    pub bound: std::sync::OnceLock<std::net::SocketAddr>,
    /// The TLS configuration, when HTTPS is configured.
    tls: RwLock<Option<Arc<tokio_rustls::rustls::ServerConfig>>>,
    /// A hash to check unknown users' passwords against, so a wrong name costs as long as a
    /// wrong password and the timing does not tell which names exist.
    dummy: RwLock<PasswordHash>,
}

impl Web {
    pub fn new(control: ControlSender) -> Web {
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
            live: Live::default(),
            tls: RwLock::default(),
            bound: std::sync::OnceLock::new(),
            users_loaded: std::sync::atomic::AtomicBool::new(false),
            // Parsing costs nothing; checking against it costs what a real hash does.
            dummy: RwLock::new(dummy_hash(hb_child::passwd::ITERATIONS)),
        }
    }

    /// The engine's answer to `query`; 503 if its queue is full or it does not answer in
    /// time.
    pub async fn ask(&self, query: Query) -> Result<Answer, ApiError> {
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

    /// Asks the engine and keeps what `wanted` (made by [`answer!`]) takes from its answer;
    /// a refusal is a 500 with the engine's reason, and so is an answer of another kind.
    pub async fn ask_for<T>(
        &self,
        query: Query,
        wanted: impl FnOnce(Answer) -> Result<T, Answer>,
    ) -> Result<T, ApiError> {
        wanted(self.ask(query).await?).map_err(unexpected)
    }

    /// Asks the engine to do something: its word on it once done, or its refusal made the
    /// client's error by `refusal`.
    pub async fn ask_done(
        &self,
        query: Query,
        refusal: impl FnOnce(String) -> ApiError,
    ) -> Result<String, ApiError> {
        self.ask_for_or(query, refusal, answer!(Answer::Done { message } => message))
            .await
    }

    /// [`Web::ask_for`], with the engine's refusal (`Answer::Error`) made the client's error
    /// by `refusal`.
    pub async fn ask_for_or<T>(
        &self,
        query: Query,
        refusal: impl FnOnce(String) -> ApiError,
        wanted: impl FnOnce(Answer) -> Result<T, Answer>,
    ) -> Result<T, ApiError> {
        match wanted(self.ask(query).await?) {
            Ok(taken) => Ok(taken),
            Err(Answer::Error { message }) => Err(refusal(message)),
            Err(other) => Err(unexpected(other)),
        }
    }

    /// Every role's counters and restarts, from the supervisor.
    pub async fn stats(&self, wait: Duration) -> Option<ServerStats> {
        let (id, rx) = self.stats_pending.register();
        self.control.ask_stats(id);
        self.stats_pending.wait(id, rx, wait).await.ok()
    }

    pub fn config(&self) -> Arc<WebConfig> {
        self.config.read().map(|c| c.clone()).unwrap_or_default()
    }

    pub fn users(&self) -> Arc<BTreeMap<String, Account>> {
        self.accounts.read().map(|a| a.clone()).unwrap_or_default()
    }

    pub fn sessions(&self) -> std::sync::MutexGuard<'_, Sessions> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn ping_limiter(&self) -> &ping_limits::Limiter {
        &self.ping_limiter
    }

    pub fn limiter(&self) -> std::sync::MutexGuard<'_, LoginLimiter> {
        self.limiter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn count(&self, name: &'static str) {
        let mut c = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *c.entry(name).or_default() += 1;
    }

    pub fn counters(&self) -> BTreeMap<String, u64> {
        let mut out: BTreeMap<String, u64> = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
    pub async fn verify(
        &self,
        hash: Option<PasswordHash>,
        password: String,
    ) -> Result<bool, ApiError> {
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
                .map_or_else(|_| dummy_hash(hb_child::passwd::ITERATIONS), |d| d.clone())
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

    /// Hashes a new password off the async threads, under the same limit as checks.
    pub async fn hash(&self, password: String) -> Option<PasswordHash> {
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
    pub fn configure(
        &self,
        config: WebConfig,
        tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    ) -> hb_web::users::Stale {
        if let Ok(mut t) = self.tls.write() {
            *t = tls;
        }
        if let Ok(mut c) = self.config.write() {
            *c = Arc::new(config);
        }
        self.rebuild()
    }

    /// The TLS configuration, if HTTPS is on.
    pub fn tls_config(&self) -> Option<Arc<tokio_rustls::rustls::ServerConfig>> {
        self.tls.read().ok().and_then(|t| t.clone())
    }

    /// Whether HTTP is served over TLS (cookies get `Secure`).
    pub fn tls(&self) -> bool {
        self.tls_config().is_some()
    }

    /// Replaces (or removes) users' changes the file overtook.
    pub async fn clean(&self, stale: hb_web::users::Stale) {
        for (name, replacement) in stale {
            tracing::info!(user = %name, "The file changed what this user had changed; the file wins.");
            if let Err(e) = self.put_user(&name, replacement).await {
                tracing::warn!(user = %name, "Could not clean up a user's change: {}", e.message());
            }
        }
    }

    /// Users' own changes as the engine keeps them (after a restart of either).
    pub async fn refresh_users(&self) {
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
    pub async fn refresh_hosts(&self) {
        match self.ask(Query::ListHosts {}).await {
            Ok(Answer::Hosts { hosts }) => self.live.refreshed(hosts),
            _ => tracing::warn!(
                "Could not read the host list; host lists ask the engine until the next resync."
            ),
        }
    }

    /// Whether the users' own changes are known (changing them before would overwrite them).
    pub fn users_loaded(&self) -> bool {
        self.users_loaded.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stores a user's own change with the engine and applies it.
    pub async fn put_user(
        &self,
        name: &str,
        value: Option<serde_json::Value>,
    ) -> Result<(), ApiError> {
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

    pub fn chosen(&self) -> BTreeMap<String, serde_json::Value> {
        self.chosen.read().map(|c| c.clone()).unwrap_or_default()
    }

    /// The accounts from the file and the users' own changes; sessions of users who are
    /// gone, or whose password or admin flag changed, end. Changes the file overtook are
    /// cleaned up in the engine.
    pub fn rebuild(&self) -> hb_web::users::Stale {
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
        let rounds = users.values().find_map(|u| {
            u.password
                .as_deref()?
                .strip_prefix("pbkdf2:sha256:")?
                .split('$')
                .next()?
                .parse()
                .ok()
        });
        if let (Some(rounds), Ok(mut d)) = (rounds, self.dummy.write()) {
            *d = dummy_hash(rounds);
        }
        if let Ok(mut a) = self.accounts.write() {
            *a = Arc::new(accounts);
        }
        stale
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
