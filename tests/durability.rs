//! Durability: the server is killed with SIGKILL while phones sync, again and again; every
//! interaction the server acknowledged must be in the database when it comes back.
//!
//! The server runs as a process of its own (`test_server`), so a kill is a real crash: no
//! destructor, no graceful shutdown, no flush. Two postmen's phones (`pm-1`/`dev-1`,
//! `pm-2`/`dev-2`) record attempts and a customer's app (`cust-1`) records choices on some of the
//! same items, each syncing over HTTP in a loop of its own, until the server dies under them. A
//! phone whose call fails keeps its store as it is (the request or the answer was lost) and
//! carries on in the next round with the same store.
//!
//! After every kill, before anything can re-upload, the database is opened directly: every
//! interaction a phone learned was acknowledged must already be there (a later push could
//! otherwise hide a loss by restoring it). At the end the server restarts cleanly, every phone
//! finishes a sync, and the database must hold every recorded interaction exactly once, with no
//! phone holding anything pending.
//!
//! A SIGKILL is not a power cut: what the server handed the kernel survives it. So this checks
//! that the server acknowledges only what its database committed, not the fsync settings.
//!
//! `DURABILITY_CUSTOMER=0` leaves the customer's app out (postmen only).
//! `DURABILITY_SEED=<n>` replays a run's choices (kill delays, what each phone records); the
//! seed is printed with `--nocapture`. Timing still varies, so a replay is close, not exact.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use tournee_e2e::{backends, settings, Backend, ServerProcess};
use tournee_server::auth::{Keys, TokenRole};
use tournee_server::db::{Database, Table};
use tournee_server::demo;
use tournee_sync_core::fixtures;
use tournee_sync_core::model::{RoundManifest, Stop};
use tournee_sync_core::operations;
use tournee_sync_core::store::{
    DeviceIdentity, Interaction, InteractionKind, PhoneStore, StoreOptions, StoreRole,
};
use tournee_sync_core::sync::wire::{self, Limits, RequestBody};
use tournee_sync_core::sync::{SyncReport, SyncSession};
use tournee_sync_core::DocId;

/// Kills per backend, at least.
const MIN_KILLS: usize = 12;
/// Kills per backend at most, while no kill has yet cut a push or lost an answer.
const MAX_KILLS: usize = 24;
/// How long the server lives before it is killed, in milliseconds (uniform).
const LIFETIME_MS: std::ops::Range<u64> = 50..600;

// ---------------------------------------------------------------------------------------------
// A small deterministic generator (SplitMix64): no dependency, and a seed to print.

#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn range(&mut self, r: std::ops::Range<u64>) -> u64 {
        r.start + self.below(r.end - r.start)
    }

    fn fork(&mut self) -> Rng {
        Rng(self.next())
    }
}

// ---------------------------------------------------------------------------------------------
// The server process.

/// The `test_server` binary of this package.
const TEST_SERVER: &str = env!("CARGO_BIN_EXE_test_server");

// ---------------------------------------------------------------------------------------------
// Phones.

/// A device: its store on disk, its token, and what it recorded.
struct Phone {
    label: String,
    identity: DeviceIdentity,
    store: PhoneStore,
    token: String,
    /// The items it records on, with their fixture number.
    targets: Vec<(DocId, u32)>,
    recorded: u32,
    rng: Rng,
    /// Every interaction committed on this phone.
    committed: Vec<Interaction>,
    _dir: tempfile::TempDir,
}

impl Phone {
    fn new(identity: DeviceIdentity, manifest: RoundManifest, token: String, rng: Rng) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            PhoneStore::open(dir.path(), identity.clone(), StoreOptions { fsync: false }).unwrap();
        let numbers: HashMap<String, u32> = (0..demo::POINTS * demo::ITEMS_PER_POINT)
            .map(|n| (fixtures::s10(n).to_string(), n))
            .collect();
        let targets = manifest
            .stops
            .iter()
            .flat_map(|s| s.items.iter())
            .map(|s10| {
                let n = numbers[s10.as_str()];
                (DocId::item(&fixtures::s10(n)), n)
            })
            .collect();
        store.set_manifest(manifest).unwrap();
        Self {
            label: format!("{}/{}", identity.principal, identity.device),
            identity,
            store,
            token,
            targets,
            recorded: 0,
            rng,
            committed: Vec::new(),
            _dir: dir,
        }
    }

    /// Records one attempt (postman) or choice (customer) on an item the store holds already.
    fn record_one(&mut self) {
        let held: Vec<(DocId, u32)> = self
            .targets
            .iter()
            .filter(|(id, _)| self.store.contains(id))
            .cloned()
            .collect();
        if held.is_empty() {
            return; // the first download has not happened yet
        }
        let (doc, n) = held[self.rng.below(held.len() as u64) as usize].clone();
        self.recorded += 1;
        let DeviceIdentity {
            device, principal, ..
        } = &self.identity;
        let interaction = match self.identity.role {
            StoreRole::Postman => {
                let id = format!("att-{device}-{}", self.recorded);
                let attempt = fixtures::absent_attempt(device, principal, n);
                self.store
                    .commit(&doc, InteractionKind::Attempt, |d| {
                        Ok((id.clone(), operations::record_attempt(d, &id, &attempt)?))
                    })
                    .unwrap()
            }
            StoreRole::Customer => {
                let id = format!("ch-{device}-{}", self.recorded);
                let choice = fixtures::redeliver_choice(principal, "2026-11-25");
                self.store
                    .commit(&doc, InteractionKind::Choice, |d| {
                        Ok((id.clone(), operations::choose_for_item(d, &id, &choice)?))
                    })
                    .unwrap()
            }
        };
        self.committed
            .push(interaction.expect("a new entry changes the document"));
    }

    fn pending_ids(&self) -> BTreeSet<String> {
        self.store
            .pending_interactions()
            .into_iter()
            .map(|i| i.id)
            .collect()
    }
}

/// How a sync session ended early.
#[derive(Debug)]
struct Failure {
    /// The server could not be reached at all (it was already dead): not a mid-sync kill.
    unreachable: bool,
    /// The request in flight pushed changes.
    pushing: bool,
    message: String,
}

/// One sync session over HTTP: the report of what it did, and how it stopped if it failed.
async fn sync_session(
    phone: &mut Phone,
    client: &reqwest::Client,
    base: &str,
) -> (SyncReport, Result<(), Failure>) {
    let limits = Limits::default();
    let before = phone.pending_ids();
    let mut session = SyncSession::new(&mut phone.store, limits);
    let result = loop {
        let Some(request) = session.next_request().unwrap() else {
            break Ok(());
        };
        let pushing = request
            .docs
            .iter()
            .any(|d| matches!(d.body, RequestBody::Push { .. }));
        let failure = |e: reqwest::Error| Failure {
            unreachable: e.is_connect(),
            pushing,
            message: innermost(&e),
        };
        let response = match client
            .post(format!("{base}/v1/sync"))
            .bearer_auth(&phone.token)
            .body(wire::encode_request(&request))
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => break Err(failure(e)),
        };
        let status = response.status();
        let frame = match response.bytes().await {
            Ok(b) => b,
            Err(e) => break Err(failure(e)),
        };
        assert!(
            status.is_success(),
            "{}: sync answered {status}: {}",
            phone.label,
            String::from_utf8_lossy(&frame)
        );
        session
            .apply_response(wire::decode_response(&frame, &limits).unwrap())
            .unwrap();
    };
    let report = session.finish();
    // What the report calls acknowledged is exactly what left the pending list.
    let after = phone.pending_ids();
    let left: BTreeSet<String> = before.difference(&after).cloned().collect();
    let reported: BTreeSet<String> = report.acknowledged.iter().map(|i| i.id.clone()).collect();
    assert_eq!(left, reported, "{}: acknowledgements", phone.label);
    assert!(
        report.refused.is_empty(),
        "{}: refused {:?}",
        phone.label,
        report.refused
    );
    (report, result)
}

/// The innermost cause of an error (e.g. "connection reset by peer").
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// What one phone did while one server lived.
#[derive(Debug, Default)]
struct Run {
    sessions: usize,
    acknowledged: Vec<Interaction>,
    failure: Option<Failure>,
}

/// Records and syncs in a loop until a call fails (the server was killed).
async fn work(mut phone: Phone, base: String) -> (Phone, Run) {
    // A connection per request: a call that fails after connecting reached a live server, rather
    // than a pooled connection the kill had already closed.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut run = Run::default();
    loop {
        for _ in 0..phone.rng.below(3) {
            phone.record_one();
        }
        let (report, result) = sync_session(&mut phone, &client, &base).await;
        run.acknowledged.extend(report.acknowledged);
        match result {
            Ok(()) => run.sessions += 1,
            Err(failure) => {
                run.failure = Some(failure);
                return (phone, run);
            }
        }
    }
}

/// Whether `cust-1`'s app takes part (`DURABILITY_CUSTOMER=0` leaves it out).
fn with_customer() -> bool {
    std::env::var("DURABILITY_CUSTOMER").map_or(true, |v| v != "0")
}

/// The two postmen of the demo, with the rounds the server publishes to them, and `cust-1`'s
/// app over the delivery points and items they own.
async fn phones(base: &str, keys: &Keys, rng: &mut Rng) -> Vec<Phone> {
    let mut phones = Vec::new();
    for (postman, device) in demo::POSTMEN {
        let token = keys
            .mint(postman, TokenRole::Postman, Some(device), 3600)
            .unwrap();
        let rounds = tournee_e2e::rounds(base, &token).await;
        let identity = DeviceIdentity {
            device: device.into(),
            principal: postman.into(),
            role: StoreRole::Postman,
        };
        let manifest = rounds
            .into_iter()
            .next()
            .expect("the demo publishes rounds");
        phones.push(Phone::new(identity, manifest, token, rng.fork()));
    }
    if !with_customer() {
        return phones;
    }
    // cust-1 owns every third delivery point from 0 (see `demo::CUSTOMERS`).
    let stops = (0..demo::POINTS)
        .step_by(demo::CUSTOMERS.len())
        .enumerate()
        .map(|(k, p)| Stop {
            order: k as u32 + 1,
            delivery_point: fixtures::delivery_point_id(p),
            items: (0..demo::ITEMS_PER_POINT)
                .map(|i| fixtures::s10(p * demo::ITEMS_PER_POINT + i).to_string())
                .collect(),
        })
        .collect();
    let manifest = RoundManifest {
        round_id: "customer-view".into(),
        date: "2026-11-23".into(),
        postman: "cust-1".into(),
        device: "cust-1-app".into(),
        stops,
    };
    let identity = DeviceIdentity {
        device: "cust-1-app".into(),
        principal: "cust-1".into(),
        role: StoreRole::Customer,
    };
    let token = keys
        .mint("cust-1", TokenRole::Customer, None, 3600)
        .unwrap();
    phones.push(Phone::new(identity, manifest, token, rng.fork()));
    phones
}

// ---------------------------------------------------------------------------------------------
// The database.

/// Drops the test's PostgreSQL database when it goes out of scope, failed test included.
struct DropPostgres {
    admin: String,
    name: String,
}

impl Drop for DropPostgres {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // A thread of its own: this may run inside the test's runtime, even while panicking.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    use sqlx::Connection;
                    let mut conn = sqlx::PgConnection::connect(&admin).await?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await
                        .map(|_| ())
                })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("durability: could not drop database {}", self.name);
        }
    }
}

async fn close(db: Database) {
    match db {
        Database::Sqlite(pool) => pool.close().await,
        Database::Postgres(pool) => pool.close().await,
    }
}

/// The ids of the interactions of `kind` stored in the database for each of the given items,
/// with how many rows each id has.
async fn stored(
    db: &Database,
    kind: InteractionKind,
    items: &BTreeSet<String>,
) -> BTreeMap<String, usize> {
    let mut ids = BTreeMap::new();
    for item in items {
        let rows: Vec<String> = match kind {
            InteractionKind::Attempt => db
                .attempts_for_item(item)
                .await
                .unwrap()
                .into_iter()
                .map(|a| {
                    assert_eq!(&a.item_id, item);
                    a.id
                })
                .collect(),
            InteractionKind::Choice => db
                .choices_for_item(item)
                .await
                .unwrap()
                .into_iter()
                .map(|c| {
                    assert_eq!(&c.item_id, item);
                    c.id
                })
                .collect(),
            other => panic!("this test records no {other:?}"),
        };
        for id in rows {
            *ids.entry(id).or_insert(0) += 1;
        }
    }
    ids
}

/// Which of `interactions` the database holds, and how many rows each has.
async fn stored_of(db: &Database, interactions: &[&Interaction]) -> BTreeMap<String, usize> {
    let mut all = BTreeMap::new();
    for kind in [InteractionKind::Attempt, InteractionKind::Choice] {
        let items: BTreeSet<String> = interactions
            .iter()
            .filter(|i| i.kind == kind)
            .map(|i| i.doc.key().to_string())
            .collect();
        all.extend(stored(db, kind, &items).await);
    }
    all
}

// ---------------------------------------------------------------------------------------------
// The test.

#[derive(Debug, Default)]
struct Tally {
    kills: usize,
    sessions: usize,
    /// Calls that failed after reaching the server: the kill landed mid-sync.
    mid_sync: usize,
    /// Of those, calls that were pushing changes.
    mid_push: usize,
    /// Calls that found the server already dead.
    unreachable: usize,
    /// Interactions found stored after a kill although their phone still held them pending:
    /// the server committed them but the answer was lost.
    answer_lost: BTreeSet<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_interactions_survive_the_server_being_killed_mid_sync() {
    let seed = std::env::var("DURABILITY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("durability: DURABILITY_SEED={seed}");
    for backend in backends() {
        let started = Instant::now();
        let tally = kill_repeatedly(&backend, Rng(seed)).await;
        println!(
            "durability {backend:?}: {} kills, {} complete sessions, {} calls cut mid-sync ({} \
             while pushing), {} calls found the server dead, {} interactions stored whose answer \
             was lost; {:.1} s",
            tally.kills,
            tally.sessions,
            tally.mid_sync,
            tally.mid_push,
            tally.unreachable,
            tally.answer_lost.len(),
            started.elapsed().as_secs_f64()
        );
    }
}

async fn kill_repeatedly(backend: &Backend, mut rng: Rng) -> Tally {
    let dir = tempfile::tempdir().unwrap();
    let (url, _postgres) = match backend {
        Backend::Sqlite => (
            format!("sqlite://{}", dir.path().join("tournee.db").display()),
            None,
        ),
        Backend::Postgres(admin) => {
            let (url, name) = tournee_e2e::fresh_postgres(admin).await;
            let admin = admin.clone();
            (url, Some(DropPostgres { admin, name }))
        }
    };
    let keys = Keys::from_settings(&settings(&url).auth).unwrap();
    let mut phones: Vec<Phone> = Vec::new();
    // Every interaction a phone learned was acknowledged, with the kill it happened before.
    let mut acknowledged: BTreeMap<String, (Interaction, usize)> = BTreeMap::new();
    let mut tally = Tally::default();

    // Past MIN_KILLS, keep going (up to MAX_KILLS) until a kill has cut a push and one has come
    // between a commit and its answer; only the first is required.
    while tally.kills < MIN_KILLS
        || ((tally.mid_push == 0 || tally.answer_lost.is_empty()) && tally.kills < MAX_KILLS)
    {
        let mut server = ServerProcess::spawn(TEST_SERVER, &url, tally.kills == 0).await;
        if phones.is_empty() {
            phones = self::phones(&server.base, &keys, &mut rng).await;
        }
        let tasks: Vec<_> = phones
            .drain(..)
            .map(|p| tokio::spawn(work(p, server.base.clone())))
            .collect();
        let lifetime = Duration::from_millis(rng.range(LIFETIME_MS));
        tokio::time::sleep(lifetime).await;
        server.kill();
        let kill = tally.kills;
        tally.kills += 1;

        let mut line = Vec::new();
        for task in tasks {
            let (phone, run) = task.await.unwrap();
            tally.sessions += run.sessions;
            for i in run.acknowledged {
                let id = i.id.clone();
                assert!(
                    acknowledged.insert(id.clone(), (i, kill)).is_none(),
                    "{backend:?}: {id} acknowledged twice"
                );
            }
            let failure = run.failure.expect("a phone stops when the server dies");
            if failure.unreachable {
                tally.unreachable += 1;
            } else {
                tally.mid_sync += 1;
                tally.mid_push += usize::from(failure.pushing);
            }
            line.push(format!(
                "{} {} sessions, {} pending, {}",
                phone.label,
                run.sessions,
                phone.store.pending_interactions().len(),
                if failure.unreachable {
                    "then found it dead".to_string()
                } else if failure.pushing {
                    format!("killed while pushing ({})", failure.message)
                } else {
                    format!("killed mid-sync ({})", failure.message)
                }
            ));
            phones.push(phone);
        }
        println!(
            "  kill {kill} after {} ms: {}",
            lifetime.as_millis(),
            line.join("; ")
        );

        // Nothing has run against the database since the kill: what was acknowledged must be
        // there already.
        let db = Database::connect(&url).await.unwrap();
        let acked: Vec<&Interaction> = acknowledged.values().map(|(i, _)| i).collect();
        let present = stored_of(&db, &acked).await;
        for (id, (interaction, at)) in &acknowledged {
            assert!(
                present.contains_key(id),
                "{backend:?}: {interaction:?} was acknowledged before kill {at} and is not in \
                 the database after kill {kill}"
            );
        }
        let pending: Vec<Interaction> = phones
            .iter()
            .flat_map(|p| p.store.pending_interactions())
            .collect();
        let pending_refs: Vec<&Interaction> = pending.iter().collect();
        let stored_pending = stored_of(&db, &pending_refs).await;
        tally.answer_lost.extend(
            pending
                .iter()
                .filter(|i| stored_pending.contains_key(&i.id))
                .map(|i| i.id.clone()),
        );
        close(db).await;
    }
    assert!(
        tally.mid_sync > 0 && tally.mid_push > 0,
        "{backend:?}: no kill landed while a phone was pushing: {tally:?}"
    );

    // A clean restart: every phone finishes a sync and is left with nothing pending.
    let mut server = ServerProcess::spawn(TEST_SERVER, &url, false).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    for phone in &mut phones {
        let (report, result) = sync_session(phone, &client, &server.base).await;
        result.unwrap_or_else(|f| panic!("{backend:?}: {}: {f:?}", phone.label));
        for i in report.acknowledged {
            let id = i.id.clone();
            assert!(
                acknowledged.insert(id.clone(), (i, tally.kills)).is_none(),
                "{backend:?}: {id} acknowledged twice"
            );
        }
        assert_eq!(
            phone.store.pending_interactions(),
            Vec::new(),
            "{backend:?}: {}",
            phone.label
        );
    }

    // Every interaction recorded is stored, once; nothing else is.
    let db = Database::connect(&url).await.unwrap();
    let committed: Vec<&Interaction> = phones.iter().flat_map(|p| p.committed.iter()).collect();
    let committed_ids: BTreeSet<&str> = committed.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(committed_ids.len(), committed.len(), "ids are unique");
    assert_eq!(
        acknowledged
            .keys()
            .map(String::as_str)
            .collect::<BTreeSet<_>>(),
        committed_ids,
        "{backend:?}: every interaction was acknowledged once, at the end at the latest"
    );
    let present = stored_of(&db, &committed).await;
    for interaction in &committed {
        assert_eq!(
            present.get(&interaction.id),
            Some(&1),
            "{backend:?}: {interaction:?} is stored once"
        );
    }
    let attempts = committed
        .iter()
        .filter(|i| i.kind == InteractionKind::Attempt)
        .count();
    let choices = committed.len() - attempts;
    assert_eq!(db.count(Table::Attempts).await.unwrap(), attempts as i64);
    assert_eq!(db.count(Table::Choices).await.unwrap(), choices as i64);
    // Every interaction is one change, and the log holds each change once.
    assert_eq!(
        db.count(Table::Changes).await.unwrap(),
        committed.len() as i64,
        "{backend:?}: the change log"
    );
    assert!(
        attempts > 0 && (choices > 0 || !with_customer()),
        "{backend:?}: {attempts} attempts, {choices} choices"
    );
    close(db).await;
    server.kill();
    println!(
        "  {attempts} attempts and {choices} choices recorded, all stored once; {} sessions in all",
        tally.sessions
    );

    tally
}
