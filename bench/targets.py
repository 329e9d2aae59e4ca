"""The servers under test: how to start each, pin it to its CPU, and (chat-server) prepare users.

- ``ours``   ``chat-server`` from the repo's virtualenv; embedded PostgreSQL and Redis unless
             ``DATABASE_URL`` / ``REDIS_URL`` are given; clients authenticate with JWTs from
             ``POST /api/v1/auth/register`` and join rooms created over REST.
- ``node``   ``bench/reference/node/server.js`` (socket.io 4; ``npm ci`` on first use).
- ``nodepg`` ``bench/reference/node/server-pg.js`` (socket.io 4 + node-postgres: the persisted
             path's reference; started by the persist scenario with chat-server's PostgreSQL,
             public key and insert statement in its environment).
- ``pysio``  ``bench/reference/pysio_server.py`` (stock python-socketio on aiohttp).
- ``flask``  ``bench/reference/flask_server.py`` (Flask-SocketIO on gevent).

``node``, ``pysio`` and ``flask`` take any room id and no auth. Every server runs in its own session and process
group (stopped as a group) with its CPU affinity set before exec; its children inherit it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / "bench" / "reference" / "node"
PASSWORD = "bench-password-1"

# chat-server settings for a benchmark: limits that would throttle the load generator raised
# (the per-address connection cap among them),
# cheap password hashing (registration of 10,000 users), tokens that outlive a full run
OURS_ENV = {
    "BUILD_WEB": "false", "LOG_LEVEL": "WARNING", "AI_PROVIDER": "offline",
    "RATE_LIMIT_MESSAGES_PER_10S": "100000000", "RATE_LIMIT_EVENTS_PER_10S": "100000000",
    "RATE_LIMIT_REGISTER_PER_MIN": "1000000", "RATE_LIMIT_LOGIN_PER_MIN": "1000000",
    "ARGON2_MEMORY_KIB": "1024", "ARGON2_TIME_COST": "1", "ARGON2_INSECURE_TEST_PARAMS": "true",
    "ACCESS_TOKEN_TTL_S": "14400",
    "MAX_SOCKETS_PER_USER": "1000000",  # scenarios share 100 users among thousands of sockets
    # every load-generator connection comes from 127.0.0.1
    "MAX_CONNECTIONS_PER_IP": "1000000",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pin_tree(pid: int, cpus: list[int]) -> None:
    """Pin a running process and its descendants (service processes started elsewhere)."""
    root = psutil.Process(pid)
    for p in [root, *root.children(recursive=True)]:
        try:
            p.cpu_affinity(cpus)
        except psutil.NoSuchProcess:
            pass


def ensure_node_deps() -> None:
    """``npm ci`` once per lock file (idempotent; the npm cache makes repeats offline)."""
    marker = NODE_DIR / "node_modules" / ".package-lock.json"
    lock = NODE_DIR / "package-lock.json"
    if marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"],
                   cwd=NODE_DIR, check=True, timeout=300)


def http_json(url: str, body: dict[str, Any] | None = None, token: str | None = None,
              timeout: float = 30.0) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{req.method} {url}: {exc.code} {exc.read()[:500]!r}") from None
    return json.loads(raw) if raw else {}


@dataclass
class Target:
    name: str  # ours | node | nodepg | pysio | flask
    env: dict[str, str] = field(default_factory=dict)
    cpus: list[int] = field(default_factory=lambda: [0])
    label: str = ""
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""
    # chat-server's embedded PostgreSQL and Redis live here; BENCH_DATA_DIR (``--data-dir``) picks
    # the file system, e.g. /dev/shm to take the disk's fsync latency out of a run
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bench-target-",
                                                                    dir=os.environ.get("BENCH_DATA_DIR") or None)))

    def argv(self, port: int) -> list[str]:
        if self.name in ("node", "nodepg"):
            ensure_node_deps()
            return ["node", str(NODE_DIR / ("server.js" if self.name == "node" else "server-pg.js"))]
        if self.name == "pysio":
            return [sys.executable, str(ROOT / "bench" / "reference" / "pysio_server.py"), str(port)]
        if self.name == "flask":
            return [sys.executable, str(ROOT / "bench" / "reference" / "flask_server.py"), str(port)]
        if self.name == "ours":
            return [sys.executable, "-m", "server"]  # this checkout's code, with the running interpreter
        raise ValueError(f"unknown target {self.name}")

    def start(self, timeout: float = 180.0) -> Target:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PORT": str(port), **self.env}
        if self.name == "ours":
            env = {**env, **OURS_ENV, "CHAT_HOST": "127.0.0.1", "CHAT_PORT": str(port),
                   "CHAT_DATA_DIR": str(self.tmp / "data"), **self.env}
        cpus = set(self.cpus)
        with open(self.tmp / "server.log", "ab") as log:
            self.proc = subprocess.Popen(self.argv(port), env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=ROOT, start_new_session=True,
                                         preexec_fn=lambda: os.sched_setaffinity(0, cpus))
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        probe = "/readyz" if self.name == "ours" else "/socket.io/?EIO=4&transport=polling"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + probe, timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready in {timeout:.0f} s: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return (self.tmp / "server.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def measured_pids(self) -> list[int]:
        """The server and the process trees it started: the embedded PostgreSQL daemonizes
        (its parent is init), so it is found by its data directory under ours."""
        pids = [self.pid]
        for p in psutil.process_iter(["pid", "ppid", "cmdline"]):
            if p.info["ppid"] == 1 and str(self.tmp) in " ".join(p.info["cmdline"] or []):
                pids.append(p.info["pid"])
        return pids

    def rss_kib(self) -> int:
        """The server process's own RSS (not its embedded PostgreSQL / Redis children)."""
        return int(psutil.Process(self.pid).memory_info().rss // 1024)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- chat-server preparation --------------------------------------------------------------

    def register(self, n: int, prefix: str) -> list[str]:
        """Register ``n`` users (8 requests in flight); returns their access tokens in order."""
        def one(i: int) -> str:
            body = http_json(self.url + "/api/v1/auth/register", {"username": f"{prefix}{i}", "password": PASSWORD})
            return str(body["access_token"])

        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(one, range(n)))

    def create_rooms(self, tokens: list[str], prefix: str, kind: str = "public") -> list[int]:
        """One room per token, created by that user (so the creator is a member)."""
        def one(i: int) -> int:
            body = http_json(self.url + "/api/v1/rooms", {"name": f"{prefix}{i}", "kind": kind}, tokens[i])
            return int(body["room"]["id"])

        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(one, range(len(tokens))))
