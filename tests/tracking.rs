//! Customers without an account, on every backend: tracking by S10 number or notice card with
//! the postcode (status, events and where the item waits in words, nothing personal, cacheable),
//! the same answer for an unknown number as for a wrong postcode, 429 past the per-address limit,
//! the card's one choice written into the item's document and received by the postman's phone at
//! its next sync (replaced, not stacked; the same request twice writes once), the customer API's
//! rules (422, 409), and pickup points by postcode and near a position.

#![allow(clippy::unwrap_used, missing_docs)]

use reqwest::header::{ACCEPT_LANGUAGE, CACHE_CONTROL, ETAG, IF_NONE_MATCH, RETRY_AFTER};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tournee_e2e::{backends, local_day, Phone, TestServer};
use tournee_server::auth::TokenRole;
use tournee_server::db::Table;
use tournee_sync_core::model::Choice;
use tournee_sync_core::{fixtures, operations, views, DocId, S10};

/// The demo's delivery points are all in 75011.
const POSTCODE: &str = "75011";
/// The notice number `fixtures::absent_attempt(.., 1)` leaves.
const NOTICE: &str = "AV00000001";

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
    text: String,
}

async fn get(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = reqwest::Client::new().get(format!("{}{path}", server.base));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    answer(request.send().await.unwrap()).await
}

async fn post(server: &TestServer, path: &str, body: Value) -> Answer {
    let request = reqwest::Client::new()
        .post(format!("{}{path}", server.base))
        .json(&body);
    answer(request.send().await.unwrap()).await
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    Answer {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

fn track(n: u32, postcode: &str) -> String {
    format!("/v1/track/{}?postcode={postcode}", fixtures::s10(n))
}

/// pm-1's phone, synced, after nobody answered for item `n`: a notice left, the item waiting at
/// the demo's post office for ten more days.
async fn absence(server: &TestServer, n: u32) -> Phone {
    let mut phone = Phone::postman(server, "pm-1", "dev-1").await;
    phone.sync(server).await;
    let mut attempt = fixtures::absent_attempt("dev-1", "pm-1", n);
    attempt.recorded_at_ms = jiff::Timestamp::now().as_millisecond();
    if let Some(place) = attempt.notice.as_mut().and_then(|n| n.waits_at.as_mut()) {
        place.until = Some(local_day(10));
    }
    phone
        .store
        .record_attempt(&fixtures::s10(n), &attempt)
        .unwrap();
    phone.sync(server).await;
    phone
}

fn nothing_personal(text: &str) {
    for personal in [
        "CLIENT",
        "cust-1",
        "pm-1",
        "dev-1",
        "dp-000",
        "Demo customer",
    ] {
        assert!(!text.contains(personal), "{personal} in {text}");
    }
}

#[tokio::test]
async fn an_item_is_tracked_by_number_or_notice_with_its_postcode_in_words() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let _phone = absence(&server, 1).await;

        let fr = get(&server, &track(1, POSTCODE), &[]).await;
        assert_eq!(fr.status, StatusCode::OK, "{backend:?}: {}", fr.text);
        let item = &fr.body;
        assert_eq!(item["s10"], fixtures::s10(1).as_str());
        assert_eq!(item["language"], "fr");
        assert_eq!(item["status"], "attempted");
        assert!(
            item["status_text"]
                .as_str()
                .unwrap()
                .contains("Nous sommes passés"),
            "{item}"
        );
        let codes: Vec<&str> = item["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["code"].as_str().unwrap())
            .collect();
        assert_eq!(codes, ["EDG", "EMH"], "{item}");
        let attempted = &item["events"][1];
        assert_eq!(
            attempted["what"],
            "Tentative de livraison : personne n'était présent, un avis de passage a été déposé"
        );
        // A date in words, in Paris time, and the instant with its offset.
        let when = attempted["when"].as_str().unwrap();
        assert!(when.contains(" à ") && when.contains(" h "), "{when}");
        assert!(
            attempted["at"].as_str().unwrap().ends_with(":00"),
            "{attempted}"
        );
        // Where it waits: the post office with its address and hours, until when.
        let waits = &item["waits_at"];
        assert_eq!(waits["kind_text"], "bureau de poste");
        assert_eq!(waits["place"]["name"], "BUREAU DE POSTE PARIS ROQUETTE");
        assert_eq!(waits["place"]["lines"][1], "62 RUE DE LA ROQUETTE");
        assert_eq!(
            waits["place"]["opening_hours_text"][0],
            "lundi : 09:00–19:00"
        );
        assert_eq!(waits["until"], local_day(10));
        let steps = item["next_steps"].as_array().unwrap();
        assert!(
            steps[0]
                .as_str()
                .unwrap()
                .starts_with("Retirez-le à : BUREAU DE POSTE"),
            "{item}"
        );
        // Item 1 needs no signature: every choice is open.
        assert!(item["options"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["allowed"] == true));
        assert_eq!(item["redeliver_between"][1], local_day(10));
        nothing_personal(&fr.text);

        // English on request; cacheable, revalidated by its ETag.
        let en = get(
            &server,
            &track(1, POSTCODE),
            &[(ACCEPT_LANGUAGE.as_str(), "en-GB,en;q=0.9")],
        )
        .await;
        assert_eq!(en.status, StatusCode::OK);
        assert_eq!(en.body["language"], "en");
        assert_eq!(
            en.body["events"][1]["what"],
            "Delivery attempted: nobody was in, so a notice was left"
        );
        assert!(en.body["events"][1]["when"]
            .as_str()
            .unwrap()
            .contains(" at "));
        assert_eq!(
            en.body["waits_at"]["place"]["opening_hours_text"][0],
            "Monday: 09:00–19:00"
        );
        let etag = fr.headers[ETAG].to_str().unwrap().to_string();
        assert_ne!(etag, en.headers[ETAG].to_str().unwrap());
        assert!(fr.headers[CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("max-age"));
        let again = get(
            &server,
            &track(1, POSTCODE),
            &[(IF_NONE_MATCH.as_str(), &etag)],
        )
        .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED);
        assert!(again.text.is_empty());

        // The notice card's number leads to the same item, in either case.
        for notice in [NOTICE, "av00000001"] {
            let by_card = get(
                &server,
                &format!("/v1/notices/{notice}?postcode={POSTCODE}"),
                &[],
            )
            .await;
            assert_eq!(by_card.status, StatusCode::OK, "{}", by_card.text);
            assert_eq!(by_card.body, fr.body);
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn an_unknown_number_and_a_wrong_postcode_get_the_same_answer() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let _phone = absence(&server, 1).await;
        let choice = |postcode: &str| json!({ "postcode": postcode, "choice": { "kind": "hold" } });
        let answers = vec![
            get(&server, &track(1, "75012"), &[]).await,
            get(&server, &track(999_999, POSTCODE), &[]).await,
            get(
                &server,
                &format!("/v1/notices/{NOTICE}?postcode=75012"),
                &[],
            )
            .await,
            get(
                &server,
                &format!("/v1/notices/AV99999999?postcode={POSTCODE}"),
                &[],
            )
            .await,
            post(
                &server,
                &format!("/v1/track/{}/choice", fixtures::s10(1)),
                choice("75012"),
            )
            .await,
            post(
                &server,
                &format!("/v1/track/{}/choice", fixtures::s10(999_999)),
                choice(POSTCODE),
            )
            .await,
            post(
                &server,
                &format!("/v1/notices/{NOTICE}/choice"),
                choice("75012"),
            )
            .await,
            post(&server, "/v1/notices/AV99999999/choice", choice(POSTCODE)).await,
        ];
        for answer in &answers {
            assert_eq!(
                answer.status,
                StatusCode::NOT_FOUND,
                "{backend:?}: {}",
                answer.text
            );
            assert_eq!(answer.text, answers[0].text, "one body for every miss");
            assert_eq!(answer.body["code"], "no_match");
            let headers = |a: &Answer| {
                let mut all: Vec<(String, String)> = a
                    .headers
                    .iter()
                    .filter(|(k, _)| !["date", "x-request-id"].contains(&k.as_str()))
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
                    .collect();
                all.sort();
                all
            };
            assert_eq!(
                headers(answer),
                headers(&answers[0]),
                "no header tells them apart"
            );
            assert!(!answer.headers.contains_key(ETAG));
        }
        assert_eq!(server.state.db.count(Table::Choices).await.unwrap(), 0);

        // Malformed input is refused as such, naming the parameter.
        let bad = get(&server, &track(1, "7501"), &[]).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            (bad.body["code"].as_str(), bad.body["field"].as_str()),
            (Some("invalid_postcode"), Some("postcode"))
        );
        let bad = get(
            &server,
            &format!("/v1/track/RR123456789FR?postcode={POSTCODE}"),
            &[],
        )
        .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert_eq!(bad.body["code"], "invalid_s10");
        let bad = get(
            &server,
            &format!("/v1/notices/A-1?postcode={POSTCODE}"),
            &[],
        )
        .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert_eq!(bad.body["field"], "notice");
        let bad = get(
            &server,
            &format!("/v1/track/{}?postcode={POSTCODE}&name=x", fixtures::s10(1)),
            &[],
        )
        .await;
        assert_eq!(
            (bad.status, bad.body["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some("name"))
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn public_lookups_past_the_limit_per_address_get_429() {
    for backend in backends() {
        let server = TestServer::start_configured(
            &backend,
            |s| s.guards.public_lookups_per_minute = 5,
            None,
        )
        .await;
        for n in 0..5 {
            let answer = get(&server, &track(n, POSTCODE), &[]).await;
            assert_eq!(
                answer.status,
                StatusCode::OK,
                "{backend:?} {n}: {}",
                answer.text
            );
        }
        for path in [
            track(5, POSTCODE),
            "/v1/pickup-points?postcode=75011".into(),
            track(999_999, "75012"),
        ] {
            let limited = get(&server, &path, &[]).await;
            assert_eq!(
                limited.status,
                StatusCode::TOO_MANY_REQUESTS,
                "{path}: {}",
                limited.text
            );
            assert_eq!(limited.body["code"], "rate_limited");
            assert!(
                limited.headers[RETRY_AFTER]
                    .to_str()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap()
                    >= 1
            );
        }
        let limited = post(
            &server,
            &format!("/v1/notices/{NOTICE}/choice"),
            json!({ "postcode": POSTCODE, "choice": { "kind": "hold" } }),
        )
        .await;
        assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
        // Other routes are not counted against the lookups.
        assert_eq!(get(&server, "/healthz", &[]).await.status, StatusCode::OK);
        assert_eq!(get(&server, "/track", &[]).await.status, StatusCode::OK);
        server.stop().await;
    }
}

fn current_choice(phone: &mut Phone, n: u32) -> (String, Choice, String, usize) {
    let doc = operations::read_item(
        phone
            .store
            .document(&DocId::item(&fixtures::s10(n)))
            .unwrap(),
    )
    .unwrap();
    let (id, choice) = doc.current_choice().unwrap();
    (
        id.clone(),
        choice.choice.clone(),
        choice.made_by.clone(),
        doc.choices.len(),
    )
}

#[tokio::test]
async fn the_cards_choice_reaches_the_postmans_phone_replaced_not_stacked() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let mut phone = absence(&server, 1).await;
        let by_notice = format!("/v1/notices/{NOTICE}/choice");
        let by_number = format!("/v1/track/{}/choice", fixtures::s10(1));

        // Keep it at the office: written, and the phone has it at its next sync.
        let hold = json!({ "postcode": POSTCODE, "choice": { "kind": "hold" } });
        let made = post(&server, &by_notice, hold.clone()).await;
        assert_eq!(made.status, StatusCode::OK, "{backend:?}: {}", made.text);
        assert_eq!(made.body["written"], true);
        assert_eq!(made.body["tracking"]["choice"]["kind"], "hold");
        let first = made.body["choice_id"].as_str().unwrap().to_string();
        let report = phone.sync(&server).await;
        assert!(
            report
                .changed_documents
                .contains(&DocId::item(&fixtures::s10(1))),
            "{report:?}"
        );
        assert_eq!(
            current_choice(&mut phone, 1),
            (first.clone(), Choice::Hold, format!("notice.{NOTICE}"), 1)
        );

        // The same request again, by the card or by the number: nothing written.
        let choices = server.state.db.count(Table::Choices).await.unwrap();
        let changes = server.state.db.count(Table::Changes).await.unwrap();
        for path in [&by_notice, &by_number] {
            let again = post(&server, path, hold.clone()).await;
            assert_eq!(again.status, StatusCode::OK, "{}", again.text);
            assert_eq!(again.body["written"], false);
            assert_eq!(again.body["choice_id"], first.as_str());
        }
        assert_eq!(
            server.state.db.count(Table::Choices).await.unwrap(),
            choices
        );
        assert_eq!(
            server.state.db.count(Table::Changes).await.unwrap(),
            changes
        );

        // Changing one's mind replaces the card's choice: the phone shows the new one only.
        let tomorrow = local_day(1);
        let redeliver = post(
            &server,
            &by_number,
            json!({ "postcode": POSTCODE, "choice": { "kind": "redeliver_on", "date": tomorrow } }),
        )
        .await;
        assert_eq!(redeliver.status, StatusCode::OK, "{}", redeliver.text);
        assert_eq!(redeliver.body["written"], true);
        assert_ne!(redeliver.body["choice_id"], first.as_str());
        let pickup = post(&server, &by_notice, json!({ "postcode": POSTCODE, "choice": { "kind": "pickup_point", "pickup_point": "pp-paris-11-03" } })).await;
        assert_eq!(pickup.status, StatusCode::OK, "{}", pickup.text);
        let tracked = &pickup.body["tracking"];
        assert_eq!(tracked["choice"]["kind"], "pickup_point");
        assert_eq!(
            tracked["choice"]["text"],
            "Livraison au point de retrait TABAC DE LA ROQUETTE"
        );
        assert_eq!(
            tracked["waits_at"]["place"]["id"], "pp-paris-11-03",
            "the item goes there now"
        );
        phone.sync(&server).await;
        let (id, choice, by, _) = current_choice(&mut phone, 1);
        assert_eq!(id, pickup.body["choice_id"].as_str().unwrap());
        assert_eq!(
            choice,
            Choice::PickupPoint {
                pickup_point: "pp-paris-11-03".into()
            }
        );
        assert_eq!(by, format!("notice.{NOTICE}"));
        let door = views::at_door(&mut phone.store, &fixtures::s10(1)).unwrap();
        assert_eq!(
            door.choice.map(|c| c.choice),
            Some(choice),
            "the door shows one choice"
        );
        assert_eq!(door.choice_not_applicable, None);

        // Back to an earlier choice: written again, and it stands.
        let hold_again = post(&server, &by_notice, hold.clone()).await;
        assert_eq!(hold_again.body["written"], true, "{}", hold_again.text);
        phone.sync(&server).await;
        assert_eq!(current_choice(&mut phone, 1).1, Choice::Hold);
        let tracked = get(&server, &track(1, POSTCODE), &[]).await;
        assert_eq!(tracked.body["choice"]["kind"], "hold");
        assert_eq!(
            tracked.body["waits_at"]["place"]["id"], "bp-paris-11",
            "kept at the post office: the pickup point it replaced is not where it waits"
        );
        nothing_personal(&tracked.text);

        // An item never presented: the choice is the number's (no card yet), with the same rules.
        let early = post(&server, &format!("/v1/track/{}/choice", fixtures::s10(7)), json!({ "postcode": POSTCODE, "choice": { "kind": "safe_place", "place": "abri de jardin" } })).await;
        assert_eq!(early.status, StatusCode::OK, "{}", early.text);
        phone.sync(&server).await;
        let (_, choice, by, _) = current_choice(&mut phone, 7);
        assert_eq!(
            choice,
            Choice::SafePlace {
                place: "abri de jardin".into()
            }
        );
        assert_eq!(by, format!("track.{}", fixtures::s10(7)));
        assert!(
            !early.text.contains("abri de jardin"),
            "what the customer wrote is not shown back"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn the_customer_apis_rules_hold_for_the_card() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let mut phone = absence(&server, 0).await;
        let choose = |n: u32| format!("/v1/track/{}/choice", fixtures::s10(n));
        let body = |choice: Value| json!({ "postcode": POSTCODE, "choice": choice });
        let refused = |a: &Answer, status: StatusCode, code: &str, field: &str| {
            assert_eq!(a.status, status, "{backend:?}: {}", a.text);
            assert_eq!(a.body["code"], code, "{}", a.text);
            assert_eq!(a.body["field"], field, "{}", a.text);
        };

        // Item 0 needs a signature: not to a neighbour, not in a safe place; the page says why.
        let tracked = get(&server, &track(0, POSTCODE), &[]).await;
        let options = tracked.body["options"].as_array().unwrap();
        let neighbour = options.iter().find(|o| o["kind"] == "neighbour").unwrap();
        assert_eq!(neighbour["allowed"], false);
        assert!(
            neighbour["reason"].as_str().unwrap().contains("signature"),
            "{neighbour}"
        );
        let a = post(
            &server,
            &choose(0),
            body(json!({ "kind": "neighbour", "neighbour": "Mme Martin" })),
        )
        .await;
        refused(
            &a,
            StatusCode::UNPROCESSABLE_ENTITY,
            "rule_violation",
            "choice",
        );
        assert!(
            a.body["message"].as_str().unwrap().contains("signature"),
            "{}",
            a.text
        );
        let a = post(
            &server,
            &choose(0),
            body(json!({ "kind": "safe_place", "place": "garage" })),
        )
        .await;
        refused(
            &a,
            StatusCode::UNPROCESSABLE_ENTITY,
            "rule_violation",
            "choice",
        );
        // Dates within the holding period only; a pickup point the network has.
        let a = post(
            &server,
            &choose(0),
            body(json!({ "kind": "redeliver_on", "date": local_day(-1) })),
        )
        .await;
        refused(
            &a,
            StatusCode::UNPROCESSABLE_ENTITY,
            "date_in_the_past",
            "choice.date",
        );
        let a = post(
            &server,
            &choose(0),
            body(json!({ "kind": "redeliver_on", "date": local_day(11) })),
        )
        .await;
        refused(
            &a,
            StatusCode::UNPROCESSABLE_ENTITY,
            "beyond_holding_period",
            "choice.date",
        );
        let a = post(
            &server,
            &choose(0),
            body(json!({ "kind": "redeliver_on", "date": "05/12/2026" })),
        )
        .await;
        refused(
            &a,
            StatusCode::UNPROCESSABLE_ENTITY,
            "rule_violation",
            "choice.date",
        );
        let a = post(
            &server,
            &choose(0),
            body(json!({ "kind": "pickup_point", "pickup_point": "pp-nowhere" })),
        )
        .await;
        refused(
            &a,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_pickup_point",
            "choice.pickup_point",
        );
        let a = post(
            &server,
            &choose(1),
            body(json!({ "kind": "neighbour", "neighbour": "  " })),
        )
        .await;
        refused(
            &a,
            StatusCode::UNPROCESSABLE_ENTITY,
            "rule_violation",
            "choice.neighbour",
        );
        let a = post(&server, &choose(1), body(json!({ "kind": "teleport" }))).await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
        let a = post(
            &server,
            &choose(1),
            json!({ "postcode": "7501", "choice": { "kind": "hold" } }),
        )
        .await;
        refused(
            &a,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_postcode",
            "postcode",
        );
        assert_eq!(
            server.state.db.count(Table::Choices).await.unwrap(),
            0,
            "nothing written"
        );
        let a = post(
            &server,
            &choose(0),
            body(json!({ "kind": "redeliver_on", "date": local_day(10) })),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "the last day is fine: {}", a.text);

        // Delivered: 409, and nothing left to choose.
        let s10 = fixtures::s10(4);
        phone
            .store
            .record_attempt(&s10, &{
                let mut delivered = fixtures::delivered_attempt("dev-1", "pm-1", 4);
                delivered.recorded_at_ms = jiff::Timestamp::now().as_millisecond();
                delivered
            })
            .unwrap();
        phone.sync(&server).await;
        let a = post(&server, &choose(4), body(json!({ "kind": "hold" }))).await;
        assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);
        assert_eq!(a.body["code"], "already_delivered");
        let tracked = get(&server, &track(4, POSTCODE), &[]).await;
        assert_eq!(tracked.body["status"], "delivered");
        assert_eq!(tracked.body["options"], json!([]));
        assert_eq!(tracked.body["waits_at"], Value::Null);
        assert_eq!(
            tracked.body["events"].as_array().unwrap().last().unwrap()["what"],
            "Livré : remis en main propre"
        );
        assert_eq!(server.state.db.count(Table::Choices).await.unwrap(), 1);
        let _ = S10::parse(s10.as_str()).unwrap();
        server.stop().await;
    }
}

#[tokio::test]
async fn pickup_points_by_postcode_or_near_a_position() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        // An imported place joins the demo's.
        let integration = server.token(TokenRole::Integration, "planning", None);
        let line = json!({ "id": "pp-bdx-1", "kind": "pickup_point", "name": "TABAC DU PORT", "lines": ["TABAC DU PORT", "1 QUAI DU PORT", "33000 BORDEAUX"], "postcode": "33000", "city": "BORDEAUX", "pin": { "lat": 44.85, "lon": -0.57 }, "opening_hours": [{ "day": "monday", "opens": "09:00", "closes": "12:00" }, { "day": "monday", "opens": "14:00", "closes": "19:00" }] });
        let imported = reqwest::Client::new()
            .post(format!("{}/v1/import/pickup-points", server.base))
            .bearer_auth(&integration)
            .body(format!("{line}\n"))
            .send()
            .await
            .unwrap();
        assert_eq!(imported.status(), StatusCode::OK);
        assert!(imported.text().await.unwrap().contains("created"));

        let by_postcode = get(&server, "/v1/pickup-points?postcode=75011", &[]).await;
        assert_eq!(
            by_postcode.status,
            StatusCode::OK,
            "{backend:?}: {}",
            by_postcode.text
        );
        let names: Vec<&str> = by_postcode.body["places"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "BUREAU DE POSTE PARIS ROQUETTE",
                "LIBRAIRIE VOLTAIRE",
                "TABAC DE LA ROQUETTE"
            ]
        );
        assert_eq!(
            by_postcode.body["places"][0]["distance_m"],
            Value::Null,
            "no position, no distance"
        );
        let bordeaux = get(
            &server,
            "/v1/pickup-points?postcode=33000",
            &[(ACCEPT_LANGUAGE.as_str(), "en")],
        )
        .await;
        assert_eq!(
            bordeaux.body["places"][0]["opening_hours_text"],
            json!(["Monday: 09:00–12:00, 14:00–19:00"])
        );
        assert_eq!(bordeaux.body["places"][0]["kind_text"], "pickup point");

        // Near a position: nearest first, with the distance; bounded by the limit.
        let near = get(&server, "/v1/pickup-points?near=48.8591,2.3791", &[]).await;
        assert_eq!(near.status, StatusCode::OK, "{}", near.text);
        let places = near.body["places"].as_array().unwrap();
        assert_eq!(places.len(), 3, "Bordeaux is not near: {}", near.text);
        assert_eq!(places[0]["id"], "pp-paris-11-03");
        let distances: Vec<f64> = places
            .iter()
            .map(|p| p["distance_m"].as_f64().unwrap())
            .collect();
        assert!(
            distances[0] < 20.0 && distances.windows(2).all(|w| w[0] <= w[1]),
            "{distances:?}"
        );
        let one = get(
            &server,
            "/v1/pickup-points?near=48.8591,2.3791&limit=1",
            &[],
        )
        .await;
        assert_eq!(one.body["places"].as_array().unwrap().len(), 1);
        let far = get(&server, "/v1/pickup-points?near=44.8501,-0.5701", &[]).await;
        assert_eq!(far.body["places"][0]["id"], "pp-bdx-1", "{}", far.text);
        let both = get(
            &server,
            "/v1/pickup-points?postcode=75011&near=48.8650,2.3690",
            &[],
        )
        .await;
        assert_eq!(both.body["places"][0]["id"], "pp-paris-11-07");

        for (query, field) in [
            ("", "postcode"),
            ("postcode=7501", "postcode"),
            ("near=91,2", "near"),
            ("near=48.8", "near"),
            ("near=48.8,2.3&limit=0", "limit"),
            ("near=48.8,2.3&limit=51", "limit"),
            ("postcode=75011&city=PARIS", "city"),
        ] {
            let refused = get(&server, &format!("/v1/pickup-points?{query}"), &[]).await;
            assert_eq!(
                refused.status,
                StatusCode::BAD_REQUEST,
                "{query}: {}",
                refused.text
            );
            assert_eq!(refused.body["field"], field, "{query}: {}", refused.text);
        }
        server.stop().await;
    }
}

/// A refusal's code, message and `Content-Language`, asked with `Accept-Language` (or none).
async fn refusal(
    server: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    lang: Option<&str>,
) -> (StatusCode, String, String, String) {
    let client = reqwest::Client::new();
    let mut request = match method {
        "POST" => client.post(format!("{}{path}", server.base)),
        _ => client.get(format!("{}{path}", server.base)),
    };
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some(lang) = lang {
        request = request.header(ACCEPT_LANGUAGE, lang);
    }
    let a = answer(request.send().await.unwrap()).await;
    let language = a.headers["content-language"].to_str().unwrap().to_string();
    assert!(
        a.headers
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().unwrap().eq_ignore_ascii_case("accept-language")),
        "a refusal varies with the language asked: {:?}",
        a.headers
    );
    (
        a.status,
        a.body["code"].as_str().unwrap().to_string(),
        a.body["message"].as_str().unwrap().to_string(),
        language,
    )
}

/// A refusal asked for in both languages: method, path, token, body, status, code, a phrase of
/// its French message and one of its English message.
type Case<'a> = (
    &'a str,
    String,
    Option<&'a str>,
    Option<Value>,
    StatusCode,
    &'a str,
    &'a str,
    &'a str,
);

#[tokio::test]
async fn refusals_speak_the_requests_language_with_the_same_code() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let customer = server.token(TokenRole::Customer, "cust-1", None);
        let wrong_postcode = track(1, "75012");
        let bad_postcode = json!({ "postcode": "7501", "choice": { "kind": "hold" } });
        let cases: [Case; 4] = [
            (
                "GET",
                wrong_postcode,
                None,
                None,
                StatusCode::NOT_FOUND,
                "no_match",
                "aucun envoi ne correspond",
                "nothing matches",
            ),
            (
                "POST",
                format!("/v1/notices/{NOTICE}/choice"),
                None,
                Some(bad_postcode),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_postcode",
                "cinq chiffres",
                "five digits",
            ),
            (
                "GET",
                "/v1/pickup-points".to_string(),
                None,
                None,
                StatusCode::BAD_REQUEST,
                "missing_parameter",
                "un paramètre manque",
                "give a postcode",
            ),
            (
                "GET",
                "/v1/customer/items/RR12".to_string(),
                Some(customer.as_str()),
                None,
                StatusCode::BAD_REQUEST,
                "invalid_s10",
                "pas un numéro de suivi",
                "13 characters",
            ),
        ];
        for (method, path, token, body, status, code, fr, en) in cases {
            let public = !path.starts_with("/v1/customer");
            for (lang, phrase, content) in [
                (Some("fr-FR,fr;q=0.9"), fr, "fr"),
                (Some("en-GB,en;q=0.9,fr;q=0.5"), en, "en"),
                // Neither: French on the public routes, as /v1/track answers; English elsewhere.
                (
                    None,
                    if public { fr } else { en },
                    if public { "fr" } else { "en" },
                ),
            ] {
                let (got, got_code, message, language) =
                    refusal(&server, method, &path, token, body.clone(), lang).await;
                assert_eq!(got, status, "{backend:?} {path} {lang:?}: {message}");
                assert_eq!(got_code, code, "{backend:?} {path} {lang:?}");
                assert!(
                    message.contains(phrase),
                    "{backend:?} {path} {lang:?}: {message:?} lacks {phrase:?}"
                );
                assert_eq!(language, content, "{backend:?} {path} {lang:?}");
            }
        }
        server.stop().await;
    }
}
