//! `tournee-server import <kind> FILE|-`: the same import as the API, run directly on the
//! database or sent to a server, with a progress bar (rate and ETA) on a terminal, refused lines
//! printed as NDJSON on stdout and a summary on stderr.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::TryStreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader, ReadBuf};
use tokio::sync::mpsc;

use super::{run, sender, Kind, Options, Outcome, Report, Totals};
use crate::AppState;

/// Where the import goes.
pub enum Target {
    /// Straight into the database, through the server's own write pipeline.
    Database(Arc<AppState>),
    /// To a running server's API, with an integration token.
    Server {
        /// Its base URL.
        url: String,
        /// An integration token.
        token: String,
    },
}

/// Counts the bytes read, for the progress bar.
struct Counted<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counted<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = (buf.filled().len() - before) as u64;
        self.read.fetch_add(read, Ordering::Relaxed);
        polled
    }
}

/// Imports `file` (`-`: stdin) as `kind` into `target`. The totals, or why it stopped.
pub async fn import(
    target: Target,
    kind: Kind,
    file: &str,
    principal: &str,
    options: Options,
) -> Result<Totals, String> {
    let (input, size): (Box<dyn AsyncRead + Send + Unpin>, Option<u64>) = if file == "-" {
        (Box::new(tokio::io::stdin()), None)
    } else {
        let f = tokio::fs::File::open(file)
            .await
            .map_err(|e| format!("{file}: {e}"))?;
        let size = f.metadata().await.map(|m| m.len()).ok();
        (Box::new(f), size)
    };
    let read = Arc::new(AtomicU64::new(0));
    let input = Counted {
        inner: input,
        read: read.clone(),
    };
    // Drawn on stderr when it is a terminal, hidden otherwise (indicatif's default).
    let bar = match size {
        Some(size) => ProgressBar::new(size).with_style(
            ProgressStyle::with_template(
                "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner(),
    };
    let (out, mut reports) = mpsc::channel::<Report>(256);
    let work = {
        let read = read.clone();
        async move {
            match target {
                Target::Database(app) => {
                    let sender = sender(principal);
                    run(&app, &sender, kind, BufReader::new(input), options, &out)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
                Target::Server { url, token } => {
                    over_http(&url, &token, kind, input, options, &out).await
                }
            }
            .map(|()| read)
        }
    };
    let printer = async {
        let mut totals = None;
        let mut failure = None;
        let mut lines = 0u64;
        while let Some(report) = reports.recv().await {
            match report {
                Report::Line(line) => {
                    lines += 1;
                    if line.outcome == Outcome::Refused {
                        bar.suspend(|| {
                            println!("{}", serde_json::to_string(&line).unwrap_or_default())
                        });
                    }
                    if lines.is_multiple_of(1000) {
                        bar.set_position(read.load(Ordering::Relaxed));
                        bar.set_message(format!("{lines} lines"));
                    }
                }
                Report::Totals { totals: t } => totals = Some(t),
                Report::Failed { error } => {
                    failure = Some(format!("{}: {}", error.code, error.message))
                }
            }
        }
        (totals, failure)
    };
    let (worked, (totals, failure)) = tokio::join!(work, printer);
    bar.finish_and_clear();
    worked?;
    if let Some(failure) = failure {
        return Err(failure);
    }
    totals.ok_or_else(|| "the import ended without its totals".to_string())
}

/// Sends the input to a server's `POST /v1/import/{kind}`, streamed, and relays its report.
async fn over_http<R: AsyncRead + Send + Unpin + 'static>(
    url: &str,
    token: &str,
    kind: Kind,
    input: R,
    options: Options,
    out: &mpsc::Sender<Report>,
) -> Result<(), String> {
    let endpoint = format!(
        "{}/v1/import/{}?all_or_nothing={}&dry_run={}",
        url.trim_end_matches('/'),
        kind.as_str(),
        options.all_or_nothing,
        options.dry_run
    );
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(input));
    let response = reqwest::Client::new()
        .post(&endpoint)
        .bearer_auth(token)
        .header(
            reqwest::header::CONTENT_TYPE,
            super::super::import_api::NDJSON,
        )
        .body(body)
        .send()
        .await
        .map_err(|e| format!("{endpoint}: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        return Err(format!("{endpoint}: {status}: {text}"));
    }
    let stream = response.bytes_stream().map_err(std::io::Error::other);
    let mut lines = tokio_util::io::StreamReader::new(stream).lines();
    while let Some(line) = lines
        .next_line()
        .await
        .map_err(|e| format!("{endpoint}: {e}"))?
    {
        let value: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| format!("{endpoint}: {e}: {line}"))?;
        let report =
            report_of(value).ok_or_else(|| format!("{endpoint}: unexpected report line {line}"))?;
        let _ = out.send(report).await;
    }
    Ok(())
}

/// A report line as the API writes it, read back.
fn report_of(value: serde_json::Value) -> Option<Report> {
    if let Some(t) = value.get("totals") {
        let n = |k: &str| {
            t.get(k)
                .and_then(serde_json::Value::as_u64)
                .unwrap_or_default()
        };
        return Some(Report::Totals {
            totals: Totals {
                lines: n("lines"),
                created: n("created"),
                updated: n("updated"),
                unchanged: n("unchanged"),
                refused: n("refused"),
                applied: t
                    .get("applied")
                    .and_then(serde_json::Value::as_bool)
                    .unwrap_or_default(),
            },
        });
    }
    if let Some(e) = value.get("error") {
        let message = e
            .get("message")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string();
        return Some(Report::Failed {
            error: super::Failure {
                code: "server",
                message,
            },
        });
    }
    let outcome = match value.get("outcome")?.as_str()? {
        "created" => Outcome::Created,
        "updated" => Outcome::Updated,
        "unchanged" => Outcome::Unchanged,
        _ => Outcome::Refused,
    };
    let text = |k: &str| {
        value
            .get(k)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    Some(Report::Line(super::LineReport {
        line: value.get("line")?.as_u64()?,
        key: text("key"),
        outcome,
        code: text("code"),
        field: text("field"),
        message: text("message"),
    }))
}
