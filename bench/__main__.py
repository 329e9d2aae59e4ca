"""``python -m bench run [--quick]``: the benchmark harness; ``python -m bench profile``: py-spy.

``run`` starts each target server pinned to CPU 0 and the load-generator workers pinned to
CPU 1 (the machine has two), runs the scenarios (``bench/scenarios.py``) against each, prints
the Markdown report (``bench/report.py``) and writes ``bench/results/<date>[-quick].md`` and
the raw figures as ``.json``. A scenario that fails is recorded and the run goes on. Before
each target the harness waits (bounded) for the machine to be quiet, and a failed step during
which other processes were busy is repeated: the machine may be shared.

Files: ``loadgen/`` (the load generator), ``targets.py`` (servers), ``scenarios.py``,
``report.py``, ``profile.py``, ``reference/`` (Node, python-socketio, Flask-SocketIO servers).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import resource
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import report, scenarios
from .loadgen.coordinator import machine_busy_s, machine_steal_s
from .scenarios import Plan, say
from .targets import NODE_DIR, Target

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
ALL_TARGETS = ["ours", "node", "pysio", "flask"]
ALL_SCENARIOS = ["idle", "fanout", "rooms", "persist", "two_nodes", "slow"]
# the default run: the ratios against Node (fan-out, memory, many rooms) and the persisted path
# against Node+pg and the database's limit (inside ``persist``), each over ``--repeat`` rounds
DEFAULT_TARGETS = ["ours", "node"]
DEFAULT_SCENARIOS = ["idle", "fanout", "rooms", "persist"]
FANOUT_ONLY = {"flask"}  # Flask-SocketIO is the reference for room fan-out only
TWO_NODE_TARGETS = ["ours", "pysio", "node"]


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    try:
        node = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        node = "-"
    versions = {}
    for pkg in ("python-socketio", "python-engineio", "aiohttp", "uvloop", "orjson", "Flask-SocketIO", "gevent"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = "-"
    sio = NODE_DIR / "node_modules" / "socket.io" / "package.json"
    versions["socket.io (node)"] = json.loads(sio.read_text())["version"] if sio.exists() else "-"
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "mem_gib": round(mem), "python": platform.python_version(),
            "node": node, "platform": platform.platform(), "versions": versions}


def wait_quiet(max_wait: float = 60.0, cores: float = 0.3) -> float:
    """Wait until the machine's busy CPU over one second drops below ``cores`` (bounded);
    returns the last reading."""
    deadline = time.monotonic() + max_wait
    while True:
        b0 = machine_busy_s()
        time.sleep(1.0)
        busy = machine_busy_s() - b0
        if busy < cores or time.monotonic() > deadline:
            if busy >= cores:
                say(f"   the machine is still busy ({busy:.2f} cores) after {max_wait:.0f} s; going on")
            return busy


REPEATED = ("idle", "fanout", "rooms", "persist")  # run ``--repeat`` times, one fresh server per round


def run_target(name: str, plan: Plan, chosen: list[str], res: dict[str, Any], rnd: int) -> None:
    want = [s for s in REPEATED if s in chosen
            and not (name in FANOUT_ONLY and s != "fanout") and not (s == "persist" and name != "ours")]
    if not want:
        return
    wait_quiet(plan.quiet_wait)
    say(f"== {name} (round {rnd + 1} of {plan.repeat})")
    target = Target(name, cpus=plan.server_cpus)
    try:
        target.start()
        for s in want:  # idle first: the RSS baseline of a fresh process
            try:
                if s == "idle":
                    r: Any = scenarios.idle(plan, target)
                elif s == "fanout":
                    r = scenarios.fanout(plan, target, scenarios.fanout_room(target))
                elif s == "rooms":
                    r = scenarios.rooms(plan, target)
                else:
                    r = scenarios.persist(plan, target)
                res["rounds"][s].setdefault(name, []).append(r)
            except Exception as exc:
                res["errors"][f"{name} {s} (round {rnd + 1})"] = f"{type(exc).__name__}: {str(exc)[:600]}"
                say(traceback.format_exc())
                if target.proc is None or target.proc.poll() is not None:
                    break
    except Exception as exc:
        res["errors"][f"{name} start"] = f"{type(exc).__name__}: {str(exc)[:600]}"
        say(traceback.format_exc())
    finally:
        target.stop()


def run(plan: Plan, targets: list[str], chosen: list[str], quick: bool) -> dict[str, Any]:
    res: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "quick": quick,
                           "machine": machine(), "plan": asdict(plan), "targets": targets,
                           "fanout": {}, "idle": {}, "rooms": {}, "persist": {}, "two_nodes": {}, "slow": {}, "errors": {},
                           "rounds": {s: {} for s in REPEATED}}
    t0, steal0 = time.monotonic(), machine_steal_s()
    for rnd in range(plan.repeat):  # rounds interleave the targets: a noisy minute hits them alike
        for name in targets:
            run_target(name, plan, chosen, res, rnd)
    for s in REPEATED:  # the tables show each target's median round
        for name, rounds in res["rounds"][s].items():
            res[s][name] = report.median_round(s, rounds)
    if "two_nodes" in chosen:
        for name in [t for t in TWO_NODE_TARGETS if t in targets]:
            wait_quiet(plan.quiet_wait)
            say(f"== {name}: two nodes")
            try:
                res["two_nodes"][name] = scenarios.two_nodes(plan, name)
            except Exception as exc:
                res["errors"][f"{name} two_nodes"] = f"{type(exc).__name__}: {str(exc)[:600]}"
                say(traceback.format_exc())
    if "slow" in chosen and "ours" in targets:
        wait_quiet(plan.quiet_wait)
        say("== ours: slow consumers")
        try:
            res["slow"] = scenarios.slow_consumers(plan)
        except Exception as exc:
            res["errors"]["ours slow"] = f"{type(exc).__name__}: {str(exc)[:600]}"
            say(traceback.format_exc())
    res["wall_s"] = round(time.monotonic() - t0)
    # a virtual machine whose host is busy loses CPU time its processes wanted: every figure of
    # such a run is lower and noisier, the ratios less so (both sides lose it)
    res["machine"]["steal_cores"] = round((machine_steal_s() - steal0) / max(1.0, time.monotonic() - t0), 3)
    return res


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the scenarios against every target and write bench/results/")
    r.add_argument("--quick", action="store_true", help="a smaller run that finishes in a few minutes")
    r.add_argument("--targets", default=",".join(DEFAULT_TARGETS),
                   help=f"comma-separated, or 'all' ({','.join(ALL_TARGETS)})")
    r.add_argument("--scenarios", default=",".join(DEFAULT_SCENARIOS),
                   help=f"comma-separated, or 'all' ({','.join(ALL_SCENARIOS)})")
    r.add_argument("--clients", type=int, help="clients in the fan-out room")
    r.add_argument("--room-clients", type=int, help="connections in the many-rooms scenario")
    r.add_argument("--idle", help="idle connection counts, comma-separated")
    r.add_argument("--workers", type=int, default=1, help="load-generator worker processes")
    r.add_argument("--repeat", type=int, help="rounds of each scenario (default 3; the report gives "
                   "the median and the min-max spread)")
    r.add_argument("--no-write", action="store_true", help="print only; keep bench/results/ as it is")
    r.add_argument("--data-dir", help="where chat-server keeps its embedded PostgreSQL and Redis "
                   "(default: a temporary directory under /tmp; /dev/shm takes the disk's fsync out)")
    r.add_argument("--tag", help="results file name suffix: bench/results/<date>-<tag>.md")
    pr = sub.add_parser("profile", help="profile of chat-server under one scenario (py-spy; PostgreSQL "
                        "statements; Redis commands)")
    pr.add_argument("--scenario", choices=["fanout", "persist"], default="fanout")
    pr.add_argument("--rate", type=int, help="fanout: offered deliveries/s (default 60,000); "
                    "persist: offered msgs/s (default 0: closed loop)")
    pr.add_argument("--clients", type=int, default=1000)
    pr.add_argument("--seconds", type=float, default=10.0)
    pr.add_argument("--native", action="store_true", help="py-spy --native: frames of compiled extensions "
                    "(asyncpg's Cython, uvloop) too, instead of counting their time to the calling Python function")
    pr.add_argument("--split", action="store_true", help="PostgreSQL and Redis on the load generator's CPU, "
                    "chat-server alone on the server CPU: py-spy's samples are then chat-server's own CPU time")
    pr.add_argument("--tag", help="results file name suffix instead of the rate: "
                    "bench/results/<date>-profile-<scenario>-<tag>.{md,txt}")
    a = p.parse_args()

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by the servers
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    RESULTS.mkdir(parents=True, exist_ok=True)
    if a.command == "profile":
        os.sched_setaffinity(0, {1})
        rate = a.rate if a.rate is not None else (60_000 if a.scenario == "fanout" else 0)
        md = __import__("bench.profile", fromlist=["profile"]).profile(a.scenario, rate, a.clients, a.seconds,
                                                                       RESULTS, stamp, a.tag, a.native, a.split)
        print(md.read_text())
        return

    plan = Plan.quick() if a.quick else Plan.full()
    overrides: dict[str, Any] = {"loadgen_workers": a.workers}
    if a.repeat:
        overrides["repeat"] = a.repeat
    if a.clients:
        overrides["clients"] = a.clients
    if a.room_clients:
        overrides["room_clients"] = a.room_clients
    if a.idle:
        overrides["idle_counts"] = [int(x) for x in a.idle.split(",")]
    plan = replace(plan, **overrides)
    if a.data_dir:
        os.environ["BENCH_DATA_DIR"] = a.data_dir  # read by Target, also in the two-node scenario
    os.sched_setaffinity(0, set(plan.loadgen_cpus))  # the harness itself stays off the server's CPU
    targets = ALL_TARGETS if a.targets == "all" else [t for t in a.targets.split(",") if t]
    chosen = ALL_SCENARIOS if a.scenarios == "all" else [s for s in a.scenarios.split(",") if s]
    res = run(plan, targets, chosen, a.quick)
    cmd = "python -m bench " + " ".join(sys.argv[1:])
    name = f"{stamp}-quick" if a.quick else stamp
    if a.tag:
        name = f"{name}-{a.tag}"
    if not a.no_write:  # the raw figures first: a report that fails to render loses nothing
        (RESULTS / f"{name}.json").write_text(json.dumps(res, indent=1))
    text = report.render(res)
    print(text)
    if a.no_write:
        return
    (RESULTS / f"{name}.md").write_text(f"# Benchmark {stamp}\n\nCommand: `.venv/bin/{cmd}` "
                                        f"({res['wall_s'] // 60} min {res['wall_s'] % 60} s)\n\n{text}\n")
    say(f"wrote {RESULTS / name}.md and .json")


if __name__ == "__main__":
    main()
