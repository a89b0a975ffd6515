//! Every way a caller's credentials can be wrong, against both phone routes (`POST /v1/sync` with
//! an empty frame and with a frame that pushes a real attempt, and `GET /v1/rounds`), on every
//! backend: the exact status, a JSON error that names the problem, and nothing stored.
//!
//! Bad tokens are forged with `jsonwebtoken` and the test secret, one defect at a time; a token
//! forged the same way without the defect is accepted, so each refusal is the defect's doing.

#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tournee_e2e::{backends, TestServer};
use tournee_server::auth::TokenRole;
use tournee_server::db::Table;
use tournee_sync_core::fixtures;
use tournee_sync_core::operations;
use tournee_sync_core::sync::wire::{
    self, DocRequest, Limits, RefusalCode, RequestBody, ResponseBody, SyncRequest,
};
use tournee_sync_core::DocId;

/// What `tournee_e2e::settings` configures.
const SECRET: &[u8] = b"test-secret-for-tournee-e2e-at-least-32-bytes";
const AUDIENCE: &str = "tournee";
const ISSUER: &str = "tournee-dev";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims shaped like `tournee_server::auth::Claims`, valid for an hour.
fn claims(role: &str, sub: &str, device: Option<&str>) -> Value {
    let mut claims = json!({
        "sub": sub,
        "role": role,
        "aud": AUDIENCE,
        "iss": ISSUER,
        "exp": now() + 3600,
        "iat": now(),
    });
    if let Some(device) = device {
        claims["device"] = json!(device);
    }
    claims
}

fn postman_claims() -> Value {
    claims("postman", "pm-1", Some("dev-1"))
}

fn sign_with(algorithm: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(algorithm), claims, key).unwrap()
}

/// HS256 with the server's secret: valid unless the claims are not.
fn sign(claims: &Value) -> String {
    sign_with(Algorithm::HS256, &EncodingKey::from_secret(SECRET), claims)
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64url without padding, as JWT segments are.
fn b64url(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(B64URL[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}

fn unb64url(text: &str) -> Vec<u8> {
    let (mut bits, mut held, mut out) = (0u32, 0, Vec::new());
    for c in text.bytes() {
        let value = B64URL.iter().position(|a| *a == c).unwrap() as u32;
        bits = bits << 6 | value;
        held += 6;
        if held >= 8 {
            held -= 8;
            out.push((bits >> held) as u8);
            bits &= (1 << held) - 1;
        }
    }
    out
}

fn item(n: u32) -> DocId {
    DocId::item(&fixtures::s10(n))
}

/// The three calls each credential is tried on.
#[derive(Debug, Clone, Copy)]
enum Call {
    EmptySync,
    PushAttempt,
    Rounds,
}

const CALLS: [Call; 3] = [Call::EmptySync, Call::PushAttempt, Call::Rounds];

/// A server with the demo town, and a frame holding a real, valid attempt by pm-1 on dev-1.
struct Bench {
    server: TestServer,
    attempt_frame: Vec<u8>,
    /// The document the attempt frame pushes to.
    attempt_doc: DocId,
}

impl Bench {
    async fn start(backend: &tournee_e2e::Backend) -> Self {
        let server = TestServer::start(backend).await;
        let attempt_doc = item(0);
        let attempt_frame = attempt_frame(&server, 0, "att-tm", "dev-1", "pm-1").await;
        Self {
            server,
            attempt_frame,
            attempt_doc,
        }
    }

    async fn send(&self, authorization: Option<&str>, call: Call) -> reqwest::Response {
        let client = reqwest::Client::new();
        let request = match call {
            Call::EmptySync => {
                client
                    .post(format!("{}/v1/sync", self.server.base))
                    .body(wire::encode_request(&SyncRequest {
                        since: None,
                        history: None,
                        docs: vec![],
                    }))
            }
            Call::PushAttempt => client
                .post(format!("{}/v1/sync", self.server.base))
                .body(self.attempt_frame.clone()),
            Call::Rounds => client.get(format!("{}/v1/rounds", self.server.base)),
        };
        let request = match authorization {
            Some(value) => request.header(reqwest::header::AUTHORIZATION, value),
            None => request,
        };
        request.send().await.unwrap()
    }

    /// `(changes, attempts)` stored.
    async fn stored(&self) -> (i64, i64) {
        let db = &self.server.state.db;
        (
            db.count(Table::Changes).await.unwrap(),
            db.count(Table::Attempts).await.unwrap(),
        )
    }

    /// Every call with `authorization` answers `status` with a JSON error containing `needle`,
    /// and stores nothing.
    async fn refused(
        &self,
        case: &str,
        authorization: Option<&str>,
        status: StatusCode,
        needle: &str,
    ) {
        self.refused_mentioning(case, authorization, status, &[needle])
            .await;
    }

    /// As [`Bench::refused`], the error mentioning each of `needles` (in any case).
    async fn refused_mentioning(
        &self,
        case: &str,
        authorization: Option<&str>,
        status: StatusCode,
        needles: &[&str],
    ) {
        let before = self.stored().await;
        let backend = self.server.state.db.backend();
        for call in CALLS {
            let response = self.send(authorization, call).await;
            assert_eq!(
                response.status(),
                status,
                "{backend}: {case} on {call:?}: {:?}",
                response.text().await
            );
            let message = error_message(response).await;
            for needle in needles {
                assert!(
                    message.to_lowercase().contains(&needle.to_lowercase()),
                    "{backend}: {case} on {call:?}: {message:?} does not mention {needle:?}"
                );
            }
        }
        assert_eq!(
            self.stored().await,
            before,
            "{backend}: {case}: nothing stored"
        );
    }

    /// Every call with `authorization` succeeds; the push is answered for the attempt's document.
    async fn accepted_push(&self, authorization: &str) -> ResponseBody {
        let response = self.send(Some(authorization), Call::PushAttempt).await;
        assert_eq!(response.status(), StatusCode::OK);
        answer_for(response, &self.attempt_doc).await
    }
}

/// The `code` and `message` of a JSON error body, as one string to look for words in.
async fn error_message(response: reqwest::Response) -> String {
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(content_type.as_deref(), Some("application/json"));
    let body: Value = response.json().await.unwrap();
    let code = body["code"].as_str().expect("every refusal has a code");
    format!("{code} {}", body["message"].as_str().unwrap())
}

/// The server's answer for `doc` in a sync response.
async fn answer_for(response: reqwest::Response, doc: &DocId) -> ResponseBody {
    let frame = response.bytes().await.unwrap();
    let answer = wire::decode_response(&frame, &Limits::default()).unwrap();
    answer
        .docs
        .into_iter()
        .find(|d| &d.doc == doc)
        .unwrap()
        .body
}

/// A frame pushing one new attempt (a change the server does not have) to item `n`.
async fn attempt_frame(
    server: &TestServer,
    n: u32,
    attempt_id: &str,
    device: &str,
    postman: &str,
) -> Vec<u8> {
    let doc = item(n);
    let current = server
        .state
        .docs
        .load(&server.state.db, &doc)
        .await
        .unwrap()
        .unwrap();
    let mut next = current.fork();
    operations::record_attempt(
        &mut next,
        attempt_id,
        &fixtures::absent_attempt(device, postman, n),
    )
    .unwrap();
    let change = next.get_changes(&current.get_heads()).pop().unwrap();
    wire::encode_request(&SyncRequest {
        since: None,
        history: None,
        docs: vec![DocRequest {
            doc,
            body: RequestBody::Push {
                changes: vec![change.raw_bytes().to_vec().into()],
                extra_heads: Default::default(),
                signatures: Vec::new(),
            },
        }],
    })
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn missing_or_malformed_authorization_is_401() {
    for backend in backends() {
        let bench = Bench::start(&backend).await;
        let unauthorized = StatusCode::UNAUTHORIZED;
        bench
            .refused("no header", None, unauthorized, "missing Authorization")
            .await;
        bench
            .refused(
                "basic credentials",
                Some("Basic cG0tMTpkZXYtMQ=="),
                unauthorized,
                "must be `Bearer <token>`",
            )
            .await;
        let valid = bench
            .server
            .token(TokenRole::Postman, "pm-1", Some("dev-1"));
        bench
            .refused(
                "a valid token under another scheme",
                Some(&format!("Token {valid}")),
                unauthorized,
                "must be `Bearer <token>`",
            )
            .await;
        bench
            .refused(
                "garbage token",
                Some("Bearer garbage"),
                unauthorized,
                "token_",
            )
            .await;
        bench
            .refused(
                "three segments of garbage",
                Some("Bearer not.a.token"),
                unauthorized,
                "token_",
            )
            .await;

        // The control: the same calls with the valid token go through, and the attempt that
        // every refused call carried is stored.
        for call in [Call::EmptySync, Call::Rounds] {
            assert_eq!(
                bench.send(Some(&bearer(&valid)), call).await.status(),
                StatusCode::OK
            );
        }
        let before = bench.stored().await;
        let answer = bench.accepted_push(&bearer(&valid)).await;
        assert!(matches!(answer, ResponseBody::Update { .. }), "{answer:?}");
        assert_eq!(bench.stored().await, (before.0 + 1, before.1 + 1));
        bench.server.stop().await;
    }
}

#[tokio::test]
async fn forged_expired_and_misaddressed_tokens_are_401() {
    for backend in backends() {
        let bench = Bench::start(&backend).await;
        let unauthorized = StatusCode::UNAUTHORIZED;

        let mut expired = postman_claims();
        expired["exp"] = json!(now() - 120);
        expired["iat"] = json!(now() - 3720);
        bench
            .refused(
                "expired beyond the leeway",
                Some(&bearer(&sign(&expired))),
                unauthorized,
                "token_expired",
            )
            .await;

        let other_secret = sign_with(
            Algorithm::HS256,
            &EncodingKey::from_secret(b"another-secret-of-enough-length"),
            &postman_claims(),
        );
        bench
            .refused(
                "signed with another secret",
                Some(&bearer(&other_secret)),
                unauthorized,
                "token_bad_signature",
            )
            .await;

        // The server's own token for pm-1, its payload rewritten to claim pm-2's device.
        let genuine = bench
            .server
            .token(TokenRole::Postman, "pm-1", Some("dev-1"));
        let parts: Vec<&str> = genuine.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(b64url(&unb64url(parts[1])), parts[1], "codec round trip");
        let mut payload: Value = serde_json::from_slice(&unb64url(parts[1])).unwrap();
        assert_eq!(payload["sub"], "pm-1");
        payload["sub"] = json!("pm-2");
        payload["device"] = json!("dev-2");
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            b64url(&serde_json::to_vec(&payload).unwrap()),
            parts[2]
        );
        bench
            .refused(
                "payload modified after signing",
                Some(&bearer(&tampered)),
                unauthorized,
                "token_bad_signature",
            )
            .await;

        let none = format!(
            "{}.{}.",
            b64url(br#"{"alg":"none","typ":"JWT"}"#),
            b64url(&serde_json::to_vec(&postman_claims()).unwrap())
        );
        bench
            .refused(
                "alg none, unsigned",
                Some(&bearer(&none)),
                unauthorized,
                "token_",
            )
            .await;

        let hs384 = sign_with(
            Algorithm::HS384,
            &EncodingKey::from_secret(SECRET),
            &postman_claims(),
        );
        bench
            .refused(
                "right secret, HS384 instead of HS256",
                Some(&bearer(&hs384)),
                unauthorized,
                "token_wrong_algorithm",
            )
            .await;

        let mut audience = postman_claims();
        audience["aud"] = json!("someone-else");
        bench
            .refused(
                "wrong audience",
                Some(&bearer(&sign(&audience))),
                unauthorized,
                "token_wrong_audience",
            )
            .await;

        let mut issuer = postman_claims();
        issuer["iss"] = json!("evil-idp");
        bench
            .refused(
                "wrong issuer",
                Some(&bearer(&sign(&issuer))),
                unauthorized,
                "token_wrong_issuer",
            )
            .await;

        for claim in ["exp", "aud", "iss", "sub"] {
            let mut missing = postman_claims();
            missing.as_object_mut().unwrap().remove(claim);
            // jsonwebtoken reports it as a missing field of `Claims` or a missing required
            // claim, depending on which check runs first.
            bench
                .refused_mentioning(
                    &format!("no {claim}"),
                    Some(&bearer(&sign(&missing))),
                    unauthorized,
                    &["token_", claim],
                )
                .await;
        }

        bench
            .refused(
                "postman token without a device",
                Some(&bearer(&sign(&claims("postman", "pm-1", None)))),
                unauthorized,
                "a postman token must name its device",
            )
            .await;
        bench
            .refused(
                "postman token with an empty device",
                Some(&bearer(&sign(&claims("postman", "pm-1", Some(""))))),
                unauthorized,
                "a postman token must name its device",
            )
            .await;
        bench
            .refused(
                "a role the server does not know",
                Some(&bearer(&sign(&claims("admin", "pm-1", Some("dev-1"))))),
                unauthorized,
                "token_",
            )
            .await;

        // Controls: forged the same way without a defect, or expired within the 30 s leeway,
        // the token is accepted on every call, and the attempt is stored.
        let mut recent = postman_claims();
        recent["exp"] = json!(now() - 5);
        for token in [sign(&postman_claims()), sign(&recent)] {
            for call in [Call::EmptySync, Call::Rounds] {
                let response = bench.send(Some(&bearer(&token)), call).await;
                assert_eq!(response.status(), StatusCode::OK, "{backend:?} {call:?}");
            }
        }
        let before = bench.stored().await;
        let answer = bench.accepted_push(&bearer(&sign(&recent))).await;
        assert!(matches!(answer, ResponseBody::Update { .. }), "{answer:?}");
        assert_eq!(bench.stored().await, (before.0 + 1, before.1 + 1));
        bench.server.stop().await;
    }
}

#[tokio::test]
async fn a_valid_token_in_the_wrong_role_is_403_or_refused_forbidden_and_stores_nothing() {
    for backend in backends() {
        let bench = Bench::start(&backend).await;
        let server = &bench.server;
        let before = bench.stored().await;

        // cust-1 owns delivery point 0, so item 0 is in their scope: only the role is wrong.
        let customer = bearer(&server.token(TokenRole::Customer, "cust-1", None));
        let back_office = bearer(&server.token(TokenRole::BackOffice, "bo-1", None));
        for (who, token) in [("customer", &customer), ("back office", &back_office)] {
            let response = bench.send(Some(token), Call::Rounds).await;
            assert_eq!(
                response.status(),
                StatusCode::FORBIDDEN,
                "{backend:?} {who}"
            );
            let message = error_message(response).await;
            assert!(message.contains("postman"), "{who}: {message}");

            let response = bench.send(Some(token), Call::EmptySync).await;
            if who == "customer" {
                // Customers' apps sync their own documents; a postman's attempt is not theirs.
                assert_eq!(response.status(), StatusCode::OK, "{backend:?} {who}");
                let answer = bench.accepted_push(token).await;
                assert!(
                    matches!(
                        &answer,
                        ResponseBody::Refused { code: RefusalCode::Forbidden, message }
                            if message.contains("attempts")
                    ),
                    "{backend:?} {who}: {answer:?}"
                );
            } else {
                // The back office never syncs: its writes go through the reviewed routes.
                assert_eq!(
                    response.status(),
                    StatusCode::FORBIDDEN,
                    "{backend:?} {who}"
                );
                let message = error_message(response).await;
                assert!(message.starts_with("wrong_role"), "{who}: {message}");
                let response = bench.send(Some(token), Call::PushAttempt).await;
                assert_eq!(
                    response.status(),
                    StatusCode::FORBIDDEN,
                    "{backend:?} {who}"
                );
            }
            assert_eq!(bench.stored().await, before, "{backend:?} {who}");
        }

        // The same frame from the postman it names is stored.
        let postman = bearer(&server.token(TokenRole::Postman, "pm-1", Some("dev-1")));
        let answer = bench.accepted_push(&postman).await;
        assert!(matches!(answer, ResponseBody::Update { .. }), "{answer:?}");
        assert_eq!(bench.stored().await, (before.0 + 1, before.1 + 1));
        bench.server.stop().await;
    }
}

#[tokio::test]
async fn a_revoked_devices_tokens_are_403_and_other_devices_still_work() {
    for backend in backends() {
        let bench = Bench::start(&backend).await;
        let server = &bench.server;
        let db = &server.state.db;
        let dev_1 = bearer(&server.token(TokenRole::Postman, "pm-1", Some("dev-1")));
        for call in [Call::EmptySync, Call::Rounds] {
            let response = bench.send(Some(&dev_1), call).await;
            assert_eq!(response.status(), StatusCode::OK, "valid before revocation");
        }

        assert!(db.revoke_device("dev-1", 1_000).await.unwrap());
        bench
            .refused(
                "revoked device",
                Some(&dev_1),
                StatusCode::FORBIDDEN,
                "device dev-1 is revoked",
            )
            .await;
        // A freshly minted token for the revoked device is refused as well.
        let fresh = bearer(&sign(&postman_claims()));
        bench
            .refused(
                "new token, revoked device",
                Some(&fresh),
                StatusCode::FORBIDDEN,
                "revoked",
            )
            .await;
        assert_eq!(db.count(Table::Attempts).await.unwrap(), 0);

        // pm-2 on dev-2 still syncs and records an attempt on an item of their own round.
        let dev_2 = bearer(&server.token(TokenRole::Postman, "pm-2", Some("dev-2")));
        let response = bench.send(Some(&dev_2), Call::Rounds).await;
        assert_eq!(response.status(), StatusCode::OK);
        let rounds: Value = response.json().await.unwrap();
        assert_eq!(rounds[0]["device"], "dev-2");
        assert_eq!(
            bench.send(Some(&dev_2), Call::EmptySync).await.status(),
            StatusCode::OK
        );
        let theirs = item(12);
        let frame = attempt_frame(server, 12, "att-pm2", "dev-2", "pm-2").await;
        let response = reqwest::Client::new()
            .post(format!("{}/v1/sync", server.base))
            .header(reqwest::header::AUTHORIZATION, &dev_2)
            .body(frame)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let answer = answer_for(response, &theirs).await;
        assert!(matches!(answer, ResponseBody::Update { .. }), "{answer:?}");
        let attempts = db
            .attempts_for_item(fixtures::s10(12).as_str())
            .await
            .unwrap();
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].device, "dev-2");
        bench.server.stop().await;
    }
}

/// A test Ed25519 identity provider key pair, and a key of somebody else.
const ED_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIMlXd/zNi+XSNVqVnjZjpyaQvoMDVWkhMebBkEOBvvLg
-----END PRIVATE KEY-----
";
const ED_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAcntOln2QnVtrBED8BW5tok9RXSWK9NcZsfp8fl+ofWw=
-----END PUBLIC KEY-----
";
const ED_OTHER_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIH6AVEsxu1R9EG2oucRb/TOiwCw9fPR3DNpC0FwRgAzQ
-----END PRIVATE KEY-----
";

/// With an identity provider's public key configured, only that key's algorithm is accepted:
/// HS256 (with the old secret, or with the public key as the HMAC secret) is refused. Token
/// checks come before any storage, so this runs on SQLite only.
#[tokio::test]
async fn a_server_configured_with_a_public_key_refuses_hs256_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("idp.pem");
    std::fs::write(&key_path, ED_PUBLIC).unwrap();
    let mut settings = tournee_e2e::settings(&format!(
        "sqlite://{}",
        dir.path().join("tournee.db").display()
    ));
    settings.auth.jwt_public_key = Some(key_path);
    settings.auth.jwt_algorithm = "EdDSA".into();
    let state = tournee_server::AppState::new(&settings).await.unwrap();
    // Postman tokens must name a device registered to that postman.
    state.db.register_device("dev-1", "pm-1").await.unwrap();
    assert!(
        state
            .keys
            .mint("pm-1", TokenRole::Postman, Some("dev-1"), 60)
            .is_none(),
        "no minting without a secret"
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(tournee_server::launch_with_tcp_listener(
        state.clone(),
        listener,
        async {
            let _ = stopped.await;
        },
    ));

    let empty = wire::encode_request(&SyncRequest {
        since: None,
        history: None,
        docs: vec![],
    });
    let sync = |token: String| {
        reqwest::Client::new()
            .post(format!("{base}/v1/sync"))
            .bearer_auth(token)
            .body(empty.clone())
            .send()
    };
    let idp = EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap();
    let good = sign_with(Algorithm::EdDSA, &idp, &postman_claims());
    assert_eq!(sync(good.clone()).await.unwrap().status(), StatusCode::OK);
    let rounds = reqwest::Client::new()
        .get(format!("{base}/v1/rounds"))
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(rounds.status(), StatusCode::OK);

    let confused = sign_with(
        Algorithm::HS256,
        &EncodingKey::from_secret(ED_PUBLIC.as_bytes()),
        &postman_claims(),
    );
    let other_idp = sign_with(
        Algorithm::EdDSA,
        &EncodingKey::from_ed_pem(ED_OTHER_PRIVATE.as_bytes()).unwrap(),
        &postman_claims(),
    );
    for (case, token, needle) in [
        (
            "HS256 keyed with the public key",
            confused,
            "token_wrong_algorithm",
        ),
        (
            "HS256 with the secret",
            sign(&postman_claims()),
            "token_wrong_algorithm",
        ),
        ("EdDSA from another key", other_idp, "token_bad_signature"),
    ] {
        let response = sync(token).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{case}");
        let message = error_message(response).await;
        assert!(message.contains(needle), "{case}: {message}");
    }
    assert_eq!(state.db.count(Table::Changes).await.unwrap(), 0);
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn not_yet_valid_tokens_unregistered_devices_and_the_scheme_case() {
    for backend in backends() {
        let bench = Bench::start(&backend).await;
        let mut early = postman_claims();
        early["nbf"] = json!(now() + 3600);
        bench
            .refused_mentioning(
                "not valid before an hour from now",
                Some(&bearer(&sign(&early))),
                StatusCode::UNAUTHORIZED,
                &["token_not_yet_valid"],
            )
            .await;

        // A device that was never registered, or is registered to another postman.
        let stranger = sign(&claims("postman", "pm-1", Some("dev-unknown")));
        bench
            .refused(
                "unregistered device",
                Some(&bearer(&stranger)),
                StatusCode::FORBIDDEN,
                "not registered",
            )
            .await;
        let borrowed = sign(&claims("postman", "pm-1", Some("dev-2")));
        bench
            .refused(
                "another postman's device",
                Some(&bearer(&borrowed)),
                StatusCode::FORBIDDEN,
                "not registered to pm-1",
            )
            .await;

        // Every 401 names the scheme (RFC 6750 §3).
        let response = reqwest::Client::new()
            .get(format!("{}/v1/rounds", bench.server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers().get("www-authenticate").unwrap(),
            "Bearer"
        );

        // The scheme is case-insensitive (RFC 9110 §11.1).
        let token = bench
            .server
            .token(TokenRole::Postman, "pm-1", Some("dev-1"));
        let response = reqwest::Client::new()
            .get(format!("{}/v1/rounds", bench.server.base))
            .header("Authorization", format!("bearer {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        bench.server.stop().await;
    }
}
