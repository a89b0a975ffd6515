//! Property test of the change validator against the write policy, written down here
//! independently of it (issue #19): random but well-formed Automerge changes, built as a
//! postman or a customer on real documents — records honest or carrying extra keys and values of
//! every Automerge type, puts on every kind of path, long strings, conflicts between actors,
//! actors and record keys that belong to someone else, empty changes, messages — must be
//! accepted exactly when the policy permits them, by the phone's check (`check_applied`) and by
//! the server's (`validate_claimed`, which also knows who owns which actor and record key).
//!
//! CI runs 256 cases (the default below); run it longer by hand with `PROPTEST_CASES`, e.g.
//! `PROPTEST_CASES=20000 cargo test --release -p tournee-sync-core --test validator_policy`.

use std::collections::{HashMap, HashSet};

use automerge::transaction::{CommitOptions, Transactable, Transaction};
use automerge::{ActorId, Automerge, ObjId, ObjType, ReadDoc, ScalarValue, Value, ROOT};
use proptest::prelude::*;

use tournee_sync_core::fixtures::{self, MORNING_MS};
use tournee_sync_core::model::codec;
use tournee_sync_core::operations;
use tournee_sync_core::validator::{
    check_applied, validate_claimed, Claims, Role, Scope, Sender, SERVER_OWNER,
};
use tournee_sync_core::DocId;

const DEVICE: &str = "device-1";
const POSTMAN: &str = "postman-1";
const CUSTOMER: &str = "customer-1";
const ITEM: u32 = 7;
const POINT: u32 = 1;
/// The postman's phone, which wrote the records already in the documents.
const PHONE: [u8; 16] = [0xaa; 16];
/// The customer's app.
const APP: [u8; 16] = [0xcc; 16];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Item,
    Point,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Postman,
    Customer,
}

/// Whose actor a change is written under.
#[derive(Debug, Clone, Copy)]
enum ActorPick {
    /// The sender's own (bound to them).
    Own,
    /// One nobody has used.
    Fresh(u8),
    /// The other party's (bound to them).
    Foreign,
    /// The server's (the documents' skeleton).
    Server,
}

/// A value of one Automerge type.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Val {
    Short,
    Long(usize),
    Int,
    Uint,
    F64,
    Bool,
    Null,
    Counter,
    Timestamp,
    Bytes,
    Map,
    List,
}

#[derive(Debug, Clone, Copy)]
enum KeyPick {
    /// A key nobody uses.
    Fresh,
    /// The key of a record the document holds.
    Existing,
    /// A key another document's record holds.
    Taken,
}

#[derive(Debug, Clone, Copy)]
enum Body {
    /// The record as sync-core's operations write it.
    Honest,
    /// With one key more.
    Extra(Val),
    /// With its milliseconds field set to this.
    Ms(Val),
}

#[derive(Debug, Clone)]
enum Act {
    Record {
        map: &'static str,
        key: KeyPick,
        body: Body,
    },
    Put {
        path: &'static [&'static str],
        val: Val,
    },
}

#[derive(Debug, Clone)]
struct ChangePlan {
    actor: ActorPick,
    /// From the server's document rather than on top of the changes before it.
    concurrent: bool,
    message: Option<usize>,
    acts: Vec<Act>,
}

#[derive(Debug, Clone)]
struct Case {
    kind: Kind,
    who: Who,
    changes: Vec<ChangePlan>,
}

// ---------------------------------------------------------------------------------------------
// The policy, written from ARCHITECTURE.md's trust section, not from the validator
// ---------------------------------------------------------------------------------------------

/// Whether the policy permits the whole batch; `server` adds what only the server knows (who
/// owns which actor, which record keys other documents hold).
/// `wrote` tells, per change and act, whether the act wrote anything: putting the value a
/// field holds already is no operation, and a change of no operation at all is never made.
fn permitted(case: &Case, wrote: &[Vec<bool>], server: bool) -> bool {
    case.changes.iter().zip(wrote).all(|(change, wrote)| {
        let made = change.acts.is_empty() || wrote.contains(&true);
        let actor_ok = !server || matches!(change.actor, ActorPick::Own | ActorPick::Fresh(_));
        !made
            || (actor_ok
                && change.message.is_none()
                && !change.acts.is_empty()
                && change
                    .acts
                    .iter()
                    .zip(wrote)
                    .all(|(act, wrote)| !wrote || act_permitted(case.kind, case.who, act, server)))
    })
}

fn act_permitted(kind: Kind, who: Who, act: &Act, server: bool) -> bool {
    match act {
        Act::Record { map, key, body } => {
            // A postman adds attempts to items and corrections to points; a customer adds
            // choices to items. Records are new, whole, exactly of their schema.
            let may = matches!(
                (kind, who, *map),
                (Kind::Item, Who::Postman, "attempts")
                    | (Kind::Item, Who::Customer, "choices")
                    | (Kind::Point, Who::Postman, "corrections")
            );
            let key_ok = match key {
                KeyPick::Fresh => true,
                KeyPick::Existing => false,
                KeyPick::Taken => !server,
            };
            let body_ok = match body {
                Body::Honest => true,
                Body::Extra(_) => false,
                Body::Ms(val) => *val == Val::Int,
            };
            may && key_ok && body_ok
        }
        // A customer sets their preferences, each field of its type: a short string or null
        // for the safe place, a boolean for "never to a neighbour". Nothing else is written in
        // place by a postman or a customer.
        Act::Put { path, val } => match (kind, who, *path) {
            (Kind::Point, Who::Customer, ["preferences", "safe_place"]) => {
                matches!(val, Val::Short | Val::Null)
            }
            (Kind::Point, Who::Customer, ["preferences", "never_to_neighbour"]) => {
                *val == Val::Bool
            }
            _ => false,
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Building the changes
// ---------------------------------------------------------------------------------------------

fn doc_id(kind: Kind) -> DocId {
    match kind {
        Kind::Item => DocId::item(&fixtures::s10(ITEM)),
        Kind::Point => DocId::delivery_point(&fixtures::delivery_point_id(POINT))
            .unwrap_or_else(|e| panic!("fixture id: {e}")),
    }
}

/// The server's document, with records the phone and the app wrote already.
fn server_doc(kind: Kind) -> Automerge {
    let mut doc = match kind {
        Kind::Item => fixtures::item_doc(ITEM, POINT),
        Kind::Point => fixtures::delivery_point_doc(POINT),
    }
    .unwrap_or_else(|e| panic!("fixture: {e}"));
    let mut phone = doc.fork().with_actor(ActorId::from(PHONE));
    match kind {
        Kind::Item => {
            let attempt = fixtures::absent_attempt(DEVICE, POSTMAN, ITEM);
            operations::record_attempt(&mut phone, "e1", &attempt).map(drop)
        }
        Kind::Point => {
            let correction = fixtures::number_correction(DEVICE, POSTMAN);
            operations::propose_correction(&mut phone, "k0", &correction).map(drop)
        }
    }
    .unwrap_or_else(|e| panic!("existing record: {e}"));
    doc.merge(&mut phone)
        .unwrap_or_else(|e| panic!("merge: {e}"));
    if kind == Kind::Item {
        let mut app = doc.fork().with_actor(ActorId::from(APP));
        let choice = fixtures::redeliver_choice(CUSTOMER, "2026-11-25");
        operations::choose_for_item(&mut app, "c0", &choice)
            .unwrap_or_else(|e| panic!("existing choice: {e}"));
        doc.merge(&mut app).unwrap_or_else(|e| panic!("merge: {e}"));
    }
    doc
}

fn sender(case: &Case) -> Sender {
    let scope = Scope::Documents(HashSet::from([doc_id(case.kind)]));
    match case.who {
        Who::Postman => Sender {
            role: Role::Postman,
            principal: POSTMAN.into(),
            device: Some(DEVICE.into()),
            scope,
        },
        Who::Customer => Sender {
            role: Role::Customer,
            principal: CUSTOMER.into(),
            device: None,
            scope,
        },
    }
}

fn owner_of(who: Who) -> String {
    let scope = Scope::All;
    let (role, principal, device) = match who {
        Who::Postman => (Role::Postman, POSTMAN, Some(DEVICE.to_string())),
        Who::Customer => (Role::Customer, CUSTOMER, None),
    };
    Sender {
        role,
        principal: principal.into(),
        device,
        scope,
    }
    .owner()
}

fn actor(case: &Case, pick: ActorPick) -> ActorId {
    let (own, foreign) = match case.who {
        Who::Postman => (PHONE, APP),
        Who::Customer => (APP, PHONE),
    };
    match pick {
        ActorPick::Own => ActorId::from(own),
        ActorPick::Foreign => ActorId::from(foreign),
        ActorPick::Server => fixtures::server_actor(),
        ActorPick::Fresh(n) => ActorId::from([0x10 + n % 8; 16]),
    }
}

/// What the server knows: the phone, the app and the server own their actors, and another
/// document holds every `taken…` key.
fn claims(case: &Case) -> Claims {
    let mut claims = Claims::default();
    claims
        .actors
        .insert(ActorId::from(PHONE), owner_of(Who::Postman));
    claims
        .actors
        .insert(ActorId::from(APP), owner_of(Who::Customer));
    claims
        .actors
        .insert(fixtures::server_actor(), SERVER_OWNER.into());
    let elsewhere = DocId::item(&fixtures::s10(ITEM + 1));
    for (c, change) in case.changes.iter().enumerate() {
        for (a, act) in change.acts.iter().enumerate() {
            if let Act::Record { map, .. } = act {
                claims.record_keys.insert(
                    (map.to_string(), format!("taken{c}x{a}")),
                    elsewhere.clone(),
                );
            }
        }
    }
    claims
}

fn put_val(
    tx: &mut Transaction<'_>,
    obj: &ObjId,
    key: &str,
    val: Val,
) -> Result<(), automerge::AutomergeError> {
    let scalar: ScalarValue = match val {
        Val::Short => "garage".into(),
        Val::Long(n) => "x".repeat(n).into(),
        Val::Int => ScalarValue::Int(MORNING_MS),
        Val::Uint => ScalarValue::Uint(MORNING_MS.unsigned_abs()),
        Val::F64 => ScalarValue::F64(1.5),
        Val::Bool => ScalarValue::Boolean(true),
        Val::Null => ScalarValue::Null,
        Val::Counter => ScalarValue::counter(1),
        Val::Timestamp => ScalarValue::Timestamp(MORNING_MS),
        Val::Bytes => ScalarValue::Bytes(vec![0xde, 0xad]),
        Val::Map => {
            let map = tx.put_object(obj, key, ObjType::Map)?;
            return tx.put(&map, "inner", "value");
        }
        Val::List => {
            let list = tx.put_object(obj, key, ObjType::List)?;
            return tx.insert(&list, 0, 1_i64);
        }
    };
    tx.put(obj, key, scalar)
}

fn map_at(tx: &Transaction<'_>, obj: &ObjId, key: &str) -> Option<ObjId> {
    match tx.get(obj, key) {
        Ok(Some((Value::Object(ObjType::Map), id))) => Some(id),
        _ => None,
    }
}

fn write_act(
    tx: &mut Transaction<'_>,
    act: &Act,
    tag: &str,
) -> Result<(), automerge::AutomergeError> {
    match act {
        Act::Record { map, key, body } => {
            let Some(records) = map_at(tx, &ROOT, map) else {
                return Ok(());
            };
            let key = match key {
                KeyPick::Fresh => format!("n{tag}"),
                KeyPick::Existing => match *map {
                    "attempts" => "e1",
                    "choices" => "c0",
                    _ => "k0",
                }
                .to_string(),
                KeyPick::Taken => format!("taken{tag}"),
            };
            let (value, ms) = match *map {
                "attempts" => (
                    codec::to_hydrate(&fixtures::absent_attempt(DEVICE, POSTMAN, ITEM)),
                    "recorded_at_ms",
                ),
                "choices" => (
                    codec::to_hydrate(&fixtures::redeliver_choice(CUSTOMER, "2026-11-25")),
                    "made_at_ms",
                ),
                _ => (
                    codec::to_hydrate(&fixtures::number_correction(DEVICE, POSTMAN)),
                    "proposed_at_ms",
                ),
            };
            let value = value.unwrap_or_else(|e| panic!("codec: {e}"));
            let record = tx.batch_create_object(&records, key.as_str(), &value, false)?;
            match body {
                Body::Honest => Ok(()),
                Body::Extra(val) => put_val(tx, &record, "extra", *val),
                Body::Ms(val) => put_val(tx, &record, ms, *val),
            }
        }
        Act::Put { path, val } => {
            let (last, parents) = path.split_last().unwrap_or((&"", &[]));
            let mut obj = ROOT;
            for key in parents {
                let Some(next) = map_at(tx, &obj, key) else {
                    return Ok(());
                };
                obj = next;
            }
            put_val(tx, &obj, last, *val)
        }
    }
}

/// The server's document before the plan, the documents after it, and which acts wrote
/// something.
fn build(case: &Case) -> (Automerge, Automerge, Vec<Vec<bool>>) {
    let server = server_doc(case.kind);
    let mut forks: HashMap<ActorId, Automerge> = HashMap::new();
    let mut latest = server.clone();
    let mut wrote = Vec::new();
    for (c, change) in case.changes.iter().enumerate() {
        let mut acts_wrote = Vec::new();
        let actor = actor(case, change.actor);
        let mut doc = match forks.remove(&actor) {
            Some(doc) => doc,
            None if change.concurrent => server.fork().with_actor(actor.clone()),
            None => latest.fork().with_actor(actor.clone()),
        };
        let options = || match change.message {
            Some(n) => CommitOptions::default().with_message("m".repeat(n)),
            None => CommitOptions::default(),
        };
        if change.acts.is_empty() {
            doc.empty_commit(options());
        } else {
            doc.transact_with(
                |_| options(),
                |tx| {
                    for (a, act) in change.acts.iter().enumerate() {
                        let before = tx.pending_ops();
                        write_act(tx, act, &format!("{c}x{a}"))?;
                        acts_wrote.push(tx.pending_ops() > before);
                    }
                    Ok::<_, automerge::AutomergeError>(())
                },
            )
            .unwrap_or_else(|f| panic!("building the change: {}", f.error));
        }
        latest
            .merge(&mut doc.clone())
            .unwrap_or_else(|e| panic!("merge: {e}"));
        forks.insert(actor, doc);
        wrote.push(acts_wrote);
    }
    (server, latest, wrote)
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

fn val() -> impl Strategy<Value = Val> {
    prop_oneof![
        3 => Just(Val::Short),
        1 => (121usize..6_000).prop_map(Val::Long),
        2 => Just(Val::Int),
        1 => Just(Val::Uint),
        1 => Just(Val::F64),
        2 => Just(Val::Bool),
        2 => Just(Val::Null),
        1 => Just(Val::Counter),
        1 => Just(Val::Timestamp),
        1 => Just(Val::Bytes),
        1 => Just(Val::Map),
        1 => Just(Val::List),
    ]
}

/// What sync-core's operations write for the role: most of what is generated, so that most
/// batches mix honest acts with one forged, and many are wholly honest.
fn honest(kind: Kind, who: Who) -> BoxedStrategy<Act> {
    let record = |map| Act::Record {
        map,
        key: KeyPick::Fresh,
        body: Body::Honest,
    };
    match (kind, who) {
        (Kind::Item, Who::Postman) => Just(record("attempts")).boxed(),
        (Kind::Item, Who::Customer) => Just(record("choices")).boxed(),
        (Kind::Point, Who::Postman) => Just(record("corrections")).boxed(),
        (Kind::Point, Who::Customer) => prop_oneof![
            prop_oneof![Just(Val::Short), Just(Val::Null)].prop_map(|val| Act::Put {
                path: &["preferences", "safe_place"],
                val,
            }),
            Just(Act::Put {
                path: &["preferences", "never_to_neighbour"],
                val: Val::Bool,
            }),
        ]
        .boxed(),
    }
}

fn act(kind: Kind, who: Who) -> impl Strategy<Value = Act> {
    let maps: &'static [&'static str] = match kind {
        Kind::Item => &["attempts", "choices"],
        Kind::Point => &["corrections", "reviews"],
    };
    let paths: &'static [&'static [&'static str]] = match kind {
        Kind::Item => &[
            &["kind"],
            &["requirements", "signature"],
            &["attempts", "e1", "device"],
            &["choices", "c0", "made_by"],
        ],
        Kind::Point => &[
            &["id"],
            &["preferences", "safe_place"],
            &["preferences", "never_to_neighbour"],
            &["preferences", "<script>"],
            &["reference", "street"],
            &["corrections", "k0", "device"],
        ],
    };
    let key = prop_oneof![
        2 => Just(KeyPick::Fresh),
        1 => Just(KeyPick::Existing),
        1 => Just(KeyPick::Taken),
    ];
    let body = prop_oneof![
        2 => Just(Body::Honest),
        1 => val().prop_map(Body::Extra),
        2 => val().prop_map(Body::Ms),
    ];
    prop_oneof![
        6 => honest(kind, who),
        1 => (prop::sample::select(maps), key, body)
            .prop_map(|(map, key, body)| Act::Record { map, key, body }),
        1 => (prop::sample::select(paths), val()).prop_map(|(path, val)| Act::Put { path, val }),
    ]
}

fn change(kind: Kind, who: Who) -> impl Strategy<Value = ChangePlan> {
    let actor = prop_oneof![
        12 => Just(ActorPick::Own),
        3 => (0u8..4).prop_map(ActorPick::Fresh),
        1 => Just(ActorPick::Foreign),
        1 => Just(ActorPick::Server),
    ];
    let message = prop_oneof![20 => Just(None), 1 => (1usize..2_000).prop_map(Some)];
    let acts = prop_oneof![
        1 => Just(Vec::new()),
        20 => prop::collection::vec(act(kind, who), 1..4),
    ];
    (actor, any::<bool>(), message, acts).prop_map(|(actor, concurrent, message, acts)| {
        ChangePlan {
            actor,
            concurrent,
            message,
            acts,
        }
    })
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![Just(Kind::Item), Just(Kind::Point)],
        prop_oneof![Just(Who::Postman), Just(Who::Customer)],
    )
        .prop_flat_map(|(kind, who)| {
            prop::collection::vec(change(kind, who), 1..4).prop_map(move |changes| Case {
                kind,
                who,
                changes,
            })
        })
}

/// 256 cases unless `PROPTEST_CASES` says otherwise.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256);
    ProptestConfig::with_cases(cases)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_validator_accepts_exactly_what_the_policy_permits(case in case()) {
        let (server, after, wrote) = build(&case);
        let id = doc_id(case.kind);
        let sender = sender(&case);
        let changes = after.get_changes(&server.get_heads());

        let phone = check_applied(&id, &server, &after, &changes, &sender);
        prop_assert_eq!(
            phone.is_ok(),
            permitted(&case, &wrote, false),
            "phone's check: {:?}",
            phone
        );
        let server_side = validate_claimed(&id, &server, changes, &sender, &claims(&case));
        prop_assert_eq!(
            server_side.is_ok(),
            permitted(&case, &wrote, true),
            "server's check: {:?}",
            server_side.map(|a| a.written)
        );
    }
}
