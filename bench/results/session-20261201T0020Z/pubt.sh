#!/bin/bash
# herald publish rate and CPU/publish with extra args; INF in flight
cd /work/main
B=build/default
$B/server/herald --ws-listen 127.0.0.1:28101 --grpc-listen 127.0.0.1:28102 --log-level warn --api-rate 0 "$@" > /tmp/h.out 2>&1 &
HP=$!
sleep 0.7
$B/bench/herald_load --url ws://127.0.0.1:28101/ws --pub-target 127.0.0.1:28101 --publish http-api --pub-inflight ${INF:-16} --subs ${SUBS:-1} --threads 1 --src-count 1 --rate 0 --duration 4 --drain 2 --server-pids $HP --label x | python3 -c "import json,sys; r=json.load(sys.stdin); print('$*', round(r['publish_rate']), 'lost', r['lost'], 'cpu/pub', round(r['server_cpu_us_per_delivery']*r['deliveries_per_s']/max(r['publish_rate'],1),2))"
kill $HP; wait $HP 2>/dev/null
