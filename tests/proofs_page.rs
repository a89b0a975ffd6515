//! The proofs of delivery on the back-office page (issue #16), on every backend: pm-1's phone
//! records a delivery with a photo and a signature (and a second photo it never uploads),
//! uploads them after the sync; cust-1 disputes it; a reviewer in headless Chromium
//! (`tests/browser/proofs.test.mjs`) sees both images beside the attempt and the missing one
//! said so, and rejects the dispute with them in view. Screenshots are saved (SQLite run) to
//! `TOURNEE_SCREENSHOTS`, or else under the target's temporary directory (`proofs-page/`).

#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;

use serde_json::Value;
use tournee_e2e::{
    backends, dispute_as_cust_1, get_json, install_browser, run_browser_script, Backend, Phone,
    TestServer,
};
use tournee_server::auth::TokenRole;
use tournee_sync_core::fixtures;
use tournee_sync_core::model::ProofKind;

/// A photo the browser can decode and a reviewer can see: a parcel on a doorstep (240 × 160).
fn photo() -> Vec<u8> {
    tournee_e2e::png(240, 160, |x, y| {
        let parcel = (80..170).contains(&x) && (50..130).contains(&y);
        let tape = parcel && (120..130).contains(&x);
        match (tape, parcel, y > 120) {
            (true, _, _) => [230, 220, 180],
            (false, true, _) => [170, 120, 70],
            (false, false, true) => [120, 120, 125],
            (false, false, false) => [210, 200, 190],
        }
    })
}

const SIGNATURE: &[u8] = br##"<svg xmlns="http://www.w3.org/2000/svg" width="240" height="80" viewBox="0 0 120 40"><path d="M4 30 C30 2, 50 38, 116 8" stroke="#000" stroke-width="2" fill="none"/></svg>"##;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_sees_the_photo_and_signature_beside_a_disputed_attempt() {
    tokio::task::spawn_blocking(install_browser).await.unwrap();
    let screenshots = std::env::var("TOURNEE_SCREENSHOTS").unwrap_or_else(|_| {
        Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("proofs-page")
            .display()
            .to_string()
    });
    std::fs::create_dir_all(&screenshots).unwrap();
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let mut phone = Phone::postman(&server, "pm-1", "dev-1").await;
        phone.sync(&server).await;
        let mut attempt = fixtures::delivered_attempt("dev-1", "pm-1", 1);
        attempt.proofs = vec![
            phone.store.queue_proof(ProofKind::Photo, &photo()).unwrap(),
            phone
                .store
                .queue_proof(ProofKind::Signature, SIGNATURE)
                .unwrap(),
            phone
                .store
                .queue_proof(ProofKind::Photo, &[0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3])
                .unwrap(),
        ];
        let recorded = phone
            .store
            .record_attempt(&fixtures::s10(1), &attempt)
            .unwrap();
        phone.sync(&server).await;
        for proof in &attempt.proofs[..2] {
            let upload = phone.store.proof_upload(&proof.sha256).unwrap();
            let answer = reqwest::Client::new()
                .put(format!("{}{}", server.base, upload.path))
                .bearer_auth(&phone.token)
                .body(upload.body)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 201, "{backend:?}");
        }
        let dispute = dispute_as_cust_1(&server, &recorded.id, "Nobody rang; I was at home.").await;

        let staff = server.token(TokenRole::BackOffice, "bo-1", None);
        let mut env = vec![
            ("TOURNEE_BASE", server.base.clone()),
            ("TOURNEE_TOKEN", staff.clone()),
            ("TOURNEE_DISPUTE_ENTRY", dispute["queue_id"].to_string()),
            ("TOURNEE_PHOTO", attempt.proofs[0].sha256.clone()),
            ("TOURNEE_SIGNATURE", attempt.proofs[1].sha256.clone()),
            ("TOURNEE_MISSING", attempt.proofs[2].sha256.clone()),
        ];
        if matches!(backend, Backend::Sqlite) {
            env.push(("TOURNEE_SCREENSHOTS", screenshots.clone()));
        }
        let result = run_browser_script("proofs.test.mjs", env).await;
        assert_eq!(result["ok"], true, "{backend:?}: {result}");
        let decided: Value = get_json(
            &server.base,
            &staff,
            &format!("/v1/backoffice/queue/{}", dispute["queue_id"]),
        )
        .await;
        assert_eq!(decided["status"], "rejected", "{decided}");
        server.stop().await;
    }
    eprintln!("screenshots of the proofs on the back-office page: {screenshots}");
}
