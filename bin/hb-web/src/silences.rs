//! Silences: listing them, silencing a host (or, for admins, a pattern) for a while, and
//! ending a silence.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get};
use hb_ipc::edge::{Answer, Query as EngineQuery};
use hb_web::access::HostRole;
use serde::Deserialize;
use serde_json::json;

use crate::authed::Authed;
use crate::reply::{ApiError, ApiResult, BodyBytes, PathParams, body, ok, refused, status};
use crate::views::seconds;
use crate::web::{Web, WebState, answer};

pub fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/api/0/silences", get(silences).post(silence))
        .route("/api/0/silences/{id}", delete(unsilence))
}

/// Silences: a non-admin sees those that match at least one host they see.
async fn silences(State(web): WebState, authed: Authed) -> ApiResult {
    let visible = web.visible_names(&authed.viewer).await?;
    let query = EngineQuery::Silences {};
    let listed = answer!(Answer::Silences { silences, windows } => (silences, windows));
    let (silences, windows) = web.ask_for(query, listed).await?;
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
    State(web): WebState,
    authed: Authed,
    headers: HeaderMap,
    bytes: BodyBytes,
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
    let refusal = refused(StatusCode::UNPROCESSABLE_ENTITY);
    let id = web
        .ask_for_or(query, refusal, answer!(Answer::Silenced { id } => id))
        .await?;
    status(StatusCode::CREATED, json!({"id": id}))
}

/// Ending a silence: its author or an admin.
async fn unsilence(State(web): WebState, authed: Authed, path: PathParams<u64>) -> ApiResult {
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
    let query = EngineQuery::Unsilence { id };
    let message = web.ask_done(query, ApiError::not_found).await?;
    ok(json!({"message": message}))
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
