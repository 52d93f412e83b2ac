#!/bin/bash
# one-in-flight HTTP publishes: herald with $@ extra args
cd /work/main
B=build/default
${HBIN:-$B/server/herald} --ws-listen 127.0.0.1:28101 --grpc-listen 127.0.0.1:28102 --log-level warn --api-rate 0 "$@" > /tmp/h.out 2>&1 &
HP=$!
sleep 1
$B/bench/herald_load --url ws://127.0.0.1:28101/ws --pub-target 127.0.0.1:28101 --publish http-api --pub-inflight ${INF:-1} --subs 1 --threads 1 --src-count 1 --rate 0 --duration 4 --drain 2 --server-pids $HP --label x | python3 -c "import json,sys; r=json.load(sys.stdin); print({k:r[k] for k in r if k in ('publish_rate','deliveries_per_s','server_cpu_us_per_delivery','lost','publish_errors')})"
kill $HP; wait $HP 2>/dev/null
