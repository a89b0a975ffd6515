//! Convergence property: five replicas — three postmen's phones, the server (where the back office
//! writes) and a customer's app — perform random operations and sync on random schedules where
//! requests and answers are dropped, duplicated and delivered late. After a final clean sync
//! every replica holds identical documents and no committed interaction is lost.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;

use proptest::prelude::*;
use tournee_sync_core::fixtures;
use tournee_sync_core::model::{
    AccessNotes, Preferences, Review, ReviewDecision, RoundManifest, Stop,
};
use tournee_sync_core::operations::{self, new_entry_id};
use tournee_sync_core::signing::SoftwareKey;
use tournee_sync_core::store::{
    DeviceIdentity, InteractionKind, PhoneStore, StoreOptions, StoreRole,
};
use tournee_sync_core::sync::wire::{self, Limits, SyncResponse};
use tournee_sync_core::sync::{MemoryHost, SyncSession};
use tournee_sync_core::validator::{Role, Scope, Sender};
use tournee_sync_core::DocId;

const POINTS: u32 = 3;
const ITEMS_PER_POINT: u32 = 2;
const PHONES: usize = 3;
/// Replica index of the customer's app (phones are 0..PHONES).
const CUSTOMER: usize = PHONES;

#[derive(Debug, Clone)]
enum Step {
    /// A postman records an attempt on an item.
    Attempt {
        phone: usize,
        item: u32,
        delivered: bool,
    },
    /// A postman proposes a correction for a delivery point.
    Correction { phone: usize, point: u32 },
    /// The customer chooses a redelivery date for an item.
    Choice { item: u32, day: u32 },
    /// The customer changes a standing preference of their delivery point.
    Preference {
        safe_place: Option<u8>,
        never_to_neighbour: bool,
    },
    /// The back office publishes a new access note.
    Publish { point: u32, code: u16 },
    /// The back office reviews the oldest unreviewed correction.
    Review { approve: bool },
    /// A replica syncs through a faulty network.
    Sync { replica: usize, fault: Fault },
    /// A phone hands its round over to another by file (`export_round` / `import_round`).
    Relay { from: usize, to: usize },
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    None,
    DropRequest,
    DropAnswer,
    DuplicateRequest,
    /// Keep the answer and deliver it later, after other exchanges.
    DelayAnswer,
    /// Deliver an earlier delayed answer now, before this exchange.
    DeliverLate,
}

fn step() -> impl Strategy<Value = Step> {
    let phone = 0..PHONES;
    let item = 0..POINTS * ITEMS_PER_POINT;
    let fault = prop_oneof![
        3 => Just(Fault::None),
        1 => Just(Fault::DropRequest),
        1 => Just(Fault::DropAnswer),
        1 => Just(Fault::DuplicateRequest),
        1 => Just(Fault::DelayAnswer),
        1 => Just(Fault::DeliverLate),
    ];
    prop_oneof![
        3 => (phone.clone(), item.clone(), any::<bool>())
            .prop_map(|(phone, item, delivered)| Step::Attempt { phone, item, delivered }),
        1 => (phone, 0..POINTS).prop_map(|(phone, point)| Step::Correction { phone, point }),
        2 => (item, 0..20u32).prop_map(|(item, day)| Step::Choice { item, day }),
        1 => (proptest::option::of(0..4u8), any::<bool>())
            .prop_map(|(safe_place, never_to_neighbour)| Step::Preference { safe_place, never_to_neighbour }),
        1 => (0..POINTS, any::<u16>()).prop_map(|(point, code)| Step::Publish { point, code }),
        1 => any::<bool>().prop_map(|approve| Step::Review { approve }),
        5 => (0..=PHONES, fault).prop_map(|(replica, fault)| Step::Sync { replica, fault }),
        1 => (0..PHONES, 0..PHONES).prop_map(|(from, to)| Step::Relay { from, to }),
    ]
}

struct World {
    host: MemoryHost,
    replicas: Vec<PhoneStore>,
    senders: Vec<Sender>,
    /// Each phone's signing key.
    keys: Vec<SoftwareKey>,
    delayed: Vec<Vec<SyncResponse>>,
    /// (document, map, entry id) of every interaction a replica committed.
    committed: Vec<(DocId, &'static str, String)>,
    _dirs: Vec<tempfile::TempDir>,
}

/// The customer owns delivery point 0 and its items.
fn customer_docs() -> Vec<DocId> {
    let mut ids = vec![DocId::delivery_point(&fixtures::delivery_point_id(0)).unwrap()];
    ids.extend((0..ITEMS_PER_POINT).map(|n| DocId::item(&fixtures::s10(n))));
    ids
}

fn world() -> World {
    let (host, manifest) = common::town(POINTS, ITEMS_PER_POINT);

    let mut replicas = Vec::new();
    let mut senders = Vec::new();
    let mut dirs = Vec::new();
    let mut host = host;
    let mut keys = Vec::new();
    for p in 0..PHONES {
        let dir = tempfile::tempdir().unwrap();
        let (device, postman) = (format!("dev-{p}"), format!("pm-{p}"));
        // Every phone signs; its key is registered with the server.
        let key = SoftwareKey::generate();
        let mut phone = common::phone(dir.path(), &device, &postman, &manifest);
        phone.set_signer(std::sync::Arc::new(key.clone()));
        replicas.push(phone);
        let sender = common::postman_sender(&device, &postman, &manifest);
        host.register_device(&device, sender.clone(), Some(key.public_key()));
        senders.push(sender);
        keys.push(key);
        dirs.push(dir);
    }
    let dir = tempfile::tempdir().unwrap();
    let identity = DeviceIdentity {
        device: "cust-app".into(),
        principal: "cust-1".into(),
        role: StoreRole::Customer,
    };
    let mut customer =
        PhoneStore::open(dir.path(), identity, StoreOptions { fsync: false }).unwrap();
    customer
        .set_manifest(RoundManifest {
            round_id: "customer-view".into(),
            date: "2026-11-23".into(),
            postman: "cust-1".into(),
            device: "cust-app".into(),
            stops: vec![Stop {
                order: 1,
                delivery_point: fixtures::delivery_point_id(0),
                items: (0..ITEMS_PER_POINT)
                    .map(|n| fixtures::s10(n).to_string())
                    .collect(),
            }],
        })
        .unwrap();
    replicas.push(customer);
    senders.push(Sender {
        role: Role::Customer,
        principal: "cust-1".into(),
        device: None,
        scope: Scope::Documents(customer_docs().into_iter().collect::<HashSet<_>>()),
    });
    dirs.push(dir);
    World {
        host,
        replicas,
        senders,
        keys,
        delayed: vec![Vec::new(); PHONES + 1],
        committed: Vec::new(),
        _dirs: dirs,
    }
}

impl World {
    fn run(&mut self, step: Step) {
        match step {
            Step::Attempt {
                phone,
                item,
                delivered,
            } => {
                let id = DocId::item(&fixtures::s10(item));
                let (device, postman) = (format!("dev-{phone}"), format!("pm-{phone}"));
                let attempt = if delivered {
                    fixtures::delivered_attempt(&device, &postman, item)
                } else {
                    fixtures::absent_attempt(&device, &postman, item)
                };
                let entry = new_entry_id();
                let store = &mut self.replicas[phone];
                if !store.contains(&id) {
                    return; // not downloaded yet: the app shows nothing to record on
                }
                let done = store.commit(&id, InteractionKind::Attempt, |doc| {
                    Ok((
                        entry.clone(),
                        operations::record_attempt(doc, &entry, &attempt)?,
                    ))
                });
                if done.unwrap().is_some() {
                    self.committed.push((id, "attempts", entry));
                }
            }
            Step::Correction { phone, point } => {
                let id = DocId::delivery_point(&fixtures::delivery_point_id(point)).unwrap();
                let correction =
                    fixtures::number_correction(&format!("dev-{phone}"), &format!("pm-{phone}"));
                let entry = new_entry_id();
                let store = &mut self.replicas[phone];
                if !store.contains(&id) {
                    return;
                }
                store
                    .commit(&id, InteractionKind::Correction, |doc| {
                        Ok((
                            entry.clone(),
                            operations::propose_correction(doc, &entry, &correction)?,
                        ))
                    })
                    .unwrap();
                self.committed.push((id, "corrections", entry));
            }
            Step::Choice { item, day } => {
                let item = item % ITEMS_PER_POINT; // the customer's own items
                let id = DocId::item(&fixtures::s10(item));
                let choice =
                    fixtures::redeliver_choice("cust-1", &format!("2026-12-{:02}", day + 1));
                let entry = new_entry_id();
                let store = &mut self.replicas[CUSTOMER];
                if !store.contains(&id) {
                    return;
                }
                let done = store.commit(&id, InteractionKind::Choice, |doc| {
                    Ok((
                        entry.clone(),
                        operations::choose_for_item(doc, &entry, &choice)?,
                    ))
                });
                // After a delivery the app refuses new choices: that is a rule, not a loss.
                if let Ok(Some(_)) = done {
                    self.committed.push((id, "choices", entry));
                }
            }
            Step::Preference {
                safe_place,
                never_to_neighbour,
            } => {
                let id = DocId::delivery_point(&fixtures::delivery_point_id(0)).unwrap();
                let store = &mut self.replicas[CUSTOMER];
                if !store.contains(&id) {
                    return;
                }
                let current = operations::read_delivery_point(store.document(&id).unwrap())
                    .unwrap()
                    .preferences;
                let preferences = Preferences {
                    safe_place: safe_place.map(|n| format!("shed {n}")),
                    never_to_neighbour,
                    preferred_neighbour: if never_to_neighbour {
                        None
                    } else {
                        current.preferred_neighbour
                    },
                    ..current
                };
                store
                    .commit(&id, InteractionKind::Preferences, |doc| {
                        let hash = operations::set_preferences(doc, &preferences)?;
                        Ok((hash.map(|h| h.to_string()).unwrap_or_default(), hash))
                    })
                    .unwrap();
            }
            Step::Publish { point, code } => {
                let id = DocId::delivery_point(&fixtures::delivery_point_id(point)).unwrap();
                let access = AccessNotes {
                    door_code: Some(format!("{code:05}")),
                    ..Default::default()
                };
                self.host.apply_local(&id, |doc| {
                    let reference = operations::read_delivery_point(doc).unwrap().reference;
                    operations::publish_reference(doc, &reference, &access).unwrap();
                });
            }
            Step::Review { approve } => {
                for point in 0..POINTS {
                    let id = DocId::delivery_point(&fixtures::delivery_point_id(point)).unwrap();
                    let dp = operations::read_delivery_point(self.host.get(&id).unwrap()).unwrap();
                    let Some(pending) = dp
                        .corrections
                        .keys()
                        .find(|k| !dp.reviews.contains_key(*k))
                        .cloned()
                    else {
                        continue;
                    };
                    let review = Review {
                        decision: if approve {
                            ReviewDecision::Approved
                        } else {
                            ReviewDecision::Rejected
                        },
                        by: "bo-1".into(),
                        reason: "checked on the map".into(),
                        at_ms: fixtures::MORNING_MS,
                    };
                    self.host.apply_local(&id, |doc| {
                        operations::review_correction(doc, &pending, &review).unwrap();
                    });
                    return;
                }
            }
            Step::Sync { replica, fault } => self.exchange(replica, fault),
            Step::Relay { from, to } => {
                if from == to {
                    return;
                }
                let key = self.keys[from].public_key().to_sec1();
                let file = self.replicas[from].export_round(&key).unwrap();
                // Whatever the exporter holds (its own changes, those it carries for others,
                // the server's), an honest hand-over is taken.
                if let Err(refused) = self.replicas[to].import_round(&file) {
                    panic!("an honest hand-over was refused: {refused}");
                }
            }
        }
    }

    /// One request/answer exchange (not a whole session) through a faulty network.
    fn exchange(&mut self, replica: usize, fault: Fault) {
        let limits = Limits::default();
        if let Fault::DeliverLate = fault {
            if let Some(late) = self.delayed[replica].pop() {
                let mut session = SyncSession::new(&mut self.replicas[replica], limits);
                session.apply_response(late).unwrap();
            }
        }
        let mut session = SyncSession::new(&mut self.replicas[replica], limits);
        let Some(request) = session.next_request().unwrap() else {
            return;
        };
        let frame = wire::encode_request(&request);
        if let Fault::DropRequest = fault {
            return;
        }
        let deliver = |host: &mut MemoryHost| {
            let request = wire::decode_request(&frame, &limits).unwrap();
            let answer = host.respond(request, &self.senders[replica], &limits);
            assert!(
                answer
                    .outcomes
                    .iter()
                    .all(|o| matches!(o, tournee_sync_core::sync::DocOutcome::Accepted { .. })),
                "an honest replica was refused: {:?}",
                answer.outcomes
            );
            wire::decode_response(&wire::encode_response(&answer.response), &limits).unwrap()
        };
        let mut answer = deliver(&mut self.host);
        if let Fault::DuplicateRequest = fault {
            answer = deliver(&mut self.host);
        }
        match fault {
            Fault::DropAnswer => {}
            Fault::DelayAnswer => self.delayed[replica].push(answer),
            _ => session.apply_response(answer).unwrap(),
        }
    }

    /// Clean sessions for everyone, twice round, so every change reaches every replica.
    fn settle(&mut self) {
        for _ in 0..2 {
            for r in 0..=PHONES {
                let sender = self.senders[r].clone();
                common::sync(&mut self.replicas[r], &mut self.host, &sender);
            }
        }
    }

    fn check(&mut self) {
        for (r, store) in self.replicas.iter_mut().enumerate() {
            assert!(
                store.pending_interactions().is_empty(),
                "replica {r} has unacknowledged interactions"
            );
            let ids: Vec<DocId> = store.document_ids().cloned().collect();
            if r == CUSTOMER {
                assert_eq!(ids.len(), customer_docs().len());
            } else {
                assert_eq!(ids.len(), (POINTS * (1 + ITEMS_PER_POINT)) as usize);
            }
            for id in ids {
                let mine = store.document(&id).unwrap();
                let server = self.host.get(&id).unwrap();
                assert_eq!(
                    mine.get_heads(),
                    server.get_heads(),
                    "replica {r} differs on {id}"
                );
                assert_eq!(
                    mine.hydrate(None),
                    server.hydrate(None),
                    "replica {r} differs on {id}"
                );
            }
        }
        for (id, map, entry) in &self.committed {
            let doc = self.host.get(id).unwrap();
            let present = match *map {
                "attempts" => operations::read_item(doc)
                    .unwrap()
                    .attempts
                    .contains_key(entry),
                "choices" => operations::read_item(doc)
                    .unwrap()
                    .choices
                    .contains_key(entry),
                _ => operations::read_delivery_point(doc)
                    .unwrap()
                    .corrections
                    .contains_key(entry),
            };
            assert!(present, "{map}/{entry} of {id} was lost");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge_and_lose_nothing(steps in proptest::collection::vec(step(), 1..60)) {
        let mut world = world();
        // Every replica starts with its round downloaded, as the app does before leaving.
        world.settle();
        for step in steps {
            world.run(step);
        }
        world.settle();
        world.check();
    }
}
