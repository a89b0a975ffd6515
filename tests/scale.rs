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
