#!/usr/bin/env bash
# Herald nodes on one Redis against one node with the memory engine, in the same run.
#
#   bench/cluster.sh fanout    3 nodes x 6k subscribers (publishing on one node) against one memory
#                              node with the same 18k subscribers, alternating, REPEAT times
#   bench/cluster.sh many      5 nodes x 19k subscribers (95k connections, one generator process
#                              per node), PUBLICATIONS publications on node 1 reaching all of them
#   bench/cluster.sh fanout many
#
# Environment: OUT=DIR (default bench/results/cluster-<UTC time>), REPEAT (fanout rounds,
# default 2), RATES (msg/s per channel, default "5 20"), DURATION (s, default 5), NODES_MANY
# (default 5), SUBS_MANY (per node, default 19000), PUBLICATIONS (default 5), BASE_PORT (default
# 28400: nodes use BASE_PORT+2k for WebSocket and +2k+1 for gRPC, Redis BASE_PORT+99).
# Server CPU is every node's plus redis-server's; loss, duplicates and order are checked per
# subscriber; latency is publish -> delivery (one machine's monotonic clock).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
[ $# -gt 0 ] || { sed -n '2,15p' "$0"; exit 2; }
scripts/deps.sh redis-server python3
scripts/build.sh default herald herald_load >/dev/null

bin=$root/build/default
HERALD=${HERALD:-$bin/server/herald}
LOAD=$bin/bench/herald_load
OUT=${OUT:-bench/results/cluster-$(date -u +%Y%m%dT%H%M%SZ)}
REPEAT=${REPEAT:-2} RATES=${RATES:-"5 20"} DURATION=${DURATION:-5}
NODES_MANY=${NODES_MANY:-5} SUBS_MANY=${SUBS_MANY:-19000} PUBLICATIONS=${PUBLICATIONS:-5}
BASE_PORT=${BASE_PORT:-28400}
REDIS_PORT=$((BASE_PORT + 99))
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
ulimit -n 20000
tmp=$(mktemp -d)
pids=()
redis_pid=""

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

wait_port() {  # port
  for _ in $(seq 600); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listens on 127.0.0.1:$1" >&2
  return 1
}

stop_all() {
  for p in "${pids[@]}" $redis_pid; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}" $redis_pid; do
    for _ in $(seq 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  pids=() redis_pid=""
}
trap 'stop_all; rm -rf "$tmp"' EXIT

start_redis() {
  redis-server --port $REDIS_PORT --bind 127.0.0.1 --save '' --appendonly no \
    --maxclients 10000 >"$tmp/redis.log" 2>&1 &
  redis_pid=$!
  wait_port $REDIS_PORT
}

ws_port() { echo $((BASE_PORT + 2 * $1)); }
grpc_port() { echo $((BASE_PORT + 2 * $1 + 1)); }

start_node() {  # index engine
  local i=$1 engine=$2 args=()
  [ "$engine" = redis ] && args=(--engine redis --redis-url "redis://127.0.0.1:$REDIS_PORT/0"
    --node "n$i")
  "$HERALD" --ws-listen "127.0.0.1:$(ws_port "$i")" --grpc-listen "127.0.0.1:$(grpc_port "$i")" \
    --log-level warn --max-connections 200000 --max-connections-per-ip 0 "${args[@]}" \
    >"$tmp/node$i.log" 2>&1 &
  pids+=($!)
  wait_port "$(grpc_port "$i")"
}

record() {  # scenario tags-json json
  echo "{\"scenario\":\"$1\",$2,${3#\{}" | tee -a "$OUT/results.jsonl" >&2
}

scenario_fanout() {
  local subs=18000
  for round in $(seq "$REPEAT"); do
    for rate in $RATES; do
      for setup in memory redis; do
        local ports server_pids
        if [ $setup = memory ]; then
          start_node 1 memory
          ports=$(ws_port 1) server_pids=${pids[0]}
        else
          start_redis
          for i in 1 2 3; do start_node $i redis; done
          ports=$(ws_port 1),$(ws_port 2),$(ws_port 3)
          server_pids=$(IFS=,; echo "${pids[*]},$redis_pid")
        fi
        log "fanout round $round $setup: $subs subscribers on ports $ports, $rate msg/s"
        local json
        json=$("$LOAD" --url "ws://127.0.0.1:$(ws_port 1)/ws" --ports "$ports" --subs $subs \
          --threads 2 --src-count 4 --max-inflight 1000 --connect-timeout 120 \
          --publish grpc-stream --pub-target "127.0.0.1:$(grpc_port 1)" --rate "$rate" \
          --duration "$DURATION" --drain 5 --server-pids "$server_pids" --label "$setup")
        record fanout "\"setup\":\"$setup\",\"round\":$round,\"rate\":$rate" "$json"
        stop_all
      done
    done
  done
}

scenario_many() {
  local n=$NODES_MANY
  start_redis
  for i in $(seq "$n"); do start_node "$i" redis; done
  log "many: $n nodes x $SUBS_MANY subscribers"
  local gens=() ready_files=()
  for i in $(seq 2 "$n"); do
    ready_files+=("$tmp/ready$i")
    "$LOAD" --url "ws://127.0.0.1:$(ws_port "$i")/ws" --subs "$SUBS_MANY" --threads 1 \
      --src-count 4 --max-inflight 500 --connect-timeout 300 --expect "$PUBLICATIONS" \
      --duration $((PUBLICATIONS + 300)) --drain 10 --ready-file "$tmp/ready$i" \
      --server-pids "${pids[$((i - 1))]}" --label "n$i" >"$tmp/gen$i.json" &
    gens+=($!)
  done
  local start=$SECONDS
  "$LOAD" --url "ws://127.0.0.1:$(ws_port 1)/ws" --subs "$SUBS_MANY" --threads 1 --src-count 4 \
    --max-inflight 500 --connect-timeout 300 --start-after "$(IFS=,; echo "${ready_files[*]}")" \
    --publish grpc --pub-target "127.0.0.1:$(grpc_port 1)" --rate 1 --duration "$PUBLICATIONS" \
    --drain 10 --server-pids "${pids[0]},$redis_pid" --label n1 >"$tmp/gen1.json"
  for g in "${gens[@]}"; do wait "$g"; done
  log "many: done in $((SECONDS - start)) s"
  for i in $(seq "$n"); do
    record many "\"node\":$i,\"nodes\":$n" "$(cat "$tmp/gen$i.json")"
  done
  stop_all
}

for sc in "$@"; do "scenario_$sc"; done
python3 - "$OUT/results.jsonl" <<'PY' | tee "$OUT/report.md"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
fan = [r for r in rows if r["scenario"] == "fanout"]
if fan:
    print("### Cross-node fan-out: 18k subscribers, one memory node vs 3 Redis nodes x 6k\n")
    print("| msg/s | setup | deliveries/s | lost | dup | reord | CPU µs/delivery | p50 µs | p99 µs |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in fan:
        print(f"| {r['rate']} | {r['setup']} (round {r['round']}) | {r['deliveries_per_s']:,.0f} | "
              f"{r['lost']} | {r['duplicates']} | {r['reordered']} | "
              f"{r['server_cpu_us_per_delivery']:.3f} | {r['latency']['p50_us']:,.0f} | "
              f"{r['latency']['p99_us']:,.0f} |")
    print()
    print("| msg/s | CPU per delivery, redis ÷ memory (median of rounds) | p99, redis ÷ memory |")
    print("|---|---|---|")
    for rate in sorted({r["rate"] for r in fan}):
        def med(setup, f):
            v = [f(r) for r in fan if r["rate"] == rate and r["setup"] == setup]
            return statistics.median(v) if v else float("nan")
        cpu = med("redis", lambda r: r["server_cpu_us_per_delivery"]) / med(
            "memory", lambda r: r["server_cpu_us_per_delivery"])
        p99 = med("redis", lambda r: r["latency"]["p99_us"]) / med(
            "memory", lambda r: r["latency"]["p99_us"])
        print(f"| {rate} | {cpu:.2f} | {p99:.2f} |")
    print()
many = [r for r in rows if r["scenario"] == "many"]
if many:
    print(f"### {len(many)} nodes on one Redis, every subscriber on one channel\n")
    print("| node | ready | expected | delivered | lost | dup | p50 µs | p99 µs | max µs | RSS/conn B |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in many:
        print(f"| n{r['node']} | {r['ready']:,} | {r['expected']:,} | {r['deliveries']:,} | "
              f"{r['lost']} | {r['duplicates']} | {r['latency']['p50_us']:,.0f} | "
              f"{r['latency']['p99_us']:,.0f} | {r['latency']['max_us']:,.0f} | "
              f"{r['server_rss_per_conn']:,.0f} |")
    print(f"\ntotal ready {sum(r['ready'] for r in many):,}, delivered "
          f"{sum(r['deliveries'] for r in many):,} of {sum(r['expected'] for r in many):,}")
PY
