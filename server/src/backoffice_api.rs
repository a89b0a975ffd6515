//! The back office's API: the review queue with each entry's evidence, decisions, an item's
//! timeline, and search.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header::LINK;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tournee_sync_core::model::{AccessNotes, GeoPoint, ReferenceAddress};
use tournee_sync_core::rules::patterns;
use tournee_sync_core::{operations, rules, DocId, S10};

use crate::auth::AuthUser;
use crate::db::{
    AttemptAtPoint, AttemptRow, CorrectionRow, CorrectionStatus, EntryStatus, QueueEntryRow,
    QueueKind, SearchFilter, SearchRow,
};
use crate::error::ApiError;
use crate::item_view::{item_view, AttemptView, ChoiceView, DisputeView, ItemView};
use crate::json_body::JsonBody;
use crate::params::{self, PathParams, QueryParams};
use crate::proofs::{self, ProofView};
use crate::review::{self, proposed_fields};
use crate::AppState;

/// Entries or rows a list answers unless `limit` says otherwise.
const PAGE: u32 = 50;
/// The most a list answers at once.
const MAX_PAGE: u32 = 200;

/// Query of the queue list. Pages: newest first; when there are more, the answer's `Link`
/// header (`rel="next"`) gives the next page's URL, with `before` set.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueQuery {
    /// One kind only; all when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<QueueKind>,
    /// `open` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<QueueStatus>,
    /// At most this many entries (1 to 200; 50 unless given).
    #[schemars(range(min = 1, max = 200))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Only entries queued before this one (its id): the previous page's last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<i64>,
}

/// Which entries to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
    /// Door code, floor and mailbox position as they stand, beside the proposal, so that an
    /// approval never overwrites a value the reviewer did not see.
    pub current_access: Option<AccessNotes>,
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
    /// What it is about.
    pub kind: QueueKind,
    /// The correction or attempt id.
    pub subject_id: String,
    /// Why it is queued.
    pub reason: String,
    /// Why, as a stable code for words: `correction_proposed`, `far_from_pin`,
    /// `notice_without_number`, `notice_without_place`, `disputed` (or `flagged`).
    pub reason_code: String,
    /// `open`, `approved`, `rejected` or `closed`.
    pub status: EntryStatus,
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
    /// Its reference address on one line (number, street, postcode, town), as its document
    /// holds it now.
    pub address: Option<String>,
    /// The item concerned (attempts and disputes).
    pub item_id: Option<String>,
    /// The delivery point's reference pin.
    pub pin: Option<GeoPoint>,
    /// For a correction.
    pub correction: Option<CorrectionEvidence>,
    /// For a flagged or disputed attempt.
    pub attempt: Option<AttemptEvidence>,
    /// For a dispute.
    pub dispute: Option<DisputeEvidence>,
}

/// An attempt with the photos and signature its postman took, for a reviewer.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AttemptEvidence {
    /// The attempt.
    #[serde(flatten)]
    pub attempt: AttemptView,
    /// The proofs it names, each with the URL of its file once the phone uploaded it (null
    /// before, and after retention deleted it).
    pub proofs: Vec<ProofView>,
}

/// A decision on a queue entry.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// `approve` or `reject`.
    pub decision: Decision,
    /// Why; shown to the postman for a correction.
    #[schemars(length(min = 1, max = 500), regex(pattern = patterns::REQUIRED_TEXT))]
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
    /// Every attempt, oldest first, with its proofs.
    pub attempts: Vec<AttemptEvidence>,
    /// Every choice, oldest first.
    pub choices: Vec<ChoiceView>,
    /// The delivery point's reference address.
    pub address: Option<ReferenceAddress>,
    /// Customers' disputes of the item's attempts, with their decisions.
    pub disputes: Vec<DisputeView>,
}

/// Search parameters; at least one filter. Pages: by item number; when there are more, the
/// answer's `Link` header (`rel="next"`) gives the next page's URL, with `after` set.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// S10 number, in either case.
    #[schemars(regex(pattern = patterns::S10))]
    pub s10: Option<String>,
    /// Part of the address.
    #[schemars(length(max = 500), regex(pattern = patterns::REQUIRED_TEXT))]
    pub address: Option<String>,
    /// Postman id.
    #[schemars(length(max = 500), regex(pattern = patterns::REQUIRED_TEXT))]
    pub postman: Option<String>,
    /// Round id.
    #[schemars(length(max = 500), regex(pattern = patterns::REQUIRED_TEXT))]
    pub round: Option<String>,
    /// Round day, `YYYY-MM-DD`.
    #[schemars(regex(pattern = patterns::DATE), extend("format" = "date"))]
    pub date: Option<String>,
    /// At most this many rows (1 to 200; 50 unless given).
    #[schemars(range(min = 1, max = 200))]
    pub limit: Option<u32>,
    /// Only items whose S10 number comes after this one: the previous page's last (its check
    /// digit is not checked: it is a place in the order).
    #[schemars(regex(pattern = patterns::S10))]
    pub after: Option<String>,
}

/// The page size asked for, checked.
fn page_size(limit: Option<u32>) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("limit: {limit} is not between 1 and {MAX_PAGE}"),
        )
        .field("limit"));
    }
    Ok(i64::from(limit))
}

/// A list as JSON, with a `Link: <…>; rel="next"` header to the next page when there is one.
fn paged<T: Serialize, Q: Serialize>(path: &str, list: Vec<T>, next: Option<Q>) -> Response {
    let link = next
        .and_then(|query| serde_urlencoded::to_string(query).ok())
        .and_then(|query| HeaderValue::from_str(&format!("<{path}?{query}>; rel=\"next\"")).ok());
    let mut response = Json(list).into_response();
    if let Some(link) = link {
        response.headers_mut().insert(LINK, link);
    }
    response
}

/// A delivery point's reference address and access data as its document holds them now.
async fn address_of(
    app: &AppState,
    point: &str,
) -> Result<Option<(ReferenceAddress, AccessNotes)>, ApiError> {
    Ok(addresses_of(app, [point]).await?.remove(point))
}

/// [`address_of`] for several delivery points, their documents loaded together: by point id.
async fn addresses_of<'a>(
    app: &AppState,
    points: impl IntoIterator<Item = &'a str>,
) -> Result<HashMap<String, (ReferenceAddress, AccessNotes)>, ApiError> {
    let ids: Vec<DocId> = points
        .into_iter()
        .filter_map(|point| DocId::delivery_point(point).ok())
        .collect();
    let docs = app.docs.load_many(&app.db, &ids).await?;
    Ok(docs
        .into_iter()
        .filter_map(|(id, doc)| {
            let point = operations::read_delivery_point(&doc).ok()?;
            Some((id.key().to_string(), (point.reference, point.access)))
        })
        .collect())
}

/// The views of queue entries, in their order, with the evidence of all of them read at once:
/// the same few queries whatever the number of entries (the corrections, their points'
/// corrections, the attempts with their points, and the points' documents).
async fn entry_views(
    app: &AppState,
    rows: Vec<QueueEntryRow>,
) -> Result<Vec<QueueEntry>, ApiError> {
    let subjects = |correction: bool| -> Vec<&str> {
        rows.iter()
            .filter(|row| (row.kind == QueueKind::Correction) == correction)
            .map(|row| row.subject_id.as_str())
            .collect()
    };
    let corrections: HashMap<String, CorrectionRow> = app
        .db
        .corrections(&subjects(true))
        .await?
        .into_iter()
        .map(|(row, _)| (row.id.clone(), row))
        .collect();
    let points: BTreeSet<&str> = corrections
        .values()
        .map(|c| c.delivery_point_id.as_str())
        .collect();
    let points: Vec<&str> = points.into_iter().collect();
    let attempts: HashMap<String, AttemptAtPoint> = app
        .db
        .attempts_at_points(&subjects(false))
        .await?
        .into_iter()
        .map(|a| (a.attempt.id.clone(), a))
        .collect();
    let every_point: BTreeSet<&str> = points
        .iter()
        .copied()
        .chain(
            attempts
                .values()
                .filter_map(|a| a.delivery_point.as_deref()),
        )
        .collect();
    let mut of_points: HashMap<String, Vec<(CorrectionRow, CorrectionStatus)>> = HashMap::new();
    for (row, status) in app.db.corrections_for_points(&points).await? {
        of_points
            .entry(row.delivery_point_id.clone())
            .or_default()
            .push((row, status));
    }
    let addresses = addresses_of(app, every_point).await?;
    let of_attempts: Vec<&AttemptRow> = attempts.values().map(|a| &a.attempt).collect();
    let proofs = proofs::views_of(&app.db, &of_attempts).await?;
    let evidence = Evidence {
        corrections: &corrections,
        of_points: &of_points,
        addresses: &addresses,
        attempts: &attempts,
        proofs: &proofs,
    };
    Ok(rows.iter().map(|row| entry_view(&evidence, row)).collect())
}

/// What [`entry_views`] read for the entries, by correction, point and attempt id.
struct Evidence<'a> {
    corrections: &'a HashMap<String, CorrectionRow>,
    of_points: &'a HashMap<String, Vec<(CorrectionRow, CorrectionStatus)>>,
    addresses: &'a HashMap<String, (ReferenceAddress, AccessNotes)>,
    attempts: &'a HashMap<String, AttemptAtPoint>,
    proofs: &'a HashMap<String, Vec<ProofView>>,
}

/// One entry's view from the evidence read for it.
fn entry_view(evidence: &Evidence<'_>, row: &QueueEntryRow) -> QueueEntry {
    let mut entry = QueueEntry {
        id: row.id,
        kind: row.kind,
        subject_id: row.subject_id.clone(),
        reason: row.reason.clone(),
        reason_code: match row.kind {
            QueueKind::Correction => "correction_proposed",
            QueueKind::Dispute => "disputed",
            QueueKind::Attempt => crate::reconcile::attempt_flag(&row.reason),
        }
        .to_string(),
        status: row.status,
        created_ms: row.created_ms,
        decided_by: row.decided_by.clone(),
        comment: row.decision_comment.clone(),
        decided_at_ms: row.decided_at_ms,
        auto: row.auto_approved,
        delivery_point_id: None,
        address: None,
        item_id: None,
        pin: None,
        correction: None,
        attempt: None,
        dispute: None,
    };
    if row.kind == QueueKind::Correction {
        if let Some(correction) = evidence.corrections.get(&row.subject_id) {
            let of_point = evidence
                .of_points
                .get(&correction.delivery_point_id)
                .map_or(&[][..], Vec::as_slice);
            let same = review::same_proposals_among(correction, of_point);
            let (current, current_access) = evidence
                .addresses
                .get(&correction.delivery_point_id)
                .cloned()
                .unzip();
            entry.pin = current.as_ref().and_then(|a| a.pin);
            entry.delivery_point_id = Some(correction.delivery_point_id.clone());
            entry.correction = Some(CorrectionEvidence {
                proposed: proposed_fields(&correction.record),
                proposed_by: correction.proposed_by.clone(),
                device: correction.device.clone(),
                proposed_at_ms: correction.proposed_at_ms,
                same_proposals: same.corrections.len().max(1),
                proposers: same.postmen.into_iter().collect(),
                current,
                current_access,
            });
        }
        entry.address = address_line(evidence, &entry);
        return entry;
    }
    if let Some(found) = evidence.attempts.get(&row.subject_id) {
        if let Some(point) = &found.delivery_point {
            entry.pin = found.pin.map(|(lat, lon)| GeoPoint { lat, lon });
            entry.delivery_point_id = Some(point.clone());
        }
        entry.item_id = Some(found.attempt.item_id.clone());
        entry.attempt = Some(AttemptEvidence {
            attempt: AttemptView::from(&found.attempt),
            proofs: evidence
                .proofs
                .get(&found.attempt.id)
                .cloned()
                .unwrap_or_default(),
        });
    }
    if row.kind == QueueKind::Dispute {
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
    entry.address = address_line(evidence, &entry);
    entry
}

/// The entry's delivery point's reference address on one line: number, street, postcode and
/// town (not the addressee's name, which the NF Z10-011 lines begin with).
fn address_line(evidence: &Evidence<'_>, entry: &QueueEntry) -> Option<String> {
    let point = entry.delivery_point_id.as_deref()?;
    let (a, _) = evidence.addresses.get(point)?;
    let suffix = a
        .suffix
        .and_then(|s| serde_json::to_value(s).ok())
        .and_then(|v| v.as_str().map(|s| format!(" {s}")))
        .unwrap_or_default();
    let building = a
        .building
        .as_deref()
        .map(|b| format!(", {b}"))
        .unwrap_or_default();
    Some(format!(
        "{}{suffix} {}{building}, {} {}",
        a.house_number, a.street, a.postcode, a.city
    ))
}

/// The view of one queue entry.
async fn one_entry_view(app: &AppState, row: QueueEntryRow) -> Result<QueueEntry, ApiError> {
    let mut views = entry_views(app, vec![row]).await?;
    views
        .pop()
        .ok_or_else(|| ApiError::internal("a queue entry without its view"))
}

/// `GET /v1/backoffice/queue`: entries to review, newest first, a page at a time.
#[tracing::instrument(name = "backoffice.queue", level = "info", skip_all)]
pub async fn queue(
    State(app): State<Arc<AppState>>,
    QueryParams(query): QueryParams<QueueQuery>,
) -> Result<Response, ApiError> {
    let open = match query.status.unwrap_or(QueueStatus::Open) {
        QueueStatus::Open => Some(true),
        QueueStatus::Closed => Some(false),
        QueueStatus::All => None,
    };
    let limit = page_size(query.limit)?;
    let mut rows = app
        .db
        .queue(query.kind, open, query.before, limit + 1)
        .await?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = match rows.last() {
        Some(last) if more => Some(QueueQuery {
            before: Some(last.id),
            ..query
        }),
        _ => None,
    };
    Ok(paged(
        "/v1/backoffice/queue",
        entry_views(&app, rows).await?,
        next,
    ))
}

async fn load_entry(app: &AppState, id: i64) -> Result<QueueEntryRow, ApiError> {
    app.db.queue_entry(id).await?.ok_or_else(|| {
        ApiError::not_found(
            "queue_entry_not_found",
            format!("queue entry {id} not found"),
        )
        .field("entry")
    })
}

/// `GET /v1/backoffice/queue/{entry}`: one entry with its evidence.
#[tracing::instrument(name = "backoffice.entry", level = "info", skip_all)]
pub async fn queue_entry(
    State(app): State<Arc<AppState>>,
    PathParams(id): PathParams<i64>,
) -> Result<Json<QueueEntry>, ApiError> {
    let row = load_entry(&app, id).await?;
    Ok(Json(one_entry_view(&app, row).await?))
}

/// `POST /v1/backoffice/queue/{entry}/decision`: approve or reject, with a comment.
#[tracing::instrument(name = "backoffice.decide", level = "info", skip_all)]
pub async fn decide(
    State(app): State<Arc<AppState>>,
    AuthUser(claims): AuthUser,
    PathParams(id): PathParams<i64>,
    JsonBody(request): JsonBody<DecisionRequest>,
) -> Result<Json<QueueEntry>, ApiError> {
    let row = load_entry(&app, id).await?;
    review::decide(
        &app,
        &claims.sub,
        &row,
        request.decision == Decision::Approve,
        &request.comment,
    )
    .await?;
    let row = load_entry(&app, id).await?;
    Ok(Json(one_entry_view(&app, row).await?))
}

/// `GET /v1/backoffice/items/{s10}`: an item's timeline.
#[tracing::instrument(name = "backoffice.timeline", level = "info", skip_all)]
pub async fn item_timeline(
    State(app): State<Arc<AppState>>,
    Path(s10): Path<String>,
) -> Result<Json<ItemTimeline>, ApiError> {
    let item = params::s10(&s10)?;
    let view = item_view(&app, &item).await?;
    let attempts = app.db.attempts_for_item(&item.to_string()).await?;
    let choices = app.db.choices_for_item(&item.to_string()).await?;
    let address = address_of(&app, &view.delivery_point)
        .await?
        .map(|(address, _)| address);
    let disputes = view.disputes.clone();
    let mut proofs = proofs::views_of(&app.db, &attempts.iter().collect::<Vec<_>>()).await?;
    Ok(Json(ItemTimeline {
        item: view,
        attempts: attempts
            .iter()
            .map(|a| AttemptEvidence {
                attempt: AttemptView::from(a),
                proofs: proofs.remove(&a.id).unwrap_or_default(),
            })
            .collect(),
        choices: choices.iter().map(ChoiceView::from).collect(),
        address,
        disputes,
    }))
}

/// `GET /v1/backoffice/search`: items by S10 number, address, postman, round and date, a page
/// at a time.
#[tracing::instrument(name = "backoffice.search", level = "info", skip_all)]
pub async fn search(
    State(app): State<Arc<AppState>>,
    QueryParams(query): QueryParams<SearchQuery>,
) -> Result<Response, ApiError> {
    let limit = page_size(query.limit)?;
    // A cursor, compared by order: an S10 number's shape, its check digit not checked.
    let after = query
        .after
        .as_deref()
        .map(|s| {
            let s = s.trim().to_ascii_uppercase();
            if s.len() == 13 && s.bytes().all(|b| b.is_ascii_alphanumeric()) {
                Ok(s)
            } else {
                Err(ApiError::bad_request(
                    "invalid_parameter",
                    format!("after: {s:?} is not an S10 number"),
                )
                .field("after"))
            }
        })
        .transpose()?;
    let asked = query.clone();
    // A filter given is a filter meant: blank or malformed values are refused, not ignored,
    // exactly as the published schema says.
    let text = |name: &'static str, value: Option<String>| {
        value
            .map(|v| {
                rules::required_text(rules::Field::Note, &v, rules::MAX_FREE_TEXT_CHARS)
                    .map(|()| v.trim().to_string())
                    .map_err(|e| {
                        ApiError::bad_request("invalid_parameter", format!("{name}: {}", e.reason))
                            .field(name)
                    })
            })
            .transpose()
    };
    let s10 = query
        .s10
        .map(|s| {
            S10::parse(&s).map(|item| item.to_string()).map_err(|v| {
                ApiError::bad_request("invalid_s10", format!("s10: {}", v.reason)).field("s10")
            })
        })
        .transpose()?;
    if let Some(day) = &query.date {
        rules::date(rules::Field::Date, day).map_err(|v| {
            ApiError::bad_request("invalid_parameter", format!("date: {}", v.reason)).field("date")
        })?;
    }
    let filter = SearchFilter {
        s10,
        address: text("address", query.address)?,
        postman: text("postman", query.postman)?,
        round: text("round", query.round)?,
        date: query.date,
        after,
    };
    if filter.s10.is_none()
        && filter.address.is_none()
        && filter.postman.is_none()
        && filter.round.is_none()
        && filter.date.is_none()
    {
        return Err(ApiError::bad_request(
            "missing_parameter",
            "give at least one of s10, address, postman, round, date",
        ));
    }
    let mut rows = app.db.search(&filter, limit + 1).await?;
    let next = last_whole_item(&mut rows, usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(paged(
        "/v1/backoffice/search",
        rows,
        next.map(|after| SearchQuery {
            after: Some(after),
            ..asked
        }),
    ))
}

/// Cuts `rows` (one more than a page asked) to the page, without splitting an item's rows
/// between two pages; the last item of the page when there are more.
fn last_whole_item(rows: &mut Vec<SearchRow>, page: usize) -> Option<String> {
    if rows.len() <= page {
        return None;
    }
    let first_beyond = rows[page].item_id.clone();
    rows.truncate(page);
    // The next page starts after an item: the item cut in two goes whole to the next page,
    // unless it fills this one by itself.
    if rows.iter().any(|r| r.item_id != first_beyond) {
        rows.retain(|r| r.item_id != first_beyond);
    }
    rows.last().map(|r| r.item_id.clone())
}
