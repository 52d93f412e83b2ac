#!/usr/bin/env bash
# Benchmark scenarios: Herald against nchan, uWebSockets (uWebSockets.js, bench/uws_server.mjs) and
# the baseline ("ceiling") server, in the same run.
#
#   bench/run.sh SCENARIO...    fanout fanout_http http_publish http_publish_ladder latency channels grpc storm idle
#                               slow tls | all
#   bench/run.sh --quick all    shorter runs, smaller ladders (a few minutes)
#
# Environment: SERVERS="herald nchan uws ceiling" (which to run), OUT=DIR (results; default
# bench/results/<UTC time>), DURATION=S (seconds per measured run), HERALD=PATH (another herald
# binary, e.g. an older build, to compare two builds run by run), FANOUT_SUBS="100 1000 9000"
# (the subscriber counts of fanout and fanout_http), NCHAN_BUFFER=N (nchan_message_buffer_length,
# default 10; larger buffers did not stop nchan's subscriber losses, docs/benchmarks.md),
# HTTP_LADDER="10000 15000 …" (the offered publishes/s of http_publish_ladder).
# Every run appends one JSON line to $OUT/results.jsonl; bench/report.py turns it into the tables
# and plots of docs/benchmarks.md. Servers listen on 127.0.0.1 only and are stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

quick=0
if [ "${1:-}" = "--quick" ]; then quick=1; shift; fi
[ $# -gt 0 ] || { sed -n '2,10p' "$0"; exit 2; }
scenarios=("$@")
[ "${scenarios[0]}" = "all" ] && scenarios=(fanout fanout_http http_publish http_publish_ladder latency channels grpc storm idle slow tls)
SERVERS=${SERVERS:-"herald nchan uws ceiling"}
OUT=${OUT:-bench/results/$(date -u +%Y%m%dT%H%M%SZ)}
DURATION=${DURATION:-$([ $quick = 1 ] && echo 3 || echo 5)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# The full bench needs nginx + nchan (the peer) and gnuplot (plots); CI does not, nor does the
# tls scenario alone (Herald against itself).
if [ "${scenarios[*]}" != tls ]; then
  scripts/deps.sh nginx-light libnginx-mod-nchan gnuplot-nox python3
fi
# uWebSockets.js from npm (bench/package-lock.json pins it), for the uws peer.
case " $SERVERS " in
  *" uws "*) [ -d bench/node_modules/uws-pack ] || npm ci --prefix bench --no-audit --no-fund >&2 ;;
esac
scripts/build.sh default herald heraldctl herald_load grpc_bench ceiling_server >/dev/null

bin=$root/build/default
HERALD=${HERALD:-$bin/server/herald}  # HERALD=PATH: another build, for A/B runs
LOAD=$bin/bench/herald_load
GRPC_BENCH=$bin/bench/grpc_bench
CEILING=$bin/bench/ceiling_server
ulimit -n 20000

# Fixed loopback ports; override them (e.g. WS_HERALD=127.0.0.1:28080) when they are taken.
WS_HERALD=${WS_HERALD:-127.0.0.1:18080} GRPC_HERALD=${GRPC_HERALD:-127.0.0.1:18051}
WS_NCHAN=${WS_NCHAN:-127.0.0.1:18081}
WS_CEILING=${WS_CEILING:-127.0.0.1:18082} UDP_CEILING=${UDP_CEILING:-127.0.0.1:18083}
WS_UWS=${WS_UWS:-127.0.0.1:18084}

tmp=$(mktemp -d)
server_pid="" server_pids="" server_name=""
cleanup() { stop_server; rm -rf "$tmp"; }
trap cleanup EXIT

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

wait_port() {  # host:port
  for _ in $(seq 400); do
    if (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "server did not open $1" >&2
  return 1
}

start_server() {  # name [extra herald args]
  local name=$1
  shift
  stop_server
  server_name=$name
  case $name in
    herald | herald-tls)
      [ "$name" = herald-tls ] && set -- --tls-cert "$tmp/tls.pem" --tls-key "$tmp/tls.key" "$@"
      # No per-IP limits: the generator is one client, and neither nchan nor uWS has them
      # (--api-rate is the HTTP API's, 1000 requests/s by default; gRPC has none).
      "$HERALD" --ws-listen $WS_HERALD --grpc-listen $GRPC_HERALD --log-level warn \
        --max-connections 200000 --max-connections-per-ip 0 --api-rate 0 "$@" \
        >"$tmp/herald.out" 2>"$tmp/herald.err" &
      server_pid=$!
      wait_port $GRPC_HERALD
      server_pids=$server_pid
      ;;
    nchan)
      mkdir -p "$tmp/nginx"
      cat >"$tmp/nginx/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_nchan_module.so;
daemon off;
master_process on;
worker_processes auto;
worker_rlimit_nofile 20000;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 20000; use epoll; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  nchan_shared_memory_size 256m;
  # One publisher connection for the whole run, as Herald keeps it (nginx's default closes a
  # keep-alive connection after 1000 requests).
  keepalive_requests 100000000;
  server {
    listen 127.0.0.1:${WS_NCHAN#*:} backlog=4096;
    location ~ ^/sub/(\w+)$ { nchan_subscriber websocket; nchan_channel_id \$1; }
    location ~ ^/pub/(\w+)$ { nchan_publisher; nchan_channel_id \$1; nchan_message_buffer_length ${NCHAN_BUFFER:-10}; }
  }
}
EOF
      nginx -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" >"$tmp/nginx/out" 2>&1 &
      server_pid=$!
      wait_port $WS_NCHAN
      sleep 0.3
      server_pids=$(echo $server_pid $(pgrep -P $server_pid) | tr ' ' ',')
      ;;
    uws)
      node bench/uws_server.mjs "$WS_UWS" >"$tmp/uws.out" 2>&1 &
      server_pid=$!
      wait_port $WS_UWS
      server_pids=$server_pid
      ;;
    ceiling)
      "$CEILING" --port ${WS_CEILING#*:} --trigger-port ${UDP_CEILING#*:} >"$tmp/ceiling.out" 2>&1 &
      server_pid=$!
      wait_port $WS_CEILING
      server_pids=$server_pid
      ;;
  esac
}

stop_server() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 200); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid="" server_pids=""
}

# The generator's flags for the running server. PUBLISH_VIA=http: every server that takes HTTP
# publishes gets one POST per publication on one keep-alive connection (Herald: POST
# /api/v1/Publish; nchan and uws: POST /pub/<channel>), PUB_INFLIGHT requests in flight
# (pipelined).
target_args() {
  if [ "${PUBLISH_VIA:-}" = http ]; then
    case $server_name in
      herald) echo "--url ws://$WS_HERALD/ws --pub-target $WS_HERALD --publish http-api --pub-inflight ${PUB_INFLIGHT:-1}" ;;
      nchan) echo "--url ws://$WS_NCHAN/sub/{c} --raw --pub-target $WS_NCHAN --publish http --pub-inflight ${PUB_INFLIGHT:-1}" ;;
      uws) echo "--url ws://$WS_UWS/sub/{c} --raw --pub-target $WS_UWS --publish http --pub-inflight ${PUB_INFLIGHT:-1}" ;;
      *) echo "bench: $server_name takes no HTTP publishes" >&2; return 1 ;;
    esac
    return 0
  fi
  case $server_name in
    herald) echo "--url ws://$WS_HERALD/ws --pub-target $GRPC_HERALD --publish ${HERALD_PUBLISH:-grpc}" ;;
    herald-tls) echo "--url wss://$WS_HERALD/ws --pub-target $GRPC_HERALD --pub-ca $tmp/tls.pem --publish ${HERALD_PUBLISH:-grpc}" ;;
    herald-jwt) echo "--url ws://$WS_HERALD/ws?token=$TOKEN --pub-target $GRPC_HERALD --publish ${HERALD_PUBLISH:-grpc}" ;;
    nchan) echo "--url ws://$WS_NCHAN/sub/{c} --raw --pub-target $WS_NCHAN --publish http" ;;
    uws) echo "--url ws://$WS_UWS/sub/{c} --raw --pub-target $WS_UWS --publish http" ;;
    ceiling) echo "--url ws://$WS_CEILING/ws --raw --pub-target $UDP_CEILING --publish udp" ;;
  esac
}

# run_load SCENARIO KEY=VALUE... -- GENERATOR ARGS: runs the generator, records one JSON line.
run_load() {
  local scenario=$1
  shift
  local tags=()
  while [ "$1" != "--" ]; do tags+=("$1"); shift; done
  shift
  local json
  # shellcheck disable=SC2046
  json=$("$LOAD" $(target_args) --server-pids "$server_pids" --label "$server_name" "$@")
  local extra="\"scenario\":\"$scenario\",\"server\":\"$server_name\""
  for t in "${tags[@]}"; do extra+=",\"${t%%=*}\":${t#*=}"; done
  echo "{$extra,${json#\{}" | tee -a "$OUT/results.jsonl" >&2
  LAST_JSON=$json
}

field() { echo "$LAST_JSON" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
# The last run at offered rate $1 (deliveries/s) saturated the server: it lost a publication, or
# delivered under 90% of the offered rate. Ends a ladder.
saturated() {
  local lost dps
  lost=$(field lost)
  dps=$(field deliveries_per_s)
  [ "$lost" != 0 ] || python3 -c "import sys; sys.exit(0 if $dps < 0.9*$1 else 1)"
}

# The names after ROUND, rotated to start at the ROUND-th (1-based, wrapping): rounds of a
# scenario run its servers in turn, each round starting one later, so that neither the machine's
# drift nor what the previous run left behind (TIME_WAIT sockets, page cache) favours one.
rotated() {
  local round=$1
  shift
  local n=$# i
  local names=("$@")
  for (( i = 0; i < n; i++ )); do echo "${names[$(( (i + round - 1) % n ))]}"; done
}

scenario_fanout() {
  local subs_list=(${FANOUT_SUBS:-100 1000 9000}) ladder=(100000 200000 400000 800000 1600000)
  [ $quick = 1 ] && subs_list=(100 1000) ladder=(100000 400000)
  for subs in "${subs_list[@]}"; do
    for s in $SERVERS; do
      HERALD_PUBLISH=grpc-stream start_server "$s"
      for target in "${ladder[@]}"; do
        local rate=$(( target / subs ))
        log "fanout $s subs=$subs rate=$rate/s (target $target deliveries/s)"
        HERALD_PUBLISH=grpc-stream run_load fanout "target_deliveries=$target" -- \
          --subs "$subs" --threads 2 --src-count 4 --rate "$rate" --duration "$DURATION" --drain 3
        if saturated "$target"; then
          log "fanout $s subs=$subs saturated at $target"
          break
        fi
      done
      stop_server
    done
  done
}

# Fan-out fed like for like: every server gets one HTTP POST per publication on one keep-alive
# connection, first with one request in flight (each waits for its reply), then with
# HTTP_INFLIGHT (default 16) pipelined, the same for every server. The baseline server is left
# out: it takes publications as UDP datagrams only.
# FANOUT_REPEAT rounds (default 1), each running every server once, in rotated order.
scenario_fanout_http() {
  local subs_list=(${FANOUT_SUBS:-100 1000 9000}) ladder=(100000 200000 400000 800000 1600000)
  [ $quick = 1 ] && subs_list=(100 1000) ladder=(100000 400000)
  local inflights=(1 "${HTTP_INFLIGHT:-16}") round subs inflight s target
  for round in $(seq "${FANOUT_REPEAT:-1}"); do
  for subs in "${subs_list[@]}"; do
    for inflight in "${inflights[@]}"; do
      for s in $(rotated "$round" $SERVERS); do
        [ "$s" = ceiling ] && continue
        start_server "$s"
        for target in "${ladder[@]}"; do
          local rate=$(( target / subs ))
          log "fanout_http $s subs=$subs inflight=$inflight rate=$rate/s (target $target deliveries/s), round $round"
          PUBLISH_VIA=http PUB_INFLIGHT=$inflight run_load fanout_http \
            "target_deliveries=$target" "inflight=$inflight" "round=$round" -- \
            --subs "$subs" --threads 2 --src-count 4 --rate "$rate" --duration "$DURATION" --drain 3
          if saturated "$target"; then
            log "fanout_http $s subs=$subs inflight=$inflight saturated at $target"
            break
          fi
        done
        stop_server
      done
    done
  done
  done
}

# Publishes/s over one keep-alive HTTP connection, as fast as the replies come back (--rate 0),
# one request in flight and then HTTP_INFLIGHT pipelined; one subscriber checks every
# publication arrives. Servers alternate, HTTP_REPEAT times (default 2).
scenario_http_publish() {
  local repeat=${HTTP_REPEAT:-2}
  [ $quick = 1 ] && repeat=1
  for _ in $(seq "$repeat"); do
    for inflight in 1 "${HTTP_INFLIGHT:-16}"; do
      for s in $SERVERS; do
        [ "$s" = ceiling ] && continue
        start_server "$s"
        log "http_publish $s inflight=$inflight"
        PUBLISH_VIA=http PUB_INFLIGHT=$inflight run_load http_publish "inflight=$inflight" -- \
          --subs 1 --threads 1 --src-count 1 --rate 0 --duration "$DURATION" --drain 3
        stop_server
      done
    done
  done
}

# Loss-free publishes/s over one keep-alive HTTP connection, HTTP_INFLIGHT (16) pipelined: every
# server gets the same ladder of offered rates, paced by the generator, and its row is the highest
# step it delivered to its one subscriber without a loss and at 90% of the rate or more. (The
# as-fast-as-possible run above has no loss-free figure for a server that drops publications.)
scenario_http_publish_ladder() {
  local ladder=(${HTTP_LADDER:-10000 15000 20000 30000 40000 60000 80000 100000 120000 140000})
  [ $quick = 1 ] && ladder=(10000 40000 80000)
  local inflight=${HTTP_INFLIGHT:-16}
  for s in $SERVERS; do
    [ "$s" = ceiling ] && continue
    start_server "$s"
    for target in "${ladder[@]}"; do
      log "http_publish_ladder $s inflight=$inflight rate=$target/s"
      PUBLISH_VIA=http PUB_INFLIGHT=$inflight run_load http_publish_ladder \
        "target_publishes=$target" "inflight=$inflight" -- \
        --subs 1 --threads 1 --src-count 1 --rate "$target" --duration "$DURATION" --drain 3
      if saturated "$target"; then
        log "http_publish_ladder $s saturated at $target"
        break
      fi
    done
    stop_server
  done
}

# Like for like in the rows that compare servers (latency, channels, slow): every server that
# takes HTTP publishes gets one POST per publication, one in flight, on one keep-alive connection
# (Herald's HTTP/JSON API included); only the ceiling baseline, which takes UDP datagrams only,
# is fed its own way, and report.py names each row's publishing method.
via_for() { [ "$1" = ceiling ] || echo http; }

# LATENCY_REPEAT rounds (default 1), each running every server once, in rotated order.
scenario_latency() {
  local round s
  for round in $(seq "${LATENCY_REPEAT:-1}"); do
    for s in $(rotated "$round" $SERVERS); do
      start_server "$s"
      log "latency $s 1000 subs x 50 msg/s, round $round"
      PUBLISH_VIA=$(via_for "$s") run_load latency "round=$round" -- --subs 1000 --threads 2 \
        --src-count 4 --rate 50 --duration $(( DURATION * 2 )) --drain 3 \
        --cdf "$OUT/latency_cdf_$s.dat"
      log "latency $s 9000 subs x 2 msg/s, round $round"
      PUBLISH_VIA=$(via_for "$s") run_load latency9k "round=$round" -- --subs 9000 --threads 2 \
        --src-count 4 --rate 2 --duration $(( DURATION * 2 )) --drain 3
      stop_server
    done
  done
}

scenario_channels() {
  local n=5000
  [ $quick = 1 ] && n=1000
  for s in $SERVERS; do
    [ "$s" = ceiling ] && continue  # the ceiling server has no channels
    start_server "$s"
    log "channels $s: $n channels x 1 subscriber, $n msg/s"
    PUBLISH_VIA=http run_load channels -- --subs $n --channels $n --threads 2 --src-count 4 \
      --rate $n --duration "$DURATION" --drain 3
    stop_server
  done
}

scenario_grpc() {
  start_server herald
  # Unary: 2 threads x 32 calls in flight (async API). Streams: 2 streams, one publication per
  # message and then 16 per message (PublishBatch). Then publications of a 200-byte JSON object,
  # its data as a google.protobuf.Value (`data`) and as JSON text (`data_json`), in turn.
  for run in "unary-order 1" "unary-publish 1" "stream-order 1" "stream-order 16" \
             "stream-publish 1" "stream-publish 16" \
             "unary-publish 1 value object" "unary-publish 1 json object" \
             "stream-publish 1 value object" "stream-publish 1 json object"; do
    local mode batch data payload
    read -r mode batch data payload <<<"$run"
    log "grpc $mode batch=$batch data=${data:-value} payload=${payload:-short}"
    local json
    json=$("$GRPC_BENCH" --target $GRPC_HERALD --mode "$mode" --threads 2 --connections 2 \
      --window 32 --batch "$batch" --data "${data:-value}" --payload "${payload:-short}" \
      --duration "$DURATION" --server-pids "$server_pids" --label herald) || true
    # Every call failed (an older herald that has no data_json, in an A/B run): recorded as such.
    [ -n "$json" ] || continue
    echo "{\"scenario\":\"grpc\",\"server\":\"herald\",${json#\{}" | tee -a "$OUT/results.jsonl" >&2
  done
  stop_server
}

# STORM_REPEAT rounds (default 3; report.py shows the median, the range, and each round's ratios),
# each running every server once, and Herald with a JWT, in rotated order. One 10k storm lasts
# half a second; single runs spread by ±15%.
scenario_storm() {
  local n=10000 repeat=${STORM_REPEAT:-3}
  [ $quick = 1 ] && n=3000 repeat=1
  local secret=bench-secret-0123456789abcdef entries=($SERVERS)
  case " $SERVERS " in
    *" herald "*)
      # With JWT: every handshake carries ?token= (HS256), verified before the upgrade.
      entries+=(herald-jwt)
      TOKEN=$("$bin/client/cli/heraldctl" token --secret $secret --sub bench-user --ttl 3600)
      ;;
  esac
  local round s
  for round in $(seq "$repeat"); do
    for s in $(rotated "$round" "${entries[@]}"); do
      if [ "$s" = herald-jwt ]; then
        # Every token names the same user: no per-user limit (100 by default), or all but 100 fail.
        start_server herald --jwt-hs256-secret $secret --max-connections-per-user 0
        server_name=herald-jwt
      else
        start_server "$s"  # Herald: ready at `welcome`; no token is verified (development mode)
      fi
      log "connect storm $s, round $round/$repeat: $n connections"
      run_load storm "round=$round" -- --subs $n --threads 2 --src-count 4 --max-inflight 1000 \
        --no-subscribe --publish none --connect-timeout 60
      stop_server
    done
  done
}

# What TLS costs, Herald against itself in the same run: server CPU per delivery at fixed
# fan-out rates, and handshakes/s with the server CPU per handshake (every wss:// connection a
# full TLS 1.3 handshake, no resumption; an ECDSA P-256 certificate). Plain and TLS alternate,
# TLS_REPEAT times (default 3; report.py shows the median and the range), so that a change in
# the machine's load hits both alike.
scenario_tls() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$tmp/tls.key" -out "$tmp/tls.pem" 2>/dev/null
  local subs=1000 rates=(100 400) n=10000 repeat=${TLS_REPEAT:-3}
  [ $quick = 1 ] && rates=(100) n=3000 repeat=1
  for _ in $(seq "$repeat"); do
  for rate in "${rates[@]}"; do
    for s in herald herald-tls; do
      HERALD_PUBLISH=grpc-stream start_server "$s"
      log "tls fanout $s subs=$subs rate=$rate/s"
      HERALD_PUBLISH=grpc-stream run_load tls_fanout "target_deliveries=$(( subs * rate ))" -- \
        --subs $subs --threads 2 --src-count 4 --rate "$rate" --duration "$DURATION" --drain 3
      stop_server
    done
  done
  for s in herald herald-tls; do
    start_server "$s"
    log "tls storm $s: $n connections"
    run_load tls_storm -- --subs $n --threads 2 --src-count 4 --max-inflight 1000 --no-subscribe \
      --publish none --connect-timeout 60
    stop_server
  done
  done
  # Memory of an idle connection, as in `idle`: RSS growth over 5000 open connections.
  for s in herald herald-tls; do
    start_server "$s"
    log "tls idle $s: 5000 connections"
    run_load tls_idle -- --subs 5000 --threads 2 --src-count 4 --max-inflight 500 --hold 2 \
      --publish none
    stop_server
  done
}

scenario_idle() {
  local n=18000
  [ $quick = 1 ] && n=5000
  for s in $SERVERS; do
    start_server "$s"
    log "idle $s: $n connections held"
    run_load idle -- --subs $n --threads 2 --src-count 8 --max-inflight 500 --publish none \
      --hold 5 --connect-timeout 120
    stop_server
  done
}

scenario_slow() {
  local n=2000 rate=20  # 40k deliveries/s: well below saturation, so only the slow 1% struggle
  for s in $SERVERS; do
    # A 256 KiB queue limit (and the same backlog bound for the ceiling) makes slow readers hit it.
    case $s in
      herald) start_server herald --max-send-buffer-bytes 262144 ;;
      *) start_server "$s" ;;
    esac
    log "slow readers $s: $n subs, 1% never read, $rate msg/s of 1 KB"
    PUBLISH_VIA=$(via_for "$s") run_load slow -- --subs $n --threads 2 --src-count 4 --rate $rate --payload 1000 \
      --duration $(( DURATION * 3 )) --drain 3 --slow-fraction 0.01
    stop_server
  done
}

for sc in "${scenarios[@]}"; do
  "scenario_$sc"
done
python3 bench/report.py "$OUT"
log "results: $OUT/results.jsonl, report: $OUT/report.md"
