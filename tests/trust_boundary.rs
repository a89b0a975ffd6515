//! The trust boundary of a server on the internet, tried from outside on every backend: each
//! route admits exactly the roles its table entry declares (enforced in one layer), the public
//! development secret is refused outside development, rate limits answer 429 with Retry-After,
//! slow clients are cut off, cross-origin access is off unless configured, and every refusal —
//! the framework's included — has one JSON shape with a stable code.

#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tournee_e2e::{backends, settings, Backend, Phone, TestServer};
use tournee_server::auth::TokenRole;
use tournee_server::db::Table;
use tournee_server::routes::{endpoints, Access};
use tournee_server::settings::DEV_JWT_SECRET;
use tournee_server::AppState;
use tournee_sync_core::fixtures;

const ROLES: [TokenRole; 4] = TokenRole::ALL;

/// A token of `role` for the demo's principals.
fn token(server: &TestServer, role: TokenRole) -> String {
    match role {
        TokenRole::Postman => server.token(role, "pm-1", Some("dev-1")),
        TokenRole::Customer => server.token(role, "cust-1", None),
        TokenRole::BackOffice => server.token(role, "bo-1", None),
        TokenRole::Integration => server.token(role, "planning", None),
    }
}

/// A route template with real values in its parameters.
fn concrete(path: &str) -> String {
    path.replace("{s10}", &fixtures::s10(1).to_string())
        .replace("{id}", &fixtures::delivery_point_id(0))
        .replace("{entry}", "1")
        .replace("{attempt}", "demo-absence-1")
        .replace("{notice}", "AV00000001")
        .replace("{sha256}", &"0".repeat(64))
}

async fn call(
    client: &reqwest::Client,
    method: &str,
    url: &str,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = client.request(Method::from_bytes(method.as_bytes()).unwrap(), url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Asserts the API's one error shape: a code, a message, and the field where one is expected.
fn shaped(body: &Value, code: &str) {
    assert_eq!(body["code"], code, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{body}");
    for framework in ["Failed to", "Cannot parse", "Semantic(", "Some(", "Error {"] {
        assert!(!message.contains(framework), "framework text in {body}");
    }
}

#[tokio::test]
async fn every_route_admits_exactly_the_roles_its_table_entry_declares() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let client = reqwest::Client::new();
        let mut checked = 0;
        let mut public = 0;
        for endpoint in endpoints() {
            let url = format!("{}{}", server.base, concrete(endpoint.path));
            let Access::Roles(admitted) = endpoint.access else {
                // Public routes (and public lookups) answer without a token, and a token of
                // any role changes nothing.
                let tokens = ROLES.map(|role| Some(token(&server, role)));
                for token in std::iter::once(None).chain(tokens) {
                    let (status, body) =
                        call(&client, endpoint.method, &url, token.as_deref()).await;
                    assert!(
                        status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                        "{} {url} is public: {status} {body}",
                        endpoint.method
                    );
                }
                public += 1;
                continue;
            };
            let (status, body) = call(&client, endpoint.method, &url, None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{url}: {body}");
            shaped(&body, "token_missing");
            for role in ROLES {
                let token = token(&server, role);
                let (status, body) = call(&client, endpoint.method, &url, Some(&token)).await;
                if admitted.contains(&role) {
                    assert!(
                        status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                        "{} {url} as {role:?}: {status} {body}",
                        endpoint.method
                    );
                } else {
                    assert_eq!(status, StatusCode::FORBIDDEN, "{url} as {role:?}: {body}");
                    shaped(&body, "wrong_role");
                }
                checked += 1;
            }
        }
        assert!(checked >= 30, "only {checked} checks");
        assert!(public >= 12, "only {public} public routes checked");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_back_office_token_cannot_sync_but_a_customers_app_can() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        // A postman's real push, replayed with a back-office token: refused before anything
        // is decoded or stored.
        let mut phone = Phone::postman(&server, "pm-1", "dev-1").await;
        phone.sync(&server).await;
        phone
            .store
            .record_attempt(
                &fixtures::s10(1),
                &fixtures::absent_attempt("dev-1", "pm-1", 1),
            )
            .unwrap();
        let request = {
            let mut session = tournee_sync_core::sync::SyncSession::new(
                &mut phone.store,
                tournee_sync_core::sync::wire::Limits::default(),
            );
            session.next_request().unwrap().unwrap()
        };
        let frame = tournee_sync_core::sync::wire::encode_request(&request);
        let changes = server.state.db.count(Table::Changes).await.unwrap();
        let staff = token(&server, TokenRole::BackOffice);
        let response = reqwest::Client::new()
            .post(format!("{}/v1/sync", server.base))
            .bearer_auth(&staff)
            .body(frame.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        shaped(&response.json().await.unwrap(), "wrong_role");
        assert_eq!(
            server.state.db.count(Table::Changes).await.unwrap(),
            changes
        );

        // A customer's app syncs its own documents.
        let customer = token(&server, TokenRole::Customer);
        let fetch = tournee_sync_core::sync::wire::SyncRequest {
            since: None,
            history: None,
            docs: vec![tournee_sync_core::sync::wire::DocRequest {
                doc: tournee_sync_core::DocId::item(&fixtures::s10(0)),
                body: tournee_sync_core::sync::wire::RequestBody::Fetch,
            }],
        };
        let response = reqwest::Client::new()
            .post(format!("{}/v1/sync", server.base))
            .bearer_auth(&customer)
            .body(tournee_sync_core::sync::wire::encode_request(&fetch))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        server.stop().await;
    }
}

#[tokio::test]
async fn the_public_development_secret_and_short_secrets_are_refused_outside_development() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tournee.db");
    let url = format!("sqlite://{}", file.display());
    let mut public = settings(&url);
    public.auth.jwt_secret = DEV_JWT_SECRET.into();
    let refusal = AppState::new(&public).await.err().unwrap().to_string();
    assert!(
        refusal.contains("public development JWT secret") && refusal.contains("TOURNEE_JWT_SECRET"),
        "{refusal}"
    );
    let mut short = settings(&url);
    short.auth.jwt_secret = "sixteen-bytes-ok".into();
    let refusal = AppState::new(&short).await.err().unwrap().to_string();
    assert!(refusal.contains("16 bytes"), "{refusal}");
    assert!(
        !file.exists(),
        "nothing is created when the server refuses to start"
    );
    // On a laptop, said explicitly (`serve --demo` says it too).
    public.auth.insecure_development = true;
    assert!(AppState::new(&public).await.is_ok());
}

#[tokio::test]
async fn failed_authentication_is_rate_limited_per_address_with_retry_after() {
    for backend in backends() {
        let server =
            TestServer::start_configured(&backend, |s| s.guards.auth_failures_per_minute = 5, None)
                .await;
        let client = reqwest::Client::new();
        let url = format!("{}/v1/customer/items", server.base);
        for attempt in 0..5 {
            let (status, body) = call(&client, "GET", &url, Some("not.a.token")).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "attempt {attempt}: {body}"
            );
            shaped(&body, "token_malformed");
        }
        let response = client.get(&url).bearer_auth("x.y.z").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "Retry-After: {retry}");
        shaped(&response.json().await.unwrap(), "rate_limited");
        let metrics = client
            .get(format!("{}/metrics", server.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let failures: f64 = metrics
            .lines()
            .filter(|l| l.starts_with("tournee_auth_failures_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert_eq!(failures, 6.0, "{metrics}");
        assert!(
            metrics.contains("tournee_rate_limited_total 1"),
            "{metrics}"
        );
        // A valid token from the same address is still served: only failures are counted.
        let customer = token(&server, TokenRole::Customer);
        let (status, _) = call(&client, "GET", &url, Some(&customer)).await;
        assert_eq!(status, StatusCode::OK);
        server.stop().await;
    }
}

#[tokio::test]
async fn requests_are_rate_limited_per_principal_and_per_address() {
    let backend = Backend::Sqlite;
    let server =
        TestServer::start_configured(&backend, |s| s.guards.rate_per_principal = 1, None).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/customer/items", server.base);
    let first = token(&server, TokenRole::Customer);
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(call(&client, "GET", &url, Some(&first)).await.0);
    }
    assert_eq!(
        &statuses[..3],
        &[StatusCode::OK; 3],
        "a burst of 3 is allowed"
    );
    assert!(
        statuses[3..].contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    // Another principal has a budget of its own.
    let other = server.token(TokenRole::Customer, "cust-2", None);
    assert_eq!(
        call(&client, "GET", &url, Some(&other)).await.0,
        StatusCode::OK
    );
    server.stop().await;

    let server =
        TestServer::start_configured(&backend, |s| s.guards.rate_per_address = 1, None).await;
    let url = format!("{}/healthz", server.base);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(call(&client, "GET", &url, None).await.0);
    }
    assert_eq!(
        &statuses[..2],
        &[StatusCode::OK; 2],
        "a burst of 2 is allowed"
    );
    assert!(
        statuses[2..].contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    server.stop().await;
}

/// Reads until the server closes the connection; what it sent meanwhile.
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut answer))
        .await
        .expect("the server should close a stalled connection")
        .ok();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn slow_headers_and_stalled_bodies_are_cut_off_and_shutdown_does_not_wait_for_them() {
    let server = TestServer::start_configured(
        &Backend::Sqlite,
        |s| {
            s.guards.header_timeout_secs = 1;
            s.guards.body_timeout_secs = 1;
            s.guards.shutdown_grace_secs = 1;
        },
        None,
    )
    .await;
    let address = server.base.trim_start_matches("http://").to_string();

    // Headers never finished: the connection is closed.
    let started = Instant::now();
    let mut slow = TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    read_to_close(&mut slow, Duration::from_secs(10)).await;
    assert!(started.elapsed() < Duration::from_secs(5));

    // A kept-alive connection with no next request is closed as idle, after the same time.
    let mut idle = TcpStream::connect(&address).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let answer = read_to_close(&mut idle, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // A body that stops arriving: 408 in the API's shape.
    let token = server.token(TokenRole::Postman, "pm-1", Some("dev-1"));
    let mut stalled = TcpStream::connect(&address).await.unwrap();
    stalled
        .write_all(
            format!(
                "POST /v1/sync HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
                 Content-Length: 1000\r\n\r\n0123456789"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let answer = read_to_close(&mut stalled, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");

    // A client stalling mid-upload does not hold the shutdown past its grace period.
    let mut holding = TcpStream::connect(&address).await.unwrap();
    holding
        .write_all(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        .await
        .unwrap();
    let stopping = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), server.stop())
        .await
        .expect("the server stops within its grace period");
    assert!(stopping.elapsed() < Duration::from_secs(5));
    drop(holding);
}

#[tokio::test]
async fn cross_origin_calls_are_refused_unless_their_origin_is_configured() {
    let origin = "https://suivi.example.fr";
    let preflight = |server: &TestServer| {
        reqwest::Client::new()
            .request(
                Method::OPTIONS,
                format!("{}/v1/customer/items", server.base),
            )
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let closed = TestServer::start(&Backend::Sqlite).await;
    let answer = preflight(&closed).await.unwrap();
    assert!(
        answer
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "{:?}",
        answer.headers()
    );
    closed.stop().await;

    let open = TestServer::start_configured(
        &Backend::Sqlite,
        |s| s.guards.cors_origins = vec![origin.into()],
        None,
    )
    .await;
    let answer = preflight(&open).await.unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
    assert_eq!(answer.headers()["access-control-allow-origin"], origin);
    let allowed = answer.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("authorization"), "{allowed}");
    let customer = token(&open, TokenRole::Customer);
    let answer = reqwest::Client::new()
        .get(format!("{}/v1/customer/items", open.base))
        .header("origin", origin)
        .bearer_auth(customer)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.headers()["access-control-allow-origin"], origin);
    // Another origin gets nothing.
    let other = reqwest::Client::new()
        .get(format!("{}/healthz", open.base))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    open.stop().await;
}

#[tokio::test]
async fn every_refusal_has_one_shape_with_a_code_and_the_field_as_sent() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        // Queue entry 1 and the demo's absence, to refuse bodies about.
        tournee_server::demo::field_work(&server.state)
            .await
            .unwrap();
        let client = reqwest::Client::new();
        let base = &server.base;
        let staff = token(&server, TokenRole::BackOffice);
        let customer = token(&server, TokenRole::Customer);

        let (status, body) = call(&client, "GET", &format!("{base}/v2/nothing"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        shaped(&body, "route_not_found");
        let (status, body) = call(&client, "DELETE", &format!("{base}/healthz"), None).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        shaped(&body, "method_not_allowed");

        let url = format!("{base}/v1/backoffice/queue/abc");
        let (status, body) = call(&client, "GET", &url, Some(&staff)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        shaped(&body, "invalid_parameter");
        assert_eq!(body["field"], "entry");

        let url = format!("{base}/v1/backoffice/search?s10x=1");
        let (status, body) = call(&client, "GET", &url, Some(&staff)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        shaped(&body, "invalid_parameter");
        assert_eq!(body["field"], "s10x");

        let url = format!("{base}/v1/backoffice/queue?status=shut");
        let (status, body) = call(&client, "GET", &url, Some(&staff)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["field"], "status", "{body}");

        // A malformed S10 number is 400 naming the rule for both audiences; case does not
        // matter to either.
        for (path, token) in [
            ("/v1/customer/items/", &customer),
            ("/v1/backoffice/items/", &staff),
        ] {
            let (status, body) =
                call(&client, "GET", &format!("{base}{path}RR12"), Some(token)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
            shaped(&body, "invalid_s10");
            assert_eq!(body["field"], "s10");
            assert!(body["message"].as_str().unwrap().contains("13 characters"));
            let lower = fixtures::s10(0).to_string().to_lowercase();
            let (status, body) =
                call(&client, "GET", &format!("{base}{path}{lower}"), Some(token)).await;
            assert_eq!(status, StatusCode::OK, "{path}{lower}: {body}");
        }

        // Fields are named as the client sent them.
        let dispute = format!(
            "{base}/v1/customer/items/{}/attempts/demo-absence-1/dispute",
            fixtures::s10(1)
        );
        let decision = format!("{base}/v1/backoffice/queue/1/decision");
        for (url, token, body, code, field) in [
            (
                &dispute,
                &customer,
                json!({ "comment": "at home\u{7}" }),
                "rule_violation",
                "comment",
            ),
            (
                &decision,
                &staff,
                json!({ "decision": "approve", "comment": " " }),
                "rule_violation",
                "comment",
            ),
            (
                &decision,
                &staff,
                json!({ "decision": "maybe", "comment": "x" }),
                "invalid_field",
                "decision",
            ),
        ] {
            let answer = client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            let answer: Value = answer.json().await.unwrap();
            shaped(&answer, code);
            assert_eq!(answer["field"], field, "{body}: {answer}");
        }

        // Damaged sync frames: 400 in words, never the decoder's debug text.
        let postman = token(&server, TokenRole::Postman);
        let frame = tournee_sync_core::sync::wire::encode_request(
            &tournee_sync_core::sync::wire::SyncRequest {
                since: Some(3),
                history: None,
                docs: vec![tournee_sync_core::sync::wire::DocRequest {
                    doc: tournee_sync_core::DocId::item(&fixtures::s10(1)),
                    body: tournee_sync_core::sync::wire::RequestBody::Fetch,
                }],
            },
        );
        for cut in 1..frame.len() {
            let mut damaged = frame.clone();
            damaged[cut] ^= 0x5a;
            damaged.truncate(frame.len() - cut % 3);
            let answer = client
                .post(format!("{base}/v1/sync"))
                .bearer_auth(&postman)
                .body(damaged)
                .send()
                .await
                .unwrap();
            if answer.status() == StatusCode::BAD_REQUEST {
                shaped(&answer.json().await.unwrap(), "malformed_frame");
            }
        }

        // Over the size limit, in the same shape.
        let answer = client
            .post(format!("{base}/v1/sync"))
            .bearer_auth(&postman)
            .body(vec![0u8; 5 * 1024 * 1024])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
        shaped(&answer.json().await.unwrap(), "body_too_large");
        server.stop().await;
    }
}

#[tokio::test]
async fn stalled_uploads_cannot_hold_more_memory_than_the_upload_budget() {
    let server = TestServer::start_configured(
        &Backend::Sqlite,
        |s| {
            s.guards.upload_budget_bytes = 1_000_000;
            s.guards.body_timeout_secs = 4;
        },
        None,
    )
    .await;
    let address = server.base.trim_start_matches("http://").to_string();
    let token = server.token(TokenRole::Postman, "pm-1", Some("dev-1"));
    // Three uploads that declare 600 kB each and stall: the first holds its share of the
    // budget; the others find it spent and are refused, rather than held in memory.
    let mut stalled = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        stream
            .write_all(
                format!(
                    "POST /v1/sync HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
                     Content-Length: 600000\r\n\r\n0123456789"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        stalled.push(stream);
    }
    let mut answers = Vec::new();
    for mut stream in stalled {
        answers.push(read_to_close(&mut stream, Duration::from_secs(15)).await);
    }
    let busy = answers
        .iter()
        .filter(|a| a.starts_with("HTTP/1.1 503") && a.contains("\"code\":\"busy\""))
        .count();
    assert_eq!(busy, 2, "{answers:#?}");
    assert!(
        answers.iter().any(|a| a.starts_with("HTTP/1.1 408")),
        "{answers:#?}"
    );
    // The budget is whole again, and a normal request goes through.
    assert_eq!(server.state.uploads.available(), 1_000_000);
    let answer = reqwest::Client::new()
        .post(format!("{}/v1/sync", server.base))
        .bearer_auth(&token)
        .body(tournee_sync_core::sync::wire::encode_request(
            &tournee_sync_core::sync::wire::SyncRequest {
                since: None,
                history: None,
                docs: vec![],
            },
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    server.stop().await;
}
