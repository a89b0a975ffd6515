//! `POST /v1/sync` and `GET /v1/rounds`: the phone's two routes.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::Json;
use tournee_sync_core::sync::wire::RequestBody;
use tournee_sync_core::sync::{respond, wanted_claims, wire, DocOutcome};
use tournee_sync_core::validator::Scope;
use tournee_sync_core::DocKind;

use crate::auth::{AuthUser, TokenRole};
use crate::db::{bindings_of, EventRow, SyncWrite};
use crate::documents::PreparedHost;
use crate::error::ApiError;
use crate::metrics::RefusalLabels;
use crate::reconcile;
use crate::scope::{self, now_ms};
use crate::AppState;

/// The media type of sync frames.
pub const SYNC_MEDIA_TYPE: &str = wire::MEDIA_TYPE;

/// Answers one sync batch; acknowledges only what the database committed.
pub async fn sync(
    State(app): State<Arc<AppState>>,
    AuthUser(claims): AuthUser,
    body: Bytes,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let limits = app.limits;
    let request =
        wire::decode_request(&body, &limits).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let sender = scope::sender(&app.db, &claims).await?;

    // The cursor before any document is read: news stops there (see `Database::news_upto`).
    let upto = app.db.max_seq().await?;
    let mut host = PreparedHost::new(u64::try_from(upto).unwrap_or(0));
    let asked: std::collections::HashSet<_> = request.docs.iter().map(|d| d.doc.clone()).collect();
    // Items a postman's device downloads for its round are out for delivery (UPU EDG).
    let out_for_delivery: Vec<_> = match (claims.role, &claims.device) {
        (TokenRole::Postman, Some(device)) => request
            .docs
            .iter()
            .filter(|d| matches!(d.body, RequestBody::Fetch))
            .filter(|d| d.doc.kind() == DocKind::Item && sender.scope.contains(&d.doc))
            .map(|d| (d.doc.key().to_string(), format!("device:{device}")))
            .collect(),
        _ => Vec::new(),
    };
    host.docs = app
        .docs
        .load_many(&app.db, asked.iter().filter(|id| sender.scope.contains(id)))
        .await?;
    // Who owns the actors the pushed changes are written under, and where the record keys they
    // may create are used already: the validator refuses another owner's actor and a key
    // another document holds.
    let (actors, keys) = wanted_claims(&request);
    host.claims = app.db.claims(&actors, &keys).await?;
    if let Some(since) = request.since {
        let since =
            i64::try_from(since).map_err(|_| ApiError::BadRequest("cursor out of range".into()))?;
        let scope = match &sender.scope {
            Scope::All => Scope::All,
            Scope::Documents(ids) => Scope::Documents(ids.clone()),
        };
        host.news = app
            .db
            .news_upto(since, upto, &scope, &asked, limits.max_body_bytes / 2)
            .await?;
        let news_docs: std::collections::HashSet<_> =
            host.news.rows.iter().map(|(_, d, _)| d.clone()).collect();
        host.docs
            .extend(app.docs.load_many(&app.db, news_docs.iter()).await?);
    }

    let task_sender = sender.clone();
    let (answer, host) = tokio::task::spawn_blocking(move || {
        let answer = respond(&mut host, request, &task_sender, &limits);
        (answer, host)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("sync task failed: {e}")))?;
    let answer = match answer {
        Ok(answer) => answer,
        Err(never) => match never {},
    };

    let now = now_ms();
    let mut write = SyncWrite::default();
    write
        .projection
        .events
        .extend(out_for_delivery.into_iter().map(|(item, source)| EventRow {
            item_id: item,
            code: "EDG".into(),
            at_ms: now,
            reason: None,
            action: Some("out for delivery on the postman's round".into()),
            source,
        }));
    let rules = reconcile::Rules {
        far_attempt_metres: app.far_attempt_metres,
    };
    let pins = app
        .db
        .item_pins(&reconcile::items_needing_pins(
            host.accepted.iter().map(|(id, a)| (id, a)),
        ))
        .await?;
    let mut accepted_changes = 0;
    for (id, accepted) in &host.accepted {
        accepted_changes += accepted.changes.len();
        write
            .projection
            .actors
            .extend(bindings_of(&accepted.bindings));
        write.changes.push((
            id.clone(),
            accepted
                .changes
                .iter()
                .map(|c| (c.hash().as_ref().to_vec(), c.raw_bytes().to_vec()))
                .collect(),
        ));
        reconcile::project(
            &pins,
            rules,
            id,
            accepted,
            &sender,
            now,
            &mut write.projection,
        );
    }
    if !write.changes.is_empty() || !write.projection.events.is_empty() {
        app.db.commit_sync(&write).await?;
        for (id, base, doc) in host.into_stored() {
            app.docs.store(&id, &base, doc);
        }
        if !write.projection.corrections.is_empty() {
            // The sync is committed and its answer stands; a failed automatic approval leaves
            // the corrections in the queue for a reviewer.
            if let Err(e) = crate::review::corroborate(&app, &write.projection.corrections).await {
                tracing::warn!(error = %e, "corroboration check failed");
            }
        }
    }

    app.metrics.syncs.inc();
    app.metrics.changes_accepted.inc_by(accepted_changes as u64);
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
    let frame = wire::encode_response(&answer.response);
    Ok(([(CONTENT_TYPE, SYNC_MEDIA_TYPE)], frame).into_response())
}

/// The rounds assigned to the caller's device now, in delivery order.
pub async fn rounds(
    State(app): State<Arc<AppState>>,
    AuthUser(claims): AuthUser,
) -> Result<Response, ApiError> {
    if claims.role != TokenRole::Postman {
        return Err(ApiError::Forbidden(
            "rounds are published to postmen's devices".into(),
        ));
    }
    let device = claims.device.as_deref().unwrap_or_default();
    let rounds: Vec<_> = scope::rounds_now(&app.db, device)
        .await?
        .into_iter()
        .filter(|r| r.postman == claims.sub)
        .collect();
    Ok(Json(rounds).into_response())
}
