//! The server's history: which change log a sync cursor belongs to. A database restored from a
//! backup, or copied, begins a history of its own, so that a phone holding a cursor the restored
//! server never issued is told, and re-checks every document it holds (the server may have lost
//! changes it acknowledged; see `sync::wire::SyncResponse::history`).

use rand::Rng;

use super::Database;

/// What the database is, on PostgreSQL: its oid and its change table's. `pg_restore` (into a
/// new database, or with `--clean` into the same) creates both anew.
const PG_IDENTITY: &str =
    "SELECT (SELECT oid FROM pg_database WHERE datname = current_database())::text \
     || '/' || 'changes'::regclass::oid::text";

/// On SQLite a copy is indistinguishable from its original: `tournee-server backup` starts a new
/// history in the copy instead ([`Database::begin_history`]).
const SQLITE_IDENTITY: &str = "sqlite";

/// The first history of a database.
const BEGIN: &str = "INSERT INTO server_history (id, history, identity, began_at_ms) \
     VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING";

/// A new history, when the database is not the one the current history began on.
const BEGIN_AGAIN: &str =
    "UPDATE server_history SET history = $1, identity = $2, began_at_ms = $3 \
     WHERE id = 1 AND identity <> $2";

/// A new history, unconditionally.
const RESTART: &str =
    "UPDATE server_history SET history = $1, identity = $2, began_at_ms = $3 WHERE id = 1";

/// The current history.
const CURRENT: &str = "SELECT history FROM server_history WHERE id = 1";

/// The history a server answers in, and whether it began now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct History {
    /// Its number, on the wire.
    pub id: u64,
    /// It began when the server opened the database: the database was restored or copied since
    /// the last server ran on it.
    pub began_now: bool,
}

/// A history number: random, so two copies of one database never share one, and positive, so
/// it is stored as is in a signed column.
fn fresh() -> i64 {
    rand::rng().random_range(1..i64::MAX)
}

impl Database {
    /// The history this server answers in: the current one, or a new one when the database is
    /// not the one the current history began on (restored by `pg_restore`). Instances that open
    /// the same database at once agree on one.
    pub async fn history(&self, now_ms: i64) -> Result<History, sqlx::Error> {
        let identity = self.identity().await?;
        let began_now = with_pool!(self, pool => {
            let first = sqlx::query(BEGIN)
                .bind(fresh())
                .bind(&identity)
                .bind(now_ms)
                .execute(pool)
                .await?;
            let again = sqlx::query(BEGIN_AGAIN)
                .bind(fresh())
                .bind(&identity)
                .bind(now_ms)
                .execute(pool)
                .await?;
            first.rows_affected() == 0 && again.rows_affected() == 1
        });
        let id: i64 = with_pool!(self, pool => sqlx::query_scalar(CURRENT).fetch_one(pool).await?);
        Ok(History {
            id: u64::try_from(id).unwrap_or(0),
            began_now,
        })
    }

    /// Begins a new history unconditionally: for a copy of the database (a backup), and for an
    /// operator who restored one by other means (`tournee-server mark-restored`).
    pub async fn begin_history(&self, now_ms: i64) -> Result<u64, sqlx::Error> {
        let history = fresh();
        let identity = self.identity().await?;
        with_pool!(self, pool => {
            sqlx::query(RESTART)
                .bind(history)
                .bind(&identity)
                .bind(now_ms)
                .execute(pool)
                .await?;
        });
        Ok(u64::try_from(history).unwrap_or(0))
    }

    /// What the database is, as far as it can tell.
    async fn identity(&self) -> Result<String, sqlx::Error> {
        Ok(match self {
            Database::Postgres(pool) => sqlx::query_scalar(PG_IDENTITY).fetch_one(pool).await?,
            Database::Sqlite(_) => SQLITE_IDENTITY.to_string(),
        })
    }
}
