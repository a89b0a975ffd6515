//! The central store: coarse domain methods over SQLite (embedded default) or PostgreSQL.
//!
//! Both backends run the same SQL text (`$n` parameters work in both); each has its own
//! migrations under `migrations/<backend>`. Every method is written once, and [`with_pool!`]
//! instantiates it for the backend at hand.

mod rows;

use std::collections::HashSet;

use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::Row;
use tournee_sync_core::model::{RoundManifest, Stop};
use tournee_sync_core::validator::Scope;
use tournee_sync_core::DocId;

pub use rows::{
    AttemptRow, AuditRow, ChoiceRow, CorrectionRow, DecisionRow, EventRow, PreferencesRow,
    Projection, QueueEntryRow, QueueRow, ReferenceRow, SearchFilter, SearchRow,
};

/// The central store.
#[derive(Clone, Debug)]
pub enum Database {
    /// Embedded, one file.
    Sqlite(SqlitePool),
    /// For production and several server instances.
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool the database has.
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            Database::Sqlite($pool) => $body,
            Database::Postgres($pool) => $body,
        }
    };
}

/// A document as stored: its snapshot and the changes after it.
#[derive(Debug, Clone)]
pub struct StoredDocument {
    /// The saved document.
    pub snapshot: Vec<u8>,
    /// Changes stored after the snapshot, with their sequence numbers.
    pub changes: Vec<(i64, Vec<u8>)>,
}

/// Changes a device has not seen.
#[derive(Debug, Default)]
pub struct NewsRows {
    /// `(seq, doc, change bytes)` in sequence order.
    pub rows: Vec<(i64, DocId, Vec<u8>)>,
    /// The cursor covering what was returned.
    pub cursor: i64,
    /// More is waiting.
    pub more: bool,
}

/// Rows per multi-row INSERT: 14 columns × 500 stays far below either backend's limit on bound
/// parameters (32,766 for SQLite, 65,535 for PostgreSQL).
const ROWS_PER_INSERT: usize = 500;

/// Inserts `$rows` into the transaction `$tx` with one multi-row statement per
/// [`ROWS_PER_INSERT`] rows: `$head` names the table and columns, `$bind` binds one row's
/// values in column order, and `$tail` follows the values (an `ON CONFLICT` clause).
macro_rules! insert_rows {
    ($tx:ident, $head:expr, $rows:expr, |$row:ident, $item:pat_param| $bind:block, $tail:expr) => {
        for chunk in $rows.chunks(ROWS_PER_INSERT) {
            let mut insert = sqlx::QueryBuilder::new($head);
            insert.push_values(chunk, |mut $row, $item| $bind);
            insert.push($tail);
            insert.build().execute(&mut *$tx).await?;
        }
    };
}

/// [`insert_rows!`] for rows that must land: `$tail` ends in `RETURNING`, and returns a row
/// for every row inserted, or found stored already as a replay of the same one; any other row
/// (a key another record holds) fails the whole write, which is rolled back.
macro_rules! insert_landing_rows {
    ($tx:ident, $what:expr, $head:expr, $rows:expr, |$row:ident, $item:pat_param| $bind:block, $tail:expr) => {
        for chunk in $rows.chunks(ROWS_PER_INSERT) {
            let mut insert = sqlx::QueryBuilder::new($head);
            insert.push_values(chunk, |mut $row, $item| $bind);
            insert.push($tail);
            let landed = insert.build().fetch_all(&mut *$tx).await?.len();
            if landed != chunk.len() {
                $tx.rollback().await?;
                return Err(CommitError::Conflict(format!(
                    "{} of {} {} did not land: their keys are held by other records",
                    chunk.len() - landed,
                    chunk.len(),
                    $what
                )));
            }
        }
    };
}

// Files of aggregates, after the macros they use.
mod actors;
mod events;
mod items;
mod loads;
mod open;
pub mod pickup_points;
pub mod retention;
mod tracking;
mod webhooks;

use actors::now_ms;
pub use actors::{bindings_of, server_bindings, ActorBinding};
pub use events::{FeedCursor, StoredEvent};
use loads::apply_loads;
pub use loads::Load;
pub use open::{Backend, BackupError, Migrations, OpenError, OpenOptions};
pub use webhooks::{
    ClaimedDelivery, DeliveryCounts, DeliveryStatus, NewDelivery, NewSubscription, SubscriptionRow,
};

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

/// Stores a new document, unless it exists.
const CREATE_DOCUMENT: &str = "INSERT INTO documents (id, kind, snapshot, snapshot_seq) VALUES ($1, $2, $3, 0) ON CONFLICT (id) DO NOTHING";

/// A document's kind as the `documents` table names it.
fn document_kind(id: &DocId) -> &'static str {
    match id.kind() {
        tournee_sync_core::DocKind::Item => "item",
        tournee_sync_core::DocKind::DeliveryPoint => "delivery_point",
    }
}

/// An Automerge change as stored: `(hash, bytes)`.
pub type StoredChange = (Vec<u8>, Vec<u8>);

/// Everything one sync stores, written in one transaction.
#[derive(Debug, Default)]
pub struct SyncWrite {
    /// Per document, the accepted changes.
    pub changes: Vec<(DocId, Vec<StoredChange>)>,
    /// The rows they project into.
    pub projection: Projection,
}

/// What the server knows of an item when it projects an attempt or a choice.
#[derive(Debug, Clone)]
pub struct ItemInfo {
    /// The delivery point.
    pub delivery_point: String,
    /// Its pin.
    pub pin: Option<(f64, f64)>,
    /// The item's current status.
    pub status: String,
}

/// The readiness probe's write, rolled back.
const PROBE_WRITE: &str = "INSERT INTO readiness_probe (id, payload) VALUES (1, $1)";
/// Larger than a page, so that a database that cannot grow refuses it.
const PROBE_BYTES: usize = 16 * 1024;

/// Open review-queue entries by kind.
const OPEN_QUEUE_BY_KIND: &str =
    "SELECT kind, COUNT(*) FROM review_queue WHERE status = 'open' GROUP BY kind";

/// The database pool's connections, for metrics.
#[derive(Debug, Clone, Copy)]
pub struct PoolState {
    /// Connections open, in use or idle.
    pub open: u32,
    /// Connections idle.
    pub idle: usize,
    /// The most the pool opens.
    pub max: u32,
}

impl Database {
    /// The pool's connections now.
    pub fn pool_state(&self) -> PoolState {
        with_pool!(self, pool => PoolState {
            open: pool.size(),
            idle: pool.num_idle(),
            max: pool.options().get_max_connections(),
        })
    }

    /// Open review-queue entries, counted by kind.
    pub async fn open_queue_by_kind(&self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(OPEN_QUEUE_BY_KIND).fetch_all(pool).await
        })
    }

    /// SQL for "the elements of the JSON array of strings bound as `$n`", one query parameter
    /// holding a whole list of ids on either backend.
    fn json_list(&self, n: u8) -> String {
        match self {
            Database::Sqlite(_) => format!("(SELECT value FROM json_each(${n}))"),
            Database::Postgres(_) => format!("(SELECT json_array_elements_text(${n}::json))"),
        }
    }

    /// The backend's name, for logs.
    pub fn backend(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "sqlite",
            Database::Postgres(_) => "postgres",
        }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
    }

    /// Whether the database can take a write now: a row the size of a sync's worth of changes,
    /// written in a transaction that is rolled back. Fails on a full disk or database, a
    /// read-only file or server, or a connection that cannot be had.
    #[tracing::instrument(name = "sql.check_writable", level = "info", skip_all)]
    pub async fn check_writable(&self) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(PROBE_WRITE)
                .bind(vec![0u8; PROBE_BYTES])
                .execute(&mut *tx)
                .await?;
            tx.rollback().await
        })
    }

    /// Stores a new document the server created (skeleton and reference data), with the
    /// actors that wrote it bound to the server in the same transaction. (A snapshot that does
    /// not load binds nothing: nobody can load it to learn its actors.)
    pub async fn insert_document(&self, id: &DocId, snapshot: &[u8]) -> Result<(), sqlx::Error> {
        let kind = document_kind(id);
        let bindings = tournee_sync_core::automerge::Automerge::load(snapshot)
            .map(|doc| server_bindings(&doc))
            .unwrap_or_default();
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(CREATE_DOCUMENT)
                .bind(id.as_str()).bind(kind).bind(snapshot)
                .execute(&mut *tx).await?;
            if inserted.rows_affected() > 0 {
                insert_rows!(tx, actors::BIND_ACTORS, bindings, |row, (actor, owner)| {
                    row.push_bind(actor).push_bind(owner).push_bind(now);
                }, " ON CONFLICT (actor) DO NOTHING");
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// A document's snapshot and the changes after it, if it exists.
    #[tracing::instrument(name = "sql.load_document", level = "info", skip_all)]
    pub async fn load_document(&self, id: &DocId) -> Result<Option<StoredDocument>, sqlx::Error> {
        with_pool!(self, pool => {
            let Some(row) = sqlx::query("SELECT snapshot, snapshot_seq FROM documents WHERE id = $1")
                .bind(id.as_str()).fetch_optional(pool).await? else { return Ok(None) };
            let snapshot: Vec<u8> = row.try_get("snapshot")?;
            let since: i64 = row.try_get("snapshot_seq")?;
            let changes = sqlx::query("SELECT seq, bytes FROM changes WHERE doc_id = $1 AND seq > $2 ORDER BY seq")
                .bind(id.as_str()).bind(since).fetch_all(pool).await?
                .into_iter()
                .map(|r| Ok((r.try_get::<i64, _>("seq")?, r.try_get::<Vec<u8>, _>("bytes")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            Ok(Some(StoredDocument { snapshot, changes }))
        })
    }

    /// Changes of one document stored after `seq` (to refresh a cached copy).
    pub async fn changes_after(
        &self,
        id: &DocId,
        seq: i64,
    ) -> Result<Vec<(i64, Vec<u8>)>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query("SELECT seq, bytes FROM changes WHERE doc_id = $1 AND seq > $2 ORDER BY seq")
                .bind(id.as_str()).bind(seq).fetch_all(pool).await?
                .into_iter()
                .map(|r| Ok((r.try_get::<i64, _>("seq")?, r.try_get::<Vec<u8>, _>("bytes")?)))
                .collect()
        })
    }

    /// Changes of several documents, each after its own sequence number, in one query (to
    /// refresh cached copies): `(seq, doc, bytes)` in sequence order.
    #[tracing::instrument(name = "sql.changes_after_each", level = "info", skip_all)]
    pub async fn changes_after_each(
        &self,
        after: &[(DocId, i64)],
    ) -> Result<Vec<(i64, DocId, Vec<u8>)>, sqlx::Error> {
        let Some(from) = after.iter().map(|(_, seq)| *seq).min() else {
            return Ok(Vec::new());
        };
        let since: std::collections::HashMap<&str, i64> =
            after.iter().map(|(id, seq)| (id.as_str(), *seq)).collect();
        let ids = serde_json::to_string(&since.keys().collect::<Vec<_>>())
            .unwrap_or_else(|_| "[]".into());
        let sql = format!(
            "SELECT seq, doc_id, bytes FROM changes WHERE doc_id IN {} AND seq > $2 ORDER BY seq",
            self.json_list(1)
        );
        let rows: Vec<(i64, String, Vec<u8>)> = with_pool!(self, pool => {
            sqlx::query(&sql).bind(&ids).bind(from).fetch_all(pool).await?
                .into_iter()
                .map(|r| Ok((r.try_get("seq")?, r.try_get("doc_id")?, r.try_get("bytes")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(rows
            .into_iter()
            .filter(|(seq, doc, _)| since.get(doc.as_str()).is_some_and(|s| seq > s))
            .filter_map(|(seq, doc, bytes)| Some((seq, DocId::parse(&doc).ok()?, bytes)))
            .collect())
    }

    /// The highest sequence number stored.
    #[tracing::instrument(name = "sql.max_seq", level = "info", skip_all)]
    pub async fn max_seq(&self) -> Result<i64, sqlx::Error> {
        with_pool!(self, pool => {
            let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS seq FROM changes").fetch_one(pool).await?;
            row.try_get::<i64, _>("seq")
        })
    }

    /// Changes after `since` to documents in `scope` other than `skip`, up to about `max_bytes`.
    ///
    /// The database does the filtering: a device's news reads the changes of its own documents
    /// (through `changes_by_doc`), not every change stored since its cursor. When everything
    /// fitted, the cursor covers the whole log as it was when the read began, in scope or not.
    pub async fn news(
        &self,
        since: i64,
        scope: &Scope,
        skip: &HashSet<DocId>,
        max_bytes: usize,
    ) -> Result<NewsRows, sqlx::Error> {
        // Writers commit in sequence order (see `commit_sync`), so every change up to the
        // largest visible number is visible: the cursor may pass all of them.
        let upto = self.max_seq().await?;
        self.news_upto(since, upto, scope, skip, max_bytes).await
    }

    /// [`Database::news`] of the changes numbered up to `upto` only. A sync reads `upto` before
    /// it loads the documents of its request; a change stored after that, to one of them, is
    /// then news for the device's next sync rather than skipped by a cursor that passed it.
    #[tracing::instrument(name = "sql.news_upto", level = "info", skip_all)]
    pub async fn news_upto(
        &self,
        since: i64,
        upto: i64,
        scope: &Scope,
        skip: &HashSet<DocId>,
        max_bytes: usize,
    ) -> Result<NewsRows, sqlx::Error> {
        const PAGE: i64 = 2_000;
        let mut news = NewsRows {
            cursor: since,
            ..Default::default()
        };
        let as_json = |ids: Vec<&str>| serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into());
        let wanted = match scope {
            Scope::All => None,
            Scope::Documents(ids) => Some(as_json(
                ids.iter()
                    .filter(|id| !skip.contains(id))
                    .map(DocId::as_str)
                    .collect(),
            )),
        };
        let skipped = as_json(skip.iter().map(DocId::as_str).collect());
        let in_scope = if wanted.is_some() { "IN" } else { "NOT IN" };
        let in_scope = format!("doc_id {in_scope} {}", self.json_list(3));
        let sql = format!("SELECT seq, doc_id, bytes FROM changes WHERE seq > $1 AND seq <= $2 AND {in_scope} ORDER BY seq LIMIT $4");
        let documents = wanted.unwrap_or(skipped);
        let mut size = 0;
        loop {
            let page: Vec<(i64, String, Vec<u8>)> = with_pool!(self, pool => {
                sqlx::query(&sql)
                    .bind(news.cursor).bind(upto).bind(&documents).bind(PAGE)
                    .fetch_all(pool).await?
                    .into_iter()
                    .map(|r| Ok((r.try_get("seq")?, r.try_get("doc_id")?, r.try_get("bytes")?)))
                    .collect::<Result<Vec<_>, sqlx::Error>>()?
            });
            let full = page.len() as i64 == PAGE;
            for (seq, doc, bytes) in page {
                let Ok(doc) = DocId::parse(&doc) else {
                    news.cursor = seq;
                    continue;
                };
                if size + bytes.len() > max_bytes && size > 0 {
                    news.more = true;
                    return Ok(news);
                }
                size += bytes.len();
                news.cursor = seq;
                news.rows.push((seq, doc, bytes));
            }
            if !full {
                news.cursor = news.cursor.max(upto);
                return Ok(news);
            }
        }
    }

    /// Stores a sync's accepted changes and their projection in one transaction; changes and
    /// rows stored before are skipped, so a replayed sync is projected once. A decision on a
    /// correction that is no longer pending is a [`CommitError::Conflict`], and then nothing of
    /// the write is stored: the losing reviewer's changes never reach the documents.
    #[tracing::instrument(name = "sql.commit_sync", level = "info", skip_all)]
    pub async fn commit_sync(&self, write: &SyncWrite) -> Result<(), CommitError> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            if matches!(self, Database::Postgres(_)) {
                // Serialise the writers of the change log, so a sequence number is never
                // visible after a larger one: a device's cursor must not skip a change that
                // commits late.
                sqlx::query("SELECT pg_advisory_xact_lock(7261)").execute(&mut *tx).await?;
            }
            // Documents that got a change they did not have: only their audit lines are new.
            let mut changed: HashSet<String> = HashSet::new();
            let rows: Vec<(&str, &StoredChange)> = write
                .changes
                .iter()
                .flat_map(|(doc, changes)| changes.iter().map(move |c| (doc.as_str(), c)))
                .collect();
            for chunk in rows.chunks(ROWS_PER_INSERT) {
                let mut insert = sqlx::QueryBuilder::new("INSERT INTO changes (doc_id, hash, bytes) ");
                insert.push_values(chunk, |mut row, (doc, (hash, bytes))| {
                    row.push_bind(*doc).push_bind(hash).push_bind(bytes);
                });
                insert.push(" ON CONFLICT (doc_id, hash) DO NOTHING RETURNING doc_id");
                for stored in insert.build().fetch_all(&mut *tx).await? {
                    changed.insert(stored.try_get("doc_id")?);
                }
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
            insert_landing_rows!(tx, "attempts", "INSERT INTO attempts (id, item_id, change_hash, outcome, recorded_at_ms, device, postman, lat, lon, accuracy_m, distance_m, notice_number, waits_at, record) ", p.attempts, |row, a| {
                row.push_bind(&a.id).push_bind(&a.item_id).push_bind(&a.change_hash).push_bind(&a.outcome)
                    .push_bind(a.recorded_at_ms).push_bind(&a.device).push_bind(&a.postman).push_bind(a.lat)
                    .push_bind(a.lon).push_bind(a.accuracy_m).push_bind(a.distance_m)
                    .push_bind(&a.notice_number).push_bind(&a.waits_at).push_bind(&a.record);
            }, " ON CONFLICT (id) DO UPDATE SET change_hash = excluded.change_hash WHERE attempts.item_id = excluded.item_id AND attempts.change_hash = excluded.change_hash RETURNING id");
            insert_landing_rows!(tx, "choices", "INSERT INTO choices (id, item_id, change_hash, kind, made_at_ms, made_by, applicable, reason, record) ", p.choices, |row, c| {
                row.push_bind(&c.id).push_bind(&c.item_id).push_bind(&c.change_hash).push_bind(&c.kind)
                    .push_bind(c.made_at_ms).push_bind(&c.made_by).push_bind(c.applicable)
                    .push_bind(&c.reason).push_bind(&c.record);
            }, " ON CONFLICT (id) DO UPDATE SET change_hash = excluded.change_hash WHERE choices.item_id = excluded.item_id AND choices.change_hash = excluded.change_hash RETURNING id");
            insert_landing_rows!(tx, "corrections", "INSERT INTO corrections (id, delivery_point_id, change_hash, proposed_by, device, proposed_at_ms, status, record) ", p.corrections, |row, c| {
                row.push_bind(&c.id).push_bind(&c.delivery_point_id).push_bind(&c.change_hash)
                    .push_bind(&c.proposed_by).push_bind(&c.device).push_bind(c.proposed_at_ms)
                    .push_bind("pending").push_bind(&c.record);
            }, " ON CONFLICT (id) DO UPDATE SET change_hash = excluded.change_hash WHERE corrections.delivery_point_id = excluded.delivery_point_id AND corrections.change_hash = excluded.change_hash RETURNING id");
            for pr in &p.preferences {
                sqlx::query("INSERT INTO preferences (delivery_point_id, safe_place, preferred_neighbour, preferred_pickup_point, never_to_neighbour, updated_seq) VALUES ($1, $2, $3, $4, $5, 0) ON CONFLICT (delivery_point_id) DO UPDATE SET safe_place = excluded.safe_place, preferred_neighbour = excluded.preferred_neighbour, preferred_pickup_point = excluded.preferred_pickup_point, never_to_neighbour = excluded.never_to_neighbour")
                    .bind(&pr.delivery_point_id).bind(&pr.safe_place).bind(&pr.preferred_neighbour)
                    .bind(&pr.preferred_pickup_point).bind(pr.never_to_neighbour)
                    .execute(&mut *tx).await?;
            }
            insert_rows!(tx, "INSERT INTO review_queue (kind, subject_id, reason, status, created_ms) ", p.queue, |row, q| {
                row.push_bind(&q.kind).push_bind(&q.subject_id).push_bind(&q.reason)
                    .push_bind("open").push_bind(q.created_ms);
            }, " ON CONFLICT (kind, subject_id, reason) DO NOTHING");
            insert_rows!(tx, "INSERT INTO item_events (item_id, code, at_ms, reason, action, source) ", p.events, |row, e| {
                row.push_bind(&e.item_id).push_bind(&e.code).push_bind(e.at_ms)
                    .push_bind(&e.reason).push_bind(&e.action).push_bind(&e.source);
            }, " ON CONFLICT (item_id, code, source) DO NOTHING");
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
                let mut update = sqlx::QueryBuilder::new("WITH v(item, code, at) AS (VALUES ");
                for (i, e) in chunk.iter().enumerate() {
                    if i > 0 {
                        update.push(", ");
                    }
                    update.push("(CAST(").push_bind(&e.item_id).push(" AS TEXT), CAST(")
                        .push_bind(&e.code).push(" AS TEXT), CAST(")
                        .push_bind(e.at_ms).push(" AS BIGINT))");
                }
                update.push(") UPDATE items SET status = (SELECT code FROM v WHERE v.item = items.id), updated_at_ms = (SELECT at FROM v WHERE v.item = items.id) WHERE id IN (SELECT item FROM v) AND status <> 'EMI' AND EXISTS (SELECT 1 FROM v WHERE v.item = items.id AND (items.updated_at_ms <= v.at OR v.code = 'EMI' OR (items.status IN ('EMG', 'EDG') AND v.code IN ('EMH', 'EDH'))))");
                update.build().execute(&mut *tx).await?;
            }
            for e in several {
                sqlx::query("UPDATE items SET status = $2, updated_at_ms = $3 WHERE id = $1 AND status <> 'EMI' AND (updated_at_ms <= $3 OR $2 = 'EMI' OR (status IN ('EMG', 'EDG') AND $2 IN ('EMH', 'EDH')))")
                    .bind(&e.item_id).bind(&e.code).bind(e.at_ms)
                    .execute(&mut *tx).await?;
            }
            for d in &p.decisions {
                let decided = sqlx::query("UPDATE corrections SET status = $2 WHERE id = $1 AND status = 'pending'")
                    .bind(&d.correction_id).bind(&d.status)
                    .execute(&mut *tx).await?;
                if decided.rows_affected() == 0 {
                    tx.rollback().await?;
                    return Err(CommitError::Conflict(format!(
                        "correction {} is not pending: it was decided meanwhile, or does not exist",
                        d.correction_id
                    )));
                }
                sqlx::query("UPDATE review_queue SET status = $2, decided_by = $3, decision_comment = $4, decided_at_ms = $5, auto_approved = $6 WHERE kind = 'correction' AND subject_id = $1 AND status = 'open'")
                    .bind(&d.correction_id).bind(&d.status).bind(&d.by).bind(&d.comment).bind(d.at_ms).bind(d.auto)
                    .execute(&mut *tx).await?;
            }
            for r in &p.references {
                sqlx::query("UPDATE delivery_points SET lines = $2, lat = $3, lon = $4, version = $5 WHERE id = $1")
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
            insert_rows!(tx, "INSERT INTO audit_log (at_ms, actor, action, subject, detail) ", audit, |row, a| {
                row.push_bind(a.at_ms).push_bind(&a.actor).push_bind(&a.action)
                    .push_bind(&a.subject).push_bind(&a.detail);
            }, "");
            tx.commit().await?;
            Ok(())
        })
    }

    /// Documents with more than `threshold` changes after their snapshot, at most `limit`.
    pub async fn documents_to_compact(
        &self,
        threshold: i64,
        limit: i64,
    ) -> Result<Vec<DocId>, sqlx::Error> {
        let ids: Vec<String> = with_pool!(self, pool => {
            sqlx::query("SELECT c.doc_id AS id FROM changes c JOIN documents d ON d.id = c.doc_id WHERE c.seq > d.snapshot_seq GROUP BY c.doc_id HAVING COUNT(*) > $1 LIMIT $2")
                .bind(threshold).bind(limit).fetch_all(pool).await?
                .into_iter()
                .map(|r| r.try_get::<String, _>("id"))
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(ids
            .into_iter()
            .filter_map(|id| DocId::parse(&id).ok())
            .collect())
    }

    /// Replaces a document's snapshot with one that includes every change up to `seq`; a
    /// concurrent compaction that got further wins. The changes stay in the log: devices'
    /// cursors read them.
    pub async fn replace_snapshot(
        &self,
        id: &DocId,
        snapshot: &[u8],
        seq: i64,
    ) -> Result<bool, sqlx::Error> {
        with_pool!(self, pool => {
            let done = sqlx::query("UPDATE documents SET snapshot = $2, snapshot_seq = $3 WHERE id = $1 AND snapshot_seq < $3")
                .bind(id.as_str()).bind(snapshot).bind(seq)
                .execute(pool).await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// The postman a device is registered to, and whether it is revoked.
    pub async fn device(&self, device: &str) -> Result<Option<(String, bool)>, sqlx::Error> {
        with_pool!(self, pool => {
            let Some(row) = sqlx::query("SELECT postman, revoked_at FROM devices WHERE id = $1")
                .bind(device).fetch_optional(pool).await? else { return Ok(None) };
            Ok(Some((row.try_get("postman")?, row.try_get::<Option<i64>, _>("revoked_at")?.is_some())))
        })
    }

    /// Whether a device's tokens are refused.
    pub async fn device_revoked(&self, device: &str) -> Result<bool, sqlx::Error> {
        with_pool!(self, pool => {
            let row = sqlx::query("SELECT revoked_at FROM devices WHERE id = $1").bind(device).fetch_optional(pool).await?;
            Ok(match row {
                Some(row) => row.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
                None => false,
            })
        })
    }

    /// Registers a device for a postman (idempotent).
    pub async fn register_device(&self, device: &str, postman: &str) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query("INSERT INTO devices (id, postman) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
                .bind(device).bind(postman).execute(pool).await?;
            Ok(())
        })
    }

    /// Refuses every token of a device from now on.
    pub async fn revoke_device(&self, device: &str, at_ms: i64) -> Result<bool, sqlx::Error> {
        with_pool!(self, pool => {
            let done = sqlx::query("UPDATE devices SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(device).bind(at_ms).execute(pool).await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// The rounds assigned to a device between two days (`YYYY-MM-DD`, inclusive).
    pub async fn rounds_for_device(
        &self,
        device: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<RoundManifest>, sqlx::Error> {
        let rounds: Vec<(String, String, String)> = with_pool!(self, pool => {
            sqlx::query("SELECT id, day, postman FROM rounds WHERE (device = $1 OR id IN (SELECT round_id FROM round_devices WHERE device = $1)) AND day >= $2 AND day <= $3 ORDER BY day, id")
                .bind(device).bind(from).bind(to).fetch_all(pool).await?
                .into_iter()
                .map(|r| Ok((r.try_get("id")?, r.try_get("day")?, r.try_get("postman")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        let mut manifests = Vec::new();
        for (id, day, postman) in rounds {
            let stops: Vec<(i64, String, String)> = with_pool!(self, pool => {
                sqlx::query("SELECT position, delivery_point_id, items FROM round_stops WHERE round_id = $1 ORDER BY position")
                    .bind(&id).fetch_all(pool).await?
                    .into_iter()
                    .map(|r| Ok((r.try_get("position")?, r.try_get("delivery_point_id")?, r.try_get("items")?)))
                    .collect::<Result<Vec<_>, sqlx::Error>>()?
            });
            let stops = stops
                .into_iter()
                .map(|(position, delivery_point, items)| Stop {
                    order: u32::try_from(position).unwrap_or(u32::MAX),
                    delivery_point,
                    items: serde_json::from_str(&items).unwrap_or_default(),
                })
                .collect();
            manifests.push(RoundManifest {
                round_id: id,
                date: day,
                postman,
                device: device.to_string(),
                stops,
            });
        }
        Ok(manifests)
    }

    /// Publishes a round to a device.
    pub async fn insert_round(&self, round: &RoundManifest) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("INSERT INTO rounds (id, day, postman, device) VALUES ($1, $2, $3, $4)")
                .bind(&round.round_id).bind(&round.date).bind(&round.postman).bind(&round.device)
                .execute(&mut *tx).await?;
            for stop in &round.stops {
                sqlx::query("INSERT INTO round_stops (round_id, position, delivery_point_id, items) VALUES ($1, $2, $3, $4)")
                    .bind(&round.round_id).bind(i64::from(stop.order)).bind(&stop.delivery_point)
                    .bind(serde_json::to_string(&stop.items).unwrap_or_default())
                    .execute(&mut *tx).await?;
            }
            tx.commit().await
        })
    }

    /// The documents of a customer: their delivery points and the items addressed there.
    pub async fn customer_documents(&self, customer: &str) -> Result<Vec<DocId>, sqlx::Error> {
        let ids: Vec<(String, Option<String>)> = with_pool!(self, pool => {
            sqlx::query("SELECT dp.id AS dp, i.id AS item FROM delivery_points dp LEFT JOIN items i ON i.delivery_point_id = dp.id WHERE dp.customer_id = $1")
                .bind(customer).fetch_all(pool).await?
                .into_iter()
                .map(|r| Ok((r.try_get("dp")?, r.try_get("item")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        let mut docs = HashSet::new();
        for (dp, item) in ids {
            if let Ok(id) = DocId::delivery_point(&dp) {
                docs.insert(id);
            }
            if let Some(Ok(s10)) = item.map(|i| tournee_sync_core::S10::parse(&i)) {
                docs.insert(DocId::item(&s10));
            }
        }
        Ok(docs.into_iter().collect())
    }

    /// Adds a customer.
    pub async fn insert_customer(&self, id: &str, name: &str) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query("INSERT INTO customers (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
                .bind(id).bind(name).execute(pool).await?;
            Ok(())
        })
    }

    /// Adds a delivery point to the central profile.
    pub async fn insert_delivery_point(
        &self,
        id: &str,
        customer: Option<&str>,
        lines: &[String],
        pin: Option<(f64, f64)>,
        version: i64,
    ) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query("INSERT INTO delivery_points (id, customer_id, lines, lat, lon, version) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING")
                .bind(id).bind(customer).bind(lines.join("\n")).bind(pin.map(|p| p.0)).bind(pin.map(|p| p.1)).bind(version)
                .execute(pool).await?;
            Ok(())
        })
    }

    /// Adds an item to the central profile.
    pub async fn insert_item(
        &self,
        id: &str,
        delivery_point: &str,
        customer: Option<&str>,
        needs_in_person: bool,
        at_ms: i64,
    ) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query("INSERT INTO items (id, delivery_point_id, customer_id, status, needs_in_person, updated_at_ms) VALUES ($1, $2, $3, 'EMG', $4, $5) ON CONFLICT (id) DO NOTHING")
                .bind(id).bind(delivery_point).bind(customer).bind(needs_in_person).bind(at_ms)
                .execute(pool).await?;
            Ok(())
        })
    }

    /// The pins of the delivery points of `items`, in one query: what projecting a sync's
    /// attempts needs. An item without a pinned point is absent from the map.
    #[tracing::instrument(name = "sql.item_pins", level = "info", skip_all)]
    pub async fn item_pins(
        &self,
        items: &[&str],
    ) -> Result<std::collections::HashMap<String, (f64, f64)>, sqlx::Error> {
        if items.is_empty() {
            return Ok(Default::default());
        }
        let ids = serde_json::to_string(items).unwrap_or_else(|_| "[]".into());
        let sql = format!(
            "SELECT i.id AS id, d.lat AS lat, d.lon AS lon FROM items i JOIN delivery_points d ON d.id = i.delivery_point_id WHERE i.id IN {}",
            self.json_list(1)
        );
        let rows: Vec<(String, Option<f64>, Option<f64>)> = with_pool!(self, pool => {
            sqlx::query(&sql).bind(&ids).fetch_all(pool).await?
                .into_iter()
                .map(|r| Ok((r.try_get("id")?, r.try_get("lat")?, r.try_get("lon")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(rows
            .into_iter()
            .filter_map(|(id, lat, lon)| Some((id, lat.zip(lon)?)))
            .collect())
    }

    /// What projection needs to know of an item.
    pub async fn item_info(&self, item: &str) -> Result<Option<ItemInfo>, sqlx::Error> {
        with_pool!(self, pool => {
            let Some(row) = sqlx::query("SELECT i.delivery_point_id AS dp, i.status AS status, d.lat AS lat, d.lon AS lon FROM items i JOIN delivery_points d ON d.id = i.delivery_point_id WHERE i.id = $1")
                .bind(item).fetch_optional(pool).await? else { return Ok(None) };
            let lat: Option<f64> = row.try_get("lat")?;
            let lon: Option<f64> = row.try_get("lon")?;
            Ok(Some(ItemInfo {
                delivery_point: row.try_get("dp")?,
                pin: lat.zip(lon),
                status: row.try_get("status")?,
            }))
        })
    }

    /// Attempts recorded for an item, oldest first, as stored.
    pub async fn attempts_for_item(&self, item: &str) -> Result<Vec<AttemptRow>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query("SELECT * FROM attempts WHERE item_id = $1 ORDER BY recorded_at_ms, id")
                .bind(item).fetch_all(pool).await?
                .into_iter()
                .map(|r| <AttemptRow as sqlx::FromRow<_>>::from_row(&r))
                .collect()
        })
    }

    /// A correction's review status (`pending`, `approved`, `rejected`).
    pub async fn correction_status(&self, id: &str) -> Result<Option<String>, sqlx::Error> {
        with_pool!(self, pool => {
            let row = sqlx::query("SELECT status FROM corrections WHERE id = $1").bind(id).fetch_optional(pool).await?;
            row.map(|r| r.try_get::<String, _>("status")).transpose()
        })
    }

    /// Open review-queue entries, oldest first.
    pub async fn open_queue(&self) -> Result<Vec<QueueRow>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query("SELECT kind, subject_id, reason, created_ms FROM review_queue WHERE status = 'open' ORDER BY id")
                .fetch_all(pool).await?
                .into_iter()
                .map(|r| Ok(QueueRow { kind: r.try_get("kind")?, subject_id: r.try_get("subject_id")?, reason: r.try_get("reason")?, created_ms: r.try_get("created_ms")? }))
                .collect()
        })
    }

    /// An item's UPU events, in time order.
    pub async fn item_events(&self, item: &str) -> Result<Vec<EventRow>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query("SELECT item_id, code, at_ms, reason, action, source FROM item_events WHERE item_id = $1 ORDER BY at_ms, id")
                .bind(item).fetch_all(pool).await?
                .into_iter()
                .map(|r| Ok(EventRow { item_id: r.try_get("item_id")?, code: r.try_get("code")?, at_ms: r.try_get("at_ms")?, reason: r.try_get("reason")?, action: r.try_get("action")?, source: r.try_get("source")? }))
                .collect()
        })
    }

    /// Choices recorded for an item, with whether they can be honoured.
    pub async fn choices_for_item(&self, item: &str) -> Result<Vec<ChoiceRow>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query("SELECT * FROM choices WHERE item_id = $1 ORDER BY made_at_ms, id")
                .bind(item).fetch_all(pool).await?
                .into_iter()
                .map(|r| <ChoiceRow as sqlx::FromRow<_>>::from_row(&r))
                .collect()
        })
    }

    /// Review-queue entries, newest first, filtered by kind and status (`open`, `closed` for
    /// every decided entry, or all when `None`).
    pub async fn queue(
        &self,
        kind: Option<&str>,
        status: Option<&str>,
    ) -> Result<Vec<QueueEntryRow>, sqlx::Error> {
        let status_clause = match status {
            Some("open") => "status = 'open'",
            Some(_) => "status <> 'open'",
            None => "TRUE",
        };
        let sql = format!("SELECT * FROM review_queue WHERE ($1 IS NULL OR kind = $1) AND {status_clause} ORDER BY id DESC");
        with_pool!(self, pool => {
            sqlx::query(&sql).bind(kind).fetch_all(pool).await?
                .into_iter().map(|r| queue_entry(&r)).collect()
        })
    }

    /// One review-queue entry.
    pub async fn queue_entry(&self, id: i64) -> Result<Option<QueueEntryRow>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query("SELECT * FROM review_queue WHERE id = $1").bind(id).fetch_optional(pool).await?
                .map(|r| queue_entry(&r)).transpose()
        })
    }

    /// Decides an open entry that no document write carries (a flagged attempt, a dispute),
    /// with its audit line, in one transaction. `false` if it was decided already.
    pub async fn decide_entry(
        &self,
        id: i64,
        status: &str,
        by: &str,
        comment: &str,
        audit: &AuditRow,
        event: &crate::events::NewEvent,
    ) -> Result<bool, sqlx::Error> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query("UPDATE review_queue SET status = $2, decided_by = $3, decision_comment = $4, decided_at_ms = $5 WHERE id = $1 AND status = 'open'")
                .bind(id).bind(status).bind(by).bind(comment).bind(audit.at_ms)
                .execute(&mut *tx).await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            sqlx::query("INSERT INTO audit_log (at_ms, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)")
                .bind(audit.at_ms).bind(&audit.actor).bind(&audit.action).bind(&audit.subject).bind(&audit.detail)
                .execute(&mut *tx).await?;
            insert_rows!(tx, events::INSERT_EVENTS, [event], |row, e| {
                row.push_bind(&e.id).push_bind(e.type_name).push_bind(e.subject_kind.as_str())
                    .push_bind(&e.subject_id).push_bind(e.occurred_ms).push_bind(audit.at_ms)
                    .push_bind(&e.payload);
            }, events::INSERT_EVENTS_TAIL);
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
            let row = sqlx::query("INSERT INTO review_queue (kind, subject_id, reason, status, created_ms, detail) VALUES ('dispute', $1, $2, 'open', $3, $4) ON CONFLICT (kind, subject_id, reason) DO NOTHING RETURNING id")
                .bind(attempt_id).bind(&reason).bind(audit.at_ms).bind(detail)
                .fetch_optional(&mut *tx).await?;
            let Some(row) = row else { return Ok(None) };
            sqlx::query("INSERT INTO audit_log (at_ms, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)")
                .bind(audit.at_ms).bind(&audit.actor).bind(&audit.action).bind(&audit.subject).bind(&audit.detail)
                .execute(&mut *tx).await?;
            insert_rows!(tx, events::INSERT_EVENTS, [event], |row, e| {
                row.push_bind(&e.id).push_bind(e.type_name).push_bind(e.subject_kind.as_str())
                    .push_bind(&e.subject_id).push_bind(e.occurred_ms).push_bind(audit.at_ms)
                    .push_bind(&e.payload);
            }, events::INSERT_EVENTS_TAIL);
            tx.commit().await?;
            Ok(Some(row.try_get("id")?))
        })
    }

    /// The corrections proposed for a delivery point, with their status.
    pub async fn corrections_for_point(
        &self,
        delivery_point: &str,
    ) -> Result<Vec<(CorrectionRow, String)>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query("SELECT * FROM corrections WHERE delivery_point_id = $1 ORDER BY proposed_at_ms, id")
                .bind(delivery_point).fetch_all(pool).await?
                .into_iter()
                .map(|r| Ok((correction_row(&r)?, r.try_get("status")?)))
                .collect()
        })
    }

    /// The audit lines about one subject (`dp:…`, `item:…`, `attempt:…`), oldest first.
    pub async fn audit_log(&self, subject: &str) -> Result<Vec<AuditRow>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query("SELECT at_ms, actor, action, subject, detail FROM audit_log WHERE subject = $1 ORDER BY id")
                .bind(subject).fetch_all(pool).await?
                .into_iter()
                .map(|r| Ok(AuditRow { at_ms: r.try_get("at_ms")?, actor: r.try_get("actor")?, action: r.try_get("action")?, subject: r.try_get("subject")?, detail: r.try_get("detail")? }))
                .collect()
        })
    }

    /// Corrections still waiting for a decision, oldest first, at most `limit`.
    pub async fn pending_corrections(&self, limit: i64) -> Result<Vec<CorrectionRow>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query("SELECT * FROM corrections WHERE status = 'pending' ORDER BY proposed_at_ms, id LIMIT $1")
                .bind(limit).fetch_all(pool).await?
                .iter()
                .map(correction_row)
                .collect()
        })
    }

    /// A correction with its status.
    pub async fn correction(
        &self,
        id: &str,
    ) -> Result<Option<(CorrectionRow, String)>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query("SELECT * FROM corrections WHERE id = $1").bind(id).fetch_optional(pool).await?
                .map(|r| Ok((correction_row(&r)?, r.try_get("status")?)))
                .transpose()
        })
    }

    /// The attempt with this id.
    pub async fn attempt(&self, id: &str) -> Result<Option<AttemptRow>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query("SELECT * FROM attempts WHERE id = $1").bind(id).fetch_optional(pool).await?
                .map(|r| <AttemptRow as sqlx::FromRow<_>>::from_row(&r)).transpose()
        })
    }

    /// The customer an item or delivery point belongs to.
    pub async fn owner_of_item(&self, item: &str) -> Result<Option<String>, sqlx::Error> {
        with_pool!(self, pool => {
            let row = sqlx::query("SELECT d.customer_id AS customer FROM items i JOIN delivery_points d ON d.id = i.delivery_point_id WHERE i.id = $1")
                .bind(item).fetch_optional(pool).await?;
            Ok(row.map(|r| r.try_get::<Option<String>, _>("customer")).transpose()?.flatten())
        })
    }

    /// Items matching every given filter, at most 200.
    pub async fn search(&self, f: &SearchFilter) -> Result<Vec<SearchRow>, sqlx::Error> {
        let address = f
            .address
            .as_ref()
            .map(|a| format!("%{}%", like_literal(&a.to_lowercase())));
        with_pool!(self, pool => {
            sqlx::query("SELECT i.id AS item_id, i.delivery_point_id AS dp, d.lines AS lines, i.status AS status, r.postman AS postman, r.id AS round_id, r.day AS day FROM items i JOIN delivery_points d ON d.id = i.delivery_point_id LEFT JOIN round_stops s ON s.delivery_point_id = i.delivery_point_id AND s.items LIKE '%\"' || i.id || '\"%' LEFT JOIN rounds r ON r.id = s.round_id WHERE ($1 IS NULL OR i.id = $1) AND ($2 IS NULL OR LOWER(d.lines) LIKE $2 ESCAPE '\\') AND ($3 IS NULL OR r.postman = $3) AND ($4 IS NULL OR r.id = $4) AND ($5 IS NULL OR r.day = $5) ORDER BY i.id, r.day DESC LIMIT 200")
                .bind(&f.s10).bind(&address).bind(&f.postman).bind(&f.round).bind(&f.date)
                .fetch_all(pool).await?
                .into_iter()
                .map(|r| {
                    let lines: String = r.try_get("lines")?;
                    Ok(SearchRow {
                        item_id: r.try_get("item_id")?,
                        delivery_point_id: r.try_get("dp")?,
                        address: lines.replace('\n', ", "),
                        status: r.try_get("status")?,
                        postman: r.try_get("postman")?,
                        round_id: r.try_get("round_id")?,
                        date: r.try_get("day")?,
                    })
                })
                .collect()
        })
    }

    /// How many rows a table has (tests and the load generator's checks).
    pub async fn count(&self, table: Table) -> Result<i64, sqlx::Error> {
        let sql = format!("SELECT COUNT(*) AS n FROM {}", table.name());
        with_pool!(self, pool => {
            let row = sqlx::query(&sql).fetch_one(pool).await?;
            row.try_get::<i64, _>("n")
        })
    }
}

/// Tables whose rows can be counted.
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub enum Table {
    Changes,
    Documents,
    DeliveryPoints,
    Events,
    Attempts,
    Choices,
    Corrections,
    ReviewQueue,
    AuditLog,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Changes => "changes",
            Table::Documents => "documents",
            Table::DeliveryPoints => "delivery_points",
            Table::Events => "events",
            Table::Attempts => "attempts",
            Table::Choices => "choices",
            Table::Corrections => "corrections",
            Table::ReviewQueue => "review_queue",
            Table::AuditLog => "audit_log",
        }
    }
}

/// `text` for a LIKE pattern with `ESCAPE '\'`: its `%`, `_` and `\` match only themselves.
fn like_literal(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

pub(crate) fn queue_entry<R: Row>(r: &R) -> Result<QueueEntryRow, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> bool: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(QueueEntryRow {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        subject_id: r.try_get("subject_id")?,
        reason: r.try_get("reason")?,
        status: r.try_get("status")?,
        created_ms: r.try_get("created_ms")?,
        detail: r.try_get("detail")?,
        decided_by: r.try_get("decided_by")?,
        decision_comment: r.try_get("decision_comment")?,
        decided_at_ms: r.try_get("decided_at_ms")?,
        auto_approved: r.try_get("auto_approved")?,
    })
}

fn correction_row<R: Row>(r: &R) -> Result<CorrectionRow, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Vec<u8>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(CorrectionRow {
        id: r.try_get("id")?,
        delivery_point_id: r.try_get("delivery_point_id")?,
        change_hash: r.try_get("change_hash")?,
        proposed_by: r.try_get("proposed_by")?,
        device: r.try_get("device")?,
        proposed_at_ms: r.try_get("proposed_at_ms")?,
        record: r.try_get("record")?,
    })
}
