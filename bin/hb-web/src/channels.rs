//! Notification channels through the API (docs/API.md): the types with their options, the
//! channels a user may see, and channels users define, change and remove themselves. The
//! file's channels are shown but only the file changes them. Definitions are kept by the
//! engine and delivered by the notifier; hb-web never holds a stored secret: it sees one
//! only in the request that sets it, and every answer leaves secrets out.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use hb_ipc::edge::Query as EngineQuery;
use hb_notify::channel::{COMMON_OPTIONS, OptionKind, OptionSpec, TYPE_SPECS};
use hb_web::access::Viewer;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::authed::Authed;
use crate::channel_list::{Shown, Source, TOP_LEVEL, all};
use crate::reply::{ApiError, ApiResult, BodyBytes, PathParams, body, ok, status};
use crate::web::{Web, WebState};

/// Channels defined through the API, at most, and per owner.
pub const MAX_CHANNELS: usize = 1000;
pub const MAX_PER_OWNER: usize = 50;

pub fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/api/0/notification_channel_types", get(types))
        .route("/api/0/notification_channels", get(list).post(create))
        .route(
            "/api/0/notification_channels/{name}",
            axum::routing::put(change).delete(remove),
        )
}

fn option_json(o: &OptionSpec) -> Value {
    let mut v = json!({
        "name": o.name,
        "kind": o.kind.name(),
        "required": o.required,
        "secret": o.secret,
        "help": o.help,
    });
    if let Some(d) = o.default {
        v["default"] = json!(d);
    }
    if let OptionKind::Choice(words) = o.kind {
        v["choices"] = json!(words);
    }
    if o.file_only {
        v["file_only"] = json!(true);
    }
    v
}

/// `GET /notification_channel_types`: each type with its options, for forms.
async fn types(_authed: Authed) -> ApiResult {
    let types: Map<String, Value> = TYPE_SPECS
        .iter()
        .map(|t| {
            let v = json!({
                "help": t.help,
                "file_only": t.file_only,
                "options": t.options.iter().map(option_json).collect::<Vec<_>>(),
            });
            (t.name.to_string(), v)
        })
        .collect();
    ok(json!({
        "types": types,
        "common": COMMON_OPTIONS.iter().map(option_json).collect::<Vec<_>>(),
    }))
}

/// `GET /notification_channels`: the channels the user sees, by name.
async fn list(State(web): WebState, authed: Authed) -> ApiResult {
    let channels = all(&web).await?;
    ok(channels
        .iter()
        .filter(|(_, c)| c.visible_to(&authed.viewer))
        .map(|(name, c)| c.json(name, &authed.viewer))
        .collect())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewChannel {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, deserialize_with = "hb_ipc::edge::given")]
    owner: Option<Option<String>>,
    private: Option<bool>,
    min_level: Option<String>,
    #[serde(default)]
    options: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelChange {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "hb_ipc::edge::given")]
    owner: Option<Option<String>>,
    private: Option<bool>,
    min_level: Option<String>,
    options: Option<Map<String, Value>>,
}

fn unprocessable(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
}

/// A channel's name: what a YAML key, a URL path and a log line all carry without escaping.
fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(unprocessable(
            "a channel name is 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit",
        ))
    }
}

fn channel_name(raw: PathParams) -> Result<String, ApiError> {
    let Path(name) = raw?;
    check_name(&name)
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, format!("no channel {name:?}")))?;
    Ok(name)
}

/// Who will own it: a user owns what they make; an admin may give it to any user or to
/// no one.
fn owner_for(
    web: &Web,
    viewer: &Viewer,
    asked: Option<Option<String>>,
    current: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let owner = match (viewer, asked) {
        (_, None) => return Ok(current.map(str::to_string)),
        (Viewer::User { name, admin: false }, Some(asked)) => {
            if asked.as_deref() != Some(name.as_str()) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "only an admin gives a channel to someone else",
                ));
            }
            asked
        }
        (_, Some(asked)) => asked,
    };
    if let Some(o) = &owner
        && !web.users().contains_key(o)
    {
        return Err(unprocessable(format!("owner: no user {o:?}")));
    }
    Ok(owner)
}

/// The definition the engine stores: the options with the top-level fields.
fn definition(
    kind: &str,
    owner: Option<String>,
    private: bool,
    min_level: Option<String>,
    options: Map<String, Value>,
) -> Result<Value, ApiError> {
    let mut def = Map::new();
    for (key, value) in options {
        if TOP_LEVEL.contains(&key.as_str()) || key == "secrets_set" {
            return Err(unprocessable(format!(
                "options.{key}: give it beside options, not in them"
            )));
        }
        def.insert(key, value);
    }
    def.insert("type".into(), json!(kind));
    if let Some(o) = owner {
        def.insert("owner".into(), json!(o));
    }
    if private {
        def.insert("private".into(), json!(true));
    }
    if let Some(l) = min_level {
        def.insert("min_level".into(), json!(l));
    }
    Ok(Value::Object(def))
}

/// Stores a definition with the engine; its objection is the client's mistake.
async fn put(web: &Web, name: &str, def: Option<Value>) -> Result<String, ApiError> {
    let query = EngineQuery::PutChannel {
        name: name.to_string(),
        definition: def,
    };
    let refusal = |message: String| {
        if message == hb_ipc::edge::STORE_FAILED {
            // The engine could not keep it: not the client's mistake.
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
        } else {
            unprocessable(message)
        }
    };
    web.ask_done(query, refusal).await
}

/// The channel as the engine now has it, as `viewer` sees it.
async fn shown(web: &Web, name: &str, viewer: &Viewer) -> Result<Value, ApiError> {
    all(web)
        .await?
        .get(name)
        .map(|c| c.json(name, viewer))
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no channel {name:?}")))
}

/// `POST /notification_channels`: anyone logged in defines a channel of their own.
async fn create(
    State(web): WebState,
    authed: Authed,
    headers: HeaderMap,
    bytes: BodyBytes,
) -> ApiResult {
    let new: NewChannel = body(&headers, &bytes?)?;
    check_name(&new.name)?;
    let channels = all(&web).await?;
    if let Some(c) = channels.get(&new.name) {
        // Someone else's private channel exists for them only, but its name is taken.
        let message = match c.source {
            Source::File => format!("{:?} is a channel of the configuration file", new.name),
            Source::Api => format!("a channel {:?} exists", new.name),
        };
        return Err(ApiError::new(StatusCode::CONFLICT, message));
    }
    let viewer = &authed.viewer;
    let default_owner = match viewer {
        Viewer::User { name, .. } => Some(name.as_str()),
        Viewer::Open => None,
    };
    let owner = owner_for(&web, viewer, new.owner, default_owner)?;
    let defined = channels.values().filter(|c| c.source == Source::Api);
    if defined.clone().count() >= MAX_CHANNELS {
        return Err(unprocessable(format!(
            "at most {MAX_CHANNELS} channels are defined through the API"
        )));
    }
    if let Some(o) = &owner
        && defined.filter(|c| c.owner() == Some(o)).count() >= MAX_PER_OWNER
    {
        return Err(unprocessable(format!(
            "{o} owns {MAX_PER_OWNER} channels, the most one may"
        )));
    }
    let def = definition(
        &new.kind,
        owner,
        new.private.unwrap_or(false),
        new.min_level,
        new.options,
    )?;
    let message = put(&web, &new.name, Some(def)).await?;
    tracing::info!(user = viewer.name(), "{message}");
    status(StatusCode::CREATED, shown(&web, &new.name, viewer).await?)
}

/// The API channel `name` as `viewer` may change it: 404 if they cannot see it, 409 if it is
/// the file's, 403 if it is not theirs.
async fn editable(web: &Web, viewer: &Viewer, name: &str) -> Result<Shown, ApiError> {
    let mut channels = all(web).await?;
    let Some(c) = channels.remove(name).filter(|c| c.visible_to(viewer)) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no channel {name:?}"),
        ));
    };
    if c.source == Source::File {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("{name:?} is defined in the configuration file; change it there"),
        ));
    }
    if !c.owned_by(viewer) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "only its owner or an admin changes a channel",
        ));
    }
    Ok(c)
}

/// `PUT /notification_channels/{name}`: its owner or an admin changes it. Fields not given
/// stay; `options`, when given, replace the options, except secrets left out, which stay
/// (they are never shown, so a form cannot send them back); a secret given as `null` goes.
async fn change(
    State(web): WebState,
    authed: Authed,
    path: PathParams,
    headers: HeaderMap,
    bytes: BodyBytes,
) -> ApiResult {
    let name = channel_name(path)?;
    let change: ChannelChange = body(&headers, &bytes?)?;
    let viewer = &authed.viewer;
    let current = editable(&web, viewer, &name).await?;
    let view = &current.view;
    let text = |key: &str| view.get(key).and_then(Value::as_str).map(str::to_string);
    let kind = change.kind.or_else(|| text("type")).unwrap_or_default();
    let owner = owner_for(&web, viewer, change.owner, current.owner())?;
    if let Some(o) = owner.as_deref().filter(|o| Some(*o) != current.owner()) {
        let owned = all(&web)
            .await?
            .values()
            .filter(|c| c.source == Source::Api && c.owner() == Some(o))
            .count();
        if owned >= MAX_PER_OWNER {
            return Err(unprocessable(format!(
                "{o} owns {MAX_PER_OWNER} channels, the most one may"
            )));
        }
    }
    let options = match change.options {
        Some(options) => options,
        // The options as they are (the engine keeps the secrets left out).
        None => current.options(),
    };
    let def = definition(
        &kind,
        owner,
        change.private.unwrap_or(current.private()),
        change.min_level.or_else(|| text("min_level")),
        options,
    )?;
    let message = put(&web, &name, Some(def)).await?;
    tracing::info!(user = viewer.name(), "{message}");
    ok(shown(&web, &name, viewer).await?)
}

/// `DELETE /notification_channels/{name}`: its owner or an admin removes it. Users who chose
/// it keep the name in their list; it routes nowhere until a channel has it again.
async fn remove(State(web): WebState, authed: Authed, path: PathParams) -> ApiResult {
    let name = channel_name(path)?;
    editable(&web, &authed.viewer, &name).await?;
    let message = put(&web, &name, None).await?;
    tracing::info!(user = authed.viewer.name(), "{message}");
    ok(json!({"message": message}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain() {
        for good in ["ops", "ops-mail", "a.b_c", "9"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-x",
            ".hidden",
            "a/b",
            "a b",
            "x\n",
            "é",
            &"a".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn options_may_not_hold_the_top_level_fields() {
        let mut options = Map::new();
        options.insert("owner".into(), json!("mallory"));
        assert!(definition("slack", None, false, None, options).is_err());
        let mut options = Map::new();
        options.insert("url".into(), json!("https://x"));
        let def = definition("slack", Some("bob".into()), true, None, options).unwrap();
        assert_eq!(
            def,
            json!({"type": "slack", "url": "https://x", "owner": "bob", "private": true})
        );
    }
}
