"""Group commit of message inserts: gap-free seqs, per-item membership, retries inside a batch."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from server.storage import db
from server.storage import messages as mdb
from server.storage import rooms as rdb
from server.storage import users as udb
from server.storage.batcher import SendBatcher


async def _setup(database_url: str) -> tuple[asyncpg.Pool, int, list[int], int]:
    pool = await db.create_pool(database_url, timeout_s=10, min_size=2, max_size=10)
    async with pool.acquire() as c:
        members = [(await udb.insert_user(c, f"m{i}", f"m{i}", None)).id for i in range(5)]
        outsider = (await udb.insert_user(c, "outsider", "outsider", None)).id
        room = await rdb.insert_room(c, "batch", "batch", "public", "", members[0])
        for uid in members:
            await rdb.add_member(c, room.id, uid)
    return pool, room.id, members, outsider


def _fields(author_id: int, client_id: str | None = None) -> dict[str, object]:
    return dict(author_id=author_id, author_kind="user", author_name="n", body="hello",
                client_id=client_id or uuid.uuid4().hex, reply_to=None)


async def test_concurrent_batched_sends_get_unique_gap_free_seqs(database_url: str) -> None:
    pool, room_id, members, _ = await _setup(database_url)
    batcher = SendBatcher(pool)
    try:
        results = await asyncio.gather(*[batcher.insert_member_message(room_id, **_fields(members[i % 5]))
                                         for i in range(500)])
        seqs = sorted(r[0].seq for r in results if r is not None)
        assert seqs == list(range(1, 501))
        assert await pool.fetchval("SELECT last_seq FROM rooms WHERE id = $1", room_id) == 500
    finally:
        await batcher.close()
        await pool.close()


async def test_batch_refuses_non_members_and_resolves_retries_individually(database_url: str) -> None:
    pool, room_id, members, outsider = await _setup(database_url)
    batcher = SendBatcher(pool)
    try:
        first = await batcher.insert_member_message(room_id, **_fields(members[0], "same"))
        assert first is not None
        results = await asyncio.gather(
            batcher.insert_member_message(room_id, **_fields(members[1])),
            batcher.insert_member_message(room_id, **_fields(outsider)),
            batcher.insert_member_message(room_id, **_fields(members[0], "same")),
            batcher.insert_member_message(room_id, **_fields(members[2])),
            return_exceptions=True,
        )
        assert results[1] is None  # not a member: the caller takes the slow path
        assert isinstance(results[2], asyncpg.UniqueViolationError)  # the retry: the caller reads the stored one
        stored = [r for r in results if isinstance(r, tuple)]
        assert sorted(m.seq for m, _ in stored) == [2, 3]
        assert await pool.fetchval("SELECT count(*) FROM messages WHERE room_id = $1", room_id) == 3
    finally:
        await batcher.close()
        await pool.close()


async def _rooms(pool: asyncpg.Pool, members: list[int], n: int, kind: str = "public") -> list[int]:
    ids = []
    async with pool.acquire() as c:
        for i in range(n):
            room = await rdb.insert_room(c, f"r{i}-{uuid.uuid4().hex[:6]}", "r", kind, "", members[0])
            for uid in members:
                await rdb.add_member(c, room.id, uid)
            ids.append(room.id)
    return ids


async def test_one_batch_spans_rooms_and_keeps_each_rooms_order(database_url: str) -> None:
    pool, _, members, _ = await _setup(database_url)
    room_ids = await _rooms(pool, members, 12)
    batcher = SendBatcher(pool, lanes=1)  # every room in one lane: batches are as mixed as they get
    try:
        sends = [(room_ids[i % 12], _fields(members[i % 5], f"c{i}")) for i in range(600)]
        results = await asyncio.gather(*[batcher.insert_member_message(r, **f) for r, f in sends])
        assert all(r is not None for r in results)
        statements = await pool.fetchval(
            "SELECT count(DISTINCT xmin::text) FROM messages WHERE room_id = ANY($1)", room_ids)
        assert statements < 600 // 4  # batched: far fewer transactions than messages
        for room_id in room_ids:
            got = [(m.seq, m.client_id) for m, _ in (r for r in results if r is not None) if m.room_id == room_id]
            sent = [f["client_id"] for r, f in sends if r == room_id]
            assert [seq for seq, _ in sorted(got)] == list(range(1, len(sent) + 1))  # gap-free
            assert [cid for _, cid in sorted(got)] == sent  # in the order they were handed in
    finally:
        await batcher.close()
        await pool.close()


async def test_batches_from_two_nodes_over_the_same_rooms_never_deadlock(database_url: str) -> None:
    """Two batchers (two nodes) write into the same rooms at once, each batch spanning all of
    them, handed in in opposite orders: both finish and every room stays gap-free."""
    pool, _, members, _ = await _setup(database_url)
    room_ids = await _rooms(pool, members, 8)
    a, b = SendBatcher(pool, lanes=1), SendBatcher(pool, lanes=1)
    try:
        order_a, order_b = room_ids, list(reversed(room_ids))
        jobs = [a.insert_member_message(order_a[i % 8], **_fields(members[i % 5])) for i in range(400)]
        jobs += [b.insert_member_message(order_b[i % 8], **_fields(members[i % 5])) for i in range(400)]
        results = await asyncio.wait_for(asyncio.gather(*jobs), 60)
        assert all(r is not None for r in results)
        for room_id in room_ids:
            seqs = await pool.fetch("SELECT seq FROM messages WHERE room_id = $1 ORDER BY seq", room_id)
            assert [r["seq"] for r in seqs] == list(range(1, 101))
    finally:
        await a.close()
        await b.close()
        await pool.close()


async def test_a_mixed_batch_answers_each_item_for_its_own_room(database_url: str) -> None:
    pool, room_id, members, outsider = await _setup(database_url)
    other = (await _rooms(pool, members, 1))[0]
    wa = (await _rooms(pool, members, 1, kind="whatsapp"))[0]
    batcher = SendBatcher(pool, lanes=1)
    try:
        results = await asyncio.gather(
            batcher.insert_member_message(room_id, **_fields(members[0])),
            batcher.insert_member_message(other, **_fields(members[1])),
            batcher.insert_member_message(wa, **_fields(members[2])),  # not through the fast path
            batcher.insert_member_message(other, **_fields(outsider)),  # not a member
            batcher.insert_member_message(999_999, **_fields(members[3])),  # no such room
            batcher.insert_member_message(room_id, **_fields(members[4])),
        )
        assert [None if r is None else (r[0].room_id, r[0].seq, r[1]) for r in results] == [
            (room_id, 1, "public"), (other, 1, "public"), None, None, None, (room_id, 2, "public")]
        assert await pool.fetchval("SELECT last_seq FROM rooms WHERE id = $1", wa) == 0
    finally:
        await batcher.close()
        await pool.close()


async def test_a_batched_sends_record_is_the_row_as_stored(database_url: str) -> None:
    # the batch statement returns only id, seq and created_at; the rest of each record is built
    # from the send, so it must equal what a read of the stored row gives, field by field
    pool, room_id, members, _ = await _setup(database_url)
    batcher = SendBatcher(pool, lanes=1)
    try:
        sends = [dict(author_id=members[i], author_kind="user", author_name=f"Name {i}", body=f"body {i} ünï",
                      client_id=uuid.uuid4().hex, reply_to=None if i % 2 else 7) for i in range(4)]
        results = await asyncio.gather(*[batcher.insert_member_message(room_id, **s) for s in sends])
        for result in results:
            assert result is not None
            record, kind = result
            assert kind == "public"
            assert record == await mdb.get_message(pool, record.id)
    finally:
        await batcher.close()
        await pool.close()
