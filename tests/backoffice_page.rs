//! The back-office page, end to end, on every backend: a postman's phone syncs a proposed
//! correction and an attempt far from the pin; a reviewer works the queue in headless Chromium
//! (`tests/browser/backoffice.test.mjs`, playwright-core driving Debian's `chromium`) and approves
//! the correction; the phone's next sync brings the new reference address.
//!
//! `tests/browser/install.sh` installs Chromium and playwright-core when they are missing, so the
//! README's test command works on a fresh machine.

#![allow(clippy::unwrap_used, missing_docs)]

use std::process::Command;

use serde_json::Value;
use tournee_e2e::{backends, browser_dir, get_json, install_browser, Phone, TestServer};
use tournee_server::auth::TokenRole;
use tournee_sync_core::model::{GeoPoint, ReviewDecision};
use tournee_sync_core::{fixtures, operations, DocId};

async fn open_entry(server: &TestServer, token: &str, kind: &str) -> Value {
    let entries: Vec<Value> = get_json(
        &server.base,
        token,
        &format!("/v1/backoffice/queue?kind={kind}"),
    )
    .await;
    assert_eq!(entries.len(), 1, "one open {kind}: {entries:?}");
    entries.into_iter().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_approves_a_correction_in_the_browser_and_the_phone_receives_it() {
    tokio::task::spawn_blocking(install_browser).await.unwrap();
    let screenshots = std::env::var("TOURNEE_SCREENSHOTS").ok();

    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let mut phone = Phone::postman(&server, "pm-1", "dev-1").await;
        phone.sync(&server).await;

        // At the doors: a delivery about 330 m north of the pin, and a correction of point 1
        // that also moves its pin.
        let s10 = fixtures::s10(4);
        let mut far = fixtures::delivered_attempt("dev-1", "pm-1", 4);
        far.position.as_mut().unwrap().lat += 0.003;
        phone.store.record_attempt(&s10, &far).unwrap();
        let point = fixtures::delivery_point_id(1);
        let pin = fixtures::reference_address(1).pin.unwrap();
        let mut correction = fixtures::number_correction("dev-1", "pm-1");
        correction.proposed.pin = Some(GeoPoint {
            lat: pin.lat + 0.0002,
            lon: pin.lon - 0.0003,
        });
        let proposed = phone.store.propose_correction(&point, &correction).unwrap();
        let report = phone.sync(&server).await;
        assert_eq!(report.acknowledged.len(), 2, "{backend:?}: {report:?}");

        let staff = server.token(TokenRole::BackOffice, "bo-1", None);
        let correction_entry = open_entry(&server, &staff, "correction").await;
        assert_eq!(correction_entry["subject_id"], proposed.id.as_str());
        let attempt_entry = open_entry(&server, &staff, "attempt").await;

        let mut node = Command::new("node");
        node.arg("backoffice.test.mjs")
            .current_dir(browser_dir())
            .env("TOURNEE_BASE", &server.base)
            .env("TOURNEE_TOKEN", &staff)
            .env(
                "TOURNEE_CORRECTION_ENTRY",
                correction_entry["id"].to_string(),
            )
            .env("TOURNEE_ATTEMPT_ENTRY", attempt_entry["id"].to_string())
            .env("TOURNEE_S10", s10.as_str());
        if let Some(dir) = &screenshots {
            node.env("TOURNEE_SCREENSHOTS", dir);
        }
        let output = tokio::task::spawn_blocking(move || node.output().expect("node runs"))
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{backend:?}: the browser test failed\nstdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let result: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        assert_eq!(result["ok"], true, "{result}");
        assert_eq!(result["offOrigin"], Value::Array(vec![]), "{result}");

        // The decision the page made is the server's: recorded, and by the signed-in reviewer.
        let decided: Value = get_json(
            &server.base,
            &staff,
            &format!("/v1/backoffice/queue/{}", correction_entry["id"]),
        )
        .await;
        assert_eq!(decided["status"], "approved", "{decided}");
        assert_eq!(decided["decided_by"], "bo-1");
        assert_eq!(decided["auto"], false);

        // Delivered is final, though the device's clock put the delivery before the download.
        let timeline: Value = get_json(
            &server.base,
            &staff,
            &format!("/v1/backoffice/items/{}", s10.as_str()),
        )
        .await;
        assert_eq!(timeline["item"]["status"], "delivered", "{timeline}");

        // The phone's next sync brings the new reference data and the review.
        let report = phone.sync(&server).await;
        let doc = DocId::delivery_point(&point).unwrap();
        assert!(
            report.changed_documents.contains(&doc),
            "{backend:?}: {report:?}"
        );
        let after = operations::read_delivery_point(phone.store.document(&doc).unwrap()).unwrap();
        assert_eq!(after.reference.house_number, "35", "{backend:?}");
        assert_eq!(after.reference.pin, correction.proposed.pin);
        assert_eq!(after.access.door_code.as_deref(), Some("4512A"));
        let review = &after.reviews[&proposed.id];
        assert_eq!(review.by, "bo-1");
        assert_eq!(review.decision, ReviewDecision::Approved);
        assert_eq!(review.reason, "Checked on the cadastre: number 35.");

        server.stop().await;
    }
}
