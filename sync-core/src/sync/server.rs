//! The server's side of the protocol, without transport or storage: a function. The server
//! reads what a batch needs ([`Prepared`]: the documents, the claims on their actors and record
//! keys, the news), [`respond`] answers the batch from it without any I/O, and hands back the
//! answer with what it accepted, which the server then commits before it sends the answer. Data
//! flows one way: server → core → server. [`MemoryHost`] is a server in memory built on the
//! same function, for tests, benchmarks and tools.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use automerge::legacy::{Key, OpType};
use automerge::{ActorId, Automerge, Change, ChangeHash, ObjType, ReadDoc};
use serde_bytes::ByteBuf;

use super::checksum::{contained, parse_change};
use super::wire::{
    DocRequest, DocResponse, Limits, RefusalCode, RequestBody, ResponseBody, SyncRequest,
    SyncResponse,
};
use super::Heads;
use crate::ids::DocId;
use crate::rules::{self, Field};
use crate::signing::{ChangeSignature, Keyring, PublicKey, Signer, SoftwareKey};
use crate::validator::{validate_signed, Accepted, Claims, Refusal, Role, Sender, SERVER_OWNER};

/// Everything [`respond`] reads, prepared by the server before it runs.
#[derive(Debug, Default)]
pub struct Prepared {
    /// The documents of the request that exist and are in the sender's scope, and the
    /// documents of the news; shared with the server's cache (a document is forked, never
    /// copied, to validate changes against it).
    pub docs: HashMap<DocId, Arc<Automerge>>,
    /// Who owns the actors, and which documents hold the record keys, that the request uses
    /// ([`ParsedRequest::wanted_claims`]).
    pub claims: Claims,
    /// The cursor covering every change the documents were read with: read before them, so a
    /// change stored meanwhile is the next batch's news rather than lost between the two.
    pub cursor: u64,
    /// The changes after the device's cursor to documents of its scope that the request does
    /// not name (none for a first sync, or for a cursor of another history).
    pub news: NewsLog,
    /// The server's history ([`SyncResponse::history`]): cursors of another one are not read.
    pub history: u64,
    /// The oldest cursor news can be read from: the change log is pruned below it (0: nothing
    /// pruned). An older cursor is answered with [`SyncResponse::recheck`].
    pub oldest_cursor: u64,
    /// The keys the pushed changes' signatures are checked against: the signing devices' and
    /// the server's ([`signers`] names the devices to read).
    pub keyring: Keyring,
}

/// The devices whose signatures a request carries: the server reads their keys, revocations and
/// scopes into [`Prepared::keyring`].
pub fn signers(request: &SyncRequest) -> BTreeSet<String> {
    pushed_signatures(request)
        .filter_map(|s| match &s.signer {
            Signer::Device { device } => Some(device.clone()),
            Signer::Server { .. } => None,
        })
        .collect()
}

/// Every signature the pushes of a request carry.
pub fn pushed_signatures(request: &SyncRequest) -> impl Iterator<Item = &ChangeSignature> {
    request
        .docs
        .iter()
        .filter_map(|entry| match &entry.body {
            RequestBody::Push { signatures, .. } => Some(signatures),
            _ => None,
        })
        .flatten()
}

/// Adds to every document answered with chunks the signatures `held` returns for it, so the
/// phone keeps them beside the changes (the server calls it after [`respond`], once it read the
/// signatures of the answered documents).
pub fn attach_signatures(
    response: &mut SyncResponse,
    mut held: impl FnMut(&DocId) -> Vec<ChangeSignature>,
) {
    for entry in &mut response.docs {
        if let ResponseBody::Update {
            chunks, signatures, ..
        } = &mut entry.body
        {
            if !chunks.is_empty() {
                *signatures = held(&entry.doc);
            }
        }
    }
}

/// The documents of an answer that carry chunks: those whose signatures the server attaches.
pub fn answered_with_chunks(response: &SyncResponse) -> Vec<DocId> {
    response
        .docs
        .iter()
        .filter(|d| matches!(&d.body, ResponseBody::Update { chunks, .. } if !chunks.is_empty()))
        .map(|d| d.doc.clone())
        .collect()
}

/// Changes a device has not seen, as the server read them: in cursor order, already limited to
/// the device's scope and to documents the request does not name.
#[derive(Debug, Default)]
pub struct NewsLog {
    /// `(cursor position, document, change)` in cursor order.
    pub rows: Vec<(u64, DocId, Vec<u8>)>,
    /// The cursor covering everything read, the rows and what was passed over.
    pub cursor: u64,
    /// More is waiting beyond `cursor`.
    pub more: bool,
}

/// A sync request with its pushed changes parsed, once: the server reads the claims they need
/// ([`ParsedRequest::wanted_claims`]) and [`respond`] validates them without parsing them again
/// (each parse checks the change's hash and checksum: a tenth of a storm's server work).
#[derive(Debug)]
pub struct ParsedRequest {
    /// The request; its pushes' change bytes are in `pushes`, parsed.
    request: SyncRequest,
    /// Per entry of the request, for a push: its changes, or why they cannot be read.
    pushes: Vec<Option<Pushed>>,
}

/// One entry's pushed changes, parsed, or why they cannot be read.
type Pushed = Result<Vec<Change>, (RefusalCode, String)>;

impl ParsedRequest {
    /// Parses every pushed change of `request`. A change over the message limit, or one that
    /// does not parse, refuses its entry (when [`respond`] reaches it, after the checks of
    /// scope and existence that come first).
    pub fn parse(mut request: SyncRequest, limits: &Limits) -> ParsedRequest {
        let pushes = request
            .docs
            .iter_mut()
            .map(|entry| {
                let RequestBody::Push { changes, .. } = &mut entry.body else {
                    return None;
                };
                let changes = std::mem::take(changes);
                Some(
                    changes
                        .into_iter()
                        .map(|bytes| {
                            if bytes.len() > limits.max_message_bytes {
                                let message =
                                    format!("a change of {} bytes is over the limit", bytes.len());
                                return Err((RefusalCode::TooLarge, message));
                            }
                            parse_change(&bytes).map_err(|why| (RefusalCode::Malformed, why))
                        })
                        .collect(),
                )
            })
            .collect();
        ParsedRequest { request, pushes }
    }

    /// The request (its pushes without their change bytes, which are parsed here).
    pub fn request(&self) -> &SyncRequest {
        &self.request
    }

    /// What a server must read into [`Prepared::claims`] before [`respond`] runs the request:
    /// the actors its pushed changes are authored under, and the keys of every map they create
    /// that could be a record's (the validator later knows which are). Entries whose changes do
    /// not parse are passed over: `respond` refuses them.
    pub fn wanted_claims(&self) -> (BTreeSet<ActorId>, BTreeSet<String>) {
        let mut actors = BTreeSet::new();
        let mut keys = BTreeSet::new();
        for change in self.pushes.iter().flatten().flatten().flatten() {
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
        (actors, keys)
    }
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

/// An answer, what it did, and what it accepted: the server commits `accepted` before it sends
/// `response`, which acknowledges it.
#[derive(Debug)]
pub struct Answer {
    /// What to send back once `accepted` is durable.
    pub response: SyncResponse,
    /// What happened, per document that pushed or was refused.
    pub outcomes: Vec<DocOutcome>,
    /// What the validator accepted, per document, in order (a document may come more than once
    /// in a batch: each holds the document after its changes), with the records it checked.
    pub accepted: Vec<(DocId, Accepted)>,
    /// The heads each accepted document was prepared at.
    pub bases: HashMap<DocId, Vec<ChangeHash>>,
}

/// Answers one batch from `sender` against what the server prepared, without I/O. Each
/// document's entry stands alone: a refused document is reported in the answer and accepts
/// nothing, the rest of the batch proceeds. Nothing is acknowledged until the server has
/// committed [`Answer::accepted`].
pub fn respond(
    prepared: Prepared,
    request: ParsedRequest,
    sender: &Sender,
    limits: &Limits,
) -> Answer {
    let ParsedRequest { request, pushes } = request;
    let Prepared {
        docs,
        claims,
        cursor: start_cursor,
        news,
        history,
        oldest_cursor,
        keyring,
    } = prepared;
    let mut batch = Batch {
        docs,
        claims,
        keyring,
        accepted: Vec::new(),
        latest: HashMap::new(),
        bases: HashMap::new(),
    };
    let mut docs = Vec::with_capacity(request.docs.len());
    let mut outcomes = Vec::new();
    let mut budget = limits.max_body_bytes / 2;
    let since = request
        .since_in(history)
        .filter(|since| *since >= oldest_cursor);
    // A cursor the server cannot read news from is answered as a first sync's, and the phone
    // told to re-check what it holds.
    let recheck = request.since.is_some() && since.is_none();
    for (DocRequest { doc, body }, pushed) in request.docs.into_iter().zip(pushes) {
        // Automerge can panic on crafted bytes (an unwrap on a missing column, an assertion
        // on a sequence gap): such a panic refuses this document, as malformed, and touches
        // nothing: the validator only ever works on a fork.
        let outcome =
            contained(|| batch.answer_doc(&doc, body, pushed, sender, limits, &mut budget))
                .unwrap_or_else(|()| {
                    Err((
                        RefusalCode::Malformed,
                        "the changes could not be read".to_string(),
                    ))
                });
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
    let (cursor, more) = match since {
        // A first sync fetches its documents explicitly; news starts from now. So does a phone
        // whose cursor is of another history: told so by the answer's history, it re-checks
        // every document it holds.
        None => (start_cursor, false),
        Some(since) => batch.pack_news(since, news, budget, &mut docs),
    };
    Answer {
        response: SyncResponse {
            cursor,
            history: Some(history),
            recheck,
            more,
            docs,
        },
        outcomes,
        accepted: batch.accepted,
        bases: batch.bases,
    }
}

/// A document's answer and how many changes it accepted, or why it was refused.
type DocAnswer = Result<(ResponseBody, usize), (RefusalCode, String)>;

/// One batch's state while [`respond`] runs it.
struct Batch {
    docs: HashMap<DocId, Arc<Automerge>>,
    /// The prepared claims, and what the batch's accepted documents claimed so far, so a batch
    /// of documents cannot claim one key or actor twice.
    claims: Claims,
    keyring: Keyring,
    accepted: Vec<(DocId, Accepted)>,
    /// Where each document's latest accepted state is in `accepted`: read instead of the
    /// prepared copy, which is dropped rather than cloned again.
    latest: HashMap<DocId, usize>,
    bases: HashMap<DocId, Vec<ChangeHash>>,
}

impl Batch {
    fn document(&self, id: &DocId) -> Option<&Automerge> {
        match self.latest.get(id) {
            Some(&at) => Some(&self.accepted[at].1.doc),
            None => self.docs.get(id).map(|doc| &**doc),
        }
    }

    fn accept(&mut self, id: &DocId, accepted: Accepted) {
        self.claims.claim(id, &accepted);
        if let Some(prepared) = self.docs.remove(id) {
            self.bases.insert(id.clone(), prepared.get_heads());
        }
        self.latest.insert(id.clone(), self.accepted.len());
        self.accepted.push((id.clone(), accepted));
    }

    fn answer_doc(
        &mut self,
        id: &DocId,
        body: RequestBody,
        pushed: Option<Pushed>,
        sender: &Sender,
        limits: &Limits,
        budget: &mut usize,
    ) -> DocAnswer {
        if !sender.scope.contains(id) {
            return Err((
                RefusalCode::OutOfScope,
                format!("{id} is not in your rounds or account"),
            ));
        }
        let Some(doc) = self.document(id) else {
            return Err((RefusalCode::UnknownDocument, format!("{id} does not exist")));
        };
        let (extra_heads, signatures) = match body {
            RequestBody::Fetch => return Ok((update(doc, &[], limits, budget), 0)),
            // Heads the server does not hold were acknowledged by a server restored since from
            // an older backup: the phone pushes what is not under the server's heads.
            RequestBody::Have { heads }
                if heads.0.iter().any(|h| doc.get_change_by_hash(h).is_none()) =>
            {
                return Ok((
                    ResponseBody::Resync {
                        heads: doc.get_heads().into(),
                    },
                    0,
                ))
            }
            RequestBody::Have { heads } => return Ok((update(doc, &heads.0, limits, budget), 0)),
            RequestBody::Push {
                extra_heads,
                signatures,
                ..
            } => (extra_heads, signatures),
        };
        let parsed = pushed.unwrap_or_else(|| Ok(Vec::new()))?;
        let mut client_heads = maximal(&parsed);
        client_heads.extend(extra_heads.0);
        let validated = validate_signed(
            id,
            doc,
            parsed,
            &signatures,
            sender,
            &self.keyring,
            &self.claims,
        );
        let accepted = match validated {
            Ok(accepted) => accepted,
            Err(Refusal::MissingDependencies(_)) => {
                let heads = doc.get_heads().into();
                return Ok((ResponseBody::Resync { heads }, 0));
            }
            Err(refusal) => {
                let code = match &refusal {
                    Refusal::OutOfScope(_) => RefusalCode::OutOfScope,
                    Refusal::Malformed(_) | Refusal::MissingDependencies(_) => {
                        RefusalCode::Malformed
                    }
                    Refusal::Forbidden { .. } | Refusal::ActorTaken { .. } => {
                        RefusalCode::Forbidden
                    }
                    // A change that collides with a stored one is `Collision`: the phone writes
                    // its interactions again; the rest it pushes again at its next session.
                    Refusal::Invalid { .. } | Refusal::DoesNotApply(_) => RefusalCode::Invalid,
                    Refusal::SequenceTaken { .. } | Refusal::KeyTaken { .. } => {
                        RefusalCode::Collision
                    }
                    Refusal::Signature { .. } => RefusalCode::Signature,
                };
                return Err((code, refusal.to_string()));
            }
        };
        let count = accepted.changes.len();
        if count > 0 {
            self.accept(id, accepted);
        }
        let doc = self.document(id).ok_or_else(|| {
            (
                RefusalCode::UnknownDocument,
                format!("{id} vanished while syncing"),
            )
        })?;
        Ok((update(doc, &client_heads, limits, budget), count))
    }

    /// Adds the news to the answer's entries, as much as `budget` allows, and returns the
    /// cursor covering what it carries and whether more is waiting.
    fn pack_news(
        &self,
        since: u64,
        news: NewsLog,
        budget: usize,
        answer: &mut Vec<DocResponse>,
    ) -> (u64, bool) {
        let mut cursor = since;
        let mut size = 0;
        let mut index: HashMap<DocId, usize> = HashMap::new();
        let mut cut = false;
        for (position, id, bytes) in news.rows {
            if size + bytes.len() > budget && size > 0 {
                cut = true;
                break;
            }
            size += bytes.len();
            cursor = position;
            let slot = *index.entry(id.clone()).or_insert_with(|| {
                let heads = self
                    .docs
                    .get(&id)
                    .map(|d| d.get_heads())
                    .unwrap_or_default();
                answer.push(DocResponse {
                    doc: id.clone(),
                    body: ResponseBody::Update {
                        heads: heads.into(),
                        chunks: Vec::new(),
                        complete: true,
                        signatures: Vec::new(),
                    },
                });
                answer.len() - 1
            });
            if let ResponseBody::Update { chunks, .. } = &mut answer[slot].body {
                chunks.push(ByteBuf::from(bytes));
            }
        }
        if cut {
            (cursor, true)
        } else {
            // Everything read fitted: the cursor covers what the server scanned.
            (cursor.max(news.cursor), news.more)
        }
    }
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
                signatures: Vec::new(),
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
        signatures: Vec::new(),
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

/// A server in memory, on [`respond`] like the real one: for tests, benchmarks and tools. Its
/// cursor counts stored changes. A clone is a backup: [`MemoryHost::restored`] serves it again.
#[derive(Debug, Default, Clone)]
pub struct MemoryHost {
    docs: HashMap<DocId, Arc<Automerge>>,
    log: Vec<(DocId, Vec<u8>)>,
    claims: Claims,
    history: u64,
    /// Log positions below this are pruned ([`MemoryHost::prune_log`]).
    oldest_cursor: u64,
    /// The keys signatures are checked against ([`MemoryHost::register_device`]) and the
    /// server's own key, which signs what [`MemoryHost::write_as`] writes.
    keyring: Keyring,
    key: Option<SoftwareKey>,
    /// The signatures held beside the changes, per document.
    signatures: HashMap<DocId, Vec<ChangeSignature>>,
}

impl MemoryHost {
    /// An empty host.
    pub fn new() -> Self {
        Self::default()
    }

    /// The host as it was when `backup` was cloned from it, serving a history of its own, as
    /// the real server does once restored from a backup.
    pub fn restored(backup: &MemoryHost) -> Self {
        Self {
            history: backup.history.wrapping_add(1),
            ..backup.clone()
        }
    }

    /// Registers a device's key and whom it writes as, as the server's device import does.
    pub fn register_device(&mut self, device: &str, author: Sender, key: Option<PublicKey>) {
        self.keyring.devices.insert(
            device.to_string(),
            crate::signing::DeviceKey {
                author,
                key,
                revoked: false,
            },
        );
    }

    /// Revokes a device: none of its changes is accepted from now on, whoever carries them.
    pub fn revoke_device(&mut self, device: &str) {
        if let Some(known) = self.keyring.devices.get_mut(device) {
            known.revoked = true;
        }
    }

    /// Refuses unsigned pushes of postmen from now on.
    pub fn require_signatures(&mut self) {
        self.keyring.require_signatures = true;
    }

    /// The signatures held beside a document's changes.
    pub fn signatures(&self, id: &DocId) -> &[ChangeSignature] {
        self.signatures
            .get(id)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Writes into a document on behalf of a customer or the back office, as the real server
    /// does: under its own actor, each change signed by the server's key.
    pub fn write_as(
        &mut self,
        id: &DocId,
        role: Role,
        principal: &str,
        f: impl FnOnce(&mut Automerge),
    ) {
        let key = self.server_key();
        let public = key.public_key();
        let Some(doc) = self.docs.get_mut(id) else {
            return;
        };
        let doc = Arc::make_mut(doc);
        let before = doc.get_heads();
        let mut fork = doc.fork();
        f(&mut fork);
        doc.merge(&mut fork).ok();
        let changes = doc.get_changes(&before);
        for change in changes {
            let signer = Signer::Server {
                key: public.id(),
                role,
                principal: principal.to_string(),
            };
            self.signatures
                .entry(id.clone())
                .or_default()
                .push(key.sign_change(id, &change.hash(), signer));
            self.claims
                .actors
                .entry(change.actor_id().clone())
                .or_insert_with(|| SERVER_OWNER.to_string());
            self.log.push((id.clone(), change.raw_bytes().to_vec()));
        }
    }

    /// Forgets the news stored so far, as the real server prunes its change log: a device whose
    /// cursor is older than now re-checks what it holds.
    pub fn prune_log(&mut self) {
        self.oldest_cursor = self.log.len() as u64;
    }

    /// Adds a document the server created (its skeleton and reference data); its actors are
    /// the server's.
    pub fn insert(&mut self, id: DocId, doc: Automerge) {
        let key = self.server_key();
        for change in doc.get_changes(&[]) {
            self.bind_to_server(&change);
            let signer = Signer::Server {
                key: key.public_key().id(),
                role: Role::BackOffice,
                principal: SERVER_OWNER.to_string(),
            };
            self.signatures
                .entry(id.clone())
                .or_default()
                .push(key.sign_change(&id, &change.hash(), signer));
            self.log.push((id.clone(), change.raw_bytes().to_vec()));
        }
        self.docs.insert(id, Arc::new(doc));
    }

    /// The server's signing key, created with the host and kept in its backups (the real server
    /// keeps it in its database or a file), published in its keyring.
    pub fn server_key(&mut self) -> SoftwareKey {
        let key = self.key.get_or_insert_with(SoftwareKey::generate).clone();
        let public = key.public_key();
        self.keyring.server.insert(public.id(), public);
        key
    }

    /// Applies changes written by the server itself (e.g. on behalf of the back office).
    pub fn apply_local(&mut self, id: &DocId, f: impl FnOnce(&mut Automerge)) {
        let Some(doc) = self.docs.get_mut(id) else {
            return;
        };
        let doc = Arc::make_mut(doc);
        let before = doc.get_heads();
        f(doc);
        let changes = doc.get_changes(&before);
        let mut logged = Vec::with_capacity(changes.len());
        for change in changes {
            logged.push((id.clone(), change.raw_bytes().to_vec()));
            self.claims
                .actors
                .entry(change.actor_id().clone())
                .or_insert_with(|| SERVER_OWNER.to_string());
        }
        self.log.extend(logged);
    }

    fn bind_to_server(&mut self, change: &Change) {
        self.claims
            .actors
            .entry(change.actor_id().clone())
            .or_insert_with(|| SERVER_OWNER.to_string());
    }

    /// A document as the server holds it.
    pub fn get(&self, id: &DocId) -> Option<&Automerge> {
        self.docs.get(id).map(|doc| &**doc)
    }

    /// Answers a batch as the real server does: prepares what it reads, runs [`respond`], and
    /// stores what was accepted before returning the answer.
    pub fn respond(&mut self, request: SyncRequest, sender: &Sender, limits: &Limits) -> Answer {
        let named: HashSet<&DocId> = request.docs.iter().map(|d| &d.doc).collect();
        let mut docs: HashMap<DocId, Arc<Automerge>> = named
            .iter()
            .filter(|id| sender.scope.contains(id))
            .filter_map(|id| Some(((*id).clone(), Arc::clone(self.docs.get(*id)?))))
            .collect();
        let cursor = self.log.len() as u64;
        let mut news = NewsLog {
            cursor,
            ..NewsLog::default()
        };
        if let Some(since) = request
            .since_in(self.history)
            .filter(|since| *since >= self.oldest_cursor)
        {
            let start = usize::try_from(since)
                .unwrap_or(usize::MAX)
                .min(self.log.len());
            for (offset, (id, bytes)) in self.log[start..].iter().enumerate() {
                if named.contains(id) || !sender.scope.contains(id) {
                    continue;
                }
                if let Some(doc) = self.docs.get(id) {
                    docs.entry(id.clone()).or_insert_with(|| Arc::clone(doc));
                }
                news.rows
                    .push(((start + offset + 1) as u64, id.clone(), bytes.clone()));
            }
        }
        let prepared = Prepared {
            docs,
            claims: self.claims.clone(),
            cursor,
            news,
            history: self.history,
            oldest_cursor: self.oldest_cursor,
            keyring: self.keyring.clone(),
        };
        let mut answer = respond(
            prepared,
            ParsedRequest::parse(request, limits),
            sender,
            limits,
        );
        for (id, accepted) in &answer.accepted {
            self.claims.claim(id, accepted);
            self.signatures
                .entry(id.clone())
                .or_default()
                .extend(accepted.signatures.iter().cloned());
            for change in &accepted.changes {
                self.log.push((id.clone(), change.raw_bytes().to_vec()));
            }
            self.docs.insert(id.clone(), Arc::new(accepted.doc.clone()));
        }
        attach_signatures(&mut answer.response, |id| {
            self.signatures.get(id).cloned().unwrap_or_default()
        });
        answer
    }
}
