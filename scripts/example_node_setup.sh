#!/usr/bin/env bash
# Prepares a runnable copy of the Node example: scripts/example_node_setup.sh SRC_DIR DEST_DIR
# Copies the example's files (not node_modules) to DEST_DIR and runs `npm ci` there, from the
# committed package-lock.json only. Idempotent: npm runs again only when the lock file changed.
# Used by the examples tests (a ctest fixture), so the source tree stays free of node_modules.
set -euo pipefail
src="$1"
dest="$2"
mkdir -p "$dest"
for f in package.json package-lock.json connections.js watch_events.js; do
  cp "$src/$f" "$dest/$f"
done
stamp="$dest/node_modules/.herald-lock.sha256"
want=$(sha256sum "$dest/package-lock.json" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
cd "$dest"
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
echo "$want" > "$stamp"
