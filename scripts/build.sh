#!/usr/bin/env bash
# Configures and builds one CMake preset: scripts/build.sh [PRESET] [TARGET...]
# Presets (CMakePresets.json): default (RelWithDebInfo), asan (ASan+UBSan), tsan (core only).
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-default}"
shift || true
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake --preset "$preset" "${launcher[@]}" >/dev/null
if [ $# -gt 0 ]; then
  cmake --build --preset "$preset" --target "$@"
else
  cmake --build --preset "$preset"
fi
