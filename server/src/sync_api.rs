//! `POST /v1/sync` and `GET /v1/rounds`: the phone's two routes.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument;

use axum::body::Body;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::Json;
use tournee_sync_core::automerge::ActorId;
use tournee_sync_core::sync::wire::{RequestBody, SyncRequest};
use tournee_sync_core::sync::{
    answered_with_chunks, attach_signatures, respond, wire, DocOutcome, NewsLog, ParsedRequest,
    Prepared,
};
use tournee_sync_core::validator::Sender;
use tournee_sync_core::{DocId, DocKind};

use crate::auth::{AuthUser, Claims, TokenRole};
use crate::db::{EventRow, Projection, UpuCode};
use crate::error::ApiError;
use crate::json_body;
use crate::metrics::RefusalLabels;
use crate::scope;
use crate::signing;
use crate::write;
use crate::AppState;

/// The media type of sync frames.
pub const SYNC_MEDIA_TYPE: &str = wire::MEDIA_TYPE;

/// Answers one sync batch; acknowledges only what the database committed.
pub async fn sync(
    State(app): State<Arc<AppState>>,
    AuthUser(claims): AuthUser,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let limits = app.limits;
    let body = json_body::body(body).await?;
    let request = tracing::info_span!("sync.decode")
        .in_scope(|| wire::decode_request(&body, &limits))
        .map_err(|e| ApiError::bad_request("malformed_frame", e.to_string()))?;
    // A phone is answered in the version it spoke (decoding checked it is one this build reads).
    let version = wire::frame_version(&body).unwrap_or(wire::VERSION);
    let sender = scope::sender(&app.db, &app.clock, &claims).await?;
    // A sync holds its documents from here to its commit: a bounded number at once, the rest
    // wait their turn holding only their request.
    let _turn = app
        .syncs
        .acquire()
        .instrument(tracing::info_span!("sync.queue"))
        .await
        .map_err(|_| ApiError::internal("the server is shutting down"))?;
    // The pushed changes are parsed once, off the async threads, with what they claim.
    let parse = tracing::info_span!("sync.parse");
    let (request, wanted) = tokio::task::spawn_blocking(move || {
        parse.in_scope(|| {
            let request = ParsedRequest::parse(request, &limits);
            let wanted = request.wanted_claims();
            (request, wanted)
        })
    })
    .await
    .map_err(|e| ApiError::internal(format!("sync task failed: {e}")))?;
    let (prepared, out_for_delivery) = prepare(&app, &claims, request.request(), wanted, &sender)
        .instrument(tracing::info_span!("sync.prepare"))
        .await?;

    // Data flows one way: what was prepared goes into the protocol, which answers without
    // touching the database; what it accepted comes out and is committed below.
    let task_sender = sender.clone();
    let validate = tracing::info_span!("sync.validate");
    let mut answer = tokio::task::spawn_blocking(move || {
        validate.in_scope(|| respond(prepared, request, &task_sender, &limits))
    })
    .await
    .map_err(|e| ApiError::internal(format!("sync task failed: {e}")))?;

    // The answer acknowledges what it accepted: it is sent only once the one write pipeline
    // has committed it (with the EDG events of items this sync took out for delivery).
    let now = app.clock.now_ms();
    let mut rows = Projection::default();
    rows.events
        .extend(out_for_delivery.into_iter().map(|(item, round)| EventRow {
            item_id: item,
            code: UpuCode::OutForDelivery,
            at_ms: now,
            reason: None,
            action: Some("out for delivery on the postman's round".into()),
            source: format!("round:{round}"),
        }));
    let validated = write::Validated {
        accepted: std::mem::take(&mut answer.accepted),
        bases: std::mem::take(&mut answer.bases),
    };
    let committed = write::commit(&app, &sender, validated, rows)
        .instrument(tracing::info_span!("sync.commit"))
        .await?;
    // The phone keeps the signatures of the changes it receives (read after the commit, so the
    // signatures of what this sync stored are among them).
    let answered = answered_with_chunks(&answer.response);
    if !answered.is_empty() {
        let mut held = app.db.signatures_of(&answered).await?;
        attach_signatures(&mut answer.response, |id| {
            held.remove(id).unwrap_or_default()
        });
    }

    app.metrics.syncs.inc();
    app.metrics
        .changes_accepted
        .inc_by(u64::try_from(committed.changes).unwrap_or(u64::MAX));
    for outcome in &answer.outcomes {
        if let DocOutcome::Refused { code, .. } = outcome {
            app.metrics
                .refused
                .get_or_create(&RefusalLabels {
                    code: code.as_str().into(),
                    role: sender.role.as_str().into(),
                })
                .inc();
        }
    }
    app.metrics
        .sync_seconds
        .observe(started.elapsed().as_secs_f64());
    let frame = wire::encode_response_for(&answer.response, version);
    Ok(([(CONTENT_TYPE, SYNC_MEDIA_TYPE)], frame).into_response())
}

/// Everything a sync reads, before the protocol runs without touching the database: the
/// cursor, the documents asked for, the claims on their actors and record keys, the news and
/// its documents; and the items the request takes out for delivery.
async fn prepare(
    app: &AppState,
    claims: &Claims,
    request: &SyncRequest,
    (actors, keys): (BTreeSet<ActorId>, BTreeSet<String>),
    sender: &Sender,
) -> Result<(Prepared, Vec<(String, String)>), ApiError> {
    let limits = app.limits;
    // The cursor before any document is read: news stops there (see `Database::news_upto`).
    let upto = app.db.cursor_bound().await?;
    let asked: HashSet<_> = request.docs.iter().map(|d| d.doc.clone()).collect();
    let out_for_delivery = departures(app, claims, request).await?;
    let mut docs = app
        .docs
        .load_many(&app.db, asked.iter().filter(|id| sender.scope.contains(id)))
        .await?;
    // Who owns the actors the pushed changes are written under, and where the record keys they
    // may create are used already: the validator refuses another owner's actor and a key
    // another document holds.
    let claims = app.db.claims(&actors, &keys).await?;
    let mut news = NewsLog::default();
    // A cursor of another history (issued before the database was restored) reads no news: the
    // answer tells the phone to re-check what it holds instead.
    if let Some(since) = request.since_in(app.history) {
        let since = i64::try_from(since)
            .map_err(|_| ApiError::bad_request("malformed_frame", "the cursor is out of range"))?;
        let rows = app
            .db
            .news_upto(
                since,
                upto,
                &sender.scope,
                &asked,
                limits.max_body_bytes / 2,
            )
            .await?;
        let news_docs: HashSet<_> = rows.rows.iter().map(|(_, d, _)| d.clone()).collect();
        docs.extend(app.docs.load_many(&app.db, news_docs.iter()).await?);
        news = NewsLog {
            rows: rows
                .rows
                .into_iter()
                .map(|(seq, doc, bytes)| (u64::try_from(seq).unwrap_or(0), doc, bytes))
                .collect(),
            cursor: u64::try_from(rows.cursor).unwrap_or(0),
            more: rows.more,
        };
    }
    // The keys the pushed changes' signatures are checked against.
    let keyring = signing::keyring(
        &app.db,
        &app.clock,
        &app.signing,
        request,
        sender,
        app.require_signatures,
    )
    .await?;
    // Read after the news: the horizon rises before any change below it is deleted, so news
    // read from a cursor below the horizon read now may lack some; the phone re-checks instead.
    let oldest_cursor = if request.since.is_some() {
        u64::try_from(app.db.pruned_below().await?).unwrap_or(0)
    } else {
        0
    };
    let prepared = Prepared {
        docs,
        claims,
        cursor: u64::try_from(upto).unwrap_or(0),
        news,
        history: app.history,
        oldest_cursor,
        keyring,
    };
    Ok((prepared, out_for_delivery))
}

/// The rounds assigned to the caller's device now, in delivery order.
pub async fn rounds(
    State(app): State<Arc<AppState>>,
    AuthUser(claims): AuthUser,
) -> Result<Response, ApiError> {
    let device = claims.device.as_deref().unwrap_or_default();
    let rounds: Vec<_> = scope::rounds_now(&app.db, &app.clock, device)
        .await?
        .into_iter()
        .filter(|r| r.postman == claims.sub)
        .collect();
    Ok(Json(rounds).into_response())
}

/// The items a postman's device downloads for the first time on one of its rounds are out for
/// delivery (UPU EDG): once per item and round (a second download of the same round stamps
/// nothing), and never for an item already delivered or handed to a pickup point.
async fn departures(
    app: &AppState,
    claims: &Claims,
    request: &SyncRequest,
) -> Result<Vec<(String, String)>, ApiError> {
    let (TokenRole::Postman, Some(device)) = (claims.role, &claims.device) else {
        return Ok(Vec::new());
    };
    let fetched: Vec<&DocId> = request
        .docs
        .iter()
        .filter(|d| matches!(d.body, RequestBody::Fetch) && d.doc.kind() == DocKind::Item)
        .map(|d| &d.doc)
        .collect();
    if fetched.is_empty() {
        return Ok(Vec::new());
    }
    let mut round_of = std::collections::HashMap::new();
    for round in scope::rounds_now(&app.db, &app.clock, device).await? {
        if round.postman != claims.sub {
            continue;
        }
        for stop in &round.stops {
            for item in &stop.items {
                round_of
                    .entry(item.to_string())
                    .or_insert_with(|| round.round_id.clone());
            }
        }
    }
    let keys: Vec<&str> = fetched.iter().map(|id| id.key()).collect();
    let done = app.db.items_no_longer_out(&keys).await?;
    let stamped = app.db.departures(&keys).await?;
    Ok(keys
        .into_iter()
        .filter(|item| !done.contains(*item))
        .filter_map(|item| Some((item.to_string(), round_of.get(item)?.clone())))
        .filter(|(item, round)| !stamped.contains(&(item.clone(), format!("round:{round}"))))
        .collect())
}
