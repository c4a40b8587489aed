//! The extractor of who is asking, by session token or cookie; the pages' and `/metrics`'
//! own extractors build on it.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use hb_web::access::Viewer;
use hb_web::auth;

use crate::reply::ApiError;
use crate::web::Web;

/// Who is asking, from the session token (header or cookie). Cookie-authenticated writes
/// must carry the session's CSRF token.
pub struct Authed {
    pub viewer: Viewer,
    /// The token, to end it at logout.
    pub token: Option<String>,
    /// The session's CSRF token, for pages to carry.
    pub csrf: Option<String>,
}

impl FromRequestParts<Arc<Web>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, web: &Arc<Web>) -> Result<Authed, ApiError> {
        let users = web.users();
        if users.is_empty() {
            return Ok(Authed {
                viewer: Viewer::Open,
                token: None,
                csrf: None,
            });
        }
        let header_text = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let bearer = header_text("authorization")
            .and_then(|v| v.strip_prefix("Bearer ").map(str::trim))
            .or_else(|| header_text("x-auth-token"));
        let (token, by_cookie) = match bearer {
            Some(t) => (t.to_string(), false),
            None => match parts
                .headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(|c| auth::cookie(c, auth::COOKIE))
            {
                Some(t) => (t.to_string(), true),
                None => {
                    return Err(ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "log in first (POST /api/0/auth/login)",
                    ));
                }
            },
        };
        let session = web
            .sessions()
            .touch(&token, hb_ipc::now_ms())
            .ok_or_else(|| {
                web.count("auth_bad_token");
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "the session is unknown or over; log in again",
                )
            })?;
        let Some(user) = users.get(&session.user) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "the user no longer exists",
            ));
        };
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if by_cookie && !safe {
            let sent = header_text("x-csrf-token").unwrap_or("");
            if !hb_proto::sign::constant_time_eq(sent.as_bytes(), session.csrf.as_bytes()) {
                web.count("csrf_refused");
                return Err(ApiError::forbidden(
                    "a write with the session cookie needs the session's X-CSRF-Token header",
                ));
            }
        }
        Ok(Authed {
            viewer: Viewer::User {
                name: session.user,
                admin: user.admin,
            },
            token: Some(token),
            csrf: Some(session.csrf),
        })
    }
}
