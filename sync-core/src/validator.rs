//! The change validator: Automerge has no access control, so before the server stores anything it
//! applies the incoming changes to a fork of the document, walks every operation they contain,
//! and accepts the batch only if the sender's role may write each path with each value.
//!
//! Operations are checked one by one (not the merged view), so a forged write that loses a
//! conflict today, and would surface when the winner is deleted tomorrow, is still caught: each
//! one's path against the role's table, and its value against the strict shape of the record
//! it writes ([`crate::shape`]). A change must carry operations and no message, and on the
//! server it must come from an actor bound to its sender, and create no record under a key
//! another document uses already ([`Claims`]).

use std::collections::{hash_map::Entry, BTreeMap, BTreeSet, HashMap, HashSet};

use automerge::{
    hydrate,
    legacy::{self, ElementId, Key, ObjectId, OpId, OpType},
    ActorId, Automerge, Change, ChangeHash, ObjId, ObjType, Prop, ReadDoc, ScalarValue, Value,
    ROOT,
};

use crate::ids::{DocId, DocKind};
use crate::model::codec;
use crate::model::{
    Attempt, Correction, CustomerChoice, Preferences, ReferenceAddress, Requirements, Review,
};
use crate::rules::{self, Field, Violation};
use crate::shape::{self, Shape};
use crate::signing::{Author, ChangeSignature, Keyring, SignatureProblem, Signer};

/// The owner of the actors the server writes with (back-office writes, reviews, documents it
/// creates): no device's change may use them.
pub const SERVER_OWNER: &str = "server";

/// The maps of records whose keys are unique across all documents, as the server's tables key
/// them. Reviews are keyed by the correction they decide, within its document.
pub const UNIQUE_RECORD_MAPS: [&str; 3] = ["attempts", "choices", "corrections"];

/// Who is sending changes, as the server established from their token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// What they may write.
    pub role: Role,
    /// The postman, customer or staff member id.
    pub principal: String,
    /// The device bound to a postman's token.
    pub device: Option<String>,
    /// The documents they may write at all.
    pub scope: Scope,
}

impl Sender {
    /// Whom this sender's actors are bound to: role, principal and device. Every actor id is
    /// bound to the first owner that used it; a change under another owner's actor is refused.
    pub fn owner(&self) -> String {
        format!(
            "{}:{}:{}",
            self.role.as_str(),
            self.principal,
            self.device.as_deref().unwrap_or("")
        )
    }
}

/// What the receiver knows beyond the document, prepared before validation (the server reads it
/// from its tables, for the actors and record keys a batch uses): the validator stays free of
/// storage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Claims {
    /// The owner ([`Sender::owner`] or [`SERVER_OWNER`]) each bound actor belongs to; an actor
    /// absent here is unbound, and the batch that first uses it binds it to its sender.
    pub actors: HashMap<ActorId, String>,
    /// Record keys in use, by map of records ([`UNIQUE_RECORD_MAPS`]) and key: the document that
    /// holds each.
    pub record_keys: HashMap<(String, String), DocId>,
}

impl Claims {
    /// Adds what an accepted batch of document `id` claims: the actors it binds and the record
    /// keys it creates, so the rest of a batch of documents sees them.
    pub fn claim(&mut self, id: &DocId, accepted: &Accepted) {
        for (actor, owner) in &accepted.bindings {
            self.actors.insert(actor.clone(), owner.clone());
        }
        for touched in accepted.records.keys() {
            if let Touched::Entry(map, key) = touched {
                if UNIQUE_RECORD_MAPS.contains(map) {
                    self.record_keys
                        .insert((map.to_string(), key.clone()), id.clone());
                }
            }
        }
    }
}

/// The three kinds of writers.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Records attempts and proposes corrections for the stops of their rounds.
    Postman,
    /// Sets preferences and choices for their own delivery points and items.
    Customer,
    /// Publishes reference data and reviews corrections; the server writes as the back office.
    BackOffice,
}

impl Role {
    /// The role's name in tokens and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Postman => "postman",
            Role::Customer => "customer",
            Role::BackOffice => "back_office",
        }
    }
}

/// The documents a sender may write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every document (the back office).
    All,
    /// Only these (a postman's rounds, a customer's own points and items).
    Documents(HashSet<DocId>),
}

impl Scope {
    /// Whether the document is in scope.
    pub fn contains(&self, id: &DocId) -> bool {
        match self {
            Scope::All => true,
            Scope::Documents(ids) => ids.contains(id),
        }
    }
}

/// Why a batch of changes was refused. Nothing of a refused batch is kept.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// The document is not one the sender may write.
    #[error("{0} is outside the sender's scope")]
    OutOfScope(DocId),
    /// The change bytes do not parse.
    #[error("malformed change: {0}")]
    Malformed(String),
    /// Changes that parse but do not apply to the document. Sending them again changes nothing.
    #[error("the changes do not apply to the stored document: {0}")]
    DoesNotApply(String),
    /// A change's actor and sequence number are held by a different change the receiver
    /// stored: one altered in transit and re-checksummed, or a sender restored from an old copy
    /// of its store. The sender must write its changes again under a fresh actor.
    #[error("sequence number {seq} of actor {actor} is held by another change")]
    SequenceTaken {
        /// The actor id, hex.
        actor: String,
        /// The sequence number.
        seq: u64,
    },
    /// A change creates a record under a key another change created already, in this
    /// document or another (records are immutable, keys random): as for
    /// [`Refusal::SequenceTaken`], the sender must write the record again under a fresh key.
    #[error("{path}: {reason}")]
    KeyTaken {
        /// The record, e.g. `attempts/4f…`.
        path: String,
        /// Where the key is held.
        reason: &'static str,
    },
    /// Some changes depend on changes the receiver does not have: the peers must resynchronise.
    #[error("{0} change(s) depend on changes this peer does not have")]
    MissingDependencies(usize),
    /// A change writes a path the sender's role may not write.
    #[error("change {change}: a {role} may not write {path}")]
    Forbidden {
        /// The offending change.
        change: ChangeHash,
        /// The sender's role.
        role: &'static str,
        /// The path written, e.g. `preferences/safe_place`.
        path: String,
    },
    /// A change is authored under an actor id bound to another owner: someone else's device, or
    /// the server.
    #[error("change {change}: actor {actor} belongs to another device or principal")]
    ActorTaken {
        /// The offending change.
        change: ChangeHash,
        /// The actor id, hex.
        actor: String,
    },
    /// A change's signature is missing, unknown, revoked or wrong: nothing of the batch is
    /// accepted, whoever uploaded it.
    #[error("change {change} is refused: {}", problem.as_str())]
    Signature {
        /// The offending change.
        change: ChangeHash,
        /// What is wrong with its signature.
        problem: SignatureProblem,
    },
    /// A change writes a permitted path with a value the rules refuse.
    #[error("{path}: {violation}")]
    Invalid {
        /// The entry, e.g. `attempts/4f…`.
        path: String,
        /// The broken rule.
        violation: Violation,
    },
}

/// A batch that passed: the document with the changes applied, the new changes in causal
/// order, ready to store, and what they wrote, ready to project.
#[derive(Debug)]
pub struct Accepted {
    /// The document after the changes.
    pub doc: Automerge,
    /// The changes that were new to the document.
    pub changes: Vec<Change>,
    /// What the changes wrote, each once.
    pub written: Vec<Touched>,
    /// The records among `written`, as the validator read and checked them, with the change
    /// that wrote each: the server projects these and never reads a record back from the
    /// document.
    pub records: BTreeMap<Touched, Checked>,
    /// The actors of `changes` that were unbound, with the owner they are bound to now: the
    /// server stores these bindings in the transaction that stores the changes.
    pub bindings: Vec<(ActorId, String)>,
    /// The verified signatures of `changes` (none for an unsigned push of an older phone): the
    /// server stores them beside the changes and sends them on with them.
    pub signatures: Vec<ChangeSignature>,
}

/// A new record that passed every rule, as read from the document.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckedRecord {
    /// A delivery attempt.
    Attempt(Attempt),
    /// A proposed correction.
    Correction(Correction),
    /// A customer's choice for an item, and why it cannot apply when it cannot (the item's
    /// requirements forbid it, or the item was delivered): stored either way, flagged.
    Choice {
        /// The choice.
        choice: CustomerChoice,
        /// Why it does not apply, in words for the customer and the back office.
        not_applicable: Option<String>,
    },
    /// The customer's standing preferences for a delivery point, as they are after the batch.
    Preferences(Preferences),
    /// The back office's review of a correction.
    Review(Review),
}

/// A record that passed every rule, and the change that wrote it (the one that created its map,
/// or for a revised review the last change that touched it).
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// The record as read from the document.
    pub record: CheckedRecord,
    /// The change that wrote it.
    pub change: ChangeHash,
    /// Who signed that change, when it was signed (the record's author, whoever uploaded it).
    pub signer: Option<Signer>,
}

/// What [`check_applied_records`] found a batch wrote.
pub type CheckedWrites = (Vec<Touched>, BTreeMap<Touched, Checked>);

/// What a batch wrote: checked once per record, and what the server projects into its tables.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Touched {
    /// A record in a map of records (`attempts`, `choices`, `corrections`, `reviews`), by key.
    Entry(&'static str, String),
    /// The customer's standing preferences.
    Preferences,
    /// The reference address or access notes.
    Reference,
    /// An item's requirements.
    Requirements,
    /// The document's skeleton, at creation.
    Skeleton,
}

/// Validates `changes` from `sender` against `doc` (the document as the receiver holds it),
/// with no actor bound and no record key in use elsewhere: [`validate_claimed`] with empty
/// [`Claims`].
pub fn validate_changes(
    id: &DocId,
    doc: &Automerge,
    changes: Vec<Change>,
    sender: &Sender,
) -> Result<Accepted, Refusal> {
    validate_claimed(id, doc, changes, sender, &Claims::default())
}

/// Validates `changes` from `sender` against `doc`, knowing `claims`: a change under an actor
/// bound to another owner is refused, and so is a record created under a key another document
/// holds.
pub fn validate_claimed(
    id: &DocId,
    doc: &Automerge,
    changes: Vec<Change>,
    sender: &Sender,
    claims: &Claims,
) -> Result<Accepted, Refusal> {
    if !sender.scope.contains(id) {
        return Err(Refusal::OutOfScope(id.clone()));
    }
    let (fork, new_changes) = apply_to_fork(doc, changes)?;
    let owner = sender.owner();
    let bindings = check_actors(&new_changes, claims, &owner)?;
    let (written, records) = check_all(id, doc, &fork, &new_changes, sender, claims, true)?;
    Ok(Accepted {
        doc: fork,
        changes: new_changes,
        written,
        records,
        bindings,
        signatures: Vec::new(),
    })
}

/// Validates `changes` that `uploader` pushed with `signatures`: each new change is checked as
/// its author, the signer its signature names once it verifies against `keyring` (a device's
/// registered key, or the server's), whoever uploads it. A change without a signature (from a
/// phone of an older version, or recorded before the phone had a key) is checked as the
/// uploader's unless the keyring requires signatures of postmen. One change whose signature is
/// unknown, revoked or wrong (or missing, when required) refuses the whole batch.
pub fn validate_signed(
    id: &DocId,
    doc: &Automerge,
    changes: Vec<Change>,
    signatures: &[ChangeSignature],
    uploader: &Sender,
    keyring: &Keyring,
    claims: &Claims,
) -> Result<Accepted, Refusal> {
    let legacy =
        signatures.is_empty() && !(keyring.require_signatures && uploader.role == Role::Postman);
    if legacy {
        return validate_claimed(id, doc, changes, uploader, claims);
    }
    let (fork, new_changes) = apply_to_fork(doc, changes)?;
    // Each new change's author, from its signature; the changes grouped by author in order.
    let by_hash: HashMap<&[u8], &ChangeSignature> =
        signatures.iter().map(|s| (s.hash.as_slice(), s)).collect();
    let mut groups: Vec<(Author, Vec<Change>)> = Vec::new();
    let mut used = Vec::with_capacity(new_changes.len());
    for change in &new_changes {
        let hash = change.hash();
        let refuse = |problem| Refusal::Signature {
            change: hash,
            problem,
        };
        let author = match by_hash.get(hash.as_ref()) {
            Some(signature) => {
                let author = keyring.author(id, &hash, signature).map_err(refuse)?;
                used.push((*signature).clone());
                author
            }
            // Until signatures are required, an unsigned change is the uploader's own, as
            // before signatures (its actor must be the uploader's): an app that signs may still
            // push a change it recorded before it had a key.
            None if !(keyring.require_signatures && uploader.role == Role::Postman) => Author {
                sender: uploader.clone(),
                owner: uploader.owner(),
                signer: None,
            },
            None => return Err(refuse(SignatureProblem::Missing)),
        };
        match groups.iter_mut().find(|(a, _)| a.owner == author.owner) {
            Some((_, group)) => group.push(change.clone()),
            None => groups.push((author, vec![change.clone()])),
        }
    }
    let mut claims = claims.clone();
    let mut bindings = Vec::new();
    let mut written = BTreeSet::new();
    let mut records = BTreeMap::new();
    for (author, group) in &groups {
        let bound = check_actors(group, &claims, &author.owner)?;
        for (actor, owner) in &bound {
            claims.actors.insert(actor.clone(), owner.clone());
        }
        bindings.extend(bound);
        // One author's changes are the whole batch when there is one author (the usual case):
        // then its new records are read from their own operations. With several, another
        // author's change could write into one of them, so they are read from the fork.
        let whole = groups.len() == 1;
        let (touched, checked) = check_all(id, doc, &fork, group, &author.sender, &claims, whole)?;
        written.extend(touched);
        for (touch, mut checked) in checked {
            checked.signer.clone_from(&author.signer);
            records.insert(touch, checked);
        }
    }
    Ok(Accepted {
        doc: fork,
        changes: new_changes,
        written: written.into_iter().collect(),
        records,
        bindings,
        signatures: used,
    })
}

/// `doc` with `changes` applied, on a fork, and the changes that were new to it, in causal order.
fn apply_to_fork(
    doc: &Automerge,
    changes: Vec<Change>,
) -> Result<(Automerge, Vec<Change>), Refusal> {
    // The new changes are the pushed ones the document lacks, taken as they came rather than
    // collected again from the fork (`get_changes` rebuilds each change from the op set: a
    // sixth of a phone's batch's validation).
    let hashes: Vec<ChangeHash> = changes.iter().map(Change::hash).collect();
    let lacking: HashSet<ChangeHash> = doc.get_missing_deps(&hashes).into_iter().collect();
    let mut seen = HashSet::new();
    let new_changes: Vec<Change> = changes
        .iter()
        .filter(|c| lacking.contains(&c.hash()) && seen.insert(c.hash()))
        .cloned()
        .collect();
    let mut fork = doc.fork();
    fork.apply_changes(changes).map_err(|e| match e {
        automerge::AutomergeError::DuplicateSeqNumber(seq, actor) => Refusal::SequenceTaken {
            actor: actor.to_hex_string(),
            seq,
        },
        e => Refusal::DoesNotApply(e.to_string()),
    })?;
    let missing = fork.get_missing_deps(&[]);
    if !missing.is_empty() {
        return Err(Refusal::MissingDependencies(missing.len()));
    }
    Ok((fork, causal_order(new_changes)))
}

/// `changes` (all applied, none twice) with each one after the changes of the set it depends
/// on, otherwise in the order given.
fn causal_order(changes: Vec<Change>) -> Vec<Change> {
    if changes.len() < 2 {
        return changes;
    }
    let index: HashMap<ChangeHash, usize> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.hash(), i))
        .collect();
    // For each change, how many of its dependencies are in the set, and who depends on it.
    let mut waiting = vec![0usize; changes.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); changes.len()];
    for (i, change) in changes.iter().enumerate() {
        for dep in change.deps() {
            if let Some(&d) = index.get(dep) {
                waiting[i] += 1;
                dependents[d].push(i);
            }
        }
    }
    let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> = (0..changes.len())
        .filter(|&i| waiting[i] == 0)
        .map(std::cmp::Reverse)
        .collect();
    let mut order = Vec::with_capacity(changes.len());
    while let Some(std::cmp::Reverse(i)) = ready.pop() {
        order.push(i);
        for &next in &dependents[i] {
            waiting[next] -= 1;
            if waiting[next] == 0 {
                ready.push(std::cmp::Reverse(next));
            }
        }
    }
    let mut slots: Vec<Option<Change>> = changes.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// Refuses a change under an actor bound to someone other than `owner`; the unbound actors, to
/// bind to `owner`.
pub fn check_actors(
    changes: &[Change],
    claims: &Claims,
    owner: &str,
) -> Result<Vec<(ActorId, String)>, Refusal> {
    let mut bindings: Vec<(ActorId, String)> = Vec::new();
    for change in changes {
        let actor = change.actor_id();
        match claims.actors.get(actor) {
            Some(bound) if bound != owner => {
                return Err(Refusal::ActorTaken {
                    change: change.hash(),
                    actor: actor.to_hex_string(),
                })
            }
            Some(_) => {}
            None if bindings.iter().any(|(a, _)| a == actor) => {}
            None => bindings.push((actor.clone(), owner.to_string())),
        }
    }
    Ok(bindings)
}

/// Checks changes already applied: `after` is `before` plus `new_changes`. The phone calls this
/// on the change it has just made, without applying it a second time.
pub fn check_applied(
    id: &DocId,
    before: &Automerge,
    after: &Automerge,
    new_changes: &[Change],
    sender: &Sender,
) -> Result<Vec<Touched>, Refusal> {
    check_applied_records(id, before, after, new_changes, sender).map(|(written, _)| written)
}

/// Checks `some_changes`, which are among the changes applied to `before` to give `after` but
/// not all of them (a relayed round's changes of one device, beside others'): their records
/// are read from `after`, where the other changes may have written into them too.
pub fn check_some_applied(
    id: &DocId,
    before: &Automerge,
    after: &Automerge,
    some_changes: &[Change],
    sender: &Sender,
) -> Result<Vec<Touched>, Refusal> {
    let claims = Claims::default();
    check_all(id, before, after, some_changes, sender, &claims, false).map(|(written, _)| written)
}

/// [`check_applied`], which also hands back the new records it read and checked.
pub fn check_applied_records(
    id: &DocId,
    before: &Automerge,
    after: &Automerge,
    new_changes: &[Change],
    sender: &Sender,
) -> Result<CheckedWrites, Refusal> {
    check_all(
        id,
        before,
        after,
        new_changes,
        sender,
        &Claims::default(),
        true,
    )
}

/// Checks `new_changes`, applied to `before` to give `after`. When `whole_batch` is true they
/// are every change between the two, and a record one of them made whole is read from that
/// change's own operations ([`MadeObjects`]) instead of from `after`.
fn check_all(
    id: &DocId,
    before: &Automerge,
    after: &Automerge,
    new_changes: &[Change],
    sender: &Sender,
    claims: &Claims,
    whole_batch: bool,
) -> Result<CheckedWrites, Refusal> {
    if !sender.scope.contains(id) {
        return Err(Refusal::OutOfScope(id.clone()));
    }
    let creating = before.get_heads().is_empty();
    let mut touched = BTreeSet::new();
    // Records the batch creates (a map made under a record key), as opposed to edits.
    let mut created = BTreeSet::new();
    // The change that wrote each record: the one that made its map, else the last to touch it.
    let mut written_by: BTreeMap<Touched, ChangeHash> = BTreeMap::new();
    let mut preference_keys = BTreeSet::new();
    // Operations to check against the strict shapes, once every path is known to be permitted.
    let mut shaped = Vec::new();
    let mut paths = PathCache::default();
    let mut made = MadeObjects::default();
    for (index, change) in new_changes.iter().enumerate() {
        let refuse_change = |field, reason: &str| Refusal::Invalid {
            path: format!("changes/{}", change.hash()),
            violation: Violation::new(field, reason),
        };
        // A change's message is not part of any record: nobody reads or audits it, so none is
        // carried (sync-core's operations never write one).
        if change.message().is_some_and(|m| !m.is_empty()) {
            return Err(refuse_change(Field::Message, "a change carries no message"));
        }
        let expanded = change.decode();
        if expanded.operations.is_empty() {
            return Err(refuse_change(
                Field::Change,
                "a change without operations writes nothing",
            ));
        }
        let start = expanded.start_op.get();
        for (counter, op) in (start..).zip(expanded.operations) {
            let op_id = OpId(counter, expanded.actor_id.clone());
            let path = paths
                .take(after, &mut made, index, &op_id, &op)
                .map_err(Refusal::Malformed)?;
            let forbidden = || Refusal::Forbidden {
                change: change.hash(),
                role: sender.role.as_str(),
                path: path.join("/"),
            };
            if matches!(
                op.action,
                OpType::Increment(_) | OpType::MarkBegin(_) | OpType::MarkEnd(_)
            ) || matches!(op.action, OpType::Make(ObjType::Text | ObjType::Table))
            {
                return Err(forbidden());
            }
            let touch = permitted(id.kind(), sender.role, &path, creating).ok_or_else(forbidden)?;
            if path.len() == 2 {
                made.record_written(&touch, &op_id, &op.action);
            }
            if path.len() == 2 && matches!(op.action, OpType::Make(ObjType::Map)) {
                if created.insert(touch.clone()) {
                    written_by.insert(touch.clone(), change.hash());
                }
            } else if !created.contains(&touch) {
                written_by.insert(touch.clone(), change.hash());
            }
            if touch == Touched::Preferences {
                preference_keys.insert(path[1].clone());
            }
            if shape_of(&touch, &path).is_some() {
                shaped.push((touch.clone(), path, op.action));
            }
            touched.insert(touch);
        }
    }
    let mut records = BTreeMap::new();
    for touch in &touched {
        let from_ops = if whole_batch {
            made.record_value(touch)
        } else {
            None
        };
        let created = created.contains(touch);
        if let Some(record) = check_value(before, after, touch, created, from_ops, sender)? {
            if let Touched::Entry(map, key) = touch {
                let elsewhere = claims
                    .record_keys
                    .get(&(map.to_string(), key.clone()))
                    .is_some_and(|doc| doc != id);
                if elsewhere {
                    return Err(Refusal::KeyTaken {
                        path: format!("{map}/{key}"),
                        reason: "this record key is used by another document already",
                    });
                }
            }
            let change = written_by
                .get(touch)
                .copied()
                .ok_or_else(|| Refusal::Malformed(format!("no change wrote {touch:?}")))?;
            records.insert(
                touch.clone(),
                Checked {
                    record,
                    change,
                    signer: None,
                },
            );
        }
    }
    for (touch, path, action) in &shaped {
        if let Some((shape, inside)) = shape_of(touch, path) {
            shape
                .at(inside)
                .and_then(|at| at.admits_op(action))
                .map_err(|why| Refusal::Invalid {
                    path: path[..path.len() - inside.len()].join("/"),
                    violation: Violation::new(
                        Field::Path,
                        format!("{}: does not follow the schema: {why}", inside.join("/")),
                    ),
                })?;
        }
    }
    if !preference_keys.is_empty() {
        check_preference_conflicts(after, &preference_keys)?;
    }
    Ok((touched.into_iter().collect(), records))
}

/// The strict shape of what a path writes, and the path inside it; `None` for the skeleton.
fn shape_of<'p>(touch: &Touched, path: &'p [String]) -> Option<(&'static Shape, &'p [String])> {
    let shape = shape_for(touch, path.first().map(String::as_str))?;
    let inside = match touch {
        Touched::Entry(..) => path.get(2..)?,
        _ => path.get(1..)?,
    };
    Some((shape, inside))
}

/// The strict shape of what `touch` names; `top` tells the reference from the access notes.
fn shape_for(touch: &Touched, top: Option<&str>) -> Option<&'static Shape> {
    Some(match (touch, top) {
        (Touched::Entry("attempts", _), _) => &shape::ATTEMPT,
        (Touched::Entry("choices", _), _) => &shape::CHOICE,
        (Touched::Entry("corrections", _), _) => &shape::CORRECTION,
        (Touched::Entry("reviews", _), _) => &shape::REVIEW,
        (Touched::Preferences, _) => &shape::PREFERENCES,
        (Touched::Reference, Some("access")) => &shape::ACCESS,
        (Touched::Reference, _) => &shape::REFERENCE,
        (Touched::Requirements, _) => &shape::REQUIREMENTS,
        (Touched::Entry(..) | Touched::Skeleton, _) => return None,
    })
}

/// Every value of every conflict on the preference fields a batch wrote, not only the one
/// that wins today: each must pass the rules as if it had won. (Records are refused outright
/// when they hold a conflict; preferences are edited in place, so two of a customer's devices
/// may conflict honestly.)
fn check_preference_conflicts(doc: &Automerge, keys: &BTreeSet<String>) -> Result<(), Refusal> {
    let check = |violation: Violation| Refusal::Invalid {
        path: "preferences".into(),
        violation,
    };
    let Some(obj) = map_obj(doc, "preferences") else {
        return Err(check(Violation::new(Field::Path, "was deleted")));
    };
    let winners: hydrate::Value = ReadDoc::hydrate(doc, &obj, None)
        .map_err(|e| check(Violation::new(Field::Path, e.to_string())))?;
    let winners = codec::hydrate_to_json(&winners);
    for key in keys {
        let all = doc
            .get_all(&obj, key.as_str())
            .map_err(|e| check(Violation::new(Field::Path, e.to_string())))?;
        if all.len() < 2 {
            continue;
        }
        for (value, value_id) in all {
            let value = match value {
                Value::Scalar(s) => codec::scalar_to_json(&s),
                Value::Object(_) => codec::hydrate_to_json(
                    &ReadDoc::hydrate(doc, &value_id, None)
                        .map_err(|e| check(Violation::new(Field::Path, e.to_string())))?,
                ),
            };
            let mut alternative = winners.clone();
            if let Some(fields) = alternative.as_object_mut() {
                fields.insert(key.clone(), value);
            }
            let prefs: Preferences = serde_json::from_value(alternative)
                .map_err(|e| check(schema(codec::CodecError(e.to_string()))))?;
            rules::preferences(&prefs).map_err(check)?;
        }
    }
    Ok(())
}

/// The path table: which role may write where, per document kind. `None` means forbidden.
fn permitted(kind: DocKind, role: Role, path: &[String], creating: bool) -> Option<Touched> {
    let top = path.first()?.as_str();
    if path.len() == 1 {
        // Root keys belong to the skeleton, written once by the server when it creates the
        // document; replacing a top-level map later would hide everything under it.
        return (creating && role == Role::BackOffice).then_some(Touched::Skeleton);
    }
    let entry = |map: &'static str| Touched::Entry(map, path[1].clone());
    match (kind, top, role) {
        (_, _, Role::BackOffice) if creating => Some(Touched::Skeleton),
        (DocKind::Item, "attempts", Role::Postman) => Some(entry("attempts")),
        (DocKind::Item, "choices", Role::Customer) => Some(entry("choices")),
        (DocKind::Item, "requirements", Role::BackOffice) => Some(Touched::Requirements),
        (DocKind::DeliveryPoint, "corrections", Role::Postman) => Some(entry("corrections")),
        (DocKind::DeliveryPoint, "preferences", Role::Customer) => Some(Touched::Preferences),
        (DocKind::DeliveryPoint, "reference" | "access", Role::BackOffice) => {
            Some(Touched::Reference)
        }
        (DocKind::DeliveryPoint, "reviews", Role::BackOffice) => Some(entry("reviews")),
        _ => None,
    }
}

/// Checks the final value of something a batch wrote; a new record is returned as read.
/// `from_ops` is a new record's value as the operations that made it wrote it, when they alone
/// wrote it; otherwise the record is read from `after`.
fn check_value(
    before: &Automerge,
    after: &Automerge,
    touch: &Touched,
    created: bool,
    from_ops: Option<hydrate::Value>,
    sender: &Sender,
) -> Result<Option<CheckedRecord>, Refusal> {
    let invalid = |path: String| {
        move |violation: Violation| Refusal::Invalid {
            path: path.clone(),
            violation,
        }
    };
    match touch {
        Touched::Skeleton => Ok(None),
        Touched::Entry(map, key) => {
            let path = format!("{map}/{key}");
            let check = invalid(path.clone());
            rules::identifier(Field::EntryId, key).map_err(&check)?;
            // Records are immutable once stored: an attempt rewritten after the fact is no
            // evidence. Reviews may be revised by the back office.
            // A record created under a stored record's key collides with it; an edit of a
            // stored record is invalid.
            if *map != "reviews" && entry_exists(before, map, key) {
                let reason = "this record exists already and cannot be changed";
                return Err(if created {
                    Refusal::KeyTaken {
                        path: path.clone(),
                        reason,
                    }
                } else {
                    check(Violation::new(Field::Path, reason))
                });
            }
            // Only the winning value of a conflict is read below; a record that arrives with a
            // conflict inside it (never produced by an honest device, whose ids are random)
            // could hide an unchecked losing value, so it is refused whole.
            let (record, conflict) = match from_ops {
                Some(record) => (record, key_conflict(after, map, key).map_err(&check)?),
                None => read_record(after, map, key).map_err(&check)?,
            };
            if conflict {
                return Err(check(Violation::new(
                    Field::Path,
                    "the record was written concurrently more than once",
                )));
            }
            let strict = || match shape_for(touch, Some(map)) {
                Some(shape) => shape.admits(&record).map_err(|why| {
                    check(Violation::new(
                        Field::Path,
                        format!("does not follow the schema: {why}"),
                    ))
                }),
                None => Ok(()),
            };
            let checked = match *map {
                "attempts" => {
                    let attempt: Attempt =
                        codec::from_hydrate(&record).map_err(|e| check(schema(e)))?;
                    let requirements: Requirements =
                        read(after, "", "requirements").map_err(&check)?;
                    rules::attempt_for_item(&attempt, &requirements).map_err(&check)?;
                    same_device(sender, &attempt.device, &attempt.postman).map_err(&check)?;
                    Ok(Some(CheckedRecord::Attempt(attempt)))
                }
                "corrections" => {
                    let correction: Correction =
                        codec::from_hydrate(&record).map_err(|e| check(schema(e)))?;
                    rules::proposed_correction(&correction.proposed).map_err(&check)?;
                    rules::timestamp(Field::RecordedAt, correction.proposed_at_ms)
                        .map_err(&check)?;
                    same_device(sender, &correction.device, &correction.proposed_by)
                        .map_err(&check)?;
                    Ok(Some(CheckedRecord::Correction(correction)))
                }
                "choices" => {
                    let choice: CustomerChoice =
                        codec::from_hydrate(&record).map_err(|e| check(schema(e)))?;
                    rules::customer_choice(&choice).map_err(&check)?;
                    if choice.made_by != sender.principal {
                        return Err(check(Violation::new(
                            Field::Customer,
                            "a customer records choices in their own name only",
                        )));
                    }
                    let requirements: Requirements = codec::read_prop(after, &ROOT, "requirements")
                        .ok()
                        .flatten()
                        .unwrap_or_default();
                    let delivered =
                        codec::read_prop::<BTreeMap<String, Attempt>>(after, &ROOT, "attempts")
                            .ok()
                            .flatten()
                            .is_some_and(|a| a.values().any(|a| a.outcome.is_delivered()));
                    let not_applicable = if delivered {
                        Some("the item was already delivered".to_string())
                    } else {
                        rules::choice_allowed(&choice.choice, &requirements)
                            .err()
                            .map(|v| v.reason)
                    };
                    Ok(Some(CheckedRecord::Choice {
                        choice,
                        not_applicable,
                    }))
                }
                _ => {
                    let review: Review =
                        codec::from_hydrate(&record).map_err(|e| check(schema(e)))?;
                    rules::review(&review).map_err(&check)?;
                    Ok(Some(CheckedRecord::Review(review)))
                }
            };
            // The rules first, for their precise field names; then nothing beyond the schema.
            strict()?;
            checked
        }
        Touched::Preferences => {
            let check = invalid("preferences".into());
            let prefs: Preferences = read(after, "", "preferences").map_err(&check)?;
            rules::preferences(&prefs).map_err(&check)?;
            let (whole, _) = read_record(after, "", "preferences").map_err(&check)?;
            shape::PREFERENCES.admits(&whole).map_err(|why| {
                check(Violation::new(
                    Field::Path,
                    format!("does not follow the schema: {why}"),
                ))
            })?;
            Ok(Some(CheckedRecord::Preferences(prefs)))
        }
        Touched::Reference => {
            let check = invalid("reference".into());
            let reference: ReferenceAddress = read(after, "", "reference").map_err(&check)?;
            rules::reference_address(&reference)
                .map_err(&check)
                .map(|()| None)
        }
        Touched::Requirements => {
            let check = invalid("requirements".into());
            read::<Requirements>(after, "", "requirements")
                .map(|_| None)
                .map_err(&check)
        }
    }
}

fn same_device(sender: &Sender, device: &str, person: &str) -> Result<(), Violation> {
    if sender.device.as_deref() != Some(device) {
        return Err(Violation::new(
            Field::Device,
            "does not match the device of the token",
        ));
    }
    if sender.principal != person {
        return Err(Violation::new(
            Field::Postman,
            "does not match the postman of the token",
        ));
    }
    Ok(())
}

fn map_obj(doc: &Automerge, map: &str) -> Option<ObjId> {
    if map.is_empty() {
        return Some(ROOT);
    }
    match doc.get(ROOT, map) {
        Ok(Some((Value::Object(ObjType::Map), id))) => Some(id),
        _ => None,
    }
}

/// Whether a record's key holds more than one value (concurrent writes of the key itself).
fn key_conflict(doc: &Automerge, map: &str, key: &str) -> Result<bool, Violation> {
    let obj = map_obj(doc, map)
        .ok_or_else(|| Violation::new(Field::Path, format!("the document has no `{map}` map")))?;
    let all = doc
        .get_all(&obj, key)
        .map_err(|e| Violation::new(Field::Path, e.to_string()))?;
    match all.first() {
        Some((Value::Object(ObjType::Map), _)) => Ok(all.len() > 1),
        Some(_) => Err(Violation::new(
            Field::Path,
            "does not follow the schema: a record is a map",
        )),
        None => Err(Violation::new(Field::Path, "was deleted")),
    }
}

/// A new record's value tree, and whether it holds concurrent values anywhere.
fn read_record(doc: &Automerge, map: &str, key: &str) -> Result<(hydrate::Value, bool), Violation> {
    let obj = map_obj(doc, map)
        .ok_or_else(|| Violation::new(Field::Path, format!("the document has no `{map}` map")))?;
    let all = doc
        .get_all(&obj, key)
        .map_err(|e| Violation::new(Field::Path, e.to_string()))?;
    match doc.get(&obj, key) {
        Ok(Some((Value::Object(ObjType::Map), id))) => {
            let value: hydrate::Value = ReadDoc::hydrate(doc, &id, None)
                .map_err(|e| Violation::new(Field::Path, e.to_string()))?;
            let conflict = all.len() > 1 || codec::has_conflicts(&value);
            Ok((value, conflict))
        }
        Ok(Some(_)) => Err(Violation::new(
            Field::Path,
            "does not follow the schema: a record is a map",
        )),
        _ => Err(Violation::new(Field::Path, "was deleted")),
    }
}

fn schema(e: codec::CodecError) -> Violation {
    Violation::new(Field::Path, format!("does not follow the schema: {e}"))
}

fn entry_exists(doc: &Automerge, map: &str, key: &str) -> bool {
    map_obj(doc, map).is_some_and(|obj| matches!(doc.get(&obj, key), Ok(Some(_))))
}

fn read<T: serde::de::DeserializeOwned>(
    doc: &Automerge,
    map: &str,
    key: &str,
) -> Result<T, Violation> {
    let obj = map_obj(doc, map)
        .ok_or_else(|| Violation::new(Field::Path, format!("the document has no `{map}` map")))?;
    codec::read_prop(doc, &obj, key)
        .map_err(schema)?
        .ok_or_else(|| Violation::new(Field::Path, "was deleted"))
}

/// Paths of objects: those the batch makes, from the operation that made them; the others
/// looked up in the document once per object per batch.
#[derive(Default)]
struct PathCache(HashMap<OpId, Vec<String>>);

impl PathCache {
    /// The path operation `id` (of change number `change`) writes, which `made` takes note of.
    fn take(
        &mut self,
        doc: &Automerge,
        made: &mut MadeObjects,
        change: usize,
        id: &OpId,
        op: &legacy::Op,
    ) -> Result<Vec<String>, String> {
        let mut path = self.path_of(doc, &op.obj)?;
        path.push(match &op.key {
            Key::Map(k) => k.to_string(),
            Key::Seq(_) => "[]".to_string(),
        });
        if matches!(op.action, OpType::Make(_)) {
            // An object the batch makes is found where its operation put it.
            self.0.insert(id.clone(), path.clone());
        }
        made.record(change, id, op);
        Ok(path)
    }

    fn path_of(&mut self, doc: &Automerge, obj: &ObjectId) -> Result<Vec<String>, String> {
        let ObjectId::Id(op) = obj else {
            return Ok(Vec::new());
        };
        if let Some(path) = self.0.get(op) {
            return Ok(path.clone());
        }
        let key = format!("{}@{}", op.counter(), op.actor());
        let exid = doc.import_obj(&key).map_err(|e| e.to_string())?;
        let parents = doc.parents(&exid).map_err(|e| e.to_string())?;
        let path: Vec<String> = parents
            .path()
            .into_iter()
            .map(|(_, prop)| match prop {
                Prop::Map(k) => k,
                Prop::Seq(i) => format!("[{i}]"),
            })
            .collect();
        self.0.insert(op.clone(), path.clone());
        Ok(path)
    }
}

/// The objects a batch's operations make, as those operations wrote them. A new record (an
/// attempt, a choice, a correction) is made whole by one change: its map, then each field once,
/// its lists appended in order. Such a record's value is read from that change's own operations
/// rather than from the merged document. Anything else marks the object as not readable this
/// way (a field written twice, by another change or over an earlier value; a deletion; a list
/// not appended in order; the record's key written again), and the record is read from the
/// document, whose merged view then differs from what one change says.
#[derive(Default)]
struct MadeObjects {
    objects: HashMap<OpId, Made>,
    /// The object made at each record's key, while that is the key's only write in the batch.
    records: BTreeMap<Touched, Option<OpId>>,
    /// Objects written to before the batch made them (or never made by it): an object made
    /// after an operation that already wrote into it is not plain.
    written_unmade: HashSet<OpId>,
}

/// One object the batch made.
struct Made {
    /// The change (its index in the batch) that made it.
    change: usize,
    node: Node,
    /// Whether its operations alone say what it holds.
    plain: bool,
}

impl Made {
    /// Takes operation `id` of change number `change`, which writes into this object: a field
    /// written once, or an element appended after the last, by the change that made it.
    fn take(&mut self, change: usize, id: &OpId, op: &legacy::Op) {
        let slot = match &op.action {
            OpType::Put(value) => Some(Slot::Scalar(value.clone())),
            OpType::Make(ObjType::Map | ObjType::List) => Some(Slot::Object(id.clone())),
            _ => None,
        };
        let fresh = self.change == change && op.pred.is_empty();
        match (slot, &mut self.node, &op.key) {
            (Some(slot), Node::Map(fields), Key::Map(key))
                if fresh && !op.insert && !fields.contains_key(key.as_str()) =>
            {
                fields.insert(key.to_string(), slot);
            }
            (Some(slot), Node::List(items, last), Key::Seq(after))
                if fresh
                    && op.insert
                    && match (last.as_ref(), after) {
                        (None, ElementId::Head) => true,
                        (Some(last), ElementId::Id(after)) => last == after,
                        _ => false,
                    } =>
            {
                items.push(slot);
                *last = Some(id.clone());
            }
            _ => self.plain = false,
        }
    }
}

enum Node {
    Map(HashMap<String, Slot>),
    /// The elements, and the last one inserted (the next insert must follow it).
    List(Vec<Slot>, Option<OpId>),
}

enum Slot {
    Scalar(ScalarValue),
    Object(OpId),
}

/// Records nest a few levels (an attempt's notice, its waiting place); deeper objects are read
/// from the document, as any other.
const MAX_MADE_DEPTH: usize = 16;

impl MadeObjects {
    /// Takes note of operation `id` of change number `change`.
    fn record(&mut self, change: usize, id: &OpId, op: &legacy::Op) {
        let node = match op.action {
            OpType::Make(ObjType::Map) => Some(Node::Map(HashMap::new())),
            OpType::Make(ObjType::List) => Some(Node::List(Vec::new(), None)),
            _ => None,
        };
        if let ObjectId::Id(parent_id) = &op.obj {
            match self.objects.get_mut(parent_id) {
                Some(parent) => parent.take(change, id, op),
                None => {
                    self.written_unmade.insert(parent_id.clone());
                }
            }
        }
        self.made(change, id, op, node);
    }

    fn made(&mut self, change: usize, id: &OpId, op: &legacy::Op, node: Option<Node>) {
        let Some(node) = node else { return };
        let plain = op.pred.is_empty() && !self.written_unmade.contains(id);
        match self.objects.entry(id.clone()) {
            // One id made twice: neither is read from operations.
            Entry::Occupied(mut twice) => twice.get_mut().plain = false,
            Entry::Vacant(new) => {
                new.insert(Made {
                    change,
                    node,
                    plain,
                });
            }
        }
    }

    /// Takes note of a write at a record's key (the top of a record map).
    fn record_written(&mut self, touch: &Touched, id: &OpId, action: &OpType) {
        let made = matches!(action, OpType::Make(ObjType::Map)).then(|| id.clone());
        self.records
            .entry(touch.clone())
            .and_modify(|only| *only = None)
            .or_insert(made);
    }

    /// A new record's value as the operations that made it wrote it, when they alone did.
    fn record_value(&self, touch: &Touched) -> Option<hydrate::Value> {
        if !matches!(touch, Touched::Entry(..)) {
            return None;
        }
        let root = self.records.get(touch)?.as_ref()?;
        self.value(root, 0)
    }

    fn value(&self, id: &OpId, depth: usize) -> Option<hydrate::Value> {
        let made = self.objects.get(id)?;
        if !made.plain || depth > MAX_MADE_DEPTH {
            return None;
        }
        let slot = |slot: &Slot| match slot {
            Slot::Scalar(value) => Some(hydrate::Value::Scalar(value.clone())),
            Slot::Object(id) => self.value(id, depth + 1),
        };
        Some(match &made.node {
            Node::Map(fields) => {
                let fields = fields
                    .iter()
                    .map(|(key, value)| Some((key.clone(), slot(value)?)))
                    .collect::<Option<HashMap<String, hydrate::Value>>>()?;
                hydrate::Value::Map(fields.into())
            }
            Node::List(items, _) => {
                let items = items.iter().map(slot).collect::<Option<Vec<_>>>()?;
                hydrate::Value::List(items.into())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{
        absent_attempt, delivered_attempt, delivery_point_doc, item_doc, number_correction,
        redeliver_choice,
    };
    use crate::operations::{choose_for_item, propose_correction, record_attempt};

    /// The records `changes` made, as [`MadeObjects`] reads them from their operations.
    fn made_records(after: &Automerge, changes: &[Change]) -> BTreeMap<Touched, hydrate::Value> {
        let mut paths = PathCache::default();
        let mut made = MadeObjects::default();
        let mut touched = BTreeSet::new();
        for (index, change) in changes.iter().enumerate() {
            let expanded = change.decode();
            let start = expanded.start_op.get();
            for (counter, op) in (start..).zip(expanded.operations) {
                let op_id = OpId(counter, expanded.actor_id.clone());
                let path = paths
                    .take(after, &mut made, index, &op_id, &op)
                    .expect("path");
                if path.len() == 2 {
                    let map = ["attempts", "choices", "corrections"]
                        .into_iter()
                        .find(|m| *m == path[0])
                        .expect("a record map");
                    let touch = Touched::Entry(map, path[1].clone());
                    made.record_written(&touch, &op_id, &op.action);
                    touched.insert(touch);
                }
            }
        }
        touched
            .into_iter()
            .filter_map(|t| Some((t.clone(), made.record_value(&t)?)))
            .collect()
    }

    fn new_changes(before: &Automerge, after: &Automerge) -> Vec<Change> {
        after.get_changes(&before.get_heads())
    }

    #[test]
    fn a_record_made_by_one_change_reads_the_same_from_its_operations_as_from_the_document() {
        let mut cases: Vec<(Automerge, Automerge, &str, &str)> = Vec::new();
        let item = item_doc(1, 1).expect("item");
        let mut absent = item.fork();
        record_attempt(&mut absent, "a1", &absent_attempt("dev-1", "pm-1", 1)).expect("absent");
        cases.push((item.clone(), absent, "attempts", "a1"));
        let item = item_doc(3, 1).expect("item needing a signature");
        let mut delivered = item.fork();
        record_attempt(&mut delivered, "a2", &delivered_attempt("dev-1", "pm-1", 3))
            .expect("delivered");
        cases.push((item.clone(), delivered, "attempts", "a2"));
        let mut chosen = item.fork();
        choose_for_item(&mut chosen, "c1", &redeliver_choice("cu-1", "2026-12-09"))
            .expect("choice");
        cases.push((item, chosen, "choices", "c1"));
        let point = delivery_point_doc(1).expect("point");
        let mut corrected = point.fork();
        propose_correction(&mut corrected, "k1", &number_correction("dev-1", "pm-1"))
            .expect("correction");
        cases.push((point, corrected, "corrections", "k1"));
        for (before, after, map, key) in cases {
            let from_ops = made_records(&after, &new_changes(&before, &after));
            let (from_doc, conflict) = read_record(&after, map, key).expect("record");
            assert!(!conflict);
            assert_eq!(
                from_ops.get(&Touched::Entry(map, key.to_string())),
                Some(&from_doc),
                "{map}/{key}"
            );
        }
    }

    #[test]
    fn new_changes_come_out_in_causal_order_whatever_order_they_were_pushed_in() {
        let before = item_doc(1, 1).expect("item");
        let mut phone = before.fork();
        for n in 0..4 {
            record_attempt(
                &mut phone,
                &format!("a{n}"),
                &absent_attempt("dev-1", "pm-1", n),
            )
            .expect("attempt");
        }
        let causal = new_changes(&before, &phone);
        let mut pushed = causal.clone();
        pushed.reverse();
        // One of them twice, and one the document holds already.
        pushed.push(causal[1].clone());
        let mut held = before.fork();
        held.apply_changes([causal[0].clone()]).expect("apply");
        let (fork, new) = apply_to_fork(&held, pushed).expect("applies");
        let hashes: Vec<_> = new.iter().map(Change::hash).collect();
        let expected: Vec<_> = causal[1..].iter().map(Change::hash).collect();
        assert_eq!(hashes, expected);
        assert_eq!(fork.get_heads(), phone.get_heads());
    }

    #[test]
    fn a_record_also_written_by_a_later_change_is_read_from_the_document() {
        let before = item_doc(1, 1).expect("item");
        let mut after = before.fork();
        record_attempt(&mut after, "a1", &absent_attempt("dev-1", "pm-1", 1)).expect("absent");
        // A second change edits a field of the record the first one made.
        let attempts = map_obj(&after, "attempts").expect("attempts");
        let Ok(Some((_, record))) = after.get(&attempts, "a1") else {
            panic!("the attempt");
        };
        after
            .transact::<_, _, automerge::AutomergeError>(|tx| {
                automerge::transaction::Transactable::put(tx, &record, "device", "dev-2")?;
                Ok(())
            })
            .expect("edit");
        let changes = new_changes(&before, &after);
        assert_eq!(changes.len(), 2);
        assert!(made_records(&after, &changes).is_empty());
    }
}
