//! The one write pipeline: every write into documents goes through it, whoever makes it (a
//! phone's sync, the customer API, the back office, the demo). A writer prepares its changes and
//! has them validated by sync-core (the sync protocol for a phone's, [`validated`] for the
//! server's own on someone's behalf); [`commit`] then projects them into the central profile,
//! commits changes, projection and the writer's own rows in one transaction, updates the
//! document cache, and runs what follows a commit (corroboration of new corrections).
//!
//! Its failures are [`WriteError`], a domain error: `error.rs` maps it to HTTP, once.

use std::collections::HashMap;

use serde_json::Value;
use tournee_sync_core::automerge::{Automerge, ChangeHash};
use tournee_sync_core::operations::OperationError;
use tournee_sync_core::rules::Violation;
use tournee_sync_core::validator::{
    check_actors, check_applied_records, Accepted, Claims, Role, Sender, SERVER_OWNER,
};
use tournee_sync_core::DocId;

use crate::db::{bindings_of, AuditRow, CommitError, Projection, SyncWrite};
use crate::reconcile;
use crate::AppState;

/// Why a write was not committed. Nothing of it is stored.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The document does not exist.
    #[error("{0} does not exist")]
    DocumentNotFound(String),
    /// An entry the write names does not exist in the document.
    #[error("{0} not found in this document")]
    NotFound(String),
    /// The input broke a rule of the domain.
    #[error("{0}")]
    Rule(Violation),
    /// The item was delivered already.
    #[error("the item has already been delivered")]
    AlreadyDelivered,
    /// What the write decides was decided already (found before writing, or at commit).
    #[error("{0}")]
    AlreadyDecided(String),
    /// The validator refused a change the server made on someone's behalf.
    #[error("{0}")]
    Refused(String),
    /// The database failed; the writer may retry.
    #[error(transparent)]
    Storage(#[from] sqlx::Error),
    /// A stored document or the server's own state is at fault, not the request.
    #[error("{0}")]
    Internal(String),
}

impl From<CommitError> for WriteError {
    fn from(e: CommitError) -> Self {
        match e {
            CommitError::Conflict(why) => WriteError::AlreadyDecided(why),
            CommitError::Database(e) => WriteError::Storage(e),
        }
    }
}

/// Validated changes, ready for [`commit`].
#[derive(Default)]
pub struct Validated {
    /// What the validator accepted, per document, in the order it was accepted (a document
    /// may come more than once in one sync: each holds the document after its changes).
    pub accepted: Vec<(DocId, Accepted)>,
    /// The heads each document was loaded at, for the cache.
    pub bases: HashMap<DocId, Vec<ChangeHash>>,
}

/// What a committed write did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Committed {
    /// Changes stored.
    pub changes: usize,
}

/// Commits validated changes from `sender` with the rows the writer adds itself (`rows`:
/// events, audit lines, decisions, reference data): records are projected into the central
/// profile (except the back office's, whose rows come with the write), everything is committed in
/// one transaction, the cache takes the documents, and new corrections are checked for
/// corroboration. A write with neither changes nor rows commits nothing.
#[tracing::instrument(name = "write.commit", level = "info", skip_all)]
pub async fn commit(
    app: &AppState,
    sender: &Sender,
    validated: Validated,
    rows: Projection,
) -> Result<Committed, WriteError> {
    let Validated {
        accepted,
        mut bases,
    } = validated;
    let mut write = SyncWrite {
        projection: rows,
        ..Default::default()
    };
    let project = sender.role != Role::BackOffice;
    let pins = if project && !accepted.is_empty() {
        app.db
            .item_pins(&reconcile::items_needing_pins(
                accepted.iter().map(|(id, a)| (id, a)),
            ))
            .await?
    } else {
        HashMap::new()
    };
    let rules = reconcile::Rules {
        far_attempt_metres: app.far_attempt_metres,
    };
    let now = app.clock.now_ms();
    let mut changes = 0;
    for (id, accepted) in &accepted {
        changes += accepted.changes.len();
        write
            .projection
            .actors
            .extend(bindings_of(&accepted.bindings));
        write.signatures.extend(
            accepted
                .signatures
                .iter()
                .map(|signature| (id.clone(), signature.clone())),
        );
        write.changes.push((
            id.clone(),
            accepted
                .changes
                .iter()
                .map(|c| (c.hash().as_ref().to_vec(), c.raw_bytes().to_vec()))
                .collect(),
        ));
        if project {
            reconcile::project(
                &pins,
                rules,
                id,
                accepted,
                sender,
                now,
                &mut write.projection,
            );
        }
    }
    // The feed's events, from the rows the write commits: in the same transaction.
    let events = crate::events::of_projection(&write.projection, now);
    write.projection.feed.extend(events);
    if write.changes.is_empty() && write.projection.is_empty() {
        return Ok(Committed::default());
    }
    let corrections = write.projection.corrections.clone();
    let corroborate = !corrections.is_empty();
    app.commits.commit(write).await?;
    // The latest state of each document replaces its cached copy.
    let mut latest: HashMap<DocId, Automerge> = HashMap::new();
    for (id, accepted) in accepted {
        latest.insert(id, accepted.doc);
    }
    for (id, doc) in latest {
        let base = bases.remove(&id).unwrap_or_default();
        app.docs.store(&id, &base, doc);
    }
    if corroborate {
        // The write is committed and stands; a failed automatic approval leaves the
        // corrections in the queue for a reviewer.
        // Boxed: an approval is itself a write through this pipeline.
        let corroborated = Box::pin(crate::review::corroborate(app, &corrections));
        if let Err(e) = corroborated.await {
            tracing::warn!(error = %e, "corroboration check failed");
        }
    }
    Ok(Committed { changes })
}

/// What the audit line of a write says: the action, and what a reader needs to tell this write
/// from another on the same document (a JSON object; the number of changes is added to it).
#[derive(Debug, Clone)]
pub struct Audit<'a> {
    /// E.g. `choice.made`, `correction.approved`.
    pub action: &'a str,
    /// E.g. the choice's or the correction's id, the reviewer's comment.
    pub detail: Value,
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

/// Writes into a document on behalf of `sender` (a customer through the API, the back office):
/// `op` changes the document and may add rows; the change is checked by the validator exactly
/// as a device's would be, authored under a fresh actor of the server's, and [`commit`]ted with
/// its audit line. Devices receive it as news. What `op` returns (a JSON object, or null) is
/// added to the audit line's detail: what it read and wrote, such as a decision's values
/// before and after.
#[tracing::instrument(name = "write.as", level = "info", skip_all)]
pub async fn write_as<F>(
    app: &AppState,
    sender: &Sender,
    id: &DocId,
    audit: Audit<'_>,
    op: F,
) -> Result<Committed, WriteError>
where
    F: FnOnce(&mut Automerge, &mut Projection) -> Result<Value, OperationError>,
{
    let before = app
        .docs
        .load(&app.db, id)
        .await?
        .ok_or_else(|| WriteError::DocumentNotFound(id.to_string()))?;
    let mut after = before.fork();
    let mut rows = Projection::default();
    let audited = op(&mut after, &mut rows).map_err(|e| match e {
        OperationError::Invalid(v) => WriteError::Rule(v),
        OperationError::NotFound(what) => WriteError::NotFound(what),
        OperationError::AlreadyDelivered => WriteError::AlreadyDelivered,
        OperationError::AlreadyDecided(what) => {
            WriteError::AlreadyDecided(format!("{what} has already been decided"))
        }
        // The stored document is at fault, not the request.
        OperationError::Schema(why) => WriteError::Internal(format!("{id}: {why}")),
    })?;
    let Some(accepted) = validated(app, id, &before, after, sender)? else {
        return Ok(Committed::default());
    };
    let mut detail = audit.detail;
    if let Some(fields) = detail.as_object_mut() {
        if let Value::Object(extra) = audited {
            fields.extend(extra);
        }
        fields.insert("changes".into(), accepted.changes.len().into());
    }
    rows.audit.push(AuditRow {
        at_ms: app.clock.now_ms(),
        actor: format!("{}:{}", sender.role.as_str(), sender.principal),
        action: audit.action.to_string(),
        subject: id.to_string(),
        detail: detail.to_string(),
    });
    let validated = Validated {
        accepted: vec![(id.clone(), accepted)],
        bases: HashMap::from([(id.clone(), before.get_heads())]),
    };
    let committed = commit(app, sender, validated, rows).await?;
    // Every write on someone's behalf (a decision, a customer's choice) is one info line: the
    // action, the document and who, never the values written (they may be personal).
    tracing::info!(
        action = audit.action,
        subject = %id,
        role = sender.role.as_str(),
        principal = %sender.principal,
        changes = committed.changes,
        "written"
    );
    Ok(committed)
}

/// Checks what the server wrote into `after` (a fork of `before`) on behalf of `sender`, as
/// the validator checks a device's changes; `None` when it changed nothing. The changes are
/// authored under the fork's fresh actor, bound to the server: no device may write under it;
/// each is signed by the server's key, as written for `sender`.
pub fn validated(
    app: &AppState,
    id: &DocId,
    before: &Automerge,
    after: Automerge,
    sender: &Sender,
) -> Result<Option<Accepted>, WriteError> {
    let changes = after.get_changes(&before.get_heads());
    if changes.is_empty() {
        return Ok(None);
    }
    let (written, records) = check_applied_records(id, before, &after, &changes, sender)
        .map_err(|refusal| WriteError::Refused(refusal.to_string()))?;
    let bindings = check_actors(&changes, &Claims::default(), SERVER_OWNER)
        .map_err(|refusal| WriteError::Internal(refusal.to_string()))?;
    let signatures = changes
        .iter()
        .map(|change| {
            app.signing
                .sign(id, &change.hash(), sender.role, &sender.principal)
        })
        .collect();
    Ok(Some(Accepted {
        doc: after,
        changes,
        written,
        records,
        bindings,
        signatures,
    }))
}
