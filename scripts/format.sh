#!/usr/bin/env bash
# clang-format every C++ file of the project (.clang-format: Google, 100 columns).
#   scripts/format.sh          rewrite files in place
#   scripts/format.sh --check  fail listing the files that are not formatted
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cc' '*.h')
if [ "${1:-}" = "--check" ]; then
  # One clang-format per 16 files, as many at a time as there are cores; --dry-run --Werror
  # reports each file that would change (file:line:col: error: ...).
  if ! out=$(printf '%s\0' "${files[@]}" | xargs -0 -P "$(nproc)" -n 16 \
               clang-format --style=file --dry-run --Werror 2>&1); then
    echo "not clang-formatted (run scripts/format.sh):" >&2
    grep -o '^[^:]*:[0-9]*:[0-9]*: error' <<<"$out" | cut -d: -f1 | sort -u >&2
    exit 1
  fi
  echo "clang-format: ${#files[@]} files ok"
else
  clang-format --style=file -i "${files[@]}"
fi
