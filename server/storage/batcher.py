"""Group commit for message inserts, across rooms.

A single-row insert costs a round trip, a statement and a commit (a WAL flush) per message,
which caps one process at about a thousand acked sends per second however many rooms they go
to. The batcher sends them in batches instead: sends are spread over *lanes* by room id (one
by default); each lane keeps at most one statement in flight, and the sends that arrive
meanwhile go together in its next statement, so a batch grows with the load by itself. That
statement locks the batch's rooms in id order, reserves each room's seqs with one UPDATE and
inserts every message with one INSERT: one round trip and one commit for the batch, whatever
rooms it spans.

Why this keeps the guarantees:

- *Order within a room.* A room always maps to the same lane, and a lane runs its statements one
  after another, so a room's messages get seqs in the order this process received them.
- *Gap-free seqs.* The statement is atomic: seqs are reserved and used in one transaction.
- *No deadlocks.* Every batch (on every node) takes its room locks in ascending id order, and
  single-message inserts elsewhere lock one room only, so no cycle can form.
- *Retries.* A batch that hits a duplicate ``(author_id, client_id)`` (a client's retry) fails as
  a whole, atomically, and its items are then inserted one by one so each gets its own answer.
- *Attachments.* Each item's attachment metadata goes into its message row, and the statement
  inserts the ``message_attachments`` rows from those rows (``messages.ATTACH_CTE``): a message
  and its files are linked in the one statement. An upload attached twice, or one that is gone,
  fails the batch like a duplicate does, and the items then get their own answers one by one.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from chatcore.events import Attachment, MessageRecord

from .messages import ATTACH_CTE, attachments_param, insert_member_message

log = logging.getLogger(__name__)

MAX_BATCH = 256
# One lane: every send waits for the one statement in flight, so batches are as large as the
# load makes them. PostgreSQL's CPU per row falls with the batch (the commit, the statement's
# start and the CTEs' fixed work are per statement), and so does chat-server's (a pool
# round trip per statement, one bus PUBLISH per batch of acks): with 40 clients in a closed
# loop two lanes averaged ~10 rows per statement and one ~21, 313-338 -> 266-289 µs of the
# server core per ack (chat-server + PostgreSQL + Redis). A lane's throughput is its batch
# (up to MAX_BATCH) per commit, far above what one process sends.
LANES = 1

INSERT_BATCH = (
    "WITH items AS ("
    "  SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],"
    "   $7::bigint[], $8::text[]) WITH ORDINALITY AS t(room_id, author_id, author_kind, author_name, body, client_id,"
    "   reply_to, attachments, ord)),"
    " ok AS (SELECT i.*, row_number() OVER (PARTITION BY i.room_id ORDER BY i.ord) AS n FROM items i"
    "  WHERE EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = i.room_id AND m.user_id = i.author_id)),"
    " counts AS (SELECT room_id, count(*) AS total FROM ok GROUP BY room_id),"
    # lock the rooms in id order before the UPDATE touches them: the UPDATE only reaches rows
    # that this scan has produced (and so locked)
    " locked AS MATERIALIZED (SELECT r.id FROM rooms r WHERE r.id IN (SELECT room_id FROM counts)"
    "  AND r.kind <> 'whatsapp' AND r.archived_at IS NULL ORDER BY r.id FOR UPDATE),"
    " s AS (UPDATE rooms r SET last_seq = r.last_seq + c.total FROM locked l JOIN counts c ON c.room_id = l.id"
    "  WHERE r.id = l.id RETURNING r.id, r.last_seq, r.kind, c.total),"
    " ins AS (INSERT INTO messages (room_id, seq, author_id, author_kind, author_name, body, client_id,"
    "  reply_to, meta, attachments)"
    "  SELECT ok.room_id, s.last_seq - s.total + ok.n, ok.author_id, ok.author_kind, ok.author_name, ok.body,"
    "   ok.client_id, ok.reply_to, '{}'::jsonb, ok.attachments::jsonb FROM ok JOIN s ON s.id = ok.room_id"
    # ATTACH_CTE reads id, author_id, created_at and attachments from ``ins``
    "   ORDER BY ok.room_id, ok.n RETURNING id, room_id, seq, author_id, client_id, created_at, attachments),"
    f"{ATTACH_CTE}"
    # only what the database decided: the rest of each record is what the sender gave (see _record)
    " SELECT ins.id, ins.seq, ins.author_id, ins.client_id, ins.created_at, s.kind AS room_kind"
    " FROM ins JOIN s ON s.id = ins.room_id"
)


@dataclass(slots=True)
class _Pending:
    room_id: int
    fields: dict[str, Any]
    future: asyncio.Future[tuple[MessageRecord, str] | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def _record(p: _Pending, row: asyncpg.Record) -> MessageRecord:
    """The stored message: id, seq and created_at from the row, every other field as the send
    gave it and the statement stored it (text as is, ``meta`` empty, no reactions, attachments
    as their stored metadata), without decoding 15 columns and three jsonb values per row."""
    f = p.fields
    return MessageRecord(
        id=row["id"], room_id=p.room_id, seq=row["seq"], author_id=f["author_id"], author_kind=f["author_kind"],
        author_name=f["author_name"], body=f["body"], client_id=f["client_id"], reply_to=f.get("reply_to"),
        meta={}, created_at=row["created_at"],
        attachments=tuple(Attachment.from_wire(a) for a in attachments_param(f.get("attachments"))),
    )


class SendBatcher:
    def __init__(self, pool: asyncpg.Pool, lanes: int = LANES) -> None:
        self.pool = pool
        self._lanes = lanes
        self._queues: dict[int, list[_Pending]] = {}  # lane -> waiting sends, while the lane is busy
        self._tasks: set[asyncio.Task[None]] = set()

    async def insert_member_message(self, room_id: int, **fields: Any) -> tuple[MessageRecord, str] | None:
        """Same contract as ``messages.insert_member_message``, batched with concurrent sends."""
        pending = _Pending(room_id, fields)
        lane = room_id % self._lanes
        queue = self._queues.get(lane)
        if queue is None:
            self._queues[lane] = [pending]
            task = asyncio.create_task(self._drain(lane), name=f"send-batch:{lane}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            queue.append(pending)
        return await pending.future

    async def _drain(self, lane: int) -> None:
        try:
            while True:
                queue = self._queues.get(lane)
                if not queue:
                    return
                batch, rest = queue[:MAX_BATCH], queue[MAX_BATCH:]
                self._queues[lane] = rest
                await self._run(batch)
        except BaseException as exc:
            # hand every waiter an error rather than leaving it hanging
            for p in self._queues.pop(lane, []):
                if not p.future.done():
                    p.future.set_exception(exc if isinstance(exc, Exception) else asyncio.CancelledError())
            raise
        finally:
            if not self._queues.get(lane):
                self._queues.pop(lane, None)

    async def _run(self, batch: list[_Pending]) -> None:
        if len(batch) == 1:
            await self._one(batch[0])
            return
        f = [p.fields for p in batch]
        try:
            rows = await self.pool.fetch(
                INSERT_BATCH, [p.room_id for p in batch],
                [x["author_id"] for x in f], [x["author_kind"] for x in f], [x["author_name"] for x in f],
                [x["body"] for x in f], [x["client_id"] for x in f], [x.get("reply_to") for x in f],
                [orjson.dumps(attachments_param(x.get("attachments"))).decode() for x in f],
            )
        except (asyncpg.UniqueViolationError, asyncpg.ForeignKeyViolationError):
            for p in batch:  # a retry is in the batch: let each item find its own answer
                await self._one(p)
            return
        except Exception as exc:
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(exc)
            return
        stored = {(r["author_id"], r["client_id"]): r for r in rows}
        for p in batch:
            if not p.future.done():
                row = stored.get((p.fields["author_id"], p.fields["client_id"]))
                p.future.set_result(None if row is None else (_record(p, row), row["room_kind"]))

    async def _one(self, p: _Pending) -> None:
        try:
            result = await insert_member_message(self.pool, p.room_id, **p.fields)
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
