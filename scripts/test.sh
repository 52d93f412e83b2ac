#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run):
#   1. install what is missing (Debian packages, npm test tooling), build (RelWithDebInfo), run
#      every test in parallel: C++ unit and integration tests, herald.js tests (node --test) and
#      the end-to-end tests in headless Chromium (screenshots in build/*/test-artifacts);
#   2. clang-format check of every C++ file;
#   3. build with ASan+UBSan and run every test again;
#   4. build the core with TSan and run the concurrency test.
# scripts/test.sh --quick runs steps 1 and 2 only.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
[ "${1:-}" = "--quick" ] && quick=1
jobs=$(( $(nproc) * 2 ))
start=$(date +%s)
step() { echo; echo "=== $* ($(( $(date +%s) - start ))s)"; }

step "dependencies"
scripts/deps.sh
scripts/npm-ci.sh

step "build: default"
scripts/build.sh default
step "test: default"
ctest --preset default -j "$jobs"

step "clang-format"
scripts/format.sh --check

if [ "$quick" -eq 0 ]; then
  step "build: asan (ASan+UBSan)"
  scripts/build.sh asan
  step "test: asan"
  ctest --preset asan -j "$jobs"

  step "build: tsan (core)"
  scripts/build.sh tsan concurrency_test
  step "test: tsan concurrency"
  ctest --preset tsan -L concurrency
fi
step "all tests passed"
