//! schemathesis, the OpenAPI fuzzer, against a real server on every backend: every JSON route of
//! each audience with `--checks all` (well-formed requests accepted, malformed ones refused,
//! documented statuses, content types and schemas, authentication not ignored), with the demo's
//! real ids in the paths. Any failure fails the build.
//!
//! schemathesis comes from PyPI (`.ci/run` installs the version in `tests/requirements.txt`);
//! set `SCHEMATHESIS` to use another executable, `SCHEMATHESIS_EXAMPLES` for a longer run.

#![allow(clippy::unwrap_used, missing_docs)]

use std::process::Command;

use tournee_e2e::{backends, TestServer};
use tournee_server::auth::TokenRole;
use tournee_sync_core::fixtures;

/// The demo's real ids, so that positive cases reach the rules rather than 404. The one rule no
/// schema can say: a redelivery date must lie between today and the end of the holding period,
/// and a neighbour or safe place is refused for an item that needs a signature; those are 422
/// with their reason, which the choice route documents. The public choice routes add a pickup point
/// the network must have (422), and the postcode that makes the item known (404 otherwise). A
/// proof's upload is refused (422) unless an attempt of the device names the hash and the bytes
/// have it, which random bytes never do; a random hash names no stored proof (404).
fn config() -> String {
    format!(
        r#"
[parameters]
"path.s10" = "{item}"
"query.s10" = "{item}"
"path.id" = "{point}"
"path.attempt" = "demo-absence-1"
"path.notice" = "AV00000001"
"query.postcode" = "75011"

[[operations]]
include-operation-id = "chooseWithNumber"
checks.positive_data_acceptance.expected-statuses = ["2xx", "404", "409", "422", "429"]

[[operations]]
include-operation-id = "chooseWithNotice"
checks.positive_data_acceptance.expected-statuses = ["2xx", "404", "409", "422", "429"]

[[operations]]
include-operation-id = "uploadProof"
checks.positive_data_acceptance.expected-statuses = ["2xx", "413", "415", "422", "429"]

[[operations]]
include-operation-id = "getProof"
checks.positive_data_acceptance.expected-statuses = ["2xx", "404", "410", "429"]

[[operations]]
include-operation-id = "enrollDeviceKey"
checks.positive_data_acceptance.expected-statuses = ["2xx", "409", "422", "429"]

[[operations]]
include-operation-id = "chooseForItem"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429"]
"#,
        item = fixtures::s10(1),
        point = fixtures::delivery_point_id(0),
    )
}

// Multi-threaded: the server answers on the runtime's workers while this thread waits for the
// schemathesis process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_on_any_json_route() {
    let program = std::env::var("SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".into());
    let examples = std::env::var("SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "20".into());
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        tournee_server::demo::field_work(&server.state)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config_file = dir.path().join("schemathesis.toml");
        std::fs::write(&config_file, config()).unwrap();
        let audiences = [
            (
                "customer",
                server.token(TokenRole::Customer, "cust-1", None),
            ),
            (
                "back office",
                server.token(TokenRole::BackOffice, "bo-1", None),
            ),
            (
                "phone",
                server.token(TokenRole::Postman, "pm-1", Some("dev-1")),
            ),
            // Health, readiness, metrics and this document take no token.
            ("operations", String::new()),
            // Nor do tracking, notice cards and pickup points.
            ("public", String::new()),
        ];
        for (tag, token) in audiences {
            let mut command = Command::new(&program);
            command
                .arg("--config-file")
                .arg(&config_file)
                .arg("--no-color")
                .args(["run", &format!("{}/openapi.json", server.base)])
                .args(["--checks", "all", "--include-tag", tag])
                // The sync frame is binary, not JSON: the wire suite fuzzes it.
                .args(["--exclude-operation-id", "sync"])
                .args(["--max-examples", &examples, "--seed", "20261201"])
                .args(["--workers", "1", "--max-failures", "5"])
                .current_dir(dir.path());
            if !token.is_empty() {
                command
                    .arg("-H")
                    .arg(format!("Authorization: Bearer {token}"));
            }
            let run = command.output().unwrap_or_else(|e| {
                panic!("{program}: {e} (pip install -r tests/requirements.txt)")
            });
            let out = String::from_utf8_lossy(&run.stdout);
            assert!(
                run.status.success(),
                "{backend:?}, {tag}: schemathesis found problems\n{out}\n{}",
                String::from_utf8_lossy(&run.stderr)
            );
            assert!(out.contains("passed"), "{tag}: nothing tested?\n{out}");
        }
        server.stop().await;
    }
}
