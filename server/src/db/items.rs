//! An item's standing as the views and the sync path need it: which items have left the
//! postman's hands (delivered, or handed to a pickup point), and the disputes of its attempts.

use std::collections::HashSet;

use sqlx::Row;

use super::{queue_entry, Database, QueueEntryRow};

/// Items among `$1` (a JSON list) that are delivered (EMI) or at a pickup point (EDH).
const NO_LONGER_OUT: &str = "SELECT id FROM items WHERE status IN ('EMI', 'EDH') AND id IN {list}";

/// The departures (EDG) already stamped for items among `$1` (a JSON list), with their source.
const DEPARTURES: &str =
    "SELECT item_id, source FROM item_events WHERE code = 'EDG' AND item_id IN {list}";

/// The dispute entries of an item's attempts, oldest first.
const DISPUTES_OF_ITEM: &str = "SELECT q.* FROM review_queue q JOIN attempts a ON a.id = q.subject_id WHERE q.kind = 'dispute' AND a.item_id = $1 ORDER BY q.id";

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
        let ids = serde_json::to_string(items).unwrap_or_else(|_| "[]".into());
        let sql = NO_LONGER_OUT.replace("{list}", &self.json_list(1));
        with_pool!(self, pool => {
            sqlx::query(&sql).bind(&ids).fetch_all(pool).await?
                .into_iter()
                .map(|r| r.try_get("id"))
                .collect()
        })
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
        let ids = serde_json::to_string(items).unwrap_or_else(|_| "[]".into());
        let sql = DEPARTURES.replace("{list}", &self.json_list(1));
        with_pool!(self, pool => {
            sqlx::query(&sql).bind(&ids).fetch_all(pool).await?
                .into_iter()
                .map(|r| Ok((r.try_get("item_id")?, r.try_get("source")?)))
                .collect()
        })
    }

    /// The disputes of an item's attempts with their decisions, oldest first.
    pub async fn disputes_for_item(&self, item: &str) -> Result<Vec<QueueEntryRow>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query(DISPUTES_OF_ITEM).bind(item).fetch_all(pool).await?
                .iter().map(queue_entry).collect()
        })
    }
}
