#!/usr/bin/env bash
# Runs the libFuzzer targets of tests/fuzz (built by the clang-asan preset) for a while each:
#   scripts/fuzz.sh [SECONDS] [TARGET...]     (default: 60 s, every target)
# Targets: client_frame jwt http_api http_request config ws_frame. As many run at once as there
# are cores. Each starts from its committed seeds (tests/fuzz/corpus/<target>/) plus what earlier
# local runs found (build/clang-asan/fuzz/<target>/corpus/), with a per-input time limit (a slow
# input is a failure) and a memory limit. A crash, leak, UB, timeout or out-of-memory input is written to
# build/clang-asan/fuzz/<target>/ and fails the run; reproduce it with
#   build/clang-asan/tests/fuzz/<target>_fuzzer build/clang-asan/fuzz/<target>/crash-…
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(client_frame jwt http_api http_request config ws_frame)
build=build/clang-asan
out="$build/fuzz"
parallel=$(nproc)
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

run() {
  local t="$1" dir="$out/$1"
  mkdir -p "$dir/corpus"
  "$build/tests/fuzz/${t}_fuzzer" -max_total_time="$seconds" -timeout=2 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$dir/" "$dir/corpus" "tests/fuzz/corpus/$t" \
    >"$dir/fuzz.log" 2>&1
}

pids=()
names=()
failed=()
wait_one() {
  local i="$1"
  if wait "${pids[$i]}"; then
    echo "fuzz ${names[$i]}: ok ($(grep -E '^#[0-9]+.*DONE' "$out/${names[$i]}/fuzz.log" | tail -1))"
  else
    echo "fuzz ${names[$i]}: FAILED; last lines of $out/${names[$i]}/fuzz.log:"
    tail -60 "$out/${names[$i]}/fuzz.log"
    failed+=("${names[$i]}")
  fi
}
for t in "${targets[@]}"; do
  [ -x "$build/tests/fuzz/${t}_fuzzer" ] || { echo "fuzz: no $build/tests/fuzz/${t}_fuzzer (scripts/build.sh clang-asan)"; exit 2; }
  if [ ${#pids[@]} -ge "$parallel" ]; then
    wait_one 0
    pids=("${pids[@]:1}")
    names=("${names[@]:1}")
  fi
  run "$t" &
  pids+=($!)
  names+=("$t")
done
for i in "${!pids[@]}"; do wait_one "$i"; done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]}"
  exit 1
fi
