//! The mobile bindings as the app uses them: `mobile-ffi/generate-bindings.sh` generates the
//! Kotlin, Swift and Python bindings from the built library, and the Python suite
//! (`mobile-ffi/tests/python`) works a round through them against a real server on each backend.
//! This side then finds what the suite recorded in the server's database.

use std::path::{Path, PathBuf};

use tournee_e2e::{
    backends, generate_python_bindings, keep_proofs_in, proof_stores, python_bindings_in,
    run_python_suite, ObjectStoreServer, Receiver, TestServer,
};
use tournee_server::auth::TokenRole;

/// Runs the documented command (`generate_python_bindings`) and checks it produced every
/// language's files.
fn generate_bindings(out: &Path) -> PathBuf {
    let python = generate_python_bindings(out);
    for (file, declares) in [
        (
            "kotlin/org/tournee/field/tournee_mobile_ffi.kt",
            "class FieldStore",
        ),
        ("swift/TourneeField.swift", "class FieldStore"),
        ("swift/TourneeFieldFFI.h", "fieldstore_open"),
        ("swift/TourneeFieldFFI.modulemap", "TourneeFieldFFI"),
        ("python/tournee_mobile_ffi.py", "class FieldStore"),
    ] {
        let path = out.join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} was not generated: {e}", path.display()));
        assert!(
            text.contains(declares),
            "{} does not contain {declares}",
            path.display()
        );
    }
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_bindings_work_a_round_against_a_real_server() {
    let out = tempfile::tempdir().unwrap();
    let bindings = tokio::task::spawn_blocking({
        let out = out.path().to_owned();
        move || generate_bindings(&out)
    })
    .await
    .unwrap();
    for backend in backends() {
        let name = backend.name();
        let server = TestServer::start(&backend).await;
        let results = out.path().join(format!("results-{name}.json"));
        let customer = server.token(TokenRole::Customer, "cust-1", None);
        let recorded = run_python_suite(
            &bindings,
            "test_field_store",
            &server,
            &results,
            &[("TOURNEE_CUSTOMER_TOKEN", customer)],
        )
        .await;
        let db = &server.state.db;
        let attempts = recorded["attempts"].as_array().unwrap();
        assert!(!attempts.is_empty(), "the suite recorded attempts");
        for pair in attempts {
            let (item, id) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
            let rows = db.attempts_for_item(item).await.unwrap();
            let row = rows
                .iter()
                .find(|r| r.id == id)
                .unwrap_or_else(|| panic!("attempt {id} on {item} is not in the {name} database"));
            assert_eq!(row.outcome, "addressee_absent");
            assert_eq!(row.device, "dev-1");
        }
        for pair in recorded["corrections"].as_array().unwrap() {
            let id = pair[1].as_str().unwrap();
            assert_eq!(
                db.correction_status(id).await.unwrap().map(|s| s.as_str()),
                Some("pending"),
                "correction {id} waits for review in the {name} database"
            );
        }
        for pair in recorded["choices"].as_array().unwrap() {
            let (item, id) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
            let rows = db.choices_for_item(item).await.unwrap();
            assert!(
                rows.iter().any(|r| r.id == id),
                "choice {id} on {item} is not in the {name} database"
            );
        }

        // The integration boundary end to end: a town imported over the API, its first round
        // worked through the bindings, its facts read back from the feed and delivered to a
        // partner's webhook receiver, which verifies every signature.
        let receiver = Receiver::start(&[]);
        let integration = server.token(TokenRole::Integration, "planning", None);
        let subscribed: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/v1/webhooks", server.base))
            .bearer_auth(&integration)
            .json(&serde_json::json!({ "url": receiver.url }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        receiver.give_secret(subscribed["secret"].as_str().unwrap());
        let results = out.path().join(format!("imported-{name}.json"));
        let env = [
            (
                "TOURNEE_INTEGRATION_TOKEN",
                server.token(TokenRole::Integration, "planning", None),
            ),
            (
                "TOURNEE_TOWN_POSTMAN_TOKEN",
                server.token(TokenRole::Postman, "pm-flow-0", Some("dev-flow-0")),
            ),
        ];
        let seen =
            run_python_suite(&bindings, "test_imported_round", &server, &results, &env).await;
        let (item, attempt) = (
            seen["delivered"][0].as_str().unwrap(),
            seen["delivered"][1].as_str().unwrap(),
        );
        let rows = db.attempts_for_item(item).await.unwrap();
        assert!(
            rows.iter()
                .any(|r| r.id == attempt && r.device == "dev-flow-0"),
            "{rows:?}"
        );
        let in_feed: std::collections::HashSet<&str> = seen["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let acknowledged = receiver.acknowledged();
            let delivered: std::collections::HashSet<&str> = acknowledged
                .iter()
                .filter_map(|r| r["id"].as_str())
                .collect();
            let missing: Vec<&&str> = in_feed
                .iter()
                .filter(|id| !delivered.contains(**id))
                .collect();
            if missing.is_empty() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} events of the feed never reached the receiver on {name}: {missing:?}",
                missing.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        server.stop().await;
    }
}

/// Proofs of delivery through the bindings (`mobile-ffi/tests/python/test_proofs.py`), on each
/// database and each proof store: a directory, and a bucket of an S3-compatible server (moto).
/// The suite queues a photo and a signature, dies, uploads them from a new process after the
/// attempt synced, and meets the refusals; this side finds exactly the two files in the store
/// and the database, and nothing of what was refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_go_through_the_python_bindings_to_both_stores() {
    const MAX: usize = 64 * 1024;
    let out = tempfile::tempdir().unwrap();
    let bindings = tokio::task::spawn_blocking({
        let out = out.path().to_owned();
        move || generate_bindings(&out)
    })
    .await
    .unwrap();
    let s3 = ObjectStoreServer::start();
    for backend in backends() {
        for (store_name, store) in proof_stores(&s3).await {
            let name = format!("{backend:?} with a {store_name} store");
            let server = TestServer::start_configured(
                &backend,
                |s| {
                    keep_proofs_in(s, store, MAX);
                },
                None,
            )
            .await;
            let results = out.path().join(format!("proofs-{store_name}.json"));
            let _ = std::fs::remove_file(&results);
            let env = [
                (
                    "TOURNEE_OTHER_POSTMAN_TOKEN",
                    server.token(TokenRole::Postman, "pm-2", Some("dev-2")),
                ),
                ("TOURNEE_PROOF_MAX_BYTES", MAX.to_string()),
            ];
            let seen = run_python_suite(&bindings, "test_proofs", &server, &results, &env).await;
            let hashes = |key: &str| -> Vec<String> {
                let mut all: Vec<String> = seen[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h.as_str().unwrap().to_string())
                    .collect();
                all.sort();
                all
            };
            assert_eq!(
                server.state.proofs.list().await.unwrap(),
                hashes("stored"),
                "{name}: the store holds the two files, nothing refused"
            );
            for sha in hashes("stored") {
                let row = server.state.db.stored_proof(&sha).await.unwrap();
                assert!(row.is_some_and(|r| r.device == "dev-1"), "{name}: {sha}");
            }
            for sha in hashes("refused") {
                assert_eq!(
                    server.state.db.stored_proof(&sha).await.unwrap(),
                    None,
                    "{name}"
                );
            }
            server.stop().await;
        }
    }
}

/// A relief postman's hand-over through the bindings (`mobile-ffi/tests/python/test_handover.py`)
/// on each database: pm-1's phone records two attempts and goes flat; its round goes to pm-2's
/// phone in one file, checked and taken over; pm-2's phone syncs them with its own token and
/// records one of its own; pm-1's phone syncs later. Each attempt is stored once, authored and
/// signed by the device that recorded it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_handed_over_through_the_python_bindings_is_stored_once_authored_by_its_recorder() {
    let out = tempfile::tempdir().unwrap();
    let bindings = python_bindings_in(out.path()).await;
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let db = &server.state.db;
        // The back office hands pm-1's round over to pm-2's device too.
        let today = server.state.clock.today().to_string();
        let mut round = db
            .rounds_for_device("dev-1", &today, &today)
            .await
            .unwrap()
            .into_iter()
            .next()
            .unwrap();
        round.round_id = format!("{}-handover", round.round_id);
        round.postman = "pm-2".into();
        round.device = "dev-2".into();
        db.insert_round(&round).await.unwrap();
        let name = backend.name();
        let results = out.path().join(format!("handover-{name}.json"));
        let env = [
            (
                "TOURNEE_RELIEF_TOKEN",
                server.token(TokenRole::Postman, "pm-2", Some("dev-2")),
            ),
            (
                "TOURNEE_CUSTOMER_TOKEN",
                server.token(TokenRole::Customer, "cust-1", None),
            ),
        ];
        let seen = run_python_suite(&bindings, "test_handover", &server, &results, &env).await;
        let handed = seen["handed_over"].as_array().unwrap();
        assert_eq!(handed.len(), 2);
        for (pair, device) in handed
            .iter()
            .map(|p| (p, "dev-1"))
            .chain(std::iter::once((&seen["relief"], "dev-2")))
        {
            let (item, id) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
            let rows = db.attempts_for_item(item).await.unwrap();
            let mine: Vec<_> = rows.iter().filter(|r| r.id == id).collect();
            assert_eq!(
                mine.len(),
                1,
                "{backend:?}: attempt {id} stored once: {rows:?}"
            );
            assert_eq!(mine[0].device, device, "{backend:?}");
            assert_eq!(mine[0].signed_by.as_deref(), Some(device), "{backend:?}");
        }
        server.stop().await;
    }
}
