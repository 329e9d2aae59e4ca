"""Turns a run's raw results into the Markdown report: per-scenario tables, a summary with
ratios (ours / each reference) and the targets, met or missed.

Repeated scenarios have one result per round (``res["rounds"]``). The summary gives each
figure as the median over the rounds with the min-max spread, and each ratio as the median of
the per-round ratios (the rounds interleave the targets, so a round's ratio compares runs taken
close together) with their spread. The per-scenario tables show each target's median round."""

from __future__ import annotations

from typing import Any

REFS = ["node", "pysio", "flask"]
P99_MS, DELIVERED = 50.0, 0.999


def sustainable(steps: list[dict[str, Any]], top: int = 0) -> tuple[int, bool]:
    """Highest offered deliveries/s with p99 <= 50 ms and >= 99.9 % delivered, counting no
    generator-bound step; ``True`` when every step above it was generator-bound (or it is the
    top of a fixed ladder): the server never failed where measured, so its real limit is higher."""
    ok = [s["offered_deliveries_s"] for s in steps if s["p99_ms"] <= P99_MS and s["delivered_ratio"] >= DELIVERED
          and not s.get("generator_bound")]
    best = max(ok) if ok else 0
    above = [s for s in steps if s["offered_deliveries_s"] > best]
    capped = (bool(above) and all(s.get("generator_bound") for s in above)) or bool(top and best >= top)
    return best, capped


def headline(scenario: str, r: Any) -> float:
    """The one figure a round of a scenario is ranked by."""
    if scenario == "fanout":
        return float(sustainable(r)[0])
    if scenario == "idle":
        return float(r[0]["kib_per_conn"]) if r else 0.0
    if scenario == "rooms":
        return float(r["p99_ms"])
    return float(r["closed"]["acks_s"])


def median_round(scenario: str, rounds: list[Any]) -> Any:
    """The round whose headline figure is the median (the lower middle one for an even count)."""
    ranked = sorted(rounds, key=lambda r: headline(scenario, r))
    return ranked[(len(ranked) - 1) // 2]


def med(values: list[float]) -> float:
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def spread(values: list[float], fmt: str = "{:,.0f}") -> str:
    """``median [min-max]`` (just the value for one round)."""
    if not values:
        return "-"
    m = fmt.format(med(values))
    return m if len(values) == 1 else f"{m} [{fmt.format(min(values))}-{fmt.format(max(values))}]"


def _n(x: float) -> str:
    return f"{x:,.0f}"


def fanout_table(res: dict[str, Any]) -> list[str]:
    lines = ["| target | offered deliveries/s | delivered | p50 ms | p99 ms | max ms | server cores | loadgen cores | other cores |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, steps in res.get("fanout", {}).items():
        for s in steps:
            retried = " (repeated: noisy)" if "retried_after_other_cpu" in s else ""
            retried += " generator-bound: not counted" if s.get("generator_bound") else ""
            lines.append(f"| {name} | {_n(s['offered_deliveries_s'])} | {s['delivered_ratio'] * 100:.2f} % | {s['p50_ms']} | "
                         f"{s['p99_ms']} | {s['max_ms']} | {s.get('server_cpu', 0):.2f} | {s['loadgen_cpu']:.2f} | "
                         f"{s.get('other_cpu', 0):.2f}{retried} |")
    return lines


def _figures(res: dict[str, Any], scenario: str, name: str, fig: Any) -> list[float]:
    return [fig(r) for r in res.get("rounds", {}).get(scenario, {}).get(name, [])]


def _ratios(res: dict[str, Any], scenario: str, a: str, b: str, fa: Any, fb: Any) -> list[float]:
    """Per-round ratios fa(a's round i) / fb(b's round i)."""
    ra = res.get("rounds", {}).get(scenario, {}).get(a, [])
    rb = res.get("rounds", {}).get(scenario, {}).get(b, [])
    return [fa(x) / fb(y) for x, y in zip(ra, rb, strict=False) if fb(y)]


def summary(res: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The summary table (median [min-max] over the rounds) and the targets table."""
    rounds = res.get("rounds", {})
    n = res["plan"].get("repeat", 1)
    lines = [f"| metric | ours | reference | ours / reference (median of {n} rounds [min-max]) |",
             "|---|---:|---:|---:|"]
    targets = ["| target | measured (median [min-max]) | met |", "|---|---|---|"]

    def fan(r: list[dict[str, Any]]) -> float:
        return float(sustainable(r)[0])

    def fan_cell(name: str) -> str:
        figures = _figures(res, "fanout", name, fan)
        if figures and not any(figures):  # no step passed: below the lowest rate offered
            low = min(s["offered_deliveries_s"] for r in rounds["fanout"][name] for s in r)
            return f"< {_n(low)} (no step passed)"
        return spread(figures)

    def capped(name: str) -> str:
        return " (generator-bound above)" if any(sustainable(r)[1] for r in rounds.get("fanout", {}).get(name, [])) else ""

    for ref in [r for r in REFS if r in rounds.get("fanout", {})]:
        if "ours" not in rounds["fanout"]:
            break
        ratios = _ratios(res, "fanout", "ours", ref, fan, fan)
        lines.append(f"| sustainable fan-out, deliveries/s (p99 ≤ 50 ms, ≥ 99.9 %) vs {ref} | "
                     f"{fan_cell('ours')}{capped('ours')} | {fan_cell(ref)}{capped(ref)} | {spread(ratios, '{:.2f}')} |")
        if ref == "node" and ratios:
            bound = {"ours": capped("ours"), "node": capped("node")}
            note = (" (Node's knee above the generator: an upper bound)" if bound["node"] and not bound["ours"]
                    else " (ours' knee above the generator: a lower bound)" if bound["ours"] and not bound["node"]
                    else " (both above the generator)" if bound["ours"] else "")
            # a lower bound under the target says nothing either way; an upper bound over it neither
            lower, upper = bound["ours"] and not bound["node"], bound["node"] and not bound["ours"]
            met = ("yes" if med(ratios) >= 1.0 and not upper else "no" if med(ratios) < 1.0 and not lower
                   else "not measurable here (the generator's limit)")
            targets.append(f"| fan-out ≥ 1.0x Node | {spread(ratios, '{:.2f}')}{note} | {met} |")
    idle = rounds.get("idle", {})
    if idle.get("ours"):
        counts = [it["clients"] for it in idle["ours"][0]]
        for i, c in enumerate(counts):
            def kib(r: list[dict[str, Any]], i: int = i) -> float:
                return float(r[i]["kib_per_conn"]) if len(r) > i else 0.0
            for ref in [r for r in REFS if r in idle]:
                ratios = _ratios(res, "idle", "ours", ref, kib, kib)
                lines.append(f"| idle memory per connection at {_n(c)}, KiB (lower is better) vs {ref} | "
                             f"{spread(_figures(res, 'idle', 'ours', kib), '{:.2f}')} | "
                             f"{spread(_figures(res, 'idle', ref, kib), '{:.2f}')} | {spread(ratios, '{:.2f}')} |")
                if ref == "node" and ratios:
                    targets.append(f"| idle memory ≤ 1.0x Node at {_n(c)} | {spread(ratios, '{:.2f}')} | "
                                   f"{'yes' if med(ratios) <= 1.0 else 'no'} |")
    rooms = rounds.get("rooms", {})
    if rooms.get("ours"):
        def p99(r: dict[str, Any]) -> float:
            return float(r["p99_ms"])
        for ref in [r for r in REFS if r in rooms]:
            lines.append(f"| many rooms ({_n(rooms['ours'][0]['clients'])} connections): p99 ms (lower is better) vs "
                         f"{ref} | {spread(_figures(res, 'rooms', 'ours', p99), '{:.1f}')} | "
                         f"{spread(_figures(res, 'rooms', ref, p99), '{:.1f}')} | "
                         f"{spread(_ratios(res, 'rooms', 'ours', ref, p99, p99), '{:.2f}')} |")
        worst = max(p99(r) for r in rooms["ours"])
        delivered = min(r["delivered_ratio"] for r in rooms["ours"])
        targets.append(f"| many rooms: p99 ≤ 50 ms (the fan-out bound) and ≥ 99.9 % delivered in every round | "
                       f"p99 {spread(_figures(res, 'rooms', 'ours', p99), '{:.1f}')} ms, lowest delivered "
                       f"{delivered * 100:.2f} % | {'yes' if worst <= P99_MS and delivered >= DELIVERED else 'no'} |")
    persist = rounds.get("persist", {}).get("ours", [])
    if persist:
        def acks(r: dict[str, Any], key: str) -> float:
            return float(r.get(key, {}).get("acks_s", 0))

        ours = [acks(r, "closed") for r in persist]
        for key, label in (("nodepg", "Node+pg"), ("limit", "database limit, one insert per message"),
                           ("limit_batched", "database limit, batched")):
            refs = [acks(r, key) for r in persist]
            ratios = [a / b for a, b in zip(ours, refs, strict=True) if b]
            lines.append(f"| persisted send, closed loop ({persist[0]['closed']['clients']} clients), acks/s vs {label} | "
                         f"{spread(ours)} | {spread(refs)} | {spread(ratios, '{:.2f}')} |")
            if key == "nodepg" and ratios:
                targets.append(f"| persisted send ≥ 1.0x Node+pg | {spread(ratios, '{:.2f}')} | "
                               f"{'yes' if med(ratios) >= 1.0 else 'no'} |")
            if key == "limit_batched" and ratios:
                targets.append(f"| persisted send ≥ 0.5x the database's limit (batched) | {spread(ratios, '{:.2f}')} | "
                               f"{'yes' if med(ratios) >= 0.5 else 'no'} |")

        def us(r: dict[str, Any], key: str) -> float:
            x = r.get(key, {})
            return float(x.get("server_cpu", 0)) / x["acks_s"] * 1e6 if x.get("acks_s") else 0.0

        ratios = [us(r, "closed") / us(r, "nodepg") for r in persist if us(r, "nodepg")]
        lines.append(f"| server CPU per acked message, µs (with PostgreSQL, Redis; lower is better) vs Node+pg | "
                     f"{spread([us(r, 'closed') for r in persist])} | {spread([us(r, 'nodepg') for r in persist])} | "
                     f"{spread(ratios, '{:.2f}')} |")
    tn = res.get("two_nodes", {}).get("ours")
    if tn and tn.get("one") and tn.get("two"):
        one = {s["offered_deliveries_s"]: s for s in tn["one"]}
        diffs = [(s["offered_deliveries_s"], s["p99_ms"] - one[s["offered_deliveries_s"]]["p99_ms"])
                 for s in tn["two"] if s["offered_deliveries_s"] in one]
        worst_d = max(diffs, key=lambda d: d[1]) if diffs else (0, 0.0)
        targets.append(f"| two nodes: p99 ≤ one node + 10 ms (one round) | worst {worst_d[1]:+.1f} ms (at {_n(worst_d[0])}/s) | "
                       f"{'yes' if worst_d[1] <= 10 else 'no'} |")
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
           f"({plan['loadgen_workers']} worker process(es))."
           + (f" The hypervisor took {m['steal_cores']:.2f} cores on average over the run (steal): the host was"
              " busy, and this run's figures are lower and noisier than a quiet machine's." if m.get("steal_cores", 0) >= 0.05
              else ""), ""]
    summary_lines, target_lines = summary(res)
    out += ["### Summary (ratios: ours / reference)", "", *summary_lines, "", "### Targets", "", *target_lines, ""]
    if plan.get("repeat", 1) > 1:
        out += [f"Per-scenario tables below: each target's median round of {plan['repeat']}.", ""]
    if res.get("fanout"):
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
        out += ["### Persisted send (each client in its own room; one PostgreSQL: chat-server's embedded one)", "",
                "| target | load | offered msgs/s | acks/s | acked | p50 ms | p99 ms | max ms | errors | server cores | "
                "server µs per ack | loadgen cores |",
                "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        labels = {"closed": ("ours", "closed loop, one in flight per client"),
                  "nodepg": ("Node+pg", "closed loop, one in flight per client"),
                  "limit": ("database limit", "asyncpg, one insert per message"),
                  "limit_batched": ("database limit", "asyncpg, batched (SendBatcher)")}
        for r in res["persist"].values():
            rows = [(*labels[k], r[k]) for k in labels if k in r] + [("ours", "open loop", x) for x in r.get("open", [])]
            for who, label, x in rows:
                offered = "-" if x.get("closed_loop") else _n(x["offered_msgs_s"])
                cpu = x.get("server_cpu", 0)
                per = f"{cpu / x['acks_s'] * 1e6:,.0f}" if x.get("acks_s") else "-"
                out.append(f"| {who} | {label} ({x['clients']} clients) | {offered} | {_n(x['acks_s'])} | "
                           f"{x['delivered_ratio'] * 100:.2f} % | {x['p50_ms']} | {x['p99_ms']} | {x['max_ms']} | "
                           f"{x['errors']} | {cpu:.2f} | {per} | {x.get('loadgen_cpu', 0):.2f} |")
            if r.get("nodepg_error"):
                out.append(f"| Node+pg | did not run: {r['nodepg_error'][:200]} | | | | | | | | | | |")
        out += ["", "Server cores: ours = chat-server + its PostgreSQL + Redis; Node+pg = node + PostgreSQL; "
                "database limit = PostgreSQL alone (its asyncpg client runs on the load generator's CPU).", ""]
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
