#!/bin/bash
# orders-abq.sh MODE BATCH ROUNDS BIN...: alternates binaries, prints calls/s and server CPU/call
mode=$1; batch=$2; rounds=$3; shift 3
B=/work/wt-orders/build/default
for r in $(seq $rounds); do for bin in "$@"; do
  $bin --ws-listen 127.0.0.1:28080 --grpc-listen 127.0.0.1:28051 --log-level warn > /tmp/orders-h.out 2>&1 & P=$!
  sleep 0.7
  $B/bench/grpc_bench --target 127.0.0.1:28051 --mode $mode --batch $batch --threads 2 --connections 2 --window 32 --duration 3 --server-pids $P --label herald | python3 -c "import json,sys; j=json.load(sys.stdin); print('$(basename $(dirname $bin))/$(basename $bin)', round(j['calls_per_s']), round(j['server_cpu_us_per_call'],1), round(j['client_cpu_s']*1e6/j['calls'],1), j['errors'])"
  kill $P; wait $P 2>/dev/null
done; done
