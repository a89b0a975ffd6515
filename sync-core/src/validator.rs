//! The change validator: Automerge has no access control, so before the server stores anything it
//! applies the incoming changes to a fork of the document, walks every operation they contain,
//! and accepts the batch only if the sender's role may write each path with each value.
//!
//! Operations are checked one by one (not the merged view), so a forged write that loses a
//! conflict today, and would surface when the winner is deleted tomorrow, is still caught.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use automerge::{
    hydrate,
    legacy::{Key, ObjectId, OpType},
    Automerge, Change, ChangeHash, ObjId, ObjType, Prop, ReadDoc, Value, ROOT,
};

use crate::ids::{DocId, DocKind};
use crate::model::codec;
use crate::model::{
    Attempt, Correction, CustomerChoice, Preferences, ReferenceAddress, Requirements, Review,
};
use crate::rules::{self, Field, Violation};

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

/// The three kinds of writers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// The change bytes do not parse or do not apply.
    #[error("malformed change: {0}")]
    Malformed(String),
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
    /// The new records among `written`, as the validator read and checked them: the server
    /// projects these instead of reading every record from the document a second time.
    pub records: BTreeMap<Touched, CheckedRecord>,
}

/// A new record that passed every rule, as read from the document.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckedRecord {
    /// A delivery attempt.
    Attempt(Attempt),
    /// A proposed correction.
    Correction(Correction),
    /// A customer's choice for an item.
    Choice(CustomerChoice),
    /// The back office's review of a correction.
    Review(Review),
}

/// What [`check_applied_records`] found a batch wrote.
pub type CheckedWrites = (Vec<Touched>, BTreeMap<Touched, CheckedRecord>);

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

/// Validates `changes` from `sender` against `doc` (the document as the receiver holds it).
pub fn validate_changes(
    id: &DocId,
    doc: &Automerge,
    changes: Vec<Change>,
    sender: &Sender,
) -> Result<Accepted, Refusal> {
    if !sender.scope.contains(id) {
        return Err(Refusal::OutOfScope(id.clone()));
    }
    let before = doc.get_heads();
    let mut fork = doc.fork();
    fork.apply_changes(changes)
        .map_err(|e| Refusal::Malformed(e.to_string()))?;
    let missing = fork.get_missing_deps(&[]);
    if !missing.is_empty() {
        return Err(Refusal::MissingDependencies(missing.len()));
    }
    let new_changes = fork.get_changes(&before);
    let (written, records) = check_applied_records(id, doc, &fork, &new_changes, sender)?;
    Ok(Accepted {
        doc: fork,
        changes: new_changes,
        written,
        records,
    })
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

/// [`check_applied`], which also hands back the new records it read and checked.
pub fn check_applied_records(
    id: &DocId,
    before: &Automerge,
    after: &Automerge,
    new_changes: &[Change],
    sender: &Sender,
) -> Result<CheckedWrites, Refusal> {
    if !sender.scope.contains(id) {
        return Err(Refusal::OutOfScope(id.clone()));
    }
    let creating = before.get_heads().is_empty();
    let mut touched = BTreeSet::new();
    let mut paths = PathCache::default();
    for change in new_changes {
        for op in change.decode().operations {
            let mut path = paths.path_of(after, &op.obj).map_err(Refusal::Malformed)?;
            path.push(match &op.key {
                Key::Map(k) => k.to_string(),
                Key::Seq(_) => "[]".to_string(),
            });
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
            touched.insert(touch);
        }
    }
    let mut records = BTreeMap::new();
    for touch in &touched {
        if let Some(record) = check_value(before, after, touch, sender)? {
            records.insert(touch.clone(), record);
        }
    }
    Ok((touched.into_iter().collect(), records))
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
fn check_value(
    before: &Automerge,
    after: &Automerge,
    touch: &Touched,
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
            if *map != "reviews" && entry_exists(before, map, key) {
                return Err(check(Violation::new(
                    Field::Path,
                    "this record exists already and cannot be changed",
                )));
            }
            // Only the winning value of a conflict is read below; a record that arrives with a
            // conflict inside it (never produced by an honest device, whose ids are random)
            // could hide an unchecked losing value, so it is refused whole.
            let (record, conflict) = read_record(after, map, key).map_err(&check)?;
            if conflict {
                return Err(check(Violation::new(
                    Field::Path,
                    "the record was written concurrently more than once",
                )));
            }
            match *map {
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
                    Ok(Some(CheckedRecord::Choice(choice)))
                }
                _ => {
                    let review: Review =
                        codec::from_hydrate(&record).map_err(|e| check(schema(e)))?;
                    rules::review(&review).map_err(&check)?;
                    Ok(Some(CheckedRecord::Review(review)))
                }
            }
        }
        Touched::Preferences => {
            let check = invalid("preferences".into());
            let prefs: Preferences = read(after, "", "preferences").map_err(&check)?;
            rules::preferences(&prefs).map_err(&check).map(|()| None)
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

/// Paths of objects, looked up once per object per batch.
#[derive(Default)]
struct PathCache(HashMap<String, Vec<String>>);

impl PathCache {
    fn path_of(&mut self, doc: &Automerge, obj: &ObjectId) -> Result<Vec<String>, String> {
        let ObjectId::Id(op) = obj else {
            return Ok(Vec::new());
        };
        let key = format!("{}@{}", op.counter(), op.actor());
        if let Some(path) = self.0.get(&key) {
            return Ok(path.clone());
        }
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
        self.0.insert(key, path.clone());
        Ok(path)
    }
}
