"""Scale-out through a real nginx: the repo's nginx.conf (Debian's nginx) in front of two
chat-server processes on one PostgreSQL and one Redis.

Each client reaches nginx from its own loopback source address; nginx hashes the address, which
puts the client on a known node. The access log's ``$upstream_addr`` shows where every request
went.
"""

from __future__ import annotations

import asyncio
import collections
import signal
from typing import Any

import asyncpg
import pytest

from tests.integration.conftest import Edge
from tests.integration.edge import EdgeClient, LogLine, RoomRowLock, eventually
from tests.services.base import port_open
from tests.support import PRESENCE_TTL_S, Client, ServerHarness

pytestmark = pytest.mark.solo


async def make_room(owner: Client, members: list[Client]) -> int:
    _, body = await owner.call("POST", "/api/v1/rooms", {"name": "edge", "kind": "public", "members": [m.id for m in members]},
                               expect=201)
    return int(body["room"]["id"])


async def presence_seen_by(client: EdgeClient, room_id: int) -> dict[int, str]:
    ack = await client.emit("room:join", {"room_id": room_id})
    return {int(uid): status for uid, status in ack["presence"].items()}


async def room_rows(database_url: str, room_id: int) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        return list(await conn.fetch("SELECT id, seq, author_id, client_id FROM messages WHERE room_id = $1 ORDER BY seq",
                                     room_id))
    finally:
        await conn.close()


def served_by(upstream_addr: str) -> str:
    """nginx lists every upstream it tried ("a, b"); the last one answered."""
    return upstream_addr.split(", ")[-1]


def live_duplicates(client: EdgeClient) -> list[Any]:
    return [mid for mid, n in collections.Counter(m["id"] for m in client.live).items() if n > 1]


async def test_clients_on_both_nodes_chat_both_ways_over_websocket_and_sticky_polling_with_presence(
        harness: ServerHarness, edge: Edge) -> None:
    users = {name: await harness.user(edge.nodes["node-a"]) for name in ("alice", "carol", "bob", "dave")}
    room_id = await make_room(users["alice"], [users["carol"], users["bob"], users["dave"]])
    addr_a, addr_b = await edge.addr("node-a"), await edge.addr("node-b")
    clients = {
        "alice": EdgeClient(users["alice"], addr_a, "websocket"),
        "carol": EdgeClient(users["carol"], addr_a, "polling"),
        "bob": EdgeClient(users["bob"], addr_b, "websocket"),
        "dave": EdgeClient(users["dave"], addr_b, "polling"),
    }
    try:
        for c in clients.values():
            await c.connect(edge.base_url)
            await c.join(room_id)

        # presence: every client, on either node, sees all four online
        everyone = {u.id: "online" for u in users.values()}
        for c in clients.values():
            await eventually(lambda c=c: _equals(presence_seen_by(c, room_id), everyone))

        # everyone sends; everyone receives every message once, across nodes and transports
        sent = [await c.send(room_id, f"hello from {name} over {c.transport}") for name, c in clients.items()]
        for c in clients.values():
            for m in sent:
                await c.user.log.wait_for("message", lambda e, m=m: e["id"] == m["id"], timeout=10)
        for name, c in clients.items():
            assert sorted(m["id"] for m in c.live) == sorted(m["id"] for m in sent), name
        # a polling client keeps its session while it chats: no reconnect happened
        assert all(c.connects == 1 for c in clients.values())

        # sticky polling: every request of each long-polling session reached the node that holds it
        log = edge.nginx.access_log()
        for name, node_id in (("carol", "node-a"), ("dave", "node-b")):
            sid = clients[name].eio_sid
            session = [line for line in log if f"sid={sid}" in line.request]
            assert len(session) >= 4, (name, session)  # connect POST, polls and sends
            assert {served_by(line.upstream) for line in session} == {edge.upstream(node_id)}, (name, session)
            assert all(line.status == 200 for line in session), session
    finally:
        for c in clients.values():
            await c.close()
    # the WebSocket upgrades (logged when they close) went to the same nodes
    async def upgrades_logged() -> list[LogLine]:
        ws = [line for line in edge.nginx.access_log() if "transport=websocket" in line.request]
        return ws if len(ws) >= 2 and all(line.status == 101 for line in ws) else []
    ws_lines = await eventually(upgrades_logged)
    assert {(line.remote, served_by(line.upstream)) for line in ws_lines} == {
        (addr_a, edge.upstream("node-a")), (addr_b, edge.upstream("node-b"))}


async def _equals(got: Any, expected: Any) -> bool:
    return (await got) == expected


async def test_node_stopped_mid_conversation_its_clients_fail_over_through_nginx_and_sync_missing_and_duplicating_nothing(
        harness: ServerHarness, edge: Edge) -> None:
    node_b = edge.nodes["node-b"]
    assert node_b.process is not None
    users = {name: await harness.user(edge.nodes["node-a"]) for name in ("alice", "carol", "bob", "dave", "erin")}
    room_id = await make_room(users["alice"], [u for n, u in users.items() if n != "alice"])
    addr_a, addr_b = await edge.addr("node-a"), await edge.addr("node-b")
    clients = {
        "alice": EdgeClient(users["alice"], addr_a, "websocket"),
        "carol": EdgeClient(users["carol"], addr_a, "polling"),
        "bob": EdgeClient(users["bob"], addr_b, "websocket"),
        "dave": EdgeClient(users["dave"], addr_b, "polling"),
        "erin": EdgeClient(users["erin"], addr_b, "websocket", reconnect=False),  # closes the app instead
    }
    movers = ("bob", "dave")
    stayers = ("alice", "carol")
    try:
        for c in clients.values():
            await c.connect(edge.base_url)
            await c.join(room_id)
        alice = clients["alice"]
        await eventually(lambda: _equals(presence_seen_by(alice, room_id), {u.id: "online" for u in users.values()}))
        for name, c in clients.items():
            await c.send(room_id, f"before: {name}")

        async with RoomRowLock(harness.database_url, room_id) as lock:
            # bob's send reaches node b and waits on the room's row: it is in flight ...
            in_flight_id = "bob-in-flight-1"
            in_flight = asyncio.create_task(clients["bob"].send(room_id, "sent while node b stops", in_flight_id))
            await eventually(lambda: _positive(lock.waiters()))
            # ... when node b is told to stop
            node_b.process.send_signal(signal.SIGTERM)
            await eventually(lambda: _true(not port_open(node_b.port)))  # listener closed: draining
            chatter = asyncio.create_task(_chat(clients["alice"], clients["carol"], room_id, 8))
            await asyncio.sleep(0.2)  # the conversation on node a goes on (and queues behind the lock)
        # the lock is gone: the in-flight send completes and its ack reaches bob before his socket closes
        acked = await in_flight
        assert acked["client_id"] == in_flight_id
        assert await asyncio.to_thread(node_b.process.wait, 10) == 0  # a clean exit, within its 10 s bound
        node_log = (harness.tmp / f"node-{node_b.port}.log").read_text()
        assert "drained 3 sessions" in node_log, node_log[-2000:]

        # bob and dave reconnect by themselves, through nginx, to node a, and sync from their cursors
        for name in movers:
            await clients[name].wait_connects(2)
        said = await chatter
        for name in movers:
            await clients[name].sync(room_id)
        # bob's app was not sure about its pending send: resending it returns the stored message
        again = await clients["bob"].send(room_id, "sent while node b stops", in_flight_id)
        assert again["id"] == acked["id"]

        last = await alice.send(room_id, "after the failover")
        for name in (*movers, *stayers):
            await clients[name].user.log.wait_for("message", lambda m: m["id"] == last["id"], timeout=10)

        rows = await room_rows(harness.database_url, room_id)
        assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
        sends = [(r["author_id"], r["client_id"]) for r in rows if r["client_id"] is not None]
        assert len(set(sends)) == len(sends)  # nothing stored twice
        assert {m["id"] for m in said} | {acked["id"], last["id"]} <= {r["id"] for r in rows}
        history = {r["seq"]: r["id"] for r in rows}
        for name in (*movers, *stayers):
            c = clients[name]
            # nothing missed: live events + acks + the sync replay give the whole room, by seq
            assert {seq: m["id"] for seq, m in c.timeline.items()} == history, name
            # nothing duplicated: no message arrived twice live, no replay repeats a seq
            assert live_duplicates(c) == [], name
            for replay in c.replays:
                seqs = [m["seq"] for m in replay]
                assert seqs == sorted(set(seqs)), (name, seqs)
        assert all(clients[n].connects == 1 for n in stayers)
        assert clients["erin"].connects == 1 and not clients["erin"].sio.connected

        # presence after the failover: movers online (on node a), erin offline at once
        expected = {u.id: "online" for u in users.values()} | {users["erin"].id: "offline"}
        await eventually(lambda: _equals(presence_seen_by(alice, room_id), expected))
        await eventually(lambda: _equals(presence_seen_by(clients["dave"], room_id), expected))

        # dave's new long-polling session sticks to node a: nginx skips node b for every request
        sid = clients["dave"].eio_sid
        session = [line for line in edge.nginx.access_log() if f"sid={sid}" in line.request]
        assert session and {served_by(line.upstream) for line in session} == {edge.upstream("node-a")}
    finally:
        for c in clients.values():
            await c.close()


async def _chat(alice: EdgeClient, carol: EdgeClient, room_id: int, n: int) -> list[dict[str, Any]]:
    said = []
    for i in range(n):
        said.append(await alice.send(room_id, f"during failover {i} (alice)"))
        said.append(await carol.send(room_id, f"during failover {i} (carol)"))
        await asyncio.sleep(0.05)
    return said


async def _positive(value: Any) -> bool:
    return bool(await value > 0)


async def _true(value: bool) -> bool:
    return value


async def test_node_killed_mid_conversation_its_users_go_offline_in_bound_and_its_clients_resume_on_the_other_node(
        harness: ServerHarness, edge: Edge) -> None:
    """R8: SIGKILL, so no drain and no shutdown hook: the heartbeat TTL alone takes the node's
    users offline, and its clients' own reconnect + resend + ``sync`` lose and duplicate nothing."""
    node_b = edge.nodes["node-b"]
    assert node_b.process is not None
    users = {name: await harness.user(edge.nodes["node-a"]) for name in ("alice", "carol", "bob", "dave", "erin")}
    room_id = await make_room(users["alice"], [u for n, u in users.items() if n != "alice"])
    addr_a, addr_b = await edge.addr("node-a"), await edge.addr("node-b")
    clients = {
        "alice": EdgeClient(users["alice"], addr_a, "websocket"),
        "carol": EdgeClient(users["carol"], addr_a, "polling"),
        "bob": EdgeClient(users["bob"], addr_b, "websocket"),
        "dave": EdgeClient(users["dave"], addr_b, "polling"),
        "erin": EdgeClient(users["erin"], addr_b, "websocket", reconnect=False),  # gone with the node
    }
    movers = ("bob", "dave")
    try:
        for c in clients.values():
            await c.connect(edge.base_url)
            await c.join(room_id)
        alice = clients["alice"]
        await eventually(lambda: _equals(presence_seen_by(alice, room_id), {u.id: "online" for u in users.values()}))
        for name, c in clients.items():
            await c.send(room_id, f"before: {name}")

        in_flight_id = "bob-in-flight-kill"
        async with RoomRowLock(harness.database_url, room_id) as lock:
            # bob's send waits on the room's row on node b when node b dies: never acked
            in_flight = asyncio.create_task(clients["bob"].sio.call(
                "message:send", {"room_id": room_id, "body": "sent as node b dies", "client_id": in_flight_id}, timeout=30))
            await eventually(lambda: _positive(lock.waiters()))
            killed_at = asyncio.get_running_loop().time()
            node_b.process.send_signal(signal.SIGKILL)
            await asyncio.to_thread(node_b.process.wait, 10)
            chatter = asyncio.create_task(_chat(clients["alice"], clients["carol"], room_id, 5))
            await asyncio.sleep(0.2)
        # the statement may still commit after its node died (PostgreSQL finishes it): either
        # way the ack is lost, and the resend below must find what was stored, not store it twice
        in_flight.cancel()

        # erin's socket died with the node: offline for alice within PRESENCE_TTL_S + one sweep + 2 s
        bound = PRESENCE_TTL_S + PRESENCE_TTL_S / 3 + 2.0
        left = bound - (asyncio.get_running_loop().time() - killed_at)
        off = await alice.user.log.wait_for("presence", lambda e: e["user_id"] == users["erin"].id
                                            and e["status"] == "offline", timeout=left)
        assert off["last_seen"]

        # bob and dave reconnect by themselves, through nginx, to node a; bob resends his unacked
        # message with the same client_id, and both sync from their cursors
        for name in movers:
            await clients[name].wait_connects(2)
        said = await chatter
        again = await clients["bob"].send(room_id, "sent as node b dies", in_flight_id)
        for name in movers:
            await clients[name].sync(room_id)
        last = await alice.send(room_id, "after the kill")
        for name in ("alice", "carol"):
            # a message stored by node b as it died was never fanned out: the stayers see the
            # seq gap and sync, as the app does
            await clients[name].sync(room_id)
        for name in (*movers, "alice", "carol"):
            await clients[name].user.log.wait_for("message", lambda m: m["id"] == last["id"], timeout=10)

        rows = await room_rows(harness.database_url, room_id)
        assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
        sends = [(r["author_id"], r["client_id"]) for r in rows if r["client_id"] is not None]
        assert len(set(sends)) == len(sends)  # nothing stored twice
        assert sends.count((users["bob"].id, in_flight_id)) == 1 and again["client_id"] == in_flight_id
        assert {m["id"] for m in said} | {again["id"], last["id"]} <= {r["id"] for r in rows}
        history = {r["seq"]: r["id"] for r in rows}
        for name in (*movers, "alice", "carol"):
            c = clients[name]
            assert {seq: m["id"] for seq, m in c.timeline.items()} == history, name
            assert live_duplicates(c) == [], name
        # through nginx: every request of dave's new polling session went to node a
        sid = clients["dave"].eio_sid
        session = [line for line in edge.nginx.access_log() if f"sid={sid}" in line.request]
        assert session and {served_by(line.upstream) for line in session} == {edge.upstream("node-a")}
        expected = {u.id: "online" for u in users.values()} | {users["erin"].id: "offline"}
        await eventually(lambda: _equals(presence_seen_by(alice, room_id), expected))
    finally:
        for c in clients.values():
            await c.close()
