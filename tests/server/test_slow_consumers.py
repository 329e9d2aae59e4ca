"""Slow consumers: a client that stops reading is dropped once its outbound queue passes the cap
(WS_QUEUE_MAX_BYTES / WS_QUEUE_MAX_PACKETS), what the server holds for it stays bounded, and the
other clients of its room keep receiving every message in order.

The slow client is a raw WebSocket client with a small receive buffer that stops reading after
its Socket.IO connect: the kernel buffers on both sides fill, then its transport pauses and
the session's ``PacketQueue`` grows. Broadcasts are real ``message:send`` calls of another user.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
from typing import Any

import aiohttp
import pytest

from server.app import SIO
from tests.support import ChatNode, Client, ServerHarness, make_room

BODY = "x" * 30_000  # ~30 KB per broadcast: fills the kernel buffers in a few hundred messages
TRANSPORT_HIGH_WATER = 64 * 1024  # asyncio's default: the transport pauses writing past it


def small_receive_buffer(addr_info: Any) -> socket.socket:
    family, type_, proto, _, _ = addr_info
    sock = socket.socket(family, type_, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: no window autotuning
    return sock


async def connect_raw(base_url: str, token: str) -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse, str]:
    """A raw Engine.IO/Socket.IO WebSocket client connected to namespace ``/``; its Socket.IO sid."""
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(socket_factory=small_receive_buffer))
    ws = await session.ws_connect(base_url + "/socket.io/?EIO=4&transport=websocket", max_msg_size=0)
    opened = await ws.receive_str(timeout=10)
    assert opened.startswith("0"), opened
    await ws.send_str("40" + json.dumps({"token": token}))
    connected = await ws.receive_str(timeout=10)
    assert connected.startswith("40{"), connected
    return session, ws, json.loads(connected[2:])["sid"]


def held_for(node: ChatNode, eio_sid: str) -> int | None:
    """Bytes the server holds for the session: what its queue holds (encoded packet lengths) plus
    its transport's write buffer; None once the session is gone."""
    assert node.app is not None
    sock = node.app[SIO].eio.sockets.get(eio_sid)
    if sock is None or sock.closed:
        return None
    queue = sock.queue
    items = queue._items[queue._head:] if queue._items is not None else []
    queued = sum(1 + len(p.data) for p in items if p is not None and isinstance(p.data, str))
    ws = queue._ws  # the session's LeanWebSocket (None once dropped)
    buffered = ws.transport.get_write_buffer_size() if ws is not None and not ws.lost else 0
    return int(queued + buffered)


async def slow_reader_in_a_busy_room(harness: ServerHarness, **limits: int) -> tuple[ChatNode, Client, Client, int]:
    base = harness.config().limits
    node = await harness.start_node(limits=dataclasses.replace(
        base, max_body_chars=len(BODY), messages_per_10s=100_000, events_per_10s=100_000, **limits))
    alice, bob, carol = await harness.user(node), await harness.user(node), await harness.user(node)
    room_id = await make_room(alice, bob, carol)
    await alice.connect()
    await bob.connect()
    return node, alice, bob, room_id


@pytest.mark.parametrize("limits", [
    {"ws_queue_max_bytes": 64 * 1024, "ws_queue_max_packets": 100_000},  # the byte cap trips
    {"ws_queue_max_bytes": 64 << 20, "ws_queue_max_packets": 16},  # the packet cap trips
], ids=["bytes", "packets"])
async def test_client_that_stops_reading_is_dropped_when_its_queue_passes_the_cap_and_others_get_every_message(
        harness: ServerHarness, limits: dict[str, int]) -> None:
    node, alice, bob, room_id = await slow_reader_in_a_busy_room(harness, **limits)
    carol = harness.clients[-1]
    session, ws, sid = await connect_raw(node.base_url, carol.tokens["access_token"])
    try:
        assert node.app is not None
        sio = node.app[SIO]
        eio_sid = sio.manager.eio_sid_from_sid(sid, "/")
        assert eio_sid is not None
        cap = limits["ws_queue_max_bytes"]
        bound = cap + TRANSPORT_HIGH_WATER + 2 * (len(BODY) + 1000)  # + the frame being written
        sent: list[int] = []
        most_held = 0
        async with asyncio.timeout(120):  # a bound on a hang, not a speed requirement
            # carol reads nothing from here on; 12 MB is far past every kernel buffer on loopback
            for _ in range(400):
                held = held_for(node, eio_sid)
                if held is None:
                    break
                most_held = max(most_held, held)
                assert held <= bound, f"the server holds {held} bytes for a client that does not read"
                sent.append((await alice.send(room_id, BODY))["seq"])
        assert held_for(node, eio_sid) is None, "the slow client was never dropped"
        assert most_held > TRANSPORT_HIGH_WATER  # it did fall behind before it was dropped

        # the slow client's connection ends (after what its buffers already held)
        async with asyncio.timeout(15):
            async for _msg in ws:
                pass
        assert ws.closed

        # the reading client got every message, in order
        got = await bob.log.wait_count("message", len(sent), timeout=30)
        assert [m["seq"] for m in got if m["room_id"] == room_id] == sent
        _, text = await alice.call("GET", "/metrics", expect=200)
        assert "chat_slow_consumer_drops_total 1.0" in text
    finally:
        await ws.close()
        await session.close()
