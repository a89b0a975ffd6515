//! The versioned binary format of a sync batch.
//!
//! A frame is `b"TRNE"`, a version byte, a flags byte, then a CBOR body — deflated when flag
//! bit 0 is set, which the encoder does for bodies over 256 bytes: a batch of many changes from
//! one device repeats actor ids and keys, and compresses well. Decoding checks the frame size,
//! the version, the inflated size and every entry's size before anything is applied, and every
//! failure is a [`WireError`], never a panic.

use std::io::{Read, Write};

use flate2::{bufread::DeflateDecoder, write::DeflateEncoder, Compression};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::{bounded, Heads};
use crate::ids::DocId;
use crate::signing::ChangeSignature;

/// The frame magic.
pub const MAGIC: &[u8; 4] = b"TRNE";
/// The HTTP media type of request and response frames.
pub const MEDIA_TYPE: &str = "application/vnd.tournee.sync";
/// The wire version this build speaks.
///
/// - 1: the first.
/// - 2: adds [`RefusalCode::Collision`]. A server answers a version-1 request in version 1,
///   where that refusal reads [`RefusalCode::Invalid`] (such a phone stays blocked, as before).
/// - 3: adds the server's history to cursors ([`SyncRequest::history`],
///   [`SyncResponse::history`]), so that a server restored from a backup recognises cursors it
///   never issued and the phones re-check what it holds. A server answers older versions without
///   it (such a phone is not told of a restore, as before).
/// - 4: adds signatures beside changes ([`RequestBody::Push::signatures`],
///   [`ResponseBody::Update::signatures`]) and [`RefusalCode::Signature`]. A server answers older
///   versions without signatures, and their unsigned pushes as before unless signatures are
///   required (then refused as [`RefusalCode::Forbidden`]).
pub const VERSION: u8 = 4;
/// The oldest wire version this build still reads and answers.
pub const OLDEST_VERSION: u8 = 1;
const FLAG_DEFLATE: u8 = 1;
const COMPRESS_ABOVE: usize = 256;

/// Size limits, shared by both ends so a client never builds what the server refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest frame accepted, as sent (compressed).
    pub max_frame_bytes: usize,
    /// The largest body accepted once inflated.
    pub max_body_bytes: usize,
    /// The largest payload of one document entry (its changes); also the largest single change.
    pub max_message_bytes: usize,
    /// The most document entries in one batch.
    pub max_docs: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 4 * 1024 * 1024,
            max_body_bytes: 16 * 1024 * 1024,
            max_message_bytes: 256 * 1024,
            max_docs: 1_000,
        }
    }
}

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Shorter than a header, or not starting with the magic.
    #[error("not a Tournée sync frame")]
    NotAFrame,
    /// A version this build does not speak.
    #[error(
        "wire version {found} is not supported (this build speaks {OLDEST_VERSION} to {VERSION})"
    )]
    UnsupportedVersion {
        /// The version in the frame.
        found: u8,
    },
    /// Over a size limit.
    #[error("{what} is {size} bytes, the limit is {limit}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The body does not decode.
    #[error("malformed sync batch: {0}")]
    Malformed(String),
}

/// What the phone sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncRequest {
    /// The cursor of the last answer; `None` on a device's first sync.
    pub since: Option<u64>,
    /// The server history `since` was issued in ([`SyncResponse::history`]); `None` before the
    /// first answer that named one. Version 3 on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<u64>,
    /// One entry per document that needs something.
    #[serde(deserialize_with = "bounded::docs")]
    pub docs: Vec<DocRequest>,
}

/// One document's part of a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocRequest {
    /// The document.
    pub doc: DocId,
    /// What is asked.
    pub body: RequestBody,
}

/// What the phone asks for one document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RequestBody {
    /// "I have nothing of it: send it all."
    Fetch,
    /// "These are my heads: send what I lack."
    Have {
        /// The phone's heads.
        heads: Heads,
    },
    /// "Here are my changes since what you acknowledged."
    Push {
        /// Automerge changes, each as bytes, in causal order.
        #[serde(deserialize_with = "bounded::changes")]
        changes: Vec<ByteBuf>,
        /// Heads of the phone not among the pushed changes (rare: usually empty).
        extra_heads: Heads,
        /// A signature for each pushed change: the author of a change is its signer, whoever
        /// pushes it. Version 4 on; a push without any is an older phone's.
        #[serde(
            default,
            skip_serializing_if = "Vec::is_empty",
            deserialize_with = "bounded::signatures"
        )]
        signatures: Vec<ChangeSignature>,
    },
}

/// What the server answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncResponse {
    /// The cursor to send next time.
    pub cursor: u64,
    /// The server's history: its change log since it began or was last restored from a backup.
    /// A phone that held a cursor of another history re-checks every document it holds (the
    /// server may have lost changes it acknowledged). Version 3 on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<u64>,
    /// The request's cursor is not one the server can read news from (one of another history,
    /// or one below the change log's pruned horizon): the phone re-checks every document it
    /// holds, as after a new history. Version 3 on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recheck: bool,
    /// The server has more news than fitted: ask again.
    pub more: bool,
    /// One entry per document answered, plus documents with news.
    #[serde(deserialize_with = "bounded::docs")]
    pub docs: Vec<DocResponse>,
}

/// One document's part of an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocResponse {
    /// The document.
    pub doc: DocId,
    /// The answer.
    pub body: ResponseBody,
}

/// The server's answer for one document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ResponseBody {
    /// The server durably stored everything up to `heads`; `chunks` is what the phone lacks.
    Update {
        /// The server's heads, durably stored.
        heads: Heads,
        /// Automerge chunks (a whole document or changes) to load in order.
        #[serde(deserialize_with = "bounded::changes")]
        chunks: Vec<ByteBuf>,
        /// False when more pieces follow: ask again with `Have`.
        complete: bool,
        /// The signatures the server holds of the changes in `chunks`, kept by the phone so it
        /// can give them back to a server restored from a backup, or to another phone. Version
        /// 4 on.
        #[serde(
            default,
            skip_serializing_if = "Vec::is_empty",
            deserialize_with = "bounded::signatures"
        )]
        signatures: Vec<ChangeSignature>,
    },
    /// The server lacks the phone's base: push everything not under these heads.
    Resync {
        /// The server's heads.
        heads: Heads,
    },
    /// Refused; nothing of this document's entry was stored.
    Refused {
        /// Why, for programs.
        code: RefusalCode,
        /// Why, for people.
        message: String,
    },
}

/// Why the server refused a document's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RefusalCode {
    /// The sender's role may not write what the changes write.
    Forbidden,
    /// The changes write values the rules refuse.
    Invalid,
    /// The document is not in the sender's rounds or account.
    OutOfScope,
    /// No such document on the server.
    UnknownDocument,
    /// The changes do not parse.
    Malformed,
    /// An entry or change over the size limit.
    TooLarge,
    /// A change collides with a different change the server stored: it reuses that change's
    /// actor and sequence number, or creates a record under a key that change created (one
    /// altered in transit and re-checksummed, or a phone restored from an old copy of its
    /// store). Sending it again cannot succeed: the phone sets its pending interactions aside
    /// under a fresh actor and writes them again under fresh ids (`PhoneStore::set_aside`).
    /// Version 2 on.
    Collision,
    /// A change's signature is missing, from an unknown or revoked device, or wrong: nothing of
    /// the entry is stored. Version 4 on (older phones read [`RefusalCode::Forbidden`]).
    Signature,
}

impl RefusalCode {
    /// A stable name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::Forbidden => "forbidden",
            RefusalCode::Invalid => "invalid",
            RefusalCode::OutOfScope => "out_of_scope",
            RefusalCode::UnknownDocument => "unknown_document",
            RefusalCode::Malformed => "malformed",
            RefusalCode::TooLarge => "too_large",
            RefusalCode::Collision => "collision",
            RefusalCode::Signature => "signature",
        }
    }

    /// The code as a peer speaking `version` understands it.
    fn for_version(self, version: u8) -> Self {
        match self {
            RefusalCode::Collision if version < 2 => RefusalCode::Invalid,
            RefusalCode::Signature if version < 4 => RefusalCode::Forbidden,
            code => code,
        }
    }
}

impl SyncRequest {
    /// The cursor, if it was issued in `history`: a cursor of another history (one the server
    /// issued before it was restored from a backup, or another server's) says nothing of this
    /// change log, and the request is answered as a first sync's would be. A request without a
    /// history (a phone speaking an older version) is taken at its word.
    pub fn since_in(&self, history: u64) -> Option<u64> {
        match self.history {
            Some(issued) if issued != history => None,
            _ => self.since,
        }
    }
}

impl RequestBody {
    fn payload_bytes(&self) -> usize {
        match self {
            RequestBody::Push { changes, .. } => changes.iter().map(|c| c.len()).sum(),
            _ => 0,
        }
    }
}

/// Encodes a request frame.
pub fn encode_request(request: &SyncRequest) -> Vec<u8> {
    encode(request, VERSION)
}

/// Encodes a response frame in this build's version.
pub fn encode_response(response: &SyncResponse) -> Vec<u8> {
    encode(response, VERSION)
}

/// Encodes a response frame for a peer that spoke `version` (one [`decode_request`] accepted):
/// what that version cannot say is said as it would have been then.
pub fn encode_response_for(response: &SyncResponse, version: u8) -> Vec<u8> {
    let version = version.clamp(OLDEST_VERSION, VERSION);
    let outdated = response.docs.iter().any(|d| {
        matches!(d.body, ResponseBody::Refused { code, .. } if code.for_version(version) != code)
    }) || (version < 3 && (response.history.is_some() || response.recheck))
        || (version < 4 && response.docs.iter().any(|d| {
            matches!(&d.body, ResponseBody::Update { signatures, .. } if !signatures.is_empty())
        }));
    if !outdated {
        return encode(response, version);
    }
    let mut response = response.clone();
    if version < 3 {
        response.history = None;
        response.recheck = false;
    }
    for entry in &mut response.docs {
        match &mut entry.body {
            ResponseBody::Refused { code, .. } => *code = code.for_version(version),
            ResponseBody::Update { signatures, .. } if version < 4 => signatures.clear(),
            _ => {}
        }
    }
    encode(&response, version)
}

/// The version of a frame that starts with the magic, without decoding it.
pub fn frame_version(frame: &[u8]) -> Option<u8> {
    match frame {
        [m0, m1, m2, m3, version, ..] if [*m0, *m1, *m2, *m3] == *MAGIC => Some(*version),
        _ => None,
    }
}

/// Decodes and checks a request frame against `limits`.
pub fn decode_request(frame: &[u8], limits: &Limits) -> Result<SyncRequest, WireError> {
    let request: SyncRequest = decode(frame, limits)?;
    check_docs(request.docs.len(), limits)?;
    for entry in &request.docs {
        check_message(entry.body.payload_bytes(), limits)?;
    }
    Ok(request)
}

/// Decodes and checks a response frame against `limits`.
pub fn decode_response(frame: &[u8], limits: &Limits) -> Result<SyncResponse, WireError> {
    let response: SyncResponse = decode(frame, limits)?;
    for entry in &response.docs {
        if let ResponseBody::Update { chunks, .. } = &entry.body {
            check_message(chunks.iter().map(|c| c.len()).sum(), limits)?;
        }
    }
    Ok(response)
}

fn check_docs(count: usize, limits: &Limits) -> Result<(), WireError> {
    if count > limits.max_docs {
        return Err(WireError::TooLarge {
            what: "the number of documents in the batch",
            size: count,
            limit: limits.max_docs,
        });
    }
    Ok(())
}

fn check_message(size: usize, limits: &Limits) -> Result<(), WireError> {
    if size > limits.max_message_bytes {
        return Err(WireError::TooLarge {
            what: "a document entry",
            size,
            limit: limits.max_message_bytes,
        });
    }
    Ok(())
}

fn encode<T: Serialize>(value: &T, version: u8) -> Vec<u8> {
    let mut body = Vec::new();
    // Serialising plain structs into a Vec cannot fail.
    let _ = ciborium::into_writer(value, &mut body);
    let mut frame = Vec::with_capacity(body.len() / 2 + 6);
    frame.extend_from_slice(MAGIC);
    frame.push(version);
    if body.len() > COMPRESS_ABOVE {
        frame.push(FLAG_DEFLATE);
        let mut encoder = DeflateEncoder::new(frame, Compression::default());
        let _ = encoder.write_all(&body);
        encoder.finish().unwrap_or_default()
    } else {
        frame.push(0);
        frame.extend_from_slice(&body);
        frame
    }
}

fn decode<T: DeserializeOwned>(frame: &[u8], limits: &Limits) -> Result<T, WireError> {
    if frame.len() > limits.max_frame_bytes {
        return Err(WireError::TooLarge {
            what: "the frame",
            size: frame.len(),
            limit: limits.max_frame_bytes,
        });
    }
    if frame.len() < 6 || &frame[..4] != MAGIC {
        return Err(WireError::NotAFrame);
    }
    if !(OLDEST_VERSION..=VERSION).contains(&frame[4]) {
        return Err(WireError::UnsupportedVersion { found: frame[4] });
    }
    let flags = frame[5];
    if flags & !FLAG_DEFLATE != 0 {
        return Err(WireError::Malformed(format!("unknown flags {flags:#04x}")));
    }
    let raw = &frame[6..];
    let body = if flags & FLAG_DEFLATE != 0 {
        let mut body = Vec::new();
        let limit = limits.max_body_bytes;
        let mut decoder = DeflateDecoder::new(raw);
        (&mut decoder)
            .take((limit as u64).saturating_add(1))
            .read_to_end(&mut body)
            .map_err(|e| WireError::Malformed(format!("bad compression: {e}")))?;
        if body.len() > limit {
            return Err(WireError::TooLarge {
                what: "the inflated body",
                size: body.len(),
                limit,
            });
        }
        let rest = decoder.into_inner();
        if !rest.is_empty() {
            return Err(WireError::Malformed(format!(
                "{} bytes after the compressed batch",
                rest.len()
            )));
        }
        body
    } else {
        raw.to_vec()
    };
    let mut reader = body.as_slice();
    let value = ciborium::from_reader(&mut reader).map_err(|e| WireError::Malformed(cbor(e)))?;
    if !reader.is_empty() {
        return Err(WireError::Malformed(format!(
            "{} bytes after the batch",
            reader.len()
        )));
    }
    Ok(value)
}

impl bounded::MaybeBytes for DocRequest {}
impl bounded::MaybeBytes for DocResponse {}

/// What was wrong with the CBOR, in words: ciborium's own `Display` is its `Debug`
/// (`Semantic(None, "…")`), which is not for the peer to read.
fn cbor(e: ciborium::de::Error<std::io::Error>) -> String {
    use ciborium::de::Error;
    match e {
        Error::Io(e) => format!("the batch could not be read: {e}"),
        Error::Syntax(at) => format!("the batch is not CBOR (byte {at})"),
        Error::Semantic(Some(at), why) => format!("{why} (byte {at})"),
        Error::Semantic(None, why) => why,
        Error::RecursionLimitExceeded => "the batch is nested too deeply".into(),
    }
}
