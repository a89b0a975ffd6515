//! The central store: coarse domain methods over SQLite (embedded default) or PostgreSQL.
//!
//! Both backends run the same SQL text (`$n` parameters work in both); each has its own
//! migrations under `migrations/<backend>`. Every method is written once, and [`with_pool!`]
//! instantiates it for the backend at hand. The methods live in one file per aggregate, each
//! with its SQL texts as constants; this file holds what they share.

/// The central store.
#[derive(Clone, Debug)]
pub enum Database {
    /// Embedded, one file.
    Sqlite(sqlx::sqlite::SqlitePool),
    /// For production and several server instances.
    Postgres(sqlx::postgres::PgPool),
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

/// SQL (PostgreSQL): the id of the oldest transaction still running that could write to this
/// database, or the next id when none runs. Every transaction with a smaller id has ended, so
/// readers of the change log and of the event feed read below it and never pass a row that
/// commits late. The snapshot's running transactions (`xip`) that `pg_stat_activity` shows in
/// another database, or in an autovacuum worker (its ANALYZE takes a transaction id, and never
/// writes a change), are left out, so a long transaction elsewhere on
/// the cluster holds nothing back here; one it cannot place (not permitted to see it, a background process) counts, which
/// is only slower. (`backend_xid` has 32 bits: compared with the low bits.)
macro_rules! oldest_running_here {
    () => {
        "(SELECT LEAST(pg_snapshot_xmax(s.snap)::text::bigint, \
         (SELECT MIN(x::text::bigint) FROM pg_snapshot_xip(s.snap) AS x \
         WHERE (x::text::bigint % 4294967296) NOT IN (SELECT backend_xid::text::bigint \
         FROM pg_stat_activity WHERE (datname <> current_database() \
         OR backend_type = 'autovacuum worker') AND backend_xid IS NOT NULL))) \
         FROM (SELECT pg_current_snapshot() AS snap) AS s)"
    };
}

// Files of aggregates, after the macros they use.
mod actors;
mod change_log;
mod codes;
mod commit;
mod devices;
mod documents;
mod events;
mod health;
mod history;
mod items;
mod loads;
mod news;
mod open;
pub mod pickup_points;
mod profile;
pub mod proofs;
pub mod retention;
mod review;
mod rounds;
mod rows;
mod search;
mod signatures;
mod tracking;
mod webhooks;

pub use actors::{bindings_of, server_bindings, ActorBinding};
pub use codes::{CorrectionStatus, EntryStatus, QueueKind, UnknownValue, UpuCode};
pub use commit::{CommitError, StoredChange, SyncWrite};
pub use documents::StoredDocument;
pub use events::{FeedCursor, StoredEvent};
pub use health::{PoolState, Table};
pub use history::History;
pub use items::AttemptAtPoint;
pub use loads::Load;
pub use news::NewsRows;
pub use open::{Backend, BackupError, Migrations, OpenError, OpenOptions};
pub use profile::ItemInfo;
pub use proofs::{ProofReference, StoredProof};
pub use rows::{
    AttemptRow, AuditRow, ChoiceRow, CorrectionRow, DecisionRow, EventRow, PreferencesRow,
    Projection, QueueEntryRow, QueueRow, ReferenceRow, SearchFilter, SearchRow,
};
pub use signatures::{signer_text, DeviceKeyRow, KeyRegistration, ServerKeyRow};
pub use webhooks::{
    ClaimedDelivery, DeliveryCounts, DeliveryStatus, NewDelivery, NewSubscription, SubscriptionRow,
};

impl Database {
    /// SQL for "the elements of the JSON array of strings bound as `$n`", one query parameter
    /// holding a whole list of ids on either backend.
    /// `sql` with `{position}` naming the change log's position column: on SQLite its `seq`
    /// (one writer at a time, so changes commit in `seq` order), on PostgreSQL `position`
    /// (the writing transaction's id and the change's place in it: `db/commit.rs`).
    fn positioned(&self, sql: &str) -> String {
        sql.replace(
            "{position}",
            match self {
                Database::Sqlite(_) => "seq",
                Database::Postgres(_) => "position",
            },
        )
    }

    /// `IN` the ids of a JSON list bound as `$n`, as the predicate's tail (`WHERE id {in_list}`).
    /// On PostgreSQL it is `= ANY` of an array, which the planner looks up in the key's index
    /// (it expects 10 keys). Written as `IN (SELECT …)`, the list was planned as a join of 100
    /// keys, and a table below a few tens of thousands of rows was scanned instead: every sync on
    /// a database in its first days scanned `attempts` and `actors` (BENCHMARKS.md, the steady
    /// day on PostgreSQL).
    pub fn in_list(&self, n: u8) -> String {
        match self {
            Database::Sqlite(_) => format!("IN (SELECT value FROM json_each(${n}))"),
            Database::Postgres(_) => {
                format!("= ANY(ARRAY(SELECT json_array_elements_text(${n}::json)))")
            }
        }
    }

    /// `NOT IN` the ids of a JSON list bound as `$n` (see [`Database::in_list`]).
    fn not_in_list(&self, n: u8) -> String {
        match self {
            Database::Sqlite(_) => format!("NOT IN (SELECT value FROM json_each(${n}))"),
            Database::Postgres(_) => {
                format!("<> ALL(ARRAY(SELECT json_array_elements_text(${n}::json)))")
            }
        }
    }

    /// The rows `sql` selects among `keys`, in one query: `sql` names them `{in_list}`, a
    /// [`Database::in_list`] bound as `$1`. No keys, no query and no rows.
    async fn fetch_in<T>(&self, sql: &str, keys: &[&str]) -> Result<Vec<T>, sqlx::Error>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + Send
            + Unpin,
    {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let list = json_ids(keys);
        let sql = sql.replace("{in_list}", &self.in_list(1));
        with_pool!(self, pool => sqlx::query_as(&sql).bind(&list).fetch_all(pool).await)
    }
}

/// A list of ids as one JSON text, for [`Database::in_list`].
fn json_ids<S: serde::Serialize>(ids: &[S]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
}
