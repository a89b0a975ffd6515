//! The serde codec and autosurgeon must agree on the layout of every record: the phone writes
//! attempts through the codec, the server may read them through either, and the skeletons and
//! in-place updates are written by autosurgeon.

#![allow(clippy::unwrap_used)]

use std::fmt::Debug;

use automerge::transaction::Transactable;
use automerge::{Automerge, ReadDoc, ROOT};
use autosurgeon::{Hydrate, Reconcile};
use serde::{de::DeserializeOwned, Serialize};
use tournee_sync_core::fixtures;
use tournee_sync_core::model::codec;
use tournee_sync_core::model::{
    Attempt, Choice, CustomerChoice, DeliveryPointDoc, ItemDoc, Notice, Outcome, Preferences,
    Review, ReviewDecision, WaitingPlace, WaitingPlaceKind,
};
use tournee_sync_core::operations;

/// Written by autosurgeon, read by the codec; written by the codec, read by autosurgeon.
fn both_ways<T>(value: &T)
where
    T: Reconcile + Hydrate + Serialize + DeserializeOwned + PartialEq + Debug,
{
    let mut by_autosurgeon = Automerge::new();
    by_autosurgeon
        .transact(|tx| autosurgeon::reconcile_prop(tx, ROOT, "v", value))
        .unwrap();
    let read: Option<T> = codec::read_prop(&by_autosurgeon, &ROOT, "v").unwrap();
    assert_eq!(
        read.as_ref(),
        Some(value),
        "codec reading autosurgeon's layout"
    );

    let mut by_codec = Automerge::new();
    let tree = codec::to_hydrate(value).unwrap();
    by_codec
        .transact(|tx| tx.batch_create_object(ROOT, "v", &tree, false).map(|_| ()))
        .unwrap();
    let read: Option<T> = autosurgeon::hydrate_prop(&by_codec, ROOT, "v").unwrap();
    assert_eq!(
        read.as_ref(),
        Some(value),
        "autosurgeon reading the codec's layout"
    );
    assert_eq!(
        by_autosurgeon.hydrate(None),
        by_codec.hydrate(None),
        "the same tree either way"
    );
}

fn attempt_with(outcome: Outcome) -> Attempt {
    Attempt {
        outcome,
        notice: None,
        ..fixtures::absent_attempt("dev-1", "pm-1", 4)
    }
}

#[test]
fn every_outcome_has_one_layout() {
    both_ways(&fixtures::absent_attempt("dev-1", "pm-1", 1));
    both_ways(&fixtures::delivered_attempt("dev-1", "pm-1", 2));
    for outcome in [
        Outcome::DeliveredToAddressee,
        Outcome::DeliveredToNeighbour {
            neighbour: "Mme Martin".into(),
        },
        Outcome::DeliveredToSafePlace {
            place: "abri de jardin".into(),
        },
        Outcome::DeliveredToMailbox,
        Outcome::DeliveredToPickupPoint {
            pickup_point: "pp-42".into(),
        },
        Outcome::Refused,
        Outcome::AddressIncorrect,
        Outcome::NoAccess,
        Outcome::Damaged,
        Outcome::Other {
            text: "chien méchant".into(),
        },
    ] {
        both_ways(&attempt_with(outcome));
    }
    both_ways(&Attempt {
        position: None,
        proofs: vec![],
        notice: Some(Notice {
            number: None,
            waits_at: Some(WaitingPlace {
                kind: WaitingPlaceKind::Locker,
                place_id: "lk-3".into(),
                until: None,
            }),
        }),
        ..attempt_with(Outcome::Refused)
    });
}

#[test]
fn every_choice_review_and_correction_has_one_layout() {
    for choice in [
        Choice::RedeliverOn {
            date: "2026-11-25".into(),
        },
        Choice::PickupPoint {
            pickup_point: "pp-1".into(),
        },
        Choice::Neighbour {
            neighbour: "M. Durand".into(),
        },
        Choice::SafePlace {
            place: "derrière le portail".into(),
        },
        Choice::Hold,
    ] {
        both_ways(&CustomerChoice {
            choice,
            made_at_ms: fixtures::MORNING_MS,
            made_by: "cust-1".into(),
        });
    }
    both_ways(&fixtures::number_correction("dev-1", "pm-1"));
    for decision in [ReviewDecision::Approved, ReviewDecision::Rejected] {
        both_ways(&Review {
            decision,
            by: "bo-1".into(),
            reason: "vu".into(),
            at_ms: fixtures::MORNING_MS,
        });
    }
    both_ways(&Preferences {
        safe_place: Some("boîte à colis".into()),
        preferred_neighbour: None,
        preferred_pickup_point: Some("pp-7".into()),
        never_to_neighbour: true,
    });
}

#[test]
fn whole_documents_read_the_same_through_either_path() {
    let mut item = fixtures::item_doc(3, 1).unwrap();
    operations::record_attempt(
        &mut item,
        "a1",
        &fixtures::absent_attempt("dev-1", "pm-1", 3),
    )
    .unwrap();
    operations::choose_for_item(
        &mut item,
        "c1",
        &fixtures::redeliver_choice("cust-1", "2026-11-26"),
    )
    .unwrap();
    let by_codec = operations::read_item(&item).unwrap();
    let by_autosurgeon: ItemDoc = autosurgeon::hydrate(&item).unwrap();
    assert_eq!(by_codec, by_autosurgeon);
    assert_eq!(by_codec.attempts.len(), 1);

    let mut point = fixtures::delivery_point_doc(1).unwrap();
    operations::propose_correction(
        &mut point,
        "k1",
        &fixtures::number_correction("dev-1", "pm-1"),
    )
    .unwrap();
    let by_codec = operations::read_delivery_point(&point).unwrap();
    let by_autosurgeon: DeliveryPointDoc = autosurgeon::hydrate(&point).unwrap();
    assert_eq!(by_codec, by_autosurgeon);
}

#[test]
fn a_value_of_the_wrong_shape_is_an_error_not_a_panic() {
    let mut doc = Automerge::new();
    doc.transact(|tx| tx.put(ROOT, "v", "not an attempt").map(|_| ()))
        .unwrap();
    let read: Result<Option<Attempt>, _> = codec::read_prop(&doc, &ROOT, "v");
    assert!(read.is_err());
    let missing: Option<Attempt> = codec::read_prop(&doc, &ROOT, "absent").unwrap();
    assert!(missing.is_none());
    assert!(doc.get(ROOT, "v").unwrap().is_some());
}
