#!/bin/bash
# STORMS (default 1) 10k storms against one fresh herald on 127.0.0.1:19080, with (jwt) or without
# (plain) an HS256 ?token=; prints connects/s and server CPU per connect for each. Run as:
#   for i in 1 2 3 4; do bash pair.sh plain; bash pair.sh jwt; done
# With `perf`, the whole run is recorded (perf record -F PERF_FREQ, default 2000) into
# /tmp/perf_<plain|jwt>.data; the 12-03 13:50 profile: STORMS=3 PERF_FREQ=4000 bash pair.sh jwt perf
# usage: pair.sh plain|jwt [perf]
cd /work/main
B=build/default
SECRET=bench-secret-0123456789abcdef
extra=""; url=ws://127.0.0.1:19080/ws
if [ "$1" = jwt ]; then
  extra="--jwt-hs256-secret $SECRET --max-connections-per-user 0"
  TOKEN=$($B/client/cli/heraldctl token --secret $SECRET --sub bench-user --ttl 3600)
  url="ws://127.0.0.1:19080/ws?token=$TOKEN"
fi
ulimit -n 20000
${BIN:-$B/server/herald} --ws-listen 127.0.0.1:19080 --grpc-listen 127.0.0.1:19051 --log-level warn --max-connections 200000 --max-connections-per-ip 0 --api-rate 0 $extra > /tmp/herald_$1.log 2>&1 &
P=$!
sleep 1
if [ "$2" = perf ]; then perf record -F "${PERF_FREQ:-2000}" --call-graph dwarf,16384 -o /tmp/perf_$1.data -p $P 2>/dev/null & PP=$!; sleep 0.5; fi
for _ in $(seq "${STORMS:-1}"); do
  $B/bench/herald_load --url "$url" --pub-target 127.0.0.1:19051 --server-pids $P --label x --subs 10000 --threads 2 --src-count 4 --max-inflight 1000 --no-subscribe --publish none --connect-timeout 60 2>/dev/null | python3 -c 'import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print({k:v for k,v in d.items() if "connect" in k})'
done
[ -n "$PP" ] && kill -INT $PP && wait $PP 2>/dev/null
kill $P; wait $P 2>/dev/null
