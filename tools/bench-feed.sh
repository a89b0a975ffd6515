#!/usr/bin/env bash
# Feed benchmark (BENCHMARKS.md): a feed of EVENTS events (inserted with SQL), read whole through
# a release server's `GET /v1/feed?limit=1000` by a client that follows `next`, timed.
#
#   tools/bench-feed.sh EVENTS [sqlite|postgres]
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-1000000}; backend=${2:-sqlite}
cargo build --release -q -p tournee-server
bin=target/release/tournee-server
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"; [ "$backend" = postgres ] && psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS bench_feed WITH (FORCE)" >/dev/null || true' EXIT
payload='{"upu_code":"EMG","reason":null,"action":null,"source":"import"}'
case $backend in
  sqlite)
    url="sqlite://$work/bench.db"
    $bin migrate --database-url "$url" >/dev/null 2>&1
    python3 - "$work/bench.db" "$events" "$payload" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1]); n = int(sys.argv[2])
db.execute("""WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?)
INSERT INTO events (id, type, subject_kind, subject_id, occurred_ms, recorded_ms, payload)
SELECT 'bench-' || i, 'item.arrived', 'item', 'RR' || printf('%09d', i) || 'FR', 1795424400000 + i, 1795424400000 + i, ? FROM s""", (n, sys.argv[3]))
db.commit()
PY
    ;;
  postgres)
    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS bench_feed WITH (FORCE)" >/dev/null
    psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE bench_feed" >/dev/null
    url="postgres://postgres@127.0.0.1:5432/bench_feed"
    $bin migrate --database-url "$url" >/dev/null 2>&1
    # In 10 transactions, so the feed orders by several transaction ids.
    for k in $(seq 0 9); do
      psql -q -h 127.0.0.1 -U postgres -d bench_feed -c "INSERT INTO events (id, type, subject_kind, subject_id, occurred_ms, recorded_ms, payload) SELECT 'bench-' || i, 'item.arrived', 'item', 'RR' || lpad(i::text, 9, '0') || 'FR', 1795424400000 + i, 1795424400000 + i, '$payload' FROM generate_series($k * $events / 10 + 1, ($k + 1) * $events / 10) i" >/dev/null
    done
    ;;
esac
export TOURNEE_JWT_SECRET=bench-secret-of-at-least-32-bytes-long-000
# The per-principal and per-address rate limits off: at the defaults (20 and 100 requests/s) one
# consumer reads at most 20 pages of 1,000 events a second, and the figure would be the limit's.
export TOURNEE_RATE_PER_PRINCIPAL=0 TOURNEE_RATE_PER_ADDRESS=0
$bin serve --listen 127.0.0.1:18098 --database-url "$url" 2>"$work/server.log" &
server=$!
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18098/readyz >/dev/null && break; sleep 0.2; done
token=$($bin token --role integration --subject bench)
python3 - "$token" "$events" "$backend" <<'PY'
import json, sys, time, urllib.request
token, expected, backend = sys.argv[1], int(sys.argv[2]), sys.argv[3]
after, seen, ids = None, 0, set()
start = time.perf_counter()
while True:
    url = "http://127.0.0.1:18098/v1/feed?limit=1000" + (f"&after={after}" if after else "")
    request = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
    page = json.loads(urllib.request.urlopen(request).read())
    seen += len(page["events"])
    after = page["next"]
    if not page["more"]:
        break
elapsed = time.perf_counter() - start
assert seen == expected, (seen, expected)
print(f"{backend} feed: {seen} events read in {elapsed:.1f} s = {seen / elapsed:,.0f} events/s")
PY
echo "$backend server peak memory: $(grep VmHWM /proc/$server/status)"
