"""A choice made from the notice card reaches the postman's phone through the Python bindings.

Run by `tests/notice_card_bindings.rs` (part of `cargo test --workspace`), which generates the
bindings, starts a server on port 0 over a fresh database with the demo town, and sets:

- TOURNEE_SERVER: the server's base URL;
- TOURNEE_POSTMAN_TOKEN: a token of postman pm-1 on device dev-1;
- TOURNEE_RESULTS: a file where the suite writes the items and the ids of the choices the server
  accepted, for the Rust side to find them, and nothing else, in the server's database.

The phone nobody answers for leaves a notice card on two items of its round: one that needs no
signature and one that does. The customer holding each card makes a choice with the card's
number and the postcode, by plain HTTP and with no token, as the public page does.
"""

import datetime
import json
import os
import tempfile
import unittest
import urllib.error
import urllib.request

import tournee_mobile_ffi as tf

SERVER = os.environ["TOURNEE_SERVER"]
POSTMAN_TOKEN = os.environ["TOURNEE_POSTMAN_TOKEN"]
RESULTS = os.environ["TOURNEE_RESULTS"]

# The demo's post office in 75011, where items wait after a notice, and one of its pickup points.
POST_OFFICE = "bp-paris-11"
PICKUP_POINT = "pp-paris-11-03"
# The cards this suite leaves: the server's database is fresh, so nobody else uses these numbers.
CARD_OF_FREE_ITEM = "AVCARD0001"
CARD_OF_SIGNED_ITEM = "AVCARD0002"

RECORDED = {"pickup_point": None, "hold": None}


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def sync(store):
    """A whole sync as the app does it; the documents the server sent changes for."""
    changed = []
    while True:
        body = store.sync_request()
        if body is None:
            return changed
        request = urllib.request.Request(SERVER + "/v1/sync", data=body, method="POST")
        request.add_header("Authorization", "Bearer " + POSTMAN_TOKEN)
        request.add_header("Content-Type", tf.sync_media_type())
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                answer = response.read()
        except Exception:
            store.abandon_sync()
            raise
        changed.extend(store.apply_sync_answer(answer).changed_documents)


def push_and_settle(store):
    """Pushes what is pending, then syncs until a sync brings nothing: the sync after a push
    brings the phone's own changes back from the server's change log (no-ops to apply, but
    reported as changed), so only after this is what a sync brings news from someone else."""
    sync(store)
    for _ in range(3):
        if not sync(store):
            return
    raise AssertionError("the phone's documents kept changing with nobody writing")


def choose_with_card(notice, postcode, choice):
    """`POST /v1/notices/{notice}/choice` as the card's holder: no token. (status, JSON body)."""
    request = urllib.request.Request(
        f"{SERVER}/v1/notices/{notice}/choice",
        data=json.dumps({"postcode": postcode, "choice": choice}).encode(),
        method="POST",
    )
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def absent_with_card(notice):
    return tf.AttemptInput(
        outcome=tf.Outcome.ADDRESSEE_ABSENT(),
        recorded_at=now(),
        position=None,
        notice=tf.Notice(
            number=notice,
            waits_at=tf.WaitingPlace(
                kind=tf.WaitingPlaceKind.POST_OFFICE, place_id=POST_OFFICE, until=None
            ),
        ),
        proofs=[],
    )


class NoticeCard(unittest.TestCase):
    def setUp(self):
        self.phone = tf.FieldStore.open(tempfile.mkdtemp(), "dev-1", "pm-1", tf.StoreRole.POSTMAN)
        request = urllib.request.Request(SERVER + "/v1/rounds")
        request.add_header("Authorization", "Bearer " + POSTMAN_TOKEN)
        with urllib.request.urlopen(request, timeout=30) as response:
            rounds = json.loads(response.read())
        self.phone.load_round(json.dumps(rounds[0]))
        sync(self.phone)
        self.postcode_of = {}
        for stop in self.phone.stops():
            for item in stop.items:
                self.postcode_of[item] = stop.address.postcode
        items = list(self.postcode_of)
        self.free = next(i for i in items if not self.phone.door(i).requirements.signature)
        self.signed = next(i for i in items if self.phone.door(i).requirements.signature)

    def leave_card(self, item, notice):
        self.phone.record_attempt(item, absent_with_card(notice))

    def test_the_cards_choice_reaches_the_phone_and_a_forbidden_one_gets_422(self):
        self.leave_card(self.free, CARD_OF_FREE_ITEM)
        self.leave_card(self.signed, CARD_OF_SIGNED_ITEM)
        push_and_settle(self.phone)
        self.assertEqual(self.phone.pending_interactions(), [], "both attempts are on the server")
        self.assertIsNone(self.phone.door(self.free).customer_choice)
        self.assertIsNone(self.phone.door(self.signed).customer_choice)

        # The holder of the card left for the item that needs no signature picks a pickup point.
        status, made = choose_with_card(
            CARD_OF_FREE_ITEM,
            self.postcode_of[self.free],
            {"kind": "pickup_point", "pickup_point": PICKUP_POINT},
        )
        self.assertEqual(status, 200, made)
        self.assertTrue(made["written"], made)
        self.assertEqual(made["tracking"]["s10"], self.free)
        RECORDED["pickup_point"] = [self.free, made["choice_id"]]

        # The item that needs a signature cannot go to a neighbour: 422 with its code, the field
        # as the body spells it, and why.
        status, refused = choose_with_card(
            CARD_OF_SIGNED_ITEM,
            self.postcode_of[self.signed],
            {"kind": "neighbour", "neighbour": "Mme Martin, 2e étage"},
        )
        self.assertEqual(status, 422, refused)
        self.assertEqual(refused["code"], "rule_violation", refused)
        self.assertEqual(refused["field"], "choice", refused)
        self.assertIn("signature", refused["message"], refused)

        # The phone's next sync: the allowed choice is on the door screen, from the card; the
        # refused one left nothing to send.
        changed = sync(self.phone)
        self.assertIn("item:" + self.free, changed)
        self.assertNotIn("item:" + self.signed, changed)
        door = self.phone.door(self.free)
        self.assertIsNotNone(door.customer_choice)
        self.assertEqual(
            door.customer_choice.choice, tf.Choice.PICKUP_POINT(pickup_point=PICKUP_POINT)
        )
        self.assertEqual(door.customer_choice.made_by, "notice." + CARD_OF_FREE_ITEM)
        self.assertIsNone(door.choice_not_applicable)
        self.assertIsNone(self.phone.door(self.signed).customer_choice)

        # A choice the signed item allows goes through the same card: the refusal was the rule's,
        # not the card's.
        status, kept = choose_with_card(
            CARD_OF_SIGNED_ITEM, self.postcode_of[self.signed], {"kind": "hold"}
        )
        self.assertEqual(status, 200, kept)
        RECORDED["hold"] = [self.signed, kept["choice_id"]]
        sync(self.phone)
        self.assertEqual(self.phone.door(self.signed).customer_choice.choice, tf.Choice.HOLD())


def tearDownModule():
    with open(RESULTS, "w") as f:
        json.dump(RECORDED, f)


if __name__ == "__main__":
    unittest.main()
