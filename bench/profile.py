"""``python -m bench profile``: where chat-server spends its time under load.

Starts chat-server, puts it under one scenario's load (fan-out at a fixed rate, or persisted
send: by default the closed loop, which is the knee: every client always has one send in
flight), and over the same window records

- Python by function: ``py-spy record --nonblocking`` (the server is not paused), pinned to the
  load generator's CPU: the hottest functions by self and inclusive share of samples. py-spy
  samples wall time the thread is not waiting, so on the shared server CPU a function is also
  charged for the time it sat preempted: a write to PostgreSQL's socket wakes the backend, which
  runs at once on the same CPU, and the writer (asyncpg's ``_do_execute``) collects those
  samples (40 % of them at the persisted knee). ``--split`` moves PostgreSQL and Redis to the
  load generator's CPU for the window, so the samples are chat-server's own CPU time;
  ``--native`` names compiled frames (asyncpg's Cython, uvloop) at the price of pausing the
  server for each sample;
- PostgreSQL by statement: ``pg_stat_statements`` (calls, rows, total and mean execution time),
  reset at the start of the window. The embedded PostgreSQL (pgserver's build) ships no contrib
  modules, so for the profile chat-server runs on a PostgreSQL that has the module (the first
  ``/usr/lib/postgresql/*/bin`` with ``pg_stat_statements.so``, or ``PROFILE_PG_BIN``), started
  here with the same settings as the embedded one (initdb defaults: fsync and synchronous
  commit on) plus the module; without one the section says so;
- Redis by command: ``INFO commandstats`` after ``CONFIG RESETSTAT``;
- the CPU per acked message (persist) split into chat-server's process, PostgreSQL (postmaster
  and backends, exited ones included) and Redis.

Writes the collapsed stacks and the summary to ``bench/results/<date>-profile-<scenario>-<rate>.{txt,md}``
(``--tag``: ``<tag>`` instead of the rate).
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from .loadgen import Loadgen
from .loadgen.coordinator import machine_busy_s, tree_cpu_s
from .scenarios import Plan, fanout_room, spec
from .targets import Target, free_port, pin_tree

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


def render(scenario: str, detail: dict[str, Any], summary: dict[str, Any], extra: list[str]) -> str:
    total = summary["total"] or 1

    def table(rows: list[tuple[str, int]], what: str) -> list[str]:
        return [f"| share | samples | {what} |", "|---:|---:|---|",
                *[f"| {n / total * 100:.1f} % | {n} | `{f}` |" for f, n in rows]]

    return "\n".join([f"# chat-server profile: {scenario}", "",
                      f"Load: {detail}", "", *extra,
                      "## Python: self time by package", "",
                      f"Samples: {summary['total']} (py-spy, non-blocking, idle frames excluded; "
                      "time inside C calls such as socket writes counts to the calling Python function)", "",
                      *table(summary["packages"], "package"), "",
                      "## Python: self time by function", "", *table(summary["self"], "function (file)"), "",
                      "## Python: inclusive, chat-server's own functions", "",
                      *table(summary["server_inclusive"], "function (file)"), ""])


def stat_statements_bin() -> Path | None:
    """A PostgreSQL bin directory whose installation has ``pg_stat_statements``."""
    candidates = [os.environ.get("PROFILE_PG_BIN", ""), *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for c in candidates:
        if c and (Path(c) / "postgres").exists():
            libdir = subprocess.run([str(Path(c) / "pg_config"), "--pkglibdir"], capture_output=True, text=True,
                                    timeout=10).stdout.strip() if (Path(c) / "pg_config").exists() else str(Path(c).parent / "lib")
            if (Path(libdir) / "pg_stat_statements.so").exists():
                return Path(c)
    return None


class StatPostgres:
    """A throw-away PostgreSQL with ``pg_stat_statements`` on 127.0.0.1 (trust auth), run as
    the ``pgserver`` system user when this runs as root (PostgreSQL refuses root)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir, self.port = bindir, free_port()
        self.base = Path(tempfile.mkdtemp(prefix="bench-pgstat-"))
        self.data = self.base / "data"
        self.user = "pgserver" if os.geteuid() == 0 else None
        self.proc: subprocess.Popen[bytes] | None = None

    def _demote(self) -> None:
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)

    def start(self, cpus: set[int]) -> StatPostgres:
        if self.user:
            from pgserver.utils import ensure_user_exists  # the system user the embedded default runs as

            pw = ensure_user_exists(self.user)  # made on first use, as the embedded default does
            assert pw is not None
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        subprocess.run([str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                        "--encoding=utf8"], check=True, capture_output=True, preexec_fn=self._demote, timeout=120)
        log = open(self.base / "postgres.log", "ab")

        def pre() -> None:
            os.sched_setaffinity(0, cpus)
            self._demote()

        self.proc = subprocess.Popen(
            [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
             "-c", f"unix_socket_directories={self.data}", "-c", "shared_preload_libraries=pg_stat_statements",
             "-c", "pg_stat_statements.track=all", "-c", "max_connections=200"],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=pre, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 30
        while subprocess.run([str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                             capture_output=True).returncode != 0:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"PostgreSQL did not start: {(self.base / 'postgres.log').read_text()[-2000:]}")
            time.sleep(0.2)
        self.psql("CREATE DATABASE chat")
        self.psql("CREATE EXTENSION pg_stat_statements", "chat")
        return self

    def dsn(self, db: str = "chat") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def psql(self, sql: str, db: str = "postgres") -> str:
        return subprocess.run([str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                               "-d", db, "-v", "ON_ERROR_STOP=1", "-Atc", sql], check=True, capture_output=True,
                              text=True, timeout=60).stdout

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.base, ignore_errors=True)


STATEMENTS = ("SELECT calls, rows, round(total_exec_time::numeric, 1), round(mean_exec_time::numeric, 3),"
              " left(regexp_replace(query, '\\s+', ' ', 'g'), 160) FROM pg_stat_statements"
              " WHERE query NOT ILIKE '%pg_stat_statements%' ORDER BY total_exec_time DESC LIMIT 15")


async def _statements(dsn: str, reset: bool) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        if reset:
            await conn.execute("SELECT pg_stat_statements_reset()")
            return []
        return [tuple(r) for r in await conn.fetch(STATEMENTS)]
    finally:
        await conn.close()


def statements(dsn: str, reset: bool = False) -> list[tuple[Any, ...]]:
    import asyncio

    return asyncio.run(_statements(dsn, reset))


def redis_commandstats(sock: Path, reset: bool = False) -> list[tuple[str, int, float]]:
    """(command, calls, total µs) by total time, from ``INFO commandstats``."""
    import redis

    client = redis.Redis(unix_socket_path=str(sock), socket_timeout=5)
    try:
        if reset:
            client.config_resetstat()
            return []
        stats = client.info("commandstats")
    finally:
        client.close()
    rows = [(k.removeprefix("cmdstat_"), int(v["calls"]), float(v["usec"])) for k, v in stats.items()]
    return sorted(rows, key=lambda r: -r[2])


def cpu_s(pid: int, tree: bool) -> float:
    if tree:
        u, s = tree_cpu_s([pid])
        return u + s
    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


def profile(scenario: str, rate: int, clients: int, seconds: float, out_dir: Path, stamp: str,
            tag: str | None = None, native: bool = False, split: bool = False) -> Path:
    if shutil.which("py-spy") is None and not (Path(sys.executable).parent / "py-spy").exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install -e '.[bench]'")
    pyspy = str(Path(sys.executable).parent / "py-spy") if (Path(sys.executable).parent / "py-spy").exists() else "py-spy"
    plan = Plan(clients=clients, rates=[rate], idle_counts=[], room_clients=0, duration=seconds, two_node_rates=[])
    bindir = stat_statements_bin()
    pgs = StatPostgres(bindir).start(set(plan.server_cpus)) if bindir is not None else None
    env = {"DATABASE_URL": pgs.dsn()} if pgs is not None else {}
    target = Target("ours", env=env, cpus=plan.server_cpus).start()
    raw = out_dir / f"{stamp}-profile-{scenario}-{tag or rate}.txt"
    extra: list[str] = []
    try:
        pids = target.measured_pids() + ([pgs.proc.pid] if pgs is not None and pgs.proc is not None else [])
        if scenario == "fanout":
            lg = Loadgen(spec(plan, target, "fanout", clients, **fanout_room(target)), pids)
            detail: dict[str, Any] = {"clients": clients, "offered_deliveries_s": rate}
        else:
            tokens = target.register(plan.persist_clients, "persist")
            own = target.create_rooms(tokens, "own", kind="private")
            lg = Loadgen(spec(plan, target, "persist", plan.persist_clients, tokens=tokens, own_rooms=own), pids)
            detail = {"clients": plan.persist_clients, "offered_msgs_s": rate or "closed loop"}
        redis_sock = target.tmp / "data" / "redis" / "redis.sock"
        server = psutil.Process(target.pid)
        redis_pid = next(p.pid for p in server.children(recursive=True) if "redis" in p.name())
        pg_pid = pgs.proc.pid if pgs is not None and pgs.proc is not None else next(
            p for p in target.measured_pids() if p != target.pid)
        if split:
            # chat-server alone on the server CPU: py-spy's samples are then its own CPU time
            for pid in (pg_pid, redis_pid):
                pin_tree(pid, list(plan.loadgen_cpus))
        with lg:
            if pgs is not None:
                statements(pgs.dsn(), reset=True)
            redis_commandstats(redis_sock, reset=True)
            cpus = set(plan.loadgen_cpus)
            # native frames need the target paused while py-spy unwinds it: slower, for attribution only
            rec = subprocess.Popen([pyspy, "record", "--pid", str(target.pid), "--format", "raw",
                                    *(["--native"] if native else ["--nonblocking"]),
                                    "--rate", "250", "--duration", str(int(seconds)), "--output", str(raw)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   preexec_fn=lambda: os.sched_setaffinity(0, cpus))
            result: dict[str, Any] = {}
            cpu0 = (cpu_s(target.pid, False), cpu_s(pg_pid, True), cpu_s(redis_pid, False))
            busy0, wall0 = machine_busy_s(), time.monotonic()
            t = threading.Thread(target=lambda: result.update(lg.step(rate)))
            t.start()
            t.join(seconds + 120)
            cpu1 = (cpu_s(target.pid, False), cpu_s(pg_pid, True), cpu_s(redis_pid, False))
            busy, wall = machine_busy_s() - busy0, time.monotonic() - wall0
            rec.wait(seconds + 60)
            stmts = statements(pgs.dsn()) if pgs is not None else []
            cmds = redis_commandstats(redis_sock)
        detail.update({k: result.get(k) for k in ("p50_ms", "p99_ms", "delivered_ratio", "acks_s", "server_cpu", "server_kernel_share")})
        # the CPU readings span the step's sending window plus its drain: per ack over all of it
        acked = result.get("acks") or result.get("received") or 0
        parts = [("chat-server (Python)", cpu1[0] - cpu0[0]), ("PostgreSQL", cpu1[1] - cpu0[1]),
                 ("Redis", cpu1[2] - cpu0[2])]
        total = sum(v for _, v in parts) or 1.0
        # the machine may be shared: what everything else did meanwhile (py-spy and the load
        # generator included) says how far to trust the absolute figures
        others = max(0.0, busy - total) / wall
        if split:
            extra += ["PostgreSQL and Redis ran on the load generator's CPU (`--split`): chat-server had the server "
                      "CPU alone, so py-spy's samples are its own CPU time, not time it sat preempted by them.", ""]
        if native:
            extra += ["py-spy ran with `--native`: the server was paused for each sample (slower; samples lean "
                      "towards system calls), and compiled extensions' frames are named.", ""]
        extra += [f"Machine: {os.cpu_count()} CPUs busy {busy / wall:.2f} cores on average over the window, of which "
                  f"{others:.2f} outside chat-server, its PostgreSQL and Redis (the load generator, py-spy, and "
                  f"any other work on the machine).", ""]
        extra += ["## CPU per acked message" if scenario == "persist" else "## CPU per delivered message", "",
                  f"{acked:,} {'acks' if scenario == 'persist' else 'deliveries'} in the step; CPU over the step "
                  "and its drain.", "", "| process | CPU s | share | µs per message |", "|---|---:|---:|---:|",
                  *[f"| {n} | {v:.2f} | {v / total * 100:.0f} % | {v / acked * 1e6:,.0f} |" if acked else f"| {n} | {v:.2f} | - | - |"
                    for n, v in parts],
                  f"| all | {total:.2f} | 100 % | {total / acked * 1e6:,.0f} |" if acked else "", ""]
        if pgs is not None:
            version = pgs.psql("SHOW server_version").strip()
            extra += [f"## PostgreSQL by statement (pg_stat_statements; PostgreSQL {version} from {bindir})", "",
                      "| calls | rows | total ms | mean ms | statement |", "|---:|---:|---:|---:|---|",
                      *[f"| {c:,} | {r:,} | {tot} | {mean} | `{q}` |" for c, r, tot, mean, q in stmts], ""]
        else:
            extra += ["## PostgreSQL by statement", "", "No PostgreSQL with pg_stat_statements was found "
                      "(set PROFILE_PG_BIN); chat-server ran on its embedded PostgreSQL.", ""]
        extra += ["## Redis by command (INFO commandstats)", "", "| command | calls | total µs | µs per call |",
                  "|---|---:|---:|---:|",
                  *[f"| {c} | {n:,} | {u:,.0f} | {u / n:.1f} |" for c, n, u in cmds[:15] if n], ""]
    finally:
        target.stop()
        if pgs is not None:
            pgs.stop()
    md = out_dir / f"{stamp}-profile-{scenario}-{tag or rate}.md"
    md.write_text(render(scenario, detail, summarize(raw.read_text()), extra))
    return md
