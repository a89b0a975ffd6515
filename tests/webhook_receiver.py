"""A partner's webhook receiver for tests/webhooks.rs: verifies every delivery with the PyPI
`standardwebhooks` package (the Standard Webhooks reference library), answers 204 to a valid
one and 400 to one that does not verify, and appends every delivery it got as a JSON line
({"answer", "id", "subject", "type", "cursor"}, only "answer" and "webhook_id" when it did
not verify) to --out.

    python3 webhook_receiver.py --secret-file FILE --out deliveries.jsonl
        [--fail-every-other] [--always-fail] [--delay-ms N]

The secret (whsec_...) is read from --secret-file at each request (503 while the file is
missing), so the test can subscribe the receiver's URL first and hand it the secret after.
It listens on 127.0.0.1, port 0, and prints the port on the first line of stdout.
--fail-every-other answers 500 to every other valid delivery; --always-fail answers 500 to
every one; --delay-ms waits before answering.
"""

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--secret-file", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--fail-every-other", action="store_true")
    parser.add_argument("--always-fail", action="store_true")
    parser.add_argument("--delay-ms", type=int, default=0)
    args = parser.parse_args()
    lock = threading.Lock()
    valid = [0]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            if args.delay_ms:
                time.sleep(args.delay_ms / 1000)
            try:
                with open(args.secret_file, encoding="utf-8") as f:
                    webhook = Webhook(f.read().strip())
            except OSError:
                self.answer(503, "no secret yet")
                return
            try:
                event = webhook.verify(body, dict(self.headers.items()))
                if event["id"] != self.headers.get("webhook-id"):
                    raise WebhookVerificationError("webhook-id is not the event's id")
            except WebhookVerificationError as e:
                self.record({"answer": 400, "webhook_id": self.headers.get("webhook-id")})
                self.answer(400, str(e))
                return
            with lock:
                valid[0] += 1
                fail = args.always_fail or (args.fail_every_other and valid[0] % 2 == 1)
            self.record(
                {
                    "answer": 500 if fail else 204,
                    "id": event["id"],
                    "subject": event["subject"]["kind"] + ":" + event["subject"]["id"],
                    "type": event["type"],
                    "cursor": event["cursor"],
                }
            )
            self.answer(500 if fail else 204, "")

        def record(self, line):
            with lock:
                with open(args.out, "a", encoding="utf-8") as out:
                    out.write(json.dumps(line) + "\n")

        def answer(self, status, text):
            data = text.encode()
            self.send_response(status)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_):
            pass

    # A listen backlog of 128 rather than socketserver's 5: the server sends up to 32
    # deliveries at once, and connections beyond the backlog wait a second for a SYN retry.
    class Server(ThreadingHTTPServer):
        request_queue_size = 128

    server = Server(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
