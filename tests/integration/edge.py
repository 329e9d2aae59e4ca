"""The repo's ``nginx.conf`` run by Debian's nginx on loopback, and clients that reach it.

- ``render_nginx_conf`` replaces the ``# BEGIN <name>`` / ``# END <name>`` regions of nginx.conf
  (process files, log paths, upstream addresses, listen) and keeps everything else as written.
- ``Nginx`` runs it as a foreground process; ``access_log()`` parses its log (``$upstream_addr``
  shows which node served each request).
- ``EdgeClient`` is a user's real ``socketio.AsyncClient`` that talks through nginx from a chosen
  loopback source address (nginx hashes the client address, so the address picks the node) and
  keeps a timeline of the room by ``seq`` the way an app does: live events, acks, ``sync``.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import socketio

from tests.services.base import REPO_ROOT, ManagedProcess, free_port, port_open, wait_until
from tests.support import Client

NGINX_CONF = REPO_ROOT / "nginx.conf"
SOURCE_ADDRS = [f"127.0.0.{i}" for i in range(2, 60)]


def nginx_exe() -> str:
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(exe).exists(), "nginx is missing: scripts/bootstrap.sh test installs Debian's nginx-light"
    return exe


def replace_region(conf: str, name: str, lines: Iterable[str]) -> str:
    pattern = re.compile(rf"^([ \t]*)# BEGIN {re.escape(name)}\n.*?^[ \t]*# END {re.escape(name)}\n", re.S | re.M)
    found = list(pattern.finditer(conf))
    assert len(found) == 1, f"nginx.conf must have exactly one '# BEGIN {name}' ... '# END {name}' region"
    m = found[0]
    indent = m.group(1)
    return conf[: m.start()] + "".join(f"{indent}{line}\n" for line in lines) + conf[m.end():]


def _temp_path_directives(exe: str, tmp: Path) -> list[str]:
    """Every compiled-in temp directory moved under ``tmp`` (Debian's live in /var/lib/nginx)."""
    built = subprocess.run([exe, "-V"], capture_output=True, text=True, timeout=10).stderr
    names = re.findall(r"--http-(\w+)-temp-path=", built)
    return [f"{name.replace('-', '_')}_temp_path {tmp / name};" for name in names]


def render_nginx_conf(tmp: Path, port: int, chat_ports: list[int], archive_port: int, exe: str) -> Path:
    conf = NGINX_CONF.read_text()
    process = ["worker_processes 1;", f"pid {tmp / 'nginx.pid'};", f"error_log {tmp / 'error.log'} info;"]
    if os.geteuid() == 0:
        process.insert(0, "user root;")  # workers must reach the test's private temp directories
    conf = replace_region(conf, "process", process)
    conf = replace_region(conf, "paths", [f"access_log {tmp / 'access.log'} edge;", *_temp_path_directives(exe, tmp)])
    conf = replace_region(conf, "chat-servers", [f"server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" for p in chat_ports])
    conf = replace_region(conf, "chat-archive", [f"server 127.0.0.1:{archive_port} max_fails=1 fail_timeout=5s;"])
    conf = replace_region(conf, "listen", [f"listen 127.0.0.1:{port} default_server;"])
    path = tmp / "nginx.conf"
    path.write_text(conf)
    return path


@dataclass(frozen=True)
class LogLine:
    remote: str
    request: str
    status: int
    upstream: str


class Nginx:
    """Debian's nginx in the foreground with a rendered copy of the repo's nginx.conf."""

    def __init__(self, tmp: Path, chat_ports: list[int], archive_port: int | None = None) -> None:
        self.exe = nginx_exe()
        self.tmp = tmp
        self.port = free_port()
        self.conf = render_nginx_conf(tmp, self.port, chat_ports, archive_port or free_port(), self.exe)
        self.proc = ManagedProcess("nginx", [self.exe, "-e", str(tmp / "error.log"), "-p", str(tmp), "-c", str(self.conf),
                                             "-g", "daemon off;"], tmp / "nginx.out")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Nginx:
        check = subprocess.run([self.exe, "-t", "-e", str(self.tmp / "error.log"), "-p", str(self.tmp), "-c", str(self.conf)],
                               capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        p = self.proc.spawn()
        wait_until(lambda: port_open(self.port), 15, "nginx", p, self.tmp / "nginx.out")
        return self

    def stop(self) -> None:
        self.proc.stop()

    def access_log(self) -> list[LogLine]:
        out = []
        # upstream address and status list every node tried: "a:1, b:2" 502, 200
        pattern = re.compile(r'^(\S+) \[[^\]]*\] "([^"]*)" (\d+) \d+ \S+ "([^"]*)" (.+)$')
        for line in (self.tmp / "access.log").read_text().splitlines():
            m = pattern.match(line)
            assert m, f"unexpected access log line: {line!r}"
            out.append(LogLine(m.group(1), m.group(2), int(m.group(3)), m.group(4)))
        return out


def session_from(addr: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(addr, 0)),
                                 timeout=aiohttp.ClientTimeout(total=30))


async def source_addr_for(base_url: str, node_id: str) -> str:
    """A loopback source address that nginx's address hash sends to ``node_id``."""
    for addr in SOURCE_ADDRS:
        async with session_from(addr) as s, s.get(base_url + "/healthz") as r:
            assert r.status == 200, await r.text()
            if (await r.json())["node"] == node_id:
                return addr
    raise AssertionError(f"no loopback source address maps to {node_id}")


def contiguous_cursor(seqs: Iterable[int]) -> int:
    """The highest seq up to which nothing is missing: what a client passes to ``sync``."""
    have, cursor = set(seqs), 0
    while cursor + 1 in have:
        cursor += 1
    return cursor


@dataclass
class EdgeClient:
    """One user's socket through nginx, from one source address, with the room as the app sees it."""

    user: Client
    addr: str
    transport: str
    reconnect: bool = True
    sio: socketio.AsyncClient = field(init=False)
    session: aiohttp.ClientSession = field(init=False)
    timeline: dict[int, dict[str, Any]] = field(default_factory=dict)  # seq -> message
    live: list[dict[str, Any]] = field(default_factory=list)  # every `message` event, as received
    replays: list[list[dict[str, Any]]] = field(default_factory=list)  # what each `sync` returned
    connects: int = 0
    disconnect_reasons: list[str] = field(default_factory=list)

    async def connect(self, base_url: str) -> EdgeClient:
        self.session = session_from(self.addr)
        self.sio = socketio.AsyncClient(http_session=self.session, reconnection=self.reconnect,
                                        reconnection_delay=0.2, reconnection_delay_max=1.0)
        for name in ("presence", "typing"):
            self.sio.on(name, self.user._recorder(name))
        self.sio.on("message", self._on_message)
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        # the token is read at every (re)connect, as the web app does
        await self.sio.connect(base_url, auth=lambda: {"token": self.user.tokens["access_token"]},
                               transports=[self.transport], wait_timeout=10)
        self.user.sio = self.sio
        return self

    async def _on_message(self, msg: dict[str, Any]) -> None:
        self.live.append(msg)
        self.timeline[msg["seq"]] = msg
        await self.user.log.add("message", msg)

    async def _on_connect(self) -> None:
        self.connects += 1

    async def _on_disconnect(self, reason: str = "") -> None:
        self.disconnect_reasons.append(reason)

    async def wait_connects(self, n: int, timeout: float = 20.0) -> None:
        """Until the client has connected ``n`` times (reconnects included) and is connected now."""

        async def done() -> bool:
            return self.connects >= n and self.sio.connected

        await eventually(done, timeout)

    @property
    def eio_sid(self) -> str:
        sid = self.sio.eio.sid
        assert sid, "not connected"
        return str(sid)

    async def emit(self, event: str, data: Any) -> dict[str, Any]:
        ack = await self.sio.call(event, data, timeout=15)
        assert isinstance(ack, dict) and ack.get("ok"), (event, ack)
        return ack

    async def join(self, room_id: int) -> dict[str, Any]:
        ack = await self.emit("room:join", {"room_id": room_id})
        for m in ack["messages"]:
            self.timeline[m["seq"]] = m
        return ack

    async def send(self, room_id: int, body: str, client_id: str | None = None) -> dict[str, Any]:
        msg = (await self.emit("message:send", {"room_id": room_id, "body": body,
                                                "client_id": client_id or uuid.uuid4().hex}))["message"]
        self.timeline[msg["seq"]] = msg
        return msg

    async def sync(self, room_id: int) -> list[dict[str, Any]]:
        cursor = contiguous_cursor(self.timeline)
        ack = await self.emit("sync", {"cursors": {str(room_id): cursor}})
        replay = ack["rooms"][str(room_id)]
        assert not replay["resync"], replay
        for m in replay["messages"]:
            assert m["seq"] > cursor, (cursor, m)
            self.timeline[m["seq"]] = m
        self.replays.append(replay["messages"])
        return list(replay["messages"])

    async def close(self) -> None:
        try:
            await self.sio.disconnect()
        finally:
            await self.session.close()
            self.user.sio = None


async def eventually(check: Any, timeout: float = 15.0, interval: float = 0.1) -> Any:
    """Await ``check()`` until it returns something truthy (presence and the archive settle
    asynchronously); the last value is returned, or the last AssertionError raised."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            value = await check()
            if value:
                return value
            if loop.time() > deadline:
                raise AssertionError(f"condition still false after {timeout}s: {value!r}")
        except AssertionError:
            if loop.time() > deadline:
                raise
        await asyncio.sleep(interval)


class RoomRowLock:
    """Holds a room's row lock in PostgreSQL: every message insert into that room waits on it,
    which keeps a ``message:send`` in flight for as long as a test needs."""

    def __init__(self, database_url: str, room_id: int) -> None:
        self.database_url = database_url
        self.room_id = room_id
        self.conn: Any = None

    async def __aenter__(self) -> RoomRowLock:
        import asyncpg

        self.conn = await asyncpg.connect(self.database_url, timeout=10)
        self.tx = self.conn.transaction()
        await self.tx.start()
        await self.conn.execute("SELECT 1 FROM rooms WHERE id = $1 FOR UPDATE", self.room_id)
        return self

    async def waiters(self) -> int:
        """Statements of other sessions blocked behind this lock."""
        return int(await self.conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND $1 = ANY(pg_blocking_pids(pid))",
            await self.conn.fetchval("SELECT pg_backend_pid()")))

    async def release(self) -> None:
        if self.conn is not None:
            await self.tx.rollback()
            await self.conn.close()
            self.conn = None

    async def __aexit__(self, *exc: object) -> None:
        await self.release()
