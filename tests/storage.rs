//! One storage suite, written once against `Database` and run on every backend: SQLite always,
//! PostgreSQL too when `TEST_DATABASE_URL` is set. Each test gets a fresh, empty, migrated
//! database of its own per backend (a SQLite file in a temporary directory, or a PostgreSQL
//! database created for it and dropped afterwards, even when the test fails).
//!
//! The suite's functions live in `suite` and take a `&Database`; `storage_suite!` turns each into
//! one `#[tokio::test]` that runs it on every backend, like matrix-rust-sdk's store
//! `integration_tests!`.

#![allow(clippy::unwrap_used, missing_docs)]

use tournee_e2e::{backends, Backend};
use tournee_server::db::Database;

/// A fresh database for one test on one backend.
struct Fresh {
    db: Database,
    /// The PostgreSQL server and the database created on it.
    postgres: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Fresh {
    async fn new(backend: &Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("storage.db").display());
                Self {
                    db: Database::connect(&url).await.unwrap(),
                    postgres: None,
                    _dir: dir,
                }
            }
            Backend::Postgres(admin) => {
                let (url, name) = tournee_e2e::fresh_postgres(admin).await;
                let db = Database::connect(&url).await.unwrap();
                Self {
                    db,
                    postgres: Some((admin.clone(), name)),
                    _dir: dir,
                }
            }
        }
    }

    async fn drop_database(self) {
        match &self.db {
            Database::Sqlite(pool) => pool.close().await,
            Database::Postgres(pool) => pool.close().await,
        }
        if let Some((admin, name)) = self.postgres {
            tournee_e2e::drop_postgres(&admin, &name).await;
        }
    }
}

/// One `#[tokio::test]` per suite function, running it on a fresh database of every backend.
macro_rules! storage_suite {
    ($($(#[$meta:meta])* $name:ident),* $(,)?) => {
        $(
            $(#[$meta])*
            #[tokio::test]
            async fn $name() {
                for backend in backends() {
                    let fresh = Fresh::new(&backend).await;
                    eprintln!("{} on {}", stringify!($name), fresh.db.backend());
                    let db = fresh.db.clone();
                    // In a task of its own, so a failing assertion still drops the database.
                    let outcome = tokio::spawn(async move { suite::$name(&db).await }).await;
                    fresh.drop_database().await;
                    if let Err(failure) = outcome {
                        std::panic::resume_unwind(failure.into_panic());
                    }
                }
            }
        )*
    };
}

storage_suite!(
    documents_keep_their_first_snapshot_and_load_later_changes_in_order,
    a_sync_write_committed_twice_stores_each_change_and_row_once,
    a_sync_write_committed_twice_writes_its_audit_lines_once,
    changes_after_returns_one_documents_later_changes_in_order,
    max_position_is_zero_when_empty_and_only_grows,
    news_keeps_the_scope_skips_the_skipped_and_keeps_seq_order,
    news_pages_by_bytes_and_the_cursor_never_passes_an_unreturned_change,
    news_reads_past_a_full_page_of_changes_out_of_scope,
    devices_are_revoked_once_and_unknown_devices_are_not_revoked,
    rounds_for_device_is_an_inclusive_date_window_in_day_order,
    customer_documents_are_their_points_and_the_items_addressed_there,
    item_info_has_the_point_its_pin_and_the_latest_status,
    attempts_for_item_are_oldest_first_and_round_trip,
    open_queue_is_in_arrival_order_without_duplicates,
    item_events_are_in_time_order_once_per_source,
    choices_for_item_are_oldest_first_with_their_applicability,
    count_counts_each_table,
    a_decision_on_a_correction_no_longer_pending_stores_nothing,
    news_upto_stops_at_its_bound_and_its_cursor_does_too,
    audit_log_reads_one_subjects_lines_in_order,
    a_projected_row_whose_key_another_record_holds_fails_the_whole_write,
    an_actor_is_bound_to_its_first_owner_in_the_write_that_uses_it,
    actors_of_records_stored_before_bindings_are_bound_to_their_authors,
    corrections_and_attempts_are_read_many_at_a_time,
    a_group_with_one_failing_write_commits_the_others_and_fails_that_one_alone,
    a_lookup_by_a_list_of_keys_is_planned_on_the_keys_index,
);

mod suite {
    use std::collections::{BTreeMap, BTreeSet, HashSet};

    use tournee_server::db::{
        AttemptRow, AuditRow, ChoiceRow, CommitError, CorrectionRow, CorrectionStatus, Database,
        DecisionRow, EventRow, PreferencesRow, Projection, QueueKind, QueueRow, ReferenceRow,
        StoredChange, SyncWrite, Table, UpuCode,
    };
    use tournee_sync_core::automerge::{ActorId, Automerge};
    use tournee_sync_core::fixtures;
    use tournee_sync_core::model::{RoundManifest, Stop};
    use tournee_sync_core::operations;
    use tournee_sync_core::validator::{Scope, SERVER_OWNER};
    use tournee_sync_core::DocId;

    const CUSTOMERS: [&str; 2] = ["cust-a", "cust-b"];

    fn item(n: u32) -> DocId {
        DocId::item(&fixtures::s10(n))
    }

    fn item_key(n: u32) -> String {
        fixtures::s10(n).to_string()
    }

    fn point(p: u32) -> DocId {
        DocId::delivery_point(&fixtures::delivery_point_id(p)).unwrap()
    }

    /// Customers, `points` delivery points (even ones `cust-a`'s, odd ones `cust-b`'s, all
    /// pinned), `per_point` items each (item `n` at point `n / per_point`), and their documents.
    async fn town(db: &Database, points: u32, per_point: u32) {
        for customer in CUSTOMERS {
            db.insert_customer(customer, customer).await.unwrap();
        }
        for p in 0..points {
            let reference = fixtures::reference_address(p);
            db.insert_delivery_point(
                &fixtures::delivery_point_id(p),
                Some(CUSTOMERS[p as usize % 2]),
                &reference.lines,
                reference.pin.map(|g| (g.lat, g.lon)),
                1,
            )
            .await
            .unwrap();
            let snapshot = fixtures::delivery_point_doc(p).unwrap().save();
            db.insert_document(&point(p), &snapshot).await.unwrap();
            for i in 0..per_point {
                let n = p * per_point + i;
                db.insert_item(
                    &item_key(n),
                    &fixtures::delivery_point_id(p),
                    Some(CUSTOMERS[p as usize % 2]),
                    false,
                    1_000,
                )
                .await
                .unwrap();
                let snapshot = fixtures::item_doc(n, p).unwrap().save();
                db.insert_document(&item(n), &snapshot).await.unwrap();
            }
        }
    }

    /// A real Automerge change recording attempt `id` on `doc`, applied to `doc`.
    fn attempt_change(doc: &mut Automerge, id: &str, n: u32) -> StoredChange {
        let heads = doc.get_heads();
        operations::record_attempt(doc, id, &fixtures::absent_attempt("dev-1", "pm-1", n)).unwrap();
        let change = doc.get_changes(&heads).pop().unwrap();
        (change.hash().as_ref().to_vec(), change.raw_bytes().to_vec())
    }

    /// A stand-in change: the store keeps bytes and never parses them.
    fn fake(tag: u32, len: usize) -> StoredChange {
        (
            format!("hash-{tag}").into_bytes(),
            tag.to_be_bytes()
                .iter()
                .copied()
                .cycle()
                .take(len)
                .collect(),
        )
    }

    fn write(changes: Vec<(DocId, Vec<StoredChange>)>) -> SyncWrite {
        SyncWrite {
            signatures: Vec::new(),
            changes,
            projection: Projection::default(),
        }
    }

    async fn commit(db: &Database, doc: &DocId, changes: Vec<StoredChange>) {
        db.commit_sync(&write(vec![(doc.clone(), changes)]))
            .await
            .unwrap();
    }

    /// Every stored change of `docs`, `(seq, doc, bytes)` in seq order.
    async fn log(db: &Database, docs: &[DocId]) -> Vec<(i64, DocId, Vec<u8>)> {
        let mut all = Vec::new();
        for doc in docs {
            for (seq, bytes) in db.changes_after(doc, 0).await.unwrap() {
                all.push((seq, doc.clone(), bytes));
            }
        }
        all.sort_by_key(|(seq, _, _)| *seq);
        all
    }

    fn attempt_row(id: &str, n: u32, at_ms: i64) -> AttemptRow {
        AttemptRow {
            id: id.into(),
            item_id: item_key(n),
            change_hash: format!("change-of-{id}").into_bytes(),
            outcome: "addressee_absent".into(),
            recorded_at_ms: at_ms,
            device: "dev-1".into(),
            postman: "pm-1".into(),
            lat: Some(48.856_62),
            lon: Some(2.372_19),
            accuracy_m: Some(6.5),
            distance_m: Some(1.75),
            notice_number: Some(format!("AV-{id}")),
            waits_at: Some("post_office:bp-paris-11".into()),
            record: format!(r#"{{"id":"{id}"}}"#),
            signed_by: None,
        }
    }

    fn choice_row(id: &str, n: u32, at_ms: i64, applicable: bool) -> ChoiceRow {
        ChoiceRow {
            id: id.into(),
            item_id: item_key(n),
            change_hash: format!("change-of-{id}").into_bytes(),
            kind: "redeliver_on".into(),
            made_at_ms: at_ms,
            made_by: "cust-a".into(),
            applicable,
            reason: (!applicable).then(|| "the item was already delivered".into()),
            record: format!(r#"{{"id":"{id}"}}"#),
        }
    }

    fn correction_row(id: &str, p: u32) -> CorrectionRow {
        CorrectionRow {
            id: id.into(),
            delivery_point_id: fixtures::delivery_point_id(p),
            change_hash: format!("change-of-{id}").into_bytes(),
            proposed_by: "pm-1".into(),
            device: "dev-1".into(),
            proposed_at_ms: 5_000,
            record: format!(r#"{{"id":"{id}"}}"#),
        }
    }

    fn queue_row(subject: &str, reason: &str, created_ms: i64) -> QueueRow {
        QueueRow {
            kind: QueueKind::Attempt,
            subject_id: subject.into(),
            reason: reason.into(),
            created_ms,
        }
    }

    fn event_row(n: u32, code: &str, at_ms: i64, source: &str) -> EventRow {
        EventRow {
            item_id: item_key(n),
            code: code.parse().unwrap(),
            at_ms,
            reason: (code == "EMH").then(|| "addressee_absent".into()),
            action: Some(format!("action of {source}")),
            source: source.into(),
        }
    }

    fn audit_row(subject: &str) -> AuditRow {
        AuditRow {
            at_ms: 7_000,
            actor: "postman:pm-1".into(),
            action: "attempt.recorded".into(),
            subject: subject.into(),
            detail: "{}".into(),
        }
    }

    async fn project(db: &Database, projection: Projection) {
        db.commit_sync(&SyncWrite {
            signatures: Vec::new(),
            changes: vec![],
            projection,
        })
        .await
        .unwrap();
    }

    /// `(delivery point, safe place)` of every preferences row (no `Database` method reads them).
    async fn preferences(db: &Database) -> Vec<(String, Option<String>)> {
        let sql =
            "SELECT delivery_point_id, safe_place FROM preferences ORDER BY delivery_point_id";
        match db {
            Database::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
            Database::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
        }
    }

    pub async fn documents_keep_their_first_snapshot_and_load_later_changes_in_order(
        db: &Database,
    ) {
        assert!(db.load_document(&item(0)).await.unwrap().is_none());
        let mut doc = fixtures::item_doc(0, 0).unwrap();
        let snapshot = doc.save();
        db.insert_document(&item(0), &snapshot).await.unwrap();
        let other = fixtures::item_doc(1, 0).unwrap();
        db.insert_document(&item(1), &other.save()).await.unwrap();

        let stored = db.load_document(&item(0)).await.unwrap().unwrap();
        assert_eq!(stored.snapshot, snapshot);
        assert!(stored.changes.is_empty());

        // Only the server creates a document, once: a second insert changes nothing.
        db.insert_document(&item(0), b"not the first snapshot")
            .await
            .unwrap();
        assert_eq!(
            db.load_document(&item(0)).await.unwrap().unwrap().snapshot,
            snapshot
        );

        // Three causally ordered changes, interleaved with another document's.
        let first = attempt_change(&mut doc, "att-1", 0);
        let second = attempt_change(&mut doc, "att-2", 0);
        let third = attempt_change(&mut doc, "att-3", 0);
        let mut other_doc = other.clone();
        let foreign = attempt_change(&mut other_doc, "att-x", 1);
        db.commit_sync(&write(vec![
            (item(0), vec![first.clone()]),
            (item(1), vec![foreign.clone()]),
        ]))
        .await
        .unwrap();
        commit(db, &item(0), vec![second.clone(), third.clone()]).await;

        let stored = db.load_document(&item(0)).await.unwrap().unwrap();
        assert_eq!(stored.snapshot, snapshot);
        let bytes: Vec<_> = stored.changes.iter().map(|(_, b)| b.clone()).collect();
        assert_eq!(
            bytes,
            vec![first.1.clone(), second.1.clone(), third.1.clone()]
        );
        assert!(
            stored.changes.windows(2).all(|w| w[0].0 < w[1].0),
            "{:?}",
            stored.changes.iter().map(|c| c.0).collect::<Vec<_>>()
        );

        // Snapshot plus changes is the document.
        let mut loaded = Automerge::load(&stored.snapshot).unwrap();
        for (_, change) in &stored.changes {
            loaded.load_incremental(change).unwrap();
        }
        assert_eq!(loaded.get_heads(), doc.get_heads());
        let attempts = operations::read_item(&loaded).unwrap().attempts;
        assert_eq!(
            attempts.keys().collect::<Vec<_>>(),
            ["att-1", "att-2", "att-3"]
        );

        let other_stored = db.load_document(&item(1)).await.unwrap().unwrap();
        assert_eq!(other_stored.changes.len(), 1);
        assert_eq!(other_stored.changes[0].1, foreign.1);

        // Many at once, in one statement: each with its own changes; one not stored is absent.
        let ids = [item(0), item(1), item(2)];
        let mut many = db
            .load_documents(&ids.iter().collect::<Vec<_>>())
            .await
            .unwrap();
        assert_eq!(many.len(), 2, "{:?}", many.keys().collect::<Vec<_>>());
        for (id, expected) in [
            (
                &ids[0],
                vec![first.1.clone(), second.1.clone(), third.1.clone()],
            ),
            (&ids[1], vec![foreign.1.clone()]),
        ] {
            let together = many.remove(id).unwrap();
            let bytes: Vec<_> = together.changes.into_iter().map(|(_, b)| b).collect();
            assert_eq!(bytes, expected, "{id}");
        }
        // After a compaction, only the changes after the new snapshot.
        let mut compacted = Automerge::load(&snapshot).unwrap();
        compacted.load_incremental(&first.1).unwrap();
        let first_position = stored.changes[0].0;
        assert!(db
            .replace_snapshot(&item(0), &compacted.save(), first_position)
            .await
            .unwrap());
        let after = db
            .load_documents(&[&item(0)])
            .await
            .unwrap()
            .remove(&item(0))
            .unwrap();
        assert_eq!(after.snapshot_position, first_position);
        let bytes: Vec<_> = after.changes.iter().map(|(_, b)| b.clone()).collect();
        assert_eq!(bytes, vec![second.1, third.1]);
    }

    pub async fn a_sync_write_committed_twice_stores_each_change_and_row_once(db: &Database) {
        town(db, 2, 2).await;
        let mut item_0 = fixtures::item_doc(0, 0).unwrap();
        let attempt = attempt_change(&mut item_0, "att-1", 0);
        let mut item_1 = fixtures::item_doc(1, 0).unwrap();
        let heads = item_1.get_heads();
        operations::choose_for_item(
            &mut item_1,
            "ch-1",
            &fixtures::redeliver_choice("cust-a", "2026-11-25"),
        )
        .unwrap();
        let choice = item_1.get_changes(&heads).pop().unwrap();
        let choice = (choice.hash().as_ref().to_vec(), choice.raw_bytes().to_vec());

        let mut attempt_row = attempt_row("att-1", 0, 2_000);
        attempt_row.change_hash = attempt.0.clone();
        let mut choice_row = choice_row("ch-1", 1, 3_000, true);
        choice_row.change_hash = choice.0.clone();
        let projection = Projection {
            attempts: vec![attempt_row.clone()],
            choices: vec![choice_row.clone()],
            corrections: vec![correction_row("cor-1", 0)],
            preferences: vec![PreferencesRow {
                delivery_point_id: fixtures::delivery_point_id(0),
                safe_place: Some("abri de jardin".into()),
                preferred_neighbour: None,
                preferred_pickup_point: None,
                never_to_neighbour: false,
            }],
            queue: vec![queue_row("att-1", "far from the pin", 2_500)],
            events: vec![event_row(0, "EMH", 2_000, "att-1")],
            ..Default::default()
        };
        let sync = SyncWrite {
            signatures: Vec::new(),
            changes: vec![
                (item(0), vec![attempt.clone()]),
                (item(1), vec![choice.clone()]),
            ],
            projection: projection.clone(),
        };
        db.commit_sync(&sync).await.unwrap();
        let after_first = db.max_position().await.unwrap();
        db.commit_sync(&sync).await.unwrap();

        assert_eq!(db.max_position().await.unwrap(), after_first);
        assert_eq!(db.count(Table::Changes).await.unwrap(), 2);
        assert_eq!(db.count(Table::Attempts).await.unwrap(), 1);
        assert_eq!(db.count(Table::Choices).await.unwrap(), 1);
        assert_eq!(db.count(Table::Corrections).await.unwrap(), 1);
        assert_eq!(db.count(Table::ReviewQueue).await.unwrap(), 1);
        assert_eq!(
            db.attempts_for_item(&item_key(0)).await.unwrap(),
            vec![attempt_row]
        );
        assert_eq!(
            db.choices_for_item(&item_key(1)).await.unwrap(),
            vec![choice_row]
        );
        assert_eq!(
            db.item_events(&item_key(0)).await.unwrap(),
            projection.events
        );
        assert_eq!(db.open_queue().await.unwrap(), projection.queue);
        assert_eq!(
            preferences(db).await,
            vec![(
                fixtures::delivery_point_id(0),
                Some("abri de jardin".into())
            )]
        );
        let stored = db.load_document(&item(0)).await.unwrap().unwrap();
        assert_eq!(stored.changes.len(), 1);
        assert_eq!(stored.changes[0].1, attempt.1);

        // A later write overlapping the first stores only what is new; preferences are the
        // latest.
        let next = attempt_change(&mut item_0, "att-2", 0);
        let mut overlapping = write(vec![(item(0), vec![attempt.clone(), next.clone()])]);
        overlapping.projection.preferences = vec![PreferencesRow {
            delivery_point_id: fixtures::delivery_point_id(0),
            safe_place: Some("sous le porche".into()),
            preferred_neighbour: None,
            preferred_pickup_point: None,
            never_to_neighbour: true,
        }];
        db.commit_sync(&overlapping).await.unwrap();
        assert_eq!(db.count(Table::Changes).await.unwrap(), 3);
        let stored = db.load_document(&item(0)).await.unwrap().unwrap();
        let bytes: Vec<_> = stored.changes.into_iter().map(|(_, b)| b).collect();
        assert_eq!(bytes, vec![attempt.1, next.1]);
        assert_eq!(
            preferences(db).await,
            vec![(
                fixtures::delivery_point_id(0),
                Some("sous le porche".into())
            )]
        );
    }

    /// `commit_sync` promises a replayed sync is projected once, but `audit_log` has no key to
    /// skip on: a replay (two instances, or two identical requests racing past the cache) writes
    /// every audit line again.
    pub async fn a_sync_write_committed_twice_writes_its_audit_lines_once(db: &Database) {
        town(db, 1, 1).await;
        let mut doc = fixtures::item_doc(0, 0).unwrap();
        let attempt = attempt_change(&mut doc, "att-1", 0);
        let mut sync = write(vec![(item(0), vec![attempt])]);
        sync.projection.attempts = vec![attempt_row("att-1", 0, 2_000)];
        sync.projection.audit = vec![audit_row(item(0).as_str())];
        db.commit_sync(&sync).await.unwrap();
        db.commit_sync(&sync).await.unwrap();
        assert_eq!(db.count(Table::Attempts).await.unwrap(), 1);
        assert_eq!(db.count(Table::AuditLog).await.unwrap(), 1);
    }

    pub async fn changes_after_returns_one_documents_later_changes_in_order(db: &Database) {
        town(db, 1, 2).await;
        assert!(db.changes_after(&item(0), 0).await.unwrap().is_empty());
        for tag in 1..=6 {
            let doc = if tag % 2 == 1 { item(0) } else { item(1) };
            commit(db, &doc, vec![fake(tag, 20)]).await;
        }
        let mine = db.changes_after(&item(0), 0).await.unwrap();
        assert_eq!(
            mine.iter().map(|(_, b)| b.clone()).collect::<Vec<_>>(),
            vec![fake(1, 20).1, fake(3, 20).1, fake(5, 20).1]
        );
        assert!(mine.windows(2).all(|w| w[0].0 < w[1].0));

        let after_first = db.changes_after(&item(0), mine[0].0).await.unwrap();
        assert_eq!(after_first, mine[1..].to_vec());
        // Strictly after: a seq between two of the document's changes, and the last one.
        let between = db.changes_after(&item(0), mine[1].0 + 1).await.unwrap();
        assert_eq!(between, mine[2..].to_vec());
        assert!(db
            .changes_after(&item(0), mine[2].0)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(db.changes_after(&item(1), 0).await.unwrap().len(), 3);
        assert!(db.changes_after(&item(7), 0).await.unwrap().is_empty());
    }

    pub async fn max_position_is_zero_when_empty_and_only_grows(db: &Database) {
        town(db, 1, 2).await;
        assert_eq!(db.max_position().await.unwrap(), 0);
        commit(db, &item(0), vec![fake(1, 16)]).await;
        let first = db.max_position().await.unwrap();
        assert!(first > 0);
        commit(db, &item(1), vec![fake(2, 16)]).await;
        let second = db.max_position().await.unwrap();
        assert!(second > first);

        // A replay stores nothing and moves nothing.
        commit(db, &item(0), vec![fake(1, 16)]).await;
        assert_eq!(db.max_position().await.unwrap(), second);

        // A write mixing stored and new changes: the new ones come after everything before.
        commit(db, &item(0), vec![fake(3, 16), fake(1, 16), fake(4, 16)]).await;
        let third = db.max_position().await.unwrap();
        assert!(third > second);
        let all = log(db, &[item(0), item(1)]).await;
        assert_eq!(all.len(), 4);
        assert_eq!(all.last().unwrap().0, third);
        let new: Vec<_> = all.iter().filter(|(s, _, _)| *s > second).collect();
        assert_eq!(
            new.iter().map(|(_, _, b)| b.clone()).collect::<Vec<_>>(),
            vec![fake(3, 16).1, fake(4, 16).1],
            "in the write's order"
        );
    }

    pub async fn news_keeps_the_scope_skips_the_skipped_and_keeps_seq_order(db: &Database) {
        town(db, 1, 3).await;
        let (a, b, c) = (item(0), item(1), item(2));
        for (tag, doc) in [(1, &a), (2, &b), (3, &c), (4, &a), (5, &b), (6, &c)] {
            commit(db, doc, vec![fake(tag, 32)]).await;
        }
        let all = log(db, &[a.clone(), b.clone(), c.clone()]).await;
        let max = db.max_position().await.unwrap();
        let none = HashSet::new();
        let scope = |docs: &[&DocId]| Scope::Documents(docs.iter().map(|d| (*d).clone()).collect());
        let rows_of = |docs: &[&DocId]| -> Vec<(i64, DocId, Vec<u8>)> {
            all.iter()
                .filter(|(_, d, _)| docs.contains(&d))
                .cloned()
                .collect()
        };

        let news = db.news(0, &scope(&[&a, &b]), &none, 1 << 20).await.unwrap();
        assert_eq!(news.rows, rows_of(&[&a, &b]));
        assert!(!news.more);
        // The trailing out-of-scope change is scanned too: the cursor covers it.
        assert!(news.cursor >= max, "the cursor covers every change stored");

        let news = db.news(0, &Scope::All, &none, 1 << 20).await.unwrap();
        assert_eq!(news.rows, all);

        let skip: HashSet<_> = [b.clone()].into();
        let news = db.news(0, &scope(&[&a, &b]), &skip, 1 << 20).await.unwrap();
        assert_eq!(news.rows, rows_of(&[&a]));
        assert!(news.cursor >= max, "the cursor covers every change stored");
        let news = db.news(0, &Scope::All, &skip, 1 << 20).await.unwrap();
        assert_eq!(news.rows, rows_of(&[&a, &c]));

        // Since a cursor: strictly after it.
        let since = all[2].0;
        let news = db
            .news(since, &scope(&[&a, &b]), &none, 1 << 20)
            .await
            .unwrap();
        assert_eq!(
            news.rows,
            rows_of(&[&a, &b])
                .into_iter()
                .filter(|(s, _, _)| *s > since)
                .collect::<Vec<_>>()
        );

        // Nothing new: the cursor stays where it was.
        let news = db.news(max, &Scope::All, &none, 1 << 20).await.unwrap();
        assert!(news.rows.is_empty());
        assert!(news.cursor >= max, "the cursor covers every change stored");
        assert!(!news.more);
        let news = db
            .news(0, &Scope::Documents(HashSet::new()), &none, 1 << 20)
            .await
            .unwrap();
        assert!(news.rows.is_empty());
        assert!(news.cursor >= max, "the cursor covers every change stored");
    }

    pub async fn news_pages_by_bytes_and_the_cursor_never_passes_an_unreturned_change(
        db: &Database,
    ) {
        town(db, 1, 3).await;
        let (a, b, c) = (item(0), item(1), item(2));
        let plan = [
            (1, &a, 100),
            (2, &c, 50),
            (3, &b, 200),
            (4, &a, 30),
            (5, &c, 500),
            (6, &c, 40),
            (7, &b, 300),
            (8, &a, 100),
            (9, &c, 70),
        ];
        for (tag, doc, len) in plan {
            commit(db, doc, vec![fake(tag, len)]).await;
        }
        let max = db.max_position().await.unwrap();
        let scope = Scope::Documents([a.clone(), b.clone()].into());
        let in_scope: Vec<_> = log(db, &[a.clone(), b.clone()]).await;
        let none = HashSet::new();

        for max_bytes in [0, 1, 99, 100, 101, 130, 250, 330, 400, 731, 10_000] {
            let mut since = 0;
            let mut got = Vec::new();
            let mut pages = 0;
            loop {
                pages += 1;
                assert!(pages <= 20, "max_bytes {max_bytes}: no progress");
                let news = db.news(since, &scope, &none, max_bytes).await.unwrap();
                let size: usize = news.rows.iter().map(|(_, _, b)| b.len()).sum();
                assert!(
                    size <= max_bytes || news.rows.len() == 1,
                    "max_bytes {max_bytes}: a page of {size} bytes"
                );
                if let Some(last) = news.rows.last() {
                    assert!(news.cursor >= last.0);
                }
                assert!(news.cursor >= since);
                // Every change in scope up to the cursor was returned, by now or before.
                let unreturned_below: Vec<_> = in_scope
                    .iter()
                    .filter(|(s, _, _)| *s > since && *s <= news.cursor)
                    .filter(|row| !news.rows.contains(row))
                    .collect();
                assert!(
                    unreturned_below.is_empty(),
                    "max_bytes {max_bytes}: cursor {} passes {unreturned_below:?}",
                    news.cursor
                );
                // `more` exactly when something in scope lies after the cursor.
                assert_eq!(
                    news.more,
                    in_scope.iter().any(|(s, _, _)| *s > news.cursor),
                    "max_bytes {max_bytes}, cursor {}",
                    news.cursor
                );
                if news.more {
                    assert!(!news.rows.is_empty(), "a page with more must progress");
                }
                got.extend(news.rows);
                since = news.cursor;
                if !news.more {
                    break;
                }
            }
            assert_eq!(got, in_scope, "max_bytes {max_bytes}");
            assert!(since >= max, "the last page covers the trailing changes");
            if max_bytes <= 1 {
                assert_eq!(pages, in_scope.len(), "one change per page");
            }
            if max_bytes >= 730 {
                assert_eq!(pages, 1, "730 bytes in scope fit in one page");
            }
        }
    }

    pub async fn news_reads_past_a_full_page_of_changes_out_of_scope(db: &Database) {
        town(db, 1, 2).await;
        let (a, other) = (item(0), item(1));
        // More than the store's internal page (2,000 rows) before the one change in scope.
        commit(db, &other, (1..=2_100).map(|t| fake(t, 16)).collect()).await;
        commit(db, &a, vec![fake(9_999, 24)]).await;
        commit(db, &other, vec![fake(3_000, 16)]).await;
        let max = db.max_position().await.unwrap();
        let a_seq = db.changes_after(&a, 0).await.unwrap()[0].0;

        let scope = Scope::Documents([a.clone()].into());
        let news = db.news(0, &scope, &HashSet::new(), 1 << 20).await.unwrap();
        assert_eq!(news.rows, vec![(a_seq, a.clone(), fake(9_999, 24).1)]);
        assert!(news.cursor >= max, "the cursor covers every change stored");
        assert!(!news.more);

        let skip: HashSet<_> = [a.clone()].into();
        let news = db.news(0, &scope, &skip, 1 << 20).await.unwrap();
        assert!(news.rows.is_empty());
        assert!(news.cursor >= max, "the cursor covers every change stored");

        let news = db
            .news(0, &Scope::All, &HashSet::new(), 1 << 20)
            .await
            .unwrap();
        assert_eq!(news.rows.len(), 2_102);
        assert!(news.rows.windows(2).all(|w| w[0].0 < w[1].0));
    }

    pub async fn devices_are_revoked_once_and_unknown_devices_are_not_revoked(db: &Database) {
        assert!(!db.device_revoked("dev-1").await.unwrap());
        db.register_device("dev-1", "pm-1").await.unwrap();
        db.register_device("dev-2", "pm-2").await.unwrap();
        db.register_device("dev-1", "pm-1").await.unwrap();
        assert!(!db.device_revoked("dev-1").await.unwrap());

        assert!(db.revoke_device("dev-1", 1_000).await.unwrap());
        assert!(db.device_revoked("dev-1").await.unwrap());
        assert!(
            !db.revoke_device("dev-1", 2_000).await.unwrap(),
            "revoked once"
        );
        assert!(db.device_revoked("dev-1").await.unwrap());
        assert!(!db.device_revoked("dev-2").await.unwrap(), "only dev-1");

        // Registering again does not lift a revocation.
        db.register_device("dev-1", "pm-1").await.unwrap();
        assert!(db.device_revoked("dev-1").await.unwrap());

        assert!(!db.revoke_device("dev-unknown", 1_000).await.unwrap());
        assert!(!db.device_revoked("dev-unknown").await.unwrap());
    }

    pub async fn rounds_for_device_is_an_inclusive_date_window_in_day_order(db: &Database) {
        town(db, 3, 1).await;
        let round = |id: &str, day: &str, device: &str, stops: Vec<Stop>| RoundManifest {
            round_id: id.into(),
            date: day.into(),
            postman: "pm-1".into(),
            device: device.into(),
            stops,
        };
        let stop = |order: u32, p: u32| Stop {
            order,
            delivery_point: fixtures::delivery_point_id(p),
            items: vec![item_key(p)],
        };
        // Inserted out of day order, a day with two rounds, the stops out of order, and a round
        // without stops (all read in one query, a round with its stops on several rows).
        let rounds = [
            round("r-1230", "2026-12-30", "dev-1", vec![stop(1, 0)]),
            round("r-1201-b", "2026-12-01", "dev-1", vec![stop(1, 2)]),
            round(
                "r-1201-a",
                "2026-12-01",
                "dev-1",
                vec![stop(2, 1), stop(1, 0), stop(3, 2)],
            ),
            round("r-1130", "2026-11-30", "dev-1", vec![stop(1, 1)]),
            round("r-0101", "2027-01-01", "dev-1", vec![stop(1, 0)]),
            round("r-other", "2026-12-01", "dev-2", vec![stop(1, 0)]),
            round("r-1201-c", "2026-12-01", "dev-1", vec![]),
        ];
        for r in &rounds {
            db.insert_round(r).await.unwrap();
        }
        let ids =
            |found: &[RoundManifest]| found.iter().map(|r| r.round_id.clone()).collect::<Vec<_>>();

        let window = db
            .rounds_for_device("dev-1", "2026-12-01", "2026-12-31")
            .await
            .unwrap();
        assert_eq!(ids(&window), ["r-1201-a", "r-1201-b", "r-1201-c", "r-1230"]);
        assert_eq!(window[2], rounds[6], "a round without stops");
        assert_eq!(window[3], rounds[0]);
        let mut expected = rounds[2].clone();
        expected.stops.sort_by_key(|s| s.order);
        assert_eq!(window[0], expected, "stops in delivery order, items intact");

        let one_day = db
            .rounds_for_device("dev-1", "2026-11-30", "2026-11-30")
            .await
            .unwrap();
        assert_eq!(one_day, vec![rounds[3].clone()]);
        let across_years = db
            .rounds_for_device("dev-1", "2026-12-30", "2027-01-01")
            .await
            .unwrap();
        assert_eq!(ids(&across_years), ["r-1230", "r-0101"]);
        let all = db
            .rounds_for_device("dev-1", "0000-01-01", "9999-12-31")
            .await
            .unwrap();
        assert_eq!(all.len(), 6);
        assert!(db
            .rounds_for_device("dev-1", "2026-12-02", "2026-12-29")
            .await
            .unwrap()
            .is_empty());
        assert!(db
            .rounds_for_device("dev-3", "0000-01-01", "9999-12-31")
            .await
            .unwrap()
            .is_empty());
        let dev_2 = db
            .rounds_for_device("dev-2", "2026-12-01", "2026-12-01")
            .await
            .unwrap();
        assert_eq!(dev_2, vec![rounds[5].clone()]);
    }

    pub async fn customer_documents_are_their_points_and_the_items_addressed_there(db: &Database) {
        // cust-a: points 0 and 2 with items 0, 1, 4, 5; cust-b: point 1 with items 2 and 3.
        town(db, 3, 2).await;
        // A point of cust-a's without items, and one of nobody's.
        db.insert_delivery_point(
            &fixtures::delivery_point_id(7),
            Some("cust-a"),
            &[],
            None,
            1,
        )
        .await
        .unwrap();
        db.insert_delivery_point(&fixtures::delivery_point_id(8), None, &[], None, 1)
            .await
            .unwrap();
        db.insert_item(
            &item_key(16),
            &fixtures::delivery_point_id(8),
            None,
            false,
            0,
        )
        .await
        .unwrap();

        let docs = |v: Vec<DocId>| v.into_iter().collect::<HashSet<_>>();
        let a = db.customer_documents("cust-a").await.unwrap();
        assert_eq!(a.len(), 7, "no duplicates: {a:?}");
        assert_eq!(
            docs(a),
            docs(vec![
                point(0),
                point(2),
                point(7),
                item(0),
                item(1),
                item(4),
                item(5)
            ])
        );
        assert_eq!(
            docs(db.customer_documents("cust-b").await.unwrap()),
            docs(vec![point(1), item(2), item(3)])
        );
        assert!(db
            .customer_documents("cust-nobody")
            .await
            .unwrap()
            .is_empty());
    }

    pub async fn item_info_has_the_point_its_pin_and_the_latest_status(db: &Database) {
        town(db, 1, 1).await;
        db.insert_delivery_point(&fixtures::delivery_point_id(5), None, &[], None, 1)
            .await
            .unwrap();
        db.insert_item(&item_key(9), &fixtures::delivery_point_id(5), None, true, 0)
            .await
            .unwrap();

        let info = db.item_info(&item_key(0)).await.unwrap().unwrap();
        assert_eq!(info.delivery_point, fixtures::delivery_point_id(0));
        let pin = fixtures::pin(0);
        assert_eq!(info.pin, Some((pin.lat, pin.lon)));
        assert_eq!(info.status, UpuCode::Arrived);
        let unpinned = db.item_info(&item_key(9)).await.unwrap().unwrap();
        assert_eq!(unpinned.delivery_point, fixtures::delivery_point_id(5));
        assert_eq!(unpinned.pin, None);
        assert!(db.item_info(&item_key(42)).await.unwrap().is_none());

        // Events move the status forward in time only (the item was inserted at 1,000 ms).
        let status = |db: &Database| {
            let db = db.clone();
            async move { db.item_info(&item_key(0)).await.unwrap().unwrap().status }
        };
        project(
            db,
            Projection {
                events: vec![event_row(0, "EMH", 2_000, "att-1")],
                ..Default::default()
            },
        )
        .await;
        assert_eq!(status(db).await, UpuCode::NotDelivered);
        project(
            db,
            Projection {
                events: vec![event_row(0, "EMI", 3_000, "att-2")],
                ..Default::default()
            },
        )
        .await;
        assert_eq!(status(db).await, UpuCode::Delivered);
        project(
            db,
            Projection {
                events: vec![event_row(0, "EMH", 2_500, "att-late")],
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            status(db).await,
            UpuCode::Delivered,
            "an older event arriving late"
        );

        // Published reference data moves the pin.
        project(
            db,
            Projection {
                references: vec![ReferenceRow {
                    delivery_point_id: fixtures::delivery_point_id(0),
                    lines: vec!["35 RUE DE LA ROQUETTE".into(), "75011 PARIS".into()],
                    pin: Some((48.85, 2.38)),
                    version: 2,
                }],
                ..Default::default()
            },
        )
        .await;
        let info = db.item_info(&item_key(0)).await.unwrap().unwrap();
        assert_eq!(info.pin, Some((48.85, 2.38)));
        assert_eq!(info.status, UpuCode::Delivered);
        assert_eq!(
            db.item_info(&item_key(9)).await.unwrap().unwrap().status,
            UpuCode::Arrived
        );
    }

    pub async fn attempts_for_item_are_oldest_first_and_round_trip(db: &Database) {
        town(db, 1, 2).await;
        let mut sparse = attempt_row("att-sparse", 0, 4_000);
        sparse.lat = None;
        sparse.lon = None;
        sparse.accuracy_m = None;
        sparse.distance_m = None;
        sparse.notice_number = None;
        sparse.waits_at = None;
        sparse.change_hash = vec![0, 255, 7];
        let rows = vec![
            attempt_row("att-c", 0, 3_000),
            attempt_row("att-b", 0, 2_000),
            sparse.clone(),
            attempt_row("att-a", 0, 2_000),
            attempt_row("att-first", 0, 1_000),
            attempt_row("att-other", 1, 500),
        ];
        project(
            db,
            Projection {
                attempts: rows.clone(),
                ..Default::default()
            },
        )
        .await;
        let found = db.attempts_for_item(&item_key(0)).await.unwrap();
        let ids: Vec<_> = found.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["att-first", "att-a", "att-b", "att-c", "att-sparse"]);
        let by_id: BTreeMap<_, _> = rows.iter().map(|r| (r.id.clone(), r)).collect();
        for row in &found {
            assert_eq!(row, by_id[&row.id], "round trip");
        }
        assert_eq!(
            db.attempts_for_item(&item_key(1)).await.unwrap(),
            vec![rows[5].clone()]
        );
        assert!(db
            .attempts_for_item(&item_key(77))
            .await
            .unwrap()
            .is_empty());
    }

    pub async fn open_queue_is_in_arrival_order_without_duplicates(db: &Database) {
        assert!(db.open_queue().await.unwrap().is_empty());
        let first = queue_row("att-9", "far from the pin", 9_000);
        let second = QueueRow {
            kind: QueueKind::Correction,
            ..queue_row("cor-1", "a correction to review", 1_000)
        };
        // Same subject, another reason: a second entry.
        let third = queue_row("att-9", "a notice without a number", 5_000);
        project(
            db,
            Projection {
                queue: vec![first.clone(), second.clone()],
                ..Default::default()
            },
        )
        .await;
        project(
            db,
            Projection {
                queue: vec![second.clone(), third.clone(), first.clone()],
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            db.open_queue().await.unwrap(),
            vec![first.clone(), second, third.clone()]
        );
        assert_eq!(db.count(Table::ReviewQueue).await.unwrap(), 3);

        // A decision on the correction closes its entry, and only its entry.
        town(db, 1, 0).await;
        project(
            db,
            Projection {
                corrections: vec![correction_row("cor-1", 0), correction_row("cor-2", 0)],
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            db.correction_status("cor-1").await.unwrap(),
            Some(CorrectionStatus::Pending)
        );
        project(
            db,
            Projection {
                decisions: vec![DecisionRow {
                    delivery_point_id: String::new(),
                    correction_id: "cor-1".into(),
                    status: CorrectionStatus::Approved,
                    by: "bo-1".into(),
                    comment: "checked on the map".into(),
                    at_ms: 1,
                    auto: false,
                }],
                ..Default::default()
            },
        )
        .await;
        assert_eq!(db.open_queue().await.unwrap(), vec![first, third]);
        assert_eq!(db.count(Table::ReviewQueue).await.unwrap(), 3);
        assert_eq!(
            db.correction_status("cor-1").await.unwrap(),
            Some(CorrectionStatus::Approved)
        );
        assert_eq!(
            db.correction_status("cor-2").await.unwrap(),
            Some(CorrectionStatus::Pending)
        );
        assert!(db.correction_status("cor-9").await.unwrap().is_none());
    }

    pub async fn item_events_are_in_time_order_once_per_source(db: &Database) {
        town(db, 1, 2).await;
        let late = event_row(0, "EMI", 9_000, "att-3");
        let early = event_row(0, "EMH", 2_000, "att-1");
        let same_time = event_row(0, "EMH", 2_000, "att-2");
        let other_item = event_row(1, "EMH", 1_000, "att-x");
        project(
            db,
            Projection {
                events: vec![late.clone(), early.clone(), other_item.clone()],
                ..Default::default()
            },
        )
        .await;
        project(
            db,
            Projection {
                events: vec![same_time.clone(), early.clone()],
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            db.item_events(&item_key(0)).await.unwrap(),
            vec![early, same_time, late],
            "by time, then arrival; the replayed event once"
        );
        assert_eq!(
            db.item_events(&item_key(1)).await.unwrap(),
            vec![other_item]
        );
        assert!(db.item_events(&item_key(5)).await.unwrap().is_empty());
    }

    pub async fn choices_for_item_are_oldest_first_with_their_applicability(db: &Database) {
        town(db, 1, 2).await;
        let rows = vec![
            choice_row("ch-late", 0, 8_000, false),
            choice_row("ch-b", 0, 4_000, true),
            choice_row("ch-a", 0, 4_000, false),
            choice_row("ch-other", 1, 1_000, true),
        ];
        project(
            db,
            Projection {
                choices: rows.clone(),
                ..Default::default()
            },
        )
        .await;
        let found = db.choices_for_item(&item_key(0)).await.unwrap();
        assert_eq!(
            found,
            vec![rows[2].clone(), rows[1].clone(), rows[0].clone()]
        );
        assert!(!found[0].applicable);
        assert_eq!(
            found[0].reason.as_deref(),
            Some("the item was already delivered")
        );
        assert!(found[1].applicable && found[1].reason.is_none());
        assert_eq!(
            db.choices_for_item(&item_key(1)).await.unwrap(),
            vec![rows[3].clone()]
        );
        assert!(db.choices_for_item(&item_key(9)).await.unwrap().is_empty());
    }

    pub async fn count_counts_each_table(db: &Database) {
        let tables = [
            Table::Changes,
            Table::Attempts,
            Table::Choices,
            Table::Corrections,
            Table::ReviewQueue,
            Table::AuditLog,
        ];
        for table in tables {
            assert_eq!(db.count(table).await.unwrap(), 0, "{table:?}");
        }
        town(db, 2, 2).await;
        // A different number of rows in each table, so a table counted for another shows.
        let projection = Projection {
            attempts: vec![attempt_row("att-1", 0, 1)],
            choices: (0..2)
                .map(|i| choice_row(&format!("ch-{i}"), 1, i, true))
                .collect(),
            corrections: (0..3)
                .map(|i| correction_row(&format!("cor-{i}"), 0))
                .collect(),
            queue: (0..4)
                .map(|i| queue_row(&format!("att-{i}"), "why", i))
                .collect(),
            // Audit lines belong to the document whose new changes they record.
            audit: (0..5).map(|_| audit_row(&item(2).to_string())).collect(),
            ..Default::default()
        };
        db.commit_sync(&SyncWrite {
            signatures: Vec::new(),
            changes: vec![(item(2), (0..6).map(|t| fake(t, 16)).collect())],
            projection,
        })
        .await
        .unwrap();
        let counts: Vec<i64> = {
            let mut counts = Vec::new();
            for table in tables {
                counts.push(db.count(table).await.unwrap());
            }
            counts
        };
        assert_eq!(counts, [6, 1, 2, 3, 4, 5]);
    }

    fn decision(correction: &str, status: &str, by: &str) -> DecisionRow {
        DecisionRow {
            correction_id: correction.into(),
            delivery_point_id: "dp-00001".into(),
            status: status.parse().unwrap(),
            by: by.into(),
            comment: format!("{by} says {status}"),
            at_ms: 8_000,
            auto: false,
        }
    }

    pub async fn a_decision_on_a_correction_no_longer_pending_stores_nothing(db: &Database) {
        town(db, 1, 0).await;
        project(
            db,
            Projection {
                corrections: vec![correction_row("cor-1", 0)],
                queue: vec![QueueRow {
                    kind: QueueKind::Correction,
                    ..queue_row("cor-1", "proposed", 5_000)
                }],
                ..Default::default()
            },
        )
        .await;
        let decide = |status: &str, by: &str, tag: u32| SyncWrite {
            signatures: Vec::new(),
            changes: vec![(point(0), vec![fake(tag, 32)])],
            projection: Projection {
                decisions: vec![decision("cor-1", status, by)],
                audit: vec![audit_row(&point(0).to_string())],
                ..Default::default()
            },
        };
        db.commit_sync(&decide("approved", "bo-1", 1))
            .await
            .unwrap();
        let before: Vec<i64> = {
            let mut counts = Vec::new();
            for table in [Table::Changes, Table::AuditLog] {
                counts.push(db.count(table).await.unwrap());
            }
            counts
        };

        // The second reviewer's write, prepared before the first committed, is refused whole.
        let late = db.commit_sync(&decide("rejected", "bo-2", 2)).await;
        assert!(
            matches!(late, Err(CommitError::Conflict(ref why)) if why.contains("cor-1")),
            "{late:?}"
        );
        assert_eq!(
            db.correction_status("cor-1").await.unwrap(),
            Some(CorrectionStatus::Approved)
        );
        let after = [
            db.count(Table::Changes).await.unwrap(),
            db.count(Table::AuditLog).await.unwrap(),
        ];
        assert_eq!(
            after.to_vec(),
            before,
            "no change and no audit line of the loser"
        );
        assert!(db.open_queue().await.unwrap().is_empty());

        // A decision on a correction that does not exist is refused the same way.
        let unknown = SyncWrite {
            signatures: Vec::new(),
            changes: vec![],
            projection: Projection {
                decisions: vec![decision("cor-9", "approved", "bo-1")],
                ..Default::default()
            },
        };
        assert!(matches!(
            db.commit_sync(&unknown).await,
            Err(CommitError::Conflict(_))
        ));
    }

    pub async fn audit_log_reads_one_subjects_lines_in_order(db: &Database) {
        town(db, 2, 0).await;
        let line = |subject: &DocId, action: &str| AuditRow {
            action: action.into(),
            ..audit_row(&subject.to_string())
        };
        for (tag, (subject, action)) in [
            (point(0), "first"),
            (point(1), "elsewhere"),
            (point(0), "second"),
        ]
        .into_iter()
        .enumerate()
        {
            db.commit_sync(&SyncWrite {
                signatures: Vec::new(),
                changes: vec![(subject.clone(), vec![fake(tag as u32, 24)])],
                projection: Projection {
                    audit: vec![line(&subject, action)],
                    ..Default::default()
                },
            })
            .await
            .unwrap();
        }
        let lines = db.audit_log(&point(0).to_string()).await.unwrap();
        assert_eq!(
            lines,
            vec![line(&point(0), "first"), line(&point(0), "second")]
        );
        assert!(db.audit_log("dp:nowhere").await.unwrap().is_empty());
    }

    pub async fn news_upto_stops_at_its_bound_and_its_cursor_does_too(db: &Database) {
        town(db, 2, 0).await;
        let (a, b) = (point(0), point(1));
        commit(db, &a, vec![fake(1, 24)]).await;
        let bound = db.max_position().await.unwrap();
        // Stored after the sync read its bound: news next time, not now, and not skipped.
        commit(db, &b, vec![fake(2, 24)]).await;
        commit(db, &a, vec![fake(3, 24)]).await;
        let scope = Scope::Documents([a.clone(), b.clone()].into());
        let none = HashSet::new();
        let news = db
            .news_upto(0, bound, &scope, &none, 1 << 20)
            .await
            .unwrap();
        assert_eq!(news.rows, vec![(bound, a.clone(), fake(1, 24).1)]);
        assert_eq!(news.cursor, bound);
        assert!(!news.more);
        let next = db
            .news_upto(
                news.cursor,
                db.max_position().await.unwrap(),
                &scope,
                &none,
                1 << 20,
            )
            .await
            .unwrap();
        let docs: Vec<&DocId> = next.rows.iter().map(|(_, doc, _)| doc).collect();
        assert_eq!(docs, vec![&b, &a]);
        assert_eq!(next.cursor, db.max_position().await.unwrap());
    }

    /// Issue #19: records are keyed by their key alone, so a row for another item or point under
    /// a key another record holds must fail the write, not vanish; a replay still lands.
    pub async fn a_projected_row_whose_key_another_record_holds_fails_the_whole_write(
        db: &Database,
    ) {
        town(db, 2, 1).await;
        let first = SyncWrite {
            signatures: Vec::new(),
            changes: vec![(item(0), vec![fake(1, 24)])],
            projection: Projection {
                attempts: vec![attempt_row("att-1", 0, 1_000)],
                choices: vec![choice_row("cho-1", 0, 1_000, true)],
                corrections: vec![correction_row("cor-1", 0)],
                ..Default::default()
            },
        };
        db.commit_sync(&first).await.unwrap();
        db.commit_sync(&first).await.unwrap();
        let claims = db
            .claims(
                &BTreeSet::new(),
                &["att-1", "cho-1", "cor-1", "new"].map(String::from).into(),
            )
            .await
            .unwrap();
        let held: BTreeMap<_, _> = claims.record_keys.into_iter().collect();
        assert_eq!(
            held,
            BTreeMap::from([
                (("attempts".into(), "att-1".into()), item(0)),
                (("choices".into(), "cho-1".into()), item(0)),
                (("corrections".into(), "cor-1".into()), point(0)),
            ])
        );

        let mut other_change = attempt_row("att-1", 0, 1_000);
        other_change.change_hash = b"another change".to_vec();
        let collisions = [
            Projection {
                attempts: vec![attempt_row("att-1", 1, 1_000)],
                ..Default::default()
            },
            Projection {
                attempts: vec![other_change],
                ..Default::default()
            },
            Projection {
                choices: vec![choice_row("cho-1", 1, 1_000, true)],
                ..Default::default()
            },
            Projection {
                corrections: vec![correction_row("cor-1", 1)],
                queue: vec![queue_row("cor-1", "proposed correction", 2_000)],
                ..Default::default()
            },
        ];
        for (tag, projection) in (10..).zip(collisions) {
            let write = SyncWrite {
                signatures: Vec::new(),
                changes: vec![(item(1), vec![fake(tag, 24)])],
                projection,
            };
            assert!(
                matches!(db.commit_sync(&write).await, Err(CommitError::Conflict(_))),
                "{write:?}"
            );
        }
        assert_eq!(db.count(Table::Changes).await.unwrap(), 1, "nothing stored");
        assert_eq!(db.count(Table::ReviewQueue).await.unwrap(), 0);
        assert!(db.attempts_for_item(&item_key(1)).await.unwrap().is_empty());
        assert!(db.choices_for_item(&item_key(1)).await.unwrap().is_empty());
        assert_eq!(
            db.attempts_for_item(&item_key(0)).await.unwrap(),
            vec![attempt_row("att-1", 0, 1_000)]
        );
    }

    /// Issue #19: an actor id is bound to the first owner whose write stores it, in that write;
    /// the server's own actors (those of the documents it creates) are bound to the server.
    pub async fn an_actor_is_bound_to_its_first_owner_in_the_write_that_uses_it(db: &Database) {
        town(db, 1, 1).await;
        let server = fixtures::server_actor();
        let phone = ActorId::from([7u8; 16]);
        let actors: BTreeSet<ActorId> = [server.clone(), phone.clone()].into();
        let owners = |claims: tournee_sync_core::validator::Claims| -> BTreeMap<ActorId, String> {
            claims.actors.into_iter().collect()
        };
        let claims = db.claims(&actors, &BTreeSet::new()).await.unwrap();
        assert_eq!(
            owners(claims),
            BTreeMap::from([(server.clone(), SERVER_OWNER.to_string())])
        );

        let bind = |actor: &ActorId, owner: &str, tag: u32| SyncWrite {
            signatures: Vec::new(),
            changes: vec![(item(0), vec![fake(tag, 24)])],
            projection: Projection {
                actors: vec![(actor.to_hex_string(), owner.to_string())],
                ..Default::default()
            },
        };
        db.commit_sync(&bind(&phone, "postman:pm-1:dev-1", 1))
            .await
            .unwrap();
        // The same owner again: bound already, stored.
        db.commit_sync(&bind(&phone, "postman:pm-1:dev-1", 2))
            .await
            .unwrap();
        // Another owner, for the phone's actor or the server's: nothing of the write is stored.
        for (actor, owner) in [
            (&phone, "customer:cust-a:"),
            (&server, "postman:pm-1:dev-1"),
        ] {
            assert!(matches!(
                db.commit_sync(&bind(actor, owner, 3)).await,
                Err(CommitError::Conflict(_))
            ));
        }
        assert_eq!(db.count(Table::Changes).await.unwrap(), 2);
        let claims = db.claims(&actors, &BTreeSet::new()).await.unwrap();
        assert_eq!(
            owners(claims),
            BTreeMap::from([
                (server, SERVER_OWNER.to_string()),
                (phone, "postman:pm-1:dev-1".to_string()),
            ])
        );
    }

    /// Issue #19: changes stored before migration 0003 bound no actor. Their authors' actors are
    /// bound to the owner each record names, so nobody can claim a phone's actor first.
    pub async fn actors_of_records_stored_before_bindings_are_bound_to_their_authors(
        db: &Database,
    ) {
        town(db, 1, 1).await;
        let phone = ActorId::from([9u8; 16]);
        let mut doc = fixtures::item_doc(0, 0)
            .unwrap()
            .fork()
            .with_actor(phone.clone());
        let change = attempt_change(&mut doc, "att-old", 0);
        let mut row = attempt_row("att-old", 0, 1_000);
        row.change_hash = change.0.clone();
        // Stored as before bindings existed: the write binds nothing.
        db.commit_sync(&SyncWrite {
            signatures: Vec::new(),
            changes: vec![(item(0), vec![change])],
            projection: Projection {
                attempts: vec![row],
                ..Default::default()
            },
        })
        .await
        .unwrap();
        let actors: BTreeSet<ActorId> = [phone.clone()].into();
        let claims = db.claims(&actors, &BTreeSet::new()).await.unwrap();
        assert!(claims.actors.is_empty());

        db.bind_legacy_actors().await.unwrap();
        db.bind_legacy_actors().await.unwrap();
        let claims = db.claims(&actors, &BTreeSet::new()).await.unwrap();
        assert_eq!(
            claims.actors.get(&phone).map(String::as_str),
            Some("postman:pm-1:dev-1")
        );
    }

    /// What the review queue shows for many entries is read in a fixed number of queries.
    pub async fn corrections_and_attempts_are_read_many_at_a_time(db: &Database) {
        town(db, 3, 1).await;
        let corrections = vec![
            correction_row("cor-a", 0),
            correction_row("cor-b", 0),
            correction_row("cor-c", 1),
        ];
        let attempts = vec![
            attempt_row("att-1", 0, 1_000),
            attempt_row("att-2", 2, 2_000),
        ];
        project(
            db,
            Projection {
                corrections: corrections.clone(),
                attempts: attempts.clone(),
                ..Default::default()
            },
        )
        .await;
        let pending = |c: &CorrectionRow| (c.clone(), CorrectionStatus::Pending);

        let mut found = db.corrections(&["cor-c", "cor-a", "cor-9"]).await.unwrap();
        found.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        assert_eq!(found, [pending(&corrections[0]), pending(&corrections[2])]);
        assert!(db.corrections(&[]).await.unwrap().is_empty());
        let (p0, p2) = (
            fixtures::delivery_point_id(0),
            fixtures::delivery_point_id(2),
        );
        assert_eq!(
            db.corrections_for_points(&[&p0, &p2]).await.unwrap(),
            [pending(&corrections[0]), pending(&corrections[1])]
        );
        assert_eq!(
            db.corrections_for_point(&fixtures::delivery_point_id(1))
                .await
                .unwrap(),
            [pending(&corrections[2])]
        );

        let mut found = db
            .attempts_at_points(&["att-2", "att-1", "att-9"])
            .await
            .unwrap();
        found.sort_by(|a, b| a.attempt.id.cmp(&b.attempt.id));
        assert_eq!(found.len(), 2);
        for (found, (attempt, n)) in found.iter().zip([(&attempts[0], 0), (&attempts[1], 2)]) {
            let info = db.item_info(&item_key(n)).await.unwrap().unwrap();
            assert_eq!(&found.attempt, attempt);
            assert_eq!(found.delivery_point, Some(info.delivery_point));
            assert_eq!(found.pin, info.pin);
        }
        assert!(db.attempts_at_points(&[]).await.unwrap().is_empty());
    }

    /// Group commit's fallback: writes that wait together are committed in one transaction; when
    /// one of them fails (here a record key another record holds), the group is committed
    /// again write by write, so the others are stored and answered, and only that one fails,
    /// with nothing of it stored.
    pub async fn a_group_with_one_failing_write_commits_the_others_and_fails_that_one_alone(
        db: &Database,
    ) {
        use prometheus_client::metrics::histogram::Histogram;
        use tournee_server::group_commit::GroupCommit;

        town(db, 4, 1).await;
        db.commit_sync(&SyncWrite {
            signatures: Vec::new(),
            changes: vec![(item(0), vec![fake(1, 24)])],
            projection: Projection {
                attempts: vec![attempt_row("att-1", 0, 1_000)],
                ..Default::default()
            },
        })
        .await
        .unwrap();
        let groups = Histogram::new([1.0, 2.0, 4.0, 8.0]);
        let committer = GroupCommit::start(db.clone(), groups.clone());
        let honest = |n: u32| SyncWrite {
            signatures: Vec::new(),
            changes: vec![(item(n), vec![fake(10 + n, 24)])],
            projection: Projection {
                attempts: vec![attempt_row(&format!("att-{n}-new"), n, 2_000)],
                ..Default::default()
            },
        };
        // Holds att-1, which item 0's record holds already.
        let colliding = SyncWrite {
            signatures: Vec::new(),
            changes: vec![(item(3), vec![fake(99, 24)])],
            projection: Projection {
                attempts: vec![attempt_row("att-1", 3, 2_000)],
                ..Default::default()
            },
        };
        // Sent before the committer runs (one thread): the four wait together, one group.
        let (one, two, bad, three) = tokio::join!(
            committer.commit(honest(1)),
            committer.commit(honest(2)),
            committer.commit(colliding),
            committer.commit(SyncWrite {
                signatures: Vec::new(),
                changes: vec![(item(0), vec![fake(13, 24)])],
                projection: Projection::default(),
            }),
        );
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("groups", "writes per group", groups);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("groups_sum 4.0") && text.contains("groups_count 1\n"),
            "one group of four: {text}"
        );
        one.unwrap();
        two.unwrap();
        three.unwrap();
        assert!(bad.is_err(), "{bad:?}");
        let stored: Vec<Vec<u8>> = log(db, &[item(0), item(1), item(2), item(3)])
            .await
            .into_iter()
            .map(|(_, _, bytes)| bytes)
            .collect();
        for tag in [1, 11, 12, 13] {
            assert!(stored.contains(&fake(tag, 24).1), "change {tag} stored");
        }
        assert!(
            !stored.contains(&fake(99, 24).1),
            "nothing of the failed write"
        );
        assert_eq!(db.count(Table::Attempts).await.unwrap(), 3);
    }

    /// A lookup by a list of keys reads the key's index in a table of 20,000 rows, in the plan a
    /// pooled connection caches (on PostgreSQL the generic plan, used from the sixth call on).
    /// Written as `IN (SELECT …)`, PostgreSQL planned the list as a join of 100 keys and scanned
    /// every table below a few tens of thousands of rows: on a new database every sync scanned
    /// `attempts` and `actors` (BENCHMARKS.md, the steady day on PostgreSQL).
    pub async fn a_lookup_by_a_list_of_keys_is_planned_on_the_keys_index(db: &Database) {
        let fill =
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) \
             INSERT INTO actors (actor, owner, bound_ms) \
             SELECT 'actor-' || i, 'postman:pm-1:dev-1', i FROM n; ANALYZE actors";
        let lookup = format!("SELECT actor FROM actors WHERE actor {}", db.in_list(1));
        let plan: Vec<String> = match db {
            Database::Sqlite(pool) => {
                sqlx::raw_sql(fill).execute(pool).await.unwrap();
                let rows: Vec<(i64, i64, i64, String)> =
                    sqlx::query_as(&format!("EXPLAIN QUERY PLAN {lookup}"))
                        .bind("[\"a\"]")
                        .fetch_all(pool)
                        .await
                        .unwrap();
                rows.into_iter().map(|row| row.3).collect()
            }
            Database::Postgres(pool) => {
                use sqlx::Row;
                sqlx::raw_sql(fill).execute(pool).await.unwrap();
                // One simple query, so one connection: the generic plan of the lookup.
                let rows = sqlx::raw_sql(&format!(
                    "SET plan_cache_mode = force_generic_plan; \
                     PREPARE lookup(text) AS {lookup}; \
                     EXPLAIN EXECUTE lookup('[\"a\"]'); \
                     DEALLOCATE lookup; RESET plan_cache_mode"
                ))
                .fetch_all(pool)
                .await
                .unwrap();
                rows.iter().map(|row| row.get::<String, _>(0)).collect()
            }
        };
        let plan = plan.join("\n");
        assert!(
            !plan.contains("SCAN actors") && !plan.contains("Seq Scan on actors"),
            "actors scanned for a lookup by its key:\n{plan}"
        );
        assert!(plan.contains("INDEX") || plan.contains("Index"), "{plan}");
    }
}
