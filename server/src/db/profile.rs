//! The central profile as the sync path and the APIs read and extend it: customers, their
//! delivery points and items, the points' pins, and what projection must know of an item.
//! (Preferences are written by [`Database::commit_sync`].)

use std::collections::{HashMap, HashSet};

use tournee_sync_core::DocId;

use super::{Database, UpuCode};

/// A customer's delivery points, each with the items addressed there.
const CUSTOMER_DOCUMENTS: &str = "SELECT dp.id AS dp, i.id AS item FROM delivery_points dp \
     LEFT JOIN items i ON i.delivery_point_id = dp.id WHERE dp.customer_id = $1";

/// Adds a customer, unless it exists.
const INSERT_CUSTOMER: &str =
    "INSERT INTO customers (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING";

/// Adds a delivery point, unless it exists.
const INSERT_DELIVERY_POINT: &str = "INSERT INTO delivery_points \
     (id, customer_id, lines, lat, lon, version) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (id) DO NOTHING";

/// Adds an item as arrived (EMG), unless it exists.
const INSERT_ITEM: &str = "INSERT INTO items \
     (id, delivery_point_id, customer_id, status, needs_in_person, updated_at_ms) \
     VALUES ($1, $2, $3, 'EMG', $4, $5) ON CONFLICT (id) DO NOTHING";

/// The pins of the delivery points of the items of a JSON list (`{in_list}`, `$1`).
const ITEM_PINS: &str = "SELECT i.id AS id, d.lat AS lat, d.lon AS lon FROM items i \
     JOIN delivery_points d ON d.id = i.delivery_point_id WHERE i.id {in_list}";

/// An item's delivery point, its pin and the item's status.
const ITEM_INFO: &str = "SELECT i.delivery_point_id AS dp, i.status AS status, \
     d.lat AS lat, d.lon AS lon FROM items i \
     JOIN delivery_points d ON d.id = i.delivery_point_id WHERE i.id = $1";

/// The customer of an item's delivery point.
const OWNER_OF_ITEM: &str = "SELECT d.customer_id AS customer FROM items i \
     JOIN delivery_points d ON d.id = i.delivery_point_id WHERE i.id = $1";

/// What the server knows of an item when it projects an attempt or a choice.
#[derive(Debug, Clone)]
pub struct ItemInfo {
    /// The delivery point.
    pub delivery_point: String,
    /// Its pin.
    pub pin: Option<(f64, f64)>,
    /// The item's current status.
    pub status: UpuCode,
}

/// [`ItemInfo`] as stored.
#[derive(Debug, sqlx::FromRow)]
struct ItemInfoRow {
    dp: String,
    status: UpuCode,
    lat: Option<f64>,
    lon: Option<f64>,
}

impl From<ItemInfoRow> for ItemInfo {
    fn from(row: ItemInfoRow) -> Self {
        ItemInfo {
            delivery_point: row.dp,
            pin: row.lat.zip(row.lon),
            status: row.status,
        }
    }
}

impl Database {
    /// The documents of a customer: their delivery points and the items addressed there.
    pub async fn customer_documents(&self, customer: &str) -> Result<Vec<DocId>, sqlx::Error> {
        let ids: Vec<(String, Option<String>)> = with_pool!(self, pool => {
            sqlx::query_as(CUSTOMER_DOCUMENTS).bind(customer).fetch_all(pool).await?
        });
        let mut docs = HashSet::new();
        for (dp, item) in ids {
            if let Ok(id) = DocId::delivery_point(&dp) {
                docs.insert(id);
            }
            if let Some(Ok(s10)) = item.map(|i| tournee_sync_core::S10::parse(&i)) {
                docs.insert(DocId::item(&s10));
            }
        }
        Ok(docs.into_iter().collect())
    }

    /// Adds a customer.
    pub async fn insert_customer(&self, id: &str, name: &str) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query(INSERT_CUSTOMER).bind(id).bind(name).execute(pool).await?;
            Ok(())
        })
    }

    /// Adds a delivery point to the central profile.
    pub async fn insert_delivery_point(
        &self,
        id: &str,
        customer: Option<&str>,
        lines: &[String],
        pin: Option<(f64, f64)>,
        version: i64,
    ) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query(INSERT_DELIVERY_POINT)
                .bind(id).bind(customer).bind(lines.join("\n")).bind(pin.map(|p| p.0)).bind(pin.map(|p| p.1)).bind(version)
                .execute(pool).await?;
            Ok(())
        })
    }

    /// Adds an item to the central profile.
    pub async fn insert_item(
        &self,
        id: &str,
        delivery_point: &str,
        customer: Option<&str>,
        needs_in_person: bool,
        at_ms: i64,
    ) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query(INSERT_ITEM)
                .bind(id).bind(delivery_point).bind(customer).bind(needs_in_person).bind(at_ms)
                .execute(pool).await?;
            Ok(())
        })
    }

    /// The pins of the delivery points of `items`, in one query: what projecting a sync's
    /// attempts needs. An item without a pinned point is absent from the map.
    #[tracing::instrument(name = "sql.item_pins", level = "info", skip_all)]
    pub async fn item_pins(
        &self,
        items: &[&str],
    ) -> Result<HashMap<String, (f64, f64)>, sqlx::Error> {
        let rows: Vec<(String, Option<f64>, Option<f64>)> = self.fetch_in(ITEM_PINS, items).await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, lat, lon)| Some((id, lat.zip(lon)?)))
            .collect())
    }

    /// What projection needs to know of an item.
    pub async fn item_info(&self, item: &str) -> Result<Option<ItemInfo>, sqlx::Error> {
        let row: Option<ItemInfoRow> = with_pool!(self, pool => {
            sqlx::query_as(ITEM_INFO).bind(item).fetch_optional(pool).await?
        });
        Ok(row.map(ItemInfo::from))
    }

    /// The customer an item or delivery point belongs to.
    pub async fn owner_of_item(&self, item: &str) -> Result<Option<String>, sqlx::Error> {
        let customer: Option<Option<String>> = with_pool!(self, pool => {
            sqlx::query_scalar(OWNER_OF_ITEM).bind(item).fetch_optional(pool).await?
        });
        Ok(customer.flatten())
    }
}
