#!/bin/bash
# 9k subscribers x RATE/s HTTP-fed; user/kernel CPU per delivery from /proc; herald extra args
cd /work/main
subs=${SUBS:-9000}; rate=${RATE:-10}
build/default/server/herald --ws-listen 127.0.0.1:28101 --grpc-listen 127.0.0.1:28102 --log-level warn --max-connections 200000 --max-connections-per-ip 0 --api-rate 0 "$@" > /tmp/h.out 2>&1 &
HP=$!; sleep 0.5
build/default/bench/herald_load --url ws://127.0.0.1:28101/ws --pub-target 127.0.0.1:28101 --publish http-api --pub-inflight 1 --subs $subs --threads 2 --src-count 4 --rate $rate --payload ${PAYLOAD:-100} --duration 6 --drain 2 --server-pids $HP --label x > /tmp/lg.json &
LP=$!; sleep 2.5
a=$(awk '{print $14, $15}' /proc/$HP/stat); sleep 4; b=$(awk '{print $14, $15}' /proc/$HP/stat); echo "$a $b" > /tmp/ps.txt
wait $LP
python3 - "$*" <<'PY'
import json,sys
r=json.load(open('/tmp/lg.json'))
u0,s0,u1,s1=map(int,open('/tmp/ps.txt').read().split())
d=r['deliveries_per_s']*4
print(sys.argv[1], 'lost',r['lost'], 'user', round((u1-u0)*1e4/d,3), 'kernel', round((s1-s0)*1e4/d,3), 'p99', r.get('latency_p99_ms'))
PY
kill $HP; wait $HP 2>/dev/null
