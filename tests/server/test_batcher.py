"""Group commit of message inserts: gap-free seqs, per-item membership, retries inside a batch."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from server.storage import db
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
