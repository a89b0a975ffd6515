//! Rounds: the stops a device is given for a day, published by the back office or an import.

use tournee_sync_core::model::{RoundManifest, Stop};

use super::Database;

/// The rounds of a device (`$1`) between two days (`$2`, `$3`) with their stops, in one read:
/// in order of day, round and position, and a round without stops as one row without a stop.
const ROUNDS_OF_DEVICE: &str = "SELECT r.id AS id, r.day AS day, r.postman AS postman, \
     s.position AS position, s.delivery_point_id AS delivery_point_id, s.items AS items \
     FROM rounds r LEFT JOIN round_stops s ON s.round_id = r.id \
     WHERE (r.device = $1 OR r.id IN (SELECT round_id FROM round_devices WHERE device = $1)) \
     AND r.day >= $2 AND r.day <= $3 ORDER BY r.day, r.id, s.position";

/// Publishes a round.
const INSERT_ROUND: &str = "INSERT INTO rounds (id, day, postman, device) VALUES ($1, $2, $3, $4)";

/// Publishes a round's stop.
const INSERT_STOP: &str = "INSERT INTO round_stops (round_id, position, delivery_point_id, items) \
     VALUES ($1, $2, $3, $4)";

/// A round with one of its stops, as [`ROUNDS_OF_DEVICE`] reads them.
#[derive(Debug, sqlx::FromRow)]
struct RoundStopRow {
    id: String,
    day: String,
    postman: String,
    position: Option<i64>,
    delivery_point_id: Option<String>,
    /// The item ids, a JSON array.
    items: Option<String>,
}

impl RoundStopRow {
    /// The stop, if the round has one.
    fn stop(&self) -> Option<Stop> {
        Some(Stop {
            order: u32::try_from(self.position?).unwrap_or(u32::MAX),
            delivery_point: self.delivery_point_id.clone()?,
            items: serde_json::from_str(self.items.as_deref()?).unwrap_or_default(),
        })
    }
}

impl Database {
    /// The rounds assigned to a device between two days (`YYYY-MM-DD`, inclusive), with their
    /// stops, in one query.
    pub async fn rounds_for_device(
        &self,
        device: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<RoundManifest>, sqlx::Error> {
        let rows: Vec<RoundStopRow> = with_pool!(self, pool => {
            sqlx::query_as(ROUNDS_OF_DEVICE).bind(device).bind(from).bind(to).fetch_all(pool).await?
        });
        let mut manifests: Vec<RoundManifest> = Vec::new();
        for row in rows {
            let stop = row.stop();
            if manifests.last().is_none_or(|last| last.round_id != row.id) {
                manifests.push(RoundManifest {
                    round_id: row.id,
                    date: row.day,
                    postman: row.postman,
                    device: device.to_string(),
                    stops: Vec::new(),
                });
            }
            if let (Some(stop), Some(manifest)) = (stop, manifests.last_mut()) {
                manifest.stops.push(stop);
            }
        }
        Ok(manifests)
    }

    /// Publishes a round to a device.
    pub async fn insert_round(&self, round: &RoundManifest) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(INSERT_ROUND)
                .bind(&round.round_id).bind(&round.date).bind(&round.postman).bind(&round.device)
                .execute(&mut *tx).await?;
            for stop in &round.stops {
                sqlx::query(INSERT_STOP)
                    .bind(&round.round_id).bind(i64::from(stop.order)).bind(&stop.delivery_point)
                    .bind(serde_json::to_string(&stop.items).unwrap_or_default())
                    .execute(&mut *tx).await?;
            }
            tx.commit().await
        })
    }
}
