//! Hosts: the list, one host with its plugins, its samples and round-trip times, and
//! dropping a host.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use hb_ipc::edge::{Answer, Query as EngineQuery};
use hb_web::access::HostRole;
use serde_json::{Value, json};

use crate::authed::Authed;
use crate::reply::{ApiError, ApiResult, Limit, PathParams, QueryParams, limit, ok, refused};
use crate::views::{alert_json, host_json, hosts_json, seconds};
use crate::visibility::host_name;
use crate::web::{Web, WebState, answer};

pub fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/api/0/hosts", get(hosts))
        .route("/api/0/hosts/{host}", get(host).delete(drop_host))
        .route("/api/0/hosts/{host}/plugins", get(plugins))
        .route("/api/0/hosts/{host}/plugins/{plugin}", get(samples))
        .route("/api/0/hosts/{host}/rtt", get(rtt))
}

async fn hosts(State(web): WebState, authed: Authed) -> ApiResult {
    let hosts = web.host_list().await?;
    let body = hosts_json(hosts.iter(), &authed.viewer);
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn host(State(web): WebState, authed: Authed, path: PathParams) -> ApiResult {
    let (_, host) = web
        .host_in_path(&authed.viewer, path, HostRole::Monitor)
        .await?;
    let summary = &host.summary;
    let mut value = host_json(summary, authed.viewer.role(summary));
    value["plugins"] = json!(host.plugins.keys().collect::<Vec<_>>());
    value["alerts"] = host.alerts.iter().map(alert_json).collect();
    value["managers"] = json!(summary.managers);
    value["monitors"] = json!(summary.monitors);
    ok(value)
}

async fn plugins(State(web): WebState, authed: Authed, path: PathParams) -> ApiResult {
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
    State(web): WebState,
    authed: Authed,
    path: PathParams<(String, String)>,
    query: QueryParams<Limit>,
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
    State(web): WebState,
    authed: Authed,
    path: PathParams,
    query: QueryParams<Limit>,
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

async fn drop_host(State(web): WebState, authed: Authed, path: PathParams) -> ApiResult {
    let (name, _) = web
        .host_in_path(&authed.viewer, path, HostRole::Owner)
        .await?;
    let query = EngineQuery::DropHost { host: name };
    let refusal = refused(StatusCode::CONFLICT);
    let host = web
        .ask_for_or(query, refusal, answer!(Answer::Dropped { host } => host))
        .await?;
    tracing::info!(user = authed.viewer.name(), host, "Host dropped.");
    ok(json!({"dropped": host}))
}
