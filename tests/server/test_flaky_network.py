"""R4 (docs/RELIABILITY.md): a client on a flaky network. A TCP proxy on loopback between a real
Socket.IO client and chat-server delays every chunk both ways and cuts the connection mid-stream,
sometimes swallowing what the server sent last (an ack lost after the message was stored). The
client sends hundreds of messages into two rooms, one at a time, resending each with the same
``client_id`` until it is acked, as the web app does. Every acked message is stored exactly once,
none is lost, each room's order is the send order, and the server counts the resends that found
their message already stored (``chat_message_send_retries_total``)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import uuid
from typing import Any

import asyncpg
import socketio

from tests.support import Client, ServerHarness, fault_seconds, make_room

MESSAGES = int(fault_seconds("CHAT_FAULT_FLAKY_MESSAGES", 200))


class FlakyProxy:
    """Forwards loopback TCP connections to ``upstream_port``, each chunk after a random delay
    (order kept per direction); ``cut()`` aborts every connection, ``swallow_then_cut()`` first
    discards what the server sends for a moment, then aborts."""

    def __init__(self, upstream_port: int, rng: random.Random, max_delay_s: float = 0.01) -> None:
        self.upstream_port = upstream_port
        self.rng = rng
        self.max_delay_s = max_delay_s
        self.swallowing = False
        self.cuts = 0
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_w.transport.abort()
            return
        link = (client_w, up_w)
        self._links.add(link)
        try:
            await asyncio.gather(self._pump(client_r, up_w, upstream=True), self._pump(up_r, client_w, upstream=False))
        finally:
            self._links.discard(link)
            client_w.transport.abort()
            up_w.transport.abort()

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, upstream: bool) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while chunk := await src.read(65536):
                await asyncio.sleep(self.rng.uniform(0, self.max_delay_s))
                if self.swallowing and not upstream:
                    continue  # lost on the way: the client never sees it
                dst.write(chunk)
                await dst.drain()
        dst.transport.abort()  # one side ended: the connection is gone both ways

    def cut(self) -> None:
        self.cuts += 1
        for client_w, up_w in list(self._links):
            client_w.transport.abort()
            up_w.transport.abort()

    async def swallow_then_cut(self, swallow_s: float) -> None:
        self.swallowing = True
        await asyncio.sleep(swallow_s)
        self.cut()
        self.swallowing = False

    async def chaos(self, stop: asyncio.Event) -> None:
        """Until ``stop``: every 0.3-1.2 s, a cut; every other one swallows first."""
        n = 0
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.rng.uniform(0.3, 1.2))
            if stop.is_set():
                return
            n += 1
            if n % 2:
                self.cut()
            else:
                await self.swallow_then_cut(0.3)

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()


@dataclasses.dataclass
class Sent:
    room_id: int
    client_id: str
    attempts: int
    message: dict[str, Any]


async def send_until_acked(sio: socketio.AsyncClient, room_id: int, body: str, client_id: str) -> Sent:
    """What the web app does with a pending send: resend with the same client_id until acked."""
    attempts = 0
    async with asyncio.timeout(60):
        while True:
            while not sio.connected:
                await asyncio.sleep(0.02)
            attempts += 1
            try:
                ack = await sio.call("message:send", {"room_id": room_id, "body": body, "client_id": client_id},
                                     timeout=1.5)
            except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError,
                    socketio.exceptions.DisconnectedError):
                continue
            assert ack["ok"], ack
            return Sent(room_id, client_id, attempts, ack["message"])


async def send_retries_counted(base_url: str, harness: ServerHarness) -> float:
    async with harness.http.get(base_url + "/metrics") as r:
        for line in (await r.text()).splitlines():
            if line.startswith("chat_message_send_retries_total "):
                return float(line.split()[-1])
    return 0.0


async def test_sends_through_a_flaky_connection_are_stored_once_each_none_lost_in_order_per_room(
        harness: ServerHarness) -> None:
    node = await harness.start_node(limits=dataclasses.replace(harness.config().limits, messages_per_10s=10_000,
                                                               events_per_10s=10_000))
    alice: Client = await harness.user(node)
    rooms = [await make_room(alice, name="one"), await make_room(alice, name="two")]
    proxy = FlakyProxy(node.port, random.Random(18))
    port = await proxy.start()
    sio = socketio.AsyncClient(reconnection=True, reconnection_delay=0.05, reconnection_delay_max=0.3,
                               reconnection_attempts=0)
    stop = asyncio.Event()
    chaos = None
    try:
        await sio.connect(f"http://127.0.0.1:{port}", auth=lambda: {"token": alice.tokens["access_token"]},
                          transports=["websocket"], wait_timeout=10)
        chaos = asyncio.create_task(proxy.chaos(stop))
        sent = [await send_until_acked(sio, rooms[i % 2], f"message {i}", uuid.uuid4().hex) for i in range(MESSAGES)]
    finally:
        stop.set()
        if chaos is not None:
            await chaos
        await sio.disconnect()
        await proxy.close()

    retries = sum(s.attempts - 1 for s in sent)
    # the network was flaky indeed: cut several times, and some acks lost after the store (how
    # many of each depends on how fast the machine sends between cuts)
    assert proxy.cuts >= 3 and retries >= 1, (proxy.cuts, retries)
    conn = await asyncpg.connect(harness.database_url, timeout=10)
    try:
        rows = await conn.fetch("SELECT id, room_id, seq, client_id FROM messages WHERE author_id = $1 ORDER BY room_id, seq",
                                alice.id)
    finally:
        await conn.close()
    # stored exactly once, none lost: one row per acked message, the very row its ack named
    assert len(rows) == MESSAGES
    assert {(r["client_id"], r["id"]) for r in rows} == {(s.client_id, s.message["id"]) for s in sent}
    for room_id in rooms:
        # each room's order is the send order, with no gap
        in_room = [s for s in sent if s.room_id == room_id]
        assert [r["client_id"] for r in rows if r["room_id"] == room_id] == [s.client_id for s in in_room]
        assert [s.message["seq"] for s in in_room] == list(range(1, len(in_room) + 1))
    # the resends that found their message stored: counted by the server, each one a resend
    hit_constraint = await send_retries_counted(node.base_url, harness)
    assert 1 <= hit_constraint <= retries, (hit_constraint, retries)
    print(f"R4: {MESSAGES} messages, {proxy.cuts} cuts, {retries} resends, {int(hit_constraint)} found stored")
