#!/bin/bash
# usage: ab2.sh mode N  (env A_BIN,B_BIN,A_ENV,B_ENV): alternates A and B, 1 storm each, prints rate/p50/cpu
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
for i in $(seq $2); do for side in A B; do
  bin_var=${side}_BIN; env_var=${side}_ENV
  env ${!env_var} ${!bin_var} --ws-listen 127.0.0.1:19080 --grpc-listen 127.0.0.1:19051 --log-level warn --max-connections 200000 --max-connections-per-ip 0 --api-rate 0 $extra > /tmp/herald_ab.log 2>&1 &
  P=$!; sleep 0.7
  $B/bench/herald_load --url "$url" --pub-target 127.0.0.1:19051 --server-pids $P --label x --subs 10000 --threads 2 --src-count 4 --max-inflight 1000 --no-subscribe --publish none --connect-timeout 60 2>/dev/null | python3 -c "import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print('$side', int(d['connect_per_s']), round(d['handshake_latency']['p50_us']/1000,1), d['server_cpu_us_per_connect'])"
  kill $P; wait $P 2>/dev/null
done; done
