//! The notice card end to end through the mobile bindings, on each backend: a phone driven by
//! the Python bindings leaves notice cards, the cards' holders choose by plain HTTP with the
//! card's number and the postcode, and the phone's next sync shows the allowed choice on the door
//! screen while the forbidden one got 422 and reached nobody
//! (`mobile-ffi/tests/python/test_notice_card.py`). This side then finds in the server's database
//! exactly the choices the suite saw accepted.

#![allow(clippy::unwrap_used, missing_docs)]

use tournee_e2e::{backends, python_bindings_in, run_python_suite, TestServer};

/// The `[item, choice id]` the suite recorded under `key`.
fn recorded_choice<'a>(recorded: &'a serde_json::Value, key: &str) -> (&'a str, &'a str) {
    let pair = &recorded[key];
    match (pair[0].as_str(), pair[1].as_str()) {
        (Some(item), Some(id)) => (item, id),
        _ => panic!("the suite recorded no {key} choice: {recorded}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_choice_from_the_notice_card_reaches_the_phone_through_the_python_bindings() {
    let out = tempfile::tempdir().unwrap();
    let bindings = python_bindings_in(out.path()).await;
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let results = out.path().join("notice-card.json");
        let recorded =
            run_python_suite(&bindings, "test_notice_card", &server, &results, &[]).await;
        let db = &server.state.db;

        // The item without a signature: the card's pickup point, and nothing else.
        let (item, id) = recorded_choice(&recorded, "pickup_point");
        let rows = db.choices_for_item(item).await.unwrap();
        assert_eq!(rows.len(), 1, "{backend:?}: {rows:?}");
        assert_eq!(rows[0].id, id);
        assert_eq!(rows[0].kind, "pickup_point");
        assert_eq!(rows[0].made_by, "notice.AVCARD0001");
        assert!(rows[0].applicable, "{rows:?}");

        // The item that needs a signature: the neighbour was refused and stored nowhere; only
        // the choice it allowed afterwards is.
        let (item, id) = recorded_choice(&recorded, "hold");
        let rows = db.choices_for_item(item).await.unwrap();
        assert_eq!(
            rows.iter()
                .map(|r| (r.id.as_str(), r.kind.as_str()))
                .collect::<Vec<_>>(),
            [(id, "hold")],
            "{backend:?}"
        );
        server.stop().await;
    }
}
