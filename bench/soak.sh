#!/usr/bin/env bash
# Soak and faults (issue "On the open internet", item 7): one herald, healthy subscribers checking
# every publication while orders flow over the HTTP API, mixed with connection churn ending in
# resets, silent half-open sockets, readers that stop reading, oversize / malformed / deeply
# nested / invalid UTF-8 frames, frame-rate offenders and slowloris handshakes; /healthz polled
# throughout. Prints a JSON report (also kept in $OUT) and fails when a healthy subscriber lost,
# skipped or duplicated a publication, /healthz failed or took over 1 s, a publish failed, the
# fd count did not return to its baseline, a refusal was not counted, or the drain did not exit 0.
#
#   bench/soak.sh [SECONDS]      (default 60; bounded: the whole run takes SECONDS + ~40 s)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
OUT=${OUT:-bench/results/soak-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
scripts/npm-ci.sh
scripts/build.sh default herald >/dev/null
tmp=$(mktemp -d)
herald_pid=""
cleanup() {
  [ -n "$herald_pid" ] && kill -KILL "$herald_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# Short liveness and slow-consumer settings so that the offenders are dropped within the run.
build/default/server/herald --ws-listen 127.0.0.1:0 --grpc-listen 127.0.0.1:0 --threads 2 \
  --ping-interval-ms 2000 --idle-timeout-ms 6000 --max-send-buffer-bytes 262144 \
  --log-level warn >"$tmp/out" 2>"$OUT/herald.log" &
herald_pid=$!
for _ in $(seq 200); do grep -q '^ws listening on ' "$tmp/out" && break; sleep 0.05; done
ws=$(sed -n 's/^ws listening on //p' "$tmp/out")
[ -n "$ws" ] || { echo "soak: herald did not start" >&2; cat "$OUT/herald.log" >&2; exit 1; }

status=0
node bench/soak.mjs "$ws" "$herald_pid" "$seconds" >"$OUT/report.json" || status=$?
cat "$OUT/report.json"
start=$(date +%s%N)
kill -TERM "$herald_pid"
code=0
wait "$herald_pid" || code=$?
herald_pid=""
echo "soak: drain exit code $code in $(( ($(date +%s%N) - start) / 1000000 )) ms" >&2
[ "$code" -eq 0 ] || status=1
exit "$status"
