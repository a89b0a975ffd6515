#!/usr/bin/env bash
# Import benchmark (BENCHMARKS.md): a release server on a fresh database, then delivery points
# and items from NDJSON through its API (`tournee-server import --server`), timed, with the
# server's peak resident memory (VmHWM).
#
#   tools/bench-import.sh POINTS ITEMS_PER_POINT [sqlite|postgres]
#
# PostgreSQL: the local server (postgres://postgres@127.0.0.1:5432), a database created and
# dropped by the script.
set -euo pipefail
cd "$(dirname "$0")/.."
points=${1:-100000}; per_point=${2:-2}; backend=${3:-sqlite}
cargo build --release -q -p tournee-server
bin=target/release/tournee-server
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"; [ "$backend" = postgres ] && psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS bench_import WITH (FORCE)" >/dev/null || true' EXIT
python3 tools/town.py "$work/town" --points "$points" --items-per-point "$per_point" --postmen 10 --prefix bench
case $backend in
  sqlite) url="sqlite://$work/bench.db" ;;
  postgres)
    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS bench_import WITH (FORCE)" >/dev/null
    psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE bench_import" >/dev/null
    url="postgres://postgres@127.0.0.1:5432/bench_import" ;;
esac
export TOURNEE_JWT_SECRET=bench-secret-of-at-least-32-bytes-long-000
$bin serve --listen 127.0.0.1:18099 --database-url "$url" --import-max-bytes 4000000000 2>"$work/server.log" &
server=$!
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18099/readyz >/dev/null && break; sleep 0.2; done
token=$($bin token --role integration --subject bench)
for kind in delivery-points items; do
  lines=$(wc -l < "$work/town/$kind.ndjson")
  start=$(date +%s.%N)
  $bin import "$kind" "$work/town/$kind.ndjson" --server http://127.0.0.1:18099 --token "$token" 2>&1 | tail -1
  end=$(date +%s.%N)
  python3 -c "import sys; l,s,e=int(sys.argv[1]),float(sys.argv[2]),float(sys.argv[3]); print(f'$backend $kind: {l} lines in {e-s:.1f} s = {l/(e-s):,.0f} lines/s')" "$lines" "$start" "$end"
done
echo "$backend server peak memory: $(grep VmHWM /proc/$server/status)"
