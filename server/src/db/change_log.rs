//! Pruning the change log (issue #15, growth): a change that its document's snapshot holds is
//! needed only by devices whose news cursor is still below it. Changes stored more than the
//! retention window ago (`--change-log-days`) and held by a snapshot are deleted, below a horizon
//! that only rises; a device whose cursor is below the horizon is answered as one whose cursor
//! the server never issued: it re-checks every document it holds (`sync::wire::SyncResponse::recheck`).
//! Times map to positions through marks taken at most once an hour.

use super::Database;

/// A mark of the settled position now, unless one was taken within the hour.
const MARK: &str = "INSERT INTO change_log_marks (at_ms, position) SELECT $1, $2 \
     WHERE NOT EXISTS (SELECT 1 FROM change_log_marks WHERE at_ms > $1 - 3600000)";

/// The highest position marked at or before `$1`.
const HORIZON_AT: &str = "SELECT MAX(position) FROM change_log_marks WHERE at_ms <= $1";

/// Raises the horizon; readers check it after they read, so it is raised before any deletion.
const RAISE: &str =
    "UPDATE server_history SET pruned_below = $1 WHERE id = 1 AND pruned_below < $1";

/// The horizon now.
const PRUNED_BELOW: &str = "SELECT pruned_below FROM server_history WHERE id = 1";

/// Up to `$2` changes at or below the horizon `$1` that their document's snapshot holds (a
/// cursor at the horizon needs none of them).
const PRUNE_BATCH: &str = "DELETE FROM changes WHERE seq IN (SELECT c.seq FROM changes c \
     JOIN documents d ON d.id = c.doc_id \
     WHERE c.{position} <= $1 AND c.{position} <= d.snapshot_seq LIMIT $2)";

/// Marks at or before the horizon's time: the horizon now says what they said.
const FORGET_MARKS: &str = "DELETE FROM change_log_marks WHERE at_ms < $1";

/// Changes deleted per statement.
const BATCH: i64 = 5_000;

impl Database {
    /// The horizon: news from a cursor below it may have lost changes (0: nothing pruned).
    pub async fn pruned_below(&self) -> Result<i64, sqlx::Error> {
        with_pool!(self, pool => sqlx::query_scalar(PRUNED_BELOW).fetch_one(pool).await)
    }

    /// Takes a mark of `position` (the settled bound now) at `now_ms`, unless one was taken
    /// within the hour.
    pub async fn mark_change_log(&self, now_ms: i64, position: i64) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query(MARK).bind(now_ms).bind(position).execute(pool).await?;
        });
        Ok(())
    }

    /// Prunes the changes their snapshots hold that were settled by `before_ms`; returns how
    /// many were deleted. The horizon is raised first, in a statement of its own.
    pub async fn prune_change_log(&self, before_ms: i64) -> Result<u64, sqlx::Error> {
        let horizon: Option<i64> = with_pool!(self, pool => {
            sqlx::query_scalar(HORIZON_AT).bind(before_ms).fetch_one(pool).await?
        });
        let Some(horizon) = horizon.filter(|h| *h > 0) else {
            return Ok(0);
        };
        with_pool!(self, pool => {
            sqlx::query(RAISE).bind(horizon).execute(pool).await?;
        });
        let sql = self.positioned(PRUNE_BATCH);
        let mut deleted = 0;
        loop {
            let done = with_pool!(self, pool => {
                sqlx::query(&sql).bind(horizon).bind(BATCH).execute(pool).await?.rows_affected()
            });
            deleted += done;
            if done < BATCH as u64 {
                break;
            }
        }
        with_pool!(self, pool => {
            sqlx::query(FORGET_MARKS).bind(before_ms).execute(pool).await?;
        });
        Ok(deleted)
    }
}
