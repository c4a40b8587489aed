//! The REST API under `/api/0` (docs/API.md). Every answer is JSON; every error is
//! `{"error": "..."}` with the status that says what went wrong. Host data comes from the
//! engine; who may see and do what is decided here (`access.rs`) from the roles the engine
//! reports with each host.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use hb_ipc::edge::{Answer, HostSummary, Query as EngineQuery};
use hb_web::access::{HostRole, Viewer};
use hb_web::auth;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::authed::Authed;
use crate::reply::{ApiError, ApiResult, Limit, body, checked_limit, limit, ok, refused, status};
use crate::views::{alert_json, event_json, host_json, hosts_json, seconds};
use crate::visibility::{HostSeen, host_name};
use crate::web::{Web, answer};

pub fn router() -> Router<Arc<Web>> {
    Router::new()
        .route("/api/0/openapi.json", get(openapi))
        .route("/api/0/auth/login", post(login))
        .route("/api/0/auth/logout", post(logout))
        .route("/api/0/hosts", get(hosts))
        .route("/api/0/hosts/{host}", get(host).delete(drop_host))
        .route("/api/0/hosts/{host}/plugins", get(plugins))
        .route("/api/0/hosts/{host}/plugins/{plugin}", get(samples))
        .route("/api/0/hosts/{host}/rtt", get(rtt))
        .route("/api/0/hosts/{host}/events", get(host_events))
        .route("/api/0/hosts/{host}/alerts", get(host_alerts))
        .route("/api/0/hosts/{host}/access", get(access).put(set_access))
        .route("/api/0/hosts/{host}/commands", post(queue_command))
        .route("/api/0/hosts/{host}/upgrade", post(queue_upgrade))
        .route("/api/0/hosts/{host}/dns", post(dns))
        .route("/api/0/messages", get(messages))
        .route("/api/0/events", get(events))
        .route("/api/0/alerts", get(alerts))
        .route("/api/0/alerts/{key}/acknowledge", post(acknowledge))
        .route("/api/0/silences", get(silences).post(silence))
        .route("/api/0/silences/{id}", delete(unsilence))
        .route("/api/0/users", get(users))
        .route("/api/0/users/me", get(me).put(change_me))
        .route(
            "/api/0/notification_channel_types",
            get(crate::channels::types),
        )
        .route(
            "/api/0/notification_channels",
            get(crate::channels::list).post(crate::channels::create),
        )
        .route(
            "/api/0/notification_channels/{name}",
            axum::routing::put(crate::channels::change).delete(crate::channels::remove),
        )
        .route("/api/0/config", get(server_config))
        .route("/api/0/status", get(server_status))
        .route("/api/0/thresholds", get(thresholds))
        .route("/ws", get(crate::ws::upgrade))
        .route("/metrics", get(crate::metrics::metrics))
}

/// The OpenAPI document of this API (no secret in it, so open to all).
async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../openapi.json"),
    )
        .into_response()
}

// --- Authentication ------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    username: String,
    password: String,
}

async fn login(
    State(web): State<Arc<Web>>,
    ConnectInfo(crate::tls::Peer(peer)): ConnectInfo<crate::tls::Peer>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let users = web.users();
    if users.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no users are configured: the server runs in unauthenticated mode",
        ));
    }
    let Login { username, password } = body(&headers, &bytes?)?;
    let now = hb_ipc::now_ms();
    let address = peer.ip().to_canonical();
    if let Err(wait_ms) = web.limiter().take(address, &username, now) {
        web.count("login_limited");
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed logins; wait and try again",
        );
        e.retry_after_s = Some(wait_ms.div_ceil(1000));
        return Err(e);
    }
    let account = users.get(&username).cloned();
    let matched = web
        .verify(account.as_ref().and_then(|a| a.hash.clone()), password)
        .await?;
    let Some(account) = account.filter(|_| matched) else {
        web.count("login_failed");
        tracing::warn!(
            user = ?username.chars().take(64).collect::<String>(),
            from = %address,
            "Failed login."
        );
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong user name or password",
        ));
    };
    web.limiter().refund(address, &username, now);
    let (token, csrf) = web
        .sessions()
        .start(&username, now)
        .map_err(|e| ApiError::engine(format!("no randomness for a session: {e}")))?;
    web.count("logins");
    tracing::info!(user = %username, from = %address, "Logged in.");
    let mut response = axum::Json(json!({
        "token": token,
        "csrf_token": csrf,
        "expires_in": auth::SESSION_IDLE_MS / 1000,
        "user": user_json(&username, &account),
    }))
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&auth::set_cookie(&token, web.tls())) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

async fn logout(State(web): State<Arc<Web>>, authed: Authed) -> ApiResult {
    if let Some(token) = &authed.token {
        web.sessions().end(token);
    }
    let mut response = axum::Json(json!({"ok": true})).into_response();
    if let Ok(v) = HeaderValue::from_str(&auth::clear_cookie(web.tls())) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

// --- Hosts ---------------------------------------------------------------------------------

async fn hosts(State(web): State<Arc<Web>>, authed: Authed) -> ApiResult {
    let hosts = web.host_list().await?;
    let body = hosts_json(hosts.iter(), &authed.viewer);
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn host(
    State(web): State<Arc<Web>>,
    authed: Authed,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let (
        _,
        HostSeen {
            summary,
            plugins,
            alerts,
        },
    ) = web
        .host_in_path(&authed.viewer, path, HostRole::Monitor)
        .await?;
    let mut value = host_json(&summary, authed.viewer.role(&summary));
    value["plugins"] = json!(plugins.keys().collect::<Vec<_>>());
    value["alerts"] = alerts.iter().map(alert_json).collect();
    value["managers"] = json!(summary.managers);
    value["monitors"] = json!(summary.monitors);
    ok(value)
}

async fn plugins(
    State(web): State<Arc<Web>>,
    authed: Authed,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let (name, host) = web
        .host_in_path(&authed.viewer, path, HostRole::Monitor)
        .await?;
    let sample_count = web.config().sample_count;
    let plugins: BTreeMap<String, Value> = host
        .plugins
        .into_iter()
        .map(|(plugin, p)| {
            (
                plugin,
                json!({"timestamp": seconds(p.time_ms), "data": p.data, "sample_count": sample_count}),
            )
        })
        .collect();
    ok(json!({"hostname": name, "plugins": plugins}))
}

async fn samples(
    State(web): State<Arc<Web>>,
    authed: Authed,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<Limit>, QueryRejection>,
) -> ApiResult {
    let Path((raw, plugin)) = path?;
    let name = host_name(Ok(Path(raw)))?;
    let limit = limit(query, 10, 100_000)?;
    let host = web
        .host_for(&authed.viewer, &name, HostRole::Monitor)
        .await?;
    if !host.plugins.contains_key(&plugin) {
        return Err(ApiError::not_found(format!(
            "{name} has no plugin {plugin:?}"
        )));
    }
    let query = EngineQuery::Samples {
        host: name.clone(),
        plugin: plugin.clone(),
        limit,
    };
    let samples = web
        .ask_for(query, answer!(Answer::Samples { samples } => samples))
        .await?;
    ok(json!({
        "hostname": name,
        "plugin": plugin,
        "samples": samples
            .iter()
            .map(|s| json!({"timestamp": seconds(s.time_ms), "data": s.data}))
            .collect::<Vec<_>>(),
    }))
}

async fn rtt(
    State(web): State<Arc<Web>>,
    authed: Authed,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Limit>, QueryRejection>,
) -> ApiResult {
    let name = host_name(path)?;
    let limit = limit(query, 100, 100_000)?;
    web.host_for(&authed.viewer, &name, HostRole::Monitor)
        .await?;
    let query = EngineQuery::Rtt {
        host: name.clone(),
        limit,
    };
    let samples = web
        .ask_for(query, answer!(Answer::Rtt { samples } => samples))
        .await?;
    ok(json!({
        "hostname": name,
        "samples": samples
            .iter()
            .map(|s| json!({"timestamp": seconds(s.time_ms), "rtt": s.rtt_ms}))
            .collect::<Vec<_>>(),
    }))
}

async fn host_events(
    State(web): State<Arc<Web>>,
    authed: Authed,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Limit>, QueryRejection>,
) -> ApiResult {
    let name = host_name(path)?;
    let limit = limit(query, 100, 1000)?;
    web.host_for(&authed.viewer, &name, HostRole::Monitor)
        .await?;
    let query = EngineQuery::Events {
        host: Some(name),
        limit,
    };
    let messages = web
        .ask_for(query, answer!(Answer::Messages { messages } => messages))
        .await?;
    ok(messages.iter().map(event_json).collect())
}

async fn host_alerts(
    State(web): State<Arc<Web>>,
    authed: Authed,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let (_, host) = web
        .host_in_path(&authed.viewer, path, HostRole::Monitor)
        .await?;
    ok(host.alerts.iter().map(alert_json).collect())
}

async fn access(
    State(web): State<Arc<Web>>,
    authed: Authed,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let (name, host) = web
        .host_in_path(&authed.viewer, path, HostRole::Monitor)
        .await?;
    ok(access_json(&name, &host.summary, &authed.viewer))
}

/// A host's roles, and the caller's.
fn access_json(name: &str, h: &HostSummary, viewer: &Viewer) -> Value {
    json!({
        "hostname": name,
        "owner": h.owner,
        "managers": h.managers,
        "monitors": h.monitors,
        "role": viewer.role(h).map(HostRole::name),
    })
}

/// A change of roles: each field given replaces the current one (`owner: null` gives the
/// host to the default owner).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessChange {
    #[serde(default, deserialize_with = "hb_ipc::edge::given")]
    owner: Option<Option<String>>,
    managers: Option<Vec<String>>,
    monitors: Option<Vec<String>>,
}

/// Users holding a role on a host at most.
const MAX_ROLE_HOLDERS: usize = 100;

/// Changing roles: the owner (or an admin) changes the owner and managers; a manager the
/// monitors. Every name must be a user.
async fn set_access(
    State(web): State<Arc<Web>>,
    authed: Authed,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let name = host_name(path)?;
    let change: AccessChange = body(&headers, &bytes?)?;
    let needs = if change.owner.is_some() || change.managers.is_some() {
        HostRole::Owner
    } else {
        HostRole::Manager
    };
    web.host_for(&authed.viewer, &name, needs).await?;
    let users = web.users();
    if users.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no users are configured: there are no roles to give",
        ));
    }
    let check = |list: &[String]| -> Result<Vec<String>, ApiError> {
        let mut out: Vec<String> = Vec::new();
        for u in list {
            if !users.contains_key(u) {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("no user {u:?}"),
                ));
            }
            if !out.contains(u) {
                out.push(u.clone());
            }
        }
        if out.len() > MAX_ROLE_HOLDERS {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("at most {MAX_ROLE_HOLDERS} users per role"),
            ));
        }
        Ok(out)
    };
    // What is not given stays as the engine has it.
    let owner = match change.owner {
        Some(Some(o)) => Some(Some(check(std::slice::from_ref(&o))?.remove(0))),
        Some(None) => Some(None),
        None => None,
    };
    let managers = change.managers.as_deref().map(check).transpose()?;
    let monitors = change.monitors.as_deref().map(check).transpose()?;
    let query = EngineQuery::SetAccess {
        host: name.clone(),
        owner,
        managers,
        monitors,
    };
    let refusal = refused(StatusCode::UNPROCESSABLE_ENTITY);
    let message = web
        .ask_for_or(query, refusal, answer!(Answer::Done { message } => message))
        .await?;
    tracing::info!(user = authed.viewer.name(), host = name, "{message}");
    let host = web
        .host_for(&authed.viewer, &name, HostRole::Monitor)
        .await?;
    ok(access_json(&name, &host.summary, &authed.viewer))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandBody {
    command: String,
}

async fn queue_command(
    State(web): State<Arc<Web>>,
    authed: Authed,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let name = host_name(path)?;
    let CommandBody { command } = body(&headers, &bytes?)?;
    if let Err(e) = hb_proto::datagram::check_command_name(&command) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.to_string(),
        ));
    }
    web.host_for(&authed.viewer, &name, HostRole::Manager)
        .await?;
    queued(&web, &authed, name, Some(command)).await
}

async fn queue_upgrade(
    State(web): State<Arc<Web>>,
    authed: Authed,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let (name, _) = web
        .host_in_path(&authed.viewer, path, HostRole::Manager)
        .await?;
    queued(&web, &authed, name, None).await
}

async fn queued(web: &Web, authed: &Authed, host: String, command: Option<String>) -> ApiResult {
    let query = EngineQuery::QueueCommand {
        host: host.clone(),
        command: command.clone(),
    };
    let id = web
        .ask_for_or(
            query,
            refused(StatusCode::CONFLICT),
            answer!(Answer::Queued { id } => id),
        )
        .await?;
    tracing::info!(user = authed.viewer.name(), host, ?command, id, "Queued.");
    status(
        StatusCode::ACCEPTED,
        json!({"id": id, "host": host, "command": command}),
    )
}

async fn dns(
    State(web): State<Arc<Web>>,
    authed: Authed,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let (name, _) = web
        .host_in_path(&authed.viewer, path, HostRole::Manager)
        .await?;
    let message = web
        .ask_for_or(
            EngineQuery::Dns { host: name.clone() },
            refused(StatusCode::CONFLICT),
            answer!(Answer::Done { message } => message),
        )
        .await?;
    tracing::info!(
        user = authed.viewer.name(),
        host = name,
        "DNS update asked for."
    );
    status(StatusCode::ACCEPTED, json!({"message": message}))
}

async fn drop_host(
    State(web): State<Arc<Web>>,
    authed: Authed,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let (name, _) = web
        .host_in_path(&authed.viewer, path, HostRole::Owner)
        .await?;
    let host = web
        .ask_for_or(
            EngineQuery::DropHost { host: name },
            refused(StatusCode::CONFLICT),
            answer!(Answer::Dropped { host } => host),
        )
        .await?;
    tracing::info!(user = authed.viewer.name(), host, "Host dropped.");
    ok(json!({"dropped": host}))
}

// --- Events and alerts ---------------------------------------------------------------------

async fn messages(State(web): State<Arc<Web>>, authed: Authed) -> ApiResult {
    let visible = web.visible_names(&authed.viewer).await?;
    let messages = web
        .ask_for(
            EngineQuery::Messages {},
            answer!(Answer::Messages { messages } => messages),
        )
        .await?;
    ok(messages
        .iter()
        .rev()
        .filter(|m| visible.as_ref().is_none_or(|v| v.contains(&m.host)))
        .map(event_json)
        .collect())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    host: Option<String>,
    limit: Option<u32>,
}

async fn events(
    State(web): State<Arc<Web>>,
    authed: Authed,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> ApiResult {
    let Query(EventsQuery { host, limit }) = query?;
    let limit = checked_limit(limit, 100, 1000)?;
    if let Some(h) = &host {
        web.host_in_path(&authed.viewer, Ok(Path(h.clone())), HostRole::Monitor)
            .await?;
    }
    let visible = web.visible_names(&authed.viewer).await?;
    let query = EngineQuery::Events {
        host: host.map(|h| h.to_ascii_lowercase()),
        // A user who sees few hosts asks for more, to fill the page after filtering.
        limit: if visible.is_some() { 1000 } else { limit },
    };
    let messages = web
        .ask_for(query, answer!(Answer::Messages { messages } => messages))
        .await?;
    ok(messages
        .iter()
        .filter(|m| visible.as_ref().is_none_or(|v| v.contains(&m.host)))
        .take(limit as usize)
        .map(event_json)
        .collect())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsQuery {
    level: Option<String>,
    host: Option<String>,
}

async fn alerts(
    State(web): State<Arc<Web>>,
    authed: Authed,
    query: Result<Query<AlertsQuery>, QueryRejection>,
) -> ApiResult {
    let Query(AlertsQuery { level, host }) = query?;
    let level = match level.as_deref().map(str::to_ascii_uppercase) {
        None => None,
        Some(l) if ["CRITICAL", "WARNING", "UNKNOWN"].contains(&l.as_str()) => Some(l),
        Some(l) => {
            return Err(ApiError::bad_request(format!(
                "level must be critical, warning or unknown, not {l:?}"
            )));
        }
    };
    let host = match host {
        Some(h) => {
            let (name, _) = web
                .host_in_path(&authed.viewer, Ok(Path(h)), HostRole::Monitor)
                .await?;
            Some(name)
        }
        None => None,
    };
    let visible = web.visible_names(&authed.viewer).await?;
    let alerts = web
        .ask_for(
            EngineQuery::Alerts {},
            answer!(Answer::Alerts { alerts } => alerts),
        )
        .await?;
    ok(alerts
        .iter()
        .filter(|a| visible.as_ref().is_none_or(|v| v.contains(&a.host)))
        .filter(|a| level.as_ref().is_none_or(|l| &a.level == l))
        .filter(|a| host.as_ref().is_none_or(|h| &a.host == h))
        .map(alert_json)
        .collect())
}

async fn acknowledge(
    State(web): State<Arc<Web>>,
    authed: Authed,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let Path(key) = path?;
    let Some((host, metric)) = key.split_once('/') else {
        return Err(ApiError::not_found(format!(
            "no alert {key:?} (keys look like web1/down)"
        )));
    };
    let (host, _) = web
        .host_in_path(
            &authed.viewer,
            Ok(Path(host.to_string())),
            HostRole::Monitor,
        )
        .await?;
    let key = format!("{host}/{metric}");
    let query = EngineQuery::Acknowledge {
        key: key.clone(),
        by: authed.viewer.name().to_string(),
    };
    let message = web
        .ask_for_or(
            query,
            ApiError::not_found,
            answer!(Answer::Done { message } => message),
        )
        .await?;
    ok(json!({"message": message, "key": key}))
}

// --- Silences ------------------------------------------------------------------------------

/// Silences: a non-admin sees those that match at least one host they see.
async fn silences(State(web): State<Arc<Web>>, authed: Authed) -> ApiResult {
    let visible = web.visible_names(&authed.viewer).await?;
    let (silences, windows) = web
        .ask_for(
            EngineQuery::Silences {},
            answer!(Answer::Silences { silences, windows } => (silences, windows)),
        )
        .await?;
    ok(json!({
        "silences": silences.iter().filter(|s| {
            visible.as_ref().is_none_or(|v| v.iter().any(|h| glob(&s.host, h)))
        }).map(|s| json!({
            "id": s.id,
            "host": s.host,
            "metric": s.metric,
            "start": seconds(s.start_ms),
            "end": seconds(s.end_ms),
            "author": s.author,
            "comment": s.comment,
        })).collect::<Vec<_>>(),
        "maintenance": windows.iter().map(|(name, open)| json!({"name": name, "open": open})).collect::<Vec<_>>(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSilence {
    host: String,
    #[serde(default = "any_metric")]
    metric: String,
    minutes: u32,
    #[serde(default)]
    comment: String,
}

/// Whether `name` matches `pattern`, as the engine matches silences (linear, no recursion).
fn glob(pattern: &str, name: &str) -> bool {
    hb_rules::silence::glob(pattern, name)
}

fn any_metric() -> String {
    "*".into()
}

/// Silences: a manager may silence a host of theirs by its exact name; patterns that can
/// match other hosts (`*`, `?`) are for admins.
async fn silence(
    State(web): State<Arc<Web>>,
    authed: Authed,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let s: NewSilence = body(&headers, &bytes?)?;
    // Lengths and the duration are the engine's to check (422 with its reason).
    if s.host.contains(['*', '?']) {
        if !authed.viewer.is_admin() {
            return Err(ApiError::forbidden("silencing by pattern is for admins"));
        }
    } else {
        web.host_in_path(&authed.viewer, Ok(Path(s.host.clone())), HostRole::Manager)
            .await?;
    }
    let query = EngineQuery::Silence {
        host: s.host.to_ascii_lowercase(),
        metric: s.metric,
        minutes: s.minutes,
        author: authed.viewer.name().to_string(),
        comment: s.comment,
    };
    let id = web
        .ask_for_or(
            query,
            refused(StatusCode::UNPROCESSABLE_ENTITY),
            answer!(Answer::Silenced { id } => id),
        )
        .await?;
    status(StatusCode::CREATED, json!({"id": id}))
}

/// Ending a silence: its author or an admin.
async fn unsilence(
    State(web): State<Arc<Web>>,
    authed: Authed,
    path: Result<Path<u64>, PathRejection>,
) -> ApiResult {
    let Path(id) = path?;
    let Answer::Silences { silences, .. } = web.ask(EngineQuery::Silences {}).await? else {
        return Err(ApiError::engine("no silences from the engine"));
    };
    // Another's silence on hosts one cannot see does not exist for them.
    let visible = web.visible_names(&authed.viewer).await?;
    let Some(s) = silences.iter().find(|s| {
        s.id == id
            && visible
                .as_ref()
                .is_none_or(|v| v.iter().any(|h| glob(&s.host, h)))
    }) else {
        return Err(ApiError::not_found(format!("no silence {id}")));
    };
    if !authed.viewer.is_admin() && s.author != authed.viewer.name() {
        return Err(ApiError::forbidden(
            "only its author or an admin may end a silence",
        ));
    }
    let message = web
        .ask_for_or(
            EngineQuery::Unsilence { id },
            ApiError::not_found,
            answer!(Answer::Done { message } => message),
        )
        .await?;
    ok(json!({"message": message}))
}

// --- Users and status ----------------------------------------------------------------------

fn user_json(name: &str, a: &crate::web::Account) -> Value {
    json!({
        "name": name,
        "full_name": a.full_name,
        "avatar": a.avatar,
        "admin": a.admin,
        "notification_channels": a.notification_channels,
    })
}

async fn users(State(web): State<Arc<Web>>, authed: Authed) -> ApiResult {
    if !authed.viewer.is_admin() {
        return Err(ApiError::forbidden("the user list is for admins"));
    }
    ok(web
        .users()
        .iter()
        .map(|(name, a)| user_json(name, a))
        .collect())
}

async fn me(State(web): State<Arc<Web>>, authed: Authed) -> ApiResult {
    match &authed.viewer {
        Viewer::Open => ok(json!({
            "name": "anonymous",
            "admin": true,
            "unauthenticated": true,
        })),
        Viewer::User { name, .. } => match web.users().get(name) {
            Some(a) => ok(user_json(name, a)),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "the user no longer exists",
            )),
        },
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current: String,
    new: String,
}

/// What a user may change of themselves; each field given is changed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MeChange {
    #[serde(default, deserialize_with = "hb_ipc::edge::given")]
    full_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "hb_ipc::edge::given")]
    avatar: Option<Option<String>>,
    notification_channels: Option<Vec<String>>,
    password: Option<PasswordChange>,
}

/// `PUT /users/me`: name, avatar, channels (unknown ones are dropped, as hbd did), password
/// (the current one is checked like a login; the new one ends every other session and the
/// answer carries a new token).
async fn change_me(
    State(web): State<Arc<Web>>,
    authed: Authed,
    ConnectInfo(crate::tls::Peer(peer)): ConnectInfo<crate::tls::Peer>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let Viewer::User { name, .. } = &authed.viewer else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no users are configured: there is no one to change",
        ));
    };
    let change: MeChange = body(&headers, &bytes?)?;
    let unprocessable = |m: &str| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m.to_string());
    if change.full_name.is_none()
        && change.avatar.is_none()
        && change.notification_channels.is_none()
        && change.password.is_none()
    {
        return Err(unprocessable("nothing to change"));
    }
    let config = web.config();
    let Some(file_user) = config.users.get(name) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "the user no longer exists",
        ));
    };
    if !web.users_loaded() {
        let mut e = ApiError::engine("users' earlier changes are not read yet; try again shortly");
        e.retry_after_s = Some(2);
        return Err(e);
    }
    // Applied to what is stored only after the awaits below, so a concurrent change is kept.
    let mut changes: Vec<(&'static str, Value)> = Vec::new();
    let mut set = |field: &'static str, value: Value| changes.push((field, value));
    if let Some(full_name) = change.full_name {
        if full_name.as_ref().is_some_and(|n| n.chars().count() > 200) {
            return Err(unprocessable("full_name is at most 200 characters"));
        }
        set("full_name", json!(full_name));
    }
    if let Some(avatar) = change.avatar {
        if avatar.as_ref().is_some_and(|a| a.len() > 8192) {
            return Err(unprocessable(
                "avatar is at most 8192 bytes (a path, URL or data URI)",
            ));
        }
        set("avatar", json!(avatar));
    }
    if let Some(channels) = change.notification_channels {
        let known = crate::channels::choosable(&web, &authed.viewer, channels).await?;
        set("notification_channels", json!(known));
    }
    let mut new_session = None;
    if let Some(p) = change.password {
        let count = p.new.chars().count();
        if !(8..=1024).contains(&count) {
            return Err(unprocessable(
                "the new password must be 8 to 1024 characters",
            ));
        }
        let address = peer.ip().to_canonical();
        let now = hb_ipc::now_ms();
        if let Err(wait_ms) = web.limiter().take(address, name, now) {
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many wrong passwords; wait and try again",
            );
            e.retry_after_s = Some(wait_ms.div_ceil(1000));
            return Err(e);
        }
        let hash = web.users().get(name).and_then(|a| a.hash.clone());
        if !web.verify(hash, p.current).await? {
            tracing::warn!(user = %name, from = %address, "Wrong current password in a password change.");
            return Err(ApiError::forbidden("the current password is wrong"));
        }
        let hashed = web
            .hash(p.new)
            .await
            .ok_or_else(|| ApiError::engine("could not hash the password"))?;
        web.limiter().refund(address, name, now);
        set("password", json!(hashed.to_string()));
        new_session = Some(());
    }
    let mut stored = web.chosen().get(name).cloned();
    for (field, value) in changes {
        stored = Some(hb_web::users::with_field(
            stored.as_ref(),
            file_user,
            field,
            value,
        ));
    }
    web.put_user(name, stored).await?;
    let stale = web.rebuild();
    if !stale.is_empty() {
        let w = web.clone();
        tokio::spawn(async move { w.clean(stale).await });
    }
    let users = web.users();
    let Some(account) = users.get(name) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "the user no longer exists",
        ));
    };
    let mut answer = json!({"ok": true, "user": user_json(name, account)});
    let mut response_cookie = None;
    if new_session.is_some() {
        // Every session of the user ended with the old password; this one goes on anew.
        let (token, csrf) = web
            .sessions()
            .start(name, hb_ipc::now_ms())
            .map_err(|e| ApiError::engine(format!("no randomness for a session: {e}")))?;
        answer["token"] = json!(token);
        answer["csrf_token"] = json!(csrf);
        response_cookie = HeaderValue::from_str(&auth::set_cookie(&token, web.tls())).ok();
        tracing::info!(user = %name, "Password changed; other sessions ended.");
    }
    let mut response = axum::Json(answer).into_response();
    if let Some(c) = response_cookie {
        response.headers_mut().insert(header::SET_COOKIE, c);
    }
    Ok(response)
}

/// The alerting rules in force (no secret in them: any user may read them).
async fn thresholds(State(web): State<Arc<Web>>, _authed: Authed) -> ApiResult {
    let rules = answer!(Answer::Thresholds {
        thresholds,
        profiles,
        default_profile,
    } => json!({
        "thresholds": thresholds,
        "threshold_configs": profiles,
        "default_threshold_config": default_profile,
    }));
    ok(web.ask_for(EngineQuery::Thresholds {}, rules).await?)
}

/// `GET /config`: the server's configuration without its secrets, for admins.
async fn server_config(State(web): State<Arc<Web>>, authed: Authed) -> ApiResult {
    if !authed.viewer.is_admin() {
        return Err(ApiError::forbidden("the configuration is for admins"));
    }
    ok(web.config().server.clone())
}

async fn server_status(State(web): State<Arc<Web>>, authed: Authed) -> ApiResult {
    let hosts = web.visible_hosts(&authed.viewer).await?;
    let mut by_state: BTreeMap<&str, u64> = BTreeMap::new();
    for h in &hosts {
        *by_state.entry(h.state.as_str()).or_default() += 1;
    }
    let visible: std::collections::BTreeSet<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    let mut by_level: BTreeMap<String, u64> = BTreeMap::new();
    if let Answer::Alerts { alerts } = web.ask(EngineQuery::Alerts {}).await? {
        for a in alerts.iter().filter(|a| visible.contains(a.host.as_str())) {
            *by_level.entry(a.level.to_ascii_lowercase()).or_default() += 1;
        }
    }
    ok(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "time": seconds(hb_ipc::now_ms()),
        "unauthenticated": matches!(authed.viewer, Viewer::Open),
        "user": authed.viewer.name(),
        "hosts": hosts.len(),
        "hosts_by_state": by_state,
        "alerts_by_level": by_level,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_patterns_match_like_the_engine() {
        assert!(glob("db*", "db1"));
        assert!(glob("*", "web1"));
        assert!(glob("web?", "web1"));
        assert!(!glob("web?", "web12"));
        assert!(!glob("db*", "web1"));
        assert!(glob("web1", "web1"));
    }
}
