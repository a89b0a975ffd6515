//! One batch of parsed lines of one kind: what each line changes (created, updated, unchanged,
//! or refused for a reference it names that does not exist), and the one write through the
//! pipeline ([`crate::write::commit`]) that applies the batch: new documents, server changes to
//! existing ones (so phones in scope get them at their next sync), central rows, feed events.

use std::collections::{HashMap, HashSet};

use serde_json::json;
use tournee_sync_core::model::RoundManifest;
use tournee_sync_core::model::Stop;
use tournee_sync_core::operations::{self, OperationError};
use tournee_sync_core::validator::Sender;
use tournee_sync_core::DocId;

use super::lines::{reference, DeviceStatus, Kind, Line, LineRefusal};
use super::Outcome;
use crate::db::{EventRow, Load, Projection, UpuCode};
use crate::events::{Loaded, NewEvent, Payload, ReferenceChanged, SubjectKind};
use crate::write::{self, Validated, WriteError};
use crate::AppState;

/// A line parsed and checked on its own.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// Its number in the input, from 1.
    pub number: u64,
    /// Its canonical JSON.
    pub canonical: String,
    /// The line.
    pub line: Line,
}

/// What became of each line of a batch, in input order.
pub type Verdicts = Vec<(u64, String, Result<Outcome, LineRefusal>)>;

/// A batch decided: each line's verdict, and the write that applies it (none when nothing
/// changes).
pub struct Decided {
    /// Each line's verdict, in input order.
    pub verdicts: Verdicts,
    /// What to commit.
    pub write: Option<(Validated, Projection)>,
}

/// Decides one batch against what is stored: each line's outcome and the one write that applies
/// them. Keys are distinct within a batch; nothing is written.
pub async fn decide(
    app: &AppState,
    sender: &Sender,
    kind: Kind,
    batch: Vec<Parsed>,
) -> Result<Decided, WriteError> {
    let keys: Vec<String> = batch.iter().map(|p| p.line.key()).collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let previous = app.db.import_records(kind.as_str(), &key_refs).await?;
    let references = References::load(app, &batch).await?;
    let now = app.clock.now_ms();
    let mut plan = Plan::default();
    let mut verdicts = Verdicts::with_capacity(batch.len());
    for parsed in batch {
        let key = parsed.line.key();
        if previous.get(&key) == Some(&parsed.canonical) {
            verdicts.push((parsed.number, key, Ok(Outcome::Unchanged)));
            continue;
        }
        let verdict = match references.check(&parsed.line) {
            Err(refusal) => Err(refusal),
            Ok(()) => {
                plan.line(app, sender, &references, &parsed.line, now)
                    .await?
            }
        };
        if verdict.is_ok() {
            plan.rows.loads.push(Load::Record {
                kind: kind.as_str(),
                key: key.clone(),
                record: parsed.canonical,
                at_ms: now,
            });
        }
        verdicts.push((parsed.number, key, verdict));
    }
    let write = (!plan.rows.loads.is_empty()).then(|| {
        let validated = Validated {
            accepted: plan.accepted,
            bases: plan.bases,
        };
        (validated, plan.rows)
    });
    Ok(Decided { verdicts, write })
}

/// Commits a decided batch through the one write pipeline.
pub async fn commit(
    app: &AppState,
    sender: &Sender,
    (validated, rows): (Validated, Projection),
) -> Result<(), WriteError> {
    write::commit(app, sender, validated, rows)
        .await
        .map(|_| ())
}

/// What the lines of a batch name that must exist (delivery points, items, devices), and which
/// of the batch's own keys exist already (as documents, or as central rows), each read in one
/// query per batch.
#[derive(Default)]
struct References {
    points: HashSet<String>,
    items: HashSet<String>,
    devices: HashMap<String, (String, bool)>,
    /// Documents of the batch's delivery points or items that exist.
    documents: HashSet<String>,
    /// Keys of the batch held in its central table (customers, pickup points, rounds, devices).
    rows: HashSet<String>,
}

impl References {
    async fn load(app: &AppState, batch: &[Parsed]) -> Result<Self, sqlx::Error> {
        let (mut points, mut items, mut devices) = (Vec::new(), Vec::new(), Vec::new());
        let (mut documents, mut rows) = (Vec::new(), Vec::new());
        let mut table = "customers";
        for p in batch {
            match &p.line {
                Line::DeliveryPoint(l) => {
                    table = "delivery_points";
                    documents.push(format!("dp:{}", l.id));
                    rows.push(l.id.clone());
                }
                Line::Item(_, s10, _) => {
                    table = "items";
                    documents.push(format!("item:{s10}"));
                    rows.push(s10.to_string());
                }
                Line::Customer(l) => rows.push(l.id.clone()),
                Line::PickupPoint(l) => {
                    table = "pickup_points";
                    rows.push(l.id.clone());
                }
                Line::Round(l) => {
                    table = "rounds";
                    rows.push(l.id.clone());
                }
                Line::Device(l) => {
                    table = "devices";
                    rows.push(l.id.clone());
                }
            }
        }
        let documents: Vec<&str> = documents.iter().map(String::as_str).collect();
        let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
        for p in batch {
            match &p.line {
                Line::Customer(l) => points.extend(l.delivery_points.iter().map(String::as_str)),
                Line::Item(l, _, _) => points.push(&l.delivery_point),
                Line::Round(l) => {
                    for stop in &l.stops {
                        points.push(&stop.delivery_point);
                        items.extend(stop.items.iter().map(String::as_str));
                    }
                    devices.extend(l.devices.iter().map(String::as_str));
                }
                Line::Device(l) => devices.push(&l.id),
                Line::DeliveryPoint(_) | Line::PickupPoint(_) => {}
            }
        }
        Ok(Self {
            points: app.db.existing("delivery_points", &points).await?,
            items: app.db.existing("items", &items).await?,
            devices: app.db.devices(&devices).await?,
            documents: app.db.existing_documents(&documents).await?,
            rows: app.db.existing(table, &rows).await?,
        })
    }

    fn check(&self, line: &Line) -> Result<(), LineRefusal> {
        let unknown = |field: String, what: &str, id: &str| {
            LineRefusal::new(
                "unknown_reference",
                field,
                format!("{what} {id} is not loaded: import it first"),
            )
        };
        match line {
            Line::Customer(l) => {
                for (n, p) in l.delivery_points.iter().enumerate() {
                    if !self.points.contains(p) {
                        return Err(unknown(
                            format!("delivery_points[{n}]"),
                            "delivery point",
                            p,
                        ));
                    }
                }
            }
            Line::Item(l, _, _) => {
                if !self.points.contains(&l.delivery_point) {
                    return Err(unknown(
                        "delivery_point".into(),
                        "delivery point",
                        &l.delivery_point,
                    ));
                }
            }
            Line::Round(l) => {
                for (n, stop) in l.stops.iter().enumerate() {
                    if !self.points.contains(&stop.delivery_point) {
                        return Err(unknown(
                            format!("stops[{n}].delivery_point"),
                            "delivery point",
                            &stop.delivery_point,
                        ));
                    }
                    for (k, item) in stop.items.iter().enumerate() {
                        if !self.items.contains(item) {
                            return Err(unknown(format!("stops[{n}].items[{k}]"), "item", item));
                        }
                    }
                }
                for (n, d) in l.devices.iter().enumerate() {
                    match self.devices.get(d) {
                        None => return Err(unknown(format!("devices[{n}]"), "device", d)),
                        Some((_, true)) => {
                            return Err(LineRefusal::new(
                                "device_revoked",
                                format!("devices[{n}]"),
                                format!("device {d} is revoked"),
                            ))
                        }
                        Some((postman, false)) if *postman != l.postman => {
                            return Err(LineRefusal::new(
                                "device_of_another_postman",
                                format!("devices[{n}]"),
                                format!("device {d} is registered to {postman}, not {}", l.postman),
                            ))
                        }
                        Some(_) => {}
                    }
                }
            }
            Line::Device(l) => {
                if let (Some((_, true)), DeviceStatus::Active) = (self.devices.get(&l.id), l.status)
                {
                    return Err(LineRefusal::new(
                        "device_revoked",
                        "status",
                        format!(
                            "device {} is revoked for good: register the phone under a new id",
                            l.id
                        ),
                    ));
                }
            }
            Line::DeliveryPoint(_) | Line::PickupPoint(_) => {}
        }
        Ok(())
    }
}

/// The write a batch builds.
#[derive(Default)]
struct Plan {
    accepted: Vec<(DocId, tournee_sync_core::validator::Accepted)>,
    bases: HashMap<DocId, Vec<tournee_sync_core::automerge::ChangeHash>>,
    rows: Projection,
}

fn loaded(
    kind: SubjectKind,
    id: &str,
    now: i64,
    change: &str,
    record: serde_json::Value,
) -> NewEvent {
    let payload = Loaded {
        change: change.into(),
        record,
    };
    let payload = match kind {
        SubjectKind::Customer => Payload::CustomerLoaded(payload),
        SubjectKind::Item => Payload::ItemLoaded(payload),
        SubjectKind::Round => Payload::RoundPublished(payload),
        SubjectKind::Device => Payload::DeviceChanged(payload),
        SubjectKind::PickupPoint | SubjectKind::DeliveryPoint => {
            Payload::PickupPointLoaded(payload)
        }
    };
    let key = format!("{now}:{}", payload_digest(&payload));
    NewEvent::new(kind, id, now, &key, payload)
}

fn payload_digest(payload: &Payload) -> String {
    use sha2::Digest;
    let text = serde_json::to_string(payload).unwrap_or_default();
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn schema(id: &DocId, e: OperationError) -> WriteError {
    match e {
        OperationError::Invalid(v) => WriteError::Rule(v),
        other => WriteError::Internal(format!("{id}: {other}")),
    }
}

impl Plan {
    /// Adds a line whose references exist; its outcome, or a refusal the document gives.
    async fn line(
        &mut self,
        app: &AppState,
        sender: &Sender,
        references: &References,
        line: &Line,
        now: i64,
    ) -> Result<Result<Outcome, LineRefusal>, WriteError> {
        let existing_row = |key: &str| {
            if references.rows.contains(key) {
                Outcome::Updated
            } else {
                Outcome::Created
            }
        };
        Ok(Ok(match line {
            Line::DeliveryPoint(l) => {
                let id = DocId::delivery_point(&l.id).map_err(WriteError::Rule)?;
                let existing = if references.documents.contains(id.as_str()) {
                    app.docs.load(&app.db, &id).await?
                } else {
                    None
                };
                let (outcome, version) = match existing {
                    // Not materialised yet: the central row and this line are all there is; the
                    // document is built from them when it is first needed (`materialize`).
                    None => (existing_row(&l.id), 1),
                    Some(before) => {
                        let current =
                            operations::read_delivery_point(&before).map_err(|e| schema(&id, e))?;
                        let same = reference(l, current.reference.version) == current.reference
                            && l.access == current.access;
                        if same {
                            (Outcome::Updated, current.reference.version)
                        } else {
                            let version = current.reference.version + 1;
                            let mut after = before.fork();
                            operations::publish_reference(
                                &mut after,
                                &reference(l, version),
                                &l.access,
                            )
                            .map_err(|e| schema(&id, e))?;
                            if let Some(accepted) =
                                write::validated(app, &id, &before, after, sender)?
                            {
                                self.bases.insert(id.clone(), before.get_heads());
                                self.accepted.push((id, accepted));
                            }
                            (Outcome::Updated, version)
                        }
                    }
                };
                let version = i64::try_from(version).unwrap_or(i64::MAX);
                let pin = l.pin.map(|p| (p.lat, p.lon));
                self.rows.loads.push(Load::DeliveryPoint {
                    id: l.id.clone(),
                    lines: l.lines.clone(),
                    postcode: l.postcode.clone(),
                    city: l.city.clone(),
                    pin,
                    version,
                });
                // The central row is the load above; the event says what was published.
                let published = ReferenceChanged {
                    lines: l.lines.clone(),
                    pin,
                    version,
                };
                self.rows.feed.push(NewEvent::new(
                    SubjectKind::DeliveryPoint,
                    &l.id,
                    now,
                    &format!("{version}:{now}"),
                    Payload::ReferenceChanged(published),
                ));
                outcome
            }
            Line::Item(l, s10, arrived_ms) => {
                let id = DocId::item(s10);
                let existing = if references.documents.contains(id.as_str()) {
                    app.docs.load(&app.db, &id).await?
                } else {
                    None
                };
                let outcome = match existing {
                    None => {
                        let outcome = existing_row(s10.as_str());
                        if outcome == Outcome::Created {
                            self.rows.events.push(EventRow {
                                item_id: s10.to_string(),
                                code: UpuCode::Arrived,
                                at_ms: *arrived_ms,
                                reason: None,
                                action: None,
                                source: "import".into(),
                            });
                        }
                        outcome
                    }
                    Some(before) => {
                        let current = operations::read_item(&before).map_err(|e| schema(&id, e))?;
                        if current.delivery_point != l.delivery_point {
                            return Ok(Err(LineRefusal::new(
                                "delivery_point_fixed",
                                "delivery_point",
                                format!(
                                    "item {s10} goes to {}: an item's delivery point does not change once loaded",
                                    current.delivery_point
                                ),
                            )));
                        }
                        if current.requirements != l.requirements {
                            let mut after = before.fork();
                            operations::set_requirements(&mut after, &l.requirements)
                                .map_err(|e| schema(&id, e))?;
                            if let Some(accepted) =
                                write::validated(app, &id, &before, after, sender)?
                            {
                                self.bases.insert(id.clone(), before.get_heads());
                                self.accepted.push((id, accepted));
                            }
                        }
                        Outcome::Updated
                    }
                };
                self.rows.loads.push(Load::Item {
                    id: s10.to_string(),
                    delivery_point: l.delivery_point.clone(),
                    requirements: serde_json::to_string(&l.requirements).unwrap_or_default(),
                    needs_in_person: l.requirements.needs_addressee_in_person(),
                    sender: l.sender.clone(),
                    arrived_ms: *arrived_ms,
                });
                let record = json!({ "s10": s10.as_str(), "delivery_point": l.delivery_point, "requirements": l.requirements, "sender": l.sender });
                self.rows.feed.push(loaded(
                    SubjectKind::Item,
                    s10.as_str(),
                    now,
                    outcome.as_str(),
                    record,
                ));
                outcome
            }
            Line::Customer(l) => {
                let outcome = existing_row(&l.id);
                self.rows.loads.push(Load::Customer {
                    id: l.id.clone(),
                    name: l.display_name.clone(),
                    contacts: serde_json::to_string(&l.contacts).unwrap_or_default(),
                    delivery_points: l.delivery_points.clone(),
                });
                // Names and contacts stay in the central profile: the event names the points.
                let record = json!({ "id": l.id, "delivery_points": l.delivery_points });
                self.rows.feed.push(loaded(
                    SubjectKind::Customer,
                    &l.id,
                    now,
                    outcome.as_str(),
                    record,
                ));
                outcome
            }
            Line::PickupPoint(l) => {
                let outcome = existing_row(&l.id);
                self.rows.loads.push(Load::PickupPoint {
                    id: l.id.clone(),
                    kind: serde_json::to_value(l.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    name: l.name.clone(),
                    lines: serde_json::to_string(&l.lines).unwrap_or_default(),
                    postcode: l.postcode.clone(),
                    city: l.city.clone(),
                    pin: l.pin.map(|p| (p.lat, p.lon)),
                    opening_hours: serde_json::to_string(&l.opening_hours).unwrap_or_default(),
                });
                let record = serde_json::to_value(l).unwrap_or_default();
                self.rows.feed.push(loaded(
                    SubjectKind::PickupPoint,
                    &l.id,
                    now,
                    outcome.as_str(),
                    record,
                ));
                outcome
            }
            Line::Round(l) => {
                let outcome = existing_row(&l.id);
                let manifest = RoundManifest {
                    round_id: l.id.clone(),
                    date: l.date.clone(),
                    postman: l.postman.clone(),
                    device: l.devices[0].clone(),
                    stops: l
                        .stops
                        .iter()
                        .enumerate()
                        .map(|(n, s)| Stop {
                            order: u32::try_from(n + 1).unwrap_or(u32::MAX),
                            delivery_point: s.delivery_point.clone(),
                            items: s.items.clone(),
                        })
                        .collect(),
                };
                self.rows.loads.push(Load::Round {
                    manifest,
                    office: l.office.clone(),
                    more_devices: l.devices[1..].to_vec(),
                });
                let items: usize = l.stops.iter().map(|s| s.items.len()).sum();
                let record = json!({ "id": l.id, "date": l.date, "office": l.office, "postman": l.postman, "devices": l.devices, "stops": l.stops.len(), "items": items });
                self.rows.feed.push(loaded(
                    SubjectKind::Round,
                    &l.id,
                    now,
                    outcome.as_str(),
                    record,
                ));
                outcome
            }
            Line::Device(l) => {
                let outcome = existing_row(&l.id);
                let revoked_ms = (l.status == DeviceStatus::Revoked).then_some(now);
                self.rows.loads.push(Load::Device {
                    id: l.id.clone(),
                    postman: l.postman.clone(),
                    revoked_ms,
                });
                let record = serde_json::to_value(l).unwrap_or_default();
                self.rows.feed.push(loaded(
                    SubjectKind::Device,
                    &l.id,
                    now,
                    outcome.as_str(),
                    record,
                ));
                outcome
            }
        }))
    }
}
