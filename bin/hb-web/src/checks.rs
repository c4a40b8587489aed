//! HTTP push monitors (docs/CHECKS.md): the pings cron jobs and applications send, in the
//! forms of Healthchecks (`/ping/<uuid>[/start|/fail|/log|/<exit status>]`) and Heartbeat
//! Central (`POST /heartbeat/<uuid>`, `GET /health`, `/api/applications`). The UUID is the
//! credential; hb-web checks its form, rate-limits per address and per UUID, and hands the
//! ping to the engine, which knows the checks and answers once the ping is stored.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hb_ipc::edge::{Answer, CheckSummary, Query as EngineQuery};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Web;
use crate::api::{ApiError, ApiResult, Authed, ok, unexpected};

/// Bytes of a ping's body kept in its history (more is cut, and said so).
pub const BODY_KEPT: usize = 10 * 1024;
/// Pings per second on average, and at once, per source address and per check.
const ADDRESS_RATE: f64 = 20.0;
const ADDRESS_BURST: f64 = 100.0;
const CHECK_RATE: f64 = 5.0;
const CHECK_BURST: f64 = 30.0;
/// Buckets kept at most (past it, the idle ones go).
const MAX_BUCKETS: usize = 100_000;

/// Token buckets by key.
#[derive(Default)]
pub struct Limiter {
    buckets: Mutex<HashMap<String, (f64, u64)>>,
}

impl Limiter {
    /// Takes one token for `key`; the seconds to wait when there is none.
    pub fn take(&self, key: &str, rate: f64, burst: f64, now_ms: u64) -> Result<(), u64> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            // Full ones have been idle long enough to be full again: forgetting them changes
            // nothing.
            buckets.retain(|_, (tokens, at)| {
                *tokens + now_ms.saturating_sub(*at) as f64 / 1000.0 * rate < burst
            });
        }
        let (tokens, at) = buckets.entry(key.to_string()).or_insert((burst, now_ms));
        *tokens = (*tokens + now_ms.saturating_sub(*at) as f64 / 1000.0 * rate).min(burst);
        *at = now_ms;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil() as u64)
        }
    }
}

/// A UUID in its usual form, lower case.
fn uuid(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let groups: Vec<&str> = lower.split('-').collect();
    let ok = groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
    ok.then_some(lower)
}

pub fn router() -> Router<Arc<Web>> {
    Router::new()
        .route("/health", get(health))
        .route("/heartbeat/{uuid}", post(heartbeat))
        .route("/ping/{uuid}", get(ping_success).post(ping_success))
        .route("/ping/{uuid}/{action}", get(ping_action).post(ping_action))
        .route("/api/applications", get(applications))
        .route("/api/applications/{id}", get(application))
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

#[derive(Deserialize)]
struct PingQuery {
    rid: Option<String>,
}

/// How a ping ended.
enum Pinged {
    Done(String, u64),
    Unknown,
    Inactive(String),
    Limited(u64),
    Bad(String),
}

#[allow(clippy::too_many_arguments)]
async fn take_ping(
    web: &Web,
    raw_uuid: &str,
    kind: &str,
    exit: Option<i32>,
    rid: Option<String>,
    peer: std::net::SocketAddr,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Pinged {
    let Some(uuid) = uuid(raw_uuid) else {
        web.count("pings_bad_uuid");
        return Pinged::Unknown;
    };
    let now = hb_ipc::now_ms();
    let address: IpAddr = peer.ip().to_canonical();
    let limiter = web.ping_limiter();
    if let Err(wait) = limiter
        .take(&address.to_string(), ADDRESS_RATE, ADDRESS_BURST, now)
        .and_then(|()| limiter.take(&uuid, CHECK_RATE, CHECK_BURST, now))
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
    let query = EngineQuery::Ping {
        uuid,
        kind: kind.to_string(),
        exit,
        rid,
        source: peer,
        body,
        method: method.as_str().to_string(),
        user_agent,
    };
    match web.ask(query).await {
        Ok(Answer::Pinged { check, at_ms }) => Pinged::Done(check, at_ms),
        Ok(Answer::Error { message }) if message.contains("inactive") => Pinged::Inactive(message),
        Ok(Answer::Error { message }) if message.starts_with("no check") => Pinged::Unknown,
        Ok(Answer::Error { message }) => Pinged::Bad(message),
        Ok(_) => Pinged::Bad("unexpected answer from the engine".into()),
        Err(e) => Pinged::Bad(e.message().to_string()),
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
        Pinged::Inactive(m) => text(StatusCode::BAD_REQUEST, &m),
        Pinged::Limited(wait) => {
            let mut r = text(StatusCode::TOO_MANY_REQUESTS, "rate limited");
            if let Ok(v) = HeaderValue::from_str(&wait.max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        Pinged::Bad(m) => text(StatusCode::BAD_REQUEST, &m),
    }
}

/// `GET|POST|HEAD /ping/<uuid>`: success.
async fn ping_success(
    State(web): State<Arc<Web>>,
    ConnectInfo(crate::tls::Peer(peer)): ConnectInfo<crate::tls::Peer>,
    path: Result<Path<String>, PathRejection>,
    Query(q): Query<PingQuery>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(Path(id)) = path else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    healthchecks_answer(
        take_ping(
            &web, &id, "success", None, q.rid, peer, &method, &headers, &body,
        )
        .await,
    )
}

/// `/ping/<uuid>/start|fail|log|<exit status 0-255>`.
async fn ping_action(
    State(web): State<Arc<Web>>,
    ConnectInfo(crate::tls::Peer(peer)): ConnectInfo<crate::tls::Peer>,
    path: Result<Path<(String, String)>, PathRejection>,
    Query(q): Query<PingQuery>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(Path((id, action))) = path else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    let (kind, exit) = match action.as_str() {
        "start" | "fail" | "log" => (action.as_str(), None),
        code => match code.parse::<u8>() {
            Ok(code) => ("exit", Some(i32::from(code))),
            Err(_) => return text(StatusCode::NOT_FOUND, "not found"),
        },
    };
    healthchecks_answer(
        take_ping(&web, &id, kind, exit, q.rid, peer, &method, &headers, &body).await,
    )
}

/// `POST /heartbeat/<uuid>`: Heartbeat Central's ping.
async fn heartbeat(
    State(web): State<Arc<Web>>,
    ConnectInfo(crate::tls::Peer(peer)): ConnectInfo<crate::tls::Peer>,
    path: Result<Path<String>, PathRejection>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(Path(id)) = path else {
        return ApiError::new(StatusCode::NOT_FOUND, "Application not found").into_response();
    };
    match take_ping(
        &web, &id, "success", None, None, peer, &method, &headers, &body,
    )
    .await
    {
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
        Pinged::Inactive(m) => ApiError::new(StatusCode::BAD_REQUEST, m).into_response(),
        Pinged::Limited(wait) => {
            let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate limited");
            e.retry_after_s = Some(wait.max(1));
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
        "is_active": c.active,
        "status": c.state,
        "last_heartbeat": c.last_ping_ms.map(iso),
        "last_event": c.last_event.as_ref().map(|(at, kind)| json!({"timestamp": iso(*at), "kind": kind})),
        "owner": c.owner,
    })
}

/// The checks `authed` may see.
async fn visible(web: &Web, authed: &Authed) -> Result<Vec<CheckSummary>, ApiError> {
    let Answer::Checks { checks } = web.ask(EngineQuery::Checks {}).await? else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no checks from the engine",
        ));
    };
    let names = web.visible_names(&authed.viewer).await?;
    Ok(checks
        .into_iter()
        .filter(|c| names.as_ref().is_none_or(|v| v.contains(&c.name)))
        .collect())
}

/// `GET /api/applications`.
async fn applications(State(web): State<Arc<Web>>, authed: Authed) -> ApiResult {
    let checks = visible(&web, &authed).await?;
    ok(checks.iter().map(application_json).collect())
}

/// One check by UUID or name.
async fn one(web: &Web, authed: &Authed, id: &str) -> Result<CheckSummary, ApiError> {
    let wanted = uuid(id).unwrap_or_else(|| id.to_ascii_lowercase());
    visible(web, authed)
        .await?
        .into_iter()
        .find(|c| c.uuid == wanted || c.name == wanted)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "Application not found"))
}

/// `GET /api/applications/<id>`.
async fn application(
    State(web): State<Arc<Web>>,
    authed: Authed,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let Path(id) = path?;
    ok(application_json(&one(&web, &authed, &id).await?))
}

#[derive(Deserialize)]
struct HistoryQuery {
    limit: Option<u32>,
}

/// `GET /api/applications/<id>/heartbeats`: the ping history, newest first.
async fn heartbeats(
    State(web): State<Arc<Web>>,
    authed: Authed,
    path: Result<Path<String>, PathRejection>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult {
    let Path(id) = path?;
    let check = one(&web, &authed, &id).await?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    match web
        .ask(EngineQuery::Pings {
            check: check.name.clone(),
            limit,
        })
        .await?
    {
        Answer::Pings { pings } => ok(pings
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
            .collect()),
        other => Err(unexpected(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_and_buckets() {
        assert_eq!(
            uuid("0F8FAD5B-D9CB-469F-A165-70867728950E").as_deref(),
            Some("0f8fad5b-d9cb-469f-a165-70867728950e")
        );
        for bad in [
            "",
            "x",
            "0f8fad5b-d9cb-469f-a165-70867728950",
            "0f8fad5bd9cb469fa16570867728950e",
            "../../etc/passwd",
        ] {
            assert!(uuid(bad).is_none(), "{bad}");
        }
        let l = Limiter::default();
        for _ in 0..3 {
            assert!(l.take("a", 1.0, 3.0, 0).is_ok());
        }
        assert_eq!(l.take("a", 1.0, 3.0, 0), Err(1));
        assert!(l.take("b", 1.0, 3.0, 0).is_ok(), "per key");
        assert!(l.take("a", 1.0, 3.0, 1000).is_ok(), "refilled");
    }
}
