#!/bin/bash
# system-wide perf during a 9k x 10/s HTTP-fed fan-out, for herald or uws ($1)
cd /work/main
subs=9000; rate=10
if [ "$1" = uws ]; then
  node bench/uws_server.mjs 127.0.0.1:28105 > /tmp/u.out 2>&1 & HP=$!; sleep 1.5
  args="--url ws://127.0.0.1:28105/sub/{c} --raw --pub-target 127.0.0.1:28105 --publish http"
else
  build/default/server/herald --ws-listen 127.0.0.1:28101 --grpc-listen 127.0.0.1:28102 --log-level warn --max-connections 200000 --max-connections-per-ip 0 --api-rate 0 > /tmp/h.out 2>&1 & HP=$!; sleep 0.5
  args="--url ws://127.0.0.1:28101/ws --pub-target 127.0.0.1:28101 --publish http-api"
fi
build/default/bench/herald_load $args --pub-inflight 1 --subs $subs --threads 2 --src-count 4 --rate $rate --duration 8 --drain 2 --server-pids $HP --label x > /tmp/lg-$1.json &
LP=$!; sleep 3
perf record -F 4000 -a -g -o /tmp/perf.cmp.$1.data -- sleep 4 2>/dev/null >/dev/null
wait $LP
python3 -c "import json; r=json.load(open('/tmp/lg-$1.json')); print('$1', r['deliveries_per_s'], r['lost'])"
kill $HP; wait $HP 2>/dev/null
