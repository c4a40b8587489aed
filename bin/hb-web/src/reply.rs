//! How handlers answer: JSON bodies, and errors as `{"error": "..."}` with the status that
//! says what went wrong; how a request's JSON body and `?limit=` are read.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hb_ipc::edge::Answer;
use serde::Deserialize;
use serde_json::{Value, json};

/// An error answer: a status and a message for the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            retry_after_s: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, what)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    /// The engine (or the machine) could not do it: 503.
    pub fn engine(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// What the client is told.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response =
            (self.status, axum::Json(json!({ "error": self.message }))).into_response();
        if let Some(s) = self.retry_after_s
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> ApiError {
        ApiError::bad_request(format!("bad path: {}", e.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> ApiError {
        ApiError::bad_request(format!("bad query string: {}", e.body_text()))
    }
}

impl From<BytesRejection> for ApiError {
    fn from(e: BytesRejection) -> ApiError {
        ApiError::new(e.status(), format!("bad body: {}", e.body_text()))
    }
}

pub type ApiResult = Result<Response, ApiError>;

// A handler takes its path, query string and body as these, not as plain extractors, so that
// it checks them in its own order and a bad one is answered in JSON like any other error.

/// The parameters in a request's path, or why they do not parse.
pub type PathParams<T = String> = Result<Path<T>, PathRejection>;
/// The parameters in a request's query string, or why they do not parse.
pub type QueryParams<T> = Result<Query<T>, QueryRejection>;
/// A request's body, or why it could not be read (too large, cut off).
pub type BodyBytes = Result<Bytes, BytesRejection>;

pub fn ok(value: Value) -> ApiResult {
    Ok(axum::Json(value).into_response())
}

pub fn status(code: StatusCode, value: Value) -> ApiResult {
    Ok((code, axum::Json(value)).into_response())
}

/// An answer of the engine that does not fit the question: its own error text, or a
/// generic one, as 500.
pub fn unexpected(answer: Answer) -> ApiError {
    match answer {
        Answer::Error { message } => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message),
        _ => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected answer from the engine",
        ),
    }
}

/// The engine's refusal as `code`, with its reason.
pub fn refused(code: StatusCode) -> impl FnOnce(String) -> ApiError {
    move |message| ApiError::new(code, message)
}

/// A JSON body of type `T`: 415 unless it says JSON, 400 unless it parses, 422 when it
/// parses but does not fit `T` (a missing or unknown field, a wrong type).
pub fn body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<T, ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let v = v.split(';').next().unwrap_or("").trim();
            v.eq_ignore_ascii_case("application/json")
        });
    if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be JSON (Content-Type: application/json)",
        ));
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    serde_json::from_value(value).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the body does not fit: {e}"),
        )
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    limit: Option<u32>,
}

/// `?limit=`, with a default and a cap; 0 and values past the cap are errors.
pub fn limit(query: QueryParams<Limit>, default: u32, cap: u32) -> Result<u32, ApiError> {
    let Query(Limit { limit }) = query?;
    checked_limit(limit, default, cap)
}

/// A `limit` given or not: the default, or 1 to `cap`, else 400.
pub fn checked_limit(limit: Option<u32>, default: u32, cap: u32) -> Result<u32, ApiError> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=cap).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::bad_request(format!(
            "limit must be 1 to {cap}, not {n}"
        ))),
    }
}

/// Anything else under `/api/`: 404 in JSON.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint (see /api/0/openapi.json)")
}

/// A known path with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here")
}
