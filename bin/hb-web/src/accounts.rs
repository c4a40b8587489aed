//! Users: logging in and out, the user list (for admins), and what a user may see and
//! change of themselves.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use hb_child::passwd::PasswordHash;
use hb_web::access::Viewer;
use hb_web::auth;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::authed::Authed;
use crate::reply::{ApiError, ApiResult, BodyBytes, body, ok};
use crate::tls::Peer;
use crate::web::{Web, WebState};

pub fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/api/0/auth/login", post(login))
        .route("/api/0/auth/logout", post(logout))
        .route("/api/0/users", get(users))
        .route("/api/0/users/me", get(me).put(change_me))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    username: String,
    password: String,
}

async fn login(
    State(web): WebState,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
    bytes: BodyBytes,
) -> ApiResult {
    let users = web.users();
    if users.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no users are configured: the server runs in unauthenticated mode",
        ));
    }
    let Login { username, password } = body(&headers, &bytes?)?;
    let now = hb_ipc::now_ms();
    let address = peer.ip().to_canonical();
    if let Err(wait_ms) = web.limiter().take(address, &username, now) {
        web.count("login_limited");
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed logins; wait and try again",
        );
        e.retry_after_s = Some(wait_ms.div_ceil(1000));
        return Err(e);
    }
    let account = users.get(&username).cloned();
    let matched = web
        .verify(account.as_ref().and_then(|a| a.hash.clone()), password)
        .await?;
    let Some(account) = account.filter(|_| matched) else {
        web.count("login_failed");
        tracing::warn!(
            user = ?username.chars().take(64).collect::<String>(),
            from = %address,
            "Failed login."
        );
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong user name or password",
        ));
    };
    web.limiter().refund(address, &username, now);
    let (token, csrf) = web
        .sessions()
        .start(&username, now)
        .map_err(|e| ApiError::engine(format!("no randomness for a session: {e}")))?;
    web.count("logins");
    tracing::info!(user = %username, from = %address, "Logged in.");
    let mut response = axum::Json(json!({
        "token": token,
        "csrf_token": csrf,
        "expires_in": auth::SESSION_IDLE_MS / 1000,
        "user": user_json(&username, &account),
    }))
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&auth::set_cookie(&token, web.tls())) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

async fn logout(State(web): WebState, authed: Authed) -> ApiResult {
    if let Some(token) = &authed.token {
        web.sessions().end(token);
    }
    let mut response = axum::Json(json!({"ok": true})).into_response();
    if let Ok(v) = HeaderValue::from_str(&auth::clear_cookie(web.tls())) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

fn user_json(name: &str, a: &crate::web::Account) -> Value {
    json!({
        "name": name,
        "full_name": a.full_name,
        "avatar": a.avatar,
        "admin": a.admin,
        "notification_channels": a.notification_channels,
    })
}

async fn users(State(web): WebState, authed: Authed) -> ApiResult {
    if !authed.viewer.is_admin() {
        return Err(ApiError::forbidden("the user list is for admins"));
    }
    ok(web
        .users()
        .iter()
        .map(|(name, a)| user_json(name, a))
        .collect())
}

async fn me(State(web): WebState, authed: Authed) -> ApiResult {
    match &authed.viewer {
        Viewer::Open => ok(json!({
            "name": "anonymous",
            "admin": true,
            "unauthenticated": true,
        })),
        Viewer::User { name, .. } => match web.users().get(name) {
            Some(a) => ok(user_json(name, a)),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "the user no longer exists",
            )),
        },
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current: String,
    new: String,
}

/// What a user may change of themselves; each field given is changed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MeChange {
    #[serde(default, deserialize_with = "hb_ipc::edge::given")]
    full_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "hb_ipc::edge::given")]
    avatar: Option<Option<String>>,
    notification_channels: Option<Vec<String>>,
    password: Option<PasswordChange>,
}

/// The hash of `name`'s new password, once the current one is checked like a login.
async fn new_password(
    web: &Web,
    name: &str,
    peer: SocketAddr,
    p: PasswordChange,
) -> Result<PasswordHash, ApiError> {
    let count = p.new.chars().count();
    if !(8..=1024).contains(&count) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the new password must be 8 to 1024 characters",
        ));
    }
    let address = peer.ip().to_canonical();
    let now = hb_ipc::now_ms();
    if let Err(wait_ms) = web.limiter().take(address, name, now) {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many wrong passwords; wait and try again",
        );
        e.retry_after_s = Some(wait_ms.div_ceil(1000));
        return Err(e);
    }
    let hash = web.users().get(name).and_then(|a| a.hash.clone());
    if !web.verify(hash, p.current).await? {
        tracing::warn!(user = %name, from = %address, "Wrong current password in a password change.");
        return Err(ApiError::forbidden("the current password is wrong"));
    }
    let hashed = web
        .hash(p.new)
        .await
        .ok_or_else(|| ApiError::engine("could not hash the password"))?;
    web.limiter().refund(address, name, now);
    Ok(hashed)
}

/// `PUT /users/me`: name, avatar, channels (unknown ones are dropped, as hbd did), password
/// (the current one is checked like a login; the new one ends every other session and the
/// answer carries a new token).
async fn change_me(
    State(web): WebState,
    authed: Authed,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
    bytes: BodyBytes,
) -> ApiResult {
    let Viewer::User { name, .. } = &authed.viewer else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no users are configured: there is no one to change",
        ));
    };
    let change: MeChange = body(&headers, &bytes?)?;
    let unprocessable = |m: &str| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m.to_string());
    if change.full_name.is_none()
        && change.avatar.is_none()
        && change.notification_channels.is_none()
        && change.password.is_none()
    {
        return Err(unprocessable("nothing to change"));
    }
    let config = web.config();
    let Some(file_user) = config.users.get(name) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "the user no longer exists",
        ));
    };
    if !web.users_loaded() {
        let mut e = ApiError::engine("users' earlier changes are not read yet; try again shortly");
        e.retry_after_s = Some(2);
        return Err(e);
    }
    // Applied to what is stored only after the awaits below, so a concurrent change is kept.
    let mut changes: Vec<(&'static str, Value)> = Vec::new();
    let mut set = |field: &'static str, value: Value| changes.push((field, value));
    if let Some(full_name) = change.full_name {
        if full_name.as_ref().is_some_and(|n| n.chars().count() > 200) {
            return Err(unprocessable("full_name is at most 200 characters"));
        }
        set("full_name", json!(full_name));
    }
    if let Some(avatar) = change.avatar {
        if avatar.as_ref().is_some_and(|a| a.len() > 8192) {
            return Err(unprocessable(
                "avatar is at most 8192 bytes (a path, URL or data URI)",
            ));
        }
        set("avatar", json!(avatar));
    }
    if let Some(channels) = change.notification_channels {
        let known = crate::channel_list::choosable(&web, &authed.viewer, channels).await?;
        set("notification_channels", json!(known));
    }
    let new_session = change.password.is_some();
    if let Some(p) = change.password {
        let hashed = new_password(&web, name, peer, p).await?;
        set("password", json!(hashed.to_string()));
    }
    let mut stored = web.chosen().get(name).cloned();
    for (field, value) in changes {
        stored = Some(hb_web::users::with_field(
            stored.as_ref(),
            file_user,
            field,
            value,
        ));
    }
    web.put_user(name, stored).await?;
    let stale = web.rebuild();
    if !stale.is_empty() {
        let w = web.clone();
        tokio::spawn(async move { w.clean(stale).await });
    }
    let users = web.users();
    let Some(account) = users.get(name) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "the user no longer exists",
        ));
    };
    let mut answer = json!({"ok": true, "user": user_json(name, account)});
    let mut response_cookie = None;
    if new_session {
        // Every session of the user ended with the old password; this one goes on anew.
        let (token, csrf) = web
            .sessions()
            .start(name, hb_ipc::now_ms())
            .map_err(|e| ApiError::engine(format!("no randomness for a session: {e}")))?;
        answer["token"] = json!(token);
        answer["csrf_token"] = json!(csrf);
        response_cookie = HeaderValue::from_str(&auth::set_cookie(&token, web.tls())).ok();
        tracing::info!(user = %name, "Password changed; other sessions ended.");
    }
    let mut response = axum::Json(answer).into_response();
    if let Some(c) = response_cookie {
        response.headers_mut().insert(header::SET_COOKIE, c);
    }
    Ok(response)
}
