//! The event feed, on every backend: every reconciled fact once, in commit order, to a follower
//! that reads while writes go on; on PostgreSQL, never past a transaction that commits late,
//! also with two server instances writing at once.

#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::{BTreeSet, HashSet};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tournee_e2e::{backends, Backend, TestServer};
use tournee_server::auth::TokenRole;
use tournee_server::db::Table;
use tournee_server::demo;
use tournee_sync_core::fixtures;

/// Reads the feed from `after` to its end, `limit` at a time; returns the events and the cursor.
async fn read_to_end(
    base: &str,
    token: &str,
    mut after: Option<String>,
    limit: u32,
) -> (Vec<Value>, String) {
    let client = reqwest::Client::new();
    let mut events = Vec::new();
    loop {
        let mut url = format!("{base}/v1/feed?limit={limit}");
        if let Some(after) = &after {
            url.push_str(&format!("&after={after}"));
        }
        let response = client.get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        let page: Value = response.json().await.unwrap();
        let got = page["events"].as_array().unwrap().clone();
        assert!(got.len() <= limit as usize);
        events.extend(got);
        after = Some(page["next"].as_str().unwrap().to_string());
        if !page["more"].as_bool().unwrap() {
            return (events, after.unwrap());
        }
    }
}

/// Reads the feed from `after` until it holds at least `count` events. On PostgreSQL the feed
/// stops short of any transaction still running on the cluster (other tests' included), so what
/// a test just committed may take a moment to show.
async fn read_at_least(
    base: &str,
    token: &str,
    after: Option<String>,
    limit: u32,
    count: usize,
) -> (Vec<Value>, String) {
    let (mut events, mut next) = read_to_end(base, token, after, limit).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while events.len() < count {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {count} events: {events:#?}",
            events.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let (more, after) = read_to_end(base, token, Some(next), limit).await;
        events.extend(more);
        next = after;
    }
    (events, next)
}

/// cust-1 asks for item 1 to be held at the office: one `choice.made` event.
async fn hold_at_the_office(server: &TestServer) {
    let customer = server.token(TokenRole::Customer, "cust-1", None);
    let response = reqwest::Client::new()
        .post(format!(
            "{}/v1/customer/items/{}/choice",
            server.base,
            fixtures::s10(1)
        ))
        .bearer_auth(&customer)
        .json(&json!({ "kind": "hold" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

fn assert_once_each(events: &[Value]) {
    let ids: HashSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), events.len(), "an event came twice: {events:#?}");
}

#[tokio::test]
async fn the_feed_serves_every_fact_once_and_then_only_what_is_new() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        demo::field_work(&server.state).await.unwrap();
        let token = server.token(TokenRole::Integration, "crm", None);
        let stored = server.state.db.count(Table::Events).await.unwrap() as usize;
        let (events, next) = read_at_least(&server.base, &token, None, 2, stored).await;
        assert_once_each(&events);
        let seen = types(&events);
        for expected in [
            "correction.proposed",
            "attempt.recorded",
            "item.not_delivered",
            "item.delivered",
        ] {
            assert!(seen.contains(&expected), "{expected} missing from {seen:?}");
        }
        // The attempt far from the pin says so, with its distance.
        let far = events
            .iter()
            .find(|e| e["payload"]["attempt_id"] == demo::DEMO_FAR_DELIVERY)
            .unwrap();
        assert_eq!(far["subject"]["kind"], "item");
        assert_eq!(far["subject"]["id"], fixtures::s10(4).to_string());
        assert!(
            far["payload"]["distance_to_pin_m"].as_f64().unwrap() > 400.0,
            "{far}"
        );
        assert!(
            !far["payload"]["flags"].as_array().unwrap().is_empty(),
            "{far}"
        );
        assert!(far["occurred_at"].as_str().unwrap().ends_with('Z'), "{far}");

        // Nothing new: an empty page that keeps the cursor. The same field work again writes
        // nothing, so records no event.
        demo::field_work(&server.state).await.unwrap();
        assert_eq!(
            server.state.db.count(Table::Events).await.unwrap() as usize,
            stored
        );
        let (again, same) = read_to_end(&server.base, &token, Some(next.clone()), 10).await;
        assert!(again.is_empty(), "{again:#?}");
        assert_eq!(same, next);

        // A customer's choice: exactly one new event.
        hold_at_the_office(&server).await;
        let (new, _) = read_at_least(&server.base, &token, Some(next), 10, 1).await;
        assert_eq!(types(&new), ["choice.made"], "{new:#?}");
        assert_eq!(new[0]["payload"]["made_by"], "cust-1");

        // A malformed cursor or limit is refused in the API's one error shape.
        for (query, field) in [
            ("after=12", "after"),
            ("after=a.b", "after"),
            ("limit=0", "limit"),
            ("limit=5000", "limit"),
        ] {
            let response = reqwest::Client::new()
                .get(format!("{}/v1/feed?{query}", server.base))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["field"], field, "{body}");
        }
        server.stop().await;
    }
}

/// A transaction that took its event number before another committed, and commits after it,
/// is read in its turn: a feed that followed numbers alone would have passed it.
#[tokio::test]
async fn a_transaction_that_commits_late_is_not_skipped() {
    for backend in backends() {
        let Backend::Postgres(_) = backend else {
            continue;
        };
        let server = TestServer::start(&backend).await;
        let token = server.token(TokenRole::Integration, "crm", None);
        let (_, start) = read_to_end(&server.base, &token, None, 100).await;

        // A writer that inserts its event and is slow to commit.
        let pool = sqlx::PgPool::connect(&server.database_url).await.unwrap();
        let mut late = pool.begin().await.unwrap();
        sqlx::query("INSERT INTO events (id, type, subject_kind, subject_id, occurred_ms, recorded_ms, payload) VALUES ('late-writer', 'item.arrived', 'item', $1, 0, 0, $2)")
            .bind(fixtures::s10(3).to_string())
            .bind(json!({ "upu_code": "EMG", "reason": null, "action": null, "source": "import" }).to_string())
            .execute(&mut *late)
            .await
            .unwrap();

        // Meanwhile a customer's choice commits, with a larger event number.
        hold_at_the_office(&server).await;
        let (before_commit, cursor) = read_to_end(&server.base, &token, Some(start), 100).await;
        assert!(
            before_commit.is_empty(),
            "the feed went past a transaction still running: {before_commit:#?}"
        );

        late.commit().await.unwrap();
        let (after_commit, _) = read_at_least(&server.base, &token, Some(cursor), 100, 2).await;
        let ids: Vec<&str> = after_commit
            .iter()
            .map(|e| e["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 2, "{after_commit:#?}");
        assert_eq!(ids[0], "late-writer");
        assert_eq!(after_commit[1]["type"], "choice.made");
        pool.close().await;
        server.stop().await;
    }
}

/// Two instances on one PostgreSQL database write at once while a follower reads the feed from
/// one of them: it gets every event exactly once.
#[tokio::test]
async fn a_follower_of_two_instances_writing_at_once_misses_nothing_and_sees_nothing_twice() {
    for backend in backends() {
        let Backend::Postgres(_) = backend else {
            continue;
        };
        let first = TestServer::start(&backend).await;
        let second = TestServer::start_on(&first.database_url, tempfile::tempdir().unwrap()).await;
        let token = first.token(TokenRole::Integration, "crm", None);
        let (before, start) = read_to_end(&first.base, &token, None, 100).await;
        assert!(before.is_empty(), "{before:#?}");

        const WRITES: usize = 40;
        let mut writers = Vec::new();
        for (w, base) in [&first.base, &second.base, &first.base, &second.base]
            .into_iter()
            .enumerate()
        {
            let base = base.clone();
            let customer = format!("cust-{}", w % 3 + 1);
            let token = first.token(TokenRole::Customer, &customer, None);
            let point = fixtures::delivery_point_id((w % 3) as u32);
            writers.push(tokio::spawn(async move {
                let client = reqwest::Client::new();
                for n in 0..WRITES / 4 {
                    let response = client
                        .put(format!("{base}/v1/customer/delivery-points/{point}/preferences"))
                        .bearer_auth(&token)
                        .json(&json!({ "safe_place": format!("porch {w}-{n}"), "never_to_neighbour": false }))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());
                }
            }));
        }
        let follower = {
            let base = second.base.clone();
            let token = token.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut after = start;
                while seen.len() < WRITES {
                    let (events, next) = read_to_end(&base, &token, Some(after), 7).await;
                    seen.extend(events);
                    after = next;
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                let (rest, _) = read_to_end(&base, &token, Some(after), 7).await;
                seen.extend(rest);
                seen
            })
        };
        for writer in writers {
            writer.await.unwrap();
        }
        let seen = tokio::time::timeout(std::time::Duration::from_secs(60), follower)
            .await
            .expect("the follower never saw every event")
            .unwrap();
        assert_once_each(&seen);
        let stored: BTreeSet<String> = match &first.state.db {
            tournee_server::db::Database::Postgres(pool) => {
                sqlx::query_scalar("SELECT id FROM events")
                    .fetch_all(pool)
                    .await
                    .unwrap()
                    .into_iter()
                    .collect()
            }
            _ => unreachable!(),
        };
        let followed: BTreeSet<String> = seen
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(followed, stored);
        assert_eq!(stored.len(), WRITES);
        second.stop().await;
        first.stop().await;
    }
}
