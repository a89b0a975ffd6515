//! Reference data an import loads into the central tables (customers, delivery points, items,
//! pickup points, rounds, devices), each an upsert by its natural key, applied by
//! [`apply_loads!`] inside the transaction of the write that carries it.

use tournee_sync_core::model::RoundManifest;

use super::Database;

/// One row of reference data to upsert.
#[derive(Debug, Clone, PartialEq)]
pub enum Load {
    /// A customer and the delivery points that are theirs (the others they had are released).
    Customer {
        /// Natural key.
        id: String,
        /// Display name.
        name: String,
        /// Contact channels with consent, JSON.
        contacts: String,
        /// Their delivery points.
        delivery_points: Vec<String>,
    },
    /// A delivery point's address (its customer is set by the customer import).
    DeliveryPoint {
        /// Natural key.
        id: String,
        /// NF Z10-011 lines.
        lines: Vec<String>,
        /// Postcode.
        postcode: String,
        /// Town.
        city: String,
        /// Pin, `(lat, lon)`.
        pin: Option<(f64, f64)>,
        /// The reference version published.
        version: i64,
    },
    /// An item's data; created with status EMG at its arrival.
    Item {
        /// The S10 number.
        id: String,
        /// Where it goes.
        delivery_point: String,
        /// Requirements, JSON.
        requirements: String,
        /// Whether only the addressee (or a checking counter) may take it.
        needs_in_person: bool,
        /// The sender.
        sender: Option<String>,
        /// Arrival at the delivery office.
        arrived_ms: i64,
    },
    /// A pickup point or post office.
    PickupPoint {
        /// Natural key.
        id: String,
        /// `pickup_point` or `post_office`.
        kind: String,
        /// Its name.
        name: String,
        /// Address lines, JSON.
        lines: String,
        /// Postcode.
        postcode: String,
        /// Town.
        city: String,
        /// Pin.
        pin: Option<(f64, f64)>,
        /// Opening hours, JSON.
        opening_hours: String,
    },
    /// A round, its stops replaced by these, published to its devices.
    Round {
        /// The round; `device` is the first device.
        manifest: RoundManifest,
        /// The delivery office.
        office: String,
        /// Further devices.
        more_devices: Vec<String>,
    },
    /// A device registered to a postman, revoked from `revoked_ms` if given (a revoked device
    /// stays revoked).
    Device {
        /// Natural key.
        id: String,
        /// The postman.
        postman: String,
        /// When it was revoked.
        revoked_ms: Option<i64>,
    },
    /// The import line as applied, canonical JSON, so the same line again is unchanged.
    Record {
        /// The import kind.
        kind: &'static str,
        /// The natural key.
        key: String,
        /// Canonical JSON.
        record: String,
        /// When.
        at_ms: i64,
    },
}

/// Upserts a customer.
pub(super) const UPSERT_CUSTOMER: &str = "INSERT INTO customers (id, name, contacts) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET name = excluded.name, contacts = excluded.contacts";
/// Releases a customer's delivery points before the listed ones are set.
pub(super) const RELEASE_POINTS: &str =
    "UPDATE delivery_points SET customer_id = NULL WHERE customer_id = $1";
/// Releases a customer's items likewise.
pub(super) const RELEASE_ITEMS: &str = "UPDATE items SET customer_id = NULL WHERE customer_id = $1";
/// Gives a delivery point to a customer.
pub(super) const CLAIM_POINT: &str = "UPDATE delivery_points SET customer_id = $1 WHERE id = $2";
/// Gives the items addressed to a delivery point to its customer.
pub(super) const CLAIM_ITEMS: &str =
    "UPDATE items SET customer_id = $1 WHERE delivery_point_id = $2";
/// Upserts a delivery point.
pub(super) const UPSERT_POINT: &str = "INSERT INTO delivery_points (id, customer_id, lines, lat, lon, version, postcode, city) VALUES ($1, NULL, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET lines = excluded.lines, lat = excluded.lat, lon = excluded.lon, version = excluded.version, postcode = excluded.postcode, city = excluded.city";
/// Upserts an item; its status and customer follow from its events and delivery point.
pub(super) const UPSERT_ITEM: &str = "INSERT INTO items (id, delivery_point_id, customer_id, status, needs_in_person, updated_at_ms, requirements, sender, arrived_ms) VALUES ($1, $2, (SELECT customer_id FROM delivery_points WHERE id = $2), 'EMG', $3, $4, $5, $6, $4) ON CONFLICT (id) DO UPDATE SET delivery_point_id = excluded.delivery_point_id, customer_id = excluded.customer_id, needs_in_person = excluded.needs_in_person, requirements = excluded.requirements, sender = excluded.sender, arrived_ms = excluded.arrived_ms";
/// Upserts a pickup point.
pub(super) const UPSERT_PICKUP_POINT: &str = "INSERT INTO pickup_points (id, kind, name, lines, postcode, city, lat, lon, opening_hours) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name, lines = excluded.lines, postcode = excluded.postcode, city = excluded.city, lat = excluded.lat, lon = excluded.lon, opening_hours = excluded.opening_hours";
/// Upserts a round.
pub(super) const UPSERT_ROUND: &str = "INSERT INTO rounds (id, day, postman, device, office) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET day = excluded.day, postman = excluded.postman, device = excluded.device, office = excluded.office";
/// Clears a round's stops before they are written again.
pub(super) const CLEAR_STOPS: &str = "DELETE FROM round_stops WHERE round_id = $1";
/// One stop.
pub(super) const INSERT_STOP: &str = "INSERT INTO round_stops (round_id, position, delivery_point_id, items) VALUES ($1, $2, $3, $4)";
/// Clears a round's further devices.
pub(super) const CLEAR_ROUND_DEVICES: &str = "DELETE FROM round_devices WHERE round_id = $1";
/// One further device.
pub(super) const INSERT_ROUND_DEVICE: &str =
    "INSERT INTO round_devices (round_id, device) VALUES ($1, $2) ON CONFLICT DO NOTHING";
/// Upserts a device; a revocation is never undone.
pub(super) const UPSERT_DEVICE: &str = "INSERT INTO devices (id, postman, revoked_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET postman = excluded.postman, revoked_at = COALESCE(devices.revoked_at, excluded.revoked_at)";
/// Remembers a line as applied.
pub(super) const UPSERT_RECORD: &str = "INSERT INTO import_records (kind, key, record, updated_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (kind, key) DO UPDATE SET record = excluded.record, updated_ms = excluded.updated_ms";
/// The lines applied last, for a batch's keys (`$2`: a JSON list of keys).
pub(super) const RECORDS_OF: &str =
    "SELECT key, record FROM import_records WHERE kind = $1 AND key IN ";

/// Applies `$loads` (a slice of [`Load`]) in the transaction `$tx`, in order.
macro_rules! apply_loads {
    ($tx:ident, $loads:expr) => {
        for load in $loads {
            match load {
                Load::Customer {
                    id,
                    name,
                    contacts,
                    delivery_points,
                } => {
                    sqlx::query(loads::UPSERT_CUSTOMER)
                        .bind(id)
                        .bind(name)
                        .bind(contacts)
                        .execute(&mut *$tx)
                        .await?;
                    sqlx::query(loads::RELEASE_POINTS)
                        .bind(id)
                        .execute(&mut *$tx)
                        .await?;
                    sqlx::query(loads::RELEASE_ITEMS)
                        .bind(id)
                        .execute(&mut *$tx)
                        .await?;
                    for point in delivery_points {
                        sqlx::query(loads::CLAIM_POINT)
                            .bind(id)
                            .bind(point)
                            .execute(&mut *$tx)
                            .await?;
                        sqlx::query(loads::CLAIM_ITEMS)
                            .bind(id)
                            .bind(point)
                            .execute(&mut *$tx)
                            .await?;
                    }
                }
                Load::DeliveryPoint {
                    id,
                    lines,
                    postcode,
                    city,
                    pin,
                    version,
                } => {
                    sqlx::query(loads::UPSERT_POINT)
                        .bind(id)
                        .bind(lines.join("\n"))
                        .bind(pin.map(|p| p.0))
                        .bind(pin.map(|p| p.1))
                        .bind(version)
                        .bind(postcode)
                        .bind(city)
                        .execute(&mut *$tx)
                        .await?;
                }
                Load::Item {
                    id,
                    delivery_point,
                    requirements,
                    needs_in_person,
                    sender,
                    arrived_ms,
                } => {
                    sqlx::query(loads::UPSERT_ITEM)
                        .bind(id)
                        .bind(delivery_point)
                        .bind(needs_in_person)
                        .bind(arrived_ms)
                        .bind(requirements)
                        .bind(sender)
                        .execute(&mut *$tx)
                        .await?;
                }
                Load::PickupPoint {
                    id,
                    kind,
                    name,
                    lines,
                    postcode,
                    city,
                    pin,
                    opening_hours,
                } => {
                    sqlx::query(loads::UPSERT_PICKUP_POINT)
                        .bind(id)
                        .bind(kind)
                        .bind(name)
                        .bind(lines)
                        .bind(postcode)
                        .bind(city)
                        .bind(pin.map(|p| p.0))
                        .bind(pin.map(|p| p.1))
                        .bind(opening_hours)
                        .execute(&mut *$tx)
                        .await?;
                }
                Load::Round {
                    manifest,
                    office,
                    more_devices,
                } => {
                    sqlx::query(loads::UPSERT_ROUND)
                        .bind(&manifest.round_id)
                        .bind(&manifest.date)
                        .bind(&manifest.postman)
                        .bind(&manifest.device)
                        .bind(office)
                        .execute(&mut *$tx)
                        .await?;
                    sqlx::query(loads::CLEAR_STOPS)
                        .bind(&manifest.round_id)
                        .execute(&mut *$tx)
                        .await?;
                    for stop in &manifest.stops {
                        sqlx::query(loads::INSERT_STOP)
                            .bind(&manifest.round_id)
                            .bind(i64::from(stop.order))
                            .bind(&stop.delivery_point)
                            .bind(serde_json::to_string(&stop.items).unwrap_or_default())
                            .execute(&mut *$tx)
                            .await?;
                    }
                    sqlx::query(loads::CLEAR_ROUND_DEVICES)
                        .bind(&manifest.round_id)
                        .execute(&mut *$tx)
                        .await?;
                    for device in more_devices {
                        sqlx::query(loads::INSERT_ROUND_DEVICE)
                            .bind(&manifest.round_id)
                            .bind(device)
                            .execute(&mut *$tx)
                            .await?;
                    }
                }
                Load::Device {
                    id,
                    postman,
                    revoked_ms,
                } => {
                    sqlx::query(loads::UPSERT_DEVICE)
                        .bind(id)
                        .bind(postman)
                        .bind(revoked_ms)
                        .execute(&mut *$tx)
                        .await?;
                }
                Load::Record {
                    kind,
                    key,
                    record,
                    at_ms,
                } => {
                    sqlx::query(loads::UPSERT_RECORD)
                        .bind(*kind)
                        .bind(key)
                        .bind(record)
                        .bind(at_ms)
                        .execute(&mut *$tx)
                        .await?;
                }
            }
        }
    };
}
pub(super) use apply_loads;

impl Database {
    /// The lines an import applied last for these keys of `kind`: key → canonical JSON.
    pub async fn import_records(
        &self,
        kind: &str,
        keys: &[&str],
    ) -> Result<std::collections::HashMap<String, String>, sqlx::Error> {
        if keys.is_empty() {
            return Ok(Default::default());
        }
        let list = serde_json::to_string(keys).unwrap_or_else(|_| "[]".into());
        let sql = format!("{RECORDS_OF}{}", self.json_list(2));
        with_pool!(self, pool => {
            let rows: Vec<(String, String)> = sqlx::query_as(&sql).bind(kind).bind(&list).fetch_all(pool).await?;
            Ok(rows.into_iter().collect())
        })
    }

    /// Which of these documents exist.
    pub async fn existing_documents(
        &self,
        ids: &[&str],
    ) -> Result<std::collections::HashSet<String>, sqlx::Error> {
        self.existing("documents", ids).await
    }

    /// Which of these ids `table` holds (`delivery_points`, `items`, `devices`, `documents`).
    pub async fn existing(
        &self,
        table: &'static str,
        ids: &[&str],
    ) -> Result<std::collections::HashSet<String>, sqlx::Error> {
        if ids.is_empty() {
            return Ok(Default::default());
        }
        let list = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
        let sql = format!("SELECT id FROM {table} WHERE id IN {}", self.json_list(1));
        with_pool!(self, pool => {
            let rows: Vec<(String,)> = sqlx::query_as(&sql).bind(&list).fetch_all(pool).await?;
            Ok(rows.into_iter().map(|(id,)| id).collect())
        })
    }

    /// Devices by id: their postman and whether they are revoked.
    pub async fn devices(
        &self,
        ids: &[&str],
    ) -> Result<std::collections::HashMap<String, (String, bool)>, sqlx::Error> {
        if ids.is_empty() {
            return Ok(Default::default());
        }
        let list = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
        let sql = format!(
            "SELECT id, postman, revoked_at FROM devices WHERE id IN {}",
            self.json_list(1)
        );
        with_pool!(self, pool => {
            let rows: Vec<(String, String, Option<i64>)> = sqlx::query_as(&sql).bind(&list).fetch_all(pool).await?;
            Ok(rows.into_iter().map(|(id, postman, revoked)| (id, (postman, revoked.is_some()))).collect())
        })
    }
}
