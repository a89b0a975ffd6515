//! The sync protocol between phones and the server.
//!
//! One HTTP request carries a batch of per-document entries ([`wire::SyncRequest`]); the answer
//! carries the server's entries ([`wire::SyncResponse`]). The phone is always the one asking.
//!
//! Per document the phone remembers the heads the server said it durably stored
//! ([`DocSyncState::acked_heads`]). Its next request pushes exactly the Automerge changes made
//! since then — no bloom filters, no round trip to discover what the server has — and the answer
//! acknowledges them with the server's new heads and carries whatever the phone lacks. Documents
//! whose heads are acknowledged and unchanged are not mentioned at all; the server's news about
//! them arrives through a per-device cursor over the server's change log. When the server cannot
//! place a push (it was restored from a backup that lacks the acknowledged heads) it answers
//! `Resync` with its heads and the phone pushes everything the server does not have. A document
//! larger than one message crosses in bounded pieces of whole changes, each applied on arrival.
//!
//! See `ARCHITECTURE.md` for why this is not Automerge's own sync protocol.

mod bounded;
mod checksum;
mod client;
mod heads;
mod server;
pub mod wire;

pub use checksum::{check_chunk, parse_change};
pub use client::{SyncError, SyncExchange, SyncReport, SyncSession};
pub use heads::Heads;
pub use server::{
    answered_with_chunks, attach_signatures, pushed_signatures, respond, signers, Answer,
    DocOutcome, MemoryHost, NewsLog, ParsedRequest, Prepared,
};

use serde::{Deserialize, Serialize};

use automerge::ChangeHash;

/// What the phone knows about one document's sync with the server; persisted in the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocSyncState {
    /// The heads the server acknowledged as durably stored.
    pub acked: Heads,
    /// What the next request must do for this document beyond pushing new changes.
    pub need: Need,
}

impl DocSyncState {
    /// The acknowledged heads as Automerge hashes.
    pub fn acked_heads(&self) -> Vec<ChangeHash> {
        self.acked.0.clone()
    }
}

/// What the next request must do for a document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Need {
    /// Push new changes if any; otherwise nothing.
    #[default]
    Nothing,
    /// Ask for what is missing: the last answer was a partial piece, or changes arrived whose
    /// dependencies are missing.
    Have,
    /// The server lacks our acknowledged heads: push everything not under its heads.
    Resync {
        /// The server's heads when it asked.
        server_heads: Heads,
    },
    /// The server refused our changes: pushed again at the next session when the refusal was of
    /// their bytes (they may have been altered on the way), else only once the document changes.
    Refused {
        /// The refusal code.
        code: wire::RefusalCode,
        /// The server's explanation.
        message: String,
        /// Our heads when refused.
        at_heads: Heads,
    },
}
