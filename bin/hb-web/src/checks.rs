//! HTTP push monitors (docs/CHECKS.md): the pings cron jobs and applications send, in the
//! forms of Healthchecks (`/ping/<uuid>[/start|/fail|/log|/<exit status>]`) and Heartbeat
//! Central (`POST /heartbeat/<uuid>`, `GET /health`, `/api/applications`). The UUID is the
//! credential; hb-web checks its form, rate-limits per address and per UUID, and hands the
//! ping to the engine, which knows the checks and answers once the ping is stored.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hb_ipc::edge::{Answer, CheckSummary, Query as EngineQuery};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::authed::Authed;
use crate::reply::{ApiError, ApiResult, BodyBytes, PathParams, ok, status};
use crate::tls::Peer;
use crate::web::{Web, WebState, answer};
use hb_ipc::config::normalize_uuid;
use hb_web::access::{HostAccess, HostRole, Viewer};

/// Bytes of a ping's body kept in its history (more is cut, and said so).
pub const BODY_KEPT: usize = 10 * 1024;

pub fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/health", get(health))
        .route("/heartbeat/{uuid}", post(heartbeat))
        .route("/ping/{uuid}", get(healthchecks).post(healthchecks))
        .route(
            "/ping/{uuid}/{action}",
            get(healthchecks).post(healthchecks),
        )
        .route("/api/applications", get(applications).post(create))
        .route(
            "/api/applications/{id}",
            get(application).put(change).delete(remove),
        )
        .route("/api/applications/{id}/heartbeats", get(heartbeats))
}

/// `GET /health`: Heartbeat Central's liveness answer.
async fn health() -> Response {
    axum::Json(json!({
        "status": "healthy",
        "service": "hb",
        "version": env!("CARGO_PKG_VERSION"),
        "timestamp": iso(hb_ipc::now_ms()),
    }))
    .into_response()
}

/// Unix ms as RFC 3339 UTC, to the millisecond.
fn iso(ms: u64) -> String {
    jiff::Timestamp::from_millisecond(ms as i64)
        .map(|t| format!("{t:.3}"))
        .unwrap_or_default()
}

/// What a Healthchecks ping may carry in its query string (Heartbeat Central's, nothing).
#[derive(Default, Deserialize)]
struct PingQuery {
    rid: Option<String>,
    key: Option<String>,
}

/// A ping as it came: from where, how, and what it carried.
struct Ping {
    peer: SocketAddr,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
}

impl FromRequest<Arc<Web>> for Ping {
    type Rejection = Response;

    async fn from_request(request: Request, web: &Arc<Web>) -> Result<Ping, Response> {
        let (mut parts, body) = request.into_parts();
        let ConnectInfo(Peer(peer)) = ConnectInfo::<Peer>::from_request_parts(&mut parts, web)
            .await
            .map_err(IntoResponse::into_response)?;
        let method = parts.method.clone();
        let headers = parts.headers.clone();
        let body = Bytes::from_request(Request::from_parts(parts, body), web)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Ping {
            peer,
            method,
            headers,
            body,
        })
    }
}

/// How a ping ended.
enum Pinged {
    Done(String, u64),
    Unknown,
    BadKey,
    /// The engine did not answer, or could not store it: try again.
    Unavailable(String),
    Inactive(String),
    Limited(u64),
    Bad(String),
}

async fn take_ping(
    web: &Web,
    raw_uuid: &str,
    kind: &str,
    exit: Option<i32>,
    PingQuery { rid, key }: PingQuery,
    ping: &Ping,
) -> Pinged {
    let (peer, headers, body) = (ping.peer, &ping.headers, &ping.body);
    let Some(uuid) = normalize_uuid(raw_uuid) else {
        web.count("pings_bad_uuid");
        return Pinged::Unknown;
    };
    let rates = {
        let c = web.config();
        (c.ping_rate_per_address, c.ping_rate_per_check)
    };
    if let Err(wait) = web
        .ping_limiter()
        .take(peer.ip(), &uuid, rates, Instant::now())
    {
        web.count("pings_rate_limited");
        return Pinged::Limited(wait);
    }
    if let Some(r) = &rid
        && (r.len() > 64 || r.chars().any(char::is_control))
    {
        return Pinged::Bad("rid is at most 64 characters".into());
    }
    let body = (!body.is_empty()).then(|| {
        let mut text = String::from_utf8_lossy(&body[..body.len().min(BODY_KEPT)]).into_owned();
        if body.len() > BODY_KEPT {
            text.push_str(&format!(
                "\n[{} more bytes not kept]",
                body.len() - BODY_KEPT
            ));
        }
        text
    });
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(200).collect());
    // The ping key, when the check has one: a header, or the query.
    let key = headers
        .get("x-ping-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or(key);
    let query = EngineQuery::Ping(hb_ipc::edge::PingRequest {
        uuid,
        kind: kind.to_string(),
        exit,
        rid,
        source: peer,
        body,
        method: ping.method.as_str().to_string(),
        user_agent,
        key,
    });
    match web.ask(query).await {
        Ok(Answer::Pinged { check, at_ms }) => Pinged::Done(check, at_ms),
        Ok(Answer::Error { message }) if message.contains("inactive") => Pinged::Inactive(message),
        Ok(Answer::Error { message }) if message.contains("ping key") => Pinged::BadKey,
        Ok(Answer::Error { message }) if message == hb_ipc::edge::STORE_FAILED => {
            Pinged::Unavailable(message)
        }
        Ok(Answer::Error { message }) if message.starts_with("no check") => Pinged::Unknown,
        Ok(Answer::Error { message }) => Pinged::Bad(message),
        Ok(_) => Pinged::Unavailable("unexpected answer from the engine".into()),
        Err(e) => Pinged::Unavailable(e.message().to_string()),
    }
}

/// A Healthchecks-style answer: plain text.
fn text(status: StatusCode, body: &str) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body.to_string(),
    )
        .into_response()
}

fn healthchecks_answer(p: Pinged) -> Response {
    match p {
        Pinged::Done(..) => text(StatusCode::OK, "OK"),
        Pinged::Unknown => text(StatusCode::NOT_FOUND, "not found"),
        Pinged::BadKey => text(StatusCode::FORBIDDEN, "wrong or missing ping key"),
        Pinged::Unavailable(m) => text(StatusCode::SERVICE_UNAVAILABLE, &m),
        Pinged::Inactive(m) => text(StatusCode::BAD_REQUEST, &m),
        Pinged::Limited(wait) => {
            let mut r = text(StatusCode::TOO_MANY_REQUESTS, "rate limited");
            if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        Pinged::Bad(m) => text(StatusCode::BAD_REQUEST, &m),
    }
}

/// The path of a Healthchecks ping: `/ping/<uuid>` (success) or `/ping/<uuid>/<action>`.
#[derive(Deserialize)]
struct PingPath {
    uuid: String,
    action: Option<String>,
}

/// `GET|POST|HEAD /ping/<uuid>`: success; `/ping/<uuid>/start|fail|log|<exit status 0-255>`.
async fn healthchecks(
    State(web): WebState,
    path: PathParams<PingPath>,
    Query(q): Query<PingQuery>,
    ping: Ping,
) -> Response {
    let Ok(Path(PingPath { uuid, action })) = path else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    let (kind, exit) = match action.as_deref() {
        None => ("success", None),
        Some(action @ ("start" | "fail" | "log")) => (action, None),
        Some(code) => match code.parse::<u8>() {
            Ok(code) => ("exit", Some(i32::from(code))),
            Err(_) => return text(StatusCode::NOT_FOUND, "not found"),
        },
    };
    healthchecks_answer(take_ping(&web, &uuid, kind, exit, q, &ping).await)
}

/// `POST /heartbeat/<uuid>`: Heartbeat Central's ping.
async fn heartbeat(State(web): WebState, path: PathParams, ping: Ping) -> Response {
    let Ok(Path(id)) = path else {
        return ApiError::new(StatusCode::NOT_FOUND, "Application not found").into_response();
    };
    match take_ping(&web, &id, "success", None, PingQuery::default(), &ping).await {
        Pinged::Done(check, at_ms) => axum::Json(json!({
            "status": "ok",
            "message": "Heartbeat received",
            "application": check,
            "timestamp": iso(at_ms),
        }))
        .into_response(),
        Pinged::Unknown => {
            ApiError::new(StatusCode::NOT_FOUND, "Application not found").into_response()
        }
        Pinged::BadKey => {
            ApiError::new(StatusCode::FORBIDDEN, "wrong or missing ping key").into_response()
        }
        Pinged::Unavailable(m) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, m).into_response(),
        Pinged::Inactive(m) => ApiError::new(StatusCode::BAD_REQUEST, m).into_response(),
        Pinged::Limited(wait) => {
            let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate limited");
            e.retry_after_s = Some(wait);
            e.into_response()
        }
        Pinged::Bad(m) => ApiError::new(StatusCode::BAD_REQUEST, m).into_response(),
    }
}

/// A check in Heartbeat Central's shape (plus hb's own fields).
fn application_json(c: &CheckSummary) -> Value {
    json!({
        "id": c.uuid,
        "uuid": c.uuid,
        "name": c.name,
        "description": c.description,
        "expected_interval": c.interval,
        "grace_period": c.grace,
        "schedule": c.schedule,
        "tz": c.tz,
        "is_active": c.active,
        "status": c.state,
        "last_heartbeat": c.last_ping_ms.map(iso),
        "last_event": c.last_event.as_ref().map(|(at, kind)| json!({"timestamp": iso(*at), "kind": kind})),
        "owner": c.owner,
        "source": if c.api { "api" } else { "file" },
    })
}

/// Every check the engine knows, whoever may see it.
async fn all_checks(web: &Web) -> Result<Vec<CheckSummary>, ApiError> {
    match web.ask(EngineQuery::Checks {}).await? {
        Answer::Checks { checks } => Ok(checks),
        _ => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no checks from the engine",
        )),
    }
}

/// The checks `authed` may see: by the check's own roles (one not pinged yet is no host
/// yet, but its owner sees it).
async fn visible(web: &Web, authed: &Authed) -> Result<Vec<CheckSummary>, ApiError> {
    let mut checks = all_checks(web).await?;
    checks.retain(|c| authed.viewer.role_in(&access(c)).is_some());
    Ok(checks)
}

/// Who holds which role on a check: as on a host.
fn access(c: &CheckSummary) -> HostAccess {
    HostAccess {
        owner: c.owner.clone(),
        managers: c.managers.clone(),
        monitors: c.monitors.clone(),
    }
}

/// `GET /api/applications`.
async fn applications(State(web): WebState, authed: Authed) -> ApiResult {
    let checks = visible(&web, &authed).await?;
    ok(checks.iter().map(application_json).collect())
}

/// One check by UUID or name.
async fn one(web: &Web, authed: &Authed, id: &str) -> Result<CheckSummary, ApiError> {
    let wanted = normalize_uuid(id).unwrap_or_else(|| id.to_ascii_lowercase());
    visible(web, authed)
        .await?
        .into_iter()
        .find(|c| c.uuid == wanted || c.name == wanted)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "Application not found"))
}

/// `GET /api/applications/<id>`.
async fn application(State(web): WebState, authed: Authed, path: PathParams) -> ApiResult {
    let Path(id) = path?;
    ok(application_json(&one(&web, &authed, &id).await?))
}

/// A new v4 UUID from the system's CSPRNG.
fn new_uuid() -> Result<String, ApiError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("no randomness: {e}"),
        )
    })?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// A check's name from what a user typed ("Nightly Backup" is `nightly-backup`): the host
/// name a check is known by.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches(|c| c == '-' || c == '.').to_string();
    out.chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}

/// Heartbeat Central answers a bad request with 400, whatever is wrong with it.
fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message)
}

fn json_body(bytes: BodyBytes) -> Result<serde_json::Map<String, Value>, ApiError> {
    let bytes = bytes.map_err(|e| bad(format!("the body could not be read: {e}")))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad("the body must be a JSON object")),
        Err(e) => Err(bad(format!("the body is not JSON: {e}"))),
    }
}

/// The definition fields a request sets, checked for type; `interval` and `grace` taken
/// from Heartbeat Central's names or hb's.
fn fields(
    m: &serde_json::Map<String, Value>,
    viewer: &Viewer,
) -> Result<serde_json::Map<String, Value>, ApiError> {
    let known = [
        "name",
        "expected_interval",
        "interval",
        "grace_period",
        "grace",
        "description",
        "is_active",
        "active",
        "owner",
        "notification_channels",
        "schedule",
        "tz",
        "ping_key",
    ];
    if let Some(k) = m.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(bad(format!("unknown field {k:?}")));
    }
    let mut out = serde_json::Map::new();
    let seconds = |v: &Value, what: &str| -> Result<Value, ApiError> {
        v.as_f64()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| json!(s))
            .ok_or_else(|| bad(format!("{what} must be a number of seconds")))
    };
    if let Some(v) = m.get("expected_interval").or(m.get("interval")) {
        let s = seconds(v, "expected_interval")?;
        let whole = s.as_f64().unwrap_or(0.0).round();
        out.insert("interval".into(), json!(whole as u64));
    }
    if let Some(v) = m.get("grace_period").or(m.get("grace")) {
        out.insert("grace".into(), seconds(v, "grace_period")?);
    }
    if let Some(v) = m.get("description") {
        if !(v.is_string() || v.is_null()) {
            return Err(bad("description must be text"));
        }
        out.insert("description".into(), v.clone());
    }
    if let Some(v) = m.get("is_active").or(m.get("active")) {
        let b = v
            .as_bool()
            .ok_or_else(|| bad("is_active must be true or false"))?;
        out.insert("active".into(), json!(b));
    }
    for key in ["schedule", "tz"] {
        if let Some(v) = m.get(key) {
            if !(v.is_string() || v.is_null()) {
                return Err(bad(format!("{key} must be text")));
            }
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(v) = m.get("ping_key") {
        if !(v.is_string() || v.is_null()) {
            return Err(bad("ping_key must be text"));
        }
        out.insert("ping_key".into(), v.clone());
    }
    if let Some(v) = m.get("notification_channels") {
        let list: Vec<String> = serde_json::from_value(v.clone())
            .map_err(|_| bad("notification_channels must be a list of names"))?;
        out.insert("notification_channels".into(), json!(list));
    }
    if let Some(v) = m.get("owner") {
        if !viewer.is_admin() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "only an admin gives a check to someone",
            ));
        }
        if !(v.is_string() || v.is_null()) {
            return Err(bad("owner must be a user's name"));
        }
        out.insert("owner".into(), v.clone());
    }
    Ok(out)
}

/// Stores a check with the engine.
async fn put(web: &Web, name: &str, definition: Option<Value>) -> Result<String, ApiError> {
    let query = EngineQuery::PutCheck {
        name: name.to_string(),
        definition,
    };
    let refusal = |message: String| {
        if message == hb_ipc::edge::STORE_FAILED {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
        } else if message.contains("configuration file") {
            ApiError::new(StatusCode::CONFLICT, message)
        } else {
            bad(message)
        }
    };
    web.ask_done(query, refusal).await
}

/// `POST /api/applications`: `name` and `expected_interval` are required; the caller owns it;
/// 201 with its UUID.
async fn create(State(web): WebState, authed: Authed, bytes: BodyBytes) -> ApiResult {
    let m = json_body(bytes)?;
    let Some(raw) = m.get("name").and_then(Value::as_str) else {
        return Err(bad("name is required"));
    };
    let scheduled = m.get("schedule").is_some_and(Value::is_string);
    if m.get("expected_interval").or(m.get("interval")).is_none() && !scheduled {
        return Err(bad(
            "expected_interval is required (seconds), or a schedule",
        ));
    }
    let name = slug(raw);
    if name.is_empty() {
        return Err(bad("name must hold a letter or a digit"));
    }
    let mut def = fields(&m, &authed.viewer)?;
    // Grace: the interval, at most an hour (a scheduled check gets the file's default hour).
    if let Some(interval) = def.get("interval").and_then(Value::as_u64) {
        def.entry("grace").or_insert(json!(interval.clamp(1, 3600)));
    }
    if !def.contains_key("description") && raw != name {
        // What was typed is kept, as the check's description.
        def.insert("description".into(), json!(raw));
    }
    if let (Viewer::User { name: user, .. }, false) = (&authed.viewer, def.contains_key("owner")) {
        def.insert("owner".into(), json!(user));
    }
    // Any check or host, seen or not: a name is never taken over.
    let taken = all_checks(&web).await?.iter().any(|c| c.name == name)
        || web.host_list().await?.iter().any(|h| h.name == name);
    if taken {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("a host or check {name:?} exists"),
        ));
    }
    def.insert("uuid".into(), json!(new_uuid()?));
    let message = put(&web, &name, Some(Value::Object(def))).await?;
    tracing::info!(user = authed.viewer.name(), "{message}");
    let made = one(&web, &authed, &name).await?;
    status(StatusCode::CREATED, application_json(&made))
}

/// The check `id` as `authed` may change it: 404 unseen, 409 the file's, 403 not theirs.
async fn changeable(web: &Web, authed: &Authed, id: &str) -> Result<CheckSummary, ApiError> {
    let c = one(web, authed, id).await?;
    if !c.api {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "{} is a check of the configuration file; change it there",
                c.name
            ),
        ));
    }
    if authed.viewer.role_in(&access(&c)) != Some(HostRole::Owner) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "only its owner or an admin changes a check",
        ));
    }
    Ok(c)
}

/// `PUT /api/applications/<id>`: the fields given change.
async fn change(
    State(web): WebState,
    authed: Authed,
    path: PathParams,
    bytes: BodyBytes,
) -> ApiResult {
    let Path(id) = path?;
    let c = changeable(&web, &authed, &id).await?;
    let m = json_body(bytes)?;
    if m.get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| slug(n) != c.name)
    {
        return Err(bad("a check cannot be renamed; make a new one"));
    }
    let def = fields(&m, &authed.viewer)?;
    let message = put(&web, &c.name, Some(Value::Object(def))).await?;
    tracing::info!(user = authed.viewer.name(), "{message}");
    ok(application_json(&one(&web, &authed, &c.name).await?))
}

/// `DELETE /api/applications/<id>`: gone, with its state and history.
async fn remove(State(web): WebState, authed: Authed, path: PathParams) -> ApiResult {
    let Path(id) = path?;
    let c = changeable(&web, &authed, &id).await?;
    let message = put(&web, &c.name, None).await?;
    tracing::info!(user = authed.viewer.name(), "{message}");
    ok(json!({"message": message}))
}

#[derive(Deserialize)]
struct HistoryQuery {
    limit: Option<u32>,
}

/// `GET /api/applications/<id>/heartbeats`: the ping history, newest first.
async fn heartbeats(
    State(web): WebState,
    authed: Authed,
    path: PathParams,
    Query(q): Query<HistoryQuery>,
) -> ApiResult {
    let Path(id) = path?;
    let check = one(&web, &authed, &id).await?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let query = EngineQuery::Pings {
        check: check.name.clone(),
        limit,
    };
    let pings = web
        .ask_for(query, answer!(Answer::Pings { pings } => pings))
        .await?;
    ok(pings
        .iter()
        .map(|p| {
            json!({
                "timestamp": iso(p.at_ms),
                "kind": p.kind,
                "exit_status": p.exit,
                "rid": p.rid,
                "source": p.source,
                "method": p.method,
                "user_agent": p.user_agent,
                "body": p.body,
                "duration_ms": p.duration_ms,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_what_users_type() {
        assert_eq!(slug("Nightly Backup"), "nightly-backup");
        assert_eq!(slug("  db.dump (prod)!! "), "db.dump-prod");
        assert_eq!(slug("???"), "");
        assert_eq!(slug(&"a".repeat(100)).len(), 63);
        let u = new_uuid().unwrap();
        assert!(normalize_uuid(&u).is_some(), "{u}");
        assert_eq!(&u[14..15], "4", "version 4");
    }

    #[test]
    fn uuids_are_checked() {
        assert_eq!(
            normalize_uuid("0F8FAD5B-D9CB-469F-A165-70867728950E").as_deref(),
            Some("0f8fad5b-d9cb-469f-a165-70867728950e")
        );
        for bad in [
            "",
            "x",
            "0f8fad5b-d9cb-469f-a165-70867728950",
            "0f8fad5bd9cb469fa16570867728950e",
            "../../etc/passwd",
        ] {
            assert!(normalize_uuid(bad).is_none(), "{bad}");
        }
    }
}
