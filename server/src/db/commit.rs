//! The write of a sync: its accepted changes and everything they project into the central
//! profile (records, queue entries, UPU events and item statuses, decisions, reference data,
//! actor bindings, loads, feed events and audit lines), in one transaction.

use std::collections::HashSet;

use sqlx::Row;
use tournee_sync_core::signing::ChangeSignature;
use tournee_sync_core::DocId;

use super::actors::{self, now_ms};
use super::loads::{self, apply_loads, Load};
use super::{
    events, proofs, review, signatures, AuditRow, CorrectionStatus, Database, EntryStatus,
    EventRow, Projection, ROWS_PER_INSERT,
};

/// Stores changes on SQLite: the head of a multi-row insert of `(doc_id, hash, bytes)`; their
/// position is their `seq` (one writer at a time: they commit in that order).
const INSERT_CHANGES_SQLITE: &str = "INSERT INTO changes (doc_id, hash, bytes) ";
/// Stores changes on PostgreSQL: the head of a multi-row insert of `(doc_id, hash, bytes,
/// position)`.
const INSERT_CHANGES_POSTGRES: &str = "INSERT INTO changes (doc_id, hash, bytes, position) ";
/// The first position of the transaction's changes on PostgreSQL: its id shifted left by
/// [`POSITION_BITS`]; the changes take the positions after it in the order they are stored.
/// Readers read only positions below the oldest transaction still running
/// (`news::BOUND_POSTGRES`), so writers need no lock shared by every instance.
const FIRST_POSITION: &str = "SELECT pg_current_xact_id()::text::bigint << 20";
/// The bits of a position that number a change within its transaction.
const POSITION_BITS: u32 = 20;
/// The tail of [`INSERT_CHANGES`]: a change stored before is skipped; the documents of those
/// stored now are returned.
const INSERT_CHANGES_TAIL: &str = " ON CONFLICT (doc_id, hash) DO NOTHING RETURNING doc_id";

/// Projects attempts: the head of a multi-row insert.
const INSERT_ATTEMPTS: &str = "INSERT INTO attempts (id, item_id, change_hash, outcome, \
     recorded_at_ms, device, postman, lat, lon, accuracy_m, distance_m, notice_number, waits_at, \
     record, signed_by) ";
/// The tail of [`INSERT_ATTEMPTS`]: returns the rows inserted, or replayed by the same change.
const INSERT_ATTEMPTS_TAIL: &str =
    " ON CONFLICT (id) DO UPDATE SET change_hash = excluded.change_hash \
     WHERE attempts.item_id = excluded.item_id AND attempts.change_hash = excluded.change_hash \
     RETURNING id";

/// Projects choices: the head of a multi-row insert.
const INSERT_CHOICES: &str = "INSERT INTO choices (id, item_id, change_hash, kind, made_at_ms, \
     made_by, applicable, reason, record) ";
/// The tail of [`INSERT_CHOICES`]: returns the rows inserted, or replayed by the same change.
const INSERT_CHOICES_TAIL: &str =
    " ON CONFLICT (id) DO UPDATE SET change_hash = excluded.change_hash \
     WHERE choices.item_id = excluded.item_id AND choices.change_hash = excluded.change_hash \
     RETURNING id";

/// Projects corrections: the head of a multi-row insert.
const INSERT_CORRECTIONS: &str = "INSERT INTO corrections (id, delivery_point_id, change_hash, \
     proposed_by, device, proposed_at_ms, status, record) ";
/// The tail of [`INSERT_CORRECTIONS`]: returns the rows inserted, or replayed by the same
/// change.
const INSERT_CORRECTIONS_TAIL: &str =
    " ON CONFLICT (id) DO UPDATE SET change_hash = excluded.change_hash \
     WHERE corrections.delivery_point_id = excluded.delivery_point_id \
     AND corrections.change_hash = excluded.change_hash \
     RETURNING id";

/// A delivery point's standing preferences, latest wins.
const UPSERT_PREFERENCES: &str = "INSERT INTO preferences (delivery_point_id, safe_place, \
     preferred_neighbour, preferred_pickup_point, never_to_neighbour, updated_seq) \
     VALUES ($1, $2, $3, $4, $5, 0) \
     ON CONFLICT (delivery_point_id) DO UPDATE SET safe_place = excluded.safe_place, \
     preferred_neighbour = excluded.preferred_neighbour, \
     preferred_pickup_point = excluded.preferred_pickup_point, \
     never_to_neighbour = excluded.never_to_neighbour";

/// Queues entries for review: the head of a multi-row insert.
const INSERT_QUEUE: &str =
    "INSERT INTO review_queue (kind, subject_id, reason, status, created_ms) ";
/// The tail of [`INSERT_QUEUE`]: an entry queued before is not queued again.
const INSERT_QUEUE_TAIL: &str = " ON CONFLICT (kind, subject_id, reason) DO NOTHING";

/// Records UPU events: the head of a multi-row insert.
const INSERT_ITEM_EVENTS: &str =
    "INSERT INTO item_events (item_id, code, at_ms, reason, action, source) ";
/// The tail of [`INSERT_ITEM_EVENTS`]: an event recorded before is skipped.
const INSERT_ITEM_EVENTS_TAIL: &str = " ON CONFLICT (item_id, code, source) DO NOTHING";

/// Item statuses from one event per item: the head, before the `(item, code, at)` values.
const STATUS_UPDATE_HEAD: &str = "WITH v(item, code, at) AS (VALUES ";
/// Item statuses from one event per item: after the values. EMI is final; a doorstep event
/// (EMH, EDH) supersedes arrival and departure (EMG, EDG) whatever the clocks say.
const STATUS_UPDATE_TAIL: &str = ") UPDATE items \
     SET status = (SELECT code FROM v WHERE v.item = items.id), \
     updated_at_ms = (SELECT at FROM v WHERE v.item = items.id) \
     WHERE id IN (SELECT item FROM v) AND status <> 'EMI' \
     AND EXISTS (SELECT 1 FROM v WHERE v.item = items.id AND (items.updated_at_ms <= v.at \
     OR v.code = 'EMI' OR (items.status IN ('EMG', 'EDG') AND v.code IN ('EMH', 'EDH'))))";
/// [`STATUS_UPDATE_TAIL`] on PostgreSQL, as a join: the sub-selects over `v` cost a hash of `v`
/// per use and two lookups per row. `EXPLAIN ANALYZE` of 150 events among 1,000,000 items:
/// 7.4 ms as a sub-select, 1.8 ms as a join by the items' key (among 30,000 items the planner
/// scans the table either way: 9.2 and 6.2 ms).
const STATUS_UPDATE_TAIL_POSTGRES: &str =
    ") UPDATE items SET status = v.code, updated_at_ms = v.at \
     FROM v WHERE items.id = v.item AND items.status <> 'EMI' \
     AND (items.updated_at_ms <= v.at OR v.code = 'EMI' \
     OR (items.status IN ('EMG', 'EDG') AND v.code IN ('EMH', 'EDH')))";
/// An item's status from one event, by the rules of [`STATUS_UPDATE_TAIL`].
const UPDATE_STATUS: &str = "UPDATE items SET status = $2, updated_at_ms = $3 \
     WHERE id = $1 AND status <> 'EMI' \
     AND (updated_at_ms <= $3 OR $2 = 'EMI' OR (status IN ('EMG', 'EDG') AND $2 IN ('EMH', 'EDH')))";

/// Decides a correction that is still pending.
const DECIDE_CORRECTION: &str =
    "UPDATE corrections SET status = $2 WHERE id = $1 AND status = 'pending'";
/// Closes a correction's open queue entry with its decision.
const CLOSE_CORRECTION_ENTRY: &str = "UPDATE review_queue SET status = $2, decided_by = $3, \
     decision_comment = $4, decided_at_ms = $5, auto_approved = $6 \
     WHERE kind = 'correction' AND subject_id = $1 AND status = 'open'";

/// Publishes a delivery point's reference data.
const PUBLISH_REFERENCE: &str =
    "UPDATE delivery_points SET lines = $2, lat = $3, lon = $4, version = $5 WHERE id = $1";

/// Why a write was not committed. Nothing of it is stored in either case.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The state it was prepared against changed meanwhile (e.g. a correction another reviewer
    /// decided first).
    #[error("{0}")]
    Conflict(String),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// An Automerge change as stored: `(hash, bytes)`.
pub type StoredChange = (Vec<u8>, Vec<u8>);

/// Everything one sync stores, written in one transaction.
#[derive(Debug, Default)]
pub struct SyncWrite {
    /// Per document, the accepted changes.
    pub changes: Vec<(DocId, Vec<StoredChange>)>,
    /// Their signatures, stored beside them.
    pub signatures: Vec<(DocId, ChangeSignature)>,
    /// The rows they project into.
    pub projection: Projection,
}

impl Database {
    /// One write alone: [`Database::commit_group`] of one.
    pub async fn commit_sync(&self, write: &SyncWrite) -> Result<(), CommitError> {
        self.commit_group(&[write]).await
    }

    /// Stores writes (several syncs' accepted changes and their projections: a group commit)
    /// in one transaction; changes and rows stored before are skipped, so a replayed sync is
    /// projected once. A decision on a correction that is no longer pending is a
    /// [`CommitError::Conflict`], and then nothing of the group is stored: the losing
    /// reviewer's changes never reach the documents (`group_commit` commits the group's other
    /// writes again without it).
    #[tracing::instrument(name = "sql.commit_group", level = "info", skip_all, fields(writes = writes.len()))]
    pub async fn commit_group(&self, writes: &[&SyncWrite]) -> Result<(), CommitError> {
        let total: usize = writes
            .iter()
            .flat_map(|w| w.changes.iter().map(|(_, c)| c.len()))
            .sum();
        if total >= 1 << POSITION_BITS {
            return Err(CommitError::Conflict(format!(
                "{total} changes are more than one transaction can position"
            )));
        }
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let mut next_position: Option<i64> = match self {
                Database::Sqlite(_) => None,
                Database::Postgres(_) => {
                    Some(sqlx::query_scalar(FIRST_POSITION).fetch_one(&mut *tx).await?)
                }
            };
            for write in writes {
            // Documents that got a change they did not have: only their audit lines are new.
            let mut changed: HashSet<String> = HashSet::new();
            let rows: Vec<(&str, &StoredChange)> = write
                .changes
                .iter()
                .flat_map(|(doc, changes)| changes.iter().map(move |c| (doc.as_str(), c)))
                .collect();
            for chunk in rows.chunks(ROWS_PER_INSERT) {
                let mut insert = sqlx::QueryBuilder::new(match next_position {
                    None => INSERT_CHANGES_SQLITE,
                    Some(_) => INSERT_CHANGES_POSTGRES,
                });
                insert.push_values(chunk, |mut row, (doc, (hash, bytes))| {
                    row.push_bind(*doc).push_bind(hash).push_bind(bytes);
                    if let Some(position) = next_position.as_mut() {
                        *position += 1;
                        row.push_bind(*position);
                    }
                });
                insert.push(INSERT_CHANGES_TAIL);
                for stored in insert.build().fetch_all(&mut *tx).await? {
                    changed.insert(stored.try_get("doc_id")?);
                }
            }
            // Each change's signature beside it (the first one stored stays).
            for chunk in write.signatures.chunks(ROWS_PER_INSERT) {
                let mut insert = sqlx::QueryBuilder::new(signatures::INSERT_SIGNATURES);
                insert.push_values(chunk, |mut row, (doc, signature)| {
                    row.push_bind(doc.as_str())
                        .push_bind(&signature.hash)
                        .push_bind(signatures::signer_text(&signature.signer))
                        .push_bind(&signature.signature);
                });
                insert.push(signatures::INSERT_SIGNATURES_TAIL);
                insert.build().execute(&mut *tx).await?;
            }
            // The actors the changes are written under, bound in the transaction that stores
            // them: an actor another owner bound meanwhile fails the write.
            let now = now_ms();
            insert_landing_rows!(tx, "actor bindings", actors::BIND_ACTORS, write.projection.actors, |row, (actor, owner)| {
                row.push_bind(actor).push_bind(owner).push_bind(now);
            }, actors::BIND_ACTORS_TAIL);
            // Reference data first: the rows below refer to it.
            apply_loads!(self, tx, &write.projection.loads);
            // Records are keyed by their key alone: a row that does not land (a key another
            // document's record holds) fails the write rather than being skipped; a replay of
            // the same change finds its own row and lands.
            let p = &write.projection;
            insert_landing_rows!(tx, "attempts", INSERT_ATTEMPTS, p.attempts, |row, a| {
                row.push_bind(&a.id).push_bind(&a.item_id).push_bind(&a.change_hash).push_bind(&a.outcome)
                    .push_bind(a.recorded_at_ms).push_bind(&a.device).push_bind(&a.postman).push_bind(a.lat)
                    .push_bind(a.lon).push_bind(a.accuracy_m).push_bind(a.distance_m)
                    .push_bind(&a.notice_number).push_bind(&a.waits_at).push_bind(&a.record)
                    .push_bind(&a.signed_by);
            }, INSERT_ATTEMPTS_TAIL);
            // The photos and signatures they name: only their device may upload those files.
            insert_rows!(tx, proofs::INSERT_REFERENCES, proofs::references(&p.attempts), |row, r| {
                row.push_bind(&r.sha256).push_bind(&r.attempt_id).push_bind(&r.device).push_bind(&r.kind);
            }, proofs::INSERT_REFERENCES_TAIL);
            insert_landing_rows!(tx, "choices", INSERT_CHOICES, p.choices, |row, c| {
                row.push_bind(&c.id).push_bind(&c.item_id).push_bind(&c.change_hash).push_bind(&c.kind)
                    .push_bind(c.made_at_ms).push_bind(&c.made_by).push_bind(c.applicable)
                    .push_bind(&c.reason).push_bind(&c.record);
            }, INSERT_CHOICES_TAIL);
            insert_landing_rows!(tx, "corrections", INSERT_CORRECTIONS, p.corrections, |row, c| {
                row.push_bind(&c.id).push_bind(&c.delivery_point_id).push_bind(&c.change_hash)
                    .push_bind(&c.proposed_by).push_bind(&c.device).push_bind(c.proposed_at_ms)
                    .push_bind(CorrectionStatus::Pending).push_bind(&c.record);
            }, INSERT_CORRECTIONS_TAIL);
            for pr in &p.preferences {
                sqlx::query(UPSERT_PREFERENCES)
                    .bind(&pr.delivery_point_id).bind(&pr.safe_place).bind(&pr.preferred_neighbour)
                    .bind(&pr.preferred_pickup_point).bind(pr.never_to_neighbour)
                    .execute(&mut *tx).await?;
            }
            insert_rows!(tx, INSERT_QUEUE, p.queue, |row, q| {
                row.push_bind(q.kind).push_bind(&q.subject_id).push_bind(&q.reason)
                    .push_bind(EntryStatus::Open).push_bind(q.created_ms);
            }, INSERT_QUEUE_TAIL);
            insert_rows!(tx, INSERT_ITEM_EVENTS, p.events, |row, e| {
                row.push_bind(&e.item_id).push_bind(e.code).push_bind(e.at_ms)
                    .push_bind(&e.reason).push_bind(&e.action).push_bind(&e.source);
            }, INSERT_ITEM_EVENTS_TAIL);
            // The latest event sets the status, with two rules that hold whatever the clocks
            // say (arrival and EDG are stamped by the server, doorstep events by the phone):
            // final delivery (EMI) is final, and a doorstep event (EMH, EDH) supersedes
            // arrival and departure for delivery. Items with one event in this write are
            // updated together; an item with several takes them one by one, in order.
            let mut events_of: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
            for e in &p.events {
                *events_of.entry(e.item_id.as_str()).or_default() += 1;
            }
            let (single, several): (Vec<&EventRow>, Vec<&EventRow>) =
                p.events.iter().partition(|e| events_of[e.item_id.as_str()] == 1);
            for chunk in single.chunks(ROWS_PER_INSERT) {
                // `WHERE id IN (SELECT item FROM v)`, not `UPDATE … FROM v`: with bound values
                // SQLite's planner scanned all of `items` for the latter (92 ms a batch at
                // 500,000 items, and growing), while this is an index seek per event.
                let mut update = sqlx::QueryBuilder::new(STATUS_UPDATE_HEAD);
                for (i, e) in chunk.iter().enumerate() {
                    if i > 0 {
                        update.push(", ");
                    }
                    update.push("(CAST(").push_bind(&e.item_id).push(" AS TEXT), CAST(")
                        .push_bind(e.code).push(" AS TEXT), CAST(")
                        .push_bind(e.at_ms).push(" AS BIGINT))");
                }
                update.push(match self {
                    Database::Sqlite(_) => STATUS_UPDATE_TAIL,
                    Database::Postgres(_) => STATUS_UPDATE_TAIL_POSTGRES,
                });
                update.build().execute(&mut *tx).await?;
            }
            for e in several {
                sqlx::query(UPDATE_STATUS)
                    .bind(&e.item_id).bind(e.code).bind(e.at_ms)
                    .execute(&mut *tx).await?;
            }
            for d in &p.decisions {
                let decided = sqlx::query(DECIDE_CORRECTION)
                    .bind(&d.correction_id).bind(d.status)
                    .execute(&mut *tx).await?;
                if decided.rows_affected() == 0 {
                    tx.rollback().await?;
                    return Err(CommitError::Conflict(format!(
                        "correction {} is not pending: it was decided meanwhile, or does not exist",
                        d.correction_id
                    )));
                }
                sqlx::query(CLOSE_CORRECTION_ENTRY)
                    .bind(&d.correction_id).bind(d.status).bind(&d.by).bind(&d.comment).bind(d.at_ms).bind(d.auto)
                    .execute(&mut *tx).await?;
            }
            for r in &p.references {
                sqlx::query(PUBLISH_REFERENCE)
                    .bind(&r.delivery_point_id).bind(r.lines.join("\n")).bind(r.pin.map(|p| p.0)).bind(r.pin.map(|p| p.1)).bind(r.version)
                    .execute(&mut *tx).await?;
            }
            insert_rows!(tx, events::INSERT_EVENTS, p.feed, |row, e| {
                row.push_bind(&e.id).push_bind(e.type_name).push_bind(e.subject_kind.as_str())
                    .push_bind(&e.subject_id).push_bind(e.occurred_ms).push_bind(now)
                    .push_bind(&e.payload);
            }, events::INSERT_EVENTS_TAIL);
            let audit: Vec<&AuditRow> = p
                .audit
                .iter()
                .filter(|a| write.changes.is_empty() || changed.contains(a.subject.as_str()))
                .collect();
            insert_rows!(tx, review::INSERT_AUDIT, audit, |row, a| {
                row.push_bind(a.at_ms).push_bind(&a.actor).push_bind(&a.action)
                    .push_bind(&a.subject).push_bind(&a.detail);
            }, "");
            }
            tx.commit().await?;
            Ok(())
        })
    }
}
