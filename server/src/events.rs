//! The event feed's facts: every reconciled fact becomes an event (a UPU item event, an attempt, a
//! customer's choice or preferences, a correction proposed or decided, a dispute opened or
//! decided, reference data loaded or changed), written in the transaction that writes the fact.
//!
//! Events are derived from the rows a write commits ([`of_projection`]), so no writer can forget
//! them, and each has an id derived from what it records: a write projected twice (a replayed
//! sync) records its events once, and a consumer deduplicates on the id.
//!
//! The payload of each type has a JSON Schema in `/openapi.json` ([`Event`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::db::{Projection, QueueKind, UpuCode};

/// What an event's subject is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// An item, by its S10 number.
    Item,
    /// A delivery point.
    DeliveryPoint,
    /// A customer.
    Customer,
    /// A round.
    Round,
    /// A postman's device.
    Device,
    /// A pickup point or post office.
    PickupPoint,
}

impl SubjectKind {
    /// As stored and as the feed spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Item => "item",
            SubjectKind::DeliveryPoint => "delivery_point",
            SubjectKind::Customer => "customer",
            SubjectKind::Round => "round",
            SubjectKind::Device => "device",
            SubjectKind::PickupPoint => "pickup_point",
        }
    }
}

/// What an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Subject {
    /// Its kind.
    pub kind: SubjectKind,
    /// Its id (the S10 number of an item).
    pub id: String,
}

/// A UPU EMSEVT event of an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ItemEvent {
    /// `EMG` (arrival at the delivery office), `EDG` (out for delivery), `EMH` (not
    /// delivered), `EDH` (held for collection), `EMI` (delivered).
    pub upu_code: String,
    /// Why it was not delivered (EMH).
    pub reason: Option<String>,
    /// What the postman did about it (EMH).
    pub action: Option<String>,
    /// What produced it: an attempt id, `round:<id>`, `import`.
    pub source: String,
}

/// A position and its accuracy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Position {
    /// Latitude, WGS 84.
    pub lat: f64,
    /// Longitude, WGS 84.
    pub lon: f64,
    /// Accuracy in metres, as the phone reported it.
    pub accuracy_m: Option<f64>,
}

/// A delivery attempt as the phone recorded it, with what the server made of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AttemptRecorded {
    /// The attempt's id.
    pub attempt_id: String,
    /// `delivered`, `addressee_absent`, …
    pub outcome: String,
    /// The postman.
    pub postman: String,
    /// The device.
    pub device: String,
    /// Where the phone was.
    pub position: Option<Position>,
    /// Distance to the delivery point's pin, in metres, when both are known.
    pub distance_to_pin_m: Option<f64>,
    /// Why the back office is asked to look at it, if it is.
    pub flags: Vec<String>,
    /// The notice left at the door.
    pub notice_number: Option<String>,
    /// Where the item waits (`kind:id`).
    pub waits_at: Option<String>,
    /// The device whose key signed the attempt, verified when it was stored; absent when the
    /// app that recorded it did not sign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
}

/// A customer's choice for an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChoiceMade {
    /// The choice's id.
    pub choice_id: String,
    /// `redeliver_on`, `pickup_point`, `neighbour`, `safe_place`, `hold`.
    pub kind: String,
    /// Who made it.
    pub made_by: String,
    /// Whether the item's requirements allow it.
    pub applicable: bool,
    /// Why not.
    pub reason: Option<String>,
    /// The choice as recorded.
    pub choice: Value,
}

/// A customer's standing preferences for a delivery point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PreferencesChanged {
    /// Where parcels may be left.
    pub safe_place: Option<String>,
    /// The neighbour to try first.
    pub preferred_neighbour: Option<String>,
    /// The pickup point to use.
    pub preferred_pickup_point: Option<String>,
    /// Never to a neighbour.
    pub never_to_neighbour: bool,
}

/// A postman's proposed address correction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CorrectionProposed {
    /// The correction's id.
    pub correction_id: String,
    /// The postman.
    pub proposed_by: String,
    /// The device.
    pub device: String,
    /// The correction as recorded.
    pub correction: Value,
}

/// A decision of the back office (or of corroboration) on a queue entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Decided {
    /// The correction, attempt or dispute decided (a dispute by its attempt).
    pub decided: String,
    /// `approved` or `rejected`.
    pub decision: String,
    /// Who decided (`corroboration` for an automatic approval).
    pub decided_by: String,
    /// Approved automatically because postmen corroborated it.
    pub automatic: bool,
}

/// A customer's dispute of an attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DisputeOpened {
    /// The disputed attempt.
    pub attempt_id: String,
    /// The customer.
    pub customer: String,
}

/// Reference data of a delivery point as published to the documents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReferenceChanged {
    /// NF Z10-011 address lines.
    pub lines: Vec<String>,
    /// The pin, `[lat, lon]`.
    pub pin: Option<(f64, f64)>,
    /// The publication's version.
    pub version: i64,
}

/// Reference data loaded by an import (a customer, an item's data, a round, a device, a pickup
/// point), as it now stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Loaded {
    /// `created` or `updated`.
    pub change: String,
    /// The record as the import left it (customers: their id and delivery points only).
    pub record: Value,
}

/// Every event type with its payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "payload")]
pub enum Payload {
    /// EMG: the item arrived at the delivery office.
    #[serde(rename = "item.arrived")]
    ItemArrived(ItemEvent),
    /// EDG: out for delivery on a round.
    #[serde(rename = "item.out_for_delivery")]
    ItemOutForDelivery(ItemEvent),
    /// EMH: an attempt that did not deliver.
    #[serde(rename = "item.not_delivered")]
    ItemNotDelivered(ItemEvent),
    /// EDH: held for collection (pickup point, post office).
    #[serde(rename = "item.held_for_collection")]
    ItemHeldForCollection(ItemEvent),
    /// EMI: delivered.
    #[serde(rename = "item.delivered")]
    ItemDelivered(ItemEvent),
    /// A delivery attempt recorded at the door.
    #[serde(rename = "attempt.recorded")]
    AttemptRecorded(AttemptRecorded),
    /// A flagged attempt or a dispute decided by the back office.
    #[serde(rename = "attempt.reviewed")]
    AttemptReviewed(Decided),
    /// A customer's choice for an item.
    #[serde(rename = "choice.made")]
    ChoiceMade(ChoiceMade),
    /// A customer's standing preferences changed.
    #[serde(rename = "preferences.changed")]
    PreferencesChanged(PreferencesChanged),
    /// A postman proposed an address correction.
    #[serde(rename = "correction.proposed")]
    CorrectionProposed(CorrectionProposed),
    /// A correction approved or rejected.
    #[serde(rename = "correction.decided")]
    CorrectionDecided(Decided),
    /// A customer disputed an attempt.
    #[serde(rename = "dispute.opened")]
    DisputeOpened(DisputeOpened),
    /// A dispute decided.
    #[serde(rename = "dispute.decided")]
    DisputeDecided(Decided),
    /// A delivery point's reference data published to its document.
    #[serde(rename = "reference.changed")]
    ReferenceChanged(ReferenceChanged),
    /// A customer loaded or changed by an import.
    #[serde(rename = "customer.loaded")]
    CustomerLoaded(Loaded),
    /// An item's data (requirements, sender, delivery point) loaded or changed by an import.
    #[serde(rename = "item.loaded")]
    ItemLoaded(Loaded),
    /// A round published or re-published.
    #[serde(rename = "round.published")]
    RoundPublished(Loaded),
    /// A device registered or revoked.
    #[serde(rename = "device.changed")]
    DeviceChanged(Loaded),
    /// A pickup point or post office loaded or changed.
    #[serde(rename = "pickup_point.loaded")]
    PickupPointLoaded(Loaded),
}

impl Payload {
    /// The event type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Payload::ItemArrived(_) => "item.arrived",
            Payload::ItemOutForDelivery(_) => "item.out_for_delivery",
            Payload::ItemNotDelivered(_) => "item.not_delivered",
            Payload::ItemHeldForCollection(_) => "item.held_for_collection",
            Payload::ItemDelivered(_) => "item.delivered",
            Payload::AttemptRecorded(_) => "attempt.recorded",
            Payload::AttemptReviewed(_) => "attempt.reviewed",
            Payload::ChoiceMade(_) => "choice.made",
            Payload::PreferencesChanged(_) => "preferences.changed",
            Payload::CorrectionProposed(_) => "correction.proposed",
            Payload::CorrectionDecided(_) => "correction.decided",
            Payload::DisputeOpened(_) => "dispute.opened",
            Payload::DisputeDecided(_) => "dispute.decided",
            Payload::ReferenceChanged(_) => "reference.changed",
            Payload::CustomerLoaded(_) => "customer.loaded",
            Payload::ItemLoaded(_) => "item.loaded",
            Payload::RoundPublished(_) => "round.published",
            Payload::DeviceChanged(_) => "device.changed",
            Payload::PickupPointLoaded(_) => "pickup_point.loaded",
        }
    }

    /// Every type name, for validating a subscription's filter.
    pub const TYPES: [&'static str; 19] = [
        "item.arrived",
        "item.out_for_delivery",
        "item.not_delivered",
        "item.held_for_collection",
        "item.delivered",
        "attempt.recorded",
        "attempt.reviewed",
        "choice.made",
        "preferences.changed",
        "correction.proposed",
        "correction.decided",
        "dispute.opened",
        "dispute.decided",
        "reference.changed",
        "customer.loaded",
        "item.loaded",
        "round.published",
        "device.changed",
        "pickup_point.loaded",
    ];

    /// The payload alone, as JSON.
    fn payload_json(&self) -> Value {
        match serde_json::to_value(self) {
            Ok(Value::Object(mut tagged)) => tagged.remove("payload").unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }

    /// The item event of a UPU code; `None` for a code the feed does not know.
    pub fn of_upu(event: ItemEvent) -> Option<Self> {
        Some(match event.upu_code.parse::<UpuCode>().ok()? {
            UpuCode::Arrived => Payload::ItemArrived(event),
            UpuCode::OutForDelivery => Payload::ItemOutForDelivery(event),
            UpuCode::NotDelivered => Payload::ItemNotDelivered(event),
            UpuCode::HeldForCollection => Payload::ItemHeldForCollection(event),
            UpuCode::Delivered => Payload::ItemDelivered(event),
        })
    }
}

/// An event as the feed serves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    /// Unique and stable: the same fact always has the same id (deduplicate on it).
    pub id: String,
    /// Where the event is in the feed: pass it as `after` to read what follows.
    pub cursor: String,
    /// When it happened (the phone's clock for doorstep facts), RFC 3339.
    pub occurred_at: String,
    /// When the server recorded it, RFC 3339.
    pub recorded_at: String,
    /// What it is about.
    pub subject: Subject,
    /// Its type and payload.
    #[serde(flatten)]
    pub payload: Payload,
}

/// An event to record, as a write adds it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Derived from the type and what it records ([`NewEvent::new`]).
    pub id: String,
    /// The type.
    pub type_name: &'static str,
    /// What it is about.
    pub subject_kind: SubjectKind,
    /// Its id.
    pub subject_id: String,
    /// When it happened.
    pub occurred_ms: i64,
    /// The payload as JSON text.
    pub payload: String,
}

/// The namespace of event ids (UUID v5 of the type and what the event records).
const EVENT_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6c1f_3d5e_8a47_4b0e_9d21_7e55_a0c3_f18b);

impl NewEvent {
    /// An event whose id is derived from its type, subject and `key` (what makes it unique
    /// among its subject's events of that type): recording the same fact twice records it once.
    pub fn new(
        subject_kind: SubjectKind,
        subject_id: &str,
        occurred_ms: i64,
        key: &str,
        payload: Payload,
    ) -> Self {
        let type_name = payload.type_name();
        let name = format!(
            "{type_name}\n{}\n{subject_id}\n{key}",
            subject_kind.as_str()
        );
        Self {
            id: uuid::Uuid::new_v5(&EVENT_NAMESPACE, name.as_bytes()).to_string(),
            type_name,
            subject_kind,
            subject_id: subject_id.to_string(),
            occurred_ms,
            payload: payload.payload_json().to_string(),
        }
    }
}

/// The events of what a write projects: its item events, attempts, choices, preferences,
/// corrections, decisions and reference data. `now` stamps what has no time of its own.
pub fn of_projection(p: &Projection, now: i64) -> Vec<NewEvent> {
    let mut events = Vec::new();
    let item = SubjectKind::Item;
    let point = SubjectKind::DeliveryPoint;
    for e in &p.events {
        let event = ItemEvent {
            upu_code: e.code.as_str().to_string(),
            reason: e.reason.clone(),
            action: e.action.clone(),
            source: e.source.clone(),
        };
        if let Some(payload) = Payload::of_upu(event) {
            events.push(NewEvent::new(item, &e.item_id, e.at_ms, &e.source, payload));
        }
    }
    for a in &p.attempts {
        let flags = p
            .queue
            .iter()
            .filter(|q| q.kind == QueueKind::Attempt && q.subject_id == a.id)
            .map(|q| q.reason.clone())
            .collect();
        let position = a.lat.zip(a.lon).map(|(lat, lon)| Position {
            lat,
            lon,
            accuracy_m: a.accuracy_m,
        });
        let payload = Payload::AttemptRecorded(AttemptRecorded {
            attempt_id: a.id.clone(),
            outcome: a.outcome.clone(),
            postman: a.postman.clone(),
            device: a.device.clone(),
            position,
            distance_to_pin_m: a.distance_m,
            flags,
            notice_number: a.notice_number.clone(),
            waits_at: a.waits_at.clone(),
            signed_by: a.signed_by.clone(),
        });
        events.push(NewEvent::new(
            item,
            &a.item_id,
            a.recorded_at_ms,
            &a.id,
            payload,
        ));
    }
    for c in &p.choices {
        let payload = Payload::ChoiceMade(ChoiceMade {
            choice_id: c.id.clone(),
            kind: c.kind.clone(),
            made_by: c.made_by.clone(),
            applicable: c.applicable,
            reason: c.reason.clone(),
            choice: serde_json::from_str(&c.record).unwrap_or(Value::Null),
        });
        events.push(NewEvent::new(
            item,
            &c.item_id,
            c.made_at_ms,
            &c.id,
            payload,
        ));
    }
    for pr in &p.preferences {
        let payload = Payload::PreferencesChanged(PreferencesChanged {
            safe_place: pr.safe_place.clone(),
            preferred_neighbour: pr.preferred_neighbour.clone(),
            preferred_pickup_point: pr.preferred_pickup_point.clone(),
            never_to_neighbour: pr.never_to_neighbour,
        });
        // Preferences change again and again: each change is its own event.
        let key = format!("{now}:{}", payload.payload_json());
        events.push(NewEvent::new(
            point,
            &pr.delivery_point_id,
            now,
            &key,
            payload,
        ));
    }
    for c in &p.corrections {
        let payload = Payload::CorrectionProposed(CorrectionProposed {
            correction_id: c.id.clone(),
            proposed_by: c.proposed_by.clone(),
            device: c.device.clone(),
            correction: serde_json::from_str(&c.record).unwrap_or(Value::Null),
        });
        events.push(NewEvent::new(
            point,
            &c.delivery_point_id,
            c.proposed_at_ms,
            &c.id,
            payload,
        ));
    }
    for d in &p.decisions {
        let payload = Payload::CorrectionDecided(Decided {
            decided: d.correction_id.clone(),
            decision: d.status.as_str().to_string(),
            decided_by: d.by.clone(),
            automatic: d.auto,
        });
        events.push(NewEvent::new(
            point,
            &d.delivery_point_id,
            d.at_ms,
            &d.correction_id,
            payload,
        ));
    }
    for r in &p.references {
        let payload = Payload::ReferenceChanged(ReferenceChanged {
            lines: r.lines.clone(),
            pin: r.pin,
            version: r.version,
        });
        events.push(NewEvent::new(
            point,
            &r.delivery_point_id,
            now,
            &r.version.to_string(),
            payload,
        ));
    }
    events
}

/// Formats Unix milliseconds as RFC 3339.
pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}
