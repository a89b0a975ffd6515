"""The postman app's API, through the generated Python bindings, against a real Tournée server.

Run by `tests/python_bindings.rs` (part of `cargo test --workspace`), which generates the
bindings with `mobile-ffi/generate-bindings.sh`, starts a server on port 0 over a fresh database
with the demo town, and sets:

- TOURNEE_SERVER: the server's base URL;
- TOURNEE_POSTMAN_TOKEN: a token of postman pm-1 on device dev-1;
- TOURNEE_CUSTOMER_TOKEN: a token of customer cust-1, who owns the first stop of pm-1's round;
- TOURNEE_RESULTS: a file where the suite writes what it recorded, for the Rust side to find in
  the server's database.

Each test opens its own stores in fresh directories; the server's data is shared.
"""

import datetime
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

import tournee_mobile_ffi as tf

SERVER = os.environ["TOURNEE_SERVER"]
POSTMAN_TOKEN = os.environ["TOURNEE_POSTMAN_TOKEN"]
CUSTOMER_TOKEN = os.environ["TOURNEE_CUSTOMER_TOKEN"]
RESULTS = os.environ["TOURNEE_RESULTS"]

RECORDED = {"attempts": [], "corrections": [], "choices": []}


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def http(method, path, token, body=None, content_type=None):
    request = urllib.request.Request(SERVER + path, data=body, method=method)
    request.add_header("Authorization", "Bearer " + token)
    if content_type:
        request.add_header("Content-Type", content_type)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()


def sync(store, token):
    """A whole sync, as the app does it with its own HTTP stack."""
    progress = []
    while True:
        body = store.sync_request()
        if body is None:
            return progress
        try:
            answer = http("POST", "/v1/sync", token, body, tf.sync_media_type())
        except Exception:
            store.abandon_sync()
            raise
        progress.append(store.apply_sync_answer(answer))


def postman_store(path=None):
    store = tf.FieldStore.open(path or tempfile.mkdtemp(), "dev-1", "pm-1", tf.StoreRole.POSTMAN)
    rounds = json.loads(http("GET", "/v1/rounds", POSTMAN_TOKEN))
    store.load_round(json.dumps(rounds[0]))
    return store


def absent(position=None):
    return tf.AttemptInput(
        outcome=tf.Outcome.ADDRESSEE_ABSENT(),
        recorded_at=now(),
        position=position,
        notice=tf.Notice(
            number="AV2026001",
            waits_at=tf.WaitingPlace(
                kind=tf.WaitingPlaceKind.POST_OFFICE, place_id="po-centre", until=None
            ),
        ),
        proofs=[],
    )


def first_stop_with_address(store):
    return next(s for s in store.stops() if s.address is not None)


class Recorder(tf.SyncObserver):
    """The app's observer: remembers what it was told."""

    def __init__(self):
        self.changed = []
        self.acknowledged = []

    def documents_changed(self, documents):
        self.changed.extend(documents)

    def interactions_acknowledged(self, interactions):
        self.acknowledged.extend(interactions)


class FailingObserver(tf.SyncObserver):
    def documents_changed(self, documents):
        raise RuntimeError("the app's screen crashed")

    def interactions_acknowledged(self, interactions):
        raise RuntimeError("the app's screen crashed")


class WorkARound(unittest.TestCase):
    def test_a_round_is_loaded_synced_and_shown_stop_by_stop(self):
        store = postman_store()
        summary = store.round()
        self.assertEqual(summary.postman, "pm-1")
        self.assertGreater(summary.stop_count, 0)
        before = store.stops()
        self.assertEqual([s.order for s in before], sorted(s.order for s in before))
        self.assertTrue(all(s.address is None and s.missing_items == s.items for s in before))

        sync(store, POSTMAN_TOKEN)

        stops = store.stops()
        self.assertEqual(len(stops), summary.stop_count)
        for stop in stops:
            self.assertIsNotNone(stop.address, stop.delivery_point)
            self.assertEqual(stop.missing_items, [])
            self.assertTrue(stop.address.street)
            for item in stop.items:
                door = store.door(item)
                self.assertEqual(door.item, item)
                self.assertEqual(door.delivery_point, stop.delivery_point)
                self.assertIsNotNone(door.preferences)

    def test_requirements_forbid_leaving_a_signed_item_unattended(self):
        store = postman_store()
        sync(store, POSTMAN_TOKEN)
        items = [i for s in store.stops() for i in s.items]
        signed = [i for i in items if store.door(i).requirements.signature]
        free = [i for i in items if not store.door(i).requirements.signature]
        self.assertTrue(signed and free, "the demo round has items of both kinds")

        door = store.door(signed[0])
        self.assertEqual(
            set(door.forbidden_outcomes),
            {tf.OutcomeKind.DELIVERED_TO_MAILBOX, tf.OutcomeKind.DELIVERED_TO_NEIGHBOUR,
             tf.OutcomeKind.DELIVERED_TO_SAFE_PLACE},
        )
        self.assertIn("signature", door.forbidden_reason)
        with self.assertRaises(tf.TourneeError.InvalidInput) as raised:
            store.record_attempt(
                signed[0],
                tf.AttemptInput(
                    outcome=tf.Outcome.DELIVERED_TO_MAILBOX(),
                    recorded_at=now(),
                    position=None,
                    notice=None,
                    proofs=[],
                ),
            )
        self.assertEqual(raised.exception.field, "outcome")
        self.assertEqual(store.door(free[0]).forbidden_outcomes, [])
        self.assertEqual(store.pending_interactions(), [])

    def test_attempts_and_a_correction_reach_the_server_and_are_acknowledged(self):
        store = postman_store()
        observer = Recorder()
        store.set_observer(observer)
        sync(store, POSTMAN_TOKEN)
        stop = first_stop_with_address(store)
        pin = stop.address.pin

        recorded = []
        for item in stop.items:
            position = tf.Position(lat=pin.lat, lon=pin.lon, accuracy_m=8.0) if pin else None
            interaction = store.record_attempt(item, absent(position))
            self.assertEqual(interaction.kind, tf.InteractionKind.ATTEMPT)
            self.assertEqual(interaction.document, "item:" + item)
            recorded.append((item, interaction.id))
        correction = store.propose_correction(
            stop.delivery_point,
            tf.CorrectionInput(
                proposed=tf.ProposedCorrection(
                    house_number=None, suffix=None, street=None, building="Bât. C",
                    floor=None, door_code="4512B", mailbox_position=None, pin=None,
                    note="new door code since Monday",
                ),
                proposed_at=now(),
            ),
        )
        self.assertEqual(correction.kind, tf.InteractionKind.CORRECTION)
        pending = store.pending_interactions()
        self.assertEqual(
            sorted(p.id for p in pending), sorted([i for _, i in recorded] + [correction.id])
        )
        mine = {r.id: r.attempt for r in store.door(stop.items[0]).attempts}[recorded[0][1]]
        self.assertEqual(mine.postman, "pm-1")
        self.assertEqual(mine.device, "dev-1")
        self.assertEqual(mine.outcome, tf.Outcome.ADDRESSEE_ABSENT())

        sync(store, POSTMAN_TOKEN)

        self.assertEqual(store.pending_interactions(), [])
        self.assertEqual(
            sorted(p.id for p in observer.acknowledged),
            sorted([i for _, i in recorded] + [correction.id]),
        )
        RECORDED["attempts"].extend(recorded)
        RECORDED["corrections"].append([stop.delivery_point, correction.id])

    def test_a_customers_choice_arrives_on_the_postmans_phone(self):
        postman = postman_store()
        sync(postman, POSTMAN_TOKEN)
        stop = first_stop_with_address(postman)
        item = next(i for i in stop.items if not postman.door(i).delivered)

        customer = tf.FieldStore.open(
            tempfile.mkdtemp(), "cust-1-app", "cust-1", tf.StoreRole.CUSTOMER
        )
        customer.load_round(json.dumps({
            "round_id": "my-parcels",
            "date": datetime.date.today().isoformat(),
            "postman": "cust-1",
            "device": "cust-1-app",
            "stops": [{"order": 1, "delivery_point": stop.delivery_point, "items": [item]}],
        }))
        sync(customer, CUSTOMER_TOKEN)
        tomorrow = datetime.date.today() + datetime.timedelta(days=1)
        choice = customer.choose_for_item(item, tf.Choice.REDELIVER_ON(date=tomorrow), now())
        self.assertEqual(choice.kind, tf.InteractionKind.CHOICE)
        with self.assertRaises(tf.TourneeError.NotAllowed):
            customer.record_attempt(item, absent())
        sync(customer, CUSTOMER_TOKEN)
        self.assertEqual(customer.pending_interactions(), [])
        RECORDED["choices"].append([item, choice.id])

        observer = Recorder()
        postman.set_observer(observer)
        sync(postman, POSTMAN_TOKEN)
        self.assertIn("item:" + item, observer.changed)
        door = postman.door(item)
        self.assertEqual(door.customer_choice.choice, tf.Choice.REDELIVER_ON(date=tomorrow))
        self.assertEqual(door.customer_choice.made_by, "cust-1")
        self.assertIsNone(door.choice_not_applicable)

    def test_an_observer_that_raises_does_not_break_the_sync(self):
        store = postman_store()
        store.set_observer(FailingObserver())
        sync(store, POSTMAN_TOKEN)
        item = first_stop_with_address(store).items[0]
        store.record_attempt(item, absent())
        sync(store, POSTMAN_TOKEN)
        self.assertEqual(store.pending_interactions(), [])
        store.set_observer(None)


class InvalidInput(unittest.TestCase):
    def setUp(self):
        self.store = postman_store()
        sync(self.store, POSTMAN_TOKEN)
        self.item = first_stop_with_address(self.store).items[0]
        self.attempts_before = len(self.store.door(self.item).attempts)

    def assert_invalid(self, field, call, *args):
        with self.assertRaises(tf.TourneeError.InvalidInput) as raised:
            call(*args)
        self.assertEqual(raised.exception.field, field)
        self.assertTrue(raised.exception.reason)
        return raised.exception

    def test_bad_arguments_name_their_field_and_write_nothing(self):
        self.assert_invalid("item_id", self.store.door, "not-an-s10")
        self.assert_invalid("item_id", self.store.record_attempt, "RR12345678FR", absent())
        attempt = absent()
        attempt.outcome = tf.Outcome.OTHER(text="")
        self.assert_invalid("outcome.text", self.store.record_attempt, self.item, attempt)
        attempt = absent()
        attempt.recorded_at = datetime.datetime(2019, 12, 31, tzinfo=datetime.timezone.utc)
        self.assert_invalid("recorded_at_ms", self.store.record_attempt, self.item, attempt)
        attempt = absent(tf.Position(lat=123.0, lon=2.0, accuracy_m=5.0))
        self.assert_invalid("position", self.store.record_attempt, self.item, attempt)
        self.assert_invalid("manifest", self.store.load_round, "{not json")
        empty = tf.CorrectionInput(
            proposed=tf.ProposedCorrection(
                house_number=None, suffix=None, street=None, building=None, floor=None,
                door_code=None, mailbox_position=None, pin=None, note=None,
            ),
            proposed_at=now(),
        )
        stop = first_stop_with_address(self.store)
        self.assert_invalid("correction", self.store.propose_correction, stop.delivery_point, empty)
        self.assert_invalid("device", tf.FieldStore.open, tempfile.mkdtemp(), "", "pm-1",
                            tf.StoreRole.POSTMAN)
        self.assertEqual(self.store.pending_interactions(), [])
        self.assertEqual(len(self.store.door(self.item).attempts), self.attempts_before)

    def test_an_item_not_on_the_phone_is_not_found(self):
        with self.assertRaises(tf.TourneeError.NotFound):
            self.store.door("RR999999995FR")

    def test_a_store_of_another_device_is_refused(self):
        path = tempfile.mkdtemp()
        tf.FieldStore.open(path, "dev-1", "pm-1", tf.StoreRole.POSTMAN)
        with self.assertRaises(tf.TourneeError.WrongOwner):
            tf.FieldStore.open(path, "dev-2", "pm-2", tf.StoreRole.POSTMAN)

    def test_a_store_already_open_is_refused_in_this_process_and_in_another(self):
        path = tempfile.mkdtemp()
        store = postman_store(path)
        with self.assertRaises(tf.TourneeError.InUse):
            tf.FieldStore.open(path, "dev-1", "pm-1", tf.StoreRole.POSTMAN)
        child = f"""
import sys
sys.path.insert(0, {os.path.dirname(tf.__file__)!r})
import tournee_mobile_ffi as tf
try:
    tf.FieldStore.open({path!r}, "dev-1", "pm-1", tf.StoreRole.POSTMAN)
    print("opened")
except tf.TourneeError.InUse as e:
    print("in use")
"""
        out = subprocess.run(
            [sys.executable, "-c", child], check=True, capture_output=True, text=True,
            env=os.environ,
        )
        self.assertEqual(out.stdout.strip(), "in use")
        # The one writer's attempt is kept; once it is closed, the folder opens again.
        sync(store, POSTMAN_TOKEN)
        item = first_stop_with_address(store).items[0]
        attempt = store.record_attempt(item, absent())
        del store
        reopened = tf.FieldStore.open(path, "dev-1", "pm-1", tf.StoreRole.POSTMAN)
        self.assertIn(attempt.id, [p.id for p in reopened.pending_interactions()])

    def test_malformed_or_unexpected_sync_answers_are_protocol_errors(self):
        with self.assertRaises(tf.TourneeError.Protocol):
            self.store.apply_sync_answer(b"TRNE")
        self.store.record_attempt(self.item, absent())
        self.assertIsNotNone(self.store.sync_request())
        with self.assertRaises(tf.TourneeError.Protocol):
            self.store.sync_request()
        with self.assertRaises(tf.TourneeError.Protocol):
            self.store.apply_sync_answer(b"\x00garbage")
        # The failed sync was abandoned; the attempt waits and the next sync sends it.
        self.assertEqual(len(self.store.pending_interactions()), 1)
        sync(self.store, POSTMAN_TOKEN)
        self.assertEqual(self.store.pending_interactions(), [])


class Durability(unittest.TestCase):
    def test_a_store_reopened_after_the_process_exits_has_everything(self):
        path = tempfile.mkdtemp()
        child = f"""
import json, os, sys, time
sys.path.insert(0, {os.path.dirname(tf.__file__)!r})
sys.path.insert(0, {os.path.dirname(__file__)!r})
import test_field_store as t
store = t.postman_store({path!r})
t.sync(store, t.POSTMAN_TOKEN)
stop = t.first_stop_with_address(store)
ids = [store.record_attempt(item, t.absent()).id for item in stop.items]
print(json.dumps({{"item": stop.items[0], "ids": ids}}), flush=True)
os._exit(0)  # no clean shutdown: everything must already be on disk
"""
        out = subprocess.run(
            [sys.executable, "-c", child], check=True, capture_output=True, text=True,
            env=os.environ,
        )
        written = json.loads(out.stdout.strip().splitlines()[-1])

        store = tf.FieldStore.open(path, "dev-1", "pm-1", tf.StoreRole.POSTMAN)
        self.assertIsNotNone(store.round())
        self.assertTrue(all(s.missing_items == [] for s in store.stops()))
        self.assertEqual(sorted(p.id for p in store.pending_interactions()), sorted(written["ids"]))
        self.assertIn(written["ids"][0], [r.id for r in store.door(written["item"]).attempts])
        sync(store, POSTMAN_TOKEN)
        self.assertEqual(store.pending_interactions(), [])


class EncryptedStore(unittest.TestCase):
    def test_a_store_opens_only_with_its_key_and_keeps_nothing_readable(self):
        path = tempfile.mkdtemp()
        key = os.urandom(32)  # the app keeps it in the Keystore / Keychain
        store = tf.FieldStore.open(path, "dev-1", "pm-1", tf.StoreRole.POSTMAN, key)
        rounds = json.loads(http("GET", "/v1/rounds", POSTMAN_TOKEN))
        store.load_round(json.dumps(rounds[0]))
        sync(store, POSTMAN_TOKEN)
        item = first_stop_with_address(store).items[0]
        attempt = store.record_attempt(item, absent())
        del store

        on_disk = b""
        for folder, _, files in os.walk(path):
            for name in files:
                with open(os.path.join(folder, name), "rb") as f:
                    on_disk += f.read()
        for plain in [b"dev-1", b"pm-1", item.encode(), b"AV2026001", attempt.id.encode()]:
            self.assertNotIn(plain, on_disk)

        with self.assertRaises(tf.TourneeError.WrongKey):
            tf.FieldStore.open(path, "dev-1", "pm-1", tf.StoreRole.POSTMAN, os.urandom(32))
        with self.assertRaises(tf.TourneeError.WrongKey):
            tf.FieldStore.open(path, "dev-1", "pm-1", tf.StoreRole.POSTMAN)
        with self.assertRaises(tf.TourneeError.InvalidInput) as raised:
            tf.FieldStore.open(path, "dev-1", "pm-1", tf.StoreRole.POSTMAN, key[:16])
        self.assertEqual(raised.exception.field, "key")

        # Nothing was lost to the refused opens: with its key, the store has the attempt.
        store = tf.FieldStore.open(path, "dev-1", "pm-1", tf.StoreRole.POSTMAN, key)
        self.assertEqual([p.id for p in store.pending_interactions()], [attempt.id])
        sync(store, POSTMAN_TOKEN)
        self.assertEqual(store.pending_interactions(), [])


class Threads(unittest.TestCase):
    def test_several_threads_record_and_sync_at_once(self):
        store = postman_store()
        sync(store, POSTMAN_TOKEN)
        items = [i for s in store.stops() for i in s.items]
        before = {i: len(store.door(i).attempts) for i in items}
        errors = []
        per_thread = 5

        def record(offset):
            try:
                for n in range(per_thread):
                    store.record_attempt(items[(offset + n) % len(items)], absent())
            except Exception as e:  # surfaced below
                errors.append(e)

        def reader():
            try:
                for _ in range(20):
                    store.stops()
                    store.pending_interactions()
            except Exception as e:
                errors.append(e)

        def syncer():
            try:
                sync(store, POSTMAN_TOKEN)
            except Exception as e:
                errors.append(e)

        threads = [threading.Thread(target=record, args=(k,)) for k in range(6)]
        threads += [threading.Thread(target=reader), threading.Thread(target=syncer)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        recorded = sum(len(store.door(i).attempts) - before[i] for i in items)
        self.assertEqual(recorded, 6 * per_thread)
        sync(store, POSTMAN_TOKEN)
        self.assertEqual(store.pending_interactions(), [])


def tearDownModule():
    with open(RESULTS, "w") as f:
        json.dump(RECORDED, f)


if __name__ == "__main__":
    unittest.main()
