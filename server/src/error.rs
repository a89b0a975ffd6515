//! The one error type of the HTTP API: a status and a message for the client; internals are
//! logged and never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use schemars::JsonSchema;
use serde::Serialize;

/// The body of every error answer, so a client reads one shape whatever failed.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ErrorBody {
    /// What was wrong, for a person: names the field or the rule.
    pub error: String,
}

/// What an endpoint answers when it cannot do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No token, or a token that does not verify (expired, bad signature, wrong audience…).
    #[error("{0}")]
    Unauthorized(String),
    /// A valid token that may not do this (wrong role, revoked device, document out of scope).
    #[error("{0}")]
    Forbidden(String),
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The request is well formed but breaks a rule.
    #[error("{0}")]
    Unprocessable(String),
    /// Nothing there.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (e.g. a choice for a delivered item).
    #[error("{0}")]
    Conflict(String),
    /// Storage failed; the client may retry, nothing was acknowledged.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Internal(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<crate::db::WriteError> for ApiError {
    fn from(e: crate::db::WriteError) -> Self {
        match e {
            crate::db::WriteError::Conflict(why) => ApiError::Conflict(why),
            crate::db::WriteError::Database(e) => e.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = match &self {
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "the server could not complete the request; retry later".to_string()
            }
            other => other.to_string(),
        };
        let mut response = (self.status(), Json(ErrorBody { error: message })).into_response();
        if matches!(self, ApiError::Unauthorized(_)) {
            // RFC 6750 §3: a 401 names the scheme the client must use.
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
