#!/usr/bin/env bash
# Copies the pages' third-party files, at the versions package-lock.json pins, into
# server/src/web/vendor/, where the server embeds them (include_bytes!): the binary needs no
# network and no CDN. Today that is Leaflet (BSD-2-Clause): its script, its style sheet and its
# licence, with the source-map comment removed (the map is not shipped). Leaflet's marker images
# are not copied: the page draws its markers as SVG.
#
#   server/web-vendor/vendor.sh          # refresh the copies after changing package.json
#   server/web-vendor/vendor.sh --check  # fail if the copies differ from what the lock gives
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund >&2
out=../src/web/vendor/leaflet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dist=node_modules/leaflet/dist
sed '/^\/\/# sourceMappingURL=/d' "$dist/leaflet.js" >"$work/leaflet.js"
cp "$dist/leaflet.css" "$work/leaflet.css"
cp node_modules/leaflet/LICENSE "$work/LICENSE"
if [ "${1:-}" = "--check" ]; then
  # Names the files that differ (leaflet.js is one minified line: a diff of it helps nobody).
  if ! diff -rq "$work" "$out" >&2; then
    echo "the vendored files differ from what package-lock.json gives: run server/web-vendor/vendor.sh" >&2
    exit 1
  fi
  echo "vendored files match package-lock.json" >&2
else
  mkdir -p "$out"
  cp "$work"/* "$out"/
  echo "copied Leaflet $(node -p 'require("./node_modules/leaflet/package.json").version') into $out" >&2
fi
