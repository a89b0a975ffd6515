//! The public tracking page, end to end, on every backend: after a postman's phone synced an
//! absence with a notice, a customer without an account tracks the item in headless Chromium
//! (`tests/browser/track.test.mjs`) in French and English, at 1280 px and 390 px wide, by its
//! number and by the notice card, and chooses a pickup point; the phone's next sync brings that
//! choice. Screenshots are saved (SQLite run) to `TOURNEE_SCREENSHOTS`, or else under the
//! target's temporary directory (`tracking-page/`).

#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;

use serde_json::Value;
use tournee_e2e::{
    backends, install_browser, local_day, run_browser_script, Backend, Phone, TestServer,
};
use tournee_sync_core::model::Choice;
use tournee_sync_core::{fixtures, operations, DocId};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_tracks_and_reschedules_in_the_browser_and_the_phone_receives_it() {
    tokio::task::spawn_blocking(install_browser).await.unwrap();
    let screenshots = std::env::var("TOURNEE_SCREENSHOTS").unwrap_or_else(|_| {
        Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("tracking-page")
            .display()
            .to_string()
    });
    std::fs::create_dir_all(&screenshots).unwrap();

    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let mut phone = Phone::postman(&server, "pm-1", "dev-1").await;
        phone.sync(&server).await;
        let s10 = fixtures::s10(1);
        let mut absence = fixtures::absent_attempt("dev-1", "pm-1", 1);
        absence.recorded_at_ms = jiff::Timestamp::now().as_millisecond();
        if let Some(place) = absence.notice.as_mut().and_then(|n| n.waits_at.as_mut()) {
            place.until = Some(local_day(10));
        }
        phone.store.record_attempt(&s10, &absence).unwrap();
        phone.sync(&server).await;

        let mut env = vec![
            ("TOURNEE_BASE", server.base.clone()),
            ("TOURNEE_S10", s10.to_string()),
            ("TOURNEE_NOTICE", "AV00000001".to_string()),
            ("TOURNEE_POSTCODE", "75011".to_string()),
        ];
        if matches!(backend, Backend::Sqlite) {
            env.push(("TOURNEE_SCREENSHOTS", screenshots.clone()));
        }
        let result = run_browser_script("track.test.mjs", env).await;
        assert_eq!(result["ok"], true, "{result}");
        assert_eq!(result["offOrigin"], Value::Array(vec![]), "{result}");

        // The choice made on the page is in the item's document on the phone.
        let report = phone.sync(&server).await;
        let id = DocId::item(&s10);
        assert!(report.changed_documents.contains(&id), "{report:?}");
        let doc = operations::read_item(phone.store.document(&id).unwrap()).unwrap();
        let (choice_id, choice) = doc.current_choice().unwrap();
        assert_eq!(choice_id, result["choiceId"].as_str().unwrap());
        assert_eq!(
            choice.choice,
            Choice::PickupPoint {
                pickup_point: "pp-paris-11-03".into()
            }
        );
        assert_eq!(choice.made_by, "notice.AV00000001");
        server.stop().await;
    }
    eprintln!("screenshots of the tracking page: {screenshots}");
}
