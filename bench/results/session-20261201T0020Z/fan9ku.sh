#!/bin/bash
# same as fan9k.sh for uWS
cd /work/main
subs=${SUBS:-9000}; rate=${RATE:-10}
node bench/uws_server.mjs 127.0.0.1:28105 > /tmp/u.out 2>&1 &
HP=$!; sleep 1.5
build/default/bench/herald_load --url ws://127.0.0.1:28105/sub/{c} --raw --pub-target 127.0.0.1:28105 --publish http --pub-inflight 1 --subs $subs --threads 2 --src-count 4 --rate $rate --payload ${PAYLOAD:-100} --duration 6 --drain 2 --server-pids $HP --label x > /tmp/lgu.json &
LP=$!; sleep 2.5
a=$(awk '{print $14, $15}' /proc/$HP/stat); sleep 4; b=$(awk '{print $14, $15}' /proc/$HP/stat); echo "$a $b" > /tmp/psu.txt
wait $LP
python3 - uws <<'PY'
import json,sys
r=json.load(open('/tmp/lgu.json'))
u0,s0,u1,s1=map(int,open('/tmp/psu.txt').read().split())
d=r['deliveries_per_s']*4
print(sys.argv[1], 'lost',r['lost'], 'user', round((u1-u0)*1e4/d,3), 'kernel', round((s1-s0)*1e4/d,3))
PY
kill $HP; wait $HP 2>/dev/null
