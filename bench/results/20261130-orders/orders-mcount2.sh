#!/bin/bash
# orders-mcount2.sh BIN MODE BATCH: mallocs in the server per call over a whole grpc_bench run
B=/work/wt-orders/build/default
$1 --ws-listen 127.0.0.1:28080 --grpc-listen 127.0.0.1:28051 --log-level warn > /tmp/orders-h.out 2>&1 & P=$!
sleep 0.7
$B/bench/grpc_bench --target 127.0.0.1:28051 --mode $2 --batch $3 --threads 2 --connections 2 --window 32 --duration 1 --server-pids $P --label herald > /dev/null
perf stat -e probe_libc:malloc -x, -o /tmp/orders-mc2.stat -p $P & S=$!
sleep 0.3
$B/bench/grpc_bench --target 127.0.0.1:28051 --mode $2 --batch $3 --threads 2 --connections 2 --window 32 --duration 2 --server-pids $P --label herald > /tmp/orders-mc2.json
kill -INT $S; wait $S; kill $P; wait $P 2>/dev/null
python3 - "$1 $2/$3" <<'PY'
import json,sys
j=json.load(open('/tmp/orders-mc2.json'))
n=[l for l in open('/tmp/orders-mc2.stat') if 'probe_libc' in l][0].split(',')[0]
print(f"{sys.argv[1]}: calls {j['calls']} mallocs/call {int(n)/j['calls']:.1f}")
PY
