//! The webhook tables: partners' subscriptions, each with its cursor in the event feed, and one
//! delivery per event and subscription, enqueued in the transaction that moves the cursor and
//! claimed for sending with a lease, so a crash neither loses nor duplicates an enqueue and a
//! delivery cut short is sent again once its lease runs out.

use super::events::StoredEvent;
use super::{Database, FeedCursor, ROWS_PER_INSERT};

/// Stores a new subscription, enabled.
const INSERT_SUBSCRIPTION: &str = "INSERT INTO webhook_subscriptions (id, url, event_types, secret, enabled, disabled_reason, cursor_txid, cursor_seq, created_ms) VALUES ($1, $2, $3, $4, TRUE, NULL, $5, $6, $7)";
/// Every subscription, oldest first.
const SUBSCRIPTIONS: &str = "SELECT id, url, event_types, secret, enabled, disabled_reason, cursor_txid, cursor_seq, created_ms FROM webhook_subscriptions ORDER BY created_ms, id";
/// One subscription.
const SUBSCRIPTION: &str = "SELECT id, url, event_types, secret, enabled, disabled_reason, cursor_txid, cursor_seq, created_ms FROM webhook_subscriptions WHERE id = $1";
/// Removes a subscription; its deliveries go with it (`ON DELETE CASCADE`).
const DELETE_SUBSCRIPTION: &str = "DELETE FROM webhook_subscriptions WHERE id = $1";
/// Enables a subscription again.
const ENABLE_SUBSCRIPTION: &str =
    "UPDATE webhook_subscriptions SET enabled = TRUE, disabled_reason = NULL WHERE id = $1";
/// Gives the deliveries that failed when the subscription was disabled a new window.
const RETRY_FAILED: &str = "UPDATE webhook_deliveries SET status = 'pending', next_attempt_ms = $2, first_failure_ms = NULL WHERE subscription_id = $1 AND status = 'failed'";
/// A subscription's deliveries, counted by status.
const COUNT_DELIVERIES: &str = "SELECT status, COUNT(*) AS n FROM webhook_deliveries WHERE subscription_id = $1 GROUP BY status";
/// Deliveries waiting, over every subscription.
const COUNT_PENDING: &str = "SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'";
/// The last event of the feed, on SQLite.
const FEED_END_SQLITE: &str = "SELECT txid, seq FROM events ORDER BY txid DESC, seq DESC LIMIT 1";
/// The last event of the feed a reader may pass, on PostgreSQL (see `events.rs`).
const FEED_END_POSTGRES: &str = concat!(
    "SELECT txid, seq FROM events WHERE txid < ",
    oldest_running_here!(),
    " ORDER BY txid DESC, seq DESC LIMIT 1"
);
/// Moves a subscription's cursor, only from where the caller read it and while it is enabled.
const ADVANCE_CURSOR: &str = "UPDATE webhook_subscriptions SET cursor_txid = $2, cursor_seq = $3 WHERE id = $1 AND enabled AND cursor_txid = $4 AND cursor_seq = $5";
/// Enqueues deliveries; an event enqueued already for the subscription is skipped.
const INSERT_DELIVERIES: &str = "INSERT INTO webhook_deliveries (subscription_id, event_txid, event_seq, event_id, subject, status, attempts, next_attempt_ms) ";
/// The tail of [`INSERT_DELIVERIES`].
const INSERT_DELIVERIES_TAIL: &str = " ON CONFLICT (subscription_id, event_id) DO NOTHING";
/// Claims due deliveries of enabled subscriptions for a lease, with `$lock` in the choosing
/// query. Per subscription and subject, only the oldest delivery not yet delivered is due: a
/// subject's events arrive in feed order.
macro_rules! claim {
    ($lock:literal) => {
        concat!(
            "UPDATE webhook_deliveries SET next_attempt_ms = $2 WHERE id IN (",
            "SELECT d.id FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id ",
            "WHERE d.status = 'pending' AND s.enabled AND d.next_attempt_ms <= $1 ",
            "AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.subscription_id = d.subscription_id ",
            "AND e.subject = d.subject AND e.status <> 'delivered' AND e.id < d.id) ",
            "ORDER BY d.id LIMIT $3", $lock,
            ") RETURNING id, subscription_id, event_seq, event_id, subject, attempts, first_failure_ms"
        )
    };
}
/// On SQLite writers are serialised, so one statement claims atomically.
const CLAIM_SQLITE: &str = claim!("");
/// On PostgreSQL instances claim concurrently: rows another instance is claiming are skipped,
/// not waited for.
const CLAIM_POSTGRES: &str = claim!(" FOR UPDATE OF d SKIP LOCKED");
/// A delivery the receiver acknowledged.
const MARK_DELIVERED: &str = "UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, delivered_ms = $2, last_error = NULL WHERE id = $1";
/// A delivery that failed, to try again at `next_attempt_ms`.
const MARK_RETRY: &str = "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_ms = $2, first_failure_ms = COALESCE(first_failure_ms, $3), last_error = $4 WHERE id = $1";
/// A delivery that failed for the whole retry window.
const MARK_FAILED: &str = "UPDATE webhook_deliveries SET status = 'failed', attempts = attempts + 1, first_failure_ms = COALESCE(first_failure_ms, $2), last_error = $3 WHERE id = $1";
/// Disables a subscription, saying why.
const DISABLE_SUBSCRIPTION: &str =
    "UPDATE webhook_subscriptions SET enabled = FALSE, disabled_reason = $2 WHERE id = $1";
/// One event by its id.
const EVENT: &str = "SELECT txid, seq, id, type, subject_kind, subject_id, occurred_ms, recorded_ms, payload FROM events WHERE seq = $1";

/// A subscription as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SubscriptionRow {
    /// Its id.
    pub id: String,
    /// Where deliveries are POSTed.
    pub url: String,
    /// The event types it takes, a JSON array; empty for every type.
    pub event_types: String,
    /// The signing secret, `whsec_<base64>`.
    pub secret: String,
    /// Whether deliveries are enqueued and sent.
    pub enabled: bool,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// How far it has taken events from the feed: the writing transaction.
    pub cursor_txid: i64,
    /// How far it has taken events from the feed: the event's number.
    pub cursor_seq: i64,
    /// When it was created, Unix milliseconds.
    pub created_ms: i64,
}

impl SubscriptionRow {
    /// How far it has taken events from the feed.
    pub fn cursor(&self) -> FeedCursor {
        FeedCursor {
            txid: self.cursor_txid,
            seq: self.cursor_seq,
        }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// To be sent, or sent again.
    Pending,
    /// The receiver acknowledged it (2xx).
    Delivered,
    /// It failed for the whole retry window; its subscription was disabled.
    Failed,
}

impl DeliveryStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }
}

impl TryFrom<String> for DeliveryStatus {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        match s.as_str() {
            "pending" => Ok(DeliveryStatus::Pending),
            "delivered" => Ok(DeliveryStatus::Delivered),
            "failed" => Ok(DeliveryStatus::Failed),
            _ => Err(format!("unknown delivery status {s:?}")),
        }
    }
}

/// A subscription's deliveries by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    /// Waiting to be sent or sent again.
    pub pending: i64,
    /// Acknowledged.
    pub delivered: i64,
    /// Given up.
    pub failed: i64,
}

/// A status and its count.
#[derive(sqlx::FromRow)]
struct StatusCount {
    #[sqlx(try_from = "String")]
    status: DeliveryStatus,
    n: i64,
}

/// A delivery claimed for sending.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ClaimedDelivery {
    /// Its id.
    pub id: i64,
    /// Its subscription.
    pub subscription_id: String,
    /// The event to send: its number in the feed…
    pub event_seq: i64,
    /// …and its id.
    pub event_id: String,
    /// The event's subject, `kind:id`.
    pub subject: String,
    /// Attempts made before this one.
    pub attempts: i64,
    /// When it first failed, if it did.
    pub first_failure_ms: Option<i64>,
}

/// A delivery to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    /// Where the event is in the feed.
    pub cursor: FeedCursor,
    /// The event.
    pub event_id: String,
    /// Its subject, `kind:id`.
    pub subject: String,
}

/// A new subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSubscription<'a> {
    /// Its id.
    pub id: &'a str,
    /// Where deliveries go.
    pub url: &'a str,
    /// The event types it takes, a JSON array.
    pub event_types: &'a str,
    /// The signing secret.
    pub secret: &'a str,
    /// Where in the feed it starts.
    pub cursor: FeedCursor,
    /// Now, Unix milliseconds.
    pub created_ms: i64,
}

impl Database {
    /// Stores a new subscription, enabled.
    pub async fn insert_webhook(&self, new: &NewSubscription<'_>) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query(INSERT_SUBSCRIPTION)
                .bind(new.id).bind(new.url).bind(new.event_types).bind(new.secret)
                .bind(new.cursor.txid).bind(new.cursor.seq).bind(new.created_ms)
                .execute(pool).await.map(|_| ())
        })
    }

    /// Every subscription, oldest first.
    pub async fn webhooks(&self) -> Result<Vec<SubscriptionRow>, sqlx::Error> {
        with_pool!(self, pool => sqlx::query_as(SUBSCRIPTIONS).fetch_all(pool).await)
    }

    /// One subscription.
    pub async fn webhook(&self, id: &str) -> Result<Option<SubscriptionRow>, sqlx::Error> {
        with_pool!(self, pool => sqlx::query_as(SUBSCRIPTION).bind(id).fetch_optional(pool).await)
    }

    /// Removes a subscription and its deliveries; whether there was one.
    pub async fn delete_webhook(&self, id: &str) -> Result<bool, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query(DELETE_SUBSCRIPTION).bind(id).execute(pool).await
                .map(|done| done.rows_affected() > 0)
        })
    }

    /// Enables a subscription again, and gives its failed deliveries a new retry window from
    /// `now`; whether there was one.
    pub async fn enable_webhook(&self, id: &str, now: i64) -> Result<bool, sqlx::Error> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let found = sqlx::query(ENABLE_SUBSCRIPTION).bind(id).execute(&mut *tx).await?
                .rows_affected() > 0;
            sqlx::query(RETRY_FAILED).bind(id).bind(now).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(found)
        })
    }

    /// A subscription's deliveries, counted by status.
    pub async fn webhook_delivery_counts(&self, id: &str) -> Result<DeliveryCounts, sqlx::Error> {
        let rows: Vec<StatusCount> = with_pool!(self, pool => {
            sqlx::query_as(COUNT_DELIVERIES).bind(id).fetch_all(pool).await
        })?;
        let mut counts = DeliveryCounts::default();
        for row in rows {
            match row.status {
                DeliveryStatus::Pending => counts.pending = row.n,
                DeliveryStatus::Delivered => counts.delivered = row.n,
                DeliveryStatus::Failed => counts.failed = row.n,
            }
        }
        Ok(counts)
    }

    /// Deliveries waiting over every subscription.
    pub async fn webhook_pending(&self) -> Result<i64, sqlx::Error> {
        with_pool!(self, pool => sqlx::query_scalar(COUNT_PENDING).fetch_one(pool).await)
    }

    /// The feed's end as a reader may pass it now: a subscription starting here gets every
    /// event recorded later. On PostgreSQL that is the last event below the oldest transaction
    /// still running (in the whole cluster), so events committed just before may follow it
    /// too; one committed later is never behind it.
    pub async fn feed_end(&self) -> Result<FeedCursor, sqlx::Error> {
        let sql = match self {
            Database::Sqlite(_) => FEED_END_SQLITE,
            Database::Postgres(_) => FEED_END_POSTGRES,
        };
        let end: Option<(i64, i64)> =
            with_pool!(self, pool => sqlx::query_as(sql).fetch_optional(pool).await)?;
        Ok(end.map_or(FeedCursor::default(), |(txid, seq)| FeedCursor {
            txid,
            seq,
        }))
    }

    /// Enqueues `deliveries` and moves the subscription's cursor from `from` to `to`, in one
    /// transaction. Nothing is written, and `false` returned, when the cursor is no longer at
    /// `from` (another instance moved it) or the subscription was disabled meanwhile.
    pub async fn enqueue_webhook_deliveries(
        &self,
        subscription: &str,
        from: FeedCursor,
        to: FeedCursor,
        deliveries: &[NewDelivery],
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let moved = sqlx::query(ADVANCE_CURSOR)
                .bind(subscription).bind(to.txid).bind(to.seq).bind(from.txid).bind(from.seq)
                .execute(&mut *tx).await?.rows_affected() > 0;
            if !moved {
                tx.rollback().await?;
                return Ok(false);
            }
            insert_rows!(tx, INSERT_DELIVERIES, deliveries, |row, d| {
                row.push_bind(subscription).push_bind(d.cursor.txid).push_bind(d.cursor.seq)
                    .push_bind(&d.event_id).push_bind(&d.subject)
                    .push_bind(DeliveryStatus::Pending.as_str()).push_bind(0_i64).push_bind(now);
            }, INSERT_DELIVERIES_TAIL);
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Claims up to `limit` deliveries due at `now` until `lease_until`: no instance claims
    /// them again before then, unless this one records their outcome.
    pub async fn claim_webhook_deliveries(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedDelivery>, sqlx::Error> {
        let sql = match self {
            Database::Sqlite(_) => CLAIM_SQLITE,
            Database::Postgres(_) => CLAIM_POSTGRES,
        };
        with_pool!(self, pool => {
            sqlx::query_as(sql).bind(now).bind(lease_until).bind(limit).fetch_all(pool).await
        })
    }

    /// Records that a delivery was acknowledged.
    pub async fn webhook_delivered(&self, id: i64, now: i64) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query(MARK_DELIVERED).bind(id).bind(now).execute(pool).await.map(|_| ())
        })
    }

    /// Records a failed attempt, to try again at `next_ms`.
    pub async fn webhook_retry(
        &self,
        id: i64,
        next_ms: i64,
        now: i64,
        error: &str,
    ) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query(MARK_RETRY).bind(id).bind(next_ms).bind(now).bind(error)
                .execute(pool).await.map(|_| ())
        })
    }

    /// Gives a delivery up and disables its subscription with `reason`, in one transaction.
    pub async fn webhook_failed(
        &self,
        delivery: &ClaimedDelivery,
        now: i64,
        error: &str,
        reason: &str,
    ) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(MARK_FAILED).bind(delivery.id).bind(now).bind(error)
                .execute(&mut *tx).await?;
            sqlx::query(DISABLE_SUBSCRIPTION).bind(&delivery.subscription_id).bind(reason)
                .execute(&mut *tx).await?;
            tx.commit().await
        })
    }

    /// One event of the feed by its id.
    pub async fn event(&self, seq: i64) -> Result<Option<StoredEvent>, sqlx::Error> {
        with_pool!(self, pool => sqlx::query_as(EVENT).bind(seq).fetch_optional(pool).await)
    }
}
