"""Every error code, for every client event and on REST: a clear ack or JSON body, never a stack
trace, never a dropped connection for a merely invalid payload. (Redis going away and coming
back: ``test_outages.py``.)"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import socketio

from tests.support import ServerHarness, make_room, two_in_a_room

R, M = "ROOM", "MSG"  # placeholders for a real room id and message id of the sender

NOT_AN_OBJECT: list[Any] = [None, "text", 42, [], [{"room_id": 1}], True]
MALFORMED: dict[str, list[Any]] = {
    "room:join": [{}, {"room_id": "1"}, {"room_id": -1}, {"room_id": 0}, {"room_id": True}, {"room_id": 1.5},
                  {"room_id": None}, {"room_id": [1]}],
    "room:leave": [{}, {"room_id": "1"}, {"room_id": -1}, {"room_id": True}],
    "message:send": [{}, {"room_id": R}, {"room_id": R, "body": "x"}, {"room_id": R, "client_id": "c"},
                     {"room_id": R, "body": 5, "client_id": "c"}, {"room_id": R, "body": "x", "client_id": 5},
                     {"room_id": R, "body": "x", "client_id": ""}, {"room_id": R, "body": "x", "client_id": "c" * 65},
                     {"room_id": "1", "body": "x", "client_id": "c"}, {"room_id": R, "body": "", "client_id": "c"},
                     {"room_id": R, "body": " \n\t", "client_id": "c"}, {"room_id": R, "body": ["x"], "client_id": "c"},
                     {"room_id": R, "body": "x", "client_id": "c", "reply_to": "1"},
                     {"room_id": R, "body": "x", "client_id": "c", "reply_to": True}],
    "message:edit": [{}, {"id": M}, {"id": "1", "body": "x"}, {"id": True, "body": "x"}, {"id": -1, "body": "x"},
                     {"id": M, "body": 5}, {"id": M, "body": ""}, {"body": "x"}],
    "message:delete": [{}, {"id": "1"}, {"id": -1}, {"id": True}, {"id": None}],
    "typing": [{}, {"room_id": R}, {"room_id": R, "typing": "yes"}, {"room_id": R, "typing": 1},
               {"room_id": R, "typing": None}, {"typing": True}, {"room_id": "1", "typing": True}],
    "history": [{}, {"room_id": "1"}, {"room_id": R, "before_seq": "a"}, {"room_id": R, "before_seq": 0},
                {"room_id": R, "before_seq": True}, {"room_id": R, "limit": 0}, {"room_id": R, "limit": 101},
                {"room_id": R, "limit": "10"}, {"room_id": R, "limit": True}],
    "sync": [{}, {"cursors": []}, {"cursors": None}, {"cursors": "1:2"}, {"cursors": {"x": 1}},
             {"cursors": {R: -1}}, {"cursors": {R: "1"}}, {"cursors": {R: None}}, {"cursors": {R: True}},
             {"cursors": {str(i): 0 for i in range(1, 202)}}],
    "read": [{}, {"room_id": R}, {"seq": 1}, {"room_id": R, "seq": -1}, {"room_id": R, "seq": "1"},
             {"room_id": R, "seq": True}, {"room_id": "1", "seq": 1}],
}


def _fill_payload(payload: Any, room_id: int, message_id: int) -> Any:
    """Put the real ids in place of the placeholders (as ints, or as a string key for sync)."""
    if not isinstance(payload, dict):
        return payload
    out: dict[Any, Any] = {}
    for k, v in payload.items():
        if k == "cursors" and isinstance(v, dict):
            out[k] = {(str(room_id) if ck == R else ck): cv for ck, cv in v.items()}
        else:
            out[k] = room_id if v == R else message_id if v == M else v
    return out



async def test_malformed_payloads_of_every_event_get_invalid_and_keep_the_connection(harness: ServerHarness) -> None:
    limits = dataclasses.replace(harness.config().limits, events_per_10s=10_000, messages_per_10s=10_000)
    node = await harness.start_node(limits=limits)
    alice = await harness.user(node)
    room_id = await make_room(alice)
    await alice.connect()
    own = await alice.send(room_id, "mine")
    assert set(MALFORMED) == {"room:join", "room:leave", "message:send", "message:edit", "message:delete",
                              "typing", "history", "sync", "read"}
    for event, payloads in MALFORMED.items():
        for raw in NOT_AN_OBJECT + payloads:
            payload = _fill_payload(raw, room_id, own["id"])
            ack = await alice.emit(event, payload)
            assert ack["ok"] is False and ack["error"]["code"] == "invalid", (event, payload, ack)
            assert set(ack["error"]) <= {"code", "message", "details"} and ack["error"]["message"], ack
    # an event the server does not know gets no ack; nothing breaks either
    with pytest.raises(socketio.exceptions.TimeoutError):
        await alice.emit("no:such:event", {"x": 1}, timeout=0.5)
    assert alice.sio is not None and alice.sio.connected
    ok = await alice.send(room_id, "still connected")
    assert ok["seq"] == 2
    page = await alice.emit("history", {"room_id": room_id})
    assert [m["body"] for m in page["messages"]] == ["mine", "still connected"]  # nothing invalid was stored


async def test_forbidden_and_not_found_on_socket_and_rest(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    public = await make_room(alice)
    await alice.connect()
    await bob.connect()
    mine = await alice.send(public, "by alice")
    # forbidden: a non-member writing to a public room he did not join
    for event, payload in (("message:send", {"room_id": public, "body": "x", "client_id": "b1"}),
                           ("typing", {"room_id": public, "typing": True}),
                           ("read", {"room_id": public, "seq": 1}),
                           ("message:edit", {"id": mine["id"], "body": "x"}),
                           ("message:delete", {"id": mine["id"]})):
        ack = await bob.emit(event, payload)
        assert ack["ok"] is False and ack["error"]["code"] == "forbidden", (event, ack)
    status, err = await bob.call("POST", f"/api/v1/rooms/{public}/members", {"user_id": bob.id})
    assert status == 403 and err["error"]["code"] == "forbidden"
    # not_found: unknown rooms and messages
    for event, payload in (("room:join", {"room_id": 99999999}), ("room:leave", {"room_id": 99999999}),
                           ("message:send", {"room_id": 99999999, "body": "x", "client_id": "b2"}),
                           ("typing", {"room_id": 99999999, "typing": True}), ("history", {"room_id": 99999999}),
                           ("read", {"room_id": 99999999, "seq": 0}), ("message:edit", {"id": 99999999, "body": "x"}),
                           ("message:delete", {"id": 99999999})):
        ack = await bob.emit(event, payload)
        assert ack["ok"] is False and ack["error"]["code"] == "not_found", (event, ack)
    for path in ("/api/v1/rooms/99999999", "/api/v1/rooms/99999999/messages", "/api/v1/nope"):
        status, err = await bob.call("GET", path)
        assert status == 404 and err["error"]["code"] == "not_found", path
    status, err = await bob.call("GET", "/api/v1/admin/users")
    assert status == 403 and err["error"]["code"] == "forbidden"
    async with harness.http.get(node.base_url + "/api/v1/rooms") as r:
        assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"


async def test_body_limits_on_socket_and_rest(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice = await harness.user(node)
    room_id = await make_room(alice)
    await alice.connect()
    limit = harness.config().limits.max_body_chars  # documented: MAX_MESSAGE_CHARS, 4000 by default
    at_limit = await alice.send(room_id, "x" * limit)
    assert len(at_limit["body"]) == limit
    ack = await alice.emit("message:send", {"room_id": room_id, "body": "x" * (limit + 1), "client_id": "big"})
    assert ack["ok"] is False and ack["error"]["code"] == "too_large"
    ack = await alice.emit("message:send", {"room_id": room_id, "body": "y" * 20_000, "client_id": "bigger"})
    assert ack["error"]["code"] == "too_large"
    ack = await alice.emit("message:edit", {"id": at_limit["id"], "body": "z" * (limit + 1)})
    assert ack["error"]["code"] == "too_large"
    ack = await alice.emit("message:send", {"room_id": room_id, "body": "   ", "client_id": "empty"})
    assert ack["error"]["code"] == "invalid"
    assert (await alice.send(room_id, "after the refusals"))["seq"] == 2
    headers = {**alice.auth, "Content-Type": "application/json"}
    big = b'{"name": "' + b"x" * 70_000 + b'", "kind": "public"}'
    status, err = await alice.call("POST", "/api/v1/rooms", data=big, headers=headers)
    assert status == 413 and err["error"]["code"] == "too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit holds while reading
        yield b'{"name": "'
        for _ in range(40):
            yield b"x" * 4096
        yield b'", "kind": "public"}'

    status, err = await alice.call("POST", "/api/v1/rooms", data=chunks(), headers=headers)
    assert status == 413 and err["error"]["code"] == "too_large"
    for body in (b"{not json", b"[1, 2]", b'"room"'):
        status, err = await alice.call("POST", "/api/v1/rooms", data=body, headers=headers)
        assert status == 400 and err["error"]["code"] == "invalid", body


async def test_a_flood_is_rate_limited_and_the_connection_stays_usable(harness: ServerHarness) -> None:
    alice, bob, room_id = await two_in_a_room(harness)
    per_window = harness.config().limits.messages_per_10s
    acks = await asyncio.gather(*(alice.emit("message:send", {"room_id": room_id, "body": f"m{i}", "client_id": f"f{i}"})
                                  for i in range(per_window + 10)))
    limited = [a for a in acks if not a["ok"]]
    assert sum(a["ok"] for a in acks) == per_window and len(limited) == 10
    for a in limited:
        assert a["error"]["code"] == "rate_limited" and 0 < a["error"]["details"]["retry_after"] <= 10
    # the connection is still there and answers; the limit is per user, others are unaffected
    assert alice.sio is not None and alice.sio.connected
    page = await alice.emit("history", {"room_id": room_id, "limit": 50})
    assert len(page["messages"]) == per_window
    assert (await bob.send(room_id, "I can still talk"))["seq"] == per_window + 1


async def test_the_per_connection_event_budget_answers_rate_limited(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice = await harness.user(node)
    room_id = await make_room(alice)
    await alice.connect()
    budget = harness.config().limits.events_per_10s
    acks = await asyncio.gather(*(alice.emit("history", {"room_id": room_id, "limit": 1}) for _ in range(budget + 5)))
    limited = [a for a in acks if not a["ok"]]
    assert limited and all(a["error"]["code"] == "rate_limited" and a["error"]["details"]["retry_after"] > 0
                           for a in limited)
    assert alice.sio is not None and alice.sio.connected


async def test_disallowed_origin_is_refused_at_the_handshake(harness: ServerHarness) -> None:
    node = await harness.start_node(cors_origins=("https://chat.example.com",))
    alice = await harness.user(node)
    for transport in ("websocket", "polling"):
        bad = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await bad.connect(node.base_url, auth={"token": alice.tokens["access_token"]}, transports=[transport],
                              headers={"Origin": "https://evil.example.net"}, wait_timeout=5)
        await bad.disconnect()
    async with harness.http.get(node.base_url + "/socket.io/?EIO=4&transport=polling",
                                headers={"Origin": "https://evil.example.net"}) as r:
        assert r.status == 400 and "sid" not in await r.text()
    good = socketio.AsyncClient(reconnection=False)
    await good.connect(node.base_url, auth={"token": alice.tokens["access_token"]}, transports=["websocket"],
                       headers={"Origin": "https://chat.example.com"}, wait_timeout=5)
    assert good.connected
    await good.disconnect()


async def test_unknown_routes_and_methods_answer_json(harness: ServerHarness) -> None:
    node = await harness.start_node()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s:
        async with s.get(node.base_url + "/api/v1/nope") as r:
            assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"
        async with s.delete(node.base_url + "/api/v1/rooms") as r:
            assert r.status == 405 and (await r.json())["error"]["code"] == "invalid"
