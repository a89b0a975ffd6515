//! The back office's review: the queue of corrections, flagged attempts and disputes, the
//! corrections with their status, decisions outside the documents, and the audit log.

use super::{
    events, AuditRow, CorrectionRow, CorrectionStatus, Database, EntryStatus, QueueEntryRow,
    QueueKind, QueueRow, ROWS_PER_INSERT,
};

/// Open review-queue entries by kind.
const OPEN_QUEUE_BY_KIND: &str =
    "SELECT kind, COUNT(*) FROM review_queue WHERE status = 'open' GROUP BY kind";

/// Open review-queue entries, oldest first.
const OPEN_QUEUE: &str = "SELECT kind, subject_id, reason, created_ms FROM review_queue \
     WHERE status = 'open' ORDER BY id";

/// Review-queue entries of a kind (`$1`, all when NULL) and status (`{status}`), queued
/// before entry `$2` (any when NULL), newest first, at most `$3`.
const QUEUE: &str = "SELECT * FROM review_queue WHERE ($1 IS NULL OR kind = $1) AND {status} \
     AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3";
/// [`QUEUE`]'s status clause for open entries.
const OPEN: &str = "status = 'open'";
/// [`QUEUE`]'s status clause for decided entries.
const DECIDED: &str = "status <> 'open'";
/// [`QUEUE`]'s status clause for every entry.
const ANY_STATUS: &str = "TRUE";

/// One review-queue entry.
const QUEUE_ENTRY: &str = "SELECT * FROM review_queue WHERE id = $1";

/// Decides an open entry.
const DECIDE_ENTRY: &str = "UPDATE review_queue \
     SET status = $2, decided_by = $3, decision_comment = $4, decided_at_ms = $5 \
     WHERE id = $1 AND status = 'open'";

/// Queues a customer's dispute, unless it is queued.
const INSERT_DISPUTE: &str = "INSERT INTO review_queue \
     (kind, subject_id, reason, status, created_ms, detail) \
     VALUES ('dispute', $1, $2, 'open', $3, $4) \
     ON CONFLICT (kind, subject_id, reason) DO NOTHING RETURNING id";

/// Writes audit lines: the head of a multi-row insert.
pub(super) const INSERT_AUDIT: &str =
    "INSERT INTO audit_log (at_ms, actor, action, subject, detail) ";

/// Writes one audit line.
const INSERT_AUDIT_LINE: &str =
    "INSERT INTO audit_log (at_ms, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)";

/// The corrections of the delivery points of a JSON list (`{in_list}`, `$1`), oldest first.
const CORRECTIONS_OF_POINTS: &str = "SELECT * FROM corrections \
     WHERE delivery_point_id {in_list} ORDER BY proposed_at_ms, id";

/// The corrections of a JSON list of ids (`{in_list}`, `$1`).
const CORRECTIONS: &str = "SELECT * FROM corrections WHERE id {in_list}";

/// The audit lines of a subject, oldest first.
const AUDIT_OF_SUBJECT: &str = "SELECT at_ms, actor, action, subject, detail FROM audit_log \
     WHERE subject = $1 ORDER BY id";

/// Pending corrections, oldest first, at most `$1`.
const PENDING_CORRECTIONS: &str = "SELECT * FROM corrections \
     WHERE status = 'pending' ORDER BY proposed_at_ms, id LIMIT $1";

/// One correction.
const CORRECTION: &str = "SELECT * FROM corrections WHERE id = $1";

/// A correction's status.
const CORRECTION_STATUS: &str = "SELECT status FROM corrections WHERE id = $1";

/// A correction with its review status.
#[derive(Debug, sqlx::FromRow)]
struct CorrectionWithStatus {
    #[sqlx(flatten)]
    row: CorrectionRow,
    status: CorrectionStatus,
}

impl From<CorrectionWithStatus> for (CorrectionRow, CorrectionStatus) {
    fn from(c: CorrectionWithStatus) -> Self {
        (c.row, c.status)
    }
}

/// Writes an audit line and an event of the feed in the transaction `$tx`, both stamped at
/// the audit line's time: what a decision outside the documents records.
macro_rules! insert_audit_and_event {
    ($tx:ident, $audit:expr, $event:expr) => {
        let audit: &AuditRow = $audit;
        sqlx::query(INSERT_AUDIT_LINE)
            .bind(audit.at_ms)
            .bind(&audit.actor)
            .bind(&audit.action)
            .bind(&audit.subject)
            .bind(&audit.detail)
            .execute(&mut *$tx)
            .await?;
        insert_rows!(
            $tx,
            events::INSERT_EVENTS,
            [$event],
            |row, e| {
                row.push_bind(&e.id)
                    .push_bind(e.type_name)
                    .push_bind(e.subject_kind.as_str())
                    .push_bind(&e.subject_id)
                    .push_bind(e.occurred_ms)
                    .push_bind(audit.at_ms)
                    .push_bind(&e.payload);
            },
            events::INSERT_EVENTS_TAIL
        );
    };
}

impl Database {
    /// Open review-queue entries, counted by kind.
    pub async fn open_queue_by_kind(&self) -> Result<Vec<(QueueKind, i64)>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(OPEN_QUEUE_BY_KIND).fetch_all(pool).await
        })
    }

    /// Open review-queue entries, oldest first.
    pub async fn open_queue(&self) -> Result<Vec<QueueRow>, sqlx::Error> {
        with_pool!(self, pool => sqlx::query_as(OPEN_QUEUE).fetch_all(pool).await)
    }

    /// Review-queue entries, newest first (by id, so pages do not shift), filtered by kind and
    /// by whether they are open (`Some(true)`), decided (`Some(false)`), or either (`None`);
    /// at most `limit`, of those queued before entry `before` when given.
    pub async fn queue(
        &self,
        kind: Option<QueueKind>,
        open: Option<bool>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<QueueEntryRow>, sqlx::Error> {
        let status_clause = match open {
            Some(true) => OPEN,
            Some(false) => DECIDED,
            None => ANY_STATUS,
        };
        let sql = QUEUE.replace("{status}", status_clause);
        with_pool!(self, pool => {
            sqlx::query_as(&sql).bind(kind).bind(before).bind(limit).fetch_all(pool).await
        })
    }

    /// One review-queue entry.
    pub async fn queue_entry(&self, id: i64) -> Result<Option<QueueEntryRow>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(QUEUE_ENTRY).bind(id).fetch_optional(pool).await
        })
    }

    /// Decides an open entry that no document write carries (a flagged attempt, a dispute),
    /// with its audit line, in one transaction. `false` if it was decided already.
    pub async fn decide_entry(
        &self,
        id: i64,
        status: EntryStatus,
        by: &str,
        comment: &str,
        audit: &AuditRow,
        event: &crate::events::NewEvent,
    ) -> Result<bool, sqlx::Error> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(DECIDE_ENTRY)
                .bind(id).bind(status).bind(by).bind(comment).bind(audit.at_ms)
                .execute(&mut *tx).await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            insert_audit_and_event!(tx, audit, event);
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Queues a customer's dispute of an attempt with its evidence; `None` if this customer
    /// already disputed it.
    pub async fn add_dispute(
        &self,
        attempt_id: &str,
        customer: &str,
        detail: &str,
        audit: &AuditRow,
        event: &crate::events::NewEvent,
    ) -> Result<Option<i64>, sqlx::Error> {
        let reason = format!("disputed by customer {customer}");
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let id: Option<i64> = sqlx::query_scalar(INSERT_DISPUTE)
                .bind(attempt_id).bind(&reason).bind(audit.at_ms).bind(detail)
                .fetch_optional(&mut *tx).await?;
            let Some(id) = id else { return Ok(None) };
            insert_audit_and_event!(tx, audit, event);
            tx.commit().await?;
            Ok(Some(id))
        })
    }

    /// The corrections proposed for a delivery point, with their status, oldest first.
    pub async fn corrections_for_point(
        &self,
        delivery_point: &str,
    ) -> Result<Vec<(CorrectionRow, CorrectionStatus)>, sqlx::Error> {
        self.corrections_for_points(&[delivery_point]).await
    }

    /// The corrections proposed for any of these delivery points, with their status, oldest
    /// first, in one query.
    pub async fn corrections_for_points(
        &self,
        delivery_points: &[&str],
    ) -> Result<Vec<(CorrectionRow, CorrectionStatus)>, sqlx::Error> {
        let rows: Vec<CorrectionWithStatus> = self
            .fetch_in(CORRECTIONS_OF_POINTS, delivery_points)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The corrections with these ids, with their status, in one query (in no given order).
    pub async fn corrections(
        &self,
        ids: &[&str],
    ) -> Result<Vec<(CorrectionRow, CorrectionStatus)>, sqlx::Error> {
        let rows: Vec<CorrectionWithStatus> = self.fetch_in(CORRECTIONS, ids).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The audit lines about one subject (`dp:…`, `item:…`, `attempt:…`), oldest first.
    pub async fn audit_log(&self, subject: &str) -> Result<Vec<AuditRow>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(AUDIT_OF_SUBJECT).bind(subject).fetch_all(pool).await
        })
    }

    /// Corrections still waiting for a decision, oldest first, at most `limit`.
    pub async fn pending_corrections(&self, limit: i64) -> Result<Vec<CorrectionRow>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(PENDING_CORRECTIONS).bind(limit).fetch_all(pool).await
        })
    }

    /// A correction with its status.
    pub async fn correction(
        &self,
        id: &str,
    ) -> Result<Option<(CorrectionRow, CorrectionStatus)>, sqlx::Error> {
        let row: Option<CorrectionWithStatus> = with_pool!(self, pool => {
            sqlx::query_as(CORRECTION).bind(id).fetch_optional(pool).await?
        });
        Ok(row.map(Into::into))
    }

    /// A correction's review status.
    pub async fn correction_status(
        &self,
        id: &str,
    ) -> Result<Option<CorrectionStatus>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_scalar(CORRECTION_STATUS).bind(id).fetch_optional(pool).await
        })
    }
}
