//! Reconciliation: what a sync's accepted changes mean for the central profile.
//!
//! Each record a batch wrote comes as the validator read and checked it, with the change that
//! wrote it, and is turned into rows, with the rules of DESIGN.md applied visibly: a reason the customer and the back office can read
//! goes with every flag. Rows are keyed by the record's id, so a change sent twice is projected
//! once.

use geo::{Distance, Haversine, Point};
use tournee_sync_core::model::{Attempt, CustomerChoice, Outcome, WaitingPlaceKind};
use tournee_sync_core::signing::Signer;
use tournee_sync_core::validator::{Accepted, CheckedRecord, Sender, Touched};
use tournee_sync_core::DocId;

use crate::db::{
    AttemptRow, AuditRow, ChoiceRow, CorrectionRow, EventRow, PreferencesRow, Projection,
    QueueKind, QueueRow, UpuCode,
};

/// The rules' parameters.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// An attempt farther than this from the pin is flagged.
    pub far_attempt_metres: f64,
}

/// The delivery points' pins of the items a batch touches, by S10 number, read in one query
/// before projecting ([`Database::item_pins`]).
pub type Pins = std::collections::HashMap<String, (f64, f64)>;

/// The items whose pins projecting `accepted` needs.
pub fn items_needing_pins<'a>(
    accepted: impl IntoIterator<Item = (&'a DocId, &'a Accepted)>,
) -> Vec<&'a str> {
    accepted
        .into_iter()
        .filter(|(id, a)| {
            id.kind() == tournee_sync_core::DocKind::Item
                && a.written
                    .iter()
                    .any(|w| matches!(w, Touched::Entry("attempts", _)))
        })
        .map(|(id, _)| id.key())
        .collect()
}

/// Projects one document's accepted batch into `out`. Pure: every record comes as the validator
/// checked it, with the change that wrote it, and the pins of the batch's items are in `pins`,
/// so a sync's projection reads neither the database nor the document.
pub fn project(
    pins: &Pins,
    rules: Rules,
    id: &DocId,
    accepted: &Accepted,
    sender: &Sender,
    now_ms: i64,
    out: &mut Projection,
) {
    let actor = format!("{}:{}", sender.role.as_str(), sender.principal);
    for written in &accepted.written {
        let checked = accepted.records.get(written);
        let change_hash = checked.map(|c| c.change.as_ref().to_vec());
        match (written, checked.map(|c| &c.record)) {
            (Touched::Entry(_, key), Some(CheckedRecord::Attempt(attempt))) => {
                project_attempt(
                    rules,
                    id,
                    key,
                    attempt,
                    change_hash.unwrap_or_default(),
                    checked.and_then(|c| c.signer.as_ref()).map(signer_name),
                    pins.get(id.key()).copied(),
                    now_ms,
                    out,
                );
                audit(out, now_ms, &actor, "attempt.recorded", id, attempt);
            }
            (
                Touched::Entry(_, key),
                Some(CheckedRecord::Choice {
                    choice,
                    not_applicable,
                }),
            ) => {
                out.choices.push(ChoiceRow {
                    id: key.clone(),
                    item_id: id.key().to_string(),
                    change_hash: change_hash.unwrap_or_default(),
                    kind: choice_kind(choice),
                    made_at_ms: choice.made_at_ms,
                    made_by: choice.made_by.clone(),
                    applicable: not_applicable.is_none(),
                    reason: not_applicable.clone(),
                    record: json(choice),
                });
                audit(out, now_ms, &actor, "choice.made", id, choice);
            }
            (Touched::Entry(_, key), Some(CheckedRecord::Correction(correction))) => {
                out.corrections.push(CorrectionRow {
                    id: key.clone(),
                    delivery_point_id: id.key().to_string(),
                    change_hash: change_hash.unwrap_or_default(),
                    proposed_by: correction.proposed_by.clone(),
                    device: correction.device.clone(),
                    proposed_at_ms: correction.proposed_at_ms,
                    record: json(correction),
                });
                out.queue.push(QueueRow {
                    kind: QueueKind::Correction,
                    subject_id: key.clone(),
                    reason: format!(
                        "{} proposes a correction to {}: it changes reference data only once approved",
                        correction.proposed_by,
                        id.key()
                    ),
                    created_ms: now_ms,
                });
                audit(out, now_ms, &actor, "correction.proposed", id, correction);
            }
            (Touched::Preferences, Some(CheckedRecord::Preferences(p))) => {
                out.preferences.push(PreferencesRow {
                    delivery_point_id: id.key().to_string(),
                    safe_place: p.safe_place.clone(),
                    preferred_neighbour: p.preferred_neighbour.clone(),
                    preferred_pickup_point: p.preferred_pickup_point.clone(),
                    never_to_neighbour: p.never_to_neighbour,
                });
                audit(out, now_ms, &actor, "preferences.changed", id, p);
            }
            (other, _) => {
                let detail = format!("{other:?}");
                audit(out, now_ms, &actor, "document.changed", id, &detail);
            }
        }
    }
}

/// How the reason of an attempt flagged for its distance begins.
const FAR_FROM_PIN: &str = "recorded ";
/// The reason of an attempt whose notice has no number.
const NOTICE_WITHOUT_NUMBER: &str = "a notice was left without a notice number";
/// The reason of an attempt whose notice says nowhere to collect the item.
const NOTICE_WITHOUT_PLACE: &str = "a notice was left without saying where to collect the item";

/// Why an attempt was flagged, as a stable code for the page's words (`far_from_pin`,
/// `notice_without_number`, `notice_without_place`), from the reason written above.
pub fn attempt_flag(reason: &str) -> &'static str {
    if reason == NOTICE_WITHOUT_NUMBER {
        "notice_without_number"
    } else if reason == NOTICE_WITHOUT_PLACE {
        "notice_without_place"
    } else if reason.starts_with(FAR_FROM_PIN) {
        "far_from_pin"
    } else {
        "flagged"
    }
}

#[allow(clippy::too_many_arguments)]
fn project_attempt(
    rules: Rules,
    id: &DocId,
    key: &str,
    attempt: &Attempt,
    change_hash: Vec<u8>,
    signed_by: Option<String>,
    pin: Option<(f64, f64)>,
    now_ms: i64,
    out: &mut Projection,
) {
    let item = id.key().to_string();
    let distance_m =
        attempt.position.as_ref().zip(pin).map(|(p, (lat, lon))| {
            Haversine.distance(Point::new(p.lon, p.lat), Point::new(lon, lat))
        });
    let mut flag = |reason: String| {
        out.queue.push(QueueRow {
            kind: QueueKind::Attempt,
            subject_id: key.to_string(),
            reason,
            created_ms: now_ms,
        })
    };
    if let Some(d) = distance_m {
        if d > rules.far_attempt_metres {
            flag(format!(
                "{FAR_FROM_PIN}{d:.0} m from the delivery point's pin (more than {:.0} m)",
                rules.far_attempt_metres
            ));
        }
    }
    if let Some(notice) = &attempt.notice {
        if notice.number.is_none() {
            flag(NOTICE_WITHOUT_NUMBER.into());
        }
        if notice.waits_at.is_none() {
            flag(NOTICE_WITHOUT_PLACE.into());
        }
    }
    let waits_at = attempt
        .notice
        .as_ref()
        .and_then(|n| n.waits_at.as_ref())
        .map(|w| {
            let kind = match w.kind {
                WaitingPlaceKind::PostOffice => "post_office",
                WaitingPlaceKind::PickupPoint => "pickup_point",
                WaitingPlaceKind::Locker => "locker",
            };
            format!("{kind}:{}", w.place_id)
        });
    let (code, reason, action) = match &attempt.outcome {
        Outcome::DeliveredToPickupPoint { pickup_point } => (
            UpuCode::HeldForCollection,
            None,
            Some(format!("handed to pickup point {pickup_point}")),
        ),
        o if o.is_delivered() => (UpuCode::Delivered, None, Some(o.code().to_string())),
        o => {
            let action = match (
                &waits_at,
                attempt
                    .notice
                    .as_ref()
                    .and_then(|n| n.waits_at.as_ref())
                    .and_then(|w| w.until.clone()),
            ) {
                (Some(place), Some(until)) => {
                    format!("notice left; item held at {place} until {until}")
                }
                (Some(place), None) => format!("notice left; item held at {place}"),
                (None, _) => "item kept for another attempt".to_string(),
            };
            (
                UpuCode::NotDelivered,
                Some(o.code().to_string()),
                Some(action),
            )
        }
    };
    out.events.push(EventRow {
        item_id: item.clone(),
        code,
        at_ms: attempt.recorded_at_ms,
        reason,
        action,
        source: key.to_string(),
    });
    out.attempts.push(AttemptRow {
        id: key.to_string(),
        item_id: item,
        change_hash,
        outcome: attempt.outcome.code().into(),
        recorded_at_ms: attempt.recorded_at_ms,
        device: attempt.device.clone(),
        postman: attempt.postman.clone(),
        lat: attempt.position.as_ref().map(|p| p.lat),
        lon: attempt.position.as_ref().map(|p| p.lon),
        accuracy_m: attempt.position.as_ref().map(|p| p.accuracy_m),
        distance_m,
        notice_number: attempt.notice.as_ref().and_then(|n| n.number.clone()),
        waits_at,
        record: json(attempt),
        signed_by,
    });
}

/// Who signed a record, as reviewers and the feed read it: the device id, or `server`.
fn signer_name(signer: &Signer) -> String {
    match signer {
        Signer::Device { device } => device.clone(),
        Signer::Server { .. } => "server".into(),
    }
}

fn choice_kind(choice: &CustomerChoice) -> String {
    use tournee_sync_core::model::Choice;
    match choice.choice {
        Choice::RedeliverOn { .. } => "redeliver_on",
        Choice::PickupPoint { .. } => "pickup_point",
        Choice::Neighbour { .. } => "neighbour",
        Choice::SafePlace { .. } => "safe_place",
        Choice::Hold => "hold",
    }
    .into()
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn audit<T: serde::Serialize>(
    out: &mut Projection,
    at_ms: i64,
    actor: &str,
    action: &str,
    subject: &DocId,
    detail: &T,
) {
    out.audit.push(AuditRow {
        at_ms,
        actor: actor.to_string(),
        action: action.into(),
        subject: subject.to_string(),
        detail: json(detail),
    });
}
