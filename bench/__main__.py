"""``python -m bench run [--quick]``: the benchmark harness.

Starts each target server pinned to CPU 0 and the load generator pinned to CPU 1 (the machine
has two), runs the scenarios against each, prints a Markdown table with ratios to the
references and writes ``bench/results/<date>.md`` and ``.json``. Loopback only; every step is
bounded in time.

Targets: ``ours`` (chat-server on its embedded PostgreSQL and Redis), ``node`` (socket.io 4,
``bench/reference/node``), ``pysio`` (stock python-socketio on aiohttp).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
RESULTS = ROOT / "bench" / "results"
SERVER_CPU, LOADGEN_CPU = "0", "1"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 60) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} did not open")


def rss_kib(pid: int) -> int:
    return int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0])


def post(url: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


@dataclass
class Target:
    name: str
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""
    room_id: int = 1
    tokens_file: str = ""
    own_rooms_file: str = ""
    env: dict[str, str] = field(default_factory=dict)
    prepare: bool = True
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bench-")))

    def start(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        log = open(self.tmp / "server.log", "ab")
        env = {**os.environ, "PORT": str(port)}
        if self.name == "node":
            node_dir = ROOT / "bench" / "reference" / "node"
            if not (node_dir / "node_modules").exists():
                subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=node_dir, check=True)
            argv = ["node", str(node_dir / "server.js")]
        elif self.name == "pysio":
            argv = [PY, str(ROOT / "bench" / "reference" / "pysio_server.py"), str(port)]
        else:
            env.update({"CHAT_PORT": str(port), "CHAT_DATA_DIR": str(self.tmp / "data"), "BUILD_WEB": "false",
                        "RATE_LIMIT_MESSAGES_PER_10S": "100000000", "RATE_LIMIT_EVENTS_PER_10S": "100000000",
                        "RATE_LIMIT_REGISTER_PER_MIN": "100000", "ARGON2_MEMORY_KIB": "1024", "ARGON2_TIME_COST": "1",
                        "LOG_LEVEL": "WARNING", **self.env})
            argv = [str(ROOT / ".venv" / "bin" / "chat-server")]
        self.proc = subprocess.Popen(["taskset", "-c", SERVER_CPU, *argv], env=env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=ROOT)
        wait_port(port)
        if self.name == "ours" and self.prepare:
            self._prepare_ours()

    def _prepare_ours(self, users: int = 40) -> None:
        tokens = []
        for i in range(users):
            body = post(self.url + "/api/v1/auth/register", {"username": f"bench{i}", "password": "bench-password-1"})
            tokens.append(body["access_token"])
        room = post(self.url + "/api/v1/rooms", {"name": "bench", "kind": "public"}, tokens[0])
        self.room_id = room["room"]["id"]
        self.tokens_file = str(self.tmp / "tokens.txt")
        Path(self.tokens_file).write_text("\n".join(tokens))
        own = [post(self.url + "/api/v1/rooms", {"name": f"own{i}", "kind": "private"}, tok)["room"]["id"]
               for i, tok in enumerate(tokens)]
        self.own_rooms_file = str(self.tmp / "rooms.txt")
        Path(self.own_rooms_file).write_text("\n".join(map(str, own)))

    @property
    def pid(self) -> int:
        """The server process itself (taskset execs it)."""
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        shutil.rmtree(self.tmp, ignore_errors=True)


def loadgen(target: Target, mode: str, timeout: float, **kw: Any) -> dict[str, Any]:
    argv = ["taskset", "-c", LOADGEN_CPU, PY, "-m", "bench.loadgen", mode, "--url", target.url, "--room", str(target.room_id)]
    if target.tokens_file and "tokens" not in kw:
        argv += ["--tokens", target.tokens_file]
    for k, v in kw.items():
        argv += [f"--{k}", str(v)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"loadgen failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def small_rooms(target: Target, clients: int, room_size: int) -> dict[str, str]:
    """chat-server needs the rooms to exist, and one user per connection (a user's sockets all
    receive every room the user is in); the references take any room id and no auth."""
    if target.name != "ours":
        return {}
    tokens = [post(target.url + "/api/v1/auth/register", {"username": f"small{i}", "password": "bench-password-1"})["access_token"]
              for i in range(clients)]
    # room j is joined by clients j, j + n_rooms, ...: created by client j, so no user is in two rooms
    ids = [post(target.url + "/api/v1/rooms", {"name": f"small{i}", "kind": "public"}, tokens[i])["room"]["id"]
           for i in range(clients // room_size)]
    (target.tmp / "small_rooms.txt").write_text("\n".join(map(str, ids)))
    (target.tmp / "small_tokens.txt").write_text("\n".join(tokens))
    return {"room-ids": str(target.tmp / "small_rooms.txt"), "tokens": str(target.tmp / "small_tokens.txt")}


def two_nodes(rates: list[int], n: int, duration: float) -> list[dict[str, Any]]:
    """Two chat-server processes on a shared PostgreSQL and Redis: senders on node A, receivers
    split across both; compared with one node at the same rates."""
    sys.path.insert(0, str(ROOT))
    from server.tokens import generate_keypair
    from tests.services import PostgresService, RedisService

    pg, redis = PostgresService().start(), RedisService().start()
    keys = Path(tempfile.mkdtemp(prefix="bench-keys-"))
    generate_keypair(keys / "jwt.pem", keys / "jwt.pub.pem")
    pg.psql("CREATE DATABASE chat")
    env = {"DATABASE_URL": pg.dsn_for("chat"), "REDIS_URL": redis.url, "JWT_PRIVATE_KEY_FILE": str(keys / "jwt.pem"),
           "JWT_PUBLIC_KEY_FILE": str(keys / "jwt.pub.pem")}
    a, b = Target("ours", env={**env, "CHAT_NODE_ID": "a"}), Target("ours", env={**env, "CHAT_NODE_ID": "b"}, prepare=False)
    out = []
    try:
        a.start()
        b.start()
        b.room_id, b.tokens_file = a.room_id, a.tokens_file
        for d in rates:
            r = loadgen(a, "fanout", timeout=duration + 120, clients=n, senders=10, rate=d / n, duration=duration, url2=b.url)
            print(f"   two nodes {d}/s: p99 {r['p99_ms']} ms, delivered {r['delivered_ratio']}", file=sys.stderr, flush=True)
            out.append(r)
    finally:
        a.stop()
        b.stop()
        pg.cleanup()
        redis.cleanup()
        shutil.rmtree(keys, ignore_errors=True)
    return out


def idle_memory(target: Target, clients: int) -> dict[str, Any]:
    base = rss_kib(target.pid)
    argv = ["taskset", "-c", LOADGEN_CPU, PY, "-m", "bench.loadgen", "idle", "--url", target.url, "--room",
            str(target.room_id), "--clients", str(clients), "--duration", "300"]
    if target.tokens_file:
        argv += ["--tokens", target.tokens_file]
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert p.stdout is not None and p.stdin is not None
    line = p.stdout.readline()
    if line.strip() != "ready":
        p.kill()
        raise RuntimeError(f"idle loadgen: {line}")
    time.sleep(2)
    after = rss_kib(target.pid)
    p.stdin.write("\n")
    p.stdin.close()
    p.wait(60)
    return {"clients": clients, "rss_base_kib": base, "rss_kib": after, "kib_per_conn": round((after - base) / clients, 1)}


def run(quick: bool, targets: list[str]) -> dict[str, Any]:
    n = 500 if quick else 1000
    rates = [10000, 20000, 40000, 60000, 80000, 100000] if quick else [10000, 20000, 40000, 60000, 80000, 100000, 120000]
    idle_ns = [2000] if quick else [5000, 10000]
    duration = 4 if quick else 8
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                           "platform": platform.platform()},
                               "quick": quick, "clients": n, "targets": {}}
    for name in targets:
        t = Target(name)
        print(f"== {name}", file=sys.stderr, flush=True)
        t.start()
        try:
            res: dict[str, Any] = {"fanout": [], "idle": [], "persist": None}
            for deliveries in rates:
                r = loadgen(t, "fanout", timeout=duration + 120, clients=n, senders=10, rate=deliveries / n, duration=duration)
                print(f"   fanout {deliveries}/s: p99 {r['p99_ms']} ms, delivered {r['delivered_ratio']}", file=sys.stderr, flush=True)
                res["fanout"].append(r)
                if r["delivered_ratio"] < 0.9:
                    break  # far past saturation: the next step only takes longer
            for clients in idle_ns:
                res["idle"].append(idle_memory(t, clients))
            small = 2000 if quick else 10000
            res["rooms"] = loadgen(t, "rooms", timeout=duration + 300, clients=small, duration=duration,
                                   **{"room-size": 10, **small_rooms(t, small, 10)})
            print(f"   rooms {small} clients: p99 {res['rooms']['p99_ms']} ms, delivered {res['rooms']['delivered_ratio']}",
                  file=sys.stderr, flush=True)
            if name == "ours":
                res["persist"] = loadgen(t, "persist", timeout=duration + 120, clients=40, duration=duration,
                                         **{"own-rooms": t.own_rooms_file})
            results["targets"][name] = res
        finally:
            t.stop()
    if "ours" in targets:
        results["two_nodes"] = two_nodes(rates[:3], n, duration)
    return results


def sustainable(fanout: list[dict[str, Any]]) -> int:
    ok = [r["offered_deliveries_s"] for r in fanout if r["p99_ms"] <= 50 and r["delivered_ratio"] >= 0.999]
    return max(ok) if ok else 0


def table(results: dict[str, Any]) -> str:
    t = results["targets"]
    lines = [f"Clients in the room: {results['clients']}; 10 senders; server on CPU 0, load generator on CPU 1.", "",
             "### Room fan-out", "", "| target | offered deliveries/s | delivered/s | delivered | p50 ms | p99 ms | max ms | loadgen CPU s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, res in t.items():
        for r in res["fanout"]:
            lines.append(f"| {name} | {r['offered_deliveries_s']:.0f} | {r['delivered_s']} | {r['delivered_ratio']:.4f} | "
                         f"{r['p50_ms']} | {r['p99_ms']} | {r['max_ms']} | {r['loadgen_cpu_s']} |")
    lines += ["", "### Summary (ratios: ours / reference)", "", "| metric | " + " | ".join(t) + " | ours/node | ours/pysio |",
              "|---|" + "---:|" * (len(t) + 2)]

    def row(label: str, values: dict[str, float], better_high: bool) -> str:
        def ratio(ref: str) -> str:
            if "ours" not in values or ref not in values or not values[ref]:
                return "-"
            return f"{values['ours'] / values[ref]:.2f}"
        return f"| {label} | " + " | ".join(f"{values.get(n, '-')}" for n in t) + f" | {ratio('node')} | {ratio('pysio')} |"

    lines.append(row("sustainable fan-out (deliveries/s, p99 <= 50 ms, >= 99.9 %)", {n: sustainable(r["fanout"]) for n, r in t.items()}, True))
    for i, item in enumerate(next(iter(t.values()))["idle"]):
        lines.append(row(f"idle memory KiB per connection at {item['clients']}", {n: r["idle"][i]["kib_per_conn"] for n, r in t.items() if len(r["idle"]) > i}, False))
    lines += ["", "### Many small rooms (rooms of 10, one message per room per second)", "",
              "| target | clients | rooms | delivered | p50 ms | p99 ms | max ms |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, res in t.items():
        if res.get("rooms"):
            r = res["rooms"]
            lines.append(f"| {name} | {r['clients']} | {r['rooms']} | {r['delivered_ratio']:.4f} | {r['p50_ms']} | {r['p99_ms']} | {r['max_ms']} |")
    if results.get("two_nodes") and "ours" in t:
        one = {r["offered_deliveries_s"]: r for r in t["ours"]["fanout"]}
        lines += ["", "### Two nodes over Redis (ours; senders on node A, receivers on both)", "",
                  "| offered deliveries/s | delivered | p99 one node ms | p99 two nodes ms | difference ms |", "|---:|---:|---:|---:|---:|"]
        for r in results["two_nodes"]:
            single = one.get(r["offered_deliveries_s"])
            p1 = single["p99_ms"] if single else float("nan")
            lines.append(f"| {r['offered_deliveries_s']:.0f} | {r['delivered_ratio']:.4f} | {p1} | {r['p99_ms']} | {r['p99_ms'] - p1:+.1f} |")
    if t.get("ours", {}).get("persist"):
        p = t["ours"]["persist"]
        lines += ["", f"### Persisted send (ours, 40 clients each in its own room, closed loop): {p['acks_s']} acks/s, p50 {p['p50_ms']} ms, "
                  f"p99 {p['p99_ms']} ms, errors {p['errors']}"]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench")
    p.add_argument("command", choices=["run"])
    p.add_argument("--quick", action="store_true", help="a smaller run that finishes in a few minutes")
    p.add_argument("--targets", default="ours,node,pysio")
    a = p.parse_args()
    results = run(a.quick, a.targets.split(","))
    text = table(results)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    cmd = "python -m bench run" + (" --quick" if a.quick else "")
    (RESULTS / f"{stamp}.md").write_text(f"# Benchmark {stamp}\n\nCommand: `.venv/bin/{cmd}`\n\n{text}\n")
    (RESULTS / f"{stamp}.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
