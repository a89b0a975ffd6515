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
/// Upserts delivery points (multi-row: head, values, tail).
pub(super) const UPSERT_POINTS: (&str, &str) = ("INSERT INTO delivery_points (id, lines, lat, lon, version, postcode, city) ", " ON CONFLICT (id) DO UPDATE SET lines = excluded.lines, lat = excluded.lat, lon = excluded.lon, version = excluded.version, postcode = excluded.postcode, city = excluded.city");
/// Upserts items (status EMG at arrival); their customer is their delivery point's, set after.
pub(super) const UPSERT_ITEMS: (&str, &str) = ("INSERT INTO items (id, delivery_point_id, status, needs_in_person, updated_at_ms, requirements, sender, arrived_ms) ", " ON CONFLICT (id) DO UPDATE SET delivery_point_id = excluded.delivery_point_id, needs_in_person = excluded.needs_in_person, requirements = excluded.requirements, sender = excluded.sender, arrived_ms = excluded.arrived_ms");
/// Gives items their delivery point's customer (`$1`: a JSON list of S10 numbers).
pub(super) const ITEMS_CUSTOMER: &str = "UPDATE items SET customer_id = (SELECT customer_id FROM delivery_points WHERE delivery_points.id = items.delivery_point_id) WHERE id ";
/// Upserts pickup points.
pub(super) const UPSERT_PICKUP_POINTS: (&str, &str) = ("INSERT INTO pickup_points (id, kind, name, lines, postcode, city, lat, lon, opening_hours) ", " ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name, lines = excluded.lines, postcode = excluded.postcode, city = excluded.city, lat = excluded.lat, lon = excluded.lon, opening_hours = excluded.opening_hours");
/// Upserts a round.
pub(super) const UPSERT_ROUND: &str = "INSERT INTO rounds (id, day, postman, device, office) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET day = excluded.day, postman = excluded.postman, device = excluded.device, office = excluded.office";
/// Clears a round's stops before they are written again.
pub(super) const CLEAR_STOPS: &str = "DELETE FROM round_stops WHERE round_id = $1";
/// A round's stops (multi-row).
pub(super) const INSERT_STOPS: &str =
    "INSERT INTO round_stops (round_id, position, delivery_point_id, items) ";
/// Clears a round's further devices.
pub(super) const CLEAR_ROUND_DEVICES: &str = "DELETE FROM round_devices WHERE round_id = $1";
/// One further device.
pub(super) const INSERT_ROUND_DEVICE: &str =
    "INSERT INTO round_devices (round_id, device) VALUES ($1, $2) ON CONFLICT DO NOTHING";
/// Upserts devices; a revocation is never undone.
pub(super) const UPSERT_DEVICES: (&str, &str) = ("INSERT INTO devices (id, postman, revoked_at) ", " ON CONFLICT (id) DO UPDATE SET postman = excluded.postman, revoked_at = COALESCE(devices.revoked_at, excluded.revoked_at)");
/// Remembers lines as applied.
pub(super) const UPSERT_RECORDS: (&str, &str) = ("INSERT INTO import_records (kind, key, record, updated_ms) ", " ON CONFLICT (kind, key) DO UPDATE SET record = excluded.record, updated_ms = excluded.updated_ms");
/// The lines applied last, for a batch's keys (`$2`: a JSON list of keys).
pub(super) const RECORDS_OF: &str =
    "SELECT key, record FROM import_records WHERE kind = $1 AND key ";

/// The ids among a JSON list (`{in_list}`, `$1`) that a table (`{table}`) holds.
const EXISTING: &str = "SELECT id FROM {table} WHERE id {in_list}";

/// Devices among a JSON list of ids (`{in_list}`, `$1`), with their postman and revocation.
const DEVICES: &str = "SELECT id, postman, revoked_at FROM devices WHERE id {in_list}";

/// Applies `$loads` (a slice of [`Load`]) in the transaction `$tx` (one of `$db`): one multi-row
/// statement per kind and [`super::ROWS_PER_INSERT`] rows (a batch holds each key once), then
/// what follows per row (a customer's points, a round's stops).
macro_rules! apply_loads {
    ($db:expr, $tx:ident, $loads:expr) => {
        let loads: &[Load] = $loads;
        let points: Vec<_> = loads
            .iter()
            .filter_map(|l| match l {
                Load::DeliveryPoint {
                    id,
                    lines,
                    postcode,
                    city,
                    pin,
                    version,
                } => Some((id, lines, postcode, city, pin, version)),
                _ => None,
            })
            .collect();
        insert_rows!(
            $tx,
            loads::UPSERT_POINTS.0,
            points,
            |row, (id, lines, postcode, city, pin, version)| {
                row.push_bind(id)
                    .push_bind(lines.join("\n"))
                    .push_bind(pin.map(|p| p.0))
                    .push_bind(pin.map(|p| p.1))
                    .push_bind(version)
                    .push_bind(postcode)
                    .push_bind(city);
            },
            loads::UPSERT_POINTS.1
        );
        let items: Vec<_> = loads
            .iter()
            .filter_map(|l| match l {
                Load::Item {
                    id,
                    delivery_point,
                    requirements,
                    needs_in_person,
                    sender,
                    arrived_ms,
                } => Some((
                    id,
                    delivery_point,
                    requirements,
                    needs_in_person,
                    sender,
                    arrived_ms,
                )),
                _ => None,
            })
            .collect();
        insert_rows!(
            $tx,
            loads::UPSERT_ITEMS.0,
            items,
            |row, (id, delivery_point, requirements, needs_in_person, sender, arrived_ms)| {
                row.push_bind(id)
                    .push_bind(delivery_point)
                    .push_bind($crate::db::UpuCode::Arrived)
                    .push_bind(needs_in_person)
                    .push_bind(arrived_ms)
                    .push_bind(requirements)
                    .push_bind(sender)
                    .push_bind(arrived_ms);
            },
            loads::UPSERT_ITEMS.1
        );
        if !items.is_empty() {
            let ids: Vec<&String> = items.iter().map(|i| i.0).collect();
            let list = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into());
            sqlx::query(&format!("{}{}", loads::ITEMS_CUSTOMER, $db.in_list(1)))
                .bind(list)
                .execute(&mut *$tx)
                .await?;
        }
        let places: Vec<_> = loads
            .iter()
            .filter_map(|l| match l {
                Load::PickupPoint {
                    id,
                    kind,
                    name,
                    lines,
                    postcode,
                    city,
                    pin,
                    opening_hours,
                } => Some((id, kind, name, lines, postcode, city, pin, opening_hours)),
                _ => None,
            })
            .collect();
        insert_rows!(
            $tx,
            loads::UPSERT_PICKUP_POINTS.0,
            places,
            |row, (id, kind, name, lines, postcode, city, pin, opening_hours)| {
                row.push_bind(id)
                    .push_bind(kind)
                    .push_bind(name)
                    .push_bind(lines)
                    .push_bind(postcode)
                    .push_bind(city)
                    .push_bind(pin.map(|p| p.0))
                    .push_bind(pin.map(|p| p.1))
                    .push_bind(opening_hours);
            },
            loads::UPSERT_PICKUP_POINTS.1
        );
        let devices: Vec<_> = loads
            .iter()
            .filter_map(|l| match l {
                Load::Device {
                    id,
                    postman,
                    revoked_ms,
                } => Some((id, postman, revoked_ms)),
                _ => None,
            })
            .collect();
        insert_rows!(
            $tx,
            loads::UPSERT_DEVICES.0,
            devices,
            |row, (id, postman, revoked_ms)| {
                row.push_bind(id).push_bind(postman).push_bind(revoked_ms);
            },
            loads::UPSERT_DEVICES.1
        );
        let records: Vec<_> = loads
            .iter()
            .filter_map(|l| match l {
                Load::Record {
                    kind,
                    key,
                    record,
                    at_ms,
                } => Some((kind, key, record, at_ms)),
                _ => None,
            })
            .collect();
        insert_rows!(
            $tx,
            loads::UPSERT_RECORDS.0,
            records,
            |row, (kind, key, record, at_ms)| {
                row.push_bind(**kind)
                    .push_bind(key)
                    .push_bind(record)
                    .push_bind(at_ms);
            },
            loads::UPSERT_RECORDS.1
        );
        for load in loads {
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
                    insert_rows!(
                        $tx,
                        loads::INSERT_STOPS,
                        manifest.stops,
                        |row, stop| {
                            row.push_bind(&manifest.round_id)
                                .push_bind(i64::from(stop.order))
                                .push_bind(&stop.delivery_point)
                                .push_bind(serde_json::to_string(&stop.items).unwrap_or_default());
                        },
                        ""
                    );
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
                Load::DeliveryPoint { .. }
                | Load::Item { .. }
                | Load::PickupPoint { .. }
                | Load::Device { .. }
                | Load::Record { .. } => {}
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
        let sql = format!("{RECORDS_OF}{}", self.in_list(2));
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
        let sql = EXISTING.replace("{table}", table);
        let rows: Vec<(String,)> = self.fetch_in(&sql, ids).await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Devices by id: their postman and whether they are revoked.
    pub async fn devices(
        &self,
        ids: &[&str],
    ) -> Result<std::collections::HashMap<String, (String, bool)>, sqlx::Error> {
        let rows: Vec<(String, String, Option<i64>)> = self.fetch_in(DEVICES, ids).await?;
        Ok(rows
            .into_iter()
            .map(|(id, postman, revoked)| (id, (postman, revoked.is_some())))
            .collect())
    }
}
