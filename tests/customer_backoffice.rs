//! The customer and back-office APIs, every rule both ways, on every backend: what is accepted
//! is written (and reaches the postman's phone at its next sync), what is refused gets its exact
//! status and a message naming the problem, and leaves nothing behind. Last, `/openapi.json`
//! is checked against the routes the server really serves.

#![allow(clippy::unwrap_used, missing_docs)]

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tournee_e2e::{after_an_absence, backends, Phone, TestServer};
use tournee_server::auth::TokenRole;
use tournee_server::db::Table;
use tournee_sync_core::model::{Choice, ReviewDecision, RoundManifest, Stop};
use tournee_sync_core::{fixtures, operations, DocId};

/// HTTP against a test server: JSON in, status and JSON out (`null` when the body is not JSON).
struct Api<'a> {
    server: &'a TestServer,
    client: reqwest::Client,
}

impl<'a> Api<'a> {
    fn new(server: &'a TestServer) -> Self {
        Self {
            server,
            client: reqwest::Client::new(),
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.server.base));
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, token, None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, token, Some(body)).await
    }

    async fn put(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::PUT, path, token, Some(body)).await
    }

    /// A body that is not JSON at all.
    async fn post_raw(&self, path: &str, token: &str, body: &'static str) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.server.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn count(&self, table: Table) -> i64 {
        self.server.state.db.count(table).await.unwrap()
    }
}

/// Asserts a refusal: the status, and a `message` containing `needle`.
fn refused(answer: (StatusCode, Value), status: StatusCode, needle: &str) {
    let (got, body) = answer;
    assert_eq!(got, status, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(body["code"].is_string(), "every refusal has a code: {body}");
    assert!(
        message.contains(needle),
        "the message should name {needle:?}: {message:?}"
    );
}

fn day(offset: i64) -> String {
    tournee_e2e::local_day(offset)
}

fn item_path(n: u32) -> String {
    format!("/v1/customer/items/{}", fixtures::s10(n))
}

fn point_doc(p: u32) -> DocId {
    DocId::delivery_point(&fixtures::delivery_point_id(p)).unwrap()
}

fn tokens(server: &TestServer) -> (String, String) {
    (
        server.token(TokenRole::Customer, "cust-1", None),
        server.token(TokenRole::BackOffice, "bo-1", None),
    )
}

// Demo town: customer `cust-1` owns points 0, 3, 6, 9 (items 2p and 2p+1); item n needs a
// signature when n is a multiple of 3. pm-1 (dev-1) delivers points 0–5, pm-2 points 6–11.

#[tokio::test]
async fn a_customer_sees_their_own_parcels_and_nobody_else_does() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let mut phone = Phone::postman(&server, "pm-1", "dev-1").await;
        phone.sync(&server).await; // out for delivery: EDG
        let api = Api::new(&server);
        let (customer, staff) = tokens(&server);

        let (status, mine) = api.get("/v1/customer/items", &customer).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {mine}");
        let points: Vec<&str> = mine["delivery_points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap())
            .collect();
        assert_eq!(points, ["dp-00000", "dp-00003", "dp-00006", "dp-00009"]);
        let items = mine["items"].as_array().unwrap();
        assert_eq!(items.len(), 8);
        assert!(items
            .iter()
            .all(|i| points.contains(&i["delivery_point"].as_str().unwrap())));
        let first = items
            .iter()
            .find(|i| i["id"] == fixtures::s10(0).as_str())
            .unwrap();
        assert_eq!(first["status"], "out_for_delivery", "{first}");
        assert_eq!(first["events"][0]["code"], "EDG");
        assert_eq!(first["requirements"]["signature"], true);
        let later = items
            .iter()
            .find(|i| i["id"] == fixtures::s10(12).as_str())
            .unwrap();
        assert_eq!(
            later["status"], "arrived_at_office",
            "pm-2 has not synced: {later}"
        );

        let (status, one) = api.get(&item_path(1), &customer).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(one["id"], fixtures::s10(1).as_str());

        // Someone else's item looks like a missing one; a postman or the back office is refused.
        refused(
            api.get(&item_path(2), &customer).await,
            StatusCode::NOT_FOUND,
            "not found",
        );
        refused(
            api.get("/v1/customer/items/XX123", &customer).await,
            StatusCode::BAD_REQUEST,
            "XX123",
        );
        refused(
            api.get("/v1/customer/items", &phone.token).await,
            StatusCode::FORBIDDEN,
            "customer",
        );
        refused(
            api.get(&item_path(1), &staff).await,
            StatusCode::FORBIDDEN,
            "customer",
        );
        let (status, _) = api.get("/v1/customer/items", "").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        server.stop().await;
    }
}

#[tokio::test]
async fn each_choice_rule_accepts_and_refuses() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let mut phone = Phone::postman(&server, "pm-1", "dev-1").await;
        phone.sync(&server).await;
        let api = Api::new(&server);
        let (customer, _) = tokens(&server);
        let choose = |n: u32| format!("{}/choice", item_path(n));

        // A redelivery tomorrow is written into the item's document, and reaches the phone.
        let (status, made) = api
            .post(
                &choose(1),
                &customer,
                json!({ "kind": "redeliver_on", "date": day(1) }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{backend:?}: {made}");
        assert_eq!(made["item"]["choice"]["kind"], "redeliver_on");
        let choice_id = made["choice_id"].as_str().unwrap().to_string();
        let report = phone.sync(&server).await;
        let item = DocId::item(&fixtures::s10(1));
        assert!(report.changed_documents.contains(&item), "{report:?}");
        let doc = operations::read_item(phone.store.document(&item).unwrap()).unwrap();
        assert_eq!(
            doc.choices[&choice_id].choice,
            Choice::RedeliverOn { date: day(1) }
        );
        assert_eq!(doc.choices[&choice_id].made_by, "cust-1");

        let choices = api.count(Table::Choices).await;
        // Requirements: item 0 needs a signature, so no neighbour and no safe place; item 1 may.
        refused(
            api.post(
                &choose(0),
                &customer,
                json!({ "kind": "neighbour", "neighbour": "Mme Martin" }),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "neighbour",
        );
        refused(
            api.post(
                &choose(0),
                &customer,
                json!({ "kind": "safe_place", "place": "garden shed" }),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "safe",
        );
        assert_eq!(api.count(Table::Choices).await, choices, "nothing written");
        for body in [
            json!({ "kind": "neighbour", "neighbour": "Mme Martin" }),
            json!({ "kind": "safe_place", "place": "garden shed" }),
        ] {
            let (status, made) = api.post(&choose(1), &customer, body).await;
            assert_eq!(status, StatusCode::CREATED, "{made}");
        }
        let (status, made) = api
            .post(
                &choose(0),
                &customer,
                json!({ "kind": "pickup_point", "pickup_point": "pp-paris-11-03" }),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "a pickup point checks ID: {made}"
        );

        // Dates: not in the past, not beyond the holding period (15 days here); today and the
        // last day are fine.
        let choices = api.count(Table::Choices).await;
        refused(
            api.post(
                &choose(7),
                &customer,
                json!({ "kind": "redeliver_on", "date": day(-1) }),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "in the past",
        );
        refused(
            api.post(
                &choose(7),
                &customer,
                json!({ "kind": "redeliver_on", "date": day(16) }),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "beyond the holding period",
        );
        refused(
            api.post(
                &choose(7),
                &customer,
                json!({ "kind": "redeliver_on", "date": "24/11/2026" }),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "date",
        );
        assert_eq!(api.count(Table::Choices).await, choices, "nothing written");
        for offset in [0, 15] {
            let (status, made) = api
                .post(
                    &choose(7),
                    &customer,
                    json!({ "kind": "redeliver_on", "date": day(offset) }),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "day +{offset}: {made}");
        }

        // A notice that names its last day bounds the holding period instead.
        let mut absence = fixtures::absent_attempt("dev-1", "pm-1", 7);
        absence.recorded_at_ms = jiff::Timestamp::now().as_millisecond();
        if let Some(place) = absence.notice.as_mut().and_then(|n| n.waits_at.as_mut()) {
            place.until = Some(day(5));
        }
        phone
            .store
            .record_attempt(&fixtures::s10(7), &absence)
            .unwrap();
        phone.sync(&server).await;
        let choices = api.count(Table::Choices).await;
        refused(
            api.post(
                &choose(7),
                &customer,
                json!({ "kind": "redeliver_on", "date": day(6) }),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("ends on {}", day(5)),
        );
        assert_eq!(api.count(Table::Choices).await, choices, "nothing written");
        let (status, made) = api
            .post(
                &choose(7),
                &customer,
                json!({ "kind": "redeliver_on", "date": day(5) }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "the notice's last day: {made}");

        // S10 numbers are case-insensitive in paths, as `S10::parse` is.
        let lower = format!(
            "/v1/customer/items/{}",
            fixtures::s10(7).as_str().to_lowercase()
        );
        let (status, item) = api.get(&lower, &customer).await;
        assert_eq!(status, StatusCode::OK, "{item}");
        assert_eq!(item["id"], fixtures::s10(7).as_str());
        let (status, made) = api
            .post(
                &format!("{lower}/choice"),
                &customer,
                json!({ "kind": "hold" }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{made}");

        // Malformed requests.
        refused(
            api.post_raw(&choose(7), &customer, "{not json").await,
            StatusCode::BAD_REQUEST,
            "JSON",
        );
        refused(
            api.post(&choose(7), &customer, json!({ "kind": "drone" }))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "drone",
        );
        refused(
            api.post(&choose(7), &customer, json!({ "kind": "redeliver_on" }))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "date",
        );
        refused(
            api.post(&choose(2), &customer, json!({ "kind": "hold" }))
                .await,
            StatusCode::NOT_FOUND,
            "not found",
        );

        // Final delivery: a choice before it is taken, after it is a conflict.
        let (status, _) = api
            .post(&choose(6), &customer, json!({ "kind": "hold" }))
            .await;
        assert_eq!(status, StatusCode::CREATED);
        phone
            .store
            .record_attempt(
                &fixtures::s10(6),
                &fixtures::delivered_attempt("dev-1", "pm-1", 6),
            )
            .unwrap();
        phone.sync(&server).await;
        let choices = api.count(Table::Choices).await;
        refused(
            api.post(&choose(6), &customer, json!({ "kind": "hold" }))
                .await,
            StatusCode::CONFLICT,
            "delivered",
        );
        assert_eq!(api.count(Table::Choices).await, choices, "nothing written");
        let (_, item) = api.get(&item_path(6), &customer).await;
        assert_eq!(item["status"], "delivered", "{item}");
        assert_eq!(item["choice"]["kind"], "hold", "the earlier choice stands");
        server.stop().await;
    }
}

#[tokio::test]
async fn preferences_are_set_on_the_customers_own_points_only() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let mut phone = Phone::postman(&server, "pm-1", "dev-1").await;
        phone.sync(&server).await;
        let api = Api::new(&server);
        let (customer, _) = tokens(&server);
        let path = |p: u32| {
            format!(
                "/v1/customer/delivery-points/{}/preferences",
                fixtures::delivery_point_id(p)
            )
        };
        let good = json!({
            "safe_place": "garden shed",
            "preferred_neighbour": null,
            "preferred_pickup_point": "pp-paris-11-03",
            "never_to_neighbour": true
        });

        let (status, point) = api.put(&path(0), &customer, good.clone()).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {point}");
        assert_eq!(point["preferences"]["safe_place"], "garden shed");
        let report = phone.sync(&server).await;
        assert!(report.changed_documents.contains(&point_doc(0)));
        let doc =
            operations::read_delivery_point(phone.store.document(&point_doc(0)).unwrap()).unwrap();
        assert_eq!(doc.preferences.safe_place.as_deref(), Some("garden shed"));
        assert!(doc.preferences.never_to_neighbour);

        // Refused: someone else's point, contradictions, wrong shapes; nothing changes.
        let changes = api.count(Table::Changes).await;
        refused(
            api.put(&path(1), &customer, good.clone()).await,
            StatusCode::NOT_FOUND,
            "not found",
        );
        refused(
            api.put(
                &path(0),
                &customer,
                json!({
                    "safe_place": null,
                    "preferred_neighbour": "Mme Martin",
                    "preferred_pickup_point": null,
                    "never_to_neighbour": true
                }),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "neighbour",
        );
        refused(
            api.put(
                &path(0),
                &customer,
                json!({
                    "safe_place": "x".repeat(200),
                    "preferred_neighbour": null,
                    "preferred_pickup_point": null,
                    "never_to_neighbour": false
                }),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "safe",
        );
        refused(
            api.put(&path(0), &customer, json!({ "never_to_neighbour": "yes" }))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "never_to_neighbour",
        );
        assert_eq!(api.count(Table::Changes).await, changes, "nothing written");
        let (_, mine) = api.get("/v1/customer/items", &customer).await;
        assert_eq!(
            mine["delivery_points"][0]["preferences"]["safe_place"],
            "garden shed"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn a_dispute_joins_the_queue_with_the_attempts_evidence() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let (_phone, attempt) = after_an_absence(&server).await;
        let api = Api::new(&server);
        let (customer, staff) = tokens(&server);
        let path = format!("{}/attempts/{}/dispute", item_path(1), attempt.id);
        let queued = api.count(Table::ReviewQueue).await;

        refused(
            api.post(&path, &customer, json!({ "comment": "   " }))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "comment",
        );
        refused(
            api.post(
                &format!("{}/attempts/no-such-attempt/dispute", item_path(1)),
                &customer,
                json!({ "comment": "I was at home" }),
            )
            .await,
            StatusCode::NOT_FOUND,
            "no-such-attempt",
        );
        refused(
            api.post(
                &format!("{}/attempts/{}/dispute", item_path(0), attempt.id),
                &customer,
                json!({ "comment": "I was at home" }),
            )
            .await,
            StatusCode::NOT_FOUND,
            "not found",
        );
        let other = server.token(TokenRole::Customer, "cust-2", None);
        refused(
            api.post(&path, &other, json!({ "comment": "I was at home" }))
                .await,
            StatusCode::NOT_FOUND,
            "not found",
        );
        assert_eq!(
            api.count(Table::ReviewQueue).await,
            queued,
            "nothing queued"
        );

        let (status, answer) = api
            .post(&path, &customer, json!({ "comment": "I was at home" }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{backend:?}: {answer}");
        let (status, entry) = api
            .get(
                &format!("/v1/backoffice/queue/{}", answer["queue_id"]),
                &staff,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(entry["kind"], "dispute");
        assert_eq!(entry["status"], "open");
        assert_eq!(entry["item_id"], fixtures::s10(1).as_str());
        assert_eq!(entry["dispute"]["customer"], "cust-1");
        assert_eq!(entry["dispute"]["comment"], "I was at home");
        let evidence = &entry["attempt"];
        assert_eq!(evidence["id"], attempt.id.as_str());
        assert_eq!(evidence["outcome"], "addressee_absent");
        assert!(evidence["recorded_at_ms"].as_i64().unwrap() > 0);
        assert!(evidence["position"]["lat"].is_f64(), "{evidence}");
        assert!(
            evidence["distance_m"].as_f64().unwrap() < 150.0,
            "{evidence}"
        );
        assert_eq!(evidence["notice"]["number"], "AV00000001");
        assert!(entry["pin"]["lat"].is_f64());

        refused(
            api.post(&path, &customer, json!({ "comment": "I was at home!" }))
                .await,
            StatusCode::CONFLICT,
            "already disputed",
        );
        assert_eq!(api.count(Table::ReviewQueue).await, queued + 1);
        refused(
            api.post(
                &path,
                &customer,
                json!({ "comment": "x".repeat(tournee_sync_core::rules::MAX_FREE_TEXT_CHARS + 1) }),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "comment",
        );

        // The reviewer upholds the dispute: closed, audited with the comment.
        let decision = format!("/v1/backoffice/queue/{}/decision", answer["queue_id"]);
        let (status, decided) = api
            .post(
                &decision,
                &staff,
                json!({ "decision": "approve", "comment": "GPS shows the postman never stopped" }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{decided}");
        assert_eq!(decided["status"], "approved");
        assert_eq!(decided["decided_by"], "bo-1");
        let lines = server
            .state
            .db
            .audit_log(&format!("attempt:{}", attempt.id))
            .await
            .unwrap();
        let line = lines.last().unwrap();
        assert_eq!(line.action, "dispute.approved");
        let detail: Value = serde_json::from_str(&line.detail).unwrap();
        assert_eq!(detail["comment"], "GPS shows the postman never stopped");
        refused(
            api.post(
                &decision,
                &staff,
                json!({ "decision": "reject", "comment": "second thoughts" }),
            )
            .await,
            StatusCode::CONFLICT,
            "already",
        );
        server.stop().await;
    }
}

/// The open correction entries, oldest first.
async fn open_corrections(api: &Api<'_>, staff: &str) -> Vec<Value> {
    let (status, entries) = api
        .get("/v1/backoffice/queue?kind=correction&status=open", staff)
        .await;
    assert_eq!(status, StatusCode::OK, "{entries}");
    let mut entries = entries.as_array().unwrap().clone();
    entries.reverse();
    entries
}

#[tokio::test]
async fn reviewers_approve_and_reject_with_a_comment_and_every_decision_is_audited() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let mut phone = Phone::postman(&server, "pm-1", "dev-1").await;
        phone.sync(&server).await;
        let number = fixtures::number_correction("dev-1", "pm-1");
        let mut door_code = number.clone();
        door_code.proposed.house_number = None;
        door_code.proposed.door_code = Some("B1234".into());
        phone
            .store
            .propose_correction(&fixtures::delivery_point_id(1), &number)
            .unwrap();
        phone
            .store
            .propose_correction(&fixtures::delivery_point_id(2), &door_code)
            .unwrap();
        let mut far = fixtures::delivered_attempt("dev-1", "pm-1", 4);
        far.position.as_mut().unwrap().lat += 0.01;
        phone.store.record_attempt(&fixtures::s10(4), &far).unwrap();
        phone.sync(&server).await;
        let api = Api::new(&server);
        let (customer, staff) = tokens(&server);
        let before =
            operations::read_delivery_point(phone.store.document(&point_doc(2)).unwrap()).unwrap();

        let open = open_corrections(&api, &staff).await;
        assert_eq!(open.len(), 2, "{backend:?}: {open:?}");
        let (approve, reject) = (&open[0], &open[1]);
        assert_eq!(approve["delivery_point_id"], "dp-00001");
        assert_eq!(approve["correction"]["proposed"]["house_number"], "35");
        assert_eq!(approve["correction"]["proposed_by"], "pm-1");
        assert_eq!(approve["correction"]["same_proposals"], 1);
        assert_eq!(approve["correction"]["current"]["house_number"], "2");
        let decision = |e: &Value| format!("/v1/backoffice/queue/{}/decision", e["id"]);

        // Refused: no comment, no such decision, no such entry, not the back office.
        let audited = api.count(Table::AuditLog).await;
        let unknown = "/v1/backoffice/queue/987654/decision".to_string();
        for (path, token, body, status, needle) in [
            (
                decision(approve),
                &staff,
                json!({ "decision": "approve", "comment": " " }),
                StatusCode::UNPROCESSABLE_ENTITY,
                "comment",
            ),
            (
                decision(approve),
                &staff,
                json!({ "decision": "maybe", "comment": "hmm" }),
                StatusCode::UNPROCESSABLE_ENTITY,
                "maybe",
            ),
            (
                "/v1/backoffice/queue/first/decision".to_string(),
                &staff,
                json!({ "decision": "approve", "comment": "ok" }),
                StatusCode::BAD_REQUEST,
                "first",
            ),
            (
                unknown,
                &staff,
                json!({ "decision": "approve", "comment": "ok" }),
                StatusCode::NOT_FOUND,
                "987654",
            ),
            (
                decision(approve),
                &customer,
                json!({ "decision": "approve", "comment": "ok" }),
                StatusCode::FORBIDDEN,
                "back_office",
            ),
        ] {
            refused(api.post(&path, token, body).await, status, needle);
        }
        assert_eq!(api.count(Table::AuditLog).await, audited, "nothing audited");
        assert_eq!(open_corrections(&api, &staff).await.len(), 2);

        // Approved: published into the document, which the phone receives.
        let (status, decided) = api
            .post(
                &decision(approve),
                &staff,
                json!({ "decision": "approve", "comment": "checked on the cadastre" }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{decided}");
        assert_eq!(decided["status"], "approved");
        assert_eq!(decided["decided_by"], "bo-1");
        assert_eq!(decided["comment"], "checked on the cadastre");
        assert_eq!(decided["auto"], false);
        assert_eq!(api.count(Table::AuditLog).await, audited + 1);
        // The audit line says which correction, what was decided, by whom and why.
        let lines = server
            .state
            .db
            .audit_log(&point_doc(1).to_string())
            .await
            .unwrap();
        let line = lines.last().unwrap();
        assert_eq!(line.action, "correction.approved");
        assert_eq!(line.actor, "back_office:bo-1");
        let detail: Value = serde_json::from_str(&line.detail).unwrap();
        assert_eq!(detail["correction"], approve["subject_id"], "{detail}");
        assert_eq!(detail["decision"], "approved");
        assert_eq!(detail["comment"], "checked on the cadastre");
        assert_eq!(detail["auto"], false);

        // Rejected: recorded, the reference untouched.
        let (status, decided) = api
            .post(
                &decision(reject),
                &staff,
                json!({ "decision": "reject", "comment": "no code at this door" }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{decided}");
        assert_eq!(decided["status"], "rejected");
        assert_eq!(api.count(Table::AuditLog).await, audited + 2);

        let report = phone.sync(&server).await;
        assert!(report.changed_documents.contains(&point_doc(1)));
        assert!(report.changed_documents.contains(&point_doc(2)));
        let one =
            operations::read_delivery_point(phone.store.document(&point_doc(1)).unwrap()).unwrap();
        assert_eq!(one.reference.house_number, "35");
        assert_eq!(one.access.door_code.as_deref(), Some("4512A"));
        let review = one.reviews.values().next().unwrap();
        assert_eq!(review.decision, ReviewDecision::Approved);
        assert_eq!(review.reason, "checked on the cadastre");
        let two =
            operations::read_delivery_point(phone.store.document(&point_doc(2)).unwrap()).unwrap();
        assert_eq!(
            two.access, before.access,
            "a rejected correction changes nothing"
        );
        assert_eq!(two.reference, before.reference);
        let review = two.reviews.values().next().unwrap();
        assert_eq!(review.decision, ReviewDecision::Rejected);
        assert_eq!(review.by, "bo-1");

        // Decided once: a second decision is a conflict, audited nowhere.
        refused(
            api.post(
                &decision(approve),
                &staff,
                json!({ "decision": "reject", "comment": "changed my mind" }),
            )
            .await,
            StatusCode::CONFLICT,
            "already",
        );
        assert_eq!(api.count(Table::AuditLog).await, audited + 2);

        // Filters: open no longer lists them, closed does; a flagged attempt is its own kind.
        assert!(open_corrections(&api, &staff).await.is_empty());
        let (_, closed) = api
            .get("/v1/backoffice/queue?kind=correction&status=closed", &staff)
            .await;
        assert_eq!(closed.as_array().unwrap().len(), 2);
        let (_, attempts) = api.get("/v1/backoffice/queue?kind=attempt", &staff).await;
        let attempts = attempts.as_array().unwrap();
        assert_eq!(attempts.len(), 1);
        assert!(attempts[0]["attempt"]["distance_m"].as_f64().unwrap() > 150.0);
        let (status, flagged) = api
            .post(
                &decision(&attempts[0]),
                &staff,
                json!({ "decision": "reject", "comment": "delivered at the wrong address" }),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(flagged["status"], "rejected");
        assert_eq!(api.count(Table::AuditLog).await, audited + 3);
        refused(
            api.get("/v1/backoffice/queue?kind=parcel", &staff).await,
            StatusCode::BAD_REQUEST,
            "parcel",
        );
        refused(
            api.get("/v1/backoffice/queue?status=pending", &staff).await,
            StatusCode::BAD_REQUEST,
            "pending",
        );
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reviewers_deciding_one_correction_at_once_make_one_decision() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let mut phone = Phone::postman(&server, "pm-1", "dev-1").await;
        phone.sync(&server).await;
        let points = 0..5;
        for p in points.clone() {
            phone
                .store
                .propose_correction(
                    &fixtures::delivery_point_id(p),
                    &fixtures::number_correction("dev-1", "pm-1"),
                )
                .unwrap();
        }
        phone.sync(&server).await;
        let api = Api::new(&server);
        let (_, staff) = tokens(&server);
        let other = server.token(TokenRole::BackOffice, "bo-2", None);
        let open = open_corrections(&api, &staff).await;
        assert_eq!(open.len(), 5, "{backend:?}: {open:?}");

        for entry in &open {
            let path = format!("/v1/backoffice/queue/{}/decision", entry["id"]);
            let (approve, reject) = tokio::join!(
                api.post(
                    &path,
                    &staff,
                    json!({ "decision": "approve", "comment": "seen on site" })
                ),
                api.post(
                    &path,
                    &other,
                    json!({ "decision": "reject", "comment": "no such number" })
                ),
            );
            let statuses = [approve.0, reject.0];
            assert!(
                statuses.contains(&StatusCode::OK) && statuses.contains(&StatusCode::CONFLICT),
                "{backend:?}: one decision stands, the other is refused: {approve:?} {reject:?}"
            );
            let (_, decided) = api
                .get(&format!("/v1/backoffice/queue/{}", entry["id"]), &staff)
                .await;
            let winner = if approve.0 == StatusCode::OK {
                "approved"
            } else {
                "rejected"
            };
            assert_eq!(decided["status"], winner, "{decided}");
            let correction = entry["subject_id"].as_str().unwrap();
            assert_eq!(
                server
                    .state
                    .db
                    .correction_status(correction)
                    .await
                    .unwrap()
                    .map(|s| s.as_str()),
                Some(winner)
            );
        }

        // The documents hold exactly the winning review of each correction.
        phone.sync(&server).await;
        for (p, entry) in points.zip(&open) {
            let doc = operations::read_delivery_point(phone.store.document(&point_doc(p)).unwrap())
                .unwrap();
            assert_eq!(doc.reviews.len(), 1, "{backend:?}: {:?}", doc.reviews);
            let review = &doc.reviews[entry["subject_id"].as_str().unwrap()];
            let (_, decided) = api
                .get(&format!("/v1/backoffice/queue/{}", entry["id"]), &staff)
                .await;
            let expected = if decided["status"] == "approved" {
                ReviewDecision::Approved
            } else {
                ReviewDecision::Rejected
            };
            assert_eq!(review.decision, expected);
            assert_eq!(
                doc.reference.house_number == "35",
                expected == ReviewDecision::Approved,
                "the reference follows the decision that stands"
            );
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn two_postmen_proposing_the_same_correction_approve_it_and_one_postman_does_not() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        // A relief postman whose round also visits point 1.
        let db = &server.state.db;
        db.register_device("dev-3", "pm-3").await.unwrap();
        db.insert_round(&RoundManifest {
            round_id: format!("relief-{}", day(0)),
            date: day(0),
            postman: "pm-3".into(),
            device: "dev-3".into(),
            stops: vec![Stop {
                order: 1,
                delivery_point: fixtures::delivery_point_id(1),
                items: vec![fixtures::s10(2).to_string(), fixtures::s10(3).to_string()],
            }],
        })
        .await
        .unwrap();
        let mut first = Phone::postman(&server, "pm-1", "dev-1").await;
        let mut relief = Phone::postman(&server, "pm-3", "dev-3").await;
        first.sync(&server).await;
        relief.sync(&server).await;
        let api = Api::new(&server);
        let (_, staff) = tokens(&server);
        let point = fixtures::delivery_point_id(1);

        // One postman proposing the same thing twice is one voice: both stay open.
        for _ in 0..2 {
            first
                .store
                .propose_correction(&point, &fixtures::number_correction("dev-1", "pm-1"))
                .unwrap();
        }
        first.sync(&server).await;
        let open = open_corrections(&api, &staff).await;
        assert_eq!(open.len(), 2, "{backend:?}: {open:?}");
        assert_eq!(open[0]["correction"]["same_proposals"], 2);
        assert_eq!(open[0]["correction"]["proposers"], json!(["pm-1"]));

        // A second postman proposing something else does not corroborate it.
        let mut different = fixtures::number_correction("dev-3", "pm-3");
        different.proposed.house_number = Some("37".into());
        relief.store.propose_correction(&point, &different).unwrap();
        relief.sync(&server).await;
        assert_eq!(open_corrections(&api, &staff).await.len(), 3);

        // The same proposal from a second postman: approved without a reviewer, as such.
        relief
            .store
            .propose_correction(&point, &fixtures::number_correction("dev-3", "pm-3"))
            .unwrap();
        relief.sync(&server).await;
        let open = open_corrections(&api, &staff).await;
        assert_eq!(open.len(), 1, "only the different one waits: {open:?}");
        assert_eq!(open[0]["correction"]["proposed"]["house_number"], "37");
        let (_, closed) = api
            .get("/v1/backoffice/queue?kind=correction&status=closed", &staff)
            .await;
        let closed = closed.as_array().unwrap();
        assert_eq!(closed.len(), 3);
        for entry in closed {
            assert_eq!(entry["status"], "approved", "{entry}");
            assert_eq!(entry["auto"], true);
            assert_eq!(entry["decided_by"], "corroboration");
            assert!(entry["comment"].as_str().unwrap().contains("pm-1, pm-3"));
            // Decided, the entry still shows who corroborated it.
            assert_eq!(entry["correction"]["same_proposals"], 3, "{entry}");
            assert_eq!(entry["correction"]["proposers"], json!(["pm-1", "pm-3"]));
        }
        first.sync(&server).await;
        let doc =
            operations::read_delivery_point(first.store.document(&point_doc(1)).unwrap()).unwrap();
        assert_eq!(doc.reference.house_number, "35");
        assert!(doc.reviews.values().all(|r| r.by == "corroboration"));
        server.stop().await;
    }
}

#[tokio::test]
async fn search_finds_items_by_each_criterion_and_timelines_tell_their_story() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let (_phone, attempt) = after_an_absence(&server).await;
        let api = Api::new(&server);
        let (customer, staff) = tokens(&server);
        let ids = |rows: &Value| -> Vec<String> {
            let mut ids: Vec<String> = rows
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["item_id"].as_str().unwrap().to_string())
                .collect();
            ids.dedup();
            ids
        };
        let search = |query: String| {
            let api = &api;
            let staff = &staff;
            async move {
                let (status, rows) = api
                    .get(&format!("/v1/backoffice/search?{query}"), staff)
                    .await;
                assert_eq!(status, StatusCode::OK, "{query}: {rows}");
                rows
            }
        };
        let s10 = fixtures::s10(1).to_string();

        let rows = search(format!("s10={s10}")).await;
        assert_eq!(ids(&rows), std::slice::from_ref(&s10), "{backend:?}");
        assert_eq!(rows[0]["postman"], "pm-1");
        assert_eq!(rows[0]["delivery_point_id"], "dp-00000");
        // The phone's clock put the absence before the download (EDG, server time): a doorstep
        // event still supersedes it.
        assert_eq!(rows[0]["status"], "EMH");
        assert_eq!(ids(&search("address=ROQUETTE".into()).await).len(), 24);
        let pm2 = search("postman=pm-2".into()).await;
        assert_eq!(ids(&pm2).len(), 12);
        assert!(pm2
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["postman"] == "pm-2"));
        let round = format!("demo-{}-pm-1", day(0));
        assert_eq!(ids(&search(format!("round={round}")).await).len(), 12);
        assert_eq!(ids(&search(format!("date={}", day(0))).await).len(), 24);
        assert!(ids(&search(format!("date={}", day(-3))).await).is_empty());
        assert!(
            ids(&search(format!("s10={s10}&postman=pm-2")).await).is_empty(),
            "every filter must match"
        );
        refused(
            api.get("/v1/backoffice/search", &staff).await,
            StatusCode::BAD_REQUEST,
            "at least one of s10",
        );
        refused(
            api.get("/v1/backoffice/search?colour=red", &staff).await,
            StatusCode::BAD_REQUEST,
            "colour",
        );
        refused(
            api.get("/v1/backoffice/search?date=yesterday", &staff)
                .await,
            StatusCode::BAD_REQUEST,
            "date",
        );
        refused(
            api.get("/v1/backoffice/search?s10=RR000000015FR", &staff)
                .await,
            StatusCode::BAD_REQUEST,
            "s10",
        );
        // Lower case is the same number; LIKE's wildcards are plain characters.
        let lower = search(format!("s10={}", s10.to_lowercase())).await;
        assert_eq!(ids(&lower), std::slice::from_ref(&s10));
        assert!(ids(&search("address=%25".into()).await).is_empty());
        assert!(ids(&search("address=R_E".into()).await).is_empty());
        refused(
            api.get(&format!("/v1/backoffice/search?s10={s10}"), &customer)
                .await,
            StatusCode::FORBIDDEN,
            "back_office",
        );

        let (status, timeline) = api
            .get(&format!("/v1/backoffice/items/{s10}"), &staff)
            .await;
        assert_eq!(status, StatusCode::OK);
        let codes: Vec<&str> = timeline["item"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["code"].as_str().unwrap())
            .collect();
        assert!(
            codes.contains(&"EDG") && codes.contains(&"EMH"),
            "{codes:?}"
        );
        assert_eq!(timeline["attempts"][0]["id"], attempt.id.as_str());
        assert!(timeline["address"]["lines"].is_array());
        let (status, lower) = api
            .get(
                &format!("/v1/backoffice/items/{}", s10.to_lowercase()),
                &staff,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            lower["attempts"], timeline["attempts"],
            "the same item, lower case"
        );
        refused(
            api.get("/v1/backoffice/items/RR999999999FR", &staff).await,
            StatusCode::BAD_REQUEST,
            "RR999999999FR",
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn the_demo_starts_with_field_work_to_review() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        tournee_server::demo::field_work(&server.state)
            .await
            .unwrap();
        let api = Api::new(&server);
        let (customer, staff) = tokens(&server);
        let (_, open) = api.get("/v1/backoffice/queue", &staff).await;
        let subjects: Vec<(&str, &str)> = open
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["kind"].as_str().unwrap(),
                    e["subject_id"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            subjects,
            [
                ("attempt", tournee_server::demo::DEMO_FAR_DELIVERY),
                ("correction", tournee_server::demo::DEMO_CORRECTION)
            ],
            "{backend:?}"
        );
        // The README's commands name these.
        assert_eq!(open[1]["id"], 1);
        assert_eq!(fixtures::s10(1).as_str(), "RR000000014FR");
        let (_, item) = api.get(&item_path(1), &customer).await;
        assert_eq!(item["status"], "attempted", "{item}");
        assert_eq!(
            item["latest_attempt"]["id"],
            tournee_server::demo::DEMO_ABSENCE
        );
        assert_eq!(item["waits_at"]["until"], day(14));
        server.stop().await;
    }
}

/// A concrete path for a documented template.
fn concrete(template: &str) -> String {
    template
        .replace("{s10}", fixtures::s10(0).as_str())
        .replace("{id}", "dp-00000")
        .replace("{entry}", "1")
        .replace("{attempt}", "att-1")
        .replace("{notice}", "AV00000001")
}

/// Every `e("METHOD", "/path"` of the route table and every `.route("/path"` in the server's
/// sources: what the server serves.
fn routes_in_source() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/src");
    let mut found = Vec::new();
    let mut stack = vec![dir];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            for piece in source.split("e(\"").skip(1) {
                let Some((method, rest)) = piece.split_once('"') else {
                    continue;
                };
                if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method) {
                    continue;
                }
                if let Some(path) = rest.strip_prefix(", \"").and_then(|r| r.split('"').next()) {
                    found.push((method.to_lowercase(), path.to_string()));
                }
            }
            for piece in source.split(".route(\"").skip(1) {
                let path = piece.split('"').next().unwrap();
                found.push(("*".into(), path.to_string()));
            }
        }
    }
    found
}

#[tokio::test]
async fn openapi_documents_every_route_the_server_serves() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let api = Api::new(&server);
        let (status, doc) = api.get("/openapi.json", "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();

        // Everything documented is served: without a token, a protected route says 401 and a
        // public one answers; never 404 or 405 (an unserved path or method).
        let mut documented = 0;
        for (template, operations) in paths {
            for (method, operation) in operations.as_object().unwrap() {
                documented += 1;
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let body = (method != Method::GET).then(|| json!({}));
                let (status, answer) = api
                    .send(method.clone(), &concrete(template), "", body)
                    .await;
                let protected = operation.get("security").is_some();
                if protected {
                    assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {template}");
                } else if operation.get("x-rate-limit").is_some() {
                    // A public lookup answers without a token, here refusing the empty request
                    // in its own words (the postcode is missing), never as an unserved route.
                    assert!(
                        status.is_client_error()
                            && status != StatusCode::UNAUTHORIZED
                            && status != StatusCode::METHOD_NOT_ALLOWED
                            && answer["code"] != "route_not_found",
                        "{method} {template}: {status} {answer}"
                    );
                } else {
                    assert!(status.is_success(), "{method} {template}: {status}");
                }
            }
        }
        assert!(documented >= 19, "{documented}");

        // Everything served is documented.
        let served = routes_in_source();
        assert!(served.len() >= documented, "{served:?}");
        for (method, path) in &served {
            let item = paths
                .get(path)
                .unwrap_or_else(|| panic!("{path} is served but not in /openapi.json"));
            assert!(
                method == "*" || item.get(method).is_some(),
                "{method} {path} is served but not in /openapi.json"
            );
        }

        // And an undocumented path is really not there.
        let (status, _) = api.get("/v1/customer/everything", "").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        server.stop().await;
    }
}
