//! Proofs of delivery (issue #16), on each database and each proof store (a directory, and a
//! bucket of an S3-compatible server, moto's): a phone queues a photo and a signature, records
//! the attempt that names them, syncs, and uploads them; every refusal (a wrong hash, a hash no
//! attempt names, another device's proof, an oversized file, a file that is no image) stores
//! nothing; the back office sees the proofs beside the flagged and the disputed attempt and
//! reads their bytes; the scheduled purge deletes the files past `--proof-retention-days`,
//! and the attempt keeps its hashes.

#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tournee_e2e::{
    backends, dispute_as_cust_1, get_json, keep_proofs_in, proof_stores, ObjectStoreServer, Phone,
    TestServer,
};
use tournee_server::auth::TokenRole;
use tournee_server::clock::Clock;
use tournee_sync_core::fixtures;
use tournee_sync_core::model::{Position, ProofKind};
use tournee_sync_core::store::{proof_hash, ProofAnswer, ProofState};

/// The largest proof the tests' servers take.
const MAX: usize = 64 * 1024;

/// A JPEG's first bytes, then `n` bytes that differ with `seed`.
fn jpeg(seed: u8, n: usize) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend((0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    bytes
}

const SIGNATURE: &[u8] = br#"<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 40"><path d="M5 30 C20 5, 40 35, 95 10" stroke="black" fill="none"/></svg>"#;

/// `PUT /v1/proofs/{sha256}` with `bytes`: the status and the body as JSON.
async fn put(
    server: &TestServer,
    token: &str,
    sha256: &str,
    bytes: Vec<u8>,
    content_type: &str,
) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .put(format!("{}/v1/proofs/{sha256}", server.base))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(server: &TestServer, token: &str, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}{path}", server.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// What the server holds: the files in its store and the proofs its database says are stored.
async fn held(server: &TestServer) -> (Vec<String>, Vec<String>) {
    let mut files = server.state.proofs.list().await.unwrap();
    files.sort();
    let mut recorded = Vec::new();
    for sha in &files {
        if server.state.db.stored_proof(sha).await.unwrap().is_some() {
            recorded.push(sha.clone());
        }
    }
    (files, recorded)
}

/// The phone's own `PUT` of `bytes` as a JPEG under `sha256`.
async fn put_jpeg(
    server: &TestServer,
    phone: &Phone,
    sha256: &str,
    bytes: &[u8],
) -> (StatusCode, Value) {
    put(server, &phone.token, sha256, bytes.to_vec(), "image/jpeg").await
}

fn refused(answer: &(StatusCode, Value), status: StatusCode, code: &str, field: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["code"], code, "{}", answer.1);
    assert_eq!(answer.1["field"], field, "{}", answer.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_are_uploaded_refused_seen_and_purged_on_each_database_and_store() {
    let s3 = ObjectStoreServer::start();
    for backend in backends() {
        for (store_name, store) in proof_stores(&s3).await {
            let what = format!("{backend:?} with a {store_name} store");
            let zone = tournee_server::clock::time_zone("Europe/Paris").unwrap();
            let clock = Clock::manual(jiff::Timestamp::now(), zone);
            let server = TestServer::start_configured(
                &backend,
                |s| {
                    keep_proofs_in(s, store, MAX);
                    s.proofs.retention_days = 1;
                    s.retention_check_secs = 1;
                },
                Some(clock.clone()),
            )
            .await;
            let kept_in = server.state.proofs.describe();
            assert!(
                kept_in.starts_with(if store_name == "s3" {
                    "s3://"
                } else {
                    "directory"
                }),
                "{what}: {kept_in}"
            );
            assert!(held(&server).await.0.is_empty(), "{what}: an empty store");
            let mut phone = Phone::postman(&server, "pm-1", "dev-1").await;
            phone.sync(&server).await;

            // At the door: a photo and a signature, plus files that will be refused.
            let photo = jpeg(1, 20_000);
            let oversized = jpeg(2, MAX + 1);
            let not_an_image = b"%PDF-1.7 a delivery slip".to_vec();
            let never_sent = jpeg(3, 500);
            let store = &mut phone.store;
            let proofs = vec![
                store.queue_proof(ProofKind::Photo, &photo).unwrap(),
                store.queue_proof(ProofKind::Signature, SIGNATURE).unwrap(),
                store.queue_proof(ProofKind::Photo, &oversized).unwrap(),
                store.queue_proof(ProofKind::Photo, &not_an_image).unwrap(),
                store.queue_proof(ProofKind::Photo, &never_sent).unwrap(),
            ];
            let hashes: Vec<String> = proofs.iter().map(|p| p.sha256.clone()).collect();
            let [photo_sha, signature_sha, oversized_sha, pdf_sha, never_sha]: [String; 5] =
                hashes.try_into().unwrap();
            assert_eq!(photo_sha, proof_hash(&photo));
            let queued = store.queued_proofs().unwrap();
            assert!(
                queued.iter().all(|q| q.state == ProofState::Unreferenced),
                "{what}: {queued:?}"
            );
            // Recorded 2 km from the pin, so the back office gets it flagged.
            let mut attempt = fixtures::absent_attempt("dev-1", "pm-1", 1);
            let pin = attempt.position.clone().unwrap();
            attempt.position = Some(Position {
                lat: pin.lat + 0.02,
                ..pin
            });
            attempt.proofs = proofs;
            let recorded = store.record_attempt(&fixtures::s10(1), &attempt).unwrap();
            let queued = store.queued_proofs().unwrap();
            assert!(
                queued.iter().all(|q| q.state == ProofState::WaitingForSync),
                "{what}: {queued:?}"
            );
            // Before the attempt syncs, the server knows of no attempt naming the photo.
            refused(
                &put_jpeg(&server, &phone, &photo_sha, &photo).await,
                StatusCode::UNPROCESSABLE_ENTITY,
                "proof_not_referenced",
                "sha256",
            );
            phone.sync(&server).await;
            let queued = phone.store.queued_proofs().unwrap();
            assert_eq!(queued.len(), 5, "{what}");
            assert!(
                queued.iter().all(|q| q.state == ProofState::Ready),
                "{what}: {queued:?}"
            );

            // Refusals, each storing nothing.
            let other = server.token(TokenRole::Postman, "pm-2", Some("dev-2"));
            refused(
                &put(&server, &other, &photo_sha, photo.clone(), "image/jpeg").await,
                StatusCode::UNPROCESSABLE_ENTITY,
                "proof_not_referenced",
                "sha256",
            );
            refused(
                &put(
                    &server,
                    &phone.token,
                    &photo_sha,
                    never_sent.clone(),
                    "image/jpeg",
                )
                .await,
                StatusCode::UNPROCESSABLE_ENTITY,
                "proof_hash_mismatch",
                "body",
            );
            let stranger = jpeg(9, 100);
            refused(
                &put(
                    &server,
                    &phone.token,
                    &proof_hash(&stranger),
                    stranger,
                    "image/jpeg",
                )
                .await,
                StatusCode::UNPROCESSABLE_ENTITY,
                "proof_not_referenced",
                "sha256",
            );
            refused(
                &put(
                    &server,
                    &phone.token,
                    &photo_sha.to_uppercase(),
                    photo.clone(),
                    "image/jpeg",
                )
                .await,
                StatusCode::BAD_REQUEST,
                "invalid_sha256",
                "sha256",
            );
            refused(
                &put(
                    &server,
                    &phone.token,
                    &photo_sha,
                    photo.clone(),
                    "text/plain",
                )
                .await,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Content-Type",
            );
            // Through the phone's queue: the oversized file and the PDF are refused for good
            // and set aside; the photo and the signature are stored.
            let mut answers = Vec::new();
            for sha in [&oversized_sha, &pdf_sha, &photo_sha, &signature_sha] {
                let upload = phone.store.proof_upload(sha).unwrap();
                assert_eq!(upload.method, "PUT");
                let response = reqwest::Client::new()
                    .put(format!("{}{}", server.base, upload.path))
                    .bearer_auth(&phone.token)
                    .header("content-type", &upload.content_type)
                    .body(upload.body)
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                let body = response.bytes().await.unwrap();
                answers.push((
                    status,
                    phone.store.apply_proof_answer(sha, status, &body).unwrap(),
                ));
            }
            let code = |i: usize| match &answers[i].1 {
                ProofAnswer::Refused { code, .. } => (answers[i].0, code.clone()),
                other => panic!("{what}: {other:?}"),
            };
            assert_eq!(code(0), (413, "proof_too_large".into()), "{what}");
            assert_eq!(code(1), (415, "unsupported_proof_type".into()), "{what}");
            assert_eq!(answers[2], (201, ProofAnswer::Stored), "{what}");
            assert_eq!(answers[3], (201, ProofAnswer::Stored), "{what}");
            let left: Vec<String> = phone
                .store
                .queued_proofs()
                .unwrap()
                .into_iter()
                .map(|q| q.proof.sha256)
                .collect();
            assert_eq!(
                left,
                vec![never_sha.clone()],
                "{what}: only the unsent one stays"
            );
            let mut expected = vec![photo_sha.clone(), signature_sha.clone()];
            expected.sort();
            assert_eq!(
                held(&server).await,
                (expected.clone(), expected.clone()),
                "{what}"
            );
            // The same file again: held already, nothing new.
            let again = put(
                &server,
                &phone.token,
                &photo_sha,
                photo.clone(),
                "application/octet-stream",
            )
            .await;
            assert_eq!(again.0, StatusCode::OK, "{what}: {}", again.1);
            assert_eq!(again.1["content_type"], "image/jpeg");
            assert_eq!(again.1["kind"], "photo");
            assert_eq!(held(&server).await.0, expected, "{what}");

            // The back office: the flagged attempt and the customer's dispute show the proofs,
            // with a URL for those uploaded.
            let staff = server.token(TokenRole::BackOffice, "bo-1", None);
            let queue: Value =
                get_json(&server.base, &staff, "/v1/backoffice/queue?kind=attempt").await;
            let dispute = dispute_as_cust_1(&server, &recorded.id, "I was at home all day").await;
            let disputed: Value = get_json(
                &server.base,
                &staff,
                &format!("/v1/backoffice/queue/{}", dispute["queue_id"]),
            )
            .await;
            let flagged = queue
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["subject_id"] == recorded.id.as_str())
                .unwrap_or_else(|| panic!("{what}: the attempt is flagged: {queue}"))
                .clone();
            let url_of = |entry: &Value, sha: &str| -> Value {
                entry["attempt"]["proofs"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{what}: {entry}"))
                    .iter()
                    .find(|p| p["sha256"] == sha)
                    .unwrap_or_else(|| panic!("{what}: {sha} in {entry}"))["url"]
                    .clone()
            };
            for entry in [&flagged, &disputed] {
                assert_eq!(entry["attempt"]["proofs"].as_array().unwrap().len(), 5);
                assert_eq!(
                    url_of(entry, &photo_sha),
                    json!(format!("/v1/backoffice/proofs/{photo_sha}"))
                );
                assert_eq!(
                    url_of(entry, &signature_sha),
                    json!(format!("/v1/backoffice/proofs/{signature_sha}"))
                );
                for sha in [&oversized_sha, &pdf_sha, &never_sha] {
                    assert_eq!(url_of(entry, sha), Value::Null, "{what}: {entry}");
                }
            }
            assert_eq!(disputed["kind"], "dispute");
            for (sha, bytes, media) in [
                (&photo_sha, photo.as_slice(), "image/jpeg"),
                (&signature_sha, SIGNATURE, "image/svg+xml"),
            ] {
                let file = get(&server, &staff, &format!("/v1/backoffice/proofs/{sha}")).await;
                assert_eq!(file.status(), StatusCode::OK, "{what}");
                assert_eq!(file.headers()["content-type"], media);
                assert_eq!(file.headers()["x-content-type-options"], "nosniff");
                assert_eq!(&file.bytes().await.unwrap()[..], bytes, "{what}");
            }
            let missing = get(
                &server,
                &staff,
                &format!("/v1/backoffice/proofs/{never_sha}"),
            )
            .await;
            assert_eq!(missing.status(), StatusCode::NOT_FOUND);
            let body: Value = missing.json().await.unwrap();
            assert_eq!(body["code"], "proof_not_found");

            // Two days later the scheduled purge has deleted the files; the attempt keeps the
            // hashes, the back office says there is no file, and the phone's file is not
            // taken again.
            clock.set(jiff::Timestamp::now() + jiff::SignedDuration::from_hours(48));
            // Each file is deleted, then its row marked: wait for the rows.
            let mut waited = 0;
            while !server
                .state
                .db
                .stored_proofs(&[&photo_sha, &signature_sha])
                .await
                .unwrap()
                .is_empty()
            {
                assert!(
                    waited < 100,
                    "{what}: the proofs were not purged within 10 s"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
                waited += 1;
            }
            assert!(
                held(&server).await.0.is_empty(),
                "{what}: the files are gone"
            );
            for sha in [&photo_sha, &signature_sha] {
                let row = server.state.db.stored_proof(sha).await.unwrap().unwrap();
                assert!(row.purged_ms.is_some(), "{what}: {row:?}");
            }
            let entry: Value = get_json(
                &server.base,
                &staff,
                &format!("/v1/backoffice/queue/{}", dispute["queue_id"]),
            )
            .await;
            assert_eq!(entry["attempt"]["proofs"].as_array().unwrap().len(), 5);
            assert_eq!(url_of(&entry, &photo_sha), Value::Null, "{what}: {entry}");
            let rows = server
                .state
                .db
                .attempts_for_item(fixtures::s10(1).as_str())
                .await
                .unwrap();
            let row = rows.iter().find(|r| r.id == recorded.id).unwrap();
            assert!(
                row.record.contains(&photo_sha),
                "{what}: the attempt keeps its hash"
            );
            let gone = get(
                &server,
                &staff,
                &format!("/v1/backoffice/proofs/{photo_sha}"),
            )
            .await;
            assert_eq!(gone.status(), StatusCode::GONE);
            refused(
                &put_jpeg(&server, &phone, &photo_sha, &photo).await,
                StatusCode::GONE,
                "proof_expired",
                "sha256",
            );
            assert!(held(&server).await.0.is_empty(), "{what}");
            server.stop().await;
        }
    }
}
