//! The database's own state, for probes, metrics and checks: the backend, the pool, whether it
//! answers and can take a write, and row counts.

use super::Database;

/// Whether the database answers.
const PING: &str = "SELECT 1";

/// The readiness probe's write, rolled back.
const PROBE_WRITE: &str = "INSERT INTO readiness_probe (id, payload) VALUES (1, $1)";
/// Larger than a page, so that a database that cannot grow refuses it.
const PROBE_BYTES: usize = 16 * 1024;

/// A table's rows (`{table}`, one of [`Table`]).
const COUNT: &str = "SELECT COUNT(*) AS n FROM {table}";

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

impl Database {
    /// The pool's connections now.
    pub fn pool_state(&self) -> PoolState {
        with_pool!(self, pool => PoolState {
            open: pool.size(),
            idle: pool.num_idle(),
            max: pool.options().get_max_connections(),
        })
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
        with_pool!(self, pool => sqlx::query(PING).execute(pool).await.map(|_| ()))
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

    /// How many rows a table has (tests and the load generator's checks).
    pub async fn count(&self, table: Table) -> Result<i64, sqlx::Error> {
        let sql = COUNT.replace("{table}", table.name());
        with_pool!(self, pool => sqlx::query_scalar(&sql).fetch_one(pool).await)
    }
}
