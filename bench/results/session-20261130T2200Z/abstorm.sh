#!/bin/bash
# alternate two herald builds through full (10k) storms; print connect/s and CPU per connect
cd /work/main
new=${NEW:-$PWD/build/default/server/herald}; old=$1; rounds=${2:-3}
out=/tmp/abstorm-$(date +%H%M%S); mkdir -p $out
for r in $(seq $rounds); do for w in new old; do
  bin=$new; [ $w = old ] && bin=$old
  SERVERS=herald HERALD=$bin OUT=$out/$w-$r bench/run.sh storm >/dev/null 2>$out/$w-$r.log
  python3 - $out/$w-$r/results.jsonl $w <<'PY'
import json,sys
for l in open(sys.argv[1]):
    d=json.loads(l); print(sys.argv[2], d.get('server'), round(d['connect_per_s']), d['server_cpu_us_per_connect'])
PY
done; done
