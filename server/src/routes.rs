//! Every HTTP route, declared once with its documentation: [`crate::router`] serves this table
//! and `/openapi.json` is generated from it, so a route cannot be served undocumented.

use std::sync::Arc;

use axum::routing::{get, post, put, MethodRouter};
use serde_json::{json, Map, Value};

use crate::{backoffice_api, customer_api, sync_api, web, AppState};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, metrics, the page's static files).
    Public,
    /// A postman's device token.
    Postman,
    /// A customer's token.
    Customer,
    /// A back-office token.
    BackOffice,
}

/// One route: its method and path, what it is for, and its handler.
pub struct Endpoint {
    /// `GET`, `POST` or `PUT`.
    pub method: &'static str,
    /// The axum path, `{name}` for parameters (as OpenAPI writes them too).
    pub path: &'static str,
    /// One line for the OpenAPI summary.
    pub summary: &'static str,
    /// Who may call it.
    pub access: Access,
    /// The request body's media type and shape, if it takes one.
    pub body: Option<(&'static str, &'static str)>,
    /// Status codes it answers besides 401/403, with their meaning.
    pub responses: &'static [(u16, &'static str)],
    /// The handler.
    pub handler: MethodRouter<Arc<AppState>>,
}

const JSON: &str = "application/json";

/// The route table.
pub fn endpoints() -> Vec<Endpoint> {
    use Access::*;
    let e = |method, path, summary, access, body, responses, handler| Endpoint {
        method,
        path,
        summary,
        access,
        body,
        responses,
        handler,
    };
    vec![
        e("GET", "/healthz", "The process is up.", Public, None, &[(200, "ok")], get(|| async { "ok" })),
        e("GET", "/readyz", "The database answers.", Public, None, &[(200, "ready"), (503, "database unavailable")], get(crate::ready)),
        e("GET", "/metrics", "Prometheus metrics.", Public, None, &[(200, "text exposition format")], get(crate::metrics)),
        e("GET", "/openapi.json", "This document.", Public, None, &[(200, "OpenAPI 3.1")], get(crate::openapi)),
        e("POST", "/v1/sync", "Sync a phone's documents: one request frame in, one answer frame out.", Postman, Some((tournee_sync_core::sync::wire::MEDIA_TYPE, "a sync request frame (sync-core wire format)")), &[(200, "an answer frame"), (400, "malformed frame"), (413, "frame over the size limit")], post(sync_api::sync)),
        e("GET", "/v1/rounds", "The rounds published to the caller's device, in delivery order.", Postman, None, &[(200, "[RoundManifest]")], get(sync_api::rounds)),
        e("GET", "/v1/customer/items", "The customer's delivery points and items, with status, UPU events, latest attempt and where each waits.", Customer, None, &[(200, "MyParcels")], get(customer_api::my_parcels)),
        e("GET", "/v1/customer/items/{s10}", "One of the customer's items.", Customer, None, &[(200, "ItemView"), (404, "not the customer's item")], get(customer_api::my_item)),
        e("POST", "/v1/customer/items/{s10}/choice", "Choose where and when to get an item; written into the item's document for the postman's phone.", Customer, Some((JSON, "ChoiceRequest: {kind: redeliver_on, date} | {kind: pickup_point, pickup_point} | {kind: neighbour, neighbour} | {kind: safe_place, place} | {kind: hold}")), &[(201, "ChoiceMade"), (404, "not the customer's item"), (409, "the item was delivered already"), (422, "forbidden by the item's requirements, a date in the past or beyond the holding period, or a malformed choice")], post(customer_api::choose)),
        e("PUT", "/v1/customer/delivery-points/{id}/preferences", "Set standing preferences for a delivery point.", Customer, Some((JSON, "Preferences: {safe_place, preferred_neighbour, preferred_pickup_point, never_to_neighbour}")), &[(200, "DeliveryPointView"), (404, "not the customer's delivery point"), (422, "invalid preferences")], put(customer_api::set_preferences)),
        e("POST", "/v1/customer/items/{s10}/attempts/{attempt}/dispute", "Dispute an attempt (\"I was at home\"); it joins the back-office queue with its evidence.", Customer, Some((JSON, "{comment}")), &[(201, "{queue_id}"), (404, "unknown attempt"), (409, "already disputed"), (422, "empty comment")], post(customer_api::dispute)),
        e("GET", "/v1/backoffice/queue", "The review queue: corrections, flagged attempts and disputes, with evidence. Query: kind, status (open|closed|all).", BackOffice, None, &[(200, "[QueueEntry]"), (400, "unknown kind or status")], get(backoffice_api::queue)),
        e("GET", "/v1/backoffice/queue/{id}", "One queue entry with its evidence.", BackOffice, None, &[(200, "QueueEntry"), (404, "no such entry")], get(backoffice_api::queue_entry)),
        e("POST", "/v1/backoffice/queue/{id}/decision", "Approve or reject an entry with a comment; an approved correction is published into its delivery point's document.", BackOffice, Some((JSON, "{decision: approve|reject, comment}")), &[(200, "QueueEntry"), (404, "no such entry"), (409, "already decided"), (422, "missing comment or bad decision")], post(backoffice_api::decide)),
        e("GET", "/v1/backoffice/items/{s10}", "An item's timeline: events, attempts with positions, choices.", BackOffice, None, &[(200, "ItemTimeline"), (404, "no such item")], get(backoffice_api::item_timeline)),
        e("GET", "/backoffice", "The back-office page.", Public, None, &[(200, "HTML")], get(web::page)),
        e("GET", "/backoffice/app.js", "The page's script.", Public, None, &[(200, "JavaScript")], get(web::script)),
        e("GET", "/backoffice/app.css", "The page's style sheet.", Public, None, &[(200, "CSS")], get(web::style)),
        e("GET", "/v1/backoffice/search", "Find items by s10, address, postman, round and date (query parameters).", BackOffice, None, &[(200, "[SearchRow]"), (400, "no filter given")], get(backoffice_api::search)),
    ]
}

/// The OpenAPI 3.1 document of [`endpoints`].
pub fn openapi() -> Value {
    let mut paths = Map::new();
    for endpoint in endpoints() {
        let mut responses = Map::new();
        for (code, meaning) in endpoint.responses {
            responses.insert(code.to_string(), json!({ "description": meaning }));
        }
        if endpoint.access != Access::Public {
            responses.insert(
                "401".into(),
                json!({ "description": "no token, or a token that does not verify" }),
            );
            responses.insert(
                "403".into(),
                json!({ "description": "a token of another role, or a revoked device" }),
            );
        }
        let parameters: Vec<Value> = endpoint
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        let mut operation = json!({
            "summary": endpoint.summary,
            "responses": responses,
            "parameters": parameters,
        });
        let role = match endpoint.access {
            Access::Public => None,
            Access::Postman => Some("postman"),
            Access::Customer => Some("customer"),
            Access::BackOffice => Some("back_office"),
        };
        if let Some(role) = role {
            operation["security"] = json!([{ "bearer": [] }]);
            operation["x-role"] = json!(role);
        }
        if let Some((media, shape)) = endpoint.body {
            operation["requestBody"] = json!({
                "required": true,
                "description": shape,
                "content": { media: { "schema": if media == JSON { json!({ "type": "object" }) } else { json!({ "type": "string", "format": "binary" }) } } },
            });
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
        "components": { "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } } },
        "paths": paths,
    })
}
