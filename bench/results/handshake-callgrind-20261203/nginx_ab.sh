#!/bin/bash
# usage: nginx_ab.sh N : alternates nchan listen without/with reuseport (and deferred), one 10k storm each
cd /work/main
B=build/default
ulimit -n 20000
run() {
  local opt=$1 tmp=/tmp/ngx_ab
  rm -rf $tmp; mkdir -p $tmp
  cat >$tmp/nginx.conf <<CONF
load_module /usr/lib/nginx/modules/ngx_nchan_module.so;
daemon off;
master_process on;
worker_processes auto;
worker_rlimit_nofile 20000;
pid $tmp/nginx.pid;
error_log $tmp/error.log warn;
events { worker_connections 20000; use epoll; }
http {
  access_log off;
  client_body_temp_path $tmp/body; proxy_temp_path $tmp/proxy; fastcgi_temp_path $tmp/fastcgi; uwsgi_temp_path $tmp/uwsgi; scgi_temp_path $tmp/scgi;
  nchan_shared_memory_size 256m;
  server {
    listen 127.0.0.1:19090 backlog=4096 $opt;
    location ~ ^/sub/(\w+)$ { nchan_subscriber websocket; nchan_channel_id \$1; }
  }
}
CONF
  nginx -c $tmp/nginx.conf -p $tmp > $tmp/out 2>&1 &
  local P=$!; sleep 0.8
  local pids=$(echo $P $(pgrep -P $P) | tr ' ' ',')
  $B/bench/herald_load --url "ws://127.0.0.1:19090/sub/{c}" --raw --pub-target 127.0.0.1:19090 --publish none --server-pids $pids --label x --subs 10000 --threads 2 --src-count 4 --max-inflight 1000 --no-subscribe --connect-timeout 60 2>/dev/null | python3 -c "import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print('${opt:-none}', int(d['connect_per_s']), round(d['handshake_latency']['p50_us']/1000,1), d['server_cpu_us_per_connect'])"
  kill $P; wait $P 2>/dev/null; sleep 0.3
}
for i in $(seq $1); do run ""; run "reuseport"; run "deferred"; done
