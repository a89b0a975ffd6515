//! An item as customers and the back office see it: its status and UPU events, its attempts with
//! their evidence, where it waits, and the customer's current choice.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use tournee_sync_core::model::{
    Attempt, Choice, CustomerChoice, Notice, Outcome, Requirements, WaitingPlace, WaitingPlaceKind,
};
use tournee_sync_core::{operations, DocId, S10};

use crate::db::{AttemptRow, ChoiceRow, EntryStatus, EventRow, QueueEntryRow, UpuCode};
use crate::error::ApiError;
use crate::AppState;

/// One UPU EMSEVT event.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EventView {
    /// The UPU code.
    pub code: UpuCode,
    /// When, Unix milliseconds.
    pub at_ms: i64,
    /// The non-delivery reason (EMH).
    pub reason: Option<String>,
    /// The action taken (EMH), or what happened.
    pub action: Option<String>,
}

/// An attempt with the evidence the back office weighs.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AttemptView {
    /// The attempt id.
    pub id: String,
    /// The outcome code.
    pub outcome: String,
    /// The device's clock at the door.
    pub recorded_at_ms: i64,
    /// The postman.
    pub postman: String,
    /// The device.
    pub device: String,
    /// The GNSS fix, if any.
    pub position: Option<PositionView>,
    /// Metres from the delivery point's pin, when both are known.
    pub distance_m: Option<f64>,
    /// The notice left at the door.
    pub notice: Option<Notice>,
    /// The device whose key signed the attempt, verified when the server stored it; absent
    /// when the app that recorded it did not sign.
    pub signed_by: Option<String>,
}

/// A GNSS fix.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PositionView {
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// Accuracy radius, metres.
    pub accuracy_m: Option<f64>,
}

/// The customer's current choice.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ChoiceView {
    /// The choice id.
    pub id: String,
    /// `redeliver_on`, `pickup_point`, `neighbour`, `safe_place`, `hold`.
    pub kind: String,
    /// When it was made.
    pub made_at_ms: i64,
    /// Whether it can be honoured.
    pub applicable: bool,
    /// Why not.
    pub reason: Option<String>,
    /// The whole choice.
    pub record: Value,
}

/// An item for its customer or the back office.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ItemView {
    /// The S10 number.
    pub id: String,
    /// Its delivery point.
    pub delivery_point: String,
    /// `arrived_at_office`, `out_for_delivery`, `attempted`, `at_pickup_point`, `delivered`.
    pub status: String,
    /// The last UPU event code.
    pub status_code: UpuCode,
    /// What the sender paid for.
    pub requirements: Requirements,
    /// Every UPU event, oldest first.
    pub events: Vec<EventView>,
    /// The latest attempt.
    pub latest_attempt: Option<AttemptView>,
    /// Where the item waits for collection, and until when: the latest applicable fact among
    /// the notice left at the door, the customer's choice of a pickup point and the hand-over
    /// at the pickup point. None while it is out for delivery or once delivered.
    pub waits_at: Option<WaitingPlace>,
    /// The customer's current choice.
    pub choice: Option<ChoiceView>,
    /// Disputes of the item's attempts and how they were decided, oldest first.
    pub disputes: Vec<DisputeView>,
}

/// A customer's dispute of an attempt, and its outcome.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DisputeView {
    /// The review-queue entry.
    pub queue_id: i64,
    /// The disputed attempt.
    pub attempt_id: String,
    /// What the customer said.
    pub comment: String,
    /// When it was opened.
    pub opened_at_ms: i64,
    /// `open`, `approved` (the customer was right) or `rejected`.
    pub status: EntryStatus,
    /// The reviewer's answer.
    pub answer: Option<String>,
    /// When it was decided.
    pub decided_at_ms: Option<i64>,
}

impl From<&QueueEntryRow> for DisputeView {
    fn from(row: &QueueEntryRow) -> Self {
        let detail: Value = row
            .detail
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or(Value::Null);
        Self {
            queue_id: row.id,
            attempt_id: row.subject_id.clone(),
            comment: detail["comment"].as_str().unwrap_or_default().to_string(),
            opened_at_ms: row.created_ms,
            status: row.status,
            answer: row.decision_comment.clone(),
            decided_at_ms: row.decided_at_ms,
        }
    }
}

/// Where an item waits, from the facts in the order they happened: a notice naming a place,
/// then possibly the customer's choice of a pickup point, while it stands and applies (the item
/// is taken there), then the hand-over at a pickup point (EDH). A later fact replaces an earlier
/// one; the last day known from the notice carries over. Nothing waits once the item is
/// delivered (EMI) or while it has no notice, choice or hand-over behind it. `choices` are in
/// the order they were made: the last one stands.
pub fn waiting_place(
    status: UpuCode,
    attempts: &[AttemptRow],
    choices: &[ChoiceRow],
) -> Option<WaitingPlace> {
    if status == UpuCode::Delivered {
        return None;
    }
    // (when, place) of every fact that says where the item waits.
    let mut facts: Vec<(i64, WaitingPlace)> = Vec::new();
    let mut until: Option<String> = None;
    for attempt in attempts {
        let Ok(recorded) = serde_json::from_str::<Attempt>(&attempt.record) else {
            continue;
        };
        match &recorded.outcome {
            Outcome::DeliveredToPickupPoint { pickup_point } => facts.push((
                attempt.recorded_at_ms,
                WaitingPlace {
                    kind: WaitingPlaceKind::PickupPoint,
                    place_id: pickup_point.clone(),
                    until: None,
                },
            )),
            o if o.is_delivered() => {}
            _ => {
                if let Some(place) = recorded.notice.and_then(|n| n.waits_at) {
                    facts.push((attempt.recorded_at_ms, place));
                }
            }
        }
    }
    // A pickup point chosen and then replaced (a redelivery, kept at the office) is not where the
    // item goes: only the choice that stands counts.
    if matches!(status, UpuCode::NotDelivered | UpuCode::HeldForCollection) {
        if let Some(choice) = choices.last().filter(|c| c.applicable) {
            if let Ok(CustomerChoice {
                choice: Choice::PickupPoint { pickup_point },
                ..
            }) = serde_json::from_str::<CustomerChoice>(&choice.record)
            {
                facts.push((
                    choice.made_at_ms,
                    WaitingPlace {
                        kind: WaitingPlaceKind::PickupPoint,
                        place_id: pickup_point,
                        until: None,
                    },
                ));
            }
        }
    }
    facts.sort_by_key(|(at, _)| *at);
    let mut place = None;
    for (_, fact) in facts {
        if fact.until.is_some() {
            until.clone_from(&fact.until);
        }
        place = Some(fact);
    }
    place.map(|mut p| {
        p.until = p.until.or(until);
        p
    })
}

/// A human status for a UPU event code.
pub fn status_name(code: UpuCode) -> &'static str {
    match code {
        UpuCode::Arrived => "arrived_at_office",
        UpuCode::OutForDelivery => "out_for_delivery",
        UpuCode::NotDelivered => "attempted",
        UpuCode::HeldForCollection => "at_pickup_point",
        UpuCode::Delivered => "delivered",
    }
}

impl From<&EventRow> for EventView {
    fn from(e: &EventRow) -> Self {
        Self {
            code: e.code,
            at_ms: e.at_ms,
            reason: e.reason.clone(),
            action: e.action.clone(),
        }
    }
}

impl From<&AttemptRow> for AttemptView {
    fn from(a: &AttemptRow) -> Self {
        let recorded: Option<Attempt> = serde_json::from_str(&a.record).ok();
        Self {
            id: a.id.clone(),
            outcome: a.outcome.clone(),
            recorded_at_ms: a.recorded_at_ms,
            postman: a.postman.clone(),
            device: a.device.clone(),
            position: a.lat.zip(a.lon).map(|(lat, lon)| PositionView {
                lat,
                lon,
                accuracy_m: a.accuracy_m,
            }),
            distance_m: a.distance_m,
            notice: recorded.and_then(|r| r.notice),
            signed_by: a.signed_by.clone(),
        }
    }
}

impl From<&ChoiceRow> for ChoiceView {
    fn from(c: &ChoiceRow) -> Self {
        Self {
            id: c.id.clone(),
            kind: c.kind.clone(),
            made_at_ms: c.made_at_ms,
            applicable: c.applicable,
            reason: c.reason.clone(),
            record: serde_json::from_str(&c.record).unwrap_or(Value::Null),
        }
    }
}

/// Builds the view of an item; `NotFound` if there is no such item.
pub async fn item_view(app: &AppState, item: &S10) -> Result<ItemView, ApiError> {
    let id = item.to_string();
    let info = app.db.item_info(&id).await?.ok_or_else(|| {
        ApiError::not_found("item_not_found", format!("item {id} not found")).field("s10")
    })?;
    let requirements = match app.docs.load(&app.db, &DocId::item(item)).await? {
        Some(doc) => operations::requirements(&doc)
            .map_err(|e| ApiError::internal(format!("item {id}: {e}")))?,
        // Archived after the retention period (`retention.rs`): its facts are central rows,
        // its requirements those it was imported with.
        None => match app.db.archived_requirements(&id).await? {
            Some(imported) => imported
                .and_then(|json| serde_json::from_str(&json).ok())
                .unwrap_or_default(),
            None => {
                return Err(
                    ApiError::not_found("item_not_found", format!("item {id} not found"))
                        .field("s10"),
                )
            }
        },
    };
    let events = app.db.item_events(&id).await?;
    let attempts = app.db.attempts_for_item(&id).await?;
    let choices = app.db.choices_for_item(&id).await?;
    let disputes = app.db.disputes_for_item(&id).await?;
    let latest_attempt = attempts.last().map(AttemptView::from);
    let waits_at = waiting_place(info.status, &attempts, &choices);
    Ok(ItemView {
        id,
        delivery_point: info.delivery_point,
        status: status_name(info.status).to_string(),
        status_code: info.status,
        requirements,
        events: events.iter().map(EventView::from).collect(),
        latest_attempt,
        waits_at,
        choice: choices.last().map(ChoiceView::from),
        disputes: disputes.iter().map(DisputeView::from).collect(),
    })
}
