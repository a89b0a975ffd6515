//! Faults injected from outside, and the promise that survives them: every interaction the
//! server acknowledged is stored once, and nothing it did not store is acknowledged.
//!
//! - a full SQLite database (its `max_page_count` set at the current size): every sync while
//!   full answers 5xx and acknowledges nothing; once space returns syncs succeed; after a
//!   restart every acknowledged interaction is there; the same with a full disk;
//! - a change altered in transit (checksum left as it was): refused as malformed, nothing
//!   stored, and the phone's genuine change stored at its next sync, on both backends;
//! - a change altered in transit and re-checksummed, stored under the phone's actor and
//!   sequence number: the genuine change is refused as `collision` (as `invalid` to a
//!   phone speaking wire version 1), and the phone sets its interactions aside, fetches the
//!   document and records them again, drained in one sync, on both backends;
//! - readiness: 503 within a second while the database cannot take a write (full, gone), and
//!   no start at all on a database the server cannot write.

#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeSet;

use tournee_e2e::{Backend, Phone, TestServer};
use tournee_server::db::Database;
use tournee_sync_core::fixtures;

/// The ids of the interactions a phone still holds pending.
fn pending_ids(phone: &Phone) -> BTreeSet<String> {
    phone
        .store
        .pending_interactions()
        .into_iter()
        .map(|i| i.id)
        .collect()
}

/// Absences recorded round-robin on the items of a phone's round, each with a new notice.
struct Attempts {
    items: Vec<tournee_sync_core::S10>,
    recorded: u32,
}

impl Attempts {
    fn on_round_of(phone: &Phone) -> Self {
        let manifest = phone.store.manifest().unwrap();
        Self {
            items: manifest
                .stops
                .iter()
                .flat_map(|s| &s.items)
                .map(|s| tournee_sync_core::S10::parse(s).unwrap())
                .collect(),
            recorded: 0,
        }
    }

    fn more(&mut self, phone: &mut Phone, count: u32) {
        for _ in 0..count {
            let item = &self.items[self.recorded as usize % self.items.len()];
            let attempt = fixtures::absent_attempt("dev-1", "pm-1", self.recorded);
            phone.store.record_attempt(item, &attempt).unwrap();
            self.recorded += 1;
        }
    }
}

/// Sets `max_page_count` on every connection of the pool (the pragma is per connection):
/// `None` gives the database room again.
async fn limit_pages(db: &Database, pages: Option<i64>) {
    let Database::Sqlite(pool) = db else {
        panic!("SQLite only")
    };
    let mut held = Vec::new();
    for _ in 0..pool.options().get_max_connections() {
        held.push(pool.acquire().await.unwrap());
    }
    for conn in &mut held {
        let current: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        let limit = pages.unwrap_or(1 << 30).max(current);
        sqlx::query(&format!("PRAGMA max_page_count = {limit}"))
            .execute(&mut **conn)
            .await
            .unwrap();
    }
}

/// The ids of the attempts stored in the database.
async fn stored_attempts(db: &Database) -> BTreeSet<String> {
    let Database::Sqlite(pool) = db else {
        panic!("SQLite only")
    };
    sqlx::query_scalar("SELECT id FROM attempts")
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

#[tokio::test]
async fn a_full_sqlite_database_acknowledges_nothing_and_loses_nothing() {
    let server = TestServer::start(&Backend::Sqlite).await;
    let mut phone = Phone::postman(&server, "pm-1", "dev-1").await;
    phone.sync(&server).await;
    let mut acknowledged = BTreeSet::new();
    let mut record = Attempts::on_round_of(&phone);

    // Full: nothing is acknowledged, and every sync says so with a 5xx.
    limit_pages(&server.state.db, Some(0)).await;
    for _ in 0..6 {
        record.more(&mut phone, 20);
        let pending = phone.store.pending_interactions().len();
        match phone.try_sync(&server).await {
            Err((status, _)) => assert!(status.is_server_error(), "{status}"),
            Ok(report) => panic!("a sync into a full database succeeded: {report:?}"),
        }
        assert_eq!(phone.store.pending_interactions().len(), pending);
    }

    // Space again: the phone drains, and what the server acknowledged is in the database,
    // seen by another connection.
    limit_pages(&server.state.db, None).await;
    record.more(&mut phone, 5);
    let ids: BTreeSet<String> = pending_ids(&phone);
    phone.sync(&server).await;
    assert!(phone.store.pending_interactions().is_empty());
    acknowledged.extend(ids);
    let url = server.database_url.clone();
    let other = Database::connect(&url).await.unwrap();
    let stored = stored_attempts(&other).await;
    assert!(
        acknowledged.is_subset(&stored),
        "{:?}",
        acknowledged.difference(&stored)
    );

    // After a restart, all of it is still there.
    let (dir, url) = server.stop_keeping_files().await;
    let again = TestServer::start_on(&url, dir).await;
    let stored = stored_attempts(&again.state.db).await;
    assert!(
        acknowledged.is_subset(&stored),
        "{:?}",
        acknowledged.difference(&stored)
    );
    again.stop().await;
}

/// A small tmpfs, unmounted when dropped (even when the test fails).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .status();
        assert!(
            matches!(status, Ok(s) if s.success()),
            "mounting a {megabytes} MB tmpfs needs root (CI runs as root): {status:?}"
        );
        Self { dir }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Fills what is left of the disk with one file; removing it gives the space back.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 4096];
        while file.write_all(&block).is_ok() {}
        let _ = file.sync_all();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test]
async fn a_full_disk_fails_commits_visibly_and_loses_no_acknowledged_interaction() {
    let disk = SmallDisk::mount(8);
    let url = format!("sqlite://{}", disk.path().join("tournee.db").display());
    let state = tournee_server::AppState::new(&tournee_e2e::settings(&url))
        .await
        .unwrap();
    tournee_server::demo::seed(&state.db, &state.clock)
        .await
        .unwrap();
    drop(state);
    let server = TestServer::start_on(&url, tempfile::tempdir().unwrap()).await;
    let mut phone = Phone::postman(&server, "pm-1", "dev-1").await;
    phone.sync(&server).await;
    let mut acknowledged = BTreeSet::new();
    let mut record = Attempts::on_round_of(&phone);

    // The disk fills up: syncs fail with 5xx, and none acknowledges what it could not store.
    let filler = disk.fill();
    let mut failed = 0;
    for _ in 0..14 {
        record.more(&mut phone, 3);
        let before: BTreeSet<String> = pending_ids(&phone);
        match phone.try_sync(&server).await {
            Err((status, _)) => {
                assert!(status.is_server_error(), "{status}");
                failed += 1;
            }
            // A sync may still fit in what SQLite had preallocated; then it is acknowledged.
            Ok(_) => {
                let after: BTreeSet<String> = pending_ids(&phone);
                acknowledged.extend(before.difference(&after).cloned());
            }
        }
    }
    assert!(failed > 0, "the disk never filled up");

    // Space returns: the phone drains without a restart, and every interaction the server
    // acknowledged is visible to another connection and after a restart.
    std::fs::remove_file(filler).unwrap();
    let pending: BTreeSet<String> = pending_ids(&phone);
    phone.sync(&server).await;
    assert!(phone.store.pending_interactions().is_empty());
    acknowledged.extend(pending);
    let other = Database::connect(&url).await.unwrap();
    let stored = stored_attempts(&other).await;
    assert!(
        acknowledged.is_subset(&stored),
        "acknowledged but not stored: {:?}",
        acknowledged.difference(&stored)
    );
    if let Database::Sqlite(pool) = &other {
        pool.close().await;
    }
    let (dir, url) = server.stop_keeping_files().await;
    let again = TestServer::start_on(&url, dir).await;
    let stored = stored_attempts(&again.state.db).await;
    assert!(
        acknowledged.is_subset(&stored),
        "lost at restart: {:?}",
        acknowledged.difference(&stored)
    );
    again.stop().await;
}

async fn readiness(server: &TestServer) -> (reqwest::StatusCode, std::time::Duration) {
    let started = std::time::Instant::now();
    let status = reqwest::get(format!("{}/readyz", server.base))
        .await
        .unwrap()
        .status();
    (status, started.elapsed())
}

#[tokio::test]
async fn readiness_follows_the_ability_to_write_and_answers_within_a_second() {
    use reqwest::StatusCode;
    // SQLite: ready, then full, then ready again.
    let server = TestServer::start(&Backend::Sqlite).await;
    assert_eq!(readiness(&server).await.0, StatusCode::OK);
    limit_pages(&server.state.db, Some(0)).await;
    let (status, took) = readiness(&server).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(took < std::time::Duration::from_millis(1_500), "{took:?}");
    limit_pages(&server.state.db, None).await;
    assert_eq!(readiness(&server).await.0, StatusCode::OK);
    let (dir, url) = server.stop_keeping_files().await;

    // A database it cannot write: the server refuses to start, and says why.
    let read_only = format!("{url}?mode=ro");
    let refusal = tournee_server::AppState::new(&tournee_e2e::settings(&read_only))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(refusal.contains("cannot take a write"), "{refusal}");
    drop(dir);

    // PostgreSQL gone: not ready, within a second.
    if let Some(Backend::Postgres(admin)) = tournee_e2e::backends().into_iter().nth(1) {
        let (url, name) = tournee_e2e::fresh_postgres(&admin).await;
        let server = TestServer::start_on(&url, tempfile::tempdir().unwrap()).await;
        assert_eq!(readiness(&server).await.0, StatusCode::OK);
        tournee_e2e::drop_postgres(&admin, &name).await;
        let (status, took) = readiness(&server).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(took < std::time::Duration::from_millis(1_500), "{took:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_change_altered_in_transit_is_refused_and_the_genuine_one_is_stored_after() {
    use tournee_sync_core::sync::wire::{self, Limits, RefusalCode, RequestBody, ResponseBody};
    for backend in tournee_e2e::backends() {
        let server = TestServer::start(&backend).await;
        let mut phone = Phone::postman(&server, "pm-1", "dev-1").await;
        phone.sync(&server).await;
        let item = fixtures::s10(1);
        phone
            .store
            .record_attempt(&item, &fixtures::absent_attempt("dev-1", "pm-1", 1))
            .unwrap();
        let limits = Limits::default();
        let mut request = {
            let mut session = tournee_sync_core::sync::SyncSession::new(&mut phone.store, limits);
            session.next_request().unwrap().unwrap()
        };
        let doc = tournee_sync_core::DocId::item(&item);
        let entry = request.docs.iter_mut().find(|d| d.doc == doc).unwrap();
        let RequestBody::Push { changes, .. } = &mut entry.body else {
            panic!("a push")
        };
        let at = changes[0].windows(3).position(|w| w == b"AV0").unwrap();
        changes[0][at + 2] = b'9';
        let answer = reqwest::Client::new()
            .post(format!("{}/v1/sync", server.base))
            .bearer_auth(&phone.token)
            .body(wire::encode_request(&request))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), reqwest::StatusCode::OK);
        let frame = answer.bytes().await.unwrap();
        let response = wire::decode_response(&frame, &limits).unwrap();
        let refused = response.docs.iter().find(|d| d.doc == doc).map(|d| &d.body);
        assert!(
            matches!(
                refused,
                Some(ResponseBody::Refused {
                    code: RefusalCode::Malformed,
                    ..
                })
            ),
            "{refused:?}"
        );
        assert!(stored_attempts_any(&server.state.db).await.is_empty());
        // The phone's own sync gets the genuine attempt stored.
        phone.sync(&server).await;
        assert!(phone.store.pending_interactions().is_empty());
        assert_eq!(stored_attempts_any(&server.state.db).await.len(), 1);
        server.stop().await;
    }
}

#[tokio::test]
async fn a_forged_change_that_takes_the_phones_sequence_number_leaves_nothing_pending() {
    use sha2::Digest;
    use tournee_sync_core::store::AgainOutcome;
    use tournee_sync_core::sync::wire::{self, Limits, RefusalCode, RequestBody, ResponseBody};
    for backend in tournee_e2e::backends() {
        let server = TestServer::start(&backend).await;
        let mut phone = Phone::postman(&server, "pm-1", "dev-1").await;
        phone.sync(&server).await;
        let item = fixtures::s10(1);
        let doc = tournee_sync_core::DocId::item(&item);
        let genuine: Vec<_> = (1..=2)
            .map(|n| fixtures::absent_attempt("dev-1", "pm-1", n))
            .collect();
        for attempt in &genuine {
            phone.store.record_attempt(&item, attempt).unwrap();
        }
        let limits = Limits::default();
        let request = {
            let mut session = tournee_sync_core::sync::SyncSession::new(&mut phone.store, limits);
            session.next_request().unwrap().unwrap()
        };
        // In transit, the second attempt's notice number is altered and its checksum forged;
        // the phone never hears the answer (the connection drops).
        let mut forged = request.clone();
        let entry = forged.docs.iter_mut().find(|d| d.doc == doc).unwrap();
        let RequestBody::Push { changes, .. } = &mut entry.body else {
            panic!("a push")
        };
        let last = changes.last_mut().unwrap();
        let at = last.windows(3).position(|w| w == b"AV0").unwrap();
        last[at + 2] = b'9';
        let checksum = sha2::Sha256::digest(&last[8..]);
        last[4..8].copy_from_slice(&checksum[..4]);
        let post = |frame: Vec<u8>| {
            reqwest::Client::new()
                .post(format!("{}/v1/sync", server.base))
                .bearer_auth(&phone.token)
                .body(frame)
                .send()
        };
        let answer = post(wire::encode_request(&forged)).await.unwrap();
        assert_eq!(answer.status(), reqwest::StatusCode::OK);
        assert_eq!(stored_attempts_any(&server.state.db).await.len(), 2);

        // A phone of wire version 1 pushing the genuine changes hears `invalid`, in version 1.
        let mut old = wire::encode_request(&request);
        old[4] = wire::OLDEST_VERSION;
        let frame = post(old).await.unwrap().bytes().await.unwrap();
        assert_eq!(wire::frame_version(&frame), Some(wire::OLDEST_VERSION));
        let response = wire::decode_response(&frame, &limits).unwrap();
        let body = response.docs.iter().find(|d| d.doc == doc).map(|d| &d.body);
        assert!(
            matches!(
                body,
                Some(ResponseBody::Refused {
                    code: RefusalCode::Invalid,
                    ..
                })
            ),
            "{body:?}"
        );

        // The phone's own sync: refused as `collision`, set aside, fetched, written again.
        let report = phone.sync(&server).await;
        assert!(report.refused.is_empty(), "{:?}", report.refused);
        assert!(phone.store.pending_interactions().is_empty());
        let outcomes: Vec<_> = report.recorded_again.iter().map(|a| &a.outcome).collect();
        assert!(
            matches!(
                outcomes[..],
                [AgainOutcome::Stored, AgainOutcome::Recorded(_)]
            ),
            "{outcomes:?}"
        );
        let stored = stored_attempts_any(&server.state.db).await;
        assert_eq!(stored.len(), 3, "the forgery, and both genuine attempts");
        let held =
            tournee_sync_core::operations::read_item(phone.store.document(&doc).unwrap()).unwrap();
        for attempt in &genuine {
            assert!(held.attempts.values().any(|a| a == attempt));
        }
        // The same device reinstalled, fetching the item afresh, sees the same document.
        let mut other = Phone::postman(&server, "pm-1", "dev-1").await;
        other.sync(&server).await;
        assert_eq!(
            other.store.document(&doc).unwrap().get_heads(),
            phone.store.document(&doc).unwrap().get_heads()
        );
        server.stop().await;
    }
}

/// The ids of the attempts stored, on either backend.
async fn stored_attempts_any(db: &Database) -> Vec<String> {
    match db {
        Database::Sqlite(pool) => sqlx::query_scalar("SELECT id FROM attempts")
            .fetch_all(pool)
            .await
            .unwrap(),
        Database::Postgres(pool) => sqlx::query_scalar("SELECT id FROM attempts")
            .fetch_all(pool)
            .await
            .unwrap(),
    }
}
