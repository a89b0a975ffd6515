//! Rounds: the stops a device is given for a day, published by the back office or an import.

use tournee_sync_core::model::{RoundManifest, Stop};

use super::Database;

/// The rounds of a device (`$1`) between two days (`$2`, `$3`), in order.
const ROUNDS_OF_DEVICE: &str = "SELECT id, day, postman FROM rounds \
     WHERE (device = $1 OR id IN (SELECT round_id FROM round_devices WHERE device = $1)) \
     AND day >= $2 AND day <= $3 ORDER BY day, id";

/// A round's stops, in order.
const STOPS_OF_ROUND: &str = "SELECT position, delivery_point_id, items FROM round_stops \
     WHERE round_id = $1 ORDER BY position";

/// Publishes a round.
const INSERT_ROUND: &str = "INSERT INTO rounds (id, day, postman, device) VALUES ($1, $2, $3, $4)";

/// Publishes a round's stop.
const INSERT_STOP: &str = "INSERT INTO round_stops (round_id, position, delivery_point_id, items) \
     VALUES ($1, $2, $3, $4)";

/// A round as stored.
#[derive(Debug, sqlx::FromRow)]
struct RoundRow {
    id: String,
    day: String,
    postman: String,
}

/// A stop as stored.
#[derive(Debug, sqlx::FromRow)]
struct StopRow {
    position: i64,
    delivery_point_id: String,
    /// The item ids, a JSON array.
    items: String,
}

impl From<StopRow> for Stop {
    fn from(stop: StopRow) -> Self {
        Stop {
            order: u32::try_from(stop.position).unwrap_or(u32::MAX),
            delivery_point: stop.delivery_point_id,
            items: serde_json::from_str(&stop.items).unwrap_or_default(),
        }
    }
}

impl Database {
    /// The rounds assigned to a device between two days (`YYYY-MM-DD`, inclusive).
    pub async fn rounds_for_device(
        &self,
        device: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<RoundManifest>, sqlx::Error> {
        let rounds: Vec<RoundRow> = with_pool!(self, pool => {
            sqlx::query_as(ROUNDS_OF_DEVICE).bind(device).bind(from).bind(to).fetch_all(pool).await?
        });
        let mut manifests = Vec::new();
        for round in rounds {
            let stops: Vec<StopRow> = with_pool!(self, pool => {
                sqlx::query_as(STOPS_OF_ROUND).bind(&round.id).fetch_all(pool).await?
            });
            manifests.push(RoundManifest {
                round_id: round.id,
                date: round.day,
                postman: round.postman,
                device: device.to_string(),
                stops: stops.into_iter().map(Stop::from).collect(),
            });
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
