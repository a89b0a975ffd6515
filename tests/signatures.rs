//! Signed doorstep evidence over HTTP, on SQLite and PostgreSQL (issue #17): devices register
//! their keys, the server publishes its own; a relief postman's phone carries another phone's
//! signed attempts, stored once and authored by the phone that recorded them; a forged
//! signature, or an unsigned push where signatures are required, is refused with nothing stored;
//! reviewers see who signed.

#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use base64::Engine;
use serde_json::{json, Value};
use tournee_e2e::{backends, enroll_key, get_json, Phone, TestServer};
use tournee_server::auth::TokenRole;
use tournee_server::db::Table;
use tournee_sync_core::fixtures;
use tournee_sync_core::signing::{PublicKey, SoftwareKey};
use tournee_sync_core::sync::wire::{
    self, Limits, RefusalCode, RequestBody, ResponseBody, SyncRequest, SyncResponse,
};
use tournee_sync_core::sync::SyncSession;
use tournee_sync_core::DocId;

/// Posts one request frame with `token`; the decoded answer.
async fn post(server: &TestServer, token: &str, request: &SyncRequest) -> SyncResponse {
    let answer = reqwest::Client::new()
        .post(format!("{}/v1/sync", server.base))
        .bearer_auth(token)
        .body(wire::encode_request(request))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    wire::decode_response(&answer.bytes().await.unwrap(), &Limits::default()).unwrap()
}

/// The phone's next request, which it will not see answered.
fn next_request(phone: &mut Phone) -> SyncRequest {
    SyncSession::new(&mut phone.store, Limits::default())
        .next_request()
        .unwrap()
        .unwrap()
}

/// pm-1's phone with a registered key, synced.
async fn signed_phone(server: &TestServer) -> Phone {
    let mut phone = Phone::postman(server, "pm-1", "dev-1").await;
    let key = SoftwareKey::generate();
    assert_eq!(enroll_key(server, &phone.token, &key).await, 201);
    phone.store.set_signer(Arc::new(key));
    phone.sync(server).await;
    phone
}

#[tokio::test]
async fn keys_are_registered_once_per_device_and_the_servers_are_published() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let keys: Value = reqwest::get(format!("{}/.well-known/tournee-signing-keys", server.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let current = &keys["keys"][0];
        assert_eq!(current["current"], true, "{backend:?}: {keys}");
        assert_eq!(current["algorithm"], "ES256");
        let sec1 = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(current["public_key"].as_str().unwrap())
            .unwrap();
        assert_eq!(PublicKey::parse(&sec1).unwrap().id(), current["id"]);

        let token = server.token(TokenRole::Postman, "pm-1", Some("dev-1"));
        let key = SoftwareKey::generate();
        assert_eq!(enroll_key(&server, &token, &key).await, 201, "{backend:?}");
        assert_eq!(
            enroll_key(&server, &token, &key).await,
            200,
            "{backend:?}: the same key"
        );
        let other = SoftwareKey::generate();
        assert_eq!(
            enroll_key(&server, &token, &other).await,
            409,
            "{backend:?}: another key is not taken from the device's token"
        );
        let enroll = |body: Value, token: String| {
            let base = server.base.clone();
            async move {
                let answer = reqwest::Client::new()
                    .put(format!("{base}/v1/devices/signing-key"))
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                (
                    answer.status().as_u16(),
                    answer.json::<Value>().await.unwrap(),
                )
            }
        };
        let (status, refusal) =
            enroll(json!({ "public_key": "bm90IGEga2V5" }), token.clone()).await;
        assert_eq!(status, 422, "{backend:?}: {refusal}");
        assert_eq!(refusal["code"], "invalid_key");
        assert_eq!(refusal["field"], "public_key");
        let customer = server.token(TokenRole::Customer, "cust-1", None);
        let (status, _) = enroll(json!({ "public_key": "AAAA" }), customer).await;
        assert_eq!(status, 403, "{backend:?}: only a device registers its key");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_relief_postman_carries_another_phones_signed_attempts_which_are_stored_once() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let mut phone = signed_phone(&server).await;
        // The back office hands pm-1's round over to pm-2's phone too.
        let mut handed = phone.store.manifest().cloned().unwrap();
        handed.round_id = format!("{}-handover", handed.round_id);
        handed.postman = "pm-2".into();
        handed.device = "dev-2".into();
        server.state.db.insert_round(&handed).await.unwrap();
        let relief = server.token(TokenRole::Postman, "pm-2", Some("dev-2"));

        let attempts_before = server.state.db.count(Table::Attempts).await.unwrap();
        let recorded = phone
            .store
            .record_attempt(
                &fixtures::s10(1),
                &fixtures::absent_attempt("dev-1", "pm-1", 1),
            )
            .unwrap();
        // pm-1's phone goes flat; what it recorded reaches the server through pm-2's phone.
        let answer = post(&server, &relief, &next_request(&mut phone)).await;
        assert!(
            answer
                .docs
                .iter()
                .all(|d| !matches!(d.body, ResponseBody::Refused { .. })),
            "{backend:?}: {answer:?}"
        );
        assert_eq!(
            server.state.db.count(Table::Attempts).await.unwrap(),
            attempts_before + 1
        );
        let item: Value = get_json(
            &server.base,
            &server.token(TokenRole::BackOffice, "bo-1", None),
            &format!("/v1/backoffice/items/{}", fixtures::s10(1)),
        )
        .await;
        let attempt = item["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == recorded.id.as_str())
            .unwrap_or_else(|| panic!("{backend:?}: {item}"));
        assert_eq!(
            attempt["device"], "dev-1",
            "{backend:?}: authored by its recorder"
        );
        assert_eq!(
            attempt["signed_by"], "dev-1",
            "{backend:?}: and signed by it"
        );
        // The feed says so too.
        let feed: Value = get_json(
            &server.base,
            &server.token(TokenRole::Integration, "planning", None),
            "/v1/feed?limit=500",
        )
        .await;
        let recorded_event = feed["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| {
                e["type"] == "attempt.recorded"
                    && e["payload"]["attempt_id"] == recorded.id.as_str()
            })
            .unwrap_or_else(|| panic!("{backend:?}: no event for the attempt: {feed}"));
        assert_eq!(
            recorded_event["payload"]["signed_by"], "dev-1",
            "{backend:?}"
        );

        // pm-1's phone syncs later: acknowledged, stored once, nothing refused.
        let report = phone.sync(&server).await;
        assert!(
            report.refused.is_empty(),
            "{backend:?}: {:?}",
            report.refused
        );
        assert!(phone.store.pending_interactions().is_empty());
        assert_eq!(
            server.state.db.count(Table::Attempts).await.unwrap(),
            attempts_before + 1,
            "{backend:?}: stored once"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn a_forged_signature_or_an_unsigned_push_where_signatures_are_required_stores_nothing() {
    for backend in backends() {
        let server = TestServer::start_configured(
            &backend,
            |settings| settings.require_signatures = true,
            None,
        )
        .await;
        let mut phone = signed_phone(&server).await;
        let item = DocId::item(&fixtures::s10(1));
        let attempts = server.state.db.count(Table::Attempts).await.unwrap();
        let changes = server.state.db.count(Table::Changes).await.unwrap();
        phone
            .store
            .record_attempt(
                &fixtures::s10(1),
                &fixtures::absent_attempt("dev-1", "pm-1", 1),
            )
            .unwrap();
        let honest = next_request(&mut phone);
        let refused = |answer: &SyncResponse| {
            answer.docs.iter().find_map(|d| match &d.body {
                ResponseBody::Refused { code, .. } if d.doc == item => Some(*code),
                _ => None,
            })
        };
        let mut forged = honest.clone();
        let mut stripped = honest.clone();
        for (request, tamper) in [(&mut forged, true), (&mut stripped, false)] {
            for entry in &mut request.docs {
                if let RequestBody::Push { signatures, .. } = &mut entry.body {
                    if tamper {
                        for s in signatures.iter_mut() {
                            let last = s.signature.len() - 1;
                            s.signature[last] ^= 1;
                        }
                    } else {
                        signatures.clear();
                    }
                }
            }
        }
        for (what, request) in [("forged", forged), ("unsigned", stripped)] {
            let answer = post(&server, &phone.token, &request).await;
            assert_eq!(
                refused(&answer),
                Some(RefusalCode::Signature),
                "{backend:?}: {what}: {answer:?}"
            );
            assert_eq!(
                server.state.db.count(Table::Attempts).await.unwrap(),
                attempts
            );
            assert_eq!(
                server.state.db.count(Table::Changes).await.unwrap(),
                changes,
                "{backend:?}: {what}: nothing stored"
            );
        }
        // The honest push is accepted.
        let report = phone.sync(&server).await;
        assert!(
            report.refused.is_empty(),
            "{backend:?}: {:?}",
            report.refused
        );
        assert_eq!(
            server.state.db.count(Table::Attempts).await.unwrap(),
            attempts + 1
        );
        server.stop().await;
    }
}
