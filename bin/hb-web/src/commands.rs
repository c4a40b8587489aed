//! What a host's manager asks of it: a command or an upgrade queued for its next heartbeat,
//! and an update of its DNS name.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hb_ipc::edge::{Answer, Query as EngineQuery};
use hb_web::access::HostRole;
use serde::Deserialize;
use serde_json::json;

use crate::authed::Authed;
use crate::reply::{ApiError, ApiResult, BodyBytes, PathParams, body, refused, status};
use crate::visibility::host_name;
use crate::web::{Web, WebState, answer};

pub fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/api/0/hosts/{host}/commands", post(queue_command))
        .route("/api/0/hosts/{host}/upgrade", post(queue_upgrade))
        .route("/api/0/hosts/{host}/dns", post(dns))
}

/// A command to queue: its name, as the host's hbc knows it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandBody {
    command: String,
}

async fn queue_command(
    State(web): WebState,
    authed: Authed,
    path: PathParams,
    headers: HeaderMap,
    bytes: BodyBytes,
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

async fn queue_upgrade(State(web): WebState, authed: Authed, path: PathParams) -> ApiResult {
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
    let refusal = refused(StatusCode::CONFLICT);
    let id = web
        .ask_for_or(query, refusal, answer!(Answer::Queued { id } => id))
        .await?;
    tracing::info!(user = authed.viewer.name(), host, ?command, id, "Queued.");
    status(
        StatusCode::ACCEPTED,
        json!({"id": id, "host": host, "command": command}),
    )
}

async fn dns(State(web): WebState, authed: Authed, path: PathParams) -> ApiResult {
    let (name, _) = web
        .host_in_path(&authed.viewer, path, HostRole::Manager)
        .await?;
    let query = EngineQuery::Dns { host: name.clone() };
    let refusal = refused(StatusCode::CONFLICT);
    let message = web.ask_done(query, refusal).await?;
    tracing::info!(
        user = authed.viewer.name(),
        host = name,
        "DNS update asked for."
    );
    status(StatusCode::ACCEPTED, json!({"message": message}))
}
