//! `POST /v1/import/{kind}`: NDJSON in, a report out, both streamed: the body is read line by
//! line while the report (one line per input line, then the totals) is written back, so an
//! import of millions of lines never sits in memory on either side.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::io::StreamReader;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::import::{self, Kind, Options, Report};
use crate::params::{PathParams, QueryParams};
use crate::AppState;

/// The report's media type.
pub const NDJSON: &str = "application/x-ndjson";

/// How to import.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// Apply nothing if any line is refused (the input is checked whole first).
    pub all_or_nothing: Option<bool>,
    /// Report what each line would do; apply nothing.
    pub dry_run: Option<bool>,
}

/// The kind in the path.
#[derive(Debug, Deserialize)]
pub struct KindPath {
    kind: String,
}

/// The import handler.
pub async fn import(
    State(app): State<Arc<AppState>>,
    AuthUser(claims): AuthUser,
    PathParams(path): PathParams<KindPath>,
    QueryParams(query): QueryParams<ImportQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    let kind = Kind::parse(&path.kind).ok_or_else(|| {
        ApiError::bad_request(
            "unknown_kind",
            format!("{:?} is not an import kind: {}", path.kind, Kind::names()),
        )
        .field("kind")
    })?;
    let options = Options {
        all_or_nothing: query.all_or_nothing.unwrap_or(false),
        dry_run: query.dry_run.unwrap_or(false),
    };
    let body = request
        .into_body()
        .into_data_stream()
        .map_err(std::io::Error::other);
    let input = StreamReader::new(body);
    let sender = import::sender(&claims.sub);
    let (out, reports) = mpsc::channel::<Report>(256);
    tokio::spawn(async move {
        let _ = import::run(&app, &sender, kind, input, options, &out).await;
    });
    let stream = futures_util::stream::unfold(reports, |mut reports| async move {
        let report = reports.recv().await?;
        let mut line = serde_json::to_vec(&report).unwrap_or_default();
        line.push(b'\n');
        Some((Ok::<_, std::convert::Infallible>(line), reports))
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, NDJSON)],
        Body::from_stream(stream),
    )
        .into_response())
}
