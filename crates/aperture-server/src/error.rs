//! Errors as the API answers them: `{"error": {"code": "...", "message": "..."}}`, with a
//! stable machine code per kind of problem and a message for people.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error response: its status, a stable code for programs and a message for people.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The machine code (`not_found`, `bad_query`, ...): part of the API, never reworded.
    pub code: &'static str,
    /// What went wrong, for people; never paths or backend details of internal errors.
    pub message: String,
}

/// A handler's result: the error side is answered as JSON with its status.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with its own status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 `bad_request`: the request is malformed or names something invalid.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401 `unauthorized`: no valid token or session; the answer asks for a bearer token.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403 `forbidden`: the token is valid but lacks a scope or may not see the collection.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404 `not_found`: no such asset, collection or object, or none the caller may see.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// A failure of ours. The details (paths, backend messages) go to the log under an id;
    /// the client gets the id to quote, not the details.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        let id = log_id();
        tracing::error!(%error, %id, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("internal error (logged as {id})"),
        )
    }
}

impl ApiError {
    /// The error as the API's JSON body.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": { "code": self.code, "message": self.message }
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.json();
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"aperture\""),
            );
        }
        response
    }
}

impl From<aperture_catalog::Error> for ApiError {
    fn from(e: aperture_catalog::Error) -> Self {
        use aperture_catalog::Error as E;
        match e {
            E::NotFound { .. } => Self::not_found(e.to_string()),
            E::Ambiguous { .. } | E::InvalidInput { .. } => Self::bad_request(e.to_string()),
            E::LegalHold { .. } => Self::new(StatusCode::CONFLICT, "legal_hold", e.to_string()),
            e => Self::internal(e),
        }
    }
}

impl From<aperture_search::Error> for ApiError {
    fn from(e: aperture_search::Error) -> Self {
        match e {
            aperture_search::Error::Query(_) => {
                Self::new(StatusCode::BAD_REQUEST, "bad_query", e.to_string())
            }
            aperture_search::Error::Catalog(e) => e.into(),
            aperture_search::Error::NoSuchAsset(m) => Self::not_found(m),
            aperture_search::Error::NoVectors(m) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "not_comparable", m)
            }
            aperture_search::Error::Unsupported(m) => {
                Self::new(StatusCode::NOT_IMPLEMENTED, "not_supported", m)
            }
            e => Self::internal(e),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::internal(e)
    }
}

impl From<aperture_lake::Error> for ApiError {
    fn from(e: aperture_lake::Error) -> Self {
        use aperture_lake::Error as E;
        match e {
            E::Catalog(e) => e.into(),
            E::Search(e) => e.into(),
            E::NoSuchAsset { .. } => Self::not_found(e.to_string()),
            E::Forbidden { message } => Self::forbidden(message),
            E::InvalidInput { .. } => Self::bad_request(e.to_string()),
            E::Translation { busy: true, .. } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "translation_busy",
                e.to_string(),
            ),
            E::Translation { .. } => {
                Self::new(StatusCode::BAD_GATEWAY, "translation_failed", e.to_string())
            }
            e => Self::internal(error_chain(&e)),
        }
    }
}

/// An error and its causes, for the log.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// An id to log a failure's details under, for the client to quote instead of seeing them.
pub(crate) fn log_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}
