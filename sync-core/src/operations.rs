//! The typed operations a postman, a customer or the back office performs, each one Automerge
//! transaction, each checked by [`crate::rules`] before anything is written.
//!
//! A phone that only writes through these functions never produces a change the server's
//! [`crate::validator`] refuses.

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ChangeHash, ObjId, ObjType, ReadDoc, Value, ROOT};
use autosurgeon::{reconcile, reconcile_prop, Reconcile};
use serde::Serialize;

use crate::ids::{validate_delivery_point_id, DocId, DocKind};
use crate::model::codec;
use crate::model::{
    AccessNotes, Attempt, Correction, CustomerChoice, DeliveryPointDoc, ItemDoc, Preferences,
    ReferenceAddress, Requirements, Review, SCHEMA_VERSION,
};
use crate::rules::{self, Field, Violation};
use crate::s10::S10;

/// Why an operation was not performed.
#[derive(Debug, thiserror::Error)]
pub enum OperationError {
    /// The input broke a rule; nothing was written.
    #[error("invalid input: {0}")]
    Invalid(#[from] Violation),
    /// The item was delivered already; a new choice cannot apply.
    #[error("the item has already been delivered")]
    AlreadyDelivered,
    /// The entry was decided already (e.g. a correction reviewed twice).
    #[error("{0} has already been decided")]
    AlreadyDecided(String),
    /// The id names no entry of the document (e.g. reviewing an unknown correction).
    #[error("{0} not found in this document")]
    NotFound(String),
    /// The document does not follow the schema this build knows.
    #[error("document does not follow the Tournée schema: {0}")]
    Schema(String),
}

/// A fresh random id for a new attempt, choice or correction: 32 lower-case hex characters.
pub fn new_entry_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Builds a new item document with its whole skeleton, as the server does exactly once.
pub fn new_item(
    actor: ActorId,
    id: &S10,
    delivery_point: &str,
    requirements: Requirements,
) -> Result<Automerge, OperationError> {
    validate_delivery_point_id(delivery_point)?;
    let skeleton = ItemDoc {
        schema: SCHEMA_VERSION,
        kind: "item".into(),
        id: id.to_string(),
        delivery_point: delivery_point.to_string(),
        requirements,
        choices: Default::default(),
        attempts: Default::default(),
    };
    create(actor, &skeleton)
}

/// Builds a new delivery-point document with its whole skeleton, as the server does exactly once.
pub fn new_delivery_point(
    actor: ActorId,
    id: &str,
    reference: ReferenceAddress,
    access: AccessNotes,
) -> Result<Automerge, OperationError> {
    validate_delivery_point_id(id)?;
    rules::reference_address(&reference)?;
    let skeleton = DeliveryPointDoc {
        schema: SCHEMA_VERSION,
        kind: "delivery_point".into(),
        id: id.to_string(),
        reference,
        access,
        preferences: Preferences::default(),
        corrections: Default::default(),
        reviews: Default::default(),
    };
    create(actor, &skeleton)
}

fn create<T: Reconcile>(actor: ActorId, skeleton: &T) -> Result<Automerge, OperationError> {
    let mut doc = Automerge::new().with_actor(actor);
    doc.transact(|tx| reconcile(tx, skeleton))
        .map_err(|f| OperationError::Schema(f.error.to_string()))?;
    Ok(doc)
}

/// Records a delivery attempt under `attempts/<attempt_id>`, after checking it against the
/// item's requirements.
pub fn record_attempt(
    doc: &mut Automerge,
    attempt_id: &str,
    attempt: &Attempt,
) -> Result<Option<ChangeHash>, OperationError> {
    rules::identifier(Field::EntryId, attempt_id)?;
    check_kind(doc, "item")?;
    rules::attempt_for_item(attempt, &requirements(doc)?)?;
    if entry_exists(doc, "attempts", attempt_id)? {
        // Recording the same attempt twice (an app retry) changes nothing.
        return Ok(None);
    }
    create_entry(doc, "attempts", attempt_id, attempt)
}

/// Proposes an address correction under `corrections/<correction_id>`.
pub fn propose_correction(
    doc: &mut Automerge,
    correction_id: &str,
    correction: &Correction,
) -> Result<Option<ChangeHash>, OperationError> {
    rules::identifier(Field::EntryId, correction_id)?;
    rules::identifier(Field::Postman, &correction.proposed_by)?;
    rules::identifier(Field::Device, &correction.device)?;
    rules::timestamp(Field::RecordedAt, correction.proposed_at_ms)?;
    rules::proposed_correction(&correction.proposed)?;
    check_kind(doc, "delivery_point")?;
    if entry_exists(doc, "corrections", correction_id)? {
        return Ok(None);
    }
    create_entry(doc, "corrections", correction_id, correction)
}

/// Records a customer's choice for an item under `choices/<choice_id>`; refused if the item's
/// requirements forbid it or the item was delivered already.
pub fn choose_for_item(
    doc: &mut Automerge,
    choice_id: &str,
    choice: &CustomerChoice,
) -> Result<Option<ChangeHash>, OperationError> {
    rules::identifier(Field::EntryId, choice_id)?;
    rules::customer_choice(choice)?;
    check_kind(doc, "item")?;
    rules::choice_allowed(&choice.choice, &requirements(doc)?)?;
    if entry_exists(doc, "choices", choice_id)? {
        return Ok(None);
    }
    let attempts: std::collections::BTreeMap<String, Attempt> = read(doc, &ROOT, "attempts")?;
    if attempts.values().any(|a| a.outcome.is_delivered()) {
        return Err(OperationError::AlreadyDelivered);
    }
    create_entry(doc, "choices", choice_id, choice)
}

/// Sets the customer's standing preferences; only the fields that differ are written, so a
/// concurrent edit of another field by someone else stands.
pub fn set_preferences(
    doc: &mut Automerge,
    preferences: &Preferences,
) -> Result<Option<ChangeHash>, OperationError> {
    rules::preferences(preferences)?;
    rules::preferences_consistent(preferences)?;
    check_kind(doc, "delivery_point")?;
    transact(doc, |tx| {
        reconcile_prop(tx, ROOT, "preferences", preferences)
    })
}

/// Publishes reference data (address, pin, access notes) from the back office.
pub fn publish_reference(
    doc: &mut Automerge,
    reference: &ReferenceAddress,
    access: &AccessNotes,
) -> Result<Option<ChangeHash>, OperationError> {
    rules::reference_address(reference)?;
    check_kind(doc, "delivery_point")?;
    transact(doc, |tx| {
        reconcile_prop(tx, ROOT, "reference", reference)?;
        reconcile_prop(tx, ROOT, "access", access)
    })
}

/// Sets an item's service requirements from the back office.
pub fn set_requirements(
    doc: &mut Automerge,
    requirements: &Requirements,
) -> Result<Option<ChangeHash>, OperationError> {
    check_kind(doc, "item")?;
    transact(doc, |tx| {
        reconcile_prop(tx, ROOT, "requirements", requirements)
    })
}

/// Records the back office's decision on a correction under `reviews/<correction_id>`.
pub fn review_correction(
    doc: &mut Automerge,
    correction_id: &str,
    review: &Review,
) -> Result<Option<ChangeHash>, OperationError> {
    rules::review(review)?;
    check_kind(doc, "delivery_point")?;
    if !entry_exists(doc, "corrections", correction_id)? {
        return Err(OperationError::NotFound(format!(
            "correction {correction_id}"
        )));
    }
    create_entry(doc, "reviews", correction_id, review)
}

/// Reads an item document into its typed form.
pub fn read_item(doc: &Automerge) -> Result<ItemDoc, OperationError> {
    check_kind(doc, "item")?;
    codec::read_doc(doc).map_err(|e| OperationError::Schema(e.to_string()))
}

/// Reads a delivery-point document into its typed form.
pub fn read_delivery_point(doc: &Automerge) -> Result<DeliveryPointDoc, OperationError> {
    check_kind(doc, "delivery_point")?;
    codec::read_doc(doc).map_err(|e| OperationError::Schema(e.to_string()))
}

/// Reads an item's requirements alone (what every attempt and choice is checked against).
pub fn requirements(doc: &Automerge) -> Result<Requirements, OperationError> {
    read(doc, &ROOT, "requirements")
}

/// Checks that a document is of the kind its id says, with a schema this build understands.
pub fn check_document(id: &DocId, doc: &Automerge) -> Result<(), OperationError> {
    match id.kind() {
        DocKind::Item => check_kind(doc, "item"),
        DocKind::DeliveryPoint => check_kind(doc, "delivery_point"),
    }
}

fn check_kind(doc: &Automerge, expected: &str) -> Result<(), OperationError> {
    let kind = scalar_str(doc, &ROOT, "kind");
    if kind.as_deref() != Some(expected) {
        return Err(OperationError::Schema(format!(
            "expected a {expected} document, found {}",
            kind.as_deref().unwrap_or("none")
        )));
    }
    match doc.get(ROOT, "schema") {
        Ok(Some((Value::Scalar(s), _))) => match s.as_u64() {
            Some(v) if v <= SCHEMA_VERSION => Ok(()),
            Some(v) => Err(OperationError::Schema(format!(
                "schema version {v} is newer than this build's {SCHEMA_VERSION}; update the app"
            ))),
            None => Err(OperationError::Schema(
                "schema version is not a number".into(),
            )),
        },
        _ => Err(OperationError::Schema("no schema version".into())),
    }
}

fn scalar_str(doc: &Automerge, obj: &ObjId, key: &str) -> Option<String> {
    match doc.get(obj, key) {
        Ok(Some((Value::Scalar(s), _))) => s.as_str().map(str::to_owned),
        _ => None,
    }
}

fn read<T: serde::de::DeserializeOwned>(
    doc: &Automerge,
    obj: &ObjId,
    key: &str,
) -> Result<T, OperationError> {
    codec::read_prop(doc, obj, key)
        .map_err(|e| OperationError::Schema(format!("`{key}`: {e}")))?
        .ok_or_else(|| OperationError::Schema(format!("the document has no `{key}`")))
}

/// The map of records `map` (created with the skeleton).
fn record_map(doc: &Automerge, map: &str) -> Result<ObjId, OperationError> {
    match doc.get(ROOT, map) {
        Ok(Some((Value::Object(ObjType::Map), id))) => Ok(id),
        _ => Err(OperationError::Schema(format!(
            "the document has no `{map}` map"
        ))),
    }
}

fn entry_exists(doc: &Automerge, map: &str, key: &str) -> Result<bool, OperationError> {
    let obj = record_map(doc, map)?;
    Ok(doc
        .get(&obj, key)
        .map_err(|e| OperationError::Schema(e.to_string()))?
        .is_some())
}

/// Writes a new record at `<map>/<key>` in one transaction, as one batch of operations.
fn create_entry<T: Serialize>(
    doc: &mut Automerge,
    map: &str,
    key: &str,
    value: &T,
) -> Result<Option<ChangeHash>, OperationError> {
    let parent = record_map(doc, map)?;
    let value = codec::to_hydrate(value).map_err(|e| OperationError::Schema(e.to_string()))?;
    doc.transact(|tx| {
        tx.batch_create_object(&parent, key, &value, false)
            .map(|_| ())
    })
    .map(|success| success.hash)
    .map_err(|failure| OperationError::Schema(failure.error.to_string()))
}

fn transact<F>(doc: &mut Automerge, f: F) -> Result<Option<ChangeHash>, OperationError>
where
    F: FnOnce(
        &mut automerge::transaction::Transaction<'_>,
    ) -> Result<(), autosurgeon::ReconcileError>,
{
    doc.transact(f)
        .map(|success| success.hash)
        .map_err(|failure| OperationError::Schema(failure.error.to_string()))
}
