"""Raw Engine.IO v4 / Socket.IO v5 clients and the two servers the conformance tests compare.

The conformance tests (``tests/server/test_conformance_*.py``) speak the wire protocol by hand,
with aiohttp's HTTP client for long-polling and its WebSocket client, so every byte the server
sends is seen as it is. Each check runs against two servers with the same settings and the same
probe handlers:

- ``stock``: a plain ``socketio.AsyncServer`` with python-socketio's ``AsyncRedisManager`` (the
  manager ours extends) on a plain aiohttp app, in its own process
  (``python -m tests.protocol_clients``), so none of our run-time patches of engineio's classes
  (they patch classes, process-wide) can reach it: the reference behaviour;
- ``ours``: chat-server from ``create_app`` on real PostgreSQL and Redis, every patch applied
  (lean sessions, the ping scheduler, the broadcast fast path, our WebSocket driver), with the
  same probe handlers added to its Socket.IO server.

The probe handlers follow the protocol repositories' reference server: ``echo`` emits its
arguments back as ``echo-back`` (to the sender's sid, i.e. through the manager's ``emit``, the
broadcast path), ``echo-ack`` acks with its arguments, ``join`` puts the sender in a room and
``shout`` emits its arguments to that room as ``shouted``, ``ask`` sends the sender a
``question`` with an ack id and acks with the client's answer, ``/custom`` accepts any auth and acks its
``auth`` event with it. Namespace ``/`` is the application's: ``ours`` checks an access token there,
``stock`` a fixed token, and both refuse others the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import socketio
from aiohttp import web

from tests.services import PostgresService, RedisService
from tests.services.base import REPO_ROOT, free_port, port_open, wait_until

PATH = "/socket.io/"
SEP = "\x1e"  # Engine.IO v4 record separator between packets of a polling payload
MAX_PAYLOAD = 64 * 1024  # chat-server's limits.max_ws_message_bytes; the stock server gets the same
STOCK_TOKEN = "stock-token"
PROBE_ROOM = "probe-room"
# events chat-server sends on its own (a user's presence goes to the user's sockets): not the probe's
APP_EVENTS = ('42["presence",',)
POSTED = (200, "OK")  # python-engineio's answer to a POST (the specification says "ok")

# --- the probe handlers, the same on both servers ------------------------------------------------


def add_probe_handlers(sio: socketio.AsyncServer) -> None:
    @sio.on("echo")
    async def echo(sid: str, *args: Any) -> None:
        await sio.emit("echo-back", args, to=sid)

    @sio.on("echo-ack")
    async def echo_ack(sid: str, *args: Any) -> tuple[Any, ...]:
        return args

    @sio.on("join")
    async def join(sid: str) -> bool:
        await sio.enter_room(sid, PROBE_ROOM)
        return True

    @sio.on("shout")
    async def shout(sid: str, *args: Any) -> None:
        await sio.emit("shouted", args, room=PROBE_ROOM)

    @sio.on("ask")
    async def ask(sid: str, *args: Any) -> Any:
        # a server event with an ack id; the client's ACK (or BINARY_ACK) comes back as our ack
        return await sio.call("question", args, to=sid, timeout=5)

    auths: dict[str, Any] = {}

    @sio.on("connect", namespace="/custom")
    async def custom_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        auths[sid] = auth

    @sio.on("auth", namespace="/custom")
    async def custom_auth(sid: str) -> Any:
        return auths.get(sid)

    @sio.on("echo", namespace="/custom")
    async def custom_echo(sid: str, *args: Any) -> None:
        await sio.emit("echo-back", args, to=sid, namespace="/custom")


# --- the two servers -------------------------------------------------------------------------------


@dataclasses.dataclass
class ProbeServer:
    kind: str  # "stock" or "ours"
    base_url: str
    auth: dict[str, str]  # a CONNECT payload that namespace "/" accepts
    ping_interval: float
    ping_timeout: float
    sio: socketio.AsyncServer | None = None  # ours only (the stock one lives in its own process)

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http", "ws", 1)

    def url(self, **query: str) -> str:
        q = "&".join(f"{k}={v}" for k, v in query.items())
        return f"{self.base_url}{PATH}?{q}"


@contextlib.asynccontextmanager
async def serve_stock(ping_interval: float, ping_timeout: float, redis_url: str,
                      tmp: Path) -> AsyncIterator[ProbeServer]:
    port = free_port()
    log_path = tmp / f"stock-{port}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "tests.protocol_clients", str(port), str(ping_interval),
                                 str(ping_timeout), redis_url, f"stock{port}:socketio"], cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        await asyncio.to_thread(wait_until, lambda: port_open(port), 30, "stock socketio server", proc, log_path)
        yield ProbeServer("stock", f"http://127.0.0.1:{port}", {"token": STOCK_TOKEN}, ping_interval, ping_timeout)
    finally:
        proc.kill()  # nothing to drain: the tests are done with it
        await asyncio.to_thread(proc.wait, 10)


@contextlib.asynccontextmanager
async def serve_ours(ping_interval: float, ping_timeout: float, pg: PostgresService, template_db: str,
                     redis_url: str, key_dir: Path, tmp: Path, **env: str) -> AsyncIterator[ProbeServer]:
    from server.app import SIO, create_app
    from server.config import Config
    from tests.support import PASSWORD, test_env

    name = f"conf_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(pg.dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE {template_db}')
    finally:
        await conn.close()
    # raw sessions of one probe user pile up over a module's tests (polling ones linger until their
    # ping timeout): the per-user and per-address caps are not what these tests are about
    base_env = {**test_env(pg.dsn_for(name), redis_url, f"{name}:", key_dir, tmp / name),
                "MAX_SOCKETS_PER_USER": "1000", "MAX_CONNECTIONS_PER_IP": "1000"}
    config = Config.from_env({**base_env, **env}, ping_interval_s=ping_interval, ping_timeout_s=ping_timeout)
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        base = f"http://127.0.0.1:{port}"
        sio = app[SIO]
        add_probe_handlers(sio)
        async with aiohttp.ClientSession() as http, http.post(
                base + "/api/v1/auth/register", json={"username": f"probe_{name[5:]}", "password": PASSWORD}) as r:
            body = await r.json()
            assert r.status == 201, body
        yield ProbeServer("ours", base, {"token": body["access_token"]}, ping_interval, ping_timeout, sio)
    finally:
        await runner.cleanup()


def probe_server_fixture(ping_interval: float, ping_timeout: float) -> Any:
    """A module-scoped fixture giving, in turn, the stock and our server with these ping settings."""

    @pytest.fixture(scope="module", params=["stock", "ours"])
    async def fixture(request: pytest.FixtureRequest, pg_service: PostgresService, template_db: str,
                      redis_service: RedisService, key_dir: Path,
                      tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ProbeServer]:
        tmp = tmp_path_factory.mktemp("probe")
        if request.param == "stock":
            async with serve_stock(ping_interval, ping_timeout, redis_service.url, tmp) as server:
                yield server
        else:
            async with serve_ours(ping_interval, ping_timeout, pg_service, template_db, redis_service.url, key_dir,
                                  tmp) as server:
                yield server

    return fixture


# --- raw clients -----------------------------------------------------------------------------------


class Polling:
    """One Engine.IO session over HTTP long-polling, request by request."""

    def __init__(self, server: ProbeServer, http: aiohttp.ClientSession) -> None:
        self.server = server
        self.http = http
        self.sid = ""
        self.open_packet: dict[str, Any] = {}

    async def open(self) -> dict[str, Any]:
        status, body = await self.request("GET", self.server.url(EIO="4", transport="polling"))
        assert status == 200 and body.startswith("0"), (status, body)
        self.open_packet = json.loads(body[1:])
        self.sid = self.open_packet["sid"]
        return self.open_packet

    def session_url(self) -> str:
        return self.server.url(EIO="4", transport="polling", sid=self.sid)

    async def request(self, method: str, url: str, body: str | bytes | None = None,
                      timeout: float = 10.0) -> tuple[int, str]:
        async with self.http.request(method, url, data=body, timeout=aiohttp.ClientTimeout(total=timeout)) as r:
            return r.status, await r.text()

    async def get(self, timeout: float = 10.0) -> tuple[int, list[str]]:
        """One poll: its status and its packets (the payload split at the record separator)."""
        status, body = await self.request("GET", self.session_url(), timeout=timeout)
        return status, (body.split(SEP) if status == 200 else [body])

    async def post(self, *packets: str) -> tuple[int, str]:
        return await self.request("POST", self.session_url(), SEP.join(packets))

    async def get_until(self, predicate: Any, timeout: float = 5.0) -> list[str]:
        """Poll (answering PINGs, dropping chat-server's own events) until a packet matches
        ``predicate``; every packet received, in order."""
        seen: list[str] = []
        async with asyncio.timeout(timeout):
            while True:
                status, packets = await self.get()
                assert status == 200, (status, packets)
                for p in packets:
                    if p == "2":
                        await self.post("3")
                        continue
                    if p.startswith(APP_EVENTS):
                        continue
                    seen.append(p)
                if any(predicate(p) for p in seen):
                    return seen


class RawWs:
    """A raw WebSocket to the Engine.IO endpoint; frames as they come (str or bytes)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, auto_pong: bool = True) -> None:
        self.ws = ws
        self.auto_pong = auto_pong
        self.open_packet: dict[str, Any] = {}

    @classmethod
    async def connect(cls, server: ProbeServer, http: aiohttp.ClientSession, sid: str | None = None,
                      auto_pong: bool = True, read_open: bool = True) -> RawWs:
        query = {"EIO": "4", "transport": "websocket", **({"sid": sid} if sid else {})}
        ws = await http.ws_connect(server.ws_url + PATH, params=query, timeout=aiohttp.ClientWSTimeout(ws_close=2))
        client = cls(ws, auto_pong)
        if read_open and sid is None:
            frame = await client.recv()
            assert isinstance(frame, str) and frame.startswith("0"), frame
            client.open_packet = json.loads(frame[1:])
        return client

    async def send(self, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            await self.ws.send_bytes(frame)
        else:
            await self.ws.send_str(frame)

    async def recv(self, timeout: float = 5.0) -> str | bytes:
        """The next frame that is not a PING (PINGs are answered) when ``auto_pong``."""
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.ws.receive()
                if msg.type == aiohttp.WSMsgType.TEXT:
                    if self.auto_pong and msg.data == "2":
                        await self.ws.send_str("3")
                        continue
                    if msg.data.startswith(APP_EVENTS):
                        continue
                    return str(msg.data)
                if msg.type == aiohttp.WSMsgType.BINARY:
                    return bytes(msg.data)
                raise ConnectionError(f"WebSocket ended: {msg.type.name}")

    async def recv_many(self, n: int, timeout: float = 5.0) -> list[str | bytes]:
        return [await self.recv(timeout) for _ in range(n)]

    async def closed_within(self, timeout: float) -> list[str | bytes]:
        """Read until the server ends the WebSocket (frames received meanwhile are returned);
        TimeoutError if it is still open after ``timeout`` seconds."""
        frames: list[str | bytes] = []
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.ws.receive()
                if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    frames.append(msg.data)
                    continue
                return frames

    async def still_open_after(self, seconds: float) -> bool:
        try:
            await self.closed_within(seconds)
        except TimeoutError:
            return True
        return False

    async def close(self) -> None:
        await self.ws.close()


async def socketio_connect(ws: RawWs, auth: dict[str, Any] | None, namespace: str = "/") -> dict[str, Any]:
    """Send CONNECT on ``ws`` and return the CONNECT reply's payload (asserts it is not an error)."""
    prefix = "" if namespace == "/" else namespace + ","
    await ws.send("40" + prefix + (json.dumps(auth) if auth is not None else ""))
    frame = await ws.recv()
    assert isinstance(frame, str) and frame.startswith("40" + prefix), frame
    return dict(json.loads(frame[2 + len(prefix):]))


# --- the stock server process ----------------------------------------------------------------------


def stock_app(ping_interval: float, ping_timeout: float, redis_url: str, channel: str) -> web.Application:
    """python-socketio as it ships, configured as ``server.app.make_sio`` configures ours."""
    from server import jsonlib

    manager = socketio.AsyncRedisManager(redis_url, channel=channel, json=jsonlib)
    sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=manager, json=jsonlib, cors_allowed_origins=None,
                               max_http_buffer_size=MAX_PAYLOAD, http_compression=False,
                               transports=["polling", "websocket"], ping_interval=ping_interval,
                               ping_timeout=ping_timeout)

    @sio.on("connect")
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if not isinstance(auth, dict) or auth.get("token") != STOCK_TOKEN:
            error = {"code": "unauthorized", "message": "bad or missing token"}
            raise socketio.exceptions.ConnectionRefusedError(error["message"], error)

    add_probe_handlers(sio)
    app = web.Application()
    sio.attach(app)
    return app


if __name__ == "__main__":
    port, interval, timeout = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    web.run_app(stock_app(interval, timeout, sys.argv[4], sys.argv[5]), host="127.0.0.1", port=port, print=None)
