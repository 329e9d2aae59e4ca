"""Group commit for message inserts, per room.

Inserts into one room serialise on the room row (the seq counter), so each waits for the
previous one's commit: one WAL flush per message caps a busy room at roughly a thousand or two
messages per second. The batcher keeps at most one insert statement in flight per room; sends
that arrive meanwhile wait and go together in the next statement, which reserves their seqs
with one UPDATE and inserts them with one INSERT: one round trip and one commit for the batch.

A batch that hits a duplicate ``(author_id, client_id)`` (a retry) fails as a whole, atomically,
and its items are then inserted one by one so each gets its own answer.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from ..events import MessageRecord
from .messages import MSG_COLS, insert_member_message, to_record

log = logging.getLogger(__name__)

MAX_BATCH = 256

INSERT_BATCH = (
    "WITH items AS ("
    "  SELECT * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[])"
    "  WITH ORDINALITY AS t(author_id, author_kind, author_name, body, client_id, reply_to, ord)),"
    " ok AS (SELECT i.*, row_number() OVER (ORDER BY i.ord) AS n FROM items i"
    "  WHERE EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = $1 AND m.user_id = i.author_id)),"
    " s AS (UPDATE rooms r SET last_seq = r.last_seq + (SELECT count(*) FROM ok)"
    "  WHERE r.id = $1 AND r.kind <> 'whatsapp' AND EXISTS (SELECT 1 FROM ok)"
    "  RETURNING r.last_seq, r.kind, (SELECT count(*) FROM ok) AS total)"
    " INSERT INTO messages (room_id, seq, author_id, author_kind, author_name, body, client_id, reply_to, meta)"
    " SELECT $1, s.last_seq - s.total + ok.n, ok.author_id, ok.author_kind, ok.author_name, ok.body,"
    "  ok.client_id, ok.reply_to, '{}'::jsonb FROM ok, s ORDER BY ok.n"
    f" RETURNING {MSG_COLS}, (SELECT kind FROM s) AS room_kind"
)


@dataclass(slots=True)
class _Pending:
    fields: dict[str, Any]
    future: asyncio.Future[tuple[MessageRecord, str] | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class SendBatcher:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._queues: dict[int, list[_Pending]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def insert_member_message(self, room_id: int, **fields: Any) -> tuple[MessageRecord, str] | None:
        """Same contract as ``messages.insert_member_message``, batched with concurrent sends."""
        pending = _Pending(fields)
        queue = self._queues.get(room_id)
        if queue is None:
            self._queues[room_id] = [pending]
            task = asyncio.create_task(self._drain(room_id), name=f"send-batch:{room_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            queue.append(pending)
        return await pending.future

    async def _drain(self, room_id: int) -> None:
        try:
            while True:
                queue = self._queues.get(room_id)
                if not queue:
                    return
                batch, rest = queue[:MAX_BATCH], queue[MAX_BATCH:]
                self._queues[room_id] = rest
                await self._run(room_id, batch)
        except BaseException as exc:
            # hand every waiter an error rather than leaving it hanging
            for p in self._queues.pop(room_id, []):
                if not p.future.done():
                    p.future.set_exception(exc if isinstance(exc, Exception) else asyncio.CancelledError())
            raise
        finally:
            if not self._queues.get(room_id):
                self._queues.pop(room_id, None)

    async def _run(self, room_id: int, batch: list[_Pending]) -> None:
        if len(batch) == 1:
            await self._one(room_id, batch[0])
            return
        f = [p.fields for p in batch]
        try:
            rows = await self.pool.fetch(
                INSERT_BATCH, room_id,
                [x["author_id"] for x in f], [x["author_kind"] for x in f], [x["author_name"] for x in f],
                [x["body"] for x in f], [x["client_id"] for x in f], [x.get("reply_to") for x in f],
            )
        except asyncpg.UniqueViolationError:
            for p in batch:  # a retry is in the batch: let each item find its own answer
                await self._one(room_id, p)
            return
        except Exception as exc:
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(exc)
            return
        stored = {(r["author_id"], r["client_id"]): (to_record(r), r["room_kind"]) for r in rows}
        for p in batch:
            if not p.future.done():
                p.future.set_result(stored.get((p.fields["author_id"], p.fields["client_id"])))

    async def _one(self, room_id: int, p: _Pending) -> None:
        try:
            result = await insert_member_message(self.pool, room_id, **p.fields)
        except Exception as exc:
            if not p.future.done():
                p.future.set_exception(exc)
            return
        if not p.future.done():
            p.future.set_result(result)

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
