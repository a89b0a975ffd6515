#!/usr/bin/env bash
# Webhook benchmark (BENCHMARKS.md): EVENTS events (inserted with SQL, on SUBJECTS subjects) on a
# release server, delivered to the tests' receiver (tests/webhook_receiver.py, which verifies
# every signature with the `standardwebhooks` library) on this machine; timed from the
# subscription until every delivery is acknowledged.
#
#   tools/bench-webhooks.sh EVENTS SUBJECTS [sqlite|postgres]
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-20000}; subjects=${2:-1000}; backend=${3:-sqlite}
cargo build --release -q -p tournee-server
bin=target/release/tournee-server
work=$(mktemp -d)
trap 'kill $server $receiver 2>/dev/null || true; cp "$work/server.log" /tmp/bench-webhooks-server.log 2>/dev/null; rm -rf "$work"; [ "$backend" = postgres ] && psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS bench_hooks WITH (FORCE)" >/dev/null || true' EXIT
payload='{"upu_code":"EMG","reason":null,"action":null,"source":"import"}'
insert="INSERT INTO events (id, type, subject_kind, subject_id, occurred_ms, recorded_ms, payload)"
case $backend in
  sqlite)
    url="sqlite://$work/bench.db"
    $bin migrate --database-url "$url" >/dev/null 2>&1
    python3 - "$work/bench.db" "$events" "$subjects" "$payload" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1]); n, s = int(sys.argv[2]), int(sys.argv[3])
db.executemany("INSERT INTO events (id, type, subject_kind, subject_id, occurred_ms, recorded_ms, payload) VALUES (?, 'item.arrived', 'item', ?, 0, 0, ?)",
               ((f"bench-{i}", f"RR{i % s:09d}FR", sys.argv[4]) for i in range(n)))
db.commit()
PY
    ;;
  postgres)
    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS bench_hooks WITH (FORCE)" >/dev/null
    psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE bench_hooks" >/dev/null
    url="postgres://postgres@127.0.0.1:5432/bench_hooks"
    $bin migrate --database-url "$url" >/dev/null 2>&1
    psql -q -h 127.0.0.1 -U postgres -d bench_hooks -c "$insert SELECT 'bench-' || i, 'item.arrived', 'item', 'RR' || lpad((i % $subjects)::text, 9, '0') || 'FR', 0, 0, '$payload' FROM generate_series(0, $events - 1) i" >/dev/null
    ;;
esac
python3 tests/webhook_receiver.py --secret-file "$work/secret" --out "$work/deliveries.jsonl" > "$work/receiver.out" &
receiver=$!
for _ in $(seq 1 50); do [ -s "$work/receiver.out" ] && break; sleep 0.1; done
port=$(head -1 "$work/receiver.out")
export TOURNEE_JWT_SECRET=bench-secret-of-at-least-32-bytes-long-000 TOURNEE_RATE_PER_PRINCIPAL=0 TOURNEE_RATE_PER_ADDRESS=0
$bin serve --listen 127.0.0.1:18097 --database-url "$url" --webhook-poll-ms 100 2>"$work/server.log" &
server=$!
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18097/readyz >/dev/null && break; sleep 0.2; done
token=$($bin token --role integration --subject bench)
python3 - "$token" "$port" "$events" "$backend" "$subjects" "$work/secret" <<'PY'
import json, os, sys, time, urllib.request
token, port, expected, backend, subjects, secret_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
def call(method, path, body=None):
    request = urllib.request.Request("http://127.0.0.1:18097" + path, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(request).read())
start = time.perf_counter()
created = call("POST", "/v1/webhooks", {"url": f"http://127.0.0.1:{port}/hooks"})
with open(secret_file + ".partial", "w") as f:
    f.write(created["secret"])
os.rename(secret_file + ".partial", secret_file)
while True:
    status = call("GET", "/v1/webhooks/" + created["id"])
    if status["deliveries"]["delivered"] >= expected:
        break
    time.sleep(0.2)
elapsed = time.perf_counter() - start
print(f"{backend} webhooks: {expected} deliveries over {subjects} subjects in {elapsed:.1f} s = {expected / elapsed:,.0f} deliveries/s")
PY
