//! `/v1/webhooks`: the operator's systems subscribe a URL to the event feed's types, list and
//! inspect their subscriptions, remove them, and enable one that was disabled. The work is
//! `crate::webhooks`'s, shared with the CLI.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::json_body::JsonBody;
use crate::params::PathParams;
use crate::webhooks::{self, Created, Start, Subscription, SubscriptionStatus};
use crate::AppState;

/// A new subscription.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeRequest {
    /// Where to POST events: an absolute `http` URL (this build cannot deliver over TLS).
    pub url: String,
    /// The event types to deliver (see the feed's types); every type when absent or empty.
    #[serde(default)]
    pub event_types: Vec<String>,
    /// `beginning` (the default): every event of the feed, those recorded so far included;
    /// `now`: only events recorded from now on.
    #[serde(default)]
    pub from: Start,
}

/// A subscription's id in a path.
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookPath {
    /// The id.
    pub id: String,
}

/// Now, on the system clock the delivery worker keeps time by.
fn now_ms(_app: &AppState) -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// `POST /v1/webhooks`.
pub async fn create(
    State(app): State<Arc<AppState>>,
    JsonBody(request): JsonBody<SubscribeRequest>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let created = webhooks::subscribe(
        &app.db,
        &request.url,
        request.event_types,
        request.from,
        now_ms(&app),
    )
    .await?;
    tracing::info!(subscription = %created.subscription.id, url = %created.subscription.url, "webhook subscription created");
    Ok((StatusCode::CREATED, Json(created)))
}

/// `GET /v1/webhooks`.
pub async fn list(State(app): State<Arc<AppState>>) -> Result<Json<Vec<Subscription>>, ApiError> {
    Ok(Json(webhooks::list(&app.db).await?))
}

/// `GET /v1/webhooks/{id}`.
pub async fn get(
    State(app): State<Arc<AppState>>,
    PathParams(path): PathParams<WebhookPath>,
) -> Result<Json<SubscriptionStatus>, ApiError> {
    Ok(Json(webhooks::status(&app.db, &path.id).await?))
}

/// `DELETE /v1/webhooks/{id}`.
pub async fn remove(
    State(app): State<Arc<AppState>>,
    PathParams(path): PathParams<WebhookPath>,
) -> Result<Json<Subscription>, ApiError> {
    let removed = webhooks::remove(&app.db, &path.id).await?;
    tracing::info!(subscription = %removed.id, "webhook subscription removed");
    Ok(Json(removed))
}

/// `POST /v1/webhooks/{id}/enable`.
pub async fn enable(
    State(app): State<Arc<AppState>>,
    PathParams(path): PathParams<WebhookPath>,
) -> Result<Json<SubscriptionStatus>, ApiError> {
    let status = webhooks::enable(&app.db, &path.id, now_ms(&app)).await?;
    tracing::info!(subscription = %path.id, "webhook subscription enabled");
    Ok(Json(status))
}
