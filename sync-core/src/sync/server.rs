//! The server's side of the protocol, without transport or storage: [`respond`] answers a batch
//! against a [`DocumentHost`], which the real server implements over SQL and [`MemoryHost`] in
//! memory.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::convert::Infallible;

use automerge::legacy::{Key, OpType};
use automerge::{ActorId, Automerge, Change, ChangeHash, ObjType};
use serde_bytes::ByteBuf;

use super::checksum::{contained, parse_change};
use super::wire::{
    DocRequest, DocResponse, Limits, RefusalCode, RequestBody, ResponseBody, SyncRequest,
    SyncResponse,
};
use super::Heads;
use crate::ids::DocId;
use crate::rules::{self, Field};
use crate::validator::{validate_claimed, Accepted, Claims, Refusal, Scope, Sender, SERVER_OWNER};

/// Where the server's documents live. `store` calls may be buffered; `commit` makes them all
/// durable, and [`respond`] calls it before it returns an answer that acknowledges them.
pub trait DocumentHost {
    /// Storage failures; they fail the whole batch (nothing acknowledged).
    type Error: std::error::Error + Send + Sync + 'static;

    /// The document, if the server has it.
    fn document(&self, id: &DocId) -> Result<Option<&Automerge>, Self::Error>;

    /// Who owns the actors, and which documents hold the record keys, that the batch uses:
    /// prepared before it runs, and added to by [`DocumentHost::store`] (see
    /// [`Claims::claim`]), so a batch of documents cannot claim one key or actor twice.
    fn claims(&self) -> &Claims;

    /// Stores a validated batch of changes for a document; its actor bindings and record keys
    /// join [`DocumentHost::claims`].
    fn store(&mut self, id: &DocId, accepted: Accepted) -> Result<(), Self::Error>;

    /// Makes everything stored so far durable.
    fn commit(&mut self) -> Result<(), Self::Error>;

    /// Changes stored after cursor `since` to documents in `scope` other than `skip`, at most
    /// about `max_bytes` of them, and the cursor that covers what is returned.
    fn news(
        &mut self,
        since: u64,
        scope: &Scope,
        skip: &HashSet<DocId>,
        max_bytes: usize,
    ) -> Result<News, Self::Error>;

    /// The cursor covering every change stored so far.
    fn current_cursor(&mut self) -> Result<u64, Self::Error>;
}

/// Changes a device has not seen, grouped by document.
#[derive(Debug, Default)]
pub struct News {
    /// Per document: its current heads and the new changes, in causal order.
    pub docs: Vec<(DocId, Vec<ChangeHash>, Vec<Vec<u8>>)>,
    /// The cursor covering what is returned.
    pub cursor: u64,
    /// More news is waiting.
    pub more: bool,
}

impl News {
    /// Groups a change log read from `since` on — `(sequence number, document, change)` in
    /// sequence order — into news for a sender: documents in `scope` and not in `skip`, at most
    /// about `max_bytes` of changes. Heads are left empty for the host to fill.
    pub fn from_log<'a>(
        since: u64,
        log: impl IntoIterator<Item = (u64, &'a DocId, &'a [u8])>,
        scope: &Scope,
        skip: &HashSet<DocId>,
        max_bytes: usize,
    ) -> Self {
        let mut news = News {
            cursor: since,
            ..Default::default()
        };
        let mut index: HashMap<DocId, usize> = HashMap::new();
        let mut size = 0;
        for (seq, id, bytes) in log {
            if size + bytes.len() > max_bytes && size > 0 {
                news.more = true;
                break;
            }
            news.cursor = seq;
            if skip.contains(id) || !scope.contains(id) {
                continue;
            }
            size += bytes.len();
            let slot = *index.entry(id.clone()).or_insert_with(|| {
                news.docs.push((id.clone(), Vec::new(), Vec::new()));
                news.docs.len() - 1
            });
            news.docs[slot].2.push(bytes.to_vec());
        }
        news
    }
}

/// What a host must read into its [`Claims`] before [`respond`] runs a request: the actors its
/// pushed changes are authored under, and the keys of every map they create that could be a
/// record's (the validator later knows which are). Changes that do not parse are passed over:
/// `respond` refuses them.
pub fn wanted_claims(request: &SyncRequest) -> (BTreeSet<ActorId>, BTreeSet<String>) {
    let mut actors = BTreeSet::new();
    let mut keys = BTreeSet::new();
    for entry in &request.docs {
        let RequestBody::Push { changes, .. } = &entry.body else {
            continue;
        };
        for bytes in changes {
            let Ok(change) = parse_change(bytes) else {
                continue;
            };
            actors.insert(change.actor_id().clone());
            let Ok(decoded) = contained(|| change.decode()) else {
                continue;
            };
            for op in decoded.operations {
                if let (OpType::Make(ObjType::Map), Key::Map(key)) = (&op.action, &op.key) {
                    if rules::identifier(Field::EntryId, key).is_ok() {
                        keys.insert(key.to_string());
                    }
                }
            }
        }
    }
    (actors, keys)
}

/// What happened to each document of a batch, for logs and metrics.
#[derive(Debug, Clone, PartialEq)]
pub enum DocOutcome {
    /// Changes were validated and stored.
    Accepted {
        /// The document.
        doc: DocId,
        /// How many changes were new.
        changes: usize,
    },
    /// The entry was refused; nothing stored.
    Refused {
        /// The document.
        doc: DocId,
        /// Why.
        code: RefusalCode,
        /// The details.
        message: String,
    },
}

/// An answer and what it did.
#[derive(Debug)]
pub struct Answer {
    /// What to send back.
    pub response: SyncResponse,
    /// What happened, per document that pushed or was refused.
    pub outcomes: Vec<DocOutcome>,
}

/// Answers one batch from `sender`. Each document's entry stands alone: a refused document is
/// reported in the answer and stores nothing, the rest of the batch proceeds.
pub fn respond<H: DocumentHost>(
    host: &mut H,
    request: SyncRequest,
    sender: &Sender,
    limits: &Limits,
) -> Result<Answer, H::Error> {
    // The cursor is read before any document, so a change stored while this batch runs is
    // covered by the next batch's news rather than lost between the two.
    let start_cursor = host.current_cursor()?;
    let mut docs = Vec::with_capacity(request.docs.len());
    let mut outcomes = Vec::new();
    let mut answered = HashSet::new();
    let mut budget = limits.max_body_bytes / 2;
    for DocRequest { doc, body } in request.docs {
        answered.insert(doc.clone());
        // Automerge can panic on crafted bytes (an unwrap on a missing column, an assertion
        // on a sequence gap): such a panic refuses this document, as malformed, and touches
        // nothing: the validator only ever works on a fork.
        let outcome = match contained(|| answer_doc(host, &doc, body, sender, limits, &mut budget))
        {
            Ok(outcome) => outcome?,
            Err(()) => Err((
                RefusalCode::Malformed,
                "the changes could not be read".to_string(),
            )),
        };
        let answer = match outcome {
            Ok((answer, accepted)) => {
                if accepted > 0 {
                    outcomes.push(DocOutcome::Accepted {
                        doc: doc.clone(),
                        changes: accepted,
                    });
                }
                answer
            }
            Err((code, message)) => {
                tracing::warn!(doc = %doc, role = sender.role.as_str(), principal = %sender.principal, code = code.as_str(), %message, "refused");
                outcomes.push(DocOutcome::Refused {
                    doc: doc.clone(),
                    code,
                    message: message.clone(),
                });
                ResponseBody::Refused { code, message }
            }
        };
        docs.push(DocResponse { doc, body: answer });
    }
    let (cursor, more) = match request.since {
        // A first sync fetches its documents explicitly; news starts from now.
        None => (start_cursor, false),
        Some(since) => {
            let news = host.news(since, &sender.scope, &answered, budget)?;
            for (doc, heads, changes) in news.docs {
                docs.push(DocResponse {
                    doc,
                    body: ResponseBody::Update {
                        heads: heads.into(),
                        chunks: changes.into_iter().map(ByteBuf::from).collect(),
                        complete: true,
                    },
                });
            }
            (news.cursor, news.more)
        }
    };
    host.commit()?;
    Ok(Answer {
        response: SyncResponse { cursor, more, docs },
        outcomes,
    })
}

/// A document's answer and how many changes it stored, or why it was refused.
type DocAnswer = Result<(ResponseBody, usize), (RefusalCode, String)>;

fn answer_doc<H: DocumentHost>(
    host: &mut H,
    id: &DocId,
    body: RequestBody,
    sender: &Sender,
    limits: &Limits,
    budget: &mut usize,
) -> Result<DocAnswer, H::Error> {
    if !sender.scope.contains(id) {
        return Ok(Err((
            RefusalCode::OutOfScope,
            format!("{id} is not in your rounds or account"),
        )));
    }
    let Some(doc) = host.document(id)? else {
        return Ok(Err((
            RefusalCode::UnknownDocument,
            format!("{id} does not exist"),
        )));
    };
    let (changes, extra_heads) = match body {
        RequestBody::Fetch => return Ok(Ok((update(doc, &[], limits, budget), 0))),
        RequestBody::Have { heads } => return Ok(Ok((update(doc, &heads.0, limits, budget), 0))),
        RequestBody::Push {
            changes,
            extra_heads,
        } => (changes, extra_heads),
    };
    let mut parsed = Vec::with_capacity(changes.len());
    for bytes in changes {
        if bytes.len() > limits.max_message_bytes {
            let message = format!("a change of {} bytes is over the limit", bytes.len());
            return Ok(Err((RefusalCode::TooLarge, message)));
        }
        match parse_change(&bytes) {
            Ok(change) => parsed.push(change),
            Err(why) => return Ok(Err((RefusalCode::Malformed, why))),
        }
    }
    let mut client_heads = maximal(&parsed);
    client_heads.extend(extra_heads.0);
    let accepted = match validate_claimed(id, doc, parsed, sender, host.claims()) {
        Ok(accepted) => accepted,
        Err(Refusal::MissingDependencies(_)) => {
            let heads = doc.get_heads().into();
            return Ok(Ok((ResponseBody::Resync { heads }, 0)));
        }
        Err(refusal) => {
            let code = match &refusal {
                Refusal::OutOfScope(_) => RefusalCode::OutOfScope,
                Refusal::Malformed(_) | Refusal::MissingDependencies(_) => RefusalCode::Malformed,
                Refusal::Forbidden { .. } | Refusal::ActorTaken { .. } => RefusalCode::Forbidden,
                // A change that collides with a stored one is `Collision`: the phone writes its
                // interactions again; the rest it pushes again at its next session.
                Refusal::Invalid { .. } | Refusal::DoesNotApply(_) => RefusalCode::Invalid,
                Refusal::SequenceTaken { .. } | Refusal::KeyTaken { .. } => RefusalCode::Collision,
            };
            return Ok(Err((code, refusal.to_string())));
        }
    };
    let count = accepted.changes.len();
    if count > 0 {
        host.store(id, accepted)?;
    }
    let Some(doc) = host.document(id)? else {
        return Ok(Err((
            RefusalCode::UnknownDocument,
            format!("{id} vanished while syncing"),
        )));
    };
    Ok(Ok((update(doc, &client_heads, limits, budget), count)))
}

/// The changes a peer whose heads are `have` lacks, as pieces no larger than one message. A peer
/// with nothing gets the compact saved document when it fits.
fn update(
    doc: &Automerge,
    have: &[ChangeHash],
    limits: &Limits,
    budget: &mut usize,
) -> ResponseBody {
    let heads: Heads = doc.get_heads().into();
    let cap = limits.max_message_bytes.min(*budget);
    if have.is_empty() {
        let saved = doc.save();
        if saved.len() <= cap {
            *budget -= saved.len();
            return ResponseBody::Update {
                heads,
                chunks: vec![ByteBuf::from(saved)],
                complete: true,
            };
        }
    }
    let mut chunks = Vec::new();
    let mut size = 0;
    let mut complete = true;
    for change in doc.get_changes(have) {
        let bytes = change.raw_bytes();
        if size + bytes.len() > cap {
            complete = false;
            break;
        }
        size += bytes.len();
        chunks.push(ByteBuf::from(bytes.to_vec()));
    }
    *budget -= size;
    ResponseBody::Update {
        heads,
        chunks,
        complete,
    }
}

/// The changes of a batch that no other change of the batch depends on: the sender's heads.
fn maximal(changes: &[Change]) -> Vec<ChangeHash> {
    let deps: HashSet<ChangeHash> = changes
        .iter()
        .flat_map(|c| c.deps().iter().copied())
        .collect();
    changes
        .iter()
        .map(Change::hash)
        .filter(|h| !deps.contains(h))
        .collect()
}

/// A [`DocumentHost`] in memory: for tests, benchmarks and tools. Its cursor counts stored
/// changes.
#[derive(Debug, Default)]
pub struct MemoryHost {
    docs: HashMap<DocId, Automerge>,
    log: Vec<(DocId, Vec<u8>)>,
    claims: Claims,
}

impl MemoryHost {
    /// An empty host.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a document the server created (its skeleton and reference data); its actors are
    /// the server's.
    pub fn insert(&mut self, id: DocId, doc: Automerge) {
        for change in doc.get_changes(&[]) {
            self.bind_to_server(&change);
            self.log.push((id.clone(), change.raw_bytes().to_vec()));
        }
        self.docs.insert(id, doc);
    }

    /// Applies changes written by the server itself (e.g. on behalf of the back office).
    pub fn apply_local(&mut self, id: &DocId, f: impl FnOnce(&mut Automerge)) {
        let Some(doc) = self.docs.get_mut(id) else {
            return;
        };
        let before = doc.get_heads();
        f(doc);
        let changes = doc.get_changes(&before);
        for change in changes {
            self.bind_to_server(&change);
            self.log.push((id.clone(), change.raw_bytes().to_vec()));
        }
    }

    fn bind_to_server(&mut self, change: &Change) {
        self.claims
            .actors
            .entry(change.actor_id().clone())
            .or_insert_with(|| SERVER_OWNER.to_string());
    }

    /// A document as the server holds it.
    pub fn get(&self, id: &DocId) -> Option<&Automerge> {
        self.docs.get(id)
    }
}

impl DocumentHost for MemoryHost {
    /// Memory never fails.
    type Error = Infallible;

    fn document(&self, id: &DocId) -> Result<Option<&Automerge>, Infallible> {
        Ok(self.docs.get(id))
    }

    fn claims(&self) -> &Claims {
        &self.claims
    }

    fn store(&mut self, id: &DocId, accepted: Accepted) -> Result<(), Infallible> {
        self.claims.claim(id, &accepted);
        for change in &accepted.changes {
            self.log.push((id.clone(), change.raw_bytes().to_vec()));
        }
        self.docs.insert(id.clone(), accepted.doc);
        Ok(())
    }

    fn commit(&mut self) -> Result<(), Infallible> {
        Ok(())
    }

    fn news(
        &mut self,
        since: u64,
        scope: &Scope,
        skip: &HashSet<DocId>,
        max_bytes: usize,
    ) -> Result<News, Infallible> {
        let start = usize::try_from(since)
            .unwrap_or(usize::MAX)
            .min(self.log.len());
        let log = self.log[start..]
            .iter()
            .enumerate()
            .map(|(offset, (id, bytes))| ((start + offset + 1) as u64, id, bytes.as_slice()));
        let mut news = News::from_log(since, log, scope, skip, max_bytes);
        for (id, heads, _) in &mut news.docs {
            *heads = self
                .docs
                .get(id)
                .map(Automerge::get_heads)
                .unwrap_or_default();
        }
        Ok(news)
    }

    fn current_cursor(&mut self) -> Result<u64, Infallible> {
        Ok(self.log.len() as u64)
    }
}
