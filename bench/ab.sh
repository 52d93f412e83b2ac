#!/usr/bin/env bash
# Two Herald builds, run by run: bench/ab.sh OLD_HERALD [ROUNDS] [SCENARIO...]
#
# Alternates the current build (build/default/server/herald) and OLD_HERALD (e.g. a build of an
# earlier commit in a git worktree) ROUNDS times (default 2) through the same bench/run.sh
# scenarios (default: fanout latency grpc, --quick), so both see the same machine and load, and
# prints the median of each metric per build and their ratio (new ÷ old). Used to check that a
# change does not regress throughput, CPU per delivery or latency beyond noise.
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?usage: bench/ab.sh OLD_HERALD [ROUNDS] [SCENARIO...]}
rounds=${2:-2}
shift $(( $# >= 2 ? 2 : 1 ))
scenarios=("${@:-fanout latency grpc}")
[ $# -gt 0 ] || scenarios=(fanout latency grpc)
new=$PWD/build/default/server/herald
out=${OUT:-bench/results/ab-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
for r in $(seq "$rounds"); do
  for which in new old; do
    bin=$new
    [ $which = old ] && bin=$old
    SERVERS=herald HERALD=$bin OUT="$out/$which-$r" bench/run.sh --quick "${scenarios[@]}" 2>"$out/$which-$r.log" >/dev/null
  done
done
python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys, os
out, rounds = sys.argv[1], int(sys.argv[2])
def rows(which):
    acc = {}
    for r in range(1, rounds + 1):
        path = os.path.join(out, f"{which}-{r}", "results.jsonl")
        if not os.path.exists(path): continue
        for line in open(path):
            j = json.loads(line)
            key = (j["scenario"], j.get("subs", j.get("mode", "")), j.get("target_deliveries", j.get("batch", "")))
            if j.get("server", "herald") != "herald": key += (j["server"],)  # herald-jwt
            # Rows that differ in how they publish: requests in flight, the gRPC data's form.
            if "inflight" in j: key += (f"inflight={j['inflight']}",)
            if j.get("data", "value") != "value" or j.get("payload", "short") != "short":
                key += (f"{j.get('data', 'value')},{j.get('payload', 'short')}",)
            m = {}
            for k in ("deliveries_per_s", "server_cpu_us_per_delivery", "calls_per_s", "server_cpu_us_per_call",
                      "publish_rate", "errors", "publish_errors"):
                if k in j: m[k] = j[k]
            if j["scenario"] == "storm":
                for k in ("connect_per_s", "server_cpu_us_per_connect"):
                    if k in j: m[k] = j[k]
            if j["scenario"] == "http_publish" and j.get("published"):
                m["server_cpu_us_per_publish"] = j["server_cpu_s"] * 1e6 / j["published"]
            if isinstance(j.get("latency"), dict):
                for p in ("p50_us", "p99_us"):
                    if p in j["latency"]: m["latency_" + p] = j["latency"][p]
            for k, v in m.items(): acc.setdefault(key, {}).setdefault(k, []).append(v)
    return acc
new, old = rows("new"), rows("old")
print(f"{'scenario':<44}{'metric':<30}{'new':>12}{'old':>12}{'new/old':>9}")
for key in sorted(new, key=str):
    for k in sorted(new[key]):
        if key not in old or k not in old[key]: continue
        a, b = statistics.median(new[key][k]), statistics.median(old[key][k])
        ratio = a / b if b else float("nan")
        print(f"{str(key):<44}{k:<30}{a:>12.2f}{b:>12.2f}{ratio:>9.2f}")
PY
