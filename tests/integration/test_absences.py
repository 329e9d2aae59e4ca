"""R5 (docs/RELIABILITY.md): a client coming back after an absence of 1 s, 60 s or 10 min.

The absence is set on the clock of the stored messages rather than waited for: the messages
sent while the client was away are made that old in PostgreSQL, and the node's archive relay
(real Kafka, ``HOT_RETENTION=5m``, a pass every 200 ms) moves what is past the retention window
out of the hot store, as it would have after that long. A client back within the window gets
what it missed from ``sync``; a client past it, or past the sync limit (more than 500 missed in
a room), gets the documented ``resync: true`` and reloads the room (the web app:
``web/src/client.test.ts``, "reloads the latest page of a visible room the server marks resync")."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import asyncpg
import pytest

from tests.integration.edge import eventually
from tests.services.kafka import KafkaService
from tests.support import ServerHarness, make_room

RETENTION = "5m"
SYNC_LIMIT = 500  # server/actions/messages.py SYNC_MAX_PER_ROOM, as docs/PROTOCOL.md states it


async def _db(harness: ServerHarness) -> asyncpg.Connection:
    return await asyncpg.connect(harness.database_url, timeout=10)


@pytest.mark.parametrize(("absence", "past_retention"), [
    (timedelta(seconds=1), False), (timedelta(seconds=60), False), (timedelta(minutes=10), True)],
    ids=["1s", "60s", "10min"])
async def test_a_client_back_after_an_absence_gets_what_it_missed_or_resync_past_the_retention_window(
        harness: ServerHarness, kafka_broker: KafkaService, absence: timedelta, past_retention: bool) -> None:
    node = harness.spawn_node(KAFKA_BOOTSTRAP_SERVERS=kafka_broker.bootstrap, ARCHIVE_TOPIC=f"absence-{uuid.uuid4().hex[:8]}",
                              HOT_RETENTION=RETENTION, RELAY_INTERVAL="200ms")
    alice, bob = await harness.user(node), await harness.user(node)
    room_id = await make_room(alice, bob)
    await alice.connect()
    await bob.connect()
    seen = await alice.send(room_id, "before bob leaves")
    await bob.log.wait_for("message", lambda m: m["id"] == seen["id"])
    await bob.disconnect()
    missed = [await alice.send(room_id, f"while bob is away {i}") for i in range(3)]

    conn = await _db(harness)
    try:
        # the absence has passed: what was sent before and during it is that old now
        await conn.execute("UPDATE messages SET created_at = created_at - $2::interval WHERE room_id = $1",
                           room_id, absence)
        if past_retention:
            async def archived() -> bool:  # the relay moved them out of PostgreSQL
                upto = await conn.fetchval("SELECT archived_upto_seq FROM rooms WHERE id = $1", room_id)
                return int(upto) >= missed[-1]["seq"]
            await eventually(archived, timeout=30)
    finally:
        await conn.close()

    await bob.connect()
    entry = (await bob.emit("sync", {"cursors": {str(room_id): seen["seq"]}}))["rooms"][str(room_id)]
    if past_retention:
        # the gap reaches into the archive: the documented answer, nothing half-replayed
        assert entry["resync"] is True and entry["messages"] == []
    else:
        assert entry["resync"] is False
        assert [m["id"] for m in entry["messages"]] == [m["id"] for m in missed]
        assert entry["last_seq"] == missed[-1]["seq"]


@pytest.mark.parametrize("missed_count", [SYNC_LIMIT, SYNC_LIMIT + 1])
async def test_a_client_that_missed_more_than_the_sync_limit_gets_resync_and_one_at_the_limit_gets_everything(
        harness: ServerHarness, missed_count: int) -> None:
    limits = dataclasses.replace(harness.config().limits, messages_per_10s=100_000, events_per_10s=100_000)
    node = await harness.start_node(limits=limits)
    alice, bob = await harness.user(node), await harness.user(node)
    room_id = await make_room(alice, bob)
    await alice.connect()
    conn = await _db(harness)
    try:
        # the room's earlier life, written straight to PostgreSQL: what bob missed while away
        await conn.execute(
            "WITH s AS (UPDATE rooms SET last_seq = $2 WHERE id = $1)"
            " INSERT INTO messages (room_id, seq, author_id, author_kind, author_name, body, client_id)"
            " SELECT $1, g, $3, 'user', 'alice', 'missed ' || g, 'c' || g FROM generate_series(1, $2) g",
            room_id, missed_count, alice.id)
    finally:
        await conn.close()
    last = await alice.send(room_id, "the newest")
    assert last["seq"] == missed_count + 1
    await bob.connect()
    entry = (await bob.emit("sync", {"cursors": {str(room_id): 1}}))["rooms"][str(room_id)]
    if missed_count > SYNC_LIMIT:
        assert entry["resync"] is True and entry["messages"] == []
    else:
        assert entry["resync"] is False
        assert [m["seq"] for m in entry["messages"]] == list(range(2, missed_count + 2))
    assert entry["last_seq"] == last["seq"]
