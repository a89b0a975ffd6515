//! An item's standing and records as the views and the sync path need them: which items have
//! left the postman's hands (delivered, or handed to a pickup point), the departures already
//! stamped, and an item's attempts, choices, UPU events and disputes.

use std::collections::HashSet;

use super::{json_ids, AttemptRow, ChoiceRow, Database, EventRow, QueueEntryRow};

/// Items among `$1` (a JSON list) that are delivered (EMI) or at a pickup point (EDH).
const NO_LONGER_OUT: &str = "SELECT id FROM items WHERE status IN ('EMI', 'EDH') AND id IN {list}";

/// The departures (EDG) already stamped for items among `$1` (a JSON list), with their source.
const DEPARTURES: &str =
    "SELECT item_id, source FROM item_events WHERE code = 'EDG' AND item_id IN {list}";

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

impl Database {
    /// The items of `items` that no round takes out any more: delivered, or at a pickup point.
    #[tracing::instrument(name = "sql.items_no_longer_out", level = "info", skip_all)]
    pub async fn items_no_longer_out(
        &self,
        items: &[&str],
    ) -> Result<HashSet<String>, sqlx::Error> {
        if items.is_empty() {
            return Ok(HashSet::new());
        }
        let ids = json_ids(items);
        let sql = NO_LONGER_OUT.replace("{list}", &self.json_list(1));
        let rows: Vec<String> = with_pool!(self, pool => {
            sqlx::query_scalar(&sql).bind(&ids).fetch_all(pool).await?
        });
        Ok(rows.into_iter().collect())
    }

    /// The `(item, source)` of every departure (EDG) already stamped for `items`.
    #[tracing::instrument(name = "sql.departures", level = "info", skip_all)]
    pub async fn departures(
        &self,
        items: &[&str],
    ) -> Result<HashSet<(String, String)>, sqlx::Error> {
        if items.is_empty() {
            return Ok(HashSet::new());
        }
        let ids = json_ids(items);
        let sql = DEPARTURES.replace("{list}", &self.json_list(1));
        let rows: Vec<(String, String)> = with_pool!(self, pool => {
            sqlx::query_as(&sql).bind(&ids).fetch_all(pool).await?
        });
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
}
