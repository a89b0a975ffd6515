//! `/openapi.json` says what the server really does: real answers of every JSON route, successes
//! and refusals, on every backend, are validated against the JSON Schema the document gives for
//! that route and status; a status the document does not list fails; and the request bodies the
//! README shows validate against the documented request schemas.

#![allow(clippy::unwrap_used, missing_docs)]

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tournee_e2e::{backends, Phone, TestServer};
use tournee_server::auth::TokenRole;
use tournee_sync_core::fixtures;

/// The OpenAPI document and the server it describes.
struct Documented<'a> {
    server: &'a TestServer,
    doc: Value,
    checked: usize,
}

impl<'a> Documented<'a> {
    async fn fetch(server: &'a TestServer) -> Self {
        let doc = reqwest::get(format!("{}/openapi.json", server.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Self {
            server,
            doc,
            checked: 0,
        }
    }

    /// The errors of `instance` against `schema`, resolved in the document's components.
    fn errors(&self, what: &str, schema: &Value, instance: &Value) -> Vec<String> {
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.doc["components"],
            "allOf": [schema],
        });
        let validator = jsonschema::draft202012::new(&root)
            .unwrap_or_else(|e| panic!("{what}: the document's schema does not compile: {e}"));
        validator
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }

    /// Panics unless `instance` matches `schema`.
    fn validate(&self, what: &str, schema: &Value, instance: &Value) {
        let errors = self.errors(what, schema, instance);
        assert!(
            errors.is_empty(),
            "{what}: the answer does not match its documented schema:\n{}\n{instance:#}",
            errors.join("\n")
        );
    }

    /// Calls `method path` (whose documented form is `template`) and checks the answer against
    /// the document; returns the status and the JSON body.
    async fn call(
        &mut self,
        method: Method,
        template: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let operation = &self.doc["paths"][template][method.as_str().to_lowercase()];
        assert!(
            operation.is_object(),
            "{method} {template} is not in the document"
        );
        if let Some(body) = &body {
            let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
            assert!(schema.is_object(), "{method} {template}: no request schema");
            self.validate(&format!("{method} {template} request"), schema, body);
        }
        let mut request =
            reqwest::Client::new().request(method.clone(), format!("{}{path}", self.server.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap();
        let documented = &operation["responses"][status.as_str()];
        assert!(
            documented.is_object(),
            "{method} {path} answered {status}, which the document does not list: {answer}"
        );
        let schema = &documented["content"]["application/json"]["schema"];
        assert!(
            schema.is_object(),
            "{method} {template} {status}: no JSON schema documented"
        );
        self.validate(&format!("{method} {path} {status}"), schema, &answer);
        self.checked += 1;
        (status, answer)
    }
}

fn tomorrow() -> String {
    tournee_e2e::local_day(1)
}

#[tokio::test]
async fn every_json_answer_matches_the_documented_schema() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;

        // Field work to review: an absence with a notice at cust-1's door, a delivery far from
        // its pin, a correction.
        let mut phone = Phone::postman(&server, "pm-1", "dev-1").await;
        phone.sync(&server).await;
        let absent = phone
            .store
            .record_attempt(
                &fixtures::s10(1),
                &fixtures::absent_attempt("dev-1", "pm-1", 1),
            )
            .unwrap();
        let mut far = fixtures::delivered_attempt("dev-1", "pm-1", 4);
        far.position.as_mut().unwrap().lat += 0.01;
        phone.store.record_attempt(&fixtures::s10(4), &far).unwrap();
        phone
            .store
            .propose_correction(
                &fixtures::delivery_point_id(1),
                &fixtures::number_correction("dev-1", "pm-1"),
            )
            .unwrap();
        phone.sync(&server).await;

        let postman = phone.token.clone();
        let customer = server.token(TokenRole::Customer, "cust-1", None);
        let staff = server.token(TokenRole::BackOffice, "bo-1", None);
        let signed = fixtures::s10(0).to_string(); // needs a signature
        let plain = fixtures::s10(1).to_string();
        let mut api = Documented::fetch(&server).await;
        // The schemas are not vacuous: an answer missing its fields, or a choice of an unknown
        // kind, does not pass.
        let made = &api.doc["paths"]["/v1/customer/items/{s10}/choice"]["post"];
        let made_schema = made["responses"]["201"]["content"]["application/json"]["schema"].clone();
        let errors = api.errors("empty answer", &made_schema, &json!({ "choice_id": "c" }));
        assert!(errors.iter().any(|e| e.contains("item")), "{errors:?}");
        let request = made["requestBody"]["content"]["application/json"]["schema"].clone();
        assert!(!api
            .errors("bad choice", &request, &json!({ "kind": "drone" }))
            .is_empty());

        let (status, rounds) = api
            .call(
                Method::GET,
                "/v1/rounds",
                "/v1/rounds",
                Some(&postman),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(!rounds.as_array().unwrap().is_empty());

        // The customer.
        let items = "/v1/customer/items";
        let one = "/v1/customer/items/{s10}";
        let choice = "/v1/customer/items/{s10}/choice";
        let prefs = "/v1/customer/delivery-points/{id}/preferences";
        let dispute = "/v1/customer/items/{s10}/attempts/{attempt}/dispute";
        assert_eq!(
            api.call(Method::GET, items, items, Some(&customer), None)
                .await
                .0,
            StatusCode::OK
        );
        assert_eq!(
            api.call(Method::GET, items, items, None, None).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            api.call(Method::GET, items, items, Some(&staff), None)
                .await
                .0,
            StatusCode::FORBIDDEN
        );
        let (status, item) = api
            .call(
                Method::GET,
                one,
                &format!("{items}/{plain}"),
                Some(&customer),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(item["latest_attempt"]["id"], absent.id.as_str(), "{item}");
        let other = fixtures::s10(2).to_string(); // cust-2's
        assert_eq!(
            api.call(
                Method::GET,
                one,
                &format!("{items}/{other}"),
                Some(&customer),
                None
            )
            .await
            .0,
            StatusCode::NOT_FOUND
        );
        for body in [
            json!({ "kind": "redeliver_on", "date": tomorrow() }),
            json!({ "kind": "pickup_point", "pickup_point": "pp-paris-11-03" }),
            json!({ "kind": "safe_place", "place": "garden shed" }),
            json!({ "kind": "hold" }),
        ] {
            let (status, _) = api
                .call(
                    Method::POST,
                    choice,
                    &format!("{items}/{plain}/choice"),
                    Some(&customer),
                    Some(body),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED);
        }
        let (status, refusal) = api
            .call(
                Method::POST,
                choice,
                &format!("{items}/{signed}/choice"),
                Some(&customer),
                Some(json!({ "kind": "neighbour", "neighbour": "Mme Martin, 2nd floor" })),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refusal}");
        let (status, _) = api
            .call(
                Method::PUT,
                prefs,
                &format!(
                    "/v1/customer/delivery-points/{}/preferences",
                    fixtures::delivery_point_id(0)
                ),
                Some(&customer),
                Some(json!({
                    "safe_place": "garden shed",
                    "preferred_neighbour": null,
                    "preferred_pickup_point": null,
                    "never_to_neighbour": true
                })),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let disputed = format!("{items}/{plain}/attempts/{}/dispute", absent.id);
        let body = json!({ "comment": "I was at home" });
        let (status, queued) = api
            .call(
                Method::POST,
                dispute,
                &disputed,
                Some(&customer),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(
            api.call(
                Method::POST,
                dispute,
                &disputed,
                Some(&customer),
                Some(body)
            )
            .await
            .0,
            StatusCode::CONFLICT
        );

        // The back office.
        let queue = "/v1/backoffice/queue";
        let entry = "/v1/backoffice/queue/{entry}";
        let decision = "/v1/backoffice/queue/{entry}/decision";
        let (status, open) = api
            .call(Method::GET, queue, queue, Some(&staff), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        let kinds: Vec<&str> = open
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        for kind in ["correction", "attempt", "dispute"] {
            assert!(kinds.contains(&kind), "{kinds:?}");
        }
        for e in open.as_array().unwrap() {
            let (status, _) = api
                .call(
                    Method::GET,
                    entry,
                    &format!("{queue}/{}", e["id"]),
                    Some(&staff),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK);
        }
        assert_eq!(
            api.call(
                Method::GET,
                queue,
                &format!("{queue}?status=sideways"),
                Some(&staff),
                None
            )
            .await
            .0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            api.call(
                Method::GET,
                entry,
                &format!("{queue}/first"),
                Some(&staff),
                None
            )
            .await
            .0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            api.call(
                Method::GET,
                entry,
                &format!("{queue}/999999"),
                Some(&staff),
                None
            )
            .await
            .0,
            StatusCode::NOT_FOUND
        );
        let id = &queued["queue_id"];
        let verdict = json!({ "decision": "reject", "comment": "the notice was left at 09:01" });
        let decided = format!("{queue}/{id}/decision");
        let (status, _) = api
            .call(
                Method::POST,
                decision,
                &decided,
                Some(&staff),
                Some(verdict.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            api.call(
                Method::POST,
                decision,
                &decided,
                Some(&staff),
                Some(verdict)
            )
            .await
            .0,
            StatusCode::CONFLICT
        );
        let (status, _) = api
            .call(
                Method::GET,
                queue,
                &format!("{queue}?status=all"),
                Some(&staff),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let timeline = "/v1/backoffice/items/{s10}";
        for s10 in [&plain, &fixtures::s10(4).to_string()] {
            let (status, _) = api
                .call(
                    Method::GET,
                    timeline,
                    &format!("/v1/backoffice/items/{s10}"),
                    Some(&staff),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK);
        }
        let search = "/v1/backoffice/search";
        let (status, found) = api
            .call(
                Method::GET,
                search,
                &format!("{search}?address=roquette"),
                Some(&staff),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(!found.as_array().unwrap().is_empty());
        assert_eq!(
            api.call(Method::GET, search, search, Some(&staff), None)
                .await
                .0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            api.call(Method::GET, search, search, Some(&customer), None)
                .await
                .0,
            StatusCode::FORBIDDEN
        );

        // Webhook subscriptions: made (with the secret), refused, listed, read, enabled, removed.
        let integration = server.token(TokenRole::Integration, "crm", None);
        let hooks = "/v1/webhooks";
        let one = "/v1/webhooks/{id}";
        let (status, created) = api
            .call(
                Method::POST,
                hooks,
                hooks,
                Some(&integration),
                Some(json!({ "url": "http://127.0.0.1:9/in", "event_types": ["choice.made"], "from": "now" })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let path = format!("{hooks}/{}", created["id"].as_str().unwrap());
        for (method, template, path, body, expected) in [
            (
                Method::POST,
                hooks,
                hooks.to_string(),
                Some(json!({ "url": "ftp://x.fr/" })),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (Method::GET, hooks, hooks.to_string(), None, StatusCode::OK),
            (Method::GET, one, path.clone(), None, StatusCode::OK),
            (
                Method::GET,
                one,
                format!("{hooks}/wh_nope"),
                None,
                StatusCode::NOT_FOUND,
            ),
            (
                Method::POST,
                "/v1/webhooks/{id}/enable",
                format!("{path}/enable"),
                None,
                StatusCode::OK,
            ),
            (Method::DELETE, one, path.clone(), None, StatusCode::OK),
            (Method::DELETE, one, path, None, StatusCode::NOT_FOUND),
        ] {
            let (status, _) = api
                .call(method, template, &path, Some(&integration), body)
                .await;
            assert_eq!(status, expected, "{template}");
        }

        // Customers without an account: tracking, the card's choice, pickup points.
        let item = fixtures::s10(1).to_string();
        for (method, template, path, body, expected) in [
            (
                Method::GET,
                "/v1/track/{s10}",
                format!("/v1/track/{item}?postcode=75011"),
                None,
                StatusCode::OK,
            ),
            (
                Method::GET,
                "/v1/track/{s10}",
                format!("/v1/track/{item}?postcode=75012"),
                None,
                StatusCode::NOT_FOUND,
            ),
            (
                Method::GET,
                "/v1/track/{s10}",
                format!("/v1/track/{item}?postcode=7"),
                None,
                StatusCode::BAD_REQUEST,
            ),
            (
                Method::GET,
                "/v1/notices/{notice}",
                "/v1/notices/AV00000001?postcode=75011".into(),
                None,
                StatusCode::OK,
            ),
            (
                Method::POST,
                "/v1/notices/{notice}/choice",
                "/v1/notices/AV00000001/choice".into(),
                Some(json!({ "postcode": "75011", "choice": { "kind": "hold" } })),
                StatusCode::OK,
            ),
            (
                Method::POST,
                "/v1/track/{s10}/choice",
                format!("/v1/track/{}/choice", fixtures::s10(0)),
                Some(
                    json!({ "postcode": "75011", "choice": { "kind": "neighbour", "neighbour": "Mme Martin" } }),
                ),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                Method::POST,
                "/v1/track/{s10}/choice",
                format!("/v1/track/{item}/choice"),
                Some(json!({ "postcode": "75012", "choice": { "kind": "hold" } })),
                StatusCode::NOT_FOUND,
            ),
            (
                Method::GET,
                "/v1/pickup-points",
                "/v1/pickup-points?near=48.8591,2.3791&limit=2".into(),
                None,
                StatusCode::OK,
            ),
            (
                Method::GET,
                "/v1/pickup-points",
                "/v1/pickup-points".into(),
                None,
                StatusCode::BAD_REQUEST,
            ),
        ] {
            let (status, _) = api.call(method, template, &path, None, body).await;
            assert_eq!(status, expected, "{path}");
        }

        assert!(api.checked >= 25, "{}", api.checked);
        server.stop().await;
    }
}

/// `PUT /v1/proofs/{sha256}` (raw bytes in, JSON out) and the back office's view of proofs, as
/// the document says: every answer of the upload, stored and refused, and the queue and the
/// timeline with a proof uploaded and others not.
#[tokio::test]
async fn proof_uploads_and_the_proofs_beside_attempts_match_the_documented_schemas() {
    use tournee_sync_core::model::ProofKind;
    for backend in backends() {
        let server =
            TestServer::start_configured(&backend, |s| s.proofs.max_bytes = 4096, None).await;
        let mut phone = Phone::postman(&server, "pm-1", "dev-1").await;
        phone.sync(&server).await;
        let photo = [&[0xFF, 0xD8, 0xFF, 0xE0][..], &[7; 1000]].concat();
        let big = [&[0x89][..], b"PNG\r\n\x1a\n", &[1; 5000]].concat();
        let text = b"not an image".to_vec();
        let mut attempt = fixtures::absent_attempt("dev-1", "pm-1", 1);
        attempt.position.as_mut().unwrap().lat += 0.01;
        attempt.proofs = [&photo, &big, &text]
            .map(|bytes| phone.store.queue_proof(ProofKind::Photo, bytes).unwrap())
            .to_vec();
        let hashes: Vec<String> = attempt.proofs.iter().map(|p| p.sha256.clone()).collect();
        let [photo_sha, big_sha, text_sha]: [String; 3] = hashes.try_into().unwrap();
        phone
            .store
            .record_attempt(&fixtures::s10(1), &attempt)
            .unwrap();
        phone.sync(&server).await;
        let api = Documented::fetch(&server).await;
        let operation = &api.doc["paths"]["/v1/proofs/{sha256}"]["put"];
        assert!(
            operation["requestBody"]["content"]["application/octet-stream"].is_object(),
            "{operation}"
        );
        let stranger = "0".repeat(64);
        for (sha, bytes, expected) in [
            (&photo_sha, photo.clone(), StatusCode::CREATED),
            (&photo_sha, photo.clone(), StatusCode::OK),
            (&big_sha, big.clone(), StatusCode::PAYLOAD_TOO_LARGE),
            (&text_sha, text.clone(), StatusCode::UNSUPPORTED_MEDIA_TYPE),
            (&text_sha, photo.clone(), StatusCode::UNPROCESSABLE_ENTITY),
            (&stranger, photo.clone(), StatusCode::UNPROCESSABLE_ENTITY),
            (&"ABC".to_string(), photo.clone(), StatusCode::BAD_REQUEST),
        ] {
            let response = reqwest::Client::new()
                .put(format!("{}/v1/proofs/{sha}", server.base))
                .bearer_auth(&phone.token)
                .header("content-type", "application/octet-stream")
                .body(bytes)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let answer: Value = response.json().await.unwrap();
            assert_eq!(status, expected, "{backend:?} {sha}: {answer}");
            let schema =
                &operation["responses"][status.as_str()]["content"]["application/json"]["schema"];
            assert!(schema.is_object(), "{status} is not documented");
            api.validate(&format!("PUT /v1/proofs/{sha} {status}"), schema, &answer);
        }
        let staff = server.token(TokenRole::BackOffice, "bo-1", None);
        let mut api = api;
        let (status, queue) = api
            .call(
                Method::GET,
                "/v1/backoffice/queue",
                "/v1/backoffice/queue?kind=attempt",
                Some(&staff),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let proofs: Vec<&Value> = queue
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|e| e["attempt"]["proofs"].as_array().unwrap())
            .collect();
        assert!(
            proofs
                .iter()
                .any(|p| p["sha256"] == photo_sha.as_str() && p["url"].is_string()),
            "{queue}"
        );
        assert!(proofs.iter().any(|p| p["url"].is_null()), "{queue}");
        let (status, _) = api
            .call(
                Method::GET,
                "/v1/backoffice/items/{s10}",
                &format!("/v1/backoffice/items/{}", fixtures::s10(1)),
                Some(&staff),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = api
            .call(
                Method::GET,
                "/v1/backoffice/proofs/{sha256}",
                &format!("/v1/backoffice/proofs/{big_sha}"),
                Some(&staff),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        server.stop().await;
    }
}
