//! What the validator must know beyond a document, read before a batch is validated: who owns
//! the Automerge actors the batch writes under (table `actors`, migration 0003), and which
//! documents already hold the record keys it may create (the projected tables). The bindings
//! themselves are written by [`Database::commit_sync`], in the transaction that stores the
//! changes they authorise, with the SQL texts here.

use std::collections::{BTreeSet, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use tournee_sync_core::automerge::{ActorId, Automerge};
use tournee_sync_core::validator::{Claims, SERVER_OWNER};
use tournee_sync_core::DocId;

use super::Database;

/// The owners of the actors among a JSON list (`{ids}`).
const ACTOR_OWNERS: &str = "SELECT actor, owner FROM actors WHERE actor IN {ids}";

/// The documents holding any of a JSON list of record keys (`{ids}`), per map of records.
const RECORD_KEYS: &str = "SELECT 'attempts' AS records, id, 'item:' || item_id AS doc FROM attempts WHERE id IN {ids} \
     UNION ALL SELECT 'choices' AS records, id, 'item:' || item_id AS doc FROM choices WHERE id IN {ids} \
     UNION ALL SELECT 'corrections' AS records, id, 'dp:' || delivery_point_id AS doc FROM corrections WHERE id IN {ids}";

/// Binds actors: the head of a multi-row insert of `(actor, owner, bound_ms)`.
pub(super) const BIND_ACTORS: &str = "INSERT INTO actors (actor, owner, bound_ms) ";

/// Binds actors: an actor bound already to the same owner is returned as bound; one bound to
/// another owner is not returned, and the write fails.
pub(super) const BIND_ACTORS_TAIL: &str = " ON CONFLICT (actor) DO UPDATE SET bound_ms = actors.bound_ms WHERE actors.owner = excluded.owner RETURNING actor";

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
    pub async fn claims(
        &self,
        actors: &BTreeSet<ActorId>,
        keys: &BTreeSet<String>,
    ) -> Result<Claims, sqlx::Error> {
        let mut claims = Claims::default();
        if !actors.is_empty() {
            let hex: Vec<String> = actors.iter().map(ActorId::to_hex_string).collect();
            let sql = ACTOR_OWNERS.replace("{ids}", &self.json_list(1));
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
            let sql = RECORD_KEYS.replace("{ids}", &self.json_list(1));
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
}

/// Now, Unix milliseconds: when a binding was made.
pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
