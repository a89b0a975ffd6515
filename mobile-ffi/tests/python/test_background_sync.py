"""The async calls and the background sync helper through the generated Python bindings
(asyncio), against a real Tournée server (issue #17).

Run by `tests/async_bindings.rs`, once per database, with:

- TOURNEE_SERVER: the server's base URL;
- TOURNEE_POSTMAN_TOKEN: a token of postman pm-1 on device dev-1;
- TOURNEE_RESULTS: where the suite writes the attempts and proofs the helper uploaded, for the
  Rust side to find each exactly once in the server's database.

The transport is the app's HTTP stack as the helper sees it: urllib on a worker thread, behind
a script of failures (a refused connection, an answer lost after the server stored the
request, 503 and 429 with Retry-After, a request that never ends).
"""

import asyncio
import datetime
import json
import os
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

import tournee_mobile_ffi as tf

SERVER = os.environ["TOURNEE_SERVER"]
POSTMAN_TOKEN = os.environ["TOURNEE_POSTMAN_TOKEN"]
RESULTS = os.environ["TOURNEE_RESULTS"]

UPLOADED = {"attempts": [], "proofs": []}

# What the scripted transport does instead of (or after) sending a request.
REFUSED = "connection refused"  # no answer: the server never sees the request
LOST = "answer lost"  # the server stores the request, the connection breaks before the answer
HANGS = "hangs"  # the request never ends


def quick(max_attempts=6, deadline=None):
    return tf.RetryPolicy(
        max_attempts=max_attempts,
        first_backoff=datetime.timedelta(milliseconds=20),
        max_backoff=datetime.timedelta(milliseconds=200),
        deadline=deadline,
    )


def in_seconds(seconds):
    return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)


def jpeg(seed, size):
    return b"\xff\xd8\xff\xe0" + bytes((i * 17 + seed) % 256 for i in range(size))


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def absent(proofs=()):
    return tf.AttemptInput(
        outcome=tf.Outcome.ADDRESSEE_ABSENT(),
        recorded_at=now(),
        position=None,
        notice=tf.Notice(
            number="AV2026017",
            waits_at=tf.WaitingPlace(
                kind=tf.WaitingPlaceKind.POST_OFFICE, place_id="po-centre", until=None
            ),
        ),
        proofs=list(proofs),
    )


class ScriptedTransport(tf.SyncTransport):
    """The app's transport: urllib on a worker thread (the event loop stays free), after the
    scripted failures. Failures are raised as the HTTP stack raises them (ConnectionError),
    not as a TransportError: the helper counts any exception as no answer."""

    def __init__(self, token=POSTMAN_TOKEN, script=()):
        self.token = token
        self.script = list(script)
        self.sent = []  # (method, path) of every request the helper asked for
        self.hanging = asyncio.Event()
        self.cancelled = threading.Event()

    async def send(self, request):
        self.sent.append((request.method, request.path))
        step = self.script.pop(0) if self.script else None
        if step == REFUSED:
            raise ConnectionRefusedError("[Errno 111] Connection refused")
        if isinstance(step, tuple):
            status, retry_after = step
            body = json.dumps({"code": "unavailable", "message": f"scripted {status}"})
            return tf.HttpAnswer(status=status, body=body.encode(), retry_after=retry_after)
        if step == HANGS:
            self.hanging.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        answer = await asyncio.to_thread(self.post, request)
        if step == LOST:
            raise ConnectionResetError("[Errno 104] Connection reset by peer")
        return answer

    def post(self, request):
        http = urllib.request.Request(SERVER + request.path, data=request.body, method=request.method)
        http.add_header("Authorization", "Bearer " + self.token)
        http.add_header("Content-Type", request.content_type)
        try:
            with urllib.request.urlopen(http, timeout=30) as response:
                status, body, headers = response.status, response.read(), response.headers
        except urllib.error.HTTPError as e:
            status, body, headers = e.code, e.read(), e.headers
        return tf.HttpAnswer(status=status, body=body, retry_after=headers.get("Retry-After"))


class Recorder(tf.SyncObserver):
    """The app's observer: what it was told, and on which thread."""

    def __init__(self):
        self.changed = []
        self.acknowledged = []
        self.threads = set()

    def documents_changed(self, documents):
        self.threads.add(threading.get_ident())
        self.changed.extend(documents)

    def interactions_acknowledged(self, interactions):
        self.threads.add(threading.get_ident())
        self.acknowledged.extend(i.id for i in interactions)


def rounds():
    request = urllib.request.Request(SERVER + "/v1/rounds")
    request.add_header("Authorization", "Bearer " + POSTMAN_TOKEN)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


async def postman_store():
    store = await tf.AsyncFieldStore.open(tempfile.mkdtemp(), "dev-1", "pm-1", tf.StoreRole.POSTMAN)
    await store.load_round(json.dumps(rounds()[0]))
    return store


async def items(store):
    return [item for stop in await store.stops() for item in stop.items]


class AsyncCalls(unittest.IsolatedAsyncioTestCase):
    async def test_a_first_download_leaves_the_event_loop_free(self):
        """The first download applied through the async calls: the store works on a thread of
        its own while the event loop goes on running other tasks."""
        loop_thread = threading.get_ident()
        loop_ran = threading.Event()
        seen_while_applying = []

        class WaitsForTheLoop(tf.SyncObserver):
            # Called from inside the apply call: proves the loop ran meanwhile. Were the call
            # run on the loop's thread, the loop could not run and this would wait in vain.
            def documents_changed(self, documents):
                seen_while_applying.append(
                    (threading.get_ident() != loop_thread, loop_ran.wait(timeout=20))
                )

            def interactions_acknowledged(self, interactions):
                pass

        async def other_work():
            while True:
                loop_ran.set()
                await asyncio.sleep(0.001)

        store = await postman_store()
        store.blocking().set_observer(WaitsForTheLoop())
        transport = ScriptedTransport()
        ticker = asyncio.create_task(other_work())
        try:
            while (body := await store.sync_request()) is not None:
                answer = await transport.send(
                    tf.HttpRequest(
                        method="POST", path="/v1/sync", content_type=tf.sync_media_type(), body=body
                    )
                )
                self.assertEqual(answer.status, 200, answer.body)
                loop_ran.clear()
                await store.apply_sync_answer(answer.body)
        finally:
            ticker.cancel()
        self.assertTrue(seen_while_applying, "the first download changed documents")
        self.assertEqual(seen_while_applying[0], (True, True))
        stops = await store.stops()
        self.assertTrue(stops and all(s.address is not None for s in stops))


class BackgroundSync(unittest.IsolatedAsyncioTestCase):
    async def test_failures_are_outlasted_and_everything_is_uploaded_once(self):
        store = await postman_store()
        observer = Recorder()
        store.blocking().set_observer(observer)

        # The first download: the connection is refused, then the server is unavailable and
        # then throttles, each asking for a second.
        transport = ScriptedTransport(script=[REFUSED, (503, "1"), (429, "1")])
        first = await store.sync_with(transport, quick())
        self.assertEqual(first.retries, 3)
        self.assertEqual(first.requests, len(transport.sent))
        self.assertTrue(first.progress.changed_documents)
        self.assertEqual(sorted(observer.changed), sorted(first.progress.changed_documents))

        # Two attempts, one with a photo; the push's answer is lost after the server stored it,
        # and the photo's first upload meets a 503.
        photo = await store.queue_proof(tf.ProofKind.PHOTO, jpeg(17, 4000))
        first_item, second_item = (await items(store))[:2]
        recorded = [
            (first_item, (await store.record_attempt(first_item, absent([photo]))).id),
            (second_item, (await store.record_attempt(second_item, absent())).id),
        ]
        transport = ScriptedTransport(script=[LOST])
        transport_after_sync = ScriptedTransport(script=[(503, None)])

        class ThenProofs(tf.SyncTransport):
            # The sync's requests through the first script, the proof's through the second.
            async def send(self, request):
                chosen = transport if request.path == "/v1/sync" else transport_after_sync
                return await chosen.send(request)

        second = await store.sync_with(ThenProofs(), quick())
        self.assertEqual(second.retries, 2)
        self.assertEqual(
            sorted(i.id for i in second.progress.acknowledged), sorted(id for _, id in recorded)
        )
        self.assertEqual(sorted(observer.acknowledged), sorted(id for _, id in recorded))
        self.assertEqual(await store.pending_interactions(), [])
        self.assertEqual([p.sha256 for p in second.proofs], [photo.sha256])
        self.assertIsInstance(second.proofs[0].answer, tf.ProofAnswer.STORED)
        self.assertEqual(transport_after_sync.sent, [("PUT", f"/v1/proofs/{photo.sha256}")] * 2)
        self.assertEqual(await store.queued_proofs(), [])
        UPLOADED["attempts"].extend(recorded)
        UPLOADED["proofs"].append(photo.sha256)

    async def test_a_refused_token_stops_at_once(self):
        store = await postman_store()
        transport = ScriptedTransport(token="not-a-token")
        with self.assertRaises(tf.TourneeError.NotAuthorized) as raised:
            await store.sync_with(transport, quick())
        self.assertEqual(raised.exception.status, 401)
        self.assertEqual(transport.sent, [("POST", "/v1/sync")], "never tried again")

    async def test_a_cancelled_sync_leaves_the_store_consistent(self):
        store = await postman_store()
        await store.sync_with(ScriptedTransport(), quick())
        item = (await items(store))[2]
        attempt = (await store.record_attempt(item, absent())).id

        # The push never ends; the app cancels the work while it is in flight, and the
        # request's own task is cancelled with it.
        transport = ScriptedTransport(script=[HANGS])
        work = asyncio.create_task(store.sync_with(transport, quick()))
        await transport.hanging.wait()
        work.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await work
        self.assertTrue(await asyncio.to_thread(transport.cancelled.wait, 20))
        self.assertEqual([i.id for i in await store.pending_interactions()], [attempt])

        # A deadline does the same, as a typed error.
        transport = ScriptedTransport(script=[HANGS])
        with self.assertRaises(tf.TourneeError.Unavailable) as raised:
            await store.sync_with(transport, quick(deadline=in_seconds(0.5)))
        self.assertIn("deadline", raised.exception.reason)

        # The app's own loop finds no exchange left half done, and the helper syncs.
        blocking = store.blocking()
        self.assertIsNotNone(blocking.sync_request())
        blocking.abandon_sync()
        summary = await store.sync_with(ScriptedTransport(), quick())
        self.assertEqual([i.id for i in summary.progress.acknowledged], [attempt])
        self.assertEqual(await store.pending_interactions(), [])
        UPLOADED["attempts"].append((item, attempt))

    async def test_the_blocking_twin_runs_on_a_worker_thread(self):
        """From a worker thread (WorkManager's Worker), the blocking call; the transport's
        coroutines run on the event loop named with uniffi_set_event_loop."""
        store = await postman_store()
        tf.uniffi_set_event_loop(asyncio.get_running_loop())
        try:
            transport = ScriptedTransport(script=[(503, None)])
            summary = await asyncio.to_thread(store.blocking().sync_with, transport, quick())
        finally:
            tf.uniffi_set_event_loop(None)
        self.assertEqual(summary.retries, 1)
        self.assertTrue(summary.progress.changed_documents)
        self.assertTrue(all(s.address is not None for s in await store.stops()))


def tearDownModule():
    with open(RESULTS, "w") as f:
        json.dump(UPLOADED, f)


if __name__ == "__main__":
    unittest.main()
