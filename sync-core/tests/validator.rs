//! The change validator, driven with real changes: each test forks a document the server
//! created, writes on the fork as a phone, a customer or the back office would (through the
//! operations, or raw to get past the phone-side rules), and hands the new changes to
//! `validate_changes`.

use std::collections::HashSet;
use std::error::Error;

use automerge::transaction::{Transactable, Transaction};
use automerge::{ActorId, Automerge, Change, ObjId, ObjType, ReadDoc, ScalarValue, Value, ROOT};
use autosurgeon::Reconcile;
use proptest::prelude::*;

use tournee_sync_core::fixtures::{self, MORNING_MS};
use tournee_sync_core::model::{
    AccessNotes, Attempt, Choice, Correction, CustomerChoice, GeoPoint, HouseSuffix, Notice,
    Outcome, Position, Preferences, ProposedCorrection, ReferenceAddress, Requirements, Review,
    ReviewDecision, WaitingPlace, WaitingPlaceKind,
};
use tournee_sync_core::operations::{self, OperationError};
use tournee_sync_core::rules::{self, Field};
use tournee_sync_core::validator::{
    validate_changes, Accepted, Checked, CheckedRecord, Refusal, Role, Scope, Sender, Touched,
};
use tournee_sync_core::DocId;

type TestResult = Result<(), Box<dyn Error>>;

const DEVICE: &str = "device-1";
const POSTMAN: &str = "postman-1";
const CUSTOMER: &str = "customer-1";
const STAFF: &str = "office.paris-11";

/// Item 7 needs nothing special; item 9 (divisible by 3) needs a signature.
const PLAIN_ITEM: u32 = 7;
const SIGNED_ITEM: u32 = 9;
const POINT: u32 = 1;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn item_id(n: u32) -> DocId {
    DocId::item(&fixtures::s10(n))
}

fn point_id(n: u32) -> DocId {
    DocId::delivery_point(&fixtures::delivery_point_id(n)).expect("fixture ids are valid")
}

fn scope(ids: &[&DocId]) -> Scope {
    Scope::Documents(ids.iter().map(|id| (*id).clone()).collect::<HashSet<_>>())
}

fn postman_for(ids: &[&DocId]) -> Sender {
    Sender {
        role: Role::Postman,
        principal: POSTMAN.into(),
        device: Some(DEVICE.into()),
        scope: scope(ids),
    }
}

fn customer_for(ids: &[&DocId]) -> Sender {
    Sender {
        role: Role::Customer,
        principal: CUSTOMER.into(),
        device: None,
        scope: scope(ids),
    }
}

fn back_office() -> Sender {
    Sender {
        role: Role::BackOffice,
        principal: STAFF.into(),
        device: None,
        scope: Scope::All,
    }
}

/// A phone (or browser, or back-office tool) holding a copy of the server's document.
fn fork_of(server: &Automerge) -> Automerge {
    server.fork().with_actor(ActorId::random())
}

/// What `device` made since it last synchronised with `server`.
fn new_changes(device: &Automerge, server: &Automerge) -> Vec<Change> {
    device.get_changes(&server.get_heads())
}

/// Validates everything `device` has that `server` has not.
fn validate(
    id: &DocId,
    server: &Automerge,
    device: &Automerge,
    sender: &Sender,
) -> Result<Accepted, Refusal> {
    validate_changes(id, server, new_changes(device, server), sender)
}

fn attempt() -> Attempt {
    fixtures::absent_attempt(DEVICE, POSTMAN, PLAIN_ITEM)
}

fn attempt_with(change: impl FnOnce(&mut Attempt)) -> Attempt {
    let mut attempt = attempt();
    change(&mut attempt);
    attempt
}

/// The id of the object at `path` (map keys from the root).
fn obj_at(doc: &Automerge, path: &[&str]) -> Result<ObjId, Box<dyn Error>> {
    let mut obj = ROOT;
    for key in path {
        obj = match doc.get(&obj, *key)? {
            Some((Value::Object(_), id)) => id,
            other => return Err(format!("no object at `{key}` of {path:?}: {other:?}").into()),
        };
    }
    Ok(obj)
}

/// The map at `obj/key`, read inside a transaction.
fn obj_at_in(tx: &Transaction<'_>, obj: &ObjId, key: &str) -> Result<ObjId, Box<dyn Error>> {
    match tx.get(obj, key)? {
        Some((Value::Object(ObjType::Map), id)) => Ok(id),
        other => Err(format!("no map at `{key}`: {other:?}").into()),
    }
}

/// Runs raw Automerge writes as one change, as a modified app could.
fn raw<E: Into<Box<dyn Error>>>(
    doc: &mut Automerge,
    writes: impl FnOnce(&mut Transaction<'_>) -> Result<(), E>,
) -> TestResult {
    doc.transact(writes)
        .map(|_| ())
        .map_err(|failure| failure.error.into())
}

/// Writes `value` at `<map>/<key>` (at the root when `map` is empty) without any rule checked.
fn write_raw<T: Reconcile>(doc: &mut Automerge, map: &str, key: &str, value: &T) -> TestResult {
    let parent = if map.is_empty() {
        ROOT
    } else {
        obj_at(doc, &[map])?
    };
    raw(doc, |tx| {
        autosurgeon::reconcile_prop(tx, &parent, key, value)
    })
}

#[track_caller]
fn assert_accepted(result: Result<Accepted, Refusal>) -> Accepted {
    match result {
        Ok(accepted) => accepted,
        Err(refusal) => panic!("expected the changes to be accepted, refused: {refusal}"),
    }
}

#[track_caller]
fn assert_forbidden(result: Result<Accepted, Refusal>, expected_role: &str, expected_path: &str) {
    match result.expect_err("expected a refusal") {
        Refusal::Forbidden { role, path, .. } => {
            assert_eq!(role, expected_role);
            assert_eq!(path, expected_path);
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }
}

#[track_caller]
fn assert_invalid(
    result: Result<Accepted, Refusal>,
    expected_path: &str,
    field: Field,
    reason_fragment: &str,
) {
    match result.expect_err("expected a refusal") {
        Refusal::Invalid { path, violation } => {
            assert_eq!(path, expected_path, "{violation}");
            assert_eq!(violation.field, field, "{violation}");
            assert!(
                violation.reason.contains(reason_fragment),
                "the reason {:?} should mention {reason_fragment:?}",
                violation.reason
            );
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// Expects a record created under a key another change holds.
fn assert_key_taken(result: Result<Accepted, Refusal>, expected_path: &str, reason_fragment: &str) {
    match result.expect_err("expected a refusal") {
        Refusal::KeyTaken { path, reason } => {
            assert_eq!(path, expected_path, "{reason}");
            assert!(reason.contains(reason_fragment), "{reason}");
        }
        other => panic!("expected KeyTaken, got {other:?}"),
    }
}

/// The server's item document with attempt `a1` from the postman accepted and applied, and the
/// postman's phone that recorded it.
fn item_with_accepted_attempt() -> Result<(Automerge, Automerge), Box<dyn Error>> {
    let server = fixtures::item_doc(PLAIN_ITEM, POINT)?;
    let mut phone = fork_of(&server);
    operations::record_attempt(&mut phone, "a1", &attempt())?;
    let id = item_id(PLAIN_ITEM);
    let accepted = assert_accepted(validate(&id, &server, &phone, &postman_for(&[&id])));
    Ok((accepted.doc, phone))
}

/// The server's delivery-point document with correction `c1` from the postman applied.
fn point_with_correction() -> Result<Automerge, Box<dyn Error>> {
    let server = fixtures::delivery_point_doc(POINT)?;
    let mut phone = fork_of(&server);
    let correction = fixtures::number_correction(DEVICE, POSTMAN);
    operations::propose_correction(&mut phone, "c1", &correction)?;
    let id = point_id(POINT);
    Ok(assert_accepted(validate(&id, &server, &phone, &postman_for(&[&id]))).doc)
}

fn prefs_safe_place(place: &str) -> Preferences {
    Preferences {
        safe_place: Some(place.into()),
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Attempts
// ---------------------------------------------------------------------------------------------

#[test]
fn postman_attempt_is_accepted() -> TestResult {
    let server = fixtures::item_doc(PLAIN_ITEM, POINT)?;
    let mut phone = fork_of(&server);
    let hash = operations::record_attempt(&mut phone, "a1", &attempt())?;
    assert!(hash.is_some());
    let id = item_id(PLAIN_ITEM);

    let accepted = assert_accepted(validate(&id, &server, &phone, &postman_for(&[&id])));

    assert_eq!(accepted.changes.len(), 1);
    assert_eq!(Some(accepted.changes[0].hash()), hash);
    let item = operations::read_item(&accepted.doc)?;
    assert_eq!(item.attempts.get("a1"), Some(&attempt()));
    assert_eq!(item.attempts.len(), 1);
    // The record as checked is handed on, equal to what the document holds, with the change
    // that wrote it.
    let written = Touched::Entry("attempts", "a1".into());
    assert_eq!(accepted.written, vec![written.clone()]);
    assert_eq!(
        accepted.records.get(&written),
        Some(&Checked {
            record: CheckedRecord::Attempt(attempt()),
            change: accepted.changes[0].hash(),
            signer: None,
        })
    );
    assert_eq!(accepted.records.len(), 1);
    Ok(())
}

#[test]
fn customer_sending_an_attempt_is_forbidden() -> TestResult {
    let server = fixtures::item_doc(PLAIN_ITEM, POINT)?;
    let mut phone = fork_of(&server);
    let hash = operations::record_attempt(&mut phone, "a1", &attempt())?;
    let id = item_id(PLAIN_ITEM);

    let refusal = validate(&id, &server, &phone, &customer_for(&[&id])).expect_err("refused");

    let Refusal::Forbidden { change, role, path } = refusal else {
        panic!("expected Forbidden, got {refusal:?}");
    };
    assert_eq!(Some(change), hash);
    assert_eq!(role, "customer");
    assert_eq!(path, "attempts/a1");
    Ok(())
}

#[test]
fn back_office_writing_an_attempt_is_forbidden() -> TestResult {
    let server = fixtures::item_doc(PLAIN_ITEM, POINT)?;
    let mut office = fork_of(&server);
    operations::record_attempt(&mut office, "a1", &attempt())?;
    let id = item_id(PLAIN_ITEM);
    assert_forbidden(
        validate(&id, &server, &office, &back_office()),
        "back_office",
        "attempts/a1",
    );
    Ok(())
}

#[test]
fn attempt_from_another_device_than_the_token_is_invalid() -> TestResult {
    let server = fixtures::item_doc(PLAIN_ITEM, POINT)?;
    let mut phone = fork_of(&server);
    operations::record_attempt(&mut phone, "a1", &attempt())?;
    let id = item_id(PLAIN_ITEM);
    let sender = Sender {
        device: Some("device-2".into()),
        ..postman_for(&[&id])
    };
    assert_invalid(
        validate(&id, &server, &phone, &sender),
        "attempts/a1",
        Field::Device,
        "device of the token",
    );
    // A token without a device cannot record attempts either.
    let sender = Sender {
        device: None,
        ..postman_for(&[&id])
    };
    assert_invalid(
        validate(&id, &server, &phone, &sender),
        "attempts/a1",
        Field::Device,
        "device of the token",
    );
    Ok(())
}

/// A new record is read from the operations of the change that made it only when they alone
/// wrote it: a second change of the same batch that rewrites one of its fields, a field written
/// twice in one change, or an element inserted before another of the record's own, is read in
/// the merged document, and checked there.
#[test]
fn a_new_record_rewritten_within_its_own_batch_is_checked_as_merged() -> TestResult {
    let server = fixtures::item_doc(PLAIN_ITEM, POINT)?;
    let id = item_id(PLAIN_ITEM);
    let sender = postman_for(&[&id]);

    // A second change puts another device into the attempt the first change made.
    let mut two_changes = fork_of(&server);
    operations::record_attempt(&mut two_changes, "a1", &attempt())?;
    let record = obj_at(&two_changes, &["attempts", "a1"])?;
    raw(&mut two_changes, |tx| tx.put(&record, "device", "device-2"))?;
    // One change makes the attempt and then writes its device a second time.
    let mut one_change = fork_of(&server);
    raw(&mut one_change, |tx| {
        let attempts = obj_at_in(tx, &ROOT, "attempts")?;
        autosurgeon::reconcile_prop(tx, &attempts, "a1", attempt())?;
        let record = obj_at_in(tx, &attempts, "a1")?;
        tx.put(&record, "device", "device-2")?;
        Ok::<_, Box<dyn Error>>(())
    })?;
    for (phone, changes) in [(two_changes, 2), (one_change, 1)] {
        assert_eq!(new_changes(&phone, &server).len(), changes);
        assert_invalid(
            validate(&id, &server, &phone, &sender),
            "attempts/a1",
            Field::Device,
            "device of the token",
        );
    }

    // One change makes the attempt with one proof, then inserts a second proof at the head of
    // the list: the record checked and handed on has them in the merged order.
    let mut phone = fork_of(&server);
    let second = "b".repeat(64);
    raw(&mut phone, |tx| {
        let attempts = obj_at_in(tx, &ROOT, "attempts")?;
        autosurgeon::reconcile_prop(tx, &attempts, "a1", attempt())?;
        let record = obj_at_in(tx, &attempts, "a1")?;
        let proofs = match tx.get(&record, "proofs")? {
            Some((Value::Object(ObjType::List), id)) => id,
            other => return Err(format!("no proofs list: {other:?}").into()),
        };
        let proof = tx.insert_object(&proofs, 0, ObjType::Map)?;
        tx.put(&proof, "kind", "photo")?;
        tx.put(&proof, "sha256", second.as_str())?;
        Ok::<_, Box<dyn Error>>(())
    })?;
    assert_eq!(new_changes(&phone, &server).len(), 1);
    let accepted = assert_accepted(validate(&id, &server, &phone, &sender));
    let Some(Checked {
        record: CheckedRecord::Attempt(checked),
        ..
    }) = accepted
        .records
        .get(&Touched::Entry("attempts", "a1".into()))
    else {
        panic!("the attempt's record: {:?}", accepted.records);
    };
    let sha256: Vec<&str> = checked.proofs.iter().map(|p| p.sha256.as_str()).collect();
    assert_eq!(
        sha256,
        [second.as_str(), attempt().proofs[0].sha256.as_str()]
    );
    Ok(())
}

#[test]
fn attempt_in_another_postmans_name_is_invalid() -> TestResult {
    let server = fixtures::item_doc(PLAIN_ITEM, POINT)?;
    let mut phone = fork_of(&server);
    operations::record_attempt(&mut phone, "a1", &attempt())?;
    let id = item_id(PLAIN_ITEM);
    let sender = Sender {
        principal: "postman-2".into(),
        ..postman_for(&[&id])
    };
    assert_invalid(
        validate(&id, &server, &phone, &sender),
        "attempts/a1",
        Field::Postman,
        "postman of the token",
    );
    Ok(())
}

#[test]
fn document_outside_the_scope_is_refused() -> TestResult {
    let server = fixtures::item_doc(PLAIN_ITEM, POINT)?;
    let mut phone = fork_of(&server);
    operations::record_attempt(&mut phone, "a1", &attempt())?;
    let id = item_id(PLAIN_ITEM);
    let sender = postman_for(&[&item_id(8), &point_id(POINT)]);
    assert_eq!(
        validate(&id, &server, &phone, &sender).expect_err("refused"),
        Refusal::OutOfScope(id)
    );
    Ok(())
}

#[test]
fn empty_scope_refuses_everything() -> TestResult {
    let server = fixtures::item_doc(PLAIN_ITEM, POINT)?;
    let id = item_id(PLAIN_ITEM);
    let sender = postman_for(&[]);
    assert_eq!(
        validate_changes(&id, &server, Vec::new(), &sender).expect_err("refused"),
        Refusal::OutOfScope(id)
    );
    Ok(())
}

#[test]
fn raw_attempt_with_an_impossible_latitude_is_invalid() -> TestResult {
    let server = fixtures::item_doc(PLAIN_ITEM, POINT)?;
    let mut phone = fork_of(&server);
    let bad = attempt_with(|a| {
        if let Some(position) = &mut a.position {
            position.lat = 120.0;
        }
    });
    write_raw(&mut phone, "attempts", "a1", &bad)?;
    let id = item_id(PLAIN_ITEM);
    assert_invalid(
        validate(&id, &server, &phone, &postman_for(&[&id])),
        "attempts/a1",
        Field::Position,
        "latitude 120",
    );
    Ok(())
}

#[test]
fn raw_safe_place_delivery_of_a_signed_item_is_invalid() -> TestResult {
    let server = fixtures::item_doc(SIGNED_ITEM, POINT)?;
    let mut phone = fork_of(&server);
    let left = attempt_with(|a| {
        a.outcome = Outcome::DeliveredToSafePlace {
            place: "abri de jardin".into(),
        };
        a.notice = None;
    });
    // The honest path refuses it on the phone already.
    assert!(matches!(
        operations::record_attempt(&mut phone, "a1", &left),
        Err(OperationError::Invalid(_))
    ));
    write_raw(&mut phone, "attempts", "a1", &left)?;
    let id = item_id(SIGNED_ITEM);
    assert_invalid(
        validate(&id, &server, &phone, &postman_for(&[&id])),
        "attempts/a1",
        Field::Outcome,
        "a signature",
    );
    Ok(())
}

#[test]
fn raw_absence_without_notice_is_invalid() -> TestResult {
    let server = fixtures::item_doc(PLAIN_ITEM, POINT)?;
    let mut phone = fork_of(&server);
    write_raw(
        &mut phone,
        "attempts",
        "a1",
        &attempt_with(|a| a.notice = None),
    )?;
    let id = item_id(PLAIN_ITEM);
    assert_invalid(
        validate(&id, &server, &phone, &postman_for(&[&id])),
        "attempts/a1",
        Field::NoticeNumber,
        "notice is required",
    );
    Ok(())
}

#[test]
fn raw_attempt_under_a_malformed_key_is_invalid() -> TestResult {
    let server = fixtures::item_doc(PLAIN_ITEM, POINT)?;
    let mut phone = fork_of(&server);
    write_raw(&mut phone, "attempts", "a 1", &attempt())?;
    let id = item_id(PLAIN_ITEM);
    assert_invalid(
        validate(&id, &server, &phone, &postman_for(&[&id])),
        "attempts/a 1",
        Field::EntryId,
        "1 to 64",
    );
    Ok(())
}

#[test]
fn raw_attempt_that_does_not_follow_the_schema_is_invalid() -> TestResult {
    let server = fixtures::item_doc(PLAIN_ITEM, POINT)?;
    let mut phone = fork_of(&server);
    let attempts = obj_at(&phone, &["attempts"])?;
    raw(&mut phone, |tx| tx.put(&attempts, "a1", "delivered"))?;
    let id = item_id(PLAIN_ITEM);
    assert_invalid(
        validate(&id, &server, &phone, &postman_for(&[&id])),
        "attempts/a1",
        Field::Path,
        "schema",
    );
    Ok(())
}

#[test]
fn rewriting_a_stored_attempt_is_invalid() -> TestResult {
    let (server, mut phone) = item_with_accepted_attempt()?;
    let a1 = obj_at(&phone, &["attempts", "a1"])?;
    raw(&mut phone, |tx| tx.put(&a1, "outcome", "refused"))?;
    let id = item_id(PLAIN_ITEM);

    let changes = new_changes(&phone, &server);
    assert_eq!(changes.len(), 1, "only the rewrite is new to the server");
    assert_invalid(
        validate_changes(&id, &server, changes, &postman_for(&[&id])),
        "attempts/a1",
        Field::Path,
        "exists already",
    );
    Ok(())
}

/// Reconciled over the stored one, the replacement edits it in place: invalid. (A new map made
/// under the key is a collision, as `a_record_created_under_a_stored_key_collides_with_it`.)
#[test]
fn replacing_a_stored_attempt_whole_is_invalid() -> TestResult {
    let (server, mut phone) = item_with_accepted_attempt()?;
    let replacement = attempt_with(|a| {
        a.outcome = Outcome::Refused;
        a.notice = None;
    });
    write_raw(&mut phone, "attempts", "a1", &replacement)?;
    let id = item_id(PLAIN_ITEM);
    assert_invalid(
        validate(&id, &server, &phone, &postman_for(&[&id])),
        "attempts/a1",
        Field::Path,
        "exists already",
    );
    Ok(())
}

/// Another change creating a record under a stored record's key (as a change forged from the
/// phone's own does) collides with it: the sender must write its record again under a fresh
/// key.
#[test]
fn a_record_created_under_a_stored_key_collides_with_it() -> TestResult {
    let (server, _) = item_with_accepted_attempt()?;
    // Concurrently with the stored `a1`, from the document before it: a new record, same key.
    let mut concurrent = fork_of(&fixtures::item_doc(PLAIN_ITEM, POINT)?);
    let refused = attempt_with(|a| a.outcome = Outcome::Refused);
    operations::record_attempt(&mut concurrent, "a1", &refused)?;
    let mut device = server.fork();
    device.merge(&mut concurrent)?;
    let id = item_id(PLAIN_ITEM);
    assert_key_taken(
        validate(&id, &server, &device, &postman_for(&[&id])),
        "attempts/a1",
        "exists already",
    );
    Ok(())
}

#[test]
fn deleting_a_stored_attempt_is_invalid() -> TestResult {
    let (server, mut phone) = item_with_accepted_attempt()?;
    let attempts = obj_at(&phone, &["attempts"])?;
    raw(&mut phone, |tx| tx.delete(&attempts, "a1"))?;
    let id = item_id(PLAIN_ITEM);
    // The postman may write under `attempts`, so this is not Forbidden: it is a record that
    // exists already.
    assert_invalid(
        validate(&id, &server, &phone, &postman_for(&[&id])),
        "attempts/a1",
        Field::Path,
        "exists already",
    );
    Ok(())
}

#[test]
fn recording_the_same_attempt_again_changes_nothing_and_is_accepted() -> TestResult {
    let (server, mut phone) = item_with_accepted_attempt()?;
    assert_eq!(
        operations::record_attempt(&mut phone, "a1", &attempt())?,
        None
    );
    let id = item_id(PLAIN_ITEM);
    let accepted = assert_accepted(validate(&id, &server, &phone, &postman_for(&[&id])));
    assert!(accepted.changes.is_empty());
    Ok(())
}

#[test]
fn a_second_attempt_next_to_a_stored_one_is_accepted() -> TestResult {
    let (server, mut phone) = item_with_accepted_attempt()?;
    let delivered = fixtures::delivered_attempt(DEVICE, POSTMAN, PLAIN_ITEM);
    operations::record_attempt(&mut phone, "a2", &delivered)?;
    let id = item_id(PLAIN_ITEM);
    let accepted = assert_accepted(validate(&id, &server, &phone, &postman_for(&[&id])));
    let item = operations::read_item(&accepted.doc)?;
    assert_eq!(item.attempts.len(), 2);
    assert!(item.is_delivered());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Paths a role may not write
// ---------------------------------------------------------------------------------------------

#[test]
fn postman_writing_a_customer_choice_is_forbidden() -> TestResult {
    let server = fixtures::item_doc(PLAIN_ITEM, POINT)?;
    let mut phone = fork_of(&server);
    let choice = fixtures::redeliver_choice(POSTMAN, "2026-12-01");
    operations::choose_for_item(&mut phone, "c1", &choice)?;
    let id = item_id(PLAIN_ITEM);
    assert_forbidden(
        validate(&id, &server, &phone, &postman_for(&[&id])),
        "postman",
        "choices/c1",
    );
    Ok(())
}

#[test]
fn postman_writing_preferences_is_forbidden() -> TestResult {
    let server = fixtures::delivery_point_doc(POINT)?;
    let mut phone = fork_of(&server);
    operations::set_preferences(&mut phone, &prefs_safe_place("abri de jardin"))?;
    let id = point_id(POINT);
    assert_forbidden(
        validate(&id, &server, &phone, &postman_for(&[&id])),
        "postman",
        "preferences/safe_place",
    );
    Ok(())
}

#[test]
fn customer_writing_the_reference_is_forbidden() -> TestResult {
    let server = fixtures::delivery_point_doc(POINT)?;
    let mut browser = fork_of(&server);
    let reference = ReferenceAddress {
        building: Some("BAT C".into()),
        ..fixtures::reference_address(POINT)
    };
    operations::publish_reference(&mut browser, &reference, &AccessNotes::default())?;
    let id = point_id(POINT);
    // The first field written is the building: the unchanged ones are not rewritten.
    assert_forbidden(
        validate(&id, &server, &browser, &customer_for(&[&id])),
        "customer",
        "reference/building",
    );
    Ok(())
}

#[test]
fn customer_writing_a_single_reference_field_is_forbidden() -> TestResult {
    let server = fixtures::delivery_point_doc(POINT)?;
    let mut browser = fork_of(&server);
    let reference = obj_at(&browser, &["reference"])?;
    raw(&mut browser, |tx| tx.put(&reference, "city", "LYON"))?;
    let id = point_id(POINT);
    assert_forbidden(
        validate(&id, &server, &browser, &customer_for(&[&id])),
        "customer",
        "reference/city",
    );
    Ok(())
}

#[test]
fn customer_writing_requirements_is_forbidden() -> TestResult {
    let server = fixtures::item_doc(SIGNED_ITEM, POINT)?;
    let mut browser = fork_of(&server);
    operations::set_requirements(&mut browser, &Requirements::default())?;
    let id = item_id(SIGNED_ITEM);
    assert_forbidden(
        validate(&id, &server, &browser, &customer_for(&[&id])),
        "customer",
        "requirements/signature",
    );
    Ok(())
}

#[test]
fn raw_put_at_the_root_is_forbidden() -> TestResult {
    let server = fixtures::item_doc(PLAIN_ITEM, POINT)?;
    let mut phone = fork_of(&server);
    raw(&mut phone, |tx| tx.put(ROOT, "attempts", "x"))?;
    let id = item_id(PLAIN_ITEM);
    assert_forbidden(
        validate(&id, &server, &phone, &postman_for(&[&id])),
        "postman",
        "attempts",
    );
    Ok(())
}

#[test]
fn back_office_replacing_a_root_map_later_is_forbidden() -> TestResult {
    let server = fixtures::delivery_point_doc(POINT)?;
    let mut office = fork_of(&server);
    raw(&mut office, |tx| {
        tx.put_object(ROOT, "corrections", ObjType::Map).map(|_| ())
    })?;
    let id = point_id(POINT);
    assert_forbidden(
        validate(&id, &server, &office, &back_office()),
        "back_office",
        "corrections",
    );
    Ok(())
}

#[test]
fn text_object_inside_a_new_attempt_is_forbidden() -> TestResult {
    let server = fixtures::item_doc(PLAIN_ITEM, POINT)?;
    let mut phone = fork_of(&server);
    let attempts = obj_at(&phone, &["attempts"])?;
    raw(&mut phone, |tx| {
        autosurgeon::reconcile_prop(&mut *tx, &attempts, "a1", attempt())?;
        let a1 = obj_at_in(tx, &attempts, "a1")?;
        tx.put_object(&a1, "comment", ObjType::Text)?;
        Ok::<_, Box<dyn Error>>(())
    })?;
    let id = item_id(PLAIN_ITEM);
    assert_forbidden(
        validate(&id, &server, &phone, &postman_for(&[&id])),
        "postman",
        "attempts/a1/comment",
    );
    Ok(())
}

#[test]
fn counter_increment_inside_a_new_attempt_is_forbidden() -> TestResult {
    let server = fixtures::item_doc(PLAIN_ITEM, POINT)?;
    let mut phone = fork_of(&server);
    let attempts = obj_at(&phone, &["attempts"])?;
    raw(&mut phone, |tx| {
        autosurgeon::reconcile_prop(&mut *tx, &attempts, "a1", attempt())?;
        let a1 = obj_at_in(tx, &attempts, "a1")?;
        tx.put(&a1, "tries", ScalarValue::counter(0))?;
        tx.increment(&a1, "tries", 1)?;
        Ok::<_, Box<dyn Error>>(())
    })?;
    let id = item_id(PLAIN_ITEM);
    assert_forbidden(
        validate(&id, &server, &phone, &postman_for(&[&id])),
        "postman",
        "attempts/a1/tries",
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Customers
// ---------------------------------------------------------------------------------------------

#[test]
fn customer_choice_in_own_name_is_accepted() -> TestResult {
    let server = fixtures::item_doc(PLAIN_ITEM, POINT)?;
    let mut browser = fork_of(&server);
    let choice = fixtures::redeliver_choice(CUSTOMER, "2026-12-01");
    operations::choose_for_item(&mut browser, "c1", &choice)?;
    let id = item_id(PLAIN_ITEM);
    let accepted = assert_accepted(validate(&id, &server, &browser, &customer_for(&[&id])));
    let item = operations::read_item(&accepted.doc)?;
    assert_eq!(item.choices.get("c1"), Some(&choice));
    Ok(())
}

#[test]
fn customer_choice_in_another_customers_name_is_invalid() -> TestResult {
    let server = fixtures::item_doc(PLAIN_ITEM, POINT)?;
    let mut browser = fork_of(&server);
    let choice = fixtures::redeliver_choice("customer-2", "2026-12-01");
    operations::choose_for_item(&mut browser, "c1", &choice)?;
    let id = item_id(PLAIN_ITEM);
    assert_invalid(
        validate(&id, &server, &browser, &customer_for(&[&id])),
        "choices/c1",
        Field::Customer,
        "own name",
    );
    Ok(())
}

#[test]
fn raw_choice_with_an_impossible_date_is_invalid() -> TestResult {
    let server = fixtures::item_doc(PLAIN_ITEM, POINT)?;
    let mut browser = fork_of(&server);
    let choice = fixtures::redeliver_choice(CUSTOMER, "2027-02-29");
    write_raw(&mut browser, "choices", "c1", &choice)?;
    let id = item_id(PLAIN_ITEM);
    assert_invalid(
        validate(&id, &server, &browser, &customer_for(&[&id])),
        "choices/c1",
        Field::Date,
        "2027-02-29",
    );
    Ok(())
}

#[test]
fn customer_preferences_are_accepted() -> TestResult {
    let server = fixtures::delivery_point_doc(POINT)?;
    let mut browser = fork_of(&server);
    let prefs = Preferences {
        safe_place: Some("abri de jardin".into()),
        preferred_pickup_point: Some("relais-75011-04".into()),
        never_to_neighbour: true,
        ..Default::default()
    };
    operations::set_preferences(&mut browser, &prefs)?;
    let id = point_id(POINT);
    let accepted = assert_accepted(validate(&id, &server, &browser, &customer_for(&[&id])));
    assert_eq!(accepted.changes.len(), 1);
    assert_eq!(
        operations::read_delivery_point(&accepted.doc)?.preferences,
        prefs
    );
    Ok(())
}

#[test]
fn raw_preferences_with_a_long_safe_place_are_invalid() -> TestResult {
    let server = fixtures::delivery_point_doc(POINT)?;
    let mut browser = fork_of(&server);
    write_raw(
        &mut browser,
        "",
        "preferences",
        &prefs_safe_place(&"s".repeat(121)),
    )?;
    let id = point_id(POINT);
    assert_invalid(
        validate(&id, &server, &browser, &customer_for(&[&id])),
        "preferences",
        Field::SafePlace,
        "121 characters",
    );
    Ok(())
}

#[test]
fn customer_writing_a_correction_is_forbidden() -> TestResult {
    let server = fixtures::delivery_point_doc(POINT)?;
    let mut browser = fork_of(&server);
    let correction = fixtures::number_correction(DEVICE, CUSTOMER);
    operations::propose_correction(&mut browser, "c1", &correction)?;
    let id = point_id(POINT);
    assert_forbidden(
        validate(&id, &server, &browser, &customer_for(&[&id])),
        "customer",
        "corrections/c1",
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Corrections, reviews and reference data
// ---------------------------------------------------------------------------------------------

#[test]
fn postman_correction_is_accepted() -> TestResult {
    let server = fixtures::delivery_point_doc(POINT)?;
    let mut phone = fork_of(&server);
    let correction = fixtures::number_correction(DEVICE, POSTMAN);
    operations::propose_correction(&mut phone, "c1", &correction)?;
    let id = point_id(POINT);
    let accepted = assert_accepted(validate(&id, &server, &phone, &postman_for(&[&id])));
    let point = operations::read_delivery_point(&accepted.doc)?;
    assert_eq!(point.corrections.get("c1"), Some(&correction));
    Ok(())
}

#[test]
fn raw_empty_correction_is_invalid() -> TestResult {
    let server = fixtures::delivery_point_doc(POINT)?;
    let mut phone = fork_of(&server);
    let mut correction = fixtures::number_correction(DEVICE, POSTMAN);
    correction.proposed = ProposedCorrection::default();
    write_raw(&mut phone, "corrections", "c1", &correction)?;
    let id = point_id(POINT);
    assert_invalid(
        validate(&id, &server, &phone, &postman_for(&[&id])),
        "corrections/c1",
        Field::Correction,
        "no change",
    );
    Ok(())
}

#[test]
fn correction_from_another_device_is_invalid() -> TestResult {
    let server = fixtures::delivery_point_doc(POINT)?;
    let mut phone = fork_of(&server);
    let correction = fixtures::number_correction("device-2", POSTMAN);
    operations::propose_correction(&mut phone, "c1", &correction)?;
    let id = point_id(POINT);
    assert_invalid(
        validate(&id, &server, &phone, &postman_for(&[&id])),
        "corrections/c1",
        Field::Device,
        "device of the token",
    );
    Ok(())
}

#[test]
fn back_office_review_is_accepted() -> TestResult {
    let server = point_with_correction()?;
    let mut office = fork_of(&server);
    let review = Review {
        decision: ReviewDecision::Approved,
        by: STAFF.into(),
        reason: String::new(),
        at_ms: MORNING_MS + 86_400_000,
    };
    operations::review_correction(&mut office, "c1", &review)?;
    let id = point_id(POINT);
    let accepted = assert_accepted(validate(&id, &server, &office, &back_office()));
    let point = operations::read_delivery_point(&accepted.doc)?;
    assert_eq!(point.reviews.get("c1"), Some(&review));
    Ok(())
}

#[test]
fn raw_rejection_without_reason_is_invalid() -> TestResult {
    let server = point_with_correction()?;
    let mut office = fork_of(&server);
    let review = Review {
        decision: ReviewDecision::Rejected,
        by: STAFF.into(),
        reason: String::new(),
        at_ms: MORNING_MS + 86_400_000,
    };
    write_raw(&mut office, "reviews", "c1", &review)?;
    let id = point_id(POINT);
    assert_invalid(
        validate(&id, &server, &office, &back_office()),
        "reviews/c1",
        Field::ReviewReason,
        "needs a reason",
    );
    Ok(())
}

#[test]
fn postman_writing_a_review_is_forbidden() -> TestResult {
    let server = point_with_correction()?;
    let mut phone = fork_of(&server);
    let review = Review {
        decision: ReviewDecision::Approved,
        by: POSTMAN.into(),
        reason: String::new(),
        at_ms: MORNING_MS,
    };
    operations::review_correction(&mut phone, "c1", &review)?;
    let id = point_id(POINT);
    assert_forbidden(
        validate(&id, &server, &phone, &postman_for(&[&id])),
        "postman",
        "reviews/c1",
    );
    Ok(())
}

#[test]
fn back_office_publishing_the_reference_is_accepted() -> TestResult {
    let server = fixtures::delivery_point_doc(POINT)?;
    let mut office = fork_of(&server);
    let reference = ReferenceAddress {
        lines: vec![
            "M OU MME CLIENT 1".into(),
            "BAT C".into(),
            "35 RUE DE LA ROQUETTE".into(),
            "75011 PARIS".into(),
        ],
        house_number: "35".into(),
        building: Some("BAT C".into()),
        version: 2,
        ..fixtures::reference_address(POINT)
    };
    let access = AccessNotes {
        door_code: Some("4512A".into()),
        floor: Some("2".into()),
        ..Default::default()
    };
    operations::publish_reference(&mut office, &reference, &access)?;
    let id = point_id(POINT);
    let accepted = assert_accepted(validate(&id, &server, &office, &back_office()));
    let point = operations::read_delivery_point(&accepted.doc)?;
    assert_eq!(point.reference, reference);
    assert_eq!(point.access, access);
    Ok(())
}

#[test]
fn raw_reference_with_seven_lines_is_invalid() -> TestResult {
    let server = fixtures::delivery_point_doc(POINT)?;
    let mut office = fork_of(&server);
    let reference = ReferenceAddress {
        lines: vec!["LIGNE".into(); 7],
        ..fixtures::reference_address(POINT)
    };
    write_raw(&mut office, "", "reference", &reference)?;
    let id = point_id(POINT);
    assert_invalid(
        validate(&id, &server, &office, &back_office()),
        "reference",
        Field::AddressLines,
        "1 to 6 lines",
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Causality and concurrency
// ---------------------------------------------------------------------------------------------

#[test]
fn change_with_a_missing_dependency_is_refused() -> TestResult {
    let server = fixtures::item_doc(PLAIN_ITEM, POINT)?;
    let mut phone = fork_of(&server);
    operations::record_attempt(&mut phone, "a1", &attempt())?;
    operations::record_attempt(
        &mut phone,
        "a2",
        &attempt_with(|a| a.recorded_at_ms += 60_000),
    )?;
    let mut changes = new_changes(&phone, &server);
    assert_eq!(changes.len(), 2);
    let second = changes.remove(1);
    let id = item_id(PLAIN_ITEM);
    assert_eq!(
        validate_changes(&id, &server, vec![second], &postman_for(&[&id])).expect_err("refused"),
        Refusal::MissingDependencies(1)
    );
    Ok(())
}

#[test]
fn both_changes_in_order_are_accepted_where_the_second_alone_is_not() -> TestResult {
    let server = fixtures::item_doc(PLAIN_ITEM, POINT)?;
    let mut phone = fork_of(&server);
    operations::record_attempt(&mut phone, "a1", &attempt())?;
    operations::record_attempt(
        &mut phone,
        "a2",
        &attempt_with(|a| a.recorded_at_ms += 60_000),
    )?;
    let id = item_id(PLAIN_ITEM);
    let accepted = assert_accepted(validate(&id, &server, &phone, &postman_for(&[&id])));
    assert_eq!(accepted.changes.len(), 2);
    assert_eq!(operations::read_item(&accepted.doc)?.attempts.len(), 2);
    Ok(())
}

#[test]
fn concurrent_preference_and_correction_both_stand() -> TestResult {
    let server = fixtures::delivery_point_doc(POINT)?;
    let id = point_id(POINT);
    let mut browser = fork_of(&server);
    let mut phone = fork_of(&server);
    let prefs = prefs_safe_place("abri de jardin");
    let correction = fixtures::number_correction(DEVICE, POSTMAN);
    operations::set_preferences(&mut browser, &prefs)?;
    operations::propose_correction(&mut phone, "c1", &correction)?;

    let after_customer =
        assert_accepted(validate(&id, &server, &browser, &customer_for(&[&id]))).doc;
    // The phone's change was made on the older state; it is validated against the newer one.
    let merged = assert_accepted(validate(&id, &after_customer, &phone, &postman_for(&[&id]))).doc;

    let point = operations::read_delivery_point(&merged)?;
    assert_eq!(point.preferences, prefs);
    assert_eq!(point.corrections.get("c1"), Some(&correction));
    Ok(())
}

#[test]
fn concurrent_preference_fields_from_two_devices_both_stand() -> TestResult {
    let server = fixtures::delivery_point_doc(POINT)?;
    let id = point_id(POINT);
    let sender = customer_for(&[&id]);
    let mut laptop = fork_of(&server);
    let mut phone = fork_of(&server);
    operations::set_preferences(&mut laptop, &prefs_safe_place("abri de jardin"))?;
    let pickup = Preferences {
        preferred_pickup_point: Some("relais-75011-04".into()),
        ..Default::default()
    };
    operations::set_preferences(&mut phone, &pickup)?;

    let first = assert_accepted(validate(&id, &server, &laptop, &sender)).doc;
    let both = assert_accepted(validate(&id, &first, &phone, &sender)).doc;

    let prefs = operations::read_delivery_point(&both)?.preferences;
    assert_eq!(prefs.safe_place.as_deref(), Some("abri de jardin"));
    assert_eq!(
        prefs.preferred_pickup_point.as_deref(),
        Some("relais-75011-04")
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Honest operations: whatever an operation writes, its owner may send
// ---------------------------------------------------------------------------------------------

/// The server's copy of one document, to which each operation is applied as the party that owns
/// it would: on a fork, then sent and validated.
struct Server {
    id: DocId,
    doc: Automerge,
}

impl Server {
    /// Performs `operation` on a fresh copy as `sender`, checks the server accepts exactly the
    /// change it made, and keeps the result.
    #[track_caller]
    fn perform(
        &mut self,
        sender: &Sender,
        operation: impl FnOnce(&mut Automerge) -> Result<Option<automerge::ChangeHash>, OperationError>,
    ) -> TestResult {
        let mut device = fork_of(&self.doc);
        let hash = operation(&mut device)?.ok_or("the operation wrote nothing")?;
        let accepted = assert_accepted(validate(&self.id, &self.doc, &device, sender));
        assert_eq!(
            accepted
                .changes
                .iter()
                .map(Change::hash)
                .collect::<Vec<_>>(),
            vec![hash]
        );
        self.doc = accepted.doc;
        Ok(())
    }
}

/// A server document created through `create` by the back office, validated like any change.
#[track_caller]
fn created(id: DocId, doc: Automerge) -> Server {
    let accepted = assert_accepted(validate_changes(
        &id,
        &Automerge::new(),
        doc.get_changes(&[]),
        &back_office(),
    ));
    assert_eq!(accepted.changes.len(), 1);
    Server {
        id,
        doc: accepted.doc,
    }
}

fn every_outcome() -> Vec<Outcome> {
    vec![
        Outcome::DeliveredToAddressee,
        Outcome::DeliveredToNeighbour {
            neighbour: "Mme Martin, 2e gauche".into(),
        },
        Outcome::DeliveredToSafePlace {
            place: "abri de jardin".into(),
        },
        Outcome::DeliveredToMailbox,
        Outcome::DeliveredToPickupPoint {
            pickup_point: "relais-75011-04".into(),
        },
        Outcome::AddresseeAbsent,
        Outcome::Refused,
        Outcome::AddressIncorrect,
        Outcome::NoAccess,
        Outcome::Damaged,
        Outcome::Other {
            text: "chien agressif\ndans la cour".into(),
        },
    ]
}

fn every_choice() -> Vec<Choice> {
    vec![
        Choice::RedeliverOn {
            date: "2028-02-29".into(),
        },
        Choice::PickupPoint {
            pickup_point: "relais-75011-04".into(),
        },
        Choice::Neighbour {
            neighbour: "Mme Martin".into(),
        },
        Choice::SafePlace {
            place: "abri de jardin".into(),
        },
        Choice::Hold,
    ]
}

#[test]
fn every_item_operation_by_its_owner_is_accepted() -> TestResult {
    for n in [PLAIN_ITEM, SIGNED_ITEM] {
        let id = item_id(n);
        let doc = operations::new_item(
            ActorId::random(),
            &fixtures::s10(n),
            &fixtures::delivery_point_id(POINT),
            fixtures::requirements(n),
        )?;
        let mut server = created(id.clone(), doc);
        let postman = postman_for(&[&id]);
        let customer = customer_for(&[&id]);
        let requirements = fixtures::requirements(n);

        for (i, choice) in every_choice().into_iter().enumerate() {
            let choice = CustomerChoice {
                choice,
                made_at_ms: MORNING_MS + i64::try_from(i)? * 1_000,
                made_by: CUSTOMER.into(),
            };
            if rules::choice_allowed(&choice.choice, &requirements).is_err() {
                continue;
            }
            let key = format!("choice-{i}");
            server.perform(&customer, |doc| {
                operations::choose_for_item(doc, &key, &choice)
            })?;
        }
        let expected_choices = if requirements.needs_addressee_in_person() {
            3
        } else {
            5
        };
        assert_eq!(
            operations::read_item(&server.doc)?.choices.len(),
            expected_choices
        );

        server.perform(&back_office(), |doc| {
            operations::set_requirements(
                doc,
                &Requirements {
                    cash_on_delivery_cents: Some(4_990),
                    ..requirements.clone()
                },
            )
        })?;
        server.perform(&back_office(), |doc| {
            operations::set_requirements(doc, &requirements)
        })?;

        // Failures first: once delivered, the phone records nothing more in real life, but
        // the rules do not forbid it, so every outcome is tried.
        for (i, outcome) in every_outcome().into_iter().rev().enumerate() {
            if rules::outcome_allowed(&outcome, &requirements).is_err() {
                continue;
            }
            let attempt = honest_attempt(outcome, i)?;
            let key = format!("attempt-{i}");
            server.perform(&postman, |doc| {
                operations::record_attempt(doc, &key, &attempt)
            })?;
        }
        let expected_attempts = if requirements.needs_addressee_in_person() {
            8
        } else {
            11
        };
        assert_eq!(
            operations::read_item(&server.doc)?.attempts.len(),
            expected_attempts
        );
    }
    Ok(())
}

/// A valid attempt with `outcome`, recorded `i` minutes after the fixture's.
fn honest_attempt(outcome: Outcome, i: usize) -> Result<Attempt, Box<dyn Error>> {
    let notice = matches!(outcome, Outcome::AddresseeAbsent | Outcome::NoAccess).then(|| Notice {
        number: Some(format!("AV{i:06}")),
        waits_at: Some(WaitingPlace {
            kind: WaitingPlaceKind::PickupPoint,
            place_id: "relais-75011-04".into(),
            until: None,
        }),
    });
    let recorded_at_ms = MORNING_MS + i64::try_from(i)? * 60_000;
    Ok(Attempt {
        outcome,
        notice,
        recorded_at_ms,
        ..attempt()
    })
}

#[test]
fn every_delivery_point_operation_by_its_owner_is_accepted() -> TestResult {
    let id = point_id(POINT);
    let doc = operations::new_delivery_point(
        ActorId::random(),
        &fixtures::delivery_point_id(POINT),
        fixtures::reference_address(POINT),
        AccessNotes::default(),
    )?;
    let mut server = created(id.clone(), doc);
    let postman = postman_for(&[&id]);
    let customer = customer_for(&[&id]);
    let office = back_office();

    // Preferences: set all, change some, clear all.
    let all = Preferences {
        safe_place: Some("abri de jardin".into()),
        preferred_neighbour: Some("Mme Martin, 2e gauche".into()),
        preferred_pickup_point: Some("relais-75011-04".into()),
        never_to_neighbour: false,
    };
    let no_neighbour = Preferences {
        preferred_neighbour: None,
        never_to_neighbour: true,
        ..all.clone()
    };
    for prefs in [all, no_neighbour, Preferences::default()] {
        server.perform(&customer, |doc| operations::set_preferences(doc, &prefs))?;
        assert_eq!(
            operations::read_delivery_point(&server.doc)?.preferences,
            prefs
        );
    }

    // Corrections of every shape.
    let base = fixtures::number_correction(DEVICE, POSTMAN);
    let shapes = [
        base.proposed.clone(),
        ProposedCorrection {
            suffix: Some(HouseSuffix::Ter),
            ..Default::default()
        },
        ProposedCorrection {
            street: Some("RUE DE LA ROQUETTE".into()),
            building: Some("BAT C".into()),
            floor: Some("3e".into()),
            mailbox_position: Some("hall, à gauche".into()),
            pin: Some(GeoPoint {
                lat: 48.8571,
                lon: 2.3725,
            }),
            ..Default::default()
        },
    ];
    for (i, proposed) in shapes.into_iter().enumerate() {
        let correction = Correction {
            proposed,
            ..base.clone()
        };
        let key = format!("correction-{i}");
        server.perform(&postman, |doc| {
            operations::propose_correction(doc, &key, &correction)
        })?;
    }

    // Reviews, including a revised one: reviews, unlike records, may be changed.
    let review = |decision, reason: &str| Review {
        decision,
        by: STAFF.into(),
        reason: reason.into(),
        at_ms: MORNING_MS + 86_400_000,
    };
    let decisions = [
        ("correction-0", review(ReviewDecision::Approved, "")),
        (
            "correction-1",
            review(ReviewDecision::Rejected, "pas de ter ici"),
        ),
        ("correction-1", review(ReviewDecision::Approved, "vérifié")),
        ("correction-2", review(ReviewDecision::Rejected, "à revoir")),
    ];
    for (key, review) in decisions {
        server.perform(&office, |doc| {
            operations::review_correction(doc, key, &review)
        })?;
    }

    // Reference data: longer, shorter, without a pin, with a suffix.
    let long = ReferenceAddress {
        lines: vec![
            "M OU MME CLIENT 1".into(),
            "BAT C".into(),
            "ESCALIER 2".into(),
            "35 TER RUE DE LA ROQUETTE".into(),
            "CS 90001".into(),
            "75011 PARIS".into(),
        ],
        house_number: "35".into(),
        suffix: Some(HouseSuffix::Ter),
        building: Some("BAT C".into()),
        version: 2,
        ..fixtures::reference_address(POINT)
    };
    let short = ReferenceAddress {
        lines: vec!["35 TER RUE DE LA ROQUETTE".into(), "75011 PARIS".into()],
        pin: None,
        version: 3,
        ..long.clone()
    };
    let access = AccessNotes {
        door_code: Some("4512A".into()),
        floor: Some("3".into()),
        mailbox_position: Some("hall".into()),
        notes: Some("chien".into()),
    };
    for (reference, access) in [(long, access), (short, AccessNotes::default())] {
        server.perform(&office, |doc| {
            operations::publish_reference(doc, &reference, &access)
        })?;
        let point = operations::read_delivery_point(&server.doc)?;
        assert_eq!(point.reference, reference);
        assert_eq!(point.access, access);
    }

    let point = operations::read_delivery_point(&server.doc)?;
    assert_eq!(point.corrections.len(), 3);
    assert_eq!(point.reviews.len(), 3);
    assert_eq!(
        point.reviews.get("correction-1").map(|r| r.decision),
        Some(ReviewDecision::Approved)
    );
    Ok(())
}

#[test]
fn creating_a_document_is_for_the_back_office_only() -> TestResult {
    let id = item_id(PLAIN_ITEM);
    let doc = fixtures::item_doc(PLAIN_ITEM, POINT)?;
    for sender in [postman_for(&[&id]), customer_for(&[&id])] {
        let refusal = validate_changes(&id, &Automerge::new(), doc.get_changes(&[]), &sender)
            .expect_err("refused");
        let Refusal::Forbidden { role, path, .. } = refusal else {
            panic!("expected Forbidden, got {refusal:?}");
        };
        assert_eq!(role, sender.role.as_str());
        assert!(
            !path.is_empty() && !path.contains('/'),
            "a root key, not {path}"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Honest operations, with generated input: if the phone-side operation accepts it, so does
// the server.
// ---------------------------------------------------------------------------------------------

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 éèàç'-]{0,130}",
        "\\PC{0,130}",
        Just(String::new()),
        Just("é".repeat(120)),
    ]
}

fn any_outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::DeliveredToAddressee),
        any_text().prop_map(|neighbour| Outcome::DeliveredToNeighbour { neighbour }),
        any_text().prop_map(|place| Outcome::DeliveredToSafePlace { place }),
        Just(Outcome::DeliveredToMailbox),
        "[a-z0-9._@-]{0,66}"
            .prop_map(|pickup_point| Outcome::DeliveredToPickupPoint { pickup_point }),
        Just(Outcome::AddresseeAbsent),
        Just(Outcome::Refused),
        Just(Outcome::NoAccess),
        any_text().prop_map(|text| Outcome::Other { text }),
    ]
}

fn any_choice() -> impl Strategy<Value = Choice> {
    prop_oneof![
        "20[0-9]{2}-[01][0-9]-[0-3][0-9]".prop_map(|date| Choice::RedeliverOn { date }),
        "[a-z0-9._@-]{0,66}".prop_map(|pickup_point| Choice::PickupPoint { pickup_point }),
        any_text().prop_map(|neighbour| Choice::Neighbour { neighbour }),
        any_text().prop_map(|place| Choice::SafePlace { place }),
        Just(Choice::Hold),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_attempt_the_phone_records_is_accepted(
        outcome in any_outcome(),
        with_notice in any::<bool>(),
        lat in -95.0..95.0f64,
        n in 1u32..30,
    ) {
        let server = fixtures::item_doc(n, POINT)?;
        let mut phone = fork_of(&server);
        let attempt = Attempt {
            outcome,
            notice: if with_notice { attempt().notice } else { None },
            position: attempt().position.map(|p| Position { lat, ..p }),
            ..attempt()
        };
        prop_assume!(operations::record_attempt(&mut phone, "a1", &attempt).is_ok());
        let id = item_id(n);
        let accepted = validate(&id, &server, &phone, &postman_for(&[&id]));
        prop_assert!(accepted.is_ok(), "{:?} refused: {:?}", attempt, accepted.err());
    }

    #[test]
    fn any_choice_the_customer_makes_is_accepted(choice in any_choice(), n in 1u32..30) {
        let server = fixtures::item_doc(n, POINT)?;
        let mut browser = fork_of(&server);
        let choice = CustomerChoice { choice, ..fixtures::redeliver_choice(CUSTOMER, "") };
        prop_assume!(operations::choose_for_item(&mut browser, "c1", &choice).is_ok());
        let id = item_id(n);
        let accepted = validate(&id, &server, &browser, &customer_for(&[&id]));
        prop_assert!(accepted.is_ok(), "{:?} refused: {:?}", choice, accepted.err());
    }

    #[test]
    fn any_preferences_the_customer_sets_are_accepted(
        safe_place in proptest::option::of(any_text()),
        preferred_neighbour in proptest::option::of(any_text()),
        preferred_pickup_point in proptest::option::of("[a-z0-9._@-]{0,66}"),
        never_to_neighbour in any::<bool>(),
    ) {
        let server = fixtures::delivery_point_doc(POINT)?;
        let mut browser = fork_of(&server);
        let prefs = Preferences { safe_place, preferred_neighbour, preferred_pickup_point, never_to_neighbour };
        prop_assume!(operations::set_preferences(&mut browser, &prefs).is_ok());
        let id = point_id(POINT);
        let accepted = validate(&id, &server, &browser, &customer_for(&[&id]));
        prop_assert!(accepted.is_ok(), "{:?} refused: {:?}", prefs, accepted.err());
    }
}

/// A record arriving with a conflict inside it could hide an unchecked losing value: two
/// concurrent changes in one batch both create `attempts/a1`, one valid and one with an
/// impossible latitude. Whichever wins, the batch is refused whole.
#[test]
fn a_record_created_twice_concurrently_in_one_batch_is_refused() {
    let server = fixtures::item_doc(7, 1).unwrap();
    let good = fixtures::absent_attempt("dev-1", "pm-1", 7);
    let mut bad = good.clone();
    bad.position.as_mut().unwrap().lat = 120.0;
    let mut changes = Vec::new();
    for attempt in [&good, &bad] {
        // Written raw: the phone's own operation would refuse the bad one.
        let mut phone = server.fork().with_actor(automerge::ActorId::random());
        let (_, attempts) = phone.get(ROOT, "attempts").unwrap().unwrap();
        phone
            .transact(|tx| autosurgeon::reconcile_prop(tx, &attempts, "a1", attempt))
            .unwrap();
        changes.extend(phone.get_changes(&server.get_heads()));
    }
    let sender = Sender {
        role: Role::Postman,
        principal: "pm-1".into(),
        device: Some("dev-1".into()),
        scope: Scope::All,
    };
    let refusal =
        validate_changes(&DocId::item(&fixtures::s10(7)), &server, changes, &sender).unwrap_err();
    match refusal {
        Refusal::Invalid { path, violation } => {
            assert_eq!(path, "attempts/a1");
            assert!(violation.reason.contains("concurrently"), "{violation}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Issue #19: actors bound to their owner, record keys unique across documents, strict schemas,
// every value of every conflict, changes that write something and carry no message
// ---------------------------------------------------------------------------------------------

use automerge::transaction::CommitOptions;
use tournee_sync_core::validator::{validate_claimed, Claims, SERVER_OWNER};

/// A new attempt `a1` on the plain item, then `extra` written into it in a second change, as a
/// modified app could: the server's document, and the phone's.
fn attempt_then(
    extra: impl FnOnce(&mut Transaction<'_>, &ObjId) -> Result<(), automerge::AutomergeError>,
) -> Result<(Automerge, Automerge), Box<dyn Error>> {
    let server = fixtures::item_doc(PLAIN_ITEM, POINT)?;
    let mut phone = fork_of(&server);
    operations::record_attempt(&mut phone, "a1", &attempt())?;
    let record = obj_at(&phone, &["attempts", "a1"])?;
    raw(&mut phone, |tx| extra(tx, &record))?;
    Ok((server, phone))
}

/// Raw writes into a new record, as a modified app could make them.
type RawWrite =
    Box<dyn FnOnce(&mut Transaction<'_>, &ObjId) -> Result<(), automerge::AutomergeError>>;

/// How a case writes, what it is refused for, and the reason's fragment.
type ChangeCase<'a> = (&'a str, Box<dyn Fn(&mut Automerge) + 'a>, Field, &'a str);

#[track_caller]
fn assert_off_schema(result: Result<Accepted, Refusal>, expected_path: &str, fragment: &str) {
    assert_invalid(result, expected_path, Field::Path, fragment);
}

#[test]
fn a_change_under_an_actor_bound_to_another_owner_is_refused() -> TestResult {
    // The phone recorded an attempt; its actor is now bound to the postman's device.
    let (server, phone) = item_with_accepted_attempt()?;
    let id = item_id(PLAIN_ITEM);
    let postman = postman_for(&[&id]);
    let mut claims = Claims::default();
    claims
        .actors
        .insert(phone.get_actor().clone(), postman.owner());

    // A customer who read the history writes a valid choice under the phone's actor, with the
    // phone's next sequence number.
    let mut forged = server.fork().with_actor(phone.get_actor().clone());
    operations::choose_for_item(
        &mut forged,
        "c1",
        &fixtures::redeliver_choice(CUSTOMER, "2026-11-25"),
    )?;
    let customer = customer_for(&[&id]);
    let refused = validate_claimed(
        &id,
        &server,
        new_changes(&forged, &server),
        &customer,
        &claims,
    )
    .expect_err("another owner's actor");
    assert!(
        matches!(&refused, Refusal::ActorTaken { actor, .. } if *actor == phone.get_actor().to_hex_string()),
        "{refused:?}"
    );

    // Another postman's device likewise, and a device under one of the server's actors.
    let mut other = postman_for(&[&id]);
    other.device = Some("device-2".into());
    let mut next = server.fork().with_actor(phone.get_actor().clone());
    operations::record_attempt(
        &mut next,
        "a2",
        &fixtures::absent_attempt("device-2", POSTMAN, PLAIN_ITEM),
    )?;
    assert!(matches!(
        validate_claimed(&id, &server, new_changes(&next, &server), &other, &claims),
        Err(Refusal::ActorTaken { .. })
    ));
    let server_actor = ActorId::random();
    claims
        .actors
        .insert(server_actor.clone(), SERVER_OWNER.to_string());
    let mut as_server = server.fork().with_actor(server_actor);
    operations::record_attempt(&mut as_server, "a3", &attempt())?;
    assert!(matches!(
        validate_claimed(
            &id,
            &server,
            new_changes(&as_server, &server),
            &postman,
            &claims
        ),
        Err(Refusal::ActorTaken { .. })
    ));

    // The phone itself goes on writing under its actor, and a fresh actor is bound to its
    // first user.
    let mut honest = server.fork().with_actor(phone.get_actor().clone());
    operations::record_attempt(&mut honest, "a4", &attempt())?;
    let accepted = assert_accepted(validate_claimed(
        &id,
        &server,
        new_changes(&honest, &server),
        &postman,
        &claims,
    ));
    assert!(accepted.bindings.is_empty(), "bound already");
    let fresh = fork_of(&server);
    let mut fresh = fresh;
    operations::choose_for_item(
        &mut fresh,
        "c2",
        &fixtures::redeliver_choice(CUSTOMER, "2026-11-25"),
    )?;
    let accepted = assert_accepted(validate_claimed(
        &id,
        &server,
        new_changes(&fresh, &server),
        &customer,
        &claims,
    ));
    assert_eq!(
        accepted.bindings,
        vec![(fresh.get_actor().clone(), customer.owner())]
    );
    Ok(())
}

/// The delivery point's id and document, and a phone that proposed correction `key` on it.
fn phone_with_correction(key: &str) -> Result<(DocId, Automerge, Automerge), Box<dyn Error>> {
    let dp = fixtures::delivery_point_doc(POINT)?;
    let mut phone = fork_of(&dp);
    operations::propose_correction(
        &mut phone,
        key,
        &fixtures::number_correction(DEVICE, POSTMAN),
    )?;
    Ok((point_id(POINT), dp, phone))
}

#[test]
fn a_record_key_another_document_holds_is_refused() -> TestResult {
    let id = item_id(PLAIN_ITEM);
    let server = fixtures::item_doc(PLAIN_ITEM, POINT)?;
    let mut phone = fork_of(&server);
    operations::record_attempt(&mut phone, "a1", &attempt())?;
    let (point, dp, corrector) = phone_with_correction("k1")?;
    let mut app = fork_of(&server);
    operations::choose_for_item(
        &mut app,
        "c1",
        &fixtures::redeliver_choice(CUSTOMER, "2026-11-25"),
    )?;
    let cases = [
        (&id, &server, &phone, postman_for(&[&id]), "attempts", "a1"),
        (
            &point,
            &dp,
            &corrector,
            postman_for(&[&point]),
            "corrections",
            "k1",
        ),
        (&id, &server, &app, customer_for(&[&id]), "choices", "c1"),
    ];
    for (doc, before, device, sender, map, key) in cases {
        let mut claims = Claims::default();
        claims
            .record_keys
            .insert((map.into(), key.into()), point_id(POINT + 1));
        assert_key_taken(
            validate_claimed(doc, before, new_changes(device, before), &sender, &claims),
            &format!("{map}/{key}"),
            "another document",
        );
    }

    let mut claims = Claims::default();
    // The same key in the same document is the record itself (a replay is no new change).
    claims
        .record_keys
        .insert(("attempts".into(), "a1".into()), id.clone());
    let mut phone = fork_of(&server);
    operations::record_attempt(&mut phone, "a1", &attempt())?;
    assert_accepted(validate_claimed(
        &id,
        &server,
        new_changes(&phone, &server),
        &postman_for(&[&id]),
        &claims,
    ));
    Ok(())
}

#[test]
fn records_hold_nothing_beyond_their_schema() -> TestResult {
    let id = item_id(PLAIN_ITEM);
    let postman = postman_for(&[&id]);
    let cases: Vec<(&str, RawWrite)> = vec![
        (
            "an unknown key",
            Box::new(|tx, r| tx.put(r, "<script>", "x").map(|_| ())),
        ),
        (
            "an unknown map",
            Box::new(|tx, r| tx.put_object(r, "extra", ObjType::Map).map(|_| ())),
        ),
        (
            "an unknown list",
            Box::new(|tx, r| tx.put_object(r, "extra", ObjType::List).map(|_| ())),
        ),
        (
            "bytes",
            Box::new(|tx, r| {
                tx.put(r, "proof", ScalarValue::Bytes(vec![1, 2, 3]))
                    .map(|_| ())
            }),
        ),
        (
            "a counter for ms",
            Box::new(|tx, r| {
                tx.put(r, "recorded_at_ms", ScalarValue::counter(MORNING_MS))
                    .map(|_| ())
            }),
        ),
        (
            "a timestamp for ms",
            Box::new(|tx, r| {
                tx.put(r, "recorded_at_ms", ScalarValue::Timestamp(MORNING_MS))
                    .map(|_| ())
            }),
        ),
        (
            "a uint for ms",
            Box::new(|tx, r| {
                tx.put(r, "recorded_at_ms", ScalarValue::Uint(MORNING_MS as u64))
                    .map(|_| ())
            }),
        ),
        (
            "a string for a float",
            Box::new(|tx, r| {
                let position = tx.put_object(r, "position", ObjType::Map)?;
                tx.put(&position, "lat", "48.85")?;
                tx.put(&position, "lon", 2.35)?;
                tx.put(&position, "accuracy_m", 5.0).map(|_| ())
            }),
        ),
        (
            "a 200 kB string, overwritten in the same change",
            Box::new(|tx, r| {
                tx.put(r, "device", "x".repeat(200_000))?;
                tx.put(r, "device", DEVICE).map(|_| ())
            }),
        ),
        (
            "a key inside a variant",
            Box::new(|tx, r| {
                let outcome = tx.put_object(r, "outcome", ObjType::Map)?;
                let other = tx.put_object(&outcome, "other", ObjType::Map)?;
                tx.put(&other, "text", "chien")?;
                tx.put(&other, "bark", true).map(|_| ())
            }),
        ),
        (
            "an unknown variant",
            Box::new(|tx, r| tx.put(r, "outcome", "teleported").map(|_| ())),
        ),
    ];
    for (what, extra) in cases {
        let (server, phone) = attempt_then(extra)?;
        let refused = validate(&id, &server, &phone, &postman).expect_err(what);
        assert!(
            matches!(&refused, Refusal::Invalid { path, violation } if path == "attempts/a1" && violation.reason.contains("schema")),
            "{what}: {refused:?}"
        );
    }

    // A choice and a correction with an extra field, and preferences with an unknown key.
    let server = fixtures::item_doc(PLAIN_ITEM, POINT)?;
    let mut app = fork_of(&server);
    operations::choose_for_item(
        &mut app,
        "c1",
        &fixtures::redeliver_choice(CUSTOMER, "2026-11-25"),
    )?;
    let record = obj_at(&app, &["choices", "c1"])?;
    raw(&mut app, |tx| tx.put(&record, "note", "hello").map(|_| ()))?;
    assert_off_schema(
        validate(&id, &server, &app, &customer_for(&[&id])),
        "choices/c1",
        "`note`",
    );

    let (point, dp, mut phone) = phone_with_correction("k1")?;
    let proposed = obj_at(&phone, &["corrections", "k1", "proposed"])?;
    raw(&mut phone, |tx| {
        tx.put(&proposed, "house_number_2", "35").map(|_| ())
    })?;
    assert_off_schema(
        validate(&point, &dp, &phone, &postman_for(&[&point])),
        "corrections/k1",
        "house_number_2",
    );

    let mut app = fork_of(&dp);
    let preferences = obj_at(&app, &["preferences"])?;
    raw(&mut app, |tx| {
        tx.put(&preferences, "safe_place", "garage")?;
        let extra = tx.put_object(&preferences, "<script>", ObjType::Map)?;
        tx.put(&extra, "x", ScalarValue::counter(1)).map(|_| ())
    })?;
    assert_off_schema(
        validate(&point, &dp, &app, &customer_for(&[&point])),
        "preferences",
        "<script>",
    );
    let mut app = fork_of(&dp);
    raw(&mut app, |tx| {
        tx.put(&preferences, "safe_place", "x".repeat(5_000))?;
        tx.put(&preferences, "safe_place", "garage").map(|_| ())
    })?;
    assert_off_schema(
        validate(&point, &dp, &app, &customer_for(&[&point])),
        "preferences",
        "safe_place",
    );
    Ok(())
}

#[test]
fn every_value_of_a_conflict_in_preferences_is_checked() -> TestResult {
    let point = point_id(POINT);
    let dp = fixtures::delivery_point_doc(POINT)?;
    let customer = customer_for(&[&point]);
    let preferences = obj_at(&dp, &["preferences"])?;
    // Two actors of one push set one field concurrently; the higher actor id wins the visible
    // value, so the refused value is the loser.
    for (field, refused_value) in [
        ("safe_place", "x".repeat(5_000)),
        ("preferred_pickup_point", "not an id!".to_string()),
    ] {
        let good = if field == "safe_place" {
            "garage"
        } else {
            "PP-75011-3"
        };
        let mut winner = dp.fork().with_actor(ActorId::from([0xff; 16]));
        let mut loser = dp.fork().with_actor(ActorId::from([0x01; 16]));
        raw(&mut winner, |tx| {
            tx.put(&preferences, field, good).map(|_| ())
        })?;
        raw(&mut loser, |tx| {
            tx.put(&preferences, field, refused_value.as_str())
                .map(|_| ())
        })?;
        let mut merged = winner.fork();
        merged.merge(&mut loser)?;
        let prefs: Preferences = autosurgeon::hydrate_prop(&merged, ROOT, "preferences")?;
        let shown = if field == "safe_place" {
            prefs.safe_place
        } else {
            prefs.preferred_pickup_point
        };
        assert_eq!(
            shown.as_deref(),
            Some(good),
            "the valid value wins the visible one"
        );
        let refused = validate(&point, &dp, &merged, &customer).expect_err(field);
        assert!(
            matches!(&refused, Refusal::Invalid { path, .. } if path == "preferences"),
            "{field}: {refused:?}"
        );
        // Two valid values in conflict stand.
        let mut loser = dp.fork().with_actor(ActorId::from([0x01; 16]));
        raw(&mut loser, |tx| {
            tx.put(&preferences, field, good).map(|_| ())
        })?;
        let mut merged = winner.fork();
        merged.merge(&mut loser)?;
        assert_accepted(validate(&point, &dp, &merged, &customer));
    }
    Ok(())
}

#[test]
fn changes_without_operations_or_with_a_message_are_refused() -> TestResult {
    let id = item_id(PLAIN_ITEM);
    let postman = postman_for(&[&id]);
    let server = fixtures::item_doc(PLAIN_ITEM, POINT)?;

    let value = autosurgeon_value(&attempt())?;
    let attempts = obj_at(&server, &["attempts"])?;
    let with_message = || CommitOptions::default().with_message("x".repeat(100_000));
    let cases: [ChangeCase<'_>; 3] = [
        (
            "an empty change with a 100 kB message",
            Box::new(|doc| {
                doc.empty_commit(with_message());
            }),
            Field::Message,
            "no message",
        ),
        (
            "an empty change",
            Box::new(|doc| {
                doc.empty_commit(CommitOptions::default());
            }),
            Field::Change,
            "without operations",
        ),
        (
            "a valid attempt with a message",
            Box::new(|doc| {
                let _ = doc.transact_with(
                    |_| with_message(),
                    |tx| tx.batch_create_object(&attempts, "a1", &value, false),
                );
            }),
            Field::Message,
            "no message",
        ),
    ];
    for (what, write, field, reason) in cases {
        let mut phone = fork_of(&server);
        write(&mut phone);
        assert_eq!(phone.get_heads().len(), 1, "{what}");
        assert_invalid(
            validate(&id, &server, &phone, &postman),
            &format!("changes/{}", phone.get_heads()[0]),
            field,
            reason,
        );
    }

    // The honest operation, without a message, passes.
    let mut phone = fork_of(&server);
    operations::record_attempt(&mut phone, "a1", &attempt())?;
    assert_accepted(validate(&id, &server, &phone, &postman));
    Ok(())
}

fn autosurgeon_value(attempt: &Attempt) -> Result<automerge::hydrate::Value, Box<dyn Error>> {
    Ok(tournee_sync_core::model::codec::to_hydrate(attempt)?)
}
