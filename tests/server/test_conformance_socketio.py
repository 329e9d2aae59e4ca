"""Socket.IO v5 conformance: namespaces, auth, events, acks, binary attachments, invalid packets,
and the broadcast fast path's ``emit`` semantics.

Every test runs against stock python-socketio and against chat-server with all its run-time
patches (``tests/protocol_clients.py``), over raw WebSockets, comparing the frames with what the
specification (socketio/socket.io-protocol, Readme) and stock python-socketio send. Where stock
departs from the specification the test states stock's behaviour and says so.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from server.app import SIO
from tests.protocol_clients import (
    ProbeServer,
    RawWs,
    add_probe_handlers,
    probe_server_fixture,
    serve_ours,
    socketio_connect,
)
from tests.services import PostgresService, RedisService
from tests.support import ServerHarness

server = probe_server_fixture(ping_interval=10.0, ping_timeout=5.0)

PH0 = '{"_placeholder":true,"num":0}'
PH1 = '{"_placeholder":true,"num":1}'


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def connected(server: ProbeServer, http: aiohttp.ClientSession) -> RawWs:
    ws = await RawWs.connect(server, http)
    await socketio_connect(ws, server.auth)
    return ws


async def answers_echo(ws: RawWs, namespace: str = "") -> bool:
    await ws.send(f'42{namespace}["echo","alive"]')
    return await ws.recv() == f'42{namespace}["echo-back","alive"]'


# --- namespaces --------------------------------------------------------------------------------------


async def test_connect_to_the_main_namespace_with_auth_gets_its_own_sid(
        server: ProbeServer, http: aiohttp.ClientSession) -> None:
    ws = await RawWs.connect(server, http)
    reply = await socketio_connect(ws, server.auth)
    assert set(reply) == {"sid"}
    assert isinstance(reply["sid"], str) and reply["sid"] != ws.open_packet["sid"]
    assert await answers_echo(ws)
    await ws.close()


@pytest.mark.parametrize("connect", ["40", '40{"token":"not-a-token"}'])
async def test_connect_without_or_with_a_bad_token_gets_connect_error_with_message_and_data(
        server: ProbeServer, http: aiohttp.ClientSession, connect: str) -> None:
    ws = await RawWs.connect(server, http)
    await ws.send(connect)
    frame = await ws.recv()
    assert isinstance(frame, str) and frame.startswith("44{"), frame
    error = json.loads(frame[2:])
    assert set(error) == {"message", "data"} and isinstance(error["message"], str)
    assert error["data"]["code"] == "unauthorized"
    # the Engine.IO session stays: the client may CONNECT again
    await socketio_connect(ws, server.auth)
    await ws.close()


async def test_connect_to_an_unknown_namespace_gets_connect_error(
        server: ProbeServer, http: aiohttp.ClientSession) -> None:
    ws = await RawWs.connect(server, http)
    await ws.send("40/random,")
    # the specification's payload is {"message": ...}; python-socketio sends a bare string
    assert await ws.recv() == '44/random,"Unable to connect"'
    await ws.close()


async def test_connect_to_a_custom_namespace_hands_its_payload_to_the_handler(
        server: ProbeServer, http: aiohttp.ClientSession) -> None:
    ws = await connected(server, http)
    reply = await socketio_connect(ws, {"token": "abc"}, namespace="/custom")
    assert set(reply) == {"sid"}
    await ws.send('42/custom,7["auth"]')
    assert await ws.recv() == '43/custom,7[{"token":"abc"}]'
    await ws.close()


async def test_disconnect_from_one_namespace_keeps_the_others(server: ProbeServer, http: aiohttp.ClientSession) -> None:
    ws = await connected(server, http)
    await socketio_connect(ws, None, namespace="/custom")
    await ws.send("41/custom,")
    assert await answers_echo(ws)
    await ws.close()


async def test_disconnect_from_the_main_namespace_keeps_the_engineio_session(
        server: ProbeServer, http: aiohttp.ClientSession) -> None:
    ws = await connected(server, http)
    await ws.send("41")
    await socketio_connect(ws, server.auth)
    assert await answers_echo(ws)
    await ws.close()


# --- events and acks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("sent", "echoed"), [
    ('["echo"]', '["echo-back"]'),
    ('["echo","x"]', '["echo-back","x"]'),
    ('["echo",1,"2",{"3":[true]}]', '["echo-back",1,"2",{"3":[true]}]'),
    ('["echo",[1,2]]', '["echo-back",[1,2]]'),
    ('["echo",null]', '["echo-back"]'),  # python-socketio's emit: a lone None is no argument
    ('["echo","é€😀"]', '["echo-back","é€😀"]'),
], ids=["none", "one", "several", "one-list", "one-null", "utf8"])
async def test_event_emitted_back_through_the_manager_carries_the_same_arguments(
        server: ProbeServer, http: aiohttp.ClientSession, sent: str, echoed: str) -> None:
    ws = await connected(server, http)
    await ws.send("42" + sent)
    assert await ws.recv() == "42" + echoed
    await ws.close()


async def test_event_with_an_ack_id_gets_an_ack_with_that_id_and_the_arguments(
        server: ProbeServer, http: aiohttp.ClientSession) -> None:
    ws = await connected(server, http)
    await ws.send('42456["echo-ack",1,"2",{"3":[false]}]')
    assert await ws.recv() == '43456[1,"2",{"3":[false]}]'
    await ws.send('420["echo-ack"]')
    assert await ws.recv() == "430[]"
    await ws.close()


async def test_binary_event_is_emitted_back_as_binary_event_with_its_attachments(
        server: ProbeServer, http: aiohttp.ClientSession) -> None:
    ws = await connected(server, http)
    await ws.send(f'452-["echo",{PH0},{PH1}]')
    await ws.send(bytes([1, 2, 3]))
    await ws.send(bytes([4, 5, 6]))
    assert await ws.recv_many(3) == [f'452-["echo-back",{PH0},{PH1}]', bytes([1, 2, 3]), bytes([4, 5, 6])]
    await ws.send(f'451-["echo","text",{{"blob":{PH0}}}]')  # an attachment nested in an object
    await ws.send(bytes([7]))
    assert await ws.recv_many(2) == [f'451-["echo-back","text",{{"blob":{PH0}}}]', bytes([7])]
    await ws.close()


async def test_binary_event_with_an_ack_id_gets_a_binary_ack(server: ProbeServer, http: aiohttp.ClientSession) -> None:
    ws = await connected(server, http)
    await ws.send(f'452-789["echo-ack",{PH0},{PH1}]')
    await ws.send(bytes([1, 2, 3]))
    await ws.send(bytes([4, 5, 6]))
    assert await ws.recv_many(3) == [f"462-789[{PH0},{PH1}]", bytes([1, 2, 3]), bytes([4, 5, 6])]
    await ws.close()


async def test_server_event_with_an_ack_id_takes_the_clients_binary_ack(
        server: ProbeServer, http: aiohttp.ClientSession) -> None:
    ws = await connected(server, http)
    await ws.send('425["ask","q"]')
    question = await ws.recv()
    assert isinstance(question, str) and question.startswith("42") and question.endswith('["question","q"]')
    ack_id = question[2:-len('["question","q"]')]
    assert ack_id.isdigit()
    await ws.send(f"461-{ack_id}[{PH0}]")
    await ws.send(bytes([9, 9]))
    assert await ws.recv_many(2) == [f"461-5[{PH0}]", bytes([9, 9])]
    await ws.close()


# --- the broadcast path: a room of two ----------------------------------------------------------------


async def room_of_two(server: ProbeServer, http: aiohttp.ClientSession) -> tuple[RawWs, RawWs]:
    a, b = await connected(server, http), await connected(server, http)
    for ws in (a, b):
        await ws.send('421["join"]')
        assert await ws.recv() == "431[true]"
    return a, b


async def test_emit_to_a_room_with_several_arguments_reaches_every_member_as_several_arguments(
        server: ProbeServer, http: aiohttp.ClientSession) -> None:
    a, b = await room_of_two(server, http)
    await a.send('42["shout",1,"two",{"three":[3]}]')
    for ws in (a, b):
        assert await ws.recv() == '42["shouted",1,"two",{"three":[3]}]'
    await a.close()
    await b.close()


async def test_emit_to_a_room_with_binary_arguments_reaches_every_member_as_binary_event(
        server: ProbeServer, http: aiohttp.ClientSession) -> None:
    a, b = await room_of_two(server, http)
    await a.send(f'452-["shout","caption",{PH0},{{"nested":{PH1}}}]')
    await a.send(bytes([1, 2]))
    await a.send(bytes([3]))
    for ws in (a, b):
        assert await ws.recv_many(3) == [f'452-["shouted","caption",{PH0},{{"nested":{PH1}}}]', bytes([1, 2]),
                                         bytes([3])]
    await a.send('42["shout","plain again"]')  # and the fast path still serves the next one
    for ws in (a, b):
        assert await ws.recv() == '42["shouted","plain again"]'
    await a.close()
    await b.close()


async def test_emit_with_data_json_cannot_carry_raises_at_the_call_site_and_delivers_nothing(
        harness: ServerHarness, http: aiohttp.ClientSession) -> None:
    node = await harness.start_node()
    assert node.app is not None
    sio = node.app[SIO]
    user = await harness.user(node)
    probe = ProbeServer("ours", node.base_url, {"token": user.tokens["access_token"]}, 25, 20, sio)
    add_probe_handlers(sio)
    a, b = await room_of_two(probe, http)
    with pytest.raises(TypeError):
        await sio.emit("shouted", {"not json": {1, 2}}, room="probe-room")
    await sio.emit("shouted", ("after", "the refusal"), room="probe-room")
    for ws in (a, b):
        assert await ws.recv() == '42["shouted","after","the refusal"]'
    await a.close()
    await b.close()


async def test_emit_to_a_room_across_nodes_keeps_several_and_binary_arguments(
        harness: ServerHarness, http: aiohttp.ClientSession) -> None:
    # the bus copy (FanoutRedisManager._handle_emit on the other node) means the same as the local one
    first, second = await harness.start_node(), await harness.start_node()
    servers = []
    for node in (first, second):
        assert node.app is not None
        add_probe_handlers(node.app[SIO])
        user = await harness.user(node)
        servers.append(ProbeServer("ours", node.base_url, {"token": user.tokens["access_token"]}, 25, 20))
    here, there = await connected(servers[0], http), await connected(servers[1], http)
    for ws in (here, there):
        await ws.send('421["join"]')
        assert await ws.recv() == "431[true]"
    await here.send('42["shout",1,"two"]')
    assert await there.recv() == '42["shouted",1,"two"]'
    await here.send('42["shout"]')
    assert await there.recv() == '42["shouted"]'
    await here.send(f'451-["shout","bin",{PH0}]')
    await here.send(bytes([5, 6]))
    assert await there.recv_many(2) == [f'451-["shouted","bin",{PH0}]', bytes([5, 6])]
    await here.close()
    await there.close()


# --- invalid packets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("packet", [
    "4abc",  # unknown Socket.IO packet type
    "49",  # packet type out of range
    "4",  # no Socket.IO packet at all
    "42{}",  # EVENT payload not an array
    "42[]",  # EVENT without an event name
    "42[1]",  # event name not a string
    '42["echo"',  # bad JSON
    '42abc["echo-ack",1]',  # bad ack id
    '42/nowhere,["echo","x"]',  # a namespace the client is not connected to
    '44{"message":"from a client"}',  # CONNECT_ERROR is the server's
], ids=["unknown-type", "type-9", "empty", "object-payload", "empty-array", "number-name", "bad-json",
        "bad-ack-id", "unconnected-namespace", "connect-error"])
async def test_invalid_socketio_packet_is_ignored_and_the_connection_keeps_working(
        server: ProbeServer, http: aiohttp.ClientSession, packet: str) -> None:
    # the specification closes the connection; python-socketio logs the packet and goes on
    ws = await connected(server, http)
    await ws.send(packet)
    assert await answers_echo(ws)
    await ws.close()


async def test_event_before_connect_is_ignored(server: ProbeServer, http: aiohttp.ClientSession) -> None:
    ws = await RawWs.connect(server, http)
    await ws.send('42["echo","too early"]')
    await socketio_connect(ws, server.auth)  # the next frame is the CONNECT reply, not an echo
    assert await answers_echo(ws)
    await ws.close()


async def test_session_that_never_sends_connect_is_closed_after_the_connect_timeout(
        request: pytest.FixtureRequest, pg_service: PostgresService, template_db: str,
        redis_service: RedisService, key_dir: Path, tmp_path: Path, http: aiohttp.ClientSession) -> None:
    """Ours only: stock python-socketio keeps such a session as long as it answers PINGs (the
    specification says to close it; the Node server does after ``connectTimeout``)."""
    async with serve_ours(10.0, 5.0, pg_service, template_db, redis_service.url, key_dir, tmp_path,
                          CONNECT_TIMEOUT_S="1") as ours:
        ws = await RawWs.connect(ours, http)
        await ws.closed_within(4)
        async with http.get(ours.url(EIO="4", transport="polling")) as r:
            sid = json.loads((await r.text())[1:])["sid"]
        session_url = ours.url(EIO="4", transport="polling", sid=sid)
        status = 200
        async with asyncio.timeout(4):
            while status == 200:  # a POST never waits (a GET would, for packets)
                async with http.post(session_url, data="3") as r:
                    status = r.status
                await asyncio.sleep(0.2)
        assert status == 400
