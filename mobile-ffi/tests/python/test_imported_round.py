"""A town loaded by the operator's systems, worked by a postman's phone, and its facts out of the
event feed: the integration boundary end to end, through the generated Python bindings.

Run by `tests/python_bindings.rs`, which starts a server on port 0 over a fresh database and sets:

- TOURNEE_SERVER: the server's base URL;
- TOURNEE_INTEGRATION_TOKEN: a token of the integration role;
- TOURNEE_TOWN_POSTMAN_TOKEN: a token of postman pm-flow-0 on device dev-flow-0, the postman
  and device of the town's first round (registered by the import below);
- TOURNEE_RESULTS: a file where the suite writes the feed's events it saw, for the Rust side.
"""

import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import tournee_mobile_ffi as tf

SERVER = os.environ["TOURNEE_SERVER"]
INTEGRATION = os.environ["TOURNEE_INTEGRATION_TOKEN"]
POSTMAN = os.environ["TOURNEE_TOWN_POSTMAN_TOKEN"]
RESULTS = os.environ["TOURNEE_RESULTS"]
TOOLS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "tools")


def http(method, path, token, body=None, content_type=None):
    request = urllib.request.Request(SERVER + path, data=body, method=method)
    request.add_header("Authorization", "Bearer " + token)
    if content_type:
        request.add_header("Content-Type", content_type)
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read()


def sync(store):
    while True:
        body = store.sync_request()
        if body is None:
            return
        store.apply_sync_answer(http("POST", "/v1/sync", POSTMAN, body, tf.sync_media_type()))


def feed():
    events, after = [], None
    while True:
        query = "?limit=50" + (f"&after={after}" if after else "")
        page = json.loads(http("GET", "/v1/feed" + query, INTEGRATION))
        events.extend(page["events"])
        after = page["next"]
        if not page["more"]:
            return events


def now():
    return datetime.datetime.now(datetime.timezone.utc)


class ImportedRound(unittest.TestCase):
    def test_a_town_imported_is_worked_by_a_phone_and_its_facts_come_out_of_the_feed(self):
        town = tempfile.mkdtemp()
        # Today in the server's time zone (Europe/Paris) is what its rounds window follows.
        today = datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=1))).date()
        subprocess.run(
            [sys.executable, os.path.join(TOOLS, "town.py"), town, "--points", "6",
             "--postmen", "1", "--prefix", "flow", "--date", today.isoformat()],
            check=True,
        )
        for kind in ["delivery-points", "customers", "items", "devices", "rounds"]:
            with open(os.path.join(town, kind + ".ndjson"), "rb") as f:
                report = http("POST", f"/v1/import/{kind}", INTEGRATION, f.read(), "application/x-ndjson")
            lines = [json.loads(line) for line in report.decode().splitlines()]
            totals = lines[-1]["totals"]
            self.assertEqual(totals["refused"], 0, lines)
            self.assertTrue(totals["applied"])
            self.assertEqual(totals["created"], totals["lines"], lines)

        store = tf.FieldStore.open(tempfile.mkdtemp(), "dev-flow-0", "pm-flow-0", tf.StoreRole.POSTMAN)
        rounds = json.loads(http("GET", "/v1/rounds", POSTMAN))
        self.assertEqual(rounds[0]["round_id"], f"round-flow-{today.isoformat()}-0")
        store.load_round(json.dumps(rounds[0]))
        sync(store)
        stop = store.stops()[0]
        self.assertIsNotNone(stop.address)
        self.assertEqual(stop.address.street, "RUE DES LILAS")
        signed = [i for i in stop.items if store.door(i).requirements.signature]
        free = [i for i in stop.items if not store.door(i).requirements.signature]
        self.assertTrue(signed and free, "the town's first stop has items of both kinds")
        pin = stop.address.pin
        position = tf.Position(lat=pin.lat, lon=pin.lon, accuracy_m=6.0)
        delivered = store.record_attempt(free[0], tf.AttemptInput(
            outcome=tf.Outcome.DELIVERED_TO_MAILBOX(), recorded_at=now(),
            position=position, notice=None, proofs=[]))
        absent = store.record_attempt(signed[0], tf.AttemptInput(
            outcome=tf.Outcome.ADDRESSEE_ABSENT(), recorded_at=now(), position=position,
            notice=tf.Notice(number="AVFLOW001", waits_at=tf.WaitingPlace(
                kind=tf.WaitingPlaceKind.POST_OFFICE, place_id="po-flow", until=None)),
            proofs=[]))
        sync(store)
        self.assertEqual(store.pending_interactions(), [])

        # On PostgreSQL the feed stops short of transactions still running on the cluster: what
        # was just committed may take a moment to show.
        deadline = time.time() + 30
        events = feed()
        while not {delivered.id, absent.id} <= {e["payload"].get("attempt_id") for e in events}:
            self.assertLess(time.time(), deadline, "the attempts never reached the feed")
            time.sleep(0.1)
            events = feed()
        ids = [e["id"] for e in events]
        self.assertEqual(len(ids), len(set(ids)), "an event came twice")
        by_type = {}
        for e in events:
            by_type.setdefault(e["type"], []).append(e)
        arrived = {e["subject"]["id"] for e in by_type["item.arrived"]}
        self.assertTrue({free[0], signed[0]} <= arrived)
        self.assertIn(f"round-flow-{today.isoformat()}-0", {e["subject"]["id"] for e in by_type["round.published"]})
        attempts = {e["payload"]["attempt_id"]: e for e in by_type["attempt.recorded"]}
        self.assertEqual(attempts[delivered.id]["payload"]["outcome"], "delivered_to_mailbox")
        self.assertEqual(attempts[delivered.id]["subject"]["id"], free[0])
        self.assertLess(attempts[delivered.id]["payload"]["distance_to_pin_m"], 1.0)
        self.assertEqual(attempts[absent.id]["payload"]["notice_number"], "AVFLOW001")
        self.assertIn(free[0], {e["subject"]["id"] for e in by_type["item.delivered"]})
        not_delivered = [e for e in by_type["item.not_delivered"] if e["subject"]["id"] == signed[0]]
        self.assertEqual(len(not_delivered), 1)
        self.assertEqual(not_delivered[0]["payload"]["upu_code"], "EMH")
        with open(RESULTS, "w") as f:
            json.dump({"events": ids, "delivered": [free[0], delivered.id], "absent": [signed[0], absent.id]}, f)


if __name__ == "__main__":
    unittest.main()
