//! Events: the newest messages, and the event history of all hosts or one.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use hb_ipc::edge::{Answer, Query as EngineQuery};
use hb_web::access::HostRole;
use serde::Deserialize;

use crate::authed::Authed;
use crate::reply::{ApiResult, Limit, PathParams, QueryParams, checked_limit, limit, ok};
use crate::views::event_json;
use crate::visibility::host_name;
use crate::web::{Web, WebState, answer};

pub fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/api/0/messages", get(messages))
        .route("/api/0/events", get(events))
        .route("/api/0/hosts/{host}/events", get(host_events))
}

async fn messages(State(web): WebState, authed: Authed) -> ApiResult {
    let visible = web.visible_names(&authed.viewer).await?;
    let query = EngineQuery::Messages {};
    let messages = web
        .ask_for(query, answer!(Answer::Messages { messages } => messages))
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
    State(web): WebState,
    authed: Authed,
    query: QueryParams<EventsQuery>,
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

async fn host_events(
    State(web): WebState,
    authed: Authed,
    path: PathParams,
    query: QueryParams<Limit>,
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
