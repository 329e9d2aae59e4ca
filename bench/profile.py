"""``python -m bench profile``: where chat-server spends its time under load (py-spy).

Starts chat-server, puts it under one scenario's load (fan-out at a fixed rate, or persisted
send), samples it with ``py-spy record --nonblocking`` (the server is not paused) pinned to the
load generator's CPU, and writes the collapsed stacks plus a summary of the hottest functions
(self and inclusive share of samples) to ``bench/results/<date>-profile-<scenario>.{txt,md}``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from .loadgen import Loadgen
from .scenarios import Plan, fanout_room, spec
from .targets import Target

ROOT = Path(__file__).resolve().parents[1]
LINE_NO = re.compile(r":\d+\)$")


def summarize(collapsed: str, top: int = 30) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    """(total samples, hottest by self samples, hottest by inclusive samples); frames are
    ``function (file)`` with line numbers dropped so a function counts once."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [LINE_NO.sub(")", f.strip()) for f in stack.split(";") if f.strip()]
        frames = [f.replace(str(ROOT) + "/", "").replace("/root/.pyenv/versions/3.11.7/lib/python3.11/", "")
                  .replace(".venv/lib/python3.11/site-packages/", "") for f in frames]
        if frames:
            own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    return total, own.most_common(top), incl.most_common(top)


def render(scenario: str, detail: dict[str, Any], total: int, own: list[tuple[str, int]],
           incl: list[tuple[str, int]]) -> str:
    def table(rows: list[tuple[str, int]]) -> list[str]:
        return ["| share | samples | function (file) |", "|---:|---:|---|",
                *[f"| {n / total * 100:.1f} % | {n} | `{f}` |" for f, n in rows]]

    return "\n".join([f"# chat-server profile: {scenario}", "",
                      f"Load: {detail}", f"Samples: {total} (py-spy, non-blocking, idle frames excluded)", "",
                      "## By self time", "", *table(own), "", "## Inclusive", "", *table(incl), ""])


def profile(scenario: str, rate: int, clients: int, seconds: float, out_dir: Path, stamp: str) -> Path:
    if shutil.which("py-spy") is None and not (Path(sys.executable).parent / "py-spy").exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install -e '.[bench]'")
    pyspy = str(Path(sys.executable).parent / "py-spy") if (Path(sys.executable).parent / "py-spy").exists() else "py-spy"
    plan = Plan(clients=clients, rates=[rate], idle_counts=[], room_clients=0, duration=seconds, two_node_rates=[])
    target = Target("ours").start()
    raw = out_dir / f"{stamp}-profile-{scenario}.txt"
    try:
        if scenario == "fanout":
            lg = Loadgen(spec(plan, target, "fanout", clients, **fanout_room(target)), [target.pid])
            detail: dict[str, Any] = {"clients": clients, "offered_deliveries_s": rate}
        else:
            tokens = target.register(plan.persist_clients, "persist")
            own = target.create_rooms(tokens, "own", kind="private")
            lg = Loadgen(spec(plan, target, "persist", plan.persist_clients, tokens=tokens, own_rooms=own), [target.pid])
            detail = {"clients": plan.persist_clients}
        with lg:
            cpus = set(plan.loadgen_cpus)
            rec = subprocess.Popen([pyspy, "record", "--pid", str(target.pid), "--nonblocking", "--format", "raw",
                                    "--rate", "250", "--duration", str(int(seconds)), "--output", str(raw)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   preexec_fn=lambda: os.sched_setaffinity(0, cpus))
            result: dict[str, Any] = {}
            t = threading.Thread(target=lambda: result.update(lg.step(rate)))
            t.start()
            t.join(seconds + 120)
            rec.wait(seconds + 60)
        detail.update({k: result.get(k) for k in ("p50_ms", "p99_ms", "delivered_ratio", "acks_s", "server_cpu")})
    finally:
        target.stop()
    total, own_rows, incl_rows = summarize(raw.read_text())
    md = out_dir / f"{stamp}-profile-{scenario}.md"
    md.write_text(render(scenario, detail, total, own_rows, incl_rows))
    return md
