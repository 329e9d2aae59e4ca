"""Many connections on one server process: ``python -m bench.many_connections``.

The issue's scenario: 50,000 idle and 5,000 active connections (rooms of 10, one message per room
per second) on one process of each target, in the same run (``scenarios.many_connections``).
Each target gets a fresh process on the server CPU; the load generator runs on the other CPU.

Two limits of the machine are raised first, or the client side runs out before the server does:
- file descriptors: the harness raises its own ``RLIMIT_NOFILE`` (soft and hard, as root up to
  ``fs.nr_open``) to what every process needs; servers and load-generator workers inherit it;
- ephemeral ports: one source address has ~28,000 ports towards one server address and port
  (``net.ipv4.ip_local_port_range``), so clients connect from 127.0.0.2, 127.0.0.3, ... (every
  127/8 address is local on Linux), at most ``PER_SOURCE`` each.

Counts are parameters: ``--idle 10000 --active 1000`` runs a smaller version. Prints a Markdown
table and writes ``bench/results/<date>-many[-<tag>].md`` and ``.json`` (``--no-write``: print only).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .scenarios import many_connections, say
from .targets import Target

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PER_SOURCE = 20_000  # connections per loopback source address, under the ~28,000 ephemeral ports
FD_MARGIN = 500  # the server's own files, its PostgreSQL and Redis connections, the listener


def raise_fd_limit(need: int) -> int:
    """Raise this process's open-file limit to at least ``need`` (children inherit it); the limit set."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return soft
    target = need
    if hard < need:
        try:
            ceiling = int(Path("/proc/sys/fs/nr_open").read_text())
        except OSError:
            ceiling = need
        target = min(need, ceiling)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, target))  # a hard limit above: root only
            return target
        except (ValueError, OSError):
            target = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def sources_for(connections: int, per_source: int = PER_SOURCE) -> list[str]:
    return [f"127.0.0.{2 + k}" for k in range(max(1, -(-connections // per_source)))]


def table(res: dict[str, Any]) -> str:
    lines = [
        "| target | idle + active | sources | connect idle, s | RSS fresh / idle / all / peak, MiB | KiB per connection "
        "| server cores, idle only | delivered | p50 ms | p99 ms | max ms | server cores, active | loadgen cores |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in res["targets"].items():
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error'][:200]} |" + " |" * 11)
            continue
        s = r["step"]
        mib = " / ".join(f"{r[k] / 1024:.1f}" for k in ("rss_base_kib", "rss_idle_kib", "rss_connected_kib",
                                                          "rss_peak_kib"))
        lines.append(f"| {name} | {r['idle']:,} + {r['active']:,} | {r['sources']} | {r['idle_connect_s']} | {mib} "
                     f"| {r['kib_per_conn']} | {r['idle_server_cpu']} | {s['delivered_ratio'] * 100:.2f} % "
                     f"| {s['p50_ms']} | {s['p99_ms']} | {s['max_ms']} | {s.get('server_cpu', '-')} | {s['loadgen_cpu']} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.many_connections")
    p.add_argument("--idle", type=int, default=50_000, help="idle connections (no room)")
    p.add_argument("--active", type=int, default=5_000, help="active connections, in rooms of 10")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of traffic in the active rooms")
    p.add_argument("--targets", default="ours,node")
    p.add_argument("--workers", type=int, default=1, help="load-generator worker processes")
    p.add_argument("--per-source", type=int, default=PER_SOURCE, help="connections per loopback source address")
    p.add_argument("--note", default="", help="a line for the results file (e.g. the machine was shared)")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--tag", help="results file name suffix: bench/results/<date>-many-<tag>.md")
    a = p.parse_args()

    total = a.idle + a.active
    limit = raise_fd_limit(total + 5_000)  # the server's sockets plus its own files, PostgreSQL, Redis
    if limit < total + FD_MARGIN:
        # one process cannot hold more sockets than its open-file limit, and raising the hard limit
        # needs CAP_SYS_RESOURCE; say so instead of failing minutes later at the limit
        sys.exit(f"bench.many_connections: the open-file limit is {limit} and cannot be raised here (a hard "
                 f"limit above it needs root with CAP_SYS_RESOURCE), too few for {total:,} connections in "
                 f"one server process; run with --idle/--active summing to at most {limit - FD_MARGIN:,}")
    sources = sources_for(total, a.per_source)
    os.sched_setaffinity(0, {1})  # the harness stays off the server's CPU
    res: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "idle": a.idle, "active": a.active,
                           "duration": a.duration, "fd_limit": limit, "sources": sources, "note": a.note,
                           "loadavg_start": os.getloadavg(), "targets": {}}
    t0 = time.monotonic()
    for name in [t for t in a.targets.split(",") if t]:
        say(f"== {name}: {a.idle} idle + {a.active} active from {len(sources)} source addresses (fd limit {limit})")
        target = Target(name, cpus=[0])
        try:
            target.start()
            res["targets"][name] = many_connections(target, a.idle, a.active, a.duration, sources, a.workers, [1])
        except Exception as exc:
            res["targets"][name] = {"error": f"{type(exc).__name__}: {str(exc)[:600]}"}
            say(traceback.format_exc())
        finally:
            target.stop()
    res["loadavg_end"] = os.getloadavg()
    res["wall_s"] = round(time.monotonic() - t0)
    text = table(res)
    load = f"load average {res['loadavg_start'][0]:.1f} at the start, {res['loadavg_end'][0]:.1f} at the end (2 cores)"
    print(text)
    print(load)
    if a.no_write:
        return
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    name = f"{stamp}-many" + (f"-{a.tag}" if a.tag else "")
    RESULTS.mkdir(parents=True, exist_ok=True)
    cmd = "python -m bench.many_connections " + shlex.join(sys.argv[1:])
    note = f"{a.note}\n\n" if a.note else ""
    (RESULTS / f"{name}.md").write_text(
        f"# Many connections, {stamp}\n\nCommand: `.venv/bin/{cmd}` ({res['wall_s'] // 60} min {res['wall_s'] % 60} s); "
        f"{load}.\n\n{note}{text}\n")
    (RESULTS / f"{name}.json").write_text(json.dumps(res, indent=1))
    say(f"wrote {RESULTS / name}.md and .json")


if __name__ == "__main__":
    main()
