"""Turns a run's raw results into the Markdown report: per-scenario tables, a summary with
ratios (ours / each reference) and the issue's targets, met or missed."""

from __future__ import annotations

from typing import Any

REFS = ["node", "pysio", "flask"]
P99_MS, DELIVERED = 50.0, 0.999


def sustainable(steps: list[dict[str, Any]], top: int) -> tuple[int, bool]:
    """Highest offered deliveries/s with p99 <= 50 ms and >= 99.9 % delivered; ``True`` when
    that is the ladder's top rate (the real limit is higher than measured)."""
    ok = [s["offered_deliveries_s"] for s in steps if s["p99_ms"] <= P99_MS and s["delivered_ratio"] >= DELIVERED]
    best = max(ok) if ok else 0
    return best, best >= top


def _n(x: float) -> str:
    return f"{x:,.0f}"


def _ratio(ours: float, ref: float, ours_capped: bool = False, ref_capped: bool = False) -> str:
    if not ref:
        return "∞" if ours else "-"
    r = ours / ref
    if ours_capped and not ref_capped:
        return f"≥ {r:.2f}"
    if ref_capped and not ours_capped:
        return f"≤ {r:.2f}"
    if ours_capped and ref_capped:
        return f"≈ {r:.2f} (both at the top rate)"
    return f"{r:.2f}"


def fanout_table(res: dict[str, Any]) -> list[str]:
    lines = ["| target | offered deliveries/s | delivered | p50 ms | p99 ms | max ms | server cores | loadgen cores | other cores |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, steps in res.get("fanout", {}).items():
        for s in steps:
            retried = " (repeated: noisy)" if "retried_after_other_cpu" in s else ""
            lines.append(f"| {name} | {_n(s['offered_deliveries_s'])} | {s['delivered_ratio'] * 100:.2f} % | {s['p50_ms']} | "
                         f"{s['p99_ms']} | {s['max_ms']} | {s.get('server_cpu', 0):.2f} | {s['loadgen_cpu']:.2f} | "
                         f"{s.get('other_cpu', 0):.2f}{retried} |")
    return lines


def summary(res: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The summary table and the targets table."""
    top = max(res["plan"]["rates"])
    fan = {n: sustainable(s, top) for n, s in res.get("fanout", {}).items()}
    refs = [r for r in REFS if r in fan or r in res.get("idle", {})]
    head = "| metric | ours | " + " | ".join(refs) + " | " + " | ".join(f"ours / {r}" for r in refs) + " |"
    lines = [head, "|---|" + "---:|" * (1 + 2 * len(refs))]
    low = min(res["plan"]["rates"])

    def cell(v: int, capped: bool) -> str:
        return f"< {_n(low)}" if not v else f"{'≥ ' if capped else ''}{_n(v)}"

    if "ours" in fan:
        o, oc = fan["ours"]
        cells = [cell(*fan[r]) if r in fan else "-" for r in refs]
        ratios = [("-" if r not in fan else _ratio(o, fan[r][0], oc, fan[r][1]) if fan[r][0]
                   else f"> {o / low:.1f}" if o else "-") for r in refs]
        lines.append(f"| sustainable fan-out, deliveries/s (p99 ≤ 50 ms, ≥ 99.9 %) | {cell(o, oc)} | "
                     + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    idle = res.get("idle", {})
    for i, item in enumerate(idle.get("ours", [])):
        o = item["kib_per_conn"]
        vals = [idle[r][i]["kib_per_conn"] if len(idle.get(r, [])) > i else None for r in refs]
        lines.append(f"| idle memory per connection at {_n(item['clients'])}, KiB (lower is better) | {o} | "
                     + " | ".join("-" if v is None else str(v) for v in vals) + " | "
                     + " | ".join("-" if v is None else _ratio(o, v) for v in vals) + " |")
    rooms = res.get("rooms", {})
    if "ours" in rooms:
        o = rooms["ours"]
        vals = [rooms.get(r) for r in refs]
        lines.append(f"| many rooms: p99 ms at {_n(o['clients'])} connections (lower is better) | {o['p99_ms']} | "
                     + " | ".join("-" if v is None else str(v["p99_ms"]) for v in vals) + " | "
                     + " | ".join("-" if v is None else _ratio(o["p99_ms"], v["p99_ms"]) for v in vals) + " |")

    targets = ["| target | measured | met |", "|---|---|---|"]
    if "ours" in fan and "node" in fan:
        o, oc = fan["ours"]
        nd, nc = fan["node"]
        met = o >= nd and nd > 0
        targets.append(f"| fan-out sustainable ≥ 1.0x Node | {_ratio(o, nd, oc, nc)} ({_n(o)} vs {_n(nd)}) | "
                       f"{'yes' if met else 'no'}{' (both at the ladder top)' if oc and nc else ''} |")
    if idle.get("ours") and idle.get("node"):
        for a, b in zip(idle["ours"], idle["node"], strict=False):
            r = a["kib_per_conn"] / b["kib_per_conn"] if b["kib_per_conn"] else float("inf")
            targets.append(f"| idle memory ≤ 1.0x Node at {_n(a['clients'])} | {r:.2f}x ({a['kib_per_conn']} vs "
                           f"{b['kib_per_conn']} KiB) | {'yes' if r <= 1.0 else 'no'} |")
    if "ours" in rooms:
        o = rooms["ours"]
        met = o["p99_ms"] <= 100 and o["delivered_ratio"] >= DELIVERED and o["clients"] >= 10_000
        note = "" if o["clients"] >= 10_000 else f" (only {_n(o['clients'])} connections in this run)"
        targets.append(f"| 10,000 connections, p99 ≤ 100 ms | p99 {o['p99_ms']} ms, {o['delivered_ratio'] * 100:.2f} % "
                       f"delivered{note} | {'yes' if met else 'no'} |")
    p = res.get("persist", {}).get("ours")
    if p:
        c = p["closed"]
        best = max([s["acks_s"] for s in p["open"] if s["p99_ms"] <= P99_MS and s["delivered_ratio"] >= DELIVERED] or [0])
        met = best >= 3000 or (c["acks_s"] >= 3000 and c["p99_ms"] <= P99_MS)
        targets.append(f"| persisted send ≥ 3,000 acks/s, p99 ≤ 50 ms | open loop: {_n(best)} acks/s within p99 ≤ 50 ms; "
                       f"closed loop: {_n(c['acks_s'])} acks/s, p99 {c['p99_ms']} ms | {'yes' if met else 'no'} |")
    tn = res.get("two_nodes", {}).get("ours")
    if tn and tn.get("one") and tn.get("two"):
        one = {s["offered_deliveries_s"]: s for s in tn["one"]}
        diffs = [(s["offered_deliveries_s"], s["p99_ms"] - one[s["offered_deliveries_s"]]["p99_ms"])
                 for s in tn["two"] if s["offered_deliveries_s"] in one]
        worst = max(diffs, key=lambda d: d[1]) if diffs else (0, 0.0)
        targets.append(f"| two nodes: p99 ≤ one node + 10 ms | worst {worst[1]:+.1f} ms (at {_n(worst[0])}/s) | "
                       f"{'yes' if worst[1] <= 10 else 'no'} |")
    return lines, targets


def two_nodes_table(res: dict[str, Any]) -> list[str]:
    lines = ["| target | offered deliveries/s | one node: delivered, p99 ms | two nodes: delivered, p99 ms | p99 difference ms | server cores (two) |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, r in res.get("two_nodes", {}).items():
        one = {s["offered_deliveries_s"]: s for s in r.get("one", [])}
        for s in r.get("two", []):
            o = one.get(s["offered_deliveries_s"])
            first = f"{o['delivered_ratio'] * 100:.2f} %, {o['p99_ms']}" if o else "-"
            diff = f"{s['p99_ms'] - o['p99_ms']:+.1f}" if o else "-"
            lines.append(f"| {name} | {_n(s['offered_deliveries_s'])} | {first} | {s['delivered_ratio'] * 100:.2f} %, "
                         f"{s['p99_ms']} | {diff} | {s.get('server_cpu', 0):.2f} |")
    return lines


def render(res: dict[str, Any]) -> str:
    plan = res["plan"]
    m = res["machine"]
    out = [f"Machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['mem_gib']} GiB; Python {m['python']}, Node {m['node']}; "
           f"servers on CPU {plan['server_cpus']}, load generator on CPU {plan['loadgen_cpus']} "
           f"({plan['loadgen_workers']} worker process(es)).", ""]
    summary_lines, target_lines = summary(res)
    out += ["### Summary (ratios: ours / reference)", "", *summary_lines, "", "### Targets", "", *target_lines, ""]
    out += [f"### Room fan-out ({_n(plan['clients'])} clients in one room, {plan['senders']} senders, "
            f"{plan['duration']:g} s per step)", "", *fanout_table(res), ""]
    if res.get("idle"):
        out += ["### Idle memory (server process RSS growth / connections)", "",
                "| target | connections | RSS before, MiB | RSS after, MiB | KiB per connection | marginal KiB per connection |",
                "|---|---:|---:|---:|---:|---:|"]
        for name, items in res["idle"].items():
            for it in items:
                out.append(f"| {name} | {_n(it['clients'])} | {it['rss_base_kib'] / 1024:.1f} | {it['rss_kib'] / 1024:.1f} | "
                           f"{it['kib_per_conn']} | {it.get('marginal_kib_per_conn', '-')} |")
        out.append("")
    if res.get("rooms"):
        out += ["### Many rooms (rooms of 10, one message per room per second)", "",
                "| target | connections | rooms | delivered | p50 ms | p99 ms | max ms | server cores |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name, r in res["rooms"].items():
            out.append(f"| {name} | {_n(r['clients'])} | {_n(r['clients'] // 10)} | {r['delivered_ratio'] * 100:.2f} % | "
                       f"{r['p50_ms']} | {r['p99_ms']} | {r['max_ms']} | {r.get('server_cpu', 0):.2f} |")
        out.append("")
    if res.get("persist"):
        out += ["### Persisted send (chat-server; each client in its own room)", "",
                "| load | offered msgs/s | acks/s | acked | p50 ms | p99 ms | max ms | errors | server cores (with PostgreSQL, Redis) |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in res["persist"].values():
            rows = [("closed loop, one in flight per client", r["closed"])] + [("open loop", x) for x in r["open"]]
            for label, x in rows:
                offered = "-" if x.get("closed_loop") else _n(x["offered_msgs_s"])
                out.append(f"| {label} ({x['clients']} clients) | {offered} | {_n(x['acks_s'])} | "
                           f"{x['delivered_ratio'] * 100:.2f} % | {x['p50_ms']} | {x['p99_ms']} | {x['max_ms']} | "
                           f"{x['errors']} | {x.get('server_cpu', 0):.2f} |")
        out.append("")
    if res.get("two_nodes"):
        out += ["### Two nodes over Redis (senders on node A; receivers on A, or split over A and B)", "",
                *two_nodes_table(res), ""]
    if res.get("slow"):
        out += ["### Slow consumers (chat-server; clients that stop reading in a busy room)", "",
                "| queue cap | clients (stalled) | body bytes | offered deliveries/s | readers: delivered | p50 ms | p99 ms | "
                "max ms | RSS before / peak / after, MiB | sessions dropped | server cores |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for label, r in res["slow"].items():
            out.append(f"| {label} | {_n(r['clients'])} ({r['stalled']}) | {_n(r['size'])} | {_n(r['offered_deliveries_s'])} | "
                       f"{r['delivered_ratio'] * 100:.2f} % | {r['p50_ms']} | {r['p99_ms']} | {r['max_ms']} | "
                       f"{r['rss_before_kib'] / 1024:.1f} / {r['rss_peak_kib'] / 1024:.1f} / {r['rss_after_kib'] / 1024:.1f} | "
                       f"{r['drops']:.0f} | {r.get('server_cpu', 0):.2f} |")
        out.append("")
    if res.get("errors"):
        out += ["### Scenarios that failed", "", *[f"- {k}: {v}" for k, v in res["errors"].items()], ""]
    return "\n".join(out)
