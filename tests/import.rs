//! Bulk import over the API, on every backend: every kind created, re-imported unchanged
//! (nothing written), changed (a phone that syncs afterwards sees it), and refused line by line
//! with the line number and the field; `all_or_nothing` and `dry_run` apply nothing; bad uploads
//! get a clear 4xx and leave nothing half-written.

#![allow(clippy::unwrap_used, missing_docs)]

use reqwest::StatusCode;
use serde_json::{json, Value};
use tournee_e2e::{backends, local_day, Phone, TestServer};
use tournee_server::auth::TokenRole;
use tournee_server::db::{Database, Table};

const EVENT_TYPES: &str = "SELECT type FROM events";
use tournee_sync_core::{fixtures, operations, DocId, S10};

/// Posts NDJSON lines; the status and the report's lines.
async fn import(
    server: &TestServer,
    kind: &str,
    query: &str,
    lines: &[Value],
) -> (StatusCode, Vec<Value>) {
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    import_raw(server, kind, query, body.into_bytes()).await
}

async fn import_raw(
    server: &TestServer,
    kind: &str,
    query: &str,
    body: Vec<u8>,
) -> (StatusCode, Vec<Value>) {
    let token = server.token(TokenRole::Integration, "planning", None);
    let response = reqwest::Client::new()
        .post(format!("{}/v1/import/{kind}?{query}", server.base))
        .bearer_auth(token)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let report = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (status, report)
}

/// The totals line, after checking it ends the report.
fn totals(report: &[Value]) -> &Value {
    let last = report.last().unwrap();
    assert!(
        last.get("totals").is_some(),
        "the report does not end with totals: {report:#?}"
    );
    &last["totals"]
}

fn outcomes(report: &[Value]) -> Vec<&str> {
    report[..report.len() - 1]
        .iter()
        .map(|l| l["outcome"].as_str().unwrap())
        .collect()
}

fn point(id: &str, street_number: &str, door_code: &str) -> Value {
    json!({
        "id": id,
        "lines": ["M DUPONT JEAN", format!("{street_number} RUE DES LILAS"), "33000 BORDEAUX"],
        "house_number": street_number,
        "street": "RUE DES LILAS",
        "postcode": "33000",
        "city": "BORDEAUX",
        "pin": { "lat": 44.84, "lon": -0.58 },
        "access": { "door_code": door_code },
    })
}

fn item(n: u32, point: &str, signature: bool) -> Value {
    json!({
        "s10": fixtures::s10(900_000 + n).to_string(),
        "delivery_point": point,
        "requirements": { "signature": signature, "id_check": false, "age_check": false, "cash_on_delivery_cents": null },
        "sender": "LIBRAIRIE MOLLAT",
        "arrived_at": "2026-12-04T06:30:00+01:00",
    })
}

fn round(items: &[u32]) -> Value {
    json!({
        "id": "round-bdx-1",
        "date": local_day(0),
        "office": "bordeaux-cdis",
        "postman": "pm-bdx",
        "devices": ["dev-bdx"],
        "stops": [
            { "delivery_point": "dp-bdx-1", "items": items.iter().filter(|n| **n % 2 == 0).map(|n| fixtures::s10(900_000 + n).to_string()).collect::<Vec<_>>() },
            { "delivery_point": "dp-bdx-2", "items": items.iter().filter(|n| **n % 2 == 1).map(|n| fixtures::s10(900_000 + n).to_string()).collect::<Vec<_>>() },
        ],
    })
}

async fn written(server: &TestServer) -> (i64, i64) {
    let db = &server.state.db;
    (
        db.count(Table::Changes).await.unwrap(),
        db.count(Table::Documents).await.unwrap() + db.count(Table::DeliveryPoints).await.unwrap(),
    )
}

#[tokio::test]
async fn every_kind_is_created_then_unchanged_then_updated_and_a_phone_sees_the_change() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let points = [
            point("dp-bdx-1", "12", "1234A"),
            point("dp-bdx-2", "14", "0000"),
        ];
        let kinds: Vec<(&str, Vec<Value>)> = vec![
            ("delivery-points", points.to_vec()),
            (
                "customers",
                vec![
                    json!({ "id": "cust-bdx", "display_name": "Jean Dupont", "contacts": [{ "channel": "email", "address": "jean@example.org", "consent": true }], "delivery_points": ["dp-bdx-1"] }),
                ],
            ),
            (
                "items",
                vec![item(0, "dp-bdx-1", false), item(1, "dp-bdx-2", false)],
            ),
            (
                "pickup-points",
                vec![
                    json!({ "id": "pp-bdx-1", "kind": "pickup_point", "name": "TABAC DU PORT", "lines": ["TABAC DU PORT", "1 QUAI DU PORT", "33000 BORDEAUX"], "postcode": "33000", "city": "BORDEAUX", "pin": { "lat": 44.85, "lon": -0.57 }, "opening_hours": [{ "day": "monday", "opens": "09:00", "closes": "19:00" }] }),
                ],
            ),
            (
                "devices",
                vec![json!({ "id": "dev-bdx", "postman": "pm-bdx" })],
            ),
            ("rounds", vec![round(&[0, 1])]),
        ];
        for (kind, lines) in &kinds {
            let (status, report) = import(&server, kind, "", lines).await;
            assert_eq!(status, StatusCode::OK, "{kind}: {report:#?}");
            assert!(
                outcomes(&report).iter().all(|o| *o == "created"),
                "{kind}: {report:#?}"
            );
            assert_eq!(totals(&report)["created"], lines.len(), "{kind}");
            assert_eq!(totals(&report)["applied"], true);
        }
        // The same files again: unchanged, and nothing written.
        let before = written(&server).await;
        let events_before = server.state.db.count(Table::Events).await.unwrap();
        for (kind, lines) in &kinds {
            let (_, report) = import(&server, kind, "", lines).await;
            assert!(
                outcomes(&report).iter().all(|o| *o == "unchanged"),
                "{kind}: {report:#?}"
            );
        }
        assert_eq!(written(&server).await, before);
        assert_eq!(
            server.state.db.count(Table::Events).await.unwrap(),
            events_before
        );

        // An item changed before any phone asked for it: its document does not exist yet (it
        // is built when first needed), and it is built with the change.
        assert!(!server
            .state
            .db
            .existing_documents(&[&format!("item:{}", fixtures::s10(900_001))])
            .await
            .unwrap()
            .contains(&format!("item:{}", fixtures::s10(900_001))));
        let (_, report) = import(&server, "items", "", &[item(1, "dp-bdx-2", true)]).await;
        assert_eq!(outcomes(&report), ["updated"], "{report:#?}");

        // The round reaches its phone, with its documents.
        let mut phone = Phone::postman(&server, "pm-bdx", "dev-bdx").await;
        assert_eq!(phone.store.manifest().unwrap().round_id, "round-bdx-1");
        phone.sync(&server).await;
        let point_doc = DocId::delivery_point("dp-bdx-1").unwrap();
        let stored =
            operations::read_delivery_point(phone.store.document(&point_doc).unwrap()).unwrap();
        assert_eq!(stored.access.door_code.as_deref(), Some("1234A"));

        // Reference data changes: a new door code, an item that now needs a signature, the
        // round re-published with an item added. The phone gets them at its next sync.
        let (_, report) = import(
            &server,
            "delivery-points",
            "",
            &[point("dp-bdx-1", "12", "9876C"), points[1].clone()],
        )
        .await;
        assert_eq!(outcomes(&report), ["updated", "unchanged"], "{report:#?}");
        let (_, report) = import(
            &server,
            "items",
            "",
            &[item(0, "dp-bdx-1", true), item(2, "dp-bdx-1", false)],
        )
        .await;
        assert_eq!(outcomes(&report), ["updated", "created"], "{report:#?}");
        let (_, report) = import(&server, "rounds", "", &[round(&[0, 1, 2])]).await;
        assert_eq!(outcomes(&report), ["updated"], "{report:#?}");
        let rounds = tournee_e2e::rounds(&server.base, &phone.token).await;
        assert_eq!(rounds[0].stops[0].items.len(), 2, "{rounds:?}");
        phone.sync(&server).await;
        let stored =
            operations::read_delivery_point(phone.store.document(&point_doc).unwrap()).unwrap();
        assert_eq!(stored.access.door_code.as_deref(), Some("9876C"));
        assert_eq!(stored.reference.version, 2);
        let item_doc = DocId::item(&S10::parse(&fixtures::s10(900_000).to_string()).unwrap());
        let item = operations::read_item(phone.store.document(&item_doc).unwrap()).unwrap();
        assert!(item.requirements.signature);
        let changed_early = DocId::item(&S10::parse(&fixtures::s10(900_001).to_string()).unwrap());
        let item = operations::read_item(phone.store.document(&changed_early).unwrap()).unwrap();
        assert!(
            item.requirements.signature,
            "built from the line as it was last imported"
        );

        // The feed's table says what was loaded: arrivals (EMG) and the reference change.
        let feed: Vec<String> = match &server.state.db {
            Database::Sqlite(pool) => sqlx::query_scalar(EVENT_TYPES)
                .fetch_all(pool)
                .await
                .unwrap(),
            Database::Postgres(pool) => sqlx::query_scalar(EVENT_TYPES)
                .fetch_all(pool)
                .await
                .unwrap(),
        };
        for expected in [
            "item.arrived",
            "reference.changed",
            "round.published",
            "device.changed",
            "customer.loaded",
            "pickup_point.loaded",
            "item.loaded",
        ] {
            assert!(
                feed.iter().any(|t| t == expected),
                "{expected} missing: {feed:?}"
            );
        }

        // A revoked device: its tokens are refused from then on, and it stays revoked.
        let (_, report) = import(
            &server,
            "devices",
            "",
            &[json!({ "id": "dev-bdx", "postman": "pm-bdx", "status": "revoked" })],
        )
        .await;
        assert_eq!(outcomes(&report), ["updated"], "{report:#?}");
        let (status, _) = phone.try_sync(&server).await.unwrap_err();
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (_, report) = import(
            &server,
            "devices",
            "",
            &[json!({ "id": "dev-bdx", "postman": "pm-bdx" })],
        )
        .await;
        assert_eq!(report[0]["code"], "device_revoked", "{report:#?}");
        assert_eq!(report[0]["field"], "status");
        server.stop().await;
    }
}

#[tokio::test]
async fn refused_lines_name_their_line_and_field_and_the_valid_ones_are_applied() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let mut bad_pin = point("dp-bdx-3", "3", "1");
        bad_pin["pin"]["lat"] = json!("north");
        let body = format!(
            "{}\n\nnot json\n{}\n{{\"id\":\"dp-bdx-4\",\"colour\":\"blue\"}}\n{}\n",
            point("dp-bdx-1", "12", "1234A"),
            bad_pin,
            point("dp-bdx-2", "14", "0000"),
        );
        // Dry run and all_or_nothing: the same refusals, nothing applied.
        for query in ["dry_run=true", "all_or_nothing=true"] {
            let before = written(&server).await;
            let (status, report) =
                import_raw(&server, "delivery-points", query, body.clone().into_bytes()).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(totals(&report)["applied"], false, "{query}: {report:#?}");
            assert_eq!(totals(&report)["refused"], 3, "{query}: {report:#?}");
            assert_eq!(written(&server).await, before, "{query} wrote something");
        }
        let (_, report) = import_raw(&server, "delivery-points", "", body.into_bytes()).await;
        let refused: Vec<(u64, &str, &str)> = report
            .iter()
            .filter(|l| l["outcome"] == "refused")
            .map(|l| {
                (
                    l["line"].as_u64().unwrap(),
                    l["code"].as_str().unwrap(),
                    l["field"].as_str().unwrap_or(""),
                )
            })
            .collect();
        // Line 2 is blank and skipped; lines are numbered as in the file.
        assert_eq!(
            refused,
            [
                (3, "not_json", ""),
                (4, "invalid", "pin.lat"),
                (5, "invalid", "colour")
            ],
            "{report:#?}"
        );
        for line in report.iter().filter(|l| l["outcome"] == "refused") {
            let message = line["message"].as_str().unwrap();
            assert!(!message.is_empty() && !message.contains("column"), "{line}");
        }
        let t = totals(&report);
        assert_eq!(
            (
                t["created"].as_u64(),
                t["refused"].as_u64(),
                t["lines"].as_u64()
            ),
            (Some(2), Some(3), Some(5))
        );

        // References that do not exist are refused with the field that names them.
        let mut orphan = item(7, "dp-nowhere", false);
        orphan["s10"] = json!(fixtures::s10(900_007).to_string());
        let (_, report) = import(&server, "items", "", &[orphan, json!({ "s10": "XX123", "delivery_point": "dp-bdx-1", "arrived_at": "2026-12-04T06:30:00Z" })]).await;
        assert_eq!(report[0]["code"], "unknown_reference", "{report:#?}");
        assert_eq!(report[0]["field"], "delivery_point");
        assert_eq!(report[1]["field"], "s10", "{report:#?}");
        let (_, report) = import(&server, "rounds", "", &[json!({ "id": "r", "date": local_day(0), "office": "o", "postman": "pm-1", "devices": ["dev-1"], "stops": [{ "delivery_point": "dp-bdx-1", "items": [fixtures::s10(900_099).to_string()] }] })]).await;
        assert_eq!(report[0]["field"], "stops[0].items[0]", "{report:#?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn bad_uploads_get_a_clear_refusal_and_write_nothing() {
    for backend in backends() {
        let server =
            TestServer::start_configured(&backend, |s| s.import_max_bytes = 64 * 1024, None).await;
        let before = written(&server).await;
        let token = server.token(TokenRole::Integration, "planning", None);
        let client = reqwest::Client::new();
        // An unknown kind.
        let response = client
            .post(format!("{}/v1/import/parcels", server.base))
            .bearer_auth(&token)
            .body("{}\n")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            (body["code"].as_str(), body["field"].as_str()),
            (Some("unknown_kind"), Some("kind")),
            "{body}"
        );
        // An upload that declares more than the limit is refused before it is read.
        let response = client
            .post(format!("{}/v1/import/delivery-points", server.base))
            .bearer_auth(&token)
            .body(vec![b'{'; 1024 * 1024])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let body: Value = response.json().await.unwrap();
        assert!(!body["message"].as_str().unwrap().is_empty(), "{body}");
        // An upload that does not declare its length and goes over the limit: the report ends
        // with the reason.
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            (0..20).map(|_| Ok(vec![b' '; 8 * 1024])).collect();
        let response = client
            .post(format!("{}/v1/import/delivery-points", server.base))
            .bearer_auth(&token)
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let text = response.text().await.unwrap();
        let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last["error"]["code"], "too_large", "{text}");
        assert_eq!(written(&server).await, before);
        server.stop().await;
    }
}

#[tokio::test]
async fn lines_too_long_or_not_utf8_are_refused_one_by_one() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let mut body = b"{\"id\": 12}\n".to_vec();
        body.extend(vec![b'x'; tournee_server::import::MAX_LINE_BYTES + 10]);
        body.extend(b"\n\xff\xfe\n");
        body.extend(format!("{}\n", point("dp-bdx-1", "12", "1234A")).into_bytes());
        let (_, report) = import_raw(&server, "delivery-points", "", body).await;
        let codes: Vec<&str> = report[..3]
            .iter()
            .map(|l| l["code"].as_str().unwrap())
            .collect();
        assert_eq!(
            codes,
            ["invalid", "line_too_long", "not_utf8"],
            "{report:#?}"
        );
        assert_eq!(report[0]["field"], "id");
        assert_eq!(totals(&report)["created"], 1);
        server.stop().await;
    }
}
