//! The async calls and the background sync helper of the mobile bindings as an app uses them
//! (issue #17): the Python suite `mobile-ffi/tests/python/test_background_sync.py` (asyncio)
//! downloads a round without blocking its event loop and syncs through a transport that fails
//! as networks do, against a real server on each backend; this side then finds every attempt
//! and photo the helper uploaded exactly once in the server's database.

use tournee_e2e::{backends, python_bindings_in, run_python_suite, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_sync_uploads_everything_once_through_failures() {
    let out = tempfile::tempdir().unwrap();
    let bindings = python_bindings_in(out.path()).await;
    for backend in backends() {
        let name = backend.name();
        let server = TestServer::start(&backend).await;
        let results = out.path().join(format!("background-{name}.json"));
        let uploaded =
            run_python_suite(&bindings, "test_background_sync", &server, &results, &[]).await;
        let db = &server.state.db;
        let attempts = uploaded["attempts"].as_array().unwrap();
        assert_eq!(
            attempts.len(),
            3,
            "{name}: the suite's attempts: {attempts:?}"
        );
        for pair in attempts {
            let (item, id) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
            // Each item got one attempt from the suite: a retry stored twice, or recorded
            // again under another id, would show as a second row.
            let rows = db.attempts_for_item(item).await.unwrap();
            let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
            assert_eq!(ids, [id], "{name}: the attempts stored on {item}");
        }
        for sha in uploaded["proofs"].as_array().unwrap() {
            let sha = sha.as_str().unwrap();
            let row = db.stored_proof(sha).await.unwrap();
            assert!(
                row.is_some_and(|r| r.device == "dev-1"),
                "{name}: photo {sha} is not stored"
            );
            assert!(
                server
                    .state
                    .proofs
                    .list()
                    .await
                    .unwrap()
                    .iter()
                    .any(|s| s == sha),
                "{name}: photo {sha} is not in the proof store"
            );
        }
        server.stop().await;
    }
}
