#!/bin/bash
# Three 10k storms against one herald under perf record (plain, or jwt: an HS256 ?token= on every
# handshake). usage: stormperf.sh plain|jwt [HERALD_BINARY]; then
#   perf report -i /tmp/sperf_jwt.data --no-children -g none --sort dso,sym
cd "$(dirname "$0")/../../.."  # the repository
B=build/default; BIN=${2:-$B/server/herald}
SECRET=bench-secret-0123456789abcdef
extra=""; url=ws://127.0.0.1:19080/ws
if [ "$1" = jwt ]; then
  extra="--jwt-hs256-secret $SECRET --max-connections-per-user 0"
  TOKEN=$($B/client/cli/heraldctl token --secret $SECRET --sub bench-user --ttl 3600)
  url="ws://127.0.0.1:19080/ws?token=$TOKEN"
fi
ulimit -n 20000
$BIN --ws-listen 127.0.0.1:19080 --grpc-listen 127.0.0.1:19051 --log-level warn --max-connections 200000 --max-connections-per-ip 0 --api-rate 0 $extra > /tmp/herald_$1.log 2>&1 &
P=$!
sleep 1
perf record -F 4000 -g -o /tmp/sperf_$1.data -p $P 2>/dev/null & PP=$!; sleep 0.5
for i in 1 2 3; do
$B/bench/herald_load --url "$url" --pub-target 127.0.0.1:19051 --server-pids $P --label x --subs 10000 --threads 2 --src-count 4 --max-inflight 1000 --no-subscribe --publish none --connect-timeout 60 2>/dev/null | python3 -c 'import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(d["connect_per_s"], d["server_cpu_us_per_connect"])'
done
kill -INT $PP; wait $PP 2>/dev/null
kill $P; wait $P 2>/dev/null
