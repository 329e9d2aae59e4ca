"""Every error code, for every client event: a clear ack, never a dropped connection."""

from __future__ import annotations

import aiohttp
import pytest
import socketio

from tests.services import RedisService
from tests.support import ServerHarness

EVENTS = ["room:join", "room:leave", "message:send", "message:edit", "message:delete", "typing", "history", "sync", "read"]
MALFORMED = [None, "text", 42, [], {"room_id": "1"}, {"room_id": -1}, {"room_id": True}, {"id": "x"},
             {"room_id": 999999, "body": 5, "client_id": "c"}, {"room_id": 999999, "before_seq": "a"}, {"cursors": []},
             {"cursors": {"x": 1}}, {"room_id": 999999, "seq": -1}, {"room_id": 999999, "typing": "maybe"}, {"room_id": 999999, "limit": 0}]


async def test_malformed_payloads_of_every_event_get_invalid_and_keep_the_connection(harness: ServerHarness) -> None:
    node = await harness.start_node(limits=harness.config().limits.__class__(events_per_10s=1000))
    alice = await harness.user(node)
    _, body = await alice.call("POST", "/api/v1/rooms", {"name": "e", "kind": "public"}, expect=201)
    await alice.connect()
    for event in EVENTS:
        for payload in MALFORMED:
            ack = await alice.emit(event, payload)
            assert ack["ok"] is False, (event, payload, ack)
            assert ack["error"]["code"] in ("invalid", "not_found"), (event, payload, ack)
    assert alice.sio is not None and alice.sio.connected
    ok = await alice.send(body["room"]["id"], "still connected")
    assert ok["seq"] == 1


async def test_body_limits(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice = await harness.user(node)
    _, body = await alice.call("POST", "/api/v1/rooms", {"name": "e", "kind": "public"}, expect=201)
    await alice.connect()
    room_id = body["room"]["id"]
    ack = await alice.emit("message:send", {"room_id": room_id, "body": "x" * 4001, "client_id": "big"})
    assert ack["error"]["code"] == "too_large"
    ack = await alice.emit("message:send", {"room_id": room_id, "body": "   ", "client_id": "empty"})
    assert ack["error"]["code"] == "invalid"
    status, err = await alice.call("POST", "/api/v1/rooms", data=b'{"name": "' + b"x" * 70_000 + b'"}',
                                   headers={**alice.auth, "Content-Type": "application/json"})
    assert status == 413 and err["error"]["code"] == "too_large"
    status, err = await alice.call("POST", "/api/v1/rooms", data=b"{not json", headers={**alice.auth, "Content-Type": "application/json"})
    assert status == 400 and err["error"]["code"] == "invalid"


async def test_a_flood_is_rate_limited_and_the_connection_stays_usable(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice = await harness.user(node)
    _, body = await alice.call("POST", "/api/v1/rooms", {"name": "flood", "kind": "public"}, expect=201)
    room_id = body["room"]["id"]
    await alice.connect()
    acks = [await alice.emit("message:send", {"room_id": room_id, "body": f"m{i}", "client_id": f"f{i}"}) for i in range(25)]
    limited = [a for a in acks if not a["ok"]]
    assert limited and all(a["error"]["code"] == "rate_limited" and a["error"]["details"]["retry_after"] > 0 for a in limited)
    assert sum(a["ok"] for a in acks) == 20
    page = await alice.emit("history", {"room_id": room_id, "limit": 50})
    assert len(page["messages"]) == 20


async def test_disallowed_origin_is_refused_at_the_handshake(harness: ServerHarness) -> None:
    node = await harness.start_node(cors_origins=("https://chat.example.com",))
    alice = await harness.user(node)
    bad = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await bad.connect(node.base_url, auth={"token": alice.tokens["access_token"]}, transports=["websocket"],
                          headers={"Origin": "https://evil.example.net"}, wait_timeout=5)
    good = socketio.AsyncClient(reconnection=False)
    await good.connect(node.base_url, auth={"token": alice.tokens["access_token"]}, transports=["websocket"],
                       headers={"Origin": "https://chat.example.com"}, wait_timeout=5)
    await good.disconnect()


async def test_unknown_routes_and_methods_answer_json(harness: ServerHarness) -> None:
    node = await harness.start_node()
    async with aiohttp.ClientSession() as s:
        async with s.get(node.base_url + "/api/v1/nope") as r:
            assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"
        async with s.delete(node.base_url + "/api/v1/rooms") as r:
            assert r.status == 405 and (await r.json())["error"]["code"] == "invalid"


async def test_redis_outage_keeps_messages_and_fan_out_recovers(harness: ServerHarness) -> None:
    redis = RedisService().start()
    try:
        harness.env["REDIS_URL"] = redis.url
        node = await harness.start_node()
        alice, bob = await harness.user(node), await harness.user(node)
        _, body = await alice.call("POST", "/api/v1/rooms", {"name": "r", "kind": "public", "members": [bob.id]}, expect=201)
        room_id = body["room"]["id"]
        await alice.connect()
        await bob.connect()
        redis.kill()
        during = [await alice.send(room_id, f"during outage {i}") for i in range(3)]
        assert [m["seq"] for m in during] == [1, 2, 3]  # acked and stored
        redis.start()  # same port
        for _ in range(60):  # the manager reconnects with backoff; fan-out comes back by itself
            probe = await alice.send(room_id, "probe")
            try:
                await bob.log.wait_for("message", lambda m, pid=probe["id"]: m["id"] == pid, timeout=0.5)
                break
            except TimeoutError:
                continue
        else:
            raise AssertionError("fan-out did not recover")
        page = await bob.emit("history", {"room_id": room_id, "limit": 100})
        assert [m["body"] for m in page["messages"]][:3] == [m["body"] for m in during]
    finally:
        redis.cleanup()
