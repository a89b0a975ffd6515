//! Rows of the central profile that a sync projects, as both backends read and write them.

use serde::Serialize;

use super::{CorrectionStatus, EntryStatus, QueueKind, UpuCode};

/// A delivery attempt as projected.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct AttemptRow {
    /// The attempt id from the document.
    pub id: String,
    /// The S10 number.
    pub item_id: String,
    /// The change that carried it: projection is idempotent by attempt id and change hash.
    pub change_hash: Vec<u8>,
    /// The outcome code.
    pub outcome: String,
    /// Device clock at the door.
    pub recorded_at_ms: i64,
    /// Recording device.
    pub device: String,
    /// Postman.
    pub postman: String,
    /// Position.
    pub lat: Option<f64>,
    /// Position.
    pub lon: Option<f64>,
    /// Accuracy.
    pub accuracy_m: Option<f64>,
    /// Distance to the delivery point's pin, when both are known.
    pub distance_m: Option<f64>,
    /// The notice left.
    pub notice_number: Option<String>,
    /// Where the item waits (`kind:id`).
    pub waits_at: Option<String>,
    /// The whole attempt as JSON.
    pub record: String,
    /// The device whose key signed it, verified when it was stored (`None`: recorded by an
    /// app that did not sign).
    #[sqlx(default)]
    pub signed_by: Option<String>,
}

/// A customer's choice as projected.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ChoiceRow {
    /// The choice id.
    pub id: String,
    /// The item.
    pub item_id: String,
    /// The change that carried it.
    pub change_hash: Vec<u8>,
    /// `redeliver_on`, `pickup_point`, …
    pub kind: String,
    /// When it was made.
    pub made_at_ms: i64,
    /// The customer.
    pub made_by: String,
    /// Whether the item's requirements allow it.
    pub applicable: bool,
    /// Why not, for the customer and the back office.
    pub reason: Option<String>,
    /// The whole choice as JSON.
    pub record: String,
}

/// A proposed correction as projected (it enters the review queue).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct CorrectionRow {
    /// The correction id.
    pub id: String,
    /// The delivery point.
    pub delivery_point_id: String,
    /// The change that carried it.
    pub change_hash: Vec<u8>,
    /// The postman.
    pub proposed_by: String,
    /// The device.
    pub device: String,
    /// When.
    pub proposed_at_ms: i64,
    /// The whole correction as JSON.
    pub record: String,
}

/// The customer's standing preferences as projected (latest wins).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreferencesRow {
    /// The delivery point.
    pub delivery_point_id: String,
    /// Safe place.
    pub safe_place: Option<String>,
    /// Preferred neighbour.
    pub preferred_neighbour: Option<String>,
    /// Preferred pickup point.
    pub preferred_pickup_point: Option<String>,
    /// Never to a neighbour.
    pub never_to_neighbour: bool,
}

/// Something for the back office to look at, with a reason it can read.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct QueueRow {
    /// What it is about.
    pub kind: QueueKind,
    /// The correction or attempt id.
    pub subject_id: String,
    /// Why it is there.
    pub reason: String,
    /// When it was queued.
    pub created_ms: i64,
}

/// A UPU EMSEVT event of an item.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct EventRow {
    /// The item.
    pub item_id: String,
    /// The UPU code.
    pub code: UpuCode,
    /// When.
    pub at_ms: i64,
    /// Non-delivery reason (EMH).
    pub reason: Option<String>,
    /// Action taken (EMH).
    pub action: Option<String>,
    /// What produced it (an attempt id), so it is recorded once.
    pub source: String,
}

/// An audit-log line.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct AuditRow {
    /// When.
    pub at_ms: i64,
    /// Who (`role:id`).
    pub actor: String,
    /// What.
    pub action: String,
    /// On what.
    pub subject: String,
    /// Details as JSON.
    pub detail: String,
}

/// A back-office decision on a correction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionRow {
    /// The correction.
    pub correction_id: String,
    /// Its delivery point.
    pub delivery_point_id: String,
    /// Approved or rejected.
    pub status: CorrectionStatus,
    /// Who decided (`corroboration` for an automatic approval).
    pub by: String,
    /// The reviewer's comment.
    pub comment: String,
    /// When.
    pub at_ms: i64,
    /// Approved automatically because postmen corroborated it.
    pub auto: bool,
}

/// Reference data of a delivery point as published.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReferenceRow {
    /// The delivery point.
    pub delivery_point_id: String,
    /// Address lines.
    pub lines: Vec<String>,
    /// Pin.
    pub pin: Option<(f64, f64)>,
    /// Publication version.
    pub version: i64,
}

/// Everything a sync projects into the central profile.
#[derive(Debug, Clone, Default)]
pub struct Projection {
    /// New attempts.
    pub attempts: Vec<AttemptRow>,
    /// New choices.
    pub choices: Vec<ChoiceRow>,
    /// New corrections.
    pub corrections: Vec<CorrectionRow>,
    /// Changed preferences.
    pub preferences: Vec<PreferencesRow>,
    /// New review-queue entries.
    pub queue: Vec<QueueRow>,
    /// New item events.
    pub events: Vec<EventRow>,
    /// Audit lines.
    pub audit: Vec<AuditRow>,
    /// Decisions on corrections (their queue entries close).
    pub decisions: Vec<DecisionRow>,
    /// Reference data published.
    pub references: Vec<ReferenceRow>,
    /// The actors the changes are authored under that were unbound, with their new owner:
    /// bound in the transaction that stores the changes.
    pub actors: Vec<super::ActorBinding>,
    /// The events of the feed: what the write's rows mean ([`crate::events::of_projection`]),
    /// and what a writer adds (reference data an import loads).
    pub feed: Vec<crate::events::NewEvent>,
    /// Reference data an import loads into the central tables.
    pub loads: Vec<super::Load>,
}

impl Projection {
    /// Whether there is no row at all to write.
    pub fn is_empty(&self) -> bool {
        self.attempts.is_empty()
            && self.choices.is_empty()
            && self.corrections.is_empty()
            && self.preferences.is_empty()
            && self.queue.is_empty()
            && self.events.is_empty()
            && self.audit.is_empty()
            && self.decisions.is_empty()
            && self.references.is_empty()
            && self.actors.is_empty()
            && self.feed.is_empty()
            && self.loads.is_empty()
    }
}

/// A review-queue entry with its decision, as the back office lists it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct QueueEntryRow {
    /// The entry's id.
    pub id: i64,
    /// What it is about.
    pub kind: QueueKind,
    /// The correction or attempt id.
    pub subject_id: String,
    /// Why it is there.
    pub reason: String,
    /// Open, or how it was decided.
    pub status: EntryStatus,
    /// When it was queued.
    pub created_ms: i64,
    /// Evidence as JSON (a dispute's customer and comment).
    pub detail: Option<String>,
    /// Who decided.
    pub decided_by: Option<String>,
    /// The reviewer's comment.
    pub decision_comment: Option<String>,
    /// When it was decided.
    pub decided_at_ms: Option<i64>,
    /// Approved automatically because postmen corroborated it.
    pub auto_approved: bool,
}

/// What search finds: an item with where and by whom it is delivered.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct SearchRow {
    /// The S10 number.
    pub item_id: String,
    /// Its delivery point.
    pub delivery_point_id: String,
    /// The address, one line.
    pub address: String,
    /// The item's last UPU status.
    pub status: UpuCode,
    /// The postman of the latest round that carries it.
    pub postman: Option<String>,
    /// That round.
    pub round_id: Option<String>,
    /// Its day.
    pub date: Option<String>,
}

/// The filters of a back-office search; each given one must match.
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    /// An S10 number, exact.
    pub s10: Option<String>,
    /// Part of the address, case-insensitive.
    pub address: Option<String>,
    /// A postman id.
    pub postman: Option<String>,
    /// A round id.
    pub round: Option<String>,
    /// A round day, `YYYY-MM-DD`.
    pub date: Option<String>,
    /// Only items whose number comes after this one (the previous page's last).
    pub after: Option<String>,
}
