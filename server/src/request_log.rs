//! One span and one log line per request: a request id (taken from `x-request-id` when the
//! client or a proxy sent a sane one, made up otherwise, and returned in the answer), the
//! method, the route template (never the raw URI: query strings carry search terms), the
//! status, the latency, the caller's role and principal once the access layer knows them, and
//! a refusal's code. The same figures feed the per-route metrics.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::{field, Instrument};

use crate::metrics::RouteLabels;
use crate::AppState;

/// The header that carries a request's id, both ways.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The stable code of a refusal, put on the answer for the log line (see `ApiError`).
#[derive(Debug, Clone, Copy)]
pub struct RefusalCode(pub &'static str);

/// A request id as received, if it is one we may log and echo: 1 to 64 letters, digits, `-`,
/// `_`, `.`.
fn acceptable(id: &HeaderValue) -> Option<String> {
    let id = id.to_str().ok()?;
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    ok.then(|| id.to_string())
}

/// The layer over every route.
pub async fn log_requests(
    State(app): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(acceptable)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unknown route", |p| p.as_str())
        .to_string();
    let method = request.method().clone();
    if let Ok(value) = HeaderValue::from_str(&id) {
        request.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %method,
        route = %route,
        role = field::Empty,
        principal = field::Empty,
    );
    let mut response = next.run(request).instrument(span.clone()).await;
    let latency = started.elapsed();
    let status = response.status();
    let code = response.extensions().get::<RefusalCode>().map(|c| c.0);
    span.in_scope(|| {
        let latency_ms = latency.as_secs_f64() * 1000.0;
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), latency_ms, code, "answered");
        } else {
            tracing::info!(status = status.as_u16(), latency_ms, code, "answered");
        }
    });
    let labels = RouteLabels {
        method: method.to_string(),
        route,
        status: status.as_u16(),
    };
    app.metrics.requests.get_or_create(&labels).inc();
    app.metrics
        .request_seconds
        .get_or_create(&labels)
        .observe(latency.as_secs_f64());
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    response
}
