//! The one error type of the HTTP API and its one mapping to answers: every refusal, whatever
//! produced it (a handler, an extractor, the access layer, the router, a timeout), reaches the
//! client as the same JSON shape with a stable machine code; internals are logged, never sent.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tournee_sync_core::rules::Violation;

use crate::words::{self, Lang};

tokio::task_local! {
    /// The language of the request being answered, which refusals' messages speak.
    static ANSWER_LANGUAGE: Lang;
}

/// Answers the request's refusals in its language (the mapping below reads it): the one
/// `Accept-Language` prefers among French and English; with neither, French on the public
/// routes, as `/v1/track` answers, and English on the others. Codes never change.
pub async fn in_request_language(request: Request, next: Next) -> Response {
    let header = request
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let lang = Lang::named_in(header).unwrap_or_else(|| {
        match crate::routes::audience(request.uri().path()) {
            "public" | "tracking page" => Lang::Fr,
            _ => Lang::En,
        }
    });
    ANSWER_LANGUAGE.scope(lang, next.run(request)).await
}

/// The body of every error answer, so a client reads one shape whatever failed.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    /// A stable machine code for programs to branch on, e.g. `invalid_s10`, `wrong_role`,
    /// `rule_violation`, `rate_limited`. Codes are never renamed; new ones may appear.
    pub code: String,
    /// What was wrong, for a person: names the field or the rule, in the request's language
    /// (`Content-Language`: French or English by `Accept-Language`; with neither, French on
    /// the public routes and English on the others).
    pub message: String,
    /// The field, parameter or header at fault, spelled as the client sent it (`comment`,
    /// `date`, `outcome.kind`, `s10`, `Authorization`), when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// What an endpoint answers when it cannot do what was asked.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    field: Option<String>,
    message: String,
    /// For 503: what failed inside, logged and never sent.
    internal: Option<String>,
    /// For 429: when to come back.
    retry_after: Option<Duration>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.internal {
            Some(detail) => write!(f, "{} ({detail})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            field: None,
            message: message.into(),
            internal: None,
            retry_after: None,
        }
    }

    /// 401: no token, or a token that does not verify.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message).field("Authorization")
    }

    /// 403: a valid token that may not do this.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// 400: the request is malformed.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404: nothing there (or nothing the caller may know of).
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 404 for a public lookup by number and postcode: one answer whether the number is unknown
    /// or the postcode wrong (or the notice card's number), so numbers cannot be probed.
    pub fn no_match() -> Self {
        Self::not_found(
            "no_match",
            "nothing matches this number and postcode: check both as printed on the notice card or in the sender's message",
        )
    }

    /// 409: the request conflicts with the current state.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 413: the body is over the limit.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", message)
    }

    /// 413 with a code of the route's own (e.g. `proof_too_large`).
    pub fn payload_too_large(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, code, message)
    }

    /// 410: it was there and is no longer (e.g. deleted after its retention period).
    pub fn gone(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, code, message)
    }

    /// 415: a body of a media type the route does not take.
    pub fn unsupported_media_type(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, code, message)
    }

    /// 408: the client stopped sending the body.
    pub fn body_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the body was not received in time; send the request again",
        )
    }

    /// 422: well formed, but it breaks a rule.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 422 for a broken rule, naming the field as the client sent it.
    pub fn violation(violation: &Violation, field_as_sent: &str) -> Self {
        Self::unprocessable(
            "rule_violation",
            format!("{field_as_sent}: {}", violation.reason),
        )
        .field(field_as_sent)
    }

    /// 429: too many requests; come back after `retry_after`.
    pub fn rate_limited(message: impl Into<String>, retry_after: Duration) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
        e.retry_after = Some(retry_after);
        e
    }

    /// 503: storage or another internal part failed; the client may retry, nothing was
    /// acknowledged. `detail` is logged, never sent.
    pub fn internal(detail: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the server could not complete the request; retry later",
        );
        e.internal = Some(detail.into());
        e
    }

    /// 503 for a server that is busy now: come back after `retry_after`.
    pub fn busy(message: impl Into<String>, retry_after: Duration) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message);
        e.retry_after = Some(retry_after);
        e
    }

    /// 503 with a message of our own (readiness): nothing internal to hide.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// Names the field, parameter or header at fault, as the client spelled it.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::internal(e.to_string())
    }
}

impl From<crate::write::WriteError> for ApiError {
    fn from(e: crate::write::WriteError) -> Self {
        use crate::write::WriteError;
        match e {
            WriteError::DocumentNotFound(_) => {
                ApiError::not_found("document_not_found", e.to_string())
            }
            WriteError::NotFound(_) => ApiError::not_found("not_found", e.to_string()),
            WriteError::Rule(v) => {
                ApiError::unprocessable("rule_violation", v.to_string()).field(v.field.as_str())
            }
            WriteError::AlreadyDelivered => ApiError::conflict("already_delivered", e.to_string()),
            WriteError::AlreadyDecided(why) => ApiError::conflict("already_decided", why),
            WriteError::Refused(why) => ApiError::unprocessable("refused_by_validator", why),
            WriteError::Storage(e) => e.into(),
            WriteError::Internal(why) => ApiError::internal(why),
        }
    }
}

impl From<crate::webhooks::WebhookError> for ApiError {
    fn from(e: crate::webhooks::WebhookError) -> Self {
        use crate::webhooks::WebhookError;
        match e {
            WebhookError::InvalidUrl { .. } => {
                ApiError::unprocessable("invalid_url", e.to_string()).field("url")
            }
            WebhookError::UnknownEventType { ref field, .. } => {
                let field = field.clone();
                ApiError::unprocessable("unknown_event_type", e.to_string()).field(field)
            }
            WebhookError::NotFound(_) => {
                ApiError::not_found("webhook_not_found", e.to_string()).field("id")
            }
            WebhookError::Storage(e) => e.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(detail) = &self.internal {
            tracing::error!(%detail, code = self.code, "internal error");
        }
        let lang = ANSWER_LANGUAGE.try_with(|lang| *lang).unwrap_or(Lang::En);
        let body = ErrorBody {
            code: self.code.to_string(),
            message: words::refusal(lang, self.code, self.field.as_deref(), &self.message),
            field: self.field,
        };
        let mut response = (self.status, Json(body)).into_response();
        response
            .extensions_mut()
            .insert(crate::request_log::RefusalCode(self.code));
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3: a 401 names the scheme the client must use.
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        headers.insert(
            header::CONTENT_LANGUAGE,
            HeaderValue::from_static(lang.code()),
        );
        // The message follows the request's language: a cache must not hand one language's
        // refusal to a request for the other.
        headers.append(header::VARY, HeaderValue::from_static("accept-language"));
        if let Some(after) = self.retry_after {
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}

/// The code and message for an answer a layer or the router produced with no body of ours
/// (405, 408, 413, a panic's 500…), so that no framework text reaches a client.
pub fn for_status(status: StatusCode) -> ApiError {
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("route_not_found", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this route does not take that method; see /openapi.json",
        ),
        StatusCode::REQUEST_TIMEOUT => (
            "request_timeout",
            "the request was not received in time; send it again",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("body_too_large", "the body is over the size limit"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "unsupported media type"),
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => (
            "unavailable",
            "the server could not complete the request in time; retry later",
        ),
        s if s.is_server_error() => (
            "internal",
            "the server could not complete the request; retry later",
        ),
        _ => ("bad_request", "the request could not be understood"),
    };
    ApiError::new(status, code, message)
}
