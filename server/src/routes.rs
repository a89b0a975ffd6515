//! Every HTTP route, declared once with its documentation: [`crate::router`] serves this table
//! and `/openapi.json` is generated from it, so a route cannot be served undocumented.

use std::sync::Arc;

use axum::routing::{delete, get, post, put, MethodRouter};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};
use tournee_sync_core::model::{Preferences, RoundManifest};
use tournee_sync_core::sync::wire::MEDIA_TYPE;

use crate::auth::TokenRole;
use crate::backoffice_api::{DecisionRequest, ItemTimeline, QueueEntry, QueueQuery, SearchQuery};
use crate::customer_api::{
    ChoiceMade, ChoiceRequest, DeliveryPointView, DisputeQueued, DisputeRequest, MyParcels,
};
use crate::db::SearchRow;
use crate::error::ErrorBody;
use crate::feed_api::{FeedPage, FeedQuery};
use crate::import::lines::AnyLine;
use crate::item_view::ItemView;
use crate::keys_api::{KeyEnrolled, KeyEnrollment, ServerKeys};
use crate::proofs_api::ProofStored;
use crate::public_api::{
    CardChoiceMade, CardChoiceRequest, PickupPoints, PickupPointsQuery, TrackQuery, Tracking,
};
use crate::webhooks::{Created, Subscription, SubscriptionStatus};
use crate::webhooks_api::SubscribeRequest;
use crate::{
    backoffice_api, customer_api, feed_api, import_api, keys_api, proofs_api, public_api, sync_api,
    web, webhooks_api, AppState,
};

/// Who may call a route. The access layer (`crate::access`) enforces exactly this for every
/// route, and `/openapi.json` documents it (`x-roles`), so the two cannot disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, metrics, the page's static files).
    Public,
    /// Anyone, without a token, at most `--public-lookups-per-minute` per client address: the
    /// lookups of customers without an account (tracking, notice cards, pickup points), whose
    /// numbers must not be tried in bulk.
    PublicLookup,
    /// A token of one of these roles.
    Roles(&'static [TokenRole]),
}

impl Access {
    /// Whether a token of `role` may call the route.
    pub fn admits(self, role: TokenRole) -> bool {
        match self {
            Access::Public | Access::PublicLookup => true,
            Access::Roles(roles) => roles.contains(&role),
        }
    }
}

/// Postmen's devices.
pub const POSTMAN: Access = Access::Roles(&[TokenRole::Postman]);
/// Whoever writes into documents through sync: postmen's devices and customers' apps. The back
/// office never syncs: its writes go through the reviewed routes, which project and audit them.
pub const SYNCING: Access = Access::Roles(&[TokenRole::Postman, TokenRole::Customer]);
/// Customers.
pub const CUSTOMER: Access = Access::Roles(&[TokenRole::Customer]);
/// Back-office staff.
pub const BACK_OFFICE: Access = Access::Roles(&[TokenRole::BackOffice]);
/// The operator's systems: imports of reference data, the event feed, webhook subscriptions.
pub const INTEGRATION: Access = Access::Roles(&[TokenRole::Integration]);

/// Builds a type's JSON Schema into the document's `components/schemas`.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// The schema of `T`, as a [`SchemaFn`].
fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// What a route takes besides its path parameters.
#[derive(Clone, Copy)]
pub enum Input {
    /// Nothing.
    Nothing,
    /// Query parameters: the properties of this type.
    Query(SchemaFn),
    /// A JSON body of this type.
    Json(SchemaFn),
    /// A sync frame (`tournee_sync_core::sync::wire`).
    Frame,
    /// NDJSON, streamed: one object of this type per line.
    Ndjson(SchemaFn),
    /// A file's raw bytes, of one of these media types (proofs of delivery).
    Bytes(&'static [&'static str]),
}

/// What a route answers when it succeeds.
#[derive(Clone, Copy)]
pub enum Reply {
    /// JSON of this type.
    Json(SchemaFn),
    /// Not JSON: a media type and a description.
    Other(&'static str, &'static str),
    /// A file's bytes, of one of these media types, and a description.
    File(&'static [&'static str], &'static str),
}

/// One route: its method and path, what it is for, and its handler.
pub struct Endpoint {
    /// `GET`, `POST`, `PUT` or `DELETE`.
    pub method: &'static str,
    /// The axum path, `{name}` for parameters (as OpenAPI writes them too).
    pub path: &'static str,
    /// The OpenAPI `operationId`: the name generated clients give the call.
    pub operation: &'static str,
    /// One line for the OpenAPI summary.
    pub summary: &'static str,
    /// Who may call it.
    pub access: Access,
    /// What it takes.
    pub input: Input,
    /// Its success status and answer.
    pub ok: (u16, Reply),
    /// The refusals it answers besides 401/403, with their meaning; bodies are [`ErrorBody`].
    pub errors: &'static [(u16, &'static str)],
    /// The handler.
    pub handler: MethodRouter<Arc<AppState>>,
}

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

/// The route table.
pub fn endpoints() -> Vec<Endpoint> {
    use Access::{Public, PublicLookup};
    use Input::{Frame, Nothing, Query};
    let e = |method, path, operation, summary, access, input, ok, errors, handler| Endpoint {
        method,
        path,
        operation,
        summary,
        access,
        input,
        ok,
        errors,
        handler,
    };
    let json_in = |f: SchemaFn| Input::Json(f);
    let json_out = |f: SchemaFn| Reply::Json(f);
    #[rustfmt::skip]
    let table = vec![
        e("GET", "/healthz", "health", "The process is up.", Public, Nothing, (200, Reply::Other(TEXT, "ok")), &[], get(|| async { "ok" })),
        e("GET", "/readyz", "readiness", "The database takes a write, within a second.", Public, Nothing, (200, Reply::Other(TEXT, "ready")), &[(503, "database unavailable")], get(crate::ready)),
        e("GET", "/metrics", "metrics", "Prometheus metrics.", Public, Nothing, (200, Reply::Other(crate::metrics::CONTENT_TYPE, "OpenMetrics text")), &[(404, "served on the metrics address instead (--metrics-listen)")], get(crate::metrics)),
        e("GET", "/openapi.json", "openApi", "This document.", Public, Nothing, (200, Reply::Other("application/json", "OpenAPI 3.1")), &[], get(crate::openapi)),
        e("POST", "/v1/sync", "sync", "Sync a phone's documents: one request frame in, one answer frame out.", SYNCING, Frame, (200, Reply::Other(MEDIA_TYPE, "an answer frame")), &[(400, "malformed frame"), (413, "frame over the size limit")], post(sync_api::sync)),
        e("GET", "/.well-known/tournee-signing-keys", "serverSigningKeys", "The server's public keys (ES256), which sign every change it writes on someone's behalf: whoever holds a change and its signature can check it.", Public, Nothing, (200, json_out(schema::<ServerKeys>)), &[], get(keys_api::server_keys)),
        e("PUT", "/v1/devices/signing-key", "enrollDeviceKey", "Register the public half of the caller's device signing key (P-256), once: every change the device records is signed with it, and checked against it whoever uploads it. 201 when registered, 200 when it was already; a device with another key keeps it (the back office replaces it).", POSTMAN, json_in(schema::<KeyEnrollment>), (201, json_out(schema::<KeyEnrolled>)), &[(400, "not JSON"), (403, "the device is unknown or revoked (unknown_device)"), (409, "the device has another key (key_already_registered)"), (422, "not a P-256 public key (invalid_key)")], put(keys_api::enroll)),
        e("GET", "/v1/rounds", "listRounds", "The rounds published to the caller's device, in delivery order.", POSTMAN, Nothing, (200, json_out(schema::<Vec<RoundManifest>>)), &[], get(sync_api::rounds)),
        e("PUT", "/v1/proofs/{sha256}", "uploadProof", "Upload the file of a photo or signature that an attempt recorded by this device names by its SHA-256, after that attempt synced. The media type is read from the file's first bytes (JPEG, PNG, WebP or SVG). 201 when stored, 200 when it was already; refused with nothing stored when no attempt of this device names the hash, the bytes do not hash to it, the file is over --proof-max-bytes or not an image.", POSTMAN, Input::Bytes(&crate::proofs_api::UPLOAD_MEDIA_TYPES), (201, json_out(schema::<ProofStored>)), &[(400, "the path is not a lower-case hex SHA-256"), (410, "the file was deleted after its retention period; it is not taken again"), (413, "over --proof-max-bytes (proof_too_large)"), (415, "not a JPEG, PNG, WebP or SVG image (unsupported_proof_type), or a Content-Type other than these and application/octet-stream"), (422, "no attempt of this device names this hash (proof_not_referenced), or the bytes hash to another (proof_hash_mismatch)")], put(proofs_api::upload)),
        e("GET", "/v1/customer/items", "listMyParcels", "The customer's delivery points and items, with status, UPU events, latest attempt and where each waits.", CUSTOMER, Nothing, (200, json_out(schema::<MyParcels>)), &[], get(customer_api::my_parcels)),
        e("GET", "/v1/customer/items/{s10}", "getMyItem", "One of the customer's items.", CUSTOMER, Nothing, (200, json_out(schema::<ItemView>)), &[(404, "not the customer's item")], get(customer_api::my_item)),
        e("POST", "/v1/customer/items/{s10}/choice", "chooseForItem", "Choose where and when to get an item; written into the item's document for the postman's phone.", CUSTOMER, json_in(schema::<ChoiceRequest>), (201, json_out(schema::<ChoiceMade>)), &[(400, "not JSON"), (404, "not the customer's item"), (409, "the item was delivered already"), (422, "forbidden by the item's requirements, a date in the past or beyond the holding period, or a malformed choice")], post(customer_api::choose)),
        e("PUT", "/v1/customer/delivery-points/{id}/preferences", "setPreferences", "Set standing preferences for a delivery point.", CUSTOMER, json_in(schema::<Preferences>), (200, json_out(schema::<DeliveryPointView>)), &[(400, "not JSON"), (404, "not the customer's delivery point"), (422, "invalid preferences")], put(customer_api::set_preferences)),
        e("POST", "/v1/customer/items/{s10}/attempts/{attempt}/dispute", "disputeAttempt", "Dispute an attempt (\"I was at home\"); it joins the back-office queue with its evidence.", CUSTOMER, json_in(schema::<DisputeRequest>), (201, json_out(schema::<DisputeQueued>)), &[(400, "not JSON"), (404, "unknown attempt"), (409, "already disputed"), (422, "empty comment")], post(customer_api::dispute)),
        e("GET", "/v1/backoffice/queue", "listQueue", "The review queue: corrections, flagged attempts and disputes, with evidence.", BACK_OFFICE, Query(schema::<QueueQuery>), (200, json_out(schema::<Vec<QueueEntry>>)), &[(400, "unknown kind, status or parameter")], get(backoffice_api::queue)),
        e("GET", "/v1/backoffice/queue/{entry}", "getQueueEntry", "One queue entry with its evidence.", BACK_OFFICE, Nothing, (200, json_out(schema::<QueueEntry>)), &[(400, "the entry is not a number"), (404, "no such entry")], get(backoffice_api::queue_entry)),
        e("POST", "/v1/backoffice/queue/{entry}/decision", "decideQueueEntry", "Approve or reject an entry with a comment; an approved correction is published into its delivery point's document.", BACK_OFFICE, json_in(schema::<DecisionRequest>), (200, json_out(schema::<QueueEntry>)), &[(400, "not JSON, or the entry is not a number"), (404, "no such entry"), (409, "already decided"), (422, "missing comment or bad decision")], post(backoffice_api::decide)),
        e("GET", "/v1/backoffice/items/{s10}", "getItemTimeline", "An item's timeline: events, attempts with positions, choices.", BACK_OFFICE, Nothing, (200, json_out(schema::<ItemTimeline>)), &[(404, "no such item")], get(backoffice_api::item_timeline)),
        e("GET", "/v1/backoffice/proofs/{sha256}", "getProof", "A proof of delivery's file (a photo or signature an attempt names), with its media type; the back office sees each attempt's proofs, with this URL once uploaded, in the queue and the item's timeline.", BACK_OFFICE, Nothing, (200, Reply::File(&crate::proofs::MEDIA_TYPES, "the file")), &[(404, "no such proof stored (not uploaded yet)"), (410, "deleted after its retention period (--proof-retention-days)")], get(proofs_api::file)),
        e("GET", "/v1/backoffice/search", "searchItems", "Find items by S10 number, address, postman, round and date; at least one.", BACK_OFFICE, Query(schema::<SearchQuery>), (200, json_out(schema::<Vec<SearchRow>>)), &[(400, "no filter given, or an unknown parameter")], get(backoffice_api::search)),
        e("POST", "/v1/import/{kind}", "importReferenceData", "Load reference data from NDJSON (kinds: delivery-points, customers, items, pickup-points, rounds, devices), each line an upsert by its natural key; the answer, streamed as NDJSON, gives each line's outcome (created, updated, unchanged, refused with its field) and ends with the totals.", INTEGRATION, Input::Ndjson(schema::<AnyLine>), (200, Reply::Other(crate::import_api::NDJSON, "one report line per input line, then {\"totals\": …}")), &[(400, "an unknown kind"), (413, "the upload declares more than the import size limit")], post(import_api::import)),
        e("GET", "/v1/feed", "readFeed", "The event feed: every reconciled fact, in commit order, after a cursor; a follower never misses an event nor sees one twice.", INTEGRATION, Query(schema::<FeedQuery>), (200, json_out(schema::<FeedPage>)), &[(400, "a malformed cursor or limit")], get(feed_api::feed)),
        e("POST", "/v1/webhooks", "createWebhook", "Subscribe a URL to events of the feed (every type unless `event_types` names some), from the feed's beginning unless `from` is `now`; the answer holds the signing secret, shown this once.", INTEGRATION, json_in(schema::<SubscribeRequest>), (201, json_out(schema::<Created>)), &[(422, "a URL that is not absolute http, or an unknown event type")], post(webhooks_api::create)),
        e("GET", "/v1/webhooks", "listWebhooks", "Every webhook subscription (without secrets).", INTEGRATION, Nothing, (200, json_out(schema::<Vec<Subscription>>)), &[], get(webhooks_api::list)),
        e("GET", "/v1/webhooks/{id}", "getWebhook", "One webhook subscription: enabled or why not, and its deliveries pending, delivered and failed.", INTEGRATION, Nothing, (200, json_out(schema::<SubscriptionStatus>)), &[(404, "no such subscription")], get(webhooks_api::get)),
        e("DELETE", "/v1/webhooks/{id}", "deleteWebhook", "Remove a webhook subscription and its deliveries; answers it as it was.", INTEGRATION, Nothing, (200, json_out(schema::<Subscription>)), &[(404, "no such subscription")], delete(webhooks_api::remove)),
        e("POST", "/v1/webhooks/{id}/enable", "enableWebhook", "Enable a subscription that was disabled: its failed deliveries are retried, and what was recorded meanwhile is delivered.", INTEGRATION, Nothing, (200, json_out(schema::<SubscriptionStatus>)), &[(404, "no such subscription")], post(webhooks_api::enable)),
        e("GET", "/v1/track/{s10}", "trackItem", "Track an item by its S10 number and the postcode of its address, without an account: status, UPU events and where it waits, in words (French, or English by Accept-Language); nothing personal. An unknown number and a wrong postcode get the same 404. Cacheable: ETag and If-None-Match (304).", PublicLookup, Query(schema::<TrackQuery>), (200, json_out(schema::<Tracking>)), &[(404, "nothing matches this number and postcode")], get(public_api::track)),
        e("GET", "/v1/notices/{notice}", "trackNotice", "The item a notice card was left for, by the card's number and the postcode, as /v1/track answers it.", PublicLookup, Query(schema::<TrackQuery>), (200, json_out(schema::<Tracking>)), &[(404, "nothing matches this number and postcode")], get(public_api::notice)),
        e("POST", "/v1/track/{s10}/choice", "chooseWithNumber", "Make the one choice of the item's card (redeliver on a date, a pickup point, a neighbour, a safe place, hold) with its S10 number and postcode: written into the item's document for the postman's phone; a new choice replaces the card's last one, the same one again writes nothing.", PublicLookup, json_in(schema::<CardChoiceRequest>), (200, json_out(schema::<CardChoiceMade>)), &[(404, "nothing matches this number and postcode"), (409, "the item was delivered already"), (422, "forbidden by the item's requirements, a date in the past or beyond the holding period, an unknown pickup point, or a malformed choice")], post(public_api::choose_by_s10)),
        e("POST", "/v1/notices/{notice}/choice", "chooseWithNotice", "As chooseWithNumber, with the notice card's number and the postcode.", PublicLookup, json_in(schema::<CardChoiceRequest>), (200, json_out(schema::<CardChoiceMade>)), &[(404, "nothing matches this number and postcode"), (409, "the item was delivered already"), (422, "forbidden by the item's requirements, a date in the past or beyond the holding period, an unknown pickup point, or a malformed choice")], post(public_api::choose_by_notice)),
        e("GET", "/v1/pickup-points", "listPickupPoints", "Pickup points and post offices of a postcode or near a position (nearest first, with the distance), with address and opening hours; at most `limit`.", PublicLookup, Query(schema::<PickupPointsQuery>), (200, json_out(schema::<PickupPoints>)), &[(400, "neither postcode nor near, or a malformed one")], get(public_api::pickup_points)),
        e("GET", "/track", "trackingPage", "The public tracking page (French, or English by Accept-Language or its switch).", Public, Nothing, (200, Reply::Other("text/html; charset=utf-8", "the page")), &[], get(web::track_page)),
        e("GET", "/track/track.js", "trackingScript", "The tracking page's script.", Public, Nothing, (200, Reply::Other("text/javascript; charset=utf-8", "the script")), &[], get(web::track_script)),
        e("GET", "/track/track.css", "trackingStyle", "The tracking page's style sheet.", Public, Nothing, (200, Reply::Other("text/css; charset=utf-8", "the style sheet")), &[], get(web::track_style)),
        e("GET", "/backoffice", "backofficePage", "The back-office page.", Public, Nothing, (200, Reply::Other("text/html; charset=utf-8", "the page")), &[], get(web::page)),
        e("GET", "/backoffice/app.js", "backofficeScript", "The page's script.", Public, Nothing, (200, Reply::Other("text/javascript; charset=utf-8", "the script")), &[], get(web::script)),
        e("GET", "/backoffice/app.css", "backofficeStyle", "The page's style sheet.", Public, Nothing, (200, Reply::Other("text/css; charset=utf-8", "the style sheet")), &[], get(web::style)),
        e("GET", "/backoffice/words.json", "backofficeWords", "The words the page shows for codes (outcomes, UPU events, statuses, kinds, reasons), in French and English, and the service's time zone.", Public, Nothing, (200, json_out(schema::<web::PageWords>)), &[], get(web::page_words)),
        e("GET", "/assets/leaflet/leaflet.js", "leafletScript", "Leaflet 1.9.4, the map library of the back-office page (vendored: server/web-vendor).", Public, Nothing, (200, Reply::Other("text/javascript; charset=utf-8", "the script")), &[], get(web::leaflet_script)),
        e("GET", "/assets/leaflet/leaflet.css", "leafletStyle", "Leaflet's style sheet.", Public, Nothing, (200, Reply::Other("text/css; charset=utf-8", "the style sheet")), &[], get(web::leaflet_style)),
        e("GET", "/assets/leaflet/LICENSE", "leafletLicence", "Leaflet's licence (BSD-2-Clause).", Public, Nothing, (200, Reply::Other("text/plain; charset=utf-8", "the licence")), &[], get(web::leaflet_licence)),
    ];
    table
}

/// The operations that answer a page at a time, with a `Link` header to the next page.
const PAGED: [&str; 2] = ["listQueue", "searchItems"];

/// The audience a route serves, as its OpenAPI tag (`public`, `customer`, `back office`…).
pub fn audience(path: &str) -> &'static str {
    if path.starts_with("/v1/customer") {
        "customer"
    } else if path.starts_with("/v1/backoffice") {
        "back office"
    } else if path.starts_with("/v1/feed")
        || path.starts_with("/v1/import")
        || path.starts_with("/v1/webhooks")
    {
        "integration"
    } else if path.starts_with("/v1/track")
        || path.starts_with("/v1/notices")
        || path.starts_with("/v1/pickup-points")
    {
        "public"
    } else if path.starts_with("/v1/") {
        "phone"
    } else if path.starts_with("/backoffice") || path.starts_with("/assets/") {
        "back-office page"
    } else if path.starts_with("/track") {
        "tracking page"
    } else {
        "operations"
    }
}

/// A path parameter's schema: queue entries are numbers, everything else is text.
fn path_parameter(name: &str) -> Value {
    match name {
        "entry" => json!({ "type": "integer", "format": "int64" }),
        "notice" => json!({ "type": "string", "pattern": "^[A-Za-z0-9]{4,32}$" }),
        "sha256" => json!({ "type": "string", "pattern": "^[0-9a-f]{64}$" }),
        "kind" => {
            json!({ "type": "string", "enum": crate::import::Kind::ALL.map(crate::import::Kind::as_str) })
        }
        _ => json!({ "type": "string", "minLength": 1 }),
    }
}

fn content(media: &str, schema: Value) -> Value {
    json!({ media: { "schema": schema } })
}

/// The query parameters a query type declares: one per property of its schema.
fn query_parameters(generator: &mut SchemaGenerator, f: SchemaFn) -> Vec<Value> {
    let reference = f(generator).to_value();
    let resolved = reference
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
        .and_then(|name| generator.definitions().get(name).cloned())
        .unwrap_or(reference);
    let required: Vec<&str> = resolved
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    resolved
        .get("properties")
        .and_then(Value::as_object)
        .map(|properties| {
            properties
                .iter()
                .map(|(name, schema)| {
                    json!({
                        "name": name,
                        "in": "query",
                        "required": required.contains(&name.as_str()),
                        "description": schema.get("description").cloned().unwrap_or(Value::Null),
                        "schema": schema,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The OpenAPI 3.1 document of [`endpoints`], with the JSON Schemas (2020-12, as OpenAPI 3.1
/// uses) of every body, derived from the types the handlers read and write.
pub fn openapi() -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let error = content(JSON, schema::<ErrorBody>(&mut generator).to_value());
    let mut paths = Map::new();
    for endpoint in endpoints() {
        let mut responses = Map::new();
        let (code, reply) = endpoint.ok;
        let mut success = match reply {
            Reply::Json(f) => json!({
                "description": "success",
                "content": content(JSON, f(&mut generator).to_value()),
            }),
            Reply::Other(media, meaning) => json!({
                "description": meaning,
                "content": content(media, if media == JSON {
                    // This document itself: an OpenAPI object.
                    json!({ "type": "object" })
                } else {
                    json!({ "type": "string" })
                }),
            }),
            Reply::File(media, meaning) => json!({
                "description": meaning,
                "content": media.iter().map(|m| (m.to_string(), json!({ "schema": { "type": "string", "format": "binary" } }))).collect::<Map<String, Value>>(),
            }),
        };
        if PAGED.contains(&endpoint.operation) {
            success["headers"] = json!({ "Link": {
                "description": "when there are more: `<URL of the next page>; rel=\"next\"` (RFC 8288)",
                "schema": { "type": "string" },
            }});
        }
        responses.insert(code.to_string(), success);
        // A file is put by its hash: stored now (201), or held already (200), the same answer.
        if matches!(endpoint.input, Input::Bytes(_)) && code == 201 {
            let mut again = responses["201"].clone();
            again["description"] = json!("stored already: the same answer");
            responses.insert("200".into(), again);
        }
        // What the route itself refuses, then what every route of its kind can answer: the
        // access layer, the guards and the extractors. Every refusal is an `ErrorBody`.
        let mut refusals: Vec<(u16, &str)> = endpoint.errors.to_vec();
        if let Access::Roles(_) = endpoint.access {
            refusals.push((401, "no token, or a token that does not verify"));
            refusals.push((403, "a token of another role, or a revoked device"));
        }
        if endpoint.path.contains('{') || matches!(endpoint.input, Input::Query(_)) {
            refusals.push((400, "a malformed or unknown parameter"));
        }
        match endpoint.input {
            Input::Json(_) => {
                refusals.push((400, "the body is not JSON"));
                refusals.push((422, "the body's shape is wrong, or it breaks a rule"));
            }
            Input::Frame => refusals.push((400, "malformed frame")),
            Input::Bytes(_) => {
                refusals.push((415, "a body of a media type the route does not take"))
            }
            Input::Nothing | Input::Query(_) | Input::Ndjson(_) => {}
        }
        if matches!(
            endpoint.input,
            Input::Json(_) | Input::Frame | Input::Ndjson(_) | Input::Bytes(_)
        ) {
            refusals.push((408, "the body was not received in time"));
            refusals.push((413, "the body is over the size limit"));
        }
        refusals.push((
            429,
            "too many requests from this address or principal; see Retry-After",
        ));
        refusals.push((
            503,
            "the server could not answer in time, or the database failed; retry later",
        ));
        for (code, meaning) in refusals {
            let mut answer = json!({ "description": meaning, "content": error.clone() });
            if code == 429 {
                answer["headers"] = json!({ "Retry-After": {
                    "description": "seconds to wait before trying again",
                    "schema": { "type": "integer", "minimum": 1 },
                }});
            }
            responses.entry(code.to_string()).or_insert(answer);
        }
        let mut parameters: Vec<Value> = endpoint
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": path_parameter(name) }))
            .collect();
        let mut operation = json!({
            "operationId": endpoint.operation,
            "tags": [audience(endpoint.path)],
            "summary": endpoint.summary,
            "responses": responses,
        });
        match endpoint.input {
            Input::Nothing => {}
            Input::Query(f) => parameters.extend(query_parameters(&mut generator, f)),
            Input::Json(f) => {
                operation["requestBody"] = json!({
                    "required": true,
                    "content": content(JSON, f(&mut generator).to_value()),
                });
            }
            Input::Ndjson(f) => {
                operation["requestBody"] = json!({
                    "required": true,
                    "description": "NDJSON: one object per line, of the kind the path names",
                    "content": content(crate::import_api::NDJSON, f(&mut generator).to_value()),
                });
            }
            Input::Bytes(media) => {
                operation["requestBody"] = json!({
                    "required": true,
                    "description": "the file's bytes, as they were hashed",
                    "content": media.iter().map(|m| (m.to_string(), json!({ "schema": { "type": "string", "format": "binary" } }))).collect::<Map<String, Value>>(),
                });
            }
            Input::Frame => {
                operation["requestBody"] = json!({
                    "required": true,
                    "description": "a sync request frame (sync-core wire format)",
                    "content": content(MEDIA_TYPE, json!({ "type": "string", "format": "binary" })),
                });
            }
        }
        operation["parameters"] = Value::Array(parameters);
        match endpoint.access {
            Access::Roles(roles) => {
                operation["security"] = json!([{ "bearer": [] }]);
                operation["x-roles"] = json!(roles.iter().map(|r| r.as_str()).collect::<Vec<_>>());
            }
            // No token; counted per client address like a login form.
            Access::PublicLookup => {
                operation["x-rate-limit"] =
                    json!("public lookups per client address (--public-lookups-per-minute)");
            }
            Access::Public => {}
        }
        let item = paths
            .entry(endpoint.path.to_string())
            .or_insert_with(|| json!({}));
        item[endpoint.method.to_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Tournée",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Postmen's field work: phone sync, the customer's parcels and choices, the back office's review of field updates."
        },
        "tags": [
            { "name": "phone", "description": "The postman's phone: its rounds and sync." },
            { "name": "customer", "description": "A customer's parcels, choices, preferences and disputes." },
            { "name": "back office", "description": "Review of field updates, item timelines, search." },
            { "name": "integration", "description": "The operator's systems: imports of reference data, the event feed, webhooks." },
            { "name": "public", "description": "Customers without an account: tracking by number or notice card with the postcode, the card's one choice, pickup points. No token; limited per client address." },
            { "name": "back-office page", "description": "The reviewers' page and its files." },
            { "name": "tracking page", "description": "The public tracking page and its files." },
            { "name": "operations", "description": "Health, readiness, metrics and this document." },
        ],
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } },
            "schemas": generator.take_definitions(true),
        },
        "paths": paths,
    })
}
