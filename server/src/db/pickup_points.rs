//! Pickup points and post offices as the public screens read them: one by id (where an item
//! waits), those of a postcode, those around a position. Imports write them (`db/loads.rs`);
//! the demo town adds a few of its own.

use super::Database;

/// A pickup point or post office as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PickupPointRow {
    /// Its id in the network.
    pub id: String,
    /// `pickup_point` or `post_office`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Address lines, a JSON array.
    pub lines: String,
    /// Postcode.
    pub postcode: String,
    /// Town.
    pub city: String,
    /// Latitude.
    pub lat: Option<f64>,
    /// Longitude.
    pub lon: Option<f64>,
    /// Opening hours, JSON: `[{day, opens, closes}]`.
    pub opening_hours: String,
}

/// One place by id.
const ONE: &str = "SELECT id, kind, name, lines, postcode, city, lat, lon, opening_hours FROM pickup_points WHERE id = $1";
/// The places of a postcode, by name, bounded.
const IN_POSTCODE: &str = "SELECT id, kind, name, lines, postcode, city, lat, lon, opening_hours FROM pickup_points WHERE postcode = $1 ORDER BY name, id LIMIT $2";
/// The places inside a box of latitudes and longitudes, bounded (the caller sorts by distance).
const IN_BOX: &str = "SELECT id, kind, name, lines, postcode, city, lat, lon, opening_hours FROM pickup_points WHERE lat BETWEEN $1 AND $2 AND lon BETWEEN $3 AND $4 LIMIT $5";
/// Adds or replaces a place (the demo town's).
const UPSERT: &str = "INSERT INTO pickup_points (id, kind, name, lines, postcode, city, lat, lon, opening_hours) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name, lines = excluded.lines, postcode = excluded.postcode, city = excluded.city, lat = excluded.lat, lon = excluded.lon, opening_hours = excluded.opening_hours";

impl Database {
    /// The pickup point or post office `id`.
    pub async fn pickup_point(&self, id: &str) -> Result<Option<PickupPointRow>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(ONE).bind(id).fetch_optional(pool).await
        })
    }

    /// Up to `limit` places of a postcode, by name.
    pub async fn pickup_points_in_postcode(
        &self,
        postcode: &str,
        limit: i64,
    ) -> Result<Vec<PickupPointRow>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(IN_POSTCODE).bind(postcode).bind(limit).fetch_all(pool).await
        })
    }

    /// Up to `limit` places with a pin inside `lat` and `lon` ranges, in no order.
    pub async fn pickup_points_in_box(
        &self,
        lat: (f64, f64),
        lon: (f64, f64),
        limit: i64,
    ) -> Result<Vec<PickupPointRow>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(IN_BOX).bind(lat.0).bind(lat.1).bind(lon.0).bind(lon.1).bind(limit)
                .fetch_all(pool).await
        })
    }

    /// Adds or replaces a place (the demo town's; imports go through `db/loads.rs`).
    pub async fn upsert_pickup_point(&self, row: &PickupPointRow) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query(UPSERT)
                .bind(&row.id).bind(&row.kind).bind(&row.name).bind(&row.lines)
                .bind(&row.postcode).bind(&row.city).bind(row.lat).bind(row.lon)
                .bind(&row.opening_hours)
                .execute(pool).await?;
            Ok(())
        })
    }
}
