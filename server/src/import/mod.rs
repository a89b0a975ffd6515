//! Bulk import of the postal world: NDJSON, one object per line, one kind per request or file,
//! each line an idempotent upsert by its natural key. The API (`POST /v1/import/{kind}`) and the
//! command line (`tournee-server import`) run this same code.
//!
//! Streamed end to end: lines are read one at a time (at most [`MAX_LINE_BYTES`] each), applied
//! in batches of [`BATCH_LINES`] through the one write pipeline, and each line's outcome is
//! reported as soon as its batch is committed. With `all_or_nothing`, a first pass checks every
//! line (the input spooled to a temporary file, not memory) and nothing is applied if any line is
//! refused; a second pass applies them.

mod batch;
pub mod command;
pub mod lines;

use std::io::SeekFrom;
use std::sync::Arc;

use serde::Serialize;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncSeekExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tournee_sync_core::validator::{Role, Scope, Sender};

pub use batch::Parsed;
pub use lines::{Kind, LineRefusal};

use crate::write::WriteError;
use crate::AppState;

/// The longest line accepted (a round of several hundred stops fits many times over).
pub const MAX_LINE_BYTES: usize = 1024 * 1024;
/// Lines applied per transaction.
pub const BATCH_LINES: usize = 500;

/// How to import.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Apply nothing if any line is refused.
    pub all_or_nothing: bool,
    /// Decide every line's outcome, apply nothing.
    pub dry_run: bool,
}

/// What became of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It did not exist.
    Created,
    /// It existed and the line changed it.
    Updated,
    /// The same line was applied before: nothing written.
    Unchanged,
    /// Refused: see the code, field and message.
    Refused,
}

impl Outcome {
    /// As reports spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
            Outcome::Refused => "refused",
        }
    }
}

/// One line's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineReport {
    /// The line's number, from 1.
    pub line: u64,
    /// Its natural key, when it could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// What became of it.
    pub outcome: Outcome,
    /// Why it was refused: a stable code…
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// …the field as the line spells it…
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// …and a message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The totals that end a report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Lines read (blank lines are skipped and not counted).
    pub lines: u64,
    /// Created.
    pub created: u64,
    /// Updated.
    pub updated: u64,
    /// Unchanged.
    pub unchanged: u64,
    /// Refused.
    pub refused: u64,
    /// Whether the valid lines were applied (false for a dry run, or `all_or_nothing` with a
    /// refused line).
    pub applied: bool,
}

impl Totals {
    fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Created => self.created += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Unchanged => self.unchanged += 1,
            Outcome::Refused => self.refused += 1,
        }
    }
}

/// What an import reports, line by line, then its totals (or why it stopped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Report {
    /// A line's outcome.
    Line(LineReport),
    /// The end.
    Totals {
        /// The totals.
        totals: Totals,
    },
    /// The import stopped: lines reported before stand (applied, unless a dry run or
    /// `all_or_nothing`'s first pass), the rest were not read.
    Failed {
        /// Why.
        error: Failure,
    },
}

/// Why an import stopped before its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// `read_failed`, `too_large`, `storage`, `internal`.
    pub code: &'static str,
    /// In words.
    pub message: String,
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The input could not be read (a dropped connection, a body over the size limit).
    #[error("reading the input failed: {0}")]
    Read(#[from] std::io::Error),
    /// The write pipeline failed.
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl ImportError {
    /// As the report's last line says it.
    pub fn failure(&self) -> Failure {
        match self {
            ImportError::Read(e) if e.to_string().contains("length limit exceeded") => Failure {
                code: "too_large",
                message: "the input is over the import size limit (--import-max-bytes); lines reported before stand".into(),
            },
            ImportError::Read(e) => Failure {
                code: "read_failed",
                message: format!("reading the input failed: {e}"),
            },
            ImportError::Write(WriteError::Storage(e)) => Failure {
                code: "storage",
                message: format!("the database failed; retry (applied lines are unchanged the next time): {e}"),
            },
            ImportError::Write(e) => Failure {
                code: "internal",
                message: e.to_string(),
            },
        }
    }
}

/// The document of an imported delivery point or item, built from the line that loaded it:
/// imports write central rows only, and a document is materialised when it is first needed (a
/// phone's first fetch, a customer's choice, a review). Built under [`creation_actor`] with no
/// timestamp, so every instance builds the same bytes. `None` when no import loaded it.
pub async fn materialize(
    db: &crate::db::Database,
    id: &tournee_sync_core::DocId,
) -> Result<Option<tournee_sync_core::automerge::Automerge>, sqlx::Error> {
    use tournee_sync_core::{operations, DocKind};
    let kind = match id.kind() {
        DocKind::DeliveryPoint => Kind::DeliveryPoints,
        DocKind::Item => Kind::Items,
    };
    let records = db.import_records(kind.as_str(), &[id.key()]).await?;
    let Some(record) = records.get(id.key()) else {
        return Ok(None);
    };
    let invalid = |e: String| {
        sqlx::Error::Protocol(format!(
            "{id}: its import line does not build a document: {e}"
        ))
    };
    let doc = match kind {
        Kind::DeliveryPoints => {
            let line: lines::DeliveryPointLine =
                serde_json::from_str(record).map_err(|e| invalid(e.to_string()))?;
            operations::new_delivery_point(
                creation_actor(),
                &line.id,
                lines::reference(&line, 1),
                line.access,
            )
        }
        _ => {
            let (line, s10, _arrived): (lines::ItemLine, String, i64) =
                serde_json::from_str(record).map_err(|e| invalid(e.to_string()))?;
            let s10 = tournee_sync_core::S10::parse(&s10).map_err(|e| invalid(e.to_string()))?;
            operations::new_item(
                creation_actor(),
                &s10,
                &line.delivery_point,
                line.requirements,
            )
        }
    }
    .map_err(|e| invalid(e.to_string()))?;
    Ok(Some(doc))
}

/// The actor of every document an import loaded, bound to the server when the document is
/// stored.
pub fn creation_actor() -> tournee_sync_core::automerge::ActorId {
    tournee_sync_core::automerge::ActorId::from(b"tournee-creation".as_slice())
}

/// Who imports: the integration, writing reference data as the back office's rules allow.
pub fn sender(principal: &str) -> Sender {
    Sender {
        role: Role::BackOffice,
        principal: format!("integration:{principal}"),
        device: None,
        scope: Scope::All,
    }
}

/// A line as read.
enum Read {
    /// A whole line (without its end), possibly blank.
    Line(Vec<u8>),
    /// A line over [`MAX_LINE_BYTES`], skipped to its end.
    TooLong,
}

/// Reads the next line, holding at most [`MAX_LINE_BYTES`] of it.
async fn next_line<R: AsyncBufRead + Unpin>(
    input: &mut R,
    line: &mut Vec<u8>,
) -> std::io::Result<Option<Read>> {
    line.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let available = input.fill_buf().await?;
        if available.is_empty() {
            return Ok(match (any, too_long) {
                (false, _) => None,
                (true, true) => Some(Read::TooLong),
                (true, false) => Some(Read::Line(std::mem::take(line))),
            });
        }
        any = true;
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..end], Some(end + 1)),
            None => (available, None),
        };
        if !too_long {
            if line.len() + chunk.len() > MAX_LINE_BYTES {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let used = done.unwrap_or(available.len());
        input.consume(used);
        if done.is_some() {
            return Ok(Some(if too_long {
                Read::TooLong
            } else {
                Read::Line(std::mem::take(line))
            }));
        }
    }
}

fn refused(number: u64, key: Option<String>, refusal: LineRefusal) -> LineReport {
    LineReport {
        line: number,
        key,
        outcome: Outcome::Refused,
        code: Some(refusal.code.to_string()),
        field: refusal.field.filter(|f| !f.is_empty()),
        message: Some(refusal.message),
    }
}

/// A batch being committed while the next one is read and decided: its keys, and its reports,
/// sent once its commit is done.
struct InFlight {
    keys: std::collections::HashSet<String>,
    reports: Vec<LineReport>,
    commit: tokio::task::JoinHandle<Result<(), WriteError>>,
}

/// One pass over the input: lines waiting for their batch, and what was reported so far. A
/// batch is committed while the next one is read and decided (the two overlap on two cores);
/// a batch that shares a key with the one in flight waits for it, so it is decided against
/// what that one wrote.
struct Pass<'a> {
    app: Arc<AppState>,
    sender: Sender,
    kind: Kind,
    dry_run: bool,
    out: &'a mpsc::Sender<Report>,
    totals: Totals,
    /// Lines parsed, waiting for their batch; their keys.
    pending: Vec<Parsed>,
    keys: std::collections::HashSet<String>,
    /// Lines refused on their own, waiting for the batch around them: the report is in line
    /// order.
    early: Vec<LineReport>,
    in_flight: Option<InFlight>,
}

impl Pass<'_> {
    async fn add(&mut self, parsed: Parsed) -> Result<(), ImportError> {
        // A key twice in one batch: the batch so far is applied first, so the later line wins
        // as it would line by line.
        let key = parsed.line.key();
        if self.keys.contains(&key) || self.pending.len() >= BATCH_LINES {
            self.flush().await?;
        }
        self.keys.insert(key);
        self.pending.push(parsed);
        Ok(())
    }

    /// Waits for the batch in flight and sends its reports.
    async fn land(&mut self) -> Result<(), ImportError> {
        let Some(in_flight) = self.in_flight.take() else {
            return Ok(());
        };
        in_flight
            .commit
            .await
            .map_err(|e| WriteError::Internal(format!("an import batch stopped: {e}")))??;
        for report in in_flight.reports {
            let _ = self.out.send(Report::Line(report)).await;
        }
        Ok(())
    }

    /// Decides the pending lines and sets them committing (after the batch in flight lands);
    /// their reports, with the lines refused among them, follow in line order.
    async fn flush(&mut self) -> Result<(), ImportError> {
        let keys = std::mem::take(&mut self.keys);
        let pending = std::mem::take(&mut self.pending);
        if self
            .in_flight
            .as_ref()
            .is_some_and(|f| !f.keys.is_disjoint(&keys))
        {
            self.land().await?;
        }
        let decided = if pending.is_empty() {
            batch::Decided {
                verdicts: Vec::new(),
                write: None,
            }
        } else {
            batch::decide(&self.app, &self.sender, self.kind, pending).await?
        };
        let mut reports = Vec::with_capacity(decided.verdicts.len() + self.early.len());
        let mut early = std::mem::take(&mut self.early).into_iter().peekable();
        for (number, key, verdict) in decided.verdicts {
            reports.extend(std::iter::from_fn(|| early.next_if(|r| r.line < number)));
            reports.push(match verdict {
                Ok(outcome) => LineReport {
                    line: number,
                    key: Some(key),
                    outcome,
                    code: None,
                    field: None,
                    message: None,
                },
                Err(refusal) => refused(number, Some(key), refusal),
            });
        }
        reports.extend(early);
        for report in &reports {
            self.totals.count(report.outcome);
        }
        self.land().await?;
        let write = decided.write.filter(|_| !self.dry_run);
        let (app, sender) = (self.app.clone(), self.sender.clone());
        let commit = tokio::spawn(async move {
            match write {
                Some(write) => batch::commit(&app, &sender, write).await,
                None => Ok(()),
            }
        });
        self.in_flight = Some(InFlight {
            keys,
            reports,
            commit,
        });
        Ok(())
    }
}

/// Reads `input` and decides (and unless `dry_run`, applies) every line, sending each line's
/// report to `out` as it is decided; copies the input to `spool` if given. Returns the totals.
async fn pass<R: AsyncBufRead + Unpin>(
    app: &Arc<AppState>,
    sender: &Sender,
    kind: Kind,
    mut input: R,
    dry_run: bool,
    mut spool: Option<&mut tokio::fs::File>,
    out: &mpsc::Sender<Report>,
) -> Result<Totals, ImportError> {
    let mut pass = Pass {
        app: app.clone(),
        sender: sender.clone(),
        kind,
        dry_run,
        out,
        totals: Totals::default(),
        pending: Vec::new(),
        keys: Default::default(),
        early: Vec::new(),
        in_flight: None,
    };
    let mut number = 0u64;
    let mut buffer = Vec::new();
    while let Some(read) = next_line(&mut input, &mut buffer).await? {
        number += 1;
        let text = match read {
            Read::TooLong => {
                let why = format!("a line holds at most {MAX_LINE_BYTES} bytes");
                let refusal = LineRefusal::new("line_too_long", "", why);
                pass.early.push(refused(number, None, refusal));
                pass.totals.lines += 1;
                continue;
            }
            Read::Line(bytes) => bytes,
        };
        if let Some(spool) = spool.as_deref_mut() {
            spool.write_all(&text).await?;
            spool.write_all(b"\n").await?;
        }
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        pass.totals.lines += 1;
        let parsed = std::str::from_utf8(&text)
            .map_err(|_| LineRefusal::new("not_utf8", "", "the line is not UTF-8 text"))
            .and_then(|text| lines::parse(kind, text));
        match parsed {
            Err(refusal) => pass.early.push(refused(number, None, refusal)),
            Ok((line, canonical)) => {
                let parsed = Parsed {
                    number,
                    canonical,
                    line,
                };
                pass.add(parsed).await?;
            }
        }
    }
    pass.flush().await?;
    pass.land().await?;
    Ok(pass.totals)
}

/// Imports `input` as lines of `kind`, sending a report per line and the totals last to `out`
/// (or, if it stops, why). Returns the totals.
pub async fn run<R: AsyncBufRead + Unpin>(
    app: &Arc<AppState>,
    sender: &Sender,
    kind: Kind,
    input: R,
    options: Options,
    out: &mpsc::Sender<Report>,
) -> Result<Totals, ImportError> {
    let result = if options.all_or_nothing && !options.dry_run {
        all_or_nothing(app, sender, kind, input, out).await
    } else {
        pass(app, sender, kind, input, options.dry_run, None, out)
            .await
            .map(|totals| Totals {
                applied: !options.dry_run,
                ..totals
            })
    };
    match &result {
        Ok(totals) => {
            let _ = out.send(Report::Totals { totals: *totals }).await;
            tracing::info!(kind = kind.as_str(), principal = %sender.principal, lines = totals.lines, created = totals.created, updated = totals.updated, unchanged = totals.unchanged, refused = totals.refused, applied = totals.applied, "imported");
        }
        Err(e) => {
            let _ = out.send(Report::Failed { error: e.failure() }).await;
            tracing::warn!(kind = kind.as_str(), principal = %sender.principal, error = %e, "import stopped");
        }
    }
    result
}

/// The first pass checks every line and spools the input; the second applies it, if nothing was
/// refused.
async fn all_or_nothing<R: AsyncBufRead + Unpin>(
    app: &Arc<AppState>,
    sender: &Sender,
    kind: Kind,
    input: R,
    out: &mpsc::Sender<Report>,
) -> Result<Totals, ImportError> {
    let mut spool = tokio::fs::File::from_std(tempfile::tempfile()?);
    // The first pass reports refusals only; the outcomes come with the second.
    let (checks, mut checked) = mpsc::channel(64);
    let relay = {
        let out = out.clone();
        tokio::spawn(async move {
            while let Some(report) = checked.recv().await {
                if matches!(&report, Report::Line(l) if l.outcome == Outcome::Refused) {
                    let _ = out.send(report).await;
                }
            }
        })
    };
    let first = pass(app, sender, kind, input, true, Some(&mut spool), &checks).await;
    drop(checks);
    let _ = relay.await;
    let first = first?;
    if first.refused > 0 {
        return Ok(Totals {
            applied: false,
            ..first
        });
    }
    spool.flush().await?;
    spool.seek(SeekFrom::Start(0)).await?;
    let totals = pass(app, sender, kind, BufReader::new(spool), false, None, out).await?;
    Ok(Totals {
        applied: true,
        ..totals
    })
}
