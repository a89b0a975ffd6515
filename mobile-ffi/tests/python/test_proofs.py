"""Proofs of delivery through the generated Python bindings, against a real Tournée server whose
proof store is a directory or an S3-compatible bucket (issue #16).

Run by `tests/python_bindings.rs`, once per database and proof store, with:

- TOURNEE_SERVER: the server's base URL;
- TOURNEE_POSTMAN_TOKEN: a token of postman pm-1 on device dev-1;
- TOURNEE_OTHER_POSTMAN_TOKEN: a token of postman pm-2 on device dev-2;
- TOURNEE_PROOF_MAX_BYTES: the server's --proof-max-bytes;
- TOURNEE_RESULTS: where the suite writes the hashes it expects stored and refused, for the
  Rust side to compare with what the server's store and database hold.

The phone's process takes the photo and the signature, queues them and records the attempt,
then dies without a clean shutdown; a new process opens the store, finds the queue, syncs and
uploads. Refusals go through the bindings where the app would meet them (an oversized file, a
proof no attempt names) and through raw HTTP where only a broken or hostile client would (a
wrong hash, another device's upload).
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import unittest
import urllib.error
import urllib.request

import tournee_mobile_ffi as tf

SERVER = os.environ["TOURNEE_SERVER"]
POSTMAN_TOKEN = os.environ["TOURNEE_POSTMAN_TOKEN"]
OTHER_TOKEN = os.environ["TOURNEE_OTHER_POSTMAN_TOKEN"]
MAX_BYTES = int(os.environ["TOURNEE_PROOF_MAX_BYTES"])
RESULTS = os.environ["TOURNEE_RESULTS"]

SIGNATURE = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 120 40">'
    b'<path d="M4 30 C30 2, 50 38, 116 8" stroke="#000" fill="none"/></svg>'
)


def jpeg(seed, size):
    body = bytes((i * 31 + seed) % 256 for i in range(size))
    return b"\xff\xd8\xff\xe0" + body


def send(method, path, token, body=None, content_type=None):
    """The app's HTTP: (status, body) for any answer."""
    request = urllib.request.Request(SERVER + path, data=body, method=method)
    request.add_header("Authorization", "Bearer " + token)
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def sync(store):
    while True:
        body = store.sync_request()
        if body is None:
            return
        status, answer = send("POST", "/v1/sync", POSTMAN_TOKEN, body, tf.sync_media_type())
        if status != 200:
            store.abandon_sync()
            raise AssertionError(f"sync answered {status}: {answer!r}")
        store.apply_sync_answer(answer)


def upload(store, sha256):
    """Uploads one queued proof as the app does; the store reads the answer."""
    request = store.proof_upload(sha256)
    status, body = send(request.method, request.path, POSTMAN_TOKEN, request.body, request.content_type)
    return status, store.apply_proof_answer(sha256, status, body)


def open_store(path):
    return tf.FieldStore.open(path, "dev-1", "pm-1", tf.StoreRole.POSTMAN)


class ProofsOfDelivery(unittest.TestCase):
    def test_proofs_are_queued_survive_a_restart_and_are_uploaded_or_refused(self):
        path = tempfile.mkdtemp()
        pad = os.path.join(tempfile.mkdtemp(), "signature.svg")
        with open(pad, "wb") as f:
            f.write(SIGNATURE)
        # The app's first process: round, photos and signature, the attempt naming them; then it
        # dies without closing anything.
        child = f"""
import datetime, json, os, sys
sys.path.insert(0, {os.path.dirname(tf.__file__)!r})
sys.path.insert(0, {os.path.dirname(__file__)!r})
import tournee_mobile_ffi as tf
import test_proofs as t
store = t.open_store({path!r})
rounds = json.loads(t.send("GET", "/v1/rounds", t.POSTMAN_TOKEN)[1])
store.load_round(json.dumps(rounds[0]))
t.sync(store)
item = next(s for s in store.stops() if s.address is not None).items[0]
photo = store.queue_proof(tf.ProofKind.PHOTO, t.jpeg(1, 30000))
signature = store.queue_proof_file(tf.ProofKind.SIGNATURE, {pad!r})
oversized = store.queue_proof(tf.ProofKind.PHOTO, t.jpeg(2, t.MAX_BYTES + 10))
unnamed = store.queue_proof(tf.ProofKind.PHOTO, t.jpeg(3, 2000))
attempt = tf.AttemptInput(
    outcome=tf.Outcome.ADDRESSEE_ABSENT(),
    recorded_at=datetime.datetime(2025, 11, 24, 16, tzinfo=datetime.timezone.utc),
    position=None,
    notice=tf.Notice(number="AV2026099", waits_at=tf.WaitingPlace(
        kind=tf.WaitingPlaceKind.POST_OFFICE, place_id="po-centre", until=None)),
    proofs=[photo, signature, oversized],
)
store.record_attempt(item, attempt)
print(json.dumps({{"photo": photo.sha256, "signature": signature.sha256,
                   "oversized": oversized.sha256, "unnamed": unnamed.sha256}}), flush=True)
os._exit(0)
"""
        out = subprocess.run(
            [sys.executable, "-c", child], check=True, capture_output=True, text=True,
            env=os.environ,
        )
        sha = json.loads(out.stdout.strip().splitlines()[-1])
        self.assertEqual(sha["photo"], hashlib.sha256(jpeg(1, 30000)).hexdigest())
        self.assertEqual(sha["signature"], hashlib.sha256(SIGNATURE).hexdigest())

        # The app starts again: the queue is where it was left.
        store = open_store(path)
        states = {q.proof.sha256: q.state for q in store.queued_proofs()}
        self.assertEqual(states, {
            sha["photo"]: tf.ProofState.WAITING_FOR_SYNC,
            sha["signature"]: tf.ProofState.WAITING_FOR_SYNC,
            sha["oversized"]: tf.ProofState.WAITING_FOR_SYNC,
            sha["unnamed"]: tf.ProofState.UNREFERENCED,
        })
        sizes = {q.proof.sha256: q.size for q in store.queued_proofs()}
        self.assertEqual(sizes[sha["signature"]], len(SIGNATURE))

        # Before the attempt syncs the server knows no attempt naming the photo.
        status, body = send("PUT", f"/v1/proofs/{sha['photo']}", POSTMAN_TOKEN, jpeg(1, 30000),
                            "image/jpeg")
        self.assertEqual((status, json.loads(body)["code"]), (422, "proof_not_referenced"))
        sync(store)
        self.assertEqual(store.pending_interactions(), [])
        states = {q.proof.sha256: q.state for q in store.queued_proofs()}
        self.assertEqual(states[sha["photo"]], tf.ProofState.READY)
        self.assertEqual(states[sha["unnamed"]], tf.ProofState.UNREFERENCED)

        # Another device's phone, and a client sending other bytes under the photo's hash.
        status, body = send("PUT", f"/v1/proofs/{sha['photo']}", OTHER_TOKEN, jpeg(1, 30000),
                            "image/jpeg")
        self.assertEqual((status, json.loads(body)["code"]), (422, "proof_not_referenced"))
        status, body = send("PUT", f"/v1/proofs/{sha['photo']}", POSTMAN_TOKEN, jpeg(7, 30000),
                            "application/octet-stream")
        self.assertEqual((status, json.loads(body)["code"]), (422, "proof_hash_mismatch"))
        self.assertEqual(json.loads(body)["field"], "body")

        # Through the bindings: the oversized file and the proof no attempt names are refused
        # for good and leave the queue; the photo and the signature are stored.
        status, answer = upload(store, sha["oversized"])
        self.assertEqual(status, 413)
        self.assertIsInstance(answer, tf.ProofAnswer.REFUSED)
        self.assertEqual(answer.code, "proof_too_large")
        status, answer = upload(store, sha["unnamed"])
        self.assertEqual(status, 422)
        self.assertEqual(answer.code, "proof_not_referenced")
        for name in ("photo", "signature"):
            status, answer = upload(store, sha[name])
            self.assertEqual(status, 201, name)
            self.assertIsInstance(answer, tf.ProofAnswer.STORED)
        self.assertEqual(store.queued_proofs(), [])
        # Uploading what is stored already is harmless.
        status, body = send("PUT", f"/v1/proofs/{sha['signature']}", POSTMAN_TOKEN, SIGNATURE,
                            "image/svg+xml")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["content_type"], "image/svg+xml")
        with self.assertRaises(tf.TourneeError.NotFound):
            store.proof_upload(sha["photo"])
        with self.assertRaises(tf.TourneeError.InvalidInput):
            store.proof_upload("../store.cbor")

        with open(RESULTS, "w") as f:
            json.dump({
                "stored": [sha["photo"], sha["signature"]],
                "refused": [sha["oversized"], sha["unnamed"]],
            }, f)


if __name__ == "__main__":
    unittest.main()
