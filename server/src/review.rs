//! The back office's review of field updates: deciding a queue entry, and approving a correction
//! that enough postmen proposed identically without waiting for a reviewer.

use std::collections::BTreeSet;

use serde_json::Value;
use tournee_sync_core::model::ReviewDecision;
use tournee_sync_core::{rules, DocId};

use crate::backoffice::decide_corrections;
use crate::db::{AuditRow, CorrectionRow, CorrectionStatus, EntryStatus, QueueEntryRow, QueueKind};
use crate::error::ApiError;
use crate::events::{Decided, NewEvent, Payload, SubjectKind};
use crate::write::WriteError;
use crate::AppState;

/// The reviewer's name on automatic approvals.
pub const CORROBORATION: &str = "corroboration";

/// The proposed fields of a projected correction (its record without who, when and where).
pub fn proposed_fields(record: &str) -> Value {
    serde_json::from_str::<Value>(record)
        .ok()
        .and_then(|mut v| v.get_mut("proposed").map(Value::take))
        .unwrap_or(Value::Null)
}

/// The corrections of the same delivery point proposing exactly the same fields and standing
/// as this one does (pending together, or decided together), and the distinct postmen who
/// proposed them. A decided entry therefore still shows who corroborated it.
pub async fn same_proposals(
    app: &AppState,
    correction: &CorrectionRow,
) -> Result<SameProposals, ApiError> {
    let of_point = app
        .db
        .corrections_for_point(&correction.delivery_point_id)
        .await?;
    Ok(same_proposals_among(correction, &of_point))
}

/// [`same_proposals`] among `of_point`, the corrections of the correction's delivery point
/// with their status.
pub fn same_proposals_among(
    correction: &CorrectionRow,
    of_point: &[(CorrectionRow, CorrectionStatus)],
) -> SameProposals {
    let proposed = proposed_fields(&correction.record);
    let standing = of_point
        .iter()
        .find(|(row, _)| row.id == correction.id)
        .map_or(CorrectionStatus::Pending, |(_, status)| *status);
    let same: Vec<CorrectionRow> = of_point
        .iter()
        .filter(|(row, status)| *status == standing && proposed_fields(&row.record) == proposed)
        .map(|(row, _)| row.clone())
        .collect();
    let postmen = same.iter().map(|r| r.proposed_by.clone()).collect();
    SameProposals {
        status: standing,
        corrections: same,
        postmen,
    }
}

/// Corrections that propose the same fields as one correction and stand as it does.
#[derive(Debug, Clone)]
pub struct SameProposals {
    /// How they stand.
    pub status: CorrectionStatus,
    /// The corrections, the one asked about included.
    pub corrections: Vec<CorrectionRow>,
    /// The distinct postmen who proposed them.
    pub postmen: BTreeSet<String>,
}

/// After a sync stored new corrections: approves those that `app.corroboration` different
/// postmen proposed identically, recorded as automatic in the documents and the audit log.
pub async fn corroborate(app: &AppState, new: &[CorrectionRow]) -> Result<(), ApiError> {
    if app.corroboration == 0 {
        return Ok(());
    }
    app.metrics.corroboration_runs.inc();
    // A group of identical proposals is examined once, whichever of its corrections comes first.
    let mut examined = std::collections::HashSet::new();
    for correction in new {
        if examined.contains(&correction.id) {
            continue;
        }
        let SameProposals {
            status,
            corrections: same,
            postmen,
        } = same_proposals(app, correction).await?;
        examined.extend(same.iter().map(|row| row.id.clone()));
        if status != CorrectionStatus::Pending || postmen.len() < app.corroboration as usize {
            continue;
        }
        let point = DocId::delivery_point(&correction.delivery_point_id)
            .map_err(|v| ApiError::internal(v.to_string()))?;
        let reason = format!(
            "proposed identically by {} postmen ({})",
            postmen.len(),
            postmen.iter().cloned().collect::<Vec<_>>().join(", ")
        );
        // One write approves them all and publishes the address once.
        let ids: Vec<String> = same.into_iter().map(|row| row.id).collect();
        match decide_corrections(
            app,
            CORROBORATION,
            &point,
            &ids,
            ReviewDecision::Approved,
            &reason,
            true,
        )
        .await
        {
            // A reviewer decided one of them meanwhile: the sweep looks at the rest again.
            Err(WriteError::AlreadyDecided(_)) => {}
            other => other?,
        }
    }
    Ok(())
}

/// How often pending corrections are checked for corroboration again.
pub const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Checks the pending corrections for corroboration in the background until aborted, so an
/// approval that failed right after a sync (or a threshold lowered at restart) is not lost.
pub async fn sweep(app: std::sync::Arc<AppState>) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    tick.tick().await;
    loop {
        tick.tick().await;
        if app.corroboration == 0 {
            continue;
        }
        let outcome = match app.db.pending_corrections(1_000).await {
            Ok(pending) => corroborate(&app, &pending).await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = outcome {
            tracing::warn!(error = %e, "corroboration sweep failed; will retry");
        }
    }
}

/// Decides an open queue entry. A correction's decision is written into its delivery point's
/// document (an approval publishes the corrected address); a flagged attempt's or a dispute's
/// is recorded in the queue and the audit log.
pub async fn decide(
    app: &AppState,
    staff: &str,
    entry: &QueueEntryRow,
    approve: bool,
    comment: &str,
) -> Result<(), ApiError> {
    rules::required_text(
        rules::Field::ReviewReason,
        comment,
        rules::MAX_FREE_TEXT_CHARS,
    )
    .map_err(|v| ApiError::violation(&v, "comment"))?;
    if entry.status != EntryStatus::Open {
        return Err(ApiError::conflict(
            "already_decided",
            format!("queue entry {} is already {}", entry.id, entry.status),
        ));
    }
    let status = if approve {
        EntryStatus::Approved
    } else {
        EntryStatus::Rejected
    };
    if entry.kind == QueueKind::Correction {
        let (correction, _) = app.db.correction(&entry.subject_id).await?.ok_or_else(|| {
            ApiError::not_found("not_found", format!("correction {}", entry.subject_id))
        })?;
        let point = DocId::delivery_point(&correction.delivery_point_id)
            .map_err(|v| ApiError::internal(v.to_string()))?;
        let decision = if approve {
            ReviewDecision::Approved
        } else {
            ReviewDecision::Rejected
        };
        return decide_corrections(
            app,
            staff,
            &point,
            &[correction.id],
            decision,
            comment,
            false,
        )
        .await
        .map_err(ApiError::from);
    }
    let audit = AuditRow {
        at_ms: app.clock.now_ms(),
        actor: format!("back_office:{staff}"),
        action: format!("{}.{status}", entry.kind),
        subject: format!("attempt:{}", entry.subject_id),
        detail: serde_json::json!({ "queue_id": entry.id, "comment": comment }).to_string(),
    };
    let decided = Decided {
        decided: entry.subject_id.clone(),
        decision: status.as_str().to_string(),
        decided_by: staff.to_string(),
        automatic: false,
    };
    let payload = if entry.kind == QueueKind::Dispute {
        Payload::DisputeDecided(decided)
    } else {
        Payload::AttemptReviewed(decided)
    };
    let item = app
        .db
        .attempt(&entry.subject_id)
        .await?
        .map(|a| a.item_id)
        .unwrap_or_default();
    let event = NewEvent::new(
        SubjectKind::Item,
        &item,
        audit.at_ms,
        &entry.id.to_string(),
        payload,
    );
    if !app
        .db
        .decide_entry(entry.id, status, staff, comment, &audit, &event)
        .await?
    {
        return Err(ApiError::conflict(
            "already_decided",
            format!("queue entry {} was decided meanwhile", entry.id),
        ));
    }
    // The action and ids only: the comment may name people.
    tracing::info!(
        action = %audit.action,
        subject = %audit.subject,
        actor = %audit.actor,
        queue_id = entry.id,
        "decided"
    );
    Ok(())
}
