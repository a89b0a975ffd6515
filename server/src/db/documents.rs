//! Documents as stored: a snapshot and the changes after it, created by the server and
//! compacted when their tail of changes grows long.

use std::collections::HashMap;

use tournee_sync_core::DocId;

use super::actors::{self, now_ms, server_bindings};
use super::{Database, ROWS_PER_INSERT};

/// Stores a new document, unless it exists.
const CREATE_DOCUMENT: &str = "INSERT INTO documents (id, kind, snapshot, snapshot_seq) \
     VALUES ($1, $2, $3, 0) ON CONFLICT (id) DO NOTHING";

/// Binds a new document's actors to the server: the tail of [`actors::BIND_ACTORS`].
const BIND_SERVER_ACTORS_TAIL: &str = " ON CONFLICT (actor) DO NOTHING";

/// A document's changes after a position, in order.
const CHANGES_AFTER: &str = "SELECT {position}, bytes FROM changes \
     WHERE doc_id = $1 AND {position} > $2 ORDER BY {position}";

/// The snapshots of the documents of a JSON list (`{in_list}`, `$1`), and the changes after each
/// one's snapshot, in one statement: the snapshot and the changes are read at one moment, so a
/// compaction between two reads cannot move the snapshot past changes not read. Snapshot rows
/// have no position, change rows no snapshot (both backends type a `NULL` by the other branch).
const SNAPSHOTS_AND_CHANGES: &str = "SELECT d.id, d.snapshot, d.snapshot_seq, \
     NULL AS position, NULL AS bytes FROM documents d WHERE d.id {in_list} \
     UNION ALL SELECT c.doc_id, NULL, NULL, c.{position}, c.bytes FROM documents d \
     JOIN changes c ON c.doc_id = d.id AND c.{position} > d.snapshot_seq WHERE d.id {in_list}";

/// One row of [`SNAPSHOTS_AND_CHANGES`]: a document's snapshot, or one of its changes.
#[derive(sqlx::FromRow)]
struct SnapshotOrChange {
    id: String,
    snapshot: Option<Vec<u8>>,
    snapshot_seq: Option<i64>,
    position: Option<i64>,
    bytes: Option<Vec<u8>>,
}

/// Documents with more than `$1` changes after their snapshot, at most `$2`.
const TO_COMPACT: &str = "SELECT c.doc_id AS id FROM changes c \
     JOIN documents d ON d.id = c.doc_id \
     WHERE c.{position} > d.snapshot_seq \
     GROUP BY c.doc_id HAVING COUNT(*) > $1 LIMIT $2";

/// Replaces a snapshot with one that goes further.
const REPLACE_SNAPSHOT: &str = "UPDATE documents SET snapshot = $2, snapshot_seq = $3 \
     WHERE id = $1 AND snapshot_seq < $3";

/// A document as stored: its snapshot and the changes after it.
#[derive(Debug, Clone)]
pub struct StoredDocument {
    /// The saved document.
    pub snapshot: Vec<u8>,
    /// The change log position the snapshot includes every change up to.
    pub snapshot_position: i64,
    /// Changes stored after the snapshot, with their positions.
    pub changes: Vec<(i64, Vec<u8>)>,
}

/// A document's kind as the `documents` table names it.
fn document_kind(id: &DocId) -> &'static str {
    match id.kind() {
        tournee_sync_core::DocKind::Item => "item",
        tournee_sync_core::DocKind::DeliveryPoint => "delivery_point",
    }
}

impl Database {
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
                }, BIND_SERVER_ACTORS_TAIL);
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// A document's snapshot and the changes after it, if it exists.
    #[tracing::instrument(name = "sql.load_document", level = "info", skip_all)]
    pub async fn load_document(&self, id: &DocId) -> Result<Option<StoredDocument>, sqlx::Error> {
        Ok(self.load_documents(&[id]).await?.remove(id))
    }

    /// Documents' snapshots and the changes after each, in one statement whatever their number.
    /// Documents that are not stored are absent from the answer.
    #[tracing::instrument(name = "sql.load_documents", level = "info", skip_all)]
    pub async fn load_documents(
        &self,
        ids: &[&DocId],
    ) -> Result<HashMap<DocId, StoredDocument>, sqlx::Error> {
        // Rows name the documents asked for: each is matched to its id, not parsed again.
        let asked: HashMap<&str, &DocId> = ids.iter().map(|id| (id.as_str(), *id)).collect();
        let keys: Vec<&str> = asked.keys().copied().collect();
        let rows: Vec<SnapshotOrChange> = self
            .fetch_in(&self.positioned(SNAPSHOTS_AND_CHANGES), &keys)
            .await?;
        let mut stored: HashMap<DocId, StoredDocument> = HashMap::new();
        let mut changes: Vec<(&DocId, i64, Vec<u8>)> = Vec::new();
        for row in rows {
            let unexpected = || {
                sqlx::Error::Decode(
                    format!("load_documents: a row of {:?} that is neither a snapshot nor a change of one asked for", row.id).into(),
                )
            };
            let id = *asked.get(row.id.as_str()).ok_or_else(unexpected)?;
            match (row.snapshot, row.snapshot_seq, row.position, row.bytes) {
                (Some(snapshot), Some(since), None, None) => {
                    stored.insert(
                        id.clone(),
                        StoredDocument {
                            snapshot,
                            snapshot_position: since,
                            changes: Vec::new(),
                        },
                    );
                }
                (None, None, Some(position), Some(bytes)) => changes.push((id, position, bytes)),
                _ => return Err(unexpected()),
            }
        }
        changes.sort_by_key(|(_, position, _)| *position);
        for (id, position, bytes) in changes {
            if let Some(document) = stored.get_mut(id) {
                document.changes.push((position, bytes));
            }
        }
        Ok(stored)
    }

    /// Changes of one document stored after position `after` (to refresh a cached copy).
    pub async fn changes_after(
        &self,
        id: &DocId,
        after: i64,
    ) -> Result<Vec<(i64, Vec<u8>)>, sqlx::Error> {
        let sql = self.positioned(CHANGES_AFTER);
        with_pool!(self, pool => {
            sqlx::query_as(&sql).bind(id.as_str()).bind(after).fetch_all(pool).await
        })
    }

    /// Documents with more than `threshold` changes after their snapshot, at most `limit`.
    pub async fn documents_to_compact(
        &self,
        threshold: i64,
        limit: i64,
    ) -> Result<Vec<DocId>, sqlx::Error> {
        let sql = self.positioned(TO_COMPACT);
        let ids: Vec<String> = with_pool!(self, pool => {
            sqlx::query_scalar(&sql).bind(threshold).bind(limit).fetch_all(pool).await?
        });
        Ok(ids
            .into_iter()
            .filter_map(|id| DocId::parse(&id).ok())
            .collect())
    }

    /// Replaces a document's snapshot with one that includes every change up to position
    /// `seq` (at most a [`Database::cursor_bound`] read before the document was: a change below
    /// it that commits later would otherwise never be loaded); a concurrent compaction that got
    /// further wins. The changes stay in the log: devices'
    /// cursors read them.
    pub async fn replace_snapshot(
        &self,
        id: &DocId,
        snapshot: &[u8],
        seq: i64,
    ) -> Result<bool, sqlx::Error> {
        with_pool!(self, pool => {
            let done = sqlx::query(REPLACE_SNAPSHOT)
                .bind(id.as_str()).bind(snapshot).bind(seq)
                .execute(pool).await?;
            Ok(done.rows_affected() > 0)
        })
    }
}
