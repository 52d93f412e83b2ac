#!/usr/bin/env bash
# CI smoke run of the benchmark suite (ctest -L bench): herald only, 50 subscribers, 2 s at
# 200 publications/s through gRPC, 1 s through pipelined HTTP, then 1 s each of PublishStream,
# unary PublishOrder and unary Publish with data_json. Fails when a subscriber cannot
# connect, a publication is lost, or a tool breaks. Figures are not checked: CI machines vary.
#   bench/smoke.sh HERALD_BIN HERALD_LOAD_BIN GRPC_BENCH_BIN
set -euo pipefail
herald="$1" load="$2" grpc_bench="$3"
dir=$(mktemp -d)
"$herald" --ws-listen 127.0.0.1:0 --grpc-listen 127.0.0.1:0 --log-level warn >"$dir/out" 2>"$dir/err" &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 200); do
  grep -q '^grpc listening' "$dir/out" && break
  sleep 0.05
done
ws=$(sed -n 's/^ws listening on //p' "$dir/out")
grpc=$(sed -n 's/^grpc listening on //p' "$dir/out")
[ -n "$ws" ] && [ -n "$grpc" ] || { echo "herald did not start"; cat "$dir/err"; exit 1; }

result=$("$load" --url "ws://$ws/ws" --subs 50 --threads 2 --src-count 0 --publish grpc \
  --pub-target "$grpc" --rate 200 --duration 2 --drain 3 --server-pids "$pid" --label smoke)
echo "$result"
check() { echo "$result" | grep -q "$1" || { echo "smoke: expected $1"; exit 1; }; }
check '"ready":50,'
check '"connect_failed":0,'
check '"lost":0,'
check '"duplicates":0,'
echo "$result" | grep -q '"deliveries":0,' && { echo "smoke: nothing delivered"; exit 1; }

# The like-for-like publisher: HTTP POST /api/v1/Publish on one keep-alive connection,
# pipelined (--api-rate 0 is not needed at 200/s).
result=$("$load" --url "ws://$ws/ws" --subs 10 --threads 1 --src-count 0 --publish http-api \
  --pub-inflight 4 --pub-target "$ws" --rate 200 --duration 1 --drain 3 --label smoke-http)
echo "$result"
check '"lost":0,'
check '"publish_errors":0,'
check '"pub_connects":1,'

for mode in "stream-publish --batch 8" "unary-order --window 4" "unary-publish --data json"; do
  # shellcheck disable=SC2086
  out=$("$grpc_bench" --target "$grpc" --mode $mode --threads 1 --connections 1 \
    --duration 1 --server-pids "$pid" --label smoke)
  echo "$out"
  echo "$out" | grep -q '"errors":0,' || { echo "smoke: $mode: errors"; exit 1; }
  echo "$out" | grep -q '"calls":0,' && { echo "smoke: $mode: no calls"; exit 1; }
done
echo "smoke: ok"
