"""Helpers for driving chat-server through its public surface: REST and real Socket.IO clients."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import subprocess
import sys
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import socketio
from aiohttp import web

from server.app import create_app
from server.config import Config
from tests.services.base import REPO_ROOT, free_port, port_open, wait_until

_names = itertools.count(1)
PASSWORD = "correct horse battery"
PRESENCE_TTL_S = 2.0  # test nodes: a dead node's heartbeat key expires after this


def test_env(database_url: str, redis_url: str, prefix: str, key_dir: Path, data_dir: Path) -> dict[str, str]:
    """Environment for a chat-server under test (also used for subprocess nodes)."""
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": prefix,
        "CHAT_DATA_DIR": str(data_dir),
        "JWT_PRIVATE_KEY_FILE": str(key_dir / "jwt.pem"),
        "JWT_PUBLIC_KEY_FILE": str(key_dir / "jwt.pub.pem"),
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_KIB": "1024",
        "ARGON2_INSECURE_TEST_PARAMS": "true",  # cheap hashes below OWASP's floor, for tests only
        "RATE_LIMIT_REGISTER_PER_MIN": "1000",
        "RATE_LIMIT_LOGIN_PER_MIN": "1000",
        "PRESENCE_TTL_S": str(PRESENCE_TTL_S),
        "AI_PROVIDER": "offline",
        "BUILD_WEB": "false",
    }


def fault_seconds(variable: str, default: float) -> float:
    """A fault test's duration (an outage, an absence), from the environment: the default run
    uses a short one that still tells a broken implementation apart; the long variants the
    promises name run with e.g. ``CHAT_FAULT_REDIS_OUTAGE_S=60`` (docs/RELIABILITY.md)."""
    value = os.environ.get(variable)
    return float(value) if value else default


class EventLog:
    """Collects every server event a client receives, by name, in order."""

    def __init__(self) -> None:
        self.events: dict[str, list[Any]] = defaultdict(list)
        self._cond = asyncio.Condition()

    async def add(self, name: str, data: Any) -> None:
        async with self._cond:
            self.events[name].append(data)
            self._cond.notify_all()

    async def wait_for(self, name: str, predicate: Any = None, timeout: float = 5.0) -> Any:
        def find() -> Any:
            for item in self.events[name]:
                if predicate is None or predicate(item):
                    return item
            return None

        async with self._cond:
            await asyncio.wait_for(self._cond.wait_for(lambda: find() is not None), timeout)
            return find()

    async def wait_count(self, name: str, count: int, timeout: float = 5.0) -> list[Any]:
        """Wait until at least ``count`` events named ``name`` arrived; returns all of them."""
        async with self._cond:
            await asyncio.wait_for(self._cond.wait_for(lambda: len(self.events[name]) >= count), timeout)
            return list(self.events[name])

    def all(self, name: str) -> list[Any]:
        return list(self.events[name])


class Client:
    """A user with tokens, an HTTP session and (once connected) a real Socket.IO client."""

    def __init__(self, base_url: str, http: aiohttp.ClientSession, user: dict[str, Any], tokens: dict[str, Any]) -> None:
        self.base_url = base_url
        self.http = http
        self.user = user
        self.tokens = tokens
        self.sio: socketio.AsyncClient | None = None
        self.log = EventLog()

    @property
    def id(self) -> int:
        return int(self.user["id"])

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens['access_token']}"}

    async def call(self, method: str, path: str, json: Any = None, expect: int | None = None, **kw: Any) -> tuple[int, Any]:
        headers = {**self.auth, **kw.pop("headers", {})}
        async with self.http.request(method, self.base_url + path, json=json, headers=headers, **kw) as r:
            body = await r.json() if r.content_type == "application/json" else await r.text()
            if expect is not None:
                assert r.status == expect, (r.status, body)
            return r.status, body

    async def connect(self, base_url: str | None = None, transports: list[str] | None = None) -> socketio.AsyncClient:
        sio = socketio.AsyncClient(reconnection=False)
        for name in ("message", "message:updated", "typing", "presence", "member:joined", "member:left",
                     "assistant:delta", "room:added", "conversation:updated", "wa:status", "note:added",
                     "conversation:event", "conversation:handover", "conversation:hidden", "queue:updated", "queue:deleted",
                     "contact:updated", "label:updated", "label:deleted", "campaign:progress", "wa:session"):
            sio.on(name, self._recorder(name))
        await sio.connect(base_url or self.base_url, auth={"token": self.tokens["access_token"]},
                          transports=transports or ["websocket"], wait_timeout=10)
        self.sio = sio
        return sio

    def _recorder(self, name: str) -> Any:
        async def record(data: Any = None) -> None:
            await self.log.add(name, data)

        return record

    async def emit(self, event: str, data: Any = None, timeout: float = 10.0) -> Any:
        assert self.sio is not None
        return await self.sio.call(event, data, timeout=timeout)

    async def send(self, room_id: int, body: str, client_id: str | None = None) -> dict[str, Any]:
        ack = await self.emit("message:send", {"room_id": room_id, "body": body, "client_id": client_id or uuid.uuid4().hex})
        assert ack["ok"], ack
        return ack["message"]

    async def disconnect(self) -> None:
        if self.sio is not None:
            await self.sio.disconnect()
            self.sio = None


@dataclasses.dataclass
class ChatNode:
    base_url: str
    app: web.Application | None = None
    runner: web.AppRunner | None = None
    process: subprocess.Popen[bytes] | None = None
    port: int = 0


class ServerHarness:
    """Starts chat-server nodes sharing one database and Redis, and makes users on them."""

    def __init__(self, database_url: str, redis_url: str, prefix: str, key_dir: Path, tmp: Path) -> None:
        self.env = test_env(database_url, redis_url, prefix, key_dir, tmp / "data")
        self.database_url = database_url
        self.tmp = tmp
        self.nodes: list[ChatNode] = []
        self.clients: list[Client] = []
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))

    def config(self, **overrides: Any) -> Config:
        return Config.from_env(self.env, **overrides)

    async def start_node(self, **overrides: Any) -> ChatNode:
        config = self.config(**overrides)
        app = create_app(config)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        node = ChatNode(f"http://127.0.0.1:{port}", app=app, runner=runner, port=port)
        self.nodes.append(node)
        return node

    def spawn_node(self, **env: str) -> ChatNode:
        """A chat-server in its own process (for cross-process and kill tests)."""
        port = free_port()
        full_env = {**os.environ, **self.env, "CHAT_HOST": "127.0.0.1", "CHAT_PORT": str(port), **env}
        log = open(self.tmp / f"node-{port}.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "server"], env=full_env, cwd=REPO_ROOT,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        wait_until(lambda: port_open(port), 30, "chat-server", proc, self.tmp / f"node-{port}.log")
        node = ChatNode(f"http://127.0.0.1:{port}", process=proc, port=port)
        self.nodes.append(node)
        return node

    async def stop_node(self, node: ChatNode) -> None:
        if node.runner is not None:
            await node.runner.cleanup()
            node.runner = None
        if node.process is not None and node.process.poll() is None:
            node.process.terminate()
            await asyncio.to_thread(node.process.wait, 15)

    async def user(self, node: ChatNode | None = None, name: str | None = None, role: str | None = None) -> Client:
        node = node or self.nodes[0]
        username = name or f"user{next(_names)}_{uuid.uuid4().hex[:6]}"
        async with self.http.post(node.base_url + "/api/v1/auth/register",
                                  json={"username": username, "password": PASSWORD}) as r:
            body = await r.json()
            assert r.status == 201, body
        client = Client(node.base_url, self.http, body["user"], body)
        if role is not None:
            await self.set_role(client, role)
        self.clients.append(client)
        return client

    async def set_role(self, client: Client, role: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.database_url)
        try:
            await conn.execute("UPDATE users SET role = $2 WHERE id = $1", client.id, role)
        finally:
            await conn.close()
        async with self.http.post(client.base_url + "/api/v1/auth/login",
                                  json={"username": client.user["username"], "password": PASSWORD}) as r:
            body = await r.json()
            assert r.status == 200, body
        client.tokens = body
        client.user = body["user"]

    async def close(self) -> None:
        for c in self.clients:
            try:
                await c.disconnect()
            except Exception:
                pass
        for n in self.nodes:
            await self.stop_node(n)
        await self.http.close()


async def make_room(owner: Client, *members: Client, name: str = "chat", kind: str = "public") -> int:
    """A room ``owner`` creates over REST with ``members`` in it; its id."""
    _, body = await owner.call("POST", "/api/v1/rooms", {"name": name, "kind": kind, "members": [m.id for m in members]},
                               expect=201)
    return int(body["room"]["id"])


async def two_in_a_room(harness: ServerHarness) -> tuple[Client, Client, int]:
    """On a new node: alice and bob in a public room of alice's, both connected over Socket.IO."""
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    room_id = await make_room(alice, bob)
    await alice.connect()
    await bob.connect()
    return alice, bob, room_id


async def refused_connect(url: str, token: str, wait_timeout: float = 10) -> dict[str, Any]:
    """Connect with ``token``; the handshake must be refused. Returns the server's reason, the
    documented ``{code, message, details?}`` of the ``connect_error``."""
    sio = socketio.AsyncClient(reconnection=False)
    reasons: list[dict[str, Any]] = []

    async def on_error(data: Any = None) -> None:
        reasons.append(data or {})

    sio.on("connect_error", on_error)
    try:
        await sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=wait_timeout)
    except socketio.exceptions.ConnectionError:
        pass
    else:
        await sio.disconnect()
        raise AssertionError("the connect was accepted")
    await sio.disconnect()
    assert reasons, "the server gave no reason"
    return dict(reasons[0]["data"])
