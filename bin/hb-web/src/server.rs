//! The server itself: its OpenAPI document, its configuration (for admins) and its status.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hb_ipc::edge::{Answer, Query as EngineQuery};
use hb_web::access::Viewer;
use serde_json::json;

use crate::authed::Authed;
use crate::reply::{ApiError, ApiResult, ok};
use crate::views::seconds;
use crate::web::{Web, WebState};

pub fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/api/0/openapi.json", get(openapi))
        .route("/api/0/config", get(server_config))
        .route("/api/0/status", get(server_status))
}

/// The OpenAPI document of this API (no secret in it, so open to all).
async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../openapi.json"),
    )
        .into_response()
}

/// `GET /config`: the server's configuration without its secrets, for admins.
async fn server_config(State(web): WebState, authed: Authed) -> ApiResult {
    if !authed.viewer.is_admin() {
        return Err(ApiError::forbidden("the configuration is for admins"));
    }
    ok(web.config().server.clone())
}

async fn server_status(State(web): WebState, authed: Authed) -> ApiResult {
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
