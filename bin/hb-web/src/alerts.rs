//! Alerts: the active ones, of all hosts or one, acknowledging one, and the rules that raise
//! them.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use hb_ipc::edge::{Answer, Query as EngineQuery};
use hb_web::access::HostRole;
use serde::Deserialize;
use serde_json::json;

use crate::authed::Authed;
use crate::reply::{ApiError, ApiResult, PathParams, QueryParams, ok};
use crate::views::alert_json;
use crate::web::{Web, WebState, answer};

pub fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/api/0/alerts", get(alerts))
        .route("/api/0/alerts/{key}/acknowledge", post(acknowledge))
        .route("/api/0/hosts/{host}/alerts", get(host_alerts))
        .route("/api/0/thresholds", get(thresholds))
}

/// Which alerts to list: of one level, of one host (each optional).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsQuery {
    level: Option<String>,
    host: Option<String>,
}

async fn alerts(
    State(web): WebState,
    authed: Authed,
    query: QueryParams<AlertsQuery>,
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
    let query = EngineQuery::Alerts {};
    let alerts = web
        .ask_for(query, answer!(Answer::Alerts { alerts } => alerts))
        .await?;
    ok(alerts
        .iter()
        .filter(|a| visible.as_ref().is_none_or(|v| v.contains(&a.host)))
        .filter(|a| level.as_ref().is_none_or(|l| &a.level == l))
        .filter(|a| host.as_ref().is_none_or(|h| &a.host == h))
        .map(alert_json)
        .collect())
}

async fn acknowledge(State(web): WebState, authed: Authed, path: PathParams) -> ApiResult {
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
    let message = web.ask_done(query, ApiError::not_found).await?;
    ok(json!({"message": message, "key": key}))
}

async fn host_alerts(State(web): WebState, authed: Authed, path: PathParams) -> ApiResult {
    let (_, host) = web
        .host_in_path(&authed.viewer, path, HostRole::Monitor)
        .await?;
    ok(host.alerts.iter().map(alert_json).collect())
}

/// The alerting rules in force (no secret in them: any user may read them).
async fn thresholds(State(web): WebState, _authed: Authed) -> ApiResult {
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
