#!/usr/bin/env bash
# Installs the Debian bookworm packages Herald needs to build and test. Idempotent: installs only
# what is missing (one dpkg query, then at most one apt-get run).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache curl git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libwebsocketpp-dev libasio-dev libabsl-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libspdlog-dev rapidjson-dev
  # the Redis engine (server/engine/redis): hiredis' async API, and redis-server for its tests
  libhiredis-dev redis-server
  # the herald executable's allocator (docs/operations.md "Memory allocator")
  libmimalloc-dev
  # webhooks (server/proxy): libcurl's multi interface, with HTTP/1.1 keep-alive, TLS (OpenSSL,
  # as the rest of Herald) and timeouts, driven by the proxy's own thread
  libcurl4-openssl-dev
  # the HTTP/1.1 server of the control API (server/http): Boost.Beast's request parser
  # (header-only), which checks a request line a table lookup per byte
  libboost1.74-dev
  clang-format
  # clang for the ASan+UBSan build with its thread-safety analysis (-Wthread-safety) and the
  # libFuzzer targets: clang-14 is Debian's clang; libclang-rt-14-dev holds the sanitizer and
  # libFuzzer runtimes (-fsanitize=fuzzer), only a Recommends of clang; llvm-14 brings
  # llvm-symbolizer, which turns sanitizer and fuzzer reports into file:line stacks.
  clang-14 libclang-rt-14-dev llvm-14
  # client examples (client/examples/) and their tests
  php-cli php-curl python3-grpcio python3-grpc-tools
  # herald.js tests and the demo's end-to-end tests (driven by playwright-core from npm)
  chromium
)
# The Node example, herald.js tests and the e2e tests need node and npm (the machine's, if it has
# them; otherwise Debian's).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  packages+=(nodejs npm)
fi
packages+=("$@")

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
