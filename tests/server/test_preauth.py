"""Peers that hold a session without being a client: a WebSocket peer that sends Engine.IO CLOSE
or garbage, a session that never sends Socket.IO CONNECT (or whose connect is refused), and one
address opening session after session. Raw WebSocket and HTTP long-polling clients against the
real server from ``create_app``."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from ipaddress import ip_network
from typing import Any

import aiohttp
import pytest

from server.app import SIO
from tests.support import ChatNode, ServerHarness

EIO = "/socket.io/?EIO=4"


async def start(harness: ServerHarness, trusted_proxies: tuple[Any, ...] = (), **limits: Any) -> ChatNode:
    base = harness.config().limits
    return await harness.start_node(limits=dataclasses.replace(base, **limits), trusted_proxies=trusted_proxies)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


async def open_ws(http: aiohttp.ClientSession, node: ChatNode) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(node.base_url + EIO + "&transport=websocket")
    opened = await ws.receive_str(timeout=10)
    assert opened.startswith("0{"), opened
    return ws


async def ended_within(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> list[Any]:
    """Read until the server ends the connection (bounded); the text frames it sent."""
    frames = []
    async with asyncio.timeout(seconds):  # a bound on a hang, not a speed requirement
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                frames.append(msg.data)
    return frames


def live_sessions(node: ChatNode) -> int:
    assert node.app is not None
    return sum(1 for s in node.app[SIO].eio.sockets.values() if not s.closed)


# --- (a) CLOSE and invalid packets over a WebSocket -----------------------------------------


@pytest.mark.parametrize("packet", ["1", "", "not a packet", "7"], ids=["close", "empty", "garbage", "unknown-type"])
async def test_websocket_peer_sending_close_or_an_invalid_packet_has_its_connection_closed(
        harness: ServerHarness, http: aiohttp.ClientSession, packet: str) -> None:
    node = await start(harness, connect_timeout_s=600.0)  # the connect deadline is not what closes it
    alice = await harness.user(node)
    ws = await open_ws(http, node)
    await ws.send_str("40" + json.dumps({"token": alice.tokens["access_token"]}))
    assert (await ws.receive_str(timeout=10)).startswith("40{")
    assert live_sessions(node) == 1
    await ws.send_str(packet)
    await ended_within(ws, 15)
    async with asyncio.timeout(5):
        while live_sessions(node):
            await asyncio.sleep(0.02)


# --- (b) the connect deadline ----------------------------------------------------------------


@pytest.mark.parametrize("connect", [None, {"token": "not-a-token"}], ids=["no-connect", "refused-connect"])
async def test_websocket_session_without_a_namespace_is_closed_after_the_connect_timeout(
        harness: ServerHarness, http: aiohttp.ClientSession, connect: dict[str, str] | None) -> None:
    node = await start(harness, connect_timeout_s=1.0)
    alice = await harness.user(node)
    await alice.connect()  # a real client, connected in time: it stays
    ws = await open_ws(http, node)
    if connect is not None:
        await ws.send_str("40" + json.dumps(connect))
        assert (await ws.receive_str(timeout=10)).startswith("44")  # connect_error
    frames = await ended_within(ws, 15)
    assert "1" in frames  # Engine.IO CLOSE, then the WebSocket closes
    assert alice.sio is not None and alice.sio.connected
    assert (await alice.emit("typing", {"room_id": 1, "typing": False}))  # still served


async def test_polling_session_without_a_namespace_is_closed_after_the_connect_timeout(harness: ServerHarness, http: aiohttp.ClientSession) -> None:
    node = await start(harness, connect_timeout_s=1.0)
    async with http.get(node.base_url + EIO + "&transport=polling") as r:
        assert r.status == 200
        sid = json.loads((await r.text())[1:])["sid"]
    url = node.base_url + EIO + f"&transport=polling&sid={sid}"
    # the long-poll answers CLOSE at the deadline (without it: a PING after 25 s)
    async with http.get(url, timeout=aiohttp.ClientTimeout(total=10)) as r:
        assert r.status == 200
        assert (await r.text()) == "1"
    async with http.get(url) as r:
        assert r.status == 400  # the session is gone


# --- (c) concurrent sessions per client address ----------------------------------------------


async def polling_handshake(http: aiohttp.ClientSession, node: ChatNode,
                            headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with http.get(node.base_url + EIO + "&transport=polling", headers=headers) as r:
        text = await r.text()
        return r.status, (json.loads(text[1:]) if r.status == 200 else json.loads(text))


async def test_handshakes_past_the_per_address_cap_are_refused_with_429_on_both_transports(harness: ServerHarness, http: aiohttp.ClientSession) -> None:
    node = await start(harness, connections_per_ip=3)
    ws = await open_ws(http, node)
    sids = []
    for _ in range(2):
        status, body = await polling_handshake(http, node)
        assert status == 200
        sids.append(body["sid"])
    status, body = await polling_handshake(http, node)
    assert status == 429
    assert body["error"]["code"] == "rate_limited" and "too many connections" in body["error"]["message"]
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(node.base_url + EIO + "&transport=websocket")
    assert refused.value.status == 429

    # a session that ends gives its place back
    async with http.post(node.base_url + EIO + f"&transport=polling&sid={sids[0]}", data="1") as r:
        assert r.status == 200
    status, _ = await polling_handshake(http, node)
    assert status == 200
    status, _ = await polling_handshake(http, node)
    assert status == 429

    async with http.get(node.base_url + "/metrics") as r:
        assert "chat_connections_refused_total 3.0" in await r.text()
    await ws.close()


async def test_per_address_cap_counts_the_forwarded_address_behind_a_trusted_proxy(harness: ServerHarness, http: aiohttp.ClientSession) -> None:
    node = await start(harness, connections_per_ip=2, trusted_proxies=(ip_network("127.0.0.1/32"),))
    one, other = {"X-Forwarded-For": "203.0.113.7"}, {"X-Forwarded-For": "203.0.113.8"}
    assert (await polling_handshake(http, node, one))[0] == 200
    assert (await polling_handshake(http, node, one))[0] == 200
    assert (await polling_handshake(http, node, one))[0] == 429
    assert (await polling_handshake(http, node, other))[0] == 200  # the proxy's own address is not the cap
    # a spoofed left-most entry does not buy a fresh address: the right-most untrusted one counts
    spoofed = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}
    assert (await polling_handshake(http, node, spoofed))[0] == 429
