//! Malformed sync frames: every one gets a typed [`WireError`] (or, past the wire, a refusal for
//! its document) and none makes the decoder panic or the server store anything.
#![allow(clippy::unwrap_used)]

mod common;

use std::fmt::Debug;
use std::io::{Read, Write};
use std::sync::LazyLock;

use ciborium::Value;
use flate2::{read::DeflateDecoder, write::DeflateEncoder, Compression};
use proptest::prelude::*;
use proptest::sample::Index;
use serde::Serialize;
use serde_bytes::ByteBuf;
use tournee_sync_core::automerge::{ActorId, Automerge, ChangeHash};
use tournee_sync_core::fixtures;
use tournee_sync_core::operations;
use tournee_sync_core::sync::wire::{
    self, DocRequest, DocResponse, Limits, RefusalCode, RequestBody, ResponseBody, SyncRequest,
    SyncResponse, WireError, MAGIC, OLDEST_VERSION, VERSION,
};
use tournee_sync_core::sync::{DocOutcome, Heads, MemoryHost};
use tournee_sync_core::validator::{Scope, Sender};
use tournee_sync_core::DocId;

/// A valid item id, for bodies built by hand.
const ITEM: &str = "item:RR123456785FR";

fn item(n: u32) -> DocId {
    DocId::item(&fixtures::s10(n))
}

fn point(n: u32) -> DocId {
    DocId::delivery_point(&fixtures::delivery_point_id(n)).unwrap()
}

fn heads_of(doc: &Automerge) -> Heads {
    doc.get_heads().into()
}

fn changes_of(doc: &Automerge) -> Vec<ByteBuf> {
    doc.get_changes(&[])
        .iter()
        .map(|c| ByteBuf::from(c.raw_bytes().to_vec()))
        .collect()
}

/// One Fetch: a body well under the compression threshold.
fn small_request() -> SyncRequest {
    SyncRequest {
        since: Some(42),
        history: None,
        docs: vec![DocRequest {
            doc: item(0),
            body: RequestBody::Fetch,
        }],
    }
}

/// Every kind of entry, with real Automerge changes: a body well over the threshold.
fn large_request() -> SyncRequest {
    let doc = fixtures::item_doc(1, 0).unwrap();
    SyncRequest {
        since: None,
        history: None,
        docs: vec![
            DocRequest {
                doc: item(1),
                body: RequestBody::Push {
                    changes: changes_of(&doc),
                    extra_heads: heads_of(&doc),
                    signatures: Vec::new(),
                },
            },
            DocRequest {
                doc: item(2),
                body: RequestBody::Have {
                    heads: heads_of(&doc),
                },
            },
            DocRequest {
                doc: point(0),
                body: RequestBody::Fetch,
            },
        ],
    }
}

fn small_response() -> SyncResponse {
    SyncResponse {
        cursor: 7,
        history: None,
        recheck: false,
        more: false,
        docs: vec![DocResponse {
            doc: point(0),
            body: ResponseBody::Refused {
                code: RefusalCode::OutOfScope,
                message: "not yours".into(),
            },
        }],
    }
}

fn large_response() -> SyncResponse {
    let point_doc = fixtures::delivery_point_doc(0).unwrap();
    let item_doc = fixtures::item_doc(1, 0).unwrap();
    SyncResponse {
        cursor: u64::MAX,
        history: None,
        recheck: false,
        more: true,
        docs: vec![
            DocResponse {
                doc: point(0),
                body: ResponseBody::Update {
                    heads: heads_of(&point_doc),
                    chunks: vec![ByteBuf::from(point_doc.save())],
                    complete: true,
                    signatures: Vec::new(),
                },
            },
            DocResponse {
                doc: item(1),
                body: ResponseBody::Update {
                    heads: heads_of(&item_doc),
                    chunks: changes_of(&item_doc),
                    complete: false,
                    signatures: Vec::new(),
                },
            },
            DocResponse {
                doc: item(2),
                body: ResponseBody::Resync {
                    heads: heads_of(&item_doc),
                },
            },
            DocResponse {
                doc: item(3),
                body: ResponseBody::Refused {
                    code: RefusalCode::TooLarge,
                    message: "a change of 300000 bytes is over the limit".into(),
                },
            },
        ],
    }
}

static LARGE_REQUEST_FRAME: LazyLock<Vec<u8>> =
    LazyLock::new(|| wire::encode_request(&large_request()));
static LARGE_RESPONSE_FRAME: LazyLock<Vec<u8>> =
    LazyLock::new(|| wire::encode_response(&large_response()));

/// The CBOR body the encoder frames.
fn cbor<T: Serialize>(value: &T) -> Vec<u8> {
    let mut body = Vec::new();
    ciborium::into_writer(value, &mut body).unwrap();
    body
}

fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn inflate(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    DeflateDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

/// A header with `flags`, then `payload` as is.
fn raw_frame(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = MAGIC.to_vec();
    frame.extend([VERSION, flags]);
    frame.extend_from_slice(payload);
    frame
}

/// A frame around a CBOR `body`, deflated when flag bit 0 is set.
fn frame(flags: u8, body: &[u8]) -> Vec<u8> {
    if flags & 1 == 0 {
        raw_frame(flags, body)
    } else {
        raw_frame(flags, &deflate(body))
    }
}

/// The four valid frames the header tests tamper with.
fn valid_frames() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("small request", wire::encode_request(&small_request())),
        ("large request", LARGE_REQUEST_FRAME.clone()),
        ("small response", wire::encode_response(&small_response())),
        ("large response", LARGE_RESPONSE_FRAME.clone()),
    ]
}

/// Decodes `frame` as a request and as a response, keeping only the outcomes.
fn decode_both(frame: &[u8], limits: &Limits) -> [Result<(), WireError>; 2] {
    [
        wire::decode_request(frame, limits).map(drop),
        wire::decode_response(frame, limits).map(drop),
    ]
}

/// The same error from both decoders.
fn both(error: WireError) -> [Result<(), WireError>; 2] {
    [Err(error.clone()), Err(error)]
}

fn is_malformed<T: Debug>(result: &Result<T, WireError>) -> bool {
    matches!(result, Err(WireError::Malformed(_)))
}

#[track_caller]
fn assert_malformed<T: Debug>(result: Result<T, WireError>, mentioning: &str) {
    match result {
        Err(WireError::Malformed(message)) => {
            assert!(
                message.contains(mentioning),
                "{message:?} lacks {mentioning:?}"
            );
        }
        other => panic!("expected Malformed mentioning {mentioning:?}, got {other:?}"),
    }
}

// --- Round trips -------------------------------------------------------------------------------

#[track_caller]
fn assert_framed(frame: &[u8], body: &[u8], deflated: bool) {
    assert_eq!(&frame[..4], MAGIC);
    assert_eq!(frame[4], VERSION);
    assert_eq!(frame[5], u8::from(deflated), "flags");
    if deflated {
        assert_eq!(inflate(&frame[6..]), body);
        assert!(
            frame.len() < body.len(),
            "deflating did not shrink the body"
        );
    } else {
        assert_eq!(&frame[6..], body);
    }
}

#[test]
fn requests_survive_a_round_trip_small_and_deflated() {
    for (request, deflated) in [(small_request(), false), (large_request(), true)] {
        let body = cbor(&request);
        assert_eq!(body.len() > 256, deflated, "body of {} bytes", body.len());
        let frame = wire::encode_request(&request);
        assert_framed(&frame, &body, deflated);
        assert_eq!(
            wire::decode_request(&frame, &Limits::default()),
            Ok(request)
        );
    }
}

#[test]
fn responses_survive_a_round_trip_small_and_deflated() {
    for (response, deflated) in [(small_response(), false), (large_response(), true)] {
        let body = cbor(&response);
        assert_eq!(body.len() > 256, deflated, "body of {} bytes", body.len());
        let frame = wire::encode_response(&response);
        assert_framed(&frame, &body, deflated);
        assert_eq!(
            wire::decode_response(&frame, &Limits::default()),
            Ok(response)
        );
    }
}

#[test]
fn bodies_over_256_bytes_are_deflated_and_the_rest_are_not() {
    let push = |size: usize| SyncRequest {
        since: None,
        history: None,
        docs: vec![DocRequest {
            doc: item(0),
            body: RequestBody::Push {
                changes: vec![ByteBuf::from(vec![0x5A; size])],
                extra_heads: Heads::default(),
                signatures: Vec::new(),
            },
        }],
    };
    // The change's length header is two bytes from 24 to 255 bytes: the body grows one for one.
    let overhead = cbor(&push(100)).len() - 100;
    for (body_len, deflated) in [(256, false), (257, true)] {
        let request = push(body_len - overhead);
        let body = cbor(&request);
        assert_eq!(body.len(), body_len);
        let frame = wire::encode_request(&request);
        assert_framed(&frame, &body, deflated);
        assert_eq!(
            wire::decode_request(&frame, &Limits::default()),
            Ok(request)
        );
    }
}

// --- Damaged headers and truncations --------------------------------------------------------

#[test]
fn every_truncation_of_a_frame_is_refused() {
    let limits = Limits::default();
    for (what, frame) in valid_frames() {
        for len in 0..frame.len() {
            for result in decode_both(&frame[..len], &limits) {
                match result {
                    Err(WireError::NotAFrame) if len < 6 => {}
                    Err(WireError::Malformed(_)) if len >= 6 => {}
                    other => panic!("{what} cut to {len} of {} bytes: {other:?}", frame.len()),
                }
            }
        }
    }
}

/// A phone of the previous version is read, and answered in its version: a refusal that
/// version has no code for reads as the nearest code it has.
#[test]
fn an_older_phone_is_read_and_answered_in_its_own_version() {
    let limits = Limits::default();
    let mut old = wire::encode_request(&small_request());
    old[4] = OLDEST_VERSION;
    assert_eq!(wire::frame_version(&old), Some(OLDEST_VERSION));
    assert_eq!(wire::decode_request(&old, &limits), Ok(small_request()));

    let mut response = small_response();
    response.docs[0].body = ResponseBody::Refused {
        code: RefusalCode::Collision,
        message: "held by another change".into(),
    };
    let current = wire::encode_response(&response);
    assert_eq!(wire::frame_version(&current), Some(VERSION));
    assert_eq!(
        wire::decode_response(&current, &limits),
        Ok(response.clone())
    );

    assert_eq!(RefusalCode::Collision.as_str(), "collision");
    let answer = wire::encode_response_for(&response, OLDEST_VERSION);
    assert_eq!(wire::frame_version(&answer), Some(OLDEST_VERSION));
    let heard = wire::decode_response(&answer, &limits).unwrap();
    assert!(
        matches!(
            &heard.docs[0].body,
            ResponseBody::Refused { code: RefusalCode::Invalid, message } if message == "held by another change"
        ),
        "{heard:?}"
    );
    // Codes version 1 has are sent as they are.
    let answer = wire::encode_response_for(&small_response(), OLDEST_VERSION);
    assert_eq!(
        wire::decode_response(&answer, &limits),
        Ok(small_response())
    );
}

/// Version 3's history travels both ways; a phone of version 2 is answered without it, and
/// its request (which has none) is taken at its cursor's word.
#[test]
fn the_history_of_a_cursor_is_said_from_version_3_and_left_out_before() {
    let limits = Limits::default();
    let request = SyncRequest {
        since: Some(41),
        history: Some(7),
        docs: Vec::new(),
    };
    let frame = wire::encode_request(&request);
    assert_eq!(wire::decode_request(&frame, &limits), Ok(request.clone()));
    assert_eq!(request.since_in(7), Some(41));
    assert_eq!(request.since_in(8), None, "a cursor of another history");
    let older = SyncRequest {
        history: None,
        ..request
    };
    assert_eq!(older.since_in(8), Some(41));

    let response = SyncResponse {
        history: Some(7),
        ..small_response()
    };
    let frame = wire::encode_response(&response);
    assert_eq!(wire::decode_response(&frame, &limits), Ok(response.clone()));
    let answer = wire::encode_response_for(&response, 2);
    assert_eq!(wire::frame_version(&answer), Some(2));
    let heard = wire::decode_response(&answer, &limits).unwrap();
    assert_eq!(heard.history, None);
    assert_eq!(heard.docs, response.docs);
}

#[test]
fn another_version_is_refused_with_the_version_found() {
    let limits = Limits::default();
    for (what, frame) in valid_frames() {
        for version in [0, VERSION + 1, 255] {
            let mut frame = frame.clone();
            frame[4] = version;
            for result in decode_both(&frame, &limits) {
                assert_eq!(
                    result,
                    Err(WireError::UnsupportedVersion { found: version }),
                    "{what}"
                );
            }
        }
    }
}

#[test]
fn a_frame_without_the_magic_is_not_a_frame() {
    let limits = Limits::default();
    for (what, frame) in valid_frames() {
        for at in 0..4 {
            let mut frame = frame.clone();
            frame[at] ^= 0x20;
            assert_eq!(decode_both(&frame, &limits), both(WireError::NotAFrame));
        }
        // The magic is checked before the version.
        let mut frame = frame.clone();
        frame[0] = b'X';
        frame[4] = 9;
        assert_eq!(
            decode_both(&frame, &limits),
            both(WireError::NotAFrame),
            "{what}"
        );
    }
    for junk in [
        &b""[..],
        b"TRNE",
        b"TRNE\x01",
        b"{\"since\":null,\"docs\":[]}",
        b"\xa2esince\xf6ddocs\x80",
    ] {
        assert_eq!(decode_both(junk, &limits), both(WireError::NotAFrame));
    }
}

#[test]
fn unknown_flag_bits_are_malformed() {
    let limits = Limits::default();
    for (what, frame) in valid_frames() {
        for flags in [0x02, 0x03, 0x10, 0x80, 0x81, 0xFE, 0xFF] {
            let mut frame = frame.clone();
            frame[5] = flags;
            for result in decode_both(&frame, &limits) {
                assert!(
                    matches!(&result, Err(WireError::Malformed(m)) if m.contains("flags")),
                    "{what} with flags {flags:#04x}: {result:?}"
                );
            }
        }
    }
}

#[test]
fn a_body_that_is_not_deflate_behind_the_deflate_flag_is_malformed() {
    let limits = Limits::default();
    let body = cbor(&small_request());
    // The small request's CBOR, flagged as deflated but sent as is.
    let unflated = raw_frame(1, &body);
    assert_malformed(wire::decode_request(&unflated, &limits), "compression");
    // And a deflated small body is fine: the decoder follows the flag, not the size.
    let deflated = frame(1, &body);
    assert_eq!(
        wire::decode_request(&deflated, &limits),
        Ok(small_request())
    );
}

// --- Size limits ------------------------------------------------------------------------------

#[test]
fn a_frame_over_the_frame_limit_is_refused_before_anything_else() {
    for (what, frame) in valid_frames() {
        let at_limit = Limits {
            max_frame_bytes: frame.len(),
            ..Limits::default()
        };
        assert_eq!(
            decode_both(&frame, &at_limit)
                .iter()
                .filter(|r| r.is_ok())
                .count(),
            1
        );
        let under = Limits {
            max_frame_bytes: frame.len() - 1,
            ..Limits::default()
        };
        let too_large = WireError::TooLarge {
            what: "the frame",
            size: frame.len(),
            limit: frame.len() - 1,
        };
        assert_eq!(decode_both(&frame, &under), both(too_large), "{what}");
    }
    // With the default limits, and before looking at the header.
    let limits = Limits::default();
    let junk = vec![0; limits.max_frame_bytes + 1];
    let too_large = WireError::TooLarge {
        what: "the frame",
        size: limits.max_frame_bytes + 1,
        limit: limits.max_frame_bytes,
    };
    assert_eq!(decode_both(&junk, &limits), both(too_large));
}

/// A frame whose deflated body inflates to `len` zero bytes.
fn deflate_bomb(len: usize) -> Vec<u8> {
    let mut encoder = DeflateEncoder::new(b"TRNE\x01\x01".to_vec(), Compression::best());
    let zeros = vec![0; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len());
        encoder.write_all(&zeros[..n]).unwrap();
        left -= n;
    }
    encoder.finish().unwrap()
}

#[test]
fn a_deflate_bomb_is_refused_without_inflating_it_whole() {
    let limits = Limits {
        max_body_bytes: 1 << 20,
        ..Limits::default()
    };
    let bomb = deflate_bomb(64 << 20);
    assert!(
        bomb.len() < limits.max_frame_bytes,
        "the bomb is a small frame"
    );
    // The decoder stops one byte past the limit: it never holds the 64 MiB.
    let too_large = WireError::TooLarge {
        what: "the inflated body",
        size: limits.max_body_bytes + 1,
        limit: limits.max_body_bytes,
    };
    assert_eq!(decode_both(&bomb, &limits), both(too_large));
    // A body of exactly the limit passes the size check and fails as CBOR instead.
    let at_limit = deflate_bomb(limits.max_body_bytes);
    for result in decode_both(&at_limit, &limits) {
        assert!(
            matches!(&result, Err(WireError::Malformed(m)) if !m.contains("compression")),
            "{result:?}"
        );
    }
}

fn fetches(count: u32) -> SyncRequest {
    SyncRequest {
        since: Some(1),
        history: None,
        docs: (0..count)
            .map(|n| DocRequest {
                doc: item(n),
                body: RequestBody::Fetch,
            })
            .collect(),
    }
}

#[test]
fn a_batch_of_more_documents_than_the_limit_is_refused() {
    let limits = Limits::default();
    let max = u32::try_from(limits.max_docs).unwrap();
    let request = fetches(max);
    assert_eq!(
        wire::decode_request(&wire::encode_request(&request), &limits),
        Ok(request)
    );
    assert_eq!(
        wire::decode_request(&wire::encode_request(&fetches(max + 1)), &limits),
        Err(WireError::TooLarge {
            what: "the number of documents in the batch",
            size: limits.max_docs + 1,
            limit: limits.max_docs,
        })
    );
}

fn push(changes: &[usize]) -> RequestBody {
    RequestBody::Push {
        changes: changes
            .iter()
            .map(|&len| ByteBuf::from(vec![0xA5; len]))
            .collect(),
        extra_heads: Heads::default(),
        signatures: Vec::new(),
    }
}

#[test]
fn a_push_over_the_message_limit_is_refused() {
    let limits = Limits::default();
    let max = limits.max_message_bytes;
    let request = |bodies: Vec<RequestBody>| SyncRequest {
        since: None,
        history: None,
        docs: bodies
            .into_iter()
            .enumerate()
            .map(|(n, body)| DocRequest {
                doc: item(u32::try_from(n).unwrap()),
                body,
            })
            .collect(),
    };
    // The limit is per entry: two entries of exactly the limit pass.
    let at_limit = request(vec![push(&[max / 2, max - max / 2]), push(&[max])]);
    assert_eq!(
        wire::decode_request(&wire::encode_request(&at_limit), &limits),
        Ok(at_limit)
    );
    for over in [
        vec![push(&[max / 2, max - max / 2 + 1])],
        vec![push(&[max + 1])],
        vec![RequestBody::Fetch, push(&[16]), push(&[max - 15, 16])],
    ] {
        let frame = wire::encode_request(&request(over));
        assert!(frame.len() < max, "the frame itself is small");
        assert_eq!(
            wire::decode_request(&frame, &limits),
            Err(WireError::TooLarge {
                what: "a document entry",
                size: max + 1,
                limit: max,
            })
        );
    }
}

#[test]
fn an_update_over_the_message_limit_is_refused() {
    let limits = Limits::default();
    let max = limits.max_message_bytes;
    let response = |chunks: &[usize]| SyncResponse {
        cursor: 3,
        history: None,
        recheck: false,
        more: false,
        docs: vec![
            DocResponse {
                doc: item(0),
                body: ResponseBody::Resync {
                    heads: Heads::default(),
                },
            },
            DocResponse {
                doc: item(1),
                body: ResponseBody::Update {
                    heads: Heads::default(),
                    chunks: chunks
                        .iter()
                        .map(|&len| ByteBuf::from(vec![0x3C; len]))
                        .collect(),
                    complete: true,
                    signatures: Vec::new(),
                },
            },
        ],
    };
    let at_limit = response(&[max - 16, 16]);
    assert_eq!(
        wire::decode_response(&wire::encode_response(&at_limit), &limits),
        Ok(at_limit)
    );
    // Many chunks: 64 bytes each (the last one more), well under the count cap.
    let many = max / 64 - 1;
    let many_small = [vec![64; many], vec![max + 1 - 64 * many]].concat();
    for over in [vec![max - 16, 17], vec![max + 1], many_small] {
        assert_eq!(
            wire::decode_response(&wire::encode_response(&response(&over)), &limits),
            Err(WireError::TooLarge {
                what: "a document entry",
                size: max + 1,
                limit: max,
            })
        );
    }
}

/// `changes` of a Push mirrored on the wire: `count` changes of `len` zero bytes, streamed.
struct StreamedChanges {
    count: usize,
    len: usize,
}

impl Serialize for StreamedChanges {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let change = vec![0; self.len];
        let mut seq = serializer.serialize_seq(Some(self.count))?;
        for _ in 0..self.count {
            seq.serialize_element(serde_bytes::Bytes::new(&change))?;
        }
        seq.end()
    }
}

/// A request with one Push of streamed changes, in the wire layout.
#[derive(Serialize)]
struct StreamedPushRequest {
    since: Option<u64>,
    docs: [StreamedPushEntry; 1],
}

#[derive(Serialize)]
struct StreamedPushEntry {
    doc: &'static str,
    body: StreamedPushBody,
}

#[derive(Serialize)]
enum StreamedPushBody {
    Push {
        changes: StreamedChanges,
        extra_heads: ByteBuf,
    },
}

/// The CBOR body of a request pushing `count` changes of `len` bytes to one item.
fn streamed_push(count: usize, len: usize) -> Vec<u8> {
    cbor(&StreamedPushRequest {
        since: None,
        docs: [StreamedPushEntry {
            doc: ITEM,
            body: StreamedPushBody::Push {
                changes: StreamedChanges { count, len },
                extra_heads: ByteBuf::new(),
            },
        }],
    })
}

/// A change is one CBOR byte plus its content on the wire, and `size_of::<ByteBuf>()` (24) plus
/// its content once decoded: without a floor, a frame of a few KiB holding a million empty
/// changes would decode into 24 MB and pass every size limit, since they sum to zero bytes. So a
/// change or chunk must be at least 16 bytes and a list holds at most 10,000 entries: what a
/// decoded batch holds is then a small multiple of its body.
#[test]
fn a_small_frame_cannot_make_the_decoder_hold_many_times_the_body_limit() {
    let limits = Limits {
        max_body_bytes: 1 << 20,
        ..Limits::default()
    };
    // A body filled with empty changes, then with changes of the smallest size allowed.
    for (len, refusal) in [(0, "fewer than 16 bytes"), (16, "more than 10000 changes")] {
        let body = streamed_push((limits.max_body_bytes - 100) / (len + 1), len);
        assert!(body.len() <= limits.max_body_bytes);
        let frame = frame(1, &body);
        assert!(frame.len() < 8192, "a frame of {} bytes", frame.len());
        assert_malformed(wire::decode_request(&frame, &limits), refusal);
    }
    // The most a list may hold decodes, into a small multiple of its body.
    let body = streamed_push(10_000, 16);
    let request = wire::decode_request(&frame(1, &body), &limits).unwrap();
    let RequestBody::Push { changes, .. } = &request.docs[0].body else {
        panic!("{:?}", request.docs[0].body);
    };
    assert_eq!(changes.len(), 10_000);
    let held = changes.capacity() * std::mem::size_of::<ByteBuf>()
        + changes.iter().map(|c| c.len()).sum::<usize>();
    assert!(
        held <= 4 * body.len(),
        "a body of {} bytes decoded into {held} bytes",
        body.len()
    );
}

/// A request of one item, pushing changes of `lens` bytes.
fn push_request(lens: &[usize]) -> SyncRequest {
    SyncRequest {
        since: None,
        history: None,
        docs: vec![DocRequest {
            doc: item(0),
            body: push(lens),
        }],
    }
}

/// A response of one item, updating it with chunks of `lens` bytes.
fn update_response(lens: &[usize]) -> SyncResponse {
    SyncResponse {
        cursor: 3,
        history: None,
        recheck: false,
        more: false,
        docs: vec![DocResponse {
            doc: item(0),
            body: ResponseBody::Update {
                heads: Heads::default(),
                chunks: lens
                    .iter()
                    .map(|&len| ByteBuf::from(vec![0x3C; len]))
                    .collect(),
                complete: true,
                signatures: Vec::new(),
            },
        }],
    }
}

/// Decodes `value` as a request, framed with `flags`.
fn decode_request_as<T: Serialize>(
    value: &T,
    flags: u8,
    limits: &Limits,
) -> Result<SyncRequest, WireError> {
    wire::decode_request(&frame(flags, &cbor(value)), limits)
}

/// Decodes `value` as a response, framed with `flags`.
fn decode_response_as<T: Serialize>(
    value: &T,
    flags: u8,
    limits: &Limits,
) -> Result<SyncResponse, WireError> {
    wire::decode_response(&frame(flags, &cbor(value)), limits)
}

#[test]
fn a_change_or_chunk_of_fewer_than_16_bytes_is_malformed() {
    let limits = Limits::default();
    for flags in [0, 1] {
        // Wherever it is in the list.
        for lens in [[0, 40, 40], [40, 1, 40], [40, 40, 15]] {
            let result = decode_request_as(&push_request(&lens), flags, &limits);
            assert_malformed(result, "fewer than 16 bytes");
            let result = decode_response_as(&update_response(&lens), flags, &limits);
            assert_malformed(result, "fewer than 16 bytes");
        }
        let request = push_request(&[16, 40, 16]);
        assert_eq!(decode_request_as(&request, flags, &limits), Ok(request));
        let response = update_response(&[16, 40, 16]);
        assert_eq!(decode_response_as(&response, flags, &limits), Ok(response));
    }
}

/// Limits so large that only the hard caps on list lengths can refuse a batch.
fn unlimited() -> Limits {
    Limits {
        max_frame_bytes: 1 << 30,
        max_body_bytes: 1 << 30,
        max_message_bytes: 1 << 30,
        max_docs: usize::MAX,
    }
}

#[test]
fn a_batch_of_more_than_10000_documents_is_malformed_whatever_the_limits() {
    let limits = unlimited();
    // The same entry repeated, built by hand: cheaper than distinct ids, and the wire does not
    // care.
    let request = |count: usize| {
        let entry = map(vec![("doc", text(ITEM)), ("body", text("Fetch"))]);
        map(vec![
            ("since", Value::Null),
            ("docs", Value::Array(vec![entry; count])),
        ])
    };
    let response = |count: usize| {
        let entry = map(vec![("doc", text(ITEM)), ("body", resync(vec![]))]);
        map(vec![
            ("cursor", Value::Integer(3u64.into())),
            ("more", Value::Bool(false)),
            ("docs", Value::Array(vec![entry; count])),
        ])
    };
    for flags in [0, 1] {
        let decoded = decode_request_as(&request(10_000), flags, &limits);
        assert_eq!(decoded.unwrap().docs.len(), 10_000);
        let result = decode_request_as(&request(10_001), flags, &limits);
        assert_malformed(result, "more than 10000 documents");

        let decoded = decode_response_as(&response(10_000), flags, &limits);
        assert_eq!(decoded.unwrap().docs.len(), 10_000);
        let result = decode_response_as(&response(10_001), flags, &limits);
        assert_malformed(result, "more than 10000 documents");
    }
}

#[test]
fn an_entry_of_more_than_10000_changes_is_malformed_whatever_the_limits() {
    let limits = unlimited();
    let request = push_request(&[16; 10_000]);
    let frame = wire::encode_request(&request);
    assert_eq!(wire::decode_request(&frame, &limits), Ok(request));
    let frame = wire::encode_request(&push_request(&[16; 10_001]));
    assert_malformed(
        wire::decode_request(&frame, &limits),
        "more than 10000 changes",
    );

    let response = update_response(&[16; 10_000]);
    let frame = wire::encode_response(&response);
    assert_eq!(wire::decode_response(&frame, &limits), Ok(response));
    let frame = wire::encode_response(&update_response(&[16; 10_001]));
    assert_malformed(
        wire::decode_response(&frame, &limits),
        "more than 10000 changes",
    );
}

#[test]
fn bytes_after_the_body_are_malformed() {
    let limits = Limits::default();
    let requests = [cbor(&small_request()), inflate(&LARGE_REQUEST_FRAME[6..])];
    let responses = [cbor(&small_response()), inflate(&LARGE_RESPONSE_FRAME[6..])];
    for flags in [0, 1] {
        for body in &requests {
            assert!(wire::decode_request(&frame(flags, body), &limits).is_ok());
            for trailing in [&[0][..], &[0xFF; 7], body] {
                let frame = frame(flags, &[body, trailing].concat());
                let after = format!("{} bytes after the batch", trailing.len());
                assert_malformed(wire::decode_request(&frame, &limits), &after);
            }
        }
        for body in &responses {
            assert!(wire::decode_response(&frame(flags, body), &limits).is_ok());
            for trailing in [&[0][..], &[0xFF; 7], body] {
                let frame = frame(flags, &[body, trailing].concat());
                let after = format!("{} bytes after the batch", trailing.len());
                assert_malformed(wire::decode_response(&frame, &limits), &after);
            }
        }
    }
}

// --- Bodies built by hand -----------------------------------------------------------------------

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (text(k), v)).collect())
}

/// `{"since": null, "docs": [{"doc": doc, "body": body}]}`
fn request_value(doc: &str, body: Value) -> Value {
    map(vec![
        ("since", Value::Null),
        (
            "docs",
            Value::Array(vec![map(vec![("doc", text(doc)), ("body", body)])]),
        ),
    ])
}

/// `{"cursor": 3, "more": false, "docs": [{"doc": doc, "body": body}]}`
fn response_value(doc: &str, body: Value) -> Value {
    map(vec![
        ("cursor", Value::Integer(3u64.into())),
        ("more", Value::Bool(false)),
        (
            "docs",
            Value::Array(vec![map(vec![("doc", text(doc)), ("body", body)])]),
        ),
    ])
}

/// `{variant: {field: value, …}}`, the way serde tags an enum variant.
fn variant(name: &str, fields: Vec<(&str, Value)>) -> Value {
    map(vec![(name, map(fields))])
}

fn have(heads: Vec<u8>) -> Value {
    variant("Have", vec![("heads", Value::Bytes(heads))])
}

fn push_with_extra_heads(heads: Vec<u8>) -> Value {
    variant(
        "Push",
        vec![
            ("changes", Value::Array(vec![Value::Bytes(vec![1; 40])])),
            ("extra_heads", Value::Bytes(heads)),
        ],
    )
}

fn resync(heads: Vec<u8>) -> Value {
    variant("Resync", vec![("heads", Value::Bytes(heads))])
}

fn update(heads: Vec<u8>) -> Value {
    variant(
        "Update",
        vec![
            ("heads", Value::Bytes(heads)),
            ("chunks", Value::Array(vec![Value::Bytes(vec![9; 40])])),
            ("complete", Value::Bool(true)),
        ],
    )
}

fn decode_request_value(value: &Value, flags: u8) -> Result<SyncRequest, WireError> {
    wire::decode_request(&frame(flags, &cbor(value)), &Limits::default())
}

fn decode_response_value(value: &Value, flags: u8) -> Result<SyncResponse, WireError> {
    wire::decode_response(&frame(flags, &cbor(value)), &Limits::default())
}

fn request_heads(request: &SyncRequest) -> usize {
    match &request.docs[0].body {
        RequestBody::Have { heads } => heads.0.len(),
        RequestBody::Push { extra_heads, .. } => extra_heads.0.len(),
        RequestBody::Fetch => panic!("no heads in a Fetch"),
    }
}

fn response_heads(response: &SyncResponse) -> usize {
    match &response.docs[0].body {
        ResponseBody::Update { heads, .. } | ResponseBody::Resync { heads } => heads.0.len(),
        ResponseBody::Refused { .. } => panic!("no heads in a refusal"),
    }
}

#[test]
fn heads_that_are_not_whole_hashes_are_malformed() {
    let requests: [fn(Vec<u8>) -> Value; 2] = [have, push_with_extra_heads];
    let responses: [fn(Vec<u8>) -> Value; 2] = [resync, update];
    for flags in [0, 1] {
        // The hand-built layout is the real one: whole hashes decode.
        for len in [0, 32, 64, 1024 * 32] {
            for body in requests {
                let request = decode_request_value(&request_value(ITEM, body(vec![7; len])), flags);
                assert_eq!(request_heads(&request.unwrap()), len / 32);
            }
            for body in responses {
                let value = response_value(ITEM, body(vec![7; len]));
                let response = decode_response_value(&value, flags);
                assert_eq!(response_heads(&response.unwrap()), len / 32);
            }
        }
        for len in [1, 31, 33, 63, 95, 1024 * 32 - 1] {
            for body in requests {
                let value = request_value(ITEM, body(vec![7; len]));
                assert_malformed(decode_request_value(&value, flags), "multiple of 32");
            }
            for body in responses {
                let value = response_value(ITEM, body(vec![7; len]));
                assert_malformed(decode_response_value(&value, flags), "multiple of 32");
            }
        }
        let too_many = vec![7; 1025 * 32];
        let value = request_value(ITEM, have(too_many.clone()));
        assert_malformed(decode_request_value(&value, flags), "more than 1024 heads");
        let value = response_value(ITEM, resync(too_many));
        assert_malformed(decode_response_value(&value, flags), "more than 1024 heads");
    }
}

#[test]
fn a_bad_document_id_in_a_valid_body_is_malformed() {
    let request_body = text("Fetch");
    let response_body = resync(vec![3; 32]);
    for flags in [0, 1] {
        for good in [ITEM, "dp:paris-11-0042"] {
            let request = decode_request_value(&request_value(good, request_body.clone()), flags);
            assert_eq!(request.unwrap().docs[0].doc.as_str(), good);
            let value = response_value(good, response_body.clone());
            let response = decode_response_value(&value, flags);
            assert_eq!(response.unwrap().docs[0].doc.as_str(), good);
        }
        for bad in [
            "item:RR123456784FR",
            "item:rr123456785fr",
            "item:RR12345678FR",
            "x:1",
            "dp:",
            "dp:a/b",
            "dp:paris 11",
            "",
            &format!("dp:{}", "a".repeat(65)),
        ] {
            let value = request_value(bad, request_body.clone());
            let result = decode_request_value(&value, flags);
            assert!(is_malformed(&result), "{bad:?}: {result:?}");
            let value = response_value(bad, response_body.clone());
            let result = decode_response_value(&value, flags);
            assert!(is_malformed(&result), "{bad:?}: {result:?}");
        }
    }
}

#[test]
fn bodies_of_the_wrong_shape_are_malformed() {
    let fetch = || text("Fetch");
    let requests = [
        Value::Null,
        Value::Array(vec![]),
        map(vec![("since", Value::Null)]),
        map(vec![
            ("since", text("yesterday")),
            ("docs", Value::Array(vec![])),
        ]),
        map(vec![
            ("since", Value::Integer((-1i64).into())),
            ("docs", Value::Array(vec![])),
        ]),
        map(vec![("since", Value::Null), ("docs", Value::Map(vec![]))]),
        request_value(ITEM, text("Delete")),
        request_value(ITEM, variant("Have", vec![])),
        request_value(ITEM, variant("Have", vec![("heads", text("abc"))])),
        request_value(
            ITEM,
            variant("Push", vec![("changes", Value::Array(vec![]))]),
        ),
        request_value(
            ITEM,
            variant(
                "Push",
                vec![
                    ("changes", Value::Array(vec![text("not bytes")])),
                    ("extra_heads", Value::Bytes(vec![])),
                ],
            ),
        ),
        map(vec![
            ("since", Value::Null),
            (
                "docs",
                Value::Array(vec![map(vec![
                    ("doc", Value::Bytes(b"x".to_vec())),
                    ("body", fetch()),
                ])]),
            ),
        ]),
        map(vec![
            ("since", Value::Null),
            ("docs", Value::Array(vec![map(vec![("doc", text(ITEM))])])),
        ]),
    ];
    for value in &requests {
        for flags in [0, 1] {
            let result = decode_request_value(value, flags);
            assert!(is_malformed(&result), "{value:?}: {result:?}");
        }
    }
    let responses = [
        map(vec![
            ("cursor", Value::Integer(1u64.into())),
            ("more", Value::Bool(false)),
        ]),
        map(vec![
            ("cursor", Value::Integer((-1i64).into())),
            ("more", Value::Bool(false)),
            ("docs", Value::Array(vec![])),
        ]),
        map(vec![
            ("cursor", Value::Integer(1u64.into())),
            ("more", text("no")),
            ("docs", Value::Array(vec![])),
        ]),
        response_value(ITEM, fetch()),
        response_value(
            ITEM,
            variant(
                "Refused",
                vec![("code", text("Teapot")), ("message", text(""))],
            ),
        ),
        response_value(
            ITEM,
            variant(
                "Update",
                vec![
                    ("heads", Value::Bytes(vec![])),
                    ("chunks", Value::Array(vec![])),
                ],
            ),
        ),
    ];
    for value in &responses {
        for flags in [0, 1] {
            let result = decode_response_value(value, flags);
            assert!(is_malformed(&result), "{value:?}: {result:?}");
        }
    }
    // A request is not a response, nor the other way round.
    for (what, frame) in valid_frames() {
        let [request, response] = decode_both(&frame, &Limits::default());
        assert!(
            request.is_ok() != response.is_ok()
                && (is_malformed(&request) || is_malformed(&response)),
            "{what}: {request:?} {response:?}"
        );
    }
}

// --- Random input ----------------------------------------------------------------------------

/// Whatever `frame` is, decoding it returns; what decodes re-encodes to itself.
fn decodes_without_panicking(frame: &[u8]) -> Result<(), TestCaseError> {
    let limits = Limits::default();
    if let Ok(request) = wire::decode_request(frame, &limits) {
        let again = wire::decode_request(&wire::encode_request(&request), &limits);
        prop_assert_eq!(again, Ok(request));
    }
    if let Ok(response) = wire::decode_response(frame, &limits) {
        let again = wire::decode_response(&wire::encode_response(&response), &limits);
        prop_assert_eq!(again, Ok(response));
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(Index, u8),
    Insert(Index, u8),
    Remove(Index),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Replace(at, byte)),
        (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert(at, byte)),
        any::<Index>().prop_map(Mutation::Remove),
        any::<Index>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(frame: &[u8], mutation: &Mutation) -> Vec<u8> {
    let mut frame = frame.to_vec();
    match mutation {
        Mutation::Replace(at, byte) => {
            let at = at.index(frame.len());
            frame[at] = *byte;
        }
        Mutation::Insert(at, byte) => frame.insert(at.index(frame.len() + 1), *byte),
        Mutation::Remove(at) => {
            frame.remove(at.index(frame.len()));
        }
        Mutation::Truncate(at) => frame.truncate(at.index(frame.len())),
    }
    frame
}

/// The large frames, deflated as sent and with their CBOR body sent as is, so mutations reach
/// the CBOR parser as well as the inflater.
static MUTATED: LazyLock<[Vec<u8>; 4]> = LazyLock::new(|| {
    let request = &*LARGE_REQUEST_FRAME;
    let response = &*LARGE_RESPONSE_FRAME;
    [
        request.clone(),
        raw_frame(0, &inflate(&request[6..])),
        response.clone(),
        raw_frame(0, &inflate(&response[6..])),
    ]
});

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn random_bytes_are_not_a_frame(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decodes_without_panicking(&bytes)?;
        if !bytes.starts_with(MAGIC) {
            let limits = Limits::default();
            prop_assert_eq!(decode_both(&bytes, &limits), both(WireError::NotAFrame));
        }
    }

    #[test]
    fn random_bodies_behind_a_valid_header_never_panic(
        payload in proptest::collection::vec(any::<u8>(), 0..1024),
        (flags, deflated) in prop_oneof![Just((0, false)), Just((1, false)), Just((1, true))],
    ) {
        let frame = if deflated { frame(flags, &payload) } else { raw_frame(flags, &payload) };
        decodes_without_panicking(&frame)?;
        // Past a valid header only the body can be wrong.
        for result in decode_both(&frame, &Limits::default()) {
            let body_error = matches!(
                result,
                Ok(()) | Err(WireError::Malformed(_) | WireError::TooLarge { .. })
            );
            prop_assert!(body_error, "{:?}", result);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn a_mutated_large_frame_never_panics(which in 0..4usize, mutation in mutation()) {
        let frame = mutate(&MUTATED[which], &mutation);
        decodes_without_panicking(&frame)?;
    }
}

// --- Through the server -----------------------------------------------------------------------

/// A postman's attempt on `id`, made on a copy of the server's document: one valid change.
fn attempt_change(host: &MemoryHost, id: &DocId, n: u32) -> Vec<u8> {
    let server = host.get(id).unwrap();
    let mut phone = server.fork().with_actor(ActorId::random());
    let attempt = fixtures::absent_attempt("dev-1", "pm-1", n);
    operations::record_attempt(&mut phone, "att-1", &attempt).unwrap();
    let mut changes = phone.get_changes(&server.get_heads());
    assert_eq!(changes.len(), 1);
    changes.pop().unwrap().raw_bytes().to_vec()
}

fn push_of(changes: Vec<Vec<u8>>) -> RequestBody {
    RequestBody::Push {
        changes: changes.into_iter().map(ByteBuf::from).collect(),
        extra_heads: Heads::default(),
        signatures: Vec::new(),
    }
}

/// Answers `docs` as a first sync (so no news), handing the request to `respond` directly.
fn answer(
    host: &mut MemoryHost,
    sender: &Sender,
    docs: Vec<(DocId, RequestBody)>,
    limits: &Limits,
) -> (Vec<DocResponse>, Vec<DocOutcome>) {
    let request = SyncRequest {
        since: None,
        history: None,
        docs: docs
            .into_iter()
            .map(|(doc, body)| DocRequest { doc, body })
            .collect(),
    };
    let answer = host.respond(request, sender, limits);
    // The answer is itself a valid frame.
    let frame = wire::encode_response(&answer.response);
    assert_eq!(
        wire::decode_response(&frame, limits).as_ref(),
        Ok(&answer.response)
    );
    (answer.response.docs, answer.outcomes)
}

/// The server's answer carries the whole of `id` as the host has it.
#[track_caller]
fn assert_full_update(host: &MemoryHost, id: &DocId, response: &DocResponse) {
    assert_eq!(&response.doc, id);
    let ResponseBody::Update {
        heads,
        chunks,
        complete: true,
        ..
    } = &response.body
    else {
        panic!("{id}: {:?}", response.body);
    };
    let on_host = host.get(id).unwrap().get_heads();
    assert_eq!(heads.0, on_host);
    let mut loaded = Automerge::new();
    for chunk in chunks {
        loaded.load_incremental(chunk).unwrap();
    }
    assert_eq!(loaded.get_heads(), on_host);
}

/// The server's answer acknowledges a push of everything the phone has of `id`.
#[track_caller]
fn assert_acknowledged(host: &MemoryHost, id: &DocId, response: &DocResponse) {
    assert_eq!(&response.doc, id);
    let heads = host.get(id).unwrap().get_heads();
    assert_eq!(
        response.body,
        ResponseBody::Update {
            heads: heads.into(),
            chunks: vec![],
            complete: true,
            signatures: Vec::new(),
        }
    );
}

#[track_caller]
fn assert_refused(response: &DocResponse, id: &DocId, expected: RefusalCode) {
    assert_eq!(&response.doc, id);
    assert!(
        matches!(&response.body, ResponseBody::Refused { code, .. } if *code == expected),
        "{id}: expected {expected:?}, got {:?}",
        response.body
    );
}

/// `bytes` followed by zeros up to 16 bytes, the smallest change the wire lets through.
fn padded(bytes: &[u8]) -> Vec<u8> {
    let mut padded = bytes.to_vec();
    padded.resize(bytes.len().max(16), 0);
    padded
}

/// Pushes to `id` that do not parse, most of them built from a valid change to it. Every change
/// is at least 16 bytes, so the wire lets them through and only the server can tell.
fn garbage(host: &MemoryHost, id: &DocId) -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let change = &attempt_change(host, id, 1)[..];
    let document = host.get(id).unwrap().save();
    let mut flipped = change.to_vec();
    let last = flipped.len() - 1;
    flipped[last] ^= 0xFF;
    // Magic, checksum, chunk type, then the body's length as a LEB128.
    let header = 10 + change[9..].iter().position(|b| b & 0x80 == 0).unwrap();
    assert!(change.len() > 32, "a change of {} bytes", change.len());
    vec![
        ("zeros", vec![vec![0; 16]]),
        ("text", vec![b"not an automerge change".to_vec()]),
        (
            "the chunk header then zeros",
            vec![padded(&change[..header])],
        ),
        ("a change cut to 16 bytes", vec![change[..16].to_vec()]),
        ("half a change", vec![change[..change.len() / 2].to_vec()]),
        ("a change with a flipped byte", vec![flipped]),
        ("a change and a byte more", vec![[change, &[0]].concat()]),
        ("a whole document", vec![document]),
        (
            "a valid change then garbage",
            vec![change.to_vec(), padded(&[0x85, 0x6F, 0x4A, 0x83])],
        ),
    ]
}

#[test]
fn a_push_of_garbage_is_refused_and_the_rest_of_the_batch_proceeds() {
    let limits = Limits::default();
    let (bad, good, fetched) = (item(1), item(2), point(1));
    let cases = garbage(&common::town(2, 2).0, &bad).len();
    for case in 0..cases {
        let (mut host, manifest) = common::town(2, 2);
        let sender = common::postman_sender("dev-1", "pm-1", &manifest);
        let before = host.get(&bad).unwrap().get_heads();
        let (what, changes) = garbage(&host, &bad).swap_remove(case);
        assert!(changes.iter().all(|c| c.len() >= 16), "{what}");
        let good_change = attempt_change(&host, &good, 2);
        let request = SyncRequest {
            since: None,
            history: None,
            docs: vec![
                DocRequest {
                    doc: bad.clone(),
                    body: push_of(changes),
                },
                DocRequest {
                    doc: good.clone(),
                    body: push_of(vec![good_change]),
                },
                DocRequest {
                    doc: fetched.clone(),
                    body: RequestBody::Fetch,
                },
            ],
        };
        // The garbage is well-formed on the wire: only the server can tell.
        let decoded = wire::decode_request(&wire::encode_request(&request), &limits).unwrap();
        assert_eq!(decoded, request);
        let docs = decoded.docs.into_iter().map(|d| (d.doc, d.body)).collect();
        let (responses, outcomes) = answer(&mut host, &sender, docs, &limits);

        assert_eq!(responses.len(), 3, "{what}");
        assert_refused(&responses[0], &bad, RefusalCode::Malformed);
        assert_eq!(
            host.get(&bad).unwrap().get_heads(),
            before,
            "{what}: stored"
        );
        assert_acknowledged(&host, &good, &responses[1]);
        let stored = operations::read_item(host.get(&good).unwrap()).unwrap();
        assert!(stored.attempts.contains_key("att-1"), "{what}");
        assert_full_update(&host, &fetched, &responses[2]);
        assert_eq!(outcomes.len(), 2, "{what}: {outcomes:?}");
        let refused = matches!(
            &outcomes[0],
            DocOutcome::Refused { doc, code: RefusalCode::Malformed, .. } if *doc == bad
        );
        assert!(refused, "{what}: {outcomes:?}");
        assert_eq!(
            outcomes[1],
            DocOutcome::Accepted {
                doc: good.clone(),
                changes: 1
            }
        );
    }
}

#[test]
fn a_change_over_the_message_limit_is_refused_by_the_server_itself() {
    let (mut host, manifest) = common::town(1, 2);
    let sender = common::postman_sender("dev-1", "pm-1", &manifest);
    let (id, fetched) = (item(0), item(1));
    let before = host.get(&id).unwrap().get_heads();
    let limits = Limits::default();
    let huge = vec![0; limits.max_message_bytes + 1];
    let docs = vec![
        (id.clone(), push_of(vec![huge])),
        (fetched.clone(), RequestBody::Fetch),
    ];
    let (responses, _) = answer(&mut host, &sender, docs, &limits);
    assert_refused(&responses[0], &id, RefusalCode::TooLarge);
    assert_full_update(&host, &fetched, &responses[1]);
    assert_eq!(host.get(&id).unwrap().get_heads(), before);

    // A valid change one byte over a smaller limit is refused for its size alone…
    let change = attempt_change(&host, &id, 0);
    let tight = Limits {
        max_message_bytes: change.len() - 1,
        ..limits
    };
    let (responses, _) = answer(
        &mut host,
        &sender,
        vec![(id.clone(), push_of(vec![change.clone()]))],
        &tight,
    );
    assert_refused(&responses[0], &id, RefusalCode::TooLarge);
    assert_eq!(host.get(&id).unwrap().get_heads(), before);
    // …and accepted at exactly the limit.
    let exact = Limits {
        max_message_bytes: change.len(),
        ..limits
    };
    let (responses, outcomes) = answer(
        &mut host,
        &sender,
        vec![(id.clone(), push_of(vec![change]))],
        &exact,
    );
    assert_eq!(
        outcomes,
        [DocOutcome::Accepted {
            doc: id.clone(),
            changes: 1
        }]
    );
    assert!(matches!(responses[0].body, ResponseBody::Update { .. }));
    assert_ne!(host.get(&id).unwrap().get_heads(), before);
}

#[test]
fn an_unknown_document_is_refused_and_not_created() {
    let (mut host, manifest) = common::town(1, 1);
    let mut sender = common::postman_sender("dev-1", "pm-1", &manifest);
    let (fetched, pushed) = (item(998), item(999));
    // In the sender's scope, so only its absence can refuse it.
    let Scope::Documents(ids) = &mut sender.scope else {
        unreachable!("a postman's scope lists documents")
    };
    ids.extend([fetched.clone(), pushed.clone()]);
    let change = attempt_change(&host, &item(0), 0);
    let docs = vec![
        (fetched.clone(), RequestBody::Fetch),
        (pushed.clone(), push_of(vec![change])),
        (item(0), RequestBody::Fetch),
    ];
    let (responses, outcomes) = answer(&mut host, &sender, docs, &Limits::default());
    assert_refused(&responses[0], &fetched, RefusalCode::UnknownDocument);
    assert_refused(&responses[1], &pushed, RefusalCode::UnknownDocument);
    assert_full_update(&host, &item(0), &responses[2]);
    assert!(host.get(&fetched).is_none());
    assert!(host.get(&pushed).is_none());
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
}

#[test]
fn a_document_outside_the_senders_scope_is_refused_and_left_alone() {
    let (mut host, manifest) = common::town(1, 1);
    let sender = common::postman_sender("dev-1", "pm-1", &manifest);
    let stranger = item(500);
    host.insert(stranger.clone(), fixtures::item_doc(500, 0).unwrap());
    let before = host.get(&stranger).unwrap().get_heads();
    let change = attempt_change(&host, &stranger, 500);
    let docs = vec![
        (stranger.clone(), RequestBody::Fetch),
        (stranger.clone(), push_of(vec![change])),
        (item(0), RequestBody::Fetch),
    ];
    let (responses, outcomes) = answer(&mut host, &sender, docs, &Limits::default());
    assert_refused(&responses[0], &stranger, RefusalCode::OutOfScope);
    assert_refused(&responses[1], &stranger, RefusalCode::OutOfScope);
    assert_full_update(&host, &item(0), &responses[2]);
    assert_eq!(host.get(&stranger).unwrap().get_heads(), before);
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
}

#[test]
fn heads_the_server_never_saw_are_answered_not_a_panic() {
    let (mut host, manifest) = common::town(1, 1);
    let sender = common::postman_sender("dev-1", "pm-1", &manifest);
    let id = item(0);
    let strangers = Heads(vec![ChangeHash([0x11; 32]), ChangeHash([0x22; 32])]);
    let docs = vec![
        (
            id.clone(),
            RequestBody::Have {
                heads: strangers.clone(),
            },
        ),
        (
            id.clone(),
            RequestBody::Push {
                changes: vec![],
                extra_heads: strangers,
                signatures: Vec::new(),
            },
        ),
    ];
    let (responses, outcomes) = answer(&mut host, &sender, docs, &Limits::default());
    // Heads a phone holds and the server does not were acknowledged by a server restored
    // since: it asks for them (Resync with its own heads). Unknown extra heads of a push carry
    // nothing to ask for: the phone gets what it lacks.
    let ResponseBody::Resync { heads } = &responses[0].body else {
        panic!("{:?}", responses[0].body);
    };
    assert_eq!(heads.0, host.get(&id).unwrap().get_heads());
    assert_full_update(&host, &id, &responses[1]);
    assert!(outcomes.is_empty(), "{outcomes:?}");
}

#[test]
fn bytes_after_the_compressed_stream_are_malformed() {
    let request = SyncRequest {
        since: Some(3),
        history: None,
        docs: (0..40)
            .map(|n| DocRequest {
                doc: DocId::item(&fixtures::s10(n)),
                body: RequestBody::Fetch,
            })
            .collect(),
    };
    let mut frame = wire::encode_request(&request);
    assert_eq!(frame[5], 1, "deflated");
    assert_eq!(
        wire::decode_request(&frame, &Limits::default()),
        Ok(request)
    );
    frame.extend_from_slice(b"garbage");
    match wire::decode_request(&frame, &Limits::default()) {
        Err(WireError::Malformed(message)) => {
            assert!(message.contains("after the compressed batch"), "{message}")
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn limits_at_their_maximum_do_not_overflow() {
    let request = SyncRequest {
        since: None,
        history: None,
        docs: (0..40)
            .map(|n| DocRequest {
                doc: DocId::item(&fixtures::s10(n)),
                body: RequestBody::Fetch,
            })
            .collect(),
    };
    let unlimited = Limits {
        max_frame_bytes: usize::MAX,
        max_body_bytes: usize::MAX,
        max_message_bytes: usize::MAX,
        max_docs: usize::MAX,
    };
    assert_eq!(
        wire::decode_request(&wire::encode_request(&request), &unlimited),
        Ok(request)
    );
}
