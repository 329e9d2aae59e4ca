"""Runs the load-generator workers and merges what they measure.

``Loadgen(spec).start()`` spawns ``spec["workers"]`` worker processes (``bench.loadgen.worker``,
pinned to ``spec["cpus"]``), waits until every client is connected, then each ``step(rate)``
starts all workers' senders at one wall-clock instant, samples the server's CPU over the
sending window, collects counts and raw latency files and returns one merged result:
offered and delivered rates, loss, nearest-rank percentiles over every sample, the load
generator's own CPU use and the server's. ``ladder`` runs rising rates and stops once the
server is clearly past saturation. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

import psutil

from .stats import percentiles, read_samples

ROOT = Path(__file__).resolve().parents[2]
NOISY_CPU = 0.15  # cores used by other processes during a step that make its result suspect


def tree_cpu_s(pids: list[int]) -> tuple[float, float]:
    """(user, system) CPU seconds of the processes and all their descendants (PostgreSQL
    backends too), with those of descendants that have exited and were reaped (a closed
    connection's backend): otherwise a step during which backends exit reads too little, even
    less than nothing."""
    user = system = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for p in [root, *root.children(recursive=True)]:
                try:
                    t = p.cpu_times()
                    user += t.user + t.children_user
                    system += t.system + t.children_system
                except psutil.NoSuchProcess:
                    pass
        except psutil.NoSuchProcess:
            pass
    return user, system


def machine_times() -> tuple[float, float]:
    """CPU seconds since boot, all cores, from one read of /proc/stat: busy (everything but idle
    and iowait, so a virtual machine's steal counts as busy), and steal (the hypervisor ran
    something else while this machine's CPUs wanted to run; 0 on bare metal)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - fields[3] - fields[4]) / tick, (fields[7] if len(fields) > 7 else 0) / tick


def machine_busy_s() -> float:
    return machine_times()[0]


def machine_steal_s() -> float:
    return machine_times()[1]


class Loadgen:
    def __init__(self, spec: dict[str, Any], server_pids: list[int] | None = None) -> None:
        self.spec = {"workers": 1, "duration": 5.0, "drain": 2.0, "size": 64, "senders": 10, "room": 1,
                     "room_size": 10, "cpus": [], **spec}
        self.server_pids = server_pids or []
        self.tmp = Path(tempfile.mkdtemp(prefix="loadgen-"))
        self.spec["raw_dir"] = str(self.tmp)
        self.procs: list[subprocess.Popen[str]] = []
        self.lines: list[queue.Queue[str]] = []
        self.steps = 0

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self, timeout: float = 180.0) -> None:
        spec_file = self.tmp / "spec.json"
        spec_file.write_text(json.dumps(self.spec))
        cpus = set(self.spec["cpus"])
        for w in range(int(self.spec["workers"])):
            with open(self.tmp / f"{w}.log", "w") as log:
                p = subprocess.Popen([sys.executable, "-m", "bench.loadgen.worker", str(spec_file), str(w)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT,
                                     preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
            q: queue.Queue[str] = queue.Queue()
            assert p.stdout is not None
            threading.Thread(target=_pump, args=(p.stdout, q), daemon=True).start()
            self.procs.append(p)
            self.lines.append(q)
        for w in range(len(self.procs)):
            line = self._line(w, timeout)
            if line != "ready":
                raise RuntimeError(f"worker {w} did not start: {line!r}; {self.log(w)}")

    def restart(self, timeout: float = 180.0) -> None:
        """New workers with new connections (after the server dropped some of the old ones)."""
        self._stop_workers()
        self.procs, self.lines = [], []
        self.start(timeout)

    def stop(self) -> None:
        self._stop_workers()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _stop_workers(self) -> None:
        for p in self.procs:
            try:
                assert p.stdin is not None
                p.stdin.write("stop\n")
                p.stdin.close()
            except (BrokenPipeError, OSError):
                pass
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)

    def __enter__(self) -> Loadgen:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log(self, w: int) -> str:
        try:
            return (self.tmp / f"{w}.log").read_text()[-3000:]
        except OSError:
            return ""

    def _line(self, w: int, timeout: float) -> str:
        try:
            line = self.lines[w].get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"worker {w}: no answer within {timeout:.0f} s; {self.log(w)}") from None
        if not line:
            raise RuntimeError(f"worker {w} exited; {self.log(w)}")
        return line

    # --- measuring ----------------------------------------------------------------------------

    def step(self, offered: float = 0.0, settle: float = 0.5) -> dict[str, Any]:
        """One measured step. ``offered``: fanout, deliveries/s (= messages/s x clients in the
        room); persist, messages/s over all clients (0: closed loop, one send in flight each);
        rooms and idle take none."""
        s, step = self.spec, self.steps
        self.steps += 1
        clients, duration, drain = int(s["clients"]), float(s["duration"]), float(s["drain"])
        readers = clients - int(s.get("stalled", 0))  # stalled clients read nothing: not counted
        per_message = {"fanout": readers, "rooms": int(s["room_size"])}.get(s["mode"], 1)
        rate = offered / clients if s["mode"] == "fanout" else offered
        t0_ns = time.time_ns() + int(settle * 1e9)
        for p in self.procs:
            assert p.stdin is not None
            p.stdin.write(f"go {t0_ns} {rate} {step}\n")
            p.stdin.flush()
        time.sleep(max(0.0, (t0_ns - time.time_ns()) / 1e9))
        (user0, sys0), (busy0, steal0) = tree_cpu_s(self.server_pids), machine_times()
        time.sleep(duration)
        (user1, sys1), (busy1, steal1) = tree_cpu_s(self.server_pids), machine_times()
        busy, steal = busy1 - busy0, steal1 - steal0
        server_cpu, server_sys = user1 - user0 + sys1 - sys0, sys1 - sys0
        parts = [json.loads(self._line(w, duration + drain + 60)) for w in range(len(self.procs))]
        samples = read_samples(self.tmp / f"{step}-{w}.bin" for w in range(len(self.procs)))
        sent = sum(p["sent"] for p in parts)
        received = sum(p["received"] for p in parts)
        expected = sent * per_message
        out: dict[str, Any] = {"mode": s["mode"], "clients": clients, "sent": sent, "sent_msgs_s": round(sent / duration, 1)}
        if s["mode"] == "persist":
            out.update(offered_msgs_s=round(rate), offered_deliveries_s=round(rate), closed_loop=not rate,
                       acks=received, acks_s=round(received / duration), errors=sum(p["errors"] for p in parts),
                       delivered_ratio=round(received / sent, 5) if sent else 0.0)
        else:
            out.update(offered_msgs_s=round(rate, 2), offered_deliveries_s=round(offered), expected=expected,
                       received=received, late=sum(p["late"] for p in parts),
                       delivered_ratio=round(received / expected, 5) if expected else 0.0,
                       delivered_s=round(received / duration))
        out.update(percentiles(samples))
        out["lost"] = sum(p.get("lost", 0) for p in parts)  # connections the server closed
        loadgen_cpu = sum(p["cpu_s"] for p in parts)
        out["loadgen_cpu"] = round(loadgen_cpu / duration, 3)  # cores busy while sending
        if self.server_pids:
            out["server_cpu"] = round(server_cpu / duration, 3)
            out["server_kernel_share"] = round(server_sys / server_cpu, 3) if server_cpu else 0.0
            # everything else the machine did meanwhile (other processes, interrupts): a noisy
            # neighbour shows up here, and the harness repeats a failed step it may have spoiled
            out["other_cpu"] = round(max(0.0, busy - server_cpu - loadgen_cpu) / duration, 3)
            # of which the hypervisor's steal: cores this machine's CPUs were taken away
            out["steal_cpu"] = round(steal / duration, 3)
        for w in range(len(self.procs)):
            (self.tmp / f"{step}-{w}.bin").unlink(missing_ok=True)
        return out

    def ladder(self, deliveries: list[int], stop_early: bool = True, p99_ms: float = 50.0,
               delivered: float = 0.999, label: str = "", retries: int = 2) -> list[dict[str, Any]]:
        """Rising offered rates; stops after a step far past saturation (< 99 % delivered or
        p99 > 1 s) or two failing steps in a row (one noisy step does not end the ladder).
        A failed step during which other processes used >= ``NOISY_CPU`` cores is run again
        (up to ``retries`` times): the machine may be shared."""
        out: list[dict[str, Any]] = []
        fails = 0
        for d in deliveries:
            r = self.step(d)
            out.append(r)
            ok = r["p99_ms"] <= p99_ms and r["delivered_ratio"] >= delivered
            for _ in range(retries):
                if ok or r.get("other_cpu", 0) < NOISY_CPU:
                    break
                r = {**self.step(d), "retried_after_other_cpu": r["other_cpu"]}
                out[-1] = r
                ok = r["p99_ms"] <= p99_ms and r["delivered_ratio"] >= delivered
            print(f"   {label} {d}/s: p50 {r['p50_ms']} p99 {r['p99_ms']} ms, delivered {r['delivered_ratio']}, "
                  f"cores: loadgen {r['loadgen_cpu']:.2f} server {r.get('server_cpu', 0):.2f} "
                  f"other {r.get('other_cpu', 0):.2f} (steal {r.get('steal_cpu', 0):.2f})", file=sys.stderr, flush=True)
            if not stop_early:
                continue
            fails = 0 if ok else fails + 1
            if r["delivered_ratio"] < 0.99 or r["p99_ms"] > 1000 or fails >= 2:
                break
        return out


def _pump(stream: IO[str], q: queue.Queue[str]) -> None:
    for line in stream:
        q.put(line.strip())
    q.put("")  # EOF: the worker exited
