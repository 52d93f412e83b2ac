#!/usr/bin/env bash
# clang-format every C++ file of the project (.clang-format: Google, 100 columns).
#   scripts/format.sh          rewrite files in place
#   scripts/format.sh --check  fail listing the files that are not formatted
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cc' '*.h')
if [ "${1:-}" = "--check" ]; then
  bad=()
  for f in "${files[@]}"; do
    if ! clang-format --style=file "$f" | cmp -s - "$f"; then bad+=("$f"); fi
  done
  if [ ${#bad[@]} -gt 0 ]; then
    echo "not clang-formatted (run scripts/format.sh): ${bad[*]}" >&2
    exit 1
  fi
  echo "clang-format: ${#files[@]} files ok"
else
  clang-format --style=file -i "${files[@]}"
fi
