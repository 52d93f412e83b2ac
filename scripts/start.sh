#!/usr/bin/env bash
# Quick start: installs what is missing, builds, runs herald with its embedded defaults
# (WebSocket + demo pages on 127.0.0.1:8080, gRPC on 127.0.0.1:50051) and, beside it,
# `heraldctl simulate` publishing orders for store 42, so the demo board is alive at once.
# Extra arguments go to herald, e.g.  scripts/start.sh --ws-listen 0.0.0.0:8080
# SIMULATE=0 scripts/start.sh starts herald alone. Ctrl-C stops both (herald drains).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh default herald heraldctl
bin=build/default/server/herald
ctl=build/default/client/cli/heraldctl
run_dir=build/default/run
mkdir -p "$run_dir"
: >"$run_dir/herald.out"

# The chat demo's room: channels (chat.html): browsers publish there and see who is here —
# unless the arguments set these flags themselves.
demo_flags=()
for flag in --presence-prefixes --join-leave-prefixes --client-publish-prefixes; do
  case " $* " in *" $flag "* | *" $flag="*) ;; *) demo_flags+=("$flag" room:) ;; esac
done
# herald's logs go to this terminal; its two "listening" lines to a file we wait on.
"$bin" "${demo_flags[@]}" "$@" >"$run_dir/herald.out" &
herald_pid=$!
sim_pid=""
stop() {
  trap - EXIT INT TERM
  [ -n "$sim_pid" ] && kill -INT "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null || true
  kill -TERM "$herald_pid" 2>/dev/null && wait "$herald_pid" 2>/dev/null || true
}
trap stop EXIT
trap 'stop; exit 130' INT TERM

deadline=$((SECONDS + 30))
until grep -q '^grpc listening on ' "$run_dir/herald.out"; do
  if ! kill -0 "$herald_pid" 2>/dev/null; then
    wait "$herald_pid" || code=$?
    echo "start.sh: herald exited (code ${code:-0}) before listening" >&2
    exit "${code:-1}"
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "start.sh: herald did not start listening within 30 s" >&2
    exit 1
  fi
  sleep 0.1
done
ws=$(sed -n 's/^ws listening on //p' "$run_dir/herald.out")
grpc=$(sed -n 's/^grpc listening on //p' "$run_dir/herald.out")

if [ "${SIMULATE:-1}" != "0" ]; then
  "$ctl" --server "$grpc" simulate --stores 42,17 --rate 0.4 --step 5 >"$run_dir/simulate.log" 2>&1 &
  sim_pid=$!
  simulating="heraldctl simulate is publishing orders for stores 42 and 17 (log: $run_dir/simulate.log)"
else
  simulating="SIMULATE=0: no simulated orders"
fi

cat <<INFO

Herald is running. $simulating
  Demo:       http://$ws/                  (index of the demo pages)
              http://$ws/board.html?store=42   merchant order board
              http://$ws/track.html?order=ID    customer tracking (ids are on the board)
              http://$ws/worker.html?queue=couriers
              http://$ws/chat.html?room=lobby   chat room (open it in two tabs)
  WebSocket:  ws://$ws/ws    herald.js: http://$ws/herald.js
  Health:     http://$ws/healthz    Metrics: http://$ws/metrics
  gRPC:       $grpc (herald.v1.Broker; reflection on, so grpcurl works)
  HTTP API:   POST http://$ws/api/v1/<Method> (the same API as JSON; docs/api.md)
  Admin CLI:  $ctl --server $grpc conns
              $ctl --server $grpc publish-order --id o-1 --version 1 --status created --store 42
Stop with Ctrl-C (stops the simulator, then herald drains).

INFO
wait "$herald_pid"
