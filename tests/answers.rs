//! Answers that follow the facts, on every backend: disputes and their outcome where customers
//! and reviewers look, where an item waits after a notice, a choice and a hand-over, one
//! publication per corroborated correction, one departure (EDG) per item and round and none
//! after delivery, a correction's review beside the access data it would overwrite, and "today"
//! in the service's time zone at 23:30 and 00:30.

#![allow(clippy::unwrap_used, missing_docs)]

use reqwest::StatusCode;
use serde_json::{json, Value};
use tournee_e2e::{after_an_absence, backends, Phone, TestServer};
use tournee_server::auth::TokenRole;
use tournee_server::clock::{time_zone, Clock};
use tournee_sync_core::model::{Outcome, RoundManifest, Stop};
use tournee_sync_core::{fixtures, operations, DocId};

async fn get(server: &TestServer, path: &str, token: &str) -> Value {
    let response = reqwest::Client::new()
        .get(format!("{}{path}", server.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    response.json().await.unwrap()
}

async fn post(server: &TestServer, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", server.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_dispute_and_its_outcome_show_on_the_timeline_and_to_the_customer() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let (_phone, attempt) = after_an_absence(&server).await;
        let attempt = attempt.id;
        let customer = server.token(TokenRole::Customer, "cust-1", None);
        let staff = server.token(TokenRole::BackOffice, "bo-1", None);
        let item = fixtures::s10(1);
        let (status, queued) = post(
            &server,
            &format!("/v1/customer/items/{item}/attempts/{attempt}/dispute"),
            &customer,
            json!({ "comment": "I was at home" }),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{queued}");

        let mine = get(&server, &format!("/v1/customer/items/{item}"), &customer).await;
        assert_eq!(mine["disputes"][0]["status"], "open", "{mine}");
        assert_eq!(mine["disputes"][0]["comment"], "I was at home");
        let timeline = get(&server, &format!("/v1/backoffice/items/{item}"), &staff).await;
        assert_eq!(timeline["disputes"][0]["attempt_id"], attempt.as_str());
        assert_eq!(timeline["disputes"][0]["status"], "open");

        let (status, _) = post(
            &server,
            &format!("/v1/backoffice/queue/{}/decision", queued["queue_id"]),
            &staff,
            json!({ "decision": "approve", "comment": "the postman came too early; sorry" }),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let mine = get(&server, &format!("/v1/customer/items/{item}"), &customer).await;
        let dispute = &mine["disputes"][0];
        assert_eq!(dispute["status"], "approved", "{mine}");
        assert_eq!(dispute["answer"], "the postman came too early; sorry");
        assert!(dispute["decided_at_ms"].as_i64().is_some());
        let timeline = get(&server, &format!("/v1/backoffice/items/{item}"), &staff).await;
        assert_eq!(timeline["disputes"][0]["status"], "approved");
        server.stop().await;
    }
}

#[tokio::test]
async fn where_an_item_waits_follows_the_notice_the_choice_and_the_hand_over() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let (mut phone, _) = after_an_absence(&server).await;
        let customer = server.token(TokenRole::Customer, "cust-1", None);
        let item = fixtures::s10(1);
        let path = format!("/v1/customer/items/{item}");

        let view = get(&server, &path, &customer).await;
        assert_eq!(
            view["waits_at"],
            json!({ "kind": "post_office", "place_id": "bp-paris-11", "until": "2026-12-08" }),
            "the notice: {view}"
        );

        let (status, made) = post(
            &server,
            &format!("{path}/choice"),
            &customer,
            json!({ "kind": "pickup_point", "pickup_point": "relais-roquette" }),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        assert_eq!(made["item"]["choice"]["applicable"], true);
        let view = get(&server, &path, &customer).await;
        assert_eq!(
            view["waits_at"],
            json!({ "kind": "pickup_point", "place_id": "relais-roquette", "until": "2026-12-08" }),
            "the customer's choice: {view}"
        );

        // The postman takes it there: EDH, and it waits at the pickup point.
        phone.sync(&server).await;
        let mut handed = fixtures::delivered_attempt("dev-1", "pm-1", 1);
        handed.outcome = Outcome::DeliveredToPickupPoint {
            pickup_point: "relais-roquette".into(),
        };
        handed.recorded_at_ms = jiff::Timestamp::now().as_millisecond();
        phone.store.record_attempt(&item, &handed).unwrap();
        phone.sync(&server).await;
        let view = get(&server, &path, &customer).await;
        assert_eq!(view["status_code"], "EDH", "{view}");
        assert_eq!(view["waits_at"]["kind"], "pickup_point", "{view}");
        assert_eq!(view["waits_at"]["place_id"], "relais-roquette");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_corroborated_correction_is_published_once() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let db = &server.state.db;
        db.register_device("dev-3", "pm-3").await.unwrap();
        let today = server.state.clock.today().to_string();
        db.insert_round(&RoundManifest {
            round_id: format!("relief-{today}"),
            date: today,
            postman: "pm-3".into(),
            device: "dev-3".into(),
            stops: vec![Stop {
                order: 1,
                delivery_point: fixtures::delivery_point_id(1),
                items: vec![fixtures::s10(2).to_string()],
            }],
        })
        .await
        .unwrap();
        let point = fixtures::delivery_point_id(1);
        let doc = DocId::delivery_point(&point).unwrap();
        let mut first = Phone::postman(&server, "pm-1", "dev-1").await;
        let mut relief = Phone::postman(&server, "pm-3", "dev-3").await;
        first.sync(&server).await;
        relief.sync(&server).await;
        let before = operations::read_delivery_point(first.store.document(&doc).unwrap())
            .unwrap()
            .reference
            .version;
        first
            .store
            .propose_correction(&point, &fixtures::number_correction("dev-1", "pm-1"))
            .unwrap();
        first.sync(&server).await;
        relief
            .store
            .propose_correction(&point, &fixtures::number_correction("dev-3", "pm-3"))
            .unwrap();
        relief.sync(&server).await;
        first.sync(&server).await;
        let after = operations::read_delivery_point(first.store.document(&doc).unwrap()).unwrap();
        assert_eq!(after.reference.house_number, "35");
        assert_eq!(after.reference.version, before + 1, "published once");
        assert_eq!(after.reviews.len(), 2, "each correction has its review");
        let approvals: Vec<_> = db
            .audit_log(&format!("dp:{point}"))
            .await
            .unwrap()
            .into_iter()
            .filter(|a| a.action == "correction.auto_approved")
            .collect();
        assert_eq!(approvals.len(), 1, "{approvals:?}");
        let detail: Value = serde_json::from_str(&approvals[0].detail).unwrap();
        assert_eq!(detail["corrections"].as_array().unwrap().len(), 2);
        server.stop().await;
    }
}

async fn events(server: &TestServer, item: &str) -> Vec<String> {
    let staff = server.token(TokenRole::BackOffice, "bo-1", None);
    let timeline = get(server, &format!("/v1/backoffice/items/{item}"), &staff).await;
    timeline["item"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn departures_are_stamped_once_per_item_and_round_and_never_after_delivery() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let mut phone = Phone::postman(&server, "pm-1", "dev-1").await;
        phone.sync(&server).await;
        let (open, delivered) = (fixtures::s10(1).to_string(), fixtures::s10(0).to_string());
        assert_eq!(events(&server, &open).await, ["EDG"]);
        let mut delivery = fixtures::delivered_attempt("dev-1", "pm-1", 0);
        delivery.recorded_at_ms = jiff::Timestamp::now().as_millisecond() + 1_000;
        phone
            .store
            .record_attempt(&fixtures::s10(0), &delivery)
            .unwrap();
        let mut absence = fixtures::absent_attempt("dev-1", "pm-1", 1);
        absence.recorded_at_ms = jiff::Timestamp::now().as_millisecond() + 1_000;
        phone
            .store
            .record_attempt(&fixtures::s10(1), &absence)
            .unwrap();
        phone.sync(&server).await;
        assert_eq!(events(&server, &delivered).await, ["EDG", "EMI"]);
        assert_eq!(events(&server, &open).await, ["EDG", "EMH"]);

        // The phone is reset and downloads its round again: nothing is stamped twice, and the
        // delivered item does not go back out.
        let mut again = Phone::postman(&server, "pm-1", "dev-1").await;
        again.sync(&server).await;
        assert_eq!(events(&server, &open).await, ["EDG", "EMH"]);
        assert_eq!(events(&server, &delivered).await, ["EDG", "EMI"]);
        let customer = server.token(TokenRole::Customer, "cust-1", None);
        let view = get(
            &server,
            &format!("/v1/customer/items/{delivered}"),
            &customer,
        )
        .await;
        assert_eq!(view["status_code"], "EMI");
        let view = get(&server, &format!("/v1/customer/items/{open}"), &customer).await;
        assert_eq!(
            view["status_code"], "EMH",
            "a download does not undo an attempt"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn a_correction_review_shows_the_current_access_data_and_the_decision_keeps_before_and_after()
{
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let mut phone = Phone::postman(&server, "pm-1", "dev-1").await;
        phone.sync(&server).await;
        let point = fixtures::delivery_point_id(1);
        let doc = DocId::delivery_point(&point).unwrap();
        let current = operations::read_delivery_point(phone.store.document(&doc).unwrap())
            .unwrap()
            .access;
        let old_code = current.door_code.clone().unwrap();
        phone
            .store
            .propose_correction(&point, &fixtures::number_correction("dev-1", "pm-1"))
            .unwrap();
        phone.sync(&server).await;
        let staff = server.token(TokenRole::BackOffice, "bo-1", None);
        let queue = get(&server, "/v1/backoffice/queue?kind=correction", &staff).await;
        let entry = &queue[0];
        assert_eq!(
            entry["correction"]["current_access"]["door_code"],
            old_code.as_str(),
            "{entry}"
        );
        assert_eq!(entry["correction"]["proposed"]["door_code"], "4512A");
        let (status, _) = post(
            &server,
            &format!("/v1/backoffice/queue/{}/decision", entry["id"]),
            &staff,
            json!({ "decision": "approve", "comment": "checked with the building manager" }),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let audit = server
            .state
            .db
            .audit_log(&format!("dp:{point}"))
            .await
            .unwrap();
        let decision = audit
            .iter()
            .find(|a| a.action == "correction.approved")
            .unwrap();
        let detail: Value = serde_json::from_str(&decision.detail).unwrap();
        assert_eq!(detail["before"]["access"]["door_code"], old_code.as_str());
        assert_eq!(detail["after"]["access"]["door_code"], "4512A");
        assert_eq!(detail["after"]["reference"]["house_number"], "35");
        assert_ne!(detail["before"]["reference"]["house_number"], "35");
        server.stop().await;
    }
}

#[tokio::test]
async fn today_follows_the_services_time_zone_at_23_30_and_00_30() {
    for backend in backends() {
        let paris = time_zone("Europe/Paris").unwrap();
        // 23:30 in Paris on 1 December is 22:30 UTC.
        let clock = Clock::manual("2026-12-01T22:30:00Z".parse().unwrap(), paris);
        let server = TestServer::start_configured(&backend, |_| {}, Some(clock.clone())).await;
        // The demo's rounds are for the local day.
        let postman = server.token(TokenRole::Postman, "pm-1", Some("dev-1"));
        let rounds = tournee_e2e::rounds(&server.base, &postman).await;
        assert!(rounds.iter().any(|r| r.date == "2026-12-01"), "{rounds:?}");
        // A round for the 3rd: beyond tomorrow at 23:30 on the 1st, tomorrow at 00:30 on the
        // 2nd (in UTC it would still be the 1st).
        server
            .state
            .db
            .insert_round(&RoundManifest {
                round_id: "ahead".into(),
                date: "2026-12-03".into(),
                ..rounds[0].clone()
            })
            .await
            .unwrap();
        let ahead = |rounds: &[RoundManifest]| rounds.iter().any(|r| r.round_id == "ahead");
        assert!(!ahead(&tournee_e2e::rounds(&server.base, &postman).await));

        let customer = server.token(TokenRole::Customer, "cust-1", None);
        let choice = format!("/v1/customer/items/{}/choice", fixtures::s10(0));
        let on = |day: &str| json!({ "kind": "redeliver_on", "date": day });
        let (status, body) = post(&server, &choice, &customer, on("2026-12-01")).await;
        assert_eq!(status, StatusCode::CREATED, "today at 23:30: {body}");

        // 00:30 in Paris on the 2nd is 23:30 UTC on the 1st.
        clock.set("2026-12-01T23:30:00Z".parse().unwrap());
        assert!(ahead(&tournee_e2e::rounds(&server.base, &postman).await));
        let (status, body) = post(&server, &choice, &customer, on("2026-12-01")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["code"], "date_in_the_past");
        assert!(body["message"].as_str().unwrap().contains("2026-12-02"));
        let (status, body) = post(&server, &choice, &customer, on("2026-12-02")).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        server.stop().await;
    }
}
