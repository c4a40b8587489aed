//! Who holds which role on a host: read by anyone who sees it, changed by its owner (owner
//! and managers) or a manager (monitors).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use hb_ipc::edge::{HostSummary, Query as EngineQuery};
use hb_web::access::{HostRole, Viewer};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::authed::Authed;
use crate::reply::{ApiError, ApiResult, BodyBytes, PathParams, body, ok, refused};
use crate::visibility::host_name;
use crate::web::{Web, WebState};

pub fn routes() -> Router<Arc<Web>> {
    Router::new().route("/api/0/hosts/{host}/access", get(access).put(set_access))
}

async fn access(State(web): WebState, authed: Authed, path: PathParams) -> ApiResult {
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
    State(web): WebState,
    authed: Authed,
    path: PathParams,
    headers: HeaderMap,
    bytes: BodyBytes,
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
    let message = web.ask_done(query, refusal).await?;
    tracing::info!(user = authed.viewer.name(), host = name, "{message}");
    let host = web
        .host_for(&authed.viewer, &name, HostRole::Monitor)
        .await?;
    ok(access_json(&name, &host.summary, &authed.viewer))
}
