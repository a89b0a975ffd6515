//! The phone's side of the protocol: a session that builds requests from the store and applies
//! the answers, until neither side has anything left to send.

use std::collections::HashSet;

use automerge::{Automerge, ChangeHash, ReadDoc};
use serde_bytes::ByteBuf;

use super::wire::{
    DocRequest, Limits, RefusalCode, RequestBody, ResponseBody, SyncRequest, SyncResponse,
};
use super::{DocSyncState, Heads, Need};
use crate::ids::DocId;
use crate::store::{AgainOutcome, Interaction, PhoneStore, RecordedAgain, StoreError};

/// A session gives up after this many exchanges without finishing: a server that keeps asking
/// for the same thing is a bug to report, not a reason to drain the battery.
pub const MAX_EXCHANGES: usize = 64;

/// Why a sync session stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The store failed; what was applied before is kept.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The exchange did not finish within [`MAX_EXCHANGES`].
    #[error("sync did not settle after {MAX_EXCHANGES} exchanges")]
    NoProgress,
    /// The manifest names a document with a bad id.
    #[error("the round manifest is invalid: {0}")]
    Manifest(String),
}

/// What a session did, for the app to show.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SyncReport {
    /// Documents that received changes from the server.
    pub changed_documents: Vec<DocId>,
    /// Interactions the server acknowledged as durably stored.
    pub acknowledged: Vec<Interaction>,
    /// Documents the server refused, with its reason.
    pub refused: Vec<(DocId, RefusalCode, String)>,
    /// Interactions set aside because the server holds another change under this device's
    /// actor and sequence number (refusal `collision`), and written again once the
    /// document was fetched (see [`PhoneStore::set_aside`]); those the server held already are
    /// in `acknowledged` too.
    pub recorded_again: Vec<RecordedAgain>,
    /// Requests sent.
    pub exchanges: usize,
}

/// One sync of a store with the server. Call [`SyncSession::next_request`], send it, pass the
/// answer to [`SyncSession::apply_response`], and repeat until `next_request` returns `None`.
pub struct SyncSession<'s> {
    store: &'s mut PhoneStore,
    exchange: SyncExchange,
}

impl<'s> SyncSession<'s> {
    /// Starts a session over a store.
    pub fn new(store: &'s mut PhoneStore, limits: Limits) -> Self {
        Self {
            store,
            exchange: SyncExchange::new(limits),
        }
    }

    /// The next request to send, or `None` when the session is done.
    pub fn next_request(&mut self) -> Result<Option<SyncRequest>, SyncError> {
        self.exchange.next_request(self.store)
    }

    /// Applies an answer: loads what the server sent, records acknowledgements, and notes what
    /// the next request must ask.
    pub fn apply_response(&mut self, response: SyncResponse) -> Result<(), SyncError> {
        self.exchange.apply_response(self.store, response)
    }

    /// What the session did so far.
    pub fn report(&self) -> &SyncReport {
        self.exchange.report()
    }

    /// Ends the session, returning what it did.
    pub fn finish(self) -> SyncReport {
        self.exchange.finish()
    }
}

/// A sync session's progress without a borrow of the store, for callers that cannot hold one
/// across the network round trip (the mobile bindings, called back by the app after each HTTP
/// exchange). Pass the same store to every call.
#[derive(Debug)]
pub struct SyncExchange {
    limits: Limits,
    in_flight: HashSet<DocId>,
    polled: bool,
    more_news: bool,
    awaiting: bool,
    /// The held documents still to re-check in this session, once the store asked for it
    /// ([`PhoneStore::recheck_pending`]).
    rechecking: Option<HashSet<DocId>>,
    report: SyncReport,
}

impl SyncExchange {
    /// Starts an exchange.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            in_flight: HashSet::new(),
            polled: false,
            more_news: false,
            awaiting: false,
            rechecking: None,
            report: SyncReport::default(),
        }
    }

    /// The limits the exchange was started with (the app decodes answers with them).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether a request was sent and its answer not applied yet.
    pub fn awaiting_answer(&self) -> bool {
        self.awaiting
    }

    /// The next request to send, or `None` when the session is done.
    pub fn next_request(
        &mut self,
        store: &mut PhoneStore,
    ) -> Result<Option<SyncRequest>, SyncError> {
        if self.report.exchanges >= MAX_EXCHANGES {
            return Err(SyncError::NoProgress);
        }
        let mut docs = Vec::new();
        let mut size = 0;
        let budget = self.limits.max_body_bytes / 2;
        for id in self.missing_from_manifest(store)? {
            if docs.len() >= self.limits.max_docs {
                break;
            }
            docs.push(DocRequest {
                doc: id,
                body: RequestBody::Fetch,
            });
        }
        let ids: Vec<DocId> = store.document_ids().cloned().collect();
        // The server answered in another history (it was restored from a backup): every held
        // document states its heads once, and the server asks for what it lost.
        if store.recheck_pending() && self.rechecking.is_none() {
            self.rechecking = Some(ids.iter().cloned().collect());
        }
        // A document refused in this session is not pushed again before the next one.
        let refused: HashSet<DocId> = self
            .report
            .refused
            .iter()
            .map(|(id, _, _)| id.clone())
            .collect();
        for id in ids {
            if docs.len() >= self.limits.max_docs || size >= budget {
                break;
            }
            if refused.contains(&id) {
                continue;
            }
            let state = store.sync_state(&id).cloned().unwrap_or_default();
            let doc = store.document(&id)?;
            let recheck = self.rechecking.as_ref().is_some_and(|r| r.contains(&id));
            let body = request_for(doc, &state, &self.limits).or_else(|| {
                recheck.then(|| {
                    let heads = doc.get_heads().into();
                    (RequestBody::Have { heads }, Vec::new())
                })
            });
            if let Some((mut body, pushed)) = body {
                if let RequestBody::Push {
                    changes,
                    signatures,
                    ..
                } = &mut body
                {
                    size += changes.iter().map(|c| c.len()).sum::<usize>();
                    // Each change with the signature the store holds of it (its own, the
                    // server's, another phone's it carries); a store without a key sends none.
                    *signatures = store.push_signatures(&id, &pushed);
                }
                docs.push(DocRequest { doc: id, body });
            }
        }
        if docs.is_empty() && self.polled && !self.more_news {
            return Ok(None);
        }
        self.polled = true;
        self.in_flight = docs.iter().map(|d| d.doc.clone()).collect();
        self.report.exchanges += 1;
        self.awaiting = true;
        Ok(Some(SyncRequest {
            since: store.cursor(),
            history: store.history(),
            docs,
        }))
    }

    /// Applies an answer: loads what the server sent, records acknowledgements, and notes what
    /// the next request must ask.
    pub fn apply_response(
        &mut self,
        store: &mut PhoneStore,
        response: SyncResponse,
    ) -> Result<(), SyncError> {
        self.awaiting = false;
        for entry in response.docs {
            let id = entry.doc;
            let requested = self.in_flight.contains(&id);
            if requested {
                if let Some(rechecking) = &mut self.rechecking {
                    rechecking.remove(&id);
                }
            }
            if !requested && !store.contains(&id) {
                // News about a document this device no longer holds: nothing to update.
                continue;
            }
            match entry.body {
                ResponseBody::Update {
                    heads,
                    chunks,
                    complete,
                    signatures,
                } => {
                    let chunks: Vec<Vec<u8>> = chunks.into_iter().map(ByteBuf::into_vec).collect();
                    if !signatures.is_empty() {
                        store.keep_signatures(&id, signatures)?;
                    }
                    let previous = store.sync_state(&id).cloned().unwrap_or_default();
                    // Changed means new to the phone: the news after a push carries the phone's
                    // own changes back (the answer's cursor is read before its write), and
                    // loading them changes nothing.
                    let before = match store.contains(&id) {
                        true => Some(store.document(&id)?.get_heads()),
                        false => None,
                    };
                    let acked = store
                        .apply_remote(&id, &chunks, |doc| settle(doc, previous, heads, complete))?;
                    self.report.acknowledged.extend(acked);
                    let settled = store
                        .sync_state(&id)
                        .is_some_and(|state| state.need == Need::Nothing);
                    if settled && store.has_set_aside(&id) {
                        let again = store.record_set_aside(&id)?;
                        self.report.acknowledged.extend(
                            again
                                .iter()
                                .filter(|a| a.outcome == AgainOutcome::Stored)
                                .map(|a| a.before.clone()),
                        );
                        self.report.recorded_again.extend(again);
                    }
                    let after = store.document(&id)?.get_heads();
                    let changed = !chunks.is_empty() && before.is_none_or(|b| b != after);
                    if changed {
                        self.report.changed_documents.push(id);
                    }
                }
                ResponseBody::Resync { heads } => {
                    let mut state = store.sync_state(&id).cloned().unwrap_or_default();
                    state.need = Need::Resync {
                        server_heads: heads,
                    };
                    store.set_sync_state(&id, state)?;
                }
                ResponseBody::Refused {
                    code: RefusalCode::Collision,
                    message,
                } if store.contains(&id) => {
                    // Pushing these changes again can never succeed: set the interactions
                    // aside under a fresh actor, fetch the document as the server holds it in
                    // the next exchange, and write them again on it.
                    let aside = store.set_aside(&id)?;
                    tracing::warn!(doc = %id, %message, aside, "a change collides with one the server holds; pending interactions set aside");
                }
                ResponseBody::Refused { code, message } => {
                    if store.contains(&id) {
                        let at_heads = store.document(&id)?.get_heads().into();
                        let mut state = store.sync_state(&id).cloned().unwrap_or_default();
                        state.need = Need::Refused {
                            code,
                            message: message.clone(),
                            at_heads,
                        };
                        store.set_sync_state(&id, state)?;
                    }
                    tracing::warn!(doc = %id, code = code.as_str(), %message, "server refused a document");
                    self.report.refused.push((id, code, message));
                }
            }
        }
        if self.rechecking.as_ref().is_some_and(HashSet::is_empty) {
            store.finish_recheck()?;
            self.rechecking = None;
        }
        store.set_cursor(response.cursor, response.history, response.recheck)?;
        self.more_news = response.more;
        self.in_flight.clear();
        Ok(())
    }

    /// What the session did so far.
    pub fn report(&self) -> &SyncReport {
        &self.report
    }

    /// Ends the session, returning what it did.
    pub fn finish(self) -> SyncReport {
        self.report
    }

    fn missing_from_manifest(&self, store: &PhoneStore) -> Result<Vec<DocId>, SyncError> {
        let Some(manifest) = store.manifest() else {
            return Ok(Vec::new());
        };
        let ids = manifest
            .documents()
            .map_err(|v| SyncError::Manifest(v.to_string()))?;
        // A document refused as unknown is not asked for again in the same session.
        let refused: HashSet<&DocId> = self.report.refused.iter().map(|(id, _, _)| id).collect();
        Ok(ids
            .into_iter()
            .filter(|id| !store.contains(id) && !refused.contains(id))
            .collect())
    }
}

/// What to ask for one held document, if anything, and the changes a push carries.
fn request_for(
    doc: &Automerge,
    state: &DocSyncState,
    limits: &Limits,
) -> Option<(RequestBody, Vec<ChangeHash>)> {
    let heads = doc.get_heads();
    match &state.need {
        // The phone checked its changes with the server's own rules before storing them, so a
        // refusal of their bytes (malformed, invalid, forbidden) means they were damaged or
        // altered on the way: the next session pushes them again. A refusal of the document
        // itself (out of scope, unknown, too large) waits for the document to change.
        Need::Refused { at_heads, code, .. }
            if at_heads.0 == heads
                && matches!(
                    code,
                    RefusalCode::OutOfScope | RefusalCode::UnknownDocument | RefusalCode::TooLarge
                ) =>
        {
            None
        }
        Need::Resync { server_heads } => {
            let known: Vec<ChangeHash> = server_heads
                .0
                .iter()
                .filter(|h| doc.get_change_by_hash(h).is_some())
                .copied()
                .collect();
            Some(push(doc, &known, limits))
        }
        Need::Have => {
            if heads != state.acked.0 {
                Some(push(doc, &state.acked.0, limits))
            } else {
                Some((
                    RequestBody::Have {
                        heads: heads.into(),
                    },
                    Vec::new(),
                ))
            }
        }
        _ if heads != state.acked.0 => Some(push(doc, &state.acked.0, limits)),
        _ => None,
    }
}

/// Pushes the changes not under `base`, at most one message's worth: the rest goes next time.
/// Also returns the hashes of the changes pushed, in order.
fn push(doc: &Automerge, base: &[ChangeHash], limits: &Limits) -> (RequestBody, Vec<ChangeHash>) {
    let mut changes = Vec::new();
    let mut size = 0;
    let mut pushed = Vec::new();
    for change in doc.get_changes(base) {
        let bytes = change.raw_bytes();
        if size + bytes.len() > limits.max_message_bytes && !changes.is_empty() {
            break;
        }
        size += bytes.len();
        pushed.push(change.hash());
        changes.push(ByteBuf::from(bytes.to_vec()));
    }
    // Heads the pushed changes do not imply (concurrent heads the server already has).
    let implied: HashSet<ChangeHash> = pushed.iter().copied().collect();
    let extra: Vec<ChangeHash> = doc
        .get_heads()
        .into_iter()
        .filter(|h| !implied.contains(h))
        .collect();
    let extra = if changes.is_empty() {
        Vec::new()
    } else {
        extra
    };
    let body = RequestBody::Push {
        changes,
        extra_heads: Heads(extra),
        signatures: Vec::new(),
    };
    (body, pushed)
}

/// The sync state after an update was applied to `doc`.
fn settle(doc: &Automerge, previous: DocSyncState, heads: Heads, complete: bool) -> DocSyncState {
    let have_all = heads.0.iter().all(|h| doc.get_change_by_hash(h).is_some());
    let missing_deps = !doc.get_missing_deps(&[]).is_empty();
    let acked = if have_all { heads } else { previous.acked };
    let need = if !complete || missing_deps || !have_all {
        Need::Have
    } else {
        Need::Nothing
    };
    DocSyncState { acked, need }
}
