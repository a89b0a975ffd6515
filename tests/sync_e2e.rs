//! A real server on port 0, over SQLite and (with `TEST_DATABASE_URL`) PostgreSQL, and phones
//! that sync with it over HTTP through sync-core.

#![allow(clippy::unwrap_used, missing_docs)]

use tournee_e2e::{backends, customer_view, Phone, TestServer};
use tournee_server::auth::TokenRole;
use tournee_server::db::{QueueKind, Table, UpuCode};
use tournee_sync_core::fixtures;
use tournee_sync_core::model::Preferences;
use tournee_sync_core::operations;
use tournee_sync_core::store::InteractionKind;
use tournee_sync_core::sync::wire::{
    self, DocRequest, Limits, RefusalCode, RequestBody, ResponseBody, SyncRequest,
};
use tournee_sync_core::DocId;

fn item(n: u32) -> DocId {
    DocId::item(&fixtures::s10(n))
}

fn point(n: u32) -> DocId {
    DocId::delivery_point(&fixtures::delivery_point_id(n)).unwrap()
}

/// The customer app of `cust-1`, who owns delivery point 0 and its items 0 and 1.
async fn post_frame(server: &TestServer, token: &str, frame: Vec<u8>) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/v1/sync", server.base))
        .bearer_auth(token)
        .body(frame)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_round_is_worked_offline_then_synced_and_reconciled() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let mut phone = Phone::postman(&server, "pm-1", "dev-1").await;
        let report = phone.sync(&server).await;
        assert!(
            report.refused.is_empty(),
            "{backend:?}: {:?}",
            report.refused
        );
        assert_eq!(
            phone.store.document_ids().count(),
            18,
            "{backend:?}: 6 points and 12 items"
        );

        // Offline at the doors: an absence with a notice, a delivery far from the pin, a correction.
        let absent = fixtures::absent_attempt("dev-1", "pm-1", 2);
        phone
            .store
            .commit(&item(2), InteractionKind::Attempt, |doc| {
                Ok((
                    "att-2".into(),
                    operations::record_attempt(doc, "att-2", &absent)?,
                ))
            })
            .unwrap();
        let mut far = fixtures::delivered_attempt("dev-1", "pm-1", 4);
        far.position.as_mut().unwrap().lat += 0.01; // about 1.1 km north
        phone
            .store
            .commit(&item(4), InteractionKind::Attempt, |doc| {
                Ok((
                    "att-4".into(),
                    operations::record_attempt(doc, "att-4", &far)?,
                ))
            })
            .unwrap();
        let correction = fixtures::number_correction("dev-1", "pm-1");
        phone
            .store
            .commit(&point(1), InteractionKind::Correction, |doc| {
                Ok((
                    "cor-1".into(),
                    operations::propose_correction(doc, "cor-1", &correction)?,
                ))
            })
            .unwrap();
        assert_eq!(phone.store.pending_interactions().len(), 3);

        let report = phone.sync(&server).await;
        assert_eq!(report.acknowledged.len(), 3, "{backend:?}: {report:?}");
        assert!(phone.store.pending_interactions().is_empty());

        let db = &server.state.db;
        let attempts = db
            .attempts_for_item(fixtures::s10(2).as_str())
            .await
            .unwrap();
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].outcome, "addressee_absent");
        assert_eq!(attempts[0].notice_number.as_deref(), Some("AV00000002"));
        assert!(
            attempts[0].distance_m.unwrap() < 150.0,
            "{:?}",
            attempts[0].distance_m
        );
        let events = db.item_events(fixtures::s10(2).as_str()).await.unwrap();
        // EDG when the device downloaded it (now), EMH for the attempt (the fixtures' morning).
        let mut codes: Vec<&str> = events.iter().map(|e| e.code.as_str()).collect();
        codes.sort_unstable();
        assert_eq!(codes, ["EDG", "EMH"], "{backend:?}");
        let events: Vec<_> = events
            .into_iter()
            .filter(|e| e.code == UpuCode::NotDelivered)
            .collect();
        assert_eq!(events[0].reason.as_deref(), Some("addressee_absent"));
        assert!(events[0]
            .action
            .as_deref()
            .unwrap()
            .contains("post_office:bp-paris-11 until 2026-12-08"));
        let delivered = db.item_events(fixtures::s10(4).as_str()).await.unwrap();
        assert!(
            delivered.iter().any(|e| e.code == UpuCode::Delivered),
            "{backend:?}: {delivered:?}"
        );

        let queue = db.open_queue().await.unwrap();
        assert!(
            queue
                .iter()
                .any(|q| q.kind == QueueKind::Correction && q.subject_id == "cor-1"),
            "{queue:?}"
        );
        let far_flag = queue
            .iter()
            .find(|q| q.kind == QueueKind::Attempt && q.subject_id == "att-4")
            .expect("far attempt flagged");
        assert!(
            far_flag.reason.contains("m from the delivery point's pin"),
            "{}",
            far_flag.reason
        );
        assert!(
            !queue.iter().any(|q| q.subject_id == "att-2"),
            "a close attempt with a full notice is not flagged"
        );
        assert_eq!(db.count(Table::Corrections).await.unwrap(), 1);
        server.stop().await;
    }
}

#[tokio::test]
async fn a_customer_choice_made_while_the_postman_is_offline_reaches_the_phone_and_both_stand() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let mut postman = Phone::postman(&server, "pm-1", "dev-1").await;
        postman.sync(&server).await;
        let mut customer = Phone::customer(&server, "cust-1", customer_view());
        customer.sync(&server).await;
        assert_eq!(customer.store.document_ids().count(), 3);

        // The customer asks for redelivery; the postman, offline, records an absence meanwhile.
        let choice = fixtures::redeliver_choice("cust-1", "2026-11-25");
        customer
            .store
            .commit(&item(1), InteractionKind::Choice, |doc| {
                Ok((
                    "ch-1".into(),
                    operations::choose_for_item(doc, "ch-1", &choice)?,
                ))
            })
            .unwrap();
        let prefs = Preferences {
            safe_place: Some("abri de jardin".into()),
            ..Default::default()
        };
        customer
            .store
            .commit(&point(0), InteractionKind::Preferences, |doc| {
                let hash = operations::set_preferences(doc, &prefs)?;
                Ok(("prefs".into(), hash))
            })
            .unwrap();
        let report = customer.sync(&server).await;
        assert_eq!(report.acknowledged.len(), 2, "{backend:?}: {report:?}");

        let attempt = fixtures::absent_attempt("dev-1", "pm-1", 1);
        postman
            .store
            .commit(&item(1), InteractionKind::Attempt, |doc| {
                Ok((
                    "att-1".into(),
                    operations::record_attempt(doc, "att-1", &attempt)?,
                ))
            })
            .unwrap();
        let report = postman.sync(&server).await;
        assert_eq!(report.acknowledged.len(), 1);
        assert!(report.changed_documents.contains(&item(1)), "{report:?}");

        let on_phone = operations::read_item(postman.store.document(&item(1)).unwrap()).unwrap();
        assert_eq!(on_phone.choices["ch-1"], choice);
        assert_eq!(on_phone.attempts["att-1"], attempt);
        let point_on_phone =
            operations::read_delivery_point(postman.store.document(&point(0)).unwrap()).unwrap();
        assert_eq!(
            point_on_phone.preferences.safe_place.as_deref(),
            Some("abri de jardin")
        );

        let choices = server
            .state
            .db
            .choices_for_item(fixtures::s10(1).as_str())
            .await
            .unwrap();
        assert_eq!(choices.len(), 1);
        assert!(choices[0].applicable);
        server.stop().await;
    }
}

#[tokio::test]
async fn forged_changes_are_refused_whole_and_nothing_is_stored() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let mut postman = Phone::postman(&server, "pm-1", "dev-1").await;
        postman.sync(&server).await;
        let changes_before = server.state.db.count(Table::Changes).await.unwrap();

        // A postman writing a customer's preference.
        let doc = postman.store.document(&point(0)).unwrap().clone();
        let mut forged = doc.fork();
        operations::set_preferences(
            &mut forged,
            &Preferences {
                safe_place: Some("sous le paillasson".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let change = forged.get_changes(&doc.get_heads()).pop().unwrap();
        let refused = push(
            &server,
            &postman.token,
            point(0),
            change.raw_bytes().to_vec(),
        )
        .await;
        assert!(
            matches!(&refused, ResponseBody::Refused { code: RefusalCode::Forbidden, message } if message.contains("preferences")),
            "{backend:?}: {refused:?}"
        );

        // A device writing a document outside its rounds (delivery point 8 is pm-2's).
        let mut other = server
            .state
            .docs
            .load(&server.state.db, &item(16))
            .await
            .unwrap()
            .unwrap()
            .fork();
        let heads = other.get_heads();
        operations::record_attempt(
            &mut other,
            "att-x",
            &fixtures::absent_attempt("dev-1", "pm-1", 16),
        )
        .unwrap();
        let change = other.get_changes(&heads).pop().unwrap();
        let refused = push(
            &server,
            &postman.token,
            item(16),
            change.raw_bytes().to_vec(),
        )
        .await;
        assert!(
            matches!(
                refused,
                ResponseBody::Refused {
                    code: RefusalCode::OutOfScope,
                    ..
                }
            ),
            "{backend:?}: {refused:?}"
        );

        // A customer writing an attempt on their own item.
        let customer = server.token(TokenRole::Customer, "cust-1", None);
        let doc = postman.store.document(&item(0)).unwrap().clone();
        let mut forged = doc.fork();
        operations::record_attempt(
            &mut forged,
            "att-c",
            &fixtures::delivered_attempt("dev-1", "pm-1", 0),
        )
        .unwrap();
        let change = forged.get_changes(&doc.get_heads()).pop().unwrap();
        let refused = push(&server, &customer, item(0), change.raw_bytes().to_vec()).await;
        assert!(
            matches!(
                refused,
                ResponseBody::Refused {
                    code: RefusalCode::Forbidden,
                    ..
                }
            ),
            "{backend:?}: {refused:?}"
        );

        assert_eq!(
            server.state.db.count(Table::Changes).await.unwrap(),
            changes_before,
            "{backend:?}: nothing stored"
        );
        assert_eq!(server.state.db.count(Table::Attempts).await.unwrap(), 0);
        server.stop().await;
    }
}

#[tokio::test]
async fn a_replayed_request_is_stored_and_projected_once() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let mut postman = Phone::postman(&server, "pm-1", "dev-1").await;
        postman.sync(&server).await;
        let doc = postman.store.document(&item(3)).unwrap().clone();
        let mut next = doc.clone();
        operations::record_attempt(
            &mut next,
            "att-3",
            &fixtures::absent_attempt("dev-1", "pm-1", 3),
        )
        .unwrap();
        let change = next
            .get_changes(&doc.get_heads())
            .pop()
            .unwrap()
            .raw_bytes()
            .to_vec();
        for _ in 0..3 {
            let answer = push(&server, &postman.token, item(3), change.clone()).await;
            assert!(
                matches!(answer, ResponseBody::Update { .. }),
                "{backend:?}: {answer:?}"
            );
        }
        let db = &server.state.db;
        assert_eq!(db.count(Table::Attempts).await.unwrap(), 1, "{backend:?}");
        let events = db.item_events(fixtures::s10(3).as_str()).await.unwrap();
        assert_eq!(
            events
                .iter()
                .filter(|e| e.code == UpuCode::NotDelivered)
                .count(),
            1,
            "{backend:?}: {events:?}"
        );
        assert_eq!(
            events
                .iter()
                .filter(|e| e.code == UpuCode::OutForDelivery)
                .count(),
            1,
            "{backend:?}: {events:?}"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn bad_bodies_and_bad_tokens_get_a_precise_4xx_and_store_nothing() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let token = server.token(TokenRole::Postman, "pm-1", Some("dev-1"));
        let status = post_frame(&server, &token, b"not a frame at all".to_vec())
            .await
            .status();
        assert_eq!(status, 400);
        let oversized = vec![0u8; 5 * 1024 * 1024];
        assert_eq!(post_frame(&server, &token, oversized).await.status(), 413);
        let unknown = wire::VERSION + 1;
        let from_the_future = [b"TRNE".as_slice(), &[unknown, 0, 0xa0]].concat();
        let response = post_frame(&server, &token, from_the_future).await;
        assert_eq!(response.status(), 400);
        let body = response.text().await.unwrap();
        assert!(body.contains(&format!("wire version {unknown}")), "{body}");

        let frame = wire::encode_request(&SyncRequest {
            since: None,
            history: None,
            docs: vec![],
        });
        assert_eq!(post_frame(&server, "", frame.clone()).await.status(), 401);
        assert_eq!(
            post_frame(&server, "not.a.token", frame.clone())
                .await
                .status(),
            401
        );
        let customer = server.token(TokenRole::Customer, "cust-1", None);
        let rounds = reqwest::Client::new()
            .get(format!("{}/v1/rounds", server.base))
            .bearer_auth(&customer)
            .send()
            .await
            .unwrap();
        assert_eq!(rounds.status(), 403, "rounds are for postmen");
        server.state.db.revoke_device("dev-1", 1).await.unwrap();
        let response = post_frame(&server, &token, frame).await;
        assert_eq!(response.status(), 403);
        assert!(response.text().await.unwrap().contains("revoked"));
        assert_eq!(server.state.db.count(Table::Changes).await.unwrap(), 0);
        server.stop().await;
    }
}

/// Pushes one raw change for one document and returns the server's answer for it.
async fn push(server: &TestServer, token: &str, doc: DocId, change: Vec<u8>) -> ResponseBody {
    let request = SyncRequest {
        since: None,
        history: None,
        docs: vec![DocRequest {
            doc,
            body: RequestBody::Push {
                signatures: Vec::new(),
                changes: vec![change.into()],
                extra_heads: Default::default(),
            },
        }],
    };
    let response = post_frame(server, token, wire::encode_request(&request)).await;
    assert!(response.status().is_success(), "{}", response.status());
    let answer =
        wire::decode_response(&response.bytes().await.unwrap(), &Limits::default()).unwrap();
    answer.docs.into_iter().next().unwrap().body
}

#[tokio::test]
async fn an_approved_correction_becomes_reference_data_on_every_device() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let mut postman = Phone::postman(&server, "pm-1", "dev-1").await;
        postman.sync(&server).await;
        let correction = fixtures::number_correction("dev-1", "pm-1");
        postman
            .store
            .commit(&point(1), InteractionKind::Correction, |doc| {
                Ok((
                    "cor-1".into(),
                    operations::propose_correction(doc, "cor-1", &correction)?,
                ))
            })
            .unwrap();
        postman.sync(&server).await;
        let before =
            operations::read_delivery_point(postman.store.document(&point(1)).unwrap()).unwrap();
        assert_eq!(
            before.reference.house_number, "2",
            "a correction alone changes nothing"
        );
        assert_eq!(
            server
                .state
                .db
                .correction_status("cor-1")
                .await
                .unwrap()
                .map(|s| s.as_str()),
            Some("pending")
        );

        tournee_server::backoffice::approve_correction(
            &server.state,
            "bo-1",
            &point(1),
            "cor-1",
            "checked on the cadastre",
        )
        .await
        .unwrap();

        let report = postman.sync(&server).await;
        assert!(
            report.changed_documents.contains(&point(1)),
            "{backend:?}: {report:?}"
        );
        let after =
            operations::read_delivery_point(postman.store.document(&point(1)).unwrap()).unwrap();
        assert_eq!(after.reference.house_number, "35");
        assert!(
            after
                .reference
                .lines
                .contains(&"35 RUE DE LA ROQUETTE".to_string()),
            "{:?}",
            after.reference.lines
        );
        assert_eq!(after.reference.version, 2);
        assert_eq!(after.access.door_code.as_deref(), Some("4512A"));
        assert_eq!(after.reviews["cor-1"].by, "bo-1");
        assert_eq!(
            server
                .state
                .db
                .correction_status("cor-1")
                .await
                .unwrap()
                .map(|s| s.as_str()),
            Some("approved")
        );
        let queue = server.state.db.open_queue().await.unwrap();
        assert!(
            !queue.iter().any(|q| q.subject_id == "cor-1"),
            "the queue entry is closed: {queue:?}"
        );

        // Another postman whose round does not include the point never receives it; one whose
        // round does would, through the same news.
        let unknown = tournee_server::backoffice::approve_correction(
            &server.state,
            "bo-1",
            &point(1),
            "nope",
            "x",
        )
        .await;
        assert!(
            matches!(&unknown, Err(tournee_server::write::WriteError::NotFound(what)) if what.contains("nope")),
            "{unknown:?}"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn two_server_instances_on_one_postgres_stay_correct_together() {
    let Some(tournee_e2e::Backend::Postgres(admin)) = backends()
        .into_iter()
        .find(|b| matches!(b, tournee_e2e::Backend::Postgres(_)))
    else {
        eprintln!("TEST_DATABASE_URL not set: the multi-instance test needs PostgreSQL");
        return;
    };
    let first = TestServer::start(&tournee_e2e::Backend::Postgres(admin)).await;
    let second = TestServer::start_on(&first.database_url, tempfile::tempdir().unwrap()).await;
    let mut postman = Phone::postman(&first, "pm-1", "dev-1").await;
    let mut customer = Phone::customer(&second, "cust-1", customer_view());
    postman.sync(&first).await;
    customer.sync(&second).await;

    // Interleaved writes through both instances, each instance caching its own copies.
    for round in 0..4u32 {
        let attempt = fixtures::absent_attempt("dev-1", "pm-1", round);
        let id = format!("att-{round}");
        postman
            .store
            .commit(&item(round % 2), InteractionKind::Attempt, |doc| {
                Ok((id.clone(), operations::record_attempt(doc, &id, &attempt)?))
            })
            .unwrap();
        let choice = fixtures::redeliver_choice("cust-1", &format!("2026-12-{:02}", round + 1));
        let cid = format!("ch-{round}");
        customer
            .store
            .commit(&item(1), InteractionKind::Choice, |doc| {
                Ok((
                    cid.clone(),
                    operations::choose_for_item(doc, &cid, &choice).or_else(|e| match e {
                        operations::OperationError::AlreadyDelivered => Ok(None),
                        other => Err(other),
                    })?,
                ))
            })
            .unwrap();
        let (via_postman, via_customer) = if round % 2 == 0 {
            (&first, &second)
        } else {
            (&second, &first)
        };
        let report = postman.sync(via_postman).await;
        assert!(
            report.refused.is_empty(),
            "round {round}: {:?}",
            report.refused
        );
        let report = customer.sync(via_customer).await;
        assert!(
            report.refused.is_empty(),
            "round {round}: {:?}",
            report.refused
        );
    }
    postman.sync(&second).await;
    customer.sync(&first).await;
    postman.sync(&first).await;

    assert!(postman.store.pending_interactions().is_empty());
    assert!(customer.store.pending_interactions().is_empty());
    for id in [item(0), item(1)] {
        let on_phone = operations::read_item(postman.store.document(&id).unwrap()).unwrap();
        let on_first = operations::read_item(
            &first
                .state
                .docs
                .load(&first.state.db, &id)
                .await
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        let on_second = operations::read_item(
            &second
                .state
                .docs
                .load(&second.state.db, &id)
                .await
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(on_phone, on_first, "{id}");
        assert_eq!(on_first, on_second, "{id}");
    }
    let customer_item = operations::read_item(customer.store.document(&item(1)).unwrap()).unwrap();
    assert_eq!(
        customer_item.attempts.len(),
        2,
        "the customer sees both attempts on item 1"
    );
    assert_eq!(first.state.db.count(Table::Attempts).await.unwrap(), 4);
    second.stop().await;
    first.stop().await;
}

#[tokio::test]
async fn compaction_keeps_documents_and_news_whole() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let mut postman = Phone::postman(&server, "pm-1", "dev-1").await;
        postman.sync(&server).await;
        let before = server.state.db.count(Table::Changes).await.unwrap();
        for n in 0..(tournee_server::compaction::THRESHOLD as u32 + 6) {
            let attempt = fixtures::absent_attempt("dev-1", "pm-1", n);
            let id = format!("att-{n}");
            postman
                .store
                .commit(&item(5), InteractionKind::Attempt, |doc| {
                    Ok((id.clone(), operations::record_attempt(doc, &id, &attempt)?))
                })
                .unwrap();
        }
        postman.sync(&server).await;
        assert_eq!(
            tournee_server::compaction::compact_some(&server.state.db, 10)
                .await
                .unwrap(),
            1,
            "{backend:?}"
        );
        assert_eq!(
            tournee_server::compaction::compact_some(&server.state.db, 10)
                .await
                .unwrap(),
            0,
            "nothing left to compact"
        );
        assert_eq!(
            server.state.db.count(Table::Changes).await.unwrap(),
            before + 70,
            "the log keeps every change for cursors"
        );

        // A fresh server on the same database loads the compacted document whole, and a new
        // phone downloads it whole.
        let stored = server
            .state
            .db
            .load_document(&item(5))
            .await
            .unwrap()
            .unwrap();
        assert!(stored.changes.is_empty());
        let doc = tournee_sync_core::automerge::Automerge::load(&stored.snapshot).unwrap();
        assert_eq!(operations::read_item(&doc).unwrap().attempts.len(), 70);
        let mut fresh = Phone::postman(&server, "pm-1", "dev-1").await;
        fresh.sync(&server).await;
        assert_eq!(
            operations::read_item(fresh.store.document(&item(5)).unwrap())
                .unwrap()
                .attempts
                .len(),
            70
        );
        server.stop().await;
    }
}

/// Issue #19: whoever reads a document sees the phone's actor id in its history. A customer (or
/// another postman) writing a valid change under it, with the phone's next sequence number, is
/// refused, so the phone is never left with a duplicate sequence number: it goes on pushing and
/// loading. Nobody writes under the server's actors either.
#[tokio::test]
async fn nobody_writes_under_an_actor_bound_to_another_owner_and_the_phone_keeps_syncing() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let mut postman = Phone::postman(&server, "pm-1", "dev-1").await;
        postman.sync(&server).await;
        let attempt = fixtures::absent_attempt("dev-1", "pm-1", 0);
        postman
            .store
            .commit(&item(0), InteractionKind::Attempt, |doc| {
                Ok((
                    "att-0".into(),
                    operations::record_attempt(doc, "att-0", &attempt)?,
                ))
            })
            .unwrap();
        assert!(postman.sync(&server).await.refused.is_empty());
        let doc = postman.store.document(&item(0)).unwrap().clone();
        let phone_actor = doc.get_actor().clone();
        let changes_before = server.state.db.count(Table::Changes).await.unwrap();

        // The customer's valid choice, under the phone's actor.
        let mut forged = doc.fork().with_actor(phone_actor.clone());
        operations::choose_for_item(
            &mut forged,
            "cho-forged",
            &fixtures::redeliver_choice("cust-1", "2026-11-25"),
        )
        .unwrap();
        let change = forged.get_changes(&doc.get_heads()).pop().unwrap();
        let customer = server.token(TokenRole::Customer, "cust-1", None);
        let refused = push(&server, &customer, item(0), change.raw_bytes().to_vec()).await;
        assert!(
            matches!(&refused, ResponseBody::Refused { code: RefusalCode::Forbidden, message } if message.contains(&phone_actor.to_hex_string())),
            "{backend:?}: {refused:?}"
        );
        // A device under the server's actor (the skeleton's, in every document's history).
        let mut forged = doc.fork().with_actor(fixtures::server_actor());
        operations::record_attempt(&mut forged, "att-server", &attempt).unwrap();
        let change = forged.get_changes(&doc.get_heads()).pop().unwrap();
        let refused = push(
            &server,
            &postman.token,
            item(0),
            change.raw_bytes().to_vec(),
        )
        .await;
        assert!(
            matches!(
                &refused,
                ResponseBody::Refused {
                    code: RefusalCode::Forbidden,
                    ..
                }
            ),
            "{backend:?}: {refused:?}"
        );
        assert_eq!(
            server.state.db.count(Table::Changes).await.unwrap(),
            changes_before,
            "{backend:?}: nothing stored"
        );

        // The phone records its next attempt under its own actor, pushes it and loads news.
        let next = fixtures::absent_attempt("dev-1", "pm-1", 1);
        postman
            .store
            .commit(&item(1), InteractionKind::Attempt, |doc| {
                Ok((
                    "att-1".into(),
                    operations::record_attempt(doc, "att-1", &next)?,
                ))
            })
            .unwrap();
        let report = postman.sync(&server).await;
        assert!(
            report.refused.is_empty(),
            "{backend:?}: {:?}",
            report.refused
        );
        assert!(
            postman.store.pending_interactions().is_empty(),
            "{backend:?}"
        );
        assert_eq!(server.state.db.count(Table::Attempts).await.unwrap(), 2);
        // The customer's own app, with an actor of its own, still writes.
        let mut app = Phone::customer(&server, "cust-1", customer_view());
        app.sync(&server).await;
        app.store
            .choose_for_item(
                &fixtures::s10(1),
                &fixtures::redeliver_choice("cust-1", "2026-11-25"),
            )
            .unwrap();
        let report = app.sync(&server).await;
        assert!(
            report.refused.is_empty(),
            "{backend:?}: {:?}",
            report.refused
        );
        server.stop().await;
    }
}

/// Issue #19: record keys are unique across documents, as the central tables key them. An
/// attempt on one item under the key of an attempt on another, or a correction on one point
/// under the key of another point's, is refused and stores nothing; two documents of one batch
/// creating one key likewise. The refusal is a `collision`: a phone that hears it writes its records again under fresh keys.
#[tokio::test]
async fn a_record_key_another_document_holds_is_refused_and_nothing_is_stored() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let mut postman = Phone::postman(&server, "pm-1", "dev-1").await;
        postman.sync(&server).await;
        let attempt = fixtures::absent_attempt("dev-1", "pm-1", 2);
        let correction = fixtures::number_correction("dev-1", "pm-1");
        postman
            .store
            .commit(&item(2), InteractionKind::Attempt, |doc| {
                Ok((
                    "k-att".into(),
                    operations::record_attempt(doc, "k-att", &attempt)?,
                ))
            })
            .unwrap();
        postman
            .store
            .commit(&point(0), InteractionKind::Correction, |doc| {
                Ok((
                    "k-cor".into(),
                    operations::propose_correction(doc, "k-cor", &correction)?,
                ))
            })
            .unwrap();
        assert!(postman.sync(&server).await.refused.is_empty());
        let db = &server.state.db;
        let changes_before = db.count(Table::Changes).await.unwrap();
        let queue_before = db.open_queue().await.unwrap();

        // The same keys on another item and another point.
        let forge =
            |doc: &tournee_sync_core::automerge::Automerge,
             write: &dyn Fn(&mut tournee_sync_core::automerge::Automerge)| {
                let mut forged = doc.fork();
                write(&mut forged);
                forged
                    .get_changes(&doc.get_heads())
                    .pop()
                    .unwrap()
                    .raw_bytes()
                    .to_vec()
            };
        let on_item_3 = forge(postman.store.document(&item(3)).unwrap(), &|doc| {
            operations::record_attempt(doc, "k-att", &fixtures::absent_attempt("dev-1", "pm-1", 3))
                .unwrap();
        });
        let on_point_1 = forge(postman.store.document(&point(1)).unwrap(), &|doc| {
            operations::propose_correction(doc, "k-cor", &correction).unwrap();
        });
        for (doc, change) in [(item(3), on_item_3), (point(1), on_point_1)] {
            let refused = push(&server, &postman.token, doc, change).await;
            assert!(
                matches!(&refused, ResponseBody::Refused { code: RefusalCode::Collision, message } if message.contains("another document")),
                "{backend:?}: {refused:?}"
            );
        }

        // One new key in two documents of one batch: the first stands, the second is refused.
        let mut fresh = |n: u32| {
            forge(postman.store.document(&item(n)).unwrap(), &|doc| {
                operations::record_attempt(
                    doc,
                    "k-new",
                    &fixtures::absent_attempt("dev-1", "pm-1", n),
                )
                .unwrap();
            })
        };
        let request = SyncRequest {
            since: None,
            history: None,
            docs: [(item(4), fresh(4)), (item(5), fresh(5))]
                .into_iter()
                .map(|(doc, change)| DocRequest {
                    doc,
                    body: RequestBody::Push {
                        signatures: Vec::new(),
                        changes: vec![change.into()],
                        extra_heads: Default::default(),
                    },
                })
                .collect(),
        };
        let response = post_frame(&server, &postman.token, wire::encode_request(&request)).await;
        assert!(response.status().is_success(), "{backend:?}");
        let answer =
            wire::decode_response(&response.bytes().await.unwrap(), &Limits::default()).unwrap();
        assert!(
            matches!(answer.docs[0].body, ResponseBody::Update { .. }),
            "{backend:?}: {:?}",
            answer.docs
        );
        assert!(
            matches!(
                &answer.docs[1].body,
                ResponseBody::Refused {
                    code: RefusalCode::Collision,
                    ..
                }
            ),
            "{backend:?}: {:?}",
            answer.docs
        );

        assert_eq!(
            db.count(Table::Changes).await.unwrap(),
            changes_before + 1,
            "{backend:?}"
        );
        assert_eq!(db.count(Table::Attempts).await.unwrap(), 2, "{backend:?}");
        assert!(db
            .attempts_for_item(fixtures::s10(3).as_str())
            .await
            .unwrap()
            .is_empty());
        assert!(db
            .attempts_for_item(fixtures::s10(5).as_str())
            .await
            .unwrap()
            .is_empty());
        assert_eq!(db.open_queue().await.unwrap(), queue_before, "{backend:?}");
        server.stop().await;
    }
}

/// Issue #19: an empty change carrying a message, a record with a key beyond its schema, a
/// counter where the schema has milliseconds: each refused with its code, and nothing stored.
#[tokio::test]
async fn changes_beyond_the_schema_empty_or_with_a_message_are_refused_and_nothing_is_stored() {
    use tournee_sync_core::automerge::transaction::{CommitOptions, Transactable};
    use tournee_sync_core::automerge::{ObjType, ReadDoc, ScalarValue, Value, ROOT};

    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let mut postman = Phone::postman(&server, "pm-1", "dev-1").await;
        postman.sync(&server).await;
        let db = &server.state.db;
        let changes_before = db.count(Table::Changes).await.unwrap();
        let attempts_before = db.count(Table::Attempts).await.unwrap();
        let doc = postman.store.document(&item(3)).unwrap().clone();

        let mut empty = doc.fork();
        empty.empty_commit(CommitOptions::default().with_message("x".repeat(10_000)));
        let mut off_schema = Vec::new();
        for (key, value) in [
            ("<script>", ScalarValue::Str("alert(1)".into())),
            ("recorded_at_ms", ScalarValue::counter(1_764_000_000_000)),
        ] {
            let mut forged = doc.fork();
            operations::record_attempt(
                &mut forged,
                "att-odd",
                &fixtures::absent_attempt("dev-1", "pm-1", 3),
            )
            .unwrap();
            let attempts = match forged.get(ROOT, "attempts").unwrap() {
                Some((Value::Object(ObjType::Map), id)) => id,
                other => panic!("{other:?}"),
            };
            let record = match forged.get(&attempts, "att-odd").unwrap() {
                Some((Value::Object(ObjType::Map), id)) => id,
                other => panic!("{other:?}"),
            };
            forged
                .transact(|tx| tx.put(&record, key, value.clone()))
                .unwrap();
            off_schema.push(forged);
        }
        let forgeries = [(&empty, "message")]
            .into_iter()
            .chain(off_schema.iter().map(|f| (f, "schema")));
        for (forged, reason) in forgeries {
            let changes: Vec<_> = forged
                .get_changes(&doc.get_heads())
                .into_iter()
                .map(|c| c.raw_bytes().to_vec().into())
                .collect();
            let request = SyncRequest {
                since: None,
                history: None,
                docs: vec![DocRequest {
                    doc: item(3),
                    body: RequestBody::Push {
                        signatures: Vec::new(),
                        changes,
                        extra_heads: Default::default(),
                    },
                }],
            };
            let response =
                post_frame(&server, &postman.token, wire::encode_request(&request)).await;
            assert!(response.status().is_success(), "{backend:?}");
            let answer =
                wire::decode_response(&response.bytes().await.unwrap(), &Limits::default())
                    .unwrap();
            assert!(
                matches!(&answer.docs[0].body, ResponseBody::Refused { code: RefusalCode::Invalid, message } if message.contains(reason)),
                "{backend:?}: {:?}",
                answer.docs[0].body
            );
        }
        assert_eq!(
            db.count(Table::Changes).await.unwrap(),
            changes_before,
            "{backend:?}"
        );
        assert_eq!(
            db.count(Table::Attempts).await.unwrap(),
            attempts_before,
            "{backend:?}"
        );
        server.stop().await;
    }
}
