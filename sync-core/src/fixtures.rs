//! Sample documents and interactions, shared by the tests, the benchmarks and the server's demo
//! town, so all of them exercise realistic shapes rather than toy ones.

use automerge::{ActorId, Automerge};

use crate::ids::DocId;
use crate::model::{
    AccessNotes, Attempt, Choice, Correction, CustomerChoice, GeoPoint, Notice, Outcome, Position,
    Proof, ProofKind, ProposedCorrection, ReferenceAddress, Requirements, RoundManifest, Stop,
    WaitingPlace, WaitingPlaceKind,
};
use crate::operations::{self, OperationError};
use crate::s10::{check_digit, S10};
use crate::sync::MemoryHost;

/// 2026-11-23T09:00:00Z, a plausible time on a round.
pub const MORNING_MS: i64 = 1_795_424_400_000;

/// The actor the server writes with in fixtures.
pub fn server_actor() -> ActorId {
    ActorId::from(b"tournee-server-0".as_slice())
}

/// A valid S10 number for serial `n` (`RR` items from France).
pub fn s10(n: u32) -> S10 {
    let digits: Vec<u32> = format!("{:08}", n % 100_000_000)
        .bytes()
        .map(|b| u32::from(b - b'0'))
        .collect();
    let id = format!("RR{:08}{}FR", n % 100_000_000, check_digit(&digits));
    S10::parse(&id).expect("fixture S10 numbers are valid by construction")
}

/// The id of sample delivery point `n`.
pub fn delivery_point_id(n: u32) -> String {
    format!("dp-{n:05}")
}

/// A plausible reference address for delivery point `n`, pinned near Paris.
pub fn reference_address(n: u32) -> ReferenceAddress {
    let number = 1 + n % 120;
    ReferenceAddress {
        lines: vec![
            format!("M OU MME CLIENT {n}"),
            format!("{number} RUE DE LA ROQUETTE"),
            "75011 PARIS".into(),
        ],
        house_number: number.to_string(),
        suffix: None,
        street: "RUE DE LA ROQUETTE".into(),
        postcode: "75011".into(),
        city: "PARIS".into(),
        building: None,
        pin: Some(pin(n)),
        version: 1,
    }
}

/// Where sample delivery point `n` is.
pub fn pin(n: u32) -> GeoPoint {
    GeoPoint {
        lat: 48.8566 + f64::from(n % 100) * 0.0003,
        lon: 2.3722 + f64::from(n / 100 % 100) * 0.0003,
    }
}

/// A delivery-point document for sample point `n`, as the server creates it.
pub fn delivery_point_doc(n: u32) -> Result<Automerge, OperationError> {
    operations::new_delivery_point(
        server_actor(),
        &delivery_point_id(n),
        reference_address(n),
        AccessNotes {
            door_code: Some(format!("{:04}B", n % 10_000)),
            ..Default::default()
        },
    )
}

/// An item document for sample item `n` addressed to point `dp`; every third item needs a
/// signature.
pub fn item_doc(n: u32, dp: u32) -> Result<Automerge, OperationError> {
    operations::new_item(
        server_actor(),
        &s10(n),
        &delivery_point_id(dp),
        requirements(n),
    )
}

/// The requirements of sample item `n`.
pub fn requirements(n: u32) -> Requirements {
    Requirements {
        signature: n.is_multiple_of(3),
        ..Default::default()
    }
}

/// A realistic failed attempt with a notice: the most common and the largest record.
pub fn absent_attempt(device: &str, postman: &str, n: u32) -> Attempt {
    let p = pin(n);
    Attempt {
        outcome: Outcome::AddresseeAbsent,
        recorded_at_ms: MORNING_MS + i64::from(n) * 60_000,
        device: device.into(),
        postman: postman.into(),
        position: Some(Position {
            lat: p.lat + 0.00002,
            lon: p.lon - 0.00001,
            accuracy_m: 6.5,
        }),
        notice: Some(Notice {
            number: Some(format!("AV{:08}", n)),
            waits_at: Some(WaitingPlace {
                kind: WaitingPlaceKind::PostOffice,
                place_id: "bp-paris-11".into(),
                until: Some("2026-12-08".into()),
            }),
        }),
        proofs: vec![Proof {
            kind: ProofKind::Photo,
            sha256: format!("{:064x}", u64::from(n) * 2_654_435_761),
        }],
    }
}

/// A delivery to the addressee, with a signature.
pub fn delivered_attempt(device: &str, postman: &str, n: u32) -> Attempt {
    Attempt {
        outcome: Outcome::DeliveredToAddressee,
        notice: None,
        proofs: vec![Proof {
            kind: ProofKind::Signature,
            sha256: format!("{:064x}", u64::from(n) * 40_503),
        }],
        ..absent_attempt(device, postman, n)
    }
}

/// A customer asking for redelivery on a date.
pub fn redeliver_choice(customer: &str, date: &str) -> CustomerChoice {
    CustomerChoice {
        choice: Choice::RedeliverOn { date: date.into() },
        made_at_ms: MORNING_MS + 3_600_000,
        made_by: customer.into(),
    }
}

/// A postman's correction: the door is at number 35, not 33.
pub fn number_correction(device: &str, postman: &str) -> Correction {
    Correction {
        proposed: ProposedCorrection {
            house_number: Some("35".into()),
            door_code: Some("4512A".into()),
            note: Some("Le 33 n'existe pas, boîte aux lettres au 35".into()),
            ..Default::default()
        },
        proposed_by: postman.into(),
        device: device.into(),
        proposed_at_ms: MORNING_MS + 120_000,
    }
}

/// A town on an in-memory server: `points` delivery points with `items_per_point` items each,
/// and the round that visits them all, assigned to postman `pm-1` on device `dev-1`.
pub fn town(
    points: u32,
    items_per_point: u32,
) -> Result<(MemoryHost, RoundManifest), OperationError> {
    let mut host = MemoryHost::new();
    let mut stops = Vec::new();
    for p in 0..points {
        host.insert(
            DocId::delivery_point(&delivery_point_id(p))?,
            delivery_point_doc(p)?,
        );
        let mut items = Vec::new();
        for i in 0..items_per_point {
            let n = p * items_per_point + i;
            host.insert(DocId::item(&s10(n)), item_doc(n, p)?);
            items.push(s10(n).to_string());
        }
        stops.push(Stop {
            order: p + 1,
            delivery_point: delivery_point_id(p),
            items,
        });
    }
    let manifest = RoundManifest {
        round_id: "round-11-a".into(),
        date: "2026-11-23".into(),
        postman: "pm-1".into(),
        device: "dev-1".into(),
        stops,
    };
    Ok((host, manifest))
}
