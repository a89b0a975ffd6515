//! Every HTTP route, declared once with its documentation: [`crate::router`] serves this table
//! and `/openapi.json` is generated from it, so a route cannot be served undocumented.

use std::sync::Arc;

use axum::routing::{get, post, put, MethodRouter};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};
use tournee_sync_core::model::{Preferences, RoundManifest};
use tournee_sync_core::sync::wire::MEDIA_TYPE;

use crate::backoffice_api::{DecisionRequest, ItemTimeline, QueueEntry, QueueQuery, SearchQuery};
use crate::customer_api::{
    ChoiceMade, ChoiceRequest, DeliveryPointView, DisputeQueued, DisputeRequest, MyParcels,
};
use crate::db::SearchRow;
use crate::error::ErrorBody;
use crate::item_view::ItemView;
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
}

/// What a route answers when it succeeds.
#[derive(Clone, Copy)]
pub enum Reply {
    /// JSON of this type.
    Json(SchemaFn),
    /// Not JSON: a media type and a description.
    Other(&'static str, &'static str),
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
    use Access::*;
    use Input::{Frame, Nothing, Query};
    let e = |method, path, summary, access, input, ok, errors, handler| Endpoint {
        method,
        path,
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
        e("GET", "/healthz", "The process is up.", Public, Nothing, (200, Reply::Other(TEXT, "ok")), &[], get(|| async { "ok" })),
        e("GET", "/readyz", "The database answers.", Public, Nothing, (200, Reply::Other(TEXT, "ready")), &[(503, "database unavailable")], get(crate::ready)),
        e("GET", "/metrics", "Prometheus metrics.", Public, Nothing, (200, Reply::Other("text/plain; version=0.0.4", "Prometheus text exposition format")), &[], get(crate::metrics)),
        e("GET", "/openapi.json", "This document.", Public, Nothing, (200, Reply::Other("application/json", "OpenAPI 3.1")), &[], get(crate::openapi)),
        e("POST", "/v1/sync", "Sync a phone's documents: one request frame in, one answer frame out.", Postman, Frame, (200, Reply::Other(MEDIA_TYPE, "an answer frame")), &[(400, "malformed frame"), (413, "frame over the size limit")], post(sync_api::sync)),
        e("GET", "/v1/rounds", "The rounds published to the caller's device, in delivery order.", Postman, Nothing, (200, json_out(schema::<Vec<RoundManifest>>)), &[], get(sync_api::rounds)),
        e("GET", "/v1/customer/items", "The customer's delivery points and items, with status, UPU events, latest attempt and where each waits.", Customer, Nothing, (200, json_out(schema::<MyParcels>)), &[], get(customer_api::my_parcels)),
        e("GET", "/v1/customer/items/{s10}", "One of the customer's items.", Customer, Nothing, (200, json_out(schema::<ItemView>)), &[(404, "not the customer's item")], get(customer_api::my_item)),
        e("POST", "/v1/customer/items/{s10}/choice", "Choose where and when to get an item; written into the item's document for the postman's phone.", Customer, json_in(schema::<ChoiceRequest>), (201, json_out(schema::<ChoiceMade>)), &[(400, "not JSON"), (404, "not the customer's item"), (409, "the item was delivered already"), (422, "forbidden by the item's requirements, a date in the past or beyond the holding period, or a malformed choice")], post(customer_api::choose)),
        e("PUT", "/v1/customer/delivery-points/{id}/preferences", "Set standing preferences for a delivery point.", Customer, json_in(schema::<Preferences>), (200, json_out(schema::<DeliveryPointView>)), &[(400, "not JSON"), (404, "not the customer's delivery point"), (422, "invalid preferences")], put(customer_api::set_preferences)),
        e("POST", "/v1/customer/items/{s10}/attempts/{attempt}/dispute", "Dispute an attempt (\"I was at home\"); it joins the back-office queue with its evidence.", Customer, json_in(schema::<DisputeRequest>), (201, json_out(schema::<DisputeQueued>)), &[(400, "not JSON"), (404, "unknown attempt"), (409, "already disputed"), (422, "empty comment")], post(customer_api::dispute)),
        e("GET", "/v1/backoffice/queue", "The review queue: corrections, flagged attempts and disputes, with evidence.", BackOffice, Query(schema::<QueueQuery>), (200, json_out(schema::<Vec<QueueEntry>>)), &[(400, "unknown kind, status or parameter")], get(backoffice_api::queue)),
        e("GET", "/v1/backoffice/queue/{entry}", "One queue entry with its evidence.", BackOffice, Nothing, (200, json_out(schema::<QueueEntry>)), &[(400, "the entry is not a number"), (404, "no such entry")], get(backoffice_api::queue_entry)),
        e("POST", "/v1/backoffice/queue/{entry}/decision", "Approve or reject an entry with a comment; an approved correction is published into its delivery point's document.", BackOffice, json_in(schema::<DecisionRequest>), (200, json_out(schema::<QueueEntry>)), &[(400, "not JSON, or the entry is not a number"), (404, "no such entry"), (409, "already decided"), (422, "missing comment or bad decision")], post(backoffice_api::decide)),
        e("GET", "/v1/backoffice/items/{s10}", "An item's timeline: events, attempts with positions, choices.", BackOffice, Nothing, (200, json_out(schema::<ItemTimeline>)), &[(404, "no such item")], get(backoffice_api::item_timeline)),
        e("GET", "/v1/backoffice/search", "Find items by S10 number, address, postman, round and date; at least one.", BackOffice, Query(schema::<SearchQuery>), (200, json_out(schema::<Vec<SearchRow>>)), &[(400, "no filter given, or an unknown parameter")], get(backoffice_api::search)),
        e("GET", "/backoffice", "The back-office page.", Public, Nothing, (200, Reply::Other("text/html; charset=utf-8", "the page")), &[], get(web::page)),
        e("GET", "/backoffice/app.js", "The page's script.", Public, Nothing, (200, Reply::Other("text/javascript; charset=utf-8", "the script")), &[], get(web::script)),
        e("GET", "/backoffice/app.css", "The page's style sheet.", Public, Nothing, (200, Reply::Other("text/css; charset=utf-8", "the style sheet")), &[], get(web::style)),
    ];
    table
}

/// A path parameter's schema: queue entries are numbers, everything else is text.
fn path_parameter(name: &str) -> Value {
    match name {
        "entry" => json!({ "type": "integer", "format": "int64" }),
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
        responses.insert(
            code.to_string(),
            match reply {
                Reply::Json(f) => json!({
                    "description": "success",
                    "content": content(JSON, f(&mut generator).to_value()),
                }),
                Reply::Other(media, meaning) => json!({
                    "description": meaning,
                    "content": content(media, json!({ "type": "string" })),
                }),
            },
        );
        let mut refusals: Vec<(u16, &str)> = endpoint.errors.to_vec();
        if endpoint.access != Access::Public {
            refusals.push((401, "no token, or a token that does not verify"));
            refusals.push((403, "a token of another role, or a revoked device"));
            // Every authenticated route reads the database (the device's revocation at least).
            refusals.push((503, "the database failed; retry later"));
        }
        for (code, meaning) in refusals {
            let answer = if matches!(reply, Reply::Other(..)) && endpoint.access == Access::Public {
                json!({ "description": meaning })
            } else {
                json!({ "description": meaning, "content": error.clone() })
            };
            responses.insert(code.to_string(), answer);
        }
        let mut parameters: Vec<Value> = endpoint
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": path_parameter(name) }))
            .collect();
        let mut operation = json!({ "summary": endpoint.summary, "responses": responses });
        match endpoint.input {
            Input::Nothing => {}
            Input::Query(f) => parameters.extend(query_parameters(&mut generator, f)),
            Input::Json(f) => {
                operation["requestBody"] = json!({
                    "required": true,
                    "content": content(JSON, f(&mut generator).to_value()),
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
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } },
            "schemas": generator.take_definitions(true),
        },
        "paths": paths,
    })
}
