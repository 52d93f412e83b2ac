#!/bin/bash
# perf of herald (JWT) over several connect storms
cd /work/main
B=build/default
secret=bench-secret-0123456789abcdef
TOKEN=$($B/client/cli/heraldctl token --secret $secret --sub bench-user --ttl 3600)
$B/server/herald --ws-listen 127.0.0.1:28101 --grpc-listen 127.0.0.1:28102 --log-level warn --max-connections 200000 --max-connections-per-ip 0 > /tmp/h.out 2>&1 &
HP=$!
sleep 1
perf record -F 2000 --call-graph dwarf,16384 -p $HP -o /tmp/perf.plain.data 2>/dev/null &
PP=$!
sleep 0.5
for i in 1 2; do
  $LOADBIN --url "ws://127.0.0.1:28101/ws" --pub-target 127.0.0.1:28102 --publish none --subs 10000 --threads 2 --src-count 4 --max-inflight 1000 --no-subscribe --connect-timeout 60 --server-pids $HP --label x | python3 -c "import json,sys; r=json.load(sys.stdin); print(r['connect_per_s'], r['server_cpu_us_per_connect'])"
done
kill -INT $PP; wait $PP
kill $HP
