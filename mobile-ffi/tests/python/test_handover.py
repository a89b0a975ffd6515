"""A relief postman's hand-over through the Python bindings, against a real Tournée server.

Run by `tests/python_bindings.rs`, which starts a server with the demo town, hands pm-1's round
over to pm-2's device (dev-2) too, and sets TOURNEE_SERVER, TOURNEE_POSTMAN_TOKEN (pm-1 on dev-1),
TOURNEE_RELIEF_TOKEN (pm-2 on dev-2) and TOURNEE_RESULTS (what the suite recorded, for the Rust
side to find in the database).

pm-1's phone records two attempts and goes flat before syncing; its round goes to pm-2's phone
in one file; pm-2's phone checks every signature and rule, works on, and syncs; pm-1's phone
syncs later and nothing changes.
"""

import base64
import json
import os
import tempfile
import unittest
import urllib.error
import urllib.request

import tournee_mobile_ffi as tf
from test_field_store import absent, http, sync

SERVER = os.environ["TOURNEE_SERVER"]
POSTMAN_TOKEN = os.environ["TOURNEE_POSTMAN_TOKEN"]
RELIEF_TOKEN = os.environ["TOURNEE_RELIEF_TOKEN"]
RESULTS = os.environ["TOURNEE_RESULTS"]


def enroll(token, key):
    body = json.dumps({"public_key": base64.b64encode(key.public_key()).decode()}).encode()
    request = urllib.request.Request(
        SERVER + "/v1/devices/signing-key", data=body, method="PUT"
    )
    request.add_header("Authorization", "Bearer " + token)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def signed_store(device, principal, token, pick_round):
    store = tf.FieldStore.open(tempfile.mkdtemp(), device, principal, tf.StoreRole.POSTMAN)
    key = tf.SoftwareKey.generate()
    assert enroll(token, key) == 201
    store.use_software_key(key)
    rounds = json.loads(http("GET", "/v1/rounds", token))
    store.load_round(json.dumps(pick_round(rounds)))
    return store, key


class HandOver(unittest.TestCase):
    def test_a_round_handed_over_by_file_is_synced_by_the_relief_phone_once(self):
        phone, key = signed_store("dev-1", "pm-1", POSTMAN_TOKEN, lambda rounds: rounds[0])
        sync(phone, POSTMAN_TOKEN)
        items = [item for stop in phone.stops() for item in stop.items][:2]
        recorded = [phone.record_attempt(item, absent()) for item in items]

        relief, _ = signed_store(
            "dev-2",
            "pm-2",
            RELIEF_TOKEN,
            lambda rounds: next(r for r in rounds if r["round_id"].endswith("-handover")),
        )
        # A file claiming another key is refused whole: nothing is taken.
        forged = phone.export_round(tf.SoftwareKey.generate().public_key())
        with self.assertRaises(tf.TourneeError.InvalidInput) as refused:
            relief.import_round(forged)
        self.assertEqual(refused.exception.field, "relay_file")
        self.assertEqual(relief.pending_interactions(), [])

        taken = relief.import_round(phone.export_round(key.public_key()))
        self.assertEqual(sorted(t.id for t in taken), sorted(r.id for r in recorded))
        self.assertEqual(
            sorted(p.id for p in relief.pending_interactions()), sorted(r.id for r in recorded)
        )
        # The relief phone works on, and syncs with its own token.
        later = [item for stop in relief.stops() for item in stop.items][2]
        own = relief.record_attempt(later, absent())
        for progress in sync(relief, RELIEF_TOKEN):
            self.assertEqual(progress.refused, [])
        self.assertEqual(relief.pending_interactions(), [])

        # pm-1's phone syncs later: nothing refused, everything acknowledged.
        for progress in sync(phone, POSTMAN_TOKEN):
            self.assertEqual(progress.refused, [])
        self.assertEqual(phone.pending_interactions(), [])
        with open(RESULTS, "w") as out:
            json.dump(
                {
                    "handed_over": [[i, r.id] for i, r in zip(items, recorded)],
                    "relief": [later, own.id],
                },
                out,
            )


if __name__ == "__main__":
    unittest.main(verbosity=2)
