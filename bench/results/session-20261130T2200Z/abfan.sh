#!/bin/bash
# alternate two herald builds: HTTP-fed fan-out at fixed rate; CPU per delivery and p99
cd /work/main
new=$PWD/build/default/server/herald; old=$1; rounds=${2:-3}; subs=${SUBS:-9000}; rate=${RATE:-10}
for r in $(seq $rounds); do for w in new old; do
  bin=$new; [ $w = old ] && bin=$old
  $bin --ws-listen 127.0.0.1:28101 --grpc-listen 127.0.0.1:28102 --log-level warn --max-connections 200000 --max-connections-per-ip 0 --api-rate 0 > /tmp/h.out 2>&1 &
  HP=$!; sleep 0.5
  echo "$w $(build/default/bench/herald_load --url ws://127.0.0.1:28101/ws --pub-target 127.0.0.1:28101 --publish http-api --pub-inflight 1 --subs $subs --threads 2 --src-count 4 --rate $rate --duration 6 --drain 2 --server-pids $HP --label x | python3 -c "import json,sys; r=json.load(sys.stdin); print(r['lost'], round(r['deliveries_per_s']), r['server_cpu_us_per_delivery'], round(r['latency']['p99_us']/1000,1))")"
  kill $HP; wait $HP 2>/dev/null
done; done
