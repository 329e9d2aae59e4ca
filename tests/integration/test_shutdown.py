"""Graceful stop of one chat-server node (``server/shutdown.py``), in process: acks of events in
flight reach their clients, every transport is dropped (so socket.io clients reconnect on their
own), new handshakes are refused, and the drain ends at its bound even when a handler does not."""

from __future__ import annotations

import asyncio
import logging
import uuid

import aiohttp
import asyncpg
import pytest
import socketio

from server.app import SIO
from server.shutdown import drain
from tests.integration.edge import RoomRowLock, eventually
from tests.services.base import port_open
from tests.support import ChatNode, Client, ServerHarness

LOST_TRANSPORT = socketio.AsyncClient.reason.TRANSPORT_ERROR  # python-socketio reconnects after this one


async def room_with(harness: ServerHarness, node: ChatNode, *users: Client) -> int:
    owner = users[0]
    _, body = await owner.call("POST", "/api/v1/rooms", {"name": "drain", "kind": "private",
                                                         "members": [u.id for u in users[1:]]}, expect=201)
    return int(body["room"]["id"])


def record_disconnects(client: Client) -> list[str]:
    reasons: list[str] = []
    assert client.sio is not None

    async def on_disconnect(reason: str = "") -> None:
        reasons.append(reason)

    client.sio.on("disconnect", on_disconnect)
    return reasons


async def stored_count(database_url: str, author_id: int, client_id: str) -> int:
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM messages WHERE author_id = $1 AND client_id = $2",
                                       author_id, client_id))
    finally:
        await conn.close()


async def test_stopping_node_delivers_in_flight_acks_then_drops_transports_so_clients_reconnect(
        harness: ServerHarness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="server.shutdown")
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    room_id = await room_with(harness, node, alice, bob)
    await alice.connect(transports=["websocket"])
    await bob.connect(transports=["polling"])
    reasons = {"alice": record_disconnects(alice), "bob": record_disconnects(bob)}

    async with RoomRowLock(harness.database_url, room_id) as lock:
        sending = asyncio.create_task(alice.send(room_id, "in flight at shutdown", "alice-1"))
        await eventually(lambda: _at_least(lock.waiters(), 1))
        stopping = asyncio.create_task(harness.stop_node(node))
        await eventually(lambda: _true(not port_open(node.port)))  # stopped accepting; now draining
    ack = await sending  # the handler finished during the drain and its ack went out before the close
    assert ack["client_id"] == "alice-1" and ack["seq"] == 1
    await stopping
    # the node's own drain closed both sessions (not the server's shutdown timeout)
    assert "drained 2 sessions; 1 handlers finished, 0 still running" in caplog.text

    # transports dropped, not "sent away": socket.io clients treat this as a lost connection and reconnect
    assert reasons == {"alice": [LOST_TRANSPORT], "bob": [LOST_TRANSPORT]}
    assert await stored_count(harness.database_url, alice.id, "alice-1") == 1


async def test_drain_ends_at_its_bound_with_a_stuck_handler_and_a_resend_elsewhere_stores_nothing_twice(
        harness: ServerHarness) -> None:
    node = await harness.start_node(db_timeout_s=30.0)  # the stuck insert outlives the drain's bound
    alice = await harness.user(node)
    room_id = await room_with(harness, node, alice)
    await alice.connect(transports=["websocket"])
    reasons = record_disconnects(alice)
    assert node.app is not None
    client_id = uuid.uuid4().hex

    async with RoomRowLock(harness.database_url, room_id) as lock:
        sending = asyncio.create_task(alice.emit("message:send", {"room_id": room_id, "body": "stuck", "client_id": client_id},
                                                 timeout=60))
        await eventually(lambda: _at_least(lock.waiters(), 1))
        report = await drain(node.app[SIO], bound_s=1.0)
        # returned while the handler was still blocked: it did not wait past its bound
        assert (report.sessions_closed, report.handlers_finished, report.handlers_running) == (1, 0, 1)
        assert not sending.done()
    sending.cancel()
    assert reasons == [LOST_TRANSPORT]
    await eventually(lambda: _at_least(stored_count(harness.database_url, alice.id, client_id), 1))

    # the ack never came: the client resends the same client_id on another node and gets the stored message
    other = await harness.start_node()
    await alice.connect(other.base_url)
    again = await alice.send(room_id, "stuck", client_id)
    assert again["seq"] == 1
    assert await stored_count(harness.database_url, alice.id, client_id) == 1


async def test_once_draining_a_node_refuses_new_handshakes(harness: ServerHarness) -> None:
    node = await harness.start_node()
    assert node.app is not None
    carol = await harness.user(node)
    await drain(node.app[SIO], bound_s=1.0)
    async with aiohttp.ClientSession() as http:
        for transport in ("polling", "websocket"):
            sio = socketio.AsyncClient(http_session=http, reconnection=False)
            with pytest.raises(socketio.exceptions.ConnectionError):
                await sio.connect(node.base_url, auth={"token": carol.tokens["access_token"]}, transports=[transport],
                                  wait_timeout=10)


async def _at_least(value: object, n: int) -> bool:
    return bool(await value >= n)  # type: ignore[misc]


async def _true(value: bool) -> bool:
    return value
