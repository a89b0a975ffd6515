//! The change log's pruning (issue #15, growth), on SQLite and PostgreSQL: a change its
//! document's snapshot holds, settled before the retention window, is deleted; a phone whose
//! news cursor is older than the horizon is told to re-check what it holds and misses nothing;
//! a phone whose cursor is newer is not disturbed; the document loads whole from its snapshot.

#![allow(clippy::unwrap_used, missing_docs)]

use tournee_e2e::{backends, Phone, TestServer};
use tournee_server::compaction;
use tournee_server::db::Table;
use tournee_sync_core::{fixtures, operations, DocId};

#[tokio::test]
async fn changes_snapshots_hold_are_pruned_and_phones_with_older_cursors_re_check() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let db = &server.state.db;
        let mut away = Phone::postman(&server, "pm-1", "dev-1").await;
        away.sync(&server).await;
        let mut working = Phone::postman(&server, "pm-1", "dev-1").await;
        working.sync(&server).await;

        // The other phone (a second install on the same device) records an attempt; its
        // document is compacted (the snapshot holds the attempt's change) and the change log
        // marked past it, as it would have been a retention window ago.
        let s10 = fixtures::s10(1);
        let attempt = fixtures::delivered_attempt("dev-1", "pm-1", 1);
        working.store.record_attempt(&s10, &attempt).unwrap();
        working.sync(&server).await;
        let item = DocId::item(&s10);
        assert!(compaction::compact(db, &item).await.unwrap());
        let before = db.count(Table::Changes).await.unwrap();
        db.mark_change_log(1_000, db.cursor_bound().await.unwrap())
            .await
            .unwrap();
        // A phone that synced since the mark holds a cursor past it (an answer's cursor is
        // read before the request's own write, so it is this sync's, not the last one's).
        working.sync(&server).await;
        let pruned = db.prune_change_log(1_001).await.unwrap();
        assert!(pruned >= 1, "{backend:?}: the attempt's change is pruned");
        assert_eq!(
            db.count(Table::Changes).await.unwrap(),
            before - i64::try_from(pruned).unwrap()
        );
        assert!(db.pruned_below().await.unwrap() > 0);
        // Nothing is pruned twice, nor above the horizon.
        assert_eq!(db.prune_change_log(1_001).await.unwrap(), 0);

        // The phone away since before the horizon re-checks its documents and gets the
        // attempt; its next sync is an idle poll.
        let report = away.sync(&server).await;
        assert!(
            report.refused.is_empty(),
            "{backend:?}: {:?}",
            report.refused
        );
        assert!(!away.store.recheck_pending());
        let on_phone = operations::read_item(away.store.document(&item).unwrap()).unwrap();
        assert!(
            on_phone.attempts.values().any(|a| *a == attempt),
            "{backend:?}: the pruned change reached the phone"
        );
        assert_eq!(away.sync(&server).await.exchanges, 1, "{backend:?}");
        // The phone whose cursor is past the horizon is not asked to re-check.
        let report = working.sync(&server).await;
        assert_eq!(report.exchanges, 1, "{backend:?}");
        assert!(!working.store.recheck_pending());

        // The document loads whole from what is stored: its snapshot and later changes.
        let stored = db.load_document(&item).await.unwrap().unwrap();
        let mut doc = tournee_sync_core::automerge::Automerge::load(&stored.snapshot).unwrap();
        for (_, bytes) in &stored.changes {
            doc.load_incremental(bytes).unwrap();
        }
        let on_server = operations::read_item(&doc).unwrap();
        assert!(on_server.attempts.values().any(|a| *a == attempt));
        server.stop().await;
    }
}
