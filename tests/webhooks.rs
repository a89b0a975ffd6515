//! Signed webhooks, on every backend, against a partner's receiver written in Python with the
//! Standard Webhooks reference library (`tests/webhook_receiver.py`): every event of the feed
//! reaches it with a signature it verifies; a wrong secret is never acknowledged; a receiver
//! failing half its requests still gets everything, each subject in feed order; a server killed
//! mid-delivery loses nothing; a receiver that always fails gets its subscription disabled; bad
//! input is refused with a code and the field.

#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tournee_e2e::{backends, Backend, Receiver, ServerProcess, TestServer};
use tournee_server::auth::TokenRole;
use tournee_server::db::FeedCursor;
use tournee_server::webhooks::{self, Start};
use tournee_server::{demo, AppState};
use tournee_sync_core::fixtures;

/// The `test_server` binary: the real server in a process of its own, to kill.
const TEST_SERVER: &str = env!("CARGO_BIN_EXE_test_server");

/// How long a test waits for deliveries before it fails.
const PATIENCE: Duration = Duration::from_secs(60);

async fn call(method: &str, url: &str, token: &str, body: Option<Value>) -> (StatusCode, Value) {
    let client = reqwest::Client::new();
    let mut request = client
        .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Subscribes `url`; the answer, with its secret.
async fn subscribe(server: &TestServer, token: &str, body: Value) -> Value {
    let (status, created) = call(
        "POST",
        &format!("{}/v1/webhooks", server.base),
        token,
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(
        created["secret"].as_str().unwrap().starts_with("whsec_"),
        "{created}"
    );
    created
}

/// Every event of the feed, in feed order.
async fn feed(state: &AppState) -> Vec<tournee_server::db::StoredEvent> {
    state.db.feed(FeedCursor::default(), 100_000).await.unwrap()
}

/// Waits until `done` holds, polling; panics with `what` after [`PATIENCE`].
async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !done().await {
        assert!(start.elapsed() < PATIENCE, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the receiver has acknowledged every event of the feed as it stands then; panics
/// naming those missing.
async fn wait_all_acknowledged(
    receiver: &Receiver,
    state: &AppState,
) -> Vec<tournee_server::db::StoredEvent> {
    let start = Instant::now();
    loop {
        let events = feed(state).await;
        let acknowledged = ids(&receiver.acknowledged());
        let missing: Vec<&str> = events
            .iter()
            .filter(|e| !acknowledged.contains(&e.id))
            .map(|e| e.id.as_str())
            .collect();
        if missing.is_empty() {
            return events;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "{} of {} events never acknowledged: {missing:?}; the receiver got {:#?}",
            missing.len(),
            events.len(),
            receiver.requests()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A customer's choice through the API: one more event.
async fn a_choice(server: &TestServer) {
    let customer = server.token(TokenRole::Customer, "cust-1", None);
    let (status, body) = call(
        "POST",
        &format!(
            "{}/v1/customer/items/{}/choice",
            server.base,
            fixtures::s10(1)
        ),
        &customer,
        Some(json!({ "kind": "hold" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

fn ids(values: &[Value]) -> HashSet<String> {
    values
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_reaches_the_receiver_signed_and_a_wrong_secret_is_never_acknowledged() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let token = server.token(TokenRole::Integration, "crm", None);
        let all = Receiver::start(&[]);
        let tampered = Receiver::start(&[]);
        let choices = Receiver::start(&[]);
        let created = subscribe(&server, &token, json!({ "url": all.url })).await;
        all.give_secret(created["secret"].as_str().unwrap());
        let other = subscribe(&server, &token, json!({ "url": tampered.url })).await;
        // The receiver holds a secret of the right form that is not the one it was given.
        let right = other["secret"].as_str().unwrap();
        let mut wrong = right.to_string();
        let at = wrong.len() - 2;
        let flipped = if &wrong[at..at + 1] == "A" { "B" } else { "A" };
        wrong.replace_range(at..at + 1, flipped);
        assert_ne!(wrong, right);
        tampered.give_secret(&wrong);
        let only = subscribe(
            &server,
            &token,
            json!({ "url": choices.url, "event_types": ["choice.made"] }),
        )
        .await;
        choices.give_secret(only["secret"].as_str().unwrap());

        demo::field_work(&server.state).await.unwrap();
        a_choice(&server).await;
        let events = wait_all_acknowledged(&all, &server.state).await;
        let expected: HashSet<String> = events.iter().map(|e| e.id.clone()).collect();
        assert!(expected.len() > 5, "the demo records events: {events:?}");
        // What the receiver got is the feed's event as /v1/feed serves it.
        let got = all.acknowledged();
        for event in &events {
            let line = got.iter().find(|l| l["id"] == event.id.as_str()).unwrap();
            assert_eq!(line["type"], event.type_name.as_str());
            assert_eq!(line["cursor"], event.cursor().encode());
            assert_eq!(
                line["subject"],
                format!("{}:{}", event.subject_kind, event.subject_id)
            );
        }

        // Only choices to the subscription that asked for them.
        let choice_ids: HashSet<String> = events
            .iter()
            .filter(|e| e.type_name == "choice.made")
            .map(|e| e.id.clone())
            .collect();
        assert!(!choice_ids.is_empty());
        wait_for("the choices acknowledged", async || {
            ids(&choices.acknowledged()) == choice_ids
        })
        .await;

        // The wrong secret: every request refused (400) and tried again; nothing delivered.
        wait_for("a refused delivery retried", async || {
            let refused: Vec<Value> = tampered
                .requests()
                .into_iter()
                .filter(|r| r["answer"] == 400)
                .collect();
            let distinct: HashSet<&str> = refused
                .iter()
                .filter_map(|r| r["webhook_id"].as_str())
                .collect();
            refused.len() > distinct.len()
        })
        .await;
        assert!(tampered.acknowledged().is_empty());
        let id = other["id"].as_str().unwrap();
        let (status, state) = call(
            "GET",
            &format!("{}/v1/webhooks/{id}", server.base),
            &token,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{state}");
        assert_eq!(state["deliveries"]["delivered"], 0, "{state}");
        assert!(
            state["deliveries"]["pending"].as_i64().unwrap() > 0,
            "{state}"
        );
        assert_eq!(state["enabled"], true, "{state}");

        let id = created["id"].as_str().unwrap();
        let (_, state) = call(
            "GET",
            &format!("{}/v1/webhooks/{id}", server.base),
            &token,
            None,
        )
        .await;
        assert_eq!(
            state["deliveries"],
            json!({ "pending": 0, "delivered": expected.len(), "failed": 0 }),
            "{state}"
        );
        // The secret is shown once: never in the list or a subscription's state.
        let (status, list) =
            call("GET", &format!("{}/v1/webhooks", server.base), &token, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list.as_array().unwrap().len(), 3, "{list}");
        assert!(!list.to_string().contains("whsec_"), "{list}");
        assert!(!state.to_string().contains("whsec_"), "{state}");
        server.stop().await;
    }
}

/// For each subject, the order in which its events were first acknowledged is feed order.
fn assert_subject_order(events: &[tournee_server::db::StoredEvent], acknowledged: &[Value]) {
    let mut first: Vec<&str> = Vec::new();
    for line in acknowledged {
        let id = line["id"].as_str().unwrap();
        if !first.contains(&id) {
            first.push(id);
        }
    }
    let position: HashMap<&str, usize> = first.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut by_subject: HashMap<String, Vec<&str>> = HashMap::new();
    for e in events {
        by_subject
            .entry(format!("{}:{}", e.subject_kind, e.subject_id))
            .or_default()
            .push(&e.id);
    }
    for (subject, in_feed) in by_subject {
        let in_arrival = {
            let mut ids = in_feed.clone();
            ids.sort_by_key(|id| position[id]);
            ids
        };
        assert_eq!(in_arrival, in_feed, "{subject}: arrived out of feed order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_half_its_requests_gets_every_event_each_subject_in_order() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let token = server.token(TokenRole::Integration, "crm", None);
        let receiver = Receiver::start(&["--fail-every-other"]);
        let created = subscribe(&server, &token, json!({ "url": receiver.url })).await;
        receiver.give_secret(created["secret"].as_str().unwrap());
        demo::field_work(&server.state).await.unwrap();
        a_choice(&server).await;
        let events = wait_all_acknowledged(&receiver, &server.state).await;
        let expected: HashSet<String> = events.iter().map(|e| e.id.clone()).collect();
        let refused = receiver
            .requests()
            .iter()
            .filter(|r| r["answer"] == 500)
            .count();
        assert!(refused >= expected.len() / 2, "{refused} refused");
        assert!(
            events.iter().any(|e| events
                .iter()
                .filter(|o| o.subject_id == e.subject_id)
                .count()
                > 1),
            "a subject has several events, so order is tested"
        );
        assert_subject_order(&events, &receiver.acknowledged());
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_during_deliveries_loses_none() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let (url, postgres) = match &backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("tournee.db").display()),
                None,
            ),
            Backend::Postgres(admin) => {
                let (url, name) = tournee_e2e::fresh_postgres(admin).await;
                (url, Some((admin.clone(), name)))
            }
        };
        // The facts and the subscription, written with no server running.
        let receiver = Receiver::start(&["--delay-ms", "150"]);
        let state = AppState::new(&tournee_e2e::settings(&url)).await.unwrap();
        demo::seed(&state.db, &state.clock).await.unwrap();
        demo::field_work(&state).await.unwrap();
        let now = jiff::Timestamp::now().as_millisecond();
        let created = webhooks::subscribe(&state.db, &receiver.url, vec![], Start::Beginning, now)
            .await
            .unwrap();
        receiver.give_secret(&created.secret);
        let events = feed(&state).await;
        let expected: HashSet<String> = events.iter().map(|e| e.id.clone()).collect();

        let mut first = ServerProcess::spawn(TEST_SERVER, &url, false).await;
        wait_for("a first delivery", async || {
            !receiver.acknowledged().is_empty()
        })
        .await;
        first.kill();
        let id = &created.subscription.id;
        let counts = state.db.webhook_delivery_counts(id).await.unwrap();
        assert!(
            counts.pending > 0,
            "the kill came while deliveries were pending: {counts:?}"
        );

        let second = ServerProcess::spawn(TEST_SERVER, &url, false).await;
        let events = wait_all_acknowledged(&receiver, &state).await;
        assert!(events.len() >= expected.len());
        wait_for("every delivery recorded", async || {
            let c = state.db.webhook_delivery_counts(id).await.unwrap();
            c.pending == 0 && c.delivered == events.len() as i64
        })
        .await;
        assert_subject_order(&events, &receiver.acknowledged());
        drop(second);
        if let tournee_server::db::Database::Postgres(pool) = &state.db {
            pool.close().await;
        }
        if let Some((admin, name)) = postgres {
            tournee_e2e::drop_postgres(&admin, &name).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_always_fails_gets_its_subscription_disabled_until_enabled_again() {
    for backend in backends() {
        // Retried for one second at most.
        let server = TestServer::start_configured(
            &backend,
            |s| s.webhooks.retry_hours = 1.0 / 3_600.0,
            None,
        )
        .await;
        let token = server.token(TokenRole::Integration, "crm", None);
        let receiver = Receiver::start(&["--always-fail"]);
        let created = subscribe(&server, &token, json!({ "url": receiver.url })).await;
        receiver.give_secret(created["secret"].as_str().unwrap());
        a_choice(&server).await;
        let url = format!(
            "{}/v1/webhooks/{}",
            server.base,
            created["id"].as_str().unwrap()
        );
        let mut state = Value::Null;
        wait_for("the subscription disabled", async || {
            state = call("GET", &url, &token, None).await.1;
            state["enabled"] == false
        })
        .await;
        let reason = state["disabled_reason"].as_str().unwrap();
        assert!(
            reason.contains("failed since") && reason.contains("500"),
            "{state}"
        );
        assert_eq!(state["deliveries"]["failed"], 1, "{state}");
        assert_eq!(state["deliveries"]["delivered"], 0, "{state}");
        let attempts = receiver.requests().len();
        assert!(attempts >= 2, "retried before giving up: {attempts}");

        // Disabled: nothing more is sent.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let quiet = receiver.requests().len();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            receiver.requests().len(),
            quiet,
            "a disabled subscription is quiet"
        );

        // Enabled again: the failed delivery is tried again.
        let (status, enabled) = call("POST", &format!("{url}/enable"), &token, None).await;
        assert_eq!(status, StatusCode::OK, "{enabled}");
        assert_eq!(enabled["enabled"], true, "{enabled}");
        assert_eq!(enabled["disabled_reason"], Value::Null, "{enabled}");
        assert_eq!(enabled["deliveries"]["failed"], 0, "{enabled}");
        wait_for("tried again", async || receiver.requests().len() > quiet).await;
        server.stop().await;
    }
}

#[tokio::test]
async fn bad_input_is_refused_with_a_code_and_the_field() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let token = server.token(TokenRole::Integration, "crm", None);
        let hooks = format!("{}/v1/webhooks", server.base);
        for (body, status, code, field) in [
            (
                json!({ "url": "ftp://crm.example.fr/in" }),
                422,
                "invalid_url",
                "url",
            ),
            (
                json!({ "url": "crm.example.fr/in" }),
                422,
                "invalid_url",
                "url",
            ),
            (
                json!({ "url": "http://crm.example.fr/in", "event_types": ["item.delivered", "item.lost"] }),
                422,
                "unknown_event_type",
                "event_types[1]",
            ),
            (
                json!({ "url": "http://crm.example.fr/in", "from": "yesterday" }),
                422,
                "invalid_field",
                "from",
            ),
            (
                json!({ "url": "http://crm.example.fr/in", "secret": "mine" }),
                422,
                "invalid_field",
                "secret",
            ),
        ] {
            let (got, answer) = call("POST", &hooks, &token, Some(body.clone())).await;
            assert_eq!(got.as_u16(), status, "{body}: {answer}");
            assert_eq!(answer["code"], code, "{body}: {answer}");
            assert_eq!(answer["field"], field, "{body}: {answer}");
            assert!(!answer["message"].as_str().unwrap().is_empty());
        }
        // https is delivered over TLS (rustls, the Web PKI's roots).
        let (got, answer) = call(
            "POST",
            &hooks,
            &token,
            Some(json!({ "url": "https://crm.example.fr/in", "from": "now" })),
        )
        .await;
        assert_eq!(got, StatusCode::CREATED, "{answer}");
        for (method, path) in [
            ("GET", "/v1/webhooks/wh_nope"),
            ("DELETE", "/v1/webhooks/wh_nope"),
            ("POST", "/v1/webhooks/wh_nope/enable"),
        ] {
            let (status, answer) =
                call(method, &format!("{}{path}", server.base), &token, None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
            assert_eq!(answer["code"], "webhook_not_found", "{answer}");
            assert_eq!(answer["field"], "id", "{answer}");
        }

        // `from: now` takes what is recorded from now on (on SQLite exactly; on PostgreSQL, events
        // of transactions that overlapped the subscription may come too: never one is skipped).
        // Removed: gone, with its deliveries.
        demo::field_work(&server.state).await.unwrap();
        let created = subscribe(
            &server,
            &token,
            json!({ "url": "http://127.0.0.1:9/in", "from": "now" }),
        )
        .await;
        a_choice(&server).await;
        let url = format!("{hooks}/{}", created["id"].as_str().unwrap());
        let mut state = Value::Null;
        wait_for("the choice enqueued", async || {
            state = call("GET", &url, &token, None).await.1;
            state["deliveries"]["pending"].as_i64().unwrap() > 0
        })
        .await;
        if let Backend::Sqlite = backend {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let (_, state) = call("GET", &url, &token, None).await;
            assert_eq!(
                state["deliveries"],
                json!({ "pending": 1, "delivered": 0, "failed": 0 }),
                "{state}"
            );
        }
        let (status, removed) = call("DELETE", &url, &token, None).await;
        assert_eq!(status, StatusCode::OK, "{removed}");
        assert_eq!(removed["id"], created["id"]);
        let (status, _) = call("GET", &url, &token, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        server.stop().await;
    }
}
