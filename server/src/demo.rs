//! A small demo town, so a new user sees a working system at once: customers, delivery points
//! with pins, items with valid S10 numbers, and today's rounds for two postmen.

use tournee_sync_core::automerge::Automerge;
use tournee_sync_core::fixtures;
use tournee_sync_core::model::{GeoPoint, Position, RoundManifest, Stop};
use tournee_sync_core::operations;
use tournee_sync_core::validator::{Role, Scope, Sender};
use tournee_sync_core::DocId;

use crate::clock::Clock;
use crate::db::pickup_points::PickupPointRow;
use crate::db::Database;
use crate::error::ApiError;
use crate::write::{write_as, Audit};
use crate::AppState;

/// The demo's first field work, with fixed ids so the README's commands can name them: pm-1
/// proposed this correction of dp-00001…
pub const DEMO_CORRECTION: &str = "demo-correction-1";
/// …found nobody at cust-1's door for item `fixtures::s10(1)` and left this notice…
pub const DEMO_ABSENCE: &str = "demo-absence-1";
/// …and recorded this delivery of `fixtures::s10(4)` about 445 m from the pin.
pub const DEMO_FAR_DELIVERY: &str = "demo-delivery-4";

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
pub async fn seed(db: &Database, clock: &Clock) -> Result<bool, sqlx::Error> {
    let today = clock.today().to_string();
    let first_round = format!("demo-{today}-{}", POSTMEN[0].0);
    if !db
        .rounds_for_device(POSTMEN[0].1, &today, &today)
        .await?
        .is_empty()
    {
        return Ok(false);
    }
    let now = clock.now_ms();
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
    for place in pickup_points() {
        db.upsert_pickup_point(&place).await?;
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

/// The demo town's post office (where the fixtures' notices send items) and pickup points, as an
/// import of pickup points would load them.
pub fn pickup_points() -> Vec<PickupPointRow> {
    let week = |opens: &str, closes: &str, saturday: Option<(&str, &str)>| {
        let mut hours: Vec<serde_json::Value> =
            ["monday", "tuesday", "wednesday", "thursday", "friday"]
                .iter()
                .map(|day| serde_json::json!({ "day": day, "opens": opens, "closes": closes }))
                .collect();
        if let Some((opens, closes)) = saturday {
            hours.push(serde_json::json!({ "day": "saturday", "opens": opens, "closes": closes }));
        }
        serde_json::Value::from(hours).to_string()
    };
    let place = |id: &str, kind: &str, name: &str, street: &str, pin: (f64, f64), hours: String| {
        PickupPointRow {
            id: id.into(),
            kind: kind.into(),
            name: name.into(),
            lines: serde_json::json!([name, street, "75011 PARIS"]).to_string(),
            postcode: "75011".into(),
            city: "PARIS".into(),
            lat: Some(pin.0),
            lon: Some(pin.1),
            opening_hours: hours,
        }
    };
    vec![
        place(
            "bp-paris-11",
            "post_office",
            "BUREAU DE POSTE PARIS ROQUETTE",
            "62 RUE DE LA ROQUETTE",
            (48.8555, 2.3735),
            week("09:00", "19:00", Some(("09:00", "12:30"))),
        ),
        place(
            "pp-paris-11-03",
            "pickup_point",
            "TABAC DE LA ROQUETTE",
            "120 RUE DE LA ROQUETTE",
            (48.8590, 2.3790),
            week("07:30", "20:00", Some(("08:00", "20:00"))),
        ),
        place(
            "pp-paris-11-07",
            "pickup_point",
            "LIBRAIRIE VOLTAIRE",
            "18 BOULEVARD VOLTAIRE",
            (48.8650, 2.3690),
            week("10:00", "19:00", None),
        ),
    ]
}

/// This morning's work on pm-1's round, as if pm-1's phone had synced it: a proposed correction,
/// an absence with a notice, a delivery far from the pin. So a new user finds the back-office
/// queue and the customer's parcels with something in them. Written through the same path as
/// the API's writes: validated, projected, audited.
pub async fn field_work(app: &AppState) -> Result<(), ApiError> {
    let postman = Sender {
        role: Role::Postman,
        principal: "pm-1".into(),
        device: Some("dev-1".into()),
        scope: Scope::All,
    };
    let minutes_ago = |m: i64| app.clock.now_ms() - m * 60_000;
    let near = |pin: GeoPoint, north: f64| Position {
        lat: pin.lat + north,
        lon: pin.lon,
        accuracy_m: 6.0,
    };
    let point = |p: u32| DocId::delivery_point(&fixtures::delivery_point_id(p)).map_err(invalid_id);

    let mut correction = fixtures::number_correction("dev-1", "pm-1");
    correction.proposed_at_ms = minutes_ago(50);
    write_as(
        app,
        &postman,
        &point(1)?,
        Audit::action("demo.correction"),
        |doc, _| {
            operations::propose_correction(doc, DEMO_CORRECTION, &correction)
                .map(|_| serde_json::Value::Null)
        },
    )
    .await?;

    let mut absence = fixtures::absent_attempt("dev-1", "pm-1", 1);
    absence.recorded_at_ms = minutes_ago(40);
    absence.position = Some(near(fixtures::pin(0), 0.00004));
    if let Some(place) = absence.notice.as_mut().and_then(|n| n.waits_at.as_mut()) {
        place.until = Some(app.clock.today_plus(14).to_string());
    }
    write_as(
        app,
        &postman,
        &DocId::item(&fixtures::s10(1)),
        Audit::action("demo.attempt"),
        |doc, _| {
            operations::record_attempt(doc, DEMO_ABSENCE, &absence).map(|_| serde_json::Value::Null)
        },
    )
    .await?;

    let mut far = fixtures::delivered_attempt("dev-1", "pm-1", 4);
    far.recorded_at_ms = minutes_ago(30);
    far.position = Some(near(fixtures::pin(2), 0.004));
    write_as(
        app,
        &postman,
        &DocId::item(&fixtures::s10(4)),
        Audit::action("demo.attempt"),
        |doc, _| {
            operations::record_attempt(doc, DEMO_FAR_DELIVERY, &far)
                .map(|_| serde_json::Value::Null)
        },
    )
    .await?;
    Ok(())
}

fn invalid_id(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("demo data: {e}"))
}

async fn insert(db: &Database, id: &DocId, doc: Automerge) -> Result<(), sqlx::Error> {
    db.insert_document(id, &doc.save()).await
}

fn invalid(e: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::Protocol(format!("demo data: {e}"))
}
