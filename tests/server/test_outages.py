"""Outages of the services behind chat-server (docs/RELIABILITY.md).

R6, Redis going away and coming back: sends are still stored and acked, fan-out between nodes
resumes within 5 s of Redis returning whatever the outage's length, and what the other node
missed meanwhile reaches its clients through ``sync``.

The outage lasts ``CHAT_FAULT_REDIS_OUTAGE_S`` seconds (default 20: past python-socketio's own
resubscribe backoff of 1, 2, 4, 8, 16 s, whose next try would come 11 s after Redis returned;
the promise's 60 s: ``CHAT_FAULT_REDIS_OUTAGE_S=60``).

R7, Kafka down (refusing connections, or accepting them and never answering): sends, history
and the health routes answer within 5 s while the relay fails its passes, and a SIGTERM'd node
exits within 10 s."""

from __future__ import annotations

import asyncio
import dataclasses
import signal

import pytest

from tests.services import RedisService
from tests.support import ServerHarness, fault_seconds, make_room

pytestmark = pytest.mark.solo

OUTAGE_S = fault_seconds("CHAT_FAULT_REDIS_OUTAGE_S", 20.0)
RESUME_BOUND_S = 5.0  # the promise: fan-out across nodes resumes within 5 s of Redis returning


@pytest.mark.timeout(120 + OUTAGE_S)
async def test_after_a_redis_outage_fan_out_resumes_within_5_s_and_sync_replays_what_was_sent_meanwhile(
        harness: ServerHarness) -> None:
    redis = RedisService().start()  # a Redis of its own: the session one is shared
    try:
        harness.env["REDIS_URL"] = redis.url
        limits = dataclasses.replace(harness.config().limits, messages_per_10s=1000, events_per_10s=1000)
        a = await harness.start_node(limits=limits)
        b = await harness.start_node(limits=limits)
        alice, bob = await harness.user(a), await harness.user(b)
        room_id = await make_room(alice, bob)
        await alice.connect()
        await bob.connect()
        before = await alice.send(room_id, "before the outage")
        await bob.log.wait_for("message", lambda m: m["id"] == before["id"])  # node a -> Redis -> node b

        redis.kill()  # SIGKILL of the real redis-server
        loop = asyncio.get_running_loop()
        back_at = loop.time() + OUTAGE_S
        during = [await alice.send(room_id, f"during outage {i}") for i in range(3)]
        assert [m["seq"] for m in during] == [2, 3, 4]  # acked and stored without Redis
        ack = await alice.emit("typing", {"room_id": room_id, "typing": True})
        assert ack == {"ok": False, "error": {"code": "unavailable", "message": "service temporarily unavailable"}}
        async with harness.http.get(a.base_url + "/readyz") as r:
            ready = await r.json()
            assert r.status == 503 and ready["checks"]["postgres"] == "ok" and ready["checks"]["redis"] != "ok"
        while loop.time() < back_at:
            during.append(await alice.send(room_id, f"during outage {len(during)}"))
            await asyncio.sleep(min(1.0, max(0.0, back_at - loop.time())))
        assert not {m["id"] for m in during} & {m["id"] for m in bob.log.all("message")}  # no fan-out meanwhile

        redis.start()  # same port, empty
        recovered = None
        async with asyncio.timeout(RESUME_BOUND_S):
            while recovered is None:
                probe = await alice.send(room_id, "probe")
                try:
                    recovered = await bob.log.wait_for("message", lambda m, pid=probe["id"]: m["id"] == pid, timeout=0.25)
                except TimeoutError:
                    continue
        # and bob's sends reach alice again: both nodes' subscriptions are back
        back = await bob.send(room_id, "back to normal")
        await alice.log.wait_for("message", lambda m: m["id"] == back["id"], timeout=RESUME_BOUND_S)

        # what node b missed reaches bob through sync from his cursor, in order, nothing twice
        replay = (await bob.emit("sync", {"cursors": {str(room_id): before["seq"]}}))["rooms"][str(room_id)]
        assert not replay["resync"]
        seqs = [m["seq"] for m in replay["messages"]]
        assert seqs == list(range(before["seq"] + 1, back["seq"] + 1))
        assert [m["id"] for m in replay["messages"][:len(during)]] == [m["id"] for m in during]

        async with harness.http.get(a.base_url + "/readyz") as r:
            assert r.status == 200
        # Redis came back empty: the nodes register their open sockets again at their next
        # heartbeat (every PRESENCE_TTL_S / 3), so both users are online without reconnecting
        # (a call that meets a pooled connection Redis's restart cut answers `unavailable`: asked again)
        async with asyncio.timeout(RESUME_BOUND_S):
            while (await alice.emit("room:join", {"room_id": room_id})).get("presence") != {
                    str(alice.id): "online", str(bob.id): "online"}:
                await asyncio.sleep(0.1)
    finally:
        for node in list(harness.nodes):  # stop them while their Redis still exists
            await harness.stop_node(node)
        redis.cleanup()


class SilentBroker:
    """A "Kafka" that accepts connections and never answers: the broker that hangs rather than
    refuses (a stopped process behind a live host, a full network path). Counts connections, so
    the test knows the node's relay was trying to reach it."""

    def __init__(self) -> None:
        self.connections = 0
        self._held: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._hold, "127.0.0.1", 0)
        return f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._held.append(writer)

    async def close(self) -> None:
        for w in self._held:
            w.close()
        if self._server is not None:
            self._server.close()


HANDLER_BOUND_S = 5.0  # R7: no request handler waits on Kafka longer than this
EXIT_BOUND_S = 10.0  # R7: a SIGTERM'd node is gone within this, Kafka or not


@pytest.mark.parametrize("kafka", ["refusing", "silent"])
async def test_with_kafka_down_no_handler_waits_over_5_s_and_a_sigtermed_node_exits_within_10_s(
        harness: ServerHarness, kafka: str) -> None:
    broker = SilentBroker()
    bootstrap = await broker.start()
    if kafka == "refusing":
        await broker.close()  # the port is free again: connections are refused
    try:
        # messages older than 1 s leave PostgreSQL through Kafka: the relay has work at once
        node = harness.spawn_node(KAFKA_BOOTSTRAP_SERVERS=bootstrap, HOT_RETENTION="1s", RELAY_INTERVAL="200ms",
                                  RATE_LIMIT_MESSAGES_PER_10S="1000", RATE_LIMIT_EVENTS_PER_10S="1000")
        alice = await harness.user(node)
        room_id = await make_room(alice)
        await alice.connect()
        first = await alice.send(room_id, "to be archived")
        if kafka == "silent":
            async with asyncio.timeout(10):  # the relay is waiting on the broker now
                while broker.connections == 0:
                    await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        until = loop.time() + 8.0  # a few relay passes, each waiting on the broker
        sent = [first]
        while loop.time() < until:
            async with asyncio.timeout(HANDLER_BOUND_S):
                sent.append(await alice.send(room_id, f"while Kafka is down {len(sent)}"))
            async with asyncio.timeout(HANDLER_BOUND_S):
                page = await alice.emit("history", {"room_id": room_id, "limit": 100})
                assert page["ok"] and [m["id"] for m in page["messages"]] == [m["id"] for m in sent], page
            for path in ("/healthz", "/readyz"):
                async with asyncio.timeout(HANDLER_BOUND_S), harness.http.get(node.base_url + path) as r:
                    assert r.status == 200, (path, await r.text())
            await asyncio.sleep(0.2)
        assert [m["seq"] for m in sent] == list(range(1, len(sent) + 1))  # nothing left PostgreSQL

        assert node.process is not None
        node.process.send_signal(signal.SIGTERM)
        exit_code = await asyncio.to_thread(node.process.wait, EXIT_BOUND_S)
        assert exit_code == 0
        alice.sio = None
    finally:
        await broker.close()
