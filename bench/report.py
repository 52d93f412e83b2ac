#!/usr/bin/env python3
"""Turns bench/run.sh results (RESULTS_DIR/results.jsonl) into RESULTS_DIR/report.md and plots.

usage: bench/report.py RESULTS_DIR [--docs]   (--docs also copies the PNGs into docs/img/)
Every figure comes from the JSON lines the tools printed in that run; nothing is typed in.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
from collections import defaultdict

SERVERS = ["herald", "nchan", "uws", "ceiling"]
# The "ceiling" server writes each frame to each socket as it comes (no coalescing per loop turn,
# which Herald does), so it is no ceiling for Herald: shown as the baseline it is.
NAMES = {"ceiling": "baseline", "uws": "uWS"}


def label(server):
    return NAMES.get(server, server)


def ratio_head(peers):
    return " | ".join(f"herald/{label(p)}" for p in peers)


def ratio_cells(v, peers):
    return " | ".join(ratio(v.get("herald"), v.get(p)) for p in peers)


def ratio_line(v, peers):
    return ", ".join(f"herald/{label(p)}: {ratio(v.get('herald'), v.get(p))}" for p in peers)


def fmt(v, digits=3):
    if v is None:
        return "–"
    if isinstance(v, float):
        if v >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{digits}g}"
    return f"{v:,}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}×"


def spread(runs, key):
    """median (min–max) of `key` over the runs."""
    v = sorted(r[key] for r in runs)
    med = statistics.median(v)
    return fmt(med) if len(v) == 1 else f"{fmt(med)} ({fmt(v[0])}–{fmt(v[-1])})"


def by_server(rows):
    """The rows of a scenario grouped by server, one per round, in run order."""
    groups = defaultdict(list)
    for r in rows:
        groups[r["server"]].append(r)
    return groups


def by_round(groups):
    """{round: {server: row}} from by_server's groups (rows without a round are round 1)."""
    rounds = defaultdict(dict)
    for s, runs in groups.items():
        for r in runs:
            rounds[r.get("round", 1)][s] = r
    return dict(sorted(rounds.items()))


def rounds_note(n, ranges=True):
    """The sentence that says a table's cells are medians of n rounds."""
    return (f"{n} rounds, each running every server once in turn; each cell is the median of the "
            f"rounds{', with the range in parentheses' if ranges else ''}.\n")


def main():
    out = sys.argv[1]
    docs = "--docs" in sys.argv
    rows = [json.loads(l) for l in open(os.path.join(out, "results.jsonl")) if l.strip()]
    by = defaultdict(list)
    for r in rows:
        by[r["scenario"]].append(r)
    md = []
    # The servers of this run, in SERVERS' order, and Herald's peers among them.
    present = [s for s in SERVERS if any(r["server"] == s for r in rows)]
    peers = [s for s in present if s != "herald"]
    named = [label(s) for s in present]

    # --- fan-out ---------------------------------------------------------------------------------
    fan = by.get("fanout", [])
    if fan:
        best = {}  # (server, subs) -> best zero-loss run
        sustained = {}  # (server, subs) -> best zero-loss run that delivered >= 90% of offered
        ref = {}   # (server, subs) -> the run at the lowest offered load (CPU/delivery reference)
        for r in fan:
            k = (r["server"], r["subs"])
            ok = r["lost"] == 0 and r["ready"] == r["subs"]
            if ok and (k not in best or r["deliveries_per_s"] > best[k]["deliveries_per_s"]):
                best[k] = r
            if ok and r["deliveries_per_s"] >= 0.9 * r["target_deliveries"] and (
                    k not in sustained or r["deliveries_per_s"] > sustained[k]["deliveries_per_s"]):
                sustained[k] = r
            if k not in ref or r["target_deliveries"] < ref[k]["target_deliveries"]:
                ref[k] = r
        subs_list = sorted({r["subs"] for r in fan})
        md.append("### Fan-out, Herald fed by one gRPC stream (not like for like): highest "
                  "delivered/s without loss\n")
        md.append("Herald gets its publications over one `PublishStream` (no reply awaited per "
                  "message), nchan one HTTP POST at a time (each waits for its reply), the "
                  "baseline one UDP datagram each. See the like-for-like rows below for the same "
                  "publishing method for every server.\n")
        md.append("One channel, N subscribers, offered rate raised step by step until a publication "
                  "is lost or fewer than 90% of the offered deliveries/s arrive; the figure is the "
                  "highest delivered/s of a step without loss (– : every step lost publications).\n")
        md.append("| subscribers | " + " | ".join(f"{label(s)} deliveries/s" for s in present) +
                  " | " + ratio_head(peers) + " |")
        md.append("|---|" + "---|" * (len(present) + len(peers)))
        for n in subs_list:
            v = {s: best.get((s, n), {}).get("deliveries_per_s") for s in present}
            md.append(f"| {n} | " + " | ".join(fmt(v[s]) for s in present) +
                      f" | {ratio_cells(v, peers)} |")
        md.append("")
        md.append("Stricter: highest delivered/s of a step that had no loss **and** delivered at "
                  "least 90% of what was offered (latency stayed bounded):\n")
        md.append("| subscribers | " + " | ".join(named) + " | " + ratio_head(peers) + " |")
        md.append("|---|" + "---|" * (len(present) + len(peers)))
        for n in subs_list:
            v = {s: sustained.get((s, n), {}).get("deliveries_per_s") for s in present}
            md.append(f"| {n} | " + " | ".join(fmt(v[s]) for s in present) +
                      f" | {ratio_cells(v, peers)} |")
        md.append("")
        md.append("### Fan-out: server CPU per delivery (µs), at the lowest step (100k deliveries/s "
                  "offered)\n")
        md.append("| subscribers | " + " | ".join(named) + " | " + ratio_head(peers) + " |")
        md.append("|---|" + "---|" * (len(present) + len(peers)))
        for n in subs_list:
            v = {s: ref.get((s, n), {}).get("server_cpu_us_per_delivery") for s in present}
            md.append(f"| {n} | " + " | ".join(fmt(v[s]) for s in present) +
                      f" | {ratio_cells(v, peers)} |")
        md.append("")
        md.append("### Fan-out: every step\n")
        md.append("| server | subs | offered/s | delivered/s | lost | p50 µs | p99 µs | p99.9 µs | "
                  "max µs | server CPU µs/delivery | generator CPU s |")
        md.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in sorted(fan, key=lambda r: (r["subs"], SERVERS.index(r["server"]),
                                            r["target_deliveries"])):
            L = r["latency"]
            md.append(f"| {label(r['server'])} | {r['subs']} | {fmt(r['target_deliveries'])} | "
                      f"{fmt(r['deliveries_per_s'])} | {r['lost']} | {fmt(L['p50_us'])} | "
                      f"{fmt(L['p99_us'])} | {fmt(L['p999_us'])} | {fmt(L['max_us'])} | "
                      f"{fmt(r['server_cpu_us_per_delivery'])} | {fmt(r['gen_cpu_publish_s'])} |")
        md.append("")
        with open(os.path.join(out, "fanout.dat"), "w") as f:
            f.write("subs " + " ".join(present) + "\n")
            for n in subs_list:
                f.write(f"{n} " + " ".join(
                    str(best.get((s, n), {}).get("deliveries_per_s", "NaN")) for s in present) + "\n")

    # --- fan-out over HTTP, like for like -------------------------------------------------------
    fh = by.get("fanout_http", [])
    if fh:
        md.append("### Fan-out, like for like: one HTTP POST per publication, keep-alive\n")
        md.append("Every server gets each publication as one HTTP POST on one keep-alive "
                  "connection (Herald `POST /api/v1/Publish` with `{\"channel\",\"data\"}`, nchan "
                  "`POST /pub/<channel>`), with the same number of requests in flight (pipelined); "
                  "the offered rate rises step by step as in the streamed rows (uWS: "
                  "`POST /pub/<channel>` as nchan). Highest "
                  "delivered/s of a step without loss, and server CPU per delivery at the lowest "
                  "step. The baseline server takes UDP triggers only and is not in these rows.\n")
        best, ref = {}, {}
        for r in fh:
            k = (r["server"], r["subs"], r["inflight"], r.get("round", 1))
            if r["lost"] == 0 and r["ready"] == r["subs"] and r.get("publish_errors", 0) == 0 and (
                    k not in best or r["deliveries_per_s"] > best[k]["deliveries_per_s"]):
                best[k] = r
            if k not in ref or r["target_deliveries"] < ref[k]["target_deliveries"]:
                ref[k] = r
        fh_rounds = sorted({r.get("round", 1) for r in fh})
        if len(fh_rounds) > 1:
            md.append(rounds_note(len(fh_rounds), ranges=False))

        def median_of(table, key, x, n, w):
            v = [table[(x, n, w, rd)][key] for rd in fh_rounds if (x, n, w, rd) in table]
            return statistics.median(v) if v else None

        http_servers = [x for x in present if x != "ceiling"]
        http_peers = [x for x in http_servers if x != "herald"]
        md.append("| subscribers | in flight | " +
                  " | ".join(f"{label(x)} deliveries/s" for x in http_servers) + " | " +
                  ratio_head(http_peers) + " | " +
                  " | ".join(f"{label(x)} CPU µs/delivery" for x in http_servers) + " | " +
                  ratio_head(http_peers) + " |")
        md.append("|---|---|" + "---|" * 2 * (len(http_servers) + len(http_peers)))
        per_round = []
        for n, w in sorted({(r["subs"], r["inflight"]) for r in fh}):
            d = {x: median_of(best, "deliveries_per_s", x, n, w) for x in http_servers}
            c = {x: median_of(ref, "server_cpu_us_per_delivery", x, n, w) for x in http_servers}
            md.append(f"| {n} | {w} | " + " | ".join(fmt(d[x]) for x in http_servers) +
                      f" | {ratio_cells(d, http_peers)} | " +
                      " | ".join(fmt(c[x]) for x in http_servers) +
                      f" | {ratio_cells(c, http_peers)} |")
            for peer in http_peers if len(fh_rounds) > 1 else []:
                cells = [ratio(ref[("herald", n, w, rd)]["server_cpu_us_per_delivery"],
                               ref[(peer, n, w, rd)]["server_cpu_us_per_delivery"])
                         for rd in fh_rounds
                         if ("herald", n, w, rd) in ref and (peer, n, w, rd) in ref]
                per_round.append(f"- {n} subscribers, {w} in flight: herald ÷ {label(peer)} CPU "
                                 f"per delivery at the lowest step, round by round: "
                                 f"{', '.join(cells)}")
        if per_round:
            md.append("")
            md.extend(per_round)
        md.append("")
        md.append("Every step:\n")
        md.append("| server | subs | in flight | offered/s | delivered/s | publishes/s | lost | "
                  "publish errors | p50 µs | p99 µs | server CPU µs/delivery | publisher "
                  "connections |")
        md.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in sorted(fh, key=lambda r: (r["subs"], r["inflight"], SERVERS.index(r["server"]),
                                           r["target_deliveries"])):
            L = r["latency"]
            md.append(f"| {label(r['server'])} | {r['subs']} | {r['inflight']} | "
                      f"{fmt(r['target_deliveries'])} | {fmt(r['deliveries_per_s'])} | "
                      f"{fmt(r['publish_rate'])} | {r['lost']} | {r.get('publish_errors', 0)} | "
                      f"{fmt(L['p50_us'])} | {fmt(L['p99_us'])} | "
                      f"{fmt(r['server_cpu_us_per_delivery'])} | {r.get('pub_connects', '–')} |")
        md.append("")

    hp = defaultdict(list)
    for r in by.get("http_publish", []):
        hp[(r["inflight"], r["server"])].append(r)
    if hp:
        md.append("### Publishes/s over one keep-alive HTTP connection\n")
        md.append("One publisher connection, as fast as the replies allow, one subscriber checking "
                  "every publication; servers alternate. Median of the runs (range).\n")
        md.append("| in flight | server | runs | publishes/s | server CPU µs/publish | lost | "
                  "publish errors | publisher connections |")
        md.append("|---|---|---|---|---|---|---|---|")
        med = {}
        for (w, server), runs in sorted(hp.items()):
            for r in runs:
                r["_cpu_per_pub"] = (r["server_cpu_s"] * 1e6 / r["published"]
                                     if r["published"] else 0)
            v = sorted(r["publish_rate"] for r in runs)
            med[(w, server)] = statistics.median(v)
            rng = "" if len(v) == 1 else f" ({fmt(v[0])}–{fmt(v[-1])})"
            cpu = statistics.median(r["_cpu_per_pub"] for r in runs)
            md.append(f"| {w} | {label(server)} | {len(runs)} | {fmt(med[(w, server)])}{rng} | "
                      f"{fmt(cpu)} | {sum(r['lost'] for r in runs)} | "
                      f"{sum(r.get('publish_errors', 0) for r in runs)} | "
                      f"{max(r.get('pub_connects', 0) for r in runs)} |")
        md.append("")
        for w in sorted({w for w, _ in hp}):
            md.append(f"- {w} in flight: " +
                      ratio_line({x: med.get((w, x)) for x in present}, peers))
        md.append("")

    hl = by.get("http_publish_ladder", [])
    if hl:
        md.append("### Loss-free publishes/s over one keep-alive HTTP connection, pipelined\n")
        md.append("The same ladder of offered publish rates for every server (paced by the "
                  "generator, the same requests in flight on one connection, one subscriber "
                  "checking every publication): the highest step delivered without a loss and at "
                  "90% of its rate or more, and the server CPU per publish at that step.\n")
        best = {}
        for r in hl:
            k = (r["server"], r["inflight"])
            ok = (r["lost"] == 0 and r.get("publish_errors", 0) == 0 and
                  r["deliveries_per_s"] >= 0.9 * r["target_publishes"])
            if ok and (k not in best or r["target_publishes"] > best[k]["target_publishes"]):
                best[k] = r
        ladder_servers = [x for x in present if x != "ceiling"]
        md.append("| in flight | server | highest loss-free step/s | delivered/s there | "
                  "server CPU µs/publish there | first failing step: delivered/s, lost |")
        md.append("|---|---|---|---|---|---|")
        for w in sorted({r["inflight"] for r in hl}):
            for x in ladder_servers:
                b = best.get((x, w))
                fail = [r for r in hl if r["server"] == x and r["inflight"] == w and
                        r is not b and (b is None or r["target_publishes"] > b["target_publishes"])]
                f = min(fail, key=lambda r: r["target_publishes"]) if fail else None
                md.append(f"| {w} | {label(x)} | {fmt(b['target_publishes']) if b else 'none'} | "
                          f"{fmt(b['deliveries_per_s']) if b else '–'} | "
                          f"{fmt(b['server_cpu_us_per_delivery']) if b else '–'} | "
                          + (f"{fmt(f['target_publishes'])}/s: {fmt(f['deliveries_per_s'])}, "
                             f"{f['lost']} |" if f else "(the ladder's top) |"))
            md.append(f"- {w} in flight, highest loss-free step: " + ratio_line(
                {x: best[(x, w)]["target_publishes"] if (x, w) in best else None
                 for x in present}, peers))
        md.append("")

    def via(r):
        """How a row's publications reached the server (like for like: the same in every row)."""
        m = r.get("publish", "")
        return {"http-api": "HTTP POST", "http": "HTTP POST", "grpc": "gRPC unary",
                "grpc-stream": "gRPC stream", "udp": "UDP (baseline)"}.get(m, m) + (
            f", {r['pub_inflight']} in flight" if m.startswith("http") and "pub_inflight" in r
            else "")

    # --- latency ---------------------------------------------------------------------------------
    for scenario, title, note in (
            ("latency", "1000 subscribers × 50 msg/s", ""),
            ("latency9k", "9000 subscribers × 2 msg/s",
             "One 9k fan-out at a time: the p99 is the time to reach almost every subscriber of "
             "one publication, against a serial loop's floor of 9000 × the per-delivery cost "
             "(the lowest server CPU per delivery of the round).\n")):
        lat = by_server(by.get(scenario, []))
        if not lat:
            continue
        rounds = max(len(v) for v in lat.values())
        md.append(f"### Latency at fixed load: {title}\n")
        if note:
            md.append(note)
        if rounds > 1:
            md.append(rounds_note(rounds))
        md.append("| server | published via | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | lost | "
                  "server CPU µs/delivery |")
        md.append("|---|---|---|---|---|---|---|---|---|")
        for s in SERVERS:
            if s in lat:
                runs = lat[s]
                L = [r["latency"] for r in runs]
                md.append(f"| {label(s)} | {via(runs[0])} | {spread(L, 'p50_us')} | "
                          f"{spread(L, 'p90_us')} | {spread(L, 'p99_us')} | "
                          f"{spread(L, 'p999_us')} | {spread(L, 'max_us')} | "
                          f"{sum(r['lost'] for r in runs)} | "
                          f"{spread(runs, 'server_cpu_us_per_delivery')} |")
        p = {s: statistics.median(r["latency"]["p99_us"] for r in runs) for s, runs in lat.items()}
        md.append(f"\np99 {'medians ' if rounds > 1 else ''}{ratio_line(p, peers)}\n")
        # Round by round: Herald's p99 against each peer's, and (9k) against the serial floor.
        rounds_of = by_round(lat)
        lines = []
        for peer in peers:
            per = [ratio(rd["herald"]["latency"]["p99_us"], rd[peer]["latency"]["p99_us"])
                   for rd in rounds_of.values() if "herald" in rd and peer in rd]
            if rounds > 1 and per:
                lines.append(f"- herald ÷ {label(peer)} p99, round by round: {', '.join(per)}")
        if scenario == "latency9k" and "herald" in lat:
            per = []
            for rd in rounds_of.values():
                if "herald" not in rd:
                    continue
                cpu = [r["server_cpu_us_per_delivery"] for r in rd.values()
                       if r["server_cpu_us_per_delivery"] > 0 and r["lost"] == 0]
                floor = 9000 * min(cpu) if cpu else None
                per.append(f"{ratio(rd['herald']['latency']['p99_us'], floor)} (floor "
                           f"{fmt(floor / 1000 if floor else None)} ms)")
            lines.append(f"- herald p99 ÷ the serial-write floor, round by round: {', '.join(per)}")
        if lines:
            md.extend(lines + [""])

    # --- channels --------------------------------------------------------------------------------
    ch = {r["server"]: r for r in by.get("channels", [])}
    if ch:
        md.append("### Many channels, one subscriber each\n")
        md.append("| server | published via | channels | delivered/s | lost | p50 µs | p99 µs | "
                  "server CPU µs/delivery |")
        md.append("|---|---|---|---|---|---|---|---|")
        for s in SERVERS:
            if s in ch:
                r = ch[s]
                md.append(f"| {s} | {via(r)} | {r['channels']} | {fmt(r['deliveries_per_s'])} | {r['lost']} | "
                          f"{fmt(r['latency']['p50_us'])} | {fmt(r['latency']['p99_us'])} | "
                          f"{fmt(r['server_cpu_us_per_delivery'])} |")
        md.append("")

    # --- gRPC ------------------------------------------------------------------------------------
    g = by.get("grpc", [])
    if g:
        md.append("### Control API (gRPC), herald\n")
        md.append("Unary: each client thread keeps `window` calls in flight. Stream: one stream per "
                  "thread, `batch` requests per stream message (a `PublishBatch` when > 1); "
                  "calls/s counts publications (orders) applied.\n")
        md.append("| mode | data | client threads | window | batch | calls/s | errors | "
                  "server CPU µs/call | client CPU s |")
        md.append("|---|---|---|---|---|---|---|---|---|")
        for r in g:
            data = r.get("data", "value") + ("" if r.get("payload", "short") == "short"
                                             else f", {r['payload']}")
            md.append(f"| {r['mode']} | {data} | {r['threads']} | {r.get('window', 1)} | "
                      f"{r.get('batch', 1)} | {fmt(r['calls_per_s'])} | {r['errors']} | "
                      f"{fmt(r['server_cpu_us_per_call'])} | {fmt(r['client_cpu_s'])} |")
        md.append("")

    # --- storm / idle / slow ---------------------------------------------------------------------
    st = by_server(by.get("storm", []))
    if st:
        rounds = max(len(v) for v in st.values())
        md.append("### Connect storm\n")
        if rounds > 1:
            md.append(rounds_note(rounds))
        md.append("| server | connections | rounds | failed | handshakes/s | "
                  "server CPU µs/handshake | handshake p50 ms | p99 ms |")
        md.append("|---|---|---|---|---|---|---|---|")
        for s in ["herald", "herald-jwt", "nchan", "uws", "ceiling"]:
            if s in st:
                runs = st[s]
                hs = [dict(p50=r["handshake_latency"]["p50_us"] / 1000,
                           p99=r["handshake_latency"]["p99_us"] / 1000) for r in runs]
                md.append(f"| {label(s)} | {runs[0]['subs']} | {len(runs)} | "
                          f"{sum(r['connect_failed'] for r in runs)} | "
                          f"{spread(runs, 'connect_per_s')} | "
                          f"{spread(runs, 'server_cpu_us_per_connect')} | {spread(hs, 'p50')} | "
                          f"{spread(hs, 'p99')} |")
        v = {s: statistics.median(r["connect_per_s"] for r in runs) for s, runs in st.items()}
        if peers:
            md.append(f"\n{'Medians: ' if rounds > 1 else ''}{ratio_line(v, peers)}, herald with "
                      f"JWT/nchan: {ratio(v.get('herald-jwt'), v.get('nchan'))} (herald-jwt: every "
                      "handshake carries an HS256 `?token=`)\n")
        else:
            md.append("")
        if rounds > 1 and "nchan" in st:
            # The same ratios round by round: each round's servers ran back to back.
            for s in ["herald", "herald-jwt"]:
                per = [ratio(rd[s]["connect_per_s"], rd["nchan"]["connect_per_s"])
                       for rd in by_round(st).values() if s in rd and "nchan" in rd]
                if per:
                    md.append(f"- {label(s)} ÷ nchan, round by round: {', '.join(per)}")
            md.append("")
    idle = {r["server"]: r for r in by.get("idle", [])}
    if idle:
        md.append("### Idle connections: server RSS per connection\n")
        md.append("| server | connections held | RSS before | RSS with all open | bytes/connection |")
        md.append("|---|---|---|---|---|")
        for s in SERVERS:
            if s in idle:
                r = idle[s]
                md.append(f"| {label(s)} | {r['ready']} | {r['server_rss_before'] / 2**20:.1f} MiB | "
                          f"{r['server_rss_ready'] / 2**20:.1f} MiB | "
                          f"{fmt(r['server_rss_per_conn'])} |")
        md.append("")
    slow = {r["server"]: r for r in by.get("slow", [])}
    if slow:
        md.append("### 1% slow readers (never read), 1 KB publications\n")
        md.append("| server | published via | subs | slow | fast lost | fast p50 µs | fast p99 µs | "
                  "RSS ready MiB | RSS end MiB |")
        md.append("|---|---|---|---|---|---|---|---|---|")
        for s in SERVERS:
            if s in slow:
                r = slow[s]
                md.append(f"| {label(s)} | {via(r)} | {r['subs']} | {r['slow_subscribers']} | {r['lost']} | "
                          f"{fmt(r['latency']['p50_us'])} | {fmt(r['latency']['p99_us'])} | "
                          f"{r['server_rss_ready'] / 2**20:.1f} | {r['server_rss_end'] / 2**20:.1f} |")
        md.append("")

    # --- TLS: Herald with and without, same run --------------------------------------------------
    tf = defaultdict(list)
    for r in by.get("tls_fanout", []):
        tf[(r["target_deliveries"], r["server"])].append(r)
    ts = defaultdict(list)
    for r in by.get("tls_storm", []):
        ts[r["server"]].append(r)
    if tf or ts:
        md.append("### What TLS costs (Herald with and without TLS, same run)\n")
        md.append("Runs alternate plain and TLS; each cell is the median of the runs, with the range "
                  "in parentheses.\n")
    if tf:
        md.append("One channel, 1000 subscribers, fixed offered rate; wss:// with an ECDSA P-256 "
                  "certificate, TLS 1.3 (AES-256-GCM).\n")
        md.append("| server | offered deliveries/s | runs | delivered/s | lost | "
                  "server CPU µs/delivery | p50 µs | p99 µs |")
        md.append("|---|---|---|---|---|---|---|---|")
        for (target, server), runs in sorted(tf.items()):
            lat = [dict(p50=r["latency"]["p50_us"], p99=r["latency"]["p99_us"]) for r in runs]
            md.append(f"| {server} | {fmt(target)} | {len(runs)} | "
                      f"{spread(runs, 'deliveries_per_s')} | {sum(r['lost'] for r in runs)} | "
                      f"{spread(runs, 'server_cpu_us_per_delivery')} | "
                      f"{spread(lat, 'p50')} | {spread(lat, 'p99')} |")
        md.append("")
    if ts:
        md.append("Connect storm, 1000 handshakes in flight (no subscribe; every wss:// connection "
                  "a full handshake, no session resumption):\n")
        md.append("| server | connections | runs | handshakes/s | server CPU µs/handshake | "
                  "handshake p50 ms |")
        md.append("|---|---|---|---|---|---|")
        for s in ["herald", "herald-tls"]:
            if s in ts:
                runs = ts[s]
                p50 = [dict(ms=r["handshake_latency"]["p50_us"] / 1000) for r in runs]
                md.append(f"| {s} | {runs[0]['subs']} | {len(runs)} | "
                          f"{spread(runs, 'connect_per_s')} | "
                          f"{spread(runs, 'server_cpu_us_per_connect')} | {spread(p50, 'ms')} |")
        md.append("")

    ti = {r["server"]: r for r in by.get("tls_idle", [])}
    if ti:
        md.append("Idle connections (5000 held; RSS growth per connection):\n")
        md.append("| server | connections | RSS before | RSS with all open | bytes/connection |")
        md.append("|---|---|---|---|---|")
        for s in ["herald", "herald-tls"]:
            if s in ti:
                r = ti[s]
                md.append(f"| {label(s)} | {r['ready']} | {r['server_rss_before'] / 2**20:.1f} MiB | "
                          f"{r['server_rss_ready'] / 2**20:.1f} MiB | "
                          f"{fmt(r['server_rss_per_conn'])} |")
        md.append("")

    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    plots(out, bool(fan), bool(lat))
    if docs:
        os.makedirs("docs/img", exist_ok=True)
        for name in ("bench_fanout.png", "bench_latency_cdf.png"):
            if os.path.exists(os.path.join(out, name)):
                shutil.copy(os.path.join(out, name), os.path.join("docs/img", name))
    print("\n".join(md))


def plots(out, fan, lat):
    if shutil.which("gnuplot") is None:
        return
    script = ["set terminal pngcairo size 900,540 font ',11'" if has_cairo() else
              "set terminal png size 900,540", "set grid", "set key top left"]
    if fan:
        script += [
            f"set output '{out}/bench_fanout.png'",
            "set title 'Fan-out: highest delivered/s without loss (2 cores, shared)'",
            "set xlabel 'subscribers of one channel'", "set ylabel 'deliveries/s'",
            "set logscale x", "set format y '%.0s%c'", "set key autotitle columnhead",
            "set datafile missing 'NaN'", "set xrange [70:13000]",
            f"plot for [i=2:4] '{out}/fanout.dat' using 1:i with linespoints lw 2 "
            "title columnhead(i)",
            "unset logscale x", "set format y", "set key noautotitle", "set autoscale x",
        ]
    if lat:
        files = [(s, f"{out}/latency_cdf_{s}.dat") for s in SERVERS
                 if os.path.exists(f"{out}/latency_cdf_{s}.dat")]
        script += [
            f"set output '{out}/bench_latency_cdf.png'",
            "set title 'Publish→deliver latency CDF, 1000 subscribers × 50 msg/s'",
            "set xlabel 'latency (µs, log)'", "set ylabel 'fraction of deliveries'",
            "set logscale x", "set key bottom right", "set yrange [0:1]",
            "plot " + ", ".join(f"'{p}' using 1:2 with lines lw 2 title '{s}'" for s, p in files),
        ]
    subprocess.run(["gnuplot"], input="\n".join(script) + "\n", text=True, check=False)


def has_cairo():
    r = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True)
    return "pngcairo" in (r.stdout + r.stderr)


if __name__ == "__main__":
    main()
