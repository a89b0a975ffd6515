//! The back office's writes into the documents: changes the server makes as the back office and
//! stores like any device's, so every device receives them at its next sync.

use serde_json::Value;
use tournee_sync_core::automerge::Automerge;
use tournee_sync_core::model::{
    HouseSuffix, ProposedCorrection, ReferenceAddress, Review, ReviewDecision,
};
use tournee_sync_core::operations::{self, OperationError};
use tournee_sync_core::validator::{Role, Scope, Sender};
use tournee_sync_core::DocId;

use crate::db::{CorrectionStatus, DecisionRow, Projection, ReferenceRow};
use crate::write::{write_as, Audit, WriteError};
use crate::AppState;

/// Applies `op` to a document as the back office, through the one write pipeline
/// ([`write_as`]): validated like a device's change, stored in the change log in one transaction
/// with the rows `op` adds, and handed to devices as news.
pub async fn write_as_back_office<F>(
    app: &AppState,
    staff: &str,
    id: &DocId,
    audit: Audit<'_>,
    op: F,
) -> Result<(), WriteError>
where
    F: FnOnce(&mut Automerge, &mut Projection) -> Result<Value, OperationError>,
{
    let sender = Sender {
        role: Role::BackOffice,
        principal: staff.to_string(),
        device: None,
        scope: Scope::All,
    };
    write_as(app, &sender, id, audit, op).await.map(drop)
}

/// Approves a postman's correction: the review is recorded, and the corrected fields become
/// reference data in the document (and so on every device).
pub async fn approve_correction(
    app: &AppState,
    staff: &str,
    point: &DocId,
    correction_id: &str,
    reason: &str,
) -> Result<(), WriteError> {
    decide_corrections(
        app,
        staff,
        point,
        &[correction_id.to_string()],
        ReviewDecision::Approved,
        reason,
        false,
    )
    .await
}

/// Records the back office's decision on corrections of one delivery point, in one write: each
/// gets its review, and an approval publishes the corrected fields as reference data once (so
/// identical proposals approved together raise the address's version by one). `auto` marks an
/// approval by corroboration rather than by a person. The audit line names the corrections and
/// keeps the reference and access data before and after the decision.
pub async fn decide_corrections(
    app: &AppState,
    staff: &str,
    point: &DocId,
    corrections: &[String],
    decision: ReviewDecision,
    reason: &str,
    auto: bool,
) -> Result<(), WriteError> {
    let Some(first) = corrections.first().cloned() else {
        return Ok(());
    };
    let at_ms = app.clock.now_ms();
    let review = Review {
        decision,
        by: staff.to_string(),
        reason: reason.to_string(),
        at_ms,
    };
    let point_id = point.key().to_string();
    let (action, status) = match (decision, auto) {
        (ReviewDecision::Approved, false) => ("correction.approved", CorrectionStatus::Approved),
        (ReviewDecision::Approved, true) => {
            ("correction.auto_approved", CorrectionStatus::Approved)
        }
        (ReviewDecision::Rejected, _) => ("correction.rejected", CorrectionStatus::Rejected),
    };
    let comment = reason.to_string();
    let by = staff.to_string();
    let ids = corrections.to_vec();
    let audit = Audit {
        action,
        detail: serde_json::json!({
            "correction": first,
            "corrections": ids,
            "decision": status,
            "comment": comment,
            "auto": auto,
        }),
    };
    write_as_back_office(app, staff, point, audit, move |doc, projection| {
        let current = operations::read_delivery_point(doc)?;
        let mut proposed = None;
        for correction_id in &ids {
            let correction = current
                .corrections
                .get(correction_id)
                .ok_or_else(|| OperationError::NotFound(format!("correction {correction_id}")))?;
            if current.reviews.contains_key(correction_id) {
                return Err(OperationError::AlreadyDecided(format!(
                    "correction {correction_id}"
                )));
            }
            operations::review_correction(doc, correction_id, &review)?;
            proposed.get_or_insert_with(|| correction.proposed.clone());
            projection.decisions.push(DecisionRow {
                correction_id: correction_id.clone(),
                delivery_point_id: point_id.clone(),
                status,
                by: by.clone(),
                comment: comment.clone(),
                at_ms,
                auto,
            });
        }
        let before =
            serde_json::json!({ "reference": current.reference, "access": current.access });
        let mut after = before.clone();
        if let (ReviewDecision::Approved, Some(proposed)) = (decision, proposed) {
            let (reference, access) = corrected(&current.reference, &current.access, &proposed);
            operations::publish_reference(doc, &reference, &access)?;
            after = serde_json::json!({ "reference": reference, "access": access });
            projection.references.push(ReferenceRow {
                delivery_point_id: point_id,
                lines: reference.lines.clone(),
                pin: reference.pin.map(|p| (p.lat, p.lon)),
                version: i64::try_from(reference.version).unwrap_or(i64::MAX),
            });
        }
        Ok(serde_json::json!({ "before": before, "after": after }))
    })
    .await
}

/// The reference data with a correction applied; the address lines follow the new number.
fn corrected(
    reference: &ReferenceAddress,
    access: &tournee_sync_core::model::AccessNotes,
    proposed: &ProposedCorrection,
) -> (ReferenceAddress, tournee_sync_core::model::AccessNotes) {
    let mut reference = reference.clone();
    let mut access = access.clone();
    let old_line = street_line(&reference);
    if let Some(n) = &proposed.house_number {
        reference.house_number = n.clone();
    }
    if proposed.suffix.is_some() {
        reference.suffix = proposed.suffix;
    }
    if let Some(street) = &proposed.street {
        reference.street = street.clone();
    }
    if proposed.building.is_some() {
        reference.building = proposed.building.clone();
    }
    if proposed.pin.is_some() {
        reference.pin = proposed.pin;
    }
    let new_line = street_line(&reference);
    for line in &mut reference.lines {
        if *line == old_line {
            line.clone_from(&new_line);
        }
    }
    reference.version += 1;
    if proposed.door_code.is_some() {
        access.door_code = proposed.door_code.clone();
    }
    if proposed.floor.is_some() {
        access.floor = proposed.floor.clone();
    }
    if proposed.mailbox_position.is_some() {
        access.mailbox_position = proposed.mailbox_position.clone();
    }
    (reference, access)
}

/// The NF Z10-011 street line: "35 BIS RUE DE LA ROQUETTE".
fn street_line(r: &ReferenceAddress) -> String {
    let suffix = match r.suffix {
        Some(HouseSuffix::Bis) => " BIS",
        Some(HouseSuffix::Ter) => " TER",
        Some(HouseSuffix::Quater) => " QUATER",
        None => "",
    };
    format!("{}{suffix} {}", r.house_number, r.street)
}
