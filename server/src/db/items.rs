//! An item's standing and records as the views and the sync path need them: which items have
//! left the postman's hands (delivered, or handed to a pickup point), the departures already
//! stamped, and an item's attempts, choices, UPU events and disputes.

use std::collections::HashSet;

use super::{AttemptRow, ChoiceRow, Database, EventRow, QueueEntryRow};

/// Items among `$1` (a JSON list) that are delivered (EMI) or at a pickup point (EDH).
const NO_LONGER_OUT: &str = "SELECT id FROM items WHERE status IN ('EMI', 'EDH') AND id {in_list}";

/// The departures (EDG) already stamped for items among `$1` (a JSON list), with their source.
const DEPARTURES: &str =
    "SELECT item_id, source FROM item_events WHERE code = 'EDG' AND item_id {in_list}";

/// The dispute entries of an item's attempts, oldest first.
const DISPUTES_OF_ITEM: &str = "SELECT q.* FROM review_queue q \
     JOIN attempts a ON a.id = q.subject_id \
     WHERE q.kind = 'dispute' AND a.item_id = $1 ORDER BY q.id";

/// An item's attempts, oldest first.
const ATTEMPTS_OF_ITEM: &str =
    "SELECT * FROM attempts WHERE item_id = $1 ORDER BY recorded_at_ms, id";

/// An item's choices, oldest first.
const CHOICES_OF_ITEM: &str = "SELECT * FROM choices WHERE item_id = $1 ORDER BY made_at_ms, id";

/// An item's UPU events, in time order.
const EVENTS_OF_ITEM: &str = "SELECT item_id, code, at_ms, reason, action, source \
     FROM item_events WHERE item_id = $1 ORDER BY at_ms, id";

/// One attempt.
const ATTEMPT: &str = "SELECT * FROM attempts WHERE id = $1";

/// The attempts of a JSON list of ids (`{in_list}`, `$1`), each with its item's delivery point
/// and that point's pin when both are known.
const ATTEMPTS_AT_POINTS: &str = "SELECT a.*, p.dp AS point_id, p.lat AS point_lat, \
     p.lon AS point_lon FROM attempts a \
     LEFT JOIN (SELECT i.id AS item, i.delivery_point_id AS dp, d.lat AS lat, d.lon AS lon \
     FROM items i JOIN delivery_points d ON d.id = i.delivery_point_id) p ON p.item = a.item_id \
     WHERE a.id {in_list}";

/// An attempt with where its item is delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptAtPoint {
    /// The attempt.
    pub attempt: AttemptRow,
    /// Its item's delivery point, if the item is known.
    pub delivery_point: Option<String>,
    /// That point's pin.
    pub pin: Option<(f64, f64)>,
}

/// [`AttemptAtPoint`] as [`ATTEMPTS_AT_POINTS`] reads it.
#[derive(Debug, sqlx::FromRow)]
struct AttemptAtPointRow {
    #[sqlx(flatten)]
    attempt: AttemptRow,
    point_id: Option<String>,
    point_lat: Option<f64>,
    point_lon: Option<f64>,
}

impl From<AttemptAtPointRow> for AttemptAtPoint {
    fn from(row: AttemptAtPointRow) -> Self {
        AttemptAtPoint {
            attempt: row.attempt,
            delivery_point: row.point_id,
            pin: row.point_lat.zip(row.point_lon),
        }
    }
}

impl Database {
    /// The items of `items` that no round takes out any more: delivered, or at a pickup point.
    #[tracing::instrument(name = "sql.items_no_longer_out", level = "info", skip_all)]
    pub async fn items_no_longer_out(
        &self,
        items: &[&str],
    ) -> Result<HashSet<String>, sqlx::Error> {
        let rows: Vec<(String,)> = self.fetch_in(NO_LONGER_OUT, items).await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// The `(item, source)` of every departure (EDG) already stamped for `items`.
    #[tracing::instrument(name = "sql.departures", level = "info", skip_all)]
    pub async fn departures(
        &self,
        items: &[&str],
    ) -> Result<HashSet<(String, String)>, sqlx::Error> {
        let rows: Vec<(String, String)> = self.fetch_in(DEPARTURES, items).await?;
        Ok(rows.into_iter().collect())
    }

    /// The disputes of an item's attempts with their decisions, oldest first.
    pub async fn disputes_for_item(&self, item: &str) -> Result<Vec<QueueEntryRow>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(DISPUTES_OF_ITEM).bind(item).fetch_all(pool).await
        })
    }

    /// Attempts recorded for an item, oldest first, as stored.
    pub async fn attempts_for_item(&self, item: &str) -> Result<Vec<AttemptRow>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(ATTEMPTS_OF_ITEM).bind(item).fetch_all(pool).await
        })
    }

    /// Choices recorded for an item, with whether they can be honoured.
    pub async fn choices_for_item(&self, item: &str) -> Result<Vec<ChoiceRow>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(CHOICES_OF_ITEM).bind(item).fetch_all(pool).await
        })
    }

    /// An item's UPU events, in time order.
    pub async fn item_events(&self, item: &str) -> Result<Vec<EventRow>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(EVENTS_OF_ITEM).bind(item).fetch_all(pool).await
        })
    }

    /// The attempt with this id.
    pub async fn attempt(&self, id: &str) -> Result<Option<AttemptRow>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(ATTEMPT).bind(id).fetch_optional(pool).await
        })
    }

    /// The attempts with these ids, each with its item's delivery point and pin, in one query
    /// (in no given order).
    pub async fn attempts_at_points(
        &self,
        ids: &[&str],
    ) -> Result<Vec<AttemptAtPoint>, sqlx::Error> {
        let rows: Vec<AttemptAtPointRow> = self.fetch_in(ATTEMPTS_AT_POINTS, ids).await?;
        Ok(rows.into_iter().map(AttemptAtPoint::from).collect())
    }
}
