#!/usr/bin/env bash
# Installs what the browser test needs, once: Debian's chromium (as root, from the package
# registry) and playwright-core from tests/browser/package-lock.json. No browser is downloaded
# by npm: playwright-core drives the system's chromium.
set -euo pipefail
cd "$(dirname "$0")"
chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's chromium for the browser test" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends chromium >&2 \
      || { apt-get update >&2 && apt-get install -y --no-install-recommends chromium >&2; }
  else
    echo "the browser test needs Chromium at $chromium: install Debian's 'chromium' package (as root: apt-get install chromium) or set CHROMIUM" >&2
    exit 1
  fi
fi
if [ ! -f node_modules/playwright-core/package.json ]; then
  command -v npm >/dev/null || { echo "the browser test needs Node.js and npm" >&2; exit 1; }
  npm ci --no-audit --no-fund >&2
fi
