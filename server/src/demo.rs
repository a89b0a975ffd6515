//! A small demo town, so a new user sees a working system at once: customers, delivery points
//! with pins, items with valid S10 numbers, and today's rounds for two postmen.

use tournee_sync_core::automerge::Automerge;
use tournee_sync_core::fixtures;
use tournee_sync_core::model::{RoundManifest, Stop};
use tournee_sync_core::DocId;

use crate::db::Database;
use crate::scope::{civil_date, days_since_epoch, now_ms};

/// Delivery points in the demo town.
pub const POINTS: u32 = 12;
/// Items per delivery point.
pub const ITEMS_PER_POINT: u32 = 2;
/// The demo's postmen and their devices.
pub const POSTMEN: [(&str, &str); 2] = [("pm-1", "dev-1"), ("pm-2", "dev-2")];
/// The demo's customers; customer `n` owns every third delivery point from `n`.
pub const CUSTOMERS: [&str; 3] = ["cust-1", "cust-2", "cust-3"];

/// Creates the demo town and today's rounds if they are not there yet. Returns whether it
/// created anything.
pub async fn seed(db: &Database) -> Result<bool, sqlx::Error> {
    let today = civil_date(days_since_epoch());
    let first_round = format!("demo-{today}-{}", POSTMEN[0].0);
    if !db
        .rounds_for_device(POSTMEN[0].1, &today, &today)
        .await?
        .is_empty()
    {
        return Ok(false);
    }
    let now = now_ms();
    for (n, customer) in CUSTOMERS.iter().enumerate() {
        db.insert_customer(customer, &format!("Demo customer {}", n + 1))
            .await?;
    }
    for p in 0..POINTS {
        let customer = CUSTOMERS[p as usize % CUSTOMERS.len()];
        let reference = fixtures::reference_address(p);
        let pin = reference.pin.map(|g| (g.lat, g.lon));
        db.insert_delivery_point(
            &fixtures::delivery_point_id(p),
            Some(customer),
            &reference.lines,
            pin,
            1,
        )
        .await?;
        insert(
            db,
            &DocId::delivery_point(&fixtures::delivery_point_id(p)).map_err(invalid)?,
            fixtures::delivery_point_doc(p).map_err(invalid)?,
        )
        .await?;
        for i in 0..ITEMS_PER_POINT {
            let n = p * ITEMS_PER_POINT + i;
            let s10 = fixtures::s10(n);
            let needs = fixtures::requirements(n).needs_addressee_in_person();
            db.insert_item(
                s10.as_str(),
                &fixtures::delivery_point_id(p),
                Some(customer),
                needs,
                now,
            )
            .await?;
            insert(
                db,
                &DocId::item(&s10),
                fixtures::item_doc(n, p).map_err(invalid)?,
            )
            .await?;
        }
    }
    let per_postman = POINTS / POSTMEN.len() as u32;
    for (k, (postman, device)) in POSTMEN.iter().enumerate() {
        db.register_device(device, postman).await?;
        let first = k as u32 * per_postman;
        let stops = (first..first + per_postman)
            .enumerate()
            .map(|(order, p)| Stop {
                order: order as u32 + 1,
                delivery_point: fixtures::delivery_point_id(p),
                items: (0..ITEMS_PER_POINT)
                    .map(|i| fixtures::s10(p * ITEMS_PER_POINT + i).to_string())
                    .collect(),
            })
            .collect();
        let round = RoundManifest {
            round_id: if k == 0 {
                first_round.clone()
            } else {
                format!("demo-{today}-{postman}")
            },
            date: today.clone(),
            postman: postman.to_string(),
            device: device.to_string(),
            stops,
        };
        db.insert_round(&round).await?;
    }
    Ok(true)
}

async fn insert(db: &Database, id: &DocId, doc: Automerge) -> Result<(), sqlx::Error> {
    db.insert_document(id, &doc.save()).await
}

fn invalid(e: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::Protocol(format!("demo data: {e}"))
}
