#!/usr/bin/env bash
# Installs the JavaScript test tooling of package.json (ws, playwright-core) into node_modules
# with `npm ci`, exactly as package-lock.json pins it; skipped when node_modules already matches
# the lock file. playwright-core never downloads a browser: the tests use Debian's chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=node_modules/.herald-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
npm ci --no-audit --no-fund --loglevel=error
echo "$want" >"$stamp"
