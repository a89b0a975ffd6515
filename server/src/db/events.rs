//! The event feed's table: events are inserted by the write that records their fact, and read
//! in feed order by a cursor that never skips a transaction that commits late.
//!
//! Order is `(txid, seq)`. On SQLite, writers are serialised: `seq` is commit order and `txid`
//! is 0. On PostgreSQL, `seq` comes from a sequence when the row is inserted, so a transaction
//! can commit after another that took a larger number; the reader then only returns events of
//! transactions below the oldest one still running that could write here (`oldest_running_here!`),
//! ordered by the writing transaction's id. Every transaction that can still commit has an id
//! at or above that bound, so a cursor that passed an event never passes one committed later.

use super::Database;

/// Inserts events; the tail skips an event recorded already (its id is derived from its fact).
pub(super) const INSERT_EVENTS: &str =
    "INSERT INTO events (id, type, subject_kind, subject_id, occurred_ms, recorded_ms, payload) ";
/// The tail of [`INSERT_EVENTS`].
pub(super) const INSERT_EVENTS_TAIL: &str = " ON CONFLICT (subject_id, id) DO NOTHING";

/// Events after a cursor, on SQLite (commit order is `seq`).
/// `txid` is always 0 there, so the cursor's `seq` is a range of the table's own key (`+txid`
/// keeps SQLite from choosing the two-column index for the row-value comparison, which it then
/// scanned from the start at every page).
const FEED_SQLITE: &str = "SELECT txid, seq, id, type, subject_kind, subject_id, occurred_ms, recorded_ms, payload FROM events WHERE +txid >= $1 AND seq > $2 ORDER BY seq LIMIT $3";
/// Events after a cursor, on PostgreSQL: only those of transactions older than every one still
/// running.
const FEED_POSTGRES: &str = concat!("SELECT txid, seq, id, type, subject_kind, subject_id, occurred_ms, recorded_ms, payload FROM events WHERE (txid, seq) > ($1, $2) AND txid < ", oldest_running_here!(), " ORDER BY txid, seq LIMIT $3");

/// A position in the feed: after the event with this transaction id and sequence number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct FeedCursor {
    /// The writing transaction's id (0 on SQLite).
    pub txid: i64,
    /// The event's number.
    pub seq: i64,
}

impl FeedCursor {
    /// As the API spells it: `<txid>.<seq>`.
    pub fn encode(self) -> String {
        format!("{}.{}", self.txid, self.seq)
    }

    /// Parses [`FeedCursor::encode`]'s form; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        let (txid, seq) = s.split_once('.')?;
        let number = |s: &str| {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<i64>().ok())
                .flatten()
        };
        Some(Self {
            txid: number(txid)?,
            seq: number(seq)?,
        })
    }
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredEvent {
    /// The writing transaction's id (0 on SQLite).
    pub txid: i64,
    /// The event's number.
    pub seq: i64,
    /// Its id.
    pub id: String,
    /// Its type.
    #[sqlx(rename = "type")]
    pub type_name: String,
    /// `item`, `delivery_point`, …
    pub subject_kind: String,
    /// The subject's id.
    pub subject_id: String,
    /// When it happened.
    pub occurred_ms: i64,
    /// When it was recorded.
    pub recorded_ms: i64,
    /// The payload, JSON text.
    pub payload: String,
}

impl StoredEvent {
    /// Where it is in the feed.
    pub fn cursor(&self) -> FeedCursor {
        FeedCursor {
            txid: self.txid,
            seq: self.seq,
        }
    }
}

impl Database {
    /// Up to `limit` events after `after`, in feed order.
    #[tracing::instrument(name = "sql.feed", level = "info", skip_all)]
    pub async fn feed(
        &self,
        after: FeedCursor,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, sqlx::Error> {
        let sql = match self {
            Database::Sqlite(_) => FEED_SQLITE,
            Database::Postgres(_) => FEED_POSTGRES,
        };
        with_pool!(self, pool => {
            sqlx::query_as(sql).bind(after.txid).bind(after.seq).bind(limit)
                .fetch_all(pool).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::FeedCursor;

    #[test]
    fn a_cursor_reads_back_as_written_and_nothing_else_parses() {
        let c = FeedCursor { txid: 812, seq: 9 };
        assert_eq!(FeedCursor::parse(&c.encode()), Some(c));
        for bad in [
            "",
            "1",
            "1.",
            ".1",
            "-1.2",
            "1.2.3",
            "a.b",
            "1.99999999999999999999",
        ] {
            assert_eq!(FeedCursor::parse(bad), None, "{bad}");
        }
    }
}
