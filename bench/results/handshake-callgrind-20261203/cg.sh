#!/bin/bash
# usage: BIN=... cg.sh plain|jwt OUTNAME : herald under callgrind; 2000 connections; Ir per connection
cd /work/main
B=build/default; BIN=${BIN:-$B/server/herald}; N=${N:-2000}
SECRET=bench-secret-0123456789abcdef
extra=""; url=ws://127.0.0.1:19080/ws
if [ "$1" = jwt ]; then
  extra="--jwt-hs256-secret $SECRET --max-connections-per-user 0"
  TOKEN=$($B/client/cli/heraldctl token --secret $SECRET --sub bench-user --ttl 3600)
  url="ws://127.0.0.1:19080/ws?token=$TOKEN"
fi
ulimit -n 20000
rm -f /tmp/cg.$2.*
valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$2.%p --dump-instr=no --collect-atstart=yes $BIN --ws-listen 127.0.0.1:19080 --grpc-listen 127.0.0.1:19051 --log-level warn --max-connections 200000 --max-connections-per-ip 0 --api-rate 0 $extra > /tmp/cg_herald_$1.log 2>&1 &
P=$!
for i in $(seq 60); do curl -s -o /dev/null http://127.0.0.1:19080/healthz && break; sleep 0.5; done
# warm-up storm, then zero, then measured storm
$B/bench/herald_load --url "$url" --pub-target 127.0.0.1:19051 --label x --subs 500 --threads 2 --src-count 4 --max-inflight 100 --no-subscribe --publish none --connect-timeout 120 >/dev/null 2>&1
sleep 1
callgrind_control -z $P >/dev/null
$B/bench/herald_load --url "$url" --pub-target 127.0.0.1:19051 --label x --subs $N --threads 2 --src-count 4 --max-inflight 100 --no-subscribe --publish none --connect-timeout 120 2>/dev/null | python3 -c 'import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print("ready",d["ready"],"failed",d["connect_failed"])'
sleep 1; callgrind_control -d $P >/dev/null
sleep 1
kill $P; wait $P 2>/dev/null
f=$(ls -t /tmp/cg.$2.*.* 2>/dev/null | head -1); [ -z "$f" ] && f=$(ls -t /tmp/cg.$2.* | head -1)
echo "file $f"
callgrind_annotate --inclusive=no "$f" 2>/dev/null | awk -v n=$N '/PROGRAM TOTALS/{gsub(",","",$1); printf "Ir per connection: %.0f\n", $1/n}'
