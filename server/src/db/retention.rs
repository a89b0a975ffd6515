//! Retention (issue #18): personal data past the retention period anonymised, and the documents
//! of finished items archived, in transactions of bounded size.
//!
//! What is personal and what is kept, table by table, is in README.md ("What is kept and for how
//! long"). Every step reads only rows it has not done yet (the `purged_ms` / `archived_ms`
//! markers of migration 0009, each with a partial index), so a run that stops halfway is simply
//! continued by the next one, and a run with nothing to do reads nothing.

use serde_json::Value;
use sqlx::Row;
use tournee_sync_core::DocId;

use super::Database;

/// Rows (or items) per transaction: a purge never holds the database longer than one of these.
pub const PURGE_BATCH: i64 = 1_000;

/// Finished items (delivered: EMI is final) last changed before `$1`, not archived yet.
const ITEMS_TO_ARCHIVE: &str = "SELECT id FROM items WHERE archived_ms IS NULL AND status = 'EMI' AND updated_at_ms < $1 ORDER BY updated_at_ms LIMIT $2";
const COUNT_ITEMS_TO_ARCHIVE: &str =
    "SELECT COUNT(*) FROM items WHERE archived_ms IS NULL AND status = 'EMI' AND updated_at_ms < $1";
/// The change rows of the documents among `$1` (a JSON list); `{in_list}` is the backend's list.
const DELETE_CHANGES: &str = "DELETE FROM changes WHERE doc_id {in_list}";
const DELETE_DOCUMENTS: &str = "DELETE FROM documents WHERE id {in_list}";
/// The signatures of their changes, deleted with them.
const DELETE_SIGNATURES: &str = "DELETE FROM change_signatures WHERE doc_id {in_list}";
/// The import lines lazily built documents are made from (`import::materialize`): without them
/// an archived item's document would be built again on the next load.
const DELETE_IMPORT_LINES: &str = "DELETE FROM import_records WHERE kind = $2 AND key {in_list}";
const MARK_ARCHIVED: &str = "UPDATE items SET archived_ms = $2 WHERE id {in_list}";

const ATTEMPTS_TO_PURGE: &str = "SELECT id, record FROM attempts WHERE purged_ms IS NULL AND recorded_at_ms < $1 ORDER BY recorded_at_ms LIMIT $2";
const COUNT_ATTEMPTS_TO_PURGE: &str =
    "SELECT COUNT(*) FROM attempts WHERE purged_ms IS NULL AND recorded_at_ms < $1";
const PURGE_ATTEMPT: &str = "UPDATE attempts SET lat = NULL, lon = NULL, accuracy_m = NULL, record = $2, purged_ms = $3 WHERE id = $1";

const CHOICES_TO_PURGE: &str = "SELECT id, record FROM choices WHERE purged_ms IS NULL AND made_at_ms < $1 ORDER BY made_at_ms LIMIT $2";
const COUNT_CHOICES_TO_PURGE: &str =
    "SELECT COUNT(*) FROM choices WHERE purged_ms IS NULL AND made_at_ms < $1";
const PURGE_CHOICE: &str = "UPDATE choices SET record = $2, purged_ms = $3 WHERE id = $1";

/// Decided corrections only: a pending one still waits for its reviewer.
const CORRECTIONS_TO_PURGE: &str = "SELECT id, record FROM corrections WHERE purged_ms IS NULL AND proposed_at_ms < $1 AND status <> 'pending' ORDER BY proposed_at_ms LIMIT $2";
const COUNT_CORRECTIONS_TO_PURGE: &str = "SELECT COUNT(*) FROM corrections WHERE purged_ms IS NULL AND proposed_at_ms < $1 AND status <> 'pending'";
const PURGE_CORRECTION: &str = "UPDATE corrections SET record = $2, purged_ms = $3 WHERE id = $1";

/// Decided queue entries: a dispute's evidence (the customer's text) and the reviewer's comment.
const PURGE_QUEUE: &str = "UPDATE review_queue SET detail = NULL, decision_comment = NULL, purged_ms = $2 WHERE id IN (SELECT id FROM review_queue WHERE purged_ms IS NULL AND created_ms < $1 AND status <> 'open' ORDER BY created_ms LIMIT $3)";
const COUNT_QUEUE_TO_PURGE: &str = "SELECT COUNT(*) FROM review_queue WHERE purged_ms IS NULL AND created_ms < $1 AND status <> 'open'";

/// Audit lines keep who did what to which subject and when; their detail (the record as written,
/// access data before and after a decision) is cleared. The purge's own lines hold only counts.
const PURGE_AUDIT: &str = "UPDATE audit_log SET detail = '{}', purged_ms = $2 WHERE id IN (SELECT id FROM audit_log WHERE purged_ms IS NULL AND at_ms < $1 AND action <> 'retention.purged' ORDER BY at_ms LIMIT $3)";
const COUNT_AUDIT_TO_PURGE: &str = "SELECT COUNT(*) FROM audit_log WHERE purged_ms IS NULL AND at_ms < $1 AND action <> 'retention.purged'";

/// The feed's events whose payloads are personal (positions, customers' texts, door codes),
/// except those a webhook delivery still has to send (it would fail with the event gone).
/// UPU item events, reference data and rounds stay.
const EVENTS_TO_DELETE: &str = "SELECT e.seq FROM events e WHERE e.recorded_ms < $1 AND e.type IN ('attempt.recorded', 'attempt.reviewed', 'choice.made', 'preferences.changed', 'correction.proposed', 'correction.decided', 'dispute.opened', 'dispute.decided') AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_seq = e.seq AND d.status = 'pending')";
const DELETE_EVENTS: &str =
    "DELETE FROM events WHERE seq IN ({select} ORDER BY e.recorded_ms LIMIT $2)";

/// An archived item's requirements as its import line set them (NULL for items made otherwise).
const ARCHIVED_REQUIREMENTS: &str =
    "SELECT requirements FROM items WHERE id = $1 AND archived_ms IS NOT NULL";

const AUDIT_PURGE: &str = "INSERT INTO audit_log (at_ms, actor, action, subject, detail, purged_ms) VALUES ($1, $2, 'retention.purged', 'retention', $3, NULL)";

/// What a purge did, or with `dry_run` would do.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PurgeCounts {
    /// Finished items whose document was archived (deleted with its changes and import line).
    pub items_archived: u64,
    /// Document rows deleted (an item never loaded has none: it was only an import line).
    pub documents_deleted: u64,
    /// Change rows deleted with them.
    pub changes_deleted: u64,
    /// Attempts whose position and free texts were cleared.
    pub attempts_anonymised: u64,
    /// Customers' choices whose free texts were cleared.
    pub choices_anonymised: u64,
    /// Decided corrections whose door code and note were cleared.
    pub corrections_anonymised: u64,
    /// Decided review entries whose evidence and comment were cleared.
    pub queue_entries_cleared: u64,
    /// Audit lines whose detail was cleared.
    pub audit_details_cleared: u64,
    /// Personal events deleted from the feed.
    pub events_deleted: u64,
}

/// Which records' JSON is anonymised how.
#[derive(Clone, Copy)]
enum Record {
    Attempt,
    Choice,
    Correction,
}

impl Database {
    /// Anonymises personal data recorded before `cutoff_ms` and archives the documents of items
    /// delivered before it, [`PURGE_BATCH`] rows a transaction; `archived` hears the ids of each
    /// batch's deleted documents once it is committed (to drop them from the document cache).
    /// With `dry_run`, counts what it would do and changes nothing. Writes one `retention.purged`
    /// audit line with the counts (never the data), as `actor`, when it did anything.
    pub async fn purge(
        &self,
        cutoff_ms: i64,
        now_ms: i64,
        actor: &str,
        dry_run: bool,
        mut archived: impl FnMut(&[DocId]),
    ) -> Result<PurgeCounts, sqlx::Error> {
        if dry_run {
            return self.purge_counts(cutoff_ms).await;
        }
        let mut counts = PurgeCounts::default();
        loop {
            let (items, documents, changes, ids) = self.archive_batch(cutoff_ms, now_ms).await?;
            counts.items_archived += items;
            counts.documents_deleted += documents;
            counts.changes_deleted += changes;
            archived(&ids);
            if items < PURGE_BATCH as u64 {
                break;
            }
        }
        for (kind, select, update, count) in [
            (
                Record::Attempt,
                ATTEMPTS_TO_PURGE,
                PURGE_ATTEMPT,
                &mut counts.attempts_anonymised,
            ),
            (
                Record::Choice,
                CHOICES_TO_PURGE,
                PURGE_CHOICE,
                &mut counts.choices_anonymised,
            ),
            (
                Record::Correction,
                CORRECTIONS_TO_PURGE,
                PURGE_CORRECTION,
                &mut counts.corrections_anonymised,
            ),
        ] {
            loop {
                let done = self
                    .anonymise_batch(kind, select, update, cutoff_ms, now_ms)
                    .await?;
                *count += done;
                if done < PURGE_BATCH as u64 {
                    break;
                }
            }
        }
        for (sql, count) in [
            (PURGE_QUEUE, &mut counts.queue_entries_cleared),
            (PURGE_AUDIT, &mut counts.audit_details_cleared),
        ] {
            loop {
                let done = with_pool!(self, pool => sqlx::query(sql)
                    .bind(cutoff_ms).bind(now_ms).bind(PURGE_BATCH)
                    .execute(pool).await?.rows_affected());
                *count += done;
                if done < PURGE_BATCH as u64 {
                    break;
                }
            }
        }
        let delete_events = DELETE_EVENTS.replace("{select}", EVENTS_TO_DELETE);
        loop {
            let done = with_pool!(self, pool => sqlx::query(&delete_events)
                .bind(cutoff_ms).bind(PURGE_BATCH)
                .execute(pool).await?.rows_affected());
            counts.events_deleted += done;
            if done < PURGE_BATCH as u64 {
                break;
            }
        }
        if counts == PurgeCounts::default() {
            // Nothing done: the hourly run leaves no line to say so.
            return Ok(counts);
        }
        let detail = serde_json::json!({ "cutoff_ms": cutoff_ms, "counts": counts }).to_string();
        with_pool!(self, pool => sqlx::query(AUDIT_PURGE)
            .bind(now_ms).bind(actor).bind(&detail)
            .execute(pool).await.map(drop)?);
        Ok(counts)
    }

    /// For an archived item (its document is gone): `Some` with its requirements as imported,
    /// JSON, if any. `None` for an item that is not archived.
    pub async fn archived_requirements(
        &self,
        item: &str,
    ) -> Result<Option<Option<String>>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query(ARCHIVED_REQUIREMENTS).bind(item).fetch_optional(pool).await?
                .map(|r| r.try_get("requirements")).transpose()
        })
    }

    /// What [`Database::purge`] would do now.
    async fn purge_counts(&self, cutoff_ms: i64) -> Result<PurgeCounts, sqlx::Error> {
        let count = |sql: &'static str| async move {
            let n: i64 = with_pool!(self, pool => sqlx::query(sql).bind(cutoff_ms).fetch_one(pool).await?.try_get(0)?);
            Ok::<u64, sqlx::Error>(u64::try_from(n).unwrap_or(0))
        };
        let events = format!("SELECT COUNT(*) FROM ({EVENTS_TO_DELETE}) AS personal");
        let events: i64 = with_pool!(self, pool => sqlx::query(&events).bind(cutoff_ms).fetch_one(pool).await?.try_get(0)?);
        Ok(PurgeCounts {
            items_archived: count(COUNT_ITEMS_TO_ARCHIVE).await?,
            documents_deleted: 0,
            changes_deleted: 0,
            attempts_anonymised: count(COUNT_ATTEMPTS_TO_PURGE).await?,
            choices_anonymised: count(COUNT_CHOICES_TO_PURGE).await?,
            corrections_anonymised: count(COUNT_CORRECTIONS_TO_PURGE).await?,
            queue_entries_cleared: count(COUNT_QUEUE_TO_PURGE).await?,
            audit_details_cleared: count(COUNT_AUDIT_TO_PURGE).await?,
            events_deleted: u64::try_from(events).unwrap_or(0),
        })
    }

    /// Archives one batch of finished items in one transaction: (items, documents, changes,
    /// the documents' ids).
    async fn archive_batch(
        &self,
        cutoff_ms: i64,
        now_ms: i64,
    ) -> Result<(u64, u64, u64, Vec<DocId>), sqlx::Error> {
        let list = self.in_list(1);
        let delete_changes = DELETE_CHANGES.replace("{in_list}", &list);
        let delete_documents = DELETE_DOCUMENTS.replace("{in_list}", &list);
        let delete_signatures = DELETE_SIGNATURES.replace("{in_list}", &list);
        let delete_lines = DELETE_IMPORT_LINES.replace("{in_list}", &list);
        let mark = MARK_ARCHIVED.replace("{in_list}", &list);
        let items_kind = crate::import::Kind::Items.as_str();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let items: Vec<String> = sqlx::query(ITEMS_TO_ARCHIVE)
                .bind(cutoff_ms).bind(PURGE_BATCH)
                .fetch_all(&mut *tx).await?
                .iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?;
            if items.is_empty() {
                tx.rollback().await?;
                return Ok((0, 0, 0, Vec::new()));
            }
            let ids: Vec<DocId> = items
                .iter()
                .filter_map(|s10| DocId::parse(&format!("item:{s10}")).ok())
                .collect();
            let doc_ids = serde_json::to_string(&ids.iter().map(ToString::to_string).collect::<Vec<_>>())
                .unwrap_or_else(|_| "[]".into());
            let keys = serde_json::to_string(&items).unwrap_or_else(|_| "[]".into());
            let changes = sqlx::query(&delete_changes).bind(&doc_ids).execute(&mut *tx).await?.rows_affected();
            sqlx::query(&delete_signatures).bind(&doc_ids).execute(&mut *tx).await?;
            let documents = sqlx::query(&delete_documents).bind(&doc_ids).execute(&mut *tx).await?.rows_affected();
            sqlx::query(&delete_lines).bind(&keys).bind(items_kind).execute(&mut *tx).await?;
            let archived = sqlx::query(&mark).bind(&keys).bind(now_ms).execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            Ok((archived, documents, changes, ids))
        })
    }

    /// Anonymises one batch of records of `kind` in one transaction; how many.
    async fn anonymise_batch(
        &self,
        kind: Record,
        select: &str,
        update: &str,
        cutoff_ms: i64,
        now_ms: i64,
    ) -> Result<u64, sqlx::Error> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let rows: Vec<(String, String)> = sqlx::query(select)
                .bind(cutoff_ms).bind(PURGE_BATCH)
                .fetch_all(&mut *tx).await?
                .iter().map(|r| Ok((r.try_get("id")?, r.try_get("record")?)))
                .collect::<Result<_, sqlx::Error>>()?;
            for (id, record) in &rows {
                sqlx::query(update)
                    .bind(id).bind(anonymised(kind, record)).bind(now_ms)
                    .execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(rows.len() as u64)
        })
    }
}

/// A record's JSON without its personal parts, still of its type (the views read it back):
/// an attempt without its position and with a neighbour's name or a safe place blanked; a
/// choice with those blanked; a correction without its door code and note. What is not JSON
/// (it never is: rows are written from checked records) is replaced by nothing personal.
fn anonymised(kind: Record, record: &str) -> String {
    let Ok(mut value) = serde_json::from_str::<Value>(record) else {
        return "{}".into();
    };
    match kind {
        Record::Attempt => {
            if let Some(map) = value.as_object_mut() {
                map.insert("position".into(), Value::Null);
            }
            blank(&mut value, &["neighbour", "place"]);
        }
        Record::Choice => blank(&mut value, &["neighbour", "place"]),
        Record::Correction => {
            if let Some(proposed) = value.get_mut("proposed").and_then(Value::as_object_mut) {
                for key in ["door_code", "note"] {
                    if proposed.contains_key(key) {
                        proposed.insert(key.into(), Value::Null);
                    }
                }
            }
        }
    }
    value.to_string()
}

/// Replaces the string under any of `keys`, at any depth, with an empty string.
fn blank(value: &mut Value, keys: &[&str]) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if inner.is_string() && keys.contains(&key.as_str()) {
                    *inner = Value::String(String::new());
                } else {
                    blank(inner, keys);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| blank(v, keys)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tournee_sync_core::fixtures;
    use tournee_sync_core::model::{Attempt, Choice, CustomerChoice, Outcome};

    #[test]
    fn anonymised_records_keep_their_type_and_lose_their_personal_parts() {
        let mut attempt = fixtures::delivered_attempt("dev-1", "pm-1", 1);
        attempt.outcome = Outcome::DeliveredToNeighbour {
            neighbour: "Mme Martin, 2nd floor".into(),
        };
        let json = anonymised(Record::Attempt, &serde_json::to_string(&attempt).unwrap());
        let back: Attempt = serde_json::from_str(&json).unwrap();
        assert!(back.position.is_none());
        assert!(!json.contains("Martin"), "{json}");
        assert_eq!(back.proofs, attempt.proofs, "proof of delivery is kept");
        let choice = CustomerChoice {
            choice: Choice::SafePlace {
                place: "behind the blue shed".into(),
            },
            made_at_ms: 1,
            made_by: "cust-1".into(),
        };
        let json = anonymised(Record::Choice, &serde_json::to_string(&choice).unwrap());
        assert!(
            serde_json::from_str::<CustomerChoice>(&json).is_ok(),
            "{json}"
        );
        assert!(!json.contains("shed"), "{json}");
    }
}
