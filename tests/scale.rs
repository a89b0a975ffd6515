//! The sync path at scale (issue #15), on real servers over SQLite and PostgreSQL: syncs under a
//! document cache smaller than the rounds' documents, and several instances writing at once.

#![allow(clippy::unwrap_used, missing_docs)]

use tournee_e2e::{backends, Phone, TestServer};
use tournee_server::demo::POSTMEN;
use tournee_sync_core::fixtures;
use tournee_sync_core::s10::S10;
use tournee_sync_core::DocId;

/// Records an absence on every item of the phone's round; the attempts' ids by item.
fn absences_on_every_item(phone: &mut Phone, device: &str, postman: &str) -> Vec<(S10, String)> {
    let manifest = phone.store.manifest().unwrap().clone();
    let mut recorded = Vec::new();
    for (n, item) in manifest.stops.iter().flat_map(|s| &s.items).enumerate() {
        let s10 = S10::parse(item).unwrap();
        let attempt = fixtures::absent_attempt(device, postman, u32::try_from(n).unwrap());
        let interaction = phone.store.record_attempt(&s10, &attempt).unwrap();
        recorded.push((s10, interaction.id));
    }
    recorded
}

/// A budget of about five documents for rounds of eighteen, and one sync at a time: every
/// document is evicted and read again from the database during the storm. Every answer must
/// still be right, every interaction stored once, and the cache must stay within its budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn syncs_under_a_cache_smaller_than_the_rounds_are_answered_right_within_the_budget() {
    const BUDGET: u64 = 100 * 1024;
    for backend in backends() {
        let server = TestServer::start_configured(
            &backend,
            |s| {
                s.document_cache_bytes = BUDGET;
                s.sync_concurrency = 1;
            },
            None,
        )
        .await;
        let mut phones = Vec::new();
        for (postman, device) in POSTMEN {
            let mut phone = Phone::postman(&server, postman, device).await;
            phone.sync(&server).await;
            assert!(
                phone.store.document_ids().count() > 10,
                "{backend:?}: a round larger than the cache"
            );
            let recorded = absences_on_every_item(&mut phone, device, postman);
            phones.push((phone, recorded));
        }
        // Both end-of-round syncs at once, each through a cache that cannot hold its round.
        let base = &server;
        let mut syncs = Vec::new();
        for (phone, _) in &mut phones {
            syncs.push(phone.sync(base));
        }
        let reports = futures_util::future::join_all(syncs).await;
        for report in &reports {
            assert!(report.refused.is_empty(), "{backend:?}: {report:?}");
        }
        let db = &server.state.db;
        for (phone, recorded) in &mut phones {
            assert!(
                phone.store.pending_interactions().is_empty(),
                "{backend:?}: everything acknowledged"
            );
            for (item, attempt) in recorded.iter() {
                let stored: Vec<_> = db
                    .attempts_for_item(item.as_str())
                    .await
                    .unwrap()
                    .into_iter()
                    .filter(|a| &a.id == attempt)
                    .collect();
                assert_eq!(stored.len(), 1, "{backend:?}: {attempt} stored once");
            }
            // The phone and the server hold the same documents.
            let ids: Vec<DocId> = phone.store.document_ids().cloned().collect();
            for id in ids {
                let on_server = server.state.docs.load(db, &id).await.unwrap().unwrap();
                let on_phone = phone.store.document(&id).unwrap();
                assert_eq!(
                    on_phone.get_heads(),
                    on_server.get_heads(),
                    "{backend:?}: {id} the same on both"
                );
            }
        }
        let weight = server.state.docs.weight();
        assert!(
            weight <= BUDGET,
            "{backend:?}: the cache weighs {weight} bytes for a budget of {BUDGET}"
        );
        server.stop().await;
    }
}
/// A change whose transaction commits late, on another instance, after a later transaction
/// committed: a device's cursor must neither skip it nor read anything twice. Writers take no
/// lock shared by every instance; the cursor only reads positions of transactions that have
/// ended. (SQLite has one writer at a time, so its commit order is its position order; the
/// test is PostgreSQL's.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_committed_late_on_another_instance_is_read_once_and_never_skipped() {
    use sqlx::{Connection, Executor};
    use std::collections::HashSet;
    use tournee_e2e::Backend;
    use tournee_server::db::{AuditRow, SyncWrite};
    use tournee_sync_core::validator::Scope;

    for backend in backends() {
        let Backend::Postgres(_) = backend else {
            continue;
        };
        let a = TestServer::start(&backend).await;
        let b = TestServer::start_on(&a.database_url, tempfile::tempdir().unwrap()).await;
        let doc = DocId::item(&fixtures::s10(0));
        let change = |tag: u8| -> (Vec<u8>, Vec<u8>) { (vec![tag; 32], vec![tag; 8]) };
        let since = b.state.db.cursor_bound().await.unwrap();

        // Instance A's write stalls inside its transaction, after storing its change: the
        // audit log is locked by another session.
        let mut blocker = sqlx::PgConnection::connect(&a.database_url).await.unwrap();
        blocker.execute("BEGIN").await.unwrap();
        blocker
            .execute("LOCK TABLE audit_log IN EXCLUSIVE MODE")
            .await
            .unwrap();
        let slow_write = SyncWrite {
            signatures: Vec::new(),
            changes: vec![(doc.clone(), vec![change(1)])],
            projection: tournee_server::db::Projection {
                audit: vec![AuditRow {
                    at_ms: 0,
                    actor: "test".into(),
                    action: "test.slow".into(),
                    subject: doc.to_string(),
                    detail: "{}".into(),
                }],
                ..Default::default()
            },
        };
        let db_a = a.state.db.clone();
        let slow = tokio::spawn(async move { db_a.commit_group(&[&slow_write]).await });
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_locks WHERE NOT granted \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            )
            .fetch_one(&mut blocker)
            .await
            .unwrap();
            if waiting > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // Instance B commits a later change meanwhile, without waiting for A.
        let quick_write = SyncWrite {
            signatures: Vec::new(),
            changes: vec![(doc.clone(), vec![change(2)])],
            ..Default::default()
        };
        b.state.db.commit_group(&[&quick_write]).await.unwrap();

        let read = |since: i64| {
            let db = b.state.db.clone();
            async move {
                let upto = db.cursor_bound().await.unwrap();
                db.news_upto(since, upto, &Scope::All, &HashSet::new(), 1 << 20)
                    .await
                    .unwrap()
            }
        };
        let hashes = |rows: &[(i64, DocId, Vec<u8>)]| -> Vec<u8> {
            rows.iter().map(|(_, _, bytes)| bytes[0]).collect()
        };
        // While A's transaction runs, B's later change is not read either: reading it would
        // move the cursor past A's change, which would then never be read.
        let first = read(since).await;
        assert_eq!(hashes(&first.rows), Vec::<u8>::new(), "{backend:?}");

        blocker.execute("COMMIT").await.unwrap();
        slow.await.unwrap().unwrap();
        let second = read(first.cursor).await;
        let mut got = hashes(&second.rows);
        got.sort_unstable();
        assert_eq!(got, vec![1, 2], "{backend:?}: both, once each");
        let third = read(second.cursor).await;
        assert_eq!(
            hashes(&third.rows),
            Vec::<u8>::new(),
            "{backend:?}: nothing twice"
        );

        // A transaction running in another database of the cluster cannot write here: it does
        // not hold back news.
        let Backend::Postgres(admin) = &backend else {
            unreachable!()
        };
        let mut elsewhere = sqlx::PgConnection::connect(admin).await.unwrap();
        elsewhere.execute("BEGIN").await.unwrap();
        elsewhere
            .execute("SELECT pg_current_xact_id()")
            .await
            .unwrap();
        let later_write = SyncWrite {
            signatures: Vec::new(),
            changes: vec![(doc.clone(), vec![change(3)])],
            ..Default::default()
        };
        a.state.db.commit_group(&[&later_write]).await.unwrap();
        // A short transaction of this database's own (autovacuum's ANALYZE of the tables just
        // written, which takes a transaction id) may hold the bound back for a moment; the
        // transaction open elsewhere stays open throughout, and must not.
        let mut fourth = read(third.cursor).await;
        for _ in 0..100 {
            if !fourth.rows.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            fourth = read(third.cursor).await;
        }
        assert_eq!(hashes(&fourth.rows), vec![3], "{backend:?}: not held back");
        elsewhere.execute("ROLLBACK").await.unwrap();
        b.stop().await;
        a.stop().await;
    }
}
