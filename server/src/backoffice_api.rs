//! The back office's API: the review queue with each entry's evidence, decisions, an item's
//! timeline, and search.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tournee_sync_core::model::{GeoPoint, ReferenceAddress};
use tournee_sync_core::{operations, rules, DocId, S10};

use crate::auth::{AuthUser, Claims, TokenRole};
use crate::db::{QueueEntryRow, SearchFilter, SearchRow};
use crate::error::ApiError;
use crate::item_view::{item_view, AttemptView, ChoiceView, ItemView};
use crate::json_body::JsonBody;
use crate::params::{PathParams, QueryParams};
use crate::review::{self, proposed_fields};
use crate::AppState;

/// Query of the queue list.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueQuery {
    /// One kind only; all when absent.
    pub kind: Option<QueueKind>,
    /// `open` when absent.
    pub status: Option<QueueStatus>,
}

/// What a queue entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueueKind {
    /// A postman's proposed correction.
    Correction,
    /// An attempt flagged by reconciliation.
    Attempt,
    /// A customer's dispute of an attempt.
    Dispute,
}

impl QueueKind {
    fn as_str(self) -> &'static str {
        match self {
            QueueKind::Correction => "correction",
            QueueKind::Attempt => "attempt",
            QueueKind::Dispute => "dispute",
        }
    }
}

/// Which entries to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueueStatus {
    /// Waiting for a decision.
    Open,
    /// Decided (approved, rejected or closed).
    Closed,
    /// Both.
    All,
}

/// A proposed correction with who proposed it and how many agree.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CorrectionEvidence {
    /// The proposed fields.
    pub proposed: Value,
    /// The postman.
    pub proposed_by: String,
    /// The device.
    pub device: String,
    /// When.
    pub proposed_at_ms: i64,
    /// Pending corrections of the same point proposing the same fields (this one included).
    pub same_proposals: usize,
    /// The distinct postmen behind them.
    pub proposers: Vec<String>,
    /// The address as it stands.
    pub current: Option<ReferenceAddress>,
}

/// A customer's dispute.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DisputeEvidence {
    /// The customer.
    pub customer: String,
    /// What they say.
    pub comment: String,
}

/// One review-queue entry with everything needed to decide it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct QueueEntry {
    /// Its id.
    pub id: i64,
    /// `correction`, `attempt` or `dispute`.
    pub kind: String,
    /// The correction or attempt id.
    pub subject_id: String,
    /// Why it is queued.
    pub reason: String,
    /// `open`, `approved`, `rejected` or `closed`.
    pub status: String,
    /// When it was queued.
    pub created_ms: i64,
    /// Who decided.
    pub decided_by: Option<String>,
    /// The decision's comment.
    pub comment: Option<String>,
    /// When it was decided.
    pub decided_at_ms: Option<i64>,
    /// Approved by corroboration rather than a reviewer.
    pub auto: bool,
    /// The delivery point concerned.
    pub delivery_point_id: Option<String>,
    /// The item concerned (attempts and disputes).
    pub item_id: Option<String>,
    /// The delivery point's reference pin.
    pub pin: Option<GeoPoint>,
    /// For a correction.
    pub correction: Option<CorrectionEvidence>,
    /// For a flagged or disputed attempt.
    pub attempt: Option<AttemptView>,
    /// For a dispute.
    pub dispute: Option<DisputeEvidence>,
}

/// A decision on a queue entry.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// `approve` or `reject`.
    pub decision: Decision,
    /// Why; shown to the postman for a correction.
    #[schemars(length(min = 1))]
    pub comment: String,
}

/// Approve or reject.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Accept the field update.
    Approve,
    /// Refuse it.
    Reject,
}

/// An item's whole story for a reviewer.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ItemTimeline {
    /// The item, its status and events.
    pub item: ItemView,
    /// Every attempt, oldest first.
    pub attempts: Vec<AttemptView>,
    /// Every choice, oldest first.
    pub choices: Vec<ChoiceView>,
    /// The delivery point's reference address.
    pub address: Option<ReferenceAddress>,
}

/// Search parameters; at least one.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// S10 number.
    #[schemars(length(min = 1))]
    pub s10: Option<String>,
    /// Part of the address.
    #[schemars(length(min = 1))]
    pub address: Option<String>,
    /// Postman id.
    #[schemars(length(min = 1))]
    pub postman: Option<String>,
    /// Round id.
    #[schemars(length(min = 1))]
    pub round: Option<String>,
    /// Round day, `YYYY-MM-DD`.
    #[schemars(length(min = 1))]
    pub date: Option<String>,
}

fn staff(claims: &Claims) -> Result<&str, ApiError> {
    if claims.role != TokenRole::BackOffice {
        return Err(ApiError::Forbidden(
            "this route is for the back office".into(),
        ));
    }
    Ok(&claims.sub)
}

async fn address_of(app: &AppState, point: &str) -> Result<Option<ReferenceAddress>, ApiError> {
    let Ok(id) = DocId::delivery_point(point) else {
        return Ok(None);
    };
    let Some(doc) = app.docs.load(&app.db, &id).await? else {
        return Ok(None);
    };
    Ok(operations::read_delivery_point(&doc)
        .ok()
        .map(|d| d.reference))
}

async fn entry_view(app: &AppState, row: QueueEntryRow) -> Result<QueueEntry, ApiError> {
    let mut entry = QueueEntry {
        id: row.id,
        kind: row.kind.clone(),
        subject_id: row.subject_id.clone(),
        reason: row.reason.clone(),
        status: row.status.clone(),
        created_ms: row.created_ms,
        decided_by: row.decided_by.clone(),
        comment: row.decision_comment.clone(),
        decided_at_ms: row.decided_at_ms,
        auto: row.auto_approved,
        delivery_point_id: None,
        item_id: None,
        pin: None,
        correction: None,
        attempt: None,
        dispute: None,
    };
    if row.kind == "correction" {
        if let Some((correction, _)) = app.db.correction(&row.subject_id).await? {
            let same = review::same_proposals(app, &correction).await?;
            let current = address_of(app, &correction.delivery_point_id).await?;
            entry.pin = current.as_ref().and_then(|a| a.pin);
            entry.delivery_point_id = Some(correction.delivery_point_id.clone());
            entry.correction = Some(CorrectionEvidence {
                proposed: proposed_fields(&correction.record),
                proposed_by: correction.proposed_by,
                device: correction.device,
                proposed_at_ms: correction.proposed_at_ms,
                same_proposals: same.corrections.len().max(1),
                proposers: same.postmen.into_iter().collect(),
                current,
            });
        }
        return Ok(entry);
    }
    if let Some(attempt) = app.db.attempt(&row.subject_id).await? {
        if let Some(info) = app.db.item_info(&attempt.item_id).await? {
            entry.pin = info.pin.map(|(lat, lon)| GeoPoint { lat, lon });
            entry.delivery_point_id = Some(info.delivery_point);
        }
        entry.item_id = Some(attempt.item_id.clone());
        entry.attempt = Some(AttemptView::from(&attempt));
    }
    if row.kind == "dispute" {
        let detail: Value = row
            .detail
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or(Value::Null);
        entry.dispute = Some(DisputeEvidence {
            customer: detail["customer"].as_str().unwrap_or_default().to_string(),
            comment: detail["comment"].as_str().unwrap_or_default().to_string(),
        });
    }
    Ok(entry)
}

/// `GET /v1/backoffice/queue`: entries to review, newest first.
pub async fn queue(
    State(app): State<Arc<AppState>>,
    AuthUser(claims): AuthUser,
    QueryParams(query): QueryParams<QueueQuery>,
) -> Result<Json<Vec<QueueEntry>>, ApiError> {
    staff(&claims)?;
    let status = match query.status.unwrap_or(QueueStatus::Open) {
        QueueStatus::Open => Some("open"),
        QueueStatus::Closed => Some("closed"),
        QueueStatus::All => None,
    };
    let rows = app
        .db
        .queue(query.kind.map(QueueKind::as_str), status)
        .await?;
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        entries.push(entry_view(&app, row).await?);
    }
    Ok(Json(entries))
}

async fn load_entry(app: &AppState, id: i64) -> Result<QueueEntryRow, ApiError> {
    app.db
        .queue_entry(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("queue entry {id} not found")))
}

/// `GET /v1/backoffice/queue/{entry}`: one entry with its evidence.
pub async fn queue_entry(
    State(app): State<Arc<AppState>>,
    AuthUser(claims): AuthUser,
    PathParams(id): PathParams<i64>,
) -> Result<Json<QueueEntry>, ApiError> {
    staff(&claims)?;
    let row = load_entry(&app, id).await?;
    Ok(Json(entry_view(&app, row).await?))
}

/// `POST /v1/backoffice/queue/{entry}/decision`: approve or reject, with a comment.
pub async fn decide(
    State(app): State<Arc<AppState>>,
    AuthUser(claims): AuthUser,
    PathParams(id): PathParams<i64>,
    JsonBody(request): JsonBody<DecisionRequest>,
) -> Result<Json<QueueEntry>, ApiError> {
    let staff = staff(&claims)?;
    let row = load_entry(&app, id).await?;
    review::decide(
        &app,
        staff,
        &row,
        request.decision == Decision::Approve,
        &request.comment,
    )
    .await?;
    let row = load_entry(&app, id).await?;
    Ok(Json(entry_view(&app, row).await?))
}

/// `GET /v1/backoffice/items/{s10}`: an item's timeline.
pub async fn item_timeline(
    State(app): State<Arc<AppState>>,
    AuthUser(claims): AuthUser,
    Path(s10): Path<String>,
) -> Result<Json<ItemTimeline>, ApiError> {
    staff(&claims)?;
    let item = S10::parse(&s10).map_err(|v| ApiError::NotFound(format!("item {s10}: {v}")))?;
    let view = item_view(&app, &item).await?;
    let attempts = app.db.attempts_for_item(&item.to_string()).await?;
    let choices = app.db.choices_for_item(&item.to_string()).await?;
    let address = address_of(&app, &view.delivery_point).await?;
    Ok(Json(ItemTimeline {
        item: view,
        attempts: attempts.iter().map(AttemptView::from).collect(),
        choices: choices.iter().map(ChoiceView::from).collect(),
        address,
    }))
}

/// `GET /v1/backoffice/search`: items by S10 number, address, postman, round and date.
pub async fn search(
    State(app): State<Arc<AppState>>,
    AuthUser(claims): AuthUser,
    QueryParams(query): QueryParams<SearchQuery>,
) -> Result<Json<Vec<SearchRow>>, ApiError> {
    staff(&claims)?;
    let clean = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let s10 = clean(query.s10)
        .map(|s| {
            S10::parse(&s)
                .map(|item| item.to_string())
                .map_err(|v| ApiError::BadRequest(format!("s10: {v}")))
        })
        .transpose()?;
    let date = clean(query.date);
    if let Some(day) = &date {
        rules::date(rules::Field::Date, day).map_err(|v| ApiError::BadRequest(v.to_string()))?;
    }
    let filter = SearchFilter {
        s10,
        address: clean(query.address),
        postman: clean(query.postman),
        round: clean(query.round),
        date,
    };
    if filter.s10.is_none()
        && filter.address.is_none()
        && filter.postman.is_none()
        && filter.round.is_none()
        && filter.date.is_none()
    {
        return Err(ApiError::BadRequest(
            "give at least one of s10, address, postman, round, date".into(),
        ));
    }
    Ok(Json(app.db.search(&filter).await?))
}
