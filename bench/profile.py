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


def summarize(collapsed: str, top: int = 30) -> dict[str, Any]:
    """Samples by self time (overall), by package (self time), and inclusive for chat-server's
    own functions. Frames are ``function (file)`` with line numbers dropped so a function
    counts once per stack. (Under uvloop a task's stack starts at its coroutine.)"""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    pkgs: Counter[str] = Counter()
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
            file = frames[-1].rpartition("(")[2]
            pkgs[file.split("/")[0] if "/" in file else file.rstrip(")")] += n
        for f in set(frames):
            if "(server/" in f:
                incl[f] += n
    return {"total": total, "self": own.most_common(top), "packages": pkgs.most_common(12),
            "server_inclusive": incl.most_common(top)}


def render(scenario: str, detail: dict[str, Any], summary: dict[str, Any]) -> str:
    total = summary["total"] or 1

    def table(rows: list[tuple[str, int]], what: str) -> list[str]:
        return [f"| share | samples | {what} |", "|---:|---:|---|",
                *[f"| {n / total * 100:.1f} % | {n} | `{f}` |" for f, n in rows]]

    return "\n".join([f"# chat-server profile: {scenario}", "",
                      f"Load: {detail}", f"Samples: {summary['total']} (py-spy, non-blocking, idle frames excluded; "
                      "time inside C calls such as socket writes counts to the calling Python function)", "",
                      "## Self time by package", "", *table(summary["packages"], "package"), "",
                      "## Self time by function", "", *table(summary["self"], "function (file)"), "",
                      "## Inclusive, chat-server's own functions", "",
                      *table(summary["server_inclusive"], "function (file)"), ""])


def profile(scenario: str, rate: int, clients: int, seconds: float, out_dir: Path, stamp: str) -> Path:
    if shutil.which("py-spy") is None and not (Path(sys.executable).parent / "py-spy").exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install -e '.[bench]'")
    pyspy = str(Path(sys.executable).parent / "py-spy") if (Path(sys.executable).parent / "py-spy").exists() else "py-spy"
    plan = Plan(clients=clients, rates=[rate], idle_counts=[], room_clients=0, duration=seconds, two_node_rates=[])
    target = Target("ours").start()
    raw = out_dir / f"{stamp}-profile-{scenario}-{rate}.txt"
    try:
        if scenario == "fanout":
            lg = Loadgen(spec(plan, target, "fanout", clients, **fanout_room(target)), target.measured_pids())
            detail: dict[str, Any] = {"clients": clients, "offered_deliveries_s": rate}
        else:
            tokens = target.register(plan.persist_clients, "persist")
            own = target.create_rooms(tokens, "own", kind="private")
            lg = Loadgen(spec(plan, target, "persist", plan.persist_clients, tokens=tokens, own_rooms=own), target.measured_pids())
            detail = {"clients": plan.persist_clients, "offered_msgs_s": rate or "closed loop"}
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
        detail.update({k: result.get(k) for k in ("p50_ms", "p99_ms", "delivered_ratio", "acks_s", "server_cpu", "server_kernel_share")})
    finally:
        target.stop()
    md = out_dir / f"{stamp}-profile-{scenario}-{rate}.md"
    md.write_text(render(scenario, detail, summarize(raw.read_text())))
    return md
