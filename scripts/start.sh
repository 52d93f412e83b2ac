#!/usr/bin/env bash
# Quick start: installs what is missing, builds, and runs herald with its embedded defaults
# (WebSocket on 127.0.0.1:8080, gRPC on 127.0.0.1:50051). Extra arguments go to herald, e.g.
#   scripts/start.sh --ws-listen 0.0.0.0:8080
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh default herald heraldctl
bin=build/default/server/herald
ctl=build/default/client/cli/heraldctl
cat <<INFO

Herald is starting. Once it prints its listening addresses:
  WebSocket:  ws://127.0.0.1:8080/ws   (try: {"id":1,"subscribe":{"channel":"orders"}})
  Health:     http://127.0.0.1:8080/healthz    Metrics: http://127.0.0.1:8080/metrics
  gRPC:       127.0.0.1:50051 (herald.v1.Broker; reflection on, so grpcurl works)
  HTTP API:   POST http://127.0.0.1:8080/api/v1/<Method> (the same API as JSON; docs/api.md)
  Admin CLI:  $ctl --help
              $ctl publish-order --id o-1 --version 1 --status created --store 42
Stop with Ctrl-C (graceful drain).

INFO
exec "$bin" "$@"
