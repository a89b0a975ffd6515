//! What the postman's screens show, read from the phone's store: the round's stops in order and,
//! at a door, what the customer asked for and what the item's requirements forbid.
//!
//! The app renders these; it never decides a rule itself, so the phone and the server cannot
//! disagree about what is allowed.

use crate::ids::DocId;
use crate::model::{
    AccessNotes, Attempt, CustomerChoice, Outcome, Preferences, ReferenceAddress, Requirements,
};
use crate::operations::{self, OperationError};
use crate::rules;
use crate::s10::S10;
use crate::store::{PhoneStore, StoreError};

/// One stop of the round as the stop list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct StopView {
    /// Position in the round, from 1.
    pub order: u32,
    /// The delivery point's id.
    pub delivery_point: String,
    /// The address and access notes, once the delivery point has been synced.
    pub address: Option<(ReferenceAddress, AccessNotes)>,
    /// The S10 numbers of the items to present there.
    pub items: Vec<String>,
    /// Items of the stop whose document has not been synced yet.
    pub missing_items: Vec<String>,
}

/// Everything the postman needs at a door for one item.
#[derive(Debug, Clone, PartialEq)]
pub struct DoorView {
    /// The S10 number.
    pub item: String,
    /// The delivery point it is addressed to.
    pub delivery_point: String,
    /// What the sender paid for.
    pub requirements: Requirements,
    /// The customer's current choice for this item, if any.
    pub choice: Option<CustomerChoice>,
    /// Why the current choice cannot be honoured (requirements, or the item is delivered).
    pub choice_not_applicable: Option<String>,
    /// The customer's standing preferences, when the delivery point is on the phone.
    pub preferences: Option<Preferences>,
    /// Outcomes the requirements forbid (their codes, as [`Outcome::code`] spells them).
    pub forbidden_outcomes: Vec<&'static str>,
    /// Why those outcomes are forbidden.
    pub forbidden_reason: Option<String>,
    /// Whether an attempt already delivered the item.
    pub delivered: bool,
    /// Every attempt so far, in the order they were recorded, with their ids.
    pub attempts: Vec<(String, Attempt)>,
}

/// The outcomes that leave an item unattended, which an in-person requirement forbids.
fn unattended_outcomes() -> [Outcome; 3] {
    [
        Outcome::DeliveredToNeighbour {
            neighbour: String::new(),
        },
        Outcome::DeliveredToSafePlace {
            place: String::new(),
        },
        Outcome::DeliveredToMailbox,
    ]
}

/// The round's stops in delivery order; empty when no round is loaded.
pub fn stops(store: &mut PhoneStore) -> Result<Vec<StopView>, StoreError> {
    let Some(manifest) = store.manifest().cloned() else {
        return Ok(Vec::new());
    };
    let mut views = Vec::with_capacity(manifest.stops.len());
    for stop in manifest.stops {
        let point = DocId::delivery_point(&stop.delivery_point).map_err(OperationError::from)?;
        let address = if store.contains(&point) {
            let doc = operations::read_delivery_point(store.document(&point)?)?;
            Some((doc.reference, doc.access))
        } else {
            None
        };
        let mut missing_items = Vec::new();
        for item in &stop.items {
            let id = DocId::item(&S10::parse(item).map_err(OperationError::from)?);
            if !store.contains(&id) {
                missing_items.push(item.clone());
            }
        }
        views.push(StopView {
            order: stop.order,
            delivery_point: stop.delivery_point,
            address,
            items: stop.items,
            missing_items,
        });
    }
    Ok(views)
}

/// What the door screen shows for `item`.
pub fn at_door(store: &mut PhoneStore, item: &S10) -> Result<DoorView, StoreError> {
    let doc = operations::read_item(store.document(&DocId::item(item))?)?;
    let point = DocId::delivery_point(&doc.delivery_point).map_err(OperationError::from)?;
    let preferences = if store.contains(&point) {
        Some(operations::read_delivery_point(store.document(&point)?)?.preferences)
    } else {
        None
    };
    let delivered = doc.is_delivered();
    let choice = doc.current_choice().map(|(_, c)| c.clone());
    let choice_not_applicable = match &choice {
        Some(_) if delivered => Some("the item has already been delivered".to_string()),
        Some(c) => rules::choice_allowed(&c.choice, &doc.requirements)
            .err()
            .map(|v| v.reason),
        None => None,
    };
    let mut forbidden_outcomes = Vec::new();
    let mut forbidden_reason = None;
    for outcome in unattended_outcomes() {
        if let Err(v) = rules::outcome_allowed(&outcome, &doc.requirements) {
            forbidden_outcomes.push(outcome.code());
            forbidden_reason = Some(v.reason);
        }
    }
    let attempts = doc
        .attempts_in_order()
        .into_iter()
        .map(|(id, a)| (id.clone(), a.clone()))
        .collect();
    Ok(DoorView {
        item: doc.id,
        delivery_point: doc.delivery_point,
        requirements: doc.requirements,
        choice,
        choice_not_applicable,
        preferences,
        forbidden_outcomes,
        forbidden_reason,
        delivered,
        attempts,
    })
}
