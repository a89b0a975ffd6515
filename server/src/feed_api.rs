//! `GET /v1/feed`: the event feed for the operator's systems, read from the start or after a
//! cursor. A consumer that follows it while writes go on never misses an event and never sees
//! one twice (the cursor's guarantee is in `db/events.rs`).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::db::{FeedCursor, StoredEvent};
use crate::error::ApiError;
use crate::events::{rfc3339, Event, Payload, Subject, SubjectKind};
use crate::params::QueryParams;
use crate::AppState;

/// Events per page when the consumer does not say.
pub const DEFAULT_PAGE: u32 = 100;
/// The most events one page holds.
pub const MAX_PAGE: u32 = 1_000;

/// Where to read from.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    /// The `next` cursor of the previous page, or an event's `cursor`; from the start when
    /// absent.
    #[schemars(regex(pattern = r"^[0-9]{1,19}\.[0-9]{1,19}$"))]
    pub after: Option<String>,
    /// Events per page, 1 to 1000 (100 when absent).
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<u32>,
}

/// A page of the feed.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FeedPage {
    /// The events, in feed order.
    pub events: Vec<Event>,
    /// Pass it as `after` to read on (the same cursor when the page is empty).
    pub next: String,
    /// More events were waiting when this page was read.
    pub more: bool,
}

/// The feed handler.
pub async fn feed(
    State(app): State<Arc<AppState>>,
    QueryParams(query): QueryParams<FeedQuery>,
) -> Result<Json<FeedPage>, ApiError> {
    let after = match query.after.as_deref() {
        None => FeedCursor::default(),
        Some(raw) => FeedCursor::parse(raw).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_cursor",
                format!("{raw:?} is not a feed cursor: pass a `next` or an event's `cursor` as it was given"),
            )
            .field("after")
        })?,
    };
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_PAGE}, not {limit}"),
        )
        .field("limit"));
    }
    let mut rows = app.db.feed(after, i64::from(limit) + 1).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = rows.last().map_or(after, StoredEvent::cursor).encode();
    let events = rows.into_iter().map(event).collect::<Result<Vec<_>, _>>()?;
    Ok(Json(FeedPage { events, next, more }))
}

/// An event as stored, as the feed serves it.
pub fn event(row: StoredEvent) -> Result<Event, ApiError> {
    let payload: Value = serde_json::from_str(&row.payload)
        .map_err(|e| ApiError::internal(format!("event {}: payload: {e}", row.id)))?;
    let payload: Payload = serde_json::from_value(serde_json::json!({
        "type": row.type_name,
        "payload": payload,
    }))
    .map_err(|e| ApiError::internal(format!("event {}: {e}", row.id)))?;
    let kind: SubjectKind = serde_json::from_value(Value::String(row.subject_kind.clone()))
        .map_err(|e| ApiError::internal(format!("event {}: subject: {e}", row.id)))?;
    Ok(Event {
        cursor: row.cursor().encode(),
        id: row.id,
        occurred_at: rfc3339(row.occurred_ms),
        recorded_at: rfc3339(row.recorded_ms),
        subject: Subject {
            kind,
            id: row.subject_id,
        },
        payload,
    })
}
