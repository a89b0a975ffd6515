//! The back-office page, end to end, on every backend: a postman's phone syncs a proposed
//! correction and an attempt far from the pin; reviewers work the queue in headless Chromium
//! (`tests/browser/backoffice.test.mjs`, playwright-core driving Debian's `chromium`) in English
//! at 1280 px and in French at 390 px, approve the correction and reject the attempt; the phone's
//! next sync brings the new reference address. On SQLite the server has a tile server (this
//! test's own, on 127.0.0.1, drawing PNG tiles it makes) and the page draws a Leaflet map; on
//! PostgreSQL it has none and the page draws its sketch. Screenshots are saved (SQLite run) to
//! `TOURNEE_SCREENSHOTS`, or else under the target's temporary directory (`backoffice-page/`).
//! The lists page: the queue and search answer `limit` rows with a `Link` to the next page.
//!
//! `tests/browser/install.sh` installs Chromium and playwright-core when they are missing, so the
//! README's test command works on a fresh machine.

#![allow(clippy::unwrap_used, missing_docs)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::Value;
use tournee_e2e::{
    backends, get_json, install_browser, run_browser_script, Backend, Phone, TestServer,
};
use tournee_server::auth::TokenRole;
use tournee_sync_core::model::{GeoPoint, ReviewDecision};
use tournee_sync_core::{fixtures, operations, DocId};

/// A tile server on 127.0.0.1: answers every `GET /{z}/{x}/{y}.png` with a 256 px PNG of a
/// colour of its own and counts the tiles it served. Returns its origin and the count.
fn tile_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            if BufReader::new(&stream).read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/");
            let numbers: Vec<u32> = path
                .trim_end_matches(".png")
                .split('/')
                .filter_map(|p| p.parse().ok())
                .collect();
            let seed = numbers
                .iter()
                .fold(7u32, |h, n| h.wrapping_mul(31).wrapping_add(*n));
            let body = png_tile(seed);
            count.fetch_add(1, Ordering::SeqCst);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    (origin, served)
}

/// A 256 × 256 PNG: a pale ground of a colour drawn from `seed`, with a grid every 32 pixels, so
/// each tile shows on a screenshot.
fn png_tile(seed: u32) -> Vec<u8> {
    let ground = [
        200 + (seed % 40) as u8,
        210 + (seed / 7 % 40) as u8,
        190 + (seed / 13 % 50) as u8,
    ];
    tournee_e2e::png(256, 256, |x, y| {
        if x % 32 == 0 || y % 32 == 0 {
            [150, 160, 170]
        } else {
            ground
        }
    })
}

/// A GET with the token: the JSON answer and the next page's path from its `Link` header.
async fn page_of(base: &str, token: &str, path: &str) -> (Vec<Value>, Option<String>) {
    let response = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let next = response
        .headers()
        .get("link")
        .map(|v| v.to_str().unwrap().to_string())
        .map(|link| {
            let (url, rel) = link.split_once(">; ").unwrap();
            assert_eq!(rel, "rel=\"next\"");
            url.trim_start_matches('<').to_string()
        });
    (response.json().await.unwrap(), next)
}

/// Every row of a list, following `Link` from `first`: no row twice, none left out.
async fn all_pages(base: &str, token: &str, first: &str) -> (Vec<Value>, usize) {
    let (mut rows, mut next) = page_of(base, token, first).await;
    let mut pages = 1;
    while let Some(path) = next {
        let (more, after) = page_of(base, token, &path).await;
        assert!(!more.is_empty(), "a next page has rows: {path}");
        rows.extend(more);
        next = after;
        pages += 1;
    }
    (rows, pages)
}

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
    let screenshots = std::env::var("TOURNEE_SCREENSHOTS").unwrap_or_else(|_| {
        Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("backoffice-page")
            .display()
            .to_string()
    });
    std::fs::create_dir_all(&screenshots).unwrap();
    let (tiles, served) = tile_server();

    for backend in backends() {
        let with_map = matches!(backend, Backend::Sqlite);
        let tiles_url = format!("{tiles}/{{z}}/{{x}}/{{y}}.png");
        let server = TestServer::start_configured(
            &backend,
            |settings| {
                if with_map {
                    settings.map.tiles_url = Some(tiles_url);
                    settings.map.tiles_attribution = Some("Tiles: the test's own".into());
                }
            },
            None,
        )
        .await;
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

        // The lists page: one entry a page, each page linking to the next, in a stable order.
        let (every, _) = page_of(&server.base, &staff, "/v1/backoffice/queue?status=all").await;
        let (paged, pages) = all_pages(
            &server.base,
            &staff,
            "/v1/backoffice/queue?status=all&limit=1",
        )
        .await;
        let ids = |rows: &[Value]| rows.iter().map(|e| e["id"].clone()).collect::<Vec<_>>();
        assert_eq!(ids(&paged), ids(&every), "{backend:?}");
        assert_eq!(pages, every.len(), "{backend:?}");
        assert!(every.len() >= 2, "{every:?}");
        assert!(every.iter().all(|e| e["address"].is_string()), "{every:?}");
        let (found, _) = page_of(&server.base, &staff, "/v1/backoffice/search?address=rue").await;
        let (paged, pages) = all_pages(
            &server.base,
            &staff,
            "/v1/backoffice/search?address=rue&limit=2",
        )
        .await;
        assert_eq!(paged, found, "{backend:?}");
        assert!(pages > 1, "{backend:?}: {} rows", found.len());

        let mut env = vec![
            ("TOURNEE_BASE", server.base.clone()),
            ("TOURNEE_TOKEN", staff.clone()),
            (
                "TOURNEE_CORRECTION_ENTRY",
                correction_entry["id"].to_string(),
            ),
            ("TOURNEE_ATTEMPT_ENTRY", attempt_entry["id"].to_string()),
            ("TOURNEE_S10", s10.to_string()),
        ];
        if with_map {
            env.push(("TOURNEE_TILES_ORIGIN", tiles.clone()));
            env.push(("TOURNEE_SCREENSHOTS", screenshots.clone()));
        }
        let result = run_browser_script("backoffice.test.mjs", env).await;
        assert_eq!(result["ok"], true, "{result}");
        assert_eq!(result["offOrigin"], Value::Array(vec![]), "{result}");
        if with_map {
            assert!(served.load(Ordering::SeqCst) > 0, "no tile was served");
        }

        // The attempt rejected in French is the server's decision too.
        let rejected: Value = get_json(
            &server.base,
            &staff,
            &format!("/v1/backoffice/queue/{}", attempt_entry["id"]),
        )
        .await;
        assert_eq!(rejected["status"], "rejected", "{rejected}");
        assert_eq!(rejected["reason_code"], "far_from_pin", "{rejected}");

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
