//! What the validator must know beyond a document, read before a batch is validated: who owns
//! the Automerge actors the batch writes under (table `actors`, migration 0003), and which
//! documents already hold the record keys it may create (the projected tables). The bindings
//! themselves are written by [`Database::commit_sync`], in the transaction that stores the
//! changes they authorise, with the SQL texts here.

use std::collections::{BTreeSet, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use tournee_sync_core::automerge::{ActorId, Automerge, Change};
use tournee_sync_core::validator::{Claims, SERVER_OWNER};
use tournee_sync_core::DocId;

use super::{Database, ROWS_PER_INSERT};

/// The owners of the actors among a JSON list (`{in_list}`).
const ACTOR_OWNERS: &str = "SELECT actor, owner FROM actors WHERE actor {in_list}";

/// The documents holding any of a JSON list of record keys (`{in_list}`), per map of records.
const RECORD_KEYS: &str = "SELECT 'attempts' AS records, id, 'item:' || item_id AS doc FROM attempts WHERE id {in_list} \
     UNION ALL SELECT 'choices' AS records, id, 'item:' || item_id AS doc FROM choices WHERE id {in_list} \
     UNION ALL SELECT 'corrections' AS records, id, 'dp:' || delivery_point_id AS doc FROM corrections WHERE id {in_list}";

/// Binds actors: the head of a multi-row insert of `(actor, owner, bound_ms)`.
pub(super) const BIND_ACTORS: &str = "INSERT INTO actors (actor, owner, bound_ms) ";

/// Binds actors: an actor bound already to the same owner is returned as bound; one bound to
/// another owner is not returned, and the write fails.
pub(super) const BIND_ACTORS_TAIL: &str = " ON CONFLICT (actor) DO UPDATE SET bound_ms = actors.bound_ms WHERE actors.owner = excluded.owner RETURNING actor";

/// The changes that projected records before actors were bound (migration 0003), oldest first,
/// with the owner their record names: the device's postman, or the customer.
const LEGACY_RECORD_AUTHORS: &str = "SELECT c.seq AS seq, c.bytes AS bytes, 'postman:' || a.postman || ':' || a.device AS owner FROM attempts a JOIN changes c ON c.doc_id = 'item:' || a.item_id AND c.hash = a.change_hash \
     UNION ALL SELECT c.seq AS seq, c.bytes AS bytes, 'postman:' || r.proposed_by || ':' || r.device AS owner FROM corrections r JOIN changes c ON c.doc_id = 'dp:' || r.delivery_point_id AND c.hash = r.change_hash \
     UNION ALL SELECT c.seq AS seq, c.bytes AS bytes, 'customer:' || h.made_by || ':' AS owner FROM choices h JOIN changes c ON c.doc_id = 'item:' || h.item_id AND c.hash = h.change_hash \
     ORDER BY seq";

/// Snapshots as the server created them (never compacted): only the server's changes.
const CREATED_SNAPSHOTS: &str = "SELECT snapshot FROM documents WHERE snapshot_seq = 0";

/// Whether the `actors` table exists (migration 0003 ran before).
const ACTORS_EXIST: &str = "SELECT COUNT(*) FROM actors";

/// A change that projected a record, and the owner the record names.
#[derive(Debug, sqlx::FromRow)]
struct LegacyAuthorRow {
    bytes: Vec<u8>,
    owner: String,
}

/// An actor and its owner.
#[derive(Debug, sqlx::FromRow)]
struct ActorRow {
    actor: String,
    owner: String,
}

/// A record key and the document that holds it.
#[derive(Debug, sqlx::FromRow)]
struct RecordKeyRow {
    records: String,
    id: String,
    doc: String,
}

/// An actor binding as stored: the actor (hex) and its owner.
pub type ActorBinding = (String, String);

/// The bindings to write for `accepted`'s actors.
pub fn bindings_of(bindings: &[(ActorId, String)]) -> Vec<ActorBinding> {
    bindings
        .iter()
        .map(|(actor, owner)| (actor.to_hex_string(), owner.clone()))
        .collect()
}

/// Every actor of a document the server made itself, bound to the server.
pub fn server_bindings(doc: &Automerge) -> Vec<ActorBinding> {
    let actors: BTreeSet<String> = doc
        .get_changes(&[])
        .iter()
        .map(|c| c.actor_id().to_hex_string())
        .collect();
    actors
        .into_iter()
        .map(|actor| (actor, SERVER_OWNER.to_string()))
        .collect()
}

impl Database {
    /// What the validator must know for a batch that writes under `actors` and may create
    /// records under `keys`: the owners of those actors that are bound, and the documents that
    /// hold those keys.
    #[tracing::instrument(name = "sql.claims", level = "info", skip_all)]
    pub async fn claims(
        &self,
        actors: &BTreeSet<ActorId>,
        keys: &BTreeSet<String>,
    ) -> Result<Claims, sqlx::Error> {
        let mut claims = Claims::default();
        if !actors.is_empty() {
            let hex: Vec<String> = actors.iter().map(ActorId::to_hex_string).collect();
            let sql = ACTOR_OWNERS.replace("{in_list}", &self.in_list(1));
            let list = serde_json::to_string(&hex).unwrap_or_else(|_| "[]".into());
            let rows: Vec<ActorRow> = with_pool!(self, pool => {
                sqlx::query_as(&sql).bind(&list).fetch_all(pool).await?
            });
            let by_hex: HashMap<String, &ActorId> = hex.into_iter().zip(actors.iter()).collect();
            for row in rows {
                if let Some(actor) = by_hex.get(&row.actor) {
                    claims.actors.insert((*actor).clone(), row.owner);
                }
            }
        }
        if !keys.is_empty() {
            let sql = RECORD_KEYS.replace("{in_list}", &self.in_list(1));
            let list = serde_json::to_string(keys).unwrap_or_else(|_| "[]".into());
            let rows: Vec<RecordKeyRow> = with_pool!(self, pool => {
                sqlx::query_as(&sql).bind(&list).fetch_all(pool).await?
            });
            for row in rows {
                if let Ok(doc) = DocId::parse(&row.doc) {
                    claims.record_keys.insert((row.records, row.id), doc);
                }
            }
        }
        Ok(claims)
    }

    /// Whether migration 0003 had run before this start.
    pub(super) async fn actors_table_exists(&self) -> bool {
        let counted: Result<i64, sqlx::Error> = with_pool!(self, pool => {
            sqlx::query_scalar(ACTORS_EXIST).fetch_one(pool).await
        });
        counted.is_ok()
    }

    /// Runs once, when migration 0003 has just created the `actors` table: binds the actors of
    /// the changes stored before.
    pub(super) async fn after_migrations(&self, bound_before: bool) -> Result<(), sqlx::Error> {
        if !bound_before {
            self.bind_legacy_actors().await?;
        }
        Ok(())
    }

    /// Binds the actors of changes stored before actors were bound, where the owner is known,
    /// so that nobody can claim a phone's actor first: the author of each projected attempt,
    /// correction or choice to the owner its record names (the validator checked it against
    /// the token then), and the actors of the documents the server created to the server.
    /// An actor bound already keeps its owner.
    pub async fn bind_legacy_actors(&self) -> Result<(), sqlx::Error> {
        let authors: Vec<LegacyAuthorRow> = with_pool!(self, pool => {
            sqlx::query_as(LEGACY_RECORD_AUTHORS).fetch_all(pool).await?
        });
        let snapshots: Vec<Vec<u8>> = with_pool!(self, pool => {
            sqlx::query_scalar(CREATED_SNAPSHOTS).fetch_all(pool).await?
        });
        let mut bindings: Vec<ActorBinding> = Vec::new();
        let mut seen = BTreeSet::new();
        let mut bind = |actor: String, owner: String| {
            if seen.insert(actor.clone()) {
                bindings.push((actor, owner));
            }
        };
        for snapshot in snapshots {
            if let Ok(doc) = Automerge::load(&snapshot) {
                for (actor, owner) in server_bindings(&doc) {
                    bind(actor, owner);
                }
            }
        }
        for row in authors {
            if let Ok(change) = Change::from_bytes(row.bytes) {
                bind(change.actor_id().to_hex_string(), row.owner);
            }
        }
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            insert_rows!(tx, BIND_ACTORS, bindings, |row, (actor, owner)| {
                row.push_bind(actor).push_bind(owner).push_bind(now);
            }, " ON CONFLICT (actor) DO NOTHING");
            tx.commit().await?;
        });
        Ok(())
    }
}

/// Now, Unix milliseconds: when a binding was made.
pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
