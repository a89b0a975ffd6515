//! The back office's writes into the documents: changes the server makes as the back office and
//! stores like any device's, so every device receives them at its next sync.

use tournee_sync_core::automerge::Automerge;
use tournee_sync_core::model::{
    HouseSuffix, ProposedCorrection, ReferenceAddress, Review, ReviewDecision,
};
use tournee_sync_core::operations::{self, OperationError};
use tournee_sync_core::validator::{
    check_actors, check_applied_records, Accepted, Claims, Role, Scope, Sender, SERVER_OWNER,
};
use tournee_sync_core::DocId;

use crate::db::{bindings_of, AuditRow, DecisionRow, Projection, ReferenceRow, SyncWrite};
use crate::error::ApiError;
use crate::reconcile;
use crate::scope::now_ms;
use crate::AppState;

/// Applies `op` to a document as the back office: validated like a device's change, stored in
/// the change log in one transaction with the rows `op` adds, and handed to devices as news.
pub async fn write_as_back_office<F>(
    app: &AppState,
    staff: &str,
    id: &DocId,
    audit: Audit<'_>,
    op: F,
) -> Result<(), ApiError>
where
    F: FnOnce(&mut Automerge, &mut Projection) -> Result<(), OperationError>,
{
    let sender = Sender {
        role: Role::BackOffice,
        principal: staff.to_string(),
        device: None,
        scope: Scope::All,
    };
    write_as(app, &sender, id, audit, op).await
}

/// What the audit line of a write says: the action, and what a reader needs to tell this write
/// from another on the same document (a JSON object; the number of changes is added to it).
#[derive(Debug, Clone)]
pub struct Audit<'a> {
    /// E.g. `choice.made`, `correction.approved`.
    pub action: &'a str,
    /// E.g. the choice's or the correction's id, the reviewer's comment.
    pub detail: serde_json::Value,
}

impl<'a> Audit<'a> {
    /// An audit line naming only the action.
    pub fn action(action: &'a str) -> Self {
        Self {
            action,
            detail: serde_json::json!({}),
        }
    }
}

/// Applies `op` to a document on behalf of `sender` (a customer using the API, or the back
/// office): checked by the validator exactly as a device's change would be, projected like a
/// synced one, and committed with its audit line in one transaction. Devices receive it as news.
pub async fn write_as<F>(
    app: &AppState,
    sender: &Sender,
    id: &DocId,
    audit: Audit<'_>,
    op: F,
) -> Result<(), ApiError>
where
    F: FnOnce(&mut Automerge, &mut Projection) -> Result<(), OperationError>,
{
    let before = app
        .docs
        .load(&app.db, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("{id} does not exist")))?;
    let mut after = before.fork();
    let mut projection = Projection::default();
    op(&mut after, &mut projection).map_err(|e| match e {
        OperationError::Invalid(v) => ApiError::Unprocessable(v.to_string()),
        OperationError::NotFound(what) => ApiError::NotFound(what),
        OperationError::AlreadyDelivered | OperationError::AlreadyDecided(_) => {
            ApiError::Conflict(e.to_string())
        }
        // The stored document is at fault, not the request.
        OperationError::Schema(why) => ApiError::Internal(format!("{id}: {why}")),
    })?;
    let changes = after.get_changes(&before.get_heads());
    if changes.is_empty() {
        return Ok(());
    }
    let (written, records) = check_applied_records(id, &before, &after, &changes, sender)
        .map_err(|refusal| ApiError::Unprocessable(refusal.to_string()))?;
    // The server writes on the sender's behalf under a fresh actor of its own (the fork's),
    // bound to the server: no device may write under it.
    let bindings = check_actors(&changes, &Claims::default(), SERVER_OWNER)
        .map_err(|refusal| ApiError::Internal(refusal.to_string()))?;
    projection.actors = bindings_of(&bindings);
    let mut write = SyncWrite {
        projection,
        ..Default::default()
    };
    write.changes.push((
        id.clone(),
        changes
            .iter()
            .map(|c| (c.hash().as_ref().to_vec(), c.raw_bytes().to_vec()))
            .collect(),
    ));
    let accepted = Accepted {
        doc: after,
        changes,
        written,
        records,
        bindings,
    };
    if sender.role != Role::BackOffice {
        let rules = reconcile::Rules {
            far_attempt_metres: app.far_attempt_metres,
        };
        let pins = app
            .db
            .item_pins(&reconcile::items_needing_pins([(id, &accepted)]))
            .await?;
        reconcile::project(
            &pins,
            rules,
            id,
            &accepted,
            sender,
            now_ms(),
            &mut write.projection,
        );
    }
    let mut detail = audit.detail;
    if let Some(fields) = detail.as_object_mut() {
        fields.insert("changes".into(), accepted.changes.len().into());
    }
    write.projection.audit.push(AuditRow {
        at_ms: now_ms(),
        actor: format!("{}:{}", sender.role.as_str(), sender.principal),
        action: audit.action.to_string(),
        subject: id.to_string(),
        detail: detail.to_string(),
    });
    app.db.commit_sync(&write).await?;
    app.docs.store(id, &before.get_heads(), accepted.doc);
    Ok(())
}

/// Approves a postman's correction: the review is recorded, and the corrected fields become
/// reference data in the document (and so on every device).
pub async fn approve_correction(
    app: &AppState,
    staff: &str,
    point: &DocId,
    correction_id: &str,
    reason: &str,
) -> Result<(), ApiError> {
    decide_correction(
        app,
        staff,
        point,
        correction_id,
        ReviewDecision::Approved,
        reason,
        false,
    )
    .await
}

/// Records the back office's decision on a correction in the delivery point's document; an
/// approval also publishes the corrected fields as reference data. `auto` marks an approval by
/// corroboration rather than by a person.
pub async fn decide_correction(
    app: &AppState,
    staff: &str,
    point: &DocId,
    correction_id: &str,
    decision: ReviewDecision,
    reason: &str,
    auto: bool,
) -> Result<(), ApiError> {
    let at_ms = now_ms();
    let review = Review {
        decision,
        by: staff.to_string(),
        reason: reason.to_string(),
        at_ms,
    };
    let correction_id = correction_id.to_string();
    let point_id = point.key().to_string();
    let (action, status) = match (decision, auto) {
        (ReviewDecision::Approved, false) => ("correction.approved", "approved"),
        (ReviewDecision::Approved, true) => ("correction.auto_approved", "approved"),
        (ReviewDecision::Rejected, _) => ("correction.rejected", "rejected"),
    };
    let comment = reason.to_string();
    let by = staff.to_string();
    let audit = Audit {
        action,
        detail: serde_json::json!({
            "correction": correction_id,
            "decision": status,
            "comment": comment,
            "auto": auto,
        }),
    };
    write_as_back_office(app, staff, point, audit, move |doc, projection| {
        let current = operations::read_delivery_point(doc)?;
        let correction = current
            .corrections
            .get(&correction_id)
            .ok_or_else(|| OperationError::NotFound(format!("correction {correction_id}")))?;
        if current.reviews.contains_key(&correction_id) {
            return Err(OperationError::AlreadyDecided(format!(
                "correction {correction_id}"
            )));
        }
        operations::review_correction(doc, &correction_id, &review)?;
        if decision == ReviewDecision::Approved {
            let (reference, access) =
                corrected(&current.reference, &current.access, &correction.proposed);
            operations::publish_reference(doc, &reference, &access)?;
            projection.references.push(ReferenceRow {
                delivery_point_id: point_id,
                lines: reference.lines.clone(),
                pin: reference.pin.map(|p| (p.lat, p.lon)),
                version: i64::try_from(reference.version).unwrap_or(i64::MAX),
            });
        }
        projection.decisions.push(DecisionRow {
            correction_id: correction_id.clone(),
            status: status.into(),
            by,
            comment,
            at_ms,
            auto,
        });
        Ok(())
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
